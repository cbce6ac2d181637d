//! The process-wide registry of named breakers and policies.
//!
//! A name means the same breaker in every module and crate of the process. Call sites resolve a
//! name once and keep the handle, so the registry's lock is taken once per call site, never per
//! call; settings change in place, so those handles see new settings on their next call.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use crate::breaker::{Breaker, BreakerConfig, BreakerStatus};
use crate::error::ConfigError;
use crate::policy::{RetryPolicy, WORDS};

static BREAKERS: LazyLock<RwLock<HashMap<Arc<str>, Breaker>>> = LazyLock::new(Default::default);
static POLICIES: LazyLock<RwLock<HashMap<Arc<str>, SharedPolicy>>> =
    LazyLock::new(Default::default);

/// The breaker registered under `name`, created with [`BreakerConfig::default`] on first use.
///
/// ```
/// let a = resilient_runtime::breaker("docs-registry");
/// let b = resilient_runtime::breaker("docs-registry");
/// assert!(a.same(&b));
/// ```
pub fn breaker(name: &str) -> Breaker {
    if let Some(found) = read(&BREAKERS).get(name) {
        return found.clone();
    }
    write(&BREAKERS)
        .entry(Arc::from(name))
        .or_insert_with_key(|name| Breaker::unchecked(name.clone(), BreakerConfig::default()))
        .clone()
}

/// Creates the breaker `name` with `config`, or changes the settings of the existing one in
/// place, so that every call site already holding it sees them on its next call.
///
/// ```
/// use resilient_runtime::{BreakerConfig, configure_breaker};
///
/// configure_breaker("docs-configure", BreakerConfig::new().failure_threshold(2)).unwrap();
/// assert_eq!(resilient_runtime::breaker("docs-configure").config().failure_threshold, 2);
/// let zero_threshold = BreakerConfig::new().failure_threshold(0);
/// assert!(configure_breaker("docs-configure", zero_threshold).is_err());
/// ```
pub fn configure_breaker(name: &str, config: BreakerConfig) -> Result<Breaker, ConfigError> {
    config.validate()?;
    let mut breakers = write(&BREAKERS);
    if let Some(existing) = breakers.get(name) {
        existing.reconfigure(config)?;
        return Ok(existing.clone());
    }
    let created = Breaker::unchecked(Arc::from(name), config);
    breakers.insert(Arc::from(name), created.clone());
    Ok(created)
}

