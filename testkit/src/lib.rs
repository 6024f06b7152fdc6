//! Real systemd managers in private namespaces, for tests of units and of D-Bus code.
//!
//! Mocking systemd misses what only the real manager does (escaping, conditions, job results,
//! generator runs); a privileged systemd-as-PID-1 container is heavy. This crate starts the real
//! thing in a few hundred milliseconds, as root, on a host or in a container whose PID 1 is not
//! systemd, and removes every trace of it afterwards:
//!
//! * [`UserManager`]: a `systemd --user` with its own session bus, in private mount and PID
//!   namespaces (a tmpfs over `/run/systemd` provides the `/run/systemd/system` it insists on;
//!   killing the namespace's init kills the manager, the bus and every service at once). Its
//!   `XDG_RUNTIME_DIR` is a temporary directory *outside* the namespaces, so the bus socket
//!   `$XDG_RUNTIME_DIR/bus` and `systemctl --user`'s private socket are reachable from the test
//!   process. Unit files go to `$XDG_RUNTIME_DIR/systemd/user/`; the manager's `HOME` and
//!   `XDG_CONFIG_HOME` point into the temporary directory, so `enable` never touches the real
//!   home. With [`UserManagerBuilder::journal`] a real `systemd-journald` records the units as
//!   on a booted host (see "With a journal" below).
//! * [`SystemManager`]: systemd as PID 1 of private PID, mount and cgroup namespaces, with its
//!   own system bus and only the units you give it; its bus is reached from outside through
//!   `/proc/<pid>/root/run/dbus/system_bus_socket`. Its `/run` is the sandbox's `run/`
//!   directory ([`SystemManager::run_dir`]), and [`SystemManager::outside_command`] runs
//!   programs with that as their `/run`, as on a booted host where PID 1 and every program
//!   share it (settings of template instances in `/run/unitwright`, units in
//!   `/run/systemd/system`, the journal, the bus at its default address).
//! * [`remote::RemoteHost`]: systemd and sshd in private namespaces with a network namespace
//!   of their own, a "remote host" for tests of ssh transports.
//!
//! Each sandbox owns a cgroup subtree (below the caller's cgroup, named like its temporary
//! directory) in which its manager creates every cgroup it uses, so sandboxes running in
//! parallel with same-named units never share a cgroup. Dropping a sandbox (also when a test
//! panics) kills the namespace's init (and with it every process of the namespace), kills the
//! processes started with `outside_command` by PID, removes the cgroup subtree in every
//! hierarchy and the temporary directory. Every mount is made inside a private mount
//! namespace, so none is ever visible on the host. A process that dies without dropping its
//! sandboxes (SIGKILL, `std::process::exit`, an abort) leaves nothing either: each sandbox has
//! a guard, a shell outside it reading a pipe whose other end only its owner holds, which on
//! the end of that pipe kills every process in the sandbox's cgroups, removes them and the
//! directory.
//!
//! The `unitwright sandbox` command is this crate behind a command line.
//!
//! # Example
//!
//! ```no_run
//! use unitwright_testkit::UserManager;
//!
//! // A real systemd --user with one unit; `None` (after a loud message) when the machine cannot
//! // run it, unless CI=true, where it panics: in CI a test that cannot run the real thing fails.
//! let Some(sb) = UserManager::builder()
//!     .unit("web@.service", "[Service]\nExecStart=/bin/sleep 600\n")
//!     .env("CONTAINERS_CONF", "/path/to/containers.conf") // manager (and service) environment
//!     .journal(true)                                       // a real journald beside it
//!     .start()
//! else {
//!     return;
//! };
//! // Any client outside: its session bus address and XDG_RUNTIME_DIR come from client_env().
//! let status = std::process::Command::new("systemctl")
//!     .args(["--user", "start", "web@1.service"])
//!     .envs(sb.client_env())
//!     .status()
//!     .expect("systemctl runs");
//! assert!(status.success());
//! assert_eq!(sb.is_active("web@1.service"), "active");
//! // In process (zbus, ...): connect to sb.bus_address().
//! // Inside the namespaces (journal at /run/log/journal): sb.command("journalctl").
//! ```
//!
//! A system manager with a generator:
//!
//! ```no_run
//! use unitwright_testkit::SystemManager;
//!
//! let sb = SystemManager::builder()
//!     .unit("hello.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
//!     .generator("/usr/lib/systemd/system-generators/my-generator")
//!     .try_start()
//!     .expect("a system manager");
//! // DBUS_SYSTEM_BUS_ADDRESS for clients outside:
//! let address = sb.bus_address();
//! let out = sb.systemctl(&["start", "hello.service"]);
//! assert!(out.status.success(), "{address}");
//! ```
//!
//! # With a journal: `UserManager::builder().journal(true)`
//!
//! A `systemd --user` started by hand in a mount namespace logs nowhere useful: its units'
//! cgroups are `/<test cgroup>/app.slice/x.service`, so a journald would record them as
//! *system* units with no `_SYSTEMD_USER_UNIT=`, and no invocation IDs. With `.journal(true)`
//! the sandbox gives a real `systemd-journald` what a booted host gives it, rather than the
//! code under test adapting to a sandbox:
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
//! A [`SystemManager`] with a journal runs `systemd-journald` as its own socket-activated
//! service, as a host does, with the same volatile configuration.
//!
//! Clients that read the journal run inside the namespaces with [`UserManager::command`]
//! (where `/run/log/journal` is the sandbox's); from outside, `journalctl -D
//! <journal_dir()>` reads the same files.
//!
//! # What it needs
//!
//! Root (CAP_SYS_ADMIN, for the namespaces and mounts; in a container: `--privileged`),
//! systemd (`/lib/systemd/systemd`, `systemd-journald` for a journal), `dbus-daemon`,
//! util-linux's `unshare` and `nsenter`, and a writable cgroup file system. Each missing piece
//! is named in the error.
#![allow(clippy::missing_panics_doc)]

