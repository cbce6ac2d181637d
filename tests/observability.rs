//! What the runtime tells a `tracing` subscriber: a `debug` event per retry with its attempt,
//! delay and error, and a `warn` or `info` event naming the breaker on every transition.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilient::{BreakerConfig, resilient};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Debug)]
enum ObsError {
    Busy,
    Resilience(#[allow(dead_code, reason = "read through Debug only")] resilient::Error),
}

impl From<resilient::Error> for ObsError {
    fn from(error: resilient::Error) -> Self {
        ObsError::Resilience(error)
    }
}

/// Everything the subscriber writes, one event per line.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Log {
    type Writer = Log;

    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}

fn capture() -> (Log, tracing::subscriber::DefaultGuard) {
    let log = Log::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish();
    (log, tracing::subscriber::set_default(subscriber))
}

#[resilient(
    retries = 3,
    jitter = "none",
    base_delay = "10ms",
    breaker = "obs-breaker"
)]
async fn flaky(failures: &Mutex<u32>) -> Result<(), ObsError> {
    let mut left = failures.lock().unwrap();
    if *left == 0 {
        return Ok(());
    }
    *left -= 1;
    Err(ObsError::Busy)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_retry_and_every_transition_is_an_event() {
    let (log, _guard) = capture();
    resilient::configure_breaker(
        "obs-breaker",
        BreakerConfig::new()
            .failure_threshold(4)
            .open_duration(Duration::from_secs(1)),
    )
    .unwrap();

    // Two failures, then a success: two retries, 10 ms and 20 ms.
    flaky(&Mutex::new(2)).await.unwrap();
    let retries: Vec<String> = log
        .lines()
        .into_iter()
        .filter(|line| line.contains("retrying"))
        .collect();
    assert_eq!(retries.len(), 2, "{retries:#?}");
    for (line, (attempt, delay)) in retries.iter().zip([(1, "10"), (2, "20")]) {
        assert!(line.starts_with("DEBUG"), "{line}");
        assert!(line.contains(r#"operation="flaky""#), "{line}");
        assert!(line.contains(&format!("attempt={attempt} ")), "{line}");
        assert!(line.contains(&format!("delay_ms={delay}")), "{line}");
        assert!(line.contains("error=Busy"), "{line}");
    }

    // Four failures in a row open the breaker; after its open second a probe closes it.
    assert!(flaky(&Mutex::new(u32::MAX)).await.is_err());
    tokio::time::advance(Duration::from_secs(1)).await;
    flaky(&Mutex::new(0)).await.unwrap();

    let transitions: Vec<String> = log
        .lines()
        .into_iter()
        .filter(|line| line.contains("circuit breaker") && line.contains("breaker=\"obs-breaker\""))
        .collect();
    assert_eq!(transitions.len(), 3, "{transitions:#?}");
    assert!(transitions[0].starts_with(" WARN") && transitions[0].contains("opened"));
    assert!(transitions[0].contains("from=closed") && transitions[0].contains("open_ms=1000"));
    assert!(transitions[1].starts_with(" INFO") && transitions[1].contains("half-open"));
    assert!(transitions[2].starts_with(" INFO") && transitions[2].contains("closed"));
    assert!(transitions[2].contains("from=half-open"));
}
