//! Formatting shared by the operator verbs: times, sizes, durations, colour.
//!
//! * Times are printed in UTC (`Sun 2026-12-06 20:47:03 UTC`), like systemctl with `TZ=UTC`:
//!   the CLI reads no time zone database, so what it prints is the same on every host and in
//!   every log it is pasted into.
//! * Sizes and durations follow systemd's `format_bytes`/`format_timespan` shapes (`1.2M`,
//!   `12ms`, `1min 2.345s`).
//! * Colour only when stdout is a terminal and `NO_COLOR` is unset (<https://no-color.org>).

use std::io::IsTerminal as _;
use std::time::Duration;

/// Days since 1970-01-01 → (year, month 1-12, day 1-31) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01 (`days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Civil {
    weekday: &'static str,
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    micros: u64,
}

fn civil(usec: u64) -> Civil {
    let secs = usec / 1_000_000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    Civil {
        weekday: WEEKDAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)],
        year,
        month,
        day,
        hour: rest / 3600,
        minute: rest % 3600 / 60,
        second: rest % 60,
        micros: usec % 1_000_000,
    }
}

/// `Sun 2026-12-06 20:47:03 UTC` for µs since the epoch.
pub fn timestamp(usec: u64) -> String {
    let c = civil(usec);
    format!(
        "{} {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        c.weekday, c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `Dec 06 20:47:03` (journalctl's short format, in UTC).
pub fn short_timestamp(usec: u64) -> String {
    let c = civil(usec);
    format!(
        "{} {:02} {:02}:{:02}:{:02}",
        MONTHS[usize::try_from(c.month).unwrap_or(1) - 1],
        c.day,
        c.hour,
        c.minute,
        c.second
    )
}

/// `2026-12-06T20:47:03.123456Z` (RFC 3339, for JSON).
pub fn rfc3339(usec: u64) -> String {
    let c = civil(usec);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.micros
    )
}

pub use crate::bus::now_usec;

/// `--timeout SECONDS` of every verb that waits for jobs (a clap value parser, so a bad value
/// is a usage error): fractions allowed; 0 waits forever, and so does a limit of more than a
/// century (`Duration::MAX` either way: no deadline can overflow the clock).
pub fn seconds_arg(s: &str) -> Result<Duration, String> {
    /// A wait longer than this is no limit.
    const FOREVER: f64 = 100.0 * 365.0 * 86_400.0;
    let bad = || format!("expected a number of seconds, 0 or more, got {s:?}");
    let secs: f64 = s.parse().map_err(|_| bad())?;
    if secs.is_nan() || secs < 0.0 {
        return Err(bad());
    }
    if secs == 0.0 || secs > FOREVER {
        return Ok(Duration::MAX);
    }
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// A duration like systemd's `format_timespan` at millisecond accuracy: `12ms`, `1.234s`,
/// `5min 3.100s`, `2h 5min`, `3 days 4h`.
pub fn timespan_ns(nsec: u64) -> String {
    let ms = nsec / 1_000_000;
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let frac = ms % 1000;
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let sec = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{frac:03}s")
    };
    match (d, h, m) {
        (0, 0, 0) => sec,
        (0, 0, m) => format!("{m}min {sec}"),
        (0, h, m) => format!("{h}h {m}min"),
        (d, h, _) => format!("{d} day{} {h}h", if d == 1 { "" } else { "s" }),
    }
}

/// How long ago `usec` was, as systemctl says it: `5s ago`, `3min 10s ago`, `2h 5min ago`,
/// `3 days ago`.
pub fn ago(usec: u64) -> String {
    let secs = now_usec().saturating_sub(usec) / 1_000_000;
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s ago"),
        (0, 0, m) => format!("{m}min {s}s ago"),
        (0, h, m) => format!("{h}h {m}min ago"),
        (d, _, _) => format!("{d} day{} ago", if d == 1 { "" } else { "s" }),
    }
}

/// Bytes as systemd's `format_bytes`: `512B`, `1.2K`, `20.5M`, `1.0G` (base 1024).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut unit = 0;
    let mut scale: u64 = 1024;
    while unit + 1 < UNITS.len() && n / scale >= 1024 {
        scale *= 1024;
        unit += 1;
    }
    let tenths = n % scale * 10 / scale;
    format!("{}.{tenths}{}", n / scale, UNITS[unit])
}

