//! A scenario the study lacks: the server goes down for a while under a steady stream of calls,
//! and the retries of its clients multiply the load it sees unless a breaker holds them back.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use resilient::{Backoff, Breaker, BreakerConfig, Jitter, Permit, RetryPolicy};

use crate::occ::nanos;
use crate::queue::{EventQueue, Nanos, Network};

/// The clients, the outage and the policies under test.
#[derive(Clone, Copy, Debug)]
pub struct Outage {
    /// How many clients call.
    pub clients: usize,
    /// Each client starts one call per period.
    pub period: Duration,
    /// Each client's phase within the period is uniform in `[0, phase_spread)`: the whole
    /// period for independent clients, a few milliseconds for a fleet on a shared timer.
    pub phase_spread: Duration,
    /// How long the simulation offers calls.
    pub duration: Duration,
    /// When the server stops answering successfully.
    pub down_from: Duration,
    /// When it recovers.
    pub down_until: Duration,
    /// The retry policy every client follows; its jitter is replaced per setup.
    pub policy: RetryPolicy,
    /// Each client's own breaker, when the setup has one.
    pub breaker: BreakerConfig,
    /// The width of one bin of the load curve.
    pub bin: Duration,
}

impl Outage {
    /// 100 independent clients each calling once a second at a random phase for 30 s, the
    /// server down from 5 s to 15 s; three retries from 100 ms capped at 1 s; a breaker per
    /// client that opens after 5 straight failures, for 2 s.
    pub const INDEPENDENT: Outage = Outage {
        clients: 100,
        period: Duration::from_secs(1),
        phase_spread: Duration::from_secs(1),
        duration: Duration::from_secs(30),
        down_from: Duration::from_secs(5),
        down_until: Duration::from_secs(15),
        policy: RetryPolicy::new()
            .retries(3)
            .base_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(1)),
        breaker: BreakerConfig::new()
            .failure_threshold(5)
            .open_duration(Duration::from_secs(2))
            .half_open_probes(1),
        bin: Duration::from_millis(100),
    };

    /// The same clients as a fleet on a shared timer: each calls within the first 10 ms of
    /// every second, so whatever fails together retries together unless jitter separates it.
    pub const FLEET: Outage = Outage {
        phase_spread: Duration::from_millis(10),
        ..Outage::INDEPENDENT
    };

    fn is_down(&self, at: Nanos) -> bool {
        (nanos(self.down_from)..nanos(self.down_until)).contains(&at)
    }
}

/// The three ways of calling that the scenario compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// Exponential backoff without jitter, no breaker.
    Retries,
    /// The same retries behind a breaker per client.
    RetriesBreaker,
    /// Full jitter behind a breaker per client.
    RetriesBreakerJitter,
}

impl Setup {
    /// Every setup, in the order the table and the chart show them.
    pub const ALL: [Setup; 3] = [
        Setup::Retries,
        Setup::RetriesBreaker,
        Setup::RetriesBreakerJitter,
    ];

    /// The label used in the table and the chart's legend.
    pub fn label(self) -> &'static str {
        match self {
            Setup::Retries => "retries",
            Setup::RetriesBreaker => "retries + breaker",
            Setup::RetriesBreakerJitter => "retries + breaker + jitter",
        }
    }

    fn jitter(self) -> Jitter {
        match self {
            Setup::Retries | Setup::RetriesBreaker => Jitter::None,
            Setup::RetriesBreakerJitter => Jitter::Full,
        }
    }

    fn has_breaker(self) -> bool {
        self != Setup::Retries
    }
}

/// The load the server saw under one setup.
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    /// The setup measured.
    pub setup: Setup,
    /// Requests that reached the server in each bin.
    pub bins: Vec<u32>,
    /// The retries among them: every attempt after a call's first.
    pub retry_bins: Vec<u32>,
    /// Calls the clients started: the offered load.
    pub offered: u64,
    /// Requests that reached the server, retries included.
    pub requests: u64,
    /// Calls started while the server was down.
    pub offered_down: u64,
    /// Requests that reached the server while it was down.
    pub requests_down: u64,
    /// Attempts a breaker refused before they left the client.
    pub rejected: u64,
}

impl Load {
    /// Requests per call offered, over the whole run.
    pub fn amplification(&self) -> f64 {
        ratio(self.requests, self.offered)
    }

    /// Requests per call offered, while the server was down.
    pub fn amplification_down(&self) -> f64 {
        ratio(self.requests_down, self.offered_down)
    }

