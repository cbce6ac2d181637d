//! A simulated OpenAI-compatible server: a real HTTP server on 127.0.0.1 that answers
//! `POST /v1/chat/completions` from a script, so that every failure mode can be shown and tested
//! without a network or an API key.
//!
//! Each request takes the next scripted [`Reply`]; once the script is empty it gets the standing
//! reply (a completion, unless set otherwise). The server counts and timestamps every request it
//! receives, which is what tests and the example's summary check the client against.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

type HttpResponse = Response<BoxBody<Bytes, io::Error>>;

/// One scripted answer to a chat-completions request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// 200 with a completion that quotes the prompt.
    Complete,
    /// A completion sent only after `delay`: an attempt that hangs.
    Slow(Duration),
    /// A 200 whose body is not JSON.
    Garbage,
    /// A 200 whose connection closes before the body it announced is complete.
    CutOff,
    /// An error status with its headers, whose body is cut off the same way.
    #[allow(dead_code, reason = "only the tests script it")]
    FailCutOff {
        /// The HTTP status.
        status: u16,
        /// Response headers, such as `retry-after`.
        headers: Vec<(&'static str, String)>,
    },
    /// An error in OpenAI's shape: `{"error": {"message", "type", "code"}}`, plus headers.
    Fail {
        /// The HTTP status.
        status: u16,
        /// OpenAI's error code.
        code: &'static str,
        /// Extra response headers, such as `retry-after`.
        headers: Vec<(&'static str, String)>,
    },
}

impl Reply {
    /// An error with `status` and the code OpenAI uses for it.
    pub fn status(status: u16) -> Reply {
        let code = match status {
            400 => "invalid_request_error",
            401 => "invalid_api_key",
            429 => "rate_limit_exceeded",
            503 => "overloaded",
            _ => "server_error",
        };
        Reply::Fail {
            status,
            code,
            headers: Vec::new(),
        }
    }

    /// A 429 for a rate limit, carrying the hint `header: value`.
    pub fn rate_limited(header: &'static str, value: impl Into<String>) -> Reply {
        Reply::Fail {
            status: 429,
            code: "rate_limit_exceeded",
            headers: vec![(header, value.into())],
        }
    }

    /// The 429 OpenAI sends when the account is out of credit.
    pub fn no_quota() -> Reply {
        Reply::Fail {
            status: 429,
            code: "insufficient_quota",
            headers: Vec::new(),
        }
    }

    /// Adds a response header to an error reply.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        if let Reply::Fail { headers, .. } = &mut self {
            headers.push((name, value.into()));
        }
        self
    }
}

/// The running server. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    state: Arc<State>,
    acceptor: JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    script: Mutex<VecDeque<Reply>>,
    standing: Mutex<Reply>,
    arrivals: Mutex<Vec<Instant>>,
}

impl SimServer {
    /// Binds a free port on 127.0.0.1 and serves in the background on the current runtime.
    pub async fn start() -> io::Result<SimServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            script: Mutex::new(VecDeque::new()),
            standing: Mutex::new(Reply::Complete),
            arrivals: Mutex::new(Vec::new()),
        });
        let acceptor = tokio::spawn(accept(listener, state.clone()));
        Ok(SimServer {
            addr,
            state,
            acceptor,
        })
    }

    /// The base URL to give a client, like `https://api.openai.com/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues replies for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.script).extend(replies);
    }

    /// Sets the reply for every request once the script is empty.
    pub fn set_standing(&self, reply: Reply) {
        *lock(&self.state.standing) = reply;
    }

    /// How many requests have arrived, whatever their path.
    pub fn requests(&self) -> usize {
        lock(&self.state.arrivals).len()
    }

    /// When each request arrived, on tokio's clock.
    pub fn arrivals(&self) -> Vec<Instant> {
        lock(&self.state.arrivals).clone()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// A poisoned lock only means a handler panicked mid-update; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(state.clone(), request));
            // A client that gives up on a slow reply closes the connection; that is expected.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(state: Arc<State>, request: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    lock(&state.arrivals).push(Instant::now());
    let is_chat =
        request.method() == Method::POST && request.uri().path() == "/v1/chat/completions";
    if !is_chat {
        let message = format!(
            "Unknown request URL: {} {}",
            request.method(),
            request.uri()
        );
        return Ok(error(404, "unknown_url", &message, &[]));
    }
    let reply = lock(&state.script)
        .pop_front()
        .unwrap_or_else(|| lock(&state.standing).clone());

    let body = request
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let prompt: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let prompt = prompt["messages"]
        .as_array()
        .and_then(|messages| messages.last())
        .and_then(|message| message["content"].as_str())
        .unwrap_or("")
        .to_owned();

    Ok(match reply {
        Reply::Complete => completion(&prompt),
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            completion(&prompt)
        }
        Reply::Garbage => {
            let mut response = Response::new(whole(Bytes::from_static(b"<html>oops")));
            let html = hyper::header::HeaderValue::from_static("text/html");
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, html);
            response
        }
        Reply::CutOff => cut_off(StatusCode::OK, &[]),
        Reply::FailCutOff { status, headers } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            cut_off(status, &headers)
        }
        Reply::Fail {
            status,
            code,
            headers,
        } => error(status, code, &message_for(code), &headers),
    })
}

