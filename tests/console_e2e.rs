#![allow(clippy::unwrap_used)]
//! The console workflow end to end, with real parts only: a real `systemd --user` (the
//! [`support::UserManager`] sandbox), the real `unitwright-generator` installed as a user
//! generator, the shipped `units/console@.container`, real podman 4.3.1 running a busybox
//! image built here, and the `unitwright` CLI.
//!
//! Podman is isolated per test: `CONTAINERS_STORAGE_CONF` points at storage (vfs) in the
//! test's temporary directory and `CONTAINERS_CONF` sets what this machine needs
//! (sandbox.md: `default_ulimits`, `runtime = "runc"`); both are in the manager's environment,
//! so the units' podman uses them too. Without root, unshare or podman the tests skip loudly;
//! with `CI=true` they fail.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::podman::WithContainers;
use support::UserManager;

const UNITWRIGHT: &str = env!("CARGO_BIN_EXE_unitwright");
const TEMPLATE: &str = "console@.service";
const IMAGE: &str = "localhost/uw-console-bb:latest";

/// Isolated podman configuration and storage, and the busybox image.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("CONTAINERS_CONF", self.dir.path().join("containers.conf")),
            (
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            ),
        ]
    }

    fn quadlet_dir(&self) -> PathBuf {
        self.dir.path().join("quadlet")
    }

    /// Sets up podman and imports the image; `None` (skip) or a panic (CI) if podman cannot
    /// run here.
    fn setup() -> Option<Podman> {
        match Self::try_setup() {
            Ok(p) => Some(p),
            Err(e) if support::ci() => panic!("CI=true and podman cannot be set up: {e}"),
            Err(e) => {
                eprintln!("\n!!! SKIPPING: podman cannot be set up: {e}\n!!! (with CI=true this test would fail)\n");
                None
            }
        }
    }

    fn try_setup() -> Result<Podman, String> {
        let dir = tempfile::Builder::new()
            .prefix("uwc")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        let d = dir.path();
        std::fs::write(
            d.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n[engine]\nruntime = \"runc\"\n",
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/g\"\nrunroot = \"{0}/r\"\n",
                d.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        std::fs::create_dir_all(d.join("quadlet")).map_err(|e| e.to_string())?;
        // The image: busybox-static and its applets; the command writes $APP into the page
        // it serves on 5900, so each instance's answer shows its own settings. The shell stays
        // PID 1 with a TERM trap (httpd as PID 1 would ignore SIGTERM).
        let root = d.join("image");
        std::fs::create_dir_all(root.join("bin")).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(root.join("www")).map_err(|e| e.to_string())?;
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .map_err(|e| format!("copying /bin/busybox (apt-get install busybox-static): {e}"))?;
        for applet in ["sh", "httpd", "echo", "sleep", "cat"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
                .map_err(|e| e.to_string())?;
        }
        let tar = d.join("image.tar");
        run(Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg("."))?;
        let p = Podman { dir };
        run(p
            .podman()
            .args([
                "import",
                "--quiet",
                "--change",
                r#"CMD ["/bin/sh", "-c", "printf 'console for [%s] info %s\n' \"$APP\" \"$APP_INFO\" > /www/index.html; trap 'exit 0' TERM; /bin/httpd -f -p 5900 -h /www & wait"]"#,
            ])
            .arg(&tar)
            .arg(IMAGE))?;
        Ok(p)
    }

    fn podman(&self) -> Command {
        let mut c = Command::new("podman");
        c.envs(self.env());
        c
    }

    /// `podman ps -a` names.
    fn containers(&self) -> String {
        let out = self
            .podman()
            .args(["ps", "-a", "--format", "{{.Names}}"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers die with the manager's namespace; remove what podman still records.
        let _ = self
            .podman()
            .args(["rm", "-a", "-f"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("running {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A manager whose generator has converted `units/console@.container` (at its start: the
/// only generator run of the test).
fn sandbox(podman: &Podman) -> Option<WithContainers> {
    sandbox_with(podman, &[])
}

/// [`sandbox`] with extra variables in the manager's environment.
fn sandbox_with(podman: &Podman, env: &[(&str, &Path)]) -> Option<WithContainers> {
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("units/console@.container"),
        podman.quadlet_dir().join("console@.container"),
    )
    .unwrap();
    let mut b = UserManager::builder()
        .generator(support::generator_binary(UNITWRIGHT))
        .env("QUADLET_UNIT_DIRS", podman.quadlet_dir())
        .env("UNITWRIGHT", UNITWRIGHT);
    for (k, v) in podman.env() {
        b = b.env(k, v);
    }
    for (k, v) in env {
        b = b.env(k, v);
    }
    Some(WithContainers::new(b.start()?, podman.env()))
}

fn cli(m: &UserManager, args: &[&str]) -> Output {
    Command::new(UNITWRIGHT)
        .arg("--user")
        .args(args)
        .envs(m.client_env())
        .output()
        .unwrap()
}

/// `unitwright --user instance start TEMPLATE ID --set S... [--json]` (an `S` starting with
/// `--` is passed as an option).
fn start(m: &UserManager, id: &str, settings: &[&str], json: bool) -> Output {
    let mut args = vec!["instance", "start", TEMPLATE, id];
    for s in settings {
        if s.starts_with("--") {
            args.push(s);
        } else {
            args.extend(["--set", s]);
        }
    }
    if json {
        args.push("--json");
    }
    cli(m, &args)
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The page served on 127.0.0.1:`port`.
fn http_get(port: u16) -> String {
    support::podman::http_get(port, "console for")
}

/// What the manager knows about `unit` and its log (for failure messages).
fn diagnose(m: &UserManager, unit: &str) -> String {
    let status = m.systemctl(&["status", "--no-pager", "-l", unit]);
    let log = std::fs::read_to_string(m.root.path().join("sandbox.log")).unwrap_or_default();
    let tail: Vec<&str> = log
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "{}\n--- manager log ---\n{}",
        String::from_utf8_lossy(&status.stdout),
        tail.join("\n")
    )
}

fn settings_dir(m: &UserManager) -> PathBuf {
    m.runtime_dir.join("unitwright/instances")
}

fn instance_unit(id: &str) -> String {
    unitwright::instance::unit_name(TEMPLATE, id).unwrap()
}

#[test]
fn consoles_with_hard_ids_each_serve_their_own_settings_and_leave_nothing_behind() {
    let Some(podman) = Podman::setup() else {
        return;
    };
    let Some(m) = sandbox(&podman) else {
        return;
    };
    let ids = [
        "5b3c6a0e-8f2d-4c1e-9a7b-2d4f6e8a0c1b",
        "node 7/a:b",
        "a-b",
        "ax2db",
    ];
    let mut ports = BTreeMap::new();
    for id in ids {
        let out = start(
            &m,
            id,
            &[
                &format!("IMAGE={IMAGE}"),
                "PORT=auto-port",
                &format!("APP={id}"),
                r#"APP_INFO={"id": "x y", "n": 1}"#,
            ],
            true,
        );
        let v = ok_json(&out);
        assert_eq!(v["unit"], instance_unit(id));
        assert_eq!(v["id"], id);
        assert_eq!(v["active_state"], "active", "{v}");
        assert_eq!(v["sub_state"], "running", "{v}");
        let port: u16 = v["settings"]["PORT"].as_str().unwrap().parse().unwrap();
        assert!(
            ports.values().all(|&p| p != port),
            "port {port} given twice"
        );
        ports.insert(id, port);
    }
    // `a-b` (console@a\x2db) and `ax2db` would share an EnvironmentFile= glob; here each
    // container got exactly its own APP.
    for (id, port) in &ports {
        let page = http_get(*port);
        assert!(
            page.contains(&format!(
                "console for [{id}] info {{\"id\": \"x y\", \"n\": 1}}"
            )),
            "{id} on {port} answered {page:?}"
        );
    }

    let list = ok_json(&cli(&m, &["instance", "list", TEMPLATE, "--json"]));
    let listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort_by_key(|id| instance_unit(id));
    assert_eq!(listed, expected);
    for i in list.as_array().unwrap() {
        assert_eq!(i["active_state"], "active");
        assert_eq!(
            i["keys"],
            serde_json::json!(["APP", "APP_INFO", "IMAGE", "PORT"])
        );
        assert!(
            !i.to_string().contains("x y"),
            "list must not print values: {i}"
        );
    }
    let text = cli(&m, &["instance", "list", TEMPLATE]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("console@node\\x207-a:b.service"));

    // Once the settings exist, systemd itself can (re)start the instance.
    let ab = instance_unit("a-b");
    assert!(m.systemctl(&["stop", &ab]).status.success());
    let out = m.systemctl(&["start", &ab]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        diagnose(&m, &ab)
    );
    assert!(http_get(ports["a-b"]).contains("console for [a-b]"));

    // `show` reads the published address from the running unit (the container's conmon holds
    // the host port), not from the settings.
    for (id, port) in &ports {
        let v = ok_json(&cli(&m, &["instance", "show", TEMPLATE, id, "--json"]));
        assert_eq!(
            v["published"],
            serde_json::json!([format!("127.0.0.1:{port}")]),
            "{id}: {v}"
        );
    }
    let text = cli(&m, &["instance", "show", TEMPLATE, "node 7/a:b"]);
    assert!(String::from_utf8_lossy(&text.stdout)
        .contains(&format!("published: 127.0.0.1:{}", ports["node 7/a:b"])));

    // A restart keeps the settings and so the port; --replace changes APP, keeps the port.
    let v = ok_json(&cli(
        &m,
        &["instance", "restart", TEMPLATE, "a-b", "--json"],
    ));
    assert_eq!(v["sub_state"], "running", "{v}");
    assert!(http_get(ports["a-b"]).contains("console for [a-b]"));
    let v = ok_json(&start(
        &m,
        "a-b",
        &[
            &format!("IMAGE={IMAGE}"),
            "PORT=auto-port",
            "APP=replaced",
            "--replace",
        ],
        true,
    ));
    assert_eq!(v["settings"]["PORT"], ports["a-b"].to_string());
    assert!(http_get(ports["a-b"]).contains("console for [replaced]"));

    let out = cli(&m, &["instance", "stop", TEMPLATE, ids[0]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(m.is_active(&instance_unit(ids[0])), "inactive");
    assert!(!settings_dir(&m).join(instance_unit(ids[0])).exists());

    let out = cli(&m, &["instance", "stop-all", TEMPLATE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ids {
        assert_eq!(m.is_active(&instance_unit(id)), "inactive", "{id}");
    }
    let left: Vec<_> = std::fs::read_dir(settings_dir(&m))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".lock" && n != ".locks")
        .collect();
    let locks: Vec<_> = std::fs::read_dir(settings_dir(&m).join(".locks"))
        .unwrap()
        .collect();
    assert!(locks.is_empty(), "lock files left: {locks:?}");
    assert!(left.is_empty(), "settings left: {left:?}");
    assert_eq!(podman.containers(), "", "containers left behind");
    let list = ok_json(&cli(&m, &["instance", "list", TEMPLATE, "--json"]));
    assert_eq!(list, serde_json::json!([]));
}

#[test]
fn a_failed_start_explains_itself_and_leaves_no_settings_and_no_failed_unit() {
    let Some(podman) = Podman::setup() else {
        return;
    };
    let Some(m) = sandbox(&podman) else {
        return;
    };
    let id = "missing-image";
    let unit = instance_unit(id);
    let out = start(
        &m,
        id,
        &["IMAGE=localhost/no-such-image:latest", "PORT=auto-port"],
        false,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "starting {unit} failed: result exit-code, ExecStart exited with status"
        )),
        "{stderr}"
    );
    assert!(!settings_dir(&m).join(&unit).exists());
    assert!(
        !settings_dir(&m).join(".locks").join(&unit).exists(),
        "the failed instance's lock file is left"
    );
    assert_eq!(m.is_active(&unit), "inactive");
    let failed = m.systemctl(&["list-units", "--failed", "--plain", "--no-legend"]);
    assert_eq!(String::from_utf8_lossy(&failed.stdout).trim(), "");

    // A required setting that is missing is named before anything is started or written.
    let out = start(&m, id, &["PORT=1"], false);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{unit}: missing required setting(s) IMAGE: pass them"
        )),
        "{stderr}"
    );
    assert!(!settings_dir(&m).join(&unit).exists());
    assert!(!settings_dir(&m).join(".locks").join(&unit).exists());
    assert_eq!(m.is_active(&unit), "inactive");
    assert_eq!(podman.containers(), "");
}

/// The host's network state that names container `id`: iptables NAT rules and CNI address
/// reservations (the files of `/var/lib/cni/networks/*/` hold the container ID).
fn host_network_state(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let rules = Command::new("iptables")
        .args(["-t", "nat", "-S"])
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&rules.stdout).lines() {
        if line.contains(id) {
            found.push(line.to_owned());
        }
    }
    for net in std::fs::read_dir("/var/lib/cni/networks")
        .into_iter()
        .flatten()
        .flatten()
    {
        for f in std::fs::read_dir(net.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if std::fs::read_to_string(f.path()).is_ok_and(|c| c.starts_with(id)) {
                found.push(f.path().display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_test_that_ends_with_consoles_running_leaves_no_network_state_on_the_host() {
    let Some(podman) = Podman::setup() else {
        return;
    };
    let Some(m) = sandbox(&podman) else {
        return;
    };
    let v = ok_json(&start(
        &m,
        "left-running",
        &[&format!("IMAGE={IMAGE}"), "PORT=auto-port"],
        true,
    ));
    assert_eq!(v["active_state"], "active", "{v}");
    // Asked inside the sandbox, where the units' podman keeps its run-time state.
    let out = m
        .podman()
        .args(["ps", "--no-trunc", "--format", "{{.ID}}"])
        .output()
        .unwrap();
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(id.len(), 64, "one running container expected, got {id:?}");
    assert!(
        !host_network_state(&id).is_empty(),
        "the running console has no DNAT rule or address reservation: nothing to check"
    );
    let out = m
        .command("podman")
        .envs(podman.env())
        .args([
            "inspect",
            "--format",
            "{{.NetworkSettings.SandboxKey}}",
            &id,
        ])
        .output()
        .unwrap();
    let netns = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(netns.starts_with("/run/netns"), "{}", netns.display());
    // What a failing assertion does: the sandbox is dropped with the console running.
    drop(m);
    assert_eq!(host_network_state(&id), Vec::<String>::new());
    assert!(!netns.exists(), "{} is left", netns.display());
}

#[test]
fn persistent_settings_survive_the_end_of_the_manager_and_its_runtime_directory() {
    let Some(podman) = Podman::setup() else {
        return;
    };
    // %S of the user manager is $XDG_STATE_HOME; it outlives both sandboxes, as /var/lib or
    // ~/.local/state outlive a reboot, while each sandbox has its own fresh runtime directory.
    let state = podman.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let boot = |podman: &Podman| sandbox_with(podman, &[("XDG_STATE_HOME", &state)]);
    let cli = |m: &UserManager, args: &[&str]| {
        Command::new(UNITWRIGHT)
            .arg("--user")
            .args(args)
            .envs(m.client_env())
            .env("XDG_STATE_HOME", &state)
            .output()
            .unwrap()
    };
    let id = "node 9/p";
    let unit = instance_unit(id);
    let file = state.join("unitwright/instances").join(&unit);
    let port = {
        let Some(m) = boot(&podman) else {
            return;
        };
        let v = ok_json(&cli(
            &m,
            &[
                "instance",
                "start",
                TEMPLATE,
                id,
                "--persistent",
                "--set",
                &format!("IMAGE={IMAGE}"),
                "--set",
                "PORT=auto-port",
                "--set",
                "APP=kept",
                "--json",
            ],
        ));
        let port: u16 = v["settings"]["PORT"].as_str().unwrap().parse().unwrap();
        assert!(http_get(port).contains("console for [kept]"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&file).unwrap().permissions(),
        ) & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            !settings_dir(&m).join(&unit).exists(),
            "not in the runtime dir"
        );
        let list = ok_json(&cli(&m, &["instance", "list", TEMPLATE, "--json"]));
        assert_eq!(list[0]["persistent"], true, "{list}");
        let text = cli(&m, &["instance", "list", TEMPLATE]);
        assert!(String::from_utf8_lossy(&text.stdout).contains(" persistent "));
        // A shutdown stops the unit (with systemd, not unitwright: the settings stay), then the
        // manager, its runtime directory and every process end here.
        let out = m.systemctl(&["stop", &unit]);
        assert!(out.status.success());
        assert!(file.exists());
        port
    };
    assert!(file.exists(), "the settings survived");
    let Some(m) = boot(&podman) else {
        return;
    };
    // The unit finds them by itself (%S/unitwright/instances), without unitwright.
    let out = m.systemctl(&["start", &unit]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        diagnose(&m, &unit)
    );
    assert!(http_get(port).contains("console for [kept]"));
    let v = ok_json(&cli(&m, &["instance", "show", TEMPLATE, id, "--json"]));
    assert_eq!(v["persistent"], true);
    assert_eq!(
        v["published"],
        serde_json::json!([format!("127.0.0.1:{port}")])
    );
    let out = cli(&m, &["instance", "stop", TEMPLATE, id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!file.exists(), "stop removes persistent settings too");
}
