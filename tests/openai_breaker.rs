//! The example's client and its `openai` breaker against a server on 127.0.0.1 that goes down:
//! when the breaker opens, that nothing reaches the server while it is open, and how concurrent
//! callers share it. Time is paused, as in `openai_client.rs`.

mod support;

use std::time::Duration;

use resilient::{BreakerConfig, BreakerState, RetryPolicy};
use support::{BREAKER, ChatError, Reply, brisk, pair, take_turn};
use tokio::task::JoinSet;

const OPEN: Duration = Duration::from_secs(5);

fn breaker_opening_after(failures: u32) -> BreakerConfig {
    BreakerConfig::new()
        .failure_threshold(failures)
        .open_duration(OPEN)
}

#[tokio::test(start_paused = true)]
async fn opens_after_the_configured_failures_and_lets_nothing_through_until_it_half_opens() {
    let _turn = take_turn(brisk(), breaker_opening_after(3)).await;
    let (server, client) = pair().await;
    server.set_standing(Reply::status(503));
    let breaker = resilient::breaker(BREAKER);

    // Three failed attempts open the breaker; the call then ends with the server's error rather
    // than a wait the breaker would refuse anyway.
    let error = client.chat("hello").await.unwrap_err();
    assert!(matches!(error, ChatError::Api { .. }), "{error:?}");
    assert_eq!(server.requests(), 3);
    assert_eq!(breaker.state(), BreakerState::Open);

    // Until the open duration has passed, calls are refused without reaching the server.
    for _ in 0..4 {
        tokio::time::sleep(OPEN / 5).await;
        let error = client.chat("hello").await.unwrap_err();
        assert!(matches!(error, ChatError::Rejected(_)), "{error:?}");
    }
    assert_eq!(server.requests(), 3);

    // After it, one probe goes through; the service is back, so the breaker closes.
    tokio::time::sleep(OPEN / 5).await;
    server.set_standing(Reply::Complete);
    client.chat("hello").await.unwrap();
    assert_eq!(server.requests(), 4);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_opens_it_again() {
    let _turn = take_turn(brisk(), breaker_opening_after(2)).await;
    let (server, client) = pair().await;
    server.set_standing(Reply::status(500));
    let breaker = resilient::breaker(BREAKER);

    client.chat("hello").await.unwrap_err();
    assert_eq!(server.requests(), 2);

    tokio::time::sleep(OPEN).await;
    client.chat("hello").await.unwrap_err();
    assert_eq!(server.requests(), 3, "exactly one probe");
    assert_eq!(breaker.state(), BreakerState::Open);

    let error = client.chat("hello").await.unwrap_err();
    assert!(matches!(error, ChatError::Rejected(_)), "{error:?}");
    assert_eq!(server.requests(), 3);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_breaker() {
    const CALLERS: usize = 20;
    let policy = RetryPolicy::new().base_delay(Duration::from_millis(100));
    let _turn = take_turn(policy, breaker_opening_after(5)).await;
    let (server, client) = pair().await;
    server.set_standing(Reply::status(503));

    // All callers start while the breaker is closed, so each first attempt is admitted; the
    // breaker opens on the fifth failure and every retry after that is refused.
    let mut callers = JoinSet::new();
    for _ in 0..CALLERS {
        let client = client.clone();
        callers.spawn(async move { client.chat("hello").await });
    }
    let results = callers.join_all().await;
    assert!(results.iter().all(Result::is_err));
    assert_eq!(server.requests(), CALLERS);
    assert_eq!(resilient::breaker(BREAKER).state(), BreakerState::Open);

    // Half-open admits one probe; the others are refused at once, and the probe closes it.
    tokio::time::sleep(OPEN).await;
    server.set_standing(Reply::Complete);
    let mut callers = JoinSet::new();
    for _ in 0..CALLERS {
        let client = client.clone();
        callers.spawn(async move { client.chat("hello").await });
    }
    let results = callers.join_all().await;
    let succeeded = results.iter().filter(|result| result.is_ok()).count();
    let rejected = results
        .iter()
        .filter(|result| matches!(result, Err(ChatError::Rejected(_))))
        .count();
    assert_eq!((succeeded, rejected), (1, CALLERS - 1));
    assert_eq!(server.requests(), CALLERS + 1);
    assert_eq!(resilient::breaker(BREAKER).state(), BreakerState::Closed);
}
