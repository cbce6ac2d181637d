//! What an HTTP failure means: [`reqwest`] errors and error responses as [`Verdict`]s, and the
//! server's own word on how long to wait.
//!
//! | failure | verdict |
//! | --- | --- |
//! | connection refused or reset, DNS failure, timeout, a body cut off mid-read | transient |
//! | 408, 409, 429 and every 5xx | transient, with the server's wait hint when it sent one |
//! | 429 whose error code is `insufficient_quota` (the account is out of credit) | permanent |
//! | every other status (400, 401, 403, 404, 422 …) | permanent |
//! | a URL that cannot be used, a redirect loop, a whole body that does not parse | permanent |
//!
//! The statuses are the ones the official OpenAI SDKs retry. Wait hints are read, first found
//! wins, from `retry-after-ms` (milliseconds), `Retry-After` (delta-seconds or an HTTP-date), and
//! OpenAI's `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` (durations such as `1s`,
//! `6m0s`, `250ms`). A header that does not parse is skipped, never an error. A hint is taken as
//! the server gave it, however long: [`max_hint`](crate::RetryPolicy::max_hint) ends a call
//! whose server asks for longer, and a [`deadline`](crate::RetryPolicy::deadline) bounds it.
//!
//! Reading an error response's body consumes the response, so the classifier takes the status,
//! the headers and the error code separately. An error type built from a response can compute
//! the verdict once and carry it, and the `retry_if` classifier just hands it back:
//!
//! ```
//! use resilient_runtime::Verdict;
//! use resilient_runtime::http::{classify_error, classify_response};
//!
//! #[derive(Debug)]
//! enum ApiError {
//!     Status { status: u16, message: String, verdict: Verdict },
//!     Transport { source: reqwest::Error, verdict: Verdict },
//!     Resilience(resilient_runtime::Error),
//! }
//!
//! impl ApiError {
//!     /// The classifier for `retry_if`: the verdict was computed when the error was made.
//!     fn verdict(&self) -> Verdict {
//!         match self {
//!             ApiError::Status { verdict, .. } | ApiError::Transport { verdict, .. } => *verdict,
//!             ApiError::Resilience(_) => Verdict::Transient,
//!         }
//!     }
//! }
//!
//! impl From<reqwest::Error> for ApiError {
//!     fn from(source: reqwest::Error) -> Self {
//!         ApiError::Transport { verdict: classify_error(&source), source }
//!     }
//! }
//!
//! async fn send(request: reqwest::RequestBuilder) -> Result<String, ApiError> {
//!     let response = request.send().await?;
//!     let status = response.status();
//!     if status.is_success() {
//!         return Ok(response.text().await?);
//!     }
//!     let headers = response.headers().clone();
//!     let body = response.text().await.unwrap_or_default();
//!     // A real client parses the JSON error body; the code only matters for a 429.
//!     let code = body.contains("insufficient_quota").then_some("insufficient_quota");
//!     let verdict = classify_response(status, &headers, code);
//!     Err(ApiError::Status { status: status.as_u16(), message: body, verdict })
//! }
//! ```

#![cfg(feature = "reqwest")]

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::classify::Verdict;

/// The error code OpenAI sends with a 429 when the account has run out of credit.
pub const INSUFFICIENT_QUOTA: &str = "insufficient_quota";

/// What a reqwest error means.
///
/// An error made from a status (by `error_for_status`) is judged by that status alone, since
/// reqwest keeps no headers on it: use [`classify_response`] when you still hold the response.
pub fn classify_error(error: &reqwest::Error) -> Verdict {
    if let Some(status) = error.status() {
        return classify_status(status);
    }
    if error.is_decode() {
        // reqwest also reports a body cut off mid-read as a decode error; only a body that
        // arrived whole and still does not parse would fail the same way again.
        return Verdict::transient_if(cut_off(error));
    }
    if error.is_builder() || error.is_redirect() {
        // The same request would fail the same way: nothing on the wire was at fault.
        return Verdict::Permanent;
    }
    // Connect, timeout, request and body errors are the network's: worth another try.
    Verdict::Transient
}

