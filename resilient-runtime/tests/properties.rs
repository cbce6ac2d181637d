//! Properties that must hold for every policy, not just the ones a test author thought of.

use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use resilient_runtime::{Backoff, Error, Jitter, Retry, RetryPolicy, Verdict};

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
        timeout_ms in proptest::option::of(1u64..3_000),
        hint in prop_oneof![
            Just(None),
            (0u64..120_000).prop_map(|ms| Some(Duration::from_millis(ms))),
            Just(Some(Duration::MAX)),
        ],
        seed in any::<u64>(),
    ) {
        let mut policy = RetryPolicy::new()
            .retries(retries)
            .jitter(jitter)
            .base_delay(Duration::from_millis(base_ms))
            .max_delay(Duration::from_secs(10))
            .deadline(Duration::from_millis(deadline_ms))
            .seed(seed);
        if let Some(ms) = timeout_ms {
            policy = policy.timeout(Duration::from_millis(ms));
        }
        // Every failure carries the server's hint, if the case has one.
        let verdict = move |_: &Error| hint.map_or(Verdict::Transient, Verdict::RetryAfter);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let (elapsed, attempts) = runtime.block_on(async {
            let started = tokio::time::Instant::now();
            let mut attempts = 0u32;
            let _: Result<(), Error> = Retry::new(policy)
                .retry_if(verdict)
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

/// Server hints come from the network: whatever the bytes, reading them gives a duration or
/// nothing, never a panic.
#[cfg(feature = "reqwest")]
mod hints {
    use std::time::{Duration, SystemTime};

    use proptest::prelude::*;
    use reqwest::header::{HeaderMap, HeaderValue};
    use resilient_runtime::http::{
        parse_reset, parse_retry_after, parse_retry_after_ms, retry_hint,
    };

    /// Text that looks like a hint often enough to reach the deep branches.
    fn hintish() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9.hmsuµn -]{0,24}",
            "[0-9]{1,30}",
            "(Mon|Sun|Xyz), [0-9]{1,2} (Jan|Feb|Dec) [0-9]{1,5} [0-9:]{1,9} GMT",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn hint_parsers_never_panic(text in hintish(), seconds in any::<u64>()) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds % (1 << 40));
            let _ = parse_retry_after_ms(&text);
            let _ = parse_retry_after(&text, now);
            let _ = parse_reset(&text);
        }

        #[test]
        fn any_header_bytes_give_a_hint_or_none(
            bytes in prop::collection::vec(any::<u8>(), 0..40),
            name in prop::sample::select(vec![
                "retry-after",
                "retry-after-ms",
                "x-ratelimit-reset-requests",
                "x-ratelimit-reset-tokens",
                "x-ratelimit-remaining-tokens",
            ]),
        ) {
            // Bytes a header cannot hold never reach a client; every other byte string can.
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                let mut headers = HeaderMap::new();
                headers.insert(name, value);
                let _ = retry_hint(&headers);
            }
        }

        #[test]
        fn well_formed_resets_add_up(
            h in 0u64..100,
            m in 0u64..60,
            s in 0u64..60,
            ms in 0u64..1000,
        ) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let expected = Duration::from_secs(h * 3600 + m * 60 + s) + Duration::from_millis(ms);
            prop_assert_eq!(parse_reset(&text), Some(expected));
        }
    }
}
