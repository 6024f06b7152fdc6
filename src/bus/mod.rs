//! A D-Bus client for systemd's service manager (`org.freedesktop.systemd1`), built on zbus.
//!
//! The behaviour follows org.freedesktop.systemd1(5) and systemctl's own client logic
//! (`bus_wait_for_jobs`, `check_wait_response`): never `systemctl` in a subprocess.
//!
//! # Design
//! * One [`Manager`] is one connection: the session bus for [`Scope::User`]
//!   (`$DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`), the system bus for
//!   [`Scope::System`] (`$DBUS_SYSTEM_BUS_ADDRESS`, else `/run/dbus/system_bus_socket`).
//!   The manager's private socket is not used: zbus cannot talk to it (zbus#1497).
//! * Before any job can be created, [`Manager::connect`] opens the `JobRemoved` stream. One
//!   background task owns that stream and hands each result to every caller waiting on that
//!   job path (systemd merges jobs, so several callers may wait on one path); a result that
//!   arrives before its caller registered is kept for it.
//! * `Subscribe()` is not needed for job results: systemd sends `JobRemoved` whenever a
//!   requester of the job is still connected (`bus_job_track_sender`, also for requests merged
//!   into an existing job, and kept across daemon-reload). Subscribing makes the manager emit
//!   `PropertiesChanged` for every state change of every unit, which made 100 concurrent
//!   service starts about 30% slower here; so it is off by default ([`Options::subscribe`])
//!   and [`Manager::watch`] subscribes when it is used.
//! * Jobs are waited for as long as they take, as systemctl does (the manager ends every job
//!   itself: `JobTimeoutSec=`, `TimeoutStartSec=`); a limit is opt-in ([`JobOptions::timeout`],
//!   [`Timeouts::unit`]) and its expiry is [`Error::Timeout`] naming the job, never a failure.
//!   Other calls have limits ([`Timeouts`]): connecting and queries 25 s, daemon-reload 180 s
//!   (systemctl's `2 × DEFAULT_TIMEOUT_USEC`). A closed connection fails every waiter at
//!   once; so does the manager leaving the bus and not coming back within
//!   [`Timeouts::manager_return`] (a daemon-reexec comes back well within it).
//! * A job's result, once its `JobRemoved` arrived, is never lost: the unit's state read after
//!   it is best effort ([`Timeouts::state`]) and has its own bound on calls in flight
//!   ([`MAX_PENDING_READS`]), apart from the calls that queue jobs ([`MAX_PENDING_CALLS`]).
//!   That matters for large batches: a manager with thousands of queued jobs answers property
//!   reads only as it gets to them, and a fixed limit over the job and the read together
//!   turned every received result of a 4,000-unit start into a timeout.
//! * Jobs end in a [`JobOutcome`], not a string: the [`JobResult`], and the unit's state read
//!   right after, so that a failed service says `result exit-code, ExecStart exited with status
//!   3` and a start skipped by a `Condition*=` is told apart from a real start
//!   ([`JobOutcome::condition_failed`]).
//!
//! # Example
//! ```no_run
//! use unitwright::bus::{Manager, Scope};
//!
//! # async fn demo() -> Result<(), unitwright::bus::Error> {
//! let manager = Manager::connect(Scope::User).await?;
//! manager.reload().await?; // daemon-reload, returns when the reload is done
//! let outcome = manager.start("web.service").await?;
//! if let Some(why) = outcome.failure() {
//!     eprintln!("web.service failed: {why}");
//! }
//! // Many units at once, concurrently on the one connection:
//! let names: Vec<String> = (1..=3).map(|i| format!("hello@{i}.service")).collect();
//! for result in manager.start_many(&names).await {
//!     println!("{}", result?);
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::oneshot;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

mod error;
mod job;
pub mod property;
mod proxy;
mod remote;
mod unit;
mod watch;

pub use error::Error;
pub use job::{AfterStart, JobMode, JobOutcome, JobResult, JobVerb};
pub use remote::{
    batch_mode as ssh_batch_mode, describe_failure as describe_ssh_failure, ssh_argv, Host,
    Problem as RemoteProblem,
};
pub use unit::{
    format_cpus, glob_match, has_unit_suffix, mangle, mangle_pattern, parse_signal, signal_name,
    type_interface, unit_name_from_path, unit_path, ListedUnit, ManagerState, Resources,
    ServiceState, UnitProcess, UnitState, UNIT_TYPES,
};
pub use watch::{UnitChange, UnitEvent, UnitWatch};

/// Microseconds since the epoch now (the clock of the journal's and the manager's
/// timestamps): e.g. when a job was queued, to read the unit's output since then.
pub fn now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

use job::{Lost, Removed, Tracker};
use proxy::{ManagerProxy, SYSTEMD1};
use unit::Props;

/// How many job and other method calls one connection keeps awaiting a reply at a time.
/// dbus-daemon's system bus refuses more than 128 per connection by default
/// (`max_replies_per_connection`, `LimitsExceeded`); job waits are signals and do not count.
pub const MAX_PENDING_CALLS: usize = 64;

/// How many property reads (`Get`, `GetAll`) one connection keeps awaiting a reply, apart
/// from [`MAX_PENDING_CALLS`] so that reads waiting on a busy manager never hold back the
/// calls that queue jobs. Together they stay below dbus-daemon's 128.
pub const MAX_PENDING_READS: usize = 32;

/// How many jobs one connection to the *system* bus waits for at a time; further units wait
/// for a slot before their job is queued. The manager tracks the requester of every job (and
/// the holder of every pin, `Unit.Ref`) with a match rule on its own bus connection, and
/// dbus-daemon's system bus allows 512 match rules per connection
/// (`max_match_rules_per_connection`). Past that the manager's AddMatch fails, sd-bus drops
/// the manager's bus connection, and the `JobRemoved` signals of the jobs then running never
/// reach anyone: measured with 3,000 targets in one call (512 rules at the peak, 256 units
/// never started, the client waiting for results that could not come). 128 jobs, pinned or
/// not, stay at 256 rules, leaving room for every other client of the manager; the session
/// bus allows 50,000 and is not limited here.
pub const MAX_SYSTEM_BUS_JOBS: usize = 128;

/// Which service manager to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// The system manager, on the system bus.
    #[default]
    System,
    /// The calling user's manager, on the session bus.
    User,
}

/// Time limits of a [`Manager`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long to wait for a job (the method call that queues it plus its result), unless
    /// [`JobOptions::timeout`] says otherwise. Default `None`: as long as the job takes, as
    /// systemctl does; the manager ends every job itself (`JobTimeoutSec=`, the unit's
    /// `TimeoutStartSec=`, ...). Expiry is [`Error::Timeout`] with the job's path.
    pub unit: Option<Duration>,
    /// `Reload()` (daemon-reload), which reruns generators. Default 180 s.
    pub reload: Duration,
    /// Connecting, queries and other calls (status, list, kill, enable, ...). Default 25 s.
    pub query: Duration,
    /// How long reading a unit's state after its job may take (why it failed, whether a
    /// start was skipped by a condition). Best effort: the job's result is reported either
    /// way, without that detail. Default 25 s.
    pub state: Duration,
    /// How long waiters keep waiting after the manager dropped its bus name (it comes back
    /// after a daemon-reexec). Default 10 s.
    pub manager_return: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            unit: None,
            reload: Duration::from_secs(180),
            query: Duration::from_secs(25),
            state: Duration::from_secs(25),
            manager_return: Duration::from_secs(10),
        }
    }
}

