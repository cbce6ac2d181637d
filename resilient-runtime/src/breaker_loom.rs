//! Model checks of the breaker's state machine: loom runs each scenario under every
//! interleaving of its threads that the memory model allows.
//!
//! Run: `RUSTFLAGS="--cfg resilient_loom" cargo test -p resilient-runtime --lib --release loom`

use loom::sync::Arc;
use loom::thread;

use super::{Admission, BreakerConfig, BreakerState, Core, Outcome};
use std::time::Duration;

const NOW: u64 = 1_000;

fn core(config: BreakerConfig) -> Arc<Core> {
    Arc::new(Core::new(&config.open_duration(Duration::from_nanos(100))))
}

/// A core that is open and whose open duration has passed at `NOW`.
fn open_and_due(config: BreakerConfig) -> Arc<Core> {
    let core = core(config.failure_threshold(1));
    let Admission::Admitted { generation, .. } = core.admit(|| 0) else {
        unreachable!()
    };
    core.record(generation, false, Outcome::Failure, || 0);
    assert_eq!(core.state(), BreakerState::Open);
    core
}

fn admitted(admission: &Admission) -> Option<u32> {
    permit(admission).map(|(generation, _)| generation)
}

/// The generation and probe flag of an admission, as a permit would hold them.
fn permit(admission: &Admission) -> Option<(u32, bool)> {
    match *admission {
        Admission::Admitted { generation, probe } => Some((generation, probe)),
        Admission::Probing { generation } => Some((generation, true)),
        Admission::Refused { .. } => None,
    }
}

#[test]
fn loom_concurrent_failures_open_the_breaker_exactly_once() {
    loom::model(|| {
        let core = core(BreakerConfig::new().failure_threshold(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let core = core.clone();
                thread::spawn(move || {
                    let generation = admitted(&core.admit(|| NOW)).unwrap();
                    core.record(generation, false, Outcome::Failure, || NOW)
                })
            })
            .collect();
        let opened = threads
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .filter(|(_, to)| *to == BreakerState::Open)
            .count();
        assert_eq!(opened, 1);
        assert_eq!(core.state(), BreakerState::Open);
    });
}

#[test]
fn loom_only_one_caller_turns_open_into_half_open() {
    loom::model(|| {
        let core = open_and_due(BreakerConfig::new().half_open_probes(1));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let core = core.clone();
                thread::spawn(move || core.admit(|| NOW))
            })
            .collect();
        let outcomes: Vec<Admission> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let probing = outcomes
            .iter()
            .filter(|a| matches!(a, Admission::Probing { .. }))
            .count();
        let refused = outcomes
            .iter()
            .filter(|a| matches!(a, Admission::Refused { .. }))
            .count();
        assert_eq!((probing, refused), (1, 1));
        assert_eq!(core.state(), BreakerState::HalfOpen);
        assert_eq!(core.inflight(), 1);
    });
}

#[test]
fn loom_probes_in_flight_never_exceed_the_limit() {
    // Three threads make the full search too long for CI; two preemptions per execution still
    // cover every order of the admissions and releases, which is where the limit could break.
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let core = open_and_due(BreakerConfig::new().half_open_probes(2));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let core = core.clone();
                thread::spawn(move || {
                    let admission = core.admit(|| NOW);
                    assert!(core.inflight() <= 2, "{} probes in flight", core.inflight());
                    if let Some((generation, probe)) = permit(&admission) {
                        core.record(generation, probe, Outcome::Success, || NOW);
                    }
                    permit(&admission).is_some()
                })
            })
            .collect();
        let admitted = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|a| *a)
            .count();
        assert!((2..=3).contains(&admitted), "{admitted} admitted");
        // Two successes close it; a third probe admitted after a release may find it closed.
        assert_eq!(core.state(), BreakerState::Closed);
        assert_eq!(core.inflight(), 0);
    });
}

#[test]
fn loom_a_dropped_probe_returns_its_slot_while_others_ask() {
    loom::model(|| {
        let core = open_and_due(BreakerConfig::new().half_open_probes(1));
        let first = admitted(&core.admit(|| NOW)).unwrap();
        let cancelling = {
            let core = core.clone();
            thread::spawn(move || core.release_probe(first))
        };
        let asking = {
            let core = core.clone();
            thread::spawn(move || admitted(&core.admit(|| NOW)).is_some())
        };
        cancelling.join().unwrap();
        let second_admitted = asking.join().unwrap();
        assert_eq!(core.state(), BreakerState::HalfOpen);
        assert_eq!(core.inflight(), u32::from(second_admitted));
        if !second_admitted {
            // It asked before the slot came back; asking again now succeeds.
            assert!(admitted(&core.admit(|| NOW)).is_some());
        }
    });
}

#[test]
fn loom_a_late_success_cannot_close_a_breaker_a_probe_reopened() {
    loom::model(|| {
        let core = open_and_due(BreakerConfig::new().half_open_probes(2));
        let a = admitted(&core.admit(|| NOW)).unwrap();
        let b = admitted(&core.admit(|| NOW)).unwrap();
        let failing = {
            let core = core.clone();
            thread::spawn(move || core.record(a, true, Outcome::Failure, || NOW))
        };
        let succeeding = {
            let core = core.clone();
            thread::spawn(move || core.record(b, true, Outcome::Success, || NOW))
        };
        failing.join().unwrap();
        succeeding.join().unwrap();
        // Whatever the order, one failed probe means open: one success of two cannot close it.
        assert_eq!(core.state(), BreakerState::Open);
    });
}

