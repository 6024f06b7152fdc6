//! A "remote host" on this machine, for the `-H` tests: real OpenSSH and real systemd.
//!
//! [`RemoteHost`] is systemd as PID 1 of private PID, mount, cgroup *and network* namespaces
//! (so it has a loopback of its own and no traffic can leave it), with:
//! * a system bus (`dbus.socket`/`dbus.service`, as [`crate::SystemManager`]);
//! * `sshd.service`: OpenSSH's sshd on `127.0.0.1:22` of that namespace, key authentication
//!   only, with its own host key and `AuthorizedKeysFile` in the sandbox; port 2222 is the same
//!   server with a `PATH` of only a shell, `env` and `id` (a host without systemd-stdio-bridge);
//! * a test user `uwtest` (uid [`TEST_UID`]), added to a private copy of `/etc/passwd`,
//!   `/etc/group` and `/etc/shadow` bind-mounted inside the namespace only (the host's files
//!   are not touched), whose own `systemd --user` runs as `user-uwtest.service` with
//!   `XDG_RUNTIME_DIR=/run/user/<uid>` and its bus socket-activated by the user `dbus.socket`,
//!   as on a booted host;
//! * a `/usr/local/bin` of its own ([`RemoteHost::install`]), e.g. for the remote `unitwright`.
//!
//! Clients reach it with [`RemoteHost::command`]: the process runs in the namespace's network
//! namespace only (`nsenter --net`), everything else is the host's, and ssh uses a client
//! configuration of the sandbox (`UNITWRIGHT_SSH=ssh -F <config>`: key, known hosts), never the
//! real `~/.ssh`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::cgroup::{Cgroup, Controllers, Guard};
use crate::{
    read_log, sandbox_dir, sandbox_name, skip_or_fail, start_manager, stop_namespace,
    system_bus_address, write_manager_conf, Error,
};

/// The uid (and gid) of the test user on the remote side.
pub const TEST_UID: u32 = 4711;
/// Its name.
pub const TEST_USER: &str = "uwtest";

/// A sandboxed remote host. See the module docs.
#[derive(Debug)]
pub struct RemoteHost {
    /// The temporary directory (removed on drop).
    pub root: tempfile::TempDir,
    /// The system manager's only unit directory.
    pub unit_dir: PathBuf,
    /// Where the test user's user units go (`~/.config/systemd/user` of `uwtest`).
    pub user_unit_dir: PathBuf,
    unshare: Child,
    /// Host PID of the namespace's systemd.
    pid: u32,
    cgroup: Cgroup,
    /// Tears the sandbox down if this process dies without dropping it.
    _guard: Guard,
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

fn write(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))
}

impl RemoteHost {
    /// Starts it with `units` for the system manager and `user_units` for the test user's
    /// manager. `None` (loudly) or, with `CI=true`, a panic when it cannot be set up.
    pub fn start(units: &[(&str, &str)], user_units: &[(&str, &str)]) -> Option<RemoteHost> {
        skip_or_fail("remote host (sshd)", Self::try_start(units, user_units))
    }

    fn try_start(units: &[(&str, &str)], user_units: &[(&str, &str)]) -> Result<RemoteHost, Error> {
        crate::check_host(false)?;
        if !Path::new("/usr/sbin/sshd").exists() {
            return Err(Error::new(
                "/usr/sbin/sshd is missing (Debian: apt-get install openssh-server)",
            ));
        }
        let root = sandbox_dir("remote")?;
        let r = root.path();
        // The test user must be able to reach its home inside.
        run(Command::new("chmod").arg("755").arg(r))?;
        let home = r.join("home");
        let user_unit_dir = home.join(".config/systemd/user");
        fs::create_dir_all(&user_unit_dir).map_err(|e| e.to_string())?;
        for (name, contents) in user_units {
            write(&user_unit_dir.join(name), contents)?;
        }
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{TEST_UID}:{TEST_UID}"))
            .arg(&home))?;

