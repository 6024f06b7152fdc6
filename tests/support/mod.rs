//! Test support: real systemd managers in private namespaces, for integration tests.
//!
//! Share it from any integration test with `mod support;` (this file is `tests/support/mod.rs`,
//! which cargo does not build as a test of its own), or from an example/bench with
//! `#[path = "../tests/support/mod.rs"] mod support;`.
//!
//! * [`UserManager`]: a `systemd --user` with its own session bus. It runs in a private mount
//!   namespace (a tmpfs over `/run/systemd` provides the `/run/systemd/system` it insists on)
//!   and a private PID namespace (so that killing the namespace's init kills the manager, the
//!   bus and every service at once, and nothing is left behind). Its `XDG_RUNTIME_DIR` is an
//!   ordinary temporary directory *outside* the tmpfs, so the bus socket
//!   `$XDG_RUNTIME_DIR/bus` is reachable from the test process, which stays outside the
//!   namespace (a multi-threaded test harness could not `setns` into it anyway). Unit files
//!   go to `$XDG_RUNTIME_DIR/systemd/user/`; `HOME` and `XDG_CONFIG_HOME` point into the
//!   temporary directory too, so `enable` never touches the real home.
//! * [`SystemManager`]: systemd as PID 1 of private PID, mount and cgroup namespaces, with
//!   only the units the test writes; its system bus is reached from outside through
//!   `/proc/<pid>/root/run/dbus/system_bus_socket`.
//!
//! Both clean up on drop (also when the test panics): SIGKILL to the namespace's init, reap,
//! remove the temporary directory and the sandbox's cgroups. Each sandbox runs in a cgroup of
//! its own (below the test's), so parallel tests with same-named units do not collide.
//!
//! ```text
//! mod support;
//! use support::UserManager;
//!
//! #[tokio::test]
//! async fn my_unit_starts() {
//!     let Some(sb) = UserManager::builder()
//!         .unit("web@.service", "[Service]\nExecStart=/bin/sleep 600\n")
//!         .env("CONTAINERS_CONF", "/path/to/containers.conf") // manager (and service) env
//!         .generator("/path/to/a-user-generator")              // runs at start and reload
//!         .start()
//!     else {
//!         return; // skipped loudly (only possible without CI=true)
//!     };
//!     // In process: Options { address: Some(sb.bus_address()), .. } with Scope::User.
//!     // A binary: Command::new(..).envs(sb.client_env()).arg("--user") ...
//!     // Checks: sb.is_active("web@1.service"), sb.systemctl(&["show", ...]),
//!     //         sb.write_unit(..) then a daemon-reload, sb.kill_manager(), sb.manager_pid().
//! }
//! ```
//!
//! # With a journal: `UserManager::builder().journal(true)`
//!
//! A `systemd --user` started by hand in a mount namespace logs nowhere useful: its units'
//! cgroups are `/<test cgroup>/app.slice/x.service`, so a journald would record them as
//! *system* units with no `_SYSTEMD_USER_UNIT=`, and no invocation IDs. With `.journal(true)`
//! the sandbox gives a real `systemd-journald` what a booted host gives it, rather than the
//! product code adapting to a sandbox:
//!
//! * **cgroups as on a host.** The namespace's init runs in a new *cgroup namespace* rooted at
//!   the sandbox's own cgroup (in `name=systemd`, the unified hierarchy and the v1 `memory`,
//!   `pids`, `cpu`, `cpuacct` hierarchies, or the one cgroup2 tree), and mounts the hierarchies
//!   afresh on a tmpfs over `/sys/fs/cgroup`, so that they show that root. It then lays out a
//!   host's tree: itself in `/init.scope`, journald in `/system.slice/systemd-journald.service`,
//!   and the manager in `/user.slice/user-UID.slice/user@UID.service`, the delegated cgroup
//!   that PID 1 gives `user@.service`. The manager moves itself to `.../init.scope` and puts
//!   its units under `.../app.slice/`. journald derives `_SYSTEMD_UNIT=user@UID.service`,
//!   `_SYSTEMD_USER_UNIT=`, `_SYSTEMD_OWNER_UID=` and the slices from these paths, and the
//!   manager accounts memory and tasks of its units (where the controllers are v1
//!   hierarchies, mounting them in the namespace is what makes that work; CPU stays
//!   unaccounted in a user manager on a hybrid host, as on real hybrid hosts).
//! * **journald where the manager expects it.** `/run/systemd` is a private tmpfs, so
//!   journald binds its sockets (`/run/systemd/journal/{socket,stdout,dev-log}`) where the
//!   manager connects units' output by default; its configuration
//!   (`/run/systemd/journald.conf.d/`) keeps the journal volatile in `/run/log/journal`, which
//!   is the sandbox's `log/` directory bind-mounted, and does not read the host's kmsg.
//! * **invocation IDs.** journald reads a user unit's invocation ID from
//!   `/run/user/UID/systemd/units/invocation:<unit>`, which the user manager writes into its
//!   runtime directory: the sandbox's `XDG_RUNTIME_DIR` is bind-mounted at `/run/user/UID`
//!   (on a private tmpfs over `/run/user`). `/run/systemd/units/invocation:user@UID.service`
//!   is written as PID 1 would, and the manager gets `INVOCATION_ID=`.
//! * **the manager's own messages** ("Started x.service", with `USER_UNIT=` and
//!   `USER_INVOCATION_ID=`) go to the journal: `SYSTEMD_LOG_TARGET=journal` stands in for the
//!   journal stream a real `user@.service` has on stderr.
//!
//! Clients that read the journal run inside the namespaces with [`UserManager::command`]
//! (where `/run/log/journal` is the sandbox's); from outside, `journalctl -D
//! <UserManager::journal_dir>` reads the same files. `tests/cli_ops.rs` checks the fields.
//! The same steps work in a shell: `tests/sandbox/user-manager.sh` does them with
//! `UW_JOURNAL=1`.
//!
//! When the sandbox cannot be set up (no root, no `unshare`, ...), [`UserManager::start`]
//! returns `None` after a loud message, or panics when `CI=true`: in CI a test that cannot
//! run the real thing fails.
#![allow(dead_code)]

