#![allow(clippy::unwrap_used)]
//! Units written for a newer podman's Quadlet, run by the podman installed here (4.3.1) in a real
//! `systemd --user` (the sandbox of `tests/support`): a container in the form of podman 5.6 and
//! later (addressed by name, no `--cidfile`) starts, stops, starts again and restarts.
//!
//! Podman is isolated: its configuration and vfs storage live in the test's directory and the
//! image is imported from busybox-static (no registry). Without podman or busybox the test is
//! skipped with a loud message, or fails when `CI=true`.
//!
//! Not run here: a `.artifact` unit. Its `podman artifact pull` needs podman 5.4 or later
//! (`podman artifact` does not exist in 4.3.1), so on this machine the unit can only fail.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

const GEN: &str = env!("CARGO_BIN_EXE_unitwright-generator");
const IMAGE: &str = "localhost/uw-versions:1";

/// Podman's configuration and storage in `dir`, and the image; `Err` with the reason when
/// podman or busybox cannot be used here.
fn podman_sandbox(dir: &Path) -> Result<Vec<(String, String)>, String> {
    fs::write(
        dir.join("containers.conf"),
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n[engine]\nruntime = \"runc\"\n",
    )
    .map_err(|e| e.to_string())?;
    fs::write(
        dir.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/g\"\nrunroot = \"{0}/r\"\n",
            dir.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let env = vec![
        (
            "CONTAINERS_CONF".to_owned(),
            dir.join("containers.conf").display().to_string(),
        ),
        (
            "CONTAINERS_STORAGE_CONF".to_owned(),
            dir.join("storage.conf").display().to_string(),
        ),
    ];
    let root = dir.join("image");
    fs::create_dir_all(root.join("bin")).map_err(|e| e.to_string())?;
    fs::copy("/bin/busybox", root.join("bin/busybox")).map_err(|e| format!("/bin/busybox: {e}"))?;
    for applet in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .map_err(|e| e.to_string())?;
    }
    let tar = dir.join("image.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status();
    if !ok.is_ok_and(|s| s.success()) {
        return Err("tar failed".into());
    }
    let o = Command::new("podman")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["import", "--quiet"])
        .arg(&tar)
        .arg(IMAGE)
        .output()
        .map_err(|e| format!("podman: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "podman import: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(env)
}

/// A temporary directory with podman set up in it and a `quadlets/` directory; `None` (a
/// skip, or a failure with `CI=true`) when podman cannot be used here.
fn setup(prefix: &str) -> Option<(tempfile::TempDir, Vec<(String, String)>)> {
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap();
    match podman_sandbox(tmp.path()) {
        Ok(env) => {
            fs::create_dir_all(tmp.path().join("quadlets")).unwrap();
            Some((tmp, env))
        }
        Err(e) => {
            assert!(!support::ci(), "CI=true and podman cannot be set up: {e}");
            eprintln!("\n!!! SKIPPING: podman cannot be set up: {e}\n");
            None
        }
    }
}

#[test]
fn a_container_in_podman_5_6_form_runs_on_podman_4_3() {
    let Some((tmp, env)) = setup("uwv") else {
        return;
    };
    let quadlets = tmp.path().join("quadlets");
    fs::write(
        quadlets.join("web.container"),
        format!(
            "[Container]\nImage={IMAGE}\nExec=/bin/sh -c \"trap 'exit 0' TERM; sleep 600 & wait\"\n"
        ),
    )
    .unwrap();
    // What the generator writes for podman 5.6: no cid file, stopped by name.
    let o = Command::new(GEN)
        .env_clear()
        .env("QUADLET_UNIT_DIRS", &quadlets)
        .env("UNITWRIGHT_PODMAN_VERSION", "5.6.2")
        .arg("-dryrun")
        .output()
        .unwrap();
    let unit = String::from_utf8_lossy(&o.stdout);
    assert!(
        !unit.contains("cidfile")
            && unit.contains("ExecStop=/usr/bin/podman rm -v -f -i systemd-%N"),
        "{unit}"
    );

    let mut b = support::UserManager::builder()
        .generator(GEN)
        .env("QUADLET_UNIT_DIRS", &quadlets)
        .env("UNITWRIGHT_PODMAN_VERSION", "5.6.2");
    for (k, v) in &env {
        b = b.env(k, v);
    }
    let Some(m) = b.start() else { return };
    // Asked inside the manager's mount namespace, where podman's run directory is.
    let podman_names = || {
        let o = m
            .command("podman")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["ps", "-a", "--format", "{{.Names}}"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "podman ps: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    let state = || {
        String::from_utf8_lossy(
            &m.systemctl(&["show", "-P", "ActiveState", "web.service"])
                .stdout,
        )
        .trim()
        .to_owned()
    };
    let why = || {
        String::from_utf8_lossy(
            &m.systemctl(&["status", "--no-pager", "--full", "web.service"])
                .stdout,
        )
        .into_owned()
    };
    for step in ["start", "stop", "start", "restart", "stop"] {
        let o = m.systemctl(&[step, "web.service"]);
        assert!(
            o.status.success(),
            "{step}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            why()
        );
        if step == "stop" {
            assert_eq!(state(), "inactive", "{step}");
            assert_eq!(podman_names(), "", "the container is left after {step}");
        } else {
            assert_eq!(state(), "active", "{step}: {}", why());
            assert_eq!(podman_names(), "systemd-web", "{step}: {}", why());
        }
    }
}

/// `Notify=healthy` on podman 4.3.1, which has no `--sdnotify=healthy`: the start completes
/// only once `podman healthcheck run` passes (compat rule `Action::WaitHealthy`).
#[test]
fn notify_healthy_on_podman_4_3_starts_when_the_health_check_passes() {
    let Some((tmp, env)) = setup("uwh") else {
        return;
    };
    let quadlets = tmp.path().join("quadlets");
    // Healthy a few seconds after it started: /ready appears after 3 s.
    fs::write(
        quadlets.join("web.container"),
        format!(
            "[Container]\nImage={IMAGE}\nNotify=healthy\nHealthCmd=test -e /ready\nHealthInterval=1s\n\
             Exec=/bin/sh -c \"sleep 3; : > /ready; trap 'exit 0' TERM; sleep 600 & wait\"\n"
        ),
    )
    .unwrap();
    // Never healthy: the start fails when the unit's start timeout ends.
    fs::write(
        quadlets.join("sick.container"),
        format!(
            "[Container]\nImage={IMAGE}\nNotify=healthy\nHealthCmd=test -e /never\nHealthInterval=1s\n\
             Exec=/bin/sh -c \"trap 'exit 0' TERM; sleep 600 & wait\"\n[Service]\nTimeoutStartSec=6\n"
        ),
    )
    .unwrap();
    let o = Command::new(GEN)
        .env_clear()
        .env("QUADLET_UNIT_DIRS", &quadlets)
        .env("UNITWRIGHT_PODMAN_VERSION", "4.3.1")
        .arg("-dryrun")
        .output()
        .unwrap();
    let unit = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !unit.contains("--sdnotify=healthy")
            && unit.contains("--sdnotify=conmon")
            && unit.contains("ExecStartPost=")
            && unit.contains("healthcheck run"),
        "{unit}"
    );

    let mut b = support::UserManager::builder()
        .generator(GEN)
        .env("QUADLET_UNIT_DIRS", &quadlets);
    for (k, v) in &env {
        b = b.env(k, v);
    }
    let Some(m) = b.start() else { return };
    let podman = |args: &[&str]| {
        let o = m
            .command("podman")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    let why = |unit: &str| {
        String::from_utf8_lossy(
            &m.systemctl(&["status", "--no-pager", "--full", unit])
                .stdout,
        )
        .into_owned()
    };
    let o = m.systemctl(&["start", "web.service"]);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        why("web.service")
    );
    // The start returned only after a health check passed, which needs /ready (3 s after the
    // container started): the container is healthy now, not "starting".
    assert_eq!(
        podman(&[
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            "systemd-web"
        ]),
        "healthy",
        "{}",
        why("web.service")
    );
    assert_eq!(m.is_active("web.service"), "active");

    let o = m.systemctl(&["start", "sick.service"]);
    assert!(!o.status.success(), "a never-healthy container started");
    assert_eq!(
        m.is_active("sick.service"),
        "failed",
        "{}",
        why("sick.service")
    );
    assert_eq!(
        podman(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            "name=systemd-sick"
        ]),
        "",
        "the unhealthy container is left"
    );
    let o = m.systemctl(&["stop", "web.service"]);
    assert!(o.status.success());
}