/// How to connect: an explicit bus address (instead of the scope's default bus), time
/// limits, and whether to `Subscribe()` up front.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A D-Bus address such as `unix:path=/run/user/1000/bus`; `None` uses the scope's bus.
    /// Ignored when `host` is set.
    pub address: Option<String>,
    /// Reach the manager of `scope` on this host over ssh (`systemd-stdio-bridge` there; see
    /// the `remote` module docs), instead of a local bus.
    pub host: Option<Host>,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Call `Subscribe()` when connecting (default `false`). Job results do not need it:
    /// systemd sends `JobNew`/`JobRemoved` for every job whose requester is still connected,
    /// including requesters whose request was merged into an existing job
    /// (`bus_job_track_sender`), and keeps that tracking across daemon-reload. A subscriber
    /// makes the manager emit `PropertiesChanged` for every state change of every unit, which
    /// slows starts down; [`Manager::watch`] subscribes by itself when it is used.
    pub subscribe: bool,
}

/// Options of one job-creating call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOptions {
    /// The job mode (default `replace`).
    pub mode: JobMode,
    /// Wait for the job to finish (default). `false` returns once the job is queued
    /// (`--no-block`).
    pub wait: bool,
    /// A limit for queueing and waiting for this job; `None` (the default) uses
    /// [`Timeouts::unit`], which by default waits as long as the job takes. When it expires
    /// the call returns [`Error::Timeout`] naming the job, which keeps running in the manager.
    pub timeout: Option<Duration>,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            mode: JobMode::Replace,
            wait: true,
            timeout: None,
        }
    }
}

/// What a unit is doing while a job on it runs ([`Manager::unit_progress`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitProgress {
    /// `ActiveState`, e.g. `activating`.
    pub active_state: String,
    /// `SubState`, e.g. `start-pre`.
    pub sub_state: String,
    /// The command line the service is running in that sub-state, if one is running.
    pub command: Option<String>,
}

/// The state [`Manager::wait_unit`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitTarget {
    /// Active (or reloading); also ends when the unit failed, which the caller should check.
    Active,
    /// Inactive or failed: not running.
    Inactive,
    /// No job queued or running for the unit.
    Done,
}

impl UnitTarget {
    /// `active`, `inactive` or `done`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitTarget::Active => "active",
            UnitTarget::Inactive => "inactive",
            UnitTarget::Done => "done",
        }
    }
}

/// Whom `KillUnit` signals (`systemctl kill --kill-whom`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KillWhom {
    /// Only the main process.
    Main,
    /// Only the control process (e.g. a running `ExecReload=`).
    Control,
    /// Every process of the unit (the default).
    #[default]
    All,
}

impl KillWhom {
    /// The string systemd expects.
    pub fn as_str(self) -> &'static str {
        match self {
            KillWhom::Main => "main",
            KillWhom::Control => "control",
            KillWhom::All => "all",
        }
    }
}

/// One job of `ListJobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    /// Its number.
    pub id: u32,
    /// The unit it is for.
    pub unit: String,
    /// `start`, `stop`, ...
    pub job_type: String,
    /// `waiting` or `running`.
    pub state: String,
    /// Its object path.
    pub job: String,
}

/// One change made by enable/disable: a symlink created or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFileChange {
    /// `symlink` or `unlink` (or another systemd change type).
    pub kind: String,
    /// The file created or removed.
    pub path: String,
    /// The symlink's destination (empty for `unlink`).
    pub target: String,
}

/// A connection to one service manager. Cheap to clone; all clones share the connection and
/// the job dispatcher, which stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: zbus::Connection,
    proxy: ManagerProxy<'static>,
    scope: Scope,
    timeouts: Timeouts,
    tracker: Arc<Tracker>,
    /// Bounds the method calls awaiting a reply (see [`MAX_PENDING_CALLS`]).
    pending: tokio::sync::Semaphore,
    /// Bounds the property reads awaiting a reply (see [`MAX_PENDING_READS`]).
    reads: tokio::sync::Semaphore,
    /// Bounds the jobs waited for at a time on the system bus (see [`MAX_SYSTEM_BUS_JOBS`]).
    jobs: Option<tokio::sync::Semaphore>,
    /// Dropping it stops the dispatcher task.
    _stop: oneshot::Sender<()>,
    /// The ssh process of a remote connection (killed when the connection is dropped).
    tunnel: Option<remote::Tunnel>,
    host: Option<Host>,
}

impl Manager {
    /// Connects to the manager of `scope` on its default bus, with default timeouts.
    pub async fn connect(scope: Scope) -> Result<Self, Error> {
        Self::connect_with(scope, &Options::default()).await
    }

