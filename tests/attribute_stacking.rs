//! `#[resilient]` next to the other attributes an async service method tends to carry: each
//! attempt still runs the body, with `self` borrowed anew.

use async_trait::async_trait;
use resilient::resilient;

#[derive(Debug, PartialEq)]
enum CallError {
    Busy,
    Resilience(resilient::Error),
}

impl From<resilient::Error> for CallError {
    fn from(error: resilient::Error) -> Self {
        CallError::Resilience(error)
    }
}

struct Service {
    attempts: u32,
    sent: Vec<String>,
}

impl Service {
    fn try_send(&mut self, message: String) -> Result<usize, CallError> {
        self.attempts += 1;
        self.sent.push(message);
        if self.attempts < 3 {
            Err(CallError::Busy)
        } else {
            Ok(self.sent.len())
        }
    }

    #[tracing::instrument(skip(self))]
    #[resilient(retries = 3, jitter = "none", base_delay = "1ms")]
    async fn instrumented_outside(&mut self, message: String) -> Result<usize, CallError> {
        self.try_send(message)
    }

    #[resilient(retries = 3, jitter = "none", base_delay = "1ms")]
    #[tracing::instrument(skip(self))]
    async fn instrumented_inside(&mut self, message: String) -> Result<usize, CallError> {
        self.try_send(message)
    }
}

#[tokio::test(start_paused = true)]
async fn instrument_above_or_below_retries_the_body() {
    let mut service = Service {
        attempts: 0,
        sent: Vec::new(),
    };
    assert_eq!(service.instrumented_outside("a".to_owned()).await, Ok(3));
    assert_eq!(service.sent, ["a", "a", "a"]);

    let mut service = Service {
        attempts: 0,
        sent: Vec::new(),
    };
    assert_eq!(service.instrumented_inside("b".to_owned()).await, Ok(3));
    assert_eq!(service.sent, ["b", "b", "b"]);
}

#[async_trait]
trait Sender {
    async fn send(&mut self, message: String) -> Result<usize, CallError>;

    #[resilient(retries = 1, jitter = "none", base_delay = "1ms")]
    async fn ping(&mut self) -> Result<usize, CallError> {
        self.send("ping".to_owned()).await
    }
}

#[async_trait]
impl Sender for Service {
    #[resilient(retries = 3, jitter = "none", base_delay = "1ms")]
    async fn send(&mut self, message: String) -> Result<usize, CallError> {
        self.try_send(message)
    }
}

#[tokio::test(start_paused = true)]
async fn async_trait_methods_are_retried() {
    let mut service = Service {
        attempts: 0,
        sent: Vec::new(),
    };
    assert_eq!(service.send("c".to_owned()).await, Ok(3));
    assert_eq!(service.sent, ["c", "c", "c"]);

    // `ping` retries once around `send`, which retries three times on its own.
    let mut service = Service {
        attempts: 0,
        sent: Vec::new(),
    };
    assert_eq!(service.ping().await, Ok(3));
    assert_eq!(service.attempts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_trait_futures_can_be_spawned() {
    let task = tokio::spawn(async {
        let mut service = Service {
            attempts: 2,
            sent: Vec::new(),
        };
        service.send("d".to_owned()).await
    });
    assert_eq!(task.await.unwrap(), Ok(1));
}
