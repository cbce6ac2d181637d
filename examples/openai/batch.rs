//! Many prompts through one client, a bounded number at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::JoinSet;

use crate::client::{ChatError, OpenAi};
use crate::summary::Tally;

/// Sends every prompt through `concurrency` workers that share the client, and so its breaker.
/// `report` sees each result, with the prompt's index, as it arrives.
pub async fn send_all(
    client: &OpenAi,
    prompts: Vec<String>,
    concurrency: usize,
    report: fn(usize, &Result<String, ChatError>),
) -> Tally {
    let prompts = Arc::new(prompts);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, prompts, next) = (client.clone(), prompts.clone(), next.clone());
        workers.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(prompt) = prompts.get(index) else {
                    return tally;
                };
                let result = client.chat(prompt).await;
                report(index, &result);
                tally.record(&result);
            }
        });
    }

    let mut total = Tally::default();
    while let Some(worker) = workers.join_next().await {
        match worker {
            Ok(tally) => total.absorb(tally),
            Err(error) => tracing::error!("a batch worker failed: {error}"),
        }
    }
    total
}
