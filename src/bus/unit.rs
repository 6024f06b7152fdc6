//! Unit state as read over D-Bus, and the small name helpers the client needs.
//!
//! * [`unit_path`] / [`unit_name_from_path`]: the object path of a unit, encoded like sd-bus's
//!   `sd_bus_path_encode` (systemd's `bus_label_escape`: bytes other than `[A-Za-z0-9]`, and a
//!   leading digit, become `_xx` in lower-case hex).
//! * [`mangle`]: what systemctl does to a name given without a type suffix (append
//!   `.service`). This is a simple local rule; systemd's full `unit_name_mangle` (escaping of
//!   invalid characters and paths) lives in `crate::escape` on another branch and should
//!   replace it once merged.
//! * [`glob_match`]: fnmatch(3) without flags, as `ListUnitsByPatterns` applies patterns.

use std::collections::HashMap;
use std::fmt::Write as _;

use zbus::zvariant::OwnedValue;

/// Properties of a unit (`org.freedesktop.systemd1.Unit`) and, for services, of the service
/// (`org.freedesktop.systemd1.Service`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitState {
    /// `Id`: the unit's primary name.
    pub name: String,
    /// `Description`.
    pub description: String,
    /// `LoadState`: loaded, not-found, bad-setting, error, masked.
    pub load_state: String,
    /// `ActiveState`: active, reloading, inactive, failed, activating, deactivating, maintenance.
    pub active_state: String,
    /// `SubState`: type specific, e.g. running, exited, dead.
    pub sub_state: String,
    /// `UnitFileState`: enabled, disabled, static, ... (empty for units without a file).
    pub unit_file_state: String,
    /// `FragmentPath`: the unit file (empty if none).
    pub fragment_path: String,
    /// `ConditionResult`: whether the `Condition*=` checks passed at the last start
    /// (`None` if the manager did not say).
    pub condition_result: Option<bool>,
    /// `ConditionTimestamp`, microseconds since the epoch: when the conditions were last
    /// checked (0 if never since the unit was loaded).
    pub condition_timestamp: u64,
    /// `ActiveEnterTimestamp`, microseconds since the epoch (0 if never active).
    pub active_enter_timestamp: u64,
    /// Whether the unit has any `Condition*=` (from `Conditions`); `None` when not read
    /// (only read after a start that left the unit inactive).
    pub has_conditions: Option<bool>,
    /// `SourcePath`: the file the unit was generated from, e.g. the Quadlet `.container`
    /// file (empty if none).
    pub source_path: String,
    /// `DropInPaths`: the drop-in files applied, in order.
    pub drop_in_paths: Vec<String>,
    /// `UnitFilePreset`: enabled or disabled by presets (empty if unknown).
    pub unit_file_preset: String,
    /// `InactiveExitTimestamp`, µs since the epoch: when the unit last left `inactive`
    /// (activation began; 0 if never).
    pub inactive_exit_timestamp: u64,
    /// `InactiveEnterTimestamp`, µs since the epoch: when it last became inactive or failed.
    pub inactive_enter_timestamp: u64,
    /// `StateChangeTimestamp`, µs since the epoch: the last change of `ActiveState`.
    pub state_change_timestamp: u64,
    /// `InvocationID` as 32 lower-case hex digits (empty if the unit never ran).
    pub invocation_id: String,
    /// Resource use of the unit's cgroup (services, sockets, mounts, swaps, slices, scopes).
    pub resources: Resources,
    /// Service properties, for `.service` units when they were read.
    pub service: Option<ServiceState>,
}

/// Resource use of a unit's control group, from the cgroup properties of its type's
/// interface. Every number is `None` where the manager does not account it (it reports
/// `UINT64_MAX`) or the unit type has no cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// `ControlGroup`: the unit's cgroup path (empty if none).
    pub control_group: String,
    /// `MemoryCurrent` in bytes.
    pub memory_current_bytes: Option<u64>,
    /// `CPUUsageNSec`: CPU time used, in nanoseconds.
    pub cpu_usage_nsec: Option<u64>,
    /// `TasksCurrent`: processes and threads.
    pub tasks_current: Option<u64>,
    /// `TasksMax`: the limit on tasks (`None` for no limit).
    pub tasks_max: Option<u64>,
    /// `EffectiveCPUs`: the CPUs the unit may run on (from its cpuset), ascending; `None`
    /// when the manager does not report them (empty mask, e.g. no cpuset controller).
    pub effective_cpus: Option<Vec<u32>>,
}

