//! `unitwright -H`: the D-Bus verbs on a remote host over real OpenSSH, for the system manager
//! and for the remote user's own manager, and each way the connection can fail, with its
//! message. The remote host is `tests/support/remote.rs` (sshd and systemd in private
//! namespaces, network included); states are cross-checked with systemctl on that side.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::remote::{RemoteHost, TEST_UID, TEST_USER};
use support::{ENDLESS_ONESHOT, SLEEP_SERVICE};

const HELLO: &str = "[Unit]\nDescription=Hello %i\n[Service]\nExecStart=/bin/sleep 600\n";

/// A template whose instances read their settings (through `unitwright instance exec`).
fn with_settings() -> String {
    format!(
        "[Service]\nExecStart={} instance exec --settings-dir=%t/unitwright/instances %n -- /bin/sleep 600\n",
        env!("CARGO_BIN_EXE_unitwright")
    )
}

fn unitwright(host: &RemoteHost) -> Command {
    let mut cmd = host.command(env!("CARGO_BIN_EXE_unitwright"));
    cmd.stdin(Stdio::null());
    cmd
}

fn run(host: &RemoteHost, args: &[&str]) -> Output {
    unitwright(host).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn verbs_on_the_remote_system_and_user_manager() {
    let Some(host) = RemoteHost::start(
        &[("hello@.service", HELLO), ("web.service", SLEEP_SERVICE)],
        &[("mine@.service", HELLO)],
    ) else {
        return;
    };
    let root = "root@127.0.0.1";
    // System manager: many units in one call, one connection.
    let out = run(&host, &["-H", root, "start", "hello@a", "hello@b", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for u in ["hello@a.service", "hello@b.service", "web.service"] {
        assert_eq!(host.is_active(u), "active", "{u}");
    }
    let out = run(&host, &["-H", root, "status", "web", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"active_state\":\"active\""),
        "{}",
        stdout(&out)
    );
    let out = run(&host, &["-H", root, "list", "hello@*", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["unit"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello@a.service", "hello@b.service"]);
    let out = run(&host, &["-H", root, "stop", "hello@a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(host.is_active("hello@a.service"), "inactive");
    assert_eq!(host.is_active("hello@b.service"), "active");
    // A unit that does not exist there is reported like locally (exit 5, as systemctl's).
    let out = run(&host, &["-H", root, "start", "nope"]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        stderr(&out),
        "unitwright: start of nope.service failed: unit nope.service not found\n"
    );

    // The test user's own manager: --user reaches it, not the system manager.
    let user = format!("{TEST_USER}@127.0.0.1");
    let out = run(&host, &["--user", "-H", &user, "start", "mine@x", "mine@y"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(host.user_is_active("mine@x.service"), "active");
    assert_eq!(host.user_is_active("mine@y.service"), "active");
    assert_eq!(host.is_active("mine@x.service"), "inactive");
    let out = run(&host, &["--user", "-H", &user, "list", "mine@*", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let out = run(&host, &["--user", "-H", &user, "status", "mine@x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&host, &["--user", "-H", &user, "stop", "mine@x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(host.user_is_active("mine@x.service"), "inactive");
    assert_eq!(host.user_is_active("mine@y.service"), "active");
    // The system manager's units are not visible on the user bus.
    let out = run(&host, &["--user", "-H", &user, "status", "web"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

#[test]
fn each_connection_failure_says_what_went_wrong() {
    let Some(host) = RemoteHost::start(&[("web.service", SLEEP_SERVICE)], &[]) else {
        return;
    };
    let fails = |args: &[&str], expected: &[&str]| {
        let out = run(&host, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        eprintln!("{args:?}: {err}");
        assert!(
            err.starts_with("unitwright: cannot reach the service manager on "),
            "{err}"
        );
        for e in expected {
            assert!(err.contains(e), "{args:?}: {e:?} not in {err:?}");
        }
    };
    // Nothing listens on that port.
    fails(
        &["-H", "root@127.0.0.1:1", "start", "web"],
        &["host 127.0.0.1 is unreachable", "Connection refused"],
    );
    // A user with no authorized key (and BatchMode: no prompt, since stdin is not a terminal).
    fails(
        &["-H", "nobody@127.0.0.1", "start", "web"],
        &[
            "authentication refused by nobody@127.0.0.1",
            "Permission denied",
        ],
    );
    // Port 2222 of the same sshd gives its sessions a PATH without the bridge.
    fails(
        &["-H", "root@127.0.0.1:2222", "status"],
        &[
            "systemd-stdio-bridge is not installed on 127.0.0.1",
            "env: 'systemd-stdio-bridge': No such file or directory",
        ],
    );
    // root has no user manager there: its bus does not exist (and it is not the system bus).
    fails(
        &["--user", "-H", "root@127.0.0.1", "status"],
        &[
            "the user manager's bus is not running on 127.0.0.1",
            "No such file or directory",
        ],
    );
    assert_eq!(host.is_active("web.service"), "inactive");
    // And the working path, for contrast.
    let out = run(&host, &["-H", "root@127.0.0.1", "start", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = TEST_UID;
}

#[test]
fn a_connection_lost_mid_job_fails_every_waiter_at_once() {
    let Some(host) = RemoteHost::start(&[("slow@.service", ENDLESS_ONESHOT)], &[]) else {
        return;
    };
    let child = unitwright(&host)
        .args([
            "-H",
            "root@127.0.0.1",
            "start",
            "slow@1",
            "slow@2",
            "--timeout",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both jobs are queued (and waiting: the oneshot never finishes)...
    let start = Instant::now();
    loop {
        let jobs = host.systemctl(&["list-jobs", "--no-legend"]);
        if String::from_utf8_lossy(&jobs.stdout)
            .matches("slow@")
            .count()
            == 2
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "jobs never queued"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...when the ssh connection dies on the remote side (sshd and its sessions killed).
    let out = host.systemctl(&["kill", "--signal=KILL", "sshd.service"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    eprintln!("{err}");
    for unit in ["slow@1.service", "slow@2.service"] {
        assert!(
            err.contains(&format!(
                "unitwright: start of {unit} failed: the connection to the bus was lost"
            )),
            "{err}"
        );
    }
    assert!(
        err.contains("unitwright: the connection to root@127.0.0.1 was lost: ssh exited"),
        "{err}"
    );
}

#[test]
fn instance_verbs_run_the_remote_unitwright() {
    let template = with_settings();
    let Some(host) = RemoteHost::start(
        &[("hello@.service", &template)],
        &[("mine@.service", &template)],
    ) else {
        return;
    };
    let root = "root@127.0.0.1";
    // Not installed there yet.
    let out = run(&host, &["-H", root, "instance", "list", "hello@.service"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!(
            "unitwright: unitwright is not installed on {root} (this verb with -H runs it there"
        )),
        "{}",
        stderr(&out)
    );
    // Another version there.
    let old = host.root.path().join("old-unitwright");
    std::fs::write(&old, "#!/bin/sh\necho 'unitwright 0.0.1'\n").unwrap();
    Command::new("chmod").arg("755").arg(&old).status().unwrap();
    host.install("unitwright", &old);
    let out = run(&host, &["-H", root, "instance", "list", "hello@.service"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "unitwright: {root} has unitwright 0.0.1, this is unitwright {} (this verb with -H needs the same version on both sides)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    // This version: start with settings (one from a local file, sent over stdin), list, stop.
    host.install(
        "unitwright",
        std::path::Path::new(env!("CARGO_BIN_EXE_unitwright")),
    );
    let secret = host.root.path().join("local-secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let set_file = format!("PW={}", secret.display());
    let out = run(
        &host,
        &[
            "-H",
            root,
            "instance",
            "start",
            "hello@.service",
            "node 7/a",
            "--set",
            "COLOR=blue",
            "--set-file",
            &set_file,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let unit = "hello@node\\x207-a.service";
    assert_eq!(host.is_active(unit), "active");
    // The secret from the local file arrived in the remote settings store.
    let store = std::path::PathBuf::from(format!(
        "/proc/{}/root/run/unitwright/instances",
        host.pid()
    ));
    let stored: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    assert!(
        stored
            .iter()
            .any(|s| s.contains("s3cret") && s.contains("blue")),
        "{stored:?}"
    );
    let out = run(
        &host,
        &["-H", root, "instance", "list", "hello@.service", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("node 7/a") && text.contains("COLOR") && text.contains("PW"),
        "{text}"
    );
    assert!(!text.contains("s3cret") && !text.contains("blue"), "{text}");
    let out = run(
        &host,
        &["-H", root, "instance", "stop", "hello@.service", "node 7/a"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(host.is_active(unit), "inactive");
    // The test user's own manager, with its own settings store.
    let user = format!("{TEST_USER}@127.0.0.1");
    let as_user = |args: &[&str]| {
        let out = run(
            &host,
            &[&["--user", "-H", &user, "instance"], args].concat(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    as_user(&["start", "mine@.service", "u1", "--set", "A=1"]);
    assert_eq!(host.user_is_active("mine@u1.service"), "active");
    let listed = as_user(&["list", "mine@.service", "--json"]);
    assert!(listed.contains("\"u1\""), "{listed}");
}

#[test]
fn quadlet_apply_over_ssh_is_idempotent_and_check_mode_changes_nothing() {
    let Some(host) = RemoteHost::start(&[], &[]) else {
        return;
    };
    host.install(
        "unitwright",
        std::path::Path::new(env!("CARGO_BIN_EXE_unitwright")),
    );
    // An app directory here; it travels to the test user's ~/.config/containers/systemd there.
    let local = tempfile::tempdir().unwrap();
    let app = local.path().join("web");
    std::fs::create_dir(&app).unwrap();
    let file = app.join("web.container");
    std::fs::write(
        &file,
        "[Container]\nImage=localhost/bb:latest\nExec=/bin/sleep 600\n",
    )
    .unwrap();
    let user = format!("{TEST_USER}@127.0.0.1");
    let app_arg = app.display().to_string();
    let apply = |extra: &[&str]| -> serde_json::Value {
        let out = run(
            &host,
            &[
                &[
                    "--user", "-H", &user, "quadlet", "apply", &app_arg, "--app", "web", "--json",
                ],
                extra,
            ]
            .concat(),
        );
        assert!(out.status.success(), "{}\n{}", stderr(&out), stdout(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = apply(&[]);
    assert_eq!(first["changed"], true, "{first}");
    assert_eq!(first["host"], user.as_str(), "{first}");
    let installed = host
        .root
        .path()
        .join("home/.config/containers/systemd/web.container");
    assert!(installed.exists(), "{first}");
    let second = apply(&[]);
    assert_eq!(second["changed"], false, "{second}");
    assert_eq!(second["reloaded"], false, "{second}");
    // A change here, checked with a diff: reported, not made.
    std::fs::write(
        &file,
        "[Container]\nImage=localhost/bb:latest\nExec=/bin/sleep 700\n",
    )
    .unwrap();
    let check = apply(&["--check", "--diff"]);
    assert_eq!(check["changed"], true, "{check}");
    assert!(check["diff"].to_string().contains("sleep 700"), "{check}");
    assert!(std::fs::read_to_string(&installed)
        .unwrap()
        .contains("sleep 600"));
    // list shows it, with the host.
    let out = run(&host, &["--user", "-H", &user, "quadlet", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|f| f["app"] == "web" && f["host"] == user.as_str()),
        "{list}"
    );
}
