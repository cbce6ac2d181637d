//! A soak under sustained faults: ten thousand calls from two hundred tasks through an annotated
//! function, against a real HTTP server on 127.0.0.1 that answers with random 429s carrying
//! hints, 5xx, hangs, connection resets, malformed bodies and 400s, and goes fully down in
//! regular outage windows.
//!
//! Real sockets need real time, so the durations are short (milliseconds); the assertions are on
//! counts and on the order of events, never on how long anything took.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use resilient::{BreakerConfig, BreakerState, Verdict, resilient};
use tokio::net::TcpListener;
use tokio::time::Instant;

const BREAKER: &str = "soak";
const TASKS: usize = 200;
const CALLS_PER_TASK: usize = 50;
const RETRIES: u64 = 3;
const PROBES: u32 = 2;
const OPEN_FOR: Duration = Duration::from_millis(60);
/// How long after the breaker opens an attempt admitted just before may still start: admission
/// and the start of the body happen in one poll, so only a preempted thread takes this long.
const ADMISSION_MARGIN: Duration = Duration::from_millis(10);
/// The server is down for 150 ms of every 600 ms.
const CYCLE: Duration = Duration::from_millis(600);
const OUTAGE: std::ops::Range<u128> = 400..550;
/// The longest a task rests between two calls, so the calls spread over several outages.
const PACE_MS: u64 = 60;

#[derive(Debug)]
#[allow(dead_code)] // The payloads are there for the panic messages of failed assertions.
enum SoakError {
    Status(u16, Option<Duration>),
    Transport(reqwest::Error),
    Malformed(String),
    Resilience(resilient::Error),
}

impl From<resilient::Error> for SoakError {
    fn from(e: resilient::Error) -> Self {
        SoakError::Resilience(e)
    }
}

fn classify(error: &SoakError) -> Verdict {
    match error {
        SoakError::Status(400, _) => Verdict::Permanent,
        SoakError::Status(_, Some(hint)) => Verdict::RetryAfter(*hint),
        _ => Verdict::Transient,
    }
}

#[resilient(
    retries = 3,
    jitter = "full",
    base_delay = "1ms",
    max_delay = "8ms",
    timeout = "500ms",
    breaker = "soak",
    retry_if = classify
)]
async fn fetch(client: &reqwest::Client, url: &str, attempts: &Attempts) -> Result<u64, SoakError> {
    let id = {
        let mut starts = attempts.starts.lock().unwrap();
        starts.push(Instant::now());
        starts.len() - 1
    };
    let response = client
        .get(url)
        .header(ATTEMPT, id)
        .send()
        .await
        .map_err(SoakError::Transport)?;
    let status = response.status().as_u16();
    let hint = resilient::http::retry_hint(response.headers());
    let body = response.text().await.map_err(SoakError::Transport)?;
    if status != 200 {
        return Err(SoakError::Status(status, hint));
    }
    body.strip_prefix("ok ")
        .and_then(|n| n.parse().ok())
        .ok_or(SoakError::Malformed(body))
}

/// The header that carries an attempt's number to the server.
const ATTEMPT: &str = "x-attempt";

/// What the server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    completed: AtomicU64,
    bad_requests: AtomicU64,
    most_probes: AtomicU64,
    /// The attempt number of every request, in the order they arrived.
    attempts: Mutex<Vec<usize>>,
}

/// When each attempt of the annotated function began; an attempt's number is its index.
#[derive(Default)]
struct Attempts {
    starts: Mutex<Vec<Instant>>,
}

async fn serve(listener: TcpListener, seen: Arc<Seen>, started: Instant) {
    let mut connection = 0u64;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        connection += 1;
        let seen = seen.clone();
        // One request per connection (the client keeps none idle), so one roll per connection.
        let roll: u32 = SmallRng::seed_from_u64(connection).random_range(0..100);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let seen = seen.clone();
                let attempt = request.headers().get(ATTEMPT).and_then(|v| v.to_str().ok());
                let attempt = attempt.and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
                seen.attempts.lock().unwrap().push(attempt);
                async move { answer(&seen, roll, started).await }
            });
            // Resets end the connection with an error; that is the point.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(seen: &Seen, roll: u32, started: Instant) -> Result<Response<Full<Bytes>>, String> {
    let n = seen.requests.fetch_add(1, Ordering::SeqCst);
    let probes = u64::from(resilient::breaker(BREAKER).status().probes_in_flight);
    seen.most_probes.fetch_max(probes, Ordering::SeqCst);

    let phase = started.elapsed().as_millis() % CYCLE.as_millis();
    if OUTAGE.contains(&phase) {
        return Ok(reply(503, "down", &[]));
    }
    Ok(match roll {
        0..=7 => reply(429, "slow down", &[("retry-after-ms", "3")]),
        8..=14 => reply([500, 502, 503, 504][roll as usize % 4], "oops", &[]),
        15..=16 => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            reply(200, "ok late", &[])
        }
        19..=22 => return Err("reset".into()),
        23..=26 => reply(200, "{\"truncated", &[]),
        27..=28 => {
            seen.bad_requests.fetch_add(1, Ordering::SeqCst);
            reply(400, "bad request", &[])
        }
        _ => {
            seen.completed.fetch_add(1, Ordering::SeqCst);
            reply(200, &format!("ok {n}"), &[])
        }
    })
}

