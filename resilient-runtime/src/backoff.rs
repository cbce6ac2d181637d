//! Exponential backoff and the four jitter kinds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::{Rng, RngExt};

use crate::error::ConfigError;
use crate::policy::RetryPolicy;

/// How the delay before a retry is randomised.
///
/// `None`, `Full` and `Equal` start from the same ceiling for retry `k` (counting from 1):
/// `d = min(max_delay, base_delay · 2^(k−1))`. `Decorrelated` grows from the previous delay
/// instead, with no count of retries.
///
/// | kind | delay before retry `k` |
/// | --- | --- |
/// | `None` | `d` |
/// | `Full` | uniform in `[0, d]` |
/// | `Equal` | `d/2` + uniform in `[0, d/2]` |
/// | `Decorrelated` | `min(max_delay, uniform in [base_delay, 3 · previous])` |
///
/// For `Decorrelated`, the delay before the first retry counts `base_delay` as the previous one.
///
/// `Full` spreads a fleet of clients the most and is the default. `None` makes every client that
/// failed at the same instant retry at the same instant, which is what jitter exists to prevent;
/// use it for tests and for single clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// The ceiling itself, with no randomness.
    None,
    /// Uniform between zero and the ceiling.
    #[default]
    Full,
    /// Half the ceiling plus uniform in the other half.
    Equal,
    /// Uniform between the base delay and three times the previous delay, capped.
    Decorrelated,
}

impl Jitter {
    /// Every kind, in the order of the table above.
    pub const ALL: [Jitter; 4] = [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ];

    /// The lowercase name that [`FromStr`] accepts and `Display` prints.
    pub const fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Jitter {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Jitter::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                ConfigError::new(format!(
                    "unknown jitter kind `{s}`; \
                 expected one of \"none\", \"full\", \"equal\", \"decorrelated\""
                ))
            })
    }
}

/// The sequence of delays of one call: the state a retry loop keeps between attempts.
///
/// ```
/// use std::time::Duration;
/// use rand::SeedableRng;
/// use resilient_runtime::{Backoff, Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::new()
///     .jitter(Jitter::None)
///     .base_delay(Duration::from_millis(100))
///     .max_delay(Duration::from_millis(300));
/// let mut backoff = Backoff::new(&policy);
/// let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
/// let delays: Vec<_> = (0..4).map(|_| backoff.next_delay(&mut rng)).collect();
/// assert_eq!(delays, [100, 200, 300, 300].map(Duration::from_millis));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    jitter: Jitter,
    base: u64,
    max: u64,
    retry: u32,
    previous: u64,
}

impl Backoff {
    /// Starts the sequence for `policy`, before the first retry.
    pub fn new(policy: &RetryPolicy) -> Self {
        Self::with(policy.jitter, policy.base_delay, policy.max_delay)
    }

    /// Starts a sequence from its parts.
    pub fn with(jitter: Jitter, base_delay: Duration, max_delay: Duration) -> Self {
        let base = nanos(base_delay);
        Backoff {
            jitter,
            base,
            max: nanos(max_delay),
            retry: 0,
            previous: base,
        }
    }

    /// How many delays this sequence has handed out.
    pub fn retries(&self) -> u32 {
        self.retry
    }

    /// The ceiling `d` for retry `k` (from 1): `min(max_delay, base_delay · 2^(k−1))`,
    /// saturating.
    pub fn ceiling(&self, k: u32) -> Duration {
        Duration::from_nanos(self.ceiling_nanos(k))
    }

    fn ceiling_nanos(&self, k: u32) -> u64 {
        let doublings = k.saturating_sub(1);
        let grown = if doublings >= 64 {
            if self.base == 0 { 0 } else { u64::MAX }
        } else {
            self.base.saturating_mul(1u64 << doublings)
        };
        grown.min(self.max)
    }

    /// The delay before the next retry, drawn from `rng`.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        self.retry = self.retry.saturating_add(1);
        let d = self.ceiling_nanos(self.retry);
        let delay = match self.jitter {
            Jitter::None => d,
            Jitter::Full => rng.random_range(0..=d),
            Jitter::Equal => {
                let half = d / 2;
                // `d - half` rather than `half` keeps an odd nanosecond, so the top is exactly d.
                half + rng.random_range(0..=d - half)
            }
            Jitter::Decorrelated => {
                let low = self.base;
                let high = self.previous.saturating_mul(3).max(low);
                let drawn = rng.random_range(low..=high).min(self.max);
                self.previous = drawn;
                drawn
            }
        };
        Duration::from_nanos(delay)
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const MS: Duration = Duration::from_millis(1);

    fn backoff(jitter: Jitter, base: Duration, max: Duration) -> Backoff {
        Backoff::with(jitter, base, max)
    }

    #[test]
    fn ceiling_doubles_then_caps_and_never_overflows() {
        let b = backoff(Jitter::None, 100 * MS, Duration::from_secs(60));
        assert_eq!(b.ceiling(1), 100 * MS);
        assert_eq!(b.ceiling(2), 200 * MS);
        assert_eq!(b.ceiling(10), 51_200 * MS);
        assert_eq!(b.ceiling(11), Duration::from_secs(60));
        for k in [64, 65, 1_000, u32::MAX] {
            assert_eq!(b.ceiling(k), Duration::from_secs(60));
        }
        let huge = backoff(Jitter::None, Duration::MAX, Duration::MAX);
        assert_eq!(huge.ceiling(u32::MAX), Duration::from_nanos(u64::MAX));
        let zero = backoff(Jitter::None, Duration::ZERO, Duration::MAX);
        assert_eq!(zero.ceiling(1_000), Duration::ZERO);
    }

