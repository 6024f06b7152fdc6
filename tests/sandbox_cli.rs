#![allow(clippy::unwrap_used)]
//! `unitwright sandbox` end to end: real user and system managers, `unitwright` verbs and
//! `systemctl` inside COMMAND, COMMAND's exit status, teardown after SIGKILL of COMMAND and
//! after SIGTERM and SIGKILL of the sandbox (processes, mounts, cgroups and the directory checked by
//! scanning `/proc`, `/proc/self/mountinfo`, the cgroup file system and the file system), and
//! sandboxes in parallel that do not see each other's units.

mod support;

use std::fs;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const UNITWRIGHT: &str = env!("CARGO_BIN_EXE_unitwright");

/// `unitwright sandbox ARGS`, with `UW` naming the binary for COMMAND's scripts.
fn sandbox(args: &[&str]) -> Command {
    let mut cmd = Command::new(UNITWRIGHT);
    cmd.arg("sandbox").args(args).env("UW", UNITWRIGHT);
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `false` (after a loud message) when sandboxes cannot run here and `CI` is not `true`.
fn can_run() -> bool {
    let out = sandbox(&["--", "true"]).output().unwrap();
    if out.status.code() == Some(125) {
        assert!(
            !support::ci(),
            "CI=true and unitwright sandbox cannot start: {}",
            text(&out.stderr)
        );
        eprintln!(
            "\n!!! SKIPPING: unitwright sandbox cannot start here: {}",
            text(&out.stderr)
        );
        return false;
    }
    assert!(out.status.success(), "{out:?}");
    true
}

fn unit_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap();
    path
}

/// The value of `key=` in a `UNITWRIGHT_SANDBOX` description.
fn field<'a>(description: &'a str, key: &str) -> &'a str {
    description
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {description:?}"))
}

/// Every directory under `/sys/fs/cgroup` (all hierarchies, a few levels deep) named `name`.
fn cgroups_named(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: u32, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            // Not through the symlinks (cpu -> cpu,cpuacct): each hierarchy once.
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy().contains(name) {
                found.push(path.clone());
            }
            if depth > 0 {
                walk(&path, name, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), name, 5, &mut found);
    found
}

/// Processes whose cgroup (in any hierarchy) lies in the sandbox `name`'s subtree.
fn processes_of(name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cgroup = fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if cgroup.contains(name) {
            let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{pid}: {}", text(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// What is left of the sandbox described by `description`: processes, mounts, cgroups, its
/// directory; also any of the host PIDs in `pids` still running in its cgroups.
fn what_is_left(description: &str, pids: &[u32]) -> Vec<String> {
    let dir = PathBuf::from(field(description, "dir"));
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("unitwright-"), "{name}");
    let mut left = Vec::new();
    if dir.exists() {
        left.push(format!("the directory {}", dir.display()));
    }
    left.extend(
        processes_of(&name)
            .into_iter()
            .map(|p| format!("process {p}")),
    );
    for pid in pids {
        let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if cgroup.contains(&name) {
            left.push(format!("process {pid}"));
        }
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&name))
            .map(|l| format!("mount {l}")),
    );
    left.extend(
        cgroups_named(&name)
            .into_iter()
            .map(|c| format!("cgroup {}", c.display())),
    );
    left
}

/// Nothing of the sandbox described by `description` is left: no process, no mount, no
/// cgroup, no directory; also none of the host PIDs in `pids` runs in its cgroups.
fn assert_nothing_left(description: &str, pids: &[u32]) {
    let left = what_is_left(description, pids);
    assert!(left.is_empty(), "left: {left:#?}");
}

