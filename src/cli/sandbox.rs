//! `unitwright sandbox`: a real service manager in private namespaces for the duration of one
//! command (the `unitwright-testkit` crate behind a command line).
//!
//! The manager (a `systemd --user` with its own session bus, or with `--system` systemd as
//! PID 1 of private PID, mount and cgroup namespaces with its own system bus), optionally a
//! journald, the given generators and units; then COMMAND runs outside the namespaces with
//! the bus addresses in its environment, in the sandbox's cgroup subtree (with `--system` in a
//! mount namespace of its own whose `/run` is the manager's, as on a booted host where
//! `unitwright --system instance start` writes settings that the instance's unit reads from
//! `%t`). When COMMAND ends (or is killed, or this process gets SIGINT, SIGTERM or SIGHUP)
//! everything is torn down: COMMAND's processes and the namespace's init by PID (the
//! namespace's other processes die with its init), the cgroup subtree, the temporary directory
//! (unless `--keep`). If this process is killed with SIGKILL, the sandbox's guard process
//! does the same. Mounts are only ever made inside private mount namespaces.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use unitwright_testkit::{SystemManager, UserManager};

use super::Global;

/// What goes in the long help and the man page.
pub const ABOUT: &str = "\
Starts a real service manager in private namespaces, runs COMMAND against it, and removes \
every trace of it afterwards. Without --system (for this verb the default is --user): a systemd --user with its own session bus \
(COMMAND gets DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR, so `unitwright --user` and \
`systemctl --user` talk to it). With --system: systemd as PID 1 of private PID, mount and \
cgroup namespaces with its own system bus (COMMAND gets DBUS_SYSTEM_BUS_ADDRESS) and its \
own /run, which COMMAND shares (it runs in a mount namespace whose /run is the manager's, as \
on a booted host: `unitwright --system instance start` stores settings in /run/unitwright that \
the instance's unit reads, and the bus is also at its default address). \
`systemctl` and `journalctl` on COMMAND's PATH run inside the sandbox's namespaces, where \
they see its manager and journal; COMMAND gets SYSTEMCTL_FORCE_BUS=1, so that a systemctl run \
by its absolute path talks to the manager over the bus (the manager refuses clients outside \
its PID namespace on its private socket). UNITWRIGHT_SANDBOX describes the sandbox \
(`scope=user|system pid=HOST-PID dir=DIR units=DIR [journal=DIR]`); \
UNITWRIGHT_SANDBOX_UNITS is the directory unit files go to (then daemon-reload), \
UNITWRIGHT_SANDBOX_JOURNAL (with --journal) the journal directory (`unitwright logs -D`, \
`journalctl -D`).

Exit status: COMMAND's (128+N when it was killed by signal N); 125 when the sandbox could \
not be started (the message names what is missing: root, namespaces, systemd, dbus-daemon, \
a writable cgroup file system). On SIGINT, SIGTERM or SIGHUP the signal is passed to \
COMMAND, and after it ended (at most 10 s, then SIGKILL) everything is torn down; the exit \
status is then 128+N of that signal. If `unitwright sandbox` itself is killed with SIGKILL, \
a guard process it started tears the sandbox down all the same.

Needs root (CAP_SYS_ADMIN; in a container: --privileged), systemd, dbus-daemon and \
util-linux. Sandboxes live in /dev/shm (UNITWRIGHT_SANDBOX_DIR overrides it).";

/// Examples for the long help.
pub const EXAMPLES: &str = "\
Examples:
  unitwright sandbox --unit ./web.service -- sh -c 'unitwright --user start web && systemctl --user status web'
  unitwright sandbox --system --journal --generator /usr/lib/systemd/system-generators/unitwright-generator -- ./ci-tests.sh
  unitwright sandbox -- cargo test          # the tests connect to DBUS_SESSION_BUS_ADDRESS";

