//! Typed values for `SetUnitProperties` (`unitwright set-property UNIT KEY=VALUE...`).
//!
//! `SetUnitProperties(s name, b runtime, a(sv) properties)` takes D-Bus typed values under the
//! manager's property names, which are not always the unit-file key: `CPUQuota=20%` is
//! `CPUQuotaPerSecUSec` in microseconds per second, `MemoryMax=50%` is `MemoryMaxScale` (a
//! fraction of `u32::MAX`), `AllowedCPUs=0-3` is a byte array bitmask. This module turns the
//! unit-file form (what `systemctl set-property` accepts) into those, for the resource-control
//! properties a running unit accepts (systemd 252, `systemd.resource-control(5)`) and
//! `Description=`. Everything is parsed before anything is sent, so one bad assignment
//! changes nothing; errors name the key and the forms that are valid.
//!
//! What the manager then does is its own: it applies the values to the running unit and
//! writes them as drop-ins (`50-KEY.conf`) under `system.control`/`user.control` in the
//! runtime directory (`--runtime`: gone at reboot) or the configuration directory (kept).

use zbus::zvariant::{OwnedValue, Value};

use crate::unit::value::{parse_size, parse_timespan_usec};

/// One parsed `KEY=VALUE`: the manager's property name and its typed value.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The key as given (`MemoryMax`).
    pub key: String,
    /// The D-Bus property set (`MemoryMax`, `MemoryMaxScale`, `CPUQuotaPerSecUSec`, ...).
    pub property: &'static str,
    /// Its value, typed as the manager expects.
    pub value: OwnedValue,
}

/// A `KEY=VALUE` that cannot be set: unknown key, or a value not of the key's form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{assignment}: {why}")]
pub struct PropertyError {
    /// The assignment as given.
    pub assignment: String,
    /// What is wrong and what would be valid.
    pub why: String,
}

/// How the value of a key is read.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `b`: yes/no.
    Bool,
    /// `t` in `min..=max`; empty resets (`u64::MAX`); `idle` allowed when `idle`.
    Weight { min: u64, max: u64, idle: bool },
    /// `CPUQuota=`: a percentage of one CPU, to `CPUQuotaPerSecUSec`.
    CpuQuota,
    /// A systemd time span, to the `...USec` property.
    Span(&'static str),
    /// A size in bytes (1024-based suffixes), `infinity`, or a percentage (`...Scale`).
    Memory(&'static str),
    /// `TasksMax=`: a number, `infinity`, or a percentage (`TasksMaxScale`).
    Tasks,
    /// A CPU or NUMA node list, to a bitmask (`ay`).
    Cpus,
    /// Free text.
    Text,
    /// One of the listed words.
    Word(&'static [&'static str]),
}

/// The keys `set-property` knows, with how each value is read.
const KEYS: &[(&str, Kind)] = &[
    ("CPUAccounting", Kind::Bool),
    ("MemoryAccounting", Kind::Bool),
    ("TasksAccounting", Kind::Bool),
    ("IOAccounting", Kind::Bool),
    ("BlockIOAccounting", Kind::Bool),
    ("IPAccounting", Kind::Bool),
    (
        "CPUWeight",
        Kind::Weight {
            min: 1,
            max: 10_000,
            idle: true,
        },
    ),
    (
        "StartupCPUWeight",
        Kind::Weight {
            min: 1,
            max: 10_000,
            idle: true,
        },
    ),
    (
        "CPUShares",
        Kind::Weight {
            min: 2,
            max: 262_144,
            idle: false,
        },
    ),
    (
        "StartupCPUShares",
        Kind::Weight {
            min: 2,
            max: 262_144,
            idle: false,
        },
    ),
    ("CPUQuota", Kind::CpuQuota),
    ("CPUQuotaPeriodSec", Kind::Span("CPUQuotaPeriodUSec")),
    ("AllowedCPUs", Kind::Cpus),
    ("AllowedMemoryNodes", Kind::Cpus),
    ("MemoryMin", Kind::Memory("MemoryMinScale")),
    ("MemoryLow", Kind::Memory("MemoryLowScale")),
    ("MemoryHigh", Kind::Memory("MemoryHighScale")),
    ("MemoryMax", Kind::Memory("MemoryMaxScale")),
    ("MemorySwapMax", Kind::Memory("MemorySwapMaxScale")),
    ("MemoryLimit", Kind::Memory("MemoryLimitScale")),
    ("TasksMax", Kind::Tasks),
    (
        "IOWeight",
        Kind::Weight {
            min: 1,
            max: 10_000,
            idle: false,
        },
    ),
    (
        "StartupIOWeight",
        Kind::Weight {
            min: 1,
            max: 10_000,
            idle: false,
        },
    ),
    (
        "BlockIOWeight",
        Kind::Weight {
            min: 10,
            max: 1_000,
            idle: false,
        },
    ),
    (
        "StartupBlockIOWeight",
        Kind::Weight {
            min: 10,
            max: 1_000,
            idle: false,
        },
    ),
    ("DevicePolicy", Kind::Word(&["auto", "closed", "strict"])),
    ("Description", Kind::Text),
];

