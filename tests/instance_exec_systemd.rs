#![allow(clippy::unwrap_used)]
//! `unitwright instance exec` must expand `$VAR`/`${VAR}` exactly as systemd 252 does for an
//! exec line without the `:` prefix. Checked against the real thing: one unit lets systemd
//! expand its arguments (variables from `Environment=`), the other runs the same arguments
//! through the wrapper (`:` prefix, variables from the instance's settings file); both dump
//! their argv, which must be byte-identical. Also: the wrapper keeps the service's PID and
//! refuses clearly when the settings are missing.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use support::UserManager;
use unitwright::instance::{Settings, Store};
use unitwright::unit::quote::{environment_assignment, exec_argument_literal};

const UNITWRIGHT: &str = env!("CARGO_BIN_EXE_unitwright");

/// Variables: nasty values for splitting and substitution.
const VARS: &[(&str, &str)] = &[
    ("A", "one  two"),
    ("Q", "'single q' \"double q\" back\\slash \\'x"),
    ("NL", "line1\nline2\tt"),
    ("E", ""),
    ("U", "ü € ${A} $A"),
    ("BR", "}{"),
    ("UNBAL", "open 'quote here"),
    ("EMPTYQ", "x '' y"),
];

/// Arguments: every shape of reference.
const ARGS: &[&str] = &[
    "$A",
    "${A}",
    "x${A}y",
    "$Q",
    "${Q}",
    "$NL",
    "$E",
    "${E}",
    "$U",
    "$BR",
    "${BR}",
    "$UNBAL",
    "$EMPTYQ",
    "$UNSET",
    "${UNSET}",
    "a$A",
    "$A/b",
    "${A",
    "${A:-default}",
    "$",
    "${}",
    "$$",
    "$${A}",
    "a$$b",
    "$$A",
    "${A}${E}${BR}",
    "plain",
    "%%",
];

fn dump_script(out: &std::path::Path) -> String {
    format!("printf '%s\\0' \"$@\" > {}", out.display())
}

fn exec_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| exec_argument_literal(a).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_wrapper_expands_exactly_like_systemd() {
    let Some(m) = UserManager::start() else {
        return;
    };
    let dir = m.root.path().join("dumps");
    std::fs::create_dir_all(&dir).unwrap();
    let settings_dir = m.root.path().join("settings");
    let env_line: Vec<String> = VARS
        .iter()
        .map(|(k, v)| environment_assignment(k, v).unwrap())
        .collect();
    let sys_out = dir.join("systemd");
    let uw_out = dir.join("unitwright");
    m.write_unit(
        "exp-systemd.service",
        &format!(
            "[Service]\nType=oneshot\nEnvironment={}\nExecStart=/bin/sh -c {} sh {}\n",
            env_line.join(" "),
            exec_argument_literal(&dump_script(&sys_out)).unwrap(),
            exec_words(ARGS)
        ),
    );
    m.write_unit(
        "exp-unitwright.service",
        &format!(
            "[Service]\nType=oneshot\nExecStart=:{UNITWRIGHT} instance exec --settings-dir={} %n -- /bin/sh -c {} sh {}\n",
            settings_dir.display(),
            exec_argument_literal(&dump_script(&uw_out)).unwrap(),
            exec_words(ARGS)
        ),
    );
    Store::new(&settings_dir)
        .write(&Settings {
            unit: "exp-unitwright.service".to_owned(),
            id: String::new(),
            settings: VARS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            auto: Vec::new(),
        })
        .unwrap();
    for unit in ["exp-systemd.service", "exp-unitwright.service"] {
        let out = m.systemctl(&["start", unit]);
        assert!(
            out.status.success(),
            "{unit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let split = |p: &std::path::Path| -> Vec<String> {
        let data = std::fs::read(p).unwrap();
        data.split(|&b| b == 0)
            .map(|w| String::from_utf8(w.to_vec()).unwrap())
            .collect()
    };
    let (sys, uw) = (split(&sys_out), split(&uw_out));
    assert!(sys.len() > 10, "systemd's argv looks wrong: {sys:?}");
    assert_eq!(uw, sys);
}

#[test]
fn missing_settings_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(UNITWRIGHT)
        .args(["instance", "exec", "--settings-dir"])
        .arg(dir.path())
        .args(["console@a\\x2db.service", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "no settings for console@a\\x2db.service: start it with `unitwright instance start`"
        ),
        "{err}"
    );
}

#[test]
fn settings_of_a_similar_name_are_never_used() {
    // `ax2db` has settings; `a\x2db` (the id `a-b`) must not find them.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    store
        .write(&Settings {
            unit: "console@ax2db.service".to_owned(),
            id: "ax2db".to_owned(),
            settings: BTreeMap::from([("K".to_owned(), "v".to_owned())]),
            auto: Vec::new(),
        })
        .unwrap();
    let run = |unit: &str| {
        Command::new(UNITWRIGHT)
            .args(["instance", "exec", "--settings-dir"])
            .arg(dir.path())
            .args([
                unit,
                "--",
                "/bin/sh",
                "-c",
                "printf %s \"$K|$UNITWRIGHT_ID\"",
            ])
            .output()
            .unwrap()
    };
    let ok = run("console@ax2db.service");
    assert!(ok.status.success());
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "v|ax2db");
    let other = run("console@a\\x2db.service");
    assert_eq!(other.status.code(), Some(1));
}

#[test]
fn the_command_replaces_the_wrapper_in_the_same_process() {
    let dir = tempfile::tempdir().unwrap();
    Store::new(dir.path())
        .write(&Settings {
            unit: "x@1.service".to_owned(),
            id: "1".to_owned(),
            settings: BTreeMap::new(),
            auto: Vec::new(),
        })
        .unwrap();
    let child = Command::new(UNITWRIGHT)
        .args(["instance", "exec", "--settings-dir"])
        .arg(dir.path())
        .args(["x@1.service", "--", "/bin/sh", "-c", "echo $$$$"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `$$$$` is `$$` after systemd-style expansion: the shell prints its own PID.
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());
}
