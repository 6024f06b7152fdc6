//! The `xtask` binary's contract. Having an integration test also makes `cargo test --workspace`
//! build `target/debug/xtask` before any test runs, which `tests/cli_ops.rs` uses to check the
//! generated completions against a real manager.

use std::path::PathBuf;
use std::process::Command;

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn without_a_known_command_it_prints_its_usage_and_fails() {
    let out = xtask().output().expect("running xtask");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("usage: xtask man DIR | xtask completions DIR"),
        "{out:?}"
    );
}

#[test]
fn completions_writes_a_script_per_shell_with_unit_name_completion() {
    let dir = scratch("completions");
    let out = xtask()
        .arg("completions")
        .arg(&dir)
        .output()
        .expect("running xtask");
    assert!(out.status.success(), "{out:?}");
    for file in ["unitwright.bash", "_unitwright", "unitwright.fish"] {
        let text = std::fs::read_to_string(dir.join(file)).expect(file);
        assert!(text.contains("unitwright"), "{file}");
    }
    let bash = std::fs::read_to_string(dir.join("unitwright.bash")).expect("bash script");
    assert!(bash.contains("_unitwright_with_units"), "{bash}");
    std::fs::remove_dir_all(&dir).expect("removing the scratch dir");
}
