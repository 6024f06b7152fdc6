#![allow(clippy::unwrap_used)]
//! The instance library (`unitwright::instance::Instances`) on a real *system* manager
//! (systemd as PID 1 of private namespaces, see `tests/support/mod.rs`), where units find their
//! settings under `/run/unitwright/instances` (`%t` of the system manager). The test reaches
//! that `/run` as `SystemManager::run_dir()`; the CLI, run with `outside_command`, finds it at
//! `/run` as on a booted host.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use support::SystemManager;
use unitwright::bus::{Manager, Options, Scope};
use unitwright::instance::{Error, Instances, Store};

const UNITWRIGHT: &str = env!("CARGO_BIN_EXE_unitwright");

/// The sandbox's `/run`.
fn private_run(sb: &SystemManager) -> PathBuf {
    sb.run_dir().to_owned()
}

#[tokio::test]
async fn instances_of_a_system_template_get_their_own_settings() {
    // A oneshot that records what the wrapper gave it, in the sandbox's /run (the file name is
    // in single quotes: the shell must not eat the backslashes of %i).
    let unit = format!(
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=:{UNITWRIGHT} instance exec --settings-dir=%t/unitwright/instances --require=MSG %n -- /bin/sh -c \"printf '%%s|%%s' \\\"$1\\\" \\\"$UNITWRIGHT_ID\\\" > '/run/out-%i'\" sh ${{MSG}}\n"
    );
    let Some(sb) = SystemManager::start(&[("rec@.service", &unit)]) else {
        return;
    };
    let run = private_run(&sb);
    let options = Options {
        address: Some(sb.bus_address()),
        ..Options::default()
    };
    let manager = Manager::connect_with(Scope::System, &options)
        .await
        .unwrap();
    let instances = Instances::new(manager, Store::new(run.join("unitwright/instances")));
    for (id, msg) in [
        ("a-b", "for a-b"),
        ("ax2db", "for ax2db"),
        ("x y/z", "  spaced  "),
        ("ünï/🚀", "$HOME ${MSG} 'q'"),
    ] {
        let settings = BTreeMap::from([("MSG".to_owned(), msg.to_owned())]);
        let started = instances.start("rec@.service", id, settings).await.unwrap();
        assert_eq!(started.active_state, "active");
        let escaped = started
            .unit
            .trim_start_matches("rec@")
            .trim_end_matches(".service");
        let out = std::fs::read_to_string(run.join(format!("out-{escaped}"))).unwrap();
        assert_eq!(out, format!("{msg}|{id}"));
    }
    // A running instance keeps its settings: a second start is refused.
    let again = BTreeMap::from([("MSG".to_owned(), "changed".to_owned())]);
    let err = instances
        .start("rec@.service", "a-b", again)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyActive { .. }), "{err}");
    let kept = instances
        .store()
        .read("rec@a\\x2db.service")
        .unwrap()
        .unwrap();
    assert_eq!(kept.settings["MSG"], "for a-b");

    let listed = instances.list("rec@.service").await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|i| i.id.as_str()).collect();
    // Sorted by unit name: `rec@\xc3\xbc...` comes first.
    assert_eq!(ids, ["ünï/🚀", "a-b", "ax2db", "x y/z"]);
    assert!(listed.iter().all(|i| i.keys == ["MSG"]));

    // A required setting missing: refused before the start, naming the key.
    let err = instances
        .start("rec@.service", "none", BTreeMap::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MissingSettings { keys, .. } if keys == &["MSG"]),
        "{err}"
    );
    assert!(!run.join("unitwright/instances/rec@none.service").exists());

    let stopped = instances.stop_all("rec@.service").await.unwrap();
    assert_eq!(stopped.len(), 4);
    assert!(stopped
        .iter()
        .all(|s| s.failure().is_none() && s.removed_settings));
    assert!(instances.list("rec@.service").await.unwrap().is_empty());
}

/// `unitwright --system instance start/stop` run by the testkit's `outside_command`, which
/// shares the manager's `/run`: the instance's unit gets the settings, and stopping it removes
/// them; the host's `/run/unitwright` is never written.
#[test]
fn the_cli_run_outside_shares_the_system_managers_run() {
    let unit = format!(
        "[Service]\n\
         ExecStartPre=:{UNITWRIGHT} instance exec %n -- /bin/sh -c 'printf %%s \"$GREETING\" > /run/greeting-%i'\n\
         ExecStart=:{UNITWRIGHT} instance exec --require=GREETING %n -- /bin/sleep 600\n"
    );
    let Some(sb) = SystemManager::start(&[("console@.service", &unit)]) else {
        return;
    };
    let uw = |args: &[&str]| {
        let out = sb
            .outside_command(UNITWRIGHT)
            .arg("--system")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    uw(&[
        "instance",
        "start",
        "console@.service",
        "x",
        "--set",
        "GREETING=hi there",
    ]);
    assert_eq!(sb.is_active("console@x.service"), "active");
    let run = sb.run_dir();
    assert_eq!(
        std::fs::read_to_string(run.join("greeting-x")).unwrap(),
        "hi there"
    );
    let settings = run.join("unitwright/instances/console@x.service");
    assert!(settings.is_file());
    assert!(!std::path::Path::new("/run/unitwright/instances/console@x.service").exists());
    uw(&["instance", "stop", "console@.service", "x"]);
    assert!(!settings.exists());
    assert_eq!(sb.is_active("console@x.service"), "inactive");
}
