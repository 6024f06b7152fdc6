//! Jobs: what was asked ([`JobVerb`], [`JobMode`]), how it ended ([`JobResult`],
//! [`JobOutcome`]), and the [`Tracker`] that hands each `JobRemoved` signal to every caller
//! waiting for that job.
//!
//! The result strings are systemd's `job_result_table`; success is decided like systemctl's
//! `check_wait_response` (`done` and `skipped` succeed), and a failed service is explained from
//! its `Result`, `ExecMainCode` and `ExecMainStatus` properties, as systemctl does.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;
use zbus::zvariant::OwnedObjectPath;

use super::unit::{signal_name, UnitState};

/// A job-creating operation on one unit, named like the systemctl verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobVerb {
    /// `StartUnit`.
    Start,
    /// `StopUnit`.
    Stop,
    /// `RestartUnit`.
    Restart,
    /// `TryRestartUnit`: restart if running, else nothing.
    TryRestart,
    /// `ReloadOrRestartUnit`.
    ReloadOrRestart,
    /// `ReloadUnit`: reload the unit's own configuration (`ExecReload=`).
    Reload,
}

impl JobVerb {
    /// The systemctl verb, e.g. `try-restart`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobVerb::Start => "start",
            JobVerb::Stop => "stop",
            JobVerb::Restart => "restart",
            JobVerb::TryRestart => "try-restart",
            JobVerb::ReloadOrRestart => "reload-or-restart",
            JobVerb::Reload => "reload",
        }
    }

    /// Whether the unit is expected to be running after the job succeeded.
    pub fn starts(self) -> bool {
        matches!(
            self,
            JobVerb::Start | JobVerb::Restart | JobVerb::ReloadOrRestart
        )
    }
}

impl fmt::Display for JobVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a new job interacts with jobs already queued (systemd's `job_mode_table`;
/// `systemctl --job-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JobMode {
    /// Replace conflicting queued jobs (the default).
    #[default]
    Replace,
    /// Fail if the job conflicts with a queued one.
    Fail,
    /// Like `replace`, and the new jobs cannot be replaced later.
    ReplaceIrreversibly,
    /// Start the unit and stop all others (targets only).
    Isolate,
    /// Ignore all dependencies.
    IgnoreDependencies,
    /// Ignore requirement dependencies, honour ordering.
    IgnoreRequirements,
    /// Cancel all queued jobs first.
    Flush,
    /// Stop also the units that trigger this one (stop only).
    Triggering,
}

impl JobMode {
    /// All modes, in `systemctl --job-mode help` order.
    pub const ALL: [JobMode; 8] = [
        JobMode::Fail,
        JobMode::Replace,
        JobMode::ReplaceIrreversibly,
        JobMode::Isolate,
        JobMode::IgnoreDependencies,
        JobMode::IgnoreRequirements,
        JobMode::Flush,
        JobMode::Triggering,
    ];

    /// The string systemd expects.
    pub fn as_str(self) -> &'static str {
        match self {
            JobMode::Replace => "replace",
            JobMode::Fail => "fail",
            JobMode::ReplaceIrreversibly => "replace-irreversibly",
            JobMode::Isolate => "isolate",
            JobMode::IgnoreDependencies => "ignore-dependencies",
            JobMode::IgnoreRequirements => "ignore-requirements",
            JobMode::Flush => "flush",
            JobMode::Triggering => "triggering",
        }
    }
}

impl FromStr for JobMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let valid: Vec<_> = JobMode::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown job mode {s:?}; valid modes: {}", valid.join(", "))
            })
    }
}

/// The `result` of a `JobRemoved` signal (systemd's `job_result_table`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobResult {
    /// The job finished successfully (also when a `Condition*=` was false: see
    /// [`JobOutcome::condition_failed`]).
    Done,
    /// The job was canceled before it finished.
    Canceled,
    /// The job's timeout (`JobTimeoutSec=`) was reached.
    Timeout,
    /// The unit failed (see the unit's state for why).
    Failed,
    /// A required dependency failed.
    Dependency,
    /// The job was skipped because it did not apply to the unit's state (success).
    Skipped,
    /// The job type cannot be applied to this unit (e.g. reload without `ExecReload=`).
    Invalid,
    /// An `Assert*=` failed.
    Assert,
    /// The unit type does not support the operation.
    Unsupported,
    /// The job was garbage-collected.
    Collected,
    /// The unit has `RefuseManualStart=`-like "once" semantics and already ran.
    Once,
    /// A result string this client does not know.
    Other(String),
}

