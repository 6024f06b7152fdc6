#![allow(clippy::unwrap_used)]
//! How the installed generator behaves as a system component: beside podman's own Quadlet
//! generator, against the installed podman's version, and how it logs to `/dev/kmsg`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const GEN: &str = env!("CARGO_BIN_EXE_unitwright-generator");

/// Skips (loudly) or, with CI=true, fails when a prerequisite is missing.
fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and {what} is not available"
    );
    eprintln!("SKIPPED: {what} is not available");
    false
}

fn quadlets(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(d.path().join(name), text).unwrap();
    }
    d
}

fn run(program: &Path, qdir: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(program)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("QUADLET_UNIT_DIRS", qdir)
        .envs(env.iter().copied())
        .args(["-no-kmsg-log", out.to_str().unwrap()])
        .output()
        .unwrap()
}

fn executable(path: &Path) {
    fs::write(path, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

const WEB: (&str, &str) = ("web.container", "[Container]\nImage=quay.io/x/web\n");

/// A generator directory with podman's generator of `name`, and one above it (empty).
fn generator_dirs(name: &str) -> (tempfile::TempDir, String) {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("etc")).unwrap();
    fs::create_dir_all(t.path().join("lib")).unwrap();
    executable(&t.path().join("lib").join(name));
    let path = format!("{}/etc:{}/lib", t.path().display(), t.path().display());
    (t, path)
}

#[test]
fn stands_down_when_the_manager_runs_it_beside_podmans_active_generator() {
    let q = quadlets(&[WEB]);
    let out = tempfile::tempdir().unwrap();
    let (_g, path) = generator_dirs("podman-system-generator");
    let o = run(
        Path::new(GEN),
        q.path(),
        out.path(),
        &[("SYSTEMD_GENERATOR_PATH", &path), ("SYSTEMD_EXEC_PID", "*")],
    );
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("podman's Quadlet generator") && err.contains("podman-system-generator"),
        "{err}"
    );
    assert!(err.contains("ln -s /dev/null /etc/systemd/system-generators/podman-system-generator"));
    assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn generates_when_podmans_generator_is_masked_by_a_dev_null_link() {
    let q = quadlets(&[WEB]);
    let out = tempfile::tempdir().unwrap();
    let (g, path) = generator_dirs("podman-system-generator");
    std::os::unix::fs::symlink("/dev/null", g.path().join("etc/podman-system-generator")).unwrap();
    let o = run(
        Path::new(GEN),
        q.path(),
        out.path(),
        &[("SYSTEMD_GENERATOR_PATH", &path), ("SYSTEMD_EXEC_PID", "*")],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.path().join("web.service").exists());
}

#[test]
fn user_mode_only_defers_to_podmans_user_generator() {
    let q = quadlets(&[WEB]);
    let bin = tempfile::tempdir().unwrap();
    let user_gen = bin.path().join("unitwright-user-generator");
    std::os::unix::fs::symlink(GEN, &user_gen).unwrap();
    // Only the system generator of podman is there: the user generator still generates.
    let (_g, path) = generator_dirs("podman-system-generator");
    let out = tempfile::tempdir().unwrap();
    let env = [
        ("SYSTEMD_GENERATOR_PATH", path.as_str()),
        ("SYSTEMD_EXEC_PID", "*"),
        ("HOME", "/nonexistent"),
    ];
    let o = run(&user_gen, q.path(), out.path(), &env);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.path().join("web.service").exists());
    let (_g2, upath) = generator_dirs("podman-user-generator");
    let out2 = tempfile::tempdir().unwrap();
    let env = [
        ("SYSTEMD_GENERATOR_PATH", upath.as_str()),
        ("SYSTEMD_EXEC_PID", "*"),
        ("HOME", "/nonexistent"),
    ];
    let o = run(&user_gen, q.path(), out2.path(), &env);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("podman-user-generator"));
    assert_eq!(fs::read_dir(out2.path()).unwrap().count(), 0);
}

