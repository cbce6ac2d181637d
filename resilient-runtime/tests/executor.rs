//! The retry loop on tokio's paused clock: attempt counts, exact waits, caps, timeouts,
//! deadlines, hints, classification and the breaker in front of every attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilient_runtime::{
    Breaker, BreakerConfig, BreakerState, Error, Jitter, Retry, RetryPolicy, Verdict,
};
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, PartialEq)]
enum TestError {
    Flaky(u32),
    BadRequest,
    Busy(Duration),
    Runtime(Error),
}

impl From<Error> for TestError {
    fn from(e: Error) -> Self {
        TestError::Runtime(e)
    }
}

fn classify(e: &TestError) -> Verdict {
    match e {
        TestError::BadRequest => Verdict::Permanent,
        TestError::Busy(hint) => Verdict::RetryAfter(*hint),
        _ => Verdict::Transient,
    }
}

/// An operation that fails `failures` times, then succeeds, recording when each attempt began.
struct Flaky {
    failures: u32,
    error: TestError,
    starts: std::sync::Mutex<Vec<Duration>>,
    origin: Instant,
}

impl Flaky {
    fn new(failures: u32) -> Arc<Self> {
        Self::failing_with(failures, TestError::Flaky(0))
    }

    fn failing_with(failures: u32, error: TestError) -> Arc<Self> {
        Arc::new(Flaky {
            failures,
            error,
            starts: Default::default(),
            origin: Instant::now(),
        })
    }

    async fn call(&self) -> Result<u32, TestError> {
        let mut starts = self.starts.lock().unwrap();
        starts.push(self.origin.elapsed());
        let attempt = starts.len() as u32;
        if attempt <= self.failures {
            Err(self.error.clone())
        } else {
            Ok(attempt)
        }
    }

    fn attempts(&self) -> usize {
        self.starts.lock().unwrap().len()
    }

