//! [`SystemManager`]: systemd as PID 1 of private namespaces, with its own system bus.
//!
//! The manager's `/run` is the sandbox's `run/` directory bind-mounted, not an anonymous tmpfs:
//! on a booted host, PID 1 and every program share `/run`, where runtime state lives
//! (`/run/unitwright/instances`, the settings of template instances; the generator's cache in
//! `/run/unitwright`; `/run/systemd/system` and `/run/containers/systemd` for units written at
//! run time; `/run/log/journal`). [`SystemManager::outside_command`] runs its program in a mount
//! namespace of its own in which that same directory is `/run`, so a client outside finds all of
//! it where the manager (and `%t` in its units) does, with no sandbox-specific path.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use crate::cgroup::{Cgroup, Controllers, Guard};
use crate::{
    check_host, sandbox_dir, sandbox_name, sh, skip_or_fail, start_manager, stop_namespace,
    system_bus_address, with_log, write_manager_conf, Error,
};

/// The namespace's init: `/run` is the sandbox's `run/` directory (`$UW_RUN`; the bus socket,
/// the manager's configuration, the generators, the journal and every unit's runtime state go
/// there, and clients outside share it, see the module docs), every cgroup hierarchy the host has mounted mounted afresh, so that
/// each is rooted at the namespace's root (the sandbox's own cgroup), as on a host where PID 1's
/// cgroup is the root of what `/sys/fs/cgroup` shows, then systemd as PID 1. Without the
/// remount the host's mounts stay, rooted at the host's root, while `/proc/PID/cgroup` is
/// relative to the namespace: systemd then created `system.slice` at the host's root (shared
/// with every other sandbox), services saw paths such as `/../system.slice/x.service`, and
/// podman's `--cgroups=split` failed with `mkdir /sys/fs/cgroup/system.slice: read-only file
/// system`. The same hierarchies as the host's (and `/sys/fs/cgroup` read-only as there).
const SCRIPT: &str = concat!(
    r#"set -e
mount --bind "$UW_RUN" /run
mkdir -p /run/dbus /run/log /run/systemd/system.conf.d /run/systemd/system-generators /run/systemd/journald.conf.d
cp "$UW_MANAGER_CONF" /run/systemd/system.conf.d/sandbox.conf
if [ -n "$UW_GENERATORS" ]; then
  printf '%s\n' "$UW_GENERATORS" | while read -r g; do ln -s "$g" /run/systemd/system-generators/; done
fi
if [ -n "$UW_JOURNAL" ]; then
  printf '[Journal]\nStorage=volatile\nReadKMsg=no\nRateLimitBurst=0\n' > /run/systemd/journald.conf.d/sandbox.conf
fi
"#,
    r#"if [ -e /sys/fs/cgroup/cgroup.procs ]; then
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
unset UW_RUN UW_MANAGER_CONF UW_GENERATORS UW_JOURNAL UW_HIERARCHIES
exec env container=unitwright-sandbox /lib/systemd/systemd --system </dev/null
"#
);

/// journald as a host runs it: socket-activated, before `sysinit.target` (the sandbox's
/// version of systemd's units: no `/dev/log` symlink on the host's `/dev`, no audit socket).
const JOURNALD_SOCKET: &str = "[Unit]\nDescription=Journal Socket\nDefaultDependencies=no\n\
    Before=sockets.target\n[Socket]\nListenStream=/run/systemd/journal/stdout\n\
    ListenDatagram=/run/systemd/journal/socket\nListenDatagram=/run/systemd/journal/dev-log\n\
    SocketMode=0666\nPassCredentials=yes\nPassSecurity=yes\nReceiveBuffer=8M\n\
    Service=systemd-journald.service\n";
