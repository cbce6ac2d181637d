//! The retry loop: ask the breaker, run the attempt, classify, record, wait, again.

use std::fmt::Debug;
use std::future::Future;
use std::ops::ControlFlow;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::breaker::{Breaker, Outcome};
use crate::classify::{AlwaysTransient, Classify, Verdict};
use crate::clock;
use crate::error::Error;
use crate::policy::RetryPolicy;

/// Runs an operation under a retry policy and, optionally, a circuit breaker.
///
/// Retry is outside the breaker: every attempt asks the breaker first and is recorded by it, and
/// a refusal ends the call at once, with no sleep and no further attempt.
///
/// ```
/// use std::time::Duration;
/// use resilient_runtime::{Jitter, Retry, RetryPolicy, Verdict};
///
/// #[derive(Debug)]
/// enum FetchError { Busy, NotFound, Resilience(resilient_runtime::Error) }
///
/// impl From<resilient_runtime::Error> for FetchError {
///     fn from(e: resilient_runtime::Error) -> Self { FetchError::Resilience(e) }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let policy = RetryPolicy::new().retries(2).jitter(Jitter::None).base_delay(Duration::from_millis(10));
/// let breaker = resilient_runtime::breaker("docs-fetch");
/// let mut attempts = 0;
/// let result: Result<&str, FetchError> = Retry::new(policy)
///     .breaker(&breaker)
///     .retry_if(|e: &FetchError| !matches!(e, FetchError::NotFound))
///     .run(|| {
///         attempts += 1;
///         let busy = attempts < 3;
///         async move { if busy { Err(FetchError::Busy) } else { Ok("done") } }
///     })
///     .await;
/// assert_eq!(result.unwrap(), "done");
/// assert_eq!(attempts, 3);
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a Retry does nothing until `run` is awaited"]
pub struct Retry<'a, C = AlwaysTransient> {
    policy: RetryPolicy,
    breaker: Option<&'a Breaker>,
    classifier: C,
    operation: &'static str,
}

impl<'a> Retry<'a> {
    /// Retries under `policy`, with no breaker, treating every error as transient.
    pub fn new(policy: RetryPolicy) -> Self {
        Retry {
            policy,
            breaker: None,
            classifier: AlwaysTransient,
            operation: "",
        }
    }
}

impl<'a, C> Retry<'a, C> {
    /// Runs every attempt through `breaker`.
    pub fn breaker(mut self, breaker: &'a Breaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Decides which errors are transient: `classifier` returns a `bool` or a [`Verdict`].
    pub fn retry_if<D>(self, classifier: D) -> Retry<'a, D> {
        Retry {
            policy: self.policy,
            breaker: self.breaker,
            classifier,
            operation: self.operation,
        }
    }

    /// Names the operation in log events.
    pub fn operation(mut self, name: &'static str) -> Self {
        self.operation = name;
        self
    }

    /// Runs `op` until it succeeds, fails permanently, runs out of retries or time, or the
    /// breaker refuses. Returns the last error when it gives up.
    pub async fn run<T, E, F, Fut>(self, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error> + Debug,
        C: Classify<E>,
    {
        let mut call =
            Call::new(self.policy, self.breaker, self.classifier).operation(self.operation);
        loop {
            if let ControlFlow::Break(result) = call.attempt(op()).await {
                return result;
            }
        }
    }
}

/// One call's progress through its attempts: the engine under [`Retry`] and the
/// `#[resilient]` attribute, for loops that cannot be written as a closure (a body that borrows
/// `&mut self`, say).
///
/// ```
/// use std::ops::ControlFlow;
/// use resilient_runtime::{AlwaysTransient, Call, RetryPolicy};
///
/// struct Counter { calls: u32 }
///
/// impl Counter {
///     async fn bump(&mut self) -> Result<u32, resilient_runtime::Error> {
///         let mut call = Call::new(RetryPolicy::new(), None, AlwaysTransient);
///         loop {
///             // The attempt borrows `self` mutably; the borrow ends with the attempt.
///             let attempt = async { self.calls += 1; Ok(self.calls) };
///             if let ControlFlow::Break(result) = call.attempt(attempt).await {
///                 return result;
///             }
///         }
///     }
/// }
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// assert_eq!(Counter { calls: 0 }.bump().await.unwrap(), 1);
/// # });
/// ```
#[derive(Debug)]
pub struct Call<'a, C> {
    policy: RetryPolicy,
    breaker: Option<&'a Breaker>,
    classifier: C,
    operation: &'static str,
    attempts: u32,
    started: Option<Instant>,
    backoff: Backoff,
    rng: Option<SmallRng>,
}

impl<'a, C> Call<'a, C> {
    /// Starts a call. The deadline, if the policy has one, runs from here.
    #[inline]
    pub fn new(policy: RetryPolicy, breaker: Option<&'a Breaker>, classifier: C) -> Self {
        Call {
            started: policy.deadline.map(|_| Instant::now()),
            backoff: Backoff::new(&policy),
            policy,
            breaker,
            classifier,
            operation: "",
            attempts: 0,
            rng: None,
        }
    }

    /// Names the operation in log events.
    #[inline]
    pub fn operation(mut self, name: &'static str) -> Self {
        self.operation = name;
        self
    }