impl Resources {
    fn from_props(p: &Props) -> Self {
        let counter = |key| num::<u64>(p, key).filter(|&v| v != u64::MAX);
        Resources {
            control_group: string(p, "ControlGroup"),
            memory_current_bytes: counter("MemoryCurrent"),
            cpu_usage_nsec: counter("CPUUsageNSec"),
            tasks_current: counter("TasksCurrent"),
            tasks_max: counter("TasksMax"),
            effective_cpus: p.get("EffectiveCPUs").and_then(cpu_mask),
        }
    }
}

/// The CPUs of a cpuset bitmask (`ay`, bit N of byte N/8 is CPU N); `None` when empty.
fn cpu_mask(value: &OwnedValue) -> Option<Vec<u32>> {
    let bytes = <Vec<u8>>::try_from(value.try_clone().ok()?).ok()?;
    let cpus: Vec<u32> = (0u32..)
        .zip(
            bytes
                .iter()
                .flat_map(|b| (0..8).map(move |bit| b & (1 << bit) != 0)),
        )
        .filter_map(|(cpu, set)| set.then_some(cpu))
        .collect();
    (!cpus.is_empty()).then_some(cpus)
}

/// CPUs as systemd prints a set: `0-3 6`.
pub fn format_cpus(cpus: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(" ")
}

/// One process of a unit's cgroup (`GetUnitProcesses`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitProcess {
    /// The cgroup the process is in.
    pub cgroup: String,
    /// Its PID.
    pub pid: u32,
    /// Its command line as the manager read it (may be empty for kernel threads).
    pub command: String,
}

/// Properties of `org.freedesktop.systemd1.Service`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceState {
    /// `Result`: success, exit-code, signal, core-dump, timeout, watchdog, start-limit-hit,
    /// resources, oom-kill, ...
    pub result: String,
    /// `MainPID` (0 if none).
    pub main_pid: u32,
    /// `ExecMainCode`: how the main process ended (waitid(2) `si_code`: 1 exited, 2 killed,
    /// 3 dumped core; 0 if it did not end).
    pub exec_main_code: i32,
    /// `ExecMainStatus`: exit status, or signal number when killed.
    pub exec_main_status: i32,
    /// `NRestarts`.
    pub n_restarts: u32,
    /// `Type`: simple, exec, forking, oneshot, dbus, notify, idle.
    pub service_type: String,
    /// `ControlPID`: a running `ExecStartPre=`, `ExecReload=`, ... (0 if none).
    pub control_pid: u32,
    /// `ExecMainStartTimestamp`, µs since the epoch (0 if the main process never started).
    pub exec_main_start_timestamp: u64,
    /// `ExecMainExitTimestamp`, µs since the epoch (0 if it did not exit).
    pub exec_main_exit_timestamp: u64,
    /// `ExecMainPID`: the last main process, also after it exited (0 if none).
    pub exec_main_pid: u32,
    /// The `ExecStart=` command lines as configured (argv of each).
    pub exec_start: Vec<Vec<String>>,
    /// The PIDs of the start commands that ran last (`ExecCondition=`, `ExecStartPre=`,
    /// `ExecStart=`, `ExecStartPost=`), also after they exited: their journal records can be
    /// found by `_PID=` when journald could not attribute them to the unit.
    pub exec_pids: Vec<u32>,
    /// `TimeoutStartUSec`: how long the manager lets a start take (`u64::MAX`: no limit; 0
    /// if not read).
    pub timeout_start_usec: u64,
}

impl ServiceState {
    /// The processes of the service that ran (`ExecMainPID`, `MainPID`, the other `Exec*=`):
    /// their journal lines are the unit's even when journald read their cgroup too late to
    /// say so.
    pub fn ran_pids(&self) -> Vec<u32> {
        let mut p = self.exec_pids.clone();
        p.extend(
            [self.exec_main_pid, self.main_pid]
                .into_iter()
                .filter(|&p| p != 0),
        );
        p
    }
}