#[test]
fn loom_reconfiguration_racing_with_failures_ends_consistent() {
    loom::model(|| {
        let core = core(BreakerConfig::new().failure_threshold(3));
        let generation = admitted(&core.admit(|| NOW)).unwrap();
        core.record(generation, false, Outcome::Failure, || NOW);
        let reconfiguring = {
            let core = core.clone();
            thread::spawn(move || {
                let config = BreakerConfig::new().failure_threshold(2);
                core.set_config(&config.open_duration(Duration::from_nanos(100)));
            })
        };
        let failing = {
            let core = core.clone();
            thread::spawn(move || core.record(generation, false, Outcome::Failure, || NOW))
        };
        reconfiguring.join().unwrap();
        failing.join().unwrap();
        assert_eq!(core.config().failure_threshold, 2);
        // Two failures against a threshold that is 3 or 2 depending on the order: either the
        // breaker opened, or it stayed closed and the very next failure opens it.
        if core.state() == BreakerState::Closed {
            core.record(generation, false, Outcome::Failure, || NOW);
        }
        assert_eq!(core.state(), BreakerState::Open);
    });
}

#[test]
fn loom_reconfiguring_the_probes_racing_with_half_open_calls_ends_consistent() {
    // Two probes allowed, one in flight; the limit drops to one while another caller asks and the
    // first probe succeeds. Whatever the order, no more than two probes are ever in flight, and
    // the breaker ends closed or one probe away from closing, with no slot held.
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let core = open_and_due(BreakerConfig::new().half_open_probes(2));
        let first = admitted(&core.admit(|| NOW)).unwrap();
        let reconfiguring = {
            let core = core.clone();
            thread::spawn(move || {
                let config = BreakerConfig::new()
                    .failure_threshold(1)
                    .half_open_probes(1);
                core.set_config(&config.open_duration(Duration::from_nanos(100)));
            })
        };
        let asking = {
            let core = core.clone();
            thread::spawn(move || {
                let admission = core.admit(|| NOW);
                assert!(core.inflight() <= 2, "{} probes in flight", core.inflight());
                if let Some((generation, probe)) = permit(&admission) {
                    core.record(generation, probe, Outcome::Success, || NOW);
                }
            })
        };
        core.record(first, true, Outcome::Success, || NOW);
        reconfiguring.join().unwrap();
        asking.join().unwrap();

        assert_eq!(core.inflight(), 0);
        assert_eq!(core.config().half_open_probes, 1);
        if core.state() == BreakerState::HalfOpen {
            // The first success met the old limit of two: one more probe closes it.
            let generation = admitted(&core.admit(|| NOW)).unwrap();
            core.record(generation, true, Outcome::Success, || NOW);
        }
        assert_eq!(core.state(), BreakerState::Closed);
    });
}

#[test]
fn loom_the_caller_that_opens_the_breaker_sets_how_long_it_stays_open() {
    // Two failures, read from the clock at different moments, race to open the breaker: the
    // open duration runs from the winner's moment, whatever the loser writes on its way out.
    loom::model(|| {
        let core = core(BreakerConfig::new().failure_threshold(1));
        let threads: Vec<_> = [NOW, NOW + 50]
            .into_iter()
            .map(|now| {
                let core = core.clone();
                thread::spawn(move || {
                    // Asking after the other opened it is refused, and races with nothing.
                    let generation = admitted(&core.admit(|| NOW))?;
                    let change = core.record(generation, false, Outcome::Failure, || now);
                    change.map(|_| now)
                })
            })
            .collect();
        let opened_at: Vec<u64> = threads
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(opened_at.len(), 1);
        // 100 ns open: refused until exactly the winner's moment plus 100.
        let Admission::Refused { retry_in } = core.admit(|| NOW + 50) else {
            panic!("admitted while open");
        };
        assert_eq!(
            retry_in,
            Some(Duration::from_nanos(opened_at[0] + 100 - (NOW + 50)))
        );
    });
}

#[test]
fn loom_a_caller_racing_with_the_trip_never_finds_the_breaker_due() {
    // One caller opens the breaker while another asks at the same moment: the asker is
    // admitted (it came first) or refused, never handed a probe of a breaker that just opened.
    loom::model(|| {
        let core = core(BreakerConfig::new().failure_threshold(1));
        let generation = admitted(&core.admit(|| NOW)).unwrap();
        let tripping = {
            let core = core.clone();
            thread::spawn(move || core.record(generation, false, Outcome::Failure, || NOW))
        };
        let asking = {
            let core = core.clone();
            thread::spawn(move || core.admit(|| NOW))
        };
        assert!(tripping.join().unwrap().is_some());
        match asking.join().unwrap() {
            Admission::Admitted { probe, .. } => assert!(!probe),
            Admission::Probing { .. } => panic!("a probe of a breaker that just opened"),
            Admission::Refused { retry_in } => {
                let left = retry_in.unwrap();
                assert!(left > Duration::ZERO && left <= Duration::from_nanos(100));
            }
        }
        assert_eq!(core.state(), BreakerState::Open);
    });
}