    /// Connects with explicit [`Options`].
    pub async fn connect_with(scope: Scope, options: &Options) -> Result<Self, Error> {
        let limit = options.timeouts.query;
        let (conn, tunnel) = match &options.host {
            Some(host) => {
                let (stream, tunnel) = remote::Tunnel::open(host, scope)?;
                // The bridge authenticates to the remote bus itself and accepts ANONYMOUS.
                let builder = zbus::connection::Builder::unix_stream(stream)
                    .auth_mechanism(zbus::AuthMechanism::Anonymous);
                match tokio::time::timeout(limit, builder.build()).await {
                    Ok(Ok(conn)) => (conn, Some(tunnel)),
                    Ok(Err(e)) => return Err(tunnel.failure(host, scope, &e.to_string()).await),
                    Err(_) => {
                        let why = format!("no D-Bus connection within {} s", limit.as_secs_f64());
                        return Err(tunnel.failure(host, scope, &why).await);
                    }
                }
            }
            None => (Self::connect_local(scope, options).await?, None),
        };
        let what = "subscribing to the service manager";
        let setup = async {
            let proxy = ManagerProxy::builder(&conn)
                .cache_properties(CacheProperties::No)
                .build()
                .await?;
            // The stream (and its match rule) exists before any job can be created.
            let removed = proxy.receive_job_removed().await?;
            let owners = zbus::fdo::DBusProxy::new(&conn)
                .await?
                .receive_name_owner_changed_with_args(&[(0, SYSTEMD1)])
                .await?;
            if options.subscribe {
                proxy.subscribe().await?;
            }
            Ok::<_, zbus::Error>((proxy, removed, owners))
        };
        let (proxy, removed, owners) = match (timeout(limit, what, setup).await, &tunnel) {
            (Ok(Ok(parts)), _) => parts,
            // The bridge may accept us and then fail to reach its bus.
            (Ok(Err(e)), Some(tunnel)) => {
                let host = options.host.as_ref().expect("a tunnel has a host");
                return Err(tunnel.failure(host, scope, &e.to_string()).await);
            }
            (Ok(Err(e)), None) => return Err(Error::from_call(what, None, e)),
            (Err(e), _) => return Err(e),
        };
        let tracker = Arc::new(Tracker::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(dispatch(
            Arc::clone(&tracker),
            conn.clone(),
            removed,
            owners,
            stop_rx,
            options.timeouts.manager_return,
        ));
        Ok(Manager {
            inner: Arc::new(Inner {
                conn,
                proxy,
                scope,
                timeouts: options.timeouts,
                tracker,
                pending: tokio::sync::Semaphore::new(MAX_PENDING_CALLS),
                jobs: (scope == Scope::System)
                    .then(|| tokio::sync::Semaphore::new(MAX_SYSTEM_BUS_JOBS)),
                reads: tokio::sync::Semaphore::new(MAX_PENDING_READS),
                _stop: stop_tx,
                tunnel,
                host: options.host.clone(),
            }),
        })
    }

    /// Connects to the local bus of `scope` (or `options.address`).
    async fn connect_local(scope: Scope, options: &Options) -> Result<zbus::Connection, Error> {
        let bus = match (&options.address, scope) {
            (Some(a), _) => a.clone(),
            (None, Scope::User) => "session".to_owned(),
            (None, Scope::System) => "system".to_owned(),
        };
        let connect_err = |error| Error::Connect {
            bus: bus.clone(),
            error,
        };
        let builder = match (&options.address, scope) {
            (Some(a), _) => zbus::connection::Builder::address(a.as_str()),
            (None, Scope::User) => zbus::connection::Builder::session(),
            (None, Scope::System) => zbus::connection::Builder::system(),
        }
        .map_err(connect_err)?;
        timeout(
            options.timeouts.query,
            "connecting to the bus",
            builder.build(),
        )
        .await?
        .map_err(connect_err)
    }

    /// The remote host this manager was reached on, if any.
    pub fn host(&self) -> Option<&Host> {
        self.inner.host.as_ref()
    }

    /// For a remote connection whose ssh process has ended (or ends within a second): how it
    /// ended (exit status and ssh's last message). `None` while it runs, and for local
    /// connections.
    pub async fn transport_ended(&self) -> Option<String> {
        self.inner
            .tunnel
            .as_ref()?
            .ended(Duration::from_secs(1))
            .await
    }

    /// The underlying zbus connection (for calls this client does not wrap).
    pub fn connection(&self) -> &zbus::Connection {
        &self.inner.conn
    }

    /// The scope this manager was connected for.
    pub fn scope(&self) -> Scope {
        self.inner.scope
    }

    /// The time limits in use.
    pub fn timeouts(&self) -> Timeouts {
        self.inner.timeouts
    }

    /// Starts `unit` (a full name such as `web.service`) and waits for the job.
    pub async fn start(&self, unit: &str) -> Result<JobOutcome, Error> {
        self.job(JobVerb::Start, unit, JobOptions::default()).await
    }

    /// Starts `unit` and waits for the job, at most `limit` if given (then
    /// [`Error::Timeout`] names the job, which keeps running). With `None` it waits as long
    /// as the job takes; [`Manager::start_limit`] tells how long the unit itself allows.
    pub async fn start_within(
        &self,
        unit: &str,
        limit: Option<Duration>,
    ) -> Result<JobOutcome, Error> {
        let options = JobOptions {
            timeout: limit,
            ..JobOptions::default()
        };
        self.job(JobVerb::Start, unit, options).await
    }

    /// How long a start of `unit` may take by its own settings: the smaller of its
    /// `JobTimeoutSec=` and, for a service, `TimeoutStartSec=` (which covers `ExecStartPre=`
    /// and the rest of the start); `None` when both are infinite. The manager fails the job
    /// when it is exceeded, so a caller waiting a little longer always sees the real result.
    pub async fn start_limit(&self, unit: &str) -> Result<Option<Duration>, Error> {
        let what = format!("reading the start timeout of {unit}");
        let path = unit_path(unit);
        let read = async {
            let job = self
                .get(&path, "org.freedesktop.systemd1.Unit", "JobTimeoutUSec")
                .await?;
            let mut limits = vec![u64::try_from(&job).unwrap_or(u64::MAX)];
            if unit.ends_with(".service") {
                let start = self
                    .get(
                        &path,
                        "org.freedesktop.systemd1.Service",
                        "TimeoutStartUSec",
                    )
                    .await?;
                limits.push(u64::try_from(&start).unwrap_or(u64::MAX));
            }
            Ok::<_, zbus::Error>(limits)
        };
        let limits = timeout(self.inner.timeouts.query, &what, read)
            .await?
            .map_err(|e| Error::from_call(&what, Some(unit), e))?;
        Ok(limits
            .into_iter()
            .filter(|&us| us != 0 && us != u64::MAX)
            .min()
            .map(Duration::from_micros))
    }

    /// Stops `unit` and waits for the job.
    pub async fn stop(&self, unit: &str) -> Result<JobOutcome, Error> {
        self.job(JobVerb::Stop, unit, JobOptions::default()).await
    }

    /// Restarts `unit` (starting it if it was not running) and waits for the job.
    pub async fn restart(&self, unit: &str) -> Result<JobOutcome, Error> {
        self.job(JobVerb::Restart, unit, JobOptions::default())
            .await
    }

    /// Restarts `unit` if it is running, and waits for the job.
    pub async fn try_restart(&self, unit: &str) -> Result<JobOutcome, Error> {
        self.job(JobVerb::TryRestart, unit, JobOptions::default())
            .await
    }

    /// Reloads the configuration of `unit` (its `ExecReload=`) and waits for the job; a unit
    /// that cannot reload fails with [`Error::Refused`]. Not to be confused with
    /// [`Manager::reload`] (daemon-reload).
    pub async fn reload_unit(&self, unit: &str) -> Result<JobOutcome, Error> {
        self.job(JobVerb::Reload, unit, JobOptions::default()).await
    }

    /// Reloads `unit` if it supports reloading, else restarts it; waits for the job.
    pub async fn reload_or_restart(&self, unit: &str) -> Result<JobOutcome, Error> {
        self.job(JobVerb::ReloadOrRestart, unit, JobOptions::default())
            .await
    }

    /// Starts all `units` concurrently on this connection and waits for every job.
    /// The results are in the order of `units`.
    pub async fn start_many<S: AsRef<str>>(&self, units: &[S]) -> Vec<Result<JobOutcome, Error>> {
        self.jobs(JobVerb::Start, units, JobOptions::default())
            .await
    }

    /// Runs `verb` on all `units` concurrently; results in the order of `units`.
    ///
    /// Like [`Manager::job`], a start-like job that is waited for pins its unit
    /// (`Unit.Ref`), so that the condition result of a unit that ends up inactive can still
    /// be read: the manager unloads an inactive unit right after its job. A pin costs the
    /// manager about a third of a start (it tracks our bus name per unit and emits the unit's
    /// property changes), so instances of one template are pinned only if the template has
    /// conditions: the first instance's `Conditions` is read before the jobs are queued.
    /// An instance that gets a `Condition*=` of its own (a drop-in for that instance only)
    /// and ends up inactive is then reported as [`AfterStart::SkippedOrExited`].
    pub async fn jobs<S: AsRef<str>>(
        &self,
        verb: JobVerb,
        units: &[S],
        options: JobOptions,
    ) -> Vec<Result<JobOutcome, Error>> {
        self.jobs_observed(verb, units, options, |_| {}).await
    }

    /// [`Manager::jobs`], calling `done(i)` as soon as the job of `units[i]` has its outcome
    /// (e.g. to show which units are still being waited for).
    pub async fn jobs_observed<S: AsRef<str>, F: Fn(usize)>(
        &self,
        verb: JobVerb,
        units: &[S],
        options: JobOptions,
        done: F,
    ) -> Vec<Result<JobOutcome, Error>> {
        let done = &done;
        let units: Vec<&str> = units.iter().map(AsRef::as_ref).collect();
        let pins = if options.wait && verb.starts() {
            self.pins(&units).await
        } else {
            vec![false; units.len()]
        };
        futures_util::future::join_all(units.iter().zip(pins).enumerate().map(
            |(i, (u, pin))| async move {
                let result = self.job_pinned(verb, u, options, pin).await;
                done(i);
                result
            },
        ))
        .await
    }

    /// Which of `units` to pin for a start (see [`Manager::jobs`]): all but the instances of
    /// templates that have more than one instance among `units` and no conditions.
    async fn pins(&self, units: &[&str]) -> Vec<bool> {
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, u) in units.iter().enumerate() {
            if let Ok((crate::escape::Kind::Instance, _)) = crate::escape::to_instance(*u) {
                if let Ok(template) = crate::escape::template_of(*u) {
                    groups.entry(template).or_default().push(i);
                }
            }
        }
        let mut pins = vec![true; units.len()];
        let checks = groups.values().filter(|g| g.len() > 1).map(|g| async move {
            let first = unit_path(units[g[0]]);
            let conditions = self
                .get(&first, "org.freedesktop.systemd1.Unit", "Conditions")
                .await;
            let unconditional = conditions
                .ok()
                .and_then(|v| unit::has_entries(&v))
                .is_some_and(|has| !has);
            (g, unconditional)
        });
        for (g, unconditional) in futures_util::future::join_all(checks).await {
            if unconditional {
                for &i in g {
                    pins[i] = false;
                }
            }
        }
        pins
    }

