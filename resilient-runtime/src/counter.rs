//! The success counter of a breaker, which every healthy call bumps.
//!
//! A shared atomic counter would cost each call a locked read-modify-write, and threads sharing a
//! breaker would pass its cache line back and forth. Instead each thread owns a slot, on a cache
//! line of its own, in every breaker's counter: only that thread writes it, so a plain load and
//! store add one without a locked instruction, and readers sum the slots. A thread hands its slot
//! back when it exits; threads beyond the number of slots share one atomic counter.

use crate::sync::{AtomicU64, Ordering};

/// Slots per counter: enough for a runtime's worker threads on most machines, at 128 bytes each.
#[cfg(not(resilient_loom))]
const SLOTS: usize = 16;
#[cfg(resilient_loom)]
const SLOTS: usize = 1;

pub(crate) struct Counter {
    owned: [Padded; SLOTS],
    shared: AtomicU64,
}

#[repr(align(128))]
struct Padded(AtomicU64);

impl Counter {
    pub(crate) fn new() -> Self {
        Counter {
            owned: std::array::from_fn(|_| Padded(AtomicU64::new(0))),
            shared: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(crate) fn add(&self) {
        match slot::mine() {
            Some(index) => {
                // This thread is the slot's only writer, so nothing can come between the load and
                // the store.
                let cell = &self.owned[index].0;
                cell.store(
                    cell.load(Ordering::Relaxed).wrapping_add(1),
                    Ordering::Relaxed,
                );
            }
            None => {
                self.shared.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn sum(&self) -> u64 {
        let owned = self.owned.iter().map(|cell| cell.0.load(Ordering::Relaxed));
        owned.fold(self.shared.load(Ordering::Relaxed), u64::wrapping_add)
    }
}

#[cfg(not(resilient_loom))]
mod slot {
    use std::cell::Cell;
    use std::sync::{Mutex, PoisonError};

    use super::SLOTS;

    /// Slot numbers not owned by a living thread. A thread that exits pushes its number back
    /// under this lock, and the next thread takes it under the same lock, so the new owner sees
    /// every count the old one wrote.
    static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    static FRESH: Mutex<usize> = Mutex::new(0);

    /// This thread has not asked for a slot yet.
    const UNCLAIMED: usize = usize::MAX;
    /// This thread has no slot: all were taken, or it handed its slot back on the way out.
    const NO_SLOT: usize = usize::MAX - 1;

    thread_local! {
        // A plain number with a constant start and nothing to drop, so reading it is one load
        // on the hot path; the hand-back at exit lives in `OWNED`, touched only when claiming.
        static INDEX: Cell<usize> = const { Cell::new(UNCLAIMED) };
        static OWNED: Owned = const { Owned(Cell::new(None)) };
    }

    struct Owned(Cell<Option<usize>>);

    impl Drop for Owned {
        fn drop(&mut self) {
            if let Some(index) = self.0.take() {
                INDEX.set(NO_SLOT);
                free().push(index);
            }
        }
    }

    fn free() -> std::sync::MutexGuard<'static, Vec<usize>> {
        FREE.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This thread's slot, if it has one. A call made while the thread is exiting, after its
    /// slot went back, counts on the shared counter.
    #[inline]
    pub(super) fn mine() -> Option<usize> {
        match INDEX.get() {
            index if index < SLOTS => Some(index),
            UNCLAIMED => claim(),
            _ => None,
        }
    }

    #[cold]
    fn claim() -> Option<usize> {
        let index = free().pop().or_else(|| {
            let mut fresh = FRESH.lock().unwrap_or_else(PoisonError::into_inner);
            let index = (*fresh < SLOTS).then_some(*fresh);
            *fresh += usize::from(index.is_some());
            index
        });
        let Some(index) = index else {
            INDEX.set(NO_SLOT);
            return None;
        };
        // Arrange the hand-back first; a thread already tearing down its locals cannot, so it
        // returns the slot at once and counts on the shared counter.
        if OWNED.try_with(|owned| owned.0.set(Some(index))).is_err() {
            free().push(index);
            INDEX.set(NO_SLOT);
            return None;
        }
        INDEX.set(index);
        Some(index)
    }
}

#[cfg(resilient_loom)]
mod slot {
    pub(super) fn mine() -> Option<usize> {
        None
    }
}

#[cfg(all(test, not(resilient_loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up_including_threads_beyond_the_slots() {
        let counter = Counter::new();
        // Three rounds of threads more numerous than the slots: slots are handed back and
        // taken again, and the overflow goes to the shared counter.
        for _ in 0..3 {
            std::thread::scope(|s| {
                for _ in 0..SLOTS + 4 {
                    s.spawn(|| (0..1_000).for_each(|_| counter.add()));
                }
            });
        }
        assert_eq!(counter.sum(), 3 * (SLOTS as u64 + 4) * 1_000);
    }
}
