#![allow(clippy::unwrap_used)]
//! Generated units run by real podman, against a private podman storage (given through
//! `GlobalArgs=`, so the host's images are never touched):
//! * the `ExecStart=` of a generated `.build` unit, split as an exec line and run in the unit's
//!   `WorkingDirectory=`;
//! * the same `.build` file turned into a unit by the generator installed in a real
//!   `systemd --user` (the sandbox of `tests/support`), which starts it.
//!
//! The image built must then exist with every `ImageTag=` and its label.
//!
//! Needs podman (`$PODMAN` or `/usr/bin/podman`) and the rights to use a private storage
//! (root). Without them the tests are skipped with a loud message, or fail when `CI=true`.

#[path = "../../tests/support/mod.rs"]
mod support;

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

/// Writes `hello.build` (and its build context `ctx/`) into `quadlets`.
fn write_hello_build(quadlets: &Path, storage: &[String]) {
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
}

/// Asserts that `hello.build`'s image exists in `storage` with both tags and its label.
fn assert_hello_image(storage: &[String]) {
    let o = Command::new(podman())
        .args(storage)
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

/// A temporary directory with a private podman storage (its global options) and a Quadlet
/// directory holding `hello.build`; `None` when podman cannot run here (see [`podman_usable`]).
fn hello_setup() -> Option<(tempfile::TempDir, Vec<String>, PathBuf)> {
    let tmp = tempfile::tempdir().unwrap();
    let storage = private_storage(tmp.path());
    podman_usable(&storage)?;
    let quadlets = tmp.path().join("quadlets");
    write_hello_build(&quadlets, &storage);
    Some((tmp, storage, quadlets))
}

#[test]
fn generated_build_unit_builds_the_image_with_real_podman() {
    let Some((tmp, storage, quadlets)) = hello_setup() else {
        return;
    };

    let out = tmp.path().join("out");
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
    assert_hello_image(&storage);
}

#[test]
fn user_manager_runs_the_generator_and_starts_the_build_unit() {
    let Some((_tmp, storage, quadlets)) = hello_setup() else {
        return;
    };
    let Some(manager) = support::UserManager::builder()
        .env("QUADLET_UNIT_DIRS", &quadlets)
        .env("PODMAN", podman())
        .generator(GEN)
        .start()
    else {
        return;
    };
    let o = manager.systemctl(&["start", "hello-build.service"]);
    let status = manager.systemctl(&["status", "--no-pager", "--full", "hello-build.service"]);
    check(
        &o,
        &format!(
            "systemctl start hello-build.service\n{}",
            String::from_utf8_lossy(&status.stdout)
        ),
    );
    let result = manager.systemctl(&["show", "-P", "Result", "hello-build.service"]);
    assert_eq!(String::from_utf8_lossy(&result.stdout).trim(), "success");
    assert_hello_image(&storage);
}