/// Waits until `path` exists (COMMAND writes it when it is ready) or the sandbox exited.
fn wait_for_file(path: &Path, child: &mut Child) -> String {
    let start = Instant::now();
    loop {
        if let Ok(s) = fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the sandbox exited with {status} before {} appeared",
                path.display()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_with_output(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn a_user_sandbox_runs_unitwright_and_systemctl_and_returns_the_status() {
    if !can_run() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_file(tmp.path(), "web.service", support::SLEEP_SERVICE);
    let script = r#"
        "$UW" --user start web.service || exit 90
        "$UW" --user is-active web.service || exit 91
        systemctl --user is-active web.service || exit 92
        "$UW" --user stop web.service || exit 93
        systemctl --user is-active web.service && exit 94
        printf '%s\n' "$UNITWRIGHT_SANDBOX" "$XDG_RUNTIME_DIR" "$DBUS_SESSION_BUS_ADDRESS"
        exit 42"#;
    let out = sandbox(&["--unit", unit.to_str().unwrap(), "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(42), "{out:?}");
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().take(3).collect::<Vec<_>>(),
        ["active", "active", "inactive"],
        "{out:?}"
    );
    let mut lines = stdout.lines().skip(3);
    let description = lines.next().unwrap();
    assert_eq!(field(description, "scope"), "user");
    let dir = field(description, "dir");
    assert_eq!(lines.next().unwrap(), format!("{dir}/run"));
    assert_eq!(lines.next().unwrap(), format!("unix:path={dir}/run/bus"));
    assert_nothing_left(description, &[]);

    // A COMMAND that fails is reported with its own status.
    let out = sandbox(&["--", "sh", "-c", "exit 3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

#[test]
fn a_system_sandbox_with_a_journal_runs_unitwright_and_systemctl() {
    if !can_run() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_file(
        tmp.path(),
        "hello.service",
        "[Service]\nExecStart=/bin/sh -c 'echo hello from the system sandbox; exec sleep 600'\n",
    );
    let script = r#"
        "$UW" start hello.service || exit 90
        "$UW" is-active hello.service || exit 91
        systemctl is-active hello.service || exit 92
        systemctl show -p ControlGroup --value hello.service
        sleep 0.5 # journald writes asynchronously
        "$UW" logs -D "$UNITWRIGHT_SANDBOX_JOURNAL" hello.service | grep -c 'hello from the system sandbox'
        journalctl -u hello.service --no-pager -o cat | grep 'hello from'
        printf '%s\n' "$UNITWRIGHT_SANDBOX"
        exit 0"#;
    let out = sandbox(&[
        "--system",
        "--journal",
        "--unit",
        unit.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        script,
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..6],
        [
            "active",
            "active",
            // The manager's own cgroup namespace: its tree starts at its root.
            "/system.slice/hello.service",
            "1",
            "hello from the system sandbox",
            lines[5]
        ],
        "{out:?}"
    );
    assert_eq!(field(lines[5], "scope"), "system");
    assert_nothing_left(lines[5], &[]);

    let out = sandbox(&["--system", "--", "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
}

/// What a booted host does: `unitwright --system instance start` stores the settings in
/// `/run/unitwright/instances`, and the instance's unit (`%t` is `/run`) reads them there. In a
/// `--system` sandbox COMMAND shares the manager's `/run`, so this works unchanged: the unit's
/// `ExecStartPre=` writes what it got into `/run`, where COMMAND reads it; stopping the
/// instance removes the settings; the host's `/run/unitwright` is never written.
#[test]
fn template_instances_get_their_settings_in_a_system_sandbox() {
    if !can_run() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // `:` keeps systemd from expanding `$GREETING`: the wrapper sets it from the settings.
    let template = unit_file(
        tmp.path(),
        "console@.service",
        &format!(
            "[Service]\n\
             ExecStartPre=:{UNITWRIGHT} instance exec %n -- /bin/sh -c 'printf \"%%s|%%s\" \"$GREETING\" \"$UNITWRIGHT_ID\" > /run/greeting-%i'\n\
             ExecStart=:{UNITWRIGHT} instance exec --require=GREETING %n -- /bin/sleep 600\n"
        ),
    );
    let host_settings = Path::new("/run/unitwright/instances/console@x.service");
    let script = r#"
        "$UW" --system instance start console@.service x --set 'GREETING=hello, sandbox' || exit 90
        "$UW" --system is-active console@x.service || exit 91
        cat /run/greeting-x; echo
        "$UW" --system instance list console@.service
        ls /run/unitwright/instances
        [ -z "$DBUS_SYSTEM_BUS_ADDRESS" ] || exit 92
        "$UW" --system instance stop console@.service x || exit 93
        ls /run/unitwright/instances
        systemctl is-active console@x.service
        exit 0"#;
    let out = sandbox(&[
        "--system",
        "--unit",
        template.to_str().unwrap(),
        "--",
        "env",
        "-u",
        "DBUS_SYSTEM_BUS_ADDRESS",
        "sh",
        "-c",
        script,
    ])
    .output()
    .unwrap();
    assert!(
        !host_settings.exists(),
        "the host's {host_settings:?} was written"
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "active", "{out:?}");
    assert_eq!(lines[1], "hello, sandbox|x", "{out:?}");
    assert!(lines[2].starts_with("UNIT"), "{out:?}");
    assert!(
        lines[3].starts_with("console@x.service") && lines[3].contains("GREETING"),
        "{out:?}"
    );
    assert_eq!(lines[4..], ["console@x.service", "inactive"], "{out:?}");
}

/// A sandbox whose COMMAND started a service and left a process of its own running; returns
/// it with its description and the host PIDs of COMMAND, that process and the service.
fn busy_sandbox(system: bool, journal: bool, tmp: &Path) -> (Child, String, Vec<u32>) {
    let unit = unit_file(tmp, "svc.service", support::SLEEP_SERVICE);
    let ready = tmp.join("ready");
    let script = format!(
        r#""$UW" {scope} start svc.service || exit 90
        # The real systemctl too, not only the shim on PATH (SYSTEMCTL_FORCE_BUS=1).
        /usr/bin/systemctl {scope} --quiet is-active svc.service || exit 91
        sleep 600 &
        pid=$(systemctl {scope} show -p MainPID --value svc.service)
        printf '%s\n%s\n' "$UNITWRIGHT_SANDBOX" "$$ $! $pid" > {ready}.tmp
        mv {ready}.tmp {ready}
        wait"#,
        scope = if system { "" } else { "--user" },
        ready = ready.display()
    );
    let mut args = vec!["--unit", unit.to_str().unwrap()];
    if system {
        args.push("--system");
    }
    if journal {
        args.push("--journal");
    }
    args.extend(["--", "sh", "-c", &script]);
    let mut child = sandbox(&args).stdout(Stdio::piped()).spawn().unwrap();
    let info = wait_for_file(&ready, &mut child);
    let lines: Vec<&str> = info.lines().collect();
    let description = lines[0].to_owned();
    let name = Path::new(field(&description, "dir"))
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // Before: COMMAND, its process, unshare, the init, the manager, the bus and the service
    // run in the sandbox's cgroups (the service's MainPID is a PID of the namespace).
    assert!(processes_of(&name).len() >= 6, "{:?}", processes_of(&name));
    let pids = lines[1]
        .split_whitespace()
        .take(2)
        .map(|p| p.parse().unwrap())
        .collect();
    (child, description, pids)
}

#[test]
fn nothing_is_left_after_command_is_killed_with_sigkill() {
    if !can_run() {
        return;
    }
    for system in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let (child, description, pids) = busy_sandbox(system, false, tmp.path());
        kill("KILL", pids[0]);
        let out = wait_with_output(child);
        assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
        assert_nothing_left(&description, &pids);
    }
}

#[test]
fn nothing_is_left_after_sigterm_to_the_sandbox() {
    if !can_run() {
        return;
    }
    for system in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let (child, description, pids) = busy_sandbox(system, true, tmp.path());
        kill("TERM", child.id());
        let out = wait_with_output(child);
        assert_eq!(out.status.code(), Some(128 + 15), "{out:?}");
        assert_nothing_left(&description, &pids);
    }
}

/// A SIGKILL of `unitwright sandbox` itself (which can catch nothing): its guard, a process
/// that notices its death, tears the sandbox down all the same.
#[test]
fn nothing_is_left_after_sigkill_to_the_sandbox() {
    if !can_run() {
        return;
    }
    for system in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let (mut child, description, pids) = busy_sandbox(system, true, tmp.path());
        kill("KILL", child.id());
        // Not its output: COMMAND, which holds the pipe, may outlive it.
        drop(child.stdout.take());
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{status:?}");
        // The guard works after the sandbox died: wait for it (at most a minute).
        let start = Instant::now();
        while !what_is_left(&description, &pids).is_empty()
            && start.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_nothing_left(&description, &pids);
    }
}

/// COMMAND of one of the parallel sandboxes: starts `same.service` (every sandbox has one) and
/// its own `only-$i.service`; when all have, lists `only-*` units with unitwright and
/// systemctl; the odd ones stop their `same.service`; when all are there, each says whether
/// its `same.service` is still active.
const PARALLEL: &str = r#"
i=$1 dir=$2 n=$3 scope=$4
barrier() {
    touch "$dir/$1-$i"
    t=0
    while [ "$(ls "$dir" | grep -c "^$1-")" -lt "$n" ]; do
        sleep 0.05; t=$((t + 1)); [ $t -gt 3000 ] && exit 80
    done
}
"$UW" $scope start same.service "only-$i.service" || exit 90
barrier started
uw=$("$UW" $scope list 'only-*' --no-legend | awk '{print $1}' | tr '\n' ' ')
sc=$(systemctl $scope list-units 'only-*' --no-legend --plain | awk '{print $1}' | tr '\n' ' ')
if [ $((i % 2)) -eq 1 ]; then "$UW" $scope stop same.service || exit 91; fi
barrier stopped
state=$(systemctl $scope is-active same.service)
printf '%s|%s|%s\n' "$uw" "$sc" "$state" > "$dir/out-$i"
"#;

#[test]
fn ten_sandboxes_in_parallel_do_not_see_each_others_units() {
    if !can_run() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let units = tmp.path().join("units");
    let sync = tmp.path().join("sync");
    fs::create_dir_all(&units).unwrap();
    fs::create_dir_all(&sync).unwrap();
    let same = unit_file(&units, "same.service", support::SLEEP_SERVICE);
    let n = 10;
    let children: Vec<(usize, Child)> = (0..n)
        .map(|i| {
            let only = unit_file(&units, &format!("only-{i}.service"), support::SLEEP_SERVICE);
            // Half of them user managers, half system managers (same-named system units used
            // to share the host's top-level cgroups).
            let system = i >= n / 2;
            let mut args = vec![
                "--unit".to_owned(),
                same.display().to_string(),
                "--unit".to_owned(),
                only.display().to_string(),
            ];
            if system {
                args.push("--system".to_owned());
            }
            args.extend(
                [
                    "--",
                    "sh",
                    "-c",
                    PARALLEL,
                    "sh",
                    &i.to_string(),
                    sync.to_str().unwrap(),
                    &n.to_string(),
                    if system { "" } else { "--user" },
                ]
                .map(str::to_owned),
            );
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            (i, sandbox(&args).spawn().unwrap())
        })
        .collect();
    for (i, child) in children {
        let out = wait_with_output(child);
        assert!(out.status.success(), "sandbox {i}: {out:?}");
        let result = fs::read_to_string(sync.join(format!("out-{i}"))).unwrap();
        let own = format!("only-{i}.service ");
        let expected_state = if i % 2 == 1 { "inactive" } else { "active" };
        assert_eq!(
            result,
            format!("{own}|{own}|{expected_state}\n"),
            "sandbox {i}"
        );
    }
}

#[test]
fn clear_errors_for_bad_input() {
    let out = sandbox(&["--unit", "/nonexistent/x.service", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        text(&out.stderr).contains("--unit /nonexistent/x.service: cannot read it"),
        "{out:?}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let plain = unit_file(tmp.path(), "plain", "not a program\n");
    let out = sandbox(&["--generator", plain.to_str().unwrap(), "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        text(&out.stderr).contains(&format!(
            "--generator {}: not an executable file",
            plain.display()
        )),
        "{out:?}"
    );
    // No COMMAND: a usage error.
    let out = sandbox(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn clear_errors_without_root_or_without_cap_sys_admin() {
    // As nobody, and as root without CAP_SYS_ADMIN (what root in an unprivileged container
    // has): exit 125 and what is missing, before anything is started. The binary is copied
    // where nobody can run it (the checkout's directories may be closed to other users).
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bin = tmp.path().join("unitwright");
    fs::copy(UNITWRIGHT, &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    for (setpriv, says) in [
        (
            &["--reuid=65534", "--regid=65534", "--clear-groups"][..],
            "needs root",
        ),
        (
            &["--bounding-set=-sys_admin"][..],
            "root without CAP_SYS_ADMIN",
        ),
    ] {
        let out = Command::new("setpriv")
            .args(setpriv)
            .arg("--")
            .arg(&bin)
            .args(["sandbox", "--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        assert!(
            text(&out.stderr).starts_with("unitwright: cannot start the sandbox: ")
                && text(&out.stderr).contains(says),
            "{out:?}"
        );
    }
}
