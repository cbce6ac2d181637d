//! The cost of one successful call of a trivial async fn, through `resilient` and through the
//! crates people use instead, in one run on one machine.
//!
//! Run from this directory:
//!
//! ```text
//! cargo bench --bench peers -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! `one call` runs every call in one loop on a current-thread runtime. `two threads` shares one
//! breaker between 64 tasks on a two-worker runtime; its time is wall time divided by calls, so
//! it reads as calls per second of the whole runtime rather than the latency of one call.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::futures::CircuitBreaker as _;
use recloser::{AsyncRecloser, Recloser};
use resilient::resilient;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_resilience::circuitbreaker::{CircuitBreakerError, CircuitBreakerLayer};
use tower_resilience::retry::RetryLayer;

type TowerError = CircuitBreakerError<Infallible>;

/// Tasks sharing the breaker in the contended case.
const TASKS: u64 = 64;

async fn trivial(x: u64) -> Result<u64, Infallible> {
    Ok(black_box(x).wrapping_add(1))
}

#[resilient]
async fn resilient_retry(x: u64) -> Result<u64, resilient::Error> {
    Ok(black_box(x).wrapping_add(1))
}

#[resilient(breaker = "bench-one-call")]
async fn resilient_breaker(x: u64) -> Result<u64, resilient::Error> {
    Ok(black_box(x).wrapping_add(1))
}

#[resilient(breaker = "bench-contended")]
async fn resilient_shared(x: u64) -> Result<u64, resilient::Error> {
    Ok(black_box(x).wrapping_add(1))
}

/// The breaker alone, without the retry loop: what the breaker-only peers do.
async fn guarded(breaker: &resilient::Breaker, x: u64) -> Result<u64, resilient::Error> {
    let permit = breaker.try_acquire()?;
    let result = trivial(x).await;
    permit.success();
    Ok(result.unwrap_or_else(|never| match never {}))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a two-worker runtime")
}

/// A tower stack of tower-resilience's retry around its circuit breaker around `trivial`: retry
/// outside the breaker, as `resilient` composes them.
fn tower_stack()
-> impl Service<u64, Response = u64, Error = TowerError, Future: Send> + Clone + Send + 'static {
    let breaker = CircuitBreakerLayer::builder()
        .build()
        .expect("a default circuit breaker");
    let retry = RetryLayer::<u64, u64, TowerError>::builder()
        .max_attempts(4)
        .exponential_backoff(Duration::from_millis(100))
        .build();
    ServiceBuilder::new()
        .layer(retry)
        .layer(breaker)
        .service(tower::service_fn(trivial))
}

fn one_call(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("one call");

    group.bench_function("direct", |b| b.to_async(&rt).iter(|| trivial(black_box(1))));
    group.bench_function("resilient: #[resilient]", |b| {
        b.to_async(&rt).iter(|| resilient_retry(black_box(1)))
    });
    group.bench_function("resilient: #[resilient(breaker)]", |b| {
        b.to_async(&rt).iter(|| resilient_breaker(black_box(1)))
    });
    let breaker = resilient::breaker("bench-by-hand");
    group.bench_function("resilient: Breaker by hand", |b| {
        b.to_async(&rt).iter(|| guarded(&breaker, black_box(1)))
    });
    group.bench_function("backon: retry", |b| {
        b.to_async(&rt)
            .iter(|| (|| trivial(black_box(1))).retry(ExponentialBuilder::default()))
    });
    let failsafe = failsafe::Config::new().build();
    group.bench_function("failsafe: breaker", |b| {
        b.to_async(&rt)
            .iter(|| failsafe.call(trivial(black_box(1))))
    });
    let recloser = AsyncRecloser::from(Recloser::custom().build());
    group.bench_function("recloser: breaker", |b| {
        b.to_async(&rt)
            .iter(|| recloser.call(trivial(black_box(1))))
    });
    let stack = tower_stack();
    group.bench_function("tower-resilience: retry + breaker", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let mut service = stack.clone();
            async move {
                let start = Instant::now();
                for i in 0..iters {
                    let ready = service.ready().await.expect("the breaker is closed");
                    black_box(ready.call(black_box(i)).await.ok());
                }
                start.elapsed()
            }
        })
    });
    group.finish();
}

/// Spreads `iters` calls of `call` over [`TASKS`] tasks and times them all.
async fn contended<F, Fut>(iters: u64, call: F) -> Duration
where
    F: Fn(u64) -> Fut + Copy + Send + 'static,
    Fut: Future + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            tokio::spawn(async move {
                for i in 0..calls_of(task, iters) {
                    black_box(call(black_box(i)).await);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a benchmark task panicked");
    }
    start.elapsed()
}

/// The share of `iters` calls that task `task` makes.
fn calls_of(task: u64, iters: u64) -> u64 {
    iters / TASKS + u64::from(task < iters % TASKS)
}

/// Keeps a shared breaker for the rest of the process, so every task can borrow it without
/// touching a reference count on each call.
fn shared<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

fn two_threads(c: &mut Criterion) {
    let rt = two_workers();
    let mut group = c.benchmark_group("two threads, one shared breaker");

    group.bench_function("direct", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| contended(iters, trivial))
    });
    group.bench_function("resilient: #[resilient(breaker)]", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| contended(iters, resilient_shared))
    });
    let breaker = shared(resilient::breaker("bench-contended-by-hand"));
    group.bench_function("resilient: Breaker by hand", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| contended(iters, |x| guarded(breaker, x)))
    });
    let failsafe = shared(failsafe::Config::new().build());
    group.bench_function("failsafe: breaker", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| contended(iters, |x| failsafe.call(trivial(x))))
    });
    let recloser = shared(AsyncRecloser::from(Recloser::custom().build()));
    group.bench_function("recloser: breaker", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| contended(iters, |x| recloser.call(trivial(x))))
    });
    // A tower service is cloned once per task, as a server clones it per connection; the
    // clones share one breaker.
    let stack = tower_stack();
    group.bench_function("tower-resilience: retry + breaker", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let stack = stack.clone();
            async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|task| {
                        let mut service = stack.clone();
                        tokio::spawn(async move {
                            for i in 0..calls_of(task, iters) {
                                let ready = service.ready().await.expect("the breaker is closed");
                                black_box(ready.call(black_box(i)).await.ok());
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("a benchmark task panicked");
                }
                start.elapsed()
            }
        })
    });
    group.finish();
}

criterion_group!(benches, one_call, two_threads);
criterion_main!(benches);
