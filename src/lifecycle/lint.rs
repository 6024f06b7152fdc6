//! Value checks that Quadlet leaves to podman or systemd, run by `quadlet verify` (and every
//! command that verifies) on each loaded file, drop-ins merged. The conversion stops at the first
//! problem of a file; these checks report every one, each with its file (the drop-in when the
//! line comes from one), line and key:
//!
//! * every key of the type group that the kind does not know (not only the first), with a
//!   `did you mean Image?` hint (error: Quadlet refuses the file);
//! * `PublishPort=` syntax `[[IP:][HOST_PORT]:]CONTAINER_PORT[/tcp|udp|sctp]` (error: podman
//!   refuses it when the unit starts);
//! * podman durations (`HealthInterval=`, ... Go syntax such as `1m30s`), `StopTimeout=`
//!   (seconds), podman sizes (`ShmSize=`, `Memory=`: `64m`, `1g`) (errors);
//! * `[Service]`: `Restart=` values, systemd time spans (`TimeoutStartSec=`, `RestartSec=`, ...)
//!   and sizes (`MemoryMax=`, ...), which systemd ignores with a warning when invalid, and keys
//!   `[Service]` does not have (warnings, with a hint).
//!
//! [`misnamed`] warns about a given file that reads like a Quadlet file but is not named like one.
//!
//! Values containing `%` specifiers or `$` variables are not checked (they are resolved later).

use crate::unit::{Line, UnitFile};

use super::{Diagnostic, Severity};

/// All checks on `unit` (the file `name`, drop-ins merged), whose type group accepts `known`.
pub fn check(unit: &UnitFile, name: &str, known: &[&str]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let group = super::adapter::group_of(name).unwrap_or("");
    if let Some(g) = unit.group(group) {
        for l in g.lines.iter().filter(|l| !l.comment) {
            if !known.contains(&l.key.as_str()) {
                out.push(diag(
                    unit,
                    l,
                    Severity::Error,
                    format!("unsupported key '{}' in group '{group}'", l.key),
                    did_you_mean(&l.key, known),
                ));
                continue;
            }
            check_type_value(unit, l, &mut out);
        }
    }
    if let Some(g) = unit.group("Service") {
        for l in g.lines.iter().filter(|l| !l.comment) {
            check_service_line(unit, l, &mut out);
        }
    }
    out
}

fn diag(
    unit: &UnitFile,
    l: &Line,
    severity: Severity,
    message: String,
    hint: Option<String>,
) -> Diagnostic {
    let file = unit
        .sources
        .get(usize::from(l.origin.source))
        .or_else(|| unit.sources.first())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Diagnostic {
        file,
        line: (l.origin.line != 0).then_some(l.origin.line),
        key: Some(l.key.clone()),
        severity,
        message,
        hint,
    }
}

fn unresolved(v: &str) -> bool {
    v.contains('%') || v.contains('$')
}

/// Checks of keys of the type groups.
fn check_type_value(unit: &UnitFile, l: &Line, out: &mut Vec<Diagnostic>) {
    let v = l.value.trim();
    if unresolved(v) {
        return;
    }
    let bad = |what: &str, hint: &str| {
        diag(
            unit,
            l,
            Severity::Error,
            format!("invalid {}={v:?}: {what}", l.key),
            Some(hint.to_owned()),
        )
    };
    match l.key.as_str() {
        "PublishPort" => {
            if let Err(why) = publish_port(v) {
                out.push(bad(
                    &why,
                    "expected [[IP:][HOST_PORT]:]CONTAINER_PORT[/tcp|udp|sctp], e.g. 8080:80 or 127.0.0.1:8080:80/tcp",
                ));
            }
        }
        "HealthInterval" if v == "disable" => {}
        "HealthInterval"
        | "HealthTimeout"
        | "HealthStartPeriod"
        | "HealthStartupInterval"
        | "HealthStartupTimeout"
        | "RetryDelay"
            if !go_duration(v) =>
        {
            out.push(bad(
                "not a duration",
                "use a number with a unit: 30s, 1m30s, 500ms (units ns, us, ms, s, m, h)",
            ));
        }
        "StopTimeout" | "Retry" if !v.is_empty() && v.parse::<u64>().is_err() => {
            out.push(bad("not a whole number", "use a whole number, e.g. 10"));
        }
        "ShmSize" | "Memory" if !podman_size(v) => {
            out.push(bad(
                "not a size",
                "use a number with an optional unit b, k, m or g, e.g. 64m",
            ));
        }
        _ => {}
    }
}