/// One row of `list`: `ListUnitsByPatterns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedUnit {
    /// Unit name.
    pub name: String,
    /// `Description`.
    pub description: String,
    /// `LoadState`.
    pub load_state: String,
    /// `ActiveState`.
    pub active_state: String,
    /// `SubState`.
    pub sub_state: String,
    /// The queued job's type (`start`, `stop`, ...), if any.
    pub job_type: Option<String>,
}

/// Properties of the manager itself (`org.freedesktop.systemd1.Manager`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagerState {
    /// `Version`, e.g. `252.38-1~deb12u1`.
    pub version: String,
    /// `SystemState`: initializing, starting, running, degraded, maintenance, stopping.
    pub system_state: String,
    /// `NJobs`: queued jobs.
    pub n_jobs: u32,
    /// `NFailedUnits`.
    pub n_failed_units: u32,
    /// `NNames`: loaded unit names.
    pub n_names: u32,
}

impl ManagerState {
    pub(crate) fn from_props(p: &Props) -> Self {
        ManagerState {
            version: string(p, "Version"),
            system_state: string(p, "SystemState"),
            n_jobs: num(p, "NJobs").unwrap_or(0),
            n_failed_units: num(p, "NFailedUnits").unwrap_or(0),
            n_names: num(p, "NNames").unwrap_or(0),
        }
    }
}

pub(crate) type Props = HashMap<String, OwnedValue>;

fn string(p: &Props, key: &str) -> String {
    p.get(key)
        .and_then(|v| <&str>::try_from(v).ok())
        .unwrap_or_default()
        .to_owned()
}

fn num<T: for<'a> TryFrom<&'a OwnedValue>>(p: &Props, key: &str) -> Option<T> {
    p.get(key).and_then(|v| T::try_from(v).ok())
}

/// Whether an array property (such as `Conditions`, `a(sbbsi)`) has entries; `None` if the
/// value is not an array.
/// The service property holding the commands of a sub-state (`start-pre` →
/// `ExecStartPre`), for the sub-states in which a command runs.
pub(crate) fn exec_property(sub_state: &str) -> Option<&'static str> {
    Some(match sub_state {
        "condition" => "ExecCondition",
        "start-pre" => "ExecStartPre",
        "start" | "running" => "ExecStart",
        "start-post" => "ExecStartPost",
        "reload" => "ExecReload",
        "stop" | "stop-sigterm" | "stop-sigkill" => "ExecStop",
        "stop-post" | "final-sigterm" | "final-sigkill" => "ExecStopPost",
        _ => return None,
    })
}

/// One command of an `Exec*` property: path, argv, ignore-failure, start (realtime,
/// monotonic), exit (realtime, monotonic), PID, code, status.
type ExecCommand = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);

/// The argv, joined by spaces, of the command of an `Exec*` property value that is running
/// now (started, with a PID, not exited).
pub(crate) fn running_command(value: &OwnedValue) -> Option<String> {
    let commands = <Vec<ExecCommand>>::try_from(value.try_clone().ok()?).ok()?;
    commands
        .into_iter()
        .find(|c| c.7 != 0 && c.3 != 0 && c.5 == 0)
        .map(|c| c.1.join(" "))
}

pub(crate) fn has_entries(value: &OwnedValue) -> Option<bool> {
    match &**value {
        zbus::zvariant::Value::Array(a) => Some(!a.is_empty()),
        _ => None,
    }
}

