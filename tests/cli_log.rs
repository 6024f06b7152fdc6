#![allow(clippy::unwrap_used)]
//! Where `unitwright` logs: plain lines on stderr, or the journal when stderr is the journal
//! stream named by `$JOURNAL_STREAM` (device:inode), and how `-v` raises the level.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use support::UserManager;

#[path = "support/mod.rs"]
mod support;

const BIN: &str = env!("CARGO_BIN_EXE_unitwright");

/// Runs a command that fails quickly without a bus, with stderr going to a file; returns the
/// file's content.
fn stderr_of(verbose: &str, journal_stream_matches: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stderr");
    let file = File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .args([verbose, "--user", "status", "nothing.service"])
        .stderr(file);
    if journal_stream_matches {
        cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    } else {
        cmd.env(
            "JOURNAL_STREAM",
            format!("{}:{}", meta.dev(), meta.ino() + 1),
        );
    }
    let status = cmd.status().unwrap();
    assert_eq!(status.code(), Some(1));
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn debug_records_go_to_stderr_with_vv_when_stderr_is_not_the_journal() {
    let err = stderr_of("-vv", false);
    assert!(err.contains("unitwright: debug: unitwright "), "{err}");
    let quiet = stderr_of("-v", false);
    assert!(!quiet.contains("debug:"), "{quiet}");
}

#[test]
fn without_a_reachable_journal_records_stay_on_stderr() {
    // No journald on this stream's socket path: the logger falls back to stderr.
    if std::path::Path::new("/run/systemd/journal/socket").exists() {
        eprintln!("SKIPPED: a journal socket exists on this machine");
        return;
    }
    let err = stderr_of("-vv", true);
    assert!(err.contains("unitwright: debug: "), "{err}");
}

/// Runs the CLI with `args` and extra `env` in a private mount namespace whose
/// `/run/systemd/journal/socket` is a socket bound by this test, with stderr being the "journal
/// stream"; returns the datagrams received, what reached stderr and the exit code (`None` if
/// the namespace cannot be set up).
fn journal_records_of(
    args: &[&str],
    env: &[(&'static str, OsString)],
) -> Option<(Vec<String>, String, Option<i32>)> {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("journal.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let err_path = dir.path().join("stderr");
    let file = File::create(&err_path).unwrap();
    let meta = file.metadata().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "mount -t tmpfs tmpfs /run/systemd 2>/dev/null || {{ mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd; }} \
         && mkdir -p /run/systemd/journal && touch /run/systemd/journal/socket \
         && mount --bind '{}' /run/systemd/journal/socket && echo ready > '{}' && exec '{BIN}' \"$@\"",
        sock_path.display(),
        ready.display()
    );
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stderr(file)
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?;
    let err = std::fs::read_to_string(&err_path).unwrap();
    if std::fs::read_to_string(&ready).unwrap_or_default().trim() != "ready" {
        eprintln!("namespace setup failed: {err}");
        return None;
    }
    sock.set_nonblocking(true).unwrap();
    let mut records = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = sock.recv(&mut buf) {
        records.push(native_fields(&buf[..n]));
    }
    Some((records, err, status.code()))
}

/// A datagram of the journal's native protocol as `KEY=value` lines: a field is either
/// `KEY=value\n` or `KEY\n`, a 64-bit little-endian length, the value and `\n`.
fn native_fields(mut data: &[u8]) -> String {
    let mut text = String::new();
    while let Some(nl) = data.iter().position(|&b| b == b'\n') {
        let line = &data[..nl];
        data = &data[nl + 1..];
        if line.contains(&b'=') {
            text.push_str(&String::from_utf8_lossy(line));
        } else {
            let len = u64::from_le_bytes(data[..8].try_into().unwrap());
            let len = usize::try_from(len).unwrap();
            let value = &data[8..8 + len];
            data = &data[8 + len + 1..];
            text.push_str(&String::from_utf8_lossy(line));
            text.push('=');
            text.push_str(&String::from_utf8_lossy(value));
        }
        text.push('\n');
    }
    text
}

/// [`journal_records_of`] for a command that fails quickly without a bus.
fn journal_records() -> Option<(Vec<String>, String)> {
    let (records, err, code) =
        journal_records_of(&["-vv", "--user", "status", "nothing.service"], &[])?;
    assert_eq!(code, Some(1), "{err}");
    Some((records, err))
}

/// Skips (or fails with `CI=true`) when no private mount namespace can be made.
fn no_namespace() {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and a private mount namespace (unshare -m as root) is not available"
    );
    eprintln!("SKIPPED: no private mount namespace");
}

#[test]
fn records_go_to_the_journal_with_priority_and_identifier_when_stderr_is_the_journal_stream() {
    let Some((records, err)) = journal_records() else {
        return no_namespace();
    };
    let debug = records
        .iter()
        .find(|r| r.contains("unitwright 0.1.0: "))
        .unwrap_or_else(|| panic!("no debug record in {records:?}"));
    let fields: Vec<&str> = debug.lines().collect();
    // systemd-journal-logger's mapping: error 3, warn 4, info 5, debug 6, trace 7.
    assert!(fields.contains(&"PRIORITY=6"), "{debug}");
    assert!(fields.contains(&"SYSLOG_IDENTIFIER=unitwright"), "{debug}");
    assert!(!err.contains("debug:"), "{err}");
    // The failure itself is still reported on stderr (the journal stream keeps it).
    assert!(err.starts_with("unitwright: "), "{err}");
}

/// The debug record of the parsed command names the `--set` key, and neither a record nor
/// stderr holds its `value`.
fn assert_command_logged_without_the_value(records: &[String], err: &str, key: &str, value: &str) {
    assert!(
        records
            .iter()
            .any(|r| r.contains(&format!("set_keys: [\"{key}\"]"))),
        "no debug record of the command: {records:?}"
    );
    assert!(
        records.iter().all(|r| !r.contains(value)) && !err.contains(value),
        "a value was logged: {records:?} {err}"
    );
}

/// The records (of `records`) that have the field line `field`.
fn with_field<'a>(records: &'a [String], field: &str) -> Vec<&'a str> {
    records
        .iter()
        .filter(|r| r.lines().any(|l| l == field))
        .map(String::as_str)
        .collect()
}

