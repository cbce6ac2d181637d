//! Retries with jittered exponential backoff and circuit breakers shared by name, for async
//! functions that call flaky services.

#![forbid(unsafe_code)]

pub use resilient_macros::resilient;
pub use resilient_runtime::*;
