//! Timestamps as Ollama writes them: RFC 3339 in UTC with nanoseconds
//! (`2026-12-04T01:02:03.123456789Z`), from the system clock. The calendar arithmetic is
//! `owl_text::strftime` (the one the chat templates' `strftime_now` uses).

use std::time::{SystemTime, UNIX_EPOCH};

use owl_text::strftime::Tm;

/// `t` in RFC 3339, UTC.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
    format!(
        "{}.{:09}Z",
        Tm::from_unix(secs).format("%Y-%m-%dT%H:%M:%S"),
        d.subsec_nanos()
    )
}

/// Now, in RFC 3339.
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// Unix seconds in RFC 3339.
pub fn from_unix(secs: u64) -> String {
    rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(from_unix(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(from_unix(951_782_400), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(from_unix(1_796_342_523), "2026-12-04T00:02:03.000000000Z");
    }
}