/// The status of every named breaker, sorted by name.
pub fn breakers() -> Vec<BreakerStatus> {
    let mut all: Vec<BreakerStatus> = read(&BREAKERS).values().map(Breaker::status).collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// The policy registered under `name`, created with [`RetryPolicy::default`] on first use.
pub fn policy(name: &str) -> SharedPolicy {
    if let Some(found) = read(&POLICIES).get(name) {
        return found.clone();
    }
    write(&POLICIES)
        .entry(Arc::from(name))
        .or_insert_with(|| SharedPolicy::new(RetryPolicy::default()))
        .clone()
}

/// Creates the policy `name`, or replaces the settings of the existing one in place.
///
/// ```
/// use std::time::Duration;
/// use resilient_runtime::{RetryPolicy, configure_policy};
///
/// configure_policy("docs-policy", RetryPolicy::new().retries(7)).unwrap();
/// assert_eq!(resilient_runtime::policy("docs-policy").get().retries, 7);
/// let bad = RetryPolicy::new()
///     .base_delay(Duration::from_secs(2))
///     .max_delay(Duration::from_secs(1));
/// assert!(configure_policy("docs-policy", bad).is_err());
/// ```
pub fn configure_policy(name: &str, policy: RetryPolicy) -> Result<SharedPolicy, ConfigError> {
    policy.validate()?;
    let shared = self::policy(name);
    shared.set(policy)?;
    Ok(shared)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A named retry policy that can change while calls read it.
///
/// Reads take no lock and write nothing: the policy is kept as atomic words behind a version
/// counter (a sequence lock), and a read that overlaps a write simply reads again.
#[derive(Clone)]
pub struct SharedPolicy {
    cell: Arc<PolicyCell>,
}

struct PolicyCell {
    version: AtomicU64,
    words: [AtomicU64; WORDS],
    writer: Mutex<()>,
}

impl fmt::Debug for SharedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

impl SharedPolicy {
    /// A shared policy that starts as `policy`, which the caller has validated.
    fn new(policy: RetryPolicy) -> Self {
        let words = policy.to_words().map(AtomicU64::new);
        SharedPolicy {
            cell: Arc::new(PolicyCell {
                version: AtomicU64::new(0),
                words,
                writer: Mutex::new(()),
            }),
        }
    }

    /// The current settings.
    #[inline]
    pub fn get(&self) -> RetryPolicy {
        let cell = &*self.cell;
        loop {
            let before = cell.version.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let words = std::array::from_fn(|i| cell.words[i].load(Ordering::Relaxed));
            std::sync::atomic::fence(Ordering::Acquire);
            if cell.version.load(Ordering::Relaxed) == before {
                return RetryPolicy::from_words(words);
            }
        }
    }

    /// Replaces the settings; readers see either the old policy or the new one, never a mix.
    /// Settings that cannot work (see [`RetryPolicy::validate`]) are refused and change nothing.
    pub fn set(&self, policy: RetryPolicy) -> Result<(), ConfigError> {
        policy.validate()?;
        let cell = &*self.cell;
        let _writer = cell
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let version = cell.version.load(Ordering::Relaxed);
        cell.version
            .store(version.wrapping_add(1), Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        for (slot, word) in cell.words.iter().zip(policy.to_words()) {
            slot.store(word, Ordering::Relaxed);
        }
        cell.version
            .store(version.wrapping_add(2), Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::Jitter;
    use std::time::Duration;

    #[test]
    fn one_name_one_breaker_across_threads() {
        let handles: Vec<Breaker> = std::thread::scope(|s| {
            let spawned: Vec<_> = (0..8)
                .map(|_| s.spawn(|| breaker("registry-threads")))
                .collect();
            spawned.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(handles.windows(2).all(|pair| pair[0].same(&pair[1])));
        assert!(
            breakers()
                .iter()
                .any(|status| &*status.name == "registry-threads")
        );
    }

    #[test]
    fn configuring_updates_handles_already_held() {
        let held = breaker("registry-reconfigure");
        assert_eq!(held.config(), BreakerConfig::default());
        let returned = configure_breaker(
            "registry-reconfigure",
            BreakerConfig::new().half_open_probes(3),
        );
        assert!(returned.unwrap().same(&held));
        assert_eq!(held.config().half_open_probes, 3);
    }

    #[test]
    fn a_shared_policy_refuses_settings_that_cannot_work() {
        let shared = policy("registry-refuses");
        let before = shared.get();
        let zero_timeout = RetryPolicy::new().timeout(Duration::ZERO);
        assert!(shared.set(zero_timeout).is_err());
        assert_eq!(shared.get(), before);
    }

    #[test]
    fn a_policy_read_never_mixes_two_writes() {
        let shared = policy("registry-torn");
        let a = RetryPolicy::new()
            .retries(1)
            .jitter(Jitter::None)
            .base_delay(Duration::from_millis(1));
        let b = RetryPolicy::new()
            .retries(9)
            .jitter(Jitter::Equal)
            .max_delay(Duration::from_secs(9));
        shared.set(a).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..20_000 {
                    shared.set(if i % 2 == 0 { b } else { a }).unwrap();
                }
            });
            for _ in 0..20_000 {
                let seen = shared.get();
                assert!(seen == a || seen == b, "torn read: {seen:?}");
            }
        });
        configure_policy("registry-torn", b).unwrap();
        assert_eq!(policy("registry-torn").get(), b);
    }
}