impl JobResult {
    /// Parses systemd's result string.
    pub fn parse(s: &str) -> JobResult {
        match s {
            "done" => JobResult::Done,
            "canceled" => JobResult::Canceled,
            "timeout" => JobResult::Timeout,
            "failed" => JobResult::Failed,
            "dependency" => JobResult::Dependency,
            "skipped" => JobResult::Skipped,
            "invalid" => JobResult::Invalid,
            "assert" => JobResult::Assert,
            "unsupported" => JobResult::Unsupported,
            "collected" => JobResult::Collected,
            "once" => JobResult::Once,
            other => JobResult::Other(other.to_owned()),
        }
    }

    /// systemd's string for it.
    pub fn as_str(&self) -> &str {
        match self {
            JobResult::Done => "done",
            JobResult::Canceled => "canceled",
            JobResult::Timeout => "timeout",
            JobResult::Failed => "failed",
            JobResult::Dependency => "dependency",
            JobResult::Skipped => "skipped",
            JobResult::Invalid => "invalid",
            JobResult::Assert => "assert",
            JobResult::Unsupported => "unsupported",
            JobResult::Collected => "collected",
            JobResult::Once => "once",
            JobResult::Other(s) => s,
        }
    }

    /// `done` and `skipped` count as success, as in systemctl.
    pub fn is_success(&self) -> bool {
        matches!(self, JobResult::Done | JobResult::Skipped)
    }

    /// A short explanation for the failing results (systemctl's wording, shortened).
    fn explanation(&self) -> Option<&'static str> {
        Some(match self {
            JobResult::Canceled => "the job was canceled",
            JobResult::Timeout => "the job timed out",
            JobResult::Dependency => "a dependency failed",
            JobResult::Invalid => "the operation does not apply to this unit",
            JobResult::Assert => "an Assert*= condition failed",
            JobResult::Unsupported => "the unit type does not support the operation",
            JobResult::Collected => "the job was garbage-collected",
            JobResult::Once => "the unit may only be started once",
            _ => return None,
        })
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a successful start-like job left behind, judged from the unit's state read right
/// after the job ([`JobOutcome::after_start`]). systemd reports `done` both for a unit it
/// started and for one a false `Condition*=` kept from starting; this tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStart {
    /// The unit is active (or activating, reloading).
    Active,
    /// A `Condition*=` was not met: the job is `done` but the unit did not start.
    Skipped,
    /// The unit started and is inactive again: a oneshot that finished, a service whose
    /// process already exited.
    Exited,
    /// The unit started and failed right away (`ActiveState=failed`).
    Failed,
    /// The unit is inactive and has conditions, and the manager unloaded it (an inactive
    /// unit is garbage-collected right after its job) before its condition result could be
    /// read: it was either skipped or it started and exited. See [`Manager::jobs`] for when
    /// this can happen.
    ///
    /// [`Manager::jobs`]: super::Manager::jobs
    SkippedOrExited,
}

impl AfterStart {
    /// The name used in `--json` output: `active`, `skipped`, `exited`, `failed`,
    /// `skipped-or-exited`.
    pub fn as_str(self) -> &'static str {
        match self {
            AfterStart::Active => "active",
            AfterStart::Skipped => "skipped",
            AfterStart::Exited => "exited",
            AfterStart::Failed => "failed",
            AfterStart::SkippedOrExited => "skipped-or-exited",
        }
    }
}

impl fmt::Display for AfterStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one job on one unit ended.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// The unit the job ran on.
    pub unit: String,
    /// What was asked.
    pub verb: JobVerb,
    /// The job's object path, e.g. `/org/freedesktop/systemd1/job/42`.
    pub job: String,
    /// The job result, or `None` when the call did not wait (`--no-block`).
    pub result: Option<JobResult>,
    /// The unit's state read right after the job ended: after a failure all Unit (and
    /// Service) properties; after a successful start-like job only `active_state`, and when
    /// that is `inactive` also the condition check (`condition_result`,
    /// `condition_timestamp`) and `sub_state`; other fields are empty. `None` when not waited for, after a
    /// successful stop, or when the read failed.
    pub state: Option<UnitState>,
}

