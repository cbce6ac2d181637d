//! What a healthy call pays: a trivial async fn called directly, and through the runtime with
//! and without a named circuit breaker, on one thread and on two threads sharing the breaker.
//!
//! Each sample runs its calls in one loop inside one future, so the numbers are the cost of the
//! call itself, not of entering the executor.
//!
//! Run: `cargo bench --bench overhead -- --warm-up-time 2 --measurement-time 5`

use std::hint::black_box;
use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use resilient::{AlwaysTransient, Breaker, Call, Error, Retry, RetryPolicy};

async fn trivial(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_add(1))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// Times `iters` calls of `call` in one loop on a current-thread runtime.
fn looped<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, mut call: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<u64, Error>>,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            black_box(call(black_box(i)).await.ok());
        }
        start.elapsed()
    })
}

/// A call that waits once before it answers, as every network call does: its first poll is
/// pending, so a timeout around it has to set a timer.
async fn waits_once(x: u64) -> Result<u64, Error> {
    tokio::task::yield_now().await;
    Ok(x.wrapping_add(1))
}

#[resilient::resilient(breaker = "bench-attr-waits", timeout = "30s")]
async fn annotated_waits_once(x: u64) -> Result<u64, Error> {
    waits_once(x).await
}

/// The engine by hand, as the attribute's docs spell it out: a policy in a static and a named
/// breaker looked up once.
async fn by_hand(x: u64) -> Result<u64, Error> {
    static POLICY: RetryPolicy = RetryPolicy::new();
    static BREAKER: OnceLock<Breaker> = OnceLock::new();
    let breaker = BREAKER.get_or_init(|| resilient::breaker("bench-hand"));
    let mut call = Call::new(&POLICY, Some(breaker), AlwaysTransient);
    loop {
        if let ControlFlow::Break(result) = call.attempt(trivial(x)).await {
            return result;
        }
    }
}

/// The same without a breaker: retry alone.
async fn by_hand_retry_only(x: u64) -> Result<u64, Error> {
    static POLICY: RetryPolicy = RetryPolicy::new();
    let mut call = Call::new(&POLICY, None, AlwaysTransient);
    loop {
        if let ControlFlow::Break(result) = call.attempt(trivial(x)).await {
            return result;
        }
    }
}

/// The same trivial fn under the attribute, with a named breaker: what a user writes.
#[resilient::resilient(breaker = "bench-attr")]
async fn annotated(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_add(1))
}

/// The same with a per-attempt timeout, as the README's example has: every call arms a timer.
#[resilient::resilient(breaker = "bench-attr-timeout", timeout = "30s")]
async fn annotated_with_timeout(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_add(1))
}

fn single_thread(c: &mut Criterion) {
    let rt = runtime();
    let named = resilient::breaker("bench-single");
    let mut group = c.benchmark_group("single thread");
    group.bench_function("direct", |b| b.iter_custom(|n| looped(&rt, n, trivial)));
    group.bench_function("attribute", |b| {
        b.iter_custom(|n| looped(&rt, n, annotated))
    });
    group.bench_function("direct under tokio::time::timeout", |b| {
        b.iter_custom(|n| {
            looped(&rt, n, |x| async move {
                tokio::time::timeout(Duration::from_secs(30), trivial(x))
                    .await
                    .unwrap_or(Ok(0))
            })
        })
    });
    group.bench_function("attribute + timeout", |b| {
        b.iter_custom(|n| looped(&rt, n, annotated_with_timeout))
    });
    group.bench_function("waits once, direct", |b| {
        b.iter_custom(|n| looped(&rt, n, waits_once))
    });
    group.bench_function("waits once, under tokio::time::timeout", |b| {
        b.iter_custom(|n| {
            looped(&rt, n, |x| async move {
                tokio::time::timeout(Duration::from_secs(30), waits_once(x))
                    .await
                    .unwrap_or(Ok(0))
            })
        })
    });
    group.bench_function("waits once, attribute + timeout", |b| {
        b.iter_custom(|n| looped(&rt, n, annotated_waits_once))
    });
    group.bench_function("Call, no breaker", |b| {
        b.iter_custom(|n| looped(&rt, n, by_hand_retry_only))
    });
    group.bench_function("Call + named breaker", |b| {
        b.iter_custom(|n| looped(&rt, n, by_hand))
    });
    group.bench_function("Retry::run + named breaker", |b| {
        b.iter_custom(|n| {
            looped(&rt, n, |x| {
                Retry::new(RetryPolicy::new())
                    .breaker(&named)
                    .run(move || trivial(x))
            })
        })
    });
    group.finish();
}

/// Two threads, each with its own runtime, calling through one shared breaker at once. The
/// time is per call on one thread, so it compares directly with the single-thread numbers.
fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("two threads");
    group.bench_function("direct", |b| {
        b.iter_custom(|n| on_two_threads(n, |rt, n| looped(rt, n, trivial)))
    });
    group.bench_function("attribute, shared breaker", |b| {
        b.iter_custom(|n| on_two_threads(n, |rt, n| looped(rt, n, annotated)))
    });
    group.bench_function("Call + shared breaker", |b| {
        b.iter_custom(|n| on_two_threads(n, |rt, n| looped(rt, n, by_hand)))
    });
    group.finish();
}

fn on_two_threads(
    iters: u64,
    work: impl Fn(&tokio::runtime::Runtime, u64) -> Duration + Sync,
) -> Duration {
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| s.spawn(|| work(&runtime(), iters)))
            .collect();
        let times: Vec<Duration> = threads
            .into_iter()
            .map(|t| t.join().expect("bench thread"))
            .collect();
        times.into_iter().max().unwrap_or_default()
    })
}

criterion_group!(benches, single_thread, two_threads);
criterion_main!(benches);