const JOURNALD_SERVICE: &str = "[Unit]\nDescription=Journal Service\nDefaultDependencies=no\n\
    Requires=systemd-journald.socket\nAfter=systemd-journald.socket\nBefore=sysinit.target\n\
    [Service]\nType=notify\nExecStart=/lib/systemd/systemd-journald\n\
    Sockets=systemd-journald.socket\nRestart=always\nRestartSec=0\nStandardOutput=null\n\
    RuntimeDirectory=systemd/journal\nRuntimeDirectoryPreserve=yes\nFileDescriptorStoreMax=4224\n";

/// Settings for a [`SystemManager`].
#[derive(Debug, Default, Clone)]
pub struct SystemManagerBuilder {
    env: Vec<(OsString, OsString)>,
    generators: Vec<PathBuf>,
    units: Vec<(String, Vec<u8>)>,
    journal: bool,
}

impl SystemManagerBuilder {
    crate::builder_methods!("/run/systemd/system-generators/");

    /// Starts the manager. `None` (after a loud message on stderr) if the sandbox cannot be
    /// set up; a panic instead when `CI=true`.
    pub fn start(self) -> Option<SystemManager> {
        skip_or_fail("system manager", self.try_start())
    }

    /// Starts the manager, or says why it cannot.
    pub fn try_start(&self) -> Result<SystemManager, Error> {
        SystemManager::try_start(self)
    }
}

/// A system manager: systemd as PID 1 of private PID, mount and cgroup namespaces, with a
/// system bus of its own and only the units in `unit_dir` (`SYSTEMD_UNIT_PATH`) and those of
/// its generators.
#[derive(Debug)]
pub struct SystemManager {
    /// The temporary directory (removed on drop).
    pub root: tempfile::TempDir,
    /// The manager's unit directory (the `/etc/systemd/system` of this sandbox).
    pub unit_dir: PathBuf,
    /// The manager's `/run`, as seen from outside (see the module docs).
    run_dir: PathBuf,
    unshare: Child,
    /// Host PID of the namespace's systemd.
    pid: u32,
    cgroup: Cgroup,
    /// Tears the sandbox down if this process dies without dropping it.
    guard: Guard,
    journal: bool,
}

impl SystemManager {
    /// Starts it with `units` (name, contents) next to the minimal targets and dbus units it
    /// needs. `None` or a panic (`CI=true`) if that is not possible.
    pub fn start(units: &[(&str, &str)]) -> Option<SystemManager> {
        Self::with_units(units).start()
    }

    /// Like [`SystemManager::start`], with `generator` as the only system generator (it runs
    /// at start and at every daemon-reload, with the manager's clean environment); its output
    /// directory `/run/systemd/generator` is in the unit path.
    pub fn start_with_generator(units: &[(&str, &str)], generator: &Path) -> Option<SystemManager> {
        Self::with_units(units).generator(generator).start()
    }

    /// A builder for units, generators, a journal and environment.
    pub fn builder() -> SystemManagerBuilder {
        SystemManagerBuilder::default()
    }

    fn with_units(units: &[(&str, &str)]) -> SystemManagerBuilder {
        units.iter().fold(Self::builder(), |b, (name, contents)| {
            b.unit(name, contents)
        })
    }

