//! Side by side with `#[tracing::instrument]`, above and below.
#![deny(warnings)]

use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[tracing::instrument]
#[resilient(retries = 1)]
async fn instrumented_outside(name: String) -> Result<usize, Failure> {
    Ok(name.len())
}

#[resilient(retries = 1)]
#[tracing::instrument]
async fn instrumented_inside(name: String) -> Result<usize, Failure> {
    Ok(name.len())
}

/// Not `Clone`: under `#[resilient]` above, `#[tracing::instrument]` only borrows it.
#[derive(Debug)]
pub struct Token(u32);

#[resilient(retries = 1)]
#[tracing::instrument]
async fn recorded_not_cloned(token: Token) -> Result<u32, Failure> {
    Ok(read(&token))
}

fn read(token: &Token) -> u32 {
    token.0
}

#[tracing::instrument(skip_all)]
#[resilient(retries = 1)]
async fn skipped_and_moved(name: String, count: usize) -> Result<usize, Failure> {
    Ok(name.len() + count)
}

struct Service {
    calls: u32,
}

impl Service {
    #[tracing::instrument(skip(self))]
    #[resilient(breaker = "ui-instrument")]
    async fn call(&self, id: u32) -> Result<u32, Failure> {
        Ok(self.calls + id)
    }

    #[resilient(breaker = "ui-instrument")]
    #[tracing::instrument(skip(self))]
    async fn bump(&mut self, id: u32) -> Result<u32, Failure> {
        self.calls += 1;
        Ok(self.calls + id)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(instrumented_outside("ab".into()).await.unwrap(), 2);
    assert_eq!(instrumented_inside("abc".into()).await.unwrap(), 3);
    assert_eq!(recorded_not_cloned(Token(4)).await.unwrap(), 4);
    assert_eq!(skipped_and_moved("ab".into(), 1).await.unwrap(), 3);
    let mut service = Service { calls: 0 };
    assert_eq!(service.bump(1).await.unwrap(), 2);
    assert_eq!(service.call(1).await.unwrap(), 2);
}
