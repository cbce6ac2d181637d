//! Where the retries of a crowd land when every client failed at the same instant: the picture
//! of a retry storm, and of what each jitter kind does to it.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use resilient::{Backoff, Jitter, RetryPolicy};

use crate::occ::nanos;
use crate::queue::{MS, Nanos};

/// The crowd and the policy every client in it follows.
#[derive(Clone, Copy, Debug)]
pub struct Crowd {
    /// How many clients failed at time zero.
    pub clients: usize,
    /// How many retries each makes, every one of them failing again.
    pub retries: u32,
    /// The policy's base delay.
    pub base: Duration,
    /// The policy's cap.
    pub cap: Duration,
    /// The width of one histogram bar.
    pub bin: Duration,
    /// Where the histogram stops; later retries are counted as beyond it.
    pub horizon: Duration,
}

impl Crowd {
    /// A thousand clients, four retries from a base of 100 ms capped at 1 s, in 20 ms bars.
    pub const DEFAULT: Crowd = Crowd {
        clients: 1_000,
        retries: 4,
        base: Duration::from_millis(100),
        cap: Duration::from_secs(1),
        bin: Duration::from_millis(20),
        horizon: Duration::from_millis(3_000),
    };
}

/// The histogram of one jitter kind.
#[derive(Clone, Debug)]
pub struct Landing {
    /// The jitter kind every client used.
    pub jitter: Jitter,
    /// Retries that landed in each bin, from time zero.
    pub bins: Vec<u32>,
    /// Retries that landed at or after the horizon.
    pub beyond: u32,
}

impl Landing {
    /// The most retries that landed in any one bin.
    pub fn peak(&self) -> u32 {
        self.bins.iter().copied().max().unwrap_or(0)
    }
}

/// Lands every retry of every client in `crowd`, once per jitter kind.
pub fn landings(crowd: &Crowd, seed: u64) -> Vec<Landing> {
    Jitter::ALL
        .into_iter()
        .map(|jitter| land(crowd, jitter, seed))
        .collect()
}

fn land(crowd: &Crowd, jitter: Jitter, seed: u64) -> Landing {
    let policy = RetryPolicy::new()
        .jitter(jitter)
        .base_delay(crowd.base)
        .max_delay(crowd.cap);
    let bin = nanos(crowd.bin).max(1);
    let horizon = nanos(crowd.horizon);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut bins = vec![0; horizon.div_ceil(bin) as usize];
    let mut beyond = 0;

    for _ in 0..crowd.clients {
        let mut backoff = Backoff::new(&policy);
        let mut at: Nanos = 0;
        for _ in 0..crowd.retries {
            at += nanos(backoff.next_delay(&mut rng));
            match bins.get_mut((at / bin) as usize) {
                Some(count) if at < horizon => *count += 1,
                _ => beyond += 1,
            }
        }
    }
    Landing {
        jitter,
        bins,
        beyond,
    }
}

/// Where bin `index` starts, in milliseconds.
pub fn bin_start_ms(crowd: &Crowd, index: usize) -> f64 {
    index as f64 * nanos(crowd.bin) as f64 / MS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Crowd = Crowd {
        clients: 200,
        ..Crowd::DEFAULT
    };

    #[test]
    fn without_jitter_every_client_retries_in_the_same_bins() {
        let landing = land(&SMALL, Jitter::None, 1);
        // 100, 300, 700 and 1,500 ms: the sums of the doubling ceilings.
        let bars: Vec<usize> = (0..landing.bins.len())
            .filter(|&i| landing.bins[i] > 0)
            .collect();
        assert_eq!(bars, [5, 15, 35, 75]);
        assert!(bars.iter().all(|&i| landing.bins[i] == 200));
    }

    #[test]
    fn jitter_spreads_the_crowd_and_loses_no_retry() {
        for landing in landings(&SMALL, 1) {
            let total: u32 = landing.bins.iter().sum::<u32>() + landing.beyond;
            assert_eq!(total, 200 * SMALL.retries, "{}", landing.jitter);
            if landing.jitter != Jitter::None {
                assert!(
                    landing.peak() < 100,
                    "{} peaks at {}",
                    landing.jitter,
                    landing.peak()
                );
            }
        }
    }
}