    /// Runs `verb` on `unit` (a full unit name): queues the job and, unless
    /// `options.wait` is false, waits for its result and reads the unit's state.
    ///
    /// A job that ran and failed is `Ok` with a failing [`JobOutcome`]; `Err` means no result
    /// could be had (no such unit, refused, timeout, lost connection).
    ///
    /// ```no_run
    /// use unitwright::bus::{JobMode, JobOptions, JobVerb, Manager, Scope};
    ///
    /// # async fn demo() -> Result<(), unitwright::bus::Error> {
    /// let manager = Manager::connect(Scope::System).await?;
    /// // Like `systemctl --no-block --job-mode=fail restart web.service`:
    /// let options = JobOptions { mode: JobMode::Fail, wait: false, ..JobOptions::default() };
    /// let queued = manager.job(JobVerb::Restart, "web.service", options).await?;
    /// println!("queued as {}", queued.job);
    /// # Ok(()) }
    /// ```
    pub async fn job(
        &self,
        verb: JobVerb,
        unit: &str,
        options: JobOptions,
    ) -> Result<JobOutcome, Error> {
        self.job_pinned(verb, unit, options, options.wait && verb.starts())
            .await
    }

    /// [`Manager::job`], pinning the unit (`Unit.Ref`) while waiting if `pin`.
    async fn job_pinned(
        &self,
        verb: JobVerb,
        unit: &str,
        options: JobOptions,
        pin: bool,
    ) -> Result<JobOutcome, Error> {
        let what = format!("{verb} of {unit}");
        let limit = options.timeout.or(self.inner.timeouts.unit);
        let deadline = limit.map(|l| (l, tokio::time::Instant::now() + l));
        // Pin the unit while we wait and read its state: an inactive unit is
        // garbage-collected right after its job, and reading it would load it afresh, without
        // the ConditionResult of the start that was just skipped. Best effort: without the
        // pin, a missing ConditionTimestamp keeps us from claiming a skip we cannot see.
        // A slot before the job exists and until its pin is gone (see MAX_SYSTEM_BUS_JOBS).
        let _slot = match &self.inner.jobs {
            Some(slots) if options.wait => {
                Some(until(deadline, &what, None, slots.acquire()).await?)
            }
            _ => None,
        };
        if pin {
            self.unit_call_no_reply(unit, "Ref").await;
        }
        let result = self.job_inner(verb, unit, options, &what, deadline).await;
        if pin {
            self.unit_call_no_reply(unit, "Unref").await;
        }
        result
    }

    /// Calls `org.freedesktop.systemd1.Unit.<method>()` on `unit` without waiting for the
    /// reply (the manager handles the messages of one connection in order). Errors are logged.
    async fn unit_call_no_reply(&self, unit: &str, method: &str) {
        let send = async {
            let msg = zbus::Message::method_call(unit_path(unit), method)?
                .destination(SYSTEMD1)?
                .interface("org.freedesktop.systemd1.Unit")?
                .with_flags(zbus::message::Flags::NoReplyExpected)?
                .build(&())?;
            self.inner.conn.send(&msg).await
        };
        if let Err(e) = send.await {
            log::debug!("{method} of {unit} not sent: {e}");
        }
    }

    /// Queues the job, waits for its `JobRemoved` (both within `deadline`, if any), then
    /// reads the unit's state, best effort: once the result is in, it is returned whatever
    /// happens to the state read ([`Timeouts::state`]), so a manager too busy to answer
    /// property reads (it answers them only after draining a long job queue) costs detail,
    /// never a result.
    async fn job_inner(
        &self,
        verb: JobVerb,
        unit: &str,
        options: JobOptions,
        what: &str,
        deadline: Option<(Duration, tokio::time::Instant)>,
    ) -> Result<JobOutcome, Error> {
        let p = &self.inner.proxy;
        let mode = options.mode.as_str();
        let call = async {
            let _permit = self.inner.pending.acquire().await;
            match verb {
                JobVerb::Start => p.start_unit(unit, mode).await,
                JobVerb::Stop => p.stop_unit(unit, mode).await,
                JobVerb::Restart => p.restart_unit(unit, mode).await,
                JobVerb::TryRestart => p.try_restart_unit(unit, mode).await,
                JobVerb::ReloadOrRestart => p.reload_or_restart_unit(unit, mode).await,
                JobVerb::Reload => p.reload_unit(unit, mode).await,
            }
        };
        let job: OwnedObjectPath = until(deadline, what, None, call)
            .await?
            .map_err(|e| Error::from_call(what, Some(unit), e))?;
        let mut outcome = JobOutcome {
            unit: unit.to_owned(),
            verb,
            job: job.as_str().to_owned(),
            result: None,
            state: None,
        };
        if !options.wait {
            return Ok(outcome);
        }
        let Removed { result } = self.wait_removed(&job, what, deadline).await?;
        // Read the unit's state for the cases where it adds information: why it failed, or
        // whether a start actually started it (a false Condition*= still reports "done").
        let read = async {
            if !result.is_success() {
                let service = unit.ends_with(".service");
                self.read_state(unit, service, what).await.ok()
            } else if verb.starts() {
                self.read_start_state(unit).await.ok()
            } else {
                None
            }
        };
        outcome.state = tokio::time::timeout(self.inner.timeouts.state, read)
            .await
            .unwrap_or_else(|_| {
                log::debug!("{what}: the unit's state was not read in time; reporting the result without it");
                None
            });
        outcome.result = Some(result);
        Ok(outcome)
    }

