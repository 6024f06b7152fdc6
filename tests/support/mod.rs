//! Test support: the project's tests run on the product harness, the `unitwright-testkit` crate
//! (`testkit/`): real systemd managers in private namespaces. This file only re-exports it and
//! adds what is specific to this repository ([`generator_binary`]).
//!
//! Share it from any integration test with `mod support;` (this file is `tests/support/mod.rs`,
//! which cargo does not build as a test of its own), or from an example/bench with
//! `#[path = "../tests/support/mod.rs"] mod support;`. See the testkit's crate docs for
//! `UserManager::builder()...start()`, `.journal(true)`, `SystemManager` and `remote::RemoteHost`.
#![allow(dead_code, unused_imports)]

pub use unitwright_testkit::*;

pub mod podman;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `unitwright-generator` binary next to `unitwright_exe` (`env!("CARGO_BIN_EXE_unitwright")`)
/// in the target directory; built with the same profile when it is missing or older.
pub fn generator_binary(unitwright_exe: &str) -> PathBuf {
    let exe = Path::new(unitwright_exe);
    let dir = exe.parent().expect("the binary's directory");
    let gen = dir.join("unitwright-generator");
    let fresh = |g: &Path| match (fs::metadata(g), fs::metadata(exe)) {
        (Ok(a), Ok(b)) => a.modified().ok() >= b.modified().ok(),
        _ => false,
    };
    if !fresh(&gen) {
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let target = dir.parent().expect("the target directory");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "unitwright-generator",
            "--target-dir",
        ])
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd
            .status()
            .expect("running cargo build -p unitwright-generator");
        assert!(status.success(), "building unitwright-generator failed");
    }
    assert!(gen.exists(), "{} does not exist", gen.display());
    gen
}

/// Runs the shell command line `command` under a pseudo-terminal (`script(1)` from
/// util-linux) with `env` and `TERM=xterm`, and returns what the terminal showed, with
/// `EXIT=<status>` appended: for what the CLI draws on a terminal only (progress lines).
pub fn on_a_terminal<K, V>(command: &str, env: impl IntoIterator<Item = (K, V)>) -> String
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let out = Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("{command}; echo EXIT=$?"),
            "/dev/null",
        ])
        .envs(env)
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1) from util-linux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
