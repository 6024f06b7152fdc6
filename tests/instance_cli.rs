#![allow(clippy::unwrap_used)]
//! `unitwright instance` verbs told like the job verbs, against a real `systemd --user` with a
//! real journald in the sandbox (`UserManager::builder().journal(true)`; the CLI runs inside
//! the sandbox's namespaces, where the journal is at its standard path, as on a host): a failed
//! start or restart quotes the unit's own output, its exit status and the unit, in text and in
//! `--json`; exit codes and messages match `start`/`stop`/`restart` of plain units. With real
//! podman 4.3.1: the shipped `units/console@.container` with a missing image quotes podman's
//! error.

mod support;

use std::process::Output;

use serde_json::Value;
use support::UserManager;

const UNITWRIGHT: &str = env!("CARGO_BIN_EXE_unitwright");

/// A template whose command reads its settings through `unitwright instance exec`: it fails
/// with a line on stderr and exit status 3 when FAIL=yes or when `%t/fail-<id>` exists, else
/// it succeeds and stays active.
fn template() -> String {
    format!(
        "[Unit]\nDescription=console %i\n[Service]\nType=oneshot\nRemainAfterExit=yes\n\
         Environment=FAIL=no\n\
         ExecStart=:{UNITWRIGHT} instance exec --settings-dir=%t/unitwright/instances %n -- \
         /bin/sh -c 'if [ \"$FAIL\" = yes ] || [ -e %t/fail-$UNITWRIGHT_ID ]; then \
         echo \"console: cannot open $DEVICE: no such device\" >&2; exit 3; fi'\n\
         [X-Unitwright]\nRequiredSettings=DEVICE\n"
    )
}

fn sandbox() -> Option<UserManager> {
    UserManager::builder()
        .journal(true)
        .unit("console@.service", &template())
        .unit("plain.service", "[Service]\nExecStart=/bin/sleep 600\n")
        .unit(
            "pre@.service",
            &format!(
                "[Service]\nExecStartPre=/bin/sleep 3\n\
                 ExecStart=:{UNITWRIGHT} instance exec --settings-dir=%t/unitwright/instances %n -- /bin/sleep 600\n"
            ),
        )
        .start()
}