    fn try_start(b: &SystemManagerBuilder) -> Result<SystemManager, Error> {
        check_host(b.journal)?;
        let root = sandbox_dir("system")?;
        let io = |what: &Path, e: std::io::Error| Error::new(format!("{}: {e}", what.display()));
        let unit_dir = root.path().join("units");
        let run_dir = root.path().join("run");
        for d in [&unit_dir, &run_dir] {
            fs::create_dir_all(d).map_err(|e| io(d, e))?;
        }
        {
            // As a host's /run: services running as other users find their sockets there.
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&run_dir, fs::Permissions::from_mode(0o755))
                .map_err(|e| io(&run_dir, e))?;
        }
        let mut wants = "dbus.socket dbus.service".to_owned();
        if b.journal {
            wants.push_str(" systemd-journald.socket systemd-journald.service");
        }
        let mut all: Vec<(String, Vec<u8>)> = vec![
            (
                "default.target".into(),
                format!("[Unit]\nDescription=default\nWants={wants}\n").into_bytes(),
            ),
            (
                "dbus.socket".into(),
                b"[Socket]\nListenStream=/run/dbus/system_bus_socket\n".to_vec(),
            ),
            (
                "dbus.service".into(),
                b"[Unit]\nRequires=dbus.socket\n[Service]\nExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation\n".to_vec(),
            ),
        ];
        for t in ["sysinit", "basic", "shutdown"] {
            all.push((
                format!("{t}.target"),
                format!("[Unit]\nDescription={t}\n").into_bytes(),
            ));
        }
        if b.journal {
            all.push(("systemd-journald.socket".into(), JOURNALD_SOCKET.into()));
            all.push(("systemd-journald.service".into(), JOURNALD_SERVICE.into()));
        }
        all.extend(b.units.iter().cloned());
        for (name, contents) in &all {
            let path = unit_dir.join(name);
            fs::write(&path, contents).map_err(|e| io(&path, e))?;
        }
        // The manager's configuration goes to /run (the tmpfs), where system.conf.d is searched.
        let manager_conf = root.path().join("manager.conf");
        if b.journal {
            fs::write(&manager_conf, "[Manager]\n").map_err(|e| io(&manager_conf, e))?;
        } else {
            write_manager_conf(&manager_conf)?;
        }
        let cgroup = Cgroup::create(&sandbox_name(root.path()), Controllers::All)?;
        let guard = Guard::spawn(root.path(), &cgroup)?;
        let generators: Vec<String> = b
            .generators
            .iter()
            .map(|g| g.display().to_string())
            .collect();
        let mut cmd = cgroup.unshare(&["--cgroup"], SCRIPT);
        // Only these generators (not the host's), and their output in the unit path.
        cmd.env("UW_GENERATORS", generators.join("\n"))
            .env("SYSTEMD_GENERATOR_PATH", "/run/systemd/system-generators")
            .env(
                "SYSTEMD_UNIT_PATH",
                format!(
                    "/run/systemd/generator.early:/run/systemd/generator:{}:/run/systemd/generator.late",
                    unit_dir.display()
                ),
            )
            .env("UW_MANAGER_CONF", &manager_conf)
            .env("UW_JOURNAL", if b.journal { "1" } else { "" })
            .env("UW_RUN", &run_dir)
            .env("UW_HIERARCHIES", cgroup.hierarchy_names())
            .env_remove("NOTIFY_SOCKET")
            .env_remove("UNITWRIGHT_SANDBOX")
            ;
        let unshare = crate::spawn_unshare(&mut cmd, root.path(), &b.env, &cgroup)?;
        let mut sandbox = SystemManager {
            root,
            unit_dir,
            run_dir,
            unshare,
            pid: 0,
            cgroup,
            guard,
            journal: b.journal,
        };
        let root = sandbox.root.path().to_owned();
        // On failure `sandbox` is dropped here, which tears down what was started.
        sandbox.pid = start_manager(
            "systemd --system",
            &mut sandbox.unshare,
            &root,
            system_bus_address,
        )
        .map_err(|e| with_log(e, &root))?;
        Ok(sandbox)
    }

    /// The system bus address, for `DBUS_SYSTEM_BUS_ADDRESS` or a D-Bus library.
    pub fn bus_address(&self) -> String {
        system_bus_address(self.pid)
    }

    /// Environment for a client process outside the namespaces: `DBUS_SYSTEM_BUS_ADDRESS` and
    /// `SYSTEMCTL_FORCE_BUS=1` (the manager refuses `systemctl` on its private socket from
    /// outside its PID namespace; over the bus it works).
    pub fn client_env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address().into()),
            (crate::FORCE_BUS.0, crate::FORCE_BUS.1.into()),
        ]
    }

    /// Host PID of the namespace's systemd (PID 1 inside).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `program` run inside the namespaces (mount, PID, cgroup), where `/run` is the
    /// manager's: `systemctl` and `journalctl` work there as on a booted host.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(self.nsenter_args()).arg("--").arg(program);
        cmd
    }

    /// The `nsenter` options that enter the sandbox's namespaces.
    pub(crate) fn nsenter_args(&self) -> Vec<String> {
        vec![
            "-t".to_owned(),
            self.pid.to_string(),
            "-m".into(),
            "-p".into(),
            "-C".into(),
        ]
    }

    /// The `nsenter` prefix (program and options) that runs a program inside the namespaces,
    /// as [`SystemManager::command`] does, for scripts.
    pub fn nsenter_prefix(&self) -> Vec<String> {
        let mut v = vec!["nsenter".to_owned()];
        v.extend(self.nsenter_args());
        v
    }

    /// The manager's `/run` as a directory outside the namespaces (`<root>/run`): e.g.
    /// `run_dir().join("unitwright/instances")` is the settings store its units read.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// `program` to be run *outside* the PID and cgroup namespaces, with the client
    /// environment, in the sandbox's cgroup subtree (`command/`): whatever it leaves running
    /// is killed, by PID, when the sandbox is dropped. It runs in a mount namespace of its own
    /// (a slave of the caller's: the host's mounts, and those made later, are visible) in which
    /// `/run` is the manager's ([`SystemManager::run_dir`]), as on a booted host where PID 1
    /// and every program share `/run`: what it writes to `/run/unitwright`, `/run/systemd/system`
    /// or `/run/containers/systemd` is what the manager and its units see, and the system bus
    /// is also at its default address. The rest of the host's `/run` is hidden from it.
    pub fn outside_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = self.cgroup.outside("unshare");
        cmd.args(["--mount", "--propagation", "slave", "--", "/bin/sh", "-c"])
            .arg(
                r#"mount --bind "$0" /run || { echo "unitwright sandbox: cannot make $0 the /run of the command" >&2; exit 125; }; exec "$@""#,
            )
            .arg(&self.run_dir)
            .arg(program)
            .envs(self.client_env());
        cmd
    }

    /// `systemctl ARGS` inside the namespaces (for checks in tests).
    pub fn systemctl(&self, args: &[&str]) -> Output {
        sh(self.command("systemctl").args(args)).expect("running systemctl in the sandbox")
    }

    /// `ActiveState` of `unit` as `systemctl is-active` reports it.
    pub fn is_active(&self, unit: &str) -> String {
        let out = self.systemctl(&["is-active", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Writes `<unit_dir>/<name>` (call daemon-reload afterwards if the manager already knows
    /// the name).
    pub fn write_unit(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.unit_dir.join(name);
        fs::write(&path, contents).expect("writing a unit file");
        path
    }

    /// The journal directory of a sandbox with [`SystemManagerBuilder::journal`]
    /// (`/run/log/journal` inside): `journalctl -D` takes it, from outside.
    pub fn journal_dir(&self) -> PathBuf {
        self.run_dir.join("log/journal")
    }

    /// Whether journald runs in the sandbox.
    pub fn has_journal(&self) -> bool {
        self.journal
    }

    /// The sandbox's cgroup directories (its subtree's root in each hierarchy).
    pub fn cgroup_dirs(&self) -> &[PathBuf] {
        &self.cgroup.dirs
    }

    /// Keeps the temporary directory (units, `sandbox.log`, the journal) when the sandbox is
    /// dropped; processes, mounts and cgroups are still removed.
    pub fn keep_dir(&mut self, keep: bool) {
        self.root.disable_cleanup(keep);
        self.guard.keep_dir(keep);
    }
}

impl Drop for SystemManager {
    fn drop(&mut self) {
        // PID 1 ignores SIGTERM; SIGKILL from outside ends it and the whole namespace.
        stop_namespace(&mut self.unshare, self.pid);
        self.cgroup.kill_commands();
        self.cgroup.remove();
    }
}