const RESTART: &[&str] = &[
    "no",
    "on-success",
    "on-failure",
    "on-abnormal",
    "on-watchdog",
    "on-abort",
    "always",
];

const TIME_KEYS: &[&str] = &[
    "TimeoutSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "TimeoutAbortSec",
    "RestartSec",
    "RestartMaxDelaySec",
    "WatchdogSec",
    "RuntimeMaxSec",
    "RuntimeRandomizedExtraSec",
];

const SIZE_KEYS: &[&str] = &[
    "MemoryMax",
    "MemoryHigh",
    "MemoryLow",
    "MemoryMin",
    "MemorySwapMax",
    "MemoryLimit",
];

/// The keys systemd 252 accepts in `[Service]` (service, exec, kill and resource-control
/// settings).
const SERVICE_KEYS: &[&str] = &[
    "Type",
    "ExitType",
    "RemainAfterExit",
    "GuessMainPID",
    "PIDFile",
    "BusName",
    "ExecStart",
    "ExecStartPre",
    "ExecStartPost",
    "ExecCondition",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
    "RestartSec",
    "TimeoutSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "TimeoutAbortSec",
    "TimeoutStartFailureMode",
    "TimeoutStopFailureMode",
    "RuntimeMaxSec",
    "RuntimeRandomizedExtraSec",
    "WatchdogSec",
    "Restart",
    "SuccessExitStatus",
    "RestartPreventExitStatus",
    "RestartForceExitStatus",
    "RootDirectoryStartOnly",
    "NonBlocking",
    "NotifyAccess",
    "Sockets",
    "FileDescriptorStoreMax",
    "USBFunctionDescriptors",
    "USBFunctionStrings",
    "OOMPolicy",
    "OpenFile",
    "ReloadSignal",
    "StartLimitBurst",
    "StartLimitIntervalSec",
    "StartLimitAction",
    "FailureAction",
    "SuccessAction",
    "RebootArgument",
    "PermissionsStartOnly",
    "SysVStartPriority",
    // exec
    "ExecSearchPath",
    "WorkingDirectory",
    "RootDirectory",
    "RootImage",
    "RootImageOptions",
    "RootHash",
    "RootHashSignature",
    "RootVerity",
    "MountAPIVFS",
    "ProtectProc",
    "ProcSubset",
    "BindPaths",
    "BindReadOnlyPaths",
    "MountImages",
    "ExtensionImages",
    "ExtensionDirectories",
    "User",
    "Group",
    "DynamicUser",
    "SupplementaryGroups",
    "PAMName",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "NoNewPrivileges",
    "SecureBits",
    "SELinuxContext",
    "AppArmorProfile",
    "SmackProcessLabel",
    "LimitCPU",
    "LimitFSIZE",
    "LimitDATA",
    "LimitSTACK",
    "LimitCORE",
    "LimitRSS",
    "LimitNOFILE",
    "LimitAS",
    "LimitNPROC",
    "LimitMEMLOCK",
    "LimitLOCKS",
    "LimitSIGPENDING",
    "LimitMSGQUEUE",
    "LimitNICE",
    "LimitRTPRIO",
    "LimitRTTIME",
    "UMask",
    "CoredumpFilter",
    "KeyringMode",
    "OOMScoreAdjust",
    "TimerSlackNSec",
    "Personality",
    "IgnoreSIGPIPE",
    "Nice",
    "CPUSchedulingPolicy",
    "CPUSchedulingPriority",
    "CPUSchedulingResetOnFork",
    "CPUAffinity",
    "NUMAPolicy",
    "NUMAMask",
    "IOSchedulingClass",
    "IOSchedulingPriority",
    "ProtectSystem",
    "ProtectHome",
    "RuntimeDirectory",
    "StateDirectory",
    "CacheDirectory",
    "LogsDirectory",
    "ConfigurationDirectory",
    "RuntimeDirectoryMode",
    "StateDirectoryMode",
    "CacheDirectoryMode",
    "LogsDirectoryMode",
    "ConfigurationDirectoryMode",
    "RuntimeDirectoryPreserve",
    "TimeoutCleanSec",
    "ReadWritePaths",
    "ReadOnlyPaths",
    "InaccessiblePaths",
    "ExecPaths",
    "NoExecPaths",
    "TemporaryFileSystem",
    "PrivateTmp",
    "PrivateDevices",
    "PrivateNetwork",
    "NetworkNamespacePath",
    "PrivateIPC",
    "IPCNamespacePath",
    "PrivateUsers",
    "ProtectHostname",
    "ProtectClock",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "RestrictAddressFamilies",
    "RestrictFileSystems",
    "RestrictNamespaces",
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "RemoveIPC",
    "PrivateMounts",
    "MountFlags",
    "SystemCallFilter",
    "SystemCallErrorNumber",
    "SystemCallArchitectures",
    "SystemCallLog",
    "Environment",
    "EnvironmentFile",
    "PassEnvironment",
    "UnsetEnvironment",
    "StandardInput",
    "StandardOutput",
    "StandardError",
    "StandardInputText",
    "StandardInputData",
    "LogLevelMax",
    "LogExtraFields",
    "LogRateLimitIntervalSec",
    "LogRateLimitBurst",
    "LogFilterPatterns",
    "LogNamespace",
    "SyslogIdentifier",
    "SyslogFacility",
    "SyslogLevel",
    "SyslogLevelPrefix",
    "TTYPath",
    "TTYReset",
    "TTYVHangup",
    "TTYRows",
    "TTYColumns",
    "TTYVTDisallocate",
    "LoadCredential",
    "LoadCredentialEncrypted",
    "SetCredential",
    "SetCredentialEncrypted",
    "UtmpIdentifier",
    "UtmpMode",
    "Slice",
    "Delegate",
    "KillMode",
    "KillSignal",
    "RestartKillSignal",
    "SendSIGHUP",
    "SendSIGKILL",
    "FinalKillSignal",
    "WatchdogSignal",
    // resource control
    "CPUAccounting",
    "CPUWeight",
    "StartupCPUWeight",
    "CPUQuota",
    "CPUQuotaPeriodSec",
    "AllowedCPUs",
    "StartupAllowedCPUs",
    "AllowedMemoryNodes",
    "StartupAllowedMemoryNodes",
    "MemoryAccounting",
    "MemoryMin",
    "MemoryLow",
    "MemoryHigh",
    "MemoryMax",
    "MemorySwapMax",
    "MemoryZSwapMax",
    "MemoryLimit",
    "TasksAccounting",
    "TasksMax",
    "IOAccounting",
    "IOWeight",
    "StartupIOWeight",
    "IODeviceWeight",
    "IOReadBandwidthMax",
    "IOWriteBandwidthMax",
    "IOReadIOPSMax",
    "IOWriteIOPSMax",
    "IODeviceLatencyTargetSec",
    "IPAccounting",
    "IPAddressAllow",
    "IPAddressDeny",
    "IPIngressFilterPath",
    "IPEgressFilterPath",
    "BPFProgram",
    "SocketBindAllow",
    "SocketBindDeny",
    "RestrictNetworkInterfaces",
    "DeviceAllow",
    "DevicePolicy",
    "DelegateSubgroup",
    "DisableControllers",
    "ManagedOOMSwap",
    "ManagedOOMMemoryPressure",
    "ManagedOOMMemoryPressureLimit",
    "ManagedOOMPreference",
    "CPUShares",
    "StartupCPUShares",
    "BlockIOAccounting",
    "BlockIOWeight",
    "StartupBlockIOWeight",
    "BlockIODeviceWeight",
    "BlockIOReadBandwidth",
    "BlockIOWriteBandwidth",
    "CoredumpReceive",
];

