//! The operator verbs (`status`, `logs`, `is-active`, ...) against a real `systemd --user`
//! with a real `systemd-journald` in the sandbox (`UserManager::builder().journal(true)`,
//! see `tests/support/mod.rs`). The CLI runs inside the sandbox's namespaces
//! (`UserManager::command`), where the journal is at its standard path, as on a host.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use support::UserManager;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `journalctl -D <sandbox journal> ARGS` from outside (a cross-check; the product never
/// runs journalctl).
fn journalctl(sb: &UserManager, args: &[&str]) -> String {
    let out = std::process::Command::new("journalctl")
        .arg("-D")
        .arg(sb.journal_dir())
        .args(args)
        .output()
        .unwrap();
    stdout(&out)
}

/// Waits until `check` holds (the journal is written asynchronously).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not after 20 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_sandbox_journal_records_user_units_as_a_host_does() {
    let Some(sb) = UserManager::builder()
        .journal(true)
        .unit(
            "hello.service",
            "[Service]\nExecStart=/bin/sh -c 'echo hello from the unit; exec sleep 600'\n",
        )
        .start()
    else {
        return;
    };
    let out = sb.systemctl(&["start", "hello.service"]);
    assert!(out.status.success(), "{}", stderr(&out));
    eventually("the unit's line in the journal", || {
        journalctl(&sb, &["_SYSTEMD_USER_UNIT=hello.service"]).contains("hello from the unit")
    });
    let verbose = journalctl(&sb, &["-o", "export", "_SYSTEMD_USER_UNIT=hello.service"]);
    assert!(verbose.contains("_SYSTEMD_UNIT=user@"), "{verbose}");
    assert!(
        verbose.contains("_SYSTEMD_CGROUP=/user.slice/user-"),
        "{verbose}"
    );
    let units = sb
        .command("ls")
        .args(["-la", "/run/systemd/units"])
        .output()
        .unwrap();
    assert!(
        verbose.contains("_SYSTEMD_INVOCATION_ID="),
        "{verbose} {}{}",
        stdout(&units),
        stderr(&units)
    );
    // The manager's own messages about the unit carry USER_UNIT= and USER_INVOCATION_ID=.
    eventually("the manager's Started line", || {
        journalctl(&sb, &["--user-unit", "hello.service"]).contains("Started")
    });
    let manager = journalctl(&sb, &["-o", "export", "USER_UNIT=hello.service"]);
    assert!(manager.contains("USER_INVOCATION_ID="), "{manager}");
    // And the manager accounts the unit's memory and tasks.
    let show =
        stdout(&sb.systemctl(&["show", "-p", "MemoryCurrent,TasksCurrent", "hello.service"]));
    assert!(!show.contains("MemoryCurrent=[not set]"), "{show}");
    assert!(!show.contains("TasksCurrent=[not set]"), "{show}");
}

const HELLO: &str =
    "[Unit]\nDescription=Hello\n[Service]\nExecStart=/bin/sh -c 'echo hello from the unit; exec sleep 600'\n";

/// `unitwright --user ARGS` inside the sandbox (where the journal is at its standard path).
fn unitwright(sb: &UserManager, args: &[&str]) -> Output {
    sb.command(env!("CARGO_BIN_EXE_unitwright"))
        .arg("--user")
        .args(args)
        .output()
        .unwrap()
}

fn journal_sandbox(units: &[(&str, &str)]) -> Option<UserManager> {
    let mut b = UserManager::builder().journal(true);
    for (name, contents) in units {
        b = b.unit(name, contents);
    }
    b.start()
}

#[test]
fn status_shows_memory_processes_and_the_last_log_line() {
    let Some(sb) = journal_sandbox(&[
        ("hello.service", HELLO),
        ("idle.service", "[Service]\nExecStart=/bin/sleep 600\n"),
    ]) else {
        return;
    };
    let out = unitwright(&sb, &["start", "hello"]);
    assert!(out.status.success(), "{}", stderr(&out));
    eventually("the line in the journal", || {
        journalctl(&sb, &["--user-unit", "hello.service"]).contains("hello from the unit")
    });
    let out = unitwright(&sb, &["status", "hello"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.starts_with("● hello.service - Hello\n"), "{text}");
    assert!(text.contains("Active: active (running) since "), "{text}");
    assert!(text.contains("Main PID: "), "{text}");
    assert!(text.contains("sleep 600"), "{text}");
    assert!(text.contains("     Memory: "), "{text}");
    assert!(text.contains("      Tasks: "), "{text}");
    assert!(text.contains("     CGroup: /user.slice/user-"), "{text}");
    assert!(
        text.trim_end().ends_with("hello from the unit"),
        "the last line is the unit's last log line: {text}"
    );
    assert!(!text.contains('\x1b'), "no colour in a pipe: {text}");
    // --json: the same numbers.
    let out = unitwright(&sb, &["status", "--json", "hello"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let u = &v[0];
    assert!(u["memory_current_bytes"].as_u64().unwrap() > 0, "{u}");
    assert!(u["tasks_current"].as_u64().unwrap() >= 1, "{u}");
    assert!(u.get("cpu_usage_nsec").is_some() && u.get("effective_cpus").is_some());
    assert!(u["main_pid"].as_u64().unwrap() > 0);
    assert_eq!(
        u["journal"].as_array().unwrap().last().unwrap()["MESSAGE"],
        "hello from the unit"
    );
    // A unit that never started: inactive, exit 3, and no "condition failed" (it was never
    // checked).
    let out = unitwright(&sb, &["status", "idle"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("Active: inactive (dead)"), "{text}");
    assert!(!text.contains("Condition"), "{text}");
}