    /// The busiest bin, in requests per second.
    pub fn peak_per_second(&self, bin: Duration) -> f64 {
        peak_rate(&self.bins, bin)
    }

    /// The bin with the most retries, in retries per second.
    pub fn peak_retries_per_second(&self, bin: Duration) -> f64 {
        peak_rate(&self.retry_bins, bin)
    }
}

fn peak_rate(bins: &[u32], bin: Duration) -> f64 {
    f64::from(bins.iter().copied().max().unwrap_or(0)) / bin.as_secs_f64()
}

fn count(bins: &mut Vec<u32>, index: usize) {
    if bins.len() <= index {
        bins.resize(index + 1, 0);
    }
    bins[index] += 1;
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One outage measured under every setup.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// What sets the clients apart, for the table and the chart.
    pub name: &'static str,
    /// The clients and the outage.
    pub outage: Outage,
    /// The load under each setup, in the order of [`Setup::ALL`].
    pub loads: Vec<Load>,
}

/// Independent clients, then a fleet on a shared timer, each under every setup.
pub fn scenarios(seed: u64) -> std::io::Result<Vec<Scenario>> {
    let cases = [
        ("independent clients", Outage::INDEPENDENT),
        ("a fleet on a shared timer", Outage::FLEET),
    ];
    cases
        .into_iter()
        .map(|(name, outage)| {
            let loads = Setup::ALL
                .into_iter()
                .map(|setup| simulate(&outage, setup, seed))
                .collect::<std::io::Result<_>>()?;
            Ok(Scenario {
                name,
                outage,
                loads,
            })
        })
        .collect()
}

/// A message or timer, named by what happens when it fires.
#[derive(Debug)]
enum Event {
    /// A client starts its next call.
    Tick { client: usize },
    /// An attempt of call `call` reaches the server.
    Arrive { call: usize },
    /// The server's answer reaches the client.
    Answer { call: usize, ok: bool },
    /// A backoff ended: call `call` tries again.
    Retry { call: usize },
}

/// One call in progress.
#[derive(Debug)]
struct Call {
    client: usize,
    backoff: Backoff,
}

/// Runs `setup` through `outage` in virtual time.
///
/// The breakers read tokio's clock, so the run happens inside a current-thread runtime whose
/// clock is paused and moved to each event's time before the event is handled.
pub fn simulate(outage: &Outage, setup: Setup, seed: u64) -> std::io::Result<Load> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    runtime.block_on(run(outage, setup, seed))
}

async fn run(outage: &Outage, setup: Setup, seed: u64) -> std::io::Result<Load> {
    let breakers = (0..outage.clients)
        .map(|client| Breaker::new(format!("outage-{client}"), outage.breaker))
        .collect::<Result<Vec<_>, _>>()
        .map_err(std::io::Error::other)?;
    let mut state = State {
        outage,
        setup,
        policy: outage.policy.jitter(setup.jitter()),
        breakers: &breakers,
        rng: SmallRng::seed_from_u64(seed),
        queue: EventQueue::new(),
        calls: Vec::new(),
        permits: Vec::new(),
        load: Load {
            setup,
            bins: Vec::new(),
            retry_bins: Vec::new(),
            offered: 0,
            requests: 0,
            offered_down: 0,
            requests_down: 0,
            rejected: 0,
        },
    };
    for client in 0..outage.clients {
        let phase = state.rng.random_range(0..nanos(outage.phase_spread).max(1));
        state.queue.push(phase, Event::Tick { client });
    }

    let start = tokio::time::Instant::now();
    while let Some((now, event)) = state.queue.pop() {
        let target = start + Duration::from_nanos(now);
        let clock = tokio::time::Instant::now();
        if target > clock {
            tokio::time::advance(target - clock).await;
        }
        state.handle(now, event);
    }
    Ok(state.load)
}

/// Everything one run changes as its events fire.
#[derive(Debug)]
struct State<'b> {
    outage: &'b Outage,
    setup: Setup,
    policy: RetryPolicy,
    breakers: &'b [Breaker],
    rng: SmallRng,
    queue: EventQueue<Event>,
    calls: Vec<Call>,
    /// The breaker permit of each call's attempt in flight, indexed like `calls`.
    permits: Vec<Option<Permit<'b>>>,
    load: Load,
}

