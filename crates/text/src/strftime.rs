//! `strftime_now(fmt)` for chat templates (Llama 3.x and others put today's date in the
//! system prompt). There is no time-zone database here, so "now" is UTC.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tm {
    year: i64,
    month: u32, // 1..=12
    day: u32,   // 1..=31
    hour: u32,
    minute: u32,
    second: u32,
    weekday: u32, // 0 = Monday
    yday: u32,    // 1..=366
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

impl Tm {
    pub fn from_unix(secs: i64) -> Tm {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        // Civil date from days since 1970-01-01 (era-based proleptic Gregorian arithmetic).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let yday = CUM[(month - 1) as usize] + day + u32::from(month > 2 && is_leap(year));
        Tm {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            // 1970-01-01 was a Thursday (3 with Monday = 0).
            weekday: (days + 3).rem_euclid(7) as u32,
            yday,
        }
    }

    pub fn now() -> Tm {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Tm::from_unix(secs)
    }

    /// C/Python `strftime` for the common conversions (`%-d` style no-padding included).
    /// Unknown conversions are copied through unchanged.
    pub fn format(&self, fmt: &str) -> String {
        let mut out = String::new();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let no_pad = chars.peek() == Some(&'-');
            if no_pad {
                chars.next();
            }
            let Some(spec) = chars.next() else {
                out.push('%');
                break;
            };
            let num = |v: i64, width: usize| {
                if no_pad {
                    v.to_string()
                } else {
                    format!("{v:0width$}")
                }
            };
            let hour12 = if self.hour % 12 == 0 {
                12
            } else {
                self.hour % 12
            };
            let s = match spec {
                'Y' => self.year.to_string(),
                'y' => num(self.year.rem_euclid(100), 2),
                'm' => num(self.month.into(), 2),
                'd' => num(self.day.into(), 2),
                'e' => format!("{:>2}", self.day),
                'H' => num(self.hour.into(), 2),
                'I' => num(hour12.into(), 2),
                'M' => num(self.minute.into(), 2),
                'S' => num(self.second.into(), 2),
                'j' => num(self.yday.into(), 3),
                'p' => (if self.hour < 12 { "AM" } else { "PM" }).to_string(),
                'B' => MONTHS[(self.month - 1) as usize].to_string(),
                'b' | 'h' => MONTHS[(self.month - 1) as usize][..3].to_string(),
                'A' => DAYS[self.weekday as usize].to_string(),
                'a' => DAYS[self.weekday as usize][..3].to_string(),
                'u' => (self.weekday + 1).to_string(),
                'w' => ((self.weekday + 1) % 7).to_string(),
                'F' => format!("{}-{:02}-{:02}", self.year, self.month, self.day),
                'T' => format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second),
                'Z' => "UTC".to_string(),
                'z' => "+0000".to_string(),
                '%' => "%".to_string(),
                other => format!("%{}{other}", if no_pad { "-" } else { "" }),
            };
            out.push_str(&s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_dates() {
        let t = Tm::from_unix(0);
        assert_eq!(
            t.format("%Y-%m-%d %H:%M:%S %a %j"),
            "1970-01-01 00:00:00 Thu 001"
        );
        // 2024-07-26 13:05:09 UTC, a Friday
        let t = Tm::from_unix(1_722_000_000 - 1_722_000_000 % 86_400 + 13 * 3600 + 5 * 60 + 9);
        assert_eq!(t.format("%d %b %Y"), "26 Jul 2024");
        assert_eq!(
            t.format("%B %-d, %Y %I:%M %p %A"),
            "July 26, 2024 01:05 PM Friday"
        );
        assert_eq!(t.format("%j %y %%"), "208 24 %");
        // leap day
        let t = Tm::from_unix(951_782_400); // 2000-02-29
        assert_eq!(t.format("%F %j"), "2000-02-29 060");
        let t = Tm::from_unix(-86_400);
        assert_eq!(t.format("%F %A"), "1969-12-31 Wednesday");
    }
}
