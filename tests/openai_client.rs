//! The example's OpenAI client against a fault-injecting server on 127.0.0.1: what is retried,
//! how often, and how long it waits, judged by the requests the server received.
//!
//! Time is paused: tokio moves the clock to the next timer whenever client and server (both on
//! the test's runtime) are idle, so hints of seconds or minutes cost nothing.

mod support;

use std::time::{Duration, SystemTime};

use resilient::http::classify_error;
use resilient::{BreakerConfig, Verdict};
use support::{ChatError, OpenAi, Reply, brisk, lenient, pair, take_turn};

/// The gaps between consecutive requests the server received.
fn gaps(server: &support::SimServer) -> Vec<Duration> {
    let arrivals = server.arrivals();
    arrivals.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn transient_statuses_are_retried_three_times_and_no_more() {
    let _turn = take_turn(brisk(), lenient()).await;
    for status in [408, 409, 429, 500, 502, 503, 504] {
        let (server, client) = pair().await;
        server.set_standing(Reply::status(status));

        let error = client.chat("hello").await.unwrap_err();

        assert_eq!(server.requests(), 4, "status {status}");
        assert!(
            matches!(&error, ChatError::Api { status: s, .. } if s.as_u16() == status),
            "{error:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_then_an_answer() {
    let _turn = take_turn(brisk(), lenient()).await;
    let (server, client) = pair().await;
    server.script([Reply::status(500), Reply::status(502)]);

    let reply = client.chat("Name a prime").await.unwrap();

    assert_eq!(reply, "(simulated) You said: Name a prime");
    assert_eq!(server.requests(), 3);
    assert_eq!(client.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_sent_once() {
    let _turn = take_turn(brisk(), lenient()).await;
    let cases = [
        (Reply::status(400), 400, "invalid_request_error"),
        (Reply::status(401), 401, "invalid_api_key"),
        (Reply::status(403), 403, "server_error"),
        (Reply::status(404), 404, "server_error"),
        (Reply::status(422), 422, "server_error"),
        (Reply::no_quota(), 429, "insufficient_quota"),
    ];
    for (reply, expected_status, expected_code) in cases {
        let (server, client) = pair().await;
        server.set_standing(reply);

        let error = client.chat("hello").await.unwrap_err();

        assert_eq!(server.requests(), 1, "status {expected_status}");
        let ChatError::Api {
            status,
            code,
            verdict,
            ..
        } = &error
        else {
            panic!("not an API error: {error:?}");
        };
        assert_eq!(status.as_u16(), expected_status);
        assert_eq!(code.as_deref(), Some(expected_code));
        assert_eq!(*verdict, Verdict::Permanent);
    }
}

#[tokio::test(start_paused = true)]
async fn waits_at_least_each_hint() {
    let _turn = take_turn(brisk(), lenient()).await;
    // An HTTP-date has whole seconds and is read against the wall clock, which runs on while
    // tokio's is paused; its hint is known only once the call is over (`None` below).
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(4));
    let written = httpdate::parse_http_date(&date).unwrap();
    let hints = [
        (Reply::rate_limited("retry-after-ms", "700"), Some(700)),
        (Reply::rate_limited("retry-after", "2"), Some(2_000)),
        (Reply::rate_limited("retry-after", date), None),
        (
            Reply::rate_limited("x-ratelimit-reset-requests", "1s"),
            Some(1_000),
        ),
        (
            Reply::rate_limited("x-ratelimit-reset-tokens", "6m0s"),
            Some(360_000),
        ),
        (
            Reply::status(503).with_header("retry-after", "1"),
            Some(1_000),
        ),
        // The hint is in the headers: a body cut off mid-read does not lose it.
        (
            Reply::FailCutOff {
                status: 429,
                headers: vec![("retry-after-ms", "700".into())],
            },
            Some(700),
        ),
    ];
    for (reply, at_least_ms) in hints {
        let (server, client) = pair().await;
        let described = format!("{reply:?}");
        server.script([reply]);

        client.chat("hello").await.unwrap();

        let gaps = gaps(&server);
        assert_eq!(gaps.len(), 1, "{described}");
        // The client read the date before now, so its hint was at least what is left of it now.
        let at_least = at_least_ms.map_or_else(
            || written.duration_since(SystemTime::now()).unwrap(),
            Duration::from_millis,
        );
        assert!(gaps[0] >= at_least, "{described}: waited {:?}", gaps[0]);
        // Never far beyond: the hint plus its spread (a tenth, at most a second).
        assert!(gaps[0] <= at_least * 2, "{described}: waited {:?}", gaps[0]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_hint_beyond_max_hint_ends_the_call_with_the_servers_error() {
    let _turn = take_turn(brisk().max_hint(Duration::from_secs(60)), lenient()).await;
    let (server, client) = pair().await;
    server.script([Reply::rate_limited("x-ratelimit-reset-tokens", "6m0s")]);

    let started = tokio::time::Instant::now();
    let error = client.chat("hello").await.unwrap_err();

    assert_eq!(server.requests(), 1);
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(
        matches!(&error, ChatError::Api { status, verdict: Verdict::RetryAfter(hint), .. }
            if status.as_u16() == 429 && *hint == Duration::from_secs(360)),
        "{error:?}"
    );

    // A hint within the bound is waited out as before.
    let (server, client) = pair().await;
    server.script([Reply::rate_limited("retry-after", "60")]);
    client.chat("hello").await.unwrap();
    assert_eq!(server.requests(), 2);
    assert!(gaps(&server)[0] >= Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn malformed_hints_fall_back_to_the_backoff() {
    let _turn = take_turn(brisk(), lenient()).await;
    let (server, client) = pair().await;
    server.script([
        Reply::rate_limited("retry-after", "soon"),
        Reply::rate_limited("retry-after-ms", "-1"),
        Reply::rate_limited("x-ratelimit-reset-requests", "1h 2m"),
    ]);

    client.chat("hello").await.unwrap();

    assert_eq!(server.requests(), 4);
    for gap in gaps(&server) {
        assert!(gap <= Duration::from_millis(2), "waited {gap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_attempt_is_cut_by_the_timeout_and_retried() {
    let policy = brisk().timeout(Duration::from_secs(1));
    let _turn = take_turn(policy, lenient()).await;
    let (server, client) = pair().await;
    server.script([Reply::Slow(Duration::from_secs(30))]);

    client.chat("hello").await.unwrap();

    let gaps = gaps(&server);
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0] >= Duration::from_secs(1), "waited {:?}", gaps[0]);
    assert!(gaps[0] < Duration::from_secs(30), "waited {:?}", gaps[0]);

    server.set_standing(Reply::Slow(Duration::from_secs(30)));
    let error = client.chat("hello").await.unwrap_err();
    assert!(matches!(error, ChatError::TimedOut(_)), "{error:?}");
    assert_eq!(server.requests(), 2 + 4);
}

#[tokio::test(start_paused = true)]
async fn a_body_cut_short_is_retried_and_one_that_does_not_parse_is_not() {
    let _turn = take_turn(brisk(), lenient()).await;
    let (server, client) = pair().await;
    server.set_standing(Reply::CutOff);

    let error = client.chat("hello").await.unwrap_err();
    assert_eq!(server.requests(), 4);
    // reqwest calls a body that fails mid-read a decode error; the classifier looks past that.
    let ChatError::Transport { source, verdict } = &error else {
        panic!("not a transport error: {error:?}");
    };
    assert!(source.is_decode(), "{source:?}");
    assert_eq!(*verdict, Verdict::Transient);

    server.set_standing(Reply::Garbage);
    let error = client.chat("hello").await.unwrap_err();
    assert!(matches!(error, ChatError::Unreadable { .. }), "{error:?}");
    assert_eq!(server.requests(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_then_reported() {
    let _turn = take_turn(brisk(), lenient()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let client = OpenAi::new(&format!("http://127.0.0.1:{port}/v1"), "sk", "m").unwrap();

    let error = client.chat("hello").await.unwrap_err();

    assert_eq!(client.attempts(), 4);
    assert!(matches!(&error, ChatError::Transport { .. }), "{error:?}");
    assert_eq!(error.verdict(), Verdict::Transient);
    assert!(
        error.to_string().starts_with("could not connect"),
        "{error}"
    );
}

#[tokio::test]
async fn reqwest_errors_are_classified() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let bad_url = client.get("not a url").send().await.unwrap_err();
    assert_eq!(classify_error(&bad_url), Verdict::Permanent);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let refused = client.get(format!("http://127.0.0.1:{port}/")).send().await;
    assert_eq!(classify_error(&refused.unwrap_err()), Verdict::Transient);
}

#[test]
fn unusable_base_urls_are_refused_up_front() {
    for url in [
        "",
        "api.openai.com/v1",
        "ftp://example.com/v1",
        "http://",
        "mailto:a@b",
    ] {
        let error = OpenAi::new(url, "sk", "m").unwrap_err();
        assert!(
            matches!(error, ChatError::InvalidUrl { .. }),
            "{url}: {error:?}"
        );
    }
    let trailing = OpenAi::new("http://127.0.0.1:1/v1/", "sk", "m").unwrap();
    assert_eq!(
        trailing.endpoint().as_str(),
        "http://127.0.0.1:1/v1/chat/completions"
    );
    let bare = OpenAi::new("https://api.openai.com/v1", "sk", "m").unwrap();
    assert_eq!(
        bare.endpoint().as_str(),
        "https://api.openai.com/v1/chat/completions"
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_leave_the_breaker_alone() {
    let breaker = BreakerConfig::new().failure_threshold(2);
    let _turn = take_turn(brisk(), breaker).await;
    let (server, client) = pair().await;
    server.set_standing(Reply::status(401));

    for _ in 0..5 {
        client.chat("hello").await.unwrap_err();
    }

    assert_eq!(server.requests(), 5);
    let status = resilient::breaker(support::BREAKER).status();
    assert_eq!(status.state, resilient::BreakerState::Closed);
    assert_eq!(status.consecutive_failures, 0);
}
