//! The Ansible collection (`ansible/`, `unitwright.systemd`) against the sandboxed remote host
//! of `tests/support/remote.rs` (real sshd and systemd; ansible-core from PyPI, installed by
//! `ansible/tests/setup-venv.sh`, which `.ci/run` calls):
//! * the collection builds with `ansible-galaxy collection build` and installs;
//! * a playbook (units on the system manager, an instance with a secret setting, a unit and a
//!   Quadlet app of the test user's own manager) changes things on the first run and nothing
//!   on the second;
//! * `--check --diff` reports the changes a playbook would make (with the Quadlet file's diff)
//!   and changes nothing.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::remote::{RemoteHost, TEST_USER};
use support::{ci, SLEEP_SERVICE};

fn venv() -> Option<PathBuf> {
    let dir = std::env::var_os("UNITWRIGHT_ANSIBLE_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ansible-venv"),
        PathBuf::from,
    );
    if dir.join("bin/ansible-playbook").exists() {
        return Some(dir);
    }
    let why = format!(
        "no ansible-core in {} (run ansible/tests/setup-venv.sh)",
        dir.display()
    );
    assert!(!ci(), "CI=true and {why}");
    eprintln!("\n!!! SKIPPING: {why}\n");
    None
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The sum of `changed=N` over the hosts of the `PLAY RECAP`.
fn changed(out: &Output) -> u32 {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let recap = stdout
        .split("PLAY RECAP")
        .nth(1)
        .unwrap_or_else(|| panic!("no recap in {}", text(out)));
    recap
        .lines()
        .filter_map(|l| l.split("changed=").nth(1))
        .map(|n| n.split_whitespace().next().unwrap().parse::<u32>().unwrap())
        .sum()
}

struct Rig {
    host: RemoteHost,
    venv: PathBuf,
    dir: tempfile::TempDir,
}