impl JobOutcome {
    /// True when the job was queued and not waited for.
    pub fn is_queued(&self) -> bool {
        self.result.is_none()
    }

    /// True when the job succeeded (or was only queued).
    pub fn is_success(&self) -> bool {
        self.result.as_ref().map_or(true, JobResult::is_success)
    }

    /// What a start-like job that reported `done` left behind; `None` for other verbs,
    /// other results, or when the unit's state could not be read.
    ///
    /// An inactive unit whose conditions were checked (`ConditionTimestamp` set) was skipped
    /// if `ConditionResult=no`, else it ran and exited. An inactive unit read after the
    /// manager unloaded it has no such record: if it has no `Condition*=` at all it ran and
    /// exited, otherwise it is [`AfterStart::SkippedOrExited`].
    pub fn after_start(&self) -> Option<AfterStart> {
        if !self.verb.starts() || self.result != Some(JobResult::Done) {
            return None;
        }
        let s = self.state.as_ref()?;
        Some(match s.active_state.as_str() {
            "" => return None,
            "active" | "activating" | "reloading" => AfterStart::Active,
            "failed" => AfterStart::Failed,
            _ if s.condition_timestamp != 0 => {
                if s.condition_result == Some(false) {
                    AfterStart::Skipped
                } else {
                    AfterStart::Exited
                }
            }
            _ if s.has_conditions == Some(false) => AfterStart::Exited,
            _ => AfterStart::SkippedOrExited,
        })
    }

    /// True when a start-like job reported `done` but the unit did not start because a
    /// `Condition*=` was false (`ConditionResult=no` with a `ConditionTimestamp`, unit
    /// inactive): [`AfterStart::Skipped`].
    pub fn condition_failed(&self) -> bool {
        self.after_start() == Some(AfterStart::Skipped)
    }

    /// Why the job failed, e.g. `result exit-code, ExecStart exited with status 3`;
    /// `None` when it succeeded.
    pub fn failure(&self) -> Option<String> {
        let result = self.result.as_ref()?;
        if result.is_success() {
            return None;
        }
        let mut why = Vec::new();
        let service = self.state.as_ref().and_then(|s| s.service.as_ref());
        match (result, service) {
            (JobResult::Failed, Some(svc)) if svc.result != "success" => {
                why.push(format!("result {}", svc.result));
            }
            _ => why.push(format!("result {result}")),
        }
        if let Some(text) = result.explanation() {
            why.push(text.to_owned());
        }
        if let Some(main) = service.and_then(super::unit::ServiceState::main_process_exit) {
            why.push(main);
        }
        Some(why.join(", "))
    }
}

impl fmt::Display for JobOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { unit, verb, .. } = self;
        if let Some(why) = self.failure() {
            write!(f, "{verb} of {unit} failed: {why}")
        } else if self.is_queued() {
            write!(f, "{verb} of {unit} queued as {}", self.job)
        } else {
            match self.after_start() {
                Some(AfterStart::Skipped) => write!(
                    f,
                    "{verb} of {unit} done, but the unit did not start: a Condition*= was not met"
                ),
                Some(AfterStart::Failed) => write!(
                    f,
                    "{verb} of {unit} done, but the unit failed right after starting"
                ),
                Some(AfterStart::SkippedOrExited) => write!(
                    f,
                    "{verb} of {unit} done, but the unit is not active: either a Condition*= was \
                     not met or it already exited (it was unloaded before its condition result \
                     could be read)"
                ),
                _ => write!(f, "{verb} of {unit} done"),
            }
        }
    }
}

impl super::unit::ServiceState {
    /// How the main process ended, from `ExecMainCode`/`ExecMainStatus` (`CLD_EXITED`=1,
    /// `CLD_KILLED`=2, `CLD_DUMPED`=3, as in waitid(2)); `None` if it did not end or exited 0.
    pub fn main_process_exit(&self) -> Option<String> {
        let status = self.exec_main_status;
        match self.exec_main_code {
            1 if status != 0 => Some(format!("ExecStart exited with status {status}")),
            2 => Some(format!(
                "main process killed by signal {}",
                signal_name(status)
            )),
            3 => Some(format!(
                "main process dumped core on signal {}",
                signal_name(status)
            )),
            _ => None,
        }
    }
}

/// Why a waiter got no `JobRemoved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// The bus connection closed.
    Connection,
    /// The manager left the bus and did not return within this time.
    ManagerGone(Duration),
    /// The manager came back to the bus, but the job had ended without its result reaching us.
    Result,
}

