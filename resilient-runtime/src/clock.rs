//! Breaker timers read tokio's clock, so tests that pause time drive them exactly.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds on tokio's clock since a process-wide origin.
///
/// Outside a runtime tokio falls back to the system's monotonic clock. A runtime with paused time
/// starts its clock at the real `now` when it is created, which may be a moment before the origin
/// is first read; the origin therefore sits well in the past so no such reading is clamped.
pub(crate) fn now() -> u64 {
    let instant = tokio::time::Instant::now().into_std();
    nanos_since_origin(instant)
}

fn nanos_since_origin(instant: Instant) -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = ORIGIN.get_or_init(|| {
        let now = Instant::now();
        [86_400, 3_600, 60, 1]
            .into_iter()
            .find_map(|secs| now.checked_sub(Duration::from_secs(secs)))
            .unwrap_or(now)
    });
    crate::backoff::nanos(instant.saturating_duration_since(*origin))
}
