//! A small OpenAI chat-completions client whose one call runs under a retry policy and the
//! process-wide `openai` circuit breaker.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::{StatusCode, Url};
use resilient::http::{classify_error, classify_response};
use resilient::{Verdict, resilient};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

// The attribute on `chat` takes these names as literals: keep them equal.

/// The name of the circuit breaker every call shares.
pub const BREAKER: &str = "openai";
/// The name of the retry policy the call reads its delays and timeout from.
pub const POLICY: &str = "openai";

/// A client for `POST {base}/chat/completions`. Cloning shares the connection pool and the
/// attempt counter.
#[derive(Clone, Debug)]
pub struct OpenAi {
    http: reqwest::Client,
    endpoint: Url,
    api_key: String,
    model: String,
    attempts: Arc<AtomicU64>,
}

impl OpenAi {
    /// A client for the API at `base_url` (such as `https://api.openai.com/v1`).
    pub fn new(base_url: &str, api_key: &str, model: &str) -> Result<Self, ChatError> {
        let invalid = |reason: String| ChatError::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        };
        let mut endpoint = Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host().is_none() {
            return Err(invalid(
                "it must be an http:// or https:// URL with a host".into(),
            ));
        }
        // Url::join would drop the last segment of a base without a trailing slash (`/v1`).
        endpoint
            .path_segments_mut()
            .map_err(|()| invalid("it cannot be a base URL".into()))?
            .pop_if_empty()
            .extend(["chat", "completions"]);

        // reqwest is built with rustls but no crypto provider of its own (see Cargo.toml), so the
        // process needs one installed; an error only means one already is.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("resilient-example/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ChatError::Transport {
                verdict: Verdict::Permanent,
                source,
            })?;
        Ok(OpenAi {
            http,
            endpoint,
            api_key: api_key.to_owned(),
            model: model.to_owned(),
            attempts: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// How many attempts have been sent through this client and its clones.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Sends `prompt` as a user message and returns the assistant's reply.
    ///
    /// Each attempt asks the `openai` breaker first; transient failures are retried up to three
    /// times with full jitter, waiting at least as long as the server asks. Delays and the
    /// per-attempt timeout come from the `openai` policy in the registry, so `main` sets a
    /// patient pace for the real API and a brisk one for the simulation.
    #[resilient(
        retries = 3,
        jitter = "full",
        breaker = "openai",
        policy = "openai",
        retry_if = ChatError::verdict
    )]
    pub async fn chat(&self, prompt: &str) -> Result<String, ChatError> {
        let number = self.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let started = Instant::now();
        let request = ChatRequest {
            model: &self.model,
            messages: [Message {
                role: "user",
                content: prompt,
            }],
        };
        let sent = self
            .http
            .post(self.endpoint.clone())
            .bearer_auth(&self.api_key)
            .json(&request)
            .send()
            .await;
        let result = match sent {
            Ok(response) => read(response).await,
            Err(source) => Err(ChatError::from(source)),
        };

        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(_) => tracing::info!(request = number, elapsed_ms, "answered 200 OK"),
            Err(error) => tracing::info!(request = number, elapsed_ms, "failed: {error}"),
        }
        result
    }
}

async fn read(response: reqwest::Response) -> Result<String, ChatError> {
    let status = response.status();
    if status.is_success() {
        let reply: ChatResponse = response.json().await?;
        return reply
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .ok_or(ChatError::Unreadable {
                reason: "the reply has no message content".into(),
            });
    }

    let headers = response.headers().clone();
    // The status and its hint decide the verdict, so a body cut off mid-read does not turn a 429
    // into a transport error that forgets its Retry-After.
    let detail = match response.bytes().await {
        Ok(body) => serde_json::from_slice::<ErrorBody>(&body)
            .map(|body| body.error)
            .unwrap_or_else(|_| ErrorDetail {
                message: String::from_utf8_lossy(&body).trim().to_owned(),
                code: None,
            }),
        Err(error) => ErrorDetail {
            message: format!("the error body could not be read: {error}"),
            code: None,
        },
    };
    let code = detail.code.as_ref().map(|code| match code {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    });
    Err(ChatError::Api {
        verdict: classify_response(status, &headers, code.as_deref()),
        status,
        code,
        message: detail.message,
    })
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: [Message<'a>; 1],
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ReplyMessage,
}

#[derive(Deserialize)]
struct ReplyMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    // OpenAI sends a string, null, or on some older errors a number.
    #[serde(default)]
    code: Option<serde_json::Value>,
}