fn check_service_line(unit: &UnitFile, l: &Line, out: &mut Vec<Diagnostic>) {
    let key = l.key.as_str();
    if key.starts_with("X-") {
        return;
    }
    if !SERVICE_KEYS.contains(&key) {
        out.push(diag(
            unit,
            l,
            Severity::Warning,
            format!("unknown key '{key}' in group 'Service'; systemd ignores it"),
            did_you_mean(key, SERVICE_KEYS),
        ));
        return;
    }
    let v = l.value.trim();
    if v.is_empty() || unresolved(v) {
        return;
    }
    let bad = |what: &str, hint: String| {
        diag(
            unit,
            l,
            Severity::Error,
            format!("invalid {key}={v:?}: {what}; systemd would ignore the line"),
            Some(hint),
        )
    };
    if key == "Restart" && !RESTART.contains(&v) {
        let hint =
            did_you_mean(v, RESTART).unwrap_or_else(|| format!("valid: {}", RESTART.join(", ")));
        out.push(bad("not a restart policy", hint));
    } else if TIME_KEYS.contains(&key) && !time_span(v) {
        out.push(bad(
            "not a time span",
            "use e.g. 90, 90s, 1min 30s, 500ms or infinity".to_owned(),
        ));
    } else if SIZE_KEYS.contains(&key) && !systemd_size(v) {
        out.push(bad(
            "not a size",
            "use bytes with an optional K, M, G, T suffix, a percentage or infinity, e.g. 512M"
                .to_owned(),
        ));
    }
}

