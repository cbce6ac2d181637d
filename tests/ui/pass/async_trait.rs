//! With `#[async_trait]` on the trait or the impl: it runs first, and `#[resilient]` retries the
//! body inside the boxed future it writes.
#![deny(warnings)]

use async_trait::async_trait;
use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

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
}