    /// Waits for the `JobRemoved` of `job` (within `deadline`, if any).
    async fn wait_removed(
        &self,
        job: &OwnedObjectPath,
        what: &str,
        deadline: Option<(Duration, tokio::time::Instant)>,
    ) -> Result<Removed, Error> {
        let rx = self
            .inner
            .tracker
            .wait(job)
            .map_err(|l| Self::lost(l, what))?;
        match until(deadline, what, Some(job.as_str()), rx).await? {
            Ok(Ok(removed)) => Ok(removed),
            Ok(Err(lost)) => Err(Self::lost(lost, what)),
            Err(_) => Err(Self::lost(Lost::Connection, what)),
        }
    }

    fn lost(lost: Lost, what: &str) -> Error {
        match lost {
            Lost::Connection => Error::ConnectionLost {
                what: what.to_owned(),
            },
            Lost::ManagerGone(after) => Error::ManagerGone {
                what: what.to_owned(),
                after,
            },
            Lost::Result => Error::ResultLost {
                what: what.to_owned(),
            },
        }
    }

    /// daemon-reload: reruns generators and reloads all unit files. Returns when the reload
    /// has finished (the manager replies only then).
    pub async fn reload(&self) -> Result<(), Error> {
        let what = "daemon-reload";
        timeout(self.inner.timeouts.reload, what, self.inner.proxy.reload())
            .await?
            .map_err(|e| Error::from_call(what, None, e))
    }

    /// Sends `signal` to the processes of `unit` selected by `whom`.
    pub async fn kill(&self, unit: &str, whom: KillWhom, signal: i32) -> Result<(), Error> {
        let what = format!("kill of {unit}");
        let _permit = self.inner.pending.acquire().await;
        let call = self.inner.proxy.kill_unit(unit, whom.as_str(), signal);
        timeout(self.inner.timeouts.query, &what, call)
            .await?
            .map_err(|e| Error::from_call(&what, Some(unit), e))
    }