fn completion(prompt: &str) -> HttpResponse {
    let content = format!("(simulated) You said: {prompt}");
    let body = json!({
        "id": "chatcmpl-simulated",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": "stop",
        }],
    });
    respond(StatusCode::OK, &body, &[])
}

fn message_for(code: &str) -> String {
    match code {
        "rate_limit_exceeded" => "Rate limit reached for requests. Please try again shortly.",
        "insufficient_quota" => {
            "You exceeded your current quota, please check your plan and billing details."
        }
        "invalid_api_key" => "Incorrect API key provided.",
        "invalid_request_error" => "The request was malformed.",
        "overloaded" => "The server is overloaded. Please try again later.",
        _ => "The server had an error while processing your request.",
    }
    .to_owned()
}

fn error(
    status: u16,
    code: &str,
    message: &str,
    headers: &[(&'static str, String)],
) -> HttpResponse {
    let body = json!({
        "error": { "message": message, "type": "simulated", "param": null, "code": code },
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(status, &body, headers)
}

fn respond(status: StatusCode, body: &Value, headers: &[(&'static str, String)]) -> HttpResponse {
    let mut response = Response::new(whole(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let all = response.headers_mut();
    all.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    for (name, value) in headers {
        if let Ok(value) = hyper::header::HeaderValue::from_str(value) {
            all.insert(*name, value);
        }
    }
    response
}

/// A response with `status` and `headers` whose JSON body breaks off mid-way.
fn cut_off(status: StatusCode, headers: &[(&'static str, String)]) -> HttpResponse {
    let mut response = Response::new(CutOff::new().boxed());
    *response.status_mut() = status;
    let all = response.headers_mut();
    let json = hyper::header::HeaderValue::from_static("application/json");
    all.insert(hyper::header::CONTENT_TYPE, json);
    for (name, value) in headers {
        if let Ok(value) = hyper::header::HeaderValue::from_str(value) {
            all.insert(*name, value);
        }
    }
    response
}

fn whole(bytes: Bytes) -> BoxBody<Bytes, io::Error> {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// A body that sends the start of a completion, pauses so the status and that start reach the
/// client, then fails, which makes hyper drop the connection mid-body.
struct CutOff {
    started: bool,
    pause: Pin<Box<Sleep>>,
}

impl CutOff {
    fn new() -> Self {
        CutOff {
            started: false,
            pause: Box::pin(tokio::time::sleep(Duration::from_millis(10))),
        }
    }
}

impl Body for CutOff {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if !self.started {
            self.started = true;
            let start = Bytes::from_static(br#"{"id": "chatcmpl-simulated", "choices": [{"#);
            return Poll::Ready(Some(Ok(Frame::data(start))));
        }
        ready!(self.pause.as_mut().poll(cx));
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "simulated cut-off");
        Poll::Ready(Some(Err(reset)))
    }
}