/// `unitwright sandbox` options (`--system`/`--user` are the global ones).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run a systemd-journald that records the units as on a booted host.
    #[arg(long)]
    pub journal: bool,
    /// With --journal (user manager): mount every cgroup controller the kernel has enabled
    /// in the sandbox, as a booted host has them; podman needs it to run containers there.
    #[arg(long, requires = "journal")]
    pub all_controllers: bool,
    /// Install this generator (user generator, or system generator with --system); it runs at
    /// the manager's start and at every daemon-reload. May be repeated.
    #[arg(long, value_name = "PATH")]
    pub generator: Vec<PathBuf>,
    /// Install this unit file (under its own name) before the manager starts. May be repeated.
    #[arg(long, value_name = "FILE")]
    pub unit: Vec<PathBuf>,
    /// Keep the sandbox's directory (units, journal, sandbox.log) after it stopped and print its
    /// path; processes, mounts and cgroups are removed all the same.
    #[arg(long)]
    pub keep: bool,
    /// The command to run, and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

/// The sandbox of either kind.
enum Sandbox {
    User(UserManager),
    System(SystemManager),
}

impl Sandbox {
    fn root(&self) -> &Path {
        match self {
            Sandbox::User(s) => s.root.path(),
            Sandbox::System(s) => s.root.path(),
        }
    }

    fn keep_dir(&mut self) {
        match self {
            Sandbox::User(s) => s.keep_dir(true),
            Sandbox::System(s) => s.keep_dir(true),
        }
    }

    /// COMMAND, outside the namespaces, in the sandbox's cgroup, with the client environment.
    fn outside_command(&self, program: &OsString) -> std::process::Command {
        match self {
            Sandbox::User(s) => s.outside_command(program),
            Sandbox::System(s) => s.outside_command(program),
        }
    }

    /// `nsenter ...` that enters the sandbox's namespaces.
    fn nsenter_prefix(&self) -> Vec<String> {
        match self {
            Sandbox::User(s) => s.nsenter_prefix(),
            Sandbox::System(s) => s.nsenter_prefix(),
        }
    }

    fn description(&self, journal: bool) -> (String, PathBuf, PathBuf) {
        let (scope, pid, units, journal_dir) = match self {
            Sandbox::User(s) => (
                "user",
                s.manager_pid().unwrap_or(0),
                &s.unit_dir,
                s.journal_dir(),
            ),
            Sandbox::System(s) => ("system", s.pid(), &s.unit_dir, s.journal_dir()),
        };
        let mut d = format!(
            "scope={scope} pid={pid} dir={} units={}",
            self.root().display(),
            units.display()
        );
        if journal {
            d.push_str(" journal=");
            d.push_str(&journal_dir.display().to_string());
        }
        (d, units.clone(), journal_dir)
    }
}