/// What a `JobRemoved` signal told.
#[derive(Debug, Clone)]
pub(crate) struct Removed {
    pub result: JobResult,
}

type Waiter = oneshot::Sender<Result<Removed, Lost>>;

/// How many finished jobs nobody waited for yet are remembered. A caller registers right
/// after the method reply; the signal may be dispatched first, and must not be lost.
const RECENT: usize = 4096;

/// Maps job paths to everyone waiting for them. Filled by the connection's dispatcher task,
/// the only reader of the `JobRemoved` stream.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    state: Mutex<TrackerState>,
}

#[derive(Debug, Default)]
struct TrackerState {
    waiters: HashMap<OwnedObjectPath, Vec<Waiter>>,
    recent: HashMap<OwnedObjectPath, Removed>,
    order: VecDeque<OwnedObjectPath>,
    closed: bool,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        // A poisoned lock only means another waiter panicked; the map itself stays valid.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers interest in `job`; the receiver gets its result (at once if it already
    /// arrived). Several callers may wait on the same path (systemd merges jobs).
    pub fn wait(
        &self,
        job: &OwnedObjectPath,
    ) -> Result<oneshot::Receiver<Result<Removed, Lost>>, Lost> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        if st.closed {
            return Err(Lost::Connection);
        }
        if let Some(done) = st.recent.get(job) {
            let _ = tx.send(Ok(done.clone()));
        } else {
            let list = st.waiters.entry(job.clone()).or_default();
            list.retain(|w| !w.is_closed());
            list.push(tx);
        }
        Ok(rx)
    }

    /// Delivers a `JobRemoved` to every waiter of `job` and remembers it for late waiters.
    pub fn finish(&self, job: OwnedObjectPath, removed: Removed) {
        let mut st = self.lock();
        for w in st.waiters.remove(&job).unwrap_or_default() {
            let _ = w.send(Ok(removed.clone()));
        }
        if st.recent.insert(job.clone(), removed).is_none() {
            st.order.push_back(job);
        }
        while st.order.len() > RECENT {
            if let Some(old) = st.order.pop_front() {
                st.recent.remove(&old);
            }
        }
    }

    /// The jobs someone is waiting for.
    pub fn waited_jobs(&self) -> Vec<OwnedObjectPath> {
        let mut st = self.lock();
        st.waiters.retain(|_, list| {
            list.retain(|w| !w.is_closed());
            !list.is_empty()
        });
        st.waiters.keys().cloned().collect()
    }

    /// Fails the waiters of `job` (if its result has not arrived meanwhile).
    pub fn fail_job(&self, job: &OwnedObjectPath, why: Lost) {
        let mut st = self.lock();
        for w in st.waiters.remove(job).unwrap_or_default() {
            let _ = w.send(Err(why));
        }
    }

    /// Fails every current waiter; with [`Lost::Connection`] also every future one.
    pub fn fail_all(&self, why: Lost) {
        let mut st = self.lock();
        if why == Lost::Connection {
            st.closed = true;
        }
        for (_, list) in st.waiters.drain() {
            for w in list {
                let _ = w.send(Err(why));
            }
        }
    }

    /// Number of jobs someone is waiting for.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.lock().waiters.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn path(n: u32) -> OwnedObjectPath {
        OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/job/{n}")).unwrap()
    }

    #[tokio::test]
    async fn every_waiter_of_a_merged_job_gets_the_result() {
        let t = Tracker::default();
        let a = t.wait(&path(1)).unwrap();
        let b = t.wait(&path(1)).unwrap();
        t.finish(
            path(1),
            Removed {
                result: JobResult::Done,
            },
        );
        assert_eq!(a.await.unwrap().unwrap().result, JobResult::Done);
        assert_eq!(b.await.unwrap().unwrap().result, JobResult::Done);
        assert_eq!(t.pending(), 0);
    }

    #[tokio::test]
    async fn a_result_that_arrives_before_the_waiter_is_not_lost() {
        let t = Tracker::default();
        t.finish(
            path(7),
            Removed {
                result: JobResult::Failed,
            },
        );
        let late = t.wait(&path(7)).unwrap();
        assert_eq!(late.await.unwrap().unwrap().result, JobResult::Failed);
    }

    #[tokio::test]
    async fn a_job_whose_result_was_lost_fails_only_its_own_waiters() {
        let t = Tracker::default();
        let lost = t.wait(&path(4)).unwrap();
        let other = t.wait(&path(5)).unwrap();
        assert_eq!(t.waited_jobs().len(), 2);
        t.fail_job(&path(4), Lost::Result);
        assert_eq!(lost.await.unwrap().unwrap_err(), Lost::Result);
        assert_eq!(t.waited_jobs(), vec![path(5)]);
        t.finish(
            path(5),
            Removed {
                result: JobResult::Done,
            },
        );
        assert_eq!(other.await.unwrap().unwrap().result, JobResult::Done);
    }

    #[tokio::test]
    async fn a_lost_connection_fails_current_and_future_waiters() {
        let t = Tracker::default();
        let a = t.wait(&path(2)).unwrap();
        t.fail_all(Lost::Connection);
        assert_eq!(a.await.unwrap().unwrap_err(), Lost::Connection);
        assert_eq!(t.wait(&path(3)).unwrap_err(), Lost::Connection);
    }

    #[test]
    fn job_results_round_trip_and_only_done_and_skipped_succeed() {
        for s in [
            "done",
            "canceled",
            "timeout",
            "failed",
            "dependency",
            "skipped",
            "invalid",
            "assert",
            "unsupported",
            "collected",
            "once",
            "brand-new",
        ] {
            let r = JobResult::parse(s);
            assert_eq!(r.as_str(), s);
            assert_eq!(r.is_success(), s == "done" || s == "skipped", "{s}");
        }
    }

    #[test]
    fn job_modes_parse_and_unknown_ones_list_the_valid_ones() {
        for m in JobMode::ALL {
            assert_eq!(m.as_str().parse::<JobMode>().unwrap(), m);
        }
        let err = "bogus".parse::<JobMode>().unwrap_err();
        assert!(err.contains("replace-irreversibly"), "{err}");
    }

    fn after(
        verb: JobVerb,
        result: &str,
        active: &str,
        condition: Option<(bool, u64)>,
        has_conditions: Option<bool>,
    ) -> Option<AfterStart> {
        let (condition_result, condition_timestamp) =
            condition.map_or((None, 0), |(r, t)| (Some(r), t));
        JobOutcome {
            unit: "u.service".to_owned(),
            verb,
            job: "/org/freedesktop/systemd1/job/1".to_owned(),
            result: Some(JobResult::parse(result)),
            state: Some(UnitState {
                active_state: active.to_owned(),
                condition_result,
                condition_timestamp,
                has_conditions,
                ..UnitState::default()
            }),
        }
        .after_start()
    }

    #[test]
    fn after_start_tells_a_skip_from_an_exit_only_when_the_unit_says_so() {
        use AfterStart::{Active, Exited, Failed, Skipped, SkippedOrExited};
        use JobVerb::{Restart, Start, Stop};
        let checked_false = Some((false, 1_700_000_000));
        let checked_true = Some((true, 1_700_000_000));
        // Read while loaded: the condition record decides.
        assert_eq!(
            after(Start, "done", "inactive", checked_false, Some(true)),
            Some(Skipped)
        );
        assert_eq!(
            after(Start, "done", "inactive", checked_true, Some(true)),
            Some(Exited)
        );
        assert_eq!(
            after(Restart, "done", "inactive", checked_false, None),
            Some(Skipped)
        );
        // Unloaded and read afresh: no record; without any condition it cannot have skipped.
        assert_eq!(
            after(Start, "done", "inactive", Some((true, 0)), Some(false)),
            Some(Exited)
        );
        assert_eq!(
            after(Start, "done", "inactive", Some((true, 0)), Some(true)),
            Some(SkippedOrExited)
        );
        assert_eq!(
            after(Start, "done", "inactive", None, None),
            Some(SkippedOrExited)
        );
        assert_eq!(after(Start, "done", "active", None, None), Some(Active));
        assert_eq!(after(Start, "done", "activating", None, None), Some(Active));
        assert_eq!(
            after(Start, "done", "failed", checked_true, None),
            Some(Failed)
        );
        // Not a finished start: nothing to say.
        assert_eq!(after(Start, "failed", "failed", checked_true, None), None);
        assert_eq!(
            after(Stop, "done", "inactive", checked_false, Some(true)),
            None
        );
        assert_eq!(after(Start, "done", "", None, None), None);
    }
}
