//! Properties that must hold for every policy, not just the ones a test author thought of.

use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use resilient_runtime::{Backoff, Error, Jitter, Retry, RetryPolicy};

fn jitter() -> impl Strategy<Value = Jitter> {
    prop::sample::select(Jitter::ALL.to_vec())
}

/// Durations from a nanosecond to a day, weighted towards the small end where rounding bites.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..2_000).prop_map(Duration::from_nanos),
        (0u64..10_000).prop_map(Duration::from_micros),
        (0u64..86_400_000).prop_map(Duration::from_millis),
    ]
}

proptest! {
    #[test]
    fn every_delay_stays_inside_its_kinds_bounds_and_the_cap(
        jitter in jitter(),
        base in duration(),
        extra in duration(),
        seed in any::<u64>(),
        retries in 1u32..2_000,
    ) {
        let max = base + extra;
        let mut backoff = Backoff::with(jitter, base, max);
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut previous = base;
        for k in 1..=retries {
            let ceiling = backoff.ceiling(k);
            prop_assert!(ceiling <= max);
            let delay = backoff.next_delay(&mut rng);
            prop_assert!(delay <= max, "{jitter} retry {k}: {delay:?} above cap {max:?}");
            match jitter {
                Jitter::None => prop_assert_eq!(delay, ceiling),
                Jitter::Full => prop_assert!(delay <= ceiling),
                Jitter::Equal => prop_assert!(delay >= ceiling / 2 && delay <= ceiling),
                Jitter::Decorrelated => {
                    prop_assert!(delay >= base.min(max));
                    prop_assert!(delay <= (previous * 3).max(base).min(max));
                    previous = delay;
                }
            }
        }
    }

    #[test]
    fn a_call_never_outlives_its_deadline(
        jitter in jitter(),
        base_ms in 0u64..5_000,
        retries in 0u32..30,
        deadline_ms in 1u64..60_000,
        attempt_ms in 0u64..3_000,
        seed in any::<u64>(),
    ) {
        let policy = RetryPolicy::new()
            .retries(retries)
            .jitter(jitter)
            .base_delay(Duration::from_millis(base_ms))
            .max_delay(Duration::from_secs(10))
            .deadline(Duration::from_millis(deadline_ms))
            .seed(seed);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let (elapsed, attempts) = runtime.block_on(async {
            let started = tokio::time::Instant::now();
            let mut attempts = 0u32;
            let _: Result<(), Error> = Retry::new(policy)
                .run(|| {
                    attempts += 1;
                    async move {
                        tokio::time::sleep(Duration::from_millis(attempt_ms)).await;
                        Err(Error::Timeout { attempt: 0, after: Duration::ZERO })
                    }
                })
                .await;
            (started.elapsed(), attempts)
        });
        prop_assert!(elapsed <= Duration::from_millis(deadline_ms), "{elapsed:?}");
        prop_assert!(attempts <= retries + 1);
    }
}
