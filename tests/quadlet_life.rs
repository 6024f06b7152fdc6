//! The Quadlet lifecycle (`unitwright quadlet ...`) against real managers: a private
//! `systemd --user` with the real `unitwright-generator` (behind a wrapper that counts its runs)
//! and real podman 4.3.1 running containers, and a private system manager (systemd as PID 1 of
//! its own namespaces) with `.volume` units run by real podman.
//!
//! Shown: install, a change of one container restarts exactly that unit (InvocationID), a no-op
//! apply neither writes nor reloads (generator runs counted), a broken file is refused with
//! file:line and nothing on disk changes, `rm` leaves nothing, kill -9 in the middle of an apply
//! is recovered by the next run (every file old, or every file new), 0600 stays 0600.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::podman::Podman;
use support::{SystemManager, UserManager};

const UNITWRIGHT: &str = env!("CARGO_BIN_EXE_unitwright");
const IMAGE: &str = "localhost/uw-life-bb:latest";

/// A generator wrapper that appends a line to `count` at each run, then runs the real one
/// (with `extra` environment, e.g. QUADLET_UNIT_DIRS for the system manager).
fn counting_generator(dir: &Path, name: &str, extra: &str) -> (PathBuf, PathBuf) {
    let count = dir.join("generator-runs");
    let wrapper = dir.join(name);
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho run >> {}\n{extra} exec {} \"$@\"\n",
            count.display(),
            support::generator_binary(UNITWRIGHT).display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper, count)
}

fn runs(count: &Path) -> usize {
    std::fs::read_to_string(count).map_or(0, |s| s.lines().count())
}

/// Every file under `dir` with its content and mode (the state directory's lock excluded).
fn tree(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "lock") {
                let m = std::fs::metadata(&p).unwrap().permissions().mode();
                out.insert(p.clone(), (std::fs::read(&p).unwrap(), m));
            }
        }
    }
    out
}

struct Cli {
    env: Vec<(String, std::ffi::OsString)>,
    scope: &'static str,
}

