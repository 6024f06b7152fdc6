#![allow(clippy::unwrap_used)]
//! The instance library (`unitwright::instance::Instances`) on a real *system* manager
//! (systemd as PID 1 of private namespaces, see `tests/support/mod.rs`), where units find their
//! settings under `/run/unitwright/instances` (`%t` of the system manager). The test reaches
//! that private `/run` through `/proc/<pid>/root`.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use support::SystemManager;
use unitwright::bus::{Manager, Options, Scope};
use unitwright::instance::{Error, Instances, Store};

const UNITWRIGHT: &str = env!("CARGO_BIN_EXE_unitwright");

/// `/proc/<pid>/root/run` of the sandbox, from its bus address.
fn private_run(sb: &SystemManager) -> PathBuf {
    let address = sb.bus_address();
    let path = address.strip_prefix("unix:path=").unwrap();
    PathBuf::from(path.strip_suffix("/dbus/system_bus_socket").unwrap())
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
