//! The `unitwright` systemctl-like verbs, run as a binary against a real `systemd --user`
//! (see `tests/support/mod.rs`); states are checked with `systemctl --user` inside the sandbox.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use support::UserManager;

const HELLO: &str = "[Unit]\nDescription=Hello %i\n[Service]\nExecStart=/bin/sleep 600\n";
const BAD: &str = "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\n";

fn unitwright(sb: &UserManager) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unitwright"));
    cmd.envs(sb.client_env()).arg("--user");
    cmd
}

fn run(sb: &UserManager, args: &[&str]) -> Output {
    unitwright(sb).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sandbox() -> Option<UserManager> {
    UserManager::builder()
        .unit("hello@.service", HELLO)
        .unit("bad.service", BAD)
        .unit(
            "cond.service",
            "[Unit]\nConditionPathExists=/nonexistent/unitwright\n[Service]\nExecStart=/bin/sleep 600\n",
        )
        .start()
}

#[test]
fn start_and_stop_change_what_systemctl_sees() {
    let Some(sb) = sandbox() else { return };
    let out = run(&sb, &["start", "hello@one", "hello@two.service"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(sb.is_active("hello@one.service"), "active");
    assert_eq!(sb.is_active("hello@two.service"), "active");
    let out = run(&sb, &["stop", "hello@one"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.is_active("hello@one.service"), "inactive");
    assert_eq!(sb.is_active("hello@two.service"), "active");
    let out = run(&sb, &["restart", "hello@one"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.is_active("hello@one.service"), "active");
    // --timeout 0 waits as long as the job takes.
    let out = run(&sb, &["start", "--timeout", "0", "hello@three"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.is_active("hello@three.service"), "active");
}

#[test]
fn a_failing_unit_exits_1_and_says_what_failed_and_why() {
    let Some(sb) = sandbox() else { return };
    let out = run(&sb, &["start", "bad"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "unitwright: start of bad.service failed: result exit-code, ExecStart exited with status 3\n  \
         more: unitwright --user logs bad.service\n"
    );
    assert_eq!(sb.is_active("bad.service"), "failed");
    // reset-failed clears the failed state.
    let out = run(&sb, &["reset-failed", "bad"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sb.is_active("bad.service"), "inactive");
}

#[test]
fn a_missing_unit_is_an_error_naming_it() {
    let Some(sb) = sandbox() else { return };
    for verb in ["start", "stop", "status", "restart"] {
        let out = run(&sb, &[verb, "no-such-unit"]);
        // systemctl's codes: status 4 ("unknown"), the job verbs 5 ("not installed").
        let code = if verb == "status" { 4 } else { 5 };
        assert_eq!(out.status.code(), Some(code), "{verb}");
        let err = stderr(&out);
        assert!(
            err.contains("no-such-unit.service")
                && err.contains("not found")
                && err.contains("failed"),
            "{verb}: {err}"
        );
    }
}

#[test]
fn one_bad_unit_among_many_fails_the_call_but_not_the_others() {
    let Some(sb) = sandbox() else { return };
    let mut args = vec!["start".to_owned(), "bad".to_owned(), "missing".to_owned()];
    args.extend((1..=20).map(|i| format!("hello@{i}")));
    let out = unitwright(&sb).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("  ")).collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("unitwright: start of bad.service failed: result exit-code"));
    assert!(lines[1].contains("missing.service not found"));
    for i in 1..=20 {
        assert_eq!(sb.is_active(&format!("hello@{i}.service")), "active");
    }
}

#[test]
fn a_condition_skipped_start_succeeds_with_a_note() {
    let Some(sb) = sandbox() else { return };
    let out = run(&sb, &["start", "cond"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("did not start: a Condition*= was not met"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.is_active("cond.service"), "inactive");
}

#[test]
fn json_output_of_jobs_status_and_list_is_parseable_and_complete() {
    let Some(sb) = sandbox() else { return };
    let out = run(&sb, &["start", "--json", "hello@j", "bad", "cond"]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["after_start"], "active");
    assert_eq!(lines[1]["after_start"], serde_json::Value::Null, "not done");
    assert_eq!(lines[2]["unit"], "cond.service");
    assert_eq!(lines[2]["success"], true);
    assert_eq!(lines[2]["condition_failed"], true);
    assert_eq!(lines[2]["after_start"], "skipped");
    assert_eq!(lines[0]["unit"], "hello@j.service");
    assert_eq!(lines[0]["result"], "done");
    assert_eq!(lines[0]["success"], true);
    assert_eq!(lines[0]["active_state"], "active", "read after a start");
    assert_eq!(
        lines[0]["sub_state"],
        serde_json::Value::Null,
        "not read for a unit that is up"
    );
    assert_eq!(lines[1]["unit"], "bad.service");
    assert_eq!(lines[1]["result"], "failed");
    assert_eq!(lines[1]["success"], false);
    assert_eq!(lines[1]["service_result"], "exit-code");
    assert_eq!(lines[1]["exec_main_status"], 3);

    let out = run(&sb, &["status", "--json", "hello@j"]);
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["unit"], "hello@j.service");
    assert_eq!(status[0]["description"], "Hello j");
    assert_eq!(status[0]["active_state"], "active");
    assert_eq!(status[0]["sub_state"], "running");
    assert!(status[0]["main_pid"].as_u64().unwrap() > 0);

    let out = run(&sb, &["list", "--json", "hello@*"]);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["unit"], "hello@j.service");
    assert_eq!(list[0]["active_state"], "active");

    // --type as systemctl's: repeatable or comma-separated; an unknown type is a usage error.
    let names = |args: &[&str]| -> Vec<String> {
        let out = run(&sb, args);
        assert!(out.status.success(), "{}", stderr(&out));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|u| u["unit"].as_str().unwrap().to_owned())
            .collect()
    };
    let services = names(&["list", "--json", "--type", "service"]);
    assert!(
        services.contains(&"hello@j.service".to_owned()),
        "{services:?}"
    );
    assert!(
        services.iter().all(|u| u.ends_with(".service")),
        "{services:?}"
    );
    let mixed = names(&["list", "--json", "-t", "slice,target"]);
    assert!(mixed.iter().any(of("target")), "{mixed:?}");
    assert!(mixed.iter().any(of("slice")), "{mixed:?}");
    assert!(!mixed.iter().any(of("service")), "{mixed:?}");
    let out = run(&sb, &["list", "--type", "services"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the types are service, mount"),
        "{}",
        stderr(&out)
    );
}

/// Whether a unit name is of type `t` (`of("service")`).
fn of(t: &'static str) -> impl Fn(&String) -> bool {
    move |u| u.rsplit_once('.').is_some_and(|(_, x)| x == t)
}

#[test]
fn kill_sends_the_signal_to_the_units_processes() {
    let Some(sb) = sandbox() else { return };
    assert!(run(&sb, &["start", "hello@k"]).status.success());
    let out = run(
        &sb,
        &[
            "kill",
            "--signal",
            "SIGKILL",
            "--kill-whom",
            "main",
            "hello@k",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The manager notices the death asynchronously; `status` then shows the signal.
    let mut status = String::new();
    for _ in 0..500 {
        status = String::from_utf8_lossy(&run(&sb, &["status", "hello@k"]).stdout).into_owned();
        if status.contains("killed by signal KILL") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(status.contains("Result: signal"), "{status}");
    let out = run(&sb, &["kill", "--signal", "BOGUS", "hello@k"]);
    assert_eq!(out.status.code(), Some(2), "a bad signal is a usage error");
}

#[test]
fn enable_and_disable_report_their_symlinks_and_reload() {
    let Some(sb) = UserManager::builder()
        .unit("boot.service", support::INSTALLABLE_SERVICE)
        .start()
    else {
        return;
    };
    let out = run(&sb, &["enable", "boot"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("Created symlink "),
        "{}",
        stderr(&out)
    );
    let is_enabled = sb.systemctl(&["is-enabled", "boot.service"]);
    assert_eq!(
        String::from_utf8_lossy(&is_enabled.stdout).trim(),
        "enabled"
    );
    let out = run(&sb, &["disable", "boot"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("Removed "), "{}", stderr(&out));
}

#[test]
fn reload_picks_up_a_changed_unit_file() {
    let Some(sb) = sandbox() else { return };
    sb.write_unit(
        "late.service",
        "[Unit]\nDescription=before\n[Service]\nExecStart=/bin/sleep 600\n",
    );
    assert!(run(&sb, &["start", "late"]).status.success());
    sb.write_unit(
        "late.service",
        "[Unit]\nDescription=after\n[Service]\nExecStart=/bin/sleep 600\n",
    );
    let out = run(&sb, &["reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&sb, &["status", "--json", "late"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["description"], "after");
}

#[test]
fn status_exits_like_systemctl_status() {
    let Some(sb) = sandbox() else { return };
    assert!(run(&sb, &["start", "hello@up"]).status.success());
    let _ = run(&sb, &["start", "bad"]);
    // (units, exit status), each checked against systemctl in the same sandbox: 0 when all
    // are active, 3 when one is not, 4 when one does not exist; the first such unit decides.
    let cases: &[(&[&str], i32)] = &[
        (&["hello@up"], 0),
        (&["hello@down"], 3),
        (&["bad"], 3),
        (&["nope"], 4),
        (&["hello@up", "hello@down"], 3),
        (&["hello@down", "nope"], 3),
        (&["nope", "hello@down"], 4),
        (&["hello@up", "nope"], 4),
    ];
    for (units, code) in cases {
        let mut args = vec!["status"];
        args.extend_from_slice(units);
        assert_eq!(run(&sb, &args).status.code(), Some(*code), "{units:?}");
        let mut theirs = vec!["status"];
        theirs.extend_from_slice(units);
        assert_eq!(
            sb.systemctl(&theirs).status.code(),
            Some(*code),
            "systemctl {units:?}"
        );
    }
}

#[test]
fn no_block_returns_once_the_job_is_queued() {
    let Some(sb) = UserManager::builder()
        .unit("forever.service", support::ENDLESS_ONESHOT)
        .unit("hello@.service", HELLO)
        .start()
    else {
        return;
    };
    // Waiting would take 600 s; --no-block returns with the queued job.
    let out = run(&sb, &["start", "--no-block", "--json", "forever"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["result"], serde_json::Value::Null);
    assert!(line["job"]
        .as_str()
        .unwrap()
        .starts_with("/org/freedesktop/systemd1/job/"));
    // Without --json it prints the job path, which `wait` accepts.
    let out = run(&sb, &["start", "--no-block", "hello@nb"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let job = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(job.starts_with("/org/freedesktop/systemd1/job/"), "{job}");
    let out = run(&sb, &["wait", &job]);
    assert!(out.status.success(), "{}", stderr(&out));
    // --timeout bounds the wait when blocking; the job keeps running in the manager, and
    // that is its own outcome: exit 124, "timed out", the job named, never "failed".
    let out = run(&sb, &["restart", "--timeout", "0.5", "--json", "forever"]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("restart of forever.service timed out: not finished after 0.5 s")
            && !err.contains("failed"),
        "{err}"
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["timed_out"], true);
    assert!(line["job"]
        .as_str()
        .unwrap()
        .starts_with("/org/freedesktop/systemd1/job/"));
    // `wait` on a unit with a time limit: the same outcome.
    let out = run(&sb, &["wait", "--timeout", "0.5", "forever"]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
}

#[test]
fn a_timeout_while_connecting_says_so_and_names_no_job() {
    // A socket that accepts connections and never answers: the bus handshake stalls.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_unitwright"))
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", path.display()),
        )
        .args(["--user", "start", "--timeout", "1", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "unitwright: connecting to the bus timed out: no answer within 1 s\n"
    );
}

/// A service whose start takes 30 s (an image pull, a migration): longer than any fixed
/// client timeout used to be.
const SLOW: &str = "[Service]\nExecStartPre=/bin/sleep 30\nExecStart=/bin/sleep 600\n";

#[test]
fn a_slow_start_is_waited_for_with_a_progress_line_on_a_terminal_only() {
    let Some(sb) = UserManager::builder().unit("slow.service", SLOW).start() else {
        return;
    };
    // In a pipe, with --timeout 2: exit 124, no progress line (no escape sequence).
    let out = run(&sb, &["start", "--timeout", "2", "slow"]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(!stderr(&out).contains('\x1b'), "{:?}", stderr(&out));
    assert_eq!(sb.is_active("slow.service"), "activating");
    let out = run(&sb, &["stop", "slow"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Under a pseudo-terminal (script(1)): the whole 30 s start is waited for and succeeds,
    // with a progress line naming the state and the running command, erased at the end.
    let bin = env!("CARGO_BIN_EXE_unitwright");
    let text = support::on_a_terminal(&format!("'{bin}' --user start slow"), sb.client_env());
    assert!(text.contains("EXIT=0"), "{text:?}");
    assert!(
        text.contains("slow.service: activating (start-pre) /bin/sleep 30"),
        "{text:?}"
    );
    // Erased: the last thing before the exit status is the erase sequence.
    let before_exit = text.split("EXIT=").next().unwrap();
    assert!(before_exit.trim_end().ends_with("\x1b[J"), "{text:?}");
    assert_eq!(sb.is_active("slow.service"), "active");
}

#[test]
fn watch_prints_one_line_per_change_until_interrupted() {
    let Some(sb) = sandbox() else { return };
    let mut watch = unitwright(&sb)
        .args(["watch", "--json", "hello@w*"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is subscribed (it says so on stderr), then cause changes.
    let mut err = BufReader::new(watch.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("watching"), "{line}");
    assert!(run(&sb, &["start", "hello@w1", "hello@other"])
        .status
        .success());
    let mut out = BufReader::new(watch.stdout.take().unwrap());
    // systemd coalesces changes; read until the running state shows up.
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "watch ended early");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["unit"], "hello@w1.service",
            "only matching units are reported"
        );
        assert!(["new", "changed", "removed"].contains(&v["event"].as_str().unwrap()));
        // Each change carries the time it was seen (RFC 3339, UTC).
        let time = v["time"].as_str().unwrap();
        assert!(
            time.len() >= 20 && time.ends_with('Z') && time.contains('T'),
            "{v}"
        );
        if v["event"] == "changed" && v["active_state"] == "active" {
            assert_eq!(v["sub_state"], "running");
            break;
        }
    }
    Command::new("kill")
        .args(["-INT", &watch.id().to_string()])
        .status()
        .unwrap();
    assert!(
        watch.wait().unwrap().success(),
        "an interrupt ends watch with status 0"
    );
}

#[test]
fn usage_errors_exit_2() {
    let Some(sb) = sandbox() else { return };
    assert_eq!(run(&sb, &["start"]).status.code(), Some(2));
    assert_eq!(
        run(&sb, &["start", "--job-mode", "bogus", "x"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn reload_with_units_runs_their_exec_reload() {
    let Some(sb) = sandbox() else { return };
    let marker = sb.root.path().join("reloaded");
    sb.write_unit(
        "reloadable.service",
        &format!(
            "[Service]\nExecStart=/bin/sleep 600\nExecReload=/bin/touch {}\n",
            marker.display()
        ),
    );
    assert!(run(&sb, &["reload"]).status.success());
    assert!(run(&sb, &["start", "reloadable"]).status.success());
    let out = run(&sb, &["reload", "reloadable"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(marker.exists(), "ExecReload= ran");
    // A unit without ExecReload= cannot be reloaded: the manager refuses the job.
    assert!(run(&sb, &["start", "hello@r"]).status.success());
    let out = run(&sb, &["reload", "hello@r"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("reload of hello@r.service failed"),
        "{}",
        stderr(&out)
    );
}
