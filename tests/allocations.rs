//! The healthy path allocates nothing: a call that succeeds at once through the attribute, `Call`
//! or `Retry::run`, with a closed named breaker, never touches the heap, with a timeout or not.
//! Only a call that has to wait pays, once, for its timer and backoff.
//!
//! Allocations are counted on this thread by a counting global allocator, around calls polled by
//! hand, so the executor's own bookkeeping is not counted with them.

use std::ops::ControlFlow;
use std::pin::pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};

use allocation_counter::measure;
use resilient::{AlwaysTransient, Breaker, BreakerState, Call, Error, Retry, RetryPolicy};

const CALLS: u64 = 1_000;

#[resilient::resilient(breaker = "alloc-attribute")]
async fn annotated(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_add(1))
}

/// A per-attempt timeout and a deadline: the timer is made only for an attempt that waits.
#[resilient::resilient(breaker = "alloc-timed", timeout = "30s", deadline = "2m")]
async fn timed(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_add(1))
}

#[derive(Debug, PartialEq)]
enum Flaky {
    Busy,
    Resilience(Error),
}

impl From<Error> for Flaky {
    fn from(error: Error) -> Self {
        Flaky::Resilience(error)
    }
}

#[resilient::resilient(retries = 2, jitter = "none", base_delay = "1ms")]
async fn flaky(failures_left: &AtomicU32) -> Result<u32, Flaky> {
    match failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
        Ok(_) => Err(Flaky::Busy),
        Err(_) => Ok(7),
    }
}

async fn trivial(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_add(1))
}

async fn by_hand(breaker: &Breaker, x: u64) -> Result<u64, Error> {
    static POLICY: RetryPolicy = RetryPolicy::new();
    let mut call = Call::new(&POLICY, Some(breaker), AlwaysTransient);
    loop {
        if let ControlFlow::Break(result) = call.attempt(trivial(x)).await {
            return result;
        }
    }
}

/// Polls `future` once, expecting it to finish without waiting.
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a call that succeeds at once should not wait"),
    }
}

/// Counts the allocations of `CALLS` calls, after one call that does the first-use work (the
/// registry lookup a call site makes once, the thread's counter slot).
fn allocations_per_healthy_calls<F, Fut>(mut call: F) -> u64
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<u64, Error>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let _entered = runtime.enter();
    assert_eq!(ready(call(0)).ok(), Some(1));
    let info = measure(|| {
        for x in 0..CALLS {
            assert_eq!(ready(call(x)).ok(), Some(x + 1));
        }
    });
    info.count_total
}

#[test]
fn a_healthy_call_through_the_attribute_allocates_nothing() {
    assert_eq!(allocations_per_healthy_calls(annotated), 0);
    assert_eq!(
        resilient::breaker("alloc-attribute").state(),
        BreakerState::Closed
    );
}

#[test]
fn a_healthy_call_with_a_timeout_and_a_deadline_allocates_nothing() {
    assert_eq!(allocations_per_healthy_calls(timed), 0);
}

#[test]
fn a_healthy_call_by_hand_allocates_nothing() {
    static BREAKER: OnceLock<Breaker> = OnceLock::new();
    let breaker = BREAKER.get_or_init(|| resilient::breaker("alloc-by-hand"));
    assert_eq!(allocations_per_healthy_calls(|x| by_hand(breaker, x)), 0);
    assert_eq!(breaker.status().successes, CALLS + 1);
}

#[test]
fn a_healthy_call_through_retry_run_allocates_nothing() {
    let breaker = resilient::breaker("alloc-retry-run");
    let allocations = allocations_per_healthy_calls(|x| {
        Retry::new(RetryPolicy::new())
            .breaker(&breaker)
            .run(move || trivial(x))
    });
    assert_eq!(allocations, 0);
}

/// A call that has to wait makes its timer and backoff once, in one block, however many times
/// it waits: the allocation the healthy path avoids is paid only by calls that retry.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_call_that_waits_allocates_one_block_for_all_its_waits() {
    // One call first, so that what a thread sets up once (the timer wheel's first use, the
    // thread's random generator) is not counted as the measured calls'.
    assert_eq!(flaky(&AtomicU32::new(1)).await, Ok(7));

    for failures in [1, 2] {
        let failures_left = AtomicU32::new(failures);
        let mut call = pin!(flaky(&failures_left));
        let mut cx = Context::from_waker(Waker::noop());
        let info = measure(|| assert!(call.as_mut().poll(&mut cx).is_pending()));
        assert_eq!(info.count_total, 1, "{failures} failure(s): the first wait");
        // Between polls the paused clock moves on; the later waits reuse the block.
        let mut later = 0;
        loop {
            tokio::time::advance(std::time::Duration::from_millis(2)).await;
            let mut result = None;
            later += measure(|| {
                if let Poll::Ready(value) = call.as_mut().poll(&mut cx) {
                    result = Some(value);
                }
            })
            .count_total;
            if let Some(value) = result {
                assert_eq!(value, Ok(7), "{failures} failure(s)");
                break;
            }
        }
        assert_eq!(later, 0, "{failures} failure(s): the waits after the first");
    }
}
