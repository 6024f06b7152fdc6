#![allow(clippy::unwrap_used)]
//! The sandbox inside a container, as a CI job runs it: `podman run --privileged` of a Debian
//! image built locally from Debian's packages (`tests/container/build-image.sh`, no registry),
//! whose PID 1 is the job's command, not systemd. The unitwright binary of this build is
//! bind-mounted into it (`tests/container/run.sh`). `unitwright sandbox` (user, system, with a
//! journal) and the shell rig over it (`tests/sandbox/user-manager.sh`) run there.
//!
//! Each test runs one script in a fresh container and checks its exit status: the script ends
//! with `exit 7` only when every step before it passed (`set -e`), so 7 proves both that the
//! steps worked and that the command's status comes back through the sandbox and podman.
//!
//! Needs root, podman and mmdebstrap (packaging/install-build-deps.sh). The first run builds
//! the image (a minute or two; README, "Testing your units in CI"), later runs reuse it until
//! build-image.sh changes. Without them the tests skip loudly; with CI=true they fail.

use std::path::Path;
use std::process::{Command, Output};

/// The status a script exits with when all its checks passed.
const PASSED: i32 = 7;

fn missing_tools() -> Vec<&'static str> {
    ["podman", "mmdebstrap", "flock"]
        .into_iter()
        .filter(|p| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {p}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect()
}

/// Runs `command` via tests/container/run.sh, or `None` (skip) when the machine cannot run
/// containers and CI is not set.
fn in_container(env: &[(&str, &str)], command: &[&str]) -> Option<Output> {
    let missing = missing_tools();
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !missing.is_empty() || !is_root {
        let why = format!(
            "missing {missing:?}, root: {is_root} (packaging/install-build-deps.sh installs the tools)"
        );
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and the container cannot be set up: {why}"
        );
        eprintln!("\n!!! SKIPPING: the container cannot be set up: {why}\n");
        return None;
    }
    let run = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/container/run.sh");
    let output = Command::new(run)
        .args(command)
        .env("UNITWRIGHT", env!("CARGO_BIN_EXE_unitwright"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Some(output)
}

fn assert_passed(output: &Output, expect: &[&str]) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(PASSED),
        "the script in the container did not pass\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for e in expect {
        assert!(
            stdout.contains(e),
            "{e:?} missing\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}

/// The user-manager steps that every variant runs: a unit started and checked with unitwright
/// (over the session bus) and with systemctl (inside the sandbox's namespaces).
const USER_SCRIPT: &str = r#"set -e
printf '[Service]\nExecStart=/bin/sh -c "echo hello-from-unit; exec sleep 600"\n' \
  > "$XDG_RUNTIME_DIR/systemd/user/uw-hello.service"
$SANDBOX_SYSTEMCTL daemon-reload
unitwright --user start uw-hello.service
unitwright --user status uw-hello.service
$SANDBOX_SYSTEMCTL is-active uw-hello.service
test "$(cat /proc/1/comm)" != systemd
echo "pid1=$(cat /proc/1/comm)"
exit 7
"#;

#[test]
fn user_manager_rig_runs_unitwright_and_systemctl_in_a_privileged_container() {
    let Some(out) = in_container(
        &[],
        &["tests/sandbox/user-manager.sh", "sh", "-c", USER_SCRIPT],
    ) else {
        return;
    };
    assert_passed(&out, &["Active: active (running)", "\nactive\n", "pid1="]);
}

#[test]
fn user_manager_rig_with_journal_records_user_units_in_a_container() {
    let script = USER_SCRIPT.replace(
        "exit 7",
        r#"i=0; until journalctl -D "$SANDBOX_JOURNAL" _SYSTEMD_USER_UNIT=uw-hello.service -o cat | grep -q hello-from-unit; do
  i=$((i+1)); [ $i -lt 100 ]; sleep 0.1
done
echo journal-has-the-line
exit 7"#,
    );
    let Some(out) = in_container(
        &[("UW_PODMAN_OPTS", "-e UW_JOURNAL=1")],
        &["tests/sandbox/user-manager.sh", "sh", "-c", &script],
    ) else {
        return;
    };
    assert_passed(&out, &["Active: active (running)", "journal-has-the-line"]);
}

/// What COMMAND of `unitwright sandbox` runs in both scopes: a unit written to the sandbox's
/// unit directory, started with unitwright (over the sandbox's bus) and checked with the
/// systemctl on COMMAND's PATH (which runs inside the sandbox's namespaces).
const SANDBOX_SCRIPT: &str = r#"set -e
printf '[Service]\nExecStart=/bin/sleep 600\n' > "$UNITWRIGHT_SANDBOX_UNITS/uw-hello.service"
systemctl "$SCOPE" daemon-reload
unitwright "$SCOPE" start uw-hello.service
unitwright "$SCOPE" status uw-hello.service
systemctl "$SCOPE" is-active uw-hello.service
test "$(cat /proc/1/comm)" != systemd
echo "pid1=$(cat /proc/1/comm)"
exit 7
"#;

fn sandbox_in_container(scope: &str, extra: &[&str]) {
    let mut command = vec!["unitwright", "sandbox", scope];
    command.extend_from_slice(extra);
    command.extend_from_slice(&["--", "sh", "-c", SANDBOX_SCRIPT]);
    let opts = format!("-e SCOPE={scope}");
    let Some(out) = in_container(&[("UW_PODMAN_OPTS", &opts)], &command) else {
        return;
    };
    assert_passed(
        &out,
        &["Active: active (running)", "\nactive\n", "pid1=unitwright"],
    );
}

#[test]
fn unitwright_sandbox_user_runs_unitwright_and_systemctl_in_a_privileged_container() {
    sandbox_in_container("--user", &[]);
}

#[test]
fn unitwright_sandbox_system_runs_unitwright_and_systemctl_in_a_privileged_container() {
    sandbox_in_container("--system", &[]);
}

#[test]
fn unitwright_sandbox_user_with_journal_in_a_privileged_container() {
    sandbox_in_container("--user", &["--journal"]);
}