/// Writes `bin/systemctl` and `bin/journalctl` into the sandbox's directory: each runs the real
/// program inside the sandbox's namespaces (in the caller's working directory), where it sees
/// the sandbox's manager and journal as on a booted host.
///
/// Where the sandbox's directory is on a `noexec` file system (`/dev/shm` in a podman
/// container), they go to a directory of their own in `$TMPDIR` (returned, removed on drop):
/// a shim that cannot be executed would silently leave the host's `systemctl` on `PATH`.
fn write_shims(sandbox: &Sandbox) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    let noexec = rustix::fs::statvfs(sandbox.root())
        .is_ok_and(|v| v.f_flag.contains(rustix::fs::StatVfsMountFlags::NOEXEC));
    let own = if noexec {
        Some(
            tempfile::Builder::new()
                .prefix("unitwright-sandbox-bin-")
                .tempdir()
                .context("creating a directory for the systemctl and journalctl shims")?,
        )
    } else {
        None
    };
    let bin = own
        .as_ref()
        .map_or_else(|| sandbox.root().join("bin"), |d| d.path().to_owned());
    fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let prefix = sandbox.nsenter_prefix();
    let target = prefix
        .iter()
        .skip_while(|a| *a != "-t")
        .nth(1)
        .context("no target PID for nsenter")?;
    let mnt = fs::read_link(format!("/proc/{target}/ns/mnt"))
        .with_context(|| format!("reading the mount namespace of process {target}"))?;
    let mnt = mnt.display();
    let prefix = prefix.join(" ");
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    for tool in ["systemctl", "journalctl"] {
        // The real one by its absolute path: the shims' directory is on PATH inside too.
        let Some(real) = std::env::split_paths(&search)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
        else {
            continue;
        };
        let path = bin.join(tool);
        // Already inside (e.g. run through nsenter with this PATH): the real one directly.
        let script = format!(
            "#!/bin/sh\n# unitwright sandbox: the real {tool}, inside the sandbox's namespaces.\n\
             # There the manager's private socket works (COMMAND's SYSTEMCTL_FORCE_BUS is for outside).\n\
             unset SYSTEMCTL_FORCE_BUS\n\
             [ \"$(readlink /proc/self/ns/mnt)\" = '{mnt}' ] && exec {real} \"$@\"\n\
             exec {prefix} --wd=\"$PWD\" -- {real} \"$@\"\n",
            real = real.display()
        );
        fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok((bin, own))
}

/// Checks the files given with `--unit` and `--generator` before anything starts.
fn check_inputs(args: &Args) -> anyhow::Result<Vec<PathBuf>> {
    for unit in &args.unit {
        let meta = fs::metadata(unit)
            .with_context(|| format!("--unit {}: cannot read it", unit.display()))?;
        if !meta.is_file() {
            bail!("--unit {}: not a regular file", unit.display());
        }
        let name = unit.file_name().map(|n| n.to_string_lossy().into_owned());
        if !name.as_deref().is_some_and(|n| n.contains('.')) {
            bail!(
                "--unit {}: the file name must be a unit name (e.g. web.service)",
                unit.display()
            );
        }
    }
    let mut generators = Vec::new();
    for g in &args.generator {
        let path = fs::canonicalize(g)
            .with_context(|| format!("--generator {}: cannot find it", g.display()))?;
        let meta = fs::metadata(&path)?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            bail!("--generator {}: not an executable file", g.display());
        }
        generators.push(path);
    }
    Ok(generators)
}

/// How COMMAND ended, or which signal ended the wait.
enum Ended {
    Command(std::process::ExitStatus),
    Signal(i32),
}

/// Runs `unitwright sandbox`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    if global.host.is_some() {
        bail!("-H/--host does not apply to sandbox (it starts a manager here)");
    }
    let generators = match check_inputs(&args) {
        Ok(g) => g,
        Err(e) => {
            super::log::line(&format!("unitwright: {}", super::log::error_text(&e)));
            return Ok(ExitCode::from(125));
        }
    };
    let mut units = Vec::new();
    for u in &args.unit {
        let name = u
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let contents = fs::read_to_string(u)
            .with_context(|| format!("--unit {}: cannot read it", u.display()))?;
        units.push((name, contents));
    }
    // Orphans of COMMAND become our children (not init's, which may never reap them), so that
    // after they were killed no zombie of the sandbox is left.
    if let Some(one) = rustix::process::Pid::from_raw(1) {
        let _ = rustix::process::set_child_subreaper(Some(one));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        // Before anything starts, so that no signal can end this process before it cleaned up.
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;

        // The same settings for either kind of manager.
        macro_rules! start {
            ($builder:expr, $kind:path) => {{
                let b = units.iter().fold($builder, |b, (n, c)| b.unit(n, c));
                generators
                    .iter()
                    .fold(b, |b, g| b.generator(g.clone()))
                    .journal(args.journal)
                    .try_start()
                    .map($kind)
            }};
        }
        if global.system && args.all_controllers {
            super::log::line(
                "unitwright: --all-controllers is for the user manager's sandbox; the system \
                 manager's mounts the host's hierarchies already",
            );
            return Ok(ExitCode::from(2));
        }
        let started = if global.system {
            start!(SystemManager::builder(), Sandbox::System)
        } else {
            start!(
                UserManager::builder().all_controllers(args.all_controllers),
                Sandbox::User
            )
        };
        let mut sandbox = match started {
            Ok(s) => s,
            Err(e) => {
                super::log::line(&format!("unitwright: cannot start the sandbox: {e}"));
                return Ok(ExitCode::from(125));
            }
        };
        if args.keep {
            sandbox.keep_dir();
        }
        let ended = run_command(&sandbox, &args, &mut int, &mut term, &mut hup).await;
        let dir = sandbox.root().to_owned();
        // Tears everything down (see the module docs), then reaps the orphans it killed.
        drop(sandbox);
        reap_orphans();
        if args.keep {
            super::log::line(&format!(
                "unitwright: sandbox directory kept: {}",
                dir.display()
            ));
        }
        Ok(match ended? {
            Ended::Command(status) => exit_code(status),
            Ended::Signal(n) => ExitCode::from(u8::try_from(128 + n).unwrap_or(1)),
        })
    })
}

