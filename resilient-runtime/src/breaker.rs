//! The circuit breaker: a lock-free state machine shared by every call that names it.
//!
//! The whole state that decides admission lives in one 64-bit word: the state, the number of
//! probes in flight, the probes that succeeded, and a generation that grows on every transition.
//! A permit remembers the generation it was issued in, so an outcome that arrives after the
//! breaker has moved on (a slow call admitted while closed that fails after the breaker already
//! opened and half-opened) is counted in the totals but cannot steer the new state. That is the
//! half-open race other libraries keep reporting: a late success closing a breaker that a newer
//! probe just re-opened, or a late failure re-opening one that just recovered.

use std::fmt;
use std::time::Duration;

use crate::backoff::nanos;
use crate::clock;
use crate::counter::Counter;
use crate::error::{ConfigError, Error};
use std::sync::{Arc, RwLock};

use crate::sync::{AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass and their outcomes are counted.
    Closed,
    /// Calls are refused without running until the open duration has passed.
    Open,
    /// A limited number of trial calls run; the rest are refused.
    HalfOpen,
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        })
    }
}

/// How a breaker decides to open and when it tries again.
///
/// | setting | default | meaning |
/// | --- | --- | --- |
/// | [`failure_threshold`](Self::failure_threshold) | 5 | consecutive failures that open it |
/// | [`open_duration`](Self::open_duration) | 60 s | how long it refuses calls once open |
/// | [`half_open_probes`](Self::half_open_probes) | 1 | trial calls at once when half-open |
/// | [`failure_rate`](Self::failure_rate) | off | the window's failure rate that also opens it |
/// | [`window`](Self::window) | 100 | the latest recorded calls the rate looks at (at most 1024) |
/// | [`minimum_calls`](Self::minimum_calls) | 20 | calls seen before the rate counts |
///
/// Half-open, the breaker closes once `half_open_probes` probes have succeeded.
///
/// A failure is an error the classifier calls transient, or an attempt that timed out. Errors
/// classified permanent (a 400, say) are neither failures nor successes: they say nothing about
/// the service's health.
///
/// ```
/// use std::time::Duration;
/// use resilient_runtime::BreakerConfig;
///
/// let config = BreakerConfig::new()
///     .failure_threshold(3)
///     .open_duration(Duration::from_secs(30))
///     .half_open_probes(2)
///     .failure_rate(0.5)
///     .window(50)
///     .minimum_calls(10);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before it admits a probe.
    pub open_duration: Duration,
    /// Concurrent probes admitted when half-open, and the successes needed to close.
    pub half_open_probes: u32,
    /// The failure rate (0 to 1] over the window that opens the breaker, if set.
    pub failure_rate: Option<f64>,
    /// How many of the latest recorded calls the failure rate looks at.
    pub window: u32,
    /// Recorded calls needed before the failure rate is acted on.
    pub minimum_calls: u32,
}

/// The largest window the failure rate can look at.
pub const MAX_WINDOW: u32 = 1024;
/// The most probes a half-open breaker can admit at once.
pub const MAX_PROBES: u32 = 10_000;

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl BreakerConfig {
    /// The defaults: 5 consecutive failures, open for 60 s, 1 probe, no failure-rate rule.
    pub const fn new() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_duration: Duration::from_secs(60),
            half_open_probes: 1,
            failure_rate: None,
            window: 100,
            minimum_calls: 20,
        }
    }

    /// Sets how many consecutive failures open the breaker.
    pub const fn failure_threshold(mut self, failures: u32) -> Self {
        self.failure_threshold = failures;
        self
    }

    /// Sets how long the breaker refuses calls once open.
    pub const fn open_duration(mut self, duration: Duration) -> Self {
        self.open_duration = duration;
        self
    }

    /// Sets how many probes run at once when half-open, and how many must succeed to close.
    pub const fn half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes;
        self
    }

    /// Also opens the breaker when this share of the calls in the window failed.
    pub const fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = Some(rate);
        self
    }

    /// Sets how many of the latest recorded calls the failure rate looks at.
    pub const fn window(mut self, calls: u32) -> Self {
        self.window = calls;
        self
    }

    /// Sets how many calls the window must have seen before the rate is acted on.
    pub const fn minimum_calls(mut self, calls: u32) -> Self {
        self.minimum_calls = calls;
        self
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.failure_threshold == 0 {
            return Err(ConfigError::new("failure_threshold must be at least 1"));
        }
        if self.open_duration.is_zero() {
            return Err(ConfigError::new("open_duration must be above zero"));
        }
        if !(1..=MAX_PROBES).contains(&self.half_open_probes) {
            return Err(ConfigError::new(format!(
                "half_open_probes must be between 1 and {MAX_PROBES}, not {}",
                self.half_open_probes
            )));
        }
        if let Some(rate) = self.failure_rate
            && !(rate > 0.0 && rate <= 1.0)
        {
            return Err(ConfigError::new(format!(
                "failure_rate must be above 0 and at most 1, not {rate}"
            )));
        }
        if !(1..=MAX_WINDOW).contains(&self.window) {
            return Err(ConfigError::new(format!(
                "window must be between 1 and {MAX_WINDOW} calls, not {}",
                self.window
            )));
        }
        if !(1..=self.window).contains(&self.minimum_calls) {
            return Err(ConfigError::new(format!(
                "minimum_calls must be between 1 and the window ({}), not {}",
                self.window, self.minimum_calls
            )));
        }
        Ok(())
    }
}