    /// Changes properties of `unit` while it runs (`SetUnitProperties`, as `systemctl
    /// set-property`): the manager applies them at once and keeps them as drop-ins, under the
    /// runtime directory when `runtime` (gone at reboot), else under the configuration
    /// directory. Parse the assignments with [`property::parse_all`] first.
    pub async fn set_properties(
        &self,
        unit: &str,
        runtime: bool,
        assignments: &[property::Assignment],
    ) -> Result<(), Error> {
        let what = format!("set-property of {unit}");
        let props: Vec<(&str, &zbus::zvariant::Value<'_>)> = assignments
            .iter()
            .map(|a| (a.property, &*a.value))
            .collect();
        let _permit = self.inner.pending.acquire().await;
        let call = self.inner.proxy.set_unit_properties(unit, runtime, &props);
        timeout(self.inner.timeouts.query, &what, call)
            .await?
            .map_err(|e| Error::from_call(&what, Some(unit), e))
    }

    /// Resets the failed state of `unit`, or of all units when `None`.
    pub async fn reset_failed(&self, unit: Option<&str>) -> Result<(), Error> {
        let p = &self.inner.proxy;
        let limit = self.inner.timeouts.query;
        let _permit = self.inner.pending.acquire().await;
        match unit {
            Some(unit) => {
                let what = format!("reset-failed of {unit}");
                timeout(limit, &what, p.reset_failed_unit(unit))
                    .await?
                    .map_err(|e| Error::from_call(&what, Some(unit), e))
            }
            None => timeout(limit, "reset-failed", p.reset_failed())
                .await?
                .map_err(|e| Error::from_call("reset-failed", None, e)),
        }
    }

    /// The state of `unit` (loading it from disk if needed). A unit that does not exist is
    /// [`Error::NoSuchUnit`].
    pub async fn unit_status(&self, unit: &str) -> Result<UnitState, Error> {
        let what = format!("status of {unit}");
        let state = timeout(
            self.inner.timeouts.query,
            &what,
            self.read_state(unit, true, &what),
        )
        .await??;
        // As systemctl: a unit whose file is gone but that still runs is shown.
        if state.is_not_found() && state.active_state == "inactive" {
            return Err(Error::NoSuchUnit {
                what,
                unit: unit.to_owned(),
            });
        }
        Ok(state)
    }

    /// The units `unit` hard-depends on (`Requires=`, `Requisite=`, `BindsTo=`) that are not
    /// active now, with their state: after a job of `unit` ended with result `dependency`,
    /// these are the ones that failed it (systemctl only says "a dependency failed").
    pub async fn failed_dependencies(&self, unit: &str) -> Result<Vec<UnitState>, Error> {
        let what = format!("dependencies of {unit}");
        let props = timeout(
            self.inner.timeouts.query,
            &what,
            self.get_some(&unit_path(unit), &["Requires", "Requisite", "BindsTo"]),
        )
        .await?
        .map_err(|e| Error::from_call(&what, Some(unit), e))?;
        let mut deps: Vec<String> = Vec::new();
        for key in ["Requires", "Requisite", "BindsTo"] {
            let names = props
                .get(key)
                .and_then(|v| <Vec<String>>::try_from(v.try_clone().ok()?).ok())
                .unwrap_or_default();
            for n in names {
                if !deps.contains(&n) {
                    deps.push(n);
                }
            }
        }
        let what = &what;
        let states = futures_util::future::join_all(deps.iter().map(|d| async move {
            timeout(
                self.inner.timeouts.query,
                what,
                self.read_state(d, true, what),
            )
            .await
            .ok()
            .and_then(Result::ok)
        }))
        .await;
        Ok(states
            .into_iter()
            .flatten()
            .filter(|s| {
                !matches!(
                    s.active_state.as_str(),
                    "active" | "reloading" | "activating"
                )
            })
            .collect())
    }

    /// The processes in the cgroup of `unit` and its sub-cgroups (`GetUnitProcesses`), as the
    /// manager sees them (so this works over a remote connection too).
    pub async fn unit_processes(&self, unit: &str) -> Result<Vec<UnitProcess>, Error> {
        let what = format!("processes of {unit}");
        let _permit = self.inner.pending.acquire().await;
        let rows = timeout(
            self.inner.timeouts.query,
            &what,
            self.inner.proxy.get_unit_processes(unit),
        )
        .await?
        .map_err(|e| Error::from_call(&what, Some(unit), e))?;
        Ok(rows
            .into_iter()
            .map(|(cgroup, pid, command)| UnitProcess {
                cgroup,
                pid,
                command,
            })
            .collect())
    }

    /// The loaded units whose names match one of the glob `patterns` (all when empty),
    /// sorted by name (`ListUnitsByPatterns`).
    pub async fn list_units<S: AsRef<str>>(
        &self,
        patterns: &[S],
    ) -> Result<Vec<ListedUnit>, Error> {
        self.list_units_filtered::<&str, S>(&[], patterns).await
    }

    /// Like [`Manager::list_units`], keeping only units whose load, active or sub state is
    /// one of `states` (all when empty), e.g. `failed` or `running`.
    pub async fn list_units_filtered<T: AsRef<str>, S: AsRef<str>>(
        &self,
        states: &[T],
        patterns: &[S],
    ) -> Result<Vec<ListedUnit>, Error> {
        let what = "listing units";
        let states: Vec<&str> = states.iter().map(AsRef::as_ref).collect();
        let patterns: Vec<&str> = patterns.iter().map(AsRef::as_ref).collect();
        let rows = timeout(
            self.inner.timeouts.query,
            what,
            self.inner.proxy.list_units_by_patterns(&states, &patterns),
        )
        .await?
        .map_err(|e| Error::from_call(what, None, e))?;
        let mut units: Vec<ListedUnit> = rows
            .into_iter()
            .map(
                |(name, description, load, active, sub, _, _, job_id, job_type, _)| ListedUnit {
                    name,
                    description,
                    load_state: load,
                    active_state: active,
                    sub_state: sub,
                    job_type: (job_id != 0).then_some(job_type),
                },
            )
            .collect();
        units.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(units)
    }

    /// The names of the unit files the manager can load whose names match one of the glob
    /// `patterns` (`ListUnitFilesByPatterns`; all states), sorted, without duplicates (a
    /// file in several directories is one name): e.g. the templates `*@.service`.
    pub async fn unit_file_names<S: AsRef<str>>(
        &self,
        patterns: &[S],
    ) -> Result<Vec<String>, Error> {
        let what = "listing unit files";
        let patterns: Vec<&str> = patterns.iter().map(AsRef::as_ref).collect();
        let rows = timeout(
            self.inner.timeouts.query,
            what,
            self.inner.proxy.list_unit_files_by_patterns(&[], &patterns),
        )
        .await?
        .map_err(|e| Error::from_call(what, None, e))?;
        let mut names: Vec<String> = rows
            .into_iter()
            .filter_map(|(path, _)| {
                std::path::Path::new(&path)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_owned)
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Enables unit files (creates the `[Install]` symlinks), then reloads the manager, as
    /// `systemctl enable` does.
    pub async fn enable<S: AsRef<str>>(&self, units: &[S]) -> Result<Vec<UnitFileChange>, Error> {
        let files: Vec<&str> = units.iter().map(AsRef::as_ref).collect();
        let what = format!("enable of {}", files.join(" "));
        let (_, changes) = timeout(
            self.inner.timeouts.query,
            &what,
            self.inner.proxy.enable_unit_files(&files, false, false),
        )
        .await?
        .map_err(|e| Error::from_call(&what, one(&files), e))?;
        self.reload().await?;
        Ok(file_changes(changes))
    }

    /// Disables unit files (removes the `[Install]` symlinks), then reloads the manager.
    pub async fn disable<S: AsRef<str>>(&self, units: &[S]) -> Result<Vec<UnitFileChange>, Error> {
        let files: Vec<&str> = units.iter().map(AsRef::as_ref).collect();
        let what = format!("disable of {}", files.join(" "));
        let changes = timeout(
            self.inner.timeouts.query,
            &what,
            self.inner.proxy.disable_unit_files(&files, false),
        )
        .await?
        .map_err(|e| Error::from_call(&what, one(&files), e))?;
        self.reload().await?;
        Ok(file_changes(changes))
    }

    /// Masks unit files (links them to /dev/null), then reloads the manager, as `systemctl
    /// mask` does.
    pub async fn mask<S: AsRef<str>>(&self, units: &[S]) -> Result<Vec<UnitFileChange>, Error> {
        let files: Vec<&str> = units.iter().map(AsRef::as_ref).collect();
        let what = format!("mask of {}", files.join(" "));
        let changes = timeout(
            self.inner.timeouts.query,
            &what,
            self.inner.proxy.mask_unit_files(&files, false, false),
        )
        .await?
        .map_err(|e| Error::from_call(&what, one(&files), e))?;
        self.reload().await?;
        Ok(file_changes(changes))
    }

    /// Unmasks unit files, then reloads the manager.
    pub async fn unmask<S: AsRef<str>>(&self, units: &[S]) -> Result<Vec<UnitFileChange>, Error> {
        let files: Vec<&str> = units.iter().map(AsRef::as_ref).collect();
        let what = format!("unmask of {}", files.join(" "));
        let changes = timeout(
            self.inner.timeouts.query,
            &what,
            self.inner.proxy.unmask_unit_files(&files, false),
        )
        .await?
        .map_err(|e| Error::from_call(&what, one(&files), e))?;
        self.reload().await?;
        Ok(file_changes(changes))
    }

    /// `ActiveState` of `unit` (one `Get`; `inactive` for a unit that does not exist, as
    /// the manager reports it).
    pub async fn active_state(&self, unit: &str) -> Result<String, Error> {
        let what = format!("state of {unit}");
        let v = timeout(
            self.inner.timeouts.query,
            &what,
            self.get(
                &unit_path(unit),
                "org.freedesktop.systemd1.Unit",
                "ActiveState",
            ),
        )
        .await?
        .map_err(|e| Error::from_call(&what, Some(unit), e))?;
        Ok(<&str>::try_from(&v).unwrap_or_default().to_owned())
    }

    /// The state of the unit file of `unit` (`GetUnitFileState`): enabled, disabled, static,
    /// masked, generated, ...
    pub async fn unit_file_state(&self, unit: &str) -> Result<String, Error> {
        let what = format!("unit file state of {unit}");
        let _permit = self.inner.pending.acquire().await;
        timeout(
            self.inner.timeouts.query,
            &what,
            self.inner.proxy.get_unit_file_state(unit),
        )
        .await?
        .map_err(|e| Error::from_call(&what, Some(unit), e))
    }

    /// Every property of `unit` (its Unit interface and its type's), or of the manager when
    /// `None`, by name.
    pub async fn all_properties(
        &self,
        unit: Option<&str>,
    ) -> Result<std::collections::BTreeMap<String, OwnedValue>, Error> {
        let what = match unit {
            Some(u) => format!("properties of {u}"),
            None => "properties of the manager".to_owned(),
        };
        let read = async {
            let mut all = std::collections::BTreeMap::new();
            match unit {
                None => all.extend(
                    self.get_all(
                        "/org/freedesktop/systemd1",
                        "org.freedesktop.systemd1.Manager",
                    )
                    .await?,
                ),
                Some(u) => {
                    let path = unit_path(u);
                    all.extend(self.get_all(&path, "org.freedesktop.systemd1.Unit").await?);
                    if let Some(interface) = unit::type_interface(u) {
                        if let Ok(typed) = self.get_all(&path, interface).await {
                            all.extend(typed);
                        }
                    }
                }
            }
            Ok::<_, zbus::Error>(all)
        };
        timeout(self.inner.timeouts.query, &what, read)
            .await?
            .map_err(|e| Error::from_call(&what, unit, e))
    }

    /// The queued and running jobs (`ListJobs`).
    pub async fn list_jobs(&self) -> Result<Vec<QueuedJob>, Error> {
        let what = "listing jobs";
        let rows = timeout(
            self.inner.timeouts.query,
            what,
            self.inner.proxy.list_jobs(),
        )
        .await?
        .map_err(|e| Error::from_call(what, None, e))?;
        Ok(rows
            .into_iter()
            .map(|(id, unit, job_type, state, job, _)| QueuedJob {
                id,
                unit,
                job_type,
                state,
                job: job.as_str().to_owned(),
            })
            .collect())
    }

    /// Live state changes of the units matching the glob `patterns` (all when empty): see
    /// [`UnitWatch`].
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use unitwright::bus::{Manager, Scope};
    ///
    /// # async fn demo() -> Result<(), unitwright::bus::Error> {
    /// let manager = Manager::connect(Scope::User).await?;
    /// let mut changes = manager.watch(&["web@*.service"]).await?;
    /// while let Some(change) = changes.next().await {
    ///     println!("{} {:?} {:?}", change.unit, change.active_state, change.sub_state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn watch<S: AsRef<str>>(&self, patterns: &[S]) -> Result<UnitWatch, Error> {
        let patterns = patterns.iter().map(|p| p.as_ref().to_owned()).collect();
        timeout(
            self.inner.timeouts.query,
            "watching units",
            UnitWatch::new(
                &self.inner.conn,
                &self.inner.proxy,
                patterns,
                self.inner.timeouts.manager_return,
            ),
        )
        .await?
    }

    /// The manager's own state: version, `SystemState`, number of jobs and failed units.
    pub async fn manager_state(&self) -> Result<ManagerState, Error> {
        let what = "reading the manager's state";
        let props = timeout(
            self.inner.timeouts.query,
            what,
            self.get_all(
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
            ),
        )
        .await?
        .map_err(|e| Error::from_call(what, None, e))?;
        Ok(ManagerState::from_props(&props))
    }

    /// What `unit` is doing now, for a progress display: its states and, for a service, the
    /// command it is running (from the `Exec*` property its sub-state names).
    pub async fn unit_progress(&self, unit: &str) -> Result<UnitProgress, Error> {
        let what = format!("reading the progress of {unit}");
        let path = unit_path(unit);
        let read = async {
            let props = self.get_some(&path, &["ActiveState", "SubState"]).await?;
            let state = UnitState::from_props(&props, None);
            let mut command = None;
            if let Some(key) = unit::exec_property(&state.sub_state) {
                if unit.ends_with(".service") {
                    let value = self
                        .get(&path, "org.freedesktop.systemd1.Service", key)
                        .await?;
                    command = unit::running_command(&value);
                }
            }
            Ok::<_, zbus::Error>(UnitProgress {
                active_state: state.active_state,
                sub_state: state.sub_state,
                command,
            })
        };
        timeout(self.inner.timeouts.query, &what, read)
            .await?
            .map_err(|e| Error::from_call(&what, Some(unit), e))
    }

    /// Waits for the job `job` (an object path such as `/org/freedesktop/systemd1/job/42`,
    /// e.g. from a `--no-block` start, queued by anyone) to finish, within `limit` if given.
    /// `Ok(None)` when the job no longer exists: it finished before the wait began, and the
    /// manager keeps no result of finished jobs.
    ///
    /// systemd sends the `JobRemoved` of someone else's job only to subscribers, so this
    /// calls `Subscribe()` (which makes the manager emit more signals for as long as this
    /// connection lives).
    pub async fn wait_job(
        &self,
        job: &str,
        limit: Option<Duration>,
    ) -> Result<Option<JobResult>, Error> {
        let what = format!("waiting for {job}");
        let deadline = limit.map(|l| (l, tokio::time::Instant::now() + l));
        let path = OwnedObjectPath::try_from(job.to_owned()).map_err(|e| Error::Bus {
            what: what.clone(),
            error: e.into(),
        })?;
        let rx = self
            .inner
            .tracker
            .wait(&path)
            .map_err(|l| Self::lost(l, &what))?;
        let check = async {
            match self.inner.proxy.subscribe().await {
                Err(zbus::Error::MethodError(name, _, _))
                    if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" => {}
                other => other?,
            }
            // Subscribed and registered: if the job exists now, its JobRemoved will come.
            match self.get(job, "org.freedesktop.systemd1.Job", "Id").await {
                Ok(_) => Ok(true),
                Err(zbus::Error::MethodError(name, _, _))
                    if name.as_str() == "org.freedesktop.DBus.Error.UnknownObject"
                        || name.as_str() == "org.freedesktop.DBus.Error.UnknownInterface" =>
                {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        };
        let exists = until(deadline, &what, None, check)
            .await?
            .map_err(|e| Error::from_call(&what, None, e))?;
        if !exists {
            // It may still have ended after we registered: then its result is in.
            if let Ok(Ok(Ok(removed))) = tokio::time::timeout(Duration::from_millis(1), rx).await {
                return Ok(Some(removed.result));
            }
            return Ok(None);
        }
        match until(deadline, &what, Some(job), rx).await? {
            Ok(Ok(removed)) => Ok(Some(removed.result)),
            Ok(Err(lost)) => Err(Self::lost(lost, &what)),
            Err(_) => Err(Self::lost(Lost::Connection, &what)),
        }
    }

    /// Waits until `unit` reaches `state` (within `limit` if given) and returns its state
    /// then; see [`UnitTarget`]. The unit is polled four times a second.
    pub async fn wait_unit(
        &self,
        unit: &str,
        state: UnitTarget,
        limit: Option<Duration>,
    ) -> Result<UnitProgress, Error> {
        let what = format!("waiting for {unit} to be {}", state.as_str());
        let deadline = limit.map(|l| (l, tokio::time::Instant::now() + l));
        let path = unit_path(unit);
        let poll = async {
            loop {
                let props = self
                    .get_some(&path, &["ActiveState", "SubState", "Job", "LoadState"])
                    .await?;
                let s = UnitState::from_props(&props, None);
                let has_job = props
                    .get("Job")
                    .and_then(|v| <(u32, OwnedObjectPath)>::try_from(v.clone()).ok())
                    .is_some_and(|(id, _)| id != 0);
                let reached = match state {
                    UnitTarget::Active => {
                        matches!(s.active_state.as_str(), "active" | "reloading" | "failed")
                    }
                    UnitTarget::Inactive => {
                        matches!(s.active_state.as_str(), "inactive" | "failed")
                    }
                    UnitTarget::Done => !has_job,
                };
                if reached {
                    return Ok::<_, zbus::Error>(UnitProgress {
                        active_state: s.active_state,
                        sub_state: s.sub_state,
                        command: None,
                    });
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        };
        let job = None;
        until(deadline, &what, job, poll)
            .await?
            .map_err(|e| Error::from_call(&what, Some(unit), e))
    }

    /// Reads the Unit properties of `unit` and, if `typed`, those of its type's interface
    /// (Service, Socket, ..., with the cgroup's resource use; see [`unit::type_interface`]).
    async fn read_state(&self, unit: &str, typed: bool, what: &str) -> Result<UnitState, Error> {
        let path = unit_path(unit);
        let unit_props = self.get_all(&path, "org.freedesktop.systemd1.Unit");
        if let Some(interface) = unit::type_interface(unit).filter(|_| typed) {
            let service_props = self.get_all(&path, interface);
            let (u, s) = futures_util::future::join(unit_props, service_props).await;
            let u = u.map_err(|e| Error::from_call(what, Some(unit), e))?;
            // A not-found unit has no Service interface; report it from the Unit properties.
            Ok(UnitState::from_props(&u, s.ok().as_ref()))
        } else {
            let u = unit_props
                .await
                .map_err(|e| Error::from_call(what, Some(unit), e))?;
            Ok(UnitState::from_props(&u, None))
        }
    }

    /// After a successful start only two things matter: whether the unit is up, and if it is
    /// not, whether a `Condition*=` skipped it. So one `Get` of `ActiveState` first; only an
    /// inactive unit costs the `Get`s of `ConditionResult`, `ConditionTimestamp`, `Conditions`
    /// and `SubState`. Each message costs the manager, which handles them one at a time:
    /// pipelined `Get`s are far cheaper than a `GetAll` of ~180 properties (measured: 100
    /// concurrent starts took 2 to 4 times as long with `GetAll`), and the single `Get` of a
    /// started unit is cheaper again.
    async fn read_start_state(&self, unit: &str) -> zbus::Result<UnitState> {
        let path = unit_path(unit);
        let active = self
            .get(&path, "org.freedesktop.systemd1.Unit", "ActiveState")
            .await?;
        let inactive = <&str>::try_from(&active) == Ok("inactive");
        let mut props = Props::from([("ActiveState".to_owned(), active)]);
        if inactive {
            props.extend(
                self.get_some(
                    &path,
                    &[
                        "ConditionResult",
                        "ConditionTimestamp",
                        "Conditions",
                        "SubState",
                    ],
                )
                .await?,
            );
        }
        let mut state = UnitState::from_props(&props, None);
        unit.clone_into(&mut state.name);
        Ok(state)
    }

    /// Reads the Unit properties `keys` of the object `path` with concurrent `Get`s.
    async fn get_some(&self, path: &str, keys: &[&str]) -> zbus::Result<Props> {
        let values = futures_util::future::try_join_all(
            keys.iter()
                .map(|key| self.get(path, "org.freedesktop.systemd1.Unit", key)),
        )
        .await?;
        Ok(keys.iter().map(|k| (*k).to_owned()).zip(values).collect())
    }

    async fn get(&self, path: &str, interface: &str, name: &str) -> zbus::Result<OwnedValue> {
        let proxy = self.properties(path).await?;
        let _permit = self.inner.reads.acquire().await;
        proxy.get(interface, name).await
    }

    async fn get_all(&self, path: &str, interface: &str) -> zbus::Result<Props> {
        let proxy = self.properties(path).await?;
        let _permit = self.inner.reads.acquire().await;
        proxy.get_all(interface).await
    }

    /// An uncached `org.freedesktop.DBus.Properties` proxy for the manager's object `path`
    /// (building it does not touch the bus).
    async fn properties(&self, path: &str) -> zbus::Result<proxy::PropertiesProxy<'static>> {
        proxy::PropertiesProxy::builder(&self.inner.conn)
            .path(path.to_owned())?
            .cache_properties(CacheProperties::No)
            .build()
            .await
    }
}

fn one<'a>(files: &[&'a str]) -> Option<&'a str> {
    match files {
        [only] => Some(only),
        _ => None,
    }
}

fn file_changes(changes: Vec<proxy::FileChange>) -> Vec<UnitFileChange> {
    changes
        .into_iter()
        .map(|(kind, path, target)| UnitFileChange { kind, path, target })
        .collect()
}

/// Runs `fut` with a time limit, turning expiry into [`Error::Timeout`].
async fn timeout<F: std::future::Future>(
    limit: Duration,
    what: &str,
    fut: F,
) -> Result<F::Output, Error> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| Error::Timeout {
            what: what.to_owned(),
            after: limit,
            job: None,
        })
}

