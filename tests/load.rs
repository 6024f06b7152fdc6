//! Load test of the job verbs: one `unitwright --user start` (then `stop`) of thousands of
//! template instances against a real `systemd --user` (tests/support), every result checked
//! against the manager's own state as `systemctl --user list-units` reports it.
//!
//! Slow (minutes), so not in the default run:
//!
//!     CI=true cargo test --release --test load -- --ignored --nocapture
//!
//! Sizes: `UW_LOAD_SERVICES` (default 5000) services `load@N.service` (`sleep`), and
//! `UW_LOAD_TARGETS` (default 10000) targets `load@N.target`, each in one call. Prints the
//! wall time of each call. The user manager (on its session bus) runs by default;
//! `UW_LOAD_SYSTEM=1` runs the same against systemd as PID 1 on a system bus with
//! dbus-daemon's stock system limits.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Instant;

use support::{SystemManager, UserManager};

/// The manager under test: a user manager or a system manager in its namespaces.
enum Sandbox {
    User(UserManager),
    System(SystemManager),
}

impl Sandbox {
    fn systemctl(&self, args: &[&str]) -> std::process::Output {
        match self {
            Sandbox::User(u) => u.systemctl(args),
            Sandbox::System(s) => s.systemctl(args),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_unitwright"));
        match self {
            Sandbox::User(u) => {
                cmd.envs(u.client_env()).arg("--user");
            }
            Sandbox::System(s) => {
                cmd.env("DBUS_SYSTEM_BUS_ADDRESS", s.bus_address())
                    .arg("--system");
            }
        }
        cmd
    }
}

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `ActiveState` of every loaded `load@*` unit, from systemctl inside the sandbox.
fn manager_states(sb: &Sandbox) -> HashMap<String, String> {
    let out = sb.systemctl(&[
        "list-units",
        "--all",
        "--plain",
        "--no-legend",
        "--no-pager",
        "load@*",
    ]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (unit, _load, active) = (w.next()?, w.next()?, w.next()?);
            Some((unit.to_owned(), active.to_owned()))
        })
        .collect()
}

/// Runs `unitwright --user --json VERB UNITS...` (units from a file via xargs would split the
/// call; the argument list is well under ARG_MAX), checks that every unit has exactly one
/// result, a successful one, and returns the seconds it took.
fn one_call(sb: &Sandbox, verb: &str, units: &[String]) -> f64 {
    let started = Instant::now();
    let out = sb
        .command()
        .args([verb, "--json"])
        .args(units)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut seen: HashMap<String, serde_json::Value> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let unit = v["unit"].as_str().unwrap().to_owned();
        assert!(
            seen.insert(unit.clone(), v).is_none(),
            "two results for {unit}"
        );
    }
    let bad: Vec<&serde_json::Value> = seen
        .values()
        .filter(|v| v["success"] != true || v["result"] != "done" || v["job"].is_null())
        .collect();
    assert!(
        bad.is_empty() && out.status.success(),
        "{verb} of {}: {} results not done, exit {:?}; first: {:?}\nstderr (head): {}",
        units.len(),
        bad.len(),
        out.status.code(),
        bad.first(),
        stderr.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(seen.len(), units.len(), "one result per unit");
    secs
}

fn round(sb: &Sandbox, kind: &str, n: usize) {
    let units: Vec<String> = (0..n).map(|i| format!("load@{i}.{kind}")).collect();
    let start = one_call(sb, "start", &units);
    let states = manager_states(sb);
    let not_active: Vec<&String> = units
        .iter()
        .filter(|u| states.get(*u).map(String::as_str) != Some("active"))
        .collect();
    assert!(
        not_active.is_empty(),
        "{} of {n} reported started are not active in the manager, e.g. {:?}",
        not_active.len(),
        not_active.first()
    );
    let stop = one_call(sb, "stop", &units);
    let states = manager_states(sb);
    let still: Vec<(&String, &String)> = states
        .iter()
        .filter(|(u, s)| u.ends_with(kind) && s.as_str() != "inactive")
        .collect();
    assert!(
        still.is_empty(),
        "{} of {n} reported stopped are not inactive in the manager, e.g. {:?}",
        still.len(),
        still.first()
    );
    println!("{n} {kind}s: start in one call {start:.1} s, stop {stop:.1} s; every result equals the manager's state");
}

#[test]
#[ignore = "slow load test; see the module documentation for the command"]
fn thousands_of_units_in_one_call_each_get_their_real_result() {
    const SERVICE: &str = "[Unit]\nDescription=load %i\n[Service]\nExecStart=/bin/sleep infinity\n";
    const TARGET: &str = "[Unit]\nDescription=load %i\n";
    let sb = if std::env::var_os("UW_LOAD_SYSTEM").is_some() {
        let Some(sb) =
            SystemManager::start(&[("load@.service", SERVICE), ("load@.target", TARGET)])
        else {
            return;
        };
        Sandbox::System(sb)
    } else {
        let Some(sb) = UserManager::builder()
            .unit("load@.service", SERVICE)
            .unit("load@.target", TARGET)
            .start()
        else {
            return;
        };
        Sandbox::User(sb)
    };
    let services = size("UW_LOAD_SERVICES", 5000);
    let targets = size("UW_LOAD_TARGETS", 10000);
    if services > 0 {
        round(&sb, "service", services);
    }
    if targets > 0 {
        round(&sb, "target", targets);
    }
}
