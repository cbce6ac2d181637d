//! Counting what happened to the calls, and the closing table.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use resilient::BreakerStatus;

use crate::client::ChatError;

/// The outcomes of every call made so far.
#[derive(Debug, Default)]
pub struct Tally {
    calls: u64,
    successes: u64,
    failures: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one finished call.
    pub fn record<T>(&mut self, result: &Result<T, ChatError>) {
        self.calls += 1;
        match result {
            Ok(_) => self.successes += 1,
            Err(error) => *self.failures.entry(error.kind()).or_default() += 1,
        }
    }

    /// How many calls failed.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Folds another tally into this one.
    pub fn absorb(&mut self, other: Tally) {
        self.calls += other.calls;
        self.successes += other.successes;
        for (kind, count) in other.failures {
            *self.failures.entry(kind).or_default() += count;
        }
    }
}

/// Everything the closing table shows.
#[derive(Debug)]
pub struct Summary {
    /// The call outcomes.
    pub tally: Tally,
    /// Attempts that ran: requests the client tried to send.
    pub attempts: u64,
    /// Requests the server saw, when the example ran its own server.
    pub server_requests: Option<usize>,
    /// The shared breaker at the end.
    pub breaker: BreakerStatus,
    /// From the first call to the last answer.
    pub elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tally = &self.tally;
        let failed = tally.failed();
        let row = |f: &mut fmt::Formatter<'_>, label: &str, value: &dyn fmt::Display| {
            writeln!(f, "  {label:<40} {value:>10}")
        };

        writeln!(f, "summary")?;
        row(f, "calls", &tally.calls)?;
        row(f, "attempts sent by the client", &self.attempts)?;
        row(f, "successes", &tally.successes)?;
        row(f, "failures", &failed)?;
        for (kind, count) in &tally.failures {
            row(f, &format!("  {kind}"), count)?;
        }
        row(f, "rejections by the breaker", &self.breaker.rejections)?;
        if let Some(requests) = self.server_requests {
            row(f, "requests the server received", &requests)?;
        }
        let breaker = format!(
            "{} ({} failures, {} successes recorded)",
            self.breaker.state, self.breaker.failures, self.breaker.successes
        );
        writeln!(
            f,
            "  {:<40} {breaker}",
            format!("breaker `{}`", self.breaker.name)
        )?;
        row(
            f,
            "total time",
            &format!("{:.1} s", self.elapsed.as_secs_f64()),
        )
    }
}