    /// The waits between consecutive attempts.
    fn gaps(&self) -> Vec<Duration> {
        let starts = self.starts.lock().unwrap();
        starts.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

fn exact(retries: u32) -> RetryPolicy {
    RetryPolicy::new()
        .retries(retries)
        .jitter(Jitter::None)
        .base_delay(100 * MS)
}

#[tokio::test(start_paused = true)]
async fn retries_count_after_the_first_attempt() {
    for retries in [0, 1, 3, 7] {
        let op = Flaky::new(u32::MAX);
        let result = Retry::new(exact(retries)).run(|| op.call()).await;
        assert_eq!(result, Err(TestError::Flaky(0)));
        assert_eq!(op.attempts() as u32, retries + 1, "retries = {retries}");
    }
}

#[tokio::test(start_paused = true)]
async fn no_jitter_waits_exactly_the_doubling_delays_up_to_the_cap() {
    let op = Flaky::new(6);
    let policy = exact(6).max_delay(500 * MS);
    assert_eq!(Retry::new(policy).run(|| op.call()).await, Ok(7));
    assert_eq!(op.gaps(), [100, 200, 400, 500, 500, 500].map(|ms| ms * MS));
}

#[tokio::test(start_paused = true)]
async fn jittered_waits_stay_inside_each_kinds_bounds() {
    for (jitter, seed) in [
        (Jitter::Full, 1),
        (Jitter::Equal, 2),
        (Jitter::Decorrelated, 3),
    ] {
        for run in 0..20 {
            let op = Flaky::new(5);
            let policy = exact(5)
                .jitter(jitter)
                .max_delay(800 * MS)
                .seed(seed * 100 + run);
            Retry::new(policy).run(|| op.call()).await.unwrap();
            let mut previous = 100 * MS;
            for (i, gap) in op.gaps().into_iter().enumerate() {
                let ceiling = (100 * MS * 2u32.pow(i as u32)).min(800 * MS);
                let (low, high) = match jitter {
                    Jitter::Full => (Duration::ZERO, ceiling),
                    Jitter::Equal => (ceiling / 2, ceiling),
                    _ => (100 * MS, (previous * 3).min(800 * MS)),
                };
                assert!(
                    gap >= low && gap <= high,
                    "{jitter} retry {}: {gap:?}",
                    i + 1
                );
                previous = gap;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_seeded_policy_waits_the_same_every_time() {
    let gaps = |seed| async move {
        let op = Flaky::new(4);
        Retry::new(exact(4).jitter(Jitter::Full).seed(seed))
            .run(|| op.call())
            .await
            .unwrap();
        op.gaps()
    };
    assert_eq!(gaps(5).await, gaps(5).await);
    assert_ne!(gaps(5).await, gaps(6).await);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_return_at_once_and_leave_the_breaker_alone() {
    let breaker =
        Breaker::new("exec-permanent", BreakerConfig::new().failure_threshold(1)).unwrap();
    let op = Flaky::failing_with(u32::MAX, TestError::BadRequest);
    let result = Retry::new(exact(5))
        .breaker(&breaker)
        .retry_if(classify)
        .run(|| op.call())
        .await;
    assert_eq!(result, Err(TestError::BadRequest));
    assert_eq!(op.attempts(), 1);
    let status = breaker.status();
    assert_eq!(
        (status.state, status.failures, status.ignored),
        (BreakerState::Closed, 0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_bool_classifier_works_too() {
    let op = Flaky::failing_with(u32::MAX, TestError::BadRequest);
    let transient = |e: &TestError| !matches!(e, TestError::BadRequest);
    let result = Retry::new(exact(5))
        .retry_if(transient)
        .run(|| op.call())
        .await;
    assert_eq!(result, Err(TestError::BadRequest));
    assert_eq!(op.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_server_hint_lengthens_the_wait_with_a_little_spread() {
    let hint = Duration::from_secs(5);
    let mut spreads = Vec::new();
    for seed in 0..50 {
        let op = Flaky::failing_with(1, TestError::Busy(hint));
        let policy = exact(3).jitter(Jitter::Full).seed(seed);
        Retry::new(policy)
            .retry_if(classify)
            .run(|| op.call())
            .await
            .unwrap();
        let gap = op.gaps()[0];
        assert!(
            gap >= hint && gap <= hint + hint / 10,
            "waited {gap:?} for a {hint:?} hint"
        );
        spreads.push(gap);
    }
    spreads.sort();
    spreads.dedup();
    assert!(
        spreads.len() > 40,
        "clients told the same instant must not wake together"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hint_too_long_for_the_clock_is_waited_out_not_a_panic() {
    // `Retry-After: 99999999999999999999` parses to u64::MAX seconds; no `Instant` reaches that.
    let op = Flaky::failing_with(1, TestError::Busy(Duration::MAX));
    let call = Retry::new(exact(3)).retry_if(classify).run(|| op.call());
    let year = Duration::from_secs(86_400 * 365);
    assert!(
        tokio::time::timeout(year, call).await.is_err(),
        "still waiting a year on"
    );
    assert_eq!(op.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hint_shorter_than_the_backoff_does_not_shorten_it() {
    let op = Flaky::failing_with(1, TestError::Busy(MS));
    Retry::new(exact(3))
        .retry_if(classify)
        .run(|| op.call())
        .await
        .unwrap();
    assert_eq!(op.gaps(), [100 * MS]);
}

#[tokio::test(start_paused = true)]
async fn a_hint_past_the_deadline_ends_the_call_at_once_with_that_error() {
    let op = Flaky::failing_with(u32::MAX, TestError::Busy(Duration::from_secs(30)));
    let started = Instant::now();
    let policy = exact(5).deadline(Duration::from_secs(10));
    let result = Retry::new(policy)
        .retry_if(classify)
        .run(|| op.call())
        .await;
    assert_eq!(result, Err(TestError::Busy(Duration::from_secs(30))));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(op.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hint_that_fits_the_deadline_is_waited_its_spread_trimmed_to_fit() {
    let hint = Duration::from_millis(9_950);
    for seed in 0..20 {
        let op = Flaky::failing_with(1, TestError::Busy(hint));
        let started = Instant::now();
        let policy = exact(5).deadline(Duration::from_secs(10)).seed(seed);
        let result = Retry::new(policy)
            .retry_if(classify)
            .run(|| op.call())
            .await;
        assert_eq!(result, Ok(2), "seed {seed}");
        let waited = op.gaps()[0];
        assert!(
            waited >= hint && started.elapsed() < Duration::from_secs(10),
            "{waited:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_hint_longer_than_max_hint_ends_the_call_and_one_within_it_is_waited() {
    let long = Flaky::failing_with(u32::MAX, TestError::Busy(Duration::from_secs(61)));
    let started = Instant::now();
    let policy = exact(5).max_hint(Duration::from_secs(60));
    let result = Retry::new(policy)
        .retry_if(classify)
        .run(|| long.call())
        .await;
    assert_eq!(result, Err(TestError::Busy(Duration::from_secs(61))));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(long.attempts(), 1);

    let within = Flaky::failing_with(1, TestError::Busy(Duration::from_secs(60)));
    Retry::new(policy)
        .retry_if(classify)
        .run(|| within.call())
        .await
        .unwrap();
    assert_eq!(within.attempts(), 2);
    assert!(within.gaps()[0] >= Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_its_timeout_is_abandoned_and_retried() {
    let calls = AtomicU32::new(0);
    let started = Instant::now();
    let policy = exact(2).timeout(Duration::from_secs(1));
    let result: Result<&str, TestError> = Retry::new(policy)
        .run(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok("second try")
        })
        .await;
    assert_eq!(result, Ok("second try"));
    assert_eq!(started.elapsed(), Duration::from_secs(1) + 100 * MS);
}

#[tokio::test(start_paused = true)]
async fn timeouts_count_as_breaker_failures_and_surface_as_errors() {
    let breaker = Breaker::new("exec-timeout", BreakerConfig::new().failure_threshold(10)).unwrap();
    let policy = exact(2).timeout(Duration::from_millis(50));
    let result: Result<(), TestError> = Retry::new(policy)
        .breaker(&breaker)
        .run(|| tokio::time::sleep(Duration::from_secs(1)).then_ok())
        .await;
    assert_eq!(
        result,
        Err(TestError::Runtime(Error::Timeout {
            attempt: 3,
            after: Duration::from_millis(50)
        }))
    );
    assert_eq!(breaker.status().failures, 3);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_never_slept_past() {
    let op = Flaky::new(u32::MAX);
    let started = Instant::now();
    // Waits of 100, 200, 400 ms end at 100, 300, 700 ms; the next (800 ms) would end at 1.5 s.
    let policy = exact(10).deadline(Duration::from_secs(1));
    let result = Retry::new(policy).run(|| op.call()).await;
    assert_eq!(result, Err(TestError::Flaky(0)));
    assert_eq!(op.attempts(), 4);
    assert_eq!(started.elapsed(), 700 * MS);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_a_running_attempt() {
    let started = Instant::now();
    let policy = exact(10)
        .timeout(Duration::from_secs(5))
        .deadline(Duration::from_secs(2));
    let result: Result<(), TestError> = Retry::new(policy)
        .run(|| tokio::time::sleep(Duration::from_secs(60)).then_ok())
        .await;
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            TestError::Runtime(Error::DeadlineExceeded { attempt: 1, .. })
        ),
        "{err:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_refuses_without_running_or_sleeping() {
    let config = BreakerConfig::new()
        .failure_threshold(2)
        .open_duration(Duration::from_secs(30));
    let breaker = Breaker::new("exec-open", config).unwrap();
    let op = Flaky::new(u32::MAX);
    let first = Retry::new(exact(5))
        .breaker(&breaker)
        .run(|| op.call())
        .await;
    // The second failure opened the breaker; the call gives back that failure rather than
    // sleeping only to be refused.
    assert_eq!(first, Err(TestError::Flaky(0)));
    assert_eq!(op.attempts(), 2);
    assert_eq!(breaker.state(), BreakerState::Open);

    let started = Instant::now();
    let second = Retry::new(exact(5))
        .breaker(&breaker)
        .run(|| op.call())
        .await;
    let Err(TestError::Runtime(refusal)) = second else {
        panic!("{second:?}")
    };
    assert!(refusal.is_rejected());
    assert_eq!(refusal.breaker(), Some("exec-open"));
    assert!(refusal.retry_in().unwrap() <= Duration::from_secs(30));
    assert_eq!((op.attempts(), started.elapsed()), (2, Duration::ZERO));
    assert_eq!(breaker.status().rejections, 1);

    // Not even the closure runs: the part before its future would be a side effect of a call
    // the breaker refused.
    let mut called = 0;
    let third: Result<(), TestError> = Retry::new(exact(5))
        .breaker(&breaker)
        .run(|| {
            called += 1;
            async { Ok(()) }
        })
        .await;
    assert!(matches!(third, Err(TestError::Runtime(e)) if e.is_rejected()));
    assert_eq!(called, 0);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_dropped_before_the_backoff_wait() {
    /// Stands for what a hanging attempt holds, a connection say; notes when it is let go.
    struct Held<'a>(&'a std::sync::Mutex<Vec<Instant>>);
    impl Drop for Held<'_> {
        fn drop(&mut self) {
            self.0.lock().unwrap().push(Instant::now());
        }
    }
    let released = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    let policy = exact(1)
        .timeout(Duration::from_secs(1))
        .base_delay(Duration::from_secs(10));
    let result: Result<(), TestError> = Retry::new(policy)
        .run(|| {
            let held = Held(&released);
            async move {
                let _held = held;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
        })
        .await;
    assert!(matches!(result, Err(TestError::Runtime(e)) if e.is_timeout()));
    // Each attempt let go when its timeout cut it, not at the end of the 10 s wait after it.
    let second_cut = started + Duration::from_secs(1 + 10 + 1);
    assert_eq!(
        *released.lock().unwrap(),
        [started + Duration::from_secs(1), second_cut]
    );
}

#[tokio::test(start_paused = true)]
async fn after_the_open_duration_one_probe_closes_the_breaker() {
    let config = BreakerConfig::new()
        .failure_threshold(1)
        .open_duration(Duration::from_secs(30));
    let breaker = Breaker::new("exec-recover", config).unwrap();
    let op = Flaky::new(1);
    assert!(
        Retry::new(exact(0))
            .breaker(&breaker)
            .run(|| op.call())
            .await
            .is_err()
    );
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(
        Retry::new(exact(0))
            .breaker(&breaker)
            .run(|| op.call())
            .await
            .is_err()
    );
    assert_eq!(op.attempts(), 1, "still open at 29 s");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        Retry::new(exact(0))
            .breaker(&breaker)
            .run(|| op.call())
            .await,
        Ok(2)
    );
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_retry_that_would_meet_an_open_breaker_stops() {
    // Threshold 3, ten retries: attempts 1-3 fail and the third opens the breaker, so the call
    // ends with that failure instead of waiting only to be refused.
    let config = BreakerConfig::new()
        .failure_threshold(3)
        .open_duration(Duration::from_secs(60));
    let breaker = Breaker::new("exec-midcall", config).unwrap();
    let op = Flaky::new(u32::MAX);
    let result = Retry::new(exact(10))
        .breaker(&breaker)
        .run(|| op.call())
        .await;
    assert_eq!(result, Err(TestError::Flaky(0)));
    assert_eq!(op.attempts(), 3);
}

trait ThenOk: std::future::Future<Output = ()> + Sized {
    async fn then_ok(self) -> Result<(), TestError> {
        self.await;
        Ok(())
    }
}

impl<F: std::future::Future<Output = ()>> ThenOk for F {}

#[tokio::test(start_paused = true)]
async fn a_policy_that_cannot_work_is_a_typed_error_and_runs_nothing() {
    let op = Flaky::new(0);
    let zero_timeout = exact(3).timeout(Duration::ZERO);
    let result = Retry::new(zero_timeout).run(|| op.call()).await;
    let Err(TestError::Runtime(error)) = result else {
        panic!("{result:?}")
    };
    assert!(matches!(error, resilient_runtime::Error::InvalidPolicy(_)));
    assert!(std::error::Error::source(&error).is_some());
    assert_eq!(op.attempts(), 0);
}
