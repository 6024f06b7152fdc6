//! The cgroup subtree each sandbox owns.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// The cgroup subtree of one sandbox, `<our cgroup>/<sandbox name>/`, in the hierarchies systemd
/// tracks processes in (`name=systemd` and the unified one, or the single cgroup2 tree) and,
/// for managers that account resources, in every other mounted v1 hierarchy but cpuset.
///
/// * `manager/` holds the namespace's init and everything in its namespaces; for sandboxes
///   with a cgroup namespace it is that namespace's root, so a manager creates its slices and
///   scopes below it (and nowhere else), as on a host.
/// * `command/` holds the processes started with [`crate::UserManager::outside_command`] (the
///   COMMAND of `unitwright sandbox`): when the sandbox stops, every process left there is
///   killed by its PID.
///
/// Without a subtree of its own every sandboxed manager would use the same paths
/// (`/app.slice/x.service`, `/system.slice/...`) as every other one running at the same time,
/// and stopping a unit in one sandbox could kill the processes of the same-named unit in
/// another. On drop of the sandbox the whole subtree is removed, in every hierarchy.
#[derive(Debug)]
pub(crate) struct Cgroup {
    /// The sandbox's directory in each hierarchy.
    pub(crate) dirs: Vec<PathBuf>,
    /// How many of `dirs` (the first ones) must be joined: those systemd tracks processes in.
    required: usize,
}

/// Which v1 controller hierarchies a sandbox joins besides those systemd tracks processes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controllers {
    /// None.
    None,
    /// Those a user manager accounts with: memory, pids, cpu, cpuacct.
    Accounting,
    /// Every mounted one but cpuset (a new cpuset cgroup has no CPUs until they are written).
    All,
}

impl Controllers {
    fn wants(self, controllers: &str) -> bool {
        match self {
            Controllers::None => false,
            Controllers::Accounting => {
                matches!(controllers, "memory" | "pids" | "cpu" | "cpuacct")
            }
            Controllers::All => !controllers.split(',').any(|c| c == "cpuset"),
        }
    }
}

/// Whether the host has the single cgroup2 tree (no v1 hierarchies).
fn pure_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.procs").exists()
}