/// `did you mean X?` for the closest of `known` (same letters in another case, or at most two
/// edits for keys of four letters or more).
pub fn did_you_mean(key: &str, known: &[&str]) -> Option<String> {
    closest(key, known).map(|k| format!("did you mean {k}?"))
}

/// The one of `known` that `key` is probably a misspelling of, as for [`did_you_mean`].
pub fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(key)) {
        return Some(k);
    }
    let limit = if key.len() >= 4 { 2 } else { 1 };
    known
        .iter()
        .map(|k| {
            (
                edit_distance(&key.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn port_range(s: &str) -> bool {
    let ok = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    match s.split_once('-') {
        Some((a, b)) => ok(a) && ok(b),
        None => ok(s),
    }
}

/// podman's `-p` syntax.
fn publish_port(v: &str) -> Result<(), String> {
    let (spec, proto) = match v.rsplit_once('/') {
        Some((s, p)) => (s, Some(p)),
        None => (v, None),
    };
    if let Some(p) = proto {
        if !matches!(p, "tcp" | "udp" | "sctp") {
            return Err(format!("unknown protocol {p:?}"));
        }
    }
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, rest) = r.split_once(']').ok_or("unclosed [ in the IPv6 address")?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{ip:?} is not an IPv6 address"));
        }
        let rest = rest
            .strip_prefix(':')
            .ok_or("expected : after the IPv6 address")?;
        (None, rest.to_owned())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec.to_owned()),
            3 => (Some(parts[0]), format!("{}:{}", parts[1], parts[2])),
            _ => return Err("too many ':'".to_owned()),
        }
    };
    if let Some(ip) = ip {
        if !ip.is_empty() && ip.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(format!("{ip:?} is not an IP address"));
        }
    }
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest.as_str()),
    };
    if !port_range(container) {
        return Err(format!("{container:?} is not a port or port range"));
    }
    if let Some(h) = host {
        if !h.is_empty() && !port_range(h) {
            return Err(format!("{h:?} is not a port or port range"));
        }
    }
    Ok(())
}

/// Go's `time.ParseDuration`.
fn go_duration(v: &str) -> bool {
    let s = v.strip_prefix(['+', '-']).unwrap_or(v);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if n == 0 || rest[..n] == *"." {
            return false;
        }
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        if !matches!(
            &rest[..u],
            "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h"
        ) {
            return false;
        }
        rest = &rest[u..];
    }
    true
}

/// podman's `RAMInBytes`: `64m`, `1.5g`, `512MiB`, `1024`.
fn podman_size(v: &str) -> bool {
    let n = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    if n == 0 || v[..n].parse::<f64>().is_err() {
        return false;
    }
    let unit = v[n..].trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    matches!(unit, "" | "k" | "m" | "g" | "t" | "p")
}

/// systemd's `parse_sec`: `infinity` or components `<number>[<unit>]`.
fn time_span(v: &str) -> bool {
    crate::unit::value::parse_timespan_usec(v).is_some()
}

/// systemd's size parsing for `Memory*=`: `infinity`, a percentage, or bytes with a suffix.
fn systemd_size(v: &str) -> bool {
    if v == "infinity" {
        return true;
    }
    if let Some(p) = v.strip_suffix('%') {
        return p.parse::<f64>().is_ok_and(|p| (0.0..=100.0).contains(&p));
    }
    crate::unit::value::parse_size(v).is_some()
}