impl Rig {
    fn playbook(&self, playbook: &str, extra: &[&str]) -> Output {
        let d = self.dir.path();
        let book = d.join("play.yml");
        std::fs::write(&book, playbook).unwrap();
        self.host
            .command(self.venv.join("bin/ansible-playbook"))
            .args(["-i"])
            .arg(d.join("inventory"))
            .arg(&book)
            .args(extra)
            .env("ANSIBLE_HOME", d.join("home"))
            .env("ANSIBLE_COLLECTIONS_PATH", d.join("collections"))
            .env("ANSIBLE_LOCAL_TEMP", d.join("tmp"))
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", d.join("cp"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("ANSIBLE_STDOUT_CALLBACK", "default")
            .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn rig() -> Option<Rig> {
    let venv = venv()?;
    // A template whose instances read their settings (through `unitwright instance exec`).
    let template = format!(
        "[Service]\nExecStart={} instance exec --settings-dir=%t/unitwright/instances %n -- /bin/sleep 600\n",
        env!("CARGO_BIN_EXE_unitwright")
    );
    let host = RemoteHost::start(
        &[
            ("web.service", SLEEP_SERVICE),
            ("console@.service", &template),
        ],
        &[("mine.service", SLEEP_SERVICE)],
    )?;
    host.install("unitwright", Path::new(env!("CARGO_BIN_EXE_unitwright")));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Build the collection as a user would, and install the built artifact.
    let out = Command::new(venv.join("bin/ansible-galaxy"))
        .args(["collection", "build", "--force", "--output-path"])
        .arg(d)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible"))
        .env("ANSIBLE_HOME", d.join("home"))
        .output()
        .unwrap();
    assert!(out.status.success(), "build: {}", text(&out));
    let out = Command::new(venv.join("bin/ansible-galaxy"))
        .args(["collection", "install", "--force", "-p"])
        .arg(d.join("collections"))
        .arg(d.join("unitwright-systemd-0.1.0.tar.gz"))
        .env("ANSIBLE_HOME", d.join("home"))
        .output()
        .unwrap();
    assert!(out.status.success(), "install: {}", text(&out));
    // Remote temporary files inside the sandbox, writable by both remote users.
    let remote_tmp = host.root.path().join("ansible-tmp");
    std::fs::create_dir_all(&remote_tmp).unwrap();
    Command::new("chmod")
        .arg("1777")
        .arg(&remote_tmp)
        .status()
        .unwrap();
    let ssh = host.ssh_options().join(" ");
    std::fs::write(
        d.join("inventory"),
        format!(
            "[all:vars]\nansible_host=127.0.0.1\nansible_ssh_common_args='{ssh}'\n\
             ansible_remote_tmp={tmp}\n\
             [sys]\nremote ansible_user=root\n[usr]\nremote_user ansible_user={TEST_USER}\n",
            tmp = remote_tmp.display()
        ),
    )
    .unwrap();
    Some(Rig { host, venv, dir })
}

/// The Quadlet app task of the playbooks, with the container's sleep time.
fn quadlet_task(seconds: u32) -> String {
    format!(
        "    - unitwright.systemd.quadlet:\n        app: web\n        scope: user\n        files:\n          \
         web.container: |\n            [Container]\n            Image=localhost/bb:latest\n            \
         Exec=/bin/sleep {seconds}\n"
    )
}

/// A playbook with its Quadlet task filled in.
fn book(text: &str) -> String {
    text.replace("QUADLET_TASK_600\n", &quadlet_task(600))
        .replace("QUADLET_TASK_700\n", &quadlet_task(700))
}

const UP: &str = r#"
- hosts: sys
  gather_facts: false
  tasks:
    - unitwright.systemd.unit:
        name: web
        state: started
      register: web
    - assert:
        that: web.changed == false or web.jobs[0].result == 'done'
    - unitwright.systemd.instance:
        template: console@.service
        id: "node 7/rack:b"
        settings:
          COLOR: blue
        secret_settings:
          PASSWORD: s3cret-value
      register: console
    - assert:
        that: console.active_state == 'active'
- hosts: usr
  gather_facts: false
  tasks:
    - unitwright.systemd.unit:
        name: mine
        state: started
        scope: user
QUADLET_TASK_600
"#;

const DOWN: &str = r#"
- hosts: sys
  gather_facts: false
  tasks:
    - unitwright.systemd.unit:
        name: web
        state: stopped
    - unitwright.systemd.instance:
        template: console@.service
        id: "node 7/rack:b"
        state: stopped
- hosts: usr
  gather_facts: false
  tasks:
QUADLET_TASK_700
"#;

#[test]
fn a_playbook_changes_once_then_nothing_and_check_mode_changes_nothing() {
    let Some(rig) = rig() else { return };
    let host = &rig.host;
    let console = "console@node\\x207-rack:b.service";
    let first = rig.playbook(&book(UP), &[]);
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(changed(&first), 4, "{}", text(&first));
    let quadlet = host
        .root
        .path()
        .join("home/.config/containers/systemd/web.container");
    assert!(std::fs::read_to_string(&quadlet)
        .unwrap()
        .contains("sleep 600"));
    assert_eq!(host.is_active("web.service"), "active");
    assert_eq!(host.is_active(console), "active");
    assert_eq!(host.user_is_active("mine.service"), "active");
    assert!(!text(&first).contains("s3cret-value"), "{}", text(&first));

    let second = rig.playbook(&book(UP), &[]);
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(changed(&second), 0, "{}", text(&second));

    // Check mode: what stopping and the new file would change, with the file's diff, and
    // nothing changes.
    let check = rig.playbook(&book(DOWN), &["--check", "--diff"]);
    assert!(check.status.success(), "{}", text(&check));
    assert_eq!(changed(&check), 3, "{}", text(&check));
    let shown = text(&check);
    assert!(
        shown.contains("-Exec=/bin/sleep 600") && shown.contains("+Exec=/bin/sleep 700"),
        "{shown}"
    );
    assert!(std::fs::read_to_string(&quadlet)
        .unwrap()
        .contains("sleep 600"));
    assert_eq!(host.is_active("web.service"), "active");
    assert_eq!(host.is_active(console), "active");

    let down = rig.playbook(&book(DOWN), &[]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(changed(&down), 3, "{}", text(&down));
    assert!(std::fs::read_to_string(&quadlet)
        .unwrap()
        .contains("sleep 700"));
    assert_eq!(host.is_active("web.service"), "inactive");
    assert_eq!(host.is_active(console), "inactive");
}
