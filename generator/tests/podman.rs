#![allow(clippy::unwrap_used)]
//! Generated units run by real podman: the `ExecStart=` of a generated `.build` unit is split
//! the way systemd splits it and executed in the unit's `WorkingDirectory=`, against a private
//! podman storage (given through `GlobalArgs=`, so the host's images are never touched). The
//! image it builds must then exist with every `ImageTag=`.
//!
//! Needs podman (`$PODMAN` or `/usr/bin/podman`) and the rights to use a private storage
//! (root). Without them the test is skipped with a loud message, or fails when `CI=true`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use unitwright::unit::{parse_file, split::split_args};

const GEN: &str = env!("CARGO_BIN_EXE_unitwright-generator");

fn podman() -> String {
    std::env::var("PODMAN")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/bin/podman".to_owned())
}

/// The podman global options that keep everything in `dir`.
fn private_storage(dir: &Path) -> Vec<String> {
    vec![
        format!("--root={}", dir.join("root").display()),
        format!("--runroot={}", dir.join("runroot").display()),
        "--storage-driver=vfs".to_owned(),
    ]
}

/// Whether podman can run here with a private storage; `None` (after a loud message) when it
/// cannot and `CI` is not `true`.
fn podman_usable(storage: &[String]) -> Option<()> {
    let probe = Command::new(podman()).args(storage).arg("images").output();
    let problem = match probe {
        Ok(o) if o.status.success() => return Some(()),
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => e.to_string(),
    };
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true and podman cannot run with a private storage: {problem}"
    );
    eprintln!(
        "\n!!! SKIPPING: podman cannot run with a private storage: {problem}\n!!! (with CI=true this test would fail)\n"
    );
    None
}

fn check(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs the generator over `quadlets` and returns the path of the generated `service`.
fn generate(quadlets: &Path, out: &Path, service: &str) -> PathBuf {
    let o = Command::new(GEN)
        .env_clear()
        .env("QUADLET_UNIT_DIRS", quadlets)
        .env("PODMAN", podman())
        .args(["-no-kmsg-log", out.to_str().unwrap()])
        .output()
        .unwrap();
    check(&o, "the generator");
    out.join(service)
}

#[test]
fn generated_build_unit_builds_the_image_with_real_podman() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = private_storage(tmp.path());
    if podman_usable(&storage).is_none() {
        return;
    }
    let quadlets = tmp.path().join("quadlets");
    let out = tmp.path().join("out");
    fs::create_dir_all(quadlets.join("ctx")).unwrap();
    fs::write(quadlets.join("ctx/hello"), "hello from a quadlet build\n").unwrap();
    fs::write(
        quadlets.join("ctx/Containerfile"),
        "FROM scratch\nCOPY hello /hello\nLABEL stage=final\n",
    )
    .unwrap();
    fs::write(
        quadlets.join("hello.build"),
        format!(
            "[Build]\nImageTag=localhost/uw-hello:1\nImageTag=localhost/uw-hello:latest\n\
             Label=\"org.example.note=built by a unit\"\nFile=ctx/Containerfile\n\
             SetWorkingDirectory=file\nGlobalArgs={}\n",
            storage.join(" ")
        ),
    )
    .unwrap();

    let unit = parse_file(&generate(&quadlets, &out, "hello-build.service")).unwrap();
    let work_dir = unit.lookup_last_raw("Service", "WorkingDirectory").unwrap();
    assert_eq!(Path::new(work_dir), quadlets.join("ctx"));
    let words = split_args(unit.lookup_last_raw("Service", "ExecStart").unwrap()).unwrap();
    let o = Command::new(&words[0])
        .args(&words[1..])
        .current_dir(work_dir)
        .output()
        .unwrap();
    check(&o, "the generated ExecStart");

    let o = Command::new(podman())
        .args(&storage)
        .args([
            "image",
            "inspect",
            "--format",
            "{{.RepoTags}} {{index .Labels \"org.example.note\"}}",
            "localhost/uw-hello:1",
        ])
        .output()
        .unwrap();
    check(&o, "podman image inspect");
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("localhost/uw-hello:1")
            && shown.contains("localhost/uw-hello:latest")
            && shown.contains("built by a unit"),
        "unexpected image: {shown}"
    );
}