#[test]
fn job_results_and_instances_reach_the_journal_with_unit_and_instance_fields() {
    let Some(m) = UserManager::builder()
        .unit(
            "lg-ok.service",
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
        )
        .unit(
            "lg-bad.service",
            "[Service]\nType=oneshot\nExecStart=/bin/false\n",
        )
        // The template reads its settings (a template that does not is refused).
        .unit(
            "lg@.service",
            &format!("[Service]\nExecStart=:{BIN} instance exec --settings-dir=%t/unitwright/instances %n -- /bin/sleep 600\n"),
        )
        .start()
    else {
        return;
    };
    let env = m.client_env();
    let Some((records, err, code)) = journal_records_of(
        &["--user", "start", "lg-ok.service", "lg-bad.service"],
        &env,
    ) else {
        return no_namespace();
    };
    assert_eq!(code, Some(1), "{err}");
    let ok = with_field(&records, "UNITWRIGHT_UNIT=lg-ok.service");
    assert_eq!(ok.len(), 1, "{records:?}");
    for field in [
        "PRIORITY=5",
        "UNITWRIGHT_JOB=start",
        "UNITWRIGHT_RESULT=done",
    ] {
        assert!(ok[0].lines().any(|l| l == field), "{field} in {}", ok[0]);
    }
    let bad = with_field(&records, "UNITWRIGHT_UNIT=lg-bad.service");
    assert_eq!(bad.len(), 1, "{records:?}");
    for field in [
        "PRIORITY=3",
        "UNITWRIGHT_JOB=start",
        "UNITWRIGHT_RESULT=failed",
    ] {
        assert!(bad[0].lines().any(|l| l == field), "{field} in {}", bad[0]);
    }
    assert!(
        bad[0].contains("MESSAGE=start of lg-bad.service failed: "),
        "{}",
        bad[0]
    );
    // Stderr is the journal: the failure is not written there a second time.
    assert!(!err.contains("lg-bad.service"), "{err}");

    // An instance: its unit and id, never the value of a setting (even at debug level).
    let secret = "hunter2-secret";
    let set = format!("TOKEN={secret}");
    let (records, err, code) = journal_records_of(
        &[
            "-v",
            "--user",
            "instance",
            "start",
            "lg@.service",
            "node 1",
            "--set",
            &set,
        ],
        &env,
    )
    .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let started = with_field(&records, "UNITWRIGHT_INSTANCE=node 1");
    assert_eq!(started.len(), 1, "{records:?}");
    assert!(
        started[0]
            .lines()
            .any(|l| l == "UNITWRIGHT_UNIT=lg@node\\x201.service"),
        "{}",
        started[0]
    );
    assert_command_logged_without_the_value(&records, &err, "TOKEN", secret);
    let (records, err, code) = journal_records_of(
        &["--user", "instance", "stop", "lg@.service", "node 1"],
        &env,
    )
    .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let stopped = with_field(&records, "UNITWRIGHT_INSTANCE=node 1");
    assert_eq!(stopped.len(), 1, "{records:?}");
    assert!(
        stopped[0].contains("MESSAGE=stopped lg@node\\x201.service"),
        "{}",
        stopped[0]
    );
}

#[test]
fn a_failed_job_is_reported_once_on_stderr_when_stderr_is_not_the_journal() {
    let Some(m) = UserManager::builder()
        .unit(
            "lg-bad.service",
            "[Service]\nType=oneshot\nExecStart=/bin/false\n",
        )
        .start()
    else {
        return;
    };
    let out = Command::new(BIN)
        .env_clear()
        .envs(m.client_env())
        .args(["-v", "--user", "start", "lg-bad.service"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Once; the indented lines under it are the explanation (its output, the logs command).
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("lg-bad.service") && !l.starts_with("  "))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("unitwright: start of lg-bad.service failed: "),
        "{err}"
    );
}

#[test]
fn a_rendered_file_reaches_the_journal_with_template_and_path_but_no_values() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("web.service.tera");
    std::fs::write(
        &template,
        "[Service]\nExecStart=/bin/echo {{ token | exec_arg }}\n",
    )
    .unwrap();
    let output = dir.path().join("web.service");
    let secret = "hunter2-render";
    let set = format!("token={secret}");
    let Some((records, err, code)) = journal_records_of(
        &[
            "-v",
            "render",
            template.to_str().unwrap(),
            "--set",
            &set,
            "-o",
            output.to_str().unwrap(),
        ],
        &[],
    ) else {
        return no_namespace();
    };
    assert_eq!(code, Some(0), "{err}");
    assert!(std::fs::read_to_string(&output).unwrap().contains(secret));
    let rendered = with_field(&records, &format!("UNITWRIGHT_PATH={}", output.display()));
    assert_eq!(rendered.len(), 1, "{records:?}");
    assert!(
        rendered[0]
            .lines()
            .any(|l| l == format!("UNITWRIGHT_TEMPLATE={}", template.display())),
        "{}",
        rendered[0]
    );
    assert_command_logged_without_the_value(&records, &err, "token", secret);
}