/// The keys [`parse`] accepts, in a stable order (for help texts and errors).
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(k, _)| *k)
}

/// Parses every assignment; the first bad one is the error (nothing is sent then).
pub fn parse_all<S: AsRef<str>>(assignments: &[S]) -> Result<Vec<Assignment>, PropertyError> {
    assignments.iter().map(|a| parse(a.as_ref())).collect()
}

/// Parses one `KEY=VALUE` into the manager's property and typed value.
///
/// ```
/// use unitwright::bus::property::parse;
/// let a = parse("CPUQuota=20%").unwrap();
/// assert_eq!(a.property, "CPUQuotaPerSecUSec");
/// assert_eq!(u64::try_from(&a.value).unwrap(), 200_000);
/// assert!(parse("MemoryMax=lots").unwrap_err().to_string().contains("infinity"));
/// ```
pub fn parse(assignment: &str) -> Result<Assignment, PropertyError> {
    let fail = |why: String| PropertyError {
        assignment: assignment.to_owned(),
        why,
    };
    let Some((key, value)) = assignment.split_once('=') else {
        return Err(fail(
            "expected KEY=VALUE, e.g. MemoryMax=512M or CPUQuota=50%".to_owned(),
        ));
    };
    let Some(&(name, kind)) = KEYS.iter().find(|(k, _)| *k == key) else {
        let hint = match KEYS.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some((k, _)) => format!(" (did you mean {k}?)"),
            None => String::new(),
        };
        return Err(fail(format!(
            "unknown property {key:?}{hint}; set-property can change: {}",
            known_keys().collect::<Vec<_>>().join(", ")
        )));
    };
    let (property, value) = typed(name, kind, value).map_err(|e| fail(e.to_owned()))?;
    Ok(Assignment {
        key: name.to_owned(),
        property,
        value,
    })
}

fn owned(v: &Value<'_>) -> OwnedValue {
    v.try_to_owned()
        .expect("plain values (no file descriptors) always convert")
}

/// The property and typed value of `value` for `key` of `kind`; the error says what is
/// valid.
fn typed(
    key: &'static str,
    kind: Kind,
    value: &str,
) -> Result<(&'static str, OwnedValue), &'static str> {
    match kind {
        Kind::Bool => {
            let b = parse_bool(value)
                .ok_or("expected a boolean: yes, no, true, false, 1, 0, on, off")?;
            Ok((key, owned(&Value::Bool(b))))
        }
        Kind::Weight { min, max, idle } => {
            let n = if value.is_empty() {
                u64::MAX
            } else if idle && value == "idle" {
                0
            } else {
                match value.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => n,
                    _ => return Err(weight_forms(min, max, idle)),
                }
            };
            Ok((key, owned(&Value::U64(n))))
        }
        Kind::CpuQuota => {
            let usec = if value.is_empty() {
                u64::MAX
            } else {
                let permyriad = percent(value, false)
                    .filter(|&p| p > 0)
                    .ok_or("expected a percentage of one CPU above 0, e.g. 20%, 150% or 12.5% (empty: no quota)")?;
                permyriad * 1_000_000 / 10_000
            };
            Ok(("CPUQuotaPerSecUSec", owned(&Value::U64(usec))))
        }
        Kind::Span(property) => {
            let usec = if value.is_empty() {
                u64::MAX
            } else {
                parse_timespan_usec(value).ok_or(
                    "expected a time span such as 10ms, 1s or 1min 30s (plain numbers are seconds; empty: the default)",
                )?
            };
            Ok((property, owned(&Value::U64(usec))))
        }
        Kind::Memory(scale) => {
            const FORMS: &str = "expected bytes with an optional K, M, G, T, P or E suffix (1024-based, e.g. 512M or 1.5G), a percentage of physical memory (e.g. 50%), or infinity";
            if value == "infinity" {
                return Ok((key, owned(&Value::U64(u64::MAX))));
            }
            if value.ends_with('%') {
                let p = percent(value, true).ok_or(FORMS)?;
                return Ok((scale, owned(&Value::U32(scale_from_permyriad(p)))));
            }
            let bytes = parse_size(value).ok_or(FORMS)?;
            Ok((key, owned(&Value::U64(bytes))))
        }
        Kind::Tasks => {
            const FORMS: &str = "expected a number of tasks (e.g. 512), a percentage of the system's limit (e.g. 10%), or infinity";
            if value == "infinity" {
                return Ok((key, owned(&Value::U64(u64::MAX))));
            }
            if value.ends_with('%') {
                let p = percent(value, true).ok_or(FORMS)?;
                return Ok(("TasksMaxScale", owned(&Value::U32(scale_from_permyriad(p)))));
            }
            let n = value.parse::<u64>().map_err(|_| FORMS)?;
            Ok((key, owned(&Value::U64(n))))
        }
        Kind::Cpus => {
            let mask = parse_cpu_set(value).ok_or(
                "expected CPU (or NUMA node) numbers and ranges separated by commas or spaces, e.g. 0-3,6 (empty: no restriction)",
            )?;
            Ok((key, owned(&Value::from(mask))))
        }
        Kind::Text => Ok((key, owned(&Value::from(value.to_owned())))),
        Kind::Word(words) => {
            if words.contains(&value) {
                Ok((key, owned(&Value::from(value.to_owned()))))
            } else {
                Err(match key {
                    "DevicePolicy" => "expected auto, closed or strict",
                    _ => "not one of the valid words",
                })
            }
        }
    }
}