pub mod podman;
pub mod remote;

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A long-running service, for start/stop tests.
pub const SLEEP_SERVICE: &str = "[Service]\nExecStart=/bin/sleep 600\n";
/// A long-running service with an `[Install]` section (`WantedBy=default.target`).
pub const INSTALLABLE_SERVICE: &str =
    "[Service]\nExecStart=/bin/sleep 600\n[Install]\nWantedBy=default.target\n";

/// A oneshot service whose start never finishes (for jobs that must still be running).
pub const ENDLESS_ONESHOT: &str = "[Service]\nType=oneshot\nExecStart=/bin/sleep 600\n";

/// How long a manager may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a test that cannot set up its sandbox must fail rather than skip.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Turns a setup failure into `None` (with a loud message) or, under `CI=true`, a panic.
fn skip_or_fail<T>(what: &str, result: Result<T, String>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) if ci() => panic!("CI=true and the {what} sandbox cannot be set up: {e}"),
        Err(e) => {
            // Straight to the process's stderr, past the test harness's output capture.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPING: the {what} sandbox cannot be set up: {e}\n!!! (with CI=true this test would fail)\n"
            );
            None
        }
    }
}

fn sh(cmd: &mut Command) -> Result<Output, String> {
    cmd.output().map_err(|e| format!("running {cmd:?}: {e}"))
}

