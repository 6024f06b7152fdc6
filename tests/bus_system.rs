//! The `--system` path against a real system manager: systemd as PID 1 of private PID, mount
//! and cgroup namespaces, with only the test's units (see `tests/support/mod.rs`).
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use support::SystemManager;
use unitwright::bus::{JobResult, Manager, Options, Scope};

const UNITS: &[(&str, &str)] = &[
    ("sleeper.service", "[Service]\nExecStart=/bin/sleep 600\n"),
    (
        "bad.service",
        "[Service]\nType=oneshot\nExecStart=/bin/false\n",
    ),
];

async fn connect(sb: &SystemManager) -> Manager {
    let options = Options {
        address: Some(sb.bus_address()),
        ..Options::default()
    };
    Manager::connect_with(Scope::System, &options)
        .await
        .unwrap()
}

fn is_active(sb: &SystemManager, unit: &str) -> String {
    let out = sb.systemctl(&["is-active", unit]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn the_library_starts_and_stops_units_of_a_system_manager() {
    let Some(sb) = SystemManager::start(UNITS) else {
        return;
    };
    let m = connect(&sb).await;
    let o = m.start("sleeper.service").await.unwrap();
    assert_eq!(o.result, Some(JobResult::Done), "{o}");
    assert_eq!(is_active(&sb, "sleeper.service"), "active");
    let o = m.start("bad.service").await.unwrap();
    assert_eq!(
        o.to_string(),
        "start of bad.service failed: result exit-code, ExecStart exited with status 1"
    );
    assert!(m.stop("sleeper.service").await.unwrap().is_success());
    assert_eq!(is_active(&sb, "sleeper.service"), "inactive");
}

#[test]
fn the_cli_uses_the_system_bus_from_dbus_system_bus_address() {
    let Some(sb) = SystemManager::start(UNITS) else {
        return;
    };
    let unitwright = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_unitwright"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", sb.bus_address())
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .args(args)
            .output()
            .unwrap()
    };
    let out = unitwright(&["--system", "start", "sleeper"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(is_active(&sb, "sleeper.service"), "active");
    // --system is the default.
    let out = unitwright(&["stop", "sleeper"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(is_active(&sb, "sleeper.service"), "inactive");
}

#[tokio::test]
async fn many_concurrent_starts_stay_within_the_system_buss_pending_reply_limit() {
    // dbus-daemon's system bus allows 128 pending method calls per connection by default.
    let Some(sb) =
        SystemManager::start(&[("many@.service", "[Service]\nExecStart=/bin/sleep 600\n")])
    else {
        return;
    };
    let m = connect(&sb).await;
    let units: Vec<String> = (1..=200).map(|i| format!("many@{i}.service")).collect();
    for (unit, r) in units.iter().zip(m.start_many(&units).await) {
        let o = r.unwrap_or_else(|e| panic!("{unit}: {e}"));
        assert_eq!(o.result, Some(JobResult::Done), "{o}");
    }
}
