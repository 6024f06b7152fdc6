#![allow(clippy::unwrap_used)]
//! `unitwright instance` against a real `systemd --user` (the [`support::UserManager`]
//! sandbox), with hand-written template units whose commands read their settings through
//! `unitwright instance exec` (no podman needed): concurrent starts of one id, restart and
//! replace, required settings, templates that ignore settings, long starts and `--timeout`,
//! and `instance show`.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use support::UserManager;

const UNITWRIGHT: &str = env!("CARGO_BIN_EXE_unitwright");

/// A template reading V (required), PW (secret) and PORT: it serves HTTP on 127.0.0.1:PORT
/// (busybox httpd) when PORT is set, else sleeps. `pre` is its ExecStartPre= command.
fn template(pre: &str, timeout: &str) -> String {
    format!(
        "[Unit]\nDescription=test instance %i\n[Service]\nEnvironment=PORT=\nExecStartPre={pre}\nExecStart=:{UNITWRIGHT} instance exec --settings-dir=%t/unitwright/instances %n -- /bin/sh -c 'echo \"$V\" > %t/ran-$UNITWRIGHT_ID; if [ -n \"$PORT\" ]; then exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /; else exec sleep infinity; fi'\nTimeoutStartSec={timeout}\n[X-Unitwright]\nRequiredSettings=V\nSecretSettings=PW\n"
    )
}

fn sandbox() -> Option<UserManager> {
    UserManager::builder()
        .unit("race@.service", &template("/bin/sleep 0.2", "30"))
        .unit("slow@.service", &template("/bin/sleep 40", "60"))
        .unit(
            "deaf@.service",
            "[Service]\nExecStart=/bin/sleep infinity\n",
        )
        .start()
}

fn cli(m: &UserManager, args: &[&str]) -> Command {
    let mut c = Command::new(UNITWRIGHT);
    c.arg("--user").args(args).envs(m.client_env());
    c
}

