//! The study's model: clients that each update one database row once, under optimistic
//! concurrency, and back off when their write loses the race.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use resilient::{Backoff, Jitter, RetryPolicy};

use crate::queue::{EventQueue, MS, Nanos, Network};

/// The study counts its retries from 1 but grows the window as `base · 2^n`, so its first retry
/// already waits up to `2 · 5 ms`. The library's ceiling for retry `k` is `base · 2^(k−1)`, so
/// the study's base of 5 ms becomes a library base of 10 ms and the delays match retry for retry.
const EXPONENTIAL_BASE: Duration = Duration::from_millis(10);

/// Decorrelated jitter in the study ignores the retry count: it draws uniformly between the base
/// and three times the previous sleep, the first previous sleep being the base. The library's
/// decorrelated kind is that same rule, so here the study's 5 ms carries over unchanged.
const DECORRELATED_BASE: Duration = Duration::from_millis(5);

/// The study's cap on any one backoff.
const CAP: Duration = Duration::from_millis(2_000);

/// How a client waits after a lost write, named as in the study's charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Retry after one network delay, with no backoff.
    None,
    /// Exponential backoff without jitter.
    Exponential,
    /// Exponential backoff, half of it jittered.
    Equal,
    /// Exponential backoff, all of it jittered.
    Full,
    /// Decorrelated jitter.
    Decorrelated,
}

impl Strategy {
    /// Every strategy, in the order the table and the charts show them.
    pub const ALL: [Strategy; 5] = [
        Strategy::None,
        Strategy::Exponential,
        Strategy::Equal,
        Strategy::Full,
        Strategy::Decorrelated,
    ];

    /// The name used in the table, the CSV and the chart legends.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::None => "none",
            Strategy::Exponential => "exponential",
            Strategy::Equal => "equal",
            Strategy::Full => "full",
            Strategy::Decorrelated => "decorrelated",
        }
    }

    /// The library's retry policy for this strategy, or `None` when the client never waits.
    pub fn policy(self) -> Option<RetryPolicy> {
        let (jitter, base) = match self {
            Strategy::None => return None,
            Strategy::Exponential => (Jitter::None, EXPONENTIAL_BASE),
            Strategy::Equal => (Jitter::Equal, EXPONENTIAL_BASE),
            Strategy::Full => (Jitter::Full, EXPONENTIAL_BASE),
            Strategy::Decorrelated => (Jitter::Decorrelated, DECORRELATED_BASE),
        };
        Some(
            RetryPolicy::new()
                .jitter(jitter)
                .base_delay(base)
                .max_delay(CAP),
        )
    }
}

/// What one run of the model measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Write calls the server handled; reads are not counted, as in the study.
    pub writes: u64,
    /// The time of the last event: when the last client learned its write succeeded.
    pub time: Nanos,
}

/// A message in flight, named by where it arrives.
#[derive(Debug)]
enum Event {
    /// A client's read reaches the server.
    Read { client: usize },
    /// The row's version reaches the client.
    ReadReply { client: usize, version: u64 },
    /// A client's conditional write reaches the server.
    Write { client: usize, version: u64 },
    /// The server's verdict reaches the client.
    WriteReply { client: usize, won: bool },
}

/// Runs `clients` clients, all starting at time zero, until every one has written once.
pub fn run(strategy: Strategy, clients: usize, network: Network, rng: &mut SmallRng) -> Outcome {
    // Each client keeps its own backoff: the retry count, and the previous sleep for
    // decorrelated jitter, belong to one client's call.
    let mut backoffs: Vec<Option<Backoff>> = (0..clients)
        .map(|_| strategy.policy().map(|policy| Backoff::new(&policy)))
        .collect();
    let mut queue = EventQueue::new();
    for client in 0..clients {
        queue.push(network.delay(rng), Event::Read { client });
    }

    let mut version = 0;
    let mut writes = 0;
    while let Some((now, event)) = queue.pop() {
        match event {
            Event::Read { client } => {
                queue.push(
                    now + network.delay(rng),
                    Event::ReadReply { client, version },
                );
            }
            Event::ReadReply { client, version } => {
                queue.push(now + network.delay(rng), Event::Write { client, version });
            }
            Event::Write {
                client,
                version: read,
            } => {
                writes += 1;
                let won = read == version;
                if won {
                    version += 1;
                }
                queue.push(now + network.delay(rng), Event::WriteReply { client, won });
            }
            Event::WriteReply { won: true, .. } => {}
            Event::WriteReply { client, won: false } => {
                let wait = backoffs[client]
                    .as_mut()
                    .map_or(0, |backoff| nanos(backoff.next_delay(rng)));
                queue.push(now + network.delay(rng) + wait, Event::Read { client });
            }
        }
    }
    Outcome {
        writes,
        time: queue.now(),
    }
}

