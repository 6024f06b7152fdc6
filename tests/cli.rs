//! The command-line contract: exit 0 on success, 1 on failure, 2 on a usage error; `--help` and
//! `--version` succeed; failures are reported as `unitwright: <what failed>: <why>`.
//! `unitwright escape` is the documented exception: it is systemd-escape, exit codes included
//! (1 for its usage errors too).

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn unitwright(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unitwright"))
        .args(args)
        .env_remove("JOURNAL_STREAM")
        .output()
        .expect("unitwright runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn help_and_version_exit_zero() {
    for args in [&["--help"][..], &["-h"], &["--version"], &["-V"], &["help"]] {
        let o = unitwright(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(!o.stdout.is_empty(), "{args:?} printed nothing");
    }
    assert!(stdout(&unitwright(&["--version"])).starts_with("unitwright "));
}

#[test]
fn usage_errors_exit_two() {
    for args in [
        &["no-such-command"][..],
        &["--no-such-option"],
        &[],
        &["render"],
    ] {
        let o = unitwright(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn failures_exit_one_with_what_and_why() {
    let o = unitwright(&["render", "/nonexistent/unitwright-test/template.tera"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let message = stderr(&o);
    let line = message.lines().last().unwrap_or_default();
    let rest = line
        .strip_prefix("unitwright: ")
        .unwrap_or_else(|| panic!("{message:?}"));
    let (what, why) = rest
        .split_once(": ")
        .unwrap_or_else(|| panic!("{message:?}"));
    assert!(!what.is_empty() && !why.is_empty(), "{message:?}");
}

#[test]
fn escape_succeeds_with_exit_zero() {
    let o = unitwright(&["escape", "--path", "/home/user name"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "home-user\\x20name\n")
    );
    let o = unitwright(&["escape", "--template=console@.service", "web/1"]);
    assert_eq!(stdout(&o), "console@web-1.service\n");
}

#[test]
fn escape_owns_its_options_including_help_and_version() {
    let o = unitwright(&["escape", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("unitwright escape [OPTIONS...]"));
    let o = unitwright(&["escape", "-h"]);
    assert_eq!(o.status.code(), Some(0));
    let o = unitwright(&["escape", "--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("unitwright "));
    // Global options of other commands are plain operands after `--`, and unknown otherwise.
    let o = unitwright(&["escape", "--", "-v", "--user"]);
    assert_eq!(stdout(&o), "\\x2dv \\x2d\\x2duser\n");
    let o = unitwright(&["escape", "-v"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "unitwright escape: invalid option -- 'v'\n");
}

#[test]
fn escape_failures_exit_one_like_systemd_escape() {
    let o = unitwright(&["escape", "--unescape", "a", "b\\x", "c"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "a");
    assert_eq!(stderr(&o), "Failed to unescape string: Invalid argument\n");
    let o = unitwright(&["escape"]);
    assert_eq!(
        (o.status.code(), stderr(&o).as_str()),
        (Some(1), "Not enough arguments.\n")
    );
}

#[test]
fn escape_after_global_options_still_works() {
    let o = unitwright(&["--user", "escape", "a/b"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "a-b\n"));
}

/// Each stderr line is one write(2), so that the lines of processes sharing a stderr never
/// interleave (strace counts the writes to fd 2; `eprintln!` made 14 of one line).
#[test]
fn each_stderr_line_is_written_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let run = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=write", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_unitwright"))
        .args(["--user", "start", "x", "y"])
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("JOURNAL_STREAM")
        .output();
    let out = match run {
        Ok(out) => out,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and strace cannot run: {e}")
        }
        Err(e) => {
            eprintln!("!!! SKIPPING: strace cannot run: {e} (with CI=true this test would fail)");
            return;
        }
    };
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = stderr(&out).lines().count();
    let writes = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter(|l| l.contains("write(2,"))
        .count();
    assert!(lines >= 1, "{}", stderr(&out));
    assert_eq!(
        writes,
        lines,
        "{}",
        std::fs::read_to_string(&trace).unwrap()
    );
}
