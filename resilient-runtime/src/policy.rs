//! The retry policy: how many retries, how long between them, how long each attempt may take.

use std::time::Duration;

use crate::backoff::{Jitter, nanos};
use crate::error::ConfigError;

/// How a call is retried.
///
/// | setting | default | meaning |
/// | --- | --- | --- |
/// | [`retries`](Self::retries) | 3 | retries **after** the first attempt: 3 allows 4 attempts |
/// | [`jitter`](Self::jitter) | [`Jitter::Full`] | how each delay is randomised |
/// | [`base_delay`](Self::base_delay) | 1 s | the ceiling of the first delay |
/// | [`max_delay`](Self::max_delay) | 60 s | the cap on every backoff delay, after jitter |
/// | [`timeout`](Self::timeout) | none | how long one attempt may run before it is abandoned |
/// | [`deadline`](Self::deadline) | none | how long the whole call may take, waits included |
/// | [`max_hint`](Self::max_hint) | none | the longest `Retry-After` a call waits out |
/// | [`seed`](Self::seed) | none | a fixed seed for the jitter, for reproducible runs |
///
/// `max_delay` caps the backoff, not a server's hint: `Retry-After` may ask for longer, and
/// `max_hint` bounds that.
///
/// Libraries disagree on what "retries" counts; here it never includes the first attempt, so
/// `retries(0)` runs the operation once and `retries(3)` at most four times.
///
/// ```
/// use std::time::Duration;
/// use resilient_runtime::{Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::new()
///     .retries(5)
///     .jitter(Jitter::Decorrelated)
///     .base_delay(Duration::from_millis(200))
///     .max_delay(Duration::from_secs(10))
///     .timeout(Duration::from_secs(30))
///     .deadline(Duration::from_secs(90));
/// assert_eq!(policy.retries, 5);
/// assert!(policy.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// How each delay is randomised.
    pub jitter: Jitter,
    /// The ceiling of the first delay; each further retry doubles it.
    pub base_delay: Duration,
    /// The cap on every delay.
    pub max_delay: Duration,
    /// How long one attempt may run.
    pub timeout: Option<Duration>,
    /// How long the whole call may take.
    pub deadline: Option<Duration>,
    /// The longest wait a server's hint may impose; a longer hint ends the call.
    pub max_hint: Option<Duration>,
    /// A fixed seed for the jitter; `None` seeds every call from the thread's generator.
    pub seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// The default policy: 3 retries, full jitter, base 1 s, cap 60 s, no timeout, no deadline.
    pub const fn new() -> Self {
        RetryPolicy {
            retries: 3,
            jitter: Jitter::Full,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            timeout: None,
            deadline: None,
            max_hint: None,
            seed: None,
        }
    }

    /// Sets how many retries follow the first attempt.
    pub const fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets how each delay is randomised.
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the ceiling of the first delay.
    pub const fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// Sets the cap on every backoff delay. A server's hint may ask for longer; `max_hint`
    /// bounds those.
    pub const fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Bounds each attempt: one that runs longer is abandoned (its future dropped at once) and
    /// counts as a transient failure, retried and recorded by the breaker.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Bounds the whole call. No wait is started that would end after it; an attempt still
    /// running when it passes is cut, and recorded by the breaker as a failure, as a timeout
    /// is (a service too slow for the caller's budget is what a breaker is there to notice).
    /// Timers fire on tokio's 1 ms resolution, so a cut lands up to 1 ms after the deadline.
    pub const fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The longest wait a server's hint (`Retry-After` and its kin) may impose. A transient
    /// failure whose hint asks for longer ends the call at once with that failure, as a hint
    /// past the deadline does: the server is not called before the time it named, and the
    /// caller is not held for it either. `Duration::ZERO` ends the call on any hint above zero.
    ///
    /// Without it a hint is always waited out, however long: OpenAI's token limits reset in
    /// minutes, and `x-ratelimit-reset-tokens: 6m0s` then holds the call for six minutes.
    pub const fn max_hint(mut self, max_hint: Duration) -> Self {
        self.max_hint = Some(max_hint);
        self
    }

    /// Fixes the seed of the jitter, so every call of this policy draws the same delays.
    pub const fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the settings that cannot work: a cap below the base delay, or a zero timeout or
    /// deadline. Every other combination is valid, however large.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_delay < self.base_delay {
            return Err(ConfigError::new(format!(
                "max_delay ({:?}) is below base_delay ({:?})",
                self.max_delay, self.base_delay
            )));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(ConfigError::new("timeout must be above zero"));
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(ConfigError::new("deadline must be above zero"));
        }
        Ok(())
    }

    /// The policy as words, so a shared copy can be read without a lock (see `registry`).
    pub(crate) fn to_words(self) -> [u64; WORDS] {
        let flags = u64::from(self.timeout.is_some())
            | u64::from(self.deadline.is_some()) << 1
            | u64::from(self.seed.is_some()) << 2
            | u64::from(self.max_hint.is_some()) << 3;
        let jitter = Jitter::ALL
            .iter()
            .position(|j| *j == self.jitter)
            .unwrap_or(1) as u64;
        [
            u64::from(self.retries) | jitter << 32 | flags << 40,
            nanos(self.base_delay),
            nanos(self.max_delay),
            self.timeout.map_or(0, nanos),
            self.deadline.map_or(0, nanos),
            self.seed.unwrap_or(0),
            self.max_hint.map_or(0, nanos),
        ]
    }

    pub(crate) fn from_words(words: [u64; WORDS]) -> Self {
        let [head, base, max, timeout, deadline, seed, max_hint] = words;
        let flags = head >> 40;
        let present = |bit: u32, value: u64| (flags >> bit & 1 == 1).then_some(value);
        RetryPolicy {
            retries: head as u32,
            jitter: Jitter::ALL[(head >> 32 & 0b11) as usize],
            base_delay: Duration::from_nanos(base),
            max_delay: Duration::from_nanos(max),
            timeout: present(0, timeout).map(Duration::from_nanos),
            deadline: present(1, deadline).map(Duration::from_nanos),
            max_hint: present(3, max_hint).map(Duration::from_nanos),
            seed: present(2, seed),
        }
    }
}

