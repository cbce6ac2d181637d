//! The returned future is `Send` whenever the body's is, for every shape.
#![deny(warnings)]

use std::sync::Arc;

use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

fn is_transient(_: &Failure) -> bool {
    true
}

#[resilient(breaker = "ui-send", policy = "ui-send", retry_if = is_transient, deadline = "1m")]
async fn free(shared: Arc<Vec<u8>>, owned: String) -> Result<usize, Failure> {
    tokio::task::yield_now().await;
    Ok(shared.len() + owned.len())
}

struct Worker {
    done: u32,
}

impl Worker {
    #[resilient(breaker = "ui-send")]
    async fn work(&mut self, job: Vec<u8>) -> Result<u32, Failure> {
        tokio::task::yield_now().await;
        self.done += job.len() as u32;
        Ok(self.done)
    }
}

fn assert_send<T: Send + 'static>(_: &T) {}

#[tokio::main]
async fn main() {
    let future = free(Arc::new(vec![1]), "ab".to_owned());
    assert_send(&future);
    assert_eq!(tokio::spawn(future).await.unwrap().unwrap(), 3);

    let task = tokio::spawn(async {
        let mut worker = Worker { done: 0 };
        worker.work(vec![1, 2]).await
    });
    assert_eq!(task.await.unwrap().unwrap(), 2);
}