/// Whether a decode error was caused by the body failing to arrive rather than by its content.
fn cut_off(error: &reqwest::Error) -> bool {
    let mut cause = error.source();
    while let Some(inner) = cause {
        let network = inner
            .downcast_ref::<reqwest::Error>()
            .is_some_and(|e| e.is_body() || e.is_timeout());
        if network || inner.is::<std::io::Error>() {
            return true;
        }
        cause = inner.source();
    }
    false
}

/// What an error response means, from its status, its headers and the error code of its body
/// (OpenAI's `{"error": {"code": ...}}`, when the caller has read it).
///
/// ```
/// use std::time::Duration;
/// use reqwest::StatusCode;
/// use reqwest::header::{HeaderMap, HeaderValue};
/// use resilient_runtime::Verdict;
/// use resilient_runtime::http::classify_response;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", HeaderValue::from_static("2"));
/// let busy = classify_response(StatusCode::TOO_MANY_REQUESTS, &headers, None);
/// assert_eq!(busy, Verdict::RetryAfter(Duration::from_secs(2)));
///
/// let out_of_credit = Some("insufficient_quota");
/// let broke = classify_response(StatusCode::TOO_MANY_REQUESTS, &headers, out_of_credit);
/// assert_eq!(broke, Verdict::Permanent);
/// assert_eq!(classify_response(StatusCode::UNAUTHORIZED, &headers, None), Verdict::Permanent);
/// ```
pub fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    error_code: Option<&str>,
) -> Verdict {
    if status == StatusCode::TOO_MANY_REQUESTS && error_code == Some(INSUFFICIENT_QUOTA) {
        return Verdict::Permanent;
    }
    match classify_status(status) {
        Verdict::Permanent => Verdict::Permanent,
        _ => retry_hint(headers).map_or(Verdict::Transient, Verdict::RetryAfter),
    }
}

/// What a status means on its own: 408, 409, 429 and every 5xx are transient, the rest
/// permanent.
pub fn classify_status(status: StatusCode) -> Verdict {
    Verdict::transient_if(matches!(status.as_u16(), 408 | 409 | 429 | 500..=599))
}

/// How long the server asked the client to wait, if it said so in a form that parses.
///
/// ```
/// use std::time::Duration;
/// use reqwest::header::{HeaderMap, HeaderValue};
/// use resilient_runtime::http::retry_hint;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-reset-requests", HeaderValue::from_static("1m30s"));
/// assert_eq!(retry_hint(&headers), Some(Duration::from_secs(90)));
/// headers.insert("retry-after-ms", HeaderValue::from_static("250"));
/// assert_eq!(retry_hint(&headers), Some(Duration::from_millis(250)));
/// headers.insert("retry-after-ms", HeaderValue::from_static("soon"));
/// assert_eq!(retry_hint(&headers), Some(Duration::from_secs(90)));
/// ```
pub fn retry_hint(headers: &HeaderMap) -> Option<Duration> {
    retry_hint_at(headers, SystemTime::now())
}

/// [`retry_hint`] with the current time given, so an HTTP-date is read against `now`.
fn retry_hint_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());

    if let Some(ms) = text("retry-after-ms").and_then(parse_retry_after_ms) {
        return Some(ms);
    }
    if let Some(after) = text("retry-after").and_then(|value| parse_retry_after(value, now)) {
        return Some(after);
    }
    rate_limit_reset(headers)
}

/// The longest of OpenAI's reset times among the limits that refused the request.
///
/// A request costs one unit of the request limit, so with requests left (`remaining-requests`
/// above 0) the refusal came from the token limit, even when some tokens remain: the request
/// asked for more than were left. With no requests left, the token limit counts only if it is
/// used up too. Where the `x-ratelimit-remaining-*` headers are missing, every reset counts.
fn rate_limit_reset(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let used_up = |limit: &str| {
        text(&format!("x-ratelimit-remaining-{limit}")).is_none_or(|left| left.trim() == "0")
    };
    let requests = used_up("requests");
    let tokens = used_up("tokens") || !requests;
    [("requests", requests), ("tokens", tokens)]
        .into_iter()
        .filter(|&(_, refused)| refused)
        .filter_map(|(limit, _)| text(&format!("x-ratelimit-reset-{limit}")).and_then(parse_reset))
        .max()
}

