//! The retry loop: ask the breaker, run the attempt, classify, record, wait, again.

use std::fmt::{self, Debug};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::time::{Instant, Sleep};

use crate::backoff::Backoff;
use crate::breaker::{Breaker, Outcome, Permit};
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
/// let policy = RetryPolicy::new()
///     .retries(2)
///     .jitter(Jitter::None)
///     .base_delay(Duration::from_millis(10));
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
    ///
    /// `op` is called once per attempt, after the breaker has admitted that attempt. A policy
    /// that cannot work ([`RetryPolicy::validate`]) ends the call with
    /// [`Error::InvalidPolicy`] before anything runs.
    pub async fn run<T, E, F, Fut>(self, mut op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error> + Debug,
        C: Classify<E>,
    {
        if let Err(invalid) = self.policy.validate() {
            return Err(Error::InvalidPolicy(invalid).into());
        }
        let mut call =
            Call::new(&self.policy, self.breaker, self.classifier).operation(self.operation);
        loop {
            // `op` is called inside the attempt, so only once the breaker has admitted it: a
            // refused call runs none of the closure, not even the part before its future.
            let attempt = async { op().await };
            if let ControlFlow::Break(result) = call.attempt(attempt).await {
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
///         let policy = RetryPolicy::new();
///         let mut call = Call::new(&policy, None, AlwaysTransient);
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
    policy: &'a RetryPolicy,
    breaker: Option<&'a Breaker>,
    classifier: C,
    operation: &'static str,
    attempts: u32,
    started: Option<Instant>,
    /// The timer and the backoff sequence, made the first time the call needs them: a call whose
    /// attempt succeeds without waiting never pays for them, even under a timeout, and dropping
    /// it checks one slot.
    slow: SlowSlot,
    /// What cuts the running attempt, and after how long, if anything does.
    bound_now: Option<(Duration, Cut)>,
    /// When the running attempt is cut, until the timer is armed for it: only an attempt that
    /// has to wait needs the timer, so one that finishes on its first poll never makes it.
    cut_at: Option<Instant>,
}

impl<'a, C> Call<'a, C> {
    /// Starts a call. The deadline, if the policy has one, runs from here.
    #[inline]
    pub fn new(policy: &'a RetryPolicy, breaker: Option<&'a Breaker>, classifier: C) -> Self {
        Call {
            started: policy.deadline.map(|_| Instant::now()),
            policy,
            breaker,
            classifier,
            operation: "",
            attempts: 0,
            slow: SlowSlot(ManuallyDrop::new(None)),
            bound_now: None,
            cut_at: None,
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
    /// The breaker is asked when the returned future is first polled; `attempt` is not polled at
    /// all when the breaker refuses.
    #[inline]
    pub fn attempt<F>(&mut self, attempt: F) -> Attempt<'_, 'a, C, F> {
        Attempt {
            call: self,
            attempt: Some(attempt),
            permit: None,
            phase: Phase::Start,
        }
    }

    /// How long the next attempt may run, and what cuts it, if anything does.
    #[inline]
    fn bound(&self) -> Option<(Duration, Cut)> {
        match (self.policy.timeout, self.time_left()) {
            (None, None) => None,
            (Some(timeout), None) => Some((timeout, Cut::Timeout)),
            (None, Some(left)) => Some((left, Cut::Deadline)),
            (Some(timeout), Some(left)) if left < timeout => Some((left, Cut::Deadline)),
            (Some(timeout), Some(_)) => Some((timeout, Cut::Timeout)),
        }
    }

    fn time_left(&self) -> Option<Duration> {
        let deadline = self.policy.deadline?;
        let started = self.started?;
        Some(deadline.saturating_sub(started.elapsed()))
    }

    /// Sets the call's one timer to fire after `wait`. It lives on the heap, made the first time
    /// the call needs one and reused after: a timer held in place would make every call's future
    /// larger, and so the success path of calls that never wait slower.
    fn arm(&mut self, wait: Duration) {
        self.arm_at(after(wait));
    }

    /// Sets the call's one timer to fire at `at`.
    fn arm_at(&mut self, at: Instant) {
        let slow = self.slow.0.get_or_insert_with(|| Box::pin(Slow::default()));
        let mut timer = slow.as_mut().project().timer;
        match timer.as_mut().as_pin_mut() {
            Some(armed) => armed.reset(at),
            None => timer.set(Some(tokio::time::sleep_until(at))),
        }
    }

    /// Notes what cuts the attempt about to start, and when. The clock is read before the
    /// attempt first runs, so the time its first poll takes counts against its timeout.
    #[inline(never)]
    fn start_timer(&mut self) {
        self.bound_now = self.bound();
        self.cut_at = self.bound_now.map(|(limit, _)| after(limit));
    }

    /// Whether the running attempt's time is up, arming the timer the first time it waits.
    fn poll_cut(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(at) = self.cut_at.take() {
            self.arm_at(at);
        }
        self.poll_timer(cx)
    }

    /// The error for an attempt cut after `limit`.
    #[cold]
    fn ran_out(&self, limit: Duration, cut: Cut) -> Error {
        let attempt = self.attempts;
        match cut {
            Cut::Timeout => Error::Timeout {
                attempt,
                after: limit,
            },
            Cut::Deadline => Error::DeadlineExceeded {
                attempt,
                deadline: self.policy.deadline.unwrap_or(limit),
            },
        }
    }

    /// The caller's error for a refusal by the breaker.
    #[cold]
    fn refused<E: From<Error>>(&self, refused: Error) -> E {
        tracing::debug!(
            operation = self.operation,
            attempt = self.attempts,
            error = %refused,
            "call refused by circuit breaker"
        );
        refused.into()
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let timer = self
            .slow
            .0
            .as_mut()
            .and_then(|slow| slow.as_mut().project().timer.as_pin_mut());
        timer.map_or(Poll::Ready(()), |timer| timer.poll(cx))
    }

    /// What a failed or cut attempt means for the call: give up with its error, or wait (the
    /// timer is armed) and try again. Healthy calls never come here.
    #[cold]
    fn failed<E>(&mut self, permit: Option<Permit<'a>>, failure: Failure<E>) -> Step<E>
    where
        E: From<Error> + Debug,
        C: Classify<E>,
    {
        let (error, verdict, give_up_now) = match failure {
            Failure::Returned(error) => {
                let verdict = self.classifier.classify(&error);
                (error, verdict, false)
            }
            Failure::Cut(ran_out) => {
                let deadline_passed = matches!(ran_out, Error::DeadlineExceeded { .. });
                (E::from(ran_out), Verdict::Transient, deadline_passed)
            }
        };
        let hint = match verdict {
            Verdict::Permanent => {
                if let Some(permit) = permit {
                    permit.finish(Outcome::Ignored);
                }
                return Step::GiveUp(error);
            }
            Verdict::Transient => None,
            Verdict::RetryAfter(hint) => Some(hint),
        };
        if let Some(permit) = permit {
            permit.finish(Outcome::Failure);
        }
        if give_up_now {
            return Step::GiveUp(error);
        }
        match self.next_wait(&error, hint) {
            Some(delay) => {
                self.arm(delay);
                Step::Wait
            }
            None => Step::GiveUp(error),
        }
    }

    /// The wait before the next attempt, or `None` when the call should end with `error`.
    fn next_wait<E: Debug>(&mut self, error: &E, hint: Option<Duration>) -> Option<Duration> {
        let (operation, attempt) = (self.operation, self.attempts);
        if attempt > self.policy.retries {
            tracing::debug!(
                operation,
                attempts = attempt,
                ?error,
                "giving up: retries exhausted"
            );
            return None;
        }
        let policy = self.policy;
        let left = self.time_left();
        let slow = self.slow.0.get_or_insert_with(|| Box::pin(Slow::default()));
        let (backoff, rng) = slow.as_mut().project().backoff.get_or_insert_with(|| {
            let rng = match policy.seed {
                Some(seed) => SmallRng::seed_from_u64(seed),
                None => rand::make_rng(),
            };
            (Backoff::new(policy), rng)
        });
        let mut delay = backoff.next_delay(rng);
        if let (Some(hint), Some(max_hint)) = (hint, policy.max_hint)
            && hint > max_hint
        {
            tracing::debug!(
                operation,
                attempt,
                hint_ms = millis(hint),
                max_hint_ms = millis(max_hint),
                ?error,
                "giving up: the server asks for a longer wait than max_hint"
            );
            return None;
        }
        if let Some(hint) = hint {
            // At least what the server asked for, plus a little spread so that every client told
            // the same instant does not come back at that instant. The spread never pushes a
            // hint that fits the deadline past it.
            let mut spread = (hint / 10).clamp(Duration::from_millis(1), Duration::from_secs(1));
            if let Some(room) = left.and_then(|left| left.checked_sub(hint)) {
                spread = spread.min(room.saturating_sub(Duration::from_nanos(1)));
            }
            delay = delay.max(hint.saturating_add(rng.random_range(Duration::ZERO..=spread)));
        }
        let delay_ms = millis(delay);
        if let Some(left) = left
            && delay >= left
        {
            let left_ms = millis(left);
            tracing::debug!(
                operation,
                attempt,
                delay_ms,
                left_ms,
                ?error,
                "giving up: the next wait would pass the deadline"
            );
            return None;
        }
        if let Some(breaker) = self.breaker
            && breaker.next_probe_in().is_some_and(|wait| wait > delay)
        {
            // The breaker would refuse the retry anyway: give the caller the real error now
            // instead of a refusal after a pointless wait.
            let breaker = breaker.name();
            tracing::debug!(
                operation,
                attempt,
                breaker,
                ?error,
                "giving up: circuit breaker is open"
            );
            return None;
        }
        let hinted = hint.is_some();
        tracing::debug!(operation, attempt, delay_ms, hinted, ?error, "retrying");
        Some(delay)
    }
}

/// About 30 years: what tokio's own `sleep` falls back to for a wait that overflows an `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The instant `wait` from now. A server may ask for any wait (`Retry-After:
/// 99999999999999999999`); past what an `Instant` can hold, it is as far out as tokio sets its
/// own timers.
fn after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

/// Milliseconds to the microsecond, for log fields: `131.027`, not `131.02693200000002`.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1_000.0
}

pin_project! {
    /// The parts of a call that only waiting needs, in one allocation.
    #[derive(Debug, Default)]
    struct Slow {
        #[pin]
        timer: Option<Sleep>,
        backoff: Option<(Backoff, SmallRng)>,
    }
}

/// Where a call keeps its [`Slow`] parts once it needs them.
///
/// Its drop is one test inlined into the call, with the timer's teardown out of line: as a plain
/// `Option`, the whole teardown made dropping a `Call` too large to inline, and every healthy
/// call paid for a function call to find the slot empty. (`ManuallyDrop` only keeps the compiler
/// from dropping the slot a second time; `drop` empties it.)
#[derive(Debug)]
struct SlowSlot(ManuallyDrop<Option<Pin<Box<Slow>>>>);

impl Drop for SlowSlot {
    #[inline(always)]
    fn drop(&mut self) {
        if self.0.is_some() {
            drop_slow(self.0.take());
        }
    }
}

#[cold]
#[inline(never)]
fn drop_slow(slow: Option<Pin<Box<Slow>>>) {
    drop(slow);
}

/// How an attempt failed.
enum Failure<E> {
    /// The operation returned an error.
    Returned(E),
    /// Its timeout or the call's deadline cut it.
    Cut(Error),
}

/// What the call does after a failure.
enum Step<E> {
    GiveUp(E),
    Wait,
}

#[derive(Clone, Copy, Debug)]
enum Cut {
    Timeout,
    Deadline,
}

#[derive(Debug)]
enum Phase {
    /// Not yet admitted by the breaker.
    Start,
    /// Running; the call holds the bound that cuts it, if any.
    Running,
    /// Failed, waiting out the backoff before the next attempt.
    Waiting,
    Done,
}

pin_project! {
    /// One attempt of a [`Call`], from [`Call::attempt`]: admission, the operation under its
    /// timeout, the verdict, and the backoff wait after a transient failure.
    ///
    /// Written by hand rather than as an `async fn` so that the success path is one small
    /// state machine around the caller's future: nothing else is moved or initialised per call.
    #[must_use = "futures do nothing unless awaited"]
    pub struct Attempt<'c, 'a, C, F> {
        call: &'c mut Call<'a, C>,
        // The caller's future; dropped as soon as a timeout cuts it, so that what it holds
        // (a connection, a permit) is not kept through the backoff wait.
        #[pin]
        attempt: Option<F>,
        permit: Option<Permit<'a>>,
        phase: Phase,
    }
}

/// Polls the caller's future; once a timeout has dropped it, the attempt never polls it again.
#[inline(always)]
fn poll_attempt<F: Future>(attempt: Pin<&mut Option<F>>, cx: &mut Context<'_>) -> Poll<F::Output> {
    // A `match`, not `map_or`: `map_or` builds its default, a `Poll` of the caller's result,
    // and drops it on every poll, and that drop is not inlined.
    match attempt.as_pin_mut() {
        Some(attempt) => attempt.poll(cx),
        None => Poll::Pending,
    }
}

/// The end of a call whose attempt succeeded: the breaker hears of it, and the value goes
/// straight out (wrapping it on the way costs copies that a trivial operation would notice).
#[inline(always)]
fn succeeded<T, E>(permit: Option<Permit<'_>>, value: T) -> ControlFlow<Result<T, E>> {
    if let Some(permit) = permit {
        permit.finish(Outcome::Success);
    }
    ControlFlow::Break(Ok(value))
}

impl<C, F> fmt::Debug for Attempt<'_, '_, C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("attempt", &self.call.attempts)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl<C, F, T, E> Future for Attempt<'_, '_, C, F>
where
    F: Future<Output = Result<T, E>>,
    E: From<Error> + Debug,
    C: Classify<E>,
{
    type Output = ControlFlow<Result<T, E>>;

    // Inlined into the caller's state machine: returned through memory, the output is written
    // in narrow stores and read back in wide loads, a stall that costs more than the rest of a
    // healthy call.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let (permit, failure) = match this.phase {
                Phase::Start => {
                    let call = &mut **this.call;
                    call.attempts = call.attempts.saturating_add(1);
                    // The permit stays in a local unless the attempt has to wait: written to the
                    // future and read back at once, it would stall the success path.
                    let permit = match call.breaker.map(|b| b.acquire_with(clock::now)) {
                        None => None,
                        Some(Ok(permit)) => Some(permit),
                        Some(Err(refused)) => {
                            *this.phase = Phase::Done;
                            return Poll::Ready(ControlFlow::Break(Err(call.refused(refused))));
                        }
                    };
                    let timed = call.policy.timeout.is_some() || call.policy.deadline.is_some();
                    if timed {
                        call.start_timer();
                        *this.permit = permit;
                        *this.phase = Phase::Running;
                        continue;
                    }
                    // The common case, straight through: no timer.
                    match poll_attempt(this.attempt.as_mut(), cx) {
                        Poll::Ready(Ok(value)) => {
                            *this.phase = Phase::Done;
                            return Poll::Ready(succeeded(permit, value));
                        }
                        Poll::Ready(Err(error)) => (permit, Failure::Returned(error)),
                        Poll::Pending => {
                            *this.permit = permit;
                            *this.phase = Phase::Running;
                            return Poll::Pending;
                        }
                    }
                }
                Phase::Running => match poll_attempt(this.attempt.as_mut(), cx) {
                    Poll::Ready(Ok(value)) => {
                        *this.phase = Phase::Done;
                        return Poll::Ready(succeeded(this.permit.take(), value));
                    }
                    Poll::Ready(Err(error)) => (this.permit.take(), Failure::Returned(error)),
                    Poll::Pending => {
                        let Some((limit, cut)) = this.call.bound_now else {
                            return Poll::Pending;
                        };
                        if this.call.poll_cut(cx).is_pending() {
                            return Poll::Pending;
                        }
                        this.attempt.set(None);
                        (
                            this.permit.take(),
                            Failure::Cut(this.call.ran_out(limit, cut)),
                        )
                    }
                },
                Phase::Waiting => {
                    if this.call.poll_timer(cx).is_pending() {
                        return Poll::Pending;
                    }
                    *this.phase = Phase::Done;
                    return Poll::Ready(ControlFlow::Continue(()));
                }
                Phase::Done => panic!("`Attempt` polled after it completed"),
            };
            match this.call.failed(permit, failure) {
                Step::GiveUp(error) => {
                    *this.phase = Phase::Done;
                    return Poll::Ready(ControlFlow::Break(Err(error)));
                }
                Step::Wait => *this.phase = Phase::Waiting,
            }
        }
    }
}
