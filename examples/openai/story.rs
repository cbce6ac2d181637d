//! The scripted story the example plays against its simulated server: every failure mode once,
//! then a concurrent batch.

use std::time::Duration;

use crate::batch;
use crate::client::{BREAKER, ChatError, OpenAi};
use crate::server::{Reply, SimServer};
use crate::summary::Tally;

/// Plays every chapter in order and returns the outcome of every call.
pub async fn play(
    server: &SimServer,
    client: &OpenAi,
    prompts: usize,
    concurrency: usize,
) -> Tally {
    let mut story = Story {
        server,
        client,
        tally: Tally::default(),
    };
    story.rate_limits().await;
    story.server_errors().await;
    story.slow_reply().await;
    story.permanent_errors().await;
    story.outage().await;
    chapter(&format!(
        "a batch of {prompts} prompts, {concurrency} at a time, sharing the breaker"
    ));
    let batch = scripted_batch(server, client, prompts, concurrency).await;
    story.tally.absorb(batch);
    story.tally
}

struct Story<'a> {
    server: &'a SimServer,
    client: &'a OpenAi,
    tally: Tally,
}

impl Story<'_> {
    async fn rate_limits(&mut self) {
        chapter("rate limited: three 429s, each with a different wait hint, then an answer");
        self.server.script([
            Reply::rate_limited("retry-after-ms", "300"),
            Reply::rate_limited("retry-after", "1"),
            Reply::rate_limited("x-ratelimit-reset-requests", "450ms")
                .with_header("x-ratelimit-remaining-requests", "0"),
        ]);
        let first = self.server.requests();
        self.call("Say hello").await;

        let arrivals = self.server.arrivals();
        let gaps: Vec<String> = arrivals
            .get(first..)
            .unwrap_or_default()
            .windows(2)
            .map(|pair| format!("{} ms", (pair[1] - pair[0]).as_millis()))
            .collect();
        tracing::info!(
            "the server saw the attempts {} apart (hints: 300 ms, 1 s, 450 ms)",
            gaps.join(", ")
        );
    }

    async fn server_errors(&mut self) {
        chapter("a burst of server errors: 500, 502, a body cut off mid-way, then an answer");
        self.server
            .script([Reply::status(500), Reply::status(502), Reply::CutOff]);
        self.call("Name a prime number").await;
    }

    async fn slow_reply(&mut self) {
        chapter("a reply slower than the attempt timeout: the attempt is cut and retried");
        self.server.script([Reply::Slow(Duration::from_secs(3))]);
        self.call("Take your time").await;
    }

    async fn permanent_errors(&mut self) {
        chapter("errors that retrying cannot fix: sent once, not counted by the breaker");
        self.server.script([Reply::status(400)]);
        self.call("A malformed request").await;
        self.server.script([Reply::no_quota()]);
        self.call("An account out of credit").await;
        self.server.script([Reply::Garbage]);
        self.call("A reply that is not JSON").await;
    }

    async fn outage(&mut self) {
        chapter("a full outage: every request gets 503 until the breaker opens");
        self.server.set_standing(Reply::status(503));
        self.call("Are you there?").await;
        self.call("Still there?").await;

        chapter("while the breaker is open, calls fail fast without reaching the server");
        let before = self.server.requests();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.call("Anyone?").await;
        }
        let reached = self.server.requests() - before;
        tracing::info!("the server received {reached} requests from those calls");

        chapter("the open duration passes: one probe goes through, meets the outage, re-opens");
        wait_for_probe().await;
        self.call("Back yet?").await;

        chapter("the service recovers: the next probe succeeds and closes the breaker");
        self.server.set_standing(Reply::Complete);
        wait_for_probe().await;
        self.call("Hello again").await;
        self.call("All good?").await;
    }

    async fn call(&mut self, prompt: &str) {
        let result = self.client.chat(prompt).await;
        report(&result);
        self.tally.record(&result);
    }
}

fn chapter(title: &str) {
    tracing::info!("── {title}");
}

fn report(result: &Result<String, ChatError>) {
    match result {
        Ok(reply) => tracing::info!("call succeeded: {reply}"),
        Err(error) => tracing::warn!("call failed ({}): {error}", error.kind()),
    }
}

async fn wait_for_probe() {
    let wait = resilient::breaker(BREAKER)
        .next_probe_in()
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
}

/// Sends `prompts` prompts through `concurrency` workers that share the client and the breaker,
/// with a rate limit and an overloaded server scattered among the answers.
async fn scripted_batch(
    server: &SimServer,
    client: &OpenAi,
    prompts: usize,
    concurrency: usize,
) -> Tally {
    server.script((0..prompts).map(|i| match i % 6 {
        1 => Reply::rate_limited("retry-after-ms", "250"),
        4 => Reply::status(503),
        _ => Reply::Complete,
    }));
    let prompts = (0..prompts)
        .map(|i| format!("Prompt {i} of the batch"))
        .collect();
    batch::send_all(client, prompts, concurrency, |_, result| report(result)).await
}
