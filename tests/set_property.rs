//! `set-property` and `stop --ignore-missing` against a real `systemd --user` (see
//! `tests/support/mod.rs`), cross-checked with `systemctl --user` inside the sandbox.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output};

use support::UserManager;

const HELLO: &str = "[Unit]\nDescription=Hello %i\n[Service]\nExecStart=/bin/sleep 600\n";

fn run(sb: &UserManager, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unitwright"))
        .envs(sb.client_env())
        .arg("--user")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `systemctl --user show -p PROPS UNIT` inside the sandbox, as its stdout.
fn shown(sb: &UserManager, unit: &str, props: &str) -> String {
    let out = sb.systemctl(&["show", "-p", props, unit]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn value(sb: &UserManager, unit: &str, prop: &str) -> String {
    shown(sb, unit, prop)
        .trim_end()
        .strip_prefix(&format!("{prop}="))
        .unwrap()
        .to_owned()
}

fn started(units: &[&str]) -> Option<UserManager> {
    let sb = UserManager::builder()
        .unit("hello@.service", HELLO)
        .start()?;
    for u in units {
        let out = run(&sb, &["start", u]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    Some(sb)
}

/// What both clients are given; every value form the typing has to get right.
const ASSIGNMENTS: &[&str] = &[
    "CPUQuota=12.5%",
    "MemoryMax=1.5G",
    "MemoryHigh=50%",
    "MemoryLow=64K",
    "TasksMax=64",
    "CPUWeight=200",
    "IOWeight=300",
    "AllowedCPUs=0-1,9",
    "CPUAccounting=yes",
    "TasksAccounting=no",
    "CPUQuotaPeriodSec=10ms",
    "DevicePolicy=closed",
    "Description=set by a test",
];

/// The D-Bus properties those assignments end up in.
const PROPERTIES: &str = "CPUQuotaPerSecUSec,MemoryMax,MemoryHigh,MemoryLow,TasksMax,CPUWeight,\
                          IOWeight,AllowedCPUs,CPUAccounting,TasksAccounting,CPUQuotaPeriodUSec,\
                          DevicePolicy,Description";

#[test]
fn set_property_changes_a_running_unit_exactly_as_systemctl_does() {
    let Some(sb) = started(&["hello@ours.service", "hello@theirs.service"]) else {
        return;
    };
    let pid_before = value(&sb, "hello@ours.service", "MainPID");
    let before = shown(&sb, "hello@ours.service", PROPERTIES);
    let mut args = vec!["set-property", "hello@ours"];
    args.extend_from_slice(ASSIGNMENTS);
    let out = run(&sb, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        stderr(&out)
    );
    let mut args = vec!["set-property", "hello@theirs.service"];
    args.extend_from_slice(ASSIGNMENTS);
    let out = sb.systemctl(&args);
    assert!(out.status.success(), "systemctl: {}", stderr(&out));

    let ours = shown(&sb, "hello@ours.service", PROPERTIES);
    assert_ne!(ours, before, "nothing changed");
    assert_eq!(ours, shown(&sb, "hello@theirs.service", PROPERTIES));
    assert_eq!(value(&sb, "hello@ours.service", "MemoryMax"), "1610612736");
    assert_eq!(
        value(&sb, "hello@ours.service", "CPUQuotaPerSecUSec"),
        "125ms"
    );
    assert_eq!(value(&sb, "hello@ours.service", "TasksMax"), "64");
    // Our own `show` reads the same values; the unit kept running (no restart, no reload).
    let out = run(&sb, &["show", "-p", "MemoryMax,TasksMax", "hello@ours"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "MemoryMax=1610612736\nTasksMax=64\n"
    );
    assert_eq!(sb.is_active("hello@ours.service"), "active");
    assert_eq!(value(&sb, "hello@ours.service", "MainPID"), pid_before);

    // infinity and empty values reset, as with systemctl.
    let out = run(
        &sb,
        &[
            "set-property",
            "hello@ours",
            "MemoryMax=infinity",
            "CPUQuota=",
            "TasksMax=10%",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sb.systemctl(&[
        "set-property",
        "hello@theirs.service",
        "MemoryMax=infinity",
        "CPUQuota=",
        "TasksMax=10%",
    ]);
    assert!(out.status.success(), "systemctl: {}", stderr(&out));
    assert_eq!(
        shown(&sb, "hello@ours.service", PROPERTIES),
        shown(&sb, "hello@theirs.service", PROPERTIES)
    );
    assert_eq!(value(&sb, "hello@ours.service", "MemoryMax"), "infinity");
}

#[test]
fn runtime_changes_live_in_the_runtime_directory_and_others_are_kept() {
    let Some(sb) = started(&["hello@kept.service", "hello@runtime.service"]) else {
        return;
    };
    let out = run(&sb, &["set-property", "hello@kept", "MemoryMax=256M"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        &sb,
        &[
            "set-property",
            "--runtime",
            "hello@runtime",
            "MemoryMax=256M",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The manager wrote the drop-ins: under the configuration directory without --runtime,
    // under the runtime directory (tmpfs, gone at reboot) with it.
    let config = sb.root.path().join("config/systemd/user.control");
    let runtime = sb.runtime_dir.join("systemd/user.control");
    let kept = config.join("hello@kept.service.d/50-MemoryMax.conf");
    let temporary = runtime.join("hello@runtime.service.d/50-MemoryMax.conf");
    assert!(kept.is_file(), "{} missing", kept.display());
    assert!(temporary.is_file(), "{} missing", temporary.display());
    assert!(!runtime.join("hello@kept.service.d").exists());
    assert!(!config.join("hello@runtime.service.d").exists());
    assert!(value(&sb, "hello@kept.service", "DropInPaths").contains(&kept.display().to_string()));

    // Both survive a daemon-reload.
    let out = run(&sb, &["daemon-reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(value(&sb, "hello@kept.service", "MemoryMax"), "268435456");
    assert_eq!(
        value(&sb, "hello@runtime.service", "MemoryMax"),
        "268435456"
    );

    // A reboot empties the runtime directory (tmpfs); after it only the kept change is there.
    std::fs::remove_dir_all(&runtime).unwrap();
    let out = run(&sb, &["daemon-reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(value(&sb, "hello@kept.service", "MemoryMax"), "268435456");
    assert_eq!(value(&sb, "hello@runtime.service", "MemoryMax"), "infinity");
}

#[test]
fn bad_assignments_change_nothing_and_say_what_is_valid() {
    let Some(sb) = started(&["hello@bad.service"]) else {
        return;
    };
    let tasks_before = value(&sb, "hello@bad.service", "TasksMax");
    let out = run(
        &sb,
        &["set-property", "hello@bad", "TasksMax=32", "MemoryMax=lots"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "unitwright: set-property: MemoryMax=lots: expected bytes with an optional K, M, G, T, \
         P or E suffix (1024-based, e.g. 512M or 1.5G), a percentage of physical memory (e.g. \
         50%), or infinity\n"
    );
    // The valid assignment before it was not sent either.
    assert_eq!(value(&sb, "hello@bad.service", "TasksMax"), tasks_before);
    let out = run(&sb, &["set-property", "hello@bad", "memorymax=1G"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown property \"memorymax\" (did you mean MemoryMax?); set-property can change: CPUAccounting, "),
        "{}",
        stderr(&out)
    );
    let out = run(&sb, &["set-property", "hello@bad", "CPUQuota=50"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("CPUQuota=50: expected a percentage"));
    // A value the manager itself refuses is reported with the manager's words.
    let out = run(&sb, &["set-property", "hello@bad", "TasksMax=0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("unitwright: set-property of hello@bad.service failed: "),
        "{}",
        stderr(&out)
    );
    // A unit that does not exist.
    let out = run(&sb, &["set-property", "nope", "TasksMax=5"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nope.service not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stop_ignore_missing_treats_a_missing_unit_as_stopped() {
    let Some(sb) = started(&["hello@x.service"]) else {
        return;
    };
    // Without the flag: an error (systemctl's exit status 5).
    let out = run(&sb, &["stop", "nope"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let out = run(&sb, &["stop", "--ignore-missing", "nope", "hello@x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "unitwright: nope.service does not exist; nothing to stop (--ignore-missing)\n"
    );
    assert_eq!(sb.is_active("hello@x.service"), "inactive");
    // -q: not even that line; --json says it per unit.
    let out = run(&sb, &["-q", "stop", "--ignore-missing", "nope"]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        stderr(&out)
    );
    let out = run(&sb, &["stop", "--ignore-missing", "--json", "nope"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["success"], true);
    assert_eq!(v["not_found"], true);
    assert_eq!(v["error"], serde_json::Value::Null);
    assert_eq!(v["unit"], "nope.service");
}
