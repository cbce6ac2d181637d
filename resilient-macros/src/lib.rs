//! The `#[resilient(...)]` attribute of the [`resilient`](https://docs.rs/resilient) crate,
//! which re-exports it as `resilient::resilient`; the attribute's documentation is on
//! [`resilient`](macro@resilient).
//!
//! The attribute is a pipeline of small steps: `args` reads the keys into a typed struct that
//! keeps every value's span, `validate` checks values and their combinations, `item` reads the
//! function and checks its shape, `consume` finds the arguments to clone per attempt, and
//! `expand` writes the retry loop. On any error the function is emitted unchanged beside the
//! error, so the rest of the crate and the IDE keep working.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod args;
mod consume;
mod duration;
mod expand;
mod item;
mod validate;

use proc_macro::TokenStream;

/// Runs every call of an `async fn` through a retry policy, with jittered exponential backoff,
/// an optional per-attempt timeout and whole-call deadline, and an optional circuit breaker
/// shared by name across the process.
///
/// ```
/// use resilient::resilient;
///
/// #[derive(Debug)]
/// enum ChatError {
///     Busy,
///     Resilience(resilient::Error),
/// }
///
/// // Breaker refusals and timeouts come back as the function's own error type.
/// impl From<resilient::Error> for ChatError {
///     fn from(error: resilient::Error) -> Self {
///         ChatError::Resilience(error)
///     }
/// }
///
/// #[resilient(retries = 3, jitter = "full", breaker = "openai", timeout = "30s")]
/// async fn chat(prompt: &str) -> Result<String, ChatError> {
///     if prompt.is_empty() { Err(ChatError::Busy) } else { Ok(format!("echo: {prompt}")) }
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// assert_eq!(chat("hi").await.unwrap(), "echo: hi");
/// assert!(matches!(chat("").await, Err(ChatError::Busy)));
/// # }
/// ```
///
/// # Keys
///
/// All keys are optional; `#[resilient]` alone retries with the default [`RetryPolicy`].
///
/// | key | value | meaning |
/// | --- | --- | --- |
/// | `retries` | integer, at most 100 | retries **after** the first attempt: 3 means 4 attempts |
/// | `jitter` | `"none"`, `"full"`, `"equal"`, `"decorrelated"` | how each delay is randomised |
/// | `base_delay` | duration string | the ceiling of the first delay; it doubles for each retry |
/// | `max_delay` | duration string, above zero | the cap on every delay |
/// | `timeout` | duration string, above zero | how long one attempt may run |
/// | `deadline` | duration string, above zero | how long the whole call may take |
/// | `max_hint` | duration string | the longest server hint waited out; a longer one ends it |
/// | `breaker` | string | the name of a circuit breaker shared across the process |
/// | `policy` | string | the name of a retry policy, read at each call; keys here override it |
/// | `retry_if` | path of a `fn(&E) -> bool` or `fn(&E) -> Verdict` | which errors to retry |
///
/// Durations are integers with units `h`, `m`, `s`, `ms`, `us` or `ns`, largest first:
/// `"250ms"`, `"2s"`, `"1m30s"`, `"1h2m3s500ms"`. They are read, and every value checked, at
/// compile time.
///
/// ## `retries`
/// ```
/// # use std::sync::atomic::{AtomicU32, Ordering};
/// # use resilient::resilient;
/// #[resilient(retries = 2)]
/// async fn flaky(attempts: &AtomicU32) -> Result<(), resilient::Error> {
///     attempts.fetch_add(1, Ordering::SeqCst);
///     Err(resilient::Error::Timeout { attempt: 1, after: std::time::Duration::ZERO })
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let attempts = AtomicU32::new(0);
/// assert!(flaky(&attempts).await.is_err());
/// assert_eq!(attempts.load(Ordering::SeqCst), 3);
/// # }
/// ```
///
/// ## `jitter`, `base_delay` and `max_delay`
/// With `jitter = "none"` the delays are exactly `base_delay`, doubled for each retry and capped
/// at `max_delay`: here 100 ms, 200 ms, 300 ms.
/// ```
/// # use resilient::resilient;
/// # use tokio::time::Instant;
/// #[resilient(retries = 3, jitter = "none", base_delay = "100ms", max_delay = "300ms")]
/// async fn always_busy() -> Result<(), resilient::Error> {
///     Err(resilient::Error::Timeout { attempt: 1, after: std::time::Duration::ZERO })
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let started = Instant::now();
/// assert!(always_busy().await.is_err());
/// assert_eq!(started.elapsed().as_millis(), 100 + 200 + 300);
/// # }
/// ```
///
/// ## `timeout` and `deadline`
/// An attempt that runs past `timeout` is abandoned and counts as a transient failure; no wait
/// is started that would end past `deadline`, and an attempt still running then is cut.
/// ```
/// # use std::time::Duration;
/// # use resilient::resilient;
/// #[resilient(retries = 5, timeout = "2s", deadline = "5s")]
/// async fn hangs() -> Result<(), resilient::Error> {
///     tokio::time::sleep(Duration::from_secs(3_600)).await;
///     Ok(())
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let started = tokio::time::Instant::now();
/// assert!(hangs().await.unwrap_err().is_timeout());
/// assert!(started.elapsed() <= Duration::from_secs(5));
/// # }
/// ```
///
/// ## `max_hint`
/// A server's hint (a [`Verdict::RetryAfter`] from `retry_if`) is always waited out, however
/// long, unless `max_hint` bounds it: a hint longer than `max_hint` ends the call at once with
/// that error, so a caller is not held for minutes by a rate limit that resets in minutes.
/// ```
/// # use std::time::Duration;
/// # use resilient::{Verdict, resilient};
/// #[derive(Debug)]
/// enum ApiError { RateLimited(Duration), Resilience(resilient::Error) }
/// # impl From<resilient::Error> for ApiError {
/// #     fn from(error: resilient::Error) -> Self { ApiError::Resilience(error) }
/// # }
///
/// fn verdict(error: &ApiError) -> Verdict {
///     match error {
///         ApiError::RateLimited(wait) => Verdict::RetryAfter(*wait),
///         ApiError::Resilience(_) => Verdict::Transient,
///     }
/// }
///
/// #[resilient(retries = 3, retry_if = verdict, max_hint = "1m")]
/// async fn complete(reset: Duration) -> Result<(), ApiError> {
///     Err(ApiError::RateLimited(reset))
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let started = tokio::time::Instant::now();
/// // Told to come back in six minutes: the call ends at once instead of sleeping.
/// let six_minutes = Duration::from_secs(360);
/// assert!(matches!(complete(six_minutes).await, Err(ApiError::RateLimited(_))));
/// assert_eq!(started.elapsed(), Duration::ZERO);
/// // Told two seconds: each retry waits them out.
/// assert!(complete(Duration::from_secs(2)).await.is_err());
/// assert!(started.elapsed() >= Duration::from_secs(6));
/// # }
/// ```
///
/// ## `breaker`
/// Every function naming the same breaker shares it, in any module or crate. The name is
/// looked up once per function, on its first call.
/// ```
/// # use resilient::{BreakerConfig, resilient};
/// #[resilient(retries = 0, breaker = "docs-payments")]
/// async fn charge(ok: bool) -> Result<(), resilient::Error> {
///     let down = resilient::Error::Timeout { attempt: 1, after: Default::default() };
///     if ok { Ok(()) } else { Err(down) }
/// }
///
/// #[resilient(breaker = "docs-payments")]
/// async fn refund() -> Result<(), resilient::Error> {
///     Ok(())
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let config = BreakerConfig::new().failure_threshold(1);
/// resilient::configure_breaker("docs-payments", config).unwrap();
/// assert!(charge(false).await.is_err());
/// // `charge` opened the breaker, so `refund` is refused without running.
/// assert!(refund().await.unwrap_err().is_rejected());
/// # }
/// ```
///
/// ## `policy`
/// The named policy is read at each call, so reconfiguring it takes effect on the next call;
/// keys written on the attribute override its fields one by one.
/// ```
/// # use std::sync::atomic::{AtomicU32, Ordering};
/// # use resilient::{RetryPolicy, resilient};
/// #[resilient(policy = "docs-chat", base_delay = "10ms")]
/// async fn chat(attempts: &AtomicU32) -> Result<(), resilient::Error> {
///     attempts.fetch_add(1, Ordering::SeqCst);
///     Err(resilient::Error::Timeout { attempt: 1, after: Default::default() })
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// resilient::configure_policy("docs-chat", RetryPolicy::new().retries(1)).unwrap();
/// let attempts = AtomicU32::new(0);
/// assert!(chat(&attempts).await.is_err());
/// assert_eq!(attempts.load(Ordering::SeqCst), 2);
///
/// resilient::configure_policy("docs-chat", RetryPolicy::new().retries(4)).unwrap();
/// let attempts = AtomicU32::new(0);
/// assert!(chat(&attempts).await.is_err());
/// assert_eq!(attempts.load(Ordering::SeqCst), 5);
/// # }
/// ```
///
/// ## `retry_if`
/// A function from `&E` to `bool` (is it transient?) or to a [`Verdict`], which can also pass on
/// the server's `Retry-After`. A permanent error is returned at once and is not counted by the
/// breaker.
/// ```
/// # use std::sync::atomic::{AtomicU32, Ordering};
/// # use resilient::resilient;
/// #[derive(Debug)]
/// enum ApiError { NotFound, Unavailable, Resilience(resilient::Error) }
/// # impl From<resilient::Error> for ApiError {
/// #     fn from(error: resilient::Error) -> Self { ApiError::Resilience(error) }
/// # }
///
/// fn is_transient(error: &ApiError) -> bool {
///     !matches!(error, ApiError::NotFound)
/// }
///
/// #[resilient(retries = 3, retry_if = is_transient)]
/// async fn get(attempts: &AtomicU32, found: bool) -> Result<(), ApiError> {
///     attempts.fetch_add(1, Ordering::SeqCst);
///     if found { Err(ApiError::Unavailable) } else { Err(ApiError::NotFound) }
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let attempts = AtomicU32::new(0);
/// assert!(matches!(get(&attempts, false).await, Err(ApiError::NotFound)));
/// assert_eq!(attempts.load(Ordering::SeqCst), 1);
/// # }
/// ```
///
/// # What the function must look like
///
/// - It is an `async fn` returning a type spelled as a `Result` (`Result<T, E>`,
///   `anyhow::Result<T>`, ...) whose error type implements `From<resilient::Error>` (breaker
///   refusals and timeouts come back through it) and `Debug` (retries are logged with it).
/// - It may be a free function, a method taking `&self` or `&mut self` (each attempt borrows
///   `self` anew), generic, with `impl Trait` arguments, a trait method with a default body, or
///   a method in a trait `impl`. With `#[async_trait]`, put `#[resilient]` on the methods inside
///   the `#[async_trait]` block.
/// - `#[tracing::instrument]` may sit above or below it. Below, one span covers the whole call
///   with all its attempts, and the arguments are recorded once. Above, every attempt gets a
///   span of its own; since `instrument` then moves the body into an `async move` block, every
///   argument the body mentions is cloned per attempt (see below), so non-`Clone` arguments
///   want `#[resilient]` on top.
/// - `return` and `?` in the body end the current attempt, which is then classified like any
///   other result.
/// - The returned future is `Send` whenever the body's is.
/// - A body cannot return a borrow taken through `&mut self` or a `&mut` argument
///   (`Result<&mut Self, E>`, `Result<&Field, E>`): each attempt's borrow must end before the
///   next one starts, and the borrow checker reports the loop otherwise.
///
/// ## Arguments the body moves or changes
///
/// Every attempt runs the body afresh and starts from the arguments the caller passed: an
/// argument the first attempt moved or changed must be there, unchanged, for the next. The
/// attribute cannot see types, so it decides by how the body mentions each argument binding (a
/// plain name, or a name inside a destructuring pattern) whose type is not a reference:
///
/// - if every mention only reads it through `&` (`&name`, `&name.field`, also in a macro's
///   arguments: `debug!("{:?}", &name)`, `format!("{n}", n = &name)`), the argument is used as
///   it is;
/// - otherwise (a plain use, a method call, `&mut`, an assignment, a macro's tokens that are not
///   a plain borrow, or any mention inside an `async move` block or a `move` closure, which take
///   the binding itself) each attempt gets its own `Clone::clone` of it, and an argument whose
///   type is not `Clone` is a compile error that names that argument, at it. Read it through
///   `&` or take it by reference to avoid the clone.
///
/// A `&mut` argument that the body may move (passing it on to a by-value `impl Write`, say)
/// gets a reborrow per attempt, `&mut *out`, as `&mut self` does. `&T` arguments are `Copy` and
/// need nothing.
///
/// # What it expands to
///
/// The signature stays as written; the body runs once per attempt in a loop driven by the
/// runtime's [`Call`]. The attribute on `chat` above is equivalent to this code, written
/// without it:
///
/// ```
/// # use std::ops::ControlFlow;
/// # use std::sync::OnceLock;
/// # use std::time::Duration;
/// # use resilient::{AlwaysTransient, Breaker, Call, Jitter, RetryPolicy};
/// # #[derive(Debug)]
/// # enum ChatError { Busy, Resilience(resilient::Error) }
/// # impl From<resilient::Error> for ChatError {
/// #     fn from(error: resilient::Error) -> Self { ChatError::Resilience(error) }
/// # }
/// async fn chat(prompt: &str) -> Result<String, ChatError> {
///     // Built at compile time; with `policy = "..."` it is read from the registry instead.
///     static POLICY: RetryPolicy = RetryPolicy::new()
///         .retries(3)
///         .jitter(Jitter::Full)
///         .timeout(Duration::from_secs(30));
///     // The breaker is looked up by name on the first call only.
///     static BREAKER: OnceLock<Breaker> = OnceLock::new();
///     let breaker = BREAKER.get_or_init(|| resilient::breaker("openai"));
///
///     let mut call = Call::new(&POLICY, Some(breaker), AlwaysTransient).operation("chat");
///     loop {
///         // Here each attempt clones the by-value arguments the body consumes, and takes its
///         // own `&mut *self` in a `&mut self` method.
///         let attempt = async {
///             if prompt.is_empty() { Err(ChatError::Busy) } else { Ok(format!("echo: {prompt}")) }
///         };
///         match call.attempt(attempt).await {
///             ControlFlow::Break(result) => return result,
///             ControlFlow::Continue(()) => {}
///         }
///     }
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// # assert_eq!(chat("hi").await.unwrap(), "echo: hi");
/// # }
/// ```
///
/// # Compile errors
///
/// Mistakes are reported at the token at fault, with the fix: a function that is not `async`,
/// takes `self` by value, has no body, or does not return a `Result`; an unknown key (the
/// message lists the valid ones), a key given twice, a value of the wrong type, an unknown
/// jitter kind, a malformed duration, a zero `timeout`, `deadline` or `max_delay`, `max_delay`
/// below `base_delay`, more than 100 retries, an empty breaker or policy name, an error type
/// without `From<resilient::Error>`, and a consumed argument that is not `Clone`. The function
/// is still emitted beside the error, so its callers do not report errors of their own.
///
/// [`RetryPolicy`]: https://docs.rs/resilient/latest/resilient/struct.RetryPolicy.html
/// [`Verdict`]: https://docs.rs/resilient/latest/resilient/enum.Verdict.html
/// [`Verdict::RetryAfter`]: https://docs.rs/resilient/latest/resilient/enum.Verdict.html#variant.RetryAfter
/// [`Call`]: https://docs.rs/resilient/latest/resilient/struct.Call.html
#[proc_macro_attribute]
pub fn resilient(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(args.into(), item.into()).into()
}