        // Keys: the client's, the server's, and who may log in with the client's.
        for key in ["client_key", "host_key"] {
            run(Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "unitwright-test",
                    "-f",
                ])
                .arg(r.join(key)))?;
        }
        let client_pub = fs::read_to_string(r.join("client_key.pub")).map_err(|e| e.to_string())?;
        for user in ["root", TEST_USER] {
            write(&r.join("keys").join(user), &client_pub)?;
        }
        let host_pub = fs::read_to_string(r.join("host_key.pub")).map_err(|e| e.to_string())?;
        let host_pub = host_pub
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        write(
            &r.join("known_hosts"),
            &format!("127.0.0.1 {host_pub}\n[127.0.0.1]:2222 {host_pub}\n"),
        )?;
        write(
            &r.join("ssh_config"),
            &format!(
                "Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  \
                 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  \
                 ConnectTimeout 10\n  LogLevel ERROR\n",
                key = r.join("client_key").display(),
                kh = r.join("known_hosts").display(),
            ),
        )?;
        write(
            &r.join("sshd_config"),
            &format!(
                "ListenAddress 127.0.0.1:22\nListenAddress 127.0.0.1:2222\nHostKey {hk}\n\
                 PidFile none\nAuthorizedKeysFile {keys}/%u\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nMaxStartups 200\nMaxSessions 100\n\
                 Subsystem sftp internal-sftp\n\
                 Match LocalPort 2222\n  SetEnv PATH={nobridge}\n",
                hk = r.join("host_key").display(),
                keys = r.join("keys").display(),
                nobridge = r.join("bin-without-bridge").display(),
            ),
        )?;
        // The remote /usr/local/bin (see `install`).
        fs::create_dir_all(r.join("bin")).map_err(|e| e.to_string())?;
        // What port 2222's sessions find on their PATH: a host without systemd's tools.
        let nobridge = r.join("bin-without-bridge");
        fs::create_dir_all(&nobridge).map_err(|e| e.to_string())?;
        for tool in [
            "/bin/sh",
            "/bin/bash",
            "/usr/bin/env",
            "/usr/bin/id",
            "/bin/true",
        ] {
            let name = Path::new(tool).file_name().expect("a file name");
            std::os::unix::fs::symlink(tool, nobridge.join(name)).map_err(|e| e.to_string())?;
        }
        // Private account files: the host's plus the test user (and root not locked).
        let passwd = fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
        let group = fs::read_to_string("/etc/group").map_err(|e| e.to_string())?;
        let shadow = fs::read_to_string("/etc/shadow").unwrap_or_default();
        let shadow: String = shadow
            .lines()
            .filter(|l| !l.starts_with("root:"))
            .flat_map(|l| [l, "\n"])
            .collect();
        write(
            &r.join("etc/passwd"),
            &format!(
                "{passwd}{TEST_USER}:x:{TEST_UID}:{TEST_UID}::{}:/bin/sh\n",
                home.display()
            ),
        )?;
        write(
            &r.join("etc/group"),
            &format!("{group}{TEST_USER}:x:{TEST_UID}:\n"),
        )?;
        write(
            &r.join("etc/shadow"),
            &format!("root:*:19000:0:99999:7:::\n{shadow}{TEST_USER}:*:19000:0:99999:7:::\n"),
        )?;

        let unit_dir = r.join("units");
        let mut all: Vec<(String, String)> = vec![
            (
                "default.target".into(),
                "[Unit]\nDescription=default\nWants=dbus.socket dbus.service sshd.service user-uwtest.service\n".into(),
            ),
            (
                "dbus.socket".into(),
                "[Socket]\nListenStream=/run/dbus/system_bus_socket\n".into(),
            ),
            (
                "dbus.service".into(),
                "[Unit]\nRequires=dbus.socket\n[Service]\nExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation\n".into(),
            ),
            (
                "sshd.service".into(),
                format!(
                    "[Service]\nExecStart=/usr/sbin/sshd -D -e -f {}\n",
                    r.join("sshd_config").display()
                ),
            ),
            (
                "user-uwtest.service".into(),
                format!(
                    "[Unit]\nAfter=dbus.service\n[Service]\nType=notify\nUser={TEST_USER}\n\
                     RuntimeDirectory=user/{TEST_UID}\nRuntimeDirectoryMode=0700\nRuntimeDirectoryPreserve=yes\n\
                     Environment=XDG_RUNTIME_DIR=/run/user/{TEST_UID} HOME={home} SYSTEMD_LOG_TARGET=console\n\
                     ExecStart=/lib/systemd/systemd --user\nDelegate=yes\nKillMode=mixed\n\
                     StandardOutput=append:{log}\nStandardError=inherit\n",
                    home = home.display(),
                    log = r.join("user-manager.log").display()
                ),
            ),
        ];
        for t in ["sysinit", "basic", "shutdown"] {
            all.push((format!("{t}.target"), format!("[Unit]\nDescription={t}\n")));
        }
        all.extend(
            units
                .iter()
                .map(|(n, c)| ((*n).to_owned(), (*c).to_owned())),
        );
        for (name, contents) in &all {
            write(&unit_dir.join(name), contents)?;
        }
        let manager_conf = r.join("manager.conf");
        write_manager_conf(&manager_conf)?;
        write_manager_conf(&home.join(".config/systemd/user.conf"))?;
        let script = "set -e\nmount -t tmpfs tmpfs /run\nmkdir -p /run/dbus /run/sshd /run/user /run/systemd/system.conf.d\n\
            cp \"$UW_MANAGER_CONF\" /run/systemd/system.conf.d/sandbox.conf\n\
            for f in passwd group shadow; do mount --bind \"$UW_ETC/$f\" /etc/$f; done\n\
            mount --bind \"$UW_BIN\" /usr/local/bin\n\
            if [ -e /sys/fs/cgroup/cgroup.procs ]; then mount -t cgroup2 cgroup2 /sys/fs/cgroup; else\n\
              mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup\n\
              mkdir /sys/fs/cgroup/systemd /sys/fs/cgroup/unified\n\
              mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd\n\
              mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified\n\
            fi\n\
            exec env container=unitwright-test /lib/systemd/systemd --system </dev/null\n";
        let cgroup = Cgroup::create(&sandbox_name(r), Controllers::None)?;
        let guard = Guard::spawn(r, &cgroup)?;
        let mut cmd = cgroup.unshare(&["--cgroup", "--net"], script);
        cmd.env("SYSTEMD_UNIT_PATH", &unit_dir)
            .env("UW_MANAGER_CONF", &manager_conf)
            .env("UW_ETC", r.join("etc"))
            .env("UW_BIN", r.join("bin"));
        let unshare = crate::spawn_unshare(&mut cmd, r, &[], &cgroup)?;
        let mut sandbox = RemoteHost {
            root,
            unit_dir,
            user_unit_dir,
            unshare,
            pid: 0,
            cgroup,
            _guard: guard,
        };
        let root = sandbox.root.path().to_owned();
        sandbox.pid = start_manager(
            "systemd --system (remote host)",
            &mut sandbox.unshare,
            &root,
            system_bus_address,
        )?;
        sandbox.wait_ready()?;
        Ok(sandbox)
    }

    /// Waits until sshd accepts the test key for root and the test user's manager is up.
    fn wait_ready(&self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let ssh = self
                .command("ssh")
                .args(self.ssh_options())
                .args(["-o", "BatchMode=yes", "root@127.0.0.1", "true"])
                .stdin(Stdio::null())
                .output();
            let user = self.systemctl(&["is-active", "user-uwtest.service"]);
            let ssh_ok = ssh.as_ref().is_ok_and(|o| o.status.success());
            let user_state = String::from_utf8_lossy(&user.stdout).trim().to_owned();
            let user_ok = user_state == "active";
            if ssh_ok && user_ok {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) || user_state == "failed" {
                let status = self.systemctl(&[
                    "status",
                    "--no-pager",
                    "sshd.service",
                    "user-uwtest.service",
                ]);
                return Err(format!(
                    "remote host not ready (ssh ok: {ssh_ok}, user manager {user_state}): {:?}\n{}\n{}\nuser manager: {}",
                    ssh.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()),
                    String::from_utf8_lossy(&status.stdout),
                    read_log(self.root.path()),
                    fs::read_to_string(self.root.path().join("user-manager.log")).unwrap_or_default(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `-F <config>`: the sandbox's ssh client configuration.
    pub fn ssh_options(&self) -> Vec<String> {
        vec![
            "-F".to_owned(),
            self.root.path().join("ssh_config").display().to_string(),
        ]
    }

    /// The value for `UNITWRIGHT_SSH`.
    pub fn ssh_command(&self) -> String {
        format!("ssh {}", self.ssh_options().join(" "))
    }

    /// `program` run in the remote host's network namespace (only), with `UNITWRIGHT_SSH`
    /// set to use the sandbox's ssh configuration.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/proc/{}/ns/net", self.pid))
            .arg("--")
            .arg(program)
            .env("UNITWRIGHT_SSH", self.ssh_command());
        cmd
    }

    /// `systemctl ARGS` on the remote host's system manager (for checks in tests).
    pub fn systemctl(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "-p", "--", "systemctl"])
            .args(args)
            .output()
            .expect("running systemctl in the remote host")
    }

    /// `systemctl --user ARGS` on the test user's manager (run as that user inside).
    pub fn user_systemctl(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "-p", "--"])
            .args([
                "setpriv",
                &format!("--reuid={TEST_UID}"),
                &format!("--regid={TEST_UID}"),
                "--clear-groups",
                "--",
                "env",
                &format!("XDG_RUNTIME_DIR=/run/user/{TEST_UID}"),
                "systemctl",
                "--user",
            ])
            .args(args)
            .output()
            .expect("running systemctl --user in the remote host")
    }

    /// `ActiveState` of `unit` on the system manager.
    pub fn is_active(&self, unit: &str) -> String {
        let out = self.systemctl(&["is-active", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `ActiveState` of `unit` on the test user's manager.
    pub fn user_is_active(&self, unit: &str) -> String {
        let out = self.user_systemctl(&["is-active", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Puts `path` on the remote host's PATH as `name` (a symlink in its `/usr/local/bin`,
    /// which is the sandbox's `bin/` bind-mounted), replacing what was there.
    pub fn install(&self, name: &str, path: &Path) {
        let link = self.root.path().join("bin").join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(path, &link).expect("linking into the remote PATH");
    }

    /// Removes `name` from the remote host's `/usr/local/bin`.
    pub fn uninstall(&self, name: &str) {
        let _ = fs::remove_file(self.root.path().join("bin").join(name));
    }

    /// Host PID of the remote host's systemd (PID 1 inside).
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for RemoteHost {
    fn drop(&mut self) {
        stop_namespace(&mut self.unshare, self.pid);
        self.cgroup.kill_commands();
        self.cgroup.remove();
    }
}