fn weight_forms(min: u64, max: u64, idle: bool) -> &'static str {
    match (min, max, idle) {
        (1, 10_000, true) => "expected a weight from 1 to 10000, or idle (empty: the default)",
        (1, 10_000, false) => "expected a weight from 1 to 10000 (empty: the default)",
        (2, 262_144, _) => "expected a number of shares from 2 to 262144 (empty: the default)",
        _ => "expected a weight from 10 to 1000 (empty: the default)",
    }
}

/// systemd's booleans (`parse_boolean`).
fn parse_bool(v: &str) -> Option<bool> {
    const YES: [&str; 5] = ["1", "yes", "y", "true", "on"];
    const NO: [&str; 5] = ["0", "no", "n", "false", "off"];
    if YES.iter().any(|t| v.eq_ignore_ascii_case(t)) || v.eq_ignore_ascii_case("t") {
        Some(true)
    } else if NO.iter().any(|t| v.eq_ignore_ascii_case(t)) || v.eq_ignore_ascii_case("f") {
        Some(false)
    } else {
        None
    }
}

/// `N%` or `N.NN%` (at most two decimals) in 1/10000 units; at most 100% when `bounded`.
fn percent(v: &str, bounded: bool) -> Option<u64> {
    let v = v.strip_suffix('%')?;
    let (whole, frac) = match v.split_once('.') {
        Some((w, f)) => (w, f),
        None => (v, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (v.contains('.') && frac.is_empty())
    {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    let p = whole.checked_mul(100)?.checked_add(frac)?;
    (!bounded || p <= 10_000).then_some(p)
}

/// A fraction in 1/10000 as a fraction of `u32::MAX`, rounded to nearest (systemd's
/// `UINT32_SCALE_FROM_PERMYRIAD`).
fn scale_from_permyriad(p: u64) -> u32 {
    let scaled = (p * u64::from(u32::MAX) + 5_000) / 10_000;
    u32::try_from(scaled).unwrap_or(u32::MAX)
}

/// A CPU list (`0-3,6` or `0 1 2`) as systemd's bitmask: bit `n % 8` of byte `n / 8`.
/// Empty means no restriction (an empty mask).
fn parse_cpu_set(v: &str) -> Option<Vec<u8>> {
    const MAX_CPU: u32 = 8191;
    let mut mask: Vec<u8> = Vec::new();
    for word in v.split(|c: char| c == ',' || c.is_whitespace()) {
        if word.is_empty() {
            continue;
        }
        let (a, b) = if let Some((a, b)) = word.split_once('-') {
            (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)
        } else {
            let n = word.parse::<u32>().ok()?;
            (n, n)
        };
        if a > b || b > MAX_CPU {
            return None;
        }
        for cpu in a..=b {
            let byte = usize::try_from(cpu / 8).ok()?;
            if mask.len() <= byte {
                mask.resize(byte + 1, 0);
            }
            mask[byte] |= 1 << (cpu % 8);
        }
    }
    Some(mask)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn u64_of(a: &str) -> (&'static str, u64) {
        let a = parse(a).unwrap();
        (a.property, u64::try_from(&a.value).unwrap())
    }

    #[test]
    fn values_are_typed_as_the_manager_expects() {
        assert_eq!(u64_of("CPUQuota=20%"), ("CPUQuotaPerSecUSec", 200_000));
        assert_eq!(u64_of("CPUQuota=150%"), ("CPUQuotaPerSecUSec", 1_500_000));
        assert_eq!(u64_of("CPUQuota=12.5%"), ("CPUQuotaPerSecUSec", 125_000));
        assert_eq!(u64_of("CPUQuota="), ("CPUQuotaPerSecUSec", u64::MAX));
        assert_eq!(u64_of("MemoryMax=512M"), ("MemoryMax", 512 << 20));
        assert_eq!(u64_of("MemoryMax=1.5G"), ("MemoryMax", 3 << 29));
        assert_eq!(u64_of("MemoryHigh=4096"), ("MemoryHigh", 4096));
        assert_eq!(u64_of("MemoryMax=infinity"), ("MemoryMax", u64::MAX));
        assert_eq!(u64_of("TasksMax=64"), ("TasksMax", 64));
        assert_eq!(u64_of("TasksMax=infinity"), ("TasksMax", u64::MAX));
        assert_eq!(u64_of("CPUWeight=200"), ("CPUWeight", 200));
        assert_eq!(u64_of("CPUWeight="), ("CPUWeight", u64::MAX));
        assert_eq!(
            u64_of("CPUQuotaPeriodSec=10ms"),
            ("CPUQuotaPeriodUSec", 10_000)
        );
        let a = parse("MemoryMax=50%").unwrap();
        assert_eq!(a.property, "MemoryMaxScale");
        assert_eq!(u32::try_from(&a.value).unwrap(), u32::MAX / 2 + 1);
        let a = parse("TasksMax=100%").unwrap();
        assert_eq!(
            (a.property, u32::try_from(&a.value).unwrap()),
            ("TasksMaxScale", u32::MAX)
        );
        let a = parse("CPUAccounting=yes").unwrap();
        assert!(bool::try_from(&a.value).unwrap());
        let a = parse("AllowedCPUs=0-3,9").unwrap();
        assert_eq!(
            <Vec<u8>>::try_from(a.value).unwrap(),
            vec![0b0000_1111, 0b0000_0010]
        );
        let a = parse("Description=a b=c").unwrap();
        assert_eq!(<&str>::try_from(&a.value).unwrap(), "a b=c");
    }

    #[test]
    fn bad_assignments_name_the_key_and_the_valid_forms() {
        let e = parse("MemoryMax=lots").unwrap_err();
        assert_eq!(e.assignment, "MemoryMax=lots");
        assert!(
            e.to_string().starts_with("MemoryMax=lots: expected bytes"),
            "{e}"
        );
        assert!(e.why.contains("infinity") && e.why.contains("50%"));
        let e = parse("memorymax=1G").unwrap_err();
        assert!(e.why.contains("did you mean MemoryMax?"), "{e}");
        let e = parse("Frobnicate=1").unwrap_err();
        assert!(
            e.why.starts_with(
                "unknown property \"Frobnicate\"; set-property can change: CPUAccounting,"
            ),
            "{e}"
        );
        assert!(parse("CPUQuota=20").unwrap_err().why.contains("20%"));
        assert!(parse("CPUQuota=0%").is_err());
        assert!(parse("CPUWeight=0").unwrap_err().why.contains("1 to 10000"));
        assert!(parse("MemoryMax=101%").is_err());
        assert!(parse("MemoryMax=512MB").is_err());
        assert!(parse("TasksMax=-1").is_err());
        assert!(parse("AllowedCPUs=3-1").is_err());
        assert!(parse("CPUAccounting=maybe").is_err());
        assert!(parse("DevicePolicy=open")
            .unwrap_err()
            .why
            .contains("strict"));
        assert!(parse("MemoryMax").unwrap_err().why.contains("KEY=VALUE"));
        let all = parse_all(&["CPUQuota=10%", "TasksMax=x"]).unwrap_err();
        assert_eq!(all.assignment, "TasksMax=x");
    }
}