fn reply(status: u16, body: &str, headers: &[(&str, &str)]) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_under_faults_each_return_once_and_the_breaker_keeps_its_word() {
    let breaker = resilient::configure_breaker(
        BREAKER,
        BreakerConfig::new()
            .failure_threshold(8)
            .open_duration(OPEN_FOR)
            .half_open_probes(PROBES),
    )
    .unwrap();
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let sink = transitions.clone();
    breaker.on_state_change(move |change| sink.lock().unwrap().push((Instant::now(), change.to)));

    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let server = tokio::spawn(serve(listener, seen.clone(), Instant::now()));
    // A fresh connection per request: a pooled one the server reset could be retried inside
    // the client, and the server would see requests the annotated function never made.
    // reqwest is built with rustls and no provider of its own; an error means one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let attempts = Arc::new(Attempts::default());

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (client, url, attempts) = (client.clone(), url.clone(), attempts.clone());
            tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(task as u64);
                let mut outcomes = Vec::with_capacity(CALLS_PER_TASK);
                for _ in 0..CALLS_PER_TASK {
                    let rest = rng.random_range(0..=PACE_MS);
                    tokio::time::sleep(Duration::from_millis(rest)).await;
                    let call = fetch(&client, &url, &attempts);
                    // Four attempts of at most 500 ms and waits of at most 8 ms (or a hint of
                    // 3 ms): ten seconds is a hang.
                    let outcome = tokio::time::timeout(Duration::from_secs(10), call).await;
                    outcomes.push(outcome.expect("a call hung"));
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.expect("a task panicked"));
    }
    server.abort();

    // Every call returned: a hang fails the timeout above, a panic the task's join.
    let calls = (TASKS * CALLS_PER_TASK) as u64;
    let ok = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
    let rejected = outcomes
        .iter()
        .filter(|o| matches!(o, Err(SoakError::Resilience(e)) if e.is_rejected()))
        .count() as u64;

    let requests = seen.requests.load(Ordering::SeqCst);
    let starts = attempts.starts.lock().unwrap().clone();
    let attempts = starts.len() as u64;
    assert!(
        requests <= calls * (RETRIES + 1),
        "{requests} requests for {calls} calls"
    );
    // Each request the server saw is one attempt the function made, none sent twice (no retry
    // hidden inside the HTTP client), so the attempts' start times speak for the server too.
    let mut arrived = seen.attempts.lock().unwrap().clone();
    assert_eq!(arrived.len() as u64, requests);
    arrived.sort_unstable();
    arrived.dedup();
    assert_eq!(
        arrived.len() as u64,
        requests,
        "an attempt reached the server twice"
    );
    assert!(
        arrived.iter().all(|&id| id < starts.len()),
        "the server saw a request no attempt made"
    );
    let status = breaker.status();
    eprintln!(
        "soak: {calls} calls, {ok} ok, {rejected} refused, {attempts} attempts, {requests} \
         requests, {} well-formed 200s sent; breaker: {} successes, {} failures, {} ignored",
        seen.completed.load(Ordering::SeqCst),
        status.successes,
        status.failures,
        status.ignored,
    );
    assert_eq!(
        status.successes,
        seen.completed.load(Ordering::SeqCst),
        "every well-formed 200 the server sent is one success the breaker recorded"
    );
    assert_eq!(status.successes, ok, "every success is one call's result");
    assert_eq!(
        status.ignored,
        seen.bad_requests.load(Ordering::SeqCst),
        "every 400 the server sent is one outcome the breaker ignored"
    );
    assert_eq!(
        status.successes + status.failures + status.ignored,
        attempts,
        "the breaker recorded every attempt it admitted, once"
    );
    assert_eq!(
        status.rejections, rejected,
        "every refusal reached its caller"
    );
    assert!(seen.most_probes.load(Ordering::SeqCst) <= u64::from(PROBES));

    // While the breaker is open no attempt starts, so the server sees no request from one.
    let transitions = transitions.lock().unwrap().clone();
    let opened = transitions
        .iter()
        .filter(|(_, to)| *to == BreakerState::Open)
        .count();
    assert!(
        opened >= 2,
        "the outage windows opened the breaker only {opened} times"
    );
    for (i, (at, to)) in transitions.iter().enumerate() {
        if *to != BreakerState::Open {
            continue;
        }
        let until = transitions
            .get(i + 1)
            .map_or(*at + OPEN_FOR, |(next, _)| *next);
        let quiet_from = *at + ADMISSION_MARGIN;
        let leaked = starts
            .iter()
            .filter(|t| **t >= quiet_from && **t < until)
            .count();
        assert_eq!(
            leaked, 0,
            "{leaked} attempts started while the breaker was open"
        );
    }
    eprintln!("soak: the breaker opened {opened} times");
}
