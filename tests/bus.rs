//! The D-Bus client against a real `systemd --user` on a private session bus
//! (see `tests/support/mod.rs`).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use support::UserManager;
use unitwright::bus::{
    AfterStart, Error, JobOptions, JobResult, JobVerb, KillWhom, Manager, Options, Scope,
    UnitEvent, UnitWatch,
};

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
        .unit("sleeper.service", support::SLEEP_SERVICE)
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

const SLOW: &str = "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 1\n";

#[tokio::test]
async fn every_job_verb_acts_like_systemctl() {
    let Some(sb) = UserManager::builder()
        .unit(
            "hello@.service",
            "[Unit]\nDescription=Hello %i\n[Service]\nExecStart=/bin/sleep 600\n",
        )
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    // try-restart leaves an inactive unit alone.
    let o = m.try_restart("hello@a.service").await.unwrap();
    assert!(o.is_success(), "{o}");
    assert_eq!(sb.is_active("hello@a.service"), "inactive");
    // restart starts an inactive unit; reload-or-restart keeps it running.
    assert!(m.restart("hello@a.service").await.unwrap().is_success());
    assert_eq!(sb.is_active("hello@a.service"), "active");
    let pid_before = m
        .unit_status("hello@a.service")
        .await
        .unwrap()
        .service
        .unwrap()
        .main_pid;
    assert!(m
        .reload_or_restart("hello@a.service")
        .await
        .unwrap()
        .is_success());
    let after = m.unit_status("hello@a.service").await.unwrap();
    assert_eq!(after.active_state, "active");
    assert_ne!(
        after.service.unwrap().main_pid,
        pid_before,
        "no ExecReload=, so it restarted"
    );
    // try-restart restarts a running unit.
    assert!(m.try_restart("hello@a.service").await.unwrap().is_success());
    assert_eq!(sb.is_active("hello@a.service"), "active");
    // kill with a signal makes it fail with result signal; reset-failed clears that.
    m.kill("hello@a.service", KillWhom::Main, 9).await.unwrap();
    let failed = wait_for_state(&m, "hello@a.service", "failed").await;
    let service = failed.service.unwrap();
    assert_eq!(service.result, "signal");
    assert_eq!(
        service.main_process_exit().unwrap(),
        "main process killed by signal KILL"
    );
    m.reset_failed(Some("hello@a.service")).await.unwrap();
    assert_eq!(sb.is_active("hello@a.service"), "inactive");
    // --no-block returns a queued job without a result.
    let queued = m
        .job(
            JobVerb::Start,
            "hello@b.service",
            JobOptions {
                wait: false,
                ..JobOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(queued.is_queued() && queued.job.starts_with("/org/freedesktop/systemd1/job/"));
    wait_for_state(&m, "hello@b.service", "active").await;
    // list with a pattern sees exactly the running instance.
    let listed = m.list_units(&["hello@*"]).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["hello@b.service"]);
    assert_eq!(listed[0].description, "Hello b");
    let stopped = m.stop("hello@b.service").await.unwrap();
    assert!(stopped.is_success());
    assert_eq!(sb.is_active("hello@b.service"), "inactive");
}

/// Polls the unit's state over D-Bus until it is `want` (units reach some states on their own).
async fn wait_for_state(m: &Manager, unit: &str, want: &str) -> unitwright::bus::UnitState {
    for _ in 0..500 {
        let s = m.unit_status(unit).await.unwrap();
        if s.active_state == want {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{unit} never became {want}");
}

#[tokio::test]
async fn enable_and_disable_create_and_remove_the_install_symlinks_and_reload() {
    let Some(sb) = UserManager::builder()
        .unit("boot.service", support::INSTALLABLE_SERVICE)
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    let link = sb
        .root
        .path()
        .join("config/systemd/user/default.target.wants/boot.service");
    let changes = m.enable(&["boot.service"]).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].kind, "symlink");
    assert!(link.exists());
    assert_eq!(
        m.unit_status("boot.service").await.unwrap().unit_file_state,
        "enabled"
    );
    let changes = m.disable(&["boot.service"]).await.unwrap();
    assert_eq!(changes[0].kind, "unlink");
    assert!(!link.exists());
    assert_eq!(
        m.unit_status("boot.service").await.unwrap().unit_file_state,
        "disabled"
    );
}

#[tokio::test]
async fn a_hundred_concurrent_starts_each_get_their_own_result() {
    // Even instances succeed, odd ones exit with their own number as status.
    let Some(sb) = UserManager::builder()
        .unit(
            "hello@.service",
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'test $((%i %% 2)) -eq 0 || exit %i'\n",
        )
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    let units: Vec<String> = (1..=100).map(|i| format!("hello@{i}.service")).collect();
    let results = m.start_many(&units).await;
    assert_eq!(results.len(), 100);
    for (i, (unit, result)) in (1..=100).zip(units.iter().zip(&results)) {
        let outcome = result.as_ref().unwrap_or_else(|e| panic!("{unit}: {e}"));
        assert_eq!(&outcome.unit, unit);
        if i % 2 == 0 {
            assert_eq!(outcome.result, Some(JobResult::Done), "{outcome}");
        } else {
            assert_eq!(outcome.result, Some(JobResult::Failed), "{outcome}");
            assert_eq!(
                outcome.failure().unwrap(),
                format!("result exit-code, ExecStart exited with status {i}")
            );
        }
    }
    let active = m
        .list_units_filtered(&["active"], &["hello@*"])
        .await
        .unwrap();
    assert_eq!(active.len(), 50);
    let failed = m
        .list_units_filtered(&["failed"], &["hello@*"])
        .await
        .unwrap();
    assert_eq!(failed.len(), 50);
}

#[tokio::test]
async fn concurrent_starts_of_one_unit_share_the_job_and_both_get_the_result() {
    let Some(sb) = UserManager::builder().unit("slow.service", SLOW).start() else {
        return;
    };
    let m = connect(&sb).await;
    let (a, b) = tokio::join!(m.start("slow.service"), m.start("slow.service"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.job, b.job,
        "systemd merged the two start requests into one job"
    );
    assert_eq!(a.result, Some(JobResult::Done));
    assert_eq!(b.result, Some(JobResult::Done));
}

#[tokio::test]
async fn a_daemon_reload_while_jobs_run_does_not_lose_their_results() {
    let Some(sb) = UserManager::builder().unit("slow@.service", SLOW).start() else {
        return;
    };
    let m = connect(&sb).await;
    let units: Vec<String> = (1..=5).map(|i| format!("slow@{i}.service")).collect();
    let reload = async {
        // Let the jobs get queued first, then reload twice while they run.
        tokio::time::sleep(Duration::from_millis(100)).await;
        m.reload().await.unwrap();
        m.reload().await.unwrap();
    };
    let (results, ()) = tokio::join!(m.start_many(&units), reload);
    for r in results {
        let o = r.unwrap();
        assert_eq!(o.result, Some(JobResult::Done), "{o}");
    }
    for u in &units {
        assert_eq!(sb.is_active(u), "active");
    }
}

#[tokio::test]
async fn the_manager_dying_mid_job_fails_the_waiter_instead_of_hanging() {
    let Some(sb) = UserManager::builder()
        .unit("forever.service", support::ENDLESS_ONESHOT)
        .start()
    else {
        return;
    };
    let mut options = Options::default();
    options.timeouts.manager_return = Duration::from_secs(1);
    options.timeouts.unit = Some(Duration::from_secs(60));
    let m = connect_with(&sb, options).await;
    let start = tokio::spawn({
        let m = m.clone();
        async move { m.start("forever.service").await }
    });
    wait_for_state(&m, "forever.service", "activating").await;
    sb.kill_manager();
    let err = start.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::ManagerGone { .. }), "{err:?}");
    assert!(
        err.to_string().contains("start of forever.service failed"),
        "{err}"
    );
}