/// SIGKILLs `pid` (with kill(1): the tests do not link libc).
fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// SIGKILLs the namespace's init (`init_pid`, 0 if unknown), which takes every process of
/// the PID namespace with it, and waits until `unshare` has reaped it and exited.
fn stop_namespace(unshare: &mut Child, init_pid: u32) {
    if init_pid != 0 {
        kill(init_pid, "KILL");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if !matches!(unshare.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = unshare.kill();
    let _ = unshare.wait();
}

/// Host PIDs of the children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> Result<bool, String>) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match ready() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(e),
        }
        if start.elapsed() > READY_TIMEOUT {
            return Err(format!("{what} not ready after {READY_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where sandboxes live: on tmpfs, as `$XDG_RUNTIME_DIR` (`/run/user/UID`) is on a real system.
/// The manager writes a symlink there for each unit it starts; on a disk file system that alone
/// costs more than the rest of a target's start.
fn sandbox_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    match fs::metadata(shm) {
        Ok(m) if m.is_dir() => shm.to_owned(),
        _ => std::env::temp_dir(),
    }
}

/// Manager settings shared by both sandboxes. Units' output goes to /dev/null: there is no
/// journald in a sandbox, and without this every spawned process would fail to reach the
/// journal socket and write a warning to /dev/console (a serial console on CI machines, slow
/// enough to dominate the manager's own CPU time per service start).
fn write_manager_conf(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    fs::write(path, "[Manager]\nDefaultStandardOutput=null\n")
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Where a sandbox's stderr goes: `<root>/sandbox.log`.
fn log_file(root: &Path) -> Stdio {
    fs::File::create(root.join("sandbox.log")).map_or_else(|_| Stdio::null(), Stdio::from)
}

fn read_log(root: &Path) -> String {
    fs::read_to_string(root.join("sandbox.log")).unwrap_or_default()
}

/// Waits for `unshare --fork` to create the namespace's init and returns its host PID.
fn namespace_init(unshare: &mut Child, root: &Path) -> Result<u32, String> {
    let pid = unshare.id();
    wait_for("the namespace", || {
        if let Ok(Some(status)) = unshare.try_wait() {
            return Err(format!("unshare exited with {status}: {}", read_log(root)));
        }
        // The child is the namespace's init once the cgroup shell has exec'd unshare.
        Ok(comm(pid) == "unshare" && !children(pid).is_empty())
    })?;
    Ok(children(pid)[0])
}

/// The system bus of the system manager whose host PID is `pid`, reached through its root.
fn system_bus_address(pid: u32) -> String {
    format!("unix:path=/proc/{pid}/root/run/dbus/system_bus_socket")
}

/// Waits for the namespace's init, then until the manager on `address(init pid)` reports
/// `SystemState` running (or degraded); returns the init's host PID.
fn start_manager(
    what: &str,
    unshare: &mut Child,
    root: &Path,
    address: impl Fn(u32) -> String,
) -> Result<u32, String> {
    let init = namespace_init(unshare, root)?;
    let address = address(init);
    wait_for(what, || {
        if let Ok(Some(status)) = unshare.try_wait() {
            return Err(format!(
                "the sandbox exited with {status}: {}",
                read_log(root)
            ));
        }
        let state = system_state(&address);
        Ok(matches!(state.as_deref(), Some("running" | "degraded")))
    })?;
    Ok(init)
}

/// Asks the manager on `address` for `SystemState` (busctl is fine in tests).
fn system_state(address: &str) -> Option<String> {
    let out = Command::new("busctl")
        .args([
            &format!("--address={address}"),
            "get-property",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "SystemState",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success().then(|| {
        text.trim()
            .trim_start_matches("s ")
            .trim_matches('"')
            .to_owned()
    })
}

/// The namespace's init without a journal: mount the tmpfs, start the bus at exactly
/// `$XDG_RUNTIME_DIR/bus` (the manager registers there whatever `DBUS_SESSION_BUS_ADDRESS`
/// says), then the manager.
const PLAIN_SCRIPT: &str = r#"set -e
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system /run/systemd/user-generators
if [ -n "$UW_GENERATORS" ]; then
  printf '%s\n' "$UW_GENERATORS" | while read -r g; do ln -s "$g" /run/systemd/user-generators/; done
fi
dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --fork --nopidfile >/dev/null
/lib/systemd/systemd --user </dev/null &
set +e
while :; do wait; done
"#;

/// The namespace's init with a journal (see "With a journal" in the module docs). It runs in
/// a new cgroup namespace whose root is the sandbox's own cgroup; it mounts the cgroup
/// hierarchies as that namespace sees them, lays out the cgroups of a booted host (itself in
/// `/init.scope`, journald in `/system.slice/systemd-journald.service`, the manager in
/// `/user.slice/user-UID.slice/user@UID.service`), records `user@UID.service`'s invocation ID
/// where PID 1 would, and starts journald before the bus and the manager.
const JOURNAL_SCRIPT: &str = r#"set -e
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/system /run/systemd/user-generators /run/systemd/journal /run/systemd/units /run/systemd/journald.conf.d
if [ -n "$UW_GENERATORS" ]; then
  printf '%s\n' "$UW_GENERATORS" | while read -r g; do ln -s "$g" /run/systemd/user-generators/; done
fi
printf '[Journal]\nStorage=volatile\nReadKMsg=no\nRateLimitBurst=0\n' > /run/systemd/journald.conf.d/sandbox.conf
mkdir -p /run/log /run/user
mount --bind "$UW_LOG_DIR" /run/log
mount -t tmpfs -o mode=755 tmpfs /run/user
mkdir -p "/run/user/$(id -u)"
mount --bind "$XDG_RUNTIME_DIR" "/run/user/$(id -u)"
if [ "$UW_HIERARCHIES" = cgroup2 ]; then
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
  hierarchies=/sys/fs/cgroup
else
  mount -t tmpfs cgroup /sys/fs/cgroup
  hierarchies=
  for h in $UW_HIERARCHIES; do
    mkdir -p /sys/fs/cgroup/$h
    case $h in
      systemd) mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd ;;
      unified) mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified ;;
      *) mount -t cgroup -o "$h" cgroup /sys/fs/cgroup/$h ;;
    esac
    hierarchies="$hierarchies /sys/fs/cgroup/$h"
  done
  # With UW_ALL_CONTROLLERS=1, every other controller the kernel has enabled is mounted too, as
  # on a booted host (systemd mounts them all; podman creates a pod's cgroup in each). Those
  # the host has not mounted at all get a hierarchy of their own here.
  if [ -n "${UW_ALL_CONTROLLERS:-}" ]; then
    while read -r c _ _ enabled; do
      case $c in '#'*) continue ;; esac
      [ "$enabled" = 1 ] && [ ! -e "/sys/fs/cgroup/$c" ] || continue
      mkdir "/sys/fs/cgroup/$c"
      mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" || rmdir "/sys/fs/cgroup/$c"
    done < /proc/cgroups
  fi
fi
uid=$(id -u)
# Runs "$1..." in cgroup $0 of every hierarchy ($$ of sh -c is the process that execs).
in_cgroup='for h in $UW_MOUNTED; do mkdir -p "$h/$0"; echo $$ > "$h/$0/cgroup.procs"; done; exec "$@"'
export UW_MOUNTED="$hierarchies"
for h in $hierarchies; do mkdir -p "$h/init.scope"; echo $$ > "$h/init.scope/cgroup.procs"; done
sh -c "$in_cgroup" system.slice/systemd-journald.service /lib/systemd/systemd-journald </dev/null &
i=0; while [ ! -S /run/systemd/journal/stdout ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
id=$(tr -d '-' < /proc/sys/kernel/random/uuid)
ln -s "$id" "/run/systemd/units/invocation:user@$uid.service"
dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --fork --nopidfile >/dev/null
SYSTEMD_LOG_TARGET=journal INVOCATION_ID=$id sh -c "$in_cgroup" "user.slice/user-$uid.slice/user@$uid.service" /lib/systemd/systemd --user </dev/null &
set +e
while :; do wait; done
"#;

/// Settings for a [`UserManager`] that must be in place before the manager starts.
#[derive(Debug, Default)]
pub struct UserManagerBuilder {
    env: Vec<(OsString, OsString)>,
    generators: Vec<PathBuf>,
    units: Vec<(String, String)>,
    journal: bool,
    all_controllers: bool,
}

impl UserManagerBuilder {
    /// Sets a variable in the manager's environment (inherited by its services).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Installs `path` as a user generator (a symlink in `/run/systemd/user-generators/`,
    /// private to the namespace): it runs at manager start and at every daemon-reload.
    pub fn generator(mut self, path: impl Into<PathBuf>) -> Self {
        self.generators.push(path.into());
        self
    }

    /// Runs a real `systemd-journald` beside the manager, set up so that it records the
    /// manager's units as on a booted host: see "With a journal" in the module docs.
    /// Units' output then goes to the journal (not to /dev/null); read it with
    /// [`UserManager::command`] (clients see the journal at the standard path) or from
    /// [`UserManager::journal_dir`].
    pub fn journal(mut self, on: bool) -> Self {
        self.journal = on;
        self
    }

    /// With [`UserManagerBuilder::journal`]: mount every cgroup controller the kernel has
    /// enabled in the sandbox, as a booted host has them (systemd mounts all v1 hierarchies),
    /// not only those the manager accounts with. podman 4.3.1 creates a pod's cgroup in every
    /// enabled controller and fails where one is not mounted; this machine enables `net_cls`,
    /// `net_prio`, `perf_event` and `hugetlb` without mounting them.
    pub fn all_controllers(mut self, on: bool) -> Self {
        self.all_controllers = on;
        self
    }

    /// Writes a unit file before the manager starts.
    pub fn unit(mut self, name: &str, contents: &str) -> Self {
        self.units.push((name.to_owned(), contents.to_owned()));
        self
    }

    /// Starts the manager; see [`UserManager::start`].
    pub fn start(self) -> Option<UserManager> {
        skip_or_fail("systemd --user", UserManager::try_start(&self))
    }
}

/// A running `systemd --user` with a private session bus. See the module docs.
#[derive(Debug)]
pub struct UserManager {
    /// The temporary directory holding everything (removed on drop).
    pub root: tempfile::TempDir,
    /// `$XDG_RUNTIME_DIR` of the manager; the bus is `runtime_dir/bus`.
    pub runtime_dir: PathBuf,
    /// Where unit files go: `$XDG_RUNTIME_DIR/systemd/user`.
    pub unit_dir: PathBuf,
    /// `unshare`, parent of the namespace's init.
    unshare: Child,
    /// Host PID of the namespace's init (a shell).
    init_pid: u32,
    cgroup: Cgroup,
    /// Whether a journald runs in the sandbox.
    journal: bool,
}

impl UserManager {
    /// Starts a manager with default settings. `None` (after a loud message) if the sandbox
    /// cannot be set up; panics instead when `CI=true`.
    pub fn start() -> Option<UserManager> {
        Self::builder().start()
    }

    /// A builder for extra environment, generators and units.
    pub fn builder() -> UserManagerBuilder {
        UserManagerBuilder::default()
    }

    fn try_start(b: &UserManagerBuilder) -> Result<UserManager, String> {
        let root = tempfile::Builder::new()
            .prefix("unitwright-user-")
            .tempdir_in(sandbox_base())
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let runtime_dir = root.path().join("run");
        let unit_dir = runtime_dir.join("systemd/user");
        for d in [
            &unit_dir,
            &root.path().join("home"),
            &root.path().join("config"),
        ] {
            fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        let _ = Command::new("chmod").arg("700").arg(&runtime_dir).status();
        for (name, contents) in &b.units {
            fs::write(unit_dir.join(name), contents).map_err(|e| format!("writing {name}: {e}"))?;
        }
        if b.journal {
            // Units log to the journal, as on a real system (the default standard output).
            fs::create_dir_all(root.path().join("config/systemd"))
                .and_then(|()| fs::create_dir_all(root.path().join("log")))
                .map_err(|e| format!("creating the journal directories: {e}"))?;
        } else {
            write_manager_conf(&root.path().join("config/systemd/user.conf"))?;
        }
        let generators: Vec<String> = b
            .generators
            .iter()
            .map(|g| g.display().to_string())
            .collect();
        let address = format!("unix:path={}/bus", runtime_dir.display());
        let cgroup = Cgroup::new(root.path(), b.journal);
        let mut cmd = if b.journal {
            cgroup.unshare(&["--cgroup"], JOURNAL_SCRIPT)
        } else {
            cgroup.unshare(&[], PLAIN_SCRIPT)
        };
        cmd.env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", root.path().join("home"))
            .env("XDG_CONFIG_HOME", root.path().join("config"))
            .env("UW_GENERATORS", generators.join("\n"))
            .env("UW_LOG_DIR", root.path().join("log"))
            .env("UW_HIERARCHIES", cgroup.hierarchy_names())
            .env(
                "UW_ALL_CONTROLLERS",
                if b.all_controllers { "1" } else { "" },
            )
            .env_remove("NOTIFY_SOCKET")
            .env_remove("MANAGERPID")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(root.path()));
        for (k, v) in &b.env {
            cmd.env(k, v);
        }
        let unshare = cmd.spawn().map_err(|e| format!("running unshare: {e}"))?;
        let mut sandbox = UserManager {
            root,
            runtime_dir,
            unit_dir,
            init_pid: 0,
            unshare,
            cgroup,
            journal: b.journal,
        };
        let address = sandbox.bus_address();
        let root = sandbox.root.path().to_owned();
        sandbox.init_pid = start_manager("systemd --user", &mut sandbox.unshare, &root, |_| {
            address.clone()
        })?;
        Ok(sandbox)
    }

    /// The session bus address, for `DBUS_SESSION_BUS_ADDRESS` or `Options::address`.
    pub fn bus_address(&self) -> String {
        format!("unix:path={}/bus", self.runtime_dir.display())
    }

    /// Environment for a client process outside the namespace (e.g. the CLI under test).
    pub fn client_env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS", self.bus_address().into()),
            ("XDG_RUNTIME_DIR", self.runtime_dir.clone().into()),
        ]
    }

    /// Writes `$XDG_RUNTIME_DIR/systemd/user/<name>` (call `reload` afterwards if the manager
    /// already knows the name).
    pub fn write_unit(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.unit_dir.join(name);
        fs::write(&path, contents).expect("writing a unit file");
        path
    }

    /// Host PID of `systemd --user`, if it is running.
    pub fn manager_pid(&self) -> Option<u32> {
        children(self.init_pid)
            .into_iter()
            .find(|&p| comm(p) == "systemd")
    }

    /// Kills the manager alone (SIGKILL), leaving the bus up: what a crash looks like to clients.
    pub fn kill_manager(&self) {
        if let Some(pid) = self.manager_pid() {
            kill(pid, "KILL");
        }
    }

    /// Runs `systemctl --user ARGS` inside the namespace (for checks in tests; the product
    /// never runs systemctl).
    pub fn systemctl(&self, args: &[&str]) -> Output {
        sh(self.command("systemctl").arg("--user").args(args))
            .expect("running systemctl in the sandbox")
    }

    /// `program` to be run inside the sandbox's namespaces (mount, PID and, with a journal,
    /// cgroup), as a process on the sandbox's "host": it sees the journal at the standard
    /// `/run/log/journal`, the manager's cgroup paths as the manager does, and has the
    /// client environment ([`UserManager::client_env`]).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let pid = self.manager_pid().expect("the manager is running");
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &pid.to_string(), "-m", "-p"]);
        if self.journal {
            cmd.arg("-C");
        }
        cmd.arg("--").arg(program).envs(self.client_env());
        cmd
    }

    /// The journal directory of a sandbox started with [`UserManagerBuilder::journal`]
    /// (`/run/log/journal` inside it): `journalctl -D` takes it, from outside.
    pub fn journal_dir(&self) -> PathBuf {
        self.root.path().join("log/journal")
    }

    /// `ActiveState` of `unit` as `systemctl --user is-active` reports it.
    pub fn is_active(&self, unit: &str) -> String {
        let out = self.systemctl(&["is-active", unit]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            !text.is_empty(),
            "systemctl is-active {unit} in the sandbox said nothing: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        // Killing the PID namespace's init kills every process in it; unshare then reaps it.
        stop_namespace(&mut self.unshare, self.init_pid);
        self.cgroup.remove();
    }
}