/// `unitwright --user ARGS` inside the sandbox.
fn unitwright(sb: &UserManager, args: &[&str]) -> Output {
    sb.command(UNITWRIGHT)
        .arg("--user")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const LINE: &str = "console: cannot open /dev/ttyS9: no such device";
const UNIT: &str = r"console@node\x2d7.service";

#[test]
fn a_failed_instance_start_quotes_the_units_output_like_start_does() {
    let Some(sb) = sandbox() else { return };
    let args = [
        "instance",
        "start",
        "console@.service",
        "node-7",
        "--set",
        "DEVICE=/dev/ttyS9",
        "--set",
        "FAIL=yes",
    ];
    let out = unitwright(&sb, &args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "unitwright: starting {UNIT} failed: result exit-code, ExecStart exited with status 3 \
             (its settings were removed)"
        ),
        "{err}"
    );
    assert!(
        lines[1..lines.len() - 1]
            .iter()
            .any(|l| l.starts_with("  ") && l.ends_with(LINE)),
        "{err}"
    );
    // The hint is shell-quoted: pasted unquoted, the backslash would name another unit.
    assert_eq!(
        lines[lines.len() - 1],
        format!("  more: unitwright --user logs '{UNIT}'"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    // Nothing is left behind: no settings, no failed unit.
    assert_eq!(sb.is_active(UNIT), "inactive");

    // --json: the same facts in the fields of a job verb's object, plus the id.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = unitwright(&sb, &json_args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["unit"], UNIT, "{v}");
    assert_eq!(v["id"], "node-7", "{v}");
    assert_eq!(v["verb"], "start", "{v}");
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(v["result"], "failed", "{v}");
    assert_eq!(v["service_result"], "exit-code", "{v}");
    assert_eq!(v["exec_main_code"], 1, "{v}");
    assert_eq!(v["exec_main_status"], 3, "{v}");
    assert_eq!(
        v["failure"], "result exit-code, ExecStart exited with status 3",
        "{v}"
    );
    assert_eq!(v["not_found"], false, "{v}");
    assert_eq!(v["timed_out"], false, "{v}");
    assert_eq!(v["error"], Value::Null, "{v}");
    assert_eq!(v["failed_dependencies"], serde_json::json!([]), "{v}");
    let output = v["output"].as_array().unwrap();
    assert!(output.iter().any(|l| l == LINE), "{v}");

    // The same unit run by the job verb says the same (its settings are given by hand).
    let plain_err = {
        let out = unitwright(
            &sb,
            &[
                "instance",
                "start",
                "console@.service",
                "node-7",
                "--set",
                "DEVICE=/dev/ttyS9",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::write(sb.runtime_dir.join("fail-node-7"), "").unwrap();
        let out = unitwright(&sb, &["restart", UNIT]);
        assert_eq!(out.status.code(), Some(1));
        stderr(&out)
    };
    assert!(plain_err.contains(LINE), "{plain_err}");

    // A failed instance restart is told the same way, and keeps the settings.
    assert_eq!(
        unitwright(&sb, &["reset-failed", UNIT]).status.code(),
        Some(0)
    );
    let out = unitwright(&sb, &["instance", "restart", "console@.service", "node-7"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!(
            "unitwright: restarting {UNIT} failed: result exit-code, ExecStart exited with status 3 \
             (its settings were kept)\n"
        )),
        "{err}"
    );
    assert!(err.lines().any(|l| l.ends_with(LINE)), "{err}");
    assert!(
        err.trim_end()
            .ends_with(&format!("more: unitwright --user logs '{UNIT}'")),
        "{err}"
    );
    let out = unitwright(
        &sb,
        &[
            "instance",
            "restart",
            "console@.service",
            "node-7",
            "--json",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["verb"].as_str(), v["success"].as_bool(), v["id"].as_str()),
        (Some("restart"), Some(false), Some("node-7")),
        "{v}"
    );
    assert!(
        v["output"].as_array().unwrap().iter().any(|l| l == LINE),
        "{v}"
    );
    let out = unitwright(&sb, &["instance", "stop", "console@.service", "node-7"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The exit status and stderr of `unitwright --user ARGS`.
fn code_and_err(sb: &UserManager, args: &[&str]) -> (Option<i32>, String) {
    let out = unitwright(sb, args);
    (out.status.code(), stderr(&out))
}

#[test]
fn instance_verbs_exit_and_say_what_is_wrong_like_the_job_verbs() {
    let Some(sb) = sandbox() else { return };
    let code = |args: &[&str]| code_and_err(&sb, args).0;

    // A template that does not exist is a unit that does not exist: 5, as `start`/`stop`/
    // `restart` exit for one (`status`: 4); the error names the templates there are.
    assert_eq!(code(&["start", "nosuch@x"]), Some(5));
    let (c, err) = code_and_err(&sb, &["instance", "start", "nosuch@.service", "x"]);
    assert_eq!(c, Some(5), "{err}");
    assert!(
        err.starts_with("unitwright: template nosuch@.service not found")
            && err.contains("console@.service"),
        "{err}"
    );
    let (c, err) = code_and_err(
        &sb,
        &[
            "instance",
            "start",
            "consol@.service",
            "x",
            "--set",
            "DEVICE=a",
        ],
    );
    assert_eq!(c, Some(5), "{err}");
    assert!(err.contains("did you mean console@.service?"), "{err}");
    let out = unitwright(
        &sb,
        &["instance", "start", "nosuch@.service", "x", "--json"],
    );
    assert_eq!(out.status.code(), Some(5));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["not_found"].as_bool(),
            v["success"].as_bool(),
            v["id"].as_str()
        ),
        (Some(true), Some(false), Some("x")),
        "{v}"
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("nosuch@.service not found"),
        "{v}"
    );
    assert_eq!(code(&["stop", "nosuch@x"]), Some(5));
    assert_eq!(code(&["instance", "stop", "nosuch@.service", "x"]), Some(5));
    assert_eq!(code(&["restart", "nosuch@x"]), Some(5));
    assert_eq!(
        code(&["instance", "restart", "nosuch@.service", "x"]),
        Some(5)
    );
    assert_eq!(code(&["instance", "stop-all", "nosuch@.service"]), Some(5));
    assert_eq!(code(&["status", "nosuch@x"]), Some(4));
    assert_eq!(code(&["instance", "show", "nosuch@.service", "x"]), Some(4));
    // An empty listing is a success, as `list PATTERN`; a mistyped template is named.
    let (c, err) = code_and_err(&sb, &["instance", "list", "nosuch@.service"]);
    assert_eq!(c, Some(0));
    assert!(err.contains("template nosuch@.service not found"), "{err}");

    // Names that can never be valid are usage errors (2), like a malformed --set.
    let (c, err) = code_and_err(&sb, &["instance", "start", "console.service", "x"]);
    assert_eq!(c, Some(2), "{err}");
    assert!(
        err.contains("not a template unit name such as console@.service"),
        "{err}"
    );
    assert_eq!(
        code(&[
            "instance",
            "start",
            "console@.service",
            "x",
            "--set",
            "PATH=/x"
        ]),
        Some(2)
    );

    // A missing required setting is named, and so is a misspelt one.
    let (c, err) = code_and_err(
        &sb,
        &[
            "instance",
            "start",
            "console@.service",
            "x",
            "--set",
            "DEVCE=/dev/ttyS0",
        ],
    );
    assert_eq!(c, Some(1), "{err}");
    assert!(
        err.contains("missing required setting(s) DEVICE")
            && err.contains("DEVCE is not a setting the template reads: did you mean DEVICE?"),
        "{err}"
    );

    // Already running with these settings: nothing to do, as `start` of an active unit.
    let start = |device: &str| {
        let set = format!("DEVICE={device}");
        code_and_err(
            &sb,
            &["instance", "start", "console@.service", "x", "--set", &set],
        )
    };
    assert_eq!(start("/dev/ttyS0").0, Some(0));
    assert_eq!(start("/dev/ttyS0"), (Some(0), String::new()));
    assert_eq!(code(&["start", "console@x"]), Some(0));
    // With other settings: refused (they cannot change under it), saying how to replace.
    let (c, err) = start("/dev/ttyS1");
    assert_eq!(c, Some(1), "{err}");
    assert!(
        err.contains(
            "console@x.service is already active; stop it first, or use `instance start --replace`"
        ),
        "{err}"
    );
    // A stop of a stopped instance succeeds, as `stop` of a stopped unit.
    assert_eq!(
        code(&["instance", "stop", "console@.service", "x"]),
        Some(0)
    );
    assert_eq!(
        code(&["instance", "stop", "console@.service", "x"]),
        Some(0)
    );
    assert_eq!(code(&["stop", "console@x"]), Some(0));
    assert_eq!(sb.is_active("console@x.service"), "inactive");

    // --timeout running out is 124, not a failure, as for `start --timeout`.
    std::fs::write(
        sb.unit_dir.join("slow@.service"),
        format!(
            "[Service]\nType=oneshot\nExecStart=:{UNITWRIGHT} instance exec --settings-dir=%t/unitwright/instances %n -- /bin/sleep 60\n"
        ),
    )
    .unwrap();
    std::fs::write(
        sb.unit_dir.join("slow.service"),
        "[Service]\nType=oneshot\nExecStart=/bin/sleep 60\n",
    )
    .unwrap();
    assert_eq!(code(&["reload"]), Some(0));
    let (c, err) = code_and_err(
        &sb,
        &[
            "instance",
            "start",
            "--timeout",
            "0.5",
            "slow@.service",
            "s",
            "--set",
            "A=1",
        ],
    );
    assert_eq!(c, Some(124), "{err}");
    assert!(
        err.contains("slow@s.service is still starting after 0.5 s"),
        "{err}"
    );
    let (c, err) = code_and_err(&sb, &["start", "--timeout", "0.5", "slow"]);
    assert_eq!(c, Some(124), "{err}");
    // A bad --timeout is a usage error for both, from the same parser.
    assert_eq!(code(&["start", "--timeout", "-1", "slow"]), Some(2));
    assert_eq!(
        code(&["instance", "start", "--timeout", "-1", "slow@.service", "s"]),
        Some(2)
    );
    assert_eq!(code(&["instance", "stop", "slow@.service", "s"]), Some(0));
    assert_eq!(code(&["stop", "slow"]), Some(0));
}

#[test]
fn a_slow_instance_start_shows_the_progress_line_on_a_terminal_only() {
    let Some(sb) = sandbox() else { return };
    // In a pipe: no progress line (no escape sequence).
    let args = ["instance", "start", "pre@.service", "p", "--set", "A=1"];
    let out = unitwright(&sb, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains('\x1b'), "{:?}", stderr(&out));
    assert!(unitwright(&sb, &["instance", "stop", "pre@.service", "p"])
        .status
        .success());
    // Under a pseudo-terminal (script(1)): the line of the job verbs, naming the state and the
    // running command, erased at the end.
    let text = support::on_a_terminal(
        &format!("'{UNITWRIGHT}' --user {}", args.join(" ")),
        sb.client_env(),
    );
    assert!(text.contains("EXIT=0"), "{text:?}");
    assert!(
        text.contains("pre@p.service: activating (start-pre) /bin/sleep 3"),
        "{text:?}"
    );
    let before_exit = text.split("EXIT=").next().unwrap();
    assert!(before_exit.trim_end().ends_with("\x1b[J"), "{text:?}");
    assert_eq!(sb.is_active("pre@p.service"), "active");
}

#[test]
fn a_console_with_a_missing_image_quotes_podmans_error() {
    let Some(podman) = support::podman::Podman::setup("uw-inst-cli-", "localhost/uw-inst-cli:t")
    else {
        return;
    };
    std::fs::create_dir_all(podman.dir.path().join("quadlet")).unwrap();
    let quadlets = podman.dir.path().join("quadlet");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("units/console@.container"),
        quadlets.join("console@.container"),
    )
    .unwrap();
    let mut b = UserManager::builder()
        .journal(true)
        .generator(support::generator_binary(UNITWRIGHT))
        .env("QUADLET_UNIT_DIRS", &quadlets)
        .env("UNITWRIGHT", UNITWRIGHT);
    for (k, v) in podman.env() {
        b = b.env(k, v);
    }
    let Some(sb) = b.start() else { return };
    let sb = support::podman::WithContainers::new(sb, podman.env());
    let args = [
        "instance",
        "start",
        "console@.service",
        "node-9",
        "--set",
        "IMAGE=localhost/uw-inst-cli-missing:latest",
        "--set",
        "PORT=auto-port",
    ];
    let out = unitwright(&sb, &args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let unit = r"console@node\x2d9.service";
    assert!(
        err.starts_with(&format!(
            "unitwright: starting {unit} failed: result exit-code, ExecStart exited with status 125"
        )),
        "{err}"
    );
    // The shipped template pulls a missing image; here there is no registry, and podman's
    // own last word on it is quoted.
    let podmans_error = "Error: initializing source docker://localhost/uw-inst-cli-missing:latest";
    assert!(
        err.lines()
            .any(|l| l.starts_with("  ") && l.contains(podmans_error)),
        "{err}"
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = unitwright(&sb, &json_args);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["exec_main_status"].as_i64(), v["id"].as_str()),
        (Some(125), Some("node-9")),
        "{v}"
    );
    assert!(
        v["output"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with(podmans_error)),
        "{v}"
    );
}
