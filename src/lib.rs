#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub use resilient_macros::resilient;
pub use resilient_runtime::*;
