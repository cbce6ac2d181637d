//! The runtime behind [`resilient`](https://docs.rs/resilient): exponential backoff with jitter,
//! circuit breakers shared by name across a process, and the retry loop that joins them.
//!
//! Most users reach it through the `#[resilient(...)]` attribute of the `resilient` crate, which
//! re-exports everything here. It is just as usable by hand:
//!
//! ```
//! use std::time::Duration;
//! use resilient_runtime::{BreakerConfig, Jitter, Retry, RetryPolicy, configure_breaker};
//!
//! #[derive(Debug)]
//! enum ChatError { Busy, Resilience(resilient_runtime::Error) }
//!
//! impl From<resilient_runtime::Error> for ChatError {
//!     fn from(e: resilient_runtime::Error) -> Self { ChatError::Resilience(e) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let config = BreakerConfig::new().failure_threshold(5);
//! let openai = configure_breaker("docs-openai", config).unwrap();
//! let policy = RetryPolicy::new()
//!     .retries(3)
//!     .jitter(Jitter::Full)
//!     .base_delay(Duration::from_millis(500))
//!     .timeout(Duration::from_secs(30));
//!
//! let mut failures_left = 2;
//! let reply: Result<&str, ChatError> = Retry::new(policy)
//!     .breaker(&openai)
//!     .run(|| {
//!         let busy = failures_left > 0;
//!         failures_left -= 1;
//!         async move { if busy { Err(ChatError::Busy) } else { Ok("hello") } }
//!     })
//!     .await;
//! assert_eq!(reply.unwrap(), "hello");
//! assert_eq!(openai.status().failures, 2);
//! # }
//! ```
//!
//! # Semantics in brief
//! - `retries` counts retries **after** the first attempt: 3 means at most 4 attempts.
//! - The delay before retry `k` has the ceiling `min(max_delay, base_delay · 2^(k−1))`, which
//!   the [`Jitter`] kind then randomises (`Decorrelated` grows from the previous delay
//!   instead); the cap holds after jitter.
//! - Retry is outside the breaker: each attempt asks the breaker first and is recorded by it; a
//!   refusal ends the call at once with [`Error::Rejected`].
//! - Errors are transient unless a [`Classify`] says otherwise. A permanent error returns at
//!   once and is not counted by the breaker. A [`Verdict::RetryAfter`] hint makes the wait at
//!   least the hint, plus up to a tenth of it (between 1 ms and 1 s) of jitter.
//! - Every wait and every breaker timer runs on tokio's clock, so tests with paused time are
//!   instant and exact.
//! - Log events go through `tracing`: `debug` for each retry, `warn` when a breaker opens and
//!   `info` when it half-opens or closes.

#![warn(unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod backoff;
mod breaker;
mod classify;
mod clock;
mod counter;
mod error;
mod executor;
pub mod http;
mod policy;
mod registry;
mod sync;

pub use backoff::{Backoff, Jitter};
pub use breaker::{
    Breaker, BreakerConfig, BreakerState, BreakerStatus, MAX_PROBES, MAX_WINDOW, Permit,
    StateChange,
};
pub use classify::{AlwaysTransient, Classify, Verdict};
pub use error::{ConfigError, Error};
pub use executor::{Attempt, Call, Retry};
pub use policy::RetryPolicy;
pub use registry::{SharedPolicy, breaker, breakers, configure_breaker, configure_policy, policy};

/// What the `#[resilient]` attribute expands to. Not part of the public API: it may change in
/// any release.
#[doc(hidden)]
pub mod __private {
    use crate::Classify;
    pub use crate::{AlwaysTransient, Breaker, Call, Error, Jitter, RetryPolicy, SharedPolicy};
    pub use core::ops::ControlFlow;
    pub use core::time::Duration;
    pub use std::sync::OnceLock;

    /// The breaker `name`, looked up in the registry on the first call through this site only.
    #[inline]
    pub fn site_breaker(site: &'static OnceLock<Breaker>, name: &'static str) -> &'static Breaker {
        site.get_or_init(|| crate::breaker(name))
    }

    /// The shared policy `name`, looked up in the registry on the first call through this site.
    #[inline]
    pub fn site_policy(
        site: &'static OnceLock<SharedPolicy>,
        name: &'static str,
    ) -> &'static SharedPolicy {
        site.get_or_init(|| crate::policy(name))
    }

    /// [`Call::attempt`], with the error type's missing `From<Error>` reported in plain words.
    #[inline]
    pub fn attempt<C, T, E, F>(
        call: &mut Call<'_, C>,
        attempt: F,
    ) -> impl Future<Output = ControlFlow<Result<T, E>>>
    where
        F: Future<Output = Result<T, E>>,
        E: ErrorType + core::fmt::Debug,
        C: Classify<E>,
    {
        call.attempt(attempt)
    }

    /// An error type that can carry the runtime's own errors.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot hold a `resilient::Error`, which `#[resilient]` returns \
                   when a breaker refuses or an attempt times out",
        label = "the error type of this `Result` needs `From<resilient::Error>`",
        note = "add `impl From<resilient::Error> for {Self}`, for instance with a variant that \
                wraps it; an error type of another crate (`std::io::Error`) cannot take that \
                impl here, so return your own error type or `anyhow::Error`"
    )]
    pub trait ErrorType: From<Error> {}

    impl<E: From<Error>> ErrorType for E {}

    /// The error type of a function's `Result`, however the `Result` is spelled.
    pub trait ResultType {
        /// `E` in `Result<T, E>`.
        type Error;
    }

    impl<T, E> ResultType for Result<T, E> {
        type Error = E;
    }

    /// A classifier for the errors `E` of the function it is written on.
    #[diagnostic::on_unimplemented(
        message = "`retry_if` must name a function that takes `&{E}`, \
                   the error type of this function",
        label = "expected a `fn(&{E}) -> bool` or a `fn(&{E}) -> Verdict`"
    )]
    pub trait ClassifierFor<E>: Classify<E> {}

    impl<E, C: Classify<E>> ClassifierFor<E> for C {}

    /// `classifier`, checked once, where `retry_if` is written, against the error type of `R`.
    #[inline]
    pub fn classifier<R, C>(classifier: C) -> Checked<R::Error, C>
    where
        R: ResultType,
        C: ClassifierFor<R::Error>,
    {
        Checked {
            classifier,
            classify: <C as Classify<R::Error>>::classify,
        }
    }

    /// A classifier whose fit was checked by [`classifier`]. It classifies through a function
    /// pointer taken there, so using it asks nothing more of `C`: a mismatch is reported once,
    /// at the check, and not again wherever the classifier travels.
    pub struct Checked<E, C> {
        classifier: C,
        classify: fn(&C, &E) -> crate::Verdict,
    }

    impl<E, C> Classify<E> for Checked<E, C> {
        #[inline]
        fn classify(&self, error: &E) -> crate::Verdict {
            (self.classify)(&self.classifier, error)
        }
    }

    impl<E, C> core::fmt::Debug for Checked<E, C> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("Checked")
        }
    }
}