/// A snapshot of a breaker, for dashboards, health checks and tests.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BreakerStatus {
    /// The breaker's name.
    pub name: Arc<str>,
    /// Where it stands.
    pub state: BreakerState,
    /// Failures since the last success while closed.
    pub consecutive_failures: u32,
    /// Calls recorded as successes since the breaker was created.
    pub successes: u64,
    /// Calls recorded as failures since the breaker was created.
    pub failures: u64,
    /// Calls that ended in an error classified permanent, counted neither way.
    pub ignored: u64,
    /// Calls refused without running.
    pub rejections: u64,
    /// Probes running now (half-open only).
    pub probes_in_flight: u32,
    /// The failure rate over the window, once it has seen `minimum_calls` (when the rule is set).
    pub failure_rate: Option<f64>,
    /// How long until an open breaker admits a probe; zero once it would admit one now.
    pub next_probe_in: Option<Duration>,
}

/// A change of state, as handed to listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateChange {
    /// The breaker's name.
    pub breaker: Arc<str>,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
}

type Listener = Arc<dyn Fn(&StateChange) + Send + Sync>;

/// A named circuit breaker. Cloning gives another handle to the same breaker.
///
/// Most code gets one from the registry with [`breaker`](crate::breaker()), which shares it by
/// name across the process; [`Breaker::new`] makes one that only its handles share.
///
/// ```
/// use resilient_runtime::{Breaker, BreakerConfig, BreakerState};
///
/// let breaker = Breaker::new("billing", BreakerConfig::new().failure_threshold(2)).unwrap();
/// for _ in 0..2 {
///     breaker.try_acquire().unwrap().failure();
/// }
/// assert_eq!(breaker.state(), BreakerState::Open);
/// assert!(breaker.try_acquire().unwrap_err().is_rejected());
/// ```
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    core: Core,
    listeners: RwLock<Arc<[Listener]>>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.inner.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Breaker {
    /// Makes a breaker that is not in the registry.
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::unchecked(name.into(), config))
    }

    pub(crate) fn unchecked(name: Arc<str>, config: BreakerConfig) -> Self {
        let empty: Arc<[Listener]> = Arc::from(Vec::new());
        Breaker {
            inner: Arc::new(Inner {
                name,
                core: Core::new(&config),
                listeners: RwLock::new(empty),
            }),
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where the breaker stands now. An open breaker whose open duration has passed still reads
    /// `Open` until the next call turns it half-open.
    pub fn state(&self) -> BreakerState {
        self.inner.core.state()
    }

    /// The breaker's current settings.
    pub fn config(&self) -> BreakerConfig {
        self.inner.core.config()
    }

    /// Changes the settings in place; every holder of the breaker sees them on its next call.
    ///
    /// A new threshold or probe limit applies to the next decision; a new open duration applies
    /// from the next time the breaker opens. Changing the window starts it afresh.
    pub fn reconfigure(&self, config: BreakerConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.inner.core.set_config(&config);
        Ok(())
    }

    /// How long until an open breaker admits a probe (zero once it would); `None` unless open.
    pub fn next_probe_in(&self) -> Option<Duration> {
        self.next_probe_at(self.inner.core.word.load(Ordering::Acquire))
    }

    /// [`next_probe_in`](Self::next_probe_in) for the state in `word`.
    fn next_probe_at(&self, word: u64) -> Option<Duration> {
        (state_of(word) == BreakerState::Open).then(|| {
            let now = clock::now();
            let until = self.inner.core.open_until(generation_of(word), now);
            Duration::from_nanos(until.saturating_sub(now))
        })
    }

    /// A snapshot of the breaker's state and counts.
    pub fn status(&self) -> BreakerStatus {
        let core = &self.inner.core;
        let word = core.word.load(Ordering::Acquire);
        let state = state_of(word);
        let next_probe_in = self.next_probe_at(word);
        BreakerStatus {
            name: self.inner.name.clone(),
            state,
            consecutive_failures: core.consecutive.load(Ordering::Relaxed),
            successes: core.successes.sum(),
            failures: core.failures.load(Ordering::Relaxed),
            ignored: core.ignored.load(Ordering::Relaxed),
            rejections: core.rejections.load(Ordering::Relaxed),
            probes_in_flight: if state == BreakerState::HalfOpen {
                inflight_of(word)
            } else {
                0
            },
            failure_rate: core.window.rate(),
            next_probe_in,
        }
    }

    /// Calls `listener` after every change of state, outside any lock, on the thread that caused
    /// the change. A listener that panics is logged at `error` and does not disturb the call or
    /// the other listeners.
    pub fn on_state_change(&self, listener: impl Fn(&StateChange) + Send + Sync + 'static) {
        let mut slot = self
            .inner
            .listeners
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<Listener> = slot.iter().cloned().collect();
        all.push(Arc::new(listener));
        *slot = Arc::from(all);
    }

    /// Closes the breaker and clears its consecutive failures and window, whatever its state.
    pub fn reset(&self) {
        let core = &self.inner.core;
        let mut word = core.word.load(Ordering::Acquire);
        loop {
            if state_of(word) == BreakerState::Closed {
                core.consecutive.store(0, Ordering::Relaxed);
                core.window.reset();
                return;
            }
            core.consecutive.store(0, Ordering::Relaxed);
            core.window.reset();
            let next = pack(
                BreakerState::Closed,
                0,
                0,
                generation_of(word).wrapping_add(1),
            );
            match core
                .word
                .compare_exchange(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return self.changed(state_of(word), BreakerState::Closed),
                Err(actual) => word = actual,
            }
        }
    }

    /// Asks to run one call now. The permit records the outcome: call [`Permit::success`],
    /// [`Permit::failure`] or [`Permit::ignore`]; dropping it unrecorded (a cancelled call)
    /// hands back its probe slot and counts nothing.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Error> {
        self.acquire_with(clock::now)
    }

    #[cfg(all(test, not(resilient_loom)))]
    fn acquire_at(&self, now: u64) -> Result<Permit<'_>, Error> {
        self.acquire_with(|| now)
    }

    /// Admission with the clock read only when the breaker is not closed.
    #[inline]
    pub(crate) fn acquire_with(&self, now: impl Fn() -> u64) -> Result<Permit<'_>, Error> {
        match self.inner.core.admit(now) {
            Admission::Admitted { generation, probe } => Ok(Permit::new(self, generation, probe)),
            Admission::Probing { generation } => Ok(self.first_probe(generation)),
            Admission::Refused { retry_in } => Err(Error::Rejected {
                breaker: self.inner.name.clone(),
                retry_in,
            }),
        }
    }

    /// The permit of the probe that turned the breaker half-open. It exists before the
    /// listeners run, so the probe slot the transition took goes back even if one of them
    /// unwinds. Kept out of line: a drop on unwinding inlined into the admission path would
    /// slow every healthy call.
    #[cold]
    #[inline(never)]
    fn first_probe(&self, generation: u32) -> Permit<'_> {
        let permit = Permit::new(self, generation, true);
        self.changed(BreakerState::Open, BreakerState::HalfOpen);
        permit
    }

    #[cold]
    fn changed(&self, from: BreakerState, to: BreakerState) {
        let name = &*self.inner.name;
        match to {
            BreakerState::Open => {
                let open_for =
                    Duration::from_nanos(self.inner.core.open_nanos.load(Ordering::Relaxed));
                let open_ms = open_for.as_millis() as u64;
                tracing::warn!(breaker = name, %from, open_ms, "circuit breaker opened");
            }
            BreakerState::HalfOpen => {
                tracing::info!(breaker = name, %from, "circuit breaker half-open");
            }
            BreakerState::Closed => tracing::info!(breaker = name, %from, "circuit breaker closed"),
        }
        let listeners = self
            .inner
            .listeners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if listeners.is_empty() {
            return;
        }
        let change = StateChange {
            breaker: self.inner.name.clone(),
            from,
            to,
        };
        for listener in listeners.iter() {
            // A listener that panics must not take the call that happened to cause the change
            // down with it, nor the listeners after it.
            let heard =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(&change)));
            if heard.is_err() {
                tracing::error!(breaker = name, %from, %to, "a state-change listener panicked");
            }
        }
    }

    #[inline]
    fn settle(&self, generation: u32, probe: bool, outcome: Outcome, now: impl Fn() -> u64) {
        if let Some((from, to)) = self.inner.core.record(generation, probe, outcome, now) {
            self.changed(from, to);
        }
    }

    /// Whether two handles are the same breaker.
    pub fn same(&self, other: &Breaker) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// Leave to run one call, from [`Breaker::try_acquire`].