/// One cell of the sweep: a strategy at one client count, averaged over its runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// The backoff strategy.
    pub strategy: Strategy,
    /// How many clients raced.
    pub clients: usize,
    /// Mean write calls per run.
    pub calls: f64,
    /// Mean completion time per run, in milliseconds.
    pub time_ms: f64,
}

/// The two quantities the study charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Write calls per run.
    Calls,
    /// Completion time per run.
    Time,
}

impl Measure {
    /// Both, in the order the study shows them.
    pub const BOTH: [Measure; 2] = [Measure::Calls, Measure::Time];

    /// This measure's value in `row`.
    pub fn of(self, row: &Row) -> f64 {
        match self {
            Measure::Calls => row.calls,
            Measure::Time => row.time_ms,
        }
    }

    /// What it is, with its unit.
    pub fn title(self) -> &'static str {
        match self {
            Measure::Calls => "write calls",
            Measure::Time => "completion time (ms)",
        }
    }
}

/// Averages `runs` runs of the study's network for one strategy and client count.
///
/// Run `r` at `clients` clients draws from a generator seeded by `(seed, clients, r)` alone, so
/// every strategy meets the same seeds and a cell's numbers do not depend on what else ran.
pub fn average(strategy: Strategy, clients: usize, runs: u32, seed: u64) -> Row {
    let (mut writes, mut time) = (0u64, 0u64);
    for r in 0..runs {
        let mut rng = SmallRng::seed_from_u64(run_seed(seed, clients, r));
        let outcome = run(strategy, clients, Network::STUDY, &mut rng);
        writes += outcome.writes;
        time += outcome.time;
    }
    let runs = f64::from(runs.max(1));
    Row {
        strategy,
        clients,
        calls: writes as f64 / runs,
        time_ms: time as f64 / MS as f64 / runs,
    }
}

/// Every strategy at every client count, spread over the machine's cores; rows come back
/// grouped by strategy, in the order given.
pub fn sweep(strategies: &[Strategy], clients: &[usize], runs: u32, seed: u64) -> Vec<Row> {
    let cells: Vec<(Strategy, usize)> = strategies
        .iter()
        .flat_map(|&s| clients.iter().map(move |&c| (s, c)))
        .collect();
    let rows = Mutex::new(vec![None; cells.len()]);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());

    std::thread::scope(|scope| {
        for _ in 0..workers.min(cells.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(strategy, count)) = cells.get(index) else {
                        break;
                    };
                    let row = average(strategy, count, runs, seed);
                    rows.lock().unwrap_or_else(|poisoned| poisoned.into_inner())[index] = Some(row);
                }
            });
        }
    });
    let rows = rows
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    rows.into_iter().flatten().collect()
}

/// The seed of run `run` at `clients` clients: each number is folded in through its own round of
/// SplitMix64's finaliser, so no two `(seed, clients, run)` share a stream. (XOR-ing them into
/// one word first would not do: seeds 0 and 1 would then swap runs 2k and 2k + 1 and print the
/// same averages.)
fn run_seed(seed: u64, clients: usize, run: u32) -> u64 {
    [clients as u64, u64::from(run)]
        .into_iter()
        .fold(mix(seed), |z, word| mix(z ^ word))
}