impl UnitState {
    /// Builds the state from `GetAll` replies of the Unit and (optionally) Service interfaces.
    pub(crate) fn from_props(unit: &Props, service: Option<&Props>) -> Self {
        UnitState {
            name: string(unit, "Id"),
            description: string(unit, "Description"),
            load_state: string(unit, "LoadState"),
            active_state: string(unit, "ActiveState"),
            sub_state: string(unit, "SubState"),
            unit_file_state: string(unit, "UnitFileState"),
            fragment_path: string(unit, "FragmentPath"),
            condition_result: num(unit, "ConditionResult"),
            condition_timestamp: num(unit, "ConditionTimestamp").unwrap_or(0),
            active_enter_timestamp: num(unit, "ActiveEnterTimestamp").unwrap_or(0),
            has_conditions: unit.get("Conditions").and_then(has_entries),
            source_path: string(unit, "SourcePath"),
            drop_in_paths: unit
                .get("DropInPaths")
                .and_then(|v| <Vec<String>>::try_from(v.try_clone().ok()?).ok())
                .unwrap_or_default(),
            unit_file_preset: string(unit, "UnitFilePreset"),
            inactive_exit_timestamp: num(unit, "InactiveExitTimestamp").unwrap_or(0),
            inactive_enter_timestamp: num(unit, "InactiveEnterTimestamp").unwrap_or(0),
            state_change_timestamp: num(unit, "StateChangeTimestamp").unwrap_or(0),
            invocation_id: unit
                .get("InvocationID")
                .and_then(|v| <Vec<u8>>::try_from(v.try_clone().ok()?).ok())
                .map(|id| {
                    id.iter().fold(String::new(), |mut s, b| {
                        let _ = write!(s, "{b:02x}");
                        s
                    })
                })
                .unwrap_or_default(),
            resources: service.map(Resources::from_props).unwrap_or_default(),
            service: service
                .filter(|s| s.contains_key("ExecMainCode"))
                .map(|s| ServiceState {
                    result: string(s, "Result"),
                    main_pid: num(s, "MainPID").unwrap_or(0),
                    exec_main_code: num(s, "ExecMainCode").unwrap_or(0),
                    exec_main_status: num(s, "ExecMainStatus").unwrap_or(0),
                    n_restarts: num(s, "NRestarts").unwrap_or(0),
                    service_type: string(s, "Type"),
                    control_pid: num(s, "ControlPID").unwrap_or(0),
                    exec_main_start_timestamp: num(s, "ExecMainStartTimestamp").unwrap_or(0),
                    exec_main_exit_timestamp: num(s, "ExecMainExitTimestamp").unwrap_or(0),
                    exec_main_pid: num(s, "ExecMainPID").unwrap_or(0),
                    exec_start: exec_commands(s.get("ExecStart")),
                    exec_pids: [
                        "ExecCondition",
                        "ExecStartPre",
                        "ExecStart",
                        "ExecStartPost",
                    ]
                    .iter()
                    .flat_map(|k| exec_pids(s.get(*k)))
                    .collect(),
                    timeout_start_usec: num(s, "TimeoutStartUSec").unwrap_or(0),
                }),
        }
    }

    /// True when the manager has no unit file or definition for this name.
    pub fn is_not_found(&self) -> bool {
        self.load_state == "not-found"
    }
}

/// The argv of each command of an exec property such as `ExecStart` (`a(sasbttttuii)`).
fn exec_commands(value: Option<&OwnedValue>) -> Vec<Vec<String>> {
    type Exec = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);
    value
        .and_then(|v| <Vec<Exec>>::try_from(v.try_clone().ok()?).ok())
        .map(|cmds| cmds.into_iter().map(|c| c.1).collect())
        .unwrap_or_default()
}

/// The PIDs recorded for the commands of an exec property (0 = never ran, left out).
fn exec_pids(value: Option<&OwnedValue>) -> Vec<u32> {
    type Exec = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);
    value
        .and_then(|v| <Vec<Exec>>::try_from(v.try_clone().ok()?).ok())
        .map(|cmds| cmds.into_iter().map(|c| c.7).filter(|&p| p != 0).collect())
        .unwrap_or_default()
}

/// The interface that carries the type-specific properties of `unit` (and, for the types
/// that have a cgroup, its resource use), e.g. `org.freedesktop.systemd1.Service`.
pub fn type_interface(unit: &str) -> Option<&'static str> {
    Some(match unit.rsplit_once('.')?.1 {
        "service" => "org.freedesktop.systemd1.Service",
        "socket" => "org.freedesktop.systemd1.Socket",
        "mount" => "org.freedesktop.systemd1.Mount",
        "swap" => "org.freedesktop.systemd1.Swap",
        "slice" => "org.freedesktop.systemd1.Slice",
        "scope" => "org.freedesktop.systemd1.Scope",
        _ => return None,
    })
}

/// Unit types systemd knows (systemd's `unit_type_table`).
pub const UNIT_TYPES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// Whether `name` ends in `.<unit type>`.
pub fn has_unit_suffix(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(stem, suffix)| !stem.is_empty() && UNIT_TYPES.contains(&suffix))
}