/// Spawns COMMAND and waits for it, or for a signal to this process (passed on to COMMAND,
/// whose end is then awaited for up to 10 s).
async fn run_command(
    sandbox: &Sandbox,
    args: &Args,
    int: &mut tokio::signal::unix::Signal,
    term: &mut tokio::signal::unix::Signal,
    hup: &mut tokio::signal::unix::Signal,
) -> anyhow::Result<Ended> {
    let (bin, _own_bin) = write_shims(sandbox)?;
    let (description, units, journal) = sandbox.description(args.journal);
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)))?;
    let (program, rest) = args.command.split_first().context("no COMMAND")?;
    let mut cmd = sandbox.outside_command(program);
    cmd.args(rest)
        .env("PATH", path)
        .env("UNITWRIGHT_SANDBOX", description)
        .env("UNITWRIGHT_SANDBOX_UNITS", units);
    if args.journal {
        cmd.env("UNITWRIGHT_SANDBOX_JOURNAL", journal);
    } else {
        cmd.env_remove("UNITWRIGHT_SANDBOX_JOURNAL");
    }
    let mut child = tokio::process::Command::from(cmd)
        .spawn()
        .with_context(|| format!("running {}", program.to_string_lossy()))?;
    let signo = tokio::select! {
        status = child.wait() => return Ok(Ended::Command(status?)),
        _ = int.recv() => libc_signal::INT,
        _ = term.recv() => libc_signal::TERM,
        _ = hup.recv() => libc_signal::HUP,
    };
    if let Some(pid) = child.id() {
        let sig = match signo {
            libc_signal::INT => rustix::process::Signal::INT,
            libc_signal::HUP => rustix::process::Signal::HUP,
            _ => rustix::process::Signal::TERM,
        };
        if let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }
    // Whatever COMMAND left running is killed with the sandbox.
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    Ok(Ended::Signal(signo))
}

/// Waits for every child that is left (orphans of COMMAND that were re-parented to this
/// subreaper and killed with the sandbox), for at most 5 s.
fn reap_orphans() {
    use rustix::process::{wait, WaitOptions};
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        match wait(WaitOptions::NOHANG) {
            Ok(Some(_)) => {}
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => return, // ECHILD: none left
        }
    }
}

/// Signal numbers (Linux), for the exit status 128+N.
mod libc_signal {
    pub const HUP: i32 = 1;
    pub const INT: i32 = 2;
    pub const TERM: i32 = 15;
}

/// COMMAND's exit status as ours: its code, or 128+N when signal N killed it.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        ExitCode::from(u8::try_from(code).unwrap_or(1))
    } else if let Some(sig) = status.signal() {
        ExitCode::from(u8::try_from(128 + sig).unwrap_or(1))
    } else {
        ExitCode::FAILURE
    }
}