/// A system manager: systemd as PID 1 of private PID, mount and cgroup namespaces, with a
/// system bus of its own and only the units in `unit_dir` (`SYSTEMD_UNIT_PATH`).
#[derive(Debug)]
pub struct SystemManager {
    /// The temporary directory (removed on drop).
    pub root: tempfile::TempDir,
    /// The only unit directory of the manager.
    pub unit_dir: PathBuf,
    unshare: Child,
    /// Host PID of the namespace's systemd.
    pid: u32,
    cgroup: Cgroup,
}

impl SystemManager {
    /// Starts it with `units` (name, contents) next to the minimal targets and dbus units it
    /// needs. `None` or a panic (`CI=true`) if that is not possible.
    pub fn start(units: &[(&str, &str)]) -> Option<SystemManager> {
        skip_or_fail("system manager", Self::try_start(units, None))
    }

    /// Like [`SystemManager::start`], with `generator` as the only system generator (it runs
    /// at start and at every daemon-reload, with the manager's clean environment); its output
    /// directory `/run/systemd/generator` is in the unit path.
    pub fn start_with_generator(units: &[(&str, &str)], generator: &Path) -> Option<SystemManager> {
        skip_or_fail("system manager", Self::try_start(units, Some(generator)))
    }

    fn try_start(
        units: &[(&str, &str)],
        generator: Option<&Path>,
    ) -> Result<SystemManager, String> {
        let root = tempfile::Builder::new()
            .prefix("unitwright-system-")
            .tempdir_in(sandbox_base())
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        let unit_dir = root.path().join("units");
        fs::create_dir_all(&unit_dir).map_err(|e| e.to_string())?;
        let mut all: Vec<(String, String)> = vec![
            (
                "default.target".into(),
                "[Unit]\nDescription=default\nWants=dbus.socket dbus.service\n".into(),
            ),
            (
                "dbus.socket".into(),
                "[Socket]\nListenStream=/run/dbus/system_bus_socket\n".into(),
            ),
            (
                "dbus.service".into(),
                "[Unit]\nRequires=dbus.socket\n[Service]\nExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation\n".into(),
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
            fs::write(unit_dir.join(name), contents).map_err(|e| e.to_string())?;
        }
        // The manager's configuration goes to /run (the tmpfs), where system.conf.d is searched.
        let manager_conf = root.path().join("manager.conf");
        write_manager_conf(&manager_conf)?;
        let script = format!("set -e\nmount -t tmpfs tmpfs /run\nmkdir -p /run/dbus /run/systemd/system.conf.d /run/systemd/system-generators\ncp \"$UW_MANAGER_CONF\" /run/systemd/system.conf.d/sandbox.conf\nif [ -n \"$UW_GENERATOR\" ]; then ln -s \"$UW_GENERATOR\" /run/systemd/system-generators/; fi\n{CGROUP_REMOUNT}exec env container=unitwright-test /lib/systemd/systemd --system </dev/null\n");
        let cgroup = Cgroup::new(root.path(), true);
        let mut cmd = cgroup.unshare(&["--cgroup"], &script);
        if let Some(g) = generator {
            // Only this generator (not the host's), and its output in the unit path.
            cmd.env("UW_GENERATOR", g)
                .env("SYSTEMD_GENERATOR_PATH", "/run/systemd/system-generators")
                .env(
                    "SYSTEMD_UNIT_PATH",
                    format!("/run/systemd/generator:{}", unit_dir.display()),
                );
        } else {
            cmd.env("SYSTEMD_UNIT_PATH", &unit_dir);
        }
        let unshare = cmd
            .env("UW_MANAGER_CONF", &manager_conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(root.path()))
            .spawn()
            .map_err(|e| format!("running unshare: {e}"))?;
        let mut sandbox = SystemManager {
            root,
            unit_dir,
            unshare,
            pid: 0,
            cgroup,
        };
        let root = sandbox.root.path().to_owned();
        sandbox.pid = start_manager(
            "systemd --system",
            &mut sandbox.unshare,
            &root,
            system_bus_address,
        )?;
        Ok(sandbox)
    }

    /// The system bus address, for `DBUS_SYSTEM_BUS_ADDRESS` or `Options::address`.
    pub fn bus_address(&self) -> String {
        system_bus_address(self.pid)
    }

    /// `systemctl ARGS` inside the namespaces (for checks in tests).
    pub fn systemctl(&self, args: &[&str]) -> Output {
        sh(Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-m", "-p", "--", "systemctl"])
            .args(args))
        .expect("running systemctl in the sandbox")
    }
}

impl Drop for SystemManager {
    fn drop(&mut self) {
        // PID 1 ignores SIGTERM; SIGKILL from outside ends it and the whole namespace.
        stop_namespace(&mut self.unshare, self.pid);
        self.cgroup.remove();
    }
}

/// Shell lines (run as the init of a new cgroup namespace, with `/run` already a tmpfs) that
/// mount every cgroup hierarchy the host has mounted afresh, so that each is rooted at the
/// namespace's root, as on a host, where PID 1's cgroup is the root of what `/sys/fs/cgroup`
/// shows. Without it the host's mounts stay, rooted at the host's root, while `/proc/PID/cgroup`
/// is relative to the namespace: systemd then creates `system.slice` at the host's root (shared
/// with every other sandbox), services see paths such as `/../system.slice/x.service`, and
/// podman's `--cgroups=split` fails with `mkdir /sys/fs/cgroup/system.slice: read-only file
/// system`. The same hierarchies as the host's (and `/sys/fs/cgroup` read-only as there).
const CGROUP_REMOUNT: &str = r#"if [ -e /sys/fs/cgroup/cgroup.procs ]; then
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
else
  grep -E '^[^ ]+ /sys/fs/cgroup/[^ ]+ cgroup2? ' /proc/self/mounts > /run/uw-cgroup-mounts
  mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
  while read -r _ dir type opts _; do
    mkdir -p "$dir"
    if [ "$type" = cgroup2 ]; then
      mount -t cgroup2 cgroup2 "$dir"
    else
      o=$(printf '%s\n' "$opts" | tr , '\n' | grep -vxE 'rw|ro|relatime|nosuid|nodev|noexec' | paste -sd, -)
      case $o in name=*) o="none,$o" ;; esac
      mount -t cgroup -o "$o" cgroup "$dir"
    fi
  done < /run/uw-cgroup-mounts
  rm /run/uw-cgroup-mounts
  mount -o remount,ro /sys/fs/cgroup
