//! The D-Bus client against a real `systemd --user` on a private session bus
//! (see `tests/support/mod.rs`).

#![allow(clippy::unwrap_used)]

mod support;

use support::UserManager;
use unitwright::bus::{Error, JobResult, Manager, Options, Scope};

const SLEEPER: &str = "[Service]\nExecStart=/bin/sleep 600\n";

async fn connect(sb: &UserManager) -> Manager {
    connect_with(sb, Options::default()).await
}

async fn connect_with(sb: &UserManager, mut options: Options) -> Manager {
    options.address = Some(sb.bus_address());
    Manager::connect_with(Scope::User, &options)
        .await
        .expect("connecting to the sandbox's manager")
}

#[tokio::test]
async fn start_and_stop_change_the_units_state() {
    let Some(sb) = UserManager::builder()
        .unit("sleeper.service", SLEEPER)
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    let started = m.start("sleeper.service").await.unwrap();
    assert_eq!(started.result, Some(JobResult::Done));
    assert!(
        started.is_success() && !started.condition_failed(),
        "{started}"
    );
    assert_eq!(sb.is_active("sleeper.service"), "active");
    let stopped = m.stop("sleeper.service").await.unwrap();
    assert_eq!(stopped.result, Some(JobResult::Done));
    assert_eq!(sb.is_active("sleeper.service"), "inactive");
}

#[tokio::test]
async fn a_failing_service_reports_its_result_and_exit_status() {
    let Some(sb) = UserManager::builder()
        .unit(
            "bad.service",
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\n",
        )
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    let outcome = m.start("bad.service").await.unwrap();
    assert_eq!(outcome.result, Some(JobResult::Failed));
    assert!(!outcome.is_success());
    let why = outcome.failure().unwrap();
    assert_eq!(why, "result exit-code, ExecStart exited with status 3");
    assert_eq!(
        outcome.to_string(),
        "start of bad.service failed: result exit-code, ExecStart exited with status 3"
    );
    assert_eq!(sb.is_active("bad.service"), "failed");
}

#[tokio::test]
async fn a_missing_unit_is_an_error_naming_it() {
    let Some(sb) = UserManager::start() else {
        return;
    };
    let m = connect(&sb).await;
    match m.start("does-not-exist.service").await {
        Err(Error::NoSuchUnit { unit, .. }) => assert_eq!(unit, "does-not-exist.service"),
        other => panic!("expected NoSuchUnit, got {other:?}"),
    }
    match m.unit_status("does-not-exist.service").await {
        Err(e @ Error::NoSuchUnit { .. }) => {
            assert!(e.to_string().contains("does-not-exist.service"), "{e}");
        }
        other => panic!("expected NoSuchUnit, got {other:?}"),
    }
}

#[tokio::test]
async fn a_start_skipped_by_a_condition_is_done_but_reported_as_not_started() {
    let Some(sb) = UserManager::builder()
        .unit(
            "cond.service",
            "[Unit]\nConditionPathExists=/nonexistent/unitwright\n[Service]\nExecStart=/bin/sleep 600\n",
        )
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    let outcome = m.start("cond.service").await.unwrap();
    assert_eq!(outcome.result, Some(JobResult::Done));
    assert!(outcome.is_success());
    assert!(outcome.condition_failed(), "{outcome:?}");
    assert!(outcome.to_string().contains("Condition"), "{outcome}");
}
