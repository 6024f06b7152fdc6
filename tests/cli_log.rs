#![allow(clippy::unwrap_used)]
//! Where `unitwright` logs: plain lines on stderr, or the journal when stderr is the journal
//! stream named by `$JOURNAL_STREAM` (device:inode), and how `-v` raises the level.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

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

/// Runs the CLI in a private mount namespace whose `/run/systemd/journal/socket` is a socket
/// bound by this test, with stderr being the "journal stream"; returns the datagrams received
/// and what reached stderr.
fn journal_records() -> Option<(Vec<String>, String)> {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("journal.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let err_path = dir.path().join("stderr");
    let file = File::create(&err_path).unwrap();
    let meta = file.metadata().unwrap();
    let script = format!(
        "mount -t tmpfs tmpfs /run/systemd 2>/dev/null || {{ mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd; }} \
         && mkdir -p /run/systemd/journal && touch /run/systemd/journal/socket \
         && mount --bind '{}' /run/systemd/journal/socket && exec '{BIN}' -vv --user status nothing.service",
        sock_path.display()
    );
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stderr(file)
        .status()
        .ok()?;
    let err = std::fs::read_to_string(&err_path).unwrap();
    if status.code() != Some(1) {
        eprintln!("namespace setup failed: {err}");
        return None;
    }
    sock.set_nonblocking(true).unwrap();
    let mut records = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = sock.recv(&mut buf) {
        records.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    Some((records, err))
}

#[test]
fn records_go_to_the_journal_with_priority_and_identifier_when_stderr_is_the_journal_stream() {
    let Some((records, err)) = journal_records() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and a private mount namespace (unshare -m as root) is not available"
        );
        eprintln!("SKIPPED: no private mount namespace");
        return;
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