fi
"#;

/// A cgroup of its own for one sandbox, below the test's cgroup, in the hierarchies systemd
/// tracks processes in (`name=systemd` and the unified one, or the single cgroup2 tree).
///
/// Without it every sandboxed manager would use the same paths (`/app.slice/x.service`,
/// `/system.slice/...`) as every other sandbox running at the same time, and stopping a unit
/// in one sandbox could kill the processes of the same-named unit in another.
#[derive(Debug)]
struct Cgroup {
    /// The sandbox's directory in each hierarchy.
    dirs: Vec<PathBuf>,
}

impl Cgroup {
    /// The sandbox's cgroups in the hierarchies systemd tracks processes in; with
    /// `controllers` also in the cgroup v1 hierarchies of the controllers a manager accounts
    /// with (memory, pids, cpu, cpuacct), so that a manager in a cgroup namespace rooted
    /// there can account its units' memory, tasks and CPU as on a host.
    fn new(root: &Path, with_controllers: bool) -> Cgroup {
        let name = root
            .file_name()
            .map_or_else(|| "unitwright".into(), ToOwned::to_owned);
        let pure_v2 = Path::new("/sys/fs/cgroup/cgroup.procs").exists();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut dirs = Vec::new();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let base = match controllers {
                "" if pure_v2 => PathBuf::from("/sys/fs/cgroup"),
                "" => PathBuf::from("/sys/fs/cgroup/unified"),
                "name=systemd" => PathBuf::from("/sys/fs/cgroup/systemd"),
                c @ ("memory" | "pids" | "cpu" | "cpuacct")
                    if with_controllers && Path::new("/sys/fs/cgroup").join(c).is_dir() =>
                {
                    Path::new("/sys/fs/cgroup").join(c)
                }
                _ => continue,
            };
            dirs.push(base.join(path.trim_start_matches('/')).join(&name));
        }
        Cgroup { dirs }
    }

    /// The names of the hierarchies, for the journal sandbox's script: `cgroup2` on a pure
    /// cgroup v2 host, else the directory names under `/sys/fs/cgroup` (`systemd unified
    /// memory ...`).
    fn hierarchy_names(&self) -> String {
        let names: Vec<String> = self
            .dirs
            .iter()
            .filter_map(|d| {
                let rel = d.strip_prefix("/sys/fs/cgroup").ok()?;
                match rel.components().next()? {
                    std::path::Component::Normal(n)
                        if Path::new("/sys/fs/cgroup")
                            .join(n)
                            .join("cgroup.procs")
                            .exists()
                            && !Path::new("/sys/fs/cgroup/cgroup.procs").exists() =>
                    {
                        Some(n.to_string_lossy().into_owned())
                    }
                    _ => None,
                }
            })
            .collect();
        if Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
            "cgroup2".to_owned()
        } else {
            names.join(" ")
        }
    }

    /// `unshare` of private mount and PID namespaces (plus `extra` options) running `sh -c
    /// script` as the namespace's init, inside this cgroup (see [`Cgroup::command`]). Killing
    /// the init kills the whole namespace; `--kill-child` kills it when unshare dies.
    fn unshare(&self, extra: &[&str], script: &str) -> Command {
        let mut cmd = self.command("unshare");
        cmd.args(["--mount", "--pid", "--fork", "--kill-child"])
            .args(extra)
            .args([
                "--propagation",
                "private",
                "--mount-proc",
                "sh",
                "-c",
                script,
            ]);
        cmd
    }

    /// `program` started by a shell that first moves itself into this cgroup (best effort:
    /// where cgroups are read-only the sandbox still runs, only less isolated).
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            r#"for d in $UW_CGROUPS; do mkdir -p "$d" 2>/dev/null && echo $$ > "$d/cgroup.procs" 2>/dev/null; done; exec "$@""#,
            "sh",
            program,
        ]);
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        cmd.env("UW_CGROUPS", dirs.join(" "));
        cmd
    }

    /// Removes the sandbox's cgroups, also those the manager created in the other controller
    /// hierarchies at the same relative path.
    fn remove(&self) {
        let Some(first) = self.dirs.first() else {
            return;
        };
        let mut all = self.dirs.clone();
        if let Ok(relative) = first.strip_prefix("/sys/fs/cgroup/systemd") {
            if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
                all.extend(entries.flatten().map(|e| e.path().join(relative)));
            }
        }
        for dir in all {
            // The kernel may need a moment to release cgroups of processes that just died.
            for _ in 0..50 {
                remove_tree(&dir);
                if !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
        let _ = fs::remove_dir(dir);
    }
}