/// Parses a `--since`/`--until` time, like journalctl: `YYYY-MM-DD [HH:MM[:SS]]`, `HH:MM[:SS]`
/// (today), `today`, `yesterday`, `now`, `@EPOCH`, `-5min`/`5min ago` (also `s`, `h`, `d`,
/// `w`), all in UTC. Returns µs since the epoch.
#[allow(clippy::many_single_char_names)]
pub fn parse_time(s: &str) -> Result<u64, String> {
    let err = || {
        format!(
            "invalid time {s:?}: expected YYYY-MM-DD [HH:MM[:SS]], HH:MM[:SS], today, yesterday, \
             now, @EPOCH or a relative time like -5min or \"2h ago\" (UTC)"
        )
    };
    let now = now_usec();
    let today = now / 86_400_000_000 * 86_400_000_000;
    let t = s.trim();
    match t {
        "now" => return Ok(now),
        "today" => return Ok(today),
        "yesterday" => return Ok(today.saturating_sub(86_400_000_000)),
        _ => {}
    }
    if let Some(epoch) = t.strip_prefix('@') {
        let secs: f64 = epoch.parse().map_err(|_| err())?;
        if !secs.is_finite() || secs < 0.0 {
            return Err(err());
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Ok((secs * 1e6) as u64);
    }
    let relative = t
        .strip_prefix('-')
        .or_else(|| t.strip_suffix(" ago"))
        .map(str::trim);
    if let Some(span) = relative {
        return span_usec(span)
            .map(|d| now.saturating_sub(d))
            .ok_or_else(err);
    }
    let (date, time) = match t.split_once([' ', 'T']) {
        Some((d, tm)) => (Some(d), Some(tm)),
        None if t.contains('-') => (Some(t), None),
        None => (None, Some(t)),
    };
    let day_usec = match date {
        Some(d) => {
            let mut parts = d.split('-');
            let (Some(y), Some(m), Some(dd), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(err());
            };
            let (y, m, dd): (i64, u32, u32) = (
                y.parse().map_err(|_| err())?,
                m.parse().map_err(|_| err())?,
                dd.parse().map_err(|_| err())?,
            );
            if !(1..=12).contains(&m) || !(1..=31).contains(&dd) {
                return Err(err());
            }
            u64::try_from(days_from_civil(y, m, dd))
                .map_err(|_| err())?
                .saturating_mul(86_400_000_000)
        }
        None => today,
    };
    let secs_of_day = match time {
        None => 0,
        Some(tm) => {
            let parts: Vec<&str> = tm.trim_end_matches('Z').split(':').collect();
            if !(2..=3).contains(&parts.len()) {
                return Err(err());
            }
            let h: u64 = parts[0].parse().map_err(|_| err())?;
            let m: u64 = parts[1].parse().map_err(|_| err())?;
            let sec: f64 = parts
                .get(2)
                .map_or(Ok(0.0), |x| x.parse())
                .map_err(|_| err())?;
            if h > 23 || m > 59 || !(0.0..61.0).contains(&sec) {
                return Err(err());
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let us = (sec * 1e6) as u64;
            (h * 3600 + m * 60) * 1_000_000 + us
        }
    };
    Ok(day_usec + secs_of_day)
}

/// `5min`, `2h 30min`, `10s`, `1d`, `3w` (also spelled out: `minutes`, `hours`, ...) → µs.
fn span_usec(span: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut rest = span.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == ' ')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let mult: u64 = match unit {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?.checked_mul(1_000_000)?)?;
    }
    Some(total)
}

/// Whether to colour stdout: a terminal and no `NO_COLOR`.
pub fn colour() -> bool {
    std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// ANSI colours used by the operator verbs.
#[derive(Debug, Clone, Copy)]
pub enum Colour {
    /// Active, success.
    Green,
    /// Failed.
    Red,
    /// Warnings, activating.
    Yellow,
    /// Less important text (journal metadata).
    Grey,
    /// Emphasis.
    Bold,
}

/// `text` in `colour` when `on`, else as it is.
pub fn paint(on: bool, colour: Colour, text: &str) -> String {
    if !on {
        return text.to_owned();
    }
    let code = match colour {
        Colour::Green => "1;32",
        Colour::Red => "1;31",
        Colour::Yellow => "1;33",
        Colour::Grey => "2",
        Colour::Bold => "1",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The width of the terminal on stdout: `$COLUMNS` if set, else the terminal's, else `None`
/// (not a terminal: no truncation, as systemctl does in a pipe).
pub fn terminal_width() -> Option<usize> {
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&c| c > 0)
    {
        return Some(c);
    }
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    rustix::termios::tcgetwinsize(&stdout)
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|&c| c > 0)
}

/// `text` cut to `width` characters, with `…` as the last one when cut.
pub fn ellipsize(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_seconds_and_zero_or_a_century_is_forever() {
        assert_eq!(seconds_arg("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds_arg("0"), Ok(Duration::MAX));
        assert_eq!(seconds_arg("1e18"), Ok(Duration::MAX));
        assert_eq!(seconds_arg("inf"), Ok(Duration::MAX));
        for bad in ["-1", "NaN", "x", ""] {
            assert!(seconds_arg(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        // 2026-12-06 20:47:03 UTC is a Sunday.
        let t = days_from_civil(2026, 12, 6);
        let usec =
            u64::try_from(t).unwrap() * 86_400_000_000 + (20 * 3600 + 47 * 60 + 3) * 1_000_000;
        assert_eq!(timestamp(usec), "Sun 2026-12-06 20:47:03 UTC");
        assert_eq!(short_timestamp(usec), "Dec 06 20:47:03");
        assert_eq!(rfc3339(usec + 5), "2026-12-06T20:47:03.000005Z");
        assert_eq!(timestamp(0), "Thu 1970-01-01 00:00:00 UTC");
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
        assert_eq!(parse_time("2026-12-06 20:47:03").unwrap(), usec);
        assert_eq!(parse_time("2026-12-06T20:47:03Z").unwrap(), usec);
        assert_eq!(parse_time("@1").unwrap(), 1_000_000);
    }

    #[test]
    fn relative_times_and_bad_times() {
        let before = now_usec();
        let t = parse_time("-5min").unwrap();
        let after = now_usec();
        assert!((before..=after).contains(&(t + 300_000_000)));
        let t = parse_time("2h 30min ago").unwrap();
        assert!(t + 9_000_000_000 >= before && t + 9_000_000_000 <= now_usec());
        for bad in ["", "yesterdayish", "2026-13-01", "25:00", "-5 parsecs"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_spans_look_like_systemd() {
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(20 * 1024 * 1024 + 512 * 1024), "20.5M");
        assert_eq!(timespan_ns(12_000_000), "12ms");
        assert_eq!(timespan_ns(1_234_000_000), "1.234s");
        assert_eq!(timespan_ns(303_100_000_000), "5min 3.100s");
        assert_eq!(format!("{}", ellipsize("abcdef", 4)), "abc…");
    }
}
