//! Methods: `&self` and `&mut self`, `Self` in the body, generic impls, trait methods with a
//! default body and their overrides in impls.
#![deny(warnings)]

use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

struct Counter<T> {
    seen: Vec<T>,
}

impl<T: Clone + Send> Counter<T> {
    #[resilient(breaker = "ui-methods")]
    async fn count(&self) -> Result<usize, Failure> {
        Ok(self.seen.len())
    }

    #[resilient(retries = 1)]
    pub async fn record(&mut self, item: T) -> Result<usize, Failure> {
        self.seen.push(item);
        Ok(self.seen.len())
    }

    #[resilient]
    async fn fresh() -> Result<Self, Failure> {
        Ok(Self { seen: Vec::new() })
    }

    #[resilient]
    async fn explicit_receiver(self: &Self, extra: usize) -> Result<usize, Failure> {
        Ok(Self::len(self) + extra)
    }

    fn len(&self) -> usize {
        self.seen.len()
    }
}

trait Store {
    #[resilient(retries = 2)]
    async fn load(&self, key: String) -> Result<String, Failure> {
        Ok(key)
    }

    async fn save(&mut self, value: String) -> Result<(), Failure>;
}

struct Memory(Vec<String>);

impl Store for Memory {
    #[resilient(policy = "ui-store")]
    async fn load(&self, key: String) -> Result<String, Failure> {
        Ok(format!("{key}={}", self.0.len()))
    }

    #[resilient(breaker = "ui-store")]
    async fn save(&mut self, value: String) -> Result<(), Failure> {
        self.0.push(value);
        Ok(())
    }
}

struct Defaults;

impl Store for Defaults {
    async fn save(&mut self, _value: String) -> Result<(), Failure> {
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut counter = Counter::<u8>::fresh().await.unwrap();
    counter.record(1).await.unwrap();
    counter.record(2).await.unwrap();
    assert_eq!(counter.count().await.unwrap(), 2);
    assert_eq!(counter.explicit_receiver(1).await.unwrap(), 3);

    let mut memory = Memory(Vec::new());
    memory.save("a".into()).await.unwrap();
    assert_eq!(memory.load("k".into()).await.unwrap(), "k=1");
    assert_eq!(Defaults.load("d".into()).await.unwrap(), "d");
}
