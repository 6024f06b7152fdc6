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
    assert_eq!(out.status.code(), Some(78), "EX_CONFIG");
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
    assert_eq!(other.status.code(), Some(78));
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

#[test]
fn malformed_settings_are_usage_errors() {
    for bad in ["NOEQUALS", "1KEY=x", "=x", "A-B=x"] {
        let out = Command::new(UNITWRIGHT)
            .args([
                "--user",
                "instance",
                "start",
                "console@.service",
                "x",
                "--set",
                bad,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--set"),
            "{bad}"
        );
    }
}

#[test]
fn a_setting_from_set_file_reaches_the_unit_but_never_argv_or_output() {
    // The unit writes the TOKEN it was given to the file named by OUT.
    let unit = format!(
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=:{UNITWRIGHT} instance exec --settings-dir=%t/unitwright/instances --require=TOKEN %n -- /bin/sh -c \"printf '%%s' \\\"$1\\\" > \\\"$2\\\"\" sh ${{TOKEN}} ${{OUT}}\n"
    );
    let Some(sb) = UserManager::builder().unit("sf@.service", &unit).start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("token");
    let secret = "s3cr3t value 'q' $HOME";
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(UNITWRIGHT)
            .envs(sb.client_env())
            .args(["--user", "instance", "start", "sf@.service"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };

    // From a file: one trailing newline removed, nothing of it printed.
    let out_a = dir.path().join("a");
    let set_out = format!("OUT={}", out_a.display());
    let set_token = format!("TOKEN={}", secret_file.display());
    let out = run(
        &["a", "--set", &set_out, "--set-file", &set_token, "--json"],
        "",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out_a).unwrap(), secret);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["settings"]["OUT"], out_a.display().to_string());
    assert!(json["settings"].get("TOKEN").is_none(), "{stdout}");
    assert!(!stdout.contains("s3cr3t"), "{stdout}");

    // From standard input.
    let out_b = dir.path().join("b");
    let set_out = format!("OUT={}", out_b.display());
    let out = run(
        &["b", "--set", &set_out, "--set-file", "TOKEN=-"],
        "from stdin\n\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out_b).unwrap(), "from stdin\n");

    // A key given twice, and an unreadable file: errors naming the key, nothing started.
    let out = run(&["c", "--set", "TOKEN=x", "--set-file", &set_token], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TOKEN is given more than once"), "{err}");
    let out = run(&["c", "--set-file", "TOKEN=/nonexistent/unitwright"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reading the value of TOKEN from /nonexistent/unitwright"),
        "{err}"
    );
    assert_eq!(sb.is_active("sf@c.service"), "inactive");
    let out = run(&["c", "--set-file", "TOKEN="], "");
    assert_eq!(out.status.code(), Some(2), "an empty path is a usage error");
}

/// Runs `instance exec` for `unit` with the settings directory `dir`; the command prints its
/// environment's `K`.
fn exec_in(dir: &std::path::Path, unit: &str) -> std::process::Output {
    Command::new(UNITWRIGHT)
        .args(["instance", "exec", "--settings-dir"])
        .arg(dir)
        .args([unit, "--", "/bin/sh", "-c", "printf %s \"$K\""])
        .output()
        .unwrap()
}

#[test]
fn exec_refuses_settings_files_it_cannot_trust_with_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let unit = "t@1.service";
    let cases: &[(&str, &str)] = &[
        (r#"{"1BAD": "x"}"#, "\"1BAD\" is not a variable name"),
        (r#"{"A=B": "x"}"#, "\"A=B\" is not a variable name"),
        (r#"{"": "x"}"#, "\"\" is not a variable name"),
        (r#"{"LD_PRELOAD": "/tmp/x.so"}"#, "LD_PRELOAD is reserved"),
        (r#"{"PATH": "/tmp"}"#, "PATH is reserved"),
        (r#"{"K": "a\u0000b"}"#, "the value of K contains a NUL byte"),
    ];
    for (settings, why) in cases {
        std::fs::write(
            dir.path().join(unit),
            format!(r#"{{"unit": "{unit}", "id": "1", "settings": {settings}}}"#),
        )
        .unwrap();
        let out = exec_in(dir.path(), unit);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{settings}: {err}");
        assert!(
            err.contains(&format!(
                "{}: not a valid settings file: setting {why}",
                dir.path().join(unit).display()
            )),
            "{settings}: {err}"
        );
        assert!(out.stdout.is_empty());
    }

    // Settings of another unit copied under this name are not used.
    std::fs::write(
        dir.path().join(unit),
        r#"{"unit": "t@2.service", "id": "2", "settings": {"K": "v"}}"#,
    )
    .unwrap();
    let out = exec_in(dir.path(), unit);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds the settings of \"t@2.service\""));

    // A symbolic link is not followed, even to valid settings of this unit.
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("real");
    std::fs::write(
        &target,
        format!(r#"{{"unit": "{unit}", "id": "1", "settings": {{"K": "v"}}}}"#),
    )
    .unwrap();
    std::fs::remove_file(dir.path().join(unit)).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join(unit)).unwrap();
    let out = exec_in(dir.path(), unit);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("it is a symbolic link; settings files are never followed"),
        "{err}"
    );
    // The same file in place works.
    std::fs::remove_file(dir.path().join(unit)).unwrap();
    std::fs::copy(&target, dir.path().join(unit)).unwrap();
    let out = exec_in(dir.path(), unit);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v");
}

#[test]
fn dangerous_setting_names_are_refused_by_start() {
    for bad in [
        "LD_PRELOAD=/tmp/x.so",
        "PATH=/tmp",
        "UNITWRIGHT_UNIT=x",
        "CONTAINERS_CONF=/x",
        "NOTIFY_SOCKET=/x",
    ] {
        let out = Command::new(UNITWRIGHT)
            .args([
                "--user",
                "instance",
                "start",
                "console@.service",
                "x",
                "--set",
                bad,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let key = bad.split('=').next().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("{key} is reserved")),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn set_file_reads_are_bounded() {
    // /dev/zero never ends: the read stops after the limit and says so, before any bus call.
    let rt = tempfile::tempdir().unwrap();
    let child = Command::new(UNITWRIGHT)
        .args([
            "--user",
            "instance",
            "start",
            "console@.service",
            "x",
            "--set-file",
            "PW=/dev/zero",
        ])
        .env("XDG_RUNTIME_DIR", rt.path())
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A guard against the unbounded read this test exists for (it would fill the memory),
    // not a timing assertion: the bounded read ends at once.
    let pid = child.id();
    let guard = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(120));
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let out = child.wait_with_output().unwrap();
    drop(guard);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the value of PW in /dev/zero is longer than 65536 bytes"),
        "{err}"
    );
}