/// Reads `retry-after-ms`: a non-negative number of milliseconds, fractions allowed.
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let ms: f64 = value.trim().parse().ok()?;
    Duration::try_from_secs_f64(ms / 1_000.0).ok()
}

/// Reads `Retry-After`: delta-seconds (`"120"`) or an HTTP-date, which is read against `now` and
/// gives zero once it has passed.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Delta-seconds too large for a u64 are still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Reads a duration in the form OpenAI's rate-limit reset headers use: a sequence of decimal
/// numbers, each with a unit among `h`, `m`, `s`, `ms`, `us` (or `µs`) and `ns`, such as `1s`,
/// `6m0s`, `250ms` or `1h2m3.5s`.
///
/// ```
/// use std::time::Duration;
/// use resilient_runtime::http::parse_reset;
///
/// assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
/// assert_eq!(parse_reset("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
/// assert_eq!(parse_reset("soon"), None);
/// ```
pub fn parse_reset(value: &str) -> Option<Duration> {
    let mut rest = value.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);

        let seconds_per_unit = match unit {
            "h" => 3_600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        if number.is_empty() || number == "." {
            return None;
        }
        let amount: f64 = number.parse().ok()?;
        let part = Duration::try_from_secs_f64(amount * seconds_per_unit).ok()?;
        total = total.checked_add(part)?;
        rest = after;
    }
    Some(total)
}