impl Cli {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(UNITWRIGHT);
        c.arg(self.scope).arg("quadlet").args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `unitwright SCOPE ARGS` (a verb outside `quadlet`).
    fn verb(&self, args: &[&str]) -> Output {
        let mut c = Command::new(UNITWRIGHT);
        c.arg(self.scope).args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// Runs with `--json` and expects exit `code`; returns the JSON.
    fn json(&self, args: &[&str], code: i32) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.run(&a);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{a:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{a:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

fn units(report: &Value) -> Vec<(String, String, String)> {
    triples(&report["units"], ["unit", "action", "result"])
}

/// `install PATH --now`: one reload, and exactly `started` (sorted) started successfully.
fn install_now_starts(cli: &Cli, path: &str, started: &[&str]) {
    let r = cli.json(&["install", path, "--now"], 0);
    assert_eq!(r["reloaded"], true, "{r}");
    let mut got = units(&r);
    got.sort();
    let want: Vec<(String, String, String)> = started
        .iter()
        .map(|u| ((*u).to_owned(), "start".to_owned(), "done".to_owned()))
        .collect();
    assert_eq!(got, want, "{r}");
}

/// Three string fields of each object of a JSON array.
fn triples(items: &Value, names: [&str; 3]) -> Vec<(String, String, String)> {
    let field = |o: &Value, n: &str| o[n].as_str().unwrap().to_owned();
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (field(o, names[0]), field(o, names[1]), field(o, names[2])))
        .collect()
}

fn container(env: &str) -> String {
    format!("[Container]\nImage={IMAGE}\nNetwork=none\nEnvironment=V={env}\n\n[Install]\nWantedBy=default.target\n")
}

fn invocation(sb: &UserManager, unit: &str) -> String {
    let out = sb.systemctl(&["show", "-p", "InvocationID", "--value", unit]);
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!id.is_empty(), "{unit} has no InvocationID");
    id
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

/// A user manager with the counting generator and podman's environment, and a CLI for it.
fn user_sandbox(podman: &Podman, work: &Path) -> Option<(UserManager, Cli, PathBuf)> {
    let (gen, count) = counting_generator(work, "uw-user-generator", "");
    let mut b = UserManager::builder()
        .generator(&gen)
        .env("UNITWRIGHT_PODMAN_VERSION", "4.3.1");
    for (k, v) in podman.env() {
        b = b.env(k, v);
    }
    let sb = b.start()?;
    let mut env: Vec<(String, std::ffi::OsString)> = sb
        .client_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.push(("HOME".into(), sb.root.path().join("home").into()));
    env.push((
        "XDG_CONFIG_HOME".into(),
        sb.root.path().join("config").into(),
    ));
    env.push(("UNITWRIGHT_PODMAN_VERSION".into(), "4.3.1".into()));
    Some((
        sb,
        Cli {
            env,
            scope: "--user",
        },
        count,
    ))
}

/// Real podman, a work directory, a user manager with the counting generator and a CLI for it,
/// and the Quadlet directory it installs into. Dropped in reverse: manager, then files, then
/// podman's containers.
struct UserSetup {
    podman: Podman,
    work: tempfile::TempDir,
    sb: UserManager,
    cli: Cli,
    count: PathBuf,
    qdir: PathBuf,
}

fn user_setup() -> Option<UserSetup> {
    let podman = Podman::setup("uwl", IMAGE)?;
    let work = tempfile::tempdir().unwrap();
    let (sb, cli, count) = user_sandbox(&podman, work.path())?;
    let qdir = sb.root.path().join("config/containers/systemd");
    Some(UserSetup {
        podman,
        work,
        sb,
        cli,
        count,
        qdir,
    })
}

#[test]
fn user_apps_install_change_noop_broken_and_rm_with_real_podman() {
    let Some(UserSetup {
        podman,
        work,
        sb,
        cli,
        count,
        qdir,
    }) = user_setup()
    else {
        return;
    };

    // The app: two containers and a volume; one container holds a secret (0600).
    let app = work.path().join("demo");
    write(&app, "web.container", &container("1"));
    write(&app, "api.container", &container("1"));
    write(&app, "data.volume", "[Volume]\n");
    std::fs::set_permissions(
        app.join("api.container"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let app_arg = app.to_str().unwrap();

    let r = cli.json(&["install", app_arg, "--now"], 0);
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(r["reloaded"], true);
    assert_eq!(r["rolled_back"], false);
    let started: Vec<String> = units(&r).into_iter().map(|u| u.0).collect();
    for u in ["web.service", "api.service", "data-volume.service"] {
        assert!(started.contains(&u.to_owned()), "{u} not started: {r}");
        assert_eq!(sb.is_active(u), "active", "{u}");
    }
    assert!(podman.ps().contains("systemd-web"), "{}", podman.ps());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&qdir.join("api.container")), 0o600);
    assert_eq!(mode(&qdir.join("web.container")), 0o644);
    // The generator writes the unit of a secret file 0600 too.
    let generated = sb.runtime_dir.join("systemd/generator");
    assert_eq!(mode(&generated.join("api.service")), 0o600);
    assert_eq!(mode(&generated.join("web.service")), 0o644);

    let list = cli.json(&["list", "--app", "demo"], 0);
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|f| f["active"] == "active"),
        "{list}"
    );

    // Change one container: exactly its unit restarts.
    let before: BTreeMap<&str, String> = ["web.service", "api.service", "data-volume.service"]
        .into_iter()
        .map(|u| (u, invocation(&sb, u)))
        .collect();
    write(&app, "web.container", &container("2"));
    let r = cli.json(&["apply", app_arg, "--app", "demo"], 0);
    assert_eq!(r["changed"], true);
    assert_eq!(r["reloaded"], true);
    assert_eq!(
        units(&r),
        vec![("web.service".into(), "restart".into(), "done".into())],
        "{r}"
    );
    let files: Vec<(String, String)> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
                f["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        files.contains(&("web.container".into(), "changed".into())),
        "{r}"
    );
    assert!(
        files.contains(&("api.container".into(), "unchanged".into())),
        "{r}"
    );
    assert_ne!(invocation(&sb, "web.service"), before["web.service"]);
    assert_eq!(invocation(&sb, "api.service"), before["api.service"]);
    assert_eq!(
        invocation(&sb, "data-volume.service"),
        before["data-volume.service"]
    );
    assert_eq!(sb.is_active("web.service"), "active");
    assert_eq!(mode(&qdir.join("api.container")), 0o600);

    // A change whose restart fails is rolled back: the old file is back and runs again.
    let good = std::fs::read(qdir.join("web.container")).unwrap();
    let missing = container("2").replace(IMAGE, "localhost/uw-life-missing:latest");
    write(&app, "web.container", &missing);
    let r = cli.json(&["apply", app_arg, "--app", "demo"], 1);
    assert_eq!(r["rolled_back"], true, "{r}");
    let u = units(&r);
    assert_eq!(
        (u[0].0.as_str(), u[0].1.as_str()),
        ("web.service", "restart"),
        "{r}"
    );
    assert_ne!(u[0].2, "done", "{r}");
    assert_eq!(std::fs::read(qdir.join("web.container")).unwrap(), good);
    assert_eq!(sb.is_active("web.service"), "active");
    assert!(!qdir.join(".unitwright/txn").exists());
    write(&app, "web.container", &container("2"));

    // A no-op apply: no write, no reload (the generator does not run).
    let generator_runs = runs(&count);
    let disk = tree(&qdir);
    let r = cli.json(&["apply", app_arg, "--app", "demo"], 0);
    assert_eq!(r["changed"], false, "{r}");
    assert_eq!(r["reloaded"], false);
    assert!(units(&r).is_empty());
    assert_eq!(
        runs(&count),
        generator_runs,
        "a no-op apply ran the generator"
    );
    assert_eq!(tree(&qdir), disk);

    // A comment changes the source bytes but nothing systemd reads: written, no restart.
    let api_id = invocation(&sb, "api.service");
    write(
        &app,
        "api.container",
        &format!("# owner: team b\n{}", container("1")),
    );
    let r = cli.json(&["apply", app_arg, "--app", "demo"], 0);
    assert_eq!(r["changed"], true, "{r}");
    assert!(units(&r).is_empty(), "{r}");
    assert_eq!(invocation(&sb, "api.service"), api_id);
    assert_eq!(mode(&qdir.join("api.container")), 0o600);
    let generator_runs = runs(&count);
    let disk = tree(&qdir);

    // --check --diff says what would happen and changes nothing.
    write(&app, "api.container", &container("3"));
    let r = cli.json(&["apply", app_arg, "--app", "demo", "--check", "--diff"], 0);
    assert_eq!(r["changed"], true);
    assert_eq!(r["reloaded"], false);
    assert_eq!(
        units(&r),
        vec![("api.service".into(), "restart".into(), "planned".into())],
        "{r}"
    );
    assert!(r["diff"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["after"].as_str().unwrap().contains("V=3")));
    assert_eq!(tree(&qdir), disk);
    assert_eq!(runs(&count), generator_runs);

    // A broken file: refused with file:line, nothing on disk changes, no reload.
    write(
        &app,
        "api.container",
        &format!("[Container]\nImage={IMAGE}\nNetwork=none\nPublishPort=80:http\nImag=oops\n"),
    );
    let out = cli.run(&["apply", app_arg, "--app", "demo"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("api.container:4: error: invalid PublishPort"),
        "{stderr}"
    );
    assert!(
        stderr.contains("api.container:5: error: unsupported key 'Imag'")
            && stderr.contains("did you mean Image?"),
        "{stderr}"
    );
    assert_eq!(tree(&qdir), disk);
    assert_eq!(runs(&count), generator_runs);
    let v = cli.json(&["verify", app.join("api.container").to_str().unwrap()], 1);
    let lines: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![4, 5], "{v}");

    // rm leaves nothing: units stopped and unloaded, files and record gone, containers gone.
    let r = cli.json(&["rm", "--app", "demo"], 0);
    assert_eq!(r["reloaded"], true, "{r}");
    for u in ["web.service", "api.service", "data-volume.service"] {
        assert_ne!(sb.is_active(u), "active", "{u}");
    }
    let left: Vec<PathBuf> = tree(&qdir).into_keys().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!podman.ps().contains("systemd-"), "{}", podman.ps());
    assert!(cli.json(&["list"], 0).as_array().unwrap().is_empty());
}