pub(crate) const WORDS: usize = 7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_table() {
        let p = RetryPolicy::default();
        assert_eq!(p.retries, 3);
        assert_eq!(p.jitter, Jitter::Full);
        assert_eq!(p.base_delay, Duration::from_secs(1));
        assert_eq!(p.max_delay, Duration::from_secs(60));
        assert_eq!((p.timeout, p.deadline, p.seed), (None, None, None));
        assert_eq!(p.max_hint, None);
    }

    #[test]
    fn words_round_trip() {
        let policies = [
            RetryPolicy::new(),
            RetryPolicy::new()
                .retries(u32::MAX)
                .jitter(Jitter::Decorrelated)
                .base_delay(Duration::from_nanos(1))
                .max_delay(Duration::from_nanos(u64::MAX))
                .timeout(Duration::from_millis(1))
                .deadline(Duration::from_secs(9))
                .max_hint(Duration::ZERO)
                .seed(u64::MAX),
            RetryPolicy::new()
                .jitter(Jitter::None)
                .max_hint(Duration::from_secs(60))
                .seed(0),
        ];
        for p in policies {
            assert_eq!(RetryPolicy::from_words(p.to_words()), p);
        }
    }

    #[test]
    fn impossible_settings_are_reported() {
        let low_cap = RetryPolicy::new().max_delay(Duration::from_millis(10));
        assert!(
            low_cap
                .validate()
                .unwrap_err()
                .to_string()
                .contains("below base_delay")
        );
        assert!(
            RetryPolicy::new()
                .timeout(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(
            RetryPolicy::new()
                .deadline(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(RetryPolicy::new().retries(u32::MAX).validate().is_ok());
    }
}
