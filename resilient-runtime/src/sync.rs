//! The atomics behind the breaker's state machine, swapped for loom's under
//! `cfg(resilient_loom)` so the model checker can explore every interleaving of it.

#[cfg(resilient_loom)]
pub(crate) use loom::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

#[cfg(not(resilient_loom))]
pub(crate) use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