#[tokio::test]
async fn a_lost_bus_connection_fails_every_waiter_at_once() {
    let Some(mut sb) = UserManager::builder()
        .unit("forever@.service", support::ENDLESS_ONESHOT)
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    let units: Vec<String> = (1..=3).map(|i| format!("forever@{i}.service")).collect();
    let starts = tokio::spawn({
        let m = m.clone();
        async move { m.start_many(&units).await }
    });
    wait_for_state(&m, "forever@1.service", "activating").await;
    sb.kill_everything();
    for r in starts.await.unwrap() {
        let err = r.unwrap_err();
        assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
    }
    // Later calls fail too, rather than hang.
    let err = m.start("forever@4.service").await.unwrap_err();
    assert!(!matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn a_watch_ends_with_an_error_when_the_manager_dies() {
    let Some(sb) = UserManager::start() else {
        return;
    };
    let mut options = Options::default();
    options.timeouts.manager_return = Duration::from_secs(2);
    let m = connect_with(&sb, options).await;
    let mut changes = m.watch(&["*"]).await.unwrap();
    sb.kill_manager();
    // The bus stays up; only the manager's name goes. The stream must end, not hang.
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        while changes.next().await.is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the watch did not notice the manager's death"
    );
    let err = changes.error().expect("a reason");
    assert!(matches!(err, Error::ManagerGone { .. }), "{err:?}");
}

#[tokio::test]
async fn a_timed_out_wait_names_the_job_and_the_job_can_be_waited_for_again() {
    let Some(sb) = UserManager::builder()
        .unit(
            "pre.service",
            "[Service]\nExecStartPre=/bin/sleep 3\nExecStart=/bin/sleep 600\n",
        )
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    let options = JobOptions {
        timeout: Some(Duration::from_millis(500)),
        ..JobOptions::default()
    };
    let err = m
        .job(JobVerb::Start, "pre.service", options)
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let job = err.job().expect("the job exists and is named").to_owned();
    assert!(
        err.to_string().contains("timed out") && !err.to_string().contains("failed"),
        "{err}"
    );
    // The unit's own limit (TimeoutStartSec= of a user service defaults to 90 s).
    assert_eq!(
        m.start_limit("pre.service").await.unwrap(),
        Some(Duration::from_secs(90))
    );
    // Another connection (as `unitwright wait` would) gets the job's result.
    let other = connect(&sb).await;
    let result = other.wait_job(&job, None).await.unwrap();
    assert_eq!(result, Some(JobResult::Done));
    assert_eq!(sb.is_active("pre.service"), "active");
    // On a connection that did not see it end, a job that no longer exists is said to be
    // gone, not waited for.
    let third = connect(&sb).await;
    assert_eq!(third.wait_job(&job, None).await.unwrap(), None);
}

#[tokio::test]
async fn watch_reports_state_changes_of_matching_units() {
    let Some(sb) = UserManager::builder()
        .unit("watched.service", support::SLEEP_SERVICE)
        .unit("other.service", support::SLEEP_SERVICE)
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    let mut changes = m.watch(&["watched.*"]).await.unwrap();
    m.start("other.service").await.unwrap();
    m.start("watched.service").await.unwrap();
    next_state(&mut changes, "active running").await;
    m.stop("watched.service").await.unwrap();
    next_state(&mut changes, "inactive dead").await;
}

/// Reads changes of `watched.service` until its state is `want` (systemd coalesces changes,
/// so intermediate states may or may not show up).
async fn next_state(changes: &mut UnitWatch, want: &str) {
    let mut seen = Vec::new();
    loop {
        let c = tokio::time::timeout(Duration::from_secs(10), changes.next())
            .await
            .unwrap_or_else(|_| panic!("no {want:?} within 10 s; saw {seen:?}"))
            .expect("the watch stream ended");
        assert_eq!(c.unit, "watched.service", "{c:?}");
        if c.event == UnitEvent::Changed {
            let state = format!("{} {}", c.active_state.unwrap(), c.sub_state.unwrap());
            if state == want {
                return;
            }
            seen.push(state);
        }
    }
}

#[tokio::test]
async fn job_results_arrive_the_same_with_an_up_front_subscribe() {
    let Some(sb) = UserManager::builder().unit("slow@.service", SLOW).start() else {
        return;
    };
    let options = Options {
        subscribe: true,
        ..Options::default()
    };
    let m = connect_with(&sb, options).await;
    let units: Vec<String> = (1..=10).map(|i| format!("slow@{i}.service")).collect();
    for r in m.start_many(&units).await {
        assert_eq!(r.unwrap().result, Some(JobResult::Done));
    }
    // watch() subscribes again; systemd's AlreadySubscribed is not an error.
    m.watch(&["slow@*"]).await.unwrap();
}

#[tokio::test]
async fn a_oneshot_that_ran_and_was_unloaded_is_not_mistaken_for_a_condition_skip() {
    // Inactive units are garbage-collected right after their job; reading them loads them
    // afresh, with no condition result.
    let Some(sb) = UserManager::builder()
        .unit(
            "quick@.service",
            "[Service]\nType=oneshot\nExecStart=/bin/true\n",
        )
        .unit(
            "cond@.service",
            "[Unit]\nConditionPathExists=/nonexistent/unitwright\n[Service]\nExecStart=/bin/true\n",
        )
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    let quick: Vec<String> = (1..=30).map(|i| format!("quick@{i}.service")).collect();
    for r in m.start_many(&quick).await {
        let o = r.unwrap();
        assert!(o.is_success() && !o.condition_failed(), "{o} {:?}", o.state);
        assert_eq!(
            o.after_start(),
            Some(AfterStart::Exited),
            "{o} {:?}",
            o.state
        );
    }
    let cond: Vec<String> = (1..=30).map(|i| format!("cond@{i}.service")).collect();
    for r in m.start_many(&cond).await {
        let o = r.unwrap();
        assert!(o.is_success() && o.condition_failed(), "{o} {:?}", o.state);
        assert_eq!(
            o.after_start(),
            Some(AfterStart::Skipped),
            "{o} {:?}",
            o.state
        );
    }
    // One at a time, each start pins its unit.
    let o = m.start("quick@single.service").await.unwrap();
    assert_eq!(
        o.after_start(),
        Some(AfterStart::Exited),
        "{o} {:?}",
        o.state
    );
    let o = m.start("cond@single.service").await.unwrap();
    assert_eq!(
        o.after_start(),
        Some(AfterStart::Skipped),
        "{o} {:?}",
        o.state
    );
}

#[tokio::test]
async fn a_condition_added_to_one_instance_is_never_reported_as_a_clean_exit() {
    // Instances of a template without conditions are started without a pin (see
    // `Manager::jobs`); an instance that gets a condition from its own drop-in and is skipped
    // must then be reported as "skipped or exited", never as a unit that ran.
    let Some(sb) = UserManager::builder()
        .unit(
            "quick@.service",
            "[Service]\nType=oneshot\nExecStart=/bin/true\n",
        )
        .unit("up@.target", "[Unit]\nDescription=up %i\n")
        .start()
    else {
        return;
    };
    let dropin = sb.unit_dir.join("quick@odd.service.d");
    std::fs::create_dir_all(&dropin).unwrap();
    std::fs::write(
        dropin.join("cond.conf"),
        "[Unit]\nConditionPathExists=/nonexistent/unitwright\n",
    )
    .unwrap();
    let m = connect(&sb).await;
    m.reload().await.unwrap();
    let mut units: Vec<String> = (1..=10).map(|i| format!("quick@{i}.service")).collect();
    units.push("quick@odd.service".to_owned());
    units.extend((1..=10).map(|i| format!("up@{i}.target")));
    let outcomes: Vec<_> = m
        .start_many(&units)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for (unit, o) in units.iter().zip(&outcomes) {
        assert_eq!(&o.unit, unit);
        assert!(o.is_success(), "{o}");
        let expected = match unit.as_str() {
            "quick@odd.service" => AfterStart::SkippedOrExited,
            u if u.starts_with("quick@") => AfterStart::Exited,
            _ => AfterStart::Active,
        };
        assert_eq!(o.after_start(), Some(expected), "{o} {:?}", o.state);
    }
    let odd = &outcomes[10];
    assert!(
        !odd.condition_failed(),
        "never claims a skip it did not see"
    );
    assert!(
        odd.to_string()
            .contains("either a Condition*= was not met or it already exited"),
        "{odd}"
    );
    // Started alone, the same instance is pinned and its skip is certain.
    let o = m.start("quick@odd.service").await.unwrap();
    assert_eq!(
        o.after_start(),
        Some(AfterStart::Skipped),
        "{o} {:?}",
        o.state
    );
    assert_eq!(sb.is_active("up@3.target"), "active");
}

#[tokio::test]
async fn the_sandbox_runs_user_generators_and_reload_reruns_them() {
    let dir = tempfile::tempdir().unwrap();
    let generator = dir.path().join("test-generator");
    let count = dir.path().join("runs");
    std::fs::write(
        &generator,
        format!(
            "#!/bin/sh\necho run >> {}\nprintf '[Service]\\nExecStart=/bin/sleep 600\\n' > \"$1/generated.service\"\n",
            count.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(&generator)
        .status()
        .unwrap();
    let Some(sb) = UserManager::builder().generator(&generator).start() else {
        return;
    };
    let m = connect(&sb).await;
    assert!(m.start("generated.service").await.unwrap().is_success());
    m.reload().await.unwrap();
    let runs = std::fs::read_to_string(&count).unwrap();
    assert_eq!(
        runs.lines().count(),
        2,
        "once at start, once at daemon-reload"
    );
}

#[tokio::test]
async fn a_daemon_reexec_mid_job_still_delivers_the_result() {
    // The manager drops its bus name while it re-executes and takes it back under a new unique
    // name; the waiter must neither fail nor hang.
    let Some(sb) = UserManager::builder()
        .unit(
            "two@.service",
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 2\n",
        )
        .start()
    else {
        return;
    };
    let m = connect(&sb).await;
    let start = tokio::spawn({
        let m = m.clone();
        async move { m.start("two@1.service").await }
    });
    wait_for_state(&m, "two@1.service", "activating").await;
    let owner = || async {
        let dbus = zbus::fdo::DBusProxy::new(m.connection()).await.unwrap();
        let name = zbus::names::BusName::try_from("org.freedesktop.systemd1").unwrap();
        dbus.get_name_owner(name).await.map(|o| o.to_string())
    };
    let before = owner().await.unwrap();
    // Reexecute() never replies; the call ends with an error when the manager goes away.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        m.connection().call_method(
            Some("org.freedesktop.systemd1"),
            "/org/freedesktop/systemd1",
            Some("org.freedesktop.systemd1.Manager"),
            "Reexecute",
            &(),
        ),
    )
    .await;
    let outcome = start.await.unwrap().unwrap();
    assert_eq!(outcome.result, Some(JobResult::Done), "{outcome}");
    assert_eq!(sb.is_active("two@1.service"), "active");
    assert_ne!(
        owner().await.unwrap(),
        before,
        "the manager really re-executed"
    );
}
