//! Response ids (`chatcmpl-…`, `cmpl-…`) and timestamps.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `prefix` followed by 24 random hex digits (unique per process, unpredictable enough for
/// an id: SipHash with a random key over a counter and the clock).
pub fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut a = RandomState::new().build_hasher();
    a.write_u64(n);
    a.write_u64(nanos);
    let hi = a.finish();
    let mut b = RandomState::new().build_hasher();
    b.write_u64(hi);
    let lo = b.finish() as u32;
    format!("{prefix}{hi:016x}{lo:08x}")
}

/// What responses report as `system_fingerprint`.
pub fn fingerprint() -> String {
    format!("owl-{}", env!("CARGO_PKG_VERSION"))
}
