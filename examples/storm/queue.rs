//! Virtual time: the event queue and the network's delay model.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::{Rng, RngExt};

/// Virtual time in nanoseconds since the start of a run.
pub type Nanos = u64;

/// Nanoseconds in one millisecond.
pub const MS: Nanos = 1_000_000;

/// Events ordered by time; events at the same instant come out in the order they were pushed.
///
/// The insertion counter makes runs deterministic: a heap alone would break ties by whatever
/// order its sift happened to leave, and ties are common when a backoff adds whole milliseconds.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<(Nanos, u64, Slot<E>)>>,
    pushed: u64,
    now: Nanos,
}

/// Wraps an event so the heap never compares events themselves, only their time and order.
#[derive(Debug)]
struct Slot<E>(E);

impl<E> PartialEq for Slot<E> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<E> Eq for Slot<E> {}

impl<E> PartialOrd for Slot<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Slot<E> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time zero.
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            pushed: 0,
            now: 0,
        }
    }

    /// The time of the event popped last: the simulation's clock.
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Schedules `event` at `at`, which must not lie in the past.
    pub fn push(&mut self, at: Nanos, event: E) {
        debug_assert!(at >= self.now, "an event scheduled in the past");
        self.heap.push(Reverse((at, self.pushed, Slot(event))));
        self.pushed += 1;
    }

    /// Takes the earliest event and moves the clock to its time.
    pub fn pop(&mut self) -> Option<(Nanos, E)> {
        let Reverse((at, _, Slot(event))) = self.heap.pop()?;
        self.now = at;
        Some((at, event))
    }
}

/// One network hop: |Normal(mean, sd)|, as in the study.
#[derive(Clone, Copy, Debug)]
pub struct Network {
    mean_ms: f64,
    sd_ms: f64,
}

impl Network {
    /// The study's network: mean 10 ms, standard deviation 2 ms.
    pub const STUDY: Network = Network {
        mean_ms: 10.0,
        sd_ms: 2.0,
    };

    /// A network where every hop takes exactly `ms` milliseconds, for tracing runs by hand.
    #[cfg(test)]
    pub const fn constant(ms: u32) -> Network {
        Network {
            mean_ms: ms as f64,
            sd_ms: 0.0,
        }
    }

    /// The time one message takes, in nanoseconds.
    pub fn delay(&self, rng: &mut impl Rng) -> Nanos {
        let ms = (self.mean_ms + self.sd_ms * standard_normal(rng)).abs();
        (ms * MS as f64) as Nanos
    }
}

/// One draw from Normal(0, 1) by the Box-Muller transform, so the example needs no
/// distributions crate. It spends two uniforms per draw and discards the sine half, which keeps
/// each draw independent of the call order.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    // 1 - u maps [0, 1) onto (0, 1], keeping ln away from zero.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn events_come_out_by_time_then_by_insertion() {
        let mut queue = EventQueue::new();
        queue.push(30, "c");
        queue.push(10, "a1");
        queue.push(20, "b");
        queue.push(10, "a2");
        queue.push(10, "a3");

        let mut order = Vec::new();
        while let Some((at, event)) = queue.pop() {
            assert_eq!(queue.now(), at);
            order.push(event);
        }
        assert_eq!(order, ["a1", "a2", "a3", "b", "c"]);
    }

    #[test]
    fn events_pushed_while_running_keep_time_moving_forward() {
        let mut queue = EventQueue::new();
        queue.push(5, 0u32);
        let mut last = 0;
        while let Some((at, hops)) = queue.pop() {
            assert!(at >= last);
            last = at;
            if hops < 100 {
                queue.push(at + u64::from(hops % 3), hops + 1);
            }
        }
        assert_eq!(queue.now(), last);
    }

    #[test]
    fn network_delays_have_the_studys_mean_and_spread() {
        let mut rng = SmallRng::seed_from_u64(1);
        let draws: Vec<f64> = (0..20_000)
            .map(|_| Network::STUDY.delay(&mut rng) as f64 / MS as f64)
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;

        assert!((mean - 10.0).abs() < 0.1, "mean {mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.1, "sd {}", var.sqrt());
        assert!(draws.iter().all(|&d| d >= 0.0));
    }
}
