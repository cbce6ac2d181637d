//! A scenario the study lacks: the server goes down for a while under a steady stream of calls,
//! and the retries of its clients multiply the load it sees unless a breaker holds them back.
//!
//! Unlike the study's model this one runs the library's own retry loop, [`Retry`], with one
//! [`Breaker`] per client, on tokio's paused clock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use resilient::{Breaker, BreakerConfig, Jitter, Retry, RetryPolicy};
use tokio::time::Instant;

use crate::occ::nanos;
use crate::queue::{Nanos, Network};

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
    /// Calls a breaker refused before their first attempt left the client. (A call whose
    /// retry the breaker would refuse ends with its own error instead, as the retry loop does.)
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

/// Runs `setup` through `outage` with the library's own retry loop and breakers, in virtual time.
///
/// Every client and every call is a task on a current-thread runtime whose clock is paused, so
/// tokio jumps from one timer to the next and nothing really sleeps. Tokio's timers tick in whole
/// milliseconds, so each network hop is rounded up to one; the load is counted in far wider bins.
pub fn simulate(outage: &Outage, setup: Setup, seed: u64) -> std::io::Result<Load> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let local = tokio::task::LocalSet::new();
    runtime.block_on(local.run_until(run(*outage, setup, seed)))
}

/// What the server answers while it is down.
#[derive(Debug)]
enum Failure {
    Down,
    Resilience(resilient::Error),
}

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure::Resilience(error)
    }
}

/// What the tasks of one run share: the server's counters and the network's random draws.
#[derive(Debug)]
struct World {
    outage: Outage,
    start: Instant,
    rng: RefCell<SmallRng>,
    load: RefCell<Load>,
}

impl World {
    fn since_start(&self) -> Nanos {
        nanos(Instant::now().saturating_duration_since(self.start))
    }

    fn hop(&self) -> Duration {
        Duration::from_nanos(Network::STUDY.delay(&mut *self.rng.borrow_mut()))
    }

    /// One attempt: a hop to the server, which counts it and answers, and a hop back.
    async fn attempt(&self, retry: bool) -> Result<(), Failure> {
        tokio::time::sleep(self.hop()).await;
        let now = self.since_start();
        let down = self.outage.is_down(now);
        {
            let mut load = self.load.borrow_mut();
            load.requests += 1;
            load.requests_down += u64::from(down);
            let index = (now / nanos(self.outage.bin).max(1)) as usize;
            count(&mut load.bins, index);
            if retry {
                count(&mut load.retry_bins, index);
            }
        }
        tokio::time::sleep(self.hop()).await;
        if down { Err(Failure::Down) } else { Ok(()) }
    }
}

async fn run(outage: Outage, setup: Setup, seed: u64) -> std::io::Result<Load> {
    let world = Rc::new(World {
        outage,
        start: Instant::now(),
        rng: RefCell::new(SmallRng::seed_from_u64(seed)),
        load: RefCell::new(Load {
            setup,
            bins: Vec::new(),
            retry_bins: Vec::new(),
            offered: 0,
            requests: 0,
            offered_down: 0,
            requests_down: 0,
            rejected: 0,
        }),
    });
    let mut clients = Vec::new();
    for client in 0..outage.clients {
        let breaker = Breaker::new(format!("outage-{client}"), outage.breaker)
            .map_err(std::io::Error::other)?;
        let phase = world
            .rng
            .borrow_mut()
            .random_range(0..nanos(outage.phase_spread).max(1));
        let world = Rc::clone(&world);
        clients.push(tokio::task::spawn_local(async move {
            call_every_period(world, setup, breaker, phase).await
        }));
    }
    for client in clients {
        client
            .await
            .and_then(|calls| calls)
            .map_err(std::io::Error::other)?;
    }
    let load = world.load.borrow().clone();
    Ok(load)
}

/// One client: a call every period from `phase` on, each in its own task so a slow call never
/// delays the next.
async fn call_every_period(
    world: Rc<World>,
    setup: Setup,
    breaker: Breaker,
    phase: Nanos,
) -> Result<(), tokio::task::JoinError> {
    let outage = world.outage;
    let breaker = Rc::new(breaker);
    let mut calls = Vec::new();
    let mut at = phase;
    while at < nanos(outage.duration) {
        tokio::time::sleep_until(world.start + Duration::from_nanos(at)).await;
        {
            let mut load = world.load.borrow_mut();
            load.offered += 1;
            load.offered_down += u64::from(outage.is_down(world.since_start()));
        }
        // Each call seeds its own jitter: one seed for every call would make every client wait
        // the same, which is the synchronisation jitter is there to break.
        let seed = world.rng.borrow_mut().random();
        let policy = outage.policy.jitter(setup.jitter()).seed(seed);
        let (world, breaker) = (Rc::clone(&world), Rc::clone(&breaker));
        calls.push(tokio::task::spawn_local(async move {
            let retry = Retry::new(policy);
            let retry = if setup.has_breaker() {
                retry.breaker(&breaker)
            } else {
                retry
            };
            let mut attempts = 0;
            let result = retry
                .run(|| {
                    attempts += 1;
                    world.attempt(attempts > 1)
                })
                .await;
            if let Err(Failure::Resilience(error)) = result {
                world.load.borrow_mut().rejected += u64::from(error.is_rejected());
            }
        }));
        at += nanos(outage.period);
    }
    for call in calls {
        call.await?;
    }
    Ok(())
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