/// Runs `fut` until `deadline` (the limit and when it expires; `None`: no limit), turning
/// expiry into [`Error::Timeout`] about `job` (the job waited for, if one exists).
async fn until<F: std::future::Future>(
    deadline: Option<(Duration, tokio::time::Instant)>,
    what: &str,
    job: Option<&str>,
    fut: F,
) -> Result<F::Output, Error> {
    let Some((limit, at)) = deadline else {
        return Ok(fut.await);
    };
    tokio::time::timeout_at(at, fut)
        .await
        .map_err(|_| Error::Timeout {
            what: what.to_owned(),
            after: limit,
            job: job.map(str::to_owned),
        })
}

/// The dispatcher: the only reader of the `JobRemoved` stream. Also watches the manager's bus
/// name: if it disappears and does not come back within `grace`, every waiter fails.
async fn dispatch(
    tracker: Arc<Tracker>,
    conn: zbus::Connection,
    mut removed: proxy::JobRemovedStream,
    mut owners: zbus::fdo::NameOwnerChangedStream,
    mut stop: oneshot::Receiver<()>,
    grace: Duration,
) {
    let mut gone_deadline: Option<tokio::time::Instant> = None;
    loop {
        let deadline = gone_deadline;
        tokio::select! {
            _ = &mut stop => break,
            signal = removed.next() => match signal {
                Some(signal) => match signal.args() {
                    Ok(args) => tracker.finish(
                        args.job.clone(),
                        Removed { result: JobResult::parse(&args.result) },
                    ),
                    Err(e) => log::warn!("ignoring a malformed JobRemoved signal: {e}"),
                },
                None => break,
            },
            change = owners.next() => match change {
                Some(change) => {
                    let back = change.args().is_ok_and(|a| a.new_owner.is_some());
                    if back {
                        log::debug!("the service manager is on the bus again");
                        gone_deadline = None;
                        tokio::spawn(recheck(Arc::clone(&tracker), conn.clone()));
                    } else {
                        log::debug!("the service manager left the bus");
                        gone_deadline = Some(tokio::time::Instant::now() + grace);
                    }
                }
                None => break,
            },
            () = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                gone_deadline = None;
                tracker.fail_all(Lost::ManagerGone(grace));
            }
        }
    }
    // The stream ended (connection closed) or the last Manager was dropped.
    tracker.fail_all(Lost::Connection);
}

