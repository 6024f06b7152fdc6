#![allow(clippy::unwrap_used)]
//! `make install DESTDIR=... PREFIX=/usr` puts every file where systemd, podman's Quadlet search
//! path, man and the shells look, and `packaging/check-install.sh` accepts the tree (man pages
//! render with `man -l`, shipped and generated units pass `systemd-analyze verify`).
//!
//! Builds with `PROFILE=dev` so that it reuses the test build.

use std::path::Path;
use std::process::Command;

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn make_install_puts_every_file_where_systemd_podman_man_and_shells_look() {
    let missing: Vec<&str> = ["make", "pkg-config", "systemd-analyze"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and {missing:?} are missing (packaging/install-build-deps.sh installs them)"
        );
        eprintln!("SKIPPED: {missing:?} not installed");
        return;
    }
    let src = env!("CARGO_MANIFEST_DIR");
    let dest = tempfile::tempdir().unwrap();
    let o = Command::new("make")
        .current_dir(src)
        .args(["install", "PREFIX=/usr", "PROFILE=dev"])
        .arg(format!("DESTDIR={}", dest.path().display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "make install failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let pc = |var: &str| {
        let o = Command::new("pkg-config")
            .args([&format!("--variable={var}"), "systemd"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    let root = dest.path();
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    let generator = "/usr/libexec/unitwright/unitwright-generator";
    assert!(at("/usr/bin/unitwright").is_file());
    assert!(at(generator).is_file());
    for link in [
        format!(
            "{}/unitwright-system-generator",
            pc("systemdsystemgeneratordir")
        ),
        format!(
            "{}/unitwright-user-generator",
            pc("systemdusergeneratordir")
        ),
    ] {
        assert_eq!(
            std::fs::read_link(at(&link)).unwrap(),
            Path::new(generator),
            "{link}"
        );
    }
    for f in [
        "/usr/lib/unitwright/generator.conf",
        "/usr/share/containers/systemd/console@.container",
        "/etc/containers/systemd/users/console@.container",
        "/usr/share/man/man1/unitwright.1",
        "/usr/share/man/man1/unitwright-instance.1",
        "/usr/share/man/man5/unitwright.quadlet.5",
        "/usr/share/man/man8/unitwright-generator.8",
        "/usr/share/bash-completion/completions/unitwright",
        "/usr/share/zsh/vendor-completions/_unitwright",
        "/usr/share/fish/vendor_completions.d/unitwright.fish",
        "/usr/share/doc/unitwright/examples/dropins/console@.service.d/10-resources.conf",
        "/usr/share/doc/unitwright/examples/dropins/console@.container.d/10-image.conf",
    ] {
        assert!(at(f).is_file(), "{f} is missing");
    }
    if Path::new(src).join("templates").is_dir() {
        assert!(
            at("/usr/share/unitwright/templates")
                .read_dir()
                .unwrap()
                .count()
                > 0
        );
    }
    let o = Command::new(Path::new(src).join("packaging/check-install.sh"))
        .arg(root)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "check-install.sh:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if !have("man") {
        eprintln!("note: man-db is not installed; man pages were not rendered");
    }
}
