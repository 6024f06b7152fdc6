//! Values of unit-file settings as systemd reads them: time spans (`parse_sec`) and sizes
//! (`parse_size`, base 1024). Used to check Quadlet files' `[Service]` values
//! (`lifecycle::lint`) and to type `set-property` values (`bus::property`).

/// systemd's `parse_size` with base 1024: digits with an optional fraction, then an optional
/// `B`, `K`, `M`, `G`, `T`, `P` or `E`.
pub fn parse_size(v: &str) -> Option<u64> {
    let end = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (number, suffix) = v.split_at(end);
    let shift = match suffix {
        "" | "B" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        "P" => 50,
        "E" => 60,
        _ => return None,
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || frac.contains('.') || (number.contains('.') && frac.is_empty()) {
        return None;
    }
    let unit = 1u64 << shift;
    let whole: u64 = whole.parse().ok()?;
    whole
        .checked_mul(unit)?
        .checked_add(fraction_of(frac, unit)?)
}

/// systemd's `parse_sec`: components `<number>[<unit>]`, a plain number meaning seconds;
/// `infinity` is `u64::MAX`. In microseconds.
pub fn parse_timespan_usec(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "infinity" {
        return Some(u64::MAX);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number = &rest[..digits];
        rest = rest[digits..].trim_start();
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(rest.len());
        let per: u64 = match &rest[..unit_end] {
            "usec" | "us" | "µs" | "μs" => 1,
            "msec" | "ms" => 1_000,
            "" | "seconds" | "second" | "sec" | "s" => 1_000_000,
            "minutes" | "minute" | "min" | "m" => 60_000_000,
            "hours" | "hour" | "hr" | "h" => 3_600_000_000,
            "days" | "day" | "d" => 86_400_000_000,
            "weeks" | "week" | "w" => 604_800_000_000,
            "months" | "month" | "M" => 2_629_800_000_000,
            "years" | "year" | "y" => 31_557_600_000_000,
            _ => return None,
        };
        rest = rest[unit_end..].trim_start();
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if frac.contains('.') || (whole.is_empty() && frac.is_empty()) {
            return None;
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let part = whole
            .checked_mul(per)?
            .checked_add(fraction_of(frac, per)?)?;
        total = total.checked_add(part)?;
    }
    Some(total)
}

/// `0.<frac>` of `unit`, truncated (at most 18 digits of `frac` count); 0 for no digits.
fn fraction_of(frac: &str, unit: u64) -> Option<u64> {
    if frac.is_empty() {
        return Some(0);
    }
    let digits = &frac[..frac.len().min(18)];
    let f: u128 = digits.parse().ok()?;
    u64::try_from(f * u128::from(unit) / 10u128.pow(u32::try_from(digits.len()).ok()?)).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_spans() {
        assert_eq!(parse_size("1K"), Some(1024));
        assert_eq!(parse_size("0.5K"), Some(512));
        assert_eq!(parse_size("2E"), Some(2 << 60));
        assert_eq!(parse_size("16E"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("1.K"), None);
        assert_eq!(parse_timespan_usec("1min 30s"), Some(90_000_000));
        assert_eq!(parse_timespan_usec("90"), Some(90_000_000));
        assert_eq!(parse_timespan_usec("1.5ms"), Some(1_500));
        assert_eq!(parse_timespan_usec("soon"), None);
    }
}
