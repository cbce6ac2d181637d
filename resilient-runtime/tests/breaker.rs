//! Named breakers as a process shares them: concurrency in half-open, cancelled probes,
//! reconfiguration in place, and one name seen from two modules.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilient_runtime::{
    BreakerConfig, BreakerState, Error, Jitter, Retry, RetryPolicy, StateChange, breaker, breakers,
    configure_breaker,
};
use tokio::sync::Barrier;

fn once() -> RetryPolicy {
    RetryPolicy::new().retries(0).jitter(Jitter::None)
}

#[derive(Debug, PartialEq)]
struct Failed(Option<Error>);

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Failed(Some(e))
    }
}

async fn fail_once(name: &str) {
    let b = breaker(name);
    let _ = Retry::new(once())
        .breaker(&b)
        .run(|| async { Err::<(), _>(Failed(None)) })
        .await;
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_the_probe_limit_among_a_hundred_callers() {
    let name = "it-hundred";
    let config = BreakerConfig::new()
        .failure_threshold(1)
        .half_open_probes(3);
    configure_breaker(name, config.open_duration(Duration::from_secs(10))).unwrap();
    fail_once(name).await;
    tokio::time::advance(Duration::from_secs(10)).await;

    let running = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let release = Arc::new(Barrier::new(4));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (running, most, release) = (running.clone(), most.clone(), release.clone());
            tokio::spawn(async move {
                let b = breaker(name);
                Retry::new(once())
                    .breaker(&b)
                    .run(|| async {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        release.wait().await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Failed>(())
                    })
                    .await
            })
        })
        .collect();
    // Let every task ask the breaker while the three probes wait at the barrier.
    tokio::task::yield_now().await;
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    assert_eq!(breaker(name).status().probes_in_flight, 3);
    release.wait().await;

    let mut admitted = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => admitted += 1,
            Err(Failed(Some(e))) if e.is_rejected() => {
                assert_eq!(e.retry_in(), None, "half-open refusals have no fixed wait");
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((admitted, refused), (3, 97));
    assert_eq!(most.load(Ordering::SeqCst), 3);
    assert_eq!(breaker(name).state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_hands_its_slot_back() {
    let name = "it-cancelled-probe";
    configure_breaker(name, BreakerConfig::new().failure_threshold(1)).unwrap();
    fail_once(name).await;
    tokio::time::advance(Duration::from_secs(60)).await;

    let b = breaker(name);
    let hung = Retry::new(once())
        .breaker(&b)
        .run(std::future::pending::<Result<(), Failed>>);
    // The caller gives up on the probe after a second and drops it.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), hung)
            .await
            .is_err()
    );
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert_eq!(b.status().probes_in_flight, 0);

    let result = Retry::new(once())
        .breaker(&b)
        .run(|| async { Ok::<_, Failed>(7) })
        .await;
    assert_eq!(result, Ok(7));
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn reconfiguring_a_name_reaches_handles_taken_before() {
    let name = "it-reconfigure";
    let held = breaker(name);
    for _ in 0..4 {
        fail_once(name).await;
    }
    assert_eq!(held.state(), BreakerState::Closed, "default threshold is 5");
    configure_breaker(name, BreakerConfig::new().failure_threshold(2)).unwrap();
    assert_eq!(
        held.state(),
        BreakerState::Closed,
        "settings alone change no state"
    );
    fail_once(name).await;
    assert_eq!(held.state(), BreakerState::Open);
    assert!(configure_breaker(name, BreakerConfig::new().half_open_probes(0)).is_err());
}

#[tokio::test(start_paused = true)]
async fn listeners_and_the_registry_listing_report_transitions() {
    let name = "it-listener";
    let b = configure_breaker(name, BreakerConfig::new().failure_threshold(1)).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<StateChange>::new()));
    let sink = seen.clone();
    b.on_state_change(move |change| sink.lock().unwrap().push(change.clone()));
    fail_once(name).await;
    let listed = breakers().into_iter().find(|s| &*s.name == name).unwrap();
    assert_eq!(listed.state, BreakerState::Open);
    assert_eq!(listed.next_probe_in, Some(Duration::from_secs(60)));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (&*seen[0].breaker, seen[0].from, seen[0].to),
        (name, BreakerState::Closed, BreakerState::Open)
    );
}

mod billing {
    use super::*;

    pub async fn charge(fail: bool) -> Result<(), super::Failed> {
        let b = breaker("it-shared");
        Retry::new(once())
            .breaker(&b)
            .run(|| async move { if fail { Err(Failed(None)) } else { Ok(()) } })
            .await
    }
}

mod invoices {
    use super::*;

    pub async fn send() -> Result<(), super::Failed> {
        let b = breaker("it-shared");
        Retry::new(once())
            .breaker(&b)
            .run(|| async { Ok(()) })
            .await
    }
}

#[tokio::test(start_paused = true)]
async fn two_modules_share_one_named_breaker() {
    configure_breaker("it-shared", BreakerConfig::new().failure_threshold(3)).unwrap();
    assert!(invoices::send().await.is_ok());
    for _ in 0..3 {
        assert_eq!(billing::charge(true).await, Err(Failed(None)));
    }
    let refused = invoices::send().await.unwrap_err();
    assert!(
        refused
            .0
            .is_some_and(|e| e.is_rejected() && e.breaker() == Some("it-shared"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_listener_neither_fails_the_call_nor_keeps_the_probe_slot() {
    let name = "it-panicking-listener";
    configure_breaker(name, BreakerConfig::new().failure_threshold(1)).unwrap();
    let b = breaker(name);
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    b.on_state_change(|_| panic!("listener bug"));
    let sink = heard.clone();
    b.on_state_change(move |change| sink.lock().unwrap().push(change.to));

    fail_once(name).await;
    tokio::time::advance(Duration::from_secs(60)).await;
    // The probe's transition to half-open calls the panicking listener first.
    let result = Retry::new(once())
        .breaker(&b)
        .run(|| async { Ok::<_, Failed>(7) })
        .await;
    assert_eq!(result, Ok(7));
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.status().probes_in_flight, 0);
    assert_eq!(
        *heard.lock().unwrap(),
        [
            BreakerState::Open,
            BreakerState::HalfOpen,
            BreakerState::Closed
        ]
    );
}
