//! Real podman for tests: isolated storage and configuration with a local busybox image
//! (`tests/sandbox/podman.sh`, no registry), and a guard that removes the containers a
//! sandboxed manager's units ran, from inside the sandbox, before the sandbox ends.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::UserManager;

/// Podman's configuration and vfs storage in a temporary directory, and `image` imported there:
/// busybox-static serving "console for [$APP] $APP_INFO" with httpd on 5900 by default.
#[derive(Debug)]
pub struct Podman {
    /// The directory (removed on drop, after podman's records of it).
    pub dir: tempfile::TempDir,
}

impl Podman {
    /// Sets it up; `None` after a loud message, or a panic with `CI=true`, when podman cannot
    /// run here.
    pub fn setup(prefix: &str, image: &str) -> Option<Podman> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .expect("a temporary directory");
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#". "$0" && podman_sandbox "$1" "$2""#)
            .arg(script())
            .arg(dir.path())
            .arg(image)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Podman { dir }),
            other => {
                let why = format!("podman cannot be set up: {other:?}");
                assert!(!super::ci(), "CI=true and {why}");
                eprintln!("\n!!! SKIPPING: {why}\n!!! (with CI=true this test would fail)\n");
                None
            }
        }
    }

    /// `CONTAINERS_CONF` and `CONTAINERS_STORAGE_CONF` for every podman that should use it
    /// (give them to the manager too, so that its units' podman does).
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("CONTAINERS_CONF", self.dir.path().join("containers.conf")),
            (
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            ),
        ]
    }

    /// The names of every container of this storage, running or not, one per line.
    pub fn ps(&self) -> String {
        let out = Command::new("podman")
            .envs(self.env())
            .args(["ps", "-a", "--format", "{{.Names}}"])
            .output()
            .expect("podman ps");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg("-c")
            .arg(r#". "$0" && podman_sandbox_cleanup"#)
            .arg(script())
            .envs(self.env())
            .status();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox/podman.sh")
}

/// A manager whose units run podman. Dropping it first removes every pod and container with
/// podman *inside* the sandbox, then ends the sandbox: a container still running when a test
/// fails would otherwise die with the namespace without podman's network teardown, leaving its
/// iptables DNAT rules, its CNI address reservation and its `/run/netns` file on the host (the
/// netns mount exists only in the sandbox's mount namespace, so a `podman rm` from outside
/// cannot tear it down any more).
#[derive(Debug)]
pub struct WithContainers {
    manager: UserManager,
    podman_env: Vec<(&'static str, PathBuf)>,
}

impl WithContainers {
    /// Guards `manager`, whose units run podman with `podman_env` ([`Podman::env`]).
    pub fn new(manager: UserManager, podman_env: Vec<(&'static str, PathBuf)>) -> Self {
        WithContainers {
            manager,
            podman_env,
        }
    }

    /// `podman ARGS` inside the sandbox (where the units' podman keeps its run-time state).
    pub fn podman(&self) -> Command {
        let mut c = self.manager.command("podman");
        c.envs(self.podman_env.iter().map(|(k, v)| (*k, v)));
        c
    }
}

impl Deref for WithContainers {
    type Target = UserManager;
    fn deref(&self) -> &UserManager {
        &self.manager
    }
}

impl Drop for WithContainers {
    fn drop(&mut self) {
        if self.manager.manager_pid().is_none() {
            return;
        }
        for args in [
            &["pod", "rm", "--all", "--force"][..],
            &["rm", "--all", "--force", "--time", "0"][..],
        ] {
            let _ = self
                .podman()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The page served on 127.0.0.1:`port` once it contains `marker`, waiting up to 30 s for the
/// server to listen (podman reports a container ready before its server has bound its port).
pub fn http_get(port: u16, marker: &str) -> String {
    let start = Instant::now();
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(body) if body.contains(marker) => return body,
            Ok(_) | Err(_) if start.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => panic!("no answer on 127.0.0.1:{port}: {other:?}"),
        }
    }
}
