//! [`UserManager`]: a `systemd --user` with its own session bus.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use crate::cgroup::{Cgroup, Controllers, Guard};
use crate::{
    check_host, children, comm, sandbox_dir, sandbox_name, sh, skip_or_fail, start_manager,
    stop_namespace, with_log, write_manager_conf, Error,
};

/// Mounts the cgroup hierarchies named in `$UW_HIERARCHIES` (see `Cgroup::hierarchy_names`)
/// afresh on `/sys/fs/cgroup`, as the cgroup namespace of the calling shell sees them, and
/// sets `hierarchies` to their mount points.
macro_rules! mount_cgroups {
    () => {
        r#"if [ "$UW_HIERARCHIES" = cgroup2 ]; then
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
  hierarchies=/sys/fs/cgroup
else
  mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
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
"#
    };
}

/// The namespace's init without a journal: mount the tmpfs, start the bus at exactly
/// `$XDG_RUNTIME_DIR/bus` (the manager registers there whatever `DBUS_SESSION_BUS_ADDRESS`
/// says), then the manager.
const PLAIN_SCRIPT: &str = r#"set -e
mkdir -p /run/systemd # a container may have none (its /run is bare)
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

/// The namespace's init with a journal (see "With a journal" in the crate docs). It runs in
/// a new cgroup namespace whose root is the sandbox's own cgroup; it mounts the cgroup
/// hierarchies as that namespace sees them, lays out the cgroups of a booted host (itself in
/// `/init.scope`, journald in `/system.slice/systemd-journald.service`, the manager in
/// `/user.slice/user-UID.slice/user@UID.service`), records `user@UID.service`'s invocation ID
/// where PID 1 would, and starts journald before the bus and the manager.
const JOURNAL_SCRIPT: &str = concat!(
    r#"set -e
mkdir -p /run/systemd # a container may have none (its /run is bare)
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
"#,
    mount_cgroups!(),
    r#"uid=$(id -u)
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
"#
);

/// Settings for a [`UserManager`] that must be in place before the manager starts.
#[derive(Debug, Default, Clone)]
pub struct UserManagerBuilder {
    env: Vec<(OsString, OsString)>,
    generators: Vec<PathBuf>,
    units: Vec<(String, Vec<u8>)>,
    journal: bool,
    all_controllers: bool,
}

impl UserManagerBuilder {
    crate::builder_methods!("/run/systemd/user-generators/");

    /// With [`UserManagerBuilder::journal`]: mount every cgroup controller the kernel has
    /// enabled in the sandbox, as a booted host has them (systemd mounts all v1 hierarchies),
    /// not only those the manager accounts with. podman 4.3.1 creates a pod's cgroup in every
    /// enabled controller and fails where one is not mounted; this machine enables `net_cls`,
    /// `net_prio`, `perf_event` and `hugetlb` without mounting them.
    #[must_use]
    pub fn all_controllers(mut self, on: bool) -> Self {
        self.all_controllers = on;
        self
    }

    /// Starts the manager. `None` (after a loud message on stderr) if the sandbox cannot be
    /// set up; a panic instead when `CI=true`.
    pub fn start(self) -> Option<UserManager> {
        skip_or_fail("systemd --user", self.try_start())
    }

    /// Starts the manager, or says why it cannot.
    pub fn try_start(&self) -> Result<UserManager, Error> {
        UserManager::try_start(self)
    }
}

/// A running `systemd --user` with a private session bus. See the crate docs.
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
    /// Tears the sandbox down if this process dies without dropping it.
    guard: Guard,
    /// Whether a journald runs in the sandbox.
    journal: bool,
}

impl UserManager {
    /// Starts a manager with default settings. `None` (after a loud message) if the sandbox
    /// cannot be set up; panics instead when `CI=true`.
    pub fn start() -> Option<UserManager> {
        Self::builder().start()
    }

    /// A builder for extra environment, generators, units and a journal.
    pub fn builder() -> UserManagerBuilder {
        UserManagerBuilder::default()
    }

