//! The `#[resilient(...)]` attribute of the [`resilient`](https://docs.rs/resilient) crate.
//! Use it through `resilient::resilient`; its documentation lives there.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod args;
mod consume;
mod duration;
mod expand;
mod item;
mod validate;

use proc_macro::TokenStream;

/// Runs every call of an `async fn` returning `Result` through a retry policy and,
/// optionally, a named circuit breaker. See the `resilient` crate for the full documentation.
#[proc_macro_attribute]
pub fn resilient(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(args.into(), item.into()).into()
}
