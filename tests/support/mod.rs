//! The example's client and simulated server, shared by the tests that drive them.

// Each test binary uses a different part of the example's code.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

use resilient::{BreakerConfig, RetryPolicy, configure_breaker, configure_policy};

#[path = "../../examples/openai/client.rs"]
pub mod client;
#[path = "../../examples/openai/server.rs"]
pub mod server;

pub use client::{BREAKER, ChatError, OpenAi, POLICY};
pub use server::{Reply, SimServer};

/// The client's breaker and policy are named in its attribute, so every test in a binary shares
/// them: tests take this lock, then set both afresh.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Holds the test's turn; dropping it lets the next test configure the names.
#[must_use]
pub struct Turn(MutexGuard<'static, ()>);

/// Waits for this test's turn, then gives the shared names `policy` and `breaker`, with the
/// breaker closed and its counts of consecutive failures cleared.
pub async fn take_turn(policy: RetryPolicy, breaker: BreakerConfig) -> Turn {
    let turn = Turn(SERIAL.lock().await);
    configure_policy(POLICY, policy).unwrap();
    configure_breaker(BREAKER, breaker).unwrap().reset();
    turn
}

/// A policy whose own backoff is far below every hint the tests use, so a wait that long can
/// only come from the hint.
pub fn brisk() -> RetryPolicy {
    RetryPolicy::new()
        .base_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(2))
}

/// A breaker that never opens in tests that are not about it.
pub fn lenient() -> BreakerConfig {
    BreakerConfig::new().failure_threshold(u32::MAX)
}

/// A server, and a client pointed at it.
pub async fn pair() -> (SimServer, OpenAi) {
    let server = SimServer::start().await.unwrap();
    let client = OpenAi::new(&server.base_url(), "sk-test", "gpt-4o-mini").unwrap();
    (server, client)
}
