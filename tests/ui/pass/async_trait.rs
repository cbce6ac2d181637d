//! With `#[async_trait]` on the trait or the impl: it runs first, and `#[resilient]` retries the
//! body inside the boxed future it writes.
#![deny(warnings)]

use async_trait::async_trait;
use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[async_trait]
trait Client {
    async fn get(&self, path: String) -> Result<String, Failure>;

    #[resilient(retries = 1)]
    async fn ping(&self) -> Result<(), Failure> {
        self.get("/ping".to_owned()).await.map(drop)
    }

    async fn push(&mut self, item: String) -> Result<usize, Failure>;
}

struct Http {
    sent: Vec<String>,
}

#[async_trait]
impl Client for Http {
    #[resilient(retries = 2, breaker = "ui-async-trait")]
    async fn get(&self, path: String) -> Result<String, Failure> {
        Ok(path)
    }

    #[resilient(jitter = "none", timeout = "5s")]
    async fn push(&mut self, mut item: String) -> Result<usize, Failure> {
        item.push('!');
        self.sent.push(item);
        Ok(self.sent.len())
    }
}

#[async_trait]
trait Store {
    async fn put(&mut self, key: String, value: u32) -> Result<usize, Failure>;
    async fn len(&self) -> Result<usize, Failure>;
    async fn clear(&mut self) -> Result<usize, Failure>;
}

#[derive(Default)]
struct Memory {
    items: Vec<(String, u32)>,
}

// `#[tracing::instrument]` above `#[resilient]` inside `#[async_trait]`: the body it wraps in
// its own `async move` is the one retried.
#[async_trait]
impl Store for Memory {
    #[tracing::instrument(skip(self))]
    #[resilient(retries = 1)]
    async fn put(&mut self, key: String, value: u32) -> Result<usize, Failure> {
        self.items.push((key, value));
        Ok(self.items.len())
    }

    #[tracing::instrument(skip(self), err)]
    #[resilient(retries = 1, breaker = "ui-async-trait")]
    async fn len(&self) -> Result<usize, Failure> {
        Ok(self.items.len())
    }

    // The body moves `self` into a block of its own: each attempt gets its own reborrow.
    #[resilient(retries = 1)]
    async fn clear(&mut self) -> Result<usize, Failure> {
        let cleared = async move {
            let count = self.items.len();
            self.items.clear();
            count
        };
        Ok(cleared.await)
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut http = Http { sent: Vec::new() };
    assert_eq!(assert_send(http.get("/a".to_owned())).await.unwrap(), "/a");
    assert_eq!(http.push("x".to_owned()).await.unwrap(), 1);
    http.ping().await.unwrap();
    assert_eq!(http.sent, ["x!"]);
    let mut memory = Memory::default();
    assert_eq!(assert_send(memory.put("k".into(), 1)).await.unwrap(), 1);
    assert_eq!(memory.len().await.unwrap(), 1);
    assert_eq!(memory.clear().await.unwrap(), 1);
    assert_eq!(memory.len().await.unwrap(), 0);
}