/// The settings both builders share and their methods (`env`, `generator`, `unit`, `journal`),
/// with `$generators` naming where generators go for the docs.
macro_rules! builder_methods {
    ($generators:literal) => {
        /// Sets a variable in the manager's environment (for a user manager also inherited by
        /// its services; a system manager gives units `DefaultEnvironment=` only, as on a host).
        #[must_use]
        pub fn env(
            mut self,
            key: impl Into<std::ffi::OsString>,
            value: impl Into<std::ffi::OsString>,
        ) -> Self {
            self.env.push((key.into(), value.into()));
            self
        }

        #[doc = concat!("Installs `path` (absolute) as a generator (a symlink in `", $generators, "`")]
        /// of the private `/run`; the host's generators do not run): it runs at the manager's start
        /// and at every daemon-reload, and its output directories are in the unit path.
        #[must_use]
        pub fn generator(mut self, path: impl Into<std::path::PathBuf>) -> Self {
            self.generators.push(path.into());
            self
        }

        /// Writes a unit file into the manager's unit directory before it starts.
        #[must_use]
        pub fn unit(mut self, name: &str, contents: &str) -> Self {
            self.units
                .push((name.to_owned(), contents.as_bytes().to_owned()));
            self
        }

        /// Runs a real `systemd-journald` that records the manager's units as on a booted host
        /// (see "With a journal" in the crate docs). Units' output then goes to the journal
        /// (not to /dev/null); read it inside the namespaces (`command("journalctl")`, where it
        /// is at the standard `/run/log/journal`) or from `journal_dir()` (`journalctl -D`).
        #[must_use]
        pub fn journal(mut self, on: bool) -> Self {
            self.journal = on;
            self
        }
    };
}
pub(crate) use builder_methods;

mod cgroup;
mod dbus;
pub mod remote;
mod system;
mod user;

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use system::{SystemManager, SystemManagerBuilder};
pub use user::{UserManager, UserManagerBuilder};

/// A long-running service, for start/stop tests.
pub const SLEEP_SERVICE: &str = "[Service]\nExecStart=/bin/sleep 600\n";
/// A long-running service with an `[Install]` section (`WantedBy=default.target`).
pub const INSTALLABLE_SERVICE: &str =
    "[Service]\nExecStart=/bin/sleep 600\n[Install]\nWantedBy=default.target\n";

/// A oneshot service whose start never finishes (for jobs that must still be running).
pub const ENDLESS_ONESHOT: &str = "[Service]\nType=oneshot\nExecStart=/bin/sleep 600\n";