impl State<'_> {
    fn handle(&mut self, now: Nanos, event: Event) {
        let network = Network::STUDY;
        match event {
            Event::Tick { client } => {
                let next = now + nanos(self.outage.period);
                if next < nanos(self.outage.duration) {
                    self.queue.push(next, Event::Tick { client });
                }
                self.load.offered += 1;
                self.load.offered_down += u64::from(self.outage.is_down(now));
                self.calls.push(Call {
                    client,
                    backoff: Backoff::new(&self.policy),
                });
                self.permits.push(None);
                self.attempt(now, self.calls.len() - 1);
            }
            Event::Retry { call } => self.attempt(now, call),
            Event::Arrive { call } => {
                let down = self.outage.is_down(now);
                self.load.requests += 1;
                self.load.requests_down += u64::from(down);
                let index = (now / nanos(self.outage.bin).max(1)) as usize;
                count(&mut self.load.bins, index);
                if self.calls[call].backoff.retries() > 0 {
                    count(&mut self.load.retry_bins, index);
                }
                let answer = now + network.delay(&mut self.rng);
                self.queue.push(answer, Event::Answer { call, ok: !down });
            }
            Event::Answer { call, ok } => {
                if let Some(permit) = self.permits[call].take() {
                    if ok {
                        permit.success()
                    } else {
                        permit.failure()
                    }
                }
                let backoff = &mut self.calls[call].backoff;
                if !ok && backoff.retries() < self.policy.retries {
                    let wait = nanos(backoff.next_delay(&mut self.rng));
                    self.queue.push(now + wait, Event::Retry { call });
                }
            }
        }
    }

    /// Sends one attempt of `call`. It asks the client's breaker first; a refusal ends the
    /// call, as it does in the library's retry loop.
    fn attempt(&mut self, now: Nanos, call: usize) {
        if self.setup.has_breaker() {
            match self.breakers[self.calls[call].client].try_acquire() {
                Ok(permit) => self.permits[call] = Some(permit),
                Err(_) => {
                    self.load.rejected += 1;
                    return;
                }
            }
        }
        let arrival = now + Network::STUDY.delay(&mut self.rng);
        self.queue.push(arrival, Event::Arrive { call });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Outage = Outage {
        clients: 20,
        duration: Duration::from_secs(16),
        down_from: Duration::from_secs(3),
        down_until: Duration::from_secs(13),
        ..Outage::INDEPENDENT
    };

    #[test]
    fn without_an_outage_every_call_is_one_request() {
        let calm = Outage {
            down_from: Duration::ZERO,
            down_until: Duration::ZERO,
            ..SMALL
        };
        for setup in Setup::ALL {
            let load = simulate(&calm, setup, 3).unwrap();
            assert_eq!(load.offered, 20 * 16);
            assert_eq!(load.requests, load.offered, "{setup:?}");
            assert_eq!(load.rejected, 0);
        }
    }

    #[test]
    fn retries_alone_multiply_the_load_of_an_outage() {
        let load = simulate(&SMALL, Setup::Retries, 3).unwrap();
        let attempts = f64::from(SMALL.policy.retries + 1);
        assert!(load.amplification_down() > attempts - 0.5, "{load:?}");
        assert!(load.amplification_down() <= attempts + 0.1, "{load:?}");
    }

    #[test]
    fn breakers_cut_the_load_of_an_outage_below_the_offered_load() {
        for setup in [Setup::RetriesBreaker, Setup::RetriesBreakerJitter] {
            let load = simulate(&SMALL, setup, 3).unwrap();
            assert!(load.amplification_down() < 1.0, "{load:?}");
            assert!(load.rejected > 0);
        }
    }

    #[test]
    fn jitter_flattens_the_retry_spikes_of_a_fleet() {
        let fleet = Outage {
            clients: 50,
            ..Outage::FLEET
        };
        let peak = |setup| {
            let load = simulate(&fleet, setup, 3).unwrap();
            load.peak_retries_per_second(fleet.bin)
        };
        let (aligned, jittered) = (
            peak(Setup::RetriesBreaker),
            peak(Setup::RetriesBreakerJitter),
        );
        assert!(jittered < aligned, "jittered {jittered} aligned {aligned}");
    }

    #[test]
    fn runs_are_reproducible_with_a_fixed_seed() {
        let first = simulate(&SMALL, Setup::RetriesBreakerJitter, 5).unwrap();
        assert_eq!(
            first,
            simulate(&SMALL, Setup::RetriesBreakerJitter, 5).unwrap()
        );
    }
}