/// Runs `apply` paused at `step` (UNITWRIGHT_TEST_PAUSE_AT), kills it with SIGKILL there.
fn apply_killed_at(cli: &Cli, work: &Path, args: &[&str], step: &str) {
    let mut child = apply_paused_at(cli, work, args, step);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Runs `apply` until it pauses at `step` (UNITWRIGHT_TEST_PAUSE_AT), holding the scope lock.
fn apply_paused_at(cli: &Cli, work: &Path, args: &[&str], step: &str) -> std::process::Child {
    let pause = work.join(format!("paused-{step}"));
    let mut child = cli
        .cmd(args)
        .env("UNITWRIGHT_TEST_PAUSE_AT", step)
        .env("UNITWRIGHT_TEST_PAUSE_FILE", &pause)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pause.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply ended before {step}"
        );
        assert!(Instant::now() < deadline, "apply never reached {step}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn volume(label: &str, podman: &Podman) -> String {
    // The system manager gives services a clean environment: podman's configuration goes in.
    let env: Vec<String> = podman
        .env()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.display()))
        .collect();
    format!("[Volume]\nLabel=v={label}\n\n[Service]\nEnvironment={}\n\n[Install]\nWantedBy=default.target\n", env.join(" "))
}

/// A system manager (systemd as PID 1 of private namespaces) whose only generator is the
/// counting wrapper of the real one, reading the Quadlet directory `WORK/quadlets`; a CLI for
/// it; that directory; the generator's run count file.
fn system_sandbox(work: &Path) -> Option<(SystemManager, Cli, PathBuf, PathBuf)> {
    let qdir = work.join("quadlets");
    std::fs::create_dir_all(&qdir).unwrap();
    let (gen, count) = counting_generator(
        work,
        "uw-system-generator",
        &format!(
            "QUADLET_UNIT_DIRS={} UNITWRIGHT_PODMAN_VERSION=4.3.1",
            qdir.display()
        ),
    );
    let sb = SystemManager::start_with_generator(&[], &gen)?;
    let cli = Cli {
        env: vec![
            ("DBUS_SYSTEM_BUS_ADDRESS".into(), sb.bus_address().into()),
            ("QUADLET_UNIT_DIRS".into(), qdir.clone().into()),
            ("UNITWRIGHT_PODMAN_VERSION".into(), "4.3.1".into()),
        ],
        scope: "--system",
    };
    Some((sb, cli, qdir, count))
}