#[test]
fn manual_runs_generate_even_beside_podmans_generator() {
    let q = quadlets(&[WEB]);
    let out = tempfile::tempdir().unwrap();
    let (_g, path) = generator_dirs("podman-system-generator");
    let o = run(
        Path::new(GEN),
        q.path(),
        out.path(),
        &[("SYSTEMD_GENERATOR_PATH", &path)],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(out.path().join("web.service").exists());
}

fn podman_version() -> Option<String> {
    let o = Command::new("/usr/bin/podman")
        .arg("--version")
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

#[test]
fn on_the_installed_podman_4_3_unsupported_keys_are_refused_and_the_rest_generated() {
    let Some(version) = podman_version() else {
        require(false, "/usr/bin/podman");
        return;
    };
    if !version.contains(" 4.3.") {
        eprintln!("SKIPPED: the installed podman is not 4.3 ({version})");
        return;
    }
    let q = quadlets(&[
        WEB,
        (
            "startup.container",
            "[Container]\nImage=quay.io/x/web\nHealthStartupCmd=/bin/true\nHealthCmd=/bin/true\n",
        ),
    ]);
    let out = tempfile::tempdir().unwrap();
    let o = run(
        Path::new(GEN),
        q.path(),
        out.path(),
        &[
            ("UNITWRIGHT_PODMAN_VERSION", "auto"),
            ("PODMAN", "/usr/bin/podman"),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "converting \"startup.container\": HealthStartupCmd= in [Container] needs podman"
        ) && err.contains("the installed podman is 4.3.")
            && err.contains("(line 3)"),
        "{err}"
    );
    assert!(out.path().join("web.service").exists());
    assert!(!out.path().join("startup.service").exists());
    // With the compat layer off the output is Quadlet 5.4.2's.
    let out = tempfile::tempdir().unwrap();
    let o = run(
        Path::new(GEN),
        q.path(),
        out.path(),
        &[("UNITWRIGHT_PODMAN_VERSION", "off")],
    );
    assert_eq!(o.status.code(), Some(0));
    let unit = fs::read_to_string(out.path().join("startup.service")).unwrap();
    assert!(unit.contains("--health-startup-cmd"));
}

#[test]
fn the_environment_names_the_podman_version_to_adapt_to() {
    let q = quadlets(&[(
        "s.container",
        "[Container]\nImage=quay.io/x/web\nHealthStartupCmd=/bin/true\n",
    )]);
    let out = tempfile::tempdir().unwrap();
    let o = run(
        Path::new(GEN),
        q.path(),
        out.path(),
        &[("UNITWRIGHT_PODMAN_VERSION", "4.3.1")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("HealthStartupCmd= in [Container] needs podman 4.4.0"));
    let o = run(
        Path::new(GEN),
        q.path(),
        out.path(),
        &[("UNITWRIGHT_PODMAN_VERSION", "5.4.2")],
    );
    assert_eq!(o.status.code(), Some(0));
}

/// Without any configuration the generator targets the installed podman (`PodmanVersion=auto`):
/// it asks it once per run, and not at all when there is nothing to convert; the answer is
/// cached under `$XDG_RUNTIME_DIR/unitwright` (user mode) for the next runs. On podman 4.3.1
/// (Debian 12) the units are adapted: no `volume create --ignore`, stale cid files removed.
#[test]
fn auto_is_the_default_and_asks_the_installed_podman_once() {
    let Some(version) = podman_version() else {
        require(false, "/usr/bin/podman");
        return;
    };
    let rt = tempfile::tempdir().unwrap();
    let run_user = |qdir: &Path, out: &Path| {
        Command::new(GEN)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("QUADLET_UNIT_DIRS", qdir)
            .env("PODMAN", "/usr/bin/podman")
            .env("SYSTEMD_LOG_LEVEL", "debug")
            .env("XDG_RUNTIME_DIR", rt.path())
            .env("HOME", rt.path())
            .args(["-user", "-no-kmsg-log", out.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let asked = |o: &Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.contains("/usr/bin/podman is version"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let out = tempfile::tempdir().unwrap();
    let none = quadlets(&[("README", "not a Quadlet file\n")]);
    let o = run_user(none.path(), out.path());
    assert_eq!(o.status.code(), Some(0));
    assert!(asked(&o).is_empty(), "asked without units: {o:?}");
    assert!(!rt.path().join("unitwright").exists());

    let q = quadlets(&[
        ("web.container", "[Container]\nImage=quay.io/x/web\n"),
        ("data.volume", "[Volume]\n"),
    ]);
    let o = run_user(q.path(), out.path());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines = asked(&o);
    assert_eq!(lines.len(), 1, "{err}");
    assert!(!lines[0].contains("cached"), "{err}");
    assert!(rt.path().join("unitwright/podman-version").exists());
    let o = run_user(q.path(), out.path());
    let lines = asked(&o);
    assert!(
        lines.len() == 1 && lines[0].contains("(cached)"),
        "{lines:?}"
    );

    if version.contains("version 4.3.") {
        let volume = fs::read_to_string(out.path().join("data-volume.service")).unwrap();
        assert!(!volume.contains("--ignore"), "{volume}");
        assert!(volume.contains("volume exists systemd-data"), "{volume}");
        let web = fs::read_to_string(out.path().join("web.service")).unwrap();
        assert!(
            web.contains("ExecStartPre=-/bin/rm -f %t/%N.cid\n"),
            "{web}"
        );
    }
}

/// Runs the generator in a private mount namespace where `/dev/kmsg` is a regular file, and
/// returns what it wrote there.
fn kmsg_records(qdir: &Path, env: &[(&str, &str)]) -> Option<String> {
    let t = tempfile::tempdir().unwrap();
    let kmsg = t.path().join("kmsg");
    fs::write(&kmsg, "").unwrap();
    let out = t.path().join("out");
    let script = format!(
        "mount --bind '{}' /dev/kmsg && exec '{GEN}' '{}'",
        kmsg.display(),
        out.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("QUADLET_UNIT_DIRS", qdir);
    cmd.envs(env.iter().copied());
    let o = cmd.output().ok()?;
    if !o.status.success() && fs::read_to_string(&kmsg).ok()?.is_empty() {
        eprintln!(
            "unshare/mount failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        return None;
    }
    fs::read_to_string(&kmsg).ok()
}

#[test]
fn kmsg_records_use_the_daemon_facility_name_and_pid_and_honour_the_log_level() {
    let q = quadlets(&[WEB, ("bad.container", "[Container]\nNoSuchKey=1\n")]);
    let Some(info) = kmsg_records(q.path(), &[]) else {
        require(false, "a private mount namespace (unshare -m as root)");
        return;
    };
    let err = info
        .lines()
        .find(|l| l.contains("converting \"bad.container\""))
        .unwrap_or_else(|| panic!("no error record in {info:?}"));
    let rest = err.strip_prefix("<27>unitwright-generator[").unwrap();
    let (pid, msg) = rest.split_once("]: ").unwrap();
    assert!(pid.parse::<u32>().is_ok(), "{err}");
    assert!(msg.contains("unsupported key 'NoSuchKey'"), "{msg}");
    assert!(
        !info.contains("<31>"),
        "debug records at the default level: {info}"
    );
    let debug = kmsg_records(q.path(), &[("SYSTEMD_LOG_LEVEL", "debug")]).unwrap();
    assert!(
        debug
            .lines()
            .any(|l| l.starts_with("<31>unitwright-generator[")),
        "{debug}"
    );
    let errors_only = kmsg_records(q.path(), &[("SYSTEMD_LOG_LEVEL", "err")]).unwrap();
    assert!(
        errors_only.lines().all(|l| l.starts_with("<27>")),
        "{errors_only}"
    );
}

#[test]
fn container_units_for_podman_4_3_remove_the_stale_cidfile_before_the_start() {
    let q = quadlets(&[WEB]);
    let generate = |version: &str| {
        let out = tempfile::tempdir().unwrap();
        let o = run(
            Path::new(GEN),
            q.path(),
            out.path(),
            &[("UNITWRIGHT_PODMAN_VERSION", version)],
        );
        assert_eq!(o.status.code(), Some(0));
        fs::read_to_string(out.path().join("web.service")).unwrap()
    };
    let old = generate("4.3.1");
    let lines: Vec<&str> = old.lines().collect();
    let pre = lines
        .iter()
        .position(|l| *l == "ExecStartPre=-/bin/rm -f %t/%N.cid")
        .unwrap_or_else(|| panic!("no cidfile removal in\n{old}"));
    let start = lines
        .iter()
        .position(|l| l.starts_with("ExecStart=") && l.contains("--cidfile=%t/%N.cid"))
        .unwrap();
    assert!(pre < start, "{old}");
    // Newer podman removes the file itself: the unit is Quadlet 5.4.2's.
    assert_eq!(generate("4.4.0"), generate("off"));
    assert!(!generate("off").contains("/bin/rm"));
}

#[test]
fn when_run_by_the_manager_the_kernel_command_line_sets_the_level_below_the_environment() {
    let q = quadlets(&[WEB]);
    let no_gens = tempfile::tempdir().unwrap();
    let gens = no_gens.path().to_str().unwrap();
    let debug_records = |env: &[(&str, &str)]| {
        let Some(records) = kmsg_records(q.path(), env) else {
            require(false, "a private mount namespace (unshare -m as root)");
            return None;
        };
        Some(records.lines().any(|l| l.starts_with("<31>")))
    };
    let cmdline = ("SYSTEMD_PROC_CMDLINE", "ro quiet systemd.log_level=debug");
    let by_manager = [("SYSTEMD_EXEC_PID", "*"), ("SYSTEMD_GENERATOR_PATH", gens)];
    let Some(manager_debug) = debug_records(&[by_manager[0], by_manager[1], cmdline]) else {
        return;
    };
    assert!(manager_debug, "systemd.log_level=debug was not honoured");
    // A manual run ignores the kernel command line.
    assert_eq!(debug_records(&[cmdline]), Some(false));
    // SYSTEMD_LOG_LEVEL is parsed after the command line and wins.
    assert_eq!(
        debug_records(&[
            by_manager[0],
            by_manager[1],
            cmdline,
            ("SYSTEMD_LOG_LEVEL", "info")
        ]),
        Some(false)
    );
}

#[test]
fn the_shipped_console_template_only_gains_the_stale_cidfile_removal_on_podman_4_3() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../units");
    if !units.join("console@.container").exists() {
        eprintln!("SKIPPED: units/console@.container is not in this tree");
        return;
    }
    let generate = |version: &str| {
        let out = tempfile::tempdir().unwrap();
        let o = run(
            Path::new(GEN),
            &units,
            out.path(),
            &[
                ("UNITWRIGHT_PODMAN_VERSION", version),
                ("UNITWRIGHT", "/usr/bin/unitwright"),
            ],
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        fs::read_to_string(out.path().join("console@.service")).unwrap()
    };
    // Only the stale cidfile removal is added (the template removes it itself too, for
    // generators run without a configured podman version).
    let removal = "ExecStartPre=-/bin/rm -f %t/%N.cid\n";
    let adapted = generate("4.3.1");
    assert!(adapted.contains(removal), "{adapted}");
    assert_eq!(adapted.replacen(removal, "", 1), generate("off"));
}

#[test]
fn the_shipped_kube_template_plays_the_yaml_named_by_its_instance() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../units");
    if !units.join("kube@.kube").exists() {
        eprintln!("SKIPPED: units/kube@.kube is not in this tree");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let o = run(Path::new(GEN), &units, out.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let unit = fs::read_to_string(out.path().join("kube@.service")).unwrap();
    // %I (the unescaped instance: the YAML's absolute path) is kept as the path, not made
    // relative to the Quadlet directory.
    for line in [
        "ConditionPathExists=%I\n",
        "Type=notify\n",
        "ExecStart=/usr/bin/podman kube play --replace --service-container=true %I\n",
        "ExecStopPost=/usr/bin/podman kube down %I\n",
        "TimeoutStartSec=300\n",
    ] {
        assert!(unit.contains(line), "{line} in {unit}");
    }
}