/// Why a chat call failed.
pub enum ChatError {
    /// The server answered with an error status.
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// OpenAI's error code, such as `rate_limit_exceeded` or `invalid_api_key`.
        code: Option<String>,
        /// The server's message.
        message: String,
        /// What the status, headers and code mean for retrying.
        verdict: Verdict,
    },
    /// No answer: the connection was refused or reset, the name did not resolve, the body was
    /// cut short.
    Transport {
        /// The error from reqwest.
        source: reqwest::Error,
        /// What the error means for retrying.
        verdict: Verdict,
    },
    /// A success status whose body is not a chat completion.
    Unreadable {
        /// What is wrong with it.
        reason: String,
    },
    /// The base URL cannot be used.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The circuit breaker refused the call without sending it.
    Rejected(resilient::Error),
    /// An attempt, or the whole call, ran out of time.
    TimedOut(resilient::Error),
}

impl ChatError {
    /// What the error means for retrying: the classifier given to the retry loop.
    pub fn verdict(&self) -> Verdict {
        match self {
            ChatError::Api { verdict, .. } | ChatError::Transport { verdict, .. } => *verdict,
            ChatError::TimedOut(_) => Verdict::Transient,
            ChatError::Unreadable { .. }
            | ChatError::InvalidUrl { .. }
            | ChatError::Rejected(_) => Verdict::Permanent,
        }
    }

    /// A short name for the kind of failure, for tallies.
    pub fn kind(&self) -> String {
        match self {
            ChatError::Api {
                status,
                code: Some(code),
                ..
            } => format!("http {} {code}", status.as_u16()),
            ChatError::Api { status, .. } => format!("http {}", status.as_u16()),
            ChatError::Transport { .. } => "transport".into(),
            ChatError::Unreadable { .. } => "unreadable reply".into(),
            ChatError::InvalidUrl { .. } => "invalid url".into(),
            ChatError::Rejected(_) => "rejected by the breaker".into(),
            ChatError::TimedOut(_) => "timed out".into(),
        }
    }
}

impl From<resilient::Error> for ChatError {
    fn from(error: resilient::Error) -> Self {
        if error.is_rejected() {
            ChatError::Rejected(error)
        } else {
            ChatError::TimedOut(error)
        }
    }
}

impl From<reqwest::Error> for ChatError {
    fn from(source: reqwest::Error) -> Self {
        let verdict = classify_error(&source);
        if source.is_decode() && verdict == Verdict::Permanent {
            return ChatError::Unreadable {
                reason: chain(&source),
            };
        }
        ChatError::Transport { source, verdict }
    }
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::Api {
                status,
                code,
                message,
                ..
            } => {
                write!(f, "HTTP {status}")?;
                if let Some(code) = code {
                    write!(f, " ({code})")?;
                }
                write!(f, ": {message}")
            }
            ChatError::Transport { source, .. } if source.is_connect() => {
                write!(f, "could not connect: {}", chain(source))
            }
            ChatError::Transport { source, .. } => write!(f, "no answer: {}", chain(source)),
            ChatError::Unreadable { reason } => write!(f, "unreadable reply: {reason}"),
            ChatError::InvalidUrl { url, reason } => write!(f, "invalid URL `{url}`: {reason}"),
            ChatError::Rejected(error) | ChatError::TimedOut(error) => error.fmt(f),
        }
    }
}

// Short enough for one log line per retry: the status and code rather than the whole body,
// the causes of a transport error rather than reqwest's nested structs.
impl fmt::Debug for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::Api {
                status,
                code,
                verdict,
                ..
            } => f
                .debug_struct("Api")
                .field("status", &status.as_u16())
                .field("code", code)
                .field("verdict", verdict)
                .finish_non_exhaustive(),
            ChatError::Transport { source, verdict } => f
                .debug_struct("Transport")
                .field("error", &chain(source))
                .field("verdict", verdict)
                .finish(),
            ChatError::Unreadable { reason } => f
                .debug_struct("Unreadable")
                .field("reason", reason)
                .finish(),
            ChatError::InvalidUrl { url, reason } => f
                .debug_struct("InvalidUrl")
                .field("url", url)
                .field("reason", reason)
                .finish(),
            ChatError::Rejected(error) => f.debug_tuple("Rejected").field(error).finish(),
            ChatError::TimedOut(error) => f.debug_tuple("TimedOut").field(error).finish(),
        }
    }
}

impl StdError for ChatError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ChatError::Transport { source, .. } => Some(source),
            ChatError::Rejected(error) | ChatError::TimedOut(error) => Some(error),
            _ => None,
        }
    }
}

/// The error and its causes on one line: reqwest's own message rarely names the cause.
fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