// Errors from a real reqwest client are classified in the workspace's `tests/openai_client.rs`:
// a client needs a TLS crypto provider, which only the application chooses.
#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    const NOW: Duration = Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + NOW
    }

    #[test]
    fn transient_and_permanent_statuses() {
        for code in [408, 409, 429, 500, 501, 502, 503, 504, 520, 529, 599] {
            assert_eq!(classify_status(status(code)), Verdict::Transient, "{code}");
        }
        for code in [200, 301, 304, 400, 401, 403, 404, 405, 413, 415, 422, 451] {
            assert_eq!(classify_status(status(code)), Verdict::Permanent, "{code}");
        }
    }

    #[test]
    fn responses_carry_the_hint_only_when_transient() {
        let hinted = headers(&[("retry-after", "3")]);
        let three = Verdict::RetryAfter(Duration::from_secs(3));
        assert_eq!(classify_response(status(429), &hinted, None), three);
        assert_eq!(classify_response(status(503), &hinted, None), three);
        assert_eq!(
            classify_response(status(400), &hinted, None),
            Verdict::Permanent
        );
        assert_eq!(
            classify_response(status(502), &HeaderMap::new(), None),
            Verdict::Transient
        );
    }

    #[test]
    fn exhausted_quota_is_permanent_only_on_a_429() {
        let none = HeaderMap::new();
        let quota = Some(INSUFFICIENT_QUOTA);
        assert_eq!(
            classify_response(status(429), &none, quota),
            Verdict::Permanent
        );
        assert_eq!(
            classify_response(status(429), &none, Some("rate_limit_exceeded")),
            Verdict::Transient
        );
        assert_eq!(
            classify_response(status(500), &none, quota),
            Verdict::Transient
        );
    }

    #[test]
    fn retry_after_ms() {
        assert_eq!(
            parse_retry_after_ms("250"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after_ms(" 1.5 "),
            Some(Duration::from_micros(1_500))
        );
        assert_eq!(parse_retry_after_ms("0"), Some(Duration::ZERO));
        for garbage in ["", "-5", "NaN", "inf", "1e400", "12ms", "0x10", "½"] {
            assert_eq!(parse_retry_after_ms(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn retry_after_delta_seconds() {
        assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("120", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now()),
            Some(Duration::from_secs(u64::MAX))
        );
        for garbage in ["", " ", "-1", "1.5", "+3", "3s", "three"] {
            assert_eq!(parse_retry_after(garbage, now()), None, "{garbage:?}");
        }
    }

    #[test]
    fn retry_after_http_dates() {
        let in_a_minute = [
            "Sun, 06 Nov 1994 08:50:37 GMT",
            "Sunday, 06-Nov-94 08:50:37 GMT",
            "Sun Nov  6 08:50:37 1994",
        ];
        for date in in_a_minute {
            assert_eq!(
                parse_retry_after(date, now()),
                Some(Duration::from_secs(60)),
                "{date}"
            );
        }
        let past = "Sun, 06 Nov 1994 08:00:00 GMT";
        assert_eq!(parse_retry_after(past, now()), Some(Duration::ZERO));
        for garbage in ["Sun, 32 Nov 1994 08:49:37 GMT", "tomorrow", "Sun, 06 Nov"] {
            assert_eq!(parse_retry_after(garbage, now()), None, "{garbage:?}");
        }
    }

    #[test]
    fn reset_durations() {
        let cases = [
            ("1s", Duration::from_secs(1)),
            ("6m0s", Duration::from_secs(360)),
            ("250ms", Duration::from_millis(250)),
            ("1h2m3.5s", Duration::from_millis(3_723_500)),
            ("0.5s", Duration::from_millis(500)),
            ("20us", Duration::from_micros(20)),
            ("20µs", Duration::from_micros(20)),
            ("7ns", Duration::from_nanos(7)),
            (" 2m ", Duration::from_secs(120)),
            ("0s", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_reset(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn reset_garbage_is_ignored() {
        let garbage = [
            "", "s", "1", "1x", "-1s", "1.2.3s", ".s", "1s2", "1 s", "ms1", "1e3s", "inf", "NaN s",
            "1h 2m", "🦀", "1sms",
        ];
        let overflowing = "99999999999999999999999h";
        for text in garbage.into_iter().chain([overflowing]) {
            assert_eq!(parse_reset(text), None, "{text:?}");
        }
    }

    #[test]
    fn hint_precedence() {
        let all = headers(&[
            ("retry-after-ms", "40"),
            ("retry-after", "2"),
            ("x-ratelimit-reset-requests", "3s"),
        ]);
        assert_eq!(retry_hint_at(&all, now()), Some(Duration::from_millis(40)));

        let no_ms = headers(&[("retry-after", "2"), ("x-ratelimit-reset-requests", "3s")]);
        assert_eq!(retry_hint_at(&no_ms, now()), Some(Duration::from_secs(2)));

        let broken_first = headers(&[
            ("retry-after-ms", "later"),
            ("retry-after", "whenever"),
            ("x-ratelimit-reset-tokens", "250ms"),
        ]);
        assert_eq!(
            retry_hint_at(&broken_first, now()),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_hint_at(&HeaderMap::new(), now()), None);
    }

    #[test]
    fn only_the_limits_that_refused_count() {
        let both = headers(&[
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        assert_eq!(retry_hint_at(&both, now()), Some(Duration::from_secs(360)));

        let requests_out = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-remaining-tokens", "149984"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        assert_eq!(
            retry_hint_at(&requests_out, now()),
            Some(Duration::from_secs(1))
        );

        // Requests left and some tokens left: the request wanted more tokens than remained, so
        // the token limit refused it and its reset is the wait.
        let too_few_tokens = headers(&[
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-remaining-tokens", "100"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-reset-tokens", "12s"),
        ]);
        assert_eq!(
            retry_hint_at(&too_few_tokens, now()),
            Some(Duration::from_secs(12))
        );

        let requests_left_no_token_reset = headers(&[
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-remaining-tokens", "100"),
            ("x-ratelimit-reset-requests", "1s"),
        ]);
        assert_eq!(retry_hint_at(&requests_left_no_token_reset, now()), None);

        let both_out = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-reset-tokens", "20s"),
        ]);
        assert_eq!(
            retry_hint_at(&both_out, now()),
            Some(Duration::from_secs(20))
        );
    }

    #[test]
    fn non_ascii_header_values_are_skipped() {
        let mut map = HeaderMap::new();
        map.insert("retry-after", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        map.insert("retry-after-ms", HeaderValue::from_bytes(b"1\x80").unwrap());
        assert_eq!(retry_hint_at(&map, now()), None);
    }
}
