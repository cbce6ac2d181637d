//! What the runtime returns in place of the caller's own error.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a call ended without the operation's own result.
///
/// A function run through the runtime returns `Result<T, E>` with `E: From<Error>`, so these
/// reach the caller as the caller's own error type. `Error` is `Send + Sync + 'static`, which lets
/// `anyhow::Error` and `Box<dyn std::error::Error + Send + Sync>` take it through `?`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The circuit breaker refused the call without running it.
    Rejected {
        /// The name of the breaker that refused.
        breaker: Arc<str>,
        /// How long until the breaker admits a trial call, or `None` when it is half-open and
        /// every probe slot is taken (a slot frees up as soon as a probe finishes).
        retry_in: Option<Duration>,
    },
    /// An attempt ran longer than the policy's per-attempt timeout and was abandoned.
    Timeout {
        /// Which attempt, counting the first as 1.
        attempt: u32,
        /// The timeout that ran out.
        after: Duration,
    },
    /// The call's deadline passed while an attempt was still running.
    DeadlineExceeded {
        /// Which attempt was cut, counting the first as 1.
        attempt: u32,
        /// The deadline of the whole call.
        deadline: Duration,
    },
    /// The policy handed to [`Retry`](crate::Retry) cannot work (a zero timeout, a cap below the
    /// base delay); the operation was not run.
    InvalidPolicy(ConfigError),
}

impl Error {
    /// Whether a circuit breaker refused the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected { .. })
    }

    /// Whether an attempt ran out of time, by its own timeout or by the call's deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. } | Error::DeadlineExceeded { .. })
    }

    /// The name of the breaker that refused the call, if one did.
    pub fn breaker(&self) -> Option<&str> {
        match self {
            Error::Rejected { breaker, .. } => Some(breaker),
            _ => None,
        }
    }

    /// How long until the refusing breaker admits a probe, if one refused and knows.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            Error::Rejected { retry_in, .. } => *retry_in,
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rejected {
                breaker,
                retry_in: Some(wait),
            } => {
                write!(
                    f,
                    "circuit breaker `{breaker}` is open; next probe in {wait:?}"
                )
            }
            Error::Rejected {
                breaker,
                retry_in: None,
            } => {
                write!(
                    f,
                    "circuit breaker `{breaker}` is half-open and all probe slots are taken"
                )
            }
            Error::Timeout { attempt, after } => {
                write!(f, "attempt {attempt} timed out after {after:?}")
            }
            Error::DeadlineExceeded { attempt, deadline } => {
                write!(
                    f,
                    "deadline of {deadline:?} passed during attempt {attempt}"
                )
            }
            Error::InvalidPolicy(_) => f.write_str("the retry policy cannot work"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::InvalidPolicy(error) => Some(error),
            _ => None,
        }
    }
}

/// A policy or breaker setting that cannot work, found when it is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_boxable<E: StdError + Send + Sync + 'static>() {}

    #[test]
    fn errors_travel_through_boxed_errors() {
        assert_boxable::<Error>();
        assert_boxable::<ConfigError>();
        let rejected = Error::Rejected {
            breaker: "openai".into(),
            retry_in: None,
        };
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(rejected.clone());
        assert_eq!(boxed.to_string(), rejected.to_string());
        assert!(rejected.is_rejected() && !rejected.is_timeout());
        assert_eq!(rejected.breaker(), Some("openai"));
    }

    #[test]
    fn messages_name_what_happened() {
        let open = Error::Rejected {
            breaker: "openai".into(),
            retry_in: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            open.to_string(),
            "circuit breaker `openai` is open; next probe in 3s"
        );
        let timeout = Error::Timeout {
            attempt: 2,
            after: Duration::from_millis(500),
        };
        assert_eq!(timeout.to_string(), "attempt 2 timed out after 500ms");
        assert!(timeout.is_timeout());
        let deadline = Error::DeadlineExceeded {
            attempt: 3,
            deadline: Duration::from_secs(5),
        };
        assert!(deadline.is_timeout() && deadline.breaker().is_none());
    }
}