    fn try_start(b: &UserManagerBuilder) -> Result<UserManager, Error> {
        check_host(b.journal)?;
        let root = sandbox_dir("user")?;
        let runtime_dir = root.path().join("run");
        let unit_dir = runtime_dir.join("systemd/user");
        let io = |what: &Path, e: std::io::Error| Error::new(format!("{}: {e}", what.display()));
        for d in [
            &unit_dir,
            &root.path().join("home"),
            &root.path().join("config/systemd"),
            &root.path().join("log"),
        ] {
            fs::create_dir_all(d).map_err(|e| io(d, e))?;
        }
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| io(&runtime_dir, e))?;
        }
        for (name, contents) in &b.units {
            let path = unit_dir.join(name);
            fs::write(&path, contents).map_err(|e| io(&path, e))?;
        }
        if !b.journal {
            write_manager_conf(&root.path().join("config/systemd/user.conf"))?;
        }
        let generators: Vec<String> = b
            .generators
            .iter()
            .map(|g| g.display().to_string())
            .collect();
        let address = format!("unix:path={}/bus", runtime_dir.display());
        let cgroup = Cgroup::create(
            &sandbox_name(root.path()),
            if b.journal {
                Controllers::Accounting
            } else {
                Controllers::None
            },
        )?;
        let guard = Guard::spawn(root.path(), &cgroup)?;
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
            .env_remove("UNITWRIGHT_SANDBOX");
        let unshare = crate::spawn_unshare(&mut cmd, root.path(), &b.env, &cgroup)?;
        let mut sandbox = UserManager {
            root,
            runtime_dir,
            unit_dir,
            init_pid: 0,
            unshare,
            cgroup,
            guard,
            journal: b.journal,
        };
        let address = sandbox.bus_address();
        let root = sandbox.root.path().to_owned();
        // On failure `sandbox` is dropped here, which tears down what was started.
        sandbox.init_pid = start_manager("systemd --user", &mut sandbox.unshare, &root, |_| {
            address.clone()
        })
        .map_err(|e| with_log(e, &root))?;
        Ok(sandbox)
    }

    /// The session bus address, for `DBUS_SESSION_BUS_ADDRESS` or a D-Bus library.
    pub fn bus_address(&self) -> String {
        format!("unix:path={}/bus", self.runtime_dir.display())
    }

    /// Environment for a client process outside the namespace (e.g. the CLI under test):
    /// `DBUS_SESSION_BUS_ADDRESS`, `XDG_RUNTIME_DIR` and `SYSTEMCTL_FORCE_BUS=1` (the manager
    /// refuses `systemctl --user` on its private socket from outside its PID namespace; over
    /// the bus it works).
    pub fn client_env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS", self.bus_address().into()),
            ("XDG_RUNTIME_DIR", self.runtime_dir.clone().into()),
            (crate::FORCE_BUS.0, crate::FORCE_BUS.1.into()),
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

    /// Host PID of the namespace's init (0 once it was killed).
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    /// Kills the manager alone (SIGKILL), leaving the bus up: what a crash looks like to clients.
    pub fn kill_manager(&self) {
        if let Some(pid) = self.manager_pid() {
            crate::signal(pid, rustix::process::Signal::KILL);
        }
    }

    /// Kills the whole sandbox now (manager, bus, services): what a lost bus connection looks
    /// like to clients. Drop does nothing more afterwards but remove the cgroups and directory.
    pub fn kill_everything(&mut self) {
        stop_namespace(&mut self.unshare, self.init_pid);
        self.init_pid = 0;
    }

    /// Runs `systemctl --user ARGS` inside the namespace (for checks in tests).
    pub fn systemctl(&self, args: &[&str]) -> Output {
        sh(self.command("systemctl").arg("--user").args(args))
            .expect("running systemctl in the sandbox")
    }

    /// `program` to be run inside the sandbox's namespaces (mount, PID and, with a journal,
    /// cgroup), as a process on the sandbox's "host": it sees the journal at the standard
    /// `/run/log/journal`, the manager's cgroup paths as the manager does, and has the
    /// client environment ([`UserManager::client_env`]).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let pid = self.manager_pid().expect("the manager is running");
        let mut cmd = Command::new("nsenter");
        cmd.args(self.nsenter_args(pid))
            .arg("--")
            .arg(program)
            .envs(self.client_env())
            // Inside, the private socket works, as on a host.
            .env_remove(crate::FORCE_BUS.0);
        cmd
    }

    /// The `nsenter` options that enter the namespaces of the process `pid` of this sandbox.
    pub(crate) fn nsenter_args(&self, pid: u32) -> Vec<String> {
        let mut args = vec!["-t".to_owned(), pid.to_string(), "-m".into(), "-p".into()];
        if self.journal {
            args.push("-C".into());
        }
        args
    }

    /// `program` to be run *outside* the namespaces, with the client environment, in the
    /// sandbox's cgroup subtree (`command/`): whatever it leaves running is killed, by PID,
    /// when the sandbox is dropped.
    pub fn outside_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = self.cgroup.outside(program);
        cmd.envs(self.client_env());
        cmd
    }

    /// The `nsenter` prefix (program and options) that runs a program inside the namespaces,
    /// as [`UserManager::command`] does, for scripts.
    pub fn nsenter_prefix(&self) -> Vec<String> {
        let pid = self.manager_pid().unwrap_or(self.init_pid);
        let mut v = vec!["nsenter".to_owned()];
        v.extend(self.nsenter_args(pid));
        v
    }

    /// The journal directory of a sandbox started with [`UserManagerBuilder::journal`]
    /// (`/run/log/journal` inside it): `journalctl -D` takes it, from outside.
    pub fn journal_dir(&self) -> PathBuf {
        self.root.path().join("log/journal")
    }

    /// Whether a journald runs in the sandbox.
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
        self.cgroup.kill_commands();
        self.cgroup.remove();
    }
}