#[test]
fn system_apps_apply_restart_exactly_the_changed_unit_and_survive_kill_9() {
    let Some(podman) = Podman::setup("uwl", IMAGE) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some((sb, cli, qdir, count)) = system_sandbox(work.path()) else {
        return;
    };
    let show = |unit: &str, prop: &str| {
        let out = sb.systemctl(&["show", "-p", prop, "--value", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let app = work.path().join("store");
    for v in ["a", "b", "c"] {
        write(&app, &format!("{v}.volume"), &volume("1", &podman));
    }
    let app_arg = app.to_str().unwrap();
    let r = cli.json(&["apply", app_arg, "--app", "store"], 0);
    assert_eq!(r["reloaded"], true, "{r}");
    for v in ["a", "b", "c"] {
        assert_eq!(
            show(&format!("{v}-volume.service"), "ActiveState"),
            "active",
            "{r}"
        );
    }
    let ids: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|v| show(&format!("{v}-volume.service"), "InvocationID"))
        .collect();
    write(&app, "b.volume", &volume("2", &podman));
    let r = cli.json(&["apply", app_arg, "--app", "store"], 0);
    assert_eq!(
        units(&r),
        vec![("b-volume.service".into(), "restart".into(), "done".into())],
        "{r}"
    );
    assert_eq!(show("a-volume.service", "InvocationID"), ids[0]);
    assert_ne!(show("b-volume.service", "InvocationID"), ids[1]);
    assert_eq!(show("c-volume.service", "InvocationID"), ids[2]);

    // No-op: no reload.
    let n = runs(&count);
    let r = cli.json(&["apply", app_arg, "--app", "store"], 0);
    assert_eq!(
        (r["changed"].clone(), r["reloaded"].clone()),
        (Value::Bool(false), Value::Bool(false))
    );
    assert_eq!(runs(&count), n);

    // The Quadlet files of a tree, without the state directory.
    let sources = |t: BTreeMap<PathBuf, (Vec<u8>, u32)>| -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
        t.into_iter()
            .filter(|(p, _)| !p.starts_with(qdir.join(".unitwright")))
            .collect()
    };
    // Killed after the first of three files was replaced: the next run rolls back to the old
    // files (all three), says so, and then applies.
    let old = tree(&qdir);
    for v in ["a", "b", "c"] {
        write(&app, &format!("{v}.volume"), &volume("3", &podman));
    }
    apply_killed_at(
        &cli,
        work.path(),
        &["apply", app_arg, "--app", "store"],
        "committing",
    );
    let mixed = tree(&qdir);
    assert_ne!(mixed, old, "the kill came after the first replacement");
    let out = cli.run(&["list"]);
    assert!(out.status.success());
    // `list` does not recover (it takes no lock); a changing command does.
    let out = cli.run(&["rm", "nothing.volume"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("recovered: an interrupted run was rolled back"),
        "{stderr}"
    );
    assert_eq!(sources(tree(&qdir)), sources(old));

    // Killed after every file was replaced, before the reload: the next run completes it.
    apply_killed_at(
        &cli,
        work.path(),
        &["apply", app_arg, "--app", "store"],
        "committed",
    );
    let out = cli.run(&["apply", app_arg, "--app", "store", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("recovered: an interrupted run had written all its files"),
        "{stderr}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["changed"], false, "{r}");
    for v in ["a", "b", "c"] {
        assert!(std::fs::read_to_string(qdir.join(format!("{v}.volume")))
            .unwrap()
            .contains("v=3"));
        assert!(
            show(&format!("{v}-volume.service"), "ExecStart").contains("v=3"),
            "{v} not reloaded"
        );
    }

    // Killed after staging, before anything visible changed: the next run discards it.
    let before = sources(tree(&qdir));
    write(&app, "a.volume", &volume("5", &podman));
    apply_killed_at(
        &cli,
        work.path(),
        &["apply", app_arg, "--app", "store"],
        "staged",
    );
    assert_eq!(sources(tree(&qdir)), before);
    let out = cli.run(&["rm", "nothing.volume"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("recovered: an interrupted run had changed nothing"),
        "{stderr}"
    );
    assert!(!qdir.join(".unitwright/txn").exists());

    // Killed after the reload, before the restart: the next run restarts the unit.
    let id = show("a-volume.service", "InvocationID");
    apply_killed_at(
        &cli,
        work.path(),
        &["apply", app_arg, "--app", "store"],
        "reloaded",
    );
    let out = cli.run(&["apply", app_arg, "--app", "store", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("recovered: an interrupted run had written all its files"),
        "{stderr}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["changed"], false, "{r}");
    assert!(show("a-volume.service", "ExecStart").contains("v=5"));
    assert_ne!(show("a-volume.service", "InvocationID"), id);
    assert_eq!(show("a-volume.service", "ActiveState"), "active");

    // A broken file is refused; rm leaves nothing.
    let disk = tree(&qdir);
    write(&app, "c.volume", "[Volume]\nLabel=v=4\nDriver\n");
    let out = cli.run(&["apply", app_arg, "--app", "store"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("c.volume:3: error:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree(&qdir), disk);

    // --prune: the app's file no longer given is stopped and removed.
    std::fs::remove_file(app.join("c.volume")).unwrap();
    let r = cli.json(&["apply", app_arg, "--app", "store", "--prune"], 0);
    assert_eq!(
        units(&r),
        vec![("c-volume.service".into(), "stop".into(), "done".into())],
        "{r}"
    );
    assert!(!qdir.join("c.volume").exists());
    assert_eq!(show("c-volume.service", "LoadState"), "not-found");
    assert_eq!(show("a-volume.service", "ActiveState"), "active");

    let r = cli.json(&["rm", "--app", "store"], 0);
    assert_eq!(r["reloaded"], true);
    assert!(
        tree(&qdir).is_empty(),
        "{:?}",
        tree(&qdir).keys().collect::<Vec<_>>()
    );
    assert_eq!(show("a-volume.service", "LoadState"), "not-found");
}

#[test]
fn quadlet_names_in_unit_verbs_enable_drop_ins_and_rejected_files_explained() {
    let Some(UserSetup {
        podman: _podman,
        work: _work,
        sb,
        cli,
        count: _count,
        qdir,
    }) = user_setup()
    else {
        return;
    };
    // Copied by hand, as users do: one good volume, one with ServiceName=, one broken container.
    write(&qdir, "data.volume", "[Volume]\n");
    write(&qdir, "named.volume", "[Volume]\nServiceName=custom-vol\n");
    write(&qdir, "bad.container", "[Container]\nImag=localhost/x\n");
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // reload: exit 0 like systemctl, but the rejected file is named with its line.
    let out = cli.verb(&["reload", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "bad.container:2: unsupported key 'Imag' in group 'Container'; did you mean Image?"
        ),
        "{stderr}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["rejected"][0]["line"], 2, "{r}");
    assert_eq!(r["rejected"][0]["key"], "Imag", "{r}");

    // status of the unit the rejected file would have made says why it is missing.
    let out = cli.verb(&["status", "bad.service"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("bad.service is missing because the generator rejected"),
        "{}",
        text(&out)
    );

    // Quadlet names in unit verbs: the unit each file generates.
    let out = cli.verb(&["start", "data.volume", "named.volume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(sb.is_active("data-volume.service"), "active");
    assert_eq!(sb.is_active("custom-vol.service"), "active");
    let out = cli.verb(&["stop", "named.volume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_ne!(sb.is_active("custom-vol.service"), "active");

    // enable/disable of a generated unit: an [Install] drop-in, and a reload.
    let wants = || {
        String::from_utf8_lossy(
            &sb.systemctl(&["show", "-p", "Wants", "--value", "default.target"])
                .stdout,
        )
        .into_owned()
    };
    assert!(!wants().contains("data-volume.service"));
    let out = cli.verb(&["enable", "data.volume"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("drop-in"), "{}", text(&out));
    let dropin = qdir.join("data.volume.d/50-unitwright-enable.conf");
    assert!(dropin.exists());
    assert!(wants().contains("data-volume.service"), "{}", wants());
    let out = cli.verb(&["disable", "data-volume.service"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!dropin.exists() && !qdir.join("data.volume.d").exists());
    assert!(!wants().contains("data-volume.service"), "{}", wants());

    // cat: source, then the generated unit.
    let out = cli.run(&["cat", "named.volume"]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("ServiceName=custom-vol")
            && t.contains("custom-vol.service (generated)")
            && t.contains("podman volume create"),
        "{t}"
    );
}

/// A `.container` for the system manager: podman's sandbox configuration goes in through
/// `[Service] Environment=` (the manager gives services a clean environment).
fn system_container(env: &str, podman: &Podman) -> String {
    let conf: Vec<String> = podman
        .env()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.display()))
        .collect();
    format!(
        "[Container]\nImage={IMAGE}\nNetwork=none\nEnvironment=V={env}\n\n[Service]\nEnvironment={}\n\n[Install]\nWantedBy=default.target\n",
        conf.join(" ")
    )
}

#[test]
fn system_containers_run_restart_exactly_the_changed_one_and_rm_with_real_podman() {
    let Some(podman) = Podman::setup("uwl", IMAGE) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let Some((sb, cli, qdir, count)) = system_sandbox(work.path()) else {
        return;
    };
    let show = |unit: &str, prop: &str| {
        let out = sb.systemctl(&["show", "-p", prop, "--value", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let app = work.path().join("site");
    write(&app, "front.container", &system_container("1", &podman));
    write(&app, "back.container", &system_container("1", &podman));
    let app_arg = app.to_str().unwrap();

    // install --now: both containers run.
    install_now_starts(&cli, app_arg, &["back.service", "front.service"]);
    for u in ["front.service", "back.service"] {
        assert_eq!(show(u, "ActiveState"), "active", "{u}");
        assert_eq!(show(u, "SubState"), "running", "{u}");
    }
    let ps = podman.ps();
    assert!(
        ps.contains("systemd-front") && ps.contains("systemd-back"),
        "{ps}"
    );

    // A change of one container restarts exactly its unit.
    let front = show("front.service", "InvocationID");
    let back = show("back.service", "InvocationID");
    assert!(!front.is_empty() && !back.is_empty());
    write(&app, "front.container", &system_container("2", &podman));
    let r = cli.json(&["apply", app_arg, "--app", "site"], 0);
    assert_eq!(
        units(&r),
        vec![("front.service".into(), "restart".into(), "done".into())],
        "{r}"
    );
    assert_ne!(show("front.service", "InvocationID"), front);
    assert_eq!(show("back.service", "InvocationID"), back);
    assert_eq!(show("front.service", "SubState"), "running");
    assert!(show("front.service", "ExecStart").contains("V=2"));

    // No-op: nothing written, no reload (the generator does not run).
    let n = runs(&count);
    let disk = tree(&qdir);
    let r = cli.json(&["apply", app_arg, "--app", "site"], 0);
    assert_eq!(
        (r["changed"].clone(), r["reloaded"].clone()),
        (Value::Bool(false), Value::Bool(false)),
        "{r}"
    );
    assert!(units(&r).is_empty(), "{r}");
    assert_eq!(runs(&count), n, "a no-op apply ran the generator");
    assert_eq!(tree(&qdir), disk);

    // rm: the containers stop, nothing is left.
    let r = cli.json(&["rm", "--app", "site"], 0);
    assert_eq!(r["reloaded"], true, "{r}");
    assert!(
        tree(&qdir).is_empty(),
        "{:?}",
        tree(&qdir).keys().collect::<Vec<_>>()
    );
    for u in ["front.service", "back.service"] {
        assert_eq!(show(u, "LoadState"), "not-found", "{u}");
    }
    assert!(!podman.ps().contains("systemd-"), "{}", podman.ps());
}

/// `verify` reports every problem of a file, also the conversion's errors behind the first
/// one, each with its line; the generator still stops at the first error of the file and
/// writes nothing for it.
#[test]
fn verify_reports_every_problem_of_a_file_and_the_generator_still_stops_at_the_first() {
    let work = tempfile::tempdir().unwrap();
    let qdir = work.path().join("quadlets");
    std::fs::create_dir_all(&qdir).unwrap();
    let app = work.path().join("app");
    let text = "[Container]\n\
                Imag=localhost/x\n\
                PublishPort=80:http\n\
                ExposeHostPort=abc\n\
                Network=missing.network\n\
                Volume=gone.volume:/data\n\
                \n\
                [Service]\n\
                Restart=sometimes\n";
    write(&app, "bad.container", text);
    write(&app, "good.volume", "[Volume]\n");
    let cli = Cli {
        env: vec![
            ("QUADLET_UNIT_DIRS".into(), qdir.clone().into()),
            ("UNITWRIGHT_PODMAN_VERSION".into(), "4.3.1".into()),
        ],
        scope: "--system",
    };
    let v = cli.json(&["verify", app.to_str().unwrap()], 1);
    let got: Vec<(String, Option<u64>, String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["file"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
                d["line"].as_u64(),
                d["key"].as_str().unwrap_or_default().to_owned(),
                d["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let e = |line: Option<u64>, key: &str| {
        (
            "bad.container".to_owned(),
            line,
            key.to_owned(),
            "error".to_owned(),
        )
    };
    assert_eq!(
        got,
        vec![
            e(Some(2), "Imag"),           // unknown key (with a hint)
            e(Some(3), "PublishPort"),    // bad value (the value checks)
            e(Some(4), "ExposeHostPort"), // bad value (the conversion)
            e(Some(5), "Network"),        // a reference to a file that does not exist
            e(Some(6), "Volume"),         // another one
            e(Some(9), "Restart"),        // bad [Service] value
            e(None, "Image"),             // missing Image=
        ],
        "{v:#}"
    );
    let by_key = |k: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|d| d["key"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(by_key("Imag")["hint"], "did you mean Image?", "{v:#}");
    assert!(by_key("Network")["message"]
        .as_str()
        .unwrap()
        .contains("missing.network was not found"));
    assert!(by_key("Image")["message"]
        .as_str()
        .unwrap()
        .contains("no Image or Rootfs key specified"));

    // The generator on the same files: the first error of bad.container only, no unit for it,
    // the good file's unit written.
    std::fs::copy(app.join("bad.container"), qdir.join("bad.container")).unwrap();
    std::fs::copy(app.join("good.volume"), qdir.join("good.volume")).unwrap();
    let out_dir = work.path().join("out");
    let out = Command::new(support::generator_binary(UNITWRIGHT))
        .args(["-no-kmsg-log", out_dir.to_str().unwrap()])
        .env("QUADLET_UNIT_DIRS", &qdir)
        .env("UNITWRIGHT_PODMAN_VERSION", "4.3.1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("converting"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("unsupported key 'Imag' in group 'Container'"),
        "{stderr}"
    );
    assert!(!out_dir.join("bad.service").exists());
    assert!(out_dir.join("good-volume.service").exists());
}

/// A container that exits right after podman started it: its start job is `done` (podman's
/// READY comes as soon as the container runs), so without `--settle` the install says so; with
/// the default settle time the failure is caught, the change rolled back (the good unit started
/// with it is stopped again) and the container's own words quoted from the journal, in text and
/// in JSON; the same for a restart after a change. The CLI runs inside the sandbox's mount
/// namespace, where its journal is.
#[test]
fn a_unit_that_fails_right_after_its_start_is_rolled_back_and_explained() {
    let Some(podman) = Podman::setup("uwl", IMAGE) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let mut b = UserManager::builder()
        .journal(true)
        .all_controllers(true)
        .generator(support::generator_binary(UNITWRIGHT))
        .env("UNITWRIGHT_PODMAN_VERSION", "4.3.1");
    for (k, v) in podman.env() {
        b = b.env(k, v);
    }
    let Some(sb) = b.start() else {
        return;
    };
    let config = sb.root.path().join("config");
    let qdir = config.join("containers/systemd");
    let app = work.path().join("shop");
    write(
        &app,
        "crash.container",
        &format!(
            "[Container]\nImage={IMAGE}\nNetwork=none\nLogDriver=journald\n\
             Exec=sh -c 'echo \"no /etc/shop.conf, giving up\" >&2; exit 3'\n"
        ),
    );
    write(&app, "front.container", &container("f"));
    let install = |config: &Path, extra: &[&str]| {
        let out = sb
            .command(UNITWRIGHT)
            .env("XDG_CONFIG_HOME", config)
            .env("UNITWRIGHT_PODMAN_VERSION", "4.3.1")
            .args([
                "--user",
                "quadlet",
                "install",
                app.to_str().unwrap(),
                "--now",
            ])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };

    // Not watched: the jobs succeed, and the container is dead a moment later.
    let (code, stdout, stderr) = install(&config, &["--settle", "0"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("start crash.service: done"), "{stdout}");
    let rm = sb
        .command(UNITWRIGHT)
        .env("XDG_CONFIG_HOME", &config)
        .args(["--user", "quadlet", "rm", "--app", "shop"])
        .output()
        .unwrap();
    assert_eq!(rm.status.code(), Some(0), "{rm:?}");
    let _ = sb.systemctl(&["reset-failed"]);

    let (code, stdout, stderr) = install(&config, &["--json"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let r: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["rolled_back"], true, "{r}");
    let crash = r["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "crash.service")
        .unwrap_or_else(|| panic!("{r}"));
    let result = crash["result"].as_str().unwrap();
    assert!(
        result.starts_with("failed within 2 s of its start: ")
            && result.contains("exited with status 3"),
        "{result}"
    );
    let said = |v: &Value| {
        v.as_array()
            .is_some_and(|o| o.iter().any(|l| l == "no /etc/shop.conf, giving up"))
    };
    assert!(said(&crash["output"]), "{r}");
    assert!(
        stderr.contains("start of crash.service failed: failed within 2 s")
            && stderr.contains("no /etc/shop.conf, giving up")
            && stderr.contains("more: unitwright --user logs crash.service"),
        "{stderr}"
    );
    // Rolled back: no files, the good unit is not left running, nothing for podman.
    assert!(
        tree(&qdir)
            .keys()
            .all(|p| p.starts_with(qdir.join(".unitwright"))),
        "{:?}",
        tree(&qdir).keys()
    );
    assert_ne!(sb.is_active("front.service"), "active");
    assert!(!podman.ps().contains("systemd-"), "{}", podman.ps());

    // Files put where the manager's generator does not look: the units never appear, and the
    // report says why that can be, rather than only "not found".
    let (code, _, stderr) = install(&work.path().join("elsewhere"), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("start of front.service failed: unit front.service not found")
            && stderr
                .contains("front.service does not exist after the reload, so no generator made it"),
        "{stderr}"
    );

    // A change that makes a running container die right after its restart: rolled back, and
    // the previous unit runs again.
    std::fs::remove_file(app.join("crash.container")).unwrap();
    let (code, _, stderr) = install(&config, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(sb.is_active("front.service"), "active");
    write(
        &app,
        "front.container",
        &container("f").replace(
            "Network=none\n",
            "Network=none\nLogDriver=journald\nExec=sh -c 'echo \"bad flag -x\" >&2; exit 4'\n",
        ),
    );
    let out = sb
        .command(UNITWRIGHT)
        .env("XDG_CONFIG_HOME", &config)
        .env("UNITWRIGHT_PODMAN_VERSION", "4.3.1")
        .args([
            "--user",
            "quadlet",
            "apply",
            app.to_str().unwrap(),
            "--app",
            "shop",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("restart of front.service failed: failed within 2 s of its restart")
            && stderr.contains("bad flag -x")
            && stderr.contains("the previous files are back"),
        "{stderr}"
    );
    assert_eq!(sb.is_active("front.service"), "active");
    let exec = sb.systemctl(&["show", "-p", "ExecStart", "--value", "front.service"]);
    assert!(!String::from_utf8_lossy(&exec.stdout).contains("bad flag"));
    assert!(!std::fs::read_to_string(qdir.join("front.container"))
        .unwrap()
        .contains("bad flag"));
}

/// `verify` tells a PATH it cannot read (a usage error, exit 2, like a bad `--app`) from files
/// with errors (exit 1), and warns about a file that reads like a Quadlet file but is named so
/// that the generator ignores it; files an app carries beside its units raise nothing.
#[test]
fn verify_refuses_an_unreadable_path_and_warns_about_a_misnamed_quadlet_file() {
    let work = tempfile::tempdir().unwrap();
    let qdir = work.path().join("quadlets");
    let app = work.path().join("app");
    write(
        &app,
        "web.txt",
        "# the web front\n[Container]\nImage=localhost/x\n",
    );
    write(&app, "api.container", "[Container]\nImage=localhost/x\n");
    write(&app, "api.yaml", "apiVersion: v1\nkind: Pod\n");
    let cli = Cli {
        env: vec![("QUADLET_UNIT_DIRS".into(), qdir.into())],
        scope: "--system",
    };
    let missing = work.path().join("nowhere.container");
    let out = cli.run(&["verify", app.to_str().unwrap(), missing.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nowhere.container") && stderr.contains("a PATH is a Quadlet file"),
        "{stderr}"
    );

    let v = cli.json(&["verify", app.to_str().unwrap()], 0);
    let d = v.as_array().unwrap();
    assert_eq!(d.len(), 1, "{v}");
    assert_eq!(d[0]["file"], app.join("web.txt").to_str().unwrap(), "{v}");
    assert_eq!(
        (d[0]["line"].as_u64(), d[0]["severity"].as_str()),
        (Some(2), Some("warning"))
    );
    assert_eq!(d[0]["hint"], "rename it to web.container", "{v}");
    let out = cli.run(&["verify", app.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("web.txt:2") && stdout.contains("no unit is made from it"),
        "{stdout}"
    );

    // Into a pipe whose reader has gone (`verify --json | true`): quiet, 141 as for SIGPIPE,
    // not Rust's "failed printing to stdout" panic.
    let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let pipe = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    let out = cli
        .cmd(&["verify", app.to_str().unwrap(), "--json"])
        .stdout(Stdio::from(pipe))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

/// A podman `.quadlets` file (sections split by `---`, each named by `# FileName=`) installed
/// against a real user manager: its files land in the Quadlet directory as one app named after
/// it, `--now` starts them, `list` shows the app, `rm --app` removes everything.
#[test]
fn a_quadlets_file_installs_as_one_app_starts_lists_and_is_removed() {
    let Some(setup) = user_setup() else {
        return;
    };
    let UserSetup {
        podman,
        work,
        sb,
        cli,
        qdir,
        ..
    } = &setup;
    let bundle = work.path().join("stack.quadlets");
    // The first section is named without its extension (the type group gives it).
    std::fs::write(
        &bundle,
        format!(
            "# FileName=front\n{}---\n# FileName=cache.volume\n[Volume]\nLabel=app=stack\n---\n# FileName=back.container\n{}",
            container("f"),
            container("b")
        ),
    )
    .unwrap();

    install_now_starts(
        cli,
        bundle.to_str().unwrap(),
        &["back.service", "cache-volume.service", "front.service"],
    );
    for f in ["front.container", "cache.volume", "back.container"] {
        assert!(qdir.join(f).is_file(), "{f} not installed");
    }
    assert!(std::fs::read_to_string(qdir.join("front.container"))
        .unwrap()
        .contains("Environment=V=f"));
    assert!(qdir.join(".unitwright/apps/stack.json").is_file());
    for u in ["front.service", "back.service", "cache-volume.service"] {
        assert_eq!(sb.is_active(u), "active", "{u}");
    }
    let ps = podman.ps();
    assert!(
        ps.contains("systemd-front") && ps.contains("systemd-back"),
        "{ps}"
    );

    let list = cli.json(&["list", "--app", "stack"], 0);
    let mut rows = triples(&list, ["unit", "app", "active"]);
    rows.sort();
    let row = |u: &str| (u.to_owned(), "stack".to_owned(), "active".to_owned());
    assert_eq!(
        rows,
        vec![
            row("back.service"),
            row("cache-volume.service"),
            row("front.service")
        ],
        "{list}"
    );

    // Another app does not take a file of this one silently; `install --replace` moves it
    // (both records change in the same transaction).
    let single = work.path().join("cache.volume");
    std::fs::write(&single, "[Volume]\nLabel=app=other\n").unwrap();
    let single = single.to_str().unwrap();
    let out = cli.run(&["install", single, "--app", "other"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("belongs to app stack") && stderr.contains("install --replace"),
        "{stderr}"
    );
    let out = cli.run(&["install", single, "--app", "other", "--replace", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("cache.volume moved from app stack to app other"),
        "{stderr}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["changed"], true, "{r}");
    let app_of = |file: &str| {
        let list = cli.json(&["list"], 0);
        list.as_array()
            .unwrap()
            .iter()
            .find(|f| f["file"].as_str().unwrap().ends_with(file))
            .map(|f| f["app"].clone())
    };
    assert_eq!(app_of("/cache.volume"), Some(Value::from("other")));
    assert_eq!(app_of("/front.container"), Some(Value::from("stack")));
    assert!(
        !std::fs::read_to_string(qdir.join(".unitwright/apps/stack.json"))
            .unwrap()
            .contains("cache.volume")
    );

    // A drop-in given on its own lands flat in the Quadlet directory, where the generator
    // ignores it: installed (an app may carry other files), with a warning that says so.
    let stray = work.path().join("10-label.conf");
    std::fs::write(&stray, "[Volume]\nLabel=tier=cache\n").unwrap();
    let out = cli.run(&["install", stray.to_str().unwrap(), "--app", "other"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("10-label.conf has a [Volume] section")
            && stderr.contains("NAME.volume.d/"),
        "{stderr}"
    );
    assert!(qdir.join("10-label.conf").is_file());

    let r = cli.json(&["rm", "--app", "stack"], 0);
    assert_eq!(r["reloaded"], true, "{r}");
    for u in ["front.service", "back.service"] {
        assert_ne!(sb.is_active(u), "active", "{u}");
    }
    assert!(qdir.join("cache.volume").is_file(), "app other's file went");
    cli.json(&["rm", "--app", "other"], 0);
    assert_ne!(sb.is_active("cache-volume.service"), "active");
    let left: Vec<PathBuf> = tree(qdir).into_keys().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!podman.ps().contains("systemd-"), "{}", podman.ps());
    assert!(cli.json(&["list"], 0).as_array().unwrap().is_empty());
}

/// `list` takes no lock: while an apply holds the scope lock in the middle of its renames, it
/// returns, and shows the committed state (the apply's half-made change is not seen).
#[test]
fn list_reads_the_committed_state_while_an_apply_holds_the_scope_lock() {
    let Some(setup) = user_setup() else {
        return;
    };
    let (cli, work, qdir) = (&setup.cli, setup.work.path(), &setup.qdir);
    let app = work.join("kv");
    write(&app, "a.volume", "[Volume]\n");
    write(&app, "b.volume", "[Volume]\n");
    let app_arg = app.to_str().unwrap();
    cli.json(&["install", app_arg], 0);

    // The apply renames a.volume (first), then stops while holding the lock.
    write(&app, "a.volume", "[Volume]\nServiceName=alpha\n");
    write(&app, "b.volume", "[Volume]\nServiceName=beta\n");
    write(&app, "c.volume", "[Volume]\n");
    let mut apply = apply_paused_at(cli, work, &["apply", app_arg, "--app", "kv"], "committing");
    let lock = qdir.join(".unitwright/lock");
    let held = Command::new("flock")
        .args(["-n", lock.to_str().unwrap(), "true"])
        .status()
        .unwrap();
    assert!(
        !held.success(),
        "the paused apply does not hold the scope lock"
    );
    assert!(
        std::fs::read_to_string(qdir.join("a.volume"))
            .unwrap()
            .contains("alpha"),
        "the apply had not replaced a.volume yet"
    );

    let mut list = cli
        .cmd(&["list", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while list.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            list.kill().unwrap();
            apply.kill().unwrap();
            panic!("list waits for the scope lock");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = list.wait_with_output().unwrap();
    apply.kill().unwrap();
    apply.wait().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut rows: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["unit"].as_str().unwrap_or("-").to_owned(),
                f["app"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("a-volume.service".to_owned(), "kv".to_owned()),
            ("b-volume.service".to_owned(), "kv".to_owned())
        ],
        "{v:#}"
    );
}
