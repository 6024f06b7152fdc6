//! `unitwright render`: values from --values and --set (later wins), stdout or an atomic -o
//! with its mode, and the error contract (`unitwright: rendering <template>: <why>`, exit 1;
//! usage errors exit 2).

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

fn unitwright(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unitwright"))
        .args(args)
        .env_remove("JOURNAL_STREAM")
        .output()
        .expect("unitwright runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

const TEMPLATE: &str = "[Unit]\nDescription={{ d | setting }}\n\n[Service]\nExecStart=/bin/echo {{ args | exec_arg }} {{ opt.level | exec_arg }}\n";

fn setup() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("echo.service.tera");
    std::fs::write(&template, TEMPLATE).unwrap();
    let values = dir.path().join("values.json");
    std::fs::write(
        &values,
        r#"{"d": "from file", "args": ["a b", "$X"], "opt": {"level": "1"}}"#,
    )
    .unwrap();
    let t = template.to_str().unwrap().to_owned();
    let v = values.to_str().unwrap().to_owned();
    (dir, t, v)
}

#[test]
fn values_file_and_set_render_to_stdout_with_set_winning() {
    let (_dir, t, v) = setup();
    let o = unitwright(&[
        "render",
        &t,
        "--values",
        &v,
        "--set",
        "d=100% set",
        "--set",
        "opt.level=2",
        "--set",
        "opt.level=3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "[Unit]\nDescription=100%% set\n\n[Service]\nExecStart=/bin/echo \"a b\" \"$$X\" \"3\"\n"
    );
}

#[test]
fn output_file_is_written_whole_with_its_mode() {
    let (dir, t, v) = setup();
    let out = dir.path().join("echo.service");
    let out_s = out.to_str().unwrap();
    let o = unitwright(&["render", &t, "--values", &v, "-o", out_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("Description=from file"));
    let o = unitwright(&["render", &t, "--values", &v, "-o", out_s, "--mode", "0600"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
    // No temporary files are left next to it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".unitwright")),
        "{names:?}"
    );
}

#[test]
fn a_refused_value_fails_with_template_line_key_and_leaves_the_old_file() {
    let (dir, t, v) = setup();
    let out = dir.path().join("echo.service");
    std::fs::write(&out, "old").unwrap();
    let o = unitwright(&[
        "render",
        &t,
        "--values",
        &v,
        "--set",
        "d=x\nExecStartPre=/bin/evil",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "unitwright: rendering {t}: line 2, [Unit] Description=: setting: value \"x\\nExecStartPre=/\"… (24 bytes) contains the control character 0x0a, which this setting cannot carry (a newline or carriage return would start a new line)\n"
        )
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
}

#[test]
fn bad_values_files_and_templates_fail_with_exit_one() {
    let (dir, t, _v) = setup();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[1]").unwrap();
    let o = unitwright(&["render", &t, "--values", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("must hold a JSON object"),
        "{}",
        stderr(&o)
    );
    let unfiltered = dir.path().join("raw.service.tera");
    std::fs::write(&unfiltered, "[Unit]\nDescription={{ d }}\n").unwrap();
    let o = unitwright(&["render", unfiltered.to_str().unwrap(), "--set", "d=x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!(
            "unitwright: rendering {}: line 2: `{{{{ d }}}}` prints a value without a context filter",
            unfiltered.display()
        )),
        "{}",
        stderr(&o)
    );
    let o = unitwright(&["render", &t, "--set", "d=x", "--set", "args=a"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Variable `opt.level` not found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn malformed_options_are_usage_errors() {
    let (_dir, t, _v) = setup();
    for args in [
        &["render", &t, "--set", "novalue"][..],
        &["render", &t, "--set", "a..b=1"],
        &["render", &t, "-o", "/tmp/x", "--mode", "9"],
        &["render", &t, "--mode", "0600"],
    ] {
        let o = unitwright(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    assert!(Path::new(&t).exists());
}

#[test]
fn the_output_name_tells_a_quadlet_file_from_a_unit() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("generic.tera");
    std::fs::write(
        &template,
        "[Container]\nImage=i\nEnvironment={{ v | env(name=\"A\") }}\n",
    )
    .unwrap();
    let t = template.to_str().unwrap();
    // As a systemd unit, `env` is right; in a .container Quadlet would misread `\xNN`.
    let o = unitwright(&["render", t, "--set", "v=é"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = dir.path().join("web.container");
    let o = unitwright(&["render", t, "--set", "v=é", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("would not be read back"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn the_output_is_never_more_readable_than_its_sources() {
    let (dir, t, v) = setup();
    let out = dir.path().join("echo.service");
    let out_s = out.to_str().unwrap();
    let mode_of = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let chmod = |p: &str, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    // A 0600 template (say, with a BMC password in it) gives a 0600 unit.
    chmod(&t, 0o600);
    let o = unitwright(&["render", &t, "--values", &v, "-o", out_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(mode_of(&out), 0o600);
    // A values file readable by its group only: the unit is too.
    chmod(&t, 0o644);
    chmod(&v, 0o640);
    let o = unitwright(&["render", &t, "--values", &v, "-o", out_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(mode_of(&out), 0o640);
    // --mode says it explicitly.
    let o = unitwright(&["render", &t, "--values", &v, "-o", out_s, "--mode", "0644"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(mode_of(&out), 0o644);
}