impl Cgroup {
    /// Creates the sandbox's subtree (named `name`, with `manager/` and `command/`) below this
    /// process's cgroups. The hierarchies systemd tracks processes in must be writable: a clear
    /// error otherwise (a container whose cgroup file system is read-only). With
    /// [`Controllers::Accounting`] the memory, pids, cpu and cpuacct v1 hierarchies are added,
    /// with [`Controllers::All`] every mounted v1 hierarchy but cpuset, where they can be (best
    /// effort: a manager without them only accounts less), so that whatever the manager and its
    /// services create there is inside the subtree too.
    pub(crate) fn create(name: &str, controllers_wanted: Controllers) -> Result<Cgroup, Error> {
        let own = fs::read_to_string("/proc/self/cgroup").map_err(|e| {
            Error::new(format!(
                "reading /proc/self/cgroup: {e} (is /proc mounted?)"
            ))
        })?;
        let mut dirs = Vec::new();
        let mut tracked = 0;
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (base, required) = match controllers {
                "" if pure_v2() => (PathBuf::from("/sys/fs/cgroup"), true),
                "" => (PathBuf::from("/sys/fs/cgroup/unified"), true),
                "name=systemd" => (PathBuf::from("/sys/fs/cgroup/systemd"), true),
                c if controllers_wanted.wants(c)
                    && Path::new("/sys/fs/cgroup").join(c).is_dir() =>
                {
                    (Path::new("/sys/fs/cgroup").join(c), false)
                }
                _ => continue,
            };
            if !base.join("cgroup.procs").exists() {
                // A container may lack the unified hierarchy (podman's cgroup v1 has none).
                if required && (controllers == "name=systemd" || pure_v2()) {
                    return Err(Error::new(format!(
                        "the cgroup hierarchy {} is not mounted (systemd needs it to track processes)",
                        base.display()
                    )));
                }
                continue;
            }
            // Without a cgroup namespace a container shows the host's path, but has its own
            // cgroup mounted as the root of the hierarchy.
            let mut own_dir = base.join(path.trim_start_matches('/'));
            if !own_dir.is_dir() {
                own_dir.clone_from(&base);
            }
            let dir = own_dir.join(name);
            let made = fs::create_dir_all(dir.join("manager"))
                .and_then(|()| fs::create_dir_all(dir.join("command")));
            match made {
                Ok(()) if required => dirs.insert(tracked, dir),
                Ok(()) => dirs.push(dir),
                Err(e) if required => {
                    let cg = Cgroup {
                        dirs,
                        required: tracked,
                    };
                    cg.remove();
                    let hint = if e.raw_os_error() == Some(30) {
                        " (the cgroup file system is mounted read-only: in a container, run it \
                         with --privileged or with /sys/fs/cgroup mounted read-write)"
                    } else {
                        " (the caller's cgroup is not writable: run as root, or as a user give the \
                         sandbox a cgroup delegated to that user in every mounted hierarchy and start \
                         it from there; in a rootless container that also needs --privileged)"
                    };
                    return Err(Error::new(format!(
                        "cannot create the sandbox's cgroup {}: {e}{hint}",
                        dir.display()
                    )));
                }
                Err(_) => {
                    let _ = fs::remove_dir(dir.join("manager"));
                    let _ = fs::remove_dir(&dir);
                }
            }
            if required {
                tracked += 1;
            }
        }
        if dirs.is_empty() {
            return Err(Error::new(
                "no cgroup hierarchy to put the sandbox in (/proc/self/cgroup names neither \
                 name=systemd nor the unified hierarchy)",
            ));
        }
        Ok(Cgroup {
            dirs,
            required: tracked,
        })
    }

    /// The names of the hierarchies, for the scripts that mount them in a cgroup namespace:
    /// `cgroup2` on a pure cgroup v2 host, else the directory names under `/sys/fs/cgroup`
    /// (`systemd unified memory ...`).
    pub(crate) fn hierarchy_names(&self) -> String {
        if pure_v2() {
            return "cgroup2".to_owned();
        }
        let names: Vec<String> = self
            .dirs
            .iter()
            .filter_map(|d| {
                let rel = d.strip_prefix("/sys/fs/cgroup").ok()?;
                match rel.components().next()? {
                    std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                    _ => None,
                }
            })
            .collect();
        names.join(" ")
    }

    /// `<dir>/<name>` of the required (`true`) or the other hierarchies, space-separated.
    fn sub(&self, name: &str, required: bool) -> String {
        let (req, opt) = self.dirs.split_at(self.required);
        let dirs: Vec<String> = (if required { req } else { opt })
            .iter()
            .map(|d| d.join(name).display().to_string())
            .collect();
        dirs.join(" ")
    }

    /// `program`, started by a shell that first moves itself into `<subtree>/<which>` of every
    /// hierarchy (and fails, exit 125, when it cannot join one systemd tracks processes in).
    fn command_in(&self, which: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.args([
            "-c",
            r#"for d in $UW_CGROUPS; do echo $$ > "$d/cgroup.procs" || { echo "unitwright sandbox: cannot join the cgroup $d" >&2; exit 125; }; done; for d in $UW_CGROUPS_MORE; do echo $$ > "$d/cgroup.procs" 2>/dev/null; done; unset UW_CGROUPS UW_CGROUPS_MORE; exec "$@""#,
            "sh",
        ])
        .arg(program)
        .env("UW_CGROUPS", self.sub(which, true))
        .env("UW_CGROUPS_MORE", self.sub(which, false));
        cmd
    }

    /// `unshare` of private mount and PID namespaces (plus `extra` options) running `sh -c
    /// script` as the namespace's init, in `manager/`. Killing the init kills the whole
    /// namespace; `--kill-child` kills it when unshare dies.
    pub(crate) fn unshare(&self, extra: &[&str], script: &str) -> Command {
        let mut cmd = self.command_in("manager", "unshare");
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

    /// `program` in `command/`, outside the sandbox's namespaces.
    pub(crate) fn outside(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.command_in("command", program)
    }

    /// Host PIDs of the processes in `<subtree>/<which>` and below.
    pub(crate) fn pids(&self, which: &str) -> Vec<u32> {
        let mut pids = Vec::new();
        for d in &self.dirs {
            collect_pids(&d.join(which), &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// SIGKILLs every process in `command/` by its PID until none is left (a process may
    /// fork while it is being killed), for at most 5 s.
    pub(crate) fn kill_commands(&self) {
        let start = Instant::now();
        loop {
            let pids = self.pids("command");
            if pids.is_empty() || start.elapsed() > Duration::from_secs(5) {
                return;
            }
            for pid in pids {
                crate::signal(pid, rustix::process::Signal::KILL);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The sandbox's subtree in every hierarchy: its own `dirs`, and the same relative path in
    /// the other controller hierarchies, where a manager may create cgroups too.
    fn all_dirs(&self) -> Vec<PathBuf> {
        let mut all = self.dirs.clone();
        if let Some(relative) = self
            .dirs
            .iter()
            .find_map(|d| d.strip_prefix("/sys/fs/cgroup/systemd").ok())
        {
            if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
                all.extend(entries.flatten().map(|e| e.path().join(relative)));
            }
        }
        all.sort();
        all.dedup();
        all
    }

    /// Removes the sandbox's subtree, also the cgroups a manager created in the other
    /// controller hierarchies at the same relative path.
    pub(crate) fn remove(&self) {
        for dir in self.all_dirs() {
            // The kernel may need a moment to release cgroups of processes that just died.
            for _ in 0..100 {
                remove_tree(&dir);
                if !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The guard's shell: it reads lines from its stdin (`keep`, `nokeep`, `done`) until `done`
/// (then it exits) or the end of the file, which comes when the process holding the other end
/// died without tearing the sandbox down (SIGKILL, a crash, `exit` from a test): it then kills
/// every process in the sandbox's cgroups (the namespace's init and `unshare` among them, which
/// ends the PID namespace and its mounts), removes the cgroups, and removes the sandbox's
/// directory unless told to keep it.
const GUARD_SCRIPT: &str = r#"trap '' HUP INT
keep=
while read -r line; do
  case $line in done) exit 0 ;; keep) keep=1 ;; nokeep) keep= ;; esac
done
nl='
'
IFS=$nl
i=0
while [ $i -lt 500 ]; do
  pids=$(for d in $UW_GUARD_CGROUPS; do [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} +; done 2>/dev/null)
  [ -n "$pids" ] || break
  kill -9 $pids 2>/dev/null
  sleep 0.01
  i=$((i + 1))
done
for d in $UW_GUARD_CGROUPS; do
  i=0
  while [ -d "$d" ] && [ $i -lt 100 ]; do
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$d" ] && sleep 0.02
    i=$((i + 1))
  done
done
[ -n "$keep" ] || rm -rf "$UW_GUARD_ROOT"
"#;

/// A process that tears the sandbox down if the process that started it dies without
/// dropping it (see [`GUARD_SCRIPT`]): a SIGKILL of `unitwright sandbox` or of a test binary
/// then leaves no manager, bus, mount, cgroup or directory behind. It runs in a process group
/// of its own (a Ctrl-C on the terminal is not for it) and in the caller's cgroup, not the
/// sandbox's. Dropping it (after the sandbox's own teardown) tells it to exit and reaps it.
#[derive(Debug)]
pub(crate) struct Guard {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Guard {
    /// Starts the guard of the sandbox whose directory is `root` and cgroups are `cgroup`.
    pub(crate) fn spawn(root: &Path, cgroup: &Cgroup) -> Result<Guard, Error> {
        use std::os::unix::process::CommandExt as _;
        let dirs: Vec<String> = cgroup
            .all_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        let mut child = Command::new("/bin/sh")
            .args(["-c", GUARD_SCRIPT])
            .env("UW_GUARD_CGROUPS", dirs.join("\n"))
            .env("UW_GUARD_ROOT", root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                cgroup.remove();
                Error::new(format!("running /bin/sh (the sandbox's guard): {e}"))
            })?;
        let stdin = child.stdin.take();
        Ok(Guard { child, stdin })
    }

    /// Whether the guard keeps the sandbox's directory when it has to tear it down.
    pub(crate) fn keep_dir(&mut self, keep: bool) {
        if let Some(stdin) = &mut self.stdin {
            let _ = stdin.write_all(if keep { b"keep\n" } else { b"nokeep\n" });
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"done\n");
        }
        let _ = self.child.wait();
    }
}

fn collect_pids(dir: &Path, pids: &mut Vec<u32>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    pids.extend(
        fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok()),
    );
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&e.path(), pids);
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
