//! Timestamps as Ollama writes them: RFC 3339 in UTC with nanoseconds
//! (`2026-12-04T01:02:03.123456789Z`), from the system clock, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` in RFC 3339, UTC.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
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

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// days-to-civil algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
