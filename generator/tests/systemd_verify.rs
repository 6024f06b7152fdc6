#![allow(clippy::unwrap_used)]
//! The generated units load in the real systemd: `systemd-analyze verify` (systemd's own unit
//! parser) accepts every unit generated from the golden inputs that convert without errors.

use std::path::Path;
use std::process::Command;

const GEN: &str = env!("CARGO_BIN_EXE_unitwright-generator");

fn systemd_analyze_available() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").map_or(true, |v| v != "true"),
            "CI=true but systemd-analyze is not available"
        );
        eprintln!("SKIPPED: systemd-analyze not found; install systemd to run this test");
    }
    found
}

#[test]
fn generated_units_load_in_systemd() {
    if !systemd_analyze_available() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generator");
    for case in [
        "container-key-groups",
        "dropins-merge-and-reset",
        "templates-instances-default-instance",
        "install-links",
        "new-keys-with-podman-5-8",
    ] {
        let out = tempfile::tempdir().unwrap();
        let status = Command::new(GEN)
            .env_clear()
            .env("QUADLET_UNIT_DIRS", root.join(case).join("input"))
            // Accepts the keys of podman 5.5-5.8 and changes nothing for 5.4.2's.
            .env("UNITWRIGHT_PODMAN_VERSION", "5.8.2")
            .args(["-no-kmsg-log"])
            .arg(out.path())
            .status()
            .unwrap();
        assert!(status.success(), "{case}: generator failed");
        let units: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "service")
                    && !p.symlink_metadata().unwrap().file_type().is_symlink()
                    // Templates cannot be verified without an instance.
                    && !p.to_string_lossy().ends_with("@.service")
            })
            .collect();
        assert!(!units.is_empty(), "{case}: no units");
        let o = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(&units)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{case}: systemd-analyze verify failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
