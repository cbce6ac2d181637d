//! What functions under `#[resilient]` do when called: attempts, delays, breakers, policies,
//! classifiers and arguments, all on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use resilient::{BreakerConfig, BreakerState, RetryPolicy, Verdict, resilient};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
enum CallError {
    Busy,
    NotFound,
    Throttled(Duration),
    Resilience(resilient::Error),
}

impl From<resilient::Error> for CallError {
    fn from(error: resilient::Error) -> Self {
        CallError::Resilience(error)
    }
}

/// Fails with `Busy` until `succeed_on` attempts have run, counting them in `attempts`.
async fn flaky(attempts: &AtomicU32, succeed_on: u32) -> Result<u32, CallError> {
    let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if attempt >= succeed_on {
        Ok(attempt)
    } else {
        Err(CallError::Busy)
    }
}

#[resilient(retries = 3, jitter = "none", base_delay = "10ms")]
async fn three_retries(attempts: &AtomicU32, succeed_on: u32) -> Result<u32, CallError> {
    flaky(attempts, succeed_on).await
}

#[tokio::test(start_paused = true)]
async fn retries_until_success() {
    let attempts = AtomicU32::new(0);
    assert_eq!(three_retries(&attempts, 3).await, Ok(3));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_the_last_retry_with_the_last_error() {
    let attempts = AtomicU32::new(0);
    assert_eq!(three_retries(&attempts, 100).await, Err(CallError::Busy));
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
}

#[resilient(retries = 0)]
async fn no_retries(attempts: &AtomicU32) -> Result<u32, CallError> {
    flaky(attempts, 2).await
}

#[tokio::test(start_paused = true)]
async fn zero_retries_means_one_attempt() {
    let attempts = AtomicU32::new(0);
    assert_eq!(no_retries(&attempts).await, Err(CallError::Busy));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[resilient(
    retries = 4,
    jitter = "none",
    base_delay = "100ms",
    max_delay = "300ms"
)]
async fn timed(starts: &std::sync::Mutex<Vec<Instant>>) -> Result<(), CallError> {
    starts.lock().unwrap().push(Instant::now());
    Err(CallError::Busy)
}

#[tokio::test(start_paused = true)]
async fn delays_without_jitter_are_exact() {
    let starts = std::sync::Mutex::new(Vec::new());
    assert_eq!(timed(&starts).await, Err(CallError::Busy));
    let starts = starts.into_inner().unwrap();
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    let ms = Duration::from_millis;
    assert_eq!(gaps, [ms(100), ms(200), ms(300), ms(300)]);
}

#[resilient(retries = 6, jitter = "full", base_delay = "100ms", max_delay = "1s")]
async fn full_jitter(starts: &std::sync::Mutex<Vec<Instant>>) -> Result<(), CallError> {
    starts.lock().unwrap().push(Instant::now());
    Err(CallError::Busy)
}

#[resilient(retries = 6, jitter = "equal", base_delay = "100ms", max_delay = "1s")]
async fn equal_jitter(starts: &std::sync::Mutex<Vec<Instant>>) -> Result<(), CallError> {
    starts.lock().unwrap().push(Instant::now());
    Err(CallError::Busy)
}

#[resilient(
    retries = 6,
    jitter = "decorrelated",
    base_delay = "100ms",
    max_delay = "1s"
)]
async fn decorrelated_jitter(starts: &std::sync::Mutex<Vec<Instant>>) -> Result<(), CallError> {
    starts.lock().unwrap().push(Instant::now());
    Err(CallError::Busy)
}

