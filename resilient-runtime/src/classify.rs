//! Which errors are worth retrying.

use std::time::Duration;

/// What an error says about the call and the service behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// A passing fault: retry with backoff, and count a failure against the breaker.
    Transient,
    /// A passing fault, and the server said how long to wait (`Retry-After` and kin): retry no
    /// sooner than that, and count a failure against the breaker.
    RetryAfter(Duration),
    /// Retrying cannot help (a malformed request, bad credentials): return the error at once,
    /// and leave the breaker alone, since the service answered.
    Permanent,
}

impl Verdict {
    /// `Transient` when `transient` holds, `Permanent` otherwise.
    pub const fn transient_if(transient: bool) -> Self {
        if transient {
            Verdict::Transient
        } else {
            Verdict::Permanent
        }
    }

    /// Whether the error is worth retrying.
    pub const fn is_transient(self) -> bool {
        !matches!(self, Verdict::Permanent)
    }
}

impl From<bool> for Verdict {
    fn from(transient: bool) -> Self {
        Verdict::transient_if(transient)
    }
}

/// Decides what an error means. Implemented for every `Fn(&E) -> R` where `R` is a `bool`
/// ("is it transient?") or a [`Verdict`].
///
/// ```
/// use resilient_runtime::{Classify, Verdict};
///
/// #[derive(Debug)]
/// enum ApiError { Status(u16), Io }
///
/// fn classify(err: &ApiError) -> Verdict {
///     match err {
///         ApiError::Status(429 | 500..=599) | ApiError::Io => Verdict::Transient,
///         ApiError::Status(_) => Verdict::Permanent,
///     }
/// }
/// assert_eq!(classify.classify(&ApiError::Status(404)), Verdict::Permanent);
/// assert!((|e: &ApiError| matches!(e, ApiError::Io)).classify(&ApiError::Io).is_transient());
/// ```
pub trait Classify<E> {
    /// What `error` means.
    fn classify(&self, error: &E) -> Verdict;
}

impl<E, F, R> Classify<E> for F
where
    F: Fn(&E) -> R,
    R: Into<Verdict>,
{
    fn classify(&self, error: &E) -> Verdict {
        self(error).into()
    }
}

/// The default classifier: every error is transient.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysTransient;

impl<E> Classify<E> for AlwaysTransient {
    fn classify(&self, _: &E) -> Verdict {
        Verdict::Transient
    }
}