#[must_use = "a permit records nothing unless success(), failure() or ignore() is called"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    /// The generation it was issued in, with the top bit set for a probe: one word, so the
    /// permit moves through a call's future as two plain words.
    ticket: u32,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name())
            .field("probe", &self.is_probe())
            .finish_non_exhaustive()
    }
}

impl<'a> Permit<'a> {
    const PROBE: u32 = 1 << 31;

    fn new(breaker: &'a Breaker, generation: u32, probe: bool) -> Self {
        let ticket = generation | if probe { Self::PROBE } else { 0 };
        Permit { breaker, ticket }
    }

    fn generation(&self) -> u32 {
        self.ticket & !Self::PROBE
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.ticket & Self::PROBE != 0
    }

    /// Records that the call succeeded.
    #[inline]
    pub fn success(self) {
        self.finish(Outcome::Success);
    }

    /// Records that the call failed in a way that reflects on the service.
    #[inline]
    pub fn failure(self) {
        self.finish(Outcome::Failure);
    }

    /// Records that the call ended in an error that says nothing about the service.
    #[inline]
    pub fn ignore(self) {
        self.finish(Outcome::Ignored);
    }

    #[inline(always)]
    pub(crate) fn finish(self, outcome: Outcome) {
        self.finish_with(outcome, clock::now);
    }