impl UserManager {
    /// Kills the whole sandbox now (manager, bus, services): what a lost bus connection looks
    /// like to clients. Drop does nothing more afterwards but remove the directory.
    pub fn kill_everything(&mut self) {
        stop_namespace(&mut self.unshare, self.init_pid);
        self.init_pid = 0;
    }
}

/// The `unitwright-generator` binary next to `unitwright_exe` (`env!("CARGO_BIN_EXE_unitwright")`)
/// in the target directory; built with the same profile when it is missing or older.
pub fn generator_binary(unitwright_exe: &str) -> PathBuf {
    let exe = Path::new(unitwright_exe);
    let dir = exe.parent().expect("the binary's directory");
    let gen = dir.join("unitwright-generator");
    let fresh = |g: &Path| match (fs::metadata(g), fs::metadata(exe)) {
        (Ok(a), Ok(b)) => a.modified().ok() >= b.modified().ok(),
        _ => false,
    };
    if !fresh(&gen) {
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let target = dir.parent().expect("the target directory");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "unitwright-generator",
            "--target-dir",
        ])
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd
            .status()
            .expect("running cargo build -p unitwright-generator");
        assert!(status.success(), "building unitwright-generator failed");
    }
    assert!(gen.exists(), "{} does not exist", gen.display());
    gen
}