/// Appends `.service` to a name without a unit type suffix, as systemctl does for unit
/// arguments (`web` → `web.service`, `hello@1` → `hello@1.service`). Names that already
/// carry a suffix are returned unchanged.
pub fn mangle(name: &str) -> String {
    if has_unit_suffix(name) {
        name.to_owned()
    } else {
        format!("{name}.service")
    }
}

/// Like [`mangle`] but for patterns: names containing glob characters are left alone unless
/// they clearly lack a suffix and contain no `*` (systemctl leaves globs untouched).
pub fn mangle_pattern(pattern: &str) -> String {
    if pattern.contains(['*', '?', '[']) {
        pattern.to_owned()
    } else {
        mangle(pattern)
    }
}

/// The object path of unit `name` (`sd_bus_path_encode("/org/freedesktop/systemd1/unit", name)`).
pub fn unit_path(name: &str) -> String {
    let mut out = String::from(super::proxy::UNIT_PATH_PREFIX);
    if name.is_empty() {
        out.push('_');
    }
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "_{b:02x}");
        }
    }
    out
}

/// The unit name encoded in a unit object path, or `None` if the path is not a unit path or
/// is not a valid encoding.
pub fn unit_name_from_path(path: &str) -> Option<String> {
    let label = path.strip_prefix(super::proxy::UNIT_PATH_PREFIX)?;
    if label == "_" {
        return Some(String::new());
    }
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// fnmatch(3) without flags: `*`, `?`, `[...]` (with `!`/`^` negation and ranges), `\` escapes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // Returns (matched, length of the class including brackets).
        let mut i = 1;
        let negate = matches!(p.get(i), Some('!' | '^'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = p[i];
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
                if lo <= c && c <= p[i + 2] {
                    matched = true;
                }
                i += 3;
            } else {
                if lo == c {
                    matched = true;
                }
                i += 1;
            }
        }
        None
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => match (n.first(), class(p, n.first().copied().unwrap_or('\0'))) {
                (Some(_), Some((true, len))) => go(&p[len..], &n[1..]),
                (Some(&c), None) => c == '[' && go(&p[1..], &n[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// The name of signal `sig` without `SIG` (`TERM`), or its number if unknown.
pub fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    usize::try_from(sig)
        .ok()
        .and_then(|s| s.checked_sub(1))
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| sig.to_string(), |n| (*n).to_owned())
}

/// Parses a signal given as a number, `TERM` or `SIGTERM` (case-insensitive).
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    (1..=31).find(|&n| signal_name(n) == bare)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_are_escaped_like_sd_bus_and_decode_back() {
        assert_eq!(
            unit_path("slow@1.service"),
            "/org/freedesktop/systemd1/unit/slow_401_2eservice"
        );
        assert_eq!(
            unit_path("1x.service"),
            "/org/freedesktop/systemd1/unit/_31x_2eservice"
        );
        for name in ["hello@a-b_c.service", "1x.mount", "", "ünï.service"] {
            assert_eq!(unit_name_from_path(&unit_path(name)).as_deref(), Some(name));
        }
        assert_eq!(unit_name_from_path("/org/freedesktop/systemd1/job/1"), None);
    }

    #[test]
    fn names_without_a_type_get_service_appended() {
        assert_eq!(mangle("web"), "web.service");
        assert_eq!(mangle("hello@1"), "hello@1.service");
        assert_eq!(mangle("web.socket"), "web.socket");
        assert_eq!(mangle("a.b"), "a.b.service");
        assert_eq!(mangle_pattern("hello@*"), "hello@*");
    }

    #[test]
    fn globs_match_like_fnmatch() {
        assert!(glob_match("hello@*.service", "hello@12.service"));
        assert!(!glob_match("hello@*.service", "hello.service"));
        assert!(glob_match("h?llo.[st]*", "hello.service"));
        assert!(!glob_match("h[!e]llo", "hello"));
        assert!(glob_match("a\\*", "a*"));
    }

    #[test]
    fn signals_have_names_both_ways() {
        assert_eq!(signal_name(15), "TERM");
        assert_eq!(signal_name(99), "99");
        assert_eq!(parse_signal("sigkill"), Some(9));
        assert_eq!(parse_signal("HUP"), Some(1));
        assert_eq!(parse_signal("10"), Some(10));
        assert_eq!(parse_signal("BOGUS"), None);
    }
}
