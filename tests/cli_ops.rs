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
    eventually("the unit's and the manager's lines in the journal", || {
        let j = journalctl(&sb, &["--user-unit", "hello.service"]);
        j.contains("hello from the unit") && j.contains("Started")
    });
    let last = journalctl(
        &sb,
        &["--user-unit", "hello.service", "-n", "1", "-o", "cat"],
    );
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
        text.trim_end().ends_with(last.trim_end()),
        "the last line is the unit's last log line ({last}): {text}"
    );
    assert!(text.contains(": hello from the unit\n"), "{text}");
    assert!(!text.contains('\x1b'), "no colour in a pipe: {text}");
    // --json: the same numbers.
    let out = unitwright(&sb, &["status", "--json", "hello"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let u = &v[0];
    assert!(u["memory_current_bytes"].as_u64().unwrap() > 0, "{u}");
    assert!(u["tasks_current"].as_u64().unwrap() >= 1, "{u}");
    assert!(u.get("cpu_usage_nsec").is_some() && u.get("effective_cpus").is_some());
    assert!(u["main_pid"].as_u64().unwrap() > 0);
    assert!(
        u["journal"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["MESSAGE"] == "hello from the unit"),
        "{u}"
    );
    // A unit that never started: inactive, exit 3, and no "condition failed" (it was never
    // checked).
    let out = unitwright(&sb, &["status", "idle"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("Active: inactive (dead)"), "{text}");
    assert!(!text.contains("Condition"), "{text}");
}

/// An isolated podman storage and configuration (vfs under `dir`; runc and explicit ulimits,
/// as podman 4.3.1 needs here), as environment for the manager and its services.
fn podman_env(dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    std::fs::write(
        dir.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/g\"\nrunroot = \"{0}/r\"\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("containers.conf"),
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n[engine]\nruntime = \"runc\"\n",
    )
    .unwrap();
    vec![
        ("CONTAINERS_CONF".into(), dir.join("containers.conf")),
        ("CONTAINERS_STORAGE_CONF".into(), dir.join("storage.conf")),
    ]
}

#[test]
fn a_failing_podman_start_shows_podmans_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = UserManager::builder().journal(true).unit(
        "web.service",
        "[Service]\nExecStart=/usr/bin/podman run --rm --pull=never --name uw-ops-web localhost/uw-ops-missing:latest\n\
         Type=oneshot\n",
    );
    for (k, v) in podman_env(dir.path()) {
        b = b.env(k, v);
    }
    let Some(sb) = b.start() else { return };
    let out = unitwright(&sb, &["start", "web"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let mut lines = err.lines();
    assert_eq!(
        lines.next().unwrap(),
        "unitwright: start of web.service failed: result exit-code, ExecStart exited with status 125"
    );
    assert!(
        err.contains("podman[") && err.contains("localhost/uw-ops-missing:latest: image not known"),
        "{err}"
    );
    assert!(
        err.trim_end()
            .ends_with("more: unitwright --user logs web.service"),
        "{err}"
    );
    // --json carries the same lines.
    let out = unitwright(&sb, &["start", "--json", "web"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let output = v["output"].as_array().unwrap();
    assert!(
        output
            .iter()
            .any(|l| l.as_str().unwrap().ends_with("image not known")),
        "{v}"
    );
}

#[test]
fn a_failed_dependency_is_named_with_its_output() {
    let Some(sb) = journal_sandbox(&[
        (
            "app.service",
            "[Unit]\nRequires=db.service\nAfter=db.service\n[Service]\nExecStart=/bin/sleep 600\n",
        ),
        (
            "db.service",
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo db: cannot open /var/lib/db >&2; exit 4'\n",
        ),
    ]) else {
        return;
    };
    let out = unitwright(&sb, &["start", "app"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let first = err.lines().next().unwrap();
    assert!(
        first.starts_with("unitwright: start of app.service failed: result dependency")
            && first.contains(
                "failed dependency: db.service (failed (failed), result exit-code, ExecStart exited with status 4)"
            ),
        "{err}"
    );
    assert!(err.contains("db: cannot open /var/lib/db"), "{err}");
    assert!(
        err.contains("more: unitwright --user logs db.service"),
        "{err}"
    );
}

#[test]
fn logs_reads_a_units_records_natively() {
    let Some(sb) = journal_sandbox(&[(
        "count.service",
        "[Service]\nExecStart=/bin/sh -c 'for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; exec sleep 600'\n",
    )]) else {
        return;
    };
    let out = unitwright(&sb, &["start", "count"]);
    assert!(out.status.success(), "{}", stderr(&out));
    eventually("the last line in the journal", || {
        let j = journalctl(&sb, &["--user-unit", "count.service"]);
        j.contains("oops") && j.contains("Started")
    });
    // All records, like journalctl --user-unit, the same lines in the same order.
    let out = unitwright(&sb, &["logs", "count"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ours: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.split_once(": ").unwrap().1.to_owned())
        .collect();
    let theirs: Vec<String> = journalctl(&sb, &["--user-unit", "count.service", "-o", "cat"])
        .lines()
        .map(ToOwned::to_owned)
        .collect();
    assert_eq!(ours, theirs);
    assert!(ours.contains(&"line 3".to_owned()), "{ours:?}");
    // -n 2: the last two.
    let out = unitwright(&sb, &["logs", "-n", "2", "count.service"]);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 2, "{text}");
    let last_two: Vec<String> = text
        .lines()
        .map(|l| l.split_once(": ").unwrap().1.to_owned())
        .collect();
    assert_eq!(last_two, theirs[theirs.len() - 2..], "{text}");
    // --json: one object per record, all fields.
    let out = unitwright(&sb, &["logs", "--json", "-n", "1", "count"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The last record is the unit's or the manager's "Started" message about it.
    assert!(
        v["_SYSTEMD_USER_UNIT"] == "count.service" || v["USER_UNIT"] == "count.service",
        "{v}"
    );
    assert!(
        v["__CURSOR"].as_str().is_some() && v["_PID"].as_str().is_some(),
        "{v}"
    );
    // --since in the future: nothing; a bad time is a usage error.
    let out = unitwright(&sb, &["logs", "--since", "2999-01-01", "count"]);
    assert!(out.status.success() && out.stdout.is_empty());
    let out = unitwright(&sb, &["logs", "--since", "soonish", "count"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid time"), "{}", stderr(&out));
}

/// The CLI outside the namespaces (for verbs that need no journal).
fn outside(sb: &UserManager, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_unitwright"))
        .envs(sb.client_env())
        .arg("--user")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn script_verbs_answer_like_systemctl() {
    let Some(sb) = UserManager::builder()
        .unit("web.service", "[Unit]\nDescription=Web\n[Service]\nExecStart=/bin/sleep 600\n[Install]\nWantedBy=default.target\n")
        .unit("bad.service", "[Service]\nType=oneshot\nExecStart=/bin/false\n")
        .start()
    else {
        return;
    };
    std::fs::create_dir_all(sb.unit_dir.join("web.service.d")).unwrap();
    std::fs::write(
        sb.unit_dir.join("web.service.d/10-env.conf"),
        "[Service]\nEnvironment=A=1\n",
    )
    .unwrap();
    assert!(outside(&sb, &["reload"]).status.success());
    // start of a unit that does not exist: 5, like systemctl.
    let out = outside(&sb, &["start", "nope"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let sys = sb.systemctl(&["start", "nope.service"]);
    assert_eq!(sys.status.code(), Some(5));
    // is-active / is-failed: output and exit codes as systemctl's.
    for (args, unit) in [
        (&["is-active", "web"][..], "web.service"),
        (&["is-failed", "web"][..], "web.service"),
    ] {
        let ours = outside(&sb, args);
        let theirs = sb.systemctl(&[args[0], unit]);
        assert_eq!(stdout(&ours), stdout(&theirs), "{args:?}");
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
    }
    assert!(outside(&sb, &["start", "web"]).status.success());
    assert_eq!(outside(&sb, &["start", "bad"]).status.code(), Some(1));
    for verb in ["is-active", "is-failed", "is-enabled"] {
        for unit in ["web.service", "bad.service"] {
            let ours = outside(&sb, &[verb, unit]);
            let theirs = sb.systemctl(&[verb, unit]);
            assert_eq!(stdout(&ours), stdout(&theirs), "{verb} {unit}");
            assert_eq!(ours.status.code(), theirs.status.code(), "{verb} {unit}");
        }
    }
    // -q: nothing printed, the exit status tells.
    let out = outside(&sb, &["-q", "is-active", "web"]);
    assert!(out.status.success() && out.stdout.is_empty());
    // enable --now / disable, mask / unmask.
    assert_eq!(stdout(&outside(&sb, &["is-enabled", "web"])), "disabled\n");
    let out = outside(&sb, &["-q", "enable", "--now", "web"]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&outside(&sb, &["is-enabled", "web"])), "enabled\n");
    let out = outside(&sb, &["mask", "bad"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("/dev/null"), "{}", stderr(&out));
    assert_eq!(
        sb.systemctl(&["is-enabled", "bad.service"]).stdout,
        b"masked\n"
    );
    assert!(outside(&sb, &["unmask", "bad"]).status.success());
    assert_eq!(
        sb.systemctl(&["is-enabled", "bad.service"]).stdout,
        b"static\n"
    );
    // cat: the file and its drop-in, each after a # PATH line.
    let out = outside(&sb, &["cat", "web"]);
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "# {}\n[Unit]\n",
            sb.unit_dir.join("web.service").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("10-env.conf\n[Service]\nEnvironment=A=1\n"),
        "{text}"
    );
    // show -p: the values systemctl shows.
    let ours = stdout(&outside(
        &sb,
        &["show", "-p", "ActiveState,MainPID,Description", "web"],
    ));
    let theirs = stdout(&sb.systemctl(&[
        "show",
        "-p",
        "ActiveState,MainPID,Description",
        "web.service",
    ]));
    let mut a: Vec<&str> = ours.lines().collect();
    let mut b: Vec<&str> = theirs.lines().collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
    let out = outside(&sb, &["show", "--value", "-p", "Id", "web"]);
    assert_eq!(stdout(&out), "web.service\n");
    // list fits the terminal width ($COLUMNS, as systemctl honours it); in a pipe without it
    // nothing is cut.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unitwright"))
        .envs(sb.client_env())
        .env("COLUMNS", "50")
        .args(["--user", "list"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.lines().all(|l| l.chars().count() <= 50), "{text}");
    assert!(text.contains('…'), "{text}");
    assert!(!stdout(&outside(&sb, &["list"])).contains('…'));
    // list-jobs: none queued.
    assert_eq!(stdout(&outside(&sb, &["list-jobs"])), "No jobs running.\n");
}

#[test]
fn bash_completes_unit_names_of_the_manager_on_the_command_line() {
    let Some(sb) = UserManager::builder()
        .unit("web.service", "[Service]\nExecStart=/bin/sleep 600\n")
        .start()
    else {
        return;
    };
    assert!(outside(&sb, &["start", "web"]).status.success());
    let dir = tempfile::tempdir().unwrap();
    let xtask = std::path::Path::new(env!("CARGO_BIN_EXE_unitwright"))
        .parent()
        .unwrap()
        .join("xtask");
    if !xtask.exists() {
        // xtask is built by `cargo test --workspace`; a single-crate run may not have it.
        assert!(!support::ci(), "{} missing", xtask.display());
        return;
    }
    let out = std::process::Command::new(&xtask)
        .arg("completions")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_unitwright"))
        .parent()
        .unwrap();
    let script = format!(
        "_init_completion() {{ :; }}; source {}/unitwright.bash; \
         COMP_WORDS=(unitwright --user status we); COMP_CWORD=3; \
         _unitwright_with_units; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        dir.path().display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .envs(sb.client_env())
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "web.service\n", "{}", stderr(&out));
}