    #[test]
    fn every_kind_stays_in_bounds_for_a_thousand_retries() {
        let base = Duration::from_micros(250);
        let max = Duration::from_secs(2);
        let mut rng = SmallRng::seed_from_u64(1);
        for jitter in Jitter::ALL {
            let mut b = backoff(jitter, base, max);
            let mut previous = base;
            for k in 1..=1_000 {
                let d = b.ceiling(k);
                let delay = b.next_delay(&mut rng);
                assert!(delay <= max, "{jitter} retry {k}: {delay:?} above the cap");
                match jitter {
                    Jitter::None => assert_eq!(delay, d),
                    Jitter::Full => assert!(delay <= d),
                    Jitter::Equal => assert!(delay >= d / 2 && delay <= d, "{delay:?} vs {d:?}"),
                    Jitter::Decorrelated => {
                        assert!(delay >= base.min(max));
                        assert!(delay <= (previous * 3).max(base));
                        previous = delay;
                    }
                }
            }
            assert_eq!(b.retries(), 1_000);
        }
    }

    #[test]
    fn sub_millisecond_delays_keep_their_nanoseconds() {
        let mut b = backoff(
            Jitter::None,
            Duration::from_nanos(1_500),
            Duration::from_micros(5),
        );
        let mut rng = SmallRng::seed_from_u64(0);
        let delays: Vec<_> = (0..4).map(|_| b.next_delay(&mut rng).as_nanos()).collect();
        assert_eq!(delays, [1_500, 3_000, 5_000, 5_000]);
    }

    #[test]
    fn full_jitter_is_uniform_over_the_whole_window() {
        let mut rng = SmallRng::seed_from_u64(42);
        let d = Duration::from_secs(8);
        let samples: Vec<f64> = (0..20_000)
            .map(|_| {
                let mut b = backoff(
                    Jitter::Full,
                    Duration::from_secs(1),
                    Duration::from_secs(60),
                );
                for _ in 0..3 {
                    b.next_delay(&mut rng);
                }
                b.next_delay(&mut rng).as_secs_f64() / d.as_secs_f64()
            })
            .collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean} of d, expected 0.5");
        // Each tenth of the window holds about a tenth of the samples.
        let mut deciles = [0usize; 10];
        for s in &samples {
            deciles[((s * 10.0) as usize).min(9)] += 1;
        }
        for (i, n) in deciles.iter().enumerate() {
            assert!((1_700..2_300).contains(n), "decile {i} holds {n} of 20000");
        }
    }

    #[test]
    fn equal_jitter_fills_the_upper_half() {
        let mut rng = SmallRng::seed_from_u64(43);
        let samples: Vec<f64> = (0..20_000)
            .map(|_| {
                let mut b = backoff(
                    Jitter::Equal,
                    Duration::from_secs(1),
                    Duration::from_secs(60),
                );
                b.next_delay(&mut rng).as_secs_f64()
            })
            .collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 0.75).abs() < 0.01, "mean {mean}, expected 0.75");
        let min = samples.iter().copied().fold(f64::MAX, f64::min);
        let max = samples.iter().copied().fold(0.0, f64::max);
        assert!(min < 0.51 && max > 0.99, "values span [{min}, {max}]");
    }

    #[test]
    fn decorrelated_jitter_grows_from_base_and_spreads() {
        let mut rng = SmallRng::seed_from_u64(44);
        let base = Duration::from_millis(10);
        let firsts: Vec<f64> = (0..20_000)
            .map(|_| backoff(Jitter::Decorrelated, base, Duration::from_secs(60)))
            .map(|mut b| b.next_delay(&mut rng).as_secs_f64() * 1_000.0)
            .collect();
        // The first draw is uniform in [base, 3·base] = [10, 30] ms.
        let mean = firsts.iter().sum::<f64>() / firsts.len() as f64;
        assert!((mean - 20.0).abs() < 0.2, "mean {mean} ms, expected 20");
        let distinct: std::collections::BTreeSet<u64> = firsts.iter().map(|m| *m as u64).collect();
        assert!(
            distinct.len() >= 20,
            "only {} distinct millisecond values",
            distinct.len()
        );
    }

    #[test]
    fn decorrelated_survives_a_cap_below_base() {
        let mut rng = SmallRng::seed_from_u64(5);
        let mut b = backoff(
            Jitter::Decorrelated,
            Duration::from_secs(10),
            Duration::from_secs(1),
        );
        for _ in 0..100 {
            assert_eq!(b.next_delay(&mut rng), Duration::from_secs(1));
        }
    }

    #[test]
    fn a_seeded_rng_reproduces_the_sequence() {
        let run = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut b = backoff(Jitter::Full, MS, Duration::from_secs(1));
            (0..20).map(|_| b.next_delay(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn jitter_names_round_trip_and_typos_are_errors() {
        for kind in Jitter::ALL {
            assert_eq!(kind.to_string().parse::<Jitter>().ok(), Some(kind));
        }
        let err = "fuul".parse::<Jitter>().unwrap_err();
        assert!(err.to_string().contains("\"full\""), "{err}");
    }
}