/// SplitMix64's finaliser: a bijection of `u64` whose outputs for neighbouring inputs look
/// unrelated.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A duration in virtual nanoseconds; the backoffs here are at most seconds long.
pub fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hop takes exactly 10 ms, so a run can be traced by hand.
    const STEADY: Network = Network::constant(10);

    fn rng(seed: u64) -> SmallRng {
        SmallRng::seed_from_u64(seed)
    }

    #[test]
    fn a_single_client_never_fails() {
        for strategy in Strategy::ALL {
            for seed in 0..20 {
                let outcome = run(strategy, 1, Network::STUDY, &mut rng(seed));
                assert_eq!(outcome.writes, 1, "{strategy:?}");
            }
            // Read, reply, write, reply: four hops and nothing else.
            assert_eq!(run(strategy, 1, STEADY, &mut rng(0)).time, 40 * MS);
        }
    }

    #[test]
    fn two_clients_without_backoff_collide_once() {
        // Both read version 0 at 10 ms and write at 30 ms. The first write wins; the loser
        // hears so at 40 ms, reads again at 50 ms and writes at 70 ms, done at 80 ms.
        let outcome = run(Strategy::None, 2, STEADY, &mut rng(0));
        assert_eq!(
            outcome,
            Outcome {
                writes: 3,
                time: 80 * MS
            }
        );

        // With the study's jittery network the reads still land long before either write.
        for seed in 0..50 {
            assert_eq!(
                run(Strategy::None, 2, Network::STUDY, &mut rng(seed)).writes,
                3
            );
        }
    }

    #[test]
    fn the_first_exponential_retry_waits_twice_the_studys_base() {
        // As above, plus a 10 ms backoff before the second read.
        let outcome = run(Strategy::Exponential, 2, STEADY, &mut rng(0));
        assert_eq!(
            outcome,
            Outcome {
                writes: 3,
                time: 90 * MS
            }
        );
    }

    /// The study's window before retry `n` (counted from 1): `min(cap, base · 2^n)`, base 5 ms.
    fn study_window(n: u32) -> Duration {
        CAP.min(Duration::from_millis(5) * 2u32.pow(n))
    }

    #[test]
    fn every_retrys_wait_is_drawn_from_the_studys_window() {
        let mut rng = rng(7);
        let mut exponential = Backoff::new(&Strategy::Exponential.policy().unwrap());
        let waits: Vec<Duration> = (0..12).map(|_| exponential.next_delay(&mut rng)).collect();
        let windows: Vec<Duration> = (1..=12).map(study_window).collect();
        assert_eq!(waits, windows);
        // 5 ms · 2^8 = 1.28 s is the last window under the cap; retry 9 is the first capped.
        assert_eq!(waits[7], Duration::from_millis(1_280));
        assert_eq!(waits[8], CAP);

        for _ in 0..200 {
            let mut equal = Backoff::new(&Strategy::Equal.policy().unwrap());
            let mut full = Backoff::new(&Strategy::Full.policy().unwrap());
            for n in 1..=12 {
                let window = study_window(n);
                let (e, f) = (equal.next_delay(&mut rng), full.next_delay(&mut rng));
                assert!(window / 2 <= e && e <= window, "equal, retry {n}: {e:?}");
                assert!(f <= window, "full, retry {n}: {f:?}");
            }
        }
    }

    #[test]
    fn decorrelated_starts_from_the_studys_base() {
        let mut rng = rng(7);
        for _ in 0..200 {
            let mut backoff = Backoff::new(&Strategy::Decorrelated.policy().unwrap());
            let mut previous = Duration::from_millis(5);
            for _ in 0..12 {
                let wait = backoff.next_delay(&mut rng);
                let upper = CAP.min(previous * 3);
                assert!(
                    Duration::from_millis(5) <= wait && wait <= upper,
                    "{wait:?}"
                );
                previous = wait;
            }
        }
    }

    #[test]
    fn clients_in_lockstep_without_backoff_finish_one_per_round() {
        // Every round all remaining clients write at once and exactly one wins.
        for clients in [3, 10, 25] {
            let outcome = run(Strategy::None, clients, STEADY, &mut rng(0));
            let n = clients as u64;
            assert_eq!(outcome.writes, n * (n + 1) / 2);
            assert_eq!(outcome.time, 40 * MS * n);
        }
    }

    #[test]
    fn averages_are_reproducible_with_a_fixed_seed() {
        for strategy in Strategy::ALL {
            let first = average(strategy, 20, 5, 42);
            assert_eq!(first, average(strategy, 20, 5, 42));
            assert!(first.calls >= 20.0);
        }
        assert_ne!(
            average(Strategy::Full, 20, 5, 42),
            average(Strategy::Full, 20, 5, 43)
        );
    }

    #[test]
    fn neighbouring_seeds_give_different_averages() {
        // Eight runs under seeds 0..8: a seed mixed in by XOR alone would hand these the same
        // eight streams in another order, and so the same averages.
        let averages: Vec<Row> = (0..8)
            .map(|seed| average(Strategy::Full, 20, 8, seed))
            .collect();
        for (i, a) in averages.iter().enumerate() {
            for b in &averages[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn the_sweep_matches_cell_by_cell_averages_in_order() {
        let strategies = [Strategy::Full, Strategy::None];
        let rows = sweep(&strategies, &[5, 10], 3, 9);
        let expected: Vec<Row> = strategies
            .iter()
            .flat_map(|&s| [5, 10].map(|c| average(s, c, 3, 9)))
            .collect();
        assert_eq!(rows, expected);
    }

    #[test]
    fn jitter_takes_fewer_calls_than_no_backoff() {
        let none = average(Strategy::None, 50, 5, 1);
        let full = average(Strategy::Full, 50, 5, 1);
        assert!(
            full.calls < none.calls,
            "full {} none {}",
            full.calls,
            none.calls
        );
    }
}