/// A warning for each given file that reads like a Quadlet file but is not named like one: its
/// first section is a Quadlet type group (`[Container]`, ...) while its name does not end in that
/// kind's extension, and it is not a drop-in (`NAME.d/*.conf`). Such a file is installed as it is
/// (an app's other files, a kube YAML or an env file, are installed too) and the generator never
/// makes a unit of it, which is rarely what was meant.
pub fn misnamed<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (rel, data) in files {
        let path = std::path::Path::new(rel);
        let in_dropin_dir = path
            .parent()
            .and_then(std::path::Path::extension)
            .is_some_and(|e| e == "d");
        if super::adapter::is_quadlet_name(rel) || in_dropin_dir {
            continue;
        }
        let Some((line, group, kind)) = first_section(data)
            .and_then(|(line, g)| super::adapter::kind_of_group(g).map(|k| (line, g, k)))
        else {
            continue;
        };
        let base = path.file_stem().and_then(|s| s.to_str()).unwrap_or(rel);
        out.push(Diagnostic {
            file: rel.to_owned(),
            line: Some(line),
            key: None,
            severity: Severity::Warning,
            message: format!(
                "{rel} has a [{group}] section but is not named like a Quadlet file: the \
                 generator converts only files named NAME.{kind} (or a drop-in NAME.{kind}.d/*.conf), \
                 so this one is installed as it is and no unit is made from it"
            ),
            hint: Some(if path.extension().is_some_and(|e| e == "conf") {
                format!(
                    "a drop-in goes in a directory NAME.{kind}.d/ beside NAME.{kind}; a file of \
                     its own is named {base}.{kind}"
                )
            } else {
                format!("rename it to {base}.{kind}")
            }),
        });
    }
    out
}

/// The 1-based line and name of the first section header of a unit file, comments and blank
/// lines skipped; `None` when the text is not UTF-8 or the first other line is no header.
fn first_section(data: &[u8]) -> Option<(u32, &str)> {
    let text = std::str::from_utf8(data).ok()?;
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        let name = l.strip_prefix('[')?.strip_suffix(']')?;
        return Some((u32::try_from(i + 1).ok()?, name));
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn misnamed_files_with_a_quadlet_section_are_warned_about_and_others_are_not() {
        let files: [(&str, &[u8]); 8] = [
            ("web.txt", b"# the web app\n\n[Container]\nImage=x\n"),
            ("10-env.conf", b"[Network]\nSubnet=10.0.0.0/24\n"),
            // Named right, a drop-in, an asset, a unit that is no Quadlet kind: nothing to say.
            ("web.container", b"[Container]\nImage=x\n"),
            (
                "web.container.d/10-env.conf",
                b"[Container]\nEnvironment=A=1\n",
            ),
            ("app.yaml", b"apiVersion: v1\nkind: Pod\n"),
            ("helper.service", b"[Service]\nExecStart=/bin/true\n"),
            ("data.bin", b"\xff\xfe[Container]"),
            ("empty", b""),
        ];
        let d = misnamed(files);
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!(
            (d[0].file.as_str(), d[0].line, d[0].severity),
            ("web.txt", Some(3), Severity::Warning)
        );
        assert!(d[0].message.contains("[Container]") && d[0].message.contains("NAME.container"));
        assert_eq!(d[0].hint.as_deref(), Some("rename it to web.container"));
        assert_eq!((d[1].file.as_str(), d[1].line), ("10-env.conf", Some(1)));
        assert!(
            d[1].hint.as_deref().unwrap().contains("NAME.network.d/"),
            "{:?}",
            d[1].hint
        );
    }

    #[test]
    fn publish_ports() {
        for ok in [
            "80",
            "8080:80",
            "127.0.0.1:8080:80",
            "127.0.0.1::80",
            "[::1]:8080:80",
            "8000-8010:80-90/udp",
            ":80",
        ] {
            assert!(publish_port(ok).is_ok(), "{ok}");
        }
        for bad in [
            "80:",
            "abc",
            "8080:80/xyz",
            "1.2.3:80:80",
            "70000",
            "a:b:c:d",
        ] {
            assert!(publish_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_sizes() {
        assert!(go_duration("1m30s") && go_duration("500ms") && go_duration("0"));
        assert!(!go_duration("30") && !go_duration("5 min") && !go_duration("1x"));
        assert!(
            time_span("90")
                && time_span("1min 30s")
                && time_span("infinity")
                && time_span("5min30s")
        );
        assert!(!time_span("5 minutes later") && !time_span("soon"));
        assert!(podman_size("64m") && podman_size("1.5GB") && podman_size("1024"));
        assert!(!podman_size("lots") && !podman_size("64x"));
        assert!(systemd_size("512M") && systemd_size("50%") && !systemd_size("512MB"));
    }

    #[test]
    fn hints() {
        assert_eq!(
            did_you_mean("Imag", &["Image", "Exec"]).unwrap(),
            "did you mean Image?"
        );
        assert_eq!(
            did_you_mean("image", &["Image"]).unwrap(),
            "did you mean Image?"
        );
        assert!(did_you_mean("Frobnicate", &["Image"]).is_none());
    }
}