fn gaps(starts: std::sync::Mutex<Vec<Instant>>) -> Vec<Duration> {
    let starts = starts.into_inner().unwrap();
    assert_eq!(starts.len(), 7);
    starts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_stay_within_their_bounds() {
    let ms = Duration::from_millis;
    for _ in 0..20 {
        let starts = std::sync::Mutex::new(Vec::new());
        let _ = full_jitter(&starts).await;
        for (k, gap) in gaps(starts).into_iter().enumerate() {
            let ceiling = (ms(100) * 2u32.pow(k as u32)).min(ms(1000));
            assert!(gap <= ceiling, "full jitter: retry {k} waited {gap:?}");
        }

        let starts = std::sync::Mutex::new(Vec::new());
        let _ = equal_jitter(&starts).await;
        for (k, gap) in gaps(starts).into_iter().enumerate() {
            let ceiling = (ms(100) * 2u32.pow(k as u32)).min(ms(1000));
            assert!(
                gap >= ceiling / 2 && gap <= ceiling,
                "equal jitter: retry {k}: {gap:?}"
            );
        }

        let starts = std::sync::Mutex::new(Vec::new());
        let _ = decorrelated_jitter(&starts).await;
        for gap in gaps(starts) {
            assert!(
                gap >= ms(100) && gap <= ms(1000),
                "decorrelated jitter: {gap:?}"
            );
        }
    }
}

mod billing {
    use super::*;

    #[resilient(retries = 0, breaker = "attribute-shared")]
    pub async fn charge(fail: bool, runs: &AtomicU32) -> Result<(), CallError> {
        runs.fetch_add(1, Ordering::SeqCst);
        if fail { Err(CallError::Busy) } else { Ok(()) }
    }
}

mod invoices {
    use super::*;

    #[resilient(retries = 0, breaker = "attribute-shared")]
    pub async fn send(runs: &AtomicU32) -> Result<(), CallError> {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn functions_in_two_modules_share_a_breaker_by_name() {
    let config = BreakerConfig::new()
        .failure_threshold(2)
        .open_duration(Duration::from_secs(30));
    resilient::configure_breaker("attribute-shared", config).unwrap();
    let runs = AtomicU32::new(0);

    assert_eq!(billing::charge(true, &runs).await, Err(CallError::Busy));
    assert_eq!(billing::charge(true, &runs).await, Err(CallError::Busy));
    assert_eq!(
        resilient::breaker("attribute-shared").state(),
        BreakerState::Open
    );

    // The failures in `billing` opened the breaker `invoices` goes through: its body never runs.
    let refused = invoices::send(&runs).await.unwrap_err();
    assert!(
        matches!(&refused, CallError::Resilience(e) if e.is_rejected()),
        "{refused:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(invoices::send(&runs).await, Ok(()));
    assert_eq!(
        resilient::breaker("attribute-shared").state(),
        BreakerState::Closed
    );
}

#[resilient(retries = 5, breaker = "attribute-open")]
async fn behind_open_breaker(runs: &AtomicU32) -> Result<(), CallError> {
    runs.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_rejects_without_running_the_body() {
    let breaker =
        resilient::configure_breaker("attribute-open", BreakerConfig::new().failure_threshold(1))
            .unwrap();
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), BreakerState::Open);

    let runs = AtomicU32::new(0);
    let started = Instant::now();
    let error = behind_open_breaker(&runs).await.unwrap_err();
    let CallError::Resilience(error) = error else {
        panic!("{error:?}")
    };
    assert!(error.is_rejected());
    assert_eq!(error.breaker(), Some("attribute-open"));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[resilient(policy = "attribute-policy", jitter = "none", base_delay = "10ms")]
async fn under_named_policy(attempts: &AtomicU32) -> Result<u32, CallError> {
    flaky(attempts, u32::MAX).await
}

#[tokio::test(start_paused = true)]
async fn a_named_policy_is_read_on_every_call_and_keys_override_it() {
    let named = RetryPolicy::new()
        .retries(1)
        .base_delay(Duration::from_secs(5));
    resilient::configure_policy("attribute-policy", named).unwrap();
    let attempts = AtomicU32::new(0);
    let started = Instant::now();
    assert_eq!(under_named_policy(&attempts).await, Err(CallError::Busy));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    // `base_delay` on the attribute overrides the policy's 5 s; `jitter = "none"` makes it exact.
    assert_eq!(started.elapsed(), Duration::from_millis(10));

    resilient::configure_policy("attribute-policy", named.retries(3)).unwrap();
    let attempts = AtomicU32::new(0);
    let started = Instant::now();
    assert_eq!(under_named_policy(&attempts).await, Err(CallError::Busy));
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert_eq!(started.elapsed(), Duration::from_millis(10 + 20 + 40));
}

fn is_transient(error: &CallError) -> bool {
    matches!(error, CallError::Busy)
}

#[resilient(retries = 3, jitter = "none", base_delay = "1ms", retry_if = is_transient)]
async fn with_bool_classifier(attempts: &AtomicU32, error: CallError) -> Result<(), CallError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(error)
}

#[tokio::test(start_paused = true)]
async fn retry_if_with_a_bool_stops_at_permanent_errors() {
    let attempts = AtomicU32::new(0);
    let result = with_bool_classifier(&attempts, CallError::NotFound).await;
    assert_eq!(result, Err(CallError::NotFound));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);

    let attempts = AtomicU32::new(0);
    let result = with_bool_classifier(&attempts, CallError::Busy).await;
    assert_eq!(result, Err(CallError::Busy));
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
}

mod classify {
    use super::*;

    pub fn verdict(error: &CallError) -> Verdict {
        match error {
            CallError::Throttled(wait) => Verdict::RetryAfter(*wait),
            CallError::NotFound => Verdict::Permanent,
            _ => Verdict::Transient,
        }
    }
}

#[resilient(retries = 1, jitter = "none", base_delay = "1ms", retry_if = classify::verdict)]
async fn with_verdict_classifier(attempts: &AtomicU32) -> Result<u32, CallError> {
    let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if attempt == 1 {
        Err(CallError::Throttled(Duration::from_secs(2)))
    } else {
        Ok(attempt)
    }
}

#[tokio::test(start_paused = true)]
async fn retry_if_with_a_verdict_honours_retry_after() {
    let attempts = AtomicU32::new(0);
    let started = Instant::now();
    assert_eq!(with_verdict_classifier(&attempts).await, Ok(2));
    let waited = started.elapsed();
    // At least the hint, plus at most a tenth of it as spread.
    assert!(
        waited >= Duration::from_secs(2) && waited <= Duration::from_millis(2_200),
        "{waited:?}"
    );
}

struct Session {
    attempts: u32,
    log: Vec<String>,
}

impl Session {
    #[resilient(retries = 3, jitter = "none", base_delay = "1ms")]
    async fn send(&mut self, message: String) -> Result<usize, CallError> {
        self.attempts += 1;
        self.log.push(message);
        if self.attempts < 3 {
            return Err(CallError::Busy);
        }
        Ok(self.log.len())
    }
}

#[tokio::test(start_paused = true)]
async fn a_mut_self_method_mutates_on_every_attempt() {
    let mut session = Session {
        attempts: 0,
        log: Vec::new(),
    };
    assert_eq!(session.send("hello".to_owned()).await, Ok(3));
    assert_eq!(session.attempts, 3);
    assert_eq!(session.log, ["hello", "hello", "hello"]);
}

#[resilient(retries = 2, jitter = "none", base_delay = "1ms")]
async fn consume(
    attempts: &AtomicU32,
    name: String,
    mut items: Vec<u32>,
    (left, right): (String, String),
) -> Result<String, CallError> {
    let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    items.push(attempt);
    let joined = format!("{name}:{items:?}:{left}{right}");
    drop(name);
    drop(left);
    drop(right);
    if attempt < 3 {
        Err(CallError::Busy)
    } else {
        Ok(joined)
    }
}

#[tokio::test(start_paused = true)]
async fn every_attempt_gets_its_own_copy_of_owned_arguments() {
    let attempts = AtomicU32::new(0);
    let pair = ("l".to_owned(), "r".to_owned());
    let result = consume(&attempts, "n".to_owned(), vec![7], pair).await;
    // Each attempt pushed onto a fresh clone of `[7]`, not onto the previous attempt's vector.
    assert_eq!(result, Ok("n:[7, 3]:lr".to_owned()));
}

fn append(buffer: &mut Vec<u32>, value: u32) {
    buffer.push(value);
}

#[resilient(retries = 2, jitter = "none", base_delay = "1ms")]
async fn changed_and_captured(
    attempts: &AtomicU32,
    mut buffer: Vec<u32>,
    label: String,
    out: &mut Vec<String>,
) -> Result<String, CallError> {
    let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    // Changed only through `&mut`, and read only inside a `move` block: each still needs its
    // own copy per attempt.
    append(&mut buffer, attempt);
    let shown = async move { format!("{}:{:?}", &label, &buffer) }.await;
    // A `&mut` argument moved into a binding of its own, as a by-value writer would take it.
    let sink = out;
    sink.push(shown.clone());
    if attempt < 3 {
        Err(CallError::Busy)
    } else {
        Ok(shown)
    }
}

#[tokio::test(start_paused = true)]
async fn changes_and_move_blocks_see_the_callers_arguments_on_every_attempt() {
    let attempts = AtomicU32::new(0);
    let mut out = Vec::new();
    let result = changed_and_captured(&attempts, vec![7], "l".to_owned(), &mut out).await;
    assert_eq!(result, Ok("l:[7, 3]".to_owned()));
    assert_eq!(out, ["l:[7, 1]", "l:[7, 2]", "l:[7, 3]"]);
}

#[resilient(
    retries = 5,
    jitter = "none",
    base_delay = "1ms",
    breaker = "attribute-spawn"
)]
async fn spawned(attempts: Arc<AtomicU32>, text: String) -> Result<String, CallError> {
    let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::task::yield_now().await;
    if attempt < 3 {
        Err(CallError::Busy)
    } else {
        Ok(text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_future_can_be_spawned_on_a_multi_threaded_runtime() {
    let attempts = Arc::new(AtomicU32::new(0));
    let task = tokio::spawn(spawned(attempts.clone(), "sent".to_owned()));
    assert_eq!(task.await.unwrap(), Ok("sent".to_owned()));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[resilient(retries = 2, jitter = "none", base_delay = "1s", timeout = "5s")]
async fn slow(attempts: &AtomicU32) -> Result<(), CallError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn timeout_cuts_every_attempt() {
    let attempts = AtomicU32::new(0);
    let started = Instant::now();
    let error = slow(&attempts).await.unwrap_err();
    assert!(
        matches!(&error, CallError::Resilience(e) if e.is_timeout()),
        "{error:?}"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(started.elapsed(), Duration::from_secs(5 + 1 + 5 + 2 + 5));
}

#[resilient(retries = 10, jitter = "none", base_delay = "1s", deadline = "4s")]
async fn bounded(attempts: &AtomicU32) -> Result<(), CallError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    Err(CallError::Busy)
}

#[tokio::test(start_paused = true)]
async fn deadline_bounds_the_whole_call() {
    let attempts = AtomicU32::new(0);
    let started = Instant::now();
    let error = bounded(&attempts).await.unwrap_err();
    // 1.5 s attempt, 1 s wait, 1.5 s attempt: the next 2 s wait would pass the 4 s deadline.
    assert_eq!(error, CallError::Busy);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() <= Duration::from_secs(4));
}

#[resilient(retries = 2, jitter = "none", base_delay = "1ms")]
async fn early_return_and_question_mark(
    attempts: &AtomicU32,
    input: &str,
) -> Result<u32, CallError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    if input.is_empty() {
        return Err(CallError::NotFound);
    }
    let number: u32 = input.parse().map_err(|_| CallError::Busy)?;
    Ok(number)
}

#[tokio::test(start_paused = true)]
async fn return_and_question_mark_end_one_attempt() {
    let attempts = AtomicU32::new(0);
    assert_eq!(
        early_return_and_question_mark(&attempts, "").await,
        Err(CallError::NotFound)
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let attempts = AtomicU32::new(0);
    assert_eq!(
        early_return_and_question_mark(&attempts, "x").await,
        Err(CallError::Busy)
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(
        early_return_and_question_mark(&attempts, "42").await,
        Ok(42)
    );
}