    #[cfg(all(test, not(resilient_loom)))]
    fn finish_at(self, outcome: Outcome, now: u64) {
        self.finish_with(outcome, || now);
    }

    #[inline(always)]
    fn finish_with(self, outcome: Outcome, now: impl Fn() -> u64) {
        let (generation, probe) = (self.generation(), self.is_probe());
        let breaker = self.breaker;
        // Settled: the drop that hands back an unsettled probe's slot must not run.
        std::mem::forget(self);
        breaker.settle(generation, probe, outcome, now);
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.is_probe() {
            // A probe whose future was dropped: hand its slot back so the breaker is not stuck
            // half-open with every slot held by calls that will never report.
            self.breaker.inner.core.release_probe(self.generation());
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Ignored,
}

// The state word: 2 bits of state, 16 of probes in flight, 16 of probe successes, 30 of
// generation. MAX_PROBES keeps both counters below 2^16.
const STATE_BITS: u32 = 2;
const COUNT_BITS: u32 = 16;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const INFLIGHT_SHIFT: u32 = STATE_BITS;
const SUCCESS_SHIFT: u32 = STATE_BITS + COUNT_BITS;
const GENERATION_SHIFT: u32 = STATE_BITS + 2 * COUNT_BITS;
const GENERATION_MASK: u32 = (1 << (64 - GENERATION_SHIFT)) - 1;

fn pack(state: BreakerState, inflight: u32, successes: u32, generation: u32) -> u64 {
    let state = match state {
        BreakerState::Closed => 0,
        BreakerState::Open => 1,
        BreakerState::HalfOpen => 2,
    };
    state
        | (u64::from(inflight) & COUNT_MASK) << INFLIGHT_SHIFT
        | (u64::from(successes) & COUNT_MASK) << SUCCESS_SHIFT
        | u64::from(generation & GENERATION_MASK) << GENERATION_SHIFT
}

fn state_of(word: u64) -> BreakerState {
    match word & 0b11 {
        0 => BreakerState::Closed,
        1 => BreakerState::Open,
        _ => BreakerState::HalfOpen,
    }
}

fn inflight_of(word: u64) -> u32 {
    (word >> INFLIGHT_SHIFT & COUNT_MASK) as u32
}

fn successes_of(word: u64) -> u32 {
    (word >> SUCCESS_SHIFT & COUNT_MASK) as u32
}

fn generation_of(word: u64) -> u32 {
    (word >> GENERATION_SHIFT) as u32
}

pub(crate) enum Admission {
    Admitted {
        generation: u32,
        probe: bool,
    },
    /// Admitted as the first probe: the breaker just went from open to half-open.
    Probing {
        generation: u32,
    },
    Refused {
        retry_in: Option<Duration>,
    },
}

/// The state machine without names, listeners or clock, so loom can drive it alone.
pub(crate) struct Core {
    word: AtomicU64,
    consecutive: AtomicU32,
    /// When an open breaker admits its first probe, in clock nanoseconds. Only the caller whose
    /// transition to open won writes it, after winning, and then publishes it by storing that
    /// transition's generation in `open_generation`; see [`Core::open_until`].
    open_until: AtomicU64,
    open_generation: AtomicU32,
    threshold: AtomicU32,
    open_nanos: AtomicU64,
    probes: AtomicU32,
    window: Window,
    successes: Counter,
    failures: AtomicU64,
    ignored: AtomicU64,
    rejections: AtomicU64,
}

impl Core {
    pub(crate) fn new(config: &BreakerConfig) -> Self {
        let core = Core {
            word: AtomicU64::new(pack(BreakerState::Closed, 0, 0, 0)),
            consecutive: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            open_generation: AtomicU32::new(0),
            threshold: AtomicU32::new(0),
            open_nanos: AtomicU64::new(0),
            probes: AtomicU32::new(0),
            window: Window::new(),
            successes: Counter::new(),
            failures: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
        };
        core.set_config(config);
        core
    }

    pub(crate) fn set_config(&self, config: &BreakerConfig) {
        self.threshold
            .store(config.failure_threshold, Ordering::Relaxed);
        self.open_nanos
            .store(nanos(config.open_duration), Ordering::Relaxed);
        self.probes
            .store(config.half_open_probes, Ordering::Relaxed);
        self.window.configure(config);
    }

    pub(crate) fn config(&self) -> BreakerConfig {
        let (failure_rate, window, minimum_calls) = self.window.settings();
        BreakerConfig {
            failure_threshold: self.threshold.load(Ordering::Relaxed),
            open_duration: Duration::from_nanos(self.open_nanos.load(Ordering::Relaxed)),
            half_open_probes: self.probes.load(Ordering::Relaxed),
            failure_rate,
            window,
            minimum_calls,
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        state_of(self.word.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn admit(&self, now: impl Fn() -> u64) -> Admission {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            let generation = generation_of(word);
            let next = match state_of(word) {
                // The path every healthy call takes: one load, no write.
                BreakerState::Closed => {
                    return Admission::Admitted {
                        generation,
                        probe: false,
                    };
                }
                BreakerState::Open => {
                    let now = now();
                    let until = self.open_until(generation, now);
                    if now < until {
                        self.rejections.fetch_add(1, Ordering::Relaxed);
                        return Admission::Refused {
                            retry_in: Some(Duration::from_nanos(until - now)),
                        };
                    }
                    pack(BreakerState::HalfOpen, 1, 0, generation.wrapping_add(1))
                }
                BreakerState::HalfOpen => {
                    let inflight = inflight_of(word);
                    if inflight >= self.probes.load(Ordering::Relaxed) {
                        self.rejections.fetch_add(1, Ordering::Relaxed);
                        return Admission::Refused { retry_in: None };
                    }
                    pack(
                        BreakerState::HalfOpen,
                        inflight + 1,
                        successes_of(word),
                        generation,
                    )
                }
            };
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if state_of(word) == BreakerState::Open => {
                    return Admission::Probing {
                        generation: generation_of(next),
                    };
                }
                Ok(_) => {
                    return Admission::Admitted {
                        generation,
                        probe: true,
                    };
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// Records an outcome; returns the transition it caused, if any.
    #[inline(always)]
    pub(crate) fn record(
        &self,
        generation: u32,
        probe: bool,
        outcome: Outcome,
        now: impl Fn() -> u64,
    ) -> Option<(BreakerState, BreakerState)> {
        if !probe && outcome == Outcome::Success {
            self.closed_succeeded(generation);
            return None;
        }
        self.record_other(generation, probe, outcome, now)
    }

    /// The outcome every healthy call records, inlined into it: the rest of `record` is
    /// larger than the compiler will inline, and a call into it would cost this path more
    /// than the work it does.
    #[inline(always)]
    fn closed_succeeded(&self, generation: u32) {
        self.successes.add();
        // Read before writing: a healthy breaker shared by many threads then never bounces
        // this cache line between them, and the healthy path with no window reads two words
        // and writes none.
        let clears = self.consecutive.load(Ordering::Relaxed) != 0;
        if clears || self.window.is_on() {
            self.closed_succeeded_after_failures(generation, clears);
        }
    }

    #[inline(never)]
    fn closed_succeeded_after_failures(&self, generation: u32, clears: bool) {
        // A success from before the breaker last changed says nothing of the period since:
        // it is counted and steers nothing. (Every transition bumps the generation, so an
        // equal one means this closed period still runs.)
        if generation_of(self.word.load(Ordering::Relaxed)) == generation {
            if clears {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            self.window.record(false);
        }
    }

    /// Every outcome but a closed breaker's success.
    #[inline(never)]
    fn record_other(
        &self,
        generation: u32,
        probe: bool,
        outcome: Outcome,
        now: impl Fn() -> u64,
    ) -> Option<(BreakerState, BreakerState)> {
        match outcome {
            Outcome::Success => self.successes.add(),
            Outcome::Failure => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Ignored => {
                self.ignored.fetch_add(1, Ordering::Relaxed);
            }
        }
        match (probe, outcome) {
            (true, Outcome::Success) => self.probe_succeeded(generation),
            (true, Outcome::Failure) => self.probe_failed(generation, now()),
            (true, Outcome::Ignored) => {
                self.release_probe(generation);
                None
            }
            (false, Outcome::Success) => {
                self.closed_succeeded(generation);
                None
            }
            (false, Outcome::Failure) => self.closed_failed(generation, now()),
            (false, Outcome::Ignored) => None,
        }
    }

    fn closed_failed(&self, generation: u32, now: u64) -> Option<(BreakerState, BreakerState)> {
        let word = self.word.load(Ordering::Acquire);
        if state_of(word) != BreakerState::Closed || generation_of(word) != generation {
            // Admitted before the breaker last changed: the verdict on that period is in.
            return None;
        }
        let consecutive = self
            .consecutive
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let rate_tripped = self.window.record(true);
        if consecutive < self.threshold.load(Ordering::Relaxed) && !rate_tripped {
            return None;
        }
        self.trip(word, now)
    }

    fn probe_failed(&self, generation: u32, now: u64) -> Option<(BreakerState, BreakerState)> {
        let mut word = self.word.load(Ordering::Acquire);
        while state_of(word) == BreakerState::HalfOpen && generation_of(word) == generation {
            match self.trip(word, now) {
                Some(change) => return Some(change),
                None => word = self.word.load(Ordering::Acquire),
            }
        }
        None
    }

    /// Opens the breaker if it is still at `word`.
    ///
    /// Only the winner of the transition writes the deadline: a loser carries an older `now`
    /// and, writing first, would shorten the open period the winner set.
    fn trip(&self, word: u64, now: u64) -> Option<(BreakerState, BreakerState)> {
        let next = pack(
            BreakerState::Open,
            0,
            0,
            generation_of(word).wrapping_add(1),
        );
        self.word
            .compare_exchange(word, next, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let open_for = self.open_nanos.load(Ordering::Relaxed);
        self.open_until
            .store(now.saturating_add(open_for), Ordering::Relaxed);
        self.open_generation
            .store(generation_of(next), Ordering::Release);
        self.consecutive.store(0, Ordering::Relaxed);
        self.window.reset();
        Some((state_of(word), BreakerState::Open))
    }

    /// When the breaker opened in `generation` admits its first probe. Between the transition
    /// and the winner's write of the deadline (a few instructions) the deadline is not yet
    /// known: the breaker has only just opened, so it counts as open for its full duration
    /// from `now`.
    pub(crate) fn open_until(&self, generation: u32, now: u64) -> u64 {
        if self.open_generation.load(Ordering::Acquire) == generation {
            self.open_until.load(Ordering::Relaxed)
        } else {
            now.saturating_add(self.open_nanos.load(Ordering::Relaxed))
        }
    }

    fn probe_succeeded(&self, generation: u32) -> Option<(BreakerState, BreakerState)> {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            if state_of(word) != BreakerState::HalfOpen || generation_of(word) != generation {
                return None;
            }
            let successes = successes_of(word) + 1;
            let closes = successes >= self.probes.load(Ordering::Relaxed);
            let next = if closes {
                self.consecutive.store(0, Ordering::Relaxed);
                self.window.reset();
                pack(BreakerState::Closed, 0, 0, generation.wrapping_add(1))
            } else {
                let inflight = inflight_of(word).saturating_sub(1);
                pack(BreakerState::HalfOpen, inflight, successes, generation)
            };
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if closes => return Some((BreakerState::HalfOpen, BreakerState::Closed)),
                Ok(_) => return None,
                Err(actual) => word = actual,
            }
        }
    }

    pub(crate) fn release_probe(&self, generation: u32) {
        let mut word = self.word.load(Ordering::Acquire);
        while state_of(word) == BreakerState::HalfOpen && generation_of(word) == generation {
            let inflight = inflight_of(word).saturating_sub(1);
            let next = pack(
                BreakerState::HalfOpen,
                inflight,
                successes_of(word),
                generation,
            );
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => word = actual,
            }
        }
    }

    #[cfg(any(test, resilient_loom))]
    pub(crate) fn inflight(&self) -> u32 {
        let word = self.word.load(Ordering::Acquire);
        if state_of(word) == BreakerState::HalfOpen {
            inflight_of(word)
        } else {
            0
        }
    }
}

/// The outcomes of the latest calls, one bit each, in a ring that needs no lock: each record
/// claims the next slot with one `fetch_add` and flips its bit with one `fetch_or`/`fetch_and`,
/// whose previous value says whether the failure count goes up or down.
///
/// A reconfiguration or reset that races with records can leave the counts off by the few calls
/// in flight; the rate is a health signal, not an audit.
struct Window {
    /// Calls in the ring; 0 when the failure-rate rule is off.
    size: AtomicU32,
    /// The configured length, kept while the rule is off so `config()` can report it.
    length: AtomicU32,
    minimum: AtomicU32,
    threshold: AtomicU64,
    cursor: AtomicU64,
    failures: AtomicI64,
    bits: [AtomicU64; (MAX_WINDOW / 64) as usize],
}

impl Window {
    fn new() -> Self {
        Window {
            size: AtomicU32::new(0),
            length: AtomicU32::new(0),
            minimum: AtomicU32::new(0),
            threshold: AtomicU64::new(0),
            cursor: AtomicU64::new(0),
            failures: AtomicI64::new(0),
            bits: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn configure(&self, config: &BreakerConfig) {
        let size = if config.failure_rate.is_some() {
            config.window
        } else {
            0
        };
        self.length.store(config.window, Ordering::Relaxed);
        self.minimum.store(config.minimum_calls, Ordering::Relaxed);
        let threshold = config.failure_rate.unwrap_or(1.0);
        self.threshold.store(threshold.to_bits(), Ordering::Relaxed);
        if self.size.swap(size, Ordering::Relaxed) != size {
            self.reset();
        }
    }

    fn settings(&self) -> (Option<f64>, u32, u32) {
        let rate = (self.size.load(Ordering::Relaxed) > 0).then(|| self.threshold_rate());
        (
            rate,
            self.length.load(Ordering::Relaxed),
            self.minimum.load(Ordering::Relaxed),
        )
    }

    fn reset(&self) {
        self.cursor.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        for word in &self.bits {
            word.store(0, Ordering::Relaxed);
        }
    }

    /// Whether a failure-rate window is configured.
    #[inline]
    fn is_on(&self) -> bool {
        self.size.load(Ordering::Relaxed) != 0
    }

    /// Records one outcome; returns whether the failure rate now opens the breaker.
    #[inline]
    fn record(&self, failed: bool) -> bool {
        let size = self.size.load(Ordering::Relaxed);
        if size == 0 {
            return false;
        }
        let index = self.cursor.fetch_add(1, Ordering::Relaxed);
        let slot = (index % u64::from(size)) as usize;
        let (word, mask) = (&self.bits[slot / 64], 1u64 << (slot % 64));
        let before = if failed {
            word.fetch_or(mask, Ordering::Relaxed)
        } else {
            word.fetch_and(!mask, Ordering::Relaxed)
        };
        let was_failed = before & mask != 0;
        match (was_failed, failed) {
            (false, true) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            (true, false) => {
                self.failures.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        failed
            && self
                .rate()
                .is_some_and(|rate| rate >= self.threshold_rate())
    }

    fn threshold_rate(&self) -> f64 {
        f64::from_bits(self.threshold.load(Ordering::Relaxed))
    }

    /// The failure rate over the window, once it has seen enough calls.
    fn rate(&self) -> Option<f64> {
        let size = u64::from(self.size.load(Ordering::Relaxed));
        if size == 0 {
            return None;
        }
        let seen = self.cursor.load(Ordering::Relaxed).min(size);
        let minimum = u64::from(self.minimum.load(Ordering::Relaxed));
        if seen == 0 || seen < minimum {
            return None;
        }
        let failures = self.failures.load(Ordering::Relaxed).clamp(0, seen as i64);
        Some(failures as f64 / seen as f64)
    }
}

#[cfg(all(test, resilient_loom))]
#[path = "breaker_loom.rs"]
mod loom_tests;

#[cfg(all(test, not(resilient_loom)))]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const SEC: u64 = 1_000_000_000;

    fn breaker(config: BreakerConfig) -> Breaker {
        Breaker::new("test", config).unwrap()
    }

    fn fail(b: &Breaker, now: u64) {
        b.acquire_at(now).unwrap().finish_at(Outcome::Failure, now);
    }

    fn succeed(b: &Breaker, now: u64) {
        b.acquire_at(now).unwrap().finish_at(Outcome::Success, now);
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(BreakerConfig::new().failure_threshold(3));
        fail(&b, 0);
        fail(&b, 0);
        succeed(&b, 0);
        fail(&b, 0);
        fail(&b, 0);
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b, 0);
        assert_eq!(b.state(), BreakerState::Open);
        let status = b.status();
        assert_eq!((status.successes, status.failures), (1, 5));
    }

    #[test]
    fn open_refuses_until_the_duration_passes_then_admits_one_probe() {
        let b = breaker(
            BreakerConfig::new()
                .failure_threshold(1)
                .open_duration(Duration::from_secs(10)),
        );
        fail(&b, SEC);
        let err = b.acquire_at(5 * SEC).unwrap_err();
        assert_eq!(err.retry_in(), Some(Duration::from_secs(6)));
        assert_eq!(err.breaker(), Some("test"));
        let probe = b.acquire_at(11 * SEC).unwrap();
        assert!(probe.is_probe());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.acquire_at(11 * SEC).unwrap_err().retry_in(), None);
        drop(probe);
        assert_eq!(b.status().rejections, 2);
    }

    #[test]
    fn half_open_closes_after_enough_probe_successes_and_reopens_on_any_failure() {
        let config = BreakerConfig::new()
            .failure_threshold(1)
            .half_open_probes(2);
        let b = breaker(config.open_duration(Duration::from_secs(1)));
        fail(&b, 0);
        succeed(&b, 2 * SEC);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        succeed(&b, 2 * SEC);
        assert_eq!(b.state(), BreakerState::Closed);

        fail(&b, 3 * SEC);
        succeed(&b, 5 * SEC);
        fail(&b, 5 * SEC);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.inner.core.open_until.load(Ordering::Relaxed), 6 * SEC);
    }

    #[test]
    fn probes_are_limited_and_a_dropped_probe_returns_its_slot() {
        let b = breaker(
            BreakerConfig::new()
                .failure_threshold(1)
                .half_open_probes(3),
        );
        fail(&b, 0);
        let now = 61 * SEC;
        let probes: Vec<_> = (0..3).map(|_| b.acquire_at(now).unwrap()).collect();
        assert!(b.acquire_at(now).is_err());
        assert_eq!(b.inner.core.inflight(), 3);
        drop(probes);
        assert_eq!(b.inner.core.inflight(), 0);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        succeed(&b, now);
        succeed(&b, now);
        succeed(&b, now);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_late_outcome_from_an_earlier_state_cannot_steer_the_breaker() {
        let b = breaker(
            BreakerConfig::new()
                .failure_threshold(1)
                .open_duration(Duration::from_secs(1)),
        );
        let slow = b.acquire_at(0).unwrap();
        fail(&b, 0);
        succeed(&b, 2 * SEC);
        assert_eq!(b.state(), BreakerState::Closed);
        // The call admitted before the breaker opened fails only now: it is counted, not acted on.
        slow.finish_at(Outcome::Failure, 2 * SEC);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.status().failures, 2);

        fail(&b, 3 * SEC);
        let stale_probe = b.acquire_at(5 * SEC).unwrap();
        b.reset();
        stale_probe.finish_at(Outcome::Failure, 5 * SEC);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_late_success_does_not_clear_the_failures_of_a_later_period() {
        let b = breaker(
            BreakerConfig::new()
                .failure_threshold(2)
                .open_duration(Duration::from_secs(1)),
        );
        // Admitted while closed, it finishes only after an outage opened and recovered the
        // breaker, and a new run of failures has begun.
        let slow = b.acquire_at(0).unwrap();
        fail(&b, 0);
        fail(&b, 0);
        succeed(&b, 2 * SEC);
        fail(&b, 3 * SEC);
        slow.finish_at(Outcome::Success, 3 * SEC);
        assert_eq!(b.status().successes, 2);
        assert_eq!(b.status().consecutive_failures, 1);
        fail(&b, 3 * SEC);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn ignored_outcomes_neither_open_nor_close() {
        let b = breaker(BreakerConfig::new().failure_threshold(2));
        fail(&b, 0);
        b.acquire_at(0).unwrap().finish_at(Outcome::Ignored, 0);
        assert_eq!(b.status().consecutive_failures, 1);
        fail(&b, 0);
        assert_eq!(b.state(), BreakerState::Open);
        let probe = b.acquire_at(100 * SEC).unwrap();
        probe.finish_at(Outcome::Ignored, 100 * SEC);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.inner.core.inflight(), 0);
        assert_eq!(b.status().ignored, 2);
    }

    #[test]
    fn failure_rate_opens_once_the_window_has_seen_enough() {
        let config = BreakerConfig::new()
            .failure_threshold(1_000)
            .failure_rate(0.5)
            .window(10)
            .minimum_calls(6);
        let b = breaker(config);
        for _ in 0..2 {
            succeed(&b, 0);
            fail(&b, 0);
        }
        assert_eq!(
            b.status().failure_rate,
            None,
            "four calls are below the minimum of six"
        );
        succeed(&b, 0);
        fail(&b, 0);
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "three failures in six calls is 50 %"
        );
        assert_eq!(
            b.status().failure_rate,
            None,
            "opening starts the window afresh"
        );
    }

    #[test]
    fn the_window_slides_over_old_outcomes() {
        let config = BreakerConfig::new()
            .failure_threshold(1_000)
            .failure_rate(0.5)
            .window(4);
        let b = breaker(config.minimum_calls(4));
        fail(&b, 0);
        for _ in 0..3 {
            succeed(&b, 0);
        }
        assert_eq!(b.status().failure_rate, Some(0.25));
        succeed(&b, 0);
        assert_eq!(b.status().failure_rate, Some(0.0), "the failure slid out");
    }

    #[test]
    fn reconfiguring_changes_the_next_decision() {
        let b = breaker(BreakerConfig::new().failure_threshold(5));
        fail(&b, 0);
        fail(&b, 0);
        b.reconfigure(BreakerConfig::new().failure_threshold(3))
            .unwrap();
        fail(&b, 0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.config().failure_threshold, 3);
        assert!(
            b.reconfigure(BreakerConfig::new().failure_threshold(0))
                .is_err()
        );
        assert_eq!(
            b.config().failure_threshold,
            3,
            "a rejected config changes nothing"
        );
    }

    #[test]
    fn config_round_trips_through_the_breaker() {
        let config = BreakerConfig::new()
            .failure_threshold(7)
            .open_duration(Duration::from_millis(1500))
            .half_open_probes(4)
            .failure_rate(0.25)
            .window(1024)
            .minimum_calls(100);
        assert_eq!(breaker(config).config(), config);
        assert_eq!(breaker(BreakerConfig::new()).config(), BreakerConfig::new());
    }

    #[test]
    fn invalid_configs_are_typed_errors() {
        let bad = [
            BreakerConfig::new().failure_threshold(0),
            BreakerConfig::new().open_duration(Duration::ZERO),
            BreakerConfig::new().half_open_probes(0),
            BreakerConfig::new().half_open_probes(MAX_PROBES + 1),
            BreakerConfig::new().failure_rate(0.0),
            BreakerConfig::new().failure_rate(1.5),
            BreakerConfig::new().failure_rate(f64::NAN),
            BreakerConfig::new().window(0),
            BreakerConfig::new().window(MAX_WINDOW + 1),
            BreakerConfig::new().window(10).minimum_calls(11),
        ];
        for config in bad {
            assert!(
                Breaker::new("x", config).is_err(),
                "{config:?} was accepted"
            );
        }
    }

    #[test]
    fn listeners_see_every_transition_in_order() {
        let b = breaker(
            BreakerConfig::new()
                .failure_threshold(1)
                .open_duration(Duration::from_secs(1)),
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        b.on_state_change(move |change| sink.lock().unwrap().push((change.from, change.to)));
        fail(&b, 0);
        fail(&b, 2 * SEC);
        succeed(&b, 4 * SEC);
        use BreakerState::*;
        assert_eq!(
            *seen.lock().unwrap(),
            [
                (Closed, Open),
                (Open, HalfOpen),
                (HalfOpen, Open),
                (Open, HalfOpen),
                (HalfOpen, Closed)
            ]
        );
    }

    #[test]
    fn counts_add_up_across_threads() {
        let b = breaker(BreakerConfig::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..10_000).for_each(|_| succeed(&b, 0)));
            }
        });
        assert_eq!(b.status().successes, 40_000);
    }

    #[test]
    fn the_word_packs_and_unpacks() {
        let word = pack(BreakerState::HalfOpen, MAX_PROBES, 123, GENERATION_MASK);
        assert_eq!(state_of(word), BreakerState::HalfOpen);
        assert_eq!(inflight_of(word), MAX_PROBES);
        assert_eq!(successes_of(word), 123);
        assert_eq!(generation_of(word), GENERATION_MASK);
        let wrapped = pack(BreakerState::Open, 0, 0, GENERATION_MASK.wrapping_add(1));
        assert_eq!(generation_of(wrapped), 0);
    }
}