fn run(m: &UserManager, args: &[&str]) -> Output {
    cli(m, args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the service wrote to `%t/ran-ID` (Type=simple: it writes after the start job ends).
fn ran(m: &UserManager, id: &str) -> String {
    let path = m.runtime_dir.join(format!("ran-{id}"));
    for _ in 0..300 {
        if let Ok(s) = std::fs::read_to_string(&path) {
            if s.ends_with('\n') {
                return s.trim().to_owned();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} never written", path.display());
}

fn settings_file(m: &UserManager, unit: &str) -> PathBuf {
    m.runtime_dir.join("unitwright/instances").join(unit)
}

fn stored(m: &UserManager, unit: &str) -> Value {
    serde_json::from_slice(&std::fs::read(settings_file(m, unit)).unwrap()).unwrap()
}

#[test]
fn two_concurrent_starts_of_one_id_one_wins_one_is_refused_clearly() {
    let Some(m) = sandbox() else {
        return;
    };
    let unit = "race@x\\x2dy.service";
    for round in 0..20 {
        let a = cli(
            &m,
            &["instance", "start", "race@.service", "x-y", "--set", "V=a"],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let b = cli(
            &m,
            &["instance", "start", "race@.service", "x-y", "--set", "V=b"],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let (winner, loser, value) = match (a.status.success(), b.status.success()) {
            (true, false) => (&a, &b, "a"),
            (false, true) => (&b, &a, "b"),
            _ => panic!(
                "round {round}: exactly one start must succeed\na: {:?} {}\nb: {:?} {}",
                a.status,
                text(&a.stderr),
                b.status,
                text(&b.stderr)
            ),
        };
        assert!(winner.stderr.is_empty(), "{}", text(&winner.stderr));
        assert_eq!(loser.status.code(), Some(1));
        let why = text(&loser.stderr);
        assert!(
            why.contains(&format!("{unit} is already starting or stopping"))
                || why.contains(&format!("{unit} is already active")),
            "round {round}: unclear refusal: {why}"
        );
        // The settings are the winner's, and the running service read exactly those.
        assert_eq!(stored(&m, unit)["settings"]["V"], value, "round {round}");
        assert_eq!(ran(&m, "x-y"), value, "round {round}");
        assert_eq!(m.is_active(unit), "active");
        let out = run(&m, &["instance", "stop", "race@.service", "x-y"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(!settings_file(&m, unit).exists());
        std::fs::remove_file(m.runtime_dir.join("ran-x-y")).unwrap();
    }
}

#[test]
fn restart_and_replace_keep_the_allocated_port_and_json_has_the_sub_state() {
    let Some(m) = sandbox() else {
        return;
    };
    let start = |extra: &[&str]| {
        let mut args = vec![
            "instance",
            "start",
            "race@.service",
            "r1",
            "--set",
            "PORT=auto-port",
            "--json",
        ];
        args.extend(extra);
        run(&m, &args)
    };
    let v = ok_json(&start(&["--set", "V=one"]));
    assert_eq!(v["active_state"], "active");
    assert_eq!(v["sub_state"], "running", "{v}");
    let port = v["settings"]["PORT"].as_str().unwrap().to_owned();

    // Running: a plain start is refused and says how to replace.
    let out = start(&["--set", "V=two"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("is already active; stop it first, or use `instance start --replace`"),
        "{}",
        text(&out.stderr)
    );

    let before = m.systemctl(&["show", "-p", "MainPID", "--value", "race@r1.service"]);
    let v = ok_json(&run(
        &m,
        &["instance", "restart", "race@.service", "r1", "--json"],
    ));
    assert_eq!(v["sub_state"], "running");
    assert_eq!(v["keys"], serde_json::json!(["PORT", "V"]));
    let after = m.systemctl(&["show", "-p", "MainPID", "--value", "race@r1.service"]);
    assert_ne!(before.stdout, after.stdout, "restart must restart");
    assert_eq!(stored(&m, "race@r1.service")["settings"]["PORT"], port);

    assert_eq!(ran(&m, "r1"), "one");
    std::fs::remove_file(m.runtime_dir.join("ran-r1")).unwrap();
    let v = ok_json(&start(&["--set", "V=two", "--replace"]));
    assert_eq!(v["settings"]["PORT"], port, "replace keeps the port");
    assert_eq!(v["settings"]["V"], "two");
    assert_eq!(ran(&m, "r1"), "two");

    // Restart of an instance that has no settings says so.
    let out = run(&m, &["instance", "restart", "race@.service", "nothing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no settings for race@nothing.service"));
}

#[test]
fn missing_required_settings_and_deaf_templates_are_refused_before_any_start() {
    let Some(m) = sandbox() else {
        return;
    };
    let out = run(
        &m,
        &["instance", "start", "race@.service", "m1", "--set", "PW=x"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("race@m1.service: missing required setting(s) V: pass them"),
        "{}",
        text(&out.stderr)
    );
    assert!(!settings_file(&m, "race@m1.service").exists());
    // Never started: no ExecStartPre ran, no invocation exists.
    let inv = m.systemctl(&["show", "-p", "InvocationID", "--value", "race@m1.service"]);
    assert_eq!(text(&inv.stdout).trim(), "", "the unit was started");

    let out = run(
        &m,
        &[
            "instance",
            "start",
            "deaf@.service",
            "d1",
            "--set",
            "PORT=auto-port",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("deaf@.service does not read instance settings"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(m.is_active("deaf@d1.service"), "inactive");
    assert!(!settings_file(&m, "deaf@d1.service").exists());
}

#[test]
fn a_start_waits_as_long_as_the_unit_allows_and_timeout_keeps_a_running_start() {
    let Some(m) = sandbox() else {
        return;
    };
    // ExecStartPre sleeps 40 s, TimeoutStartSec=60: more than the old fixed 25 s wait.
    let v = ok_json(&run(
        &m,
        &[
            "instance",
            "start",
            "slow@.service",
            "s1",
            "--set",
            "V=1",
            "--json",
        ],
    ));
    assert_eq!(v["active_state"], "active");
    assert_eq!(v["sub_state"], "running");

    // A wait shorter than the start ends with the start still running: settings kept.
    let out = run(
        &m,
        &[
            "instance",
            "start",
            "slow@.service",
            "s2",
            "--set",
            "V=2",
            "--timeout",
            "1",
        ],
    );
    // 124, as `start --timeout` when the job outlasts the wait: nothing failed.
    assert_eq!(out.status.code(), Some(124));
    assert!(
        text(&out.stderr).contains("slow@s2.service is still starting after 1 s (the start job continues; its settings are kept"),
        "{}",
        text(&out.stderr)
    );
    assert!(settings_file(&m, "slow@s2.service").exists());
    assert_eq!(m.is_active("slow@s2.service"), "activating");
    let out = run(&m, &["instance", "stop", "slow@.service", "s2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!settings_file(&m, "slow@s2.service").exists());
}

#[test]
fn show_prints_state_masked_secrets_and_the_address_actually_listened_on() {
    let Some(m) = sandbox() else {
        return;
    };
    let v = ok_json(&run(
        &m,
        &[
            "instance",
            "start",
            "race@.service",
            "node 1",
            "--set",
            "V=plain",
            "--set",
            "PW=hunter2",
            "--set",
            "PORT=auto-port",
            "--json",
        ],
    ));
    let port = v["settings"]["PORT"].as_str().unwrap().to_owned();
    // httpd listens a moment after the start job: wait until show sees it.
    let mut shown = Value::Null;
    for _ in 0..200 {
        shown = ok_json(&run(
            &m,
            &["instance", "show", "race@.service", "node 1", "--json"],
        ));
        if shown["published"] != serde_json::json!([]) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(shown["unit"], "race@node\\x201.service");
    assert_eq!(shown["id"], "node 1");
    assert_eq!(shown["active_state"], "active");
    assert_eq!(shown["sub_state"], "running");
    assert_eq!(
        shown["published"],
        serde_json::json!([format!("127.0.0.1:{port}")])
    );
    assert_eq!(shown["settings"]["V"], "plain");
    assert_eq!(shown["settings"]["PW"], "********");
    assert_eq!(shown["secret_keys"], serde_json::json!(["PW"]));
    assert!(!shown.to_string().contains("hunter2"));
    // The resource fields are there (null where this sandbox's manager accounts nothing).
    for key in [
        "memory_current_bytes",
        "cpu_usage_nsec",
        "tasks_current",
        "effective_cpus",
    ] {
        assert!(shown.get(key).is_some(), "{key} in {shown}");
    }
    let out = run(&m, &["instance", "show", "race@.service", "node 1"]);
    let t = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(t.contains(&format!("published: 127.0.0.1:{port}")), "{t}");
    assert!(
        t.contains("PW=\"********\"") && !t.contains("hunter2"),
        "{t}"
    );

    // Stopped: nothing published, no settings.
    let out = run(&m, &["instance", "stop", "race@.service", "node 1"]);
    assert!(out.status.success());
    let shown = ok_json(&run(
        &m,
        &["instance", "show", "race@.service", "node 1", "--json"],
    ));
    assert_eq!(shown["active_state"], "inactive");
    assert_eq!(shown["published"], serde_json::json!([]));
    assert_eq!(shown["has_settings"], false);
}