/// `SYSTEMCTL_FORCE_BUS=1` in the environment of clients outside the sandbox's PID namespace:
/// systemctl then talks to the manager through the bus instead of its private socket
/// (`/run/systemd/private`, `$XDG_RUNTIME_DIR/systemd/private`), where the manager refuses
/// every client it cannot see ("Incoming private connection from unprivileged client,
/// refusing: No data available": systemd requires the peer's PID from `SO_PEERCRED`, which
/// is 0 for a process outside its PID namespace), so that a plain `systemctl` failed with
/// "Transport endpoint is not connected". The bus daemon accepts such clients.
pub(crate) const FORCE_BUS: (&str, &str) = ("SYSTEMCTL_FORCE_BUS", "1");

/// How long a manager may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a sandbox could not be started: one sentence that names what is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error { message }
    }
}

/// Whether a test that cannot set up its sandbox must fail rather than skip (`CI=true`).
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Turns a setup failure into `None` (with a loud message) or, under `CI=true`, a panic.
pub(crate) fn skip_or_fail<T>(what: &str, result: Result<T, Error>) -> Option<T> {
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

pub(crate) fn sh(cmd: &mut Command) -> Result<Output, String> {
    cmd.output().map_err(|e| format!("running {cmd:?}: {e}"))
}

/// Sends `signal` to the process `pid` (errors, such as a process already gone, are ignored).
pub(crate) fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// SIGKILLs the namespace's init (`init_pid`, 0 if unknown), which takes every process of
/// the PID namespace with it, and waits until `unshare` has reaped it and exited.
pub(crate) fn stop_namespace(unshare: &mut Child, init_pid: u32) {
    if init_pid != 0 {
        signal(init_pid, rustix::process::Signal::KILL);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if !matches!(unshare.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let _ = unshare.kill();
    let _ = unshare.wait();
}

/// Host PIDs of the children of `pid`.
pub(crate) fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

pub(crate) fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

pub(crate) fn wait_for(
    what: &str,
    mut ready: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match ready() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(e),
        }
        if start.elapsed() > READY_TIMEOUT {
            return Err(format!("{what} not ready after {READY_TIMEOUT:?}"));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Where sandboxes live: on tmpfs, as `$XDG_RUNTIME_DIR` (`/run/user/UID`) is on a real system.
/// The manager writes a symlink there for each unit it starts; on a disk file system that alone
/// costs more than the rest of a target's start. `$UNITWRIGHT_SANDBOX_DIR` overrides it.
pub(crate) fn sandbox_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("UNITWRIGHT_SANDBOX_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    match fs::metadata(shm) {
        Ok(m) if m.is_dir() => shm.to_owned(),
        _ => std::env::temp_dir(),
    }
}

/// A new temporary directory for a sandbox, `<base>/unitwright-<kind>-XXXXXX`.
pub(crate) fn sandbox_dir(kind: &str) -> Result<tempfile::TempDir, Error> {
    let base = sandbox_base();
    tempfile::Builder::new()
        .prefix(&format!("unitwright-{kind}-"))
        .tempdir_in(&base)
        .map_err(|e| {
            Error::new(format!(
                "creating a temporary directory in {}: {e}",
                base.display()
            ))
        })
}

/// The name of a sandbox (its directory's), which also names its cgroup.
pub(crate) fn sandbox_name(root: &Path) -> String {
    root.file_name()
        .map_or_else(|| "unitwright".into(), |n| n.to_string_lossy().into_owned())
}

/// Manager settings shared by both sandboxes without a journal. Units' output goes to
/// /dev/null: without this every spawned process would fail to reach the journal socket and
/// write a warning to /dev/console (a serial console on CI machines, slow enough to dominate
/// the manager's own CPU time per service start).
pub(crate) fn write_manager_conf(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    fs::write(path, "[Manager]\nDefaultStandardOutput=null\n")
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Where a sandbox's stderr goes: `<root>/sandbox.log`.
pub(crate) fn log_file(root: &Path) -> Stdio {
    fs::File::create(root.join("sandbox.log")).map_or_else(|_| Stdio::null(), Stdio::from)
}

/// Starts the sandbox's `unshare` command `cmd` with no stdin/stdout, stderr to the sandbox log
/// and the builder's extra `env`; if it cannot start, `cgroup` is removed again.
pub(crate) fn spawn_unshare(
    cmd: &mut Command,
    root: &Path,
    env: &[(OsString, OsString)],
    cgroup: &cgroup::Cgroup,
) -> Result<Child, Error> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(root))
        .envs(env.iter().map(|(k, v)| (k, v)));
    cmd.spawn().map_err(|e| {
        cgroup.remove();
        Error::new(format!("running unshare: {e}"))
    })
}

pub(crate) fn read_log(root: &Path) -> String {
    fs::read_to_string(root.join("sandbox.log")).unwrap_or_default()
}

/// `unshare` could not start or exited early: its own words and what they mean.
fn unshare_failed(status: std::process::ExitStatus, root: &Path) -> String {
    let log = read_log(root);
    let hint = if log.contains("Operation not permitted") || log.contains("Permission denied") {
        " (creating namespaces and mounting need root with CAP_SYS_ADMIN: run as root, and in \
         a container with --privileged)"
    } else {
        ""
    };
    format!(
        "the sandbox's namespaces exited with {status}: {}{hint}",
        log.trim()
    )
}

/// Waits for `unshare --fork` to create the namespace's init and returns its host PID.
pub(crate) fn namespace_init(unshare: &mut Child, root: &Path) -> Result<u32, String> {
    let pid = unshare.id();
    wait_for("the namespace", || {
        if let Ok(Some(status)) = unshare.try_wait() {
            return Err(unshare_failed(status, root));
        }
        // The child is the namespace's init once the cgroup shell has exec'd unshare.
        Ok(comm(pid) == "unshare" && !children(pid).is_empty())
    })?;
    Ok(children(pid)[0])
}

/// The system bus of the system manager whose host PID is `pid`, reached through its root.
pub(crate) fn system_bus_address(pid: u32) -> String {
    format!("unix:path=/proc/{pid}/root/run/dbus/system_bus_socket")
}

/// Waits for the namespace's init, then until the manager on `address(init pid)` reports
/// `SystemState` running (or degraded); returns the init's host PID.
pub(crate) fn start_manager(
    what: &str,
    unshare: &mut Child,
    root: &Path,
    address: impl Fn(u32) -> String,
) -> Result<u32, String> {
    let init = namespace_init(unshare, root)?;
    let address = address(init);
    wait_for(what, || {
        if let Ok(Some(status)) = unshare.try_wait() {
            return Err(unshare_failed(status, root));
        }
        let state = system_state(&address);
        Ok(matches!(state.as_deref(), Some("running" | "degraded")))
    })
    .map_err(|e| format!("{e}: {}", read_log(root).trim()))?;
    Ok(init)
}

/// Asks the manager on `address` for `SystemState` (see [`dbus`]: no subprocess per poll).
fn system_state(address: &str) -> Option<String> {
    dbus::get_string_property(
        address,
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "SystemState",
    )
}

/// Whether `name` is an executable on `PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
}

/// Checks what every sandbox needs before anything is started, naming what is missing.
pub(crate) fn check_host(journal: bool) -> Result<(), Error> {
    let mut missing = Vec::new();
    if !Path::new("/lib/systemd/systemd").is_file() {
        missing.push("systemd (/lib/systemd/systemd; Debian/Ubuntu: apt-get install systemd)");
    }
    if journal && !Path::new("/lib/systemd/systemd-journald").is_file() {
        missing.push("systemd-journald (/lib/systemd/systemd-journald, part of systemd)");
    }
    if !on_path("dbus-daemon") {
        missing.push("dbus-daemon (Debian/Ubuntu: apt-get install dbus-daemon)");
    }
    for tool in ["unshare", "nsenter"] {
        if !on_path(tool) {
            missing.push(if tool == "unshare" {
                "unshare (util-linux)"
            } else {
                "nsenter (util-linux)"
            });
        }
    }
    if !missing.is_empty() {
        return Err(Error::new(format!("not installed: {}", missing.join(", "))));
    }
    if !rustix::process::geteuid().is_root() {
        return Err(Error::new(format!(
            "needs root: private mount and PID namespaces, mounts and cgroups need CAP_SYS_ADMIN \
             (running as uid {})",
            rustix::process::geteuid().as_raw()
        )));
    }
    // CAP_SYS_ADMIN (bit 21) in the effective set: root in an unprivileged container lacks it.
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    if cap_eff.is_some_and(|caps| caps & (1 << 21) == 0) {
        return Err(Error::new(
            "root without CAP_SYS_ADMIN (an unprivileged container?): namespaces and mounts are \
             refused; run the container with --privileged",
        ));
    }
    Ok(())
}

/// What the sandbox's `sandbox.log` says, for error messages.
pub(crate) fn with_log(e: String, root: &Path) -> Error {
    let log = read_log(root);
    if log.trim().is_empty() || e.contains(log.trim()) {
        Error::new(e)
    } else {
        Error::new(format!("{e}: {}", log.trim()))
    }
}