/// After the manager came back to the bus: a daemon-reexec keeps its jobs and who asked for
/// them, but a manager whose bus connection was dropped (e.g. by dbus-daemon's limits) lost
/// the tracking of requesters, and a `JobRemoved` sent while it was away reached nobody. So
/// subscribe (a subscriber gets every `JobRemoved`), then fail the waiters of jobs that no
/// longer exist and whose result has not arrived a second later: their result is lost, and
/// waiting would never end.
async fn recheck(tracker: Arc<Tracker>, conn: zbus::Connection) {
    let check = async {
        let proxy = ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        match proxy.subscribe().await {
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" => {}
            other => other?,
        }
        let mut gone = Vec::new();
        for job in tracker.waited_jobs() {
            let props = proxy::PropertiesProxy::builder(&conn)
                .path(job.clone())?
                .cache_properties(CacheProperties::No)
                .build()
                .await?;
            match props.get("org.freedesktop.systemd1.Job", "Id").await {
                Err(zbus::Error::MethodError(name, _, _))
                    if name.as_str() == "org.freedesktop.DBus.Error.UnknownObject" =>
                {
                    gone.push(job);
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        for job in gone {
            tracker.fail_job(&job, Lost::Result);
        }
        Ok::<_, zbus::Error>(())
    };
    if let Err(e) = check.await {
        log::debug!("checking the jobs waited for after the manager's return failed: {e}");
    }
}