    /// How many attempts have started.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Runs one attempt. `Break` carries the call's result; `Continue` means the backoff wait is
    /// over and the next attempt may start.
    ///
    /// The future `attempt` is not polled when the breaker refuses.
    pub async fn attempt<T, E, F>(&mut self, attempt: F) -> ControlFlow<Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
        E: From<Error> + Debug,
        C: Classify<E>,
    {
        self.attempts = self.attempts.saturating_add(1);
        let mut permit = match self.breaker.map(|b| b.acquire_with(clock::now)).transpose() {
            Ok(permit) => permit,
            Err(rejected) => {
                tracing::debug!(
                    operation = self.operation,
                    attempt = self.attempts,
                    error = %rejected,
                    "call refused by circuit breaker"
                );
                return ControlFlow::Break(Err(rejected.into()));
            }
        };

        let (error, hint) = match self.run_bounded(attempt).await {
            Ok(Ok(value)) => {
                if let Some(permit) = permit.take() {
                    permit.finish(Outcome::Success);
                }
                return ControlFlow::Break(Ok(value));
            }
            Ok(Err(error)) => match self.classifier.classify(&error) {
                Verdict::Permanent => {
                    if let Some(permit) = permit.take() {
                        permit.finish(Outcome::Ignored);
                    }
                    return ControlFlow::Break(Err(error));
                }
                Verdict::Transient => (error, None),
                Verdict::RetryAfter(hint) => (error, Some(hint)),
            },
            Err(ran_out) => {
                if let Some(permit) = permit.take() {
                    permit.finish(Outcome::Failure);
                }
                if matches!(ran_out, Error::DeadlineExceeded { .. }) {
                    return ControlFlow::Break(Err(ran_out.into()));
                }
                (ran_out.into(), None)
            }
        };
        if let Some(permit) = permit.take() {
            permit.finish(Outcome::Failure);
        }
        self.wait_before_retry(error, hint).await
    }

    /// The attempt, cut at the per-attempt timeout or the call's deadline, whichever is first.
    #[inline]
    async fn run_bounded<F: Future>(&self, attempt: F) -> Result<F::Output, Error> {
        let (limit, cut) = match (self.policy.timeout, self.time_left()) {
            (None, None) => return Ok(attempt.await),
            (Some(timeout), None) => (timeout, Cut::Timeout),
            (None, Some(left)) => (left, Cut::Deadline),
            (Some(timeout), Some(left)) if left < timeout => (left, Cut::Deadline),
            (Some(timeout), Some(_)) => (timeout, Cut::Timeout),
        };
        tokio::time::timeout(limit, attempt)
            .await
            .map_err(|_| match cut {
                Cut::Timeout => Error::Timeout {
                    attempt: self.attempts,
                    after: limit,
                },
                Cut::Deadline => Error::DeadlineExceeded {
                    attempt: self.attempts,
                    deadline: self.policy.deadline.unwrap_or(limit),
                },
            })
    }

    fn time_left(&self) -> Option<Duration> {
        let deadline = self.policy.deadline?;
        let started = self.started?;
        Some(deadline.saturating_sub(started.elapsed()))
    }

    async fn wait_before_retry<T, E: Debug>(
        &mut self,
        error: E,
        hint: Option<Duration>,
    ) -> ControlFlow<Result<T, E>> {
        if self.attempts > self.policy.retries {
            tracing::debug!(
                operation = self.operation,
                attempts = self.attempts,
                error = ?error,
                "giving up: retries exhausted"
            );
            return ControlFlow::Break(Err(error));
        }
        let rng = self.rng.get_or_insert_with(|| match self.policy.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => rand::make_rng(),
        });
        let mut delay = self.backoff.next_delay(rng);
        if let Some(hint) = hint {
            // At least what the server asked for, plus a little spread so that every client told
            // the same instant does not come back at that instant.
            let spread = (hint / 10).clamp(Duration::from_millis(1), Duration::from_secs(1));
            delay = delay.max(hint.saturating_add(rng.random_range(Duration::ZERO..=spread)));
        }
        if let Some(left) = self.time_left()
            && delay >= left
        {
            tracing::debug!(
                operation = self.operation,
                attempt = self.attempts,
                delay_ms = delay.as_millis() as u64,
                left_ms = left.as_millis() as u64,
                error = ?error,
                "giving up: the next wait would pass the deadline"
            );
            return ControlFlow::Break(Err(error));
        }
        if let Some(breaker) = self.breaker
            && breaker.next_probe_in().is_some_and(|wait| wait > delay)
        {
            // The breaker would refuse the retry anyway: give the caller the real error now
            // instead of a refusal after a pointless wait.
            tracing::debug!(
                operation = self.operation,
                attempt = self.attempts,
                breaker = breaker.name(),
                error = ?error,
                "giving up: circuit breaker is open"
            );
            return ControlFlow::Break(Err(error));
        }
        tracing::debug!(
            operation = self.operation,
            attempt = self.attempts,
            delay_ms = delay.as_secs_f64() * 1_000.0,
            hinted = hint.is_some(),
            error = ?error,
            "retrying"
        );
        tokio::time::sleep(delay).await;
        ControlFlow::Continue(())
    }
}

#[derive(Clone, Copy)]
enum Cut {
    Timeout,
    Deadline,
}
