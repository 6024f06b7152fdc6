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
    // journald reads no kernel messages (`ReadKMsg=no`): the host's kmsg holds thousands of
    // records, among them what other sandboxes' generators and managers wrote there.
    assert_eq!(journalctl(&sb, &["-q", "_TRANSPORT=kernel"]), "");
    // And the manager accounts the unit's memory and tasks.
    let show =
        stdout(&sb.systemctl(&["show", "-p", "MemoryCurrent,TasksCurrent", "hello.service"]));
    assert!(!show.contains("MemoryCurrent=[not set]"), "{show}");
    assert!(!show.contains("TasksCurrent=[not set]"), "{show}");
}

/// `SourcePath=` is what a generator writes into a unit made from a Quadlet file.
const HELLO: &str =
    "[Unit]\nDescription=Hello\nSourcePath=/etc/containers/systemd/hello.container\n\
     [Service]\nExecStart=/bin/sh -c 'echo hello from the unit; exec sleep 600'\n";

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
    let dropins = sb.unit_dir.join("hello.service.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::write(dropins.join("10-env.conf"), "[Service]\nEnvironment=A=1\n").unwrap();
    assert!(unitwright(&sb, &["reload"]).status.success());
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
    // The Quadlet file it was made from and its drop-ins, as systemctl shows them.
    assert!(
        text.contains("     Source: /etc/containers/systemd/hello.container\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "    Drop-In: {}\n             └─10-env.conf\n",
            dropins.display()
        )),
        "{text}"
    );
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
    // On a terminal (script(1)'s pseudo-terminal): colour, the green dot first; with NO_COLOR
    // none.
    for (no_color, coloured) in [(None, true), (Some("1"), false)] {
        let mut cmd = sb.command("script");
        cmd.args([
            "-q",
            "-e",
            "-c",
            &format!("'{}' --user status hello", env!("CARGO_BIN_EXE_unitwright")),
            "/dev/null",
        ])
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null());
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let tty = stdout(&cmd.output().unwrap());
        assert!(tty.contains("hello.service - Hello"), "{tty:?}");
        assert_eq!(tty.starts_with("\x1b["), coloured, "{tty:?}");
        assert_eq!(tty.contains('\x1b'), coloured, "{tty:?}");
    }
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
    // --since in the future: nothing, said as journalctl says it (in JSON: nothing at all); a
    // bad time is a usage error.
    let out = unitwright(&sb, &["logs", "--since", "2999-01-01", "count"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "-- No entries --\n");
    let out = unitwright(&sb, &["logs", "--json", "--since", "2999-01-01", "count"]);
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
fn wait_for_a_units_state_after_no_block() {
    let Some(sb) = UserManager::builder()
        .unit(
            "slow.service",
            "[Service]\nExecStartPre=/bin/sleep 1\nExecStart=/bin/sleep 600\nExecStopPost=/bin/sleep 1\n",
        )
        .unit(
            "never.service",
            "[Service]\nExecStartPre=/bin/sh -c 'sleep 1; exit 3'\nExecStart=/bin/sleep 600\n",
        )
        .start()
    else {
        return;
    };
    let state = |unit: &str| stdout(&outside(&sb, &["is-active", unit]));
    // --no-block returns with the job queued; `wait --for active` returns once it is active.
    assert!(outside(&sb, &["start", "--no-block", "slow"])
        .status
        .success());
    let out = outside(&sb, &["wait", "--for", "active", "slow"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(state("slow"), "active\n");
    // --for inactive after a stop (ExecStopPost= keeps it deactivating for a while).
    assert!(outside(&sb, &["stop", "--no-block", "slow"])
        .status
        .success());
    let out = outside(&sb, &["wait", "--for", "inactive", "slow"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(state("slow"), "inactive\n");
    // --for done (the default): no job left; here the start job's end.
    assert!(outside(&sb, &["start", "--no-block", "slow"])
        .status
        .success());
    let out = outside(&sb, &["wait", "slow"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(state("slow"), "active\n");
    // A unit that fails instead of becoming active: exit 1, saying so.
    assert!(outside(&sb, &["start", "--no-block", "never"])
        .status
        .success());
    let out = outside(&sb, &["wait", "--for", "active", "never"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("never.service"), "{}", stderr(&out));
    assert_eq!(state("never"), "failed\n");
}

/// The verbs whose operands complete to unit names (xtask's `UNIT_VERBS`).
const UNIT_VERBS: &[&str] = &[
    "start",
    "stop",
    "restart",
    "try-restart",
    "reload-or-restart",
    "reload",
    "daemon-reload",
    "kill",
    "reset-failed",
    "status",
    "enable",
    "disable",
    "logs",
    "is-active",
    "is-failed",
    "is-enabled",
    "cat",
    "show",
    "mask",
    "unmask",
    "wait",
    "set-property",
];

/// A unit name longer than the exported `COLUMNS` of the completion tests: `list` would cut
/// it there, and completion must not.
const LONG_UNIT: &str = "a-rather-long-unit-name-for-completion.service";

/// Drives an interactive `zsh -f` in a pseudo-terminal (zsh/zpty): loads compinit with the
/// completion directory `$1` in `fpath` (as the installed `_unitwright` is found), wraps
/// `compadd` to print every match it is given as a `HIT ...` line, then types each further
/// argument followed by TAB (at a prompt), and prints `CASE i` and what the terminal showed
/// for each.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty || exit 97
zpty -b z zsh -f -i
# The prompt shows "uw-42> " (not in the text typed): each line is typed only once zle waits
# for it, never while the terminal is still in cooked mode, where ^U would erase the line.
zpty -w z "setopt prompt_subst; PS1='uw-\$((6*7))> '; RPROMPT=''; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z 'compadd() { local -a __h; builtin compadd -O __h "$@"; (( ${#__h} )) && print -rn -- $'"'"'\n'"'"'"HIT ${(j: :)__h}"$'"'"'\n'"'"'; builtin compadd "$@"; }'
zpty -w z "print ready-\$((1+1))"
zpty -r -m z out '*ready-2*uw-42> *' || exit 98
i=0
for line in "${@[2,-1]}"; do
  i=$((i+1))
  zpty -w -n z "$line"$'\t'
  zpty -w -n z $'\C-u'
  zpty -w z "print end-\$(($i+1000))"
  zpty -r -m z out "*end-$((i+1000))*uw-42> *" || exit 99
  print -r -- "CASE $i"
  print -r -- "$out"
done
zpty -d z
"#;

/// What each shell completes for each command line (in order): the candidates, one list per
/// line given.
fn complete(
    shell: &str,
    dir: &std::path::Path,
    sb: &UserManager,
    lines: &[String],
) -> Vec<Vec<String>> {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_unitwright"))
        .parent()
        .unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let run = |cmd: &mut std::process::Command| {
        let out = cmd
            .envs(sb.client_env())
            .env("PATH", &path)
            .env("COLUMNS", "30")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{shell}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{shell}");
        stdout(&out)
    };
    match shell {
        "bash" => lines
            .iter()
            .map(|line| {
                let words: Vec<&str> = line.split(' ').collect();
                let script = format!(
                    "source {}/unitwright.bash; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE={line:?}; \
                     COMP_POINT=${{#COMP_LINE}}; _unitwright_with_units unitwright; \
                     printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                    dir.display(),
                    words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
                    words.len() - 1,
                );
                run(std::process::Command::new("bash").args(["-c", &script]))
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(ToOwned::to_owned)
                    .collect()
            })
            .collect(),
        "fish" => lines
            .iter()
            .map(|line| {
                let script = format!(
                    "source {}/unitwright.fish; complete -C {}",
                    dir.display(),
                    serde_json::Value::String(line.clone())
                );
                run(std::process::Command::new("fish").args(["--no-config", "-c", &script]))
                    .lines()
                    .map(|l| l.split('\t').next().unwrap().to_owned())
                    .collect()
            })
            .collect(),
        "zsh" => {
            let driver = dir.join("driver.zsh");
            std::fs::write(&driver, ZSH_DRIVER).unwrap();
            let out = run(std::process::Command::new("zsh")
                .arg("-f")
                .arg(&driver)
                .arg(dir)
                .args(lines));
            let out = out.replace('\r', "");
            let mut cases: Vec<Vec<String>> = Vec::new();
            for l in out.lines() {
                if l.starts_with("CASE ") {
                    cases.push(Vec::new());
                } else if let (Some((_, hits)), Some(case)) = (l.split_once("HIT "), cases.last_mut()) {
                    case.extend(hits.split(' ').map(ToOwned::to_owned));
                }
            }
            // Shown when an assertion fails (the harness captures it otherwise).
            eprintln!("zsh's terminal:\n{out}");
            assert_eq!(cases.len(), lines.len(), "{out}");
            cases
        }
        _ => unreachable!(),
    }
}

#[test]
fn bash_zsh_and_fish_complete_verbs_and_unit_names_of_the_manager_on_the_command_line() {
    let Some(sb) = UserManager::builder()
        .unit("web.service", "[Service]\nExecStart=/bin/sleep 600\n")
        .unit(LONG_UNIT, "[Service]\nExecStart=/bin/sleep 600\n")
        .start()
    else {
        return;
    };
    assert!(outside(&sb, &["start", "web", LONG_UNIT]).status.success());
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
    // Each script loads without a word on stderr.
    for (shell, args) in [
        (
            "bash",
            vec![
                "-c".to_owned(),
                format!("source {}/unitwright.bash", dir.path().display()),
            ],
        ),
        (
            "zsh",
            vec![
                "-f".to_owned(),
                "-c".to_owned(),
                format!(
                    "autoload -Uz compinit && compinit -u -D && source {}/_unitwright",
                    dir.path().display()
                ),
            ],
        ),
        (
            "fish",
            vec![
                "--no-config".to_owned(),
                "-n".to_owned(),
                dir.path().join("unitwright.fish").display().to_string(),
            ],
        ),
        (
            "fish",
            vec![
                "--no-config".to_owned(),
                "-c".to_owned(),
                format!("source {}/unitwright.fish", dir.path().display()),
            ],
        ),
    ] {
        let out = std::process::Command::new(shell)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{shell} {args:?}: {}",
            stderr(&out)
        );
    }
    let mut lines = vec![
        // verbs
        "unitwright --user sta".to_owned(),
        // unit names of the manager the line names, whole (COLUMNS=30 is exported)
        "unitwright --user status we".to_owned(),
        "unitwright --user status a-r".to_owned(),
        // not for the operands of other verbs that happen to be named like unit verbs
        "unitwright --user instance start we".to_owned(),
    ];
    lines.extend(
        UNIT_VERBS
            .iter()
            .map(|v| format!("unitwright --user {v} we")),
    );
    for shell in ["bash", "zsh", "fish"] {
        let got = complete(shell, dir.path(), &sb, &lines);
        let has = |i: usize, word: &str| got[i].iter().any(|w| w == word);
        assert!(has(0, "start") && has(0, "status"), "{shell}: {:?}", got[0]);
        assert!(!has(0, "web.service"), "{shell}: {:?}", got[0]);
        assert!(has(1, "web.service"), "{shell}: {:?}", got[1]);
        assert!(has(2, LONG_UNIT), "{shell}: {:?}", got[2]);
        assert!(!has(3, "web.service"), "{shell}: {:?}", got[3]);
        for (i, verb) in UNIT_VERBS.iter().enumerate() {
            assert!(
                has(4 + i, "web.service"),
                "{shell} {verb}: {:?}",
                got[4 + i]
            );
        }
    }
}

/// The PID of `program` started by `nsenter` (which forks it into the sandbox's PID namespace
/// and forwards no signal to it), as seen from here.
fn nsentered(nsenter: u32, program: &str) -> u32 {
    let mut found = None;
    eventually("the program under nsenter", || {
        let children = std::fs::read_to_string(format!("/proc/{nsenter}/task/{nsenter}/children"))
            .unwrap_or_default();
        found = children.split_whitespace().find_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim_end() == program).then(|| pid.parse().unwrap())
        });
        found.is_some()
    });
    found.unwrap()
}

/// The lines a child writes on stdout, as they come (raw bytes, each with its `\n`; a last
/// piece without one is sent as it is, then the channel closes).
fn line_reader(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut r = std::io::BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 || tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line(rx: &std::sync::mpsc::Receiver<Vec<u8>>) -> String {
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a line within 20 s");
    String::from_utf8(line).unwrap()
}

/// The message of a `logs` text line (`Dec 06 20:47:03 host sh[34]: message\n`).
fn message(line: &str) -> &str {
    assert!(line.ends_with('\n'), "a whole line: {line:?}");
    line.trim_end_matches('\n').split_once("]: ").unwrap().1
}

/// Writes one line into the FIFO the unit reads (it holds the FIFO open, so this never
/// blocks), for the unit to log.
fn say(fifo: &std::path::Path, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn logs_follow_prints_new_lines_and_ends_cleanly_on_sigint_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("say");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // A unit that logs three lines, then each line written into the FIFO, on demand.
    let unit = format!(
        "[Service]\nExecStart=/bin/sh -c 'echo before 1; echo before 2; echo before 3; \
         exec 3<>{0}; while read -r l <&3; do echo \"$l\"; done'\n",
        fifo.display()
    );
    let Some(sb) = journal_sandbox(&[("talk.service", &unit)]) else {
        return;
    };
    let out = unitwright(&sb, &["start", "talk"]);
    assert!(out.status.success(), "{}", stderr(&out));
    eventually("the unit's and the manager's lines in the journal", || {
        let j = journalctl(&sb, &["--user-unit", "talk.service"]);
        j.contains("before 3") && j.contains("Started")
    });
    let last_two = journalctl(
        &sb,
        &["--user-unit", "talk.service", "-n", "2", "-o", "cat"],
    );
    let last_two: Vec<&str> = last_two.lines().collect();

    // Text, ended by SIGINT while idle.
    let mut child = sb
        .command(env!("CARGO_BIN_EXE_unitwright"))
        .args(["--user", "logs", "-f", "-n", "2", "talk"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    // -n 2: the last two records before it started, the same as journalctl's.
    let before = [next_line(&lines), next_line(&lines)];
    assert_eq!(
        before.iter().map(|l| message(l)).collect::<Vec<_>>(),
        last_two,
        "{before:?}"
    );
    // Then what is written after it started, one after the other: it keeps following.
    say(&fifo, "after 1\n");
    assert_eq!(message(&next_line(&lines)), "after 1");
    say(&fifo, "after 2\n");
    assert_eq!(message(&next_line(&lines)), "after 2");
    let pid = nsentered(child.id(), "unitwright");
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    let err = {
        use std::io::Read as _;
        let mut s = String::new();
        child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
        s
    };
    // Ends like journalctl -f (systemd 258) and `watch`: exit 0, nothing on stderr, no line
    // after the last whole one.
    assert_eq!(status.code(), Some(0), "{status} {err}");
    assert_eq!(err, "");
    assert!(lines.recv().is_err(), "nothing more");

    // --since and --until select by the record's time: "after 2" came strictly later than
    // "after 1" (it was written only once "after 1" had been shown).
    let out = unitwright(&sb, &["logs", "--json", "talk"]);
    let at = |msg: &str| -> u64 {
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["MESSAGE"] == msg)
            .unwrap()["__REALTIME_TIMESTAMP"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let t2 = at("after 2");
    assert!(at("after 1") < t2);
    let t2 = format!("@{}.{:06}", t2 / 1_000_000, t2 % 1_000_000);
    let messages = |args: &[&str]| -> Vec<String> {
        let out = unitwright(&sb, args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| message(&format!("{l}\n")).to_owned())
            .collect()
    };
    let since = messages(&["logs", "--since", &t2, "talk"]);
    assert_eq!(since, ["after 2"], "since {t2}");
    let until = messages(&["logs", "--until", &t2, "talk"]);
    assert_eq!(until.last().unwrap(), "after 1", "until {t2}: {until:?}");
    assert!(until.contains(&"before 1".to_owned()), "{until:?}");
    // With -n: the last N of those before --until.
    let until = messages(&["logs", "--until", &t2, "-n", "1", "talk"]);
    assert_eq!(until, ["after 1"], "until {t2}");

    // -f with an --until that has passed: the records before it, then it ends by itself.
    let mut child = sb
        .command(env!("CARGO_BIN_EXE_unitwright"))
        .args(["--user", "logs", "-f", "-n", "1", "--until", &t2, "talk"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    let mut status = None;
    eventually("logs -f --until PAST to end", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(0));
    let shown: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8(l).unwrap())
        .collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(message(&shown[0]), "after 1");

    // --json, ended by SIGTERM in the middle of a burst of records: one JSON object per line,
    // every line whole, and the records in order without a gap.
    let mut child = sb
        .command(env!("CARGO_BIN_EXE_unitwright"))
        .args(["--user", "logs", "-f", "--json", "-n", "1", "talk"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    let first: serde_json::Value = serde_json::from_str(&next_line(&lines)).unwrap();
    assert_eq!(first["MESSAGE"], "after 2", "{first}");
    say(&fifo, "after 3\n");
    let v: serde_json::Value = serde_json::from_str(&next_line(&lines)).unwrap();
    assert_eq!(v["MESSAGE"], "after 3", "{v}");
    assert_eq!(v["_SYSTEMD_USER_UNIT"], "talk.service", "{v}");
    let burst: Vec<String> = (1..=300).map(|i| format!("burst {i}\n")).collect();
    let burst = burst.concat();
    say(&fifo, &burst);
    // Stop it once the burst is flowing.
    let v: serde_json::Value = serde_json::from_str(&next_line(&lines)).unwrap();
    assert_eq!(v["MESSAGE"], "burst 1", "{v}");
    let pid = nsentered(child.id(), "unitwright");
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    let mut n = 1;
    for line in &lines {
        let line = String::from_utf8(line).unwrap();
        assert!(line.ends_with('\n'), "a whole line: {line:?}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        n += 1;
        assert_eq!(v["MESSAGE"], format!("burst {n}"), "{v}");
    }

    // The reader closes the pipe (`| head -1`): it stops, exit 0, also with nothing new.
    eventually("the whole burst in the journal", || {
        journalctl(
            &sb,
            &["--user-unit", "talk.service", "-n", "1", "-o", "cat"],
        ) == "burst 300\n"
    });
    let mut child = sb
        .command(env!("CARGO_BIN_EXE_unitwright"))
        .args(["--user", "logs", "-f", "-n", "1", "talk"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.ends_with(": burst 300\n"), "{line}");
    drop(stdout);
    let mut status = None;
    eventually("logs -f to end when its reader is gone", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let err = {
        use std::io::Read as _;
        let mut s = String::new();
        child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
        s
    };
    assert_eq!(status.unwrap().code(), Some(0), "{err}");
    assert_eq!(err, "");
}
