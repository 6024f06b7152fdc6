//! Template instances with per-instance settings: `console@<escaped id>.service`, started,
//! listed and stopped over D-Bus, each with its own settings, with no daemon-reload per
//! instance.
//!
//! This is the job OpenStack Ironic's node consoles do by rendering a Quadlet file per node,
//! running `systemctl daemon-reload` and `systemctl start`, done with one template instead:
//!
//! * The instance of `TEMPLATE` for an arbitrary `ID` is exactly `systemd-escape
//!   --template=TEMPLATE ID` ([`unit_name`]).
//! * Its settings live in one file named by the instance unit name ([`store`]); the template's
//!   commands read them through `unitwright instance exec` ([`exec`]), which the generator puts
//!   in front of every podman command that refers to `${KEY}` when the Quadlet file has
//!   `[X-Unitwright] InstanceSettings=yes` (`crate::quadlet::settings`). The settings file is
//!   found by `%n` passed as an argument, which systemd hands over byte-exact; so ids that
//!   escape to names differing only by `\x` sequences (`a-b` → `a\x2db`, `ax2db`) never share
//!   settings.
//! * [`Instances`] is the API: [`Instances::start`] stores the settings (allocating
//!   `auto-port` values), starts the unit and waits for the job; a failed start removes the
//!   settings and resets the unit's failed state, so nothing is left behind.
//!   [`Instances::stop`], [`Instances::stop_all`] (concurrently; what a service runs at its
//!   own startup and shutdown) and [`Instances::list`] complete it.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use unitwright::bus::Scope;
//! use unitwright::instance::Instances;
//!
//! # async fn demo() -> Result<(), unitwright::instance::Error> {
//! let consoles = Instances::connect(Scope::User).await?;
//! let mut settings = BTreeMap::new();
//! settings.insert("IMAGE".to_owned(), "localhost/console".to_owned());
//! settings.insert("PORT".to_owned(), "auto-port".to_owned());
//! let started = consoles.start("console@.service", "node 7/a:b", settings).await?;
//! println!("{} listens on {}", started.unit, started.settings["PORT"]);
//! consoles.stop_all("console@.service").await?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt as _;

use crate::bus::{self, JobOptions, JobVerb, Manager, Scope};
use crate::escape::{self, Kinds};

pub mod exec;
pub mod expand;
pub mod published;
pub mod store;
pub mod template;

pub use store::{Settings, Store, AUTO_PORT};
pub use template::TemplateInfo;

/// Everything that can go wrong with instances.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--persistent` needs a state directory.
    #[error(
        "no directory for persistent settings: --user needs $XDG_STATE_HOME or $HOME (absolute)"
    )]
    NoStateDir,
    /// `--user` needs `$XDG_RUNTIME_DIR` to find the settings directory.
    #[error("$XDG_RUNTIME_DIR is not set (or not absolute); it is needed to find the settings of the user manager's units")]
    NoRuntimeDir,
    /// Not a template unit name.
    #[error("{name:?} is not a template unit name such as console@.service")]
    BadTemplate {
        /// What was given.
        name: String,
    },
    /// An id that cannot be an instance of the template.
    #[error("cannot make an instance of {template} for id {id:?}: {source}")]
    BadId {
        /// The template.
        template: String,
        /// The id.
        id: String,
        /// Why (empty id, name over 255 bytes).
        #[source]
        source: escape::Error,
    },
    /// Not a valid unit name (settings files are named by unit names).
    #[error("{name:?} is not a valid unit name")]
    BadUnitName {
        /// What was given.
        name: String,
    },
    /// A setting that cannot be stored (bad or reserved name, NUL in the value).
    #[error("setting {why}")]
    BadSetting {
        /// Why, naming the key.
        why: String,
    },
    /// A settings key that is not a variable name.
    #[error("setting {key:?}: a key must be a variable name (letters, digits and _, not starting with a digit)")]
    BadKey {
        /// The key.
        key: String,
    },
    /// A settings value that cannot be put into the environment.
    #[error(
        "setting {key}: the value contains a NUL byte, which cannot be in an environment variable"
    )]
    BadValue {
        /// The key.
        key: String,
    },
    /// Reading or writing the settings store failed.
    #[error("{what}: {source}")]
    Store {
        /// What was done, with the path.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A settings file that does not parse.
    #[error("{}: not a valid settings file: {detail}", path.display())]
    BadSettings {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// The unit has no settings.
    #[error("no settings for {unit}: start it with `unitwright instance start` (which stores them), not directly")]
    NoSettings {
        /// The unit.
        unit: String,
    },
    /// Required settings are missing.
    #[error("{unit}: missing required setting(s) {}: pass them with `unitwright instance start ... --set KEY=VALUE`{}", keys.join(", "), unread_hint(unread))]
    MissingSettings {
        /// The unit.
        unit: String,
        /// The missing keys.
        keys: Vec<String>,
        /// Keys that were given but that the template does not read, each with the missing
        /// key it is closest to (a misspelling), if any.
        unread: Vec<(String, Option<String>)>,
    },
    /// `instance exec` without a command.
    #[error("no command given after --")]
    NoCommand,
    /// The command could not be executed.
    #[error("cannot execute {program}: {source}")]
    Exec {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The template is not known to the manager.
    #[error(
        "template {template} not found (is the Quadlet file installed and the manager reloaded?){}",
        templates_hint(template, templates.as_deref())
    )]
    NoTemplate {
        /// The template.
        template: String,
        /// The templates of its unit type the manager has (`*@.service`), sorted; `None`
        /// when they could not be listed.
        templates: Option<Vec<String>>,
    },
    /// The instance is already running with other settings, or starting or stopping (its
    /// settings cannot change under it). Running with the same settings is no error.
    #[error("{unit} is already {state}; stop it first, or use `instance start --replace` to restart it with new settings")]
    AlreadyActive {
        /// The unit.
        unit: String,
        /// Its active state.
        state: String,
    },
    /// Another `instance start`/`restart`/`stop` of the same instance is in progress.
    #[error("{unit} is already starting or stopping: another unitwright process holds its lock; nothing was changed")]
    Busy {
        /// The unit.
        unit: String,
    },
    /// Settings for the instance appeared while it was being started (a writer that does not
    /// take the instance's lock).
    #[error(
        "settings of {unit} already exist and were not written by this start; nothing was changed"
    )]
    SettingsExist {
        /// The unit.
        unit: String,
    },
    /// The template's commands do not read instance settings.
    #[error("{template} does not read instance settings (no [X-Unitwright] InstanceSettings=yes in its Quadlet file, and no command runs `unitwright instance exec`; see {fragment}): the settings given would be ignored, so {unit} was not started")]
    IgnoresSettings {
        /// The template.
        template: String,
        /// The instance unit.
        unit: String,
        /// The unit file read.
        fragment: String,
    },
    /// The start job is still running when the wait ended; the settings are kept.
    #[error("{unit} is still starting after {} s (the start job continues; its settings are kept; `unitwright instance stop` ends it)", .after.as_secs_f64())]
    StillStarting {
        /// The unit.
        unit: String,
        /// How long it was waited for.
        after: std::time::Duration,
    },
    /// The start job failed; the settings were removed and the failed state reset.
    #[error("starting {unit} failed: {why} (its settings were removed)")]
    StartFailed {
        /// The unit.
        unit: String,
        /// The job result and exit status.
        why: String,
        /// Whether it is a unit of the user manager.
        user: bool,
        /// The failed job (with the unit's state read right after it: result, exit status and
        /// the PIDs of the processes it ran, whose output explains the failure), when a job
        /// result was had.
        job: Option<Box<bus::JobOutcome>>,
        /// When the job was queued (µs since the epoch): the unit's output since then is that
        /// of this start.
        since_usec: u64,
    },
    /// The restart job failed; the settings were kept.
    #[error("restarting {unit} failed: {why} (its settings were kept)")]
    RestartFailed {
        /// The unit.
        unit: String,
        /// The job result and exit status.
        why: String,
        /// Whether it is a unit of the user manager.
        user: bool,
        /// The failed job, as for [`Error::StartFailed`].
        job: Option<Box<bus::JobOutcome>>,
        /// When the job was queued (µs since the epoch).
        since_usec: u64,
    },
    /// A D-Bus failure.
    #[error(transparent)]
    Bus(Box<bus::Error>),
}

/// What [`Error::MissingSettings`] adds about the keys given that the template does not read.
fn unread_hint(unread: &[(String, Option<String>)]) -> String {
    let mut hint = String::new();
    for (key, closest) in unread {
        let _ = write!(hint, "; {key} is not a setting the template reads");
        if let Some(closest) = closest {
            let _ = write!(hint, ": did you mean {closest}?");
        }
    }
    hint
}

/// What [`Error::NoTemplate`] adds: the closest template the manager has, and which it has.
fn templates_hint(template: &str, templates: Option<&[String]>) -> String {
    /// More than this many are not listed one by one.
    const LISTED: usize = 10;
    let Some(templates) = templates else {
        return String::new();
    };
    let kind = template.rsplit_once('.').map_or("", |(_, t)| t);
    if templates.is_empty() {
        return format!("; the manager has no *@.{kind} template");
    }
    let known: Vec<&str> = templates.iter().map(String::as_str).collect();
    let mut hint = String::from("; ");
    if let Some(closest) = crate::lifecycle::lint::did_you_mean(template, &known) {
        hint.push_str(&closest);
        hint.push(' ');
    }
    let _ = write!(hint, "(the manager's *@.{kind} templates: ");
    hint.push_str(&known[..known.len().min(LISTED)].join(", "));
    if known.len() > LISTED {
        let _ = write!(hint, " and {} more", known.len() - LISTED);
    }
    hint.push(')');
    hint
}

/// The exit status of `instance exec` when the instance's settings are missing, incomplete or
/// unreadable (`EX_CONFIG` from sysexits.h; podman never uses it).
pub const EXIT_SETTINGS: u8 = 78;

/// The exit status of the job verbs when a unit does not exist (systemctl's, LSB "program is
/// not installed"); the instance verbs use it for a template that does not exist.
pub const EXIT_NOT_FOUND: u8 = 5;
/// The exit status of the job verbs when the wait ended before the job (as timeout(1)).
pub const EXIT_TIMEOUT: u8 = 124;
/// The exit status of a usage error (a name or setting that can never be valid).
pub const EXIT_USAGE: u8 = 2;

impl Error {
    /// The exit status of the `instance` verbs (other than `exec`) for this error, as the job
    /// verbs': [`EXIT_NOT_FOUND`] for a template or unit that does not exist,
    /// [`EXIT_TIMEOUT`] when the wait ended first (the job continues), [`EXIT_USAGE`] for a
    /// template name, id or setting that cannot be valid, 1 otherwise.
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::NoTemplate { .. } => EXIT_NOT_FOUND,
            Error::Bus(e) if matches!(**e, bus::Error::NoSuchUnit { .. }) => EXIT_NOT_FOUND,
            Error::StillStarting { .. } => EXIT_TIMEOUT,
            Error::Bus(e) if e.is_timeout() => EXIT_TIMEOUT,
            Error::BadTemplate { .. }
            | Error::BadId { .. }
            | Error::BadSetting { .. }
            | Error::BadKey { .. }
            | Error::BadValue { .. } => EXIT_USAGE,
            _ => 1,
        }
    }

    /// The exit status `instance exec` ends with for this error: [`EXIT_SETTINGS`] for
    /// settings problems, 127 when the command does not exist and 126 when it cannot be run
    /// (as shells do), 1 otherwise.
    pub fn exec_exit_status(&self) -> u8 {
        match self {
            Error::NoSettings { .. }
            | Error::MissingSettings { .. }
            | Error::BadSettings { .. }
            | Error::Store { .. } => EXIT_SETTINGS,
            Error::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            Error::Exec { .. } => 126,
            _ => 1,
        }
    }
}

impl From<bus::Error> for Error {
    fn from(e: bus::Error) -> Self {
        Error::Bus(Box::new(e))
    }
}

/// The instance unit of `template` for `id`: exactly `systemd-escape --template=TEMPLATE ID`.
pub fn unit_name(template: &str, id: &str) -> Result<String, Error> {
    check_template(template)?;
    escape::escape_instance(template, id).map_err(|source| Error::BadId {
        template: template.to_owned(),
        id: id.to_owned(),
        source,
    })
}

fn check_template(template: &str) -> Result<(), Error> {
    if escape::is_valid(template, Kinds::TEMPLATE) {
        Ok(())
    } else {
        Err(Error::BadTemplate {
            name: template.to_owned(),
        })
    }
}

/// The glob matching every instance of `template` (`console@*.service`).
fn pattern(template: &str) -> String {
    template.replacen("@.", "@*.", 1)
}

/// Whether `unit` is an instance of `template`.
fn is_instance_of(unit: &str, template: &str) -> bool {
    escape::is_valid(unit, Kinds::INSTANCE)
        && escape::template_of(unit).is_ok_and(|t| t == template)
}

/// The id of an instance unit (the unescaped instance).
fn id_of(unit: &str) -> String {
    escape::unescape_instance(unit)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A started instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The instance unit.
    pub unit: String,
    /// The id.
    pub id: String,
    /// `ActiveState` after the start job.
    pub active_state: String,
    /// `SubState` after the start job.
    pub sub_state: String,
    /// The stored settings, with allocated values filled in.
    pub settings: BTreeMap<String, String>,
}

/// One instance as [`Instances::list`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    /// The instance unit.
    pub unit: String,
    /// The id.
    pub id: String,
    /// `LoadState` (`not-loaded` when the manager does not have it loaded).
    pub load_state: String,
    /// `ActiveState` (`inactive` when not loaded).
    pub active_state: String,
    /// `SubState` (`dead` when not loaded).
    pub sub_state: String,
    /// Whether settings are stored for it.
    pub has_settings: bool,
    /// Whether they are in the persistent store (`--persistent`).
    pub persistent: bool,
    /// The keys of its settings (never the values).
    pub keys: Vec<String>,
}

/// What [`Instances::show`] reports about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    /// The instance unit.
    pub unit: String,
    /// The id.
    pub id: String,
    /// `LoadState`.
    pub load_state: String,
    /// `ActiveState`.
    pub active_state: String,
    /// `SubState`.
    pub sub_state: String,
    /// Whether settings are stored for it.
    pub has_settings: bool,
    /// Whether they are in the persistent store (`--persistent`).
    pub persistent: bool,
    /// The settings, with the values of [`Details::secret_keys`] replaced by [`MASK`].
    pub settings: BTreeMap<String, String>,
    /// The keys the template declares secret (`SecretSettings=`) that are set.
    pub secret_keys: Vec<String>,
    /// The TCP addresses its processes listen on in this network namespace
    /// ([`published::published`]), e.g. `127.0.0.1:41234`.
    pub published: Vec<String>,
    /// Memory, CPU time, tasks and CPU set, as the manager accounts them.
    pub resources: bus::Resources,
}

/// What [`Details::settings`] shows instead of a secret value.
pub const MASK: &str = "********";

/// How one instance's stop went.
#[derive(Debug)]
pub struct Stopped {
    /// The instance unit.
    pub unit: String,
    /// The stop job's outcome, or why there is none (a unit that was not loaded is not
    /// stopped, only its settings are removed).
    pub outcome: Option<Result<bus::JobOutcome, bus::Error>>,
    /// Whether settings were removed.
    pub removed_settings: bool,
}

impl Stopped {
    /// Why it failed, if it did.
    pub fn failure(&self) -> Option<String> {
        match &self.outcome {
            Some(Err(e)) => Some(e.to_string()),
            Some(Ok(o)) => o
                .failure()
                .map(|why| format!("stop of {} failed: {why}", self.unit)),
            None => None,
        }
    }
}

/// Whether an active state means the unit runs (or is on its way up or down).
fn is_running(active_state: &str) -> bool {
    matches!(
        active_state,
        "active" | "activating" | "reloading" | "deactivating"
    )
}

/// How long to wait for a start of the unit in `state` (see [`START_MARGIN`]).
fn start_wait(state: &bus::UnitState) -> Duration {
    match state.service.as_ref().map(|s| s.timeout_start_usec) {
        Some(u64::MAX) => Duration::MAX,
        Some(usec) if usec > 0 => Duration::from_micros(usec).saturating_add(START_MARGIN),
        _ => DEFAULT_START_WAIT,
    }
}

/// Why a start (or restart) job failed, if it did.
fn start_failure(outcome: &Result<bus::JobOutcome, Error>) -> Option<String> {
    match outcome {
        Err(e) => Some(e.to_string()),
        Ok(o) => o
            .failure()
            .map(|why| {
                let service = o.state.as_ref().and_then(|s| s.service.as_ref());
                if service.is_some_and(|s| {
                    s.exec_main_code == 1 && s.exec_main_status == i32::from(EXIT_SETTINGS)
                }) {
                    format!("{why}: the settings are missing or incomplete (a required setting is not set)")
                } else {
                    why
                }
            })
            .or_else(|| {
                o.condition_failed()
                    .then(|| "a Condition*= of the unit was not met".to_owned())
            }),
    }
}

/// Whether `given` (as passed to a start) are the settings `stored` holds: the same keys, each
/// with the same value, or `auto-port` where a port was allocated for it.
fn same_settings(stored: &Settings, given: &BTreeMap<String, String>) -> bool {
    stored.settings.len() == given.len()
        && given.iter().all(|(k, v)| match stored.settings.get(k) {
            Some(old) => old == v || (v == AUTO_PORT && stored.auto.contains(k)),
            None => false,
        })
}

/// How many stop jobs [`Instances::stop_all`] keeps in flight.
pub const STOP_CONCURRENCY: usize = 16;

/// Instances of templates on one manager, with their settings store.
#[derive(Debug, Clone)]
pub struct Instances {
    manager: Manager,
    store: Store,
    persistent: Option<Store>,
    timeout: Option<Duration>,
}

/// Options of [`Instances::start_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartOptions {
    /// What to do with a running instance.
    pub if_active: IfActive,
    /// Store the settings in the persistent store ([`Store::persistent_for_manager`]), where
    /// they survive a reboot, instead of the runtime one.
    pub persistent: bool,
}

/// How [`Instances::start_with`] treats an instance that is already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfActive {
    /// Refuse ([`Error::AlreadyActive`]).
    #[default]
    Refuse,
    /// Stop it, then start it with the new settings; an `auto-port` key that had an
    /// allocated port keeps that port.
    Replace,
}

/// How long to wait for a start job when no `--timeout` is given: the unit's own
/// `TimeoutStartUSec` (after which the manager fails the start itself) plus this margin for
/// the job's queueing and the result's delivery.
pub const START_MARGIN: Duration = Duration::from_secs(15);

/// The wait when the unit's start timeout cannot be read: systemd's default
/// `DefaultTimeoutStartSec=` (90 s) plus [`START_MARGIN`].
pub const DEFAULT_START_WAIT: Duration = Duration::from_secs(90 + 15);

impl Instances {
    /// Connects to the manager of `scope` and uses its settings directory
    /// ([`Store::for_manager`]). Job waits are not limited by the connection: a start waits
    /// as long as the unit allows ([`Instances::with_timeout`] overrides), a stop as long as
    /// the manager takes (it kills what does not stop within `TimeoutStopSec=`).
    pub async fn connect(scope: Scope) -> Result<Self, Error> {
        let store = Store::for_manager(scope == Scope::User)?;
        let persistent = Store::persistent_for_manager(scope == Scope::User).ok();
        let options = bus::Options {
            timeouts: bus::Timeouts {
                unit: None,
                ..bus::Timeouts::default()
            },
            ..bus::Options::default()
        };
        let mut instances = Instances::new(Manager::connect_with(scope, &options).await?, store);
        instances.persistent = persistent;
        Ok(instances)
    }

    /// Uses an existing connection and store. Job waits are also bounded by the manager's
    /// own [`bus::Timeouts::unit`].
    pub fn new(manager: Manager, store: Store) -> Self {
        Instances {
            manager,
            store,
            persistent: None,
            timeout: None,
        }
    }

    /// Uses `store` for the settings of `--persistent` instances (see
    /// [`Store::persistent_for_manager`]).
    #[must_use]
    pub fn with_persistent_store(mut self, store: Store) -> Self {
        self.persistent = Some(store);
        self
    }

    /// The runtime store, then the persistent one (if any).
    fn stores(&self) -> impl Iterator<Item = &Store> {
        std::iter::once(&self.store).chain(self.persistent.as_ref())
    }

    /// The settings of `unit` from whichever store has them (the runtime one first), and
    /// whether they are persistent.
    fn read_any(&self, unit: &str) -> Result<Option<(Settings, bool)>, Error> {
        for (i, store) in self.stores().enumerate() {
            if let Some(s) = store.read(unit)? {
                return Ok(Some((s, i > 0)));
            }
        }
        Ok(None)
    }

    /// The units with settings in any store.
    fn stored_units(&self) -> Result<BTreeSet<String>, Error> {
        let mut units = BTreeSet::new();
        for store in self.stores() {
            units.extend(store.units()?);
        }
        Ok(units)
    }

    /// Removes the settings of `unit` from every store; true if there were any.
    fn remove_settings(&self, unit: &str) -> Result<bool, Error> {
        let mut removed = false;
        for store in self.stores() {
            removed |= store.remove(unit)?;
        }
        Ok(removed)
    }

    /// Waits at most `limit` for each start, restart or stop job, instead of the unit's own
    /// start timeout (starts) or as long as the manager takes (stops).
    #[must_use]
    pub fn with_timeout(mut self, limit: Option<Duration>) -> Self {
        self.timeout = limit;
        self
    }

    /// The manager connection.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// The settings store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores `settings` for the instance of `template` for `id` (values `auto-port` become
    /// free ports on 127.0.0.1), starts it and waits for the job. Refuses an instance that is
    /// already running. On failure the settings are removed, the unit's failed state is reset,
    /// and the error says why ([`Error::StartFailed`]).
    pub async fn start(
        &self,
        template: &str,
        id: &str,
        settings: BTreeMap<String, String>,
    ) -> Result<Started, Error> {
        self.start_with(template, id, settings, StartOptions::default())
            .await
    }

    /// [`Instances::start`], with the choice of what to do with a running instance.
    ///
    /// The whole start holds the instance's lock ([`Store::instance_lock`]): from the check
    /// that it is not active to the job's result, so a concurrent start, restart or stop of
    /// the same instance is refused ([`Error::Busy`]) and this start's failure cleanup can
    /// only remove the settings it wrote itself. Before anything is written, the unit file
    /// is read ([`TemplateInfo`]): a template whose commands do not read settings is refused
    /// ([`Error::IgnoresSettings`]), and so are missing required settings
    /// ([`Error::MissingSettings`], naming each). The wait is the unit's `TimeoutStartUSec`
    /// plus [`START_MARGIN`] unless [`Instances::with_timeout`] says otherwise; a start
    /// still running when the wait ends keeps its settings ([`Error::StillStarting`]).
    pub async fn start_with(
        &self,
        template: &str,
        id: &str,
        settings: BTreeMap<String, String>,
        options: StartOptions,
    ) -> Result<Started, Error> {
        let unit = unit_name(template, id)?;
        let target = if options.persistent {
            self.persistent.as_ref().ok_or(Error::NoStateDir)?
        } else {
            &self.store
        };
        for (k, v) in &settings {
            store::check_setting(k, v).map_err(|why| Error::BadSetting { why })?;
        }
        let lock = self
            .store
            .instance_lock(&unit, false)?
            .ok_or_else(|| Error::Busy { unit: unit.clone() })?;
        let result = self
            .start_locked(template, id, &unit, target, settings, options)
            .await;
        // An instance that has no settings after this start (refused, or failed and cleaned
        // up) is gone: its lock file goes too, so nothing is left in the settings directory.
        if result.is_err() && matches!(self.read_any(&unit), Ok(None)) {
            lock.remove();
        } else {
            drop(lock);
        }
        result
    }

    /// The part of [`Instances::start_with`] done under the instance's lock.
    async fn start_locked(
        &self,
        template: &str,
        id: &str,
        unit: &str,
        target: &Store,
        settings: BTreeMap<String, String>,
        options: StartOptions,
    ) -> Result<Started, Error> {
        let unit = unit.to_owned();
        let state = match self.manager.unit_status(&unit).await {
            Ok(state) => state,
            Err(bus::Error::NoSuchUnit { .. }) => return Err(self.no_template(template).await),
            Err(e) => return Err(e.into()),
        };
        if !state.fragment_path.is_empty() {
            if let Some(info) = TemplateInfo::read(Path::new(&state.fragment_path)) {
                if !info.reads_settings && !settings.is_empty() {
                    return Err(Error::IgnoresSettings {
                        template: template.to_owned(),
                        unit,
                        fragment: state.fragment_path,
                    });
                }
                let missing: Vec<String> = info
                    .required
                    .iter()
                    .filter(|k| !settings.contains_key(*k))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    let candidates: Vec<&str> = missing.iter().map(String::as_str).collect();
                    let unread = settings
                        .keys()
                        .filter(|k| !info.reads(k))
                        .map(|k| {
                            let closest = crate::lifecycle::lint::closest(k, &candidates);
                            (k.clone(), closest.map(str::to_owned))
                        })
                        .collect();
                    return Err(Error::MissingSettings {
                        unit,
                        keys: missing,
                        unread,
                    });
                }
            }
        }
        let mut previous_ports = BTreeMap::new();
        if is_running(&state.active_state) {
            if options.if_active == IfActive::Refuse {
                // As `start` of an active unit: nothing to do when it runs with these very
                // settings (a repeated start in a script or a configuration tool).
                if state.active_state == "active" {
                    if let Ok(Some((old, persistent))) = self.read_any(&unit) {
                        if persistent == options.persistent && same_settings(&old, &settings) {
                            return Ok(Started {
                                unit,
                                id: old.id,
                                active_state: state.active_state,
                                sub_state: state.sub_state,
                                settings: old.settings,
                            });
                        }
                    }
                }
                return Err(Error::AlreadyActive {
                    unit,
                    state: state.active_state,
                });
            }
            if let Ok(Some((old, _))) = self.read_any(&unit) {
                for key in old.auto {
                    if let Some(port) = old.settings.get(&key) {
                        previous_ports.insert(key, port.clone());
                    }
                }
            }
            let since_usec = bus::now_usec();
            let stopped = self.wait(self.stop_job(&unit), &unit, None).await?;
            if let Some(why) = stopped.failure() {
                return Err(Error::StartFailed {
                    unit: unit.clone(),
                    why: format!("stopping the running instance failed: {why}"),
                    user: self.manager.scope() == Scope::User,
                    job: Some(Box::new(stopped)),
                    since_usec,
                });
            }
        }
        let mut stored = Settings {
            unit: unit.clone(),
            id: id.to_owned(),
            settings,
            auto: Vec::new(),
        };
        {
            let _store_lock = self.store.lock()?;
            // Settings without a running unit are left over (the unit was stopped by systemd
            // or died): this start replaces them. Nobody else writes them while we hold the
            // instance's lock.
            self.remove_settings(&unit)?;
            for (key, port) in &previous_ports {
                if stored.settings.get(key).map(String::as_str) == Some(AUTO_PORT) {
                    stored.settings.insert(key.clone(), port.clone());
                    stored.auto.push(key.clone());
                }
            }
            let others: Vec<&Store> = self.stores().collect();
            target.allocate_ports(&mut stored, &others)?;
            target.create(&stored)?;
        }
        let limit = self.timeout.unwrap_or_else(|| start_wait(&state));
        let since_usec = bus::now_usec();
        let outcome = match self
            .wait(self.manager.start(&unit), &unit, Some(limit))
            .await
        {
            Err(Error::StillStarting { unit, after }) => {
                return Err(Error::StillStarting { unit, after })
            }
            other => other,
        };
        if let Some(why) = start_failure(&outcome) {
            // Nothing is left behind: no pending automatic restart (Restart=), no settings, no
            // failed unit. The settings are ours: we hold the instance's lock.
            let _ = self.manager.stop(&unit).await;
            let _ = target.remove(&unit);
            let _ = self.manager.reset_failed(Some(&unit)).await;
            return Err(Error::StartFailed {
                unit,
                why,
                user: self.manager.scope() == Scope::User,
                job: outcome.ok().map(Box::new),
                since_usec,
            });
        }
        let (active_state, sub_state) = self.states(&unit, outcome.ok()).await;
        Ok(Started {
            unit,
            id: id.to_owned(),
            active_state,
            sub_state,
            settings: stored.settings,
        })
    }

    /// Restarts the instance of `template` for `id` with its stored settings (so allocated
    /// ports stay the same), holding its lock; waits like [`Instances::start_with`]. A failed
    /// restart keeps the settings (they were in use) and says why.
    pub async fn restart(&self, template: &str, id: &str) -> Result<Started, Error> {
        let unit = unit_name(template, id)?;
        let lock = self
            .store
            .instance_lock(&unit, false)?
            .ok_or_else(|| Error::Busy { unit: unit.clone() })?;
        let stored = self.read_any(&unit)?;
        let state = match self.manager.unit_status(&unit).await {
            Err(bus::Error::NoSuchUnit { .. }) if stored.is_none() => {
                return Err(self.no_template(template).await)
            }
            state => state?,
        };
        let (stored, _) = stored.ok_or_else(|| Error::NoSettings { unit: unit.clone() })?;
        let limit = self.timeout.unwrap_or_else(|| start_wait(&state));
        let since_usec = bus::now_usec();
        let outcome = self
            .wait(self.manager.restart(&unit), &unit, Some(limit))
            .await;
        if let Err(e @ Error::StillStarting { .. }) = outcome {
            return Err(e);
        }
        drop(lock);
        if let Some(why) = start_failure(&outcome) {
            return Err(Error::RestartFailed {
                unit,
                why,
                user: self.manager.scope() == Scope::User,
                job: outcome.ok().map(Box::new),
                since_usec,
            });
        }
        let (active_state, sub_state) = self.states(&unit, outcome.ok()).await;
        Ok(Started {
            unit,
            id: stored.id,
            active_state,
            sub_state,
            settings: stored.settings,
        })
    }

    /// The active and sub state after a successful start: the start job's reading has only
    /// the active state of a started unit, so both are read afresh (one call).
    async fn states(&self, unit: &str, outcome: Option<bus::JobOutcome>) -> (String, String) {
        let mut state = outcome.and_then(|o| o.state);
        if state.as_ref().map_or(true, |s| {
            s.active_state.is_empty() || s.sub_state.is_empty()
        }) {
            if let Ok(fresh) = self.manager.unit_status(unit).await {
                state = Some(fresh);
            }
        }
        state.map_or_else(Default::default, |s| (s.active_state, s.sub_state))
    }

    /// Stops `unit` and waits for the job, at most [`Instances::with_timeout`]'s limit.
    async fn stop_job(&self, unit: &str) -> Result<bus::JobOutcome, bus::Error> {
        let options = JobOptions {
            timeout: self.timeout,
            ..JobOptions::default()
        };
        self.manager.job(JobVerb::Stop, unit, options).await
    }

    /// Waits for `job` at most `limit` (or [`Instances::with_timeout`]'s limit, or without
    /// limit); expiry is [`Error::StillStarting`].
    async fn wait(
        &self,
        job: impl std::future::Future<Output = Result<bus::JobOutcome, bus::Error>>,
        unit: &str,
        limit: Option<Duration>,
    ) -> Result<bus::JobOutcome, Error> {
        match limit.or(self.timeout) {
            Some(after) => match tokio::time::timeout(after, job).await {
                Ok(r) => r.map_err(Error::from),
                Err(_) => Err(Error::StillStarting {
                    unit: unit.to_owned(),
                    after,
                }),
            },
            None => job.await.map_err(Error::from),
        }
    }

    /// Stops the instance of `template` for `id`, waits for the job, removes its settings and
    /// resets its failed state (a container stopped by a signal may count as failed).
    pub async fn stop(&self, template: &str, id: &str) -> Result<Stopped, Error> {
        let unit = unit_name(template, id)?;
        Ok(self.stop_units(vec![unit], &[]).await?.remove(0))
    }

    /// Stops every loaded instance of `template` concurrently ([`STOP_CONCURRENCY`] at a time)
    /// and removes the settings of all
    /// its instances, loaded or not (what a service runs at its startup and shutdown to start
    /// from a clean state). The result has one entry per instance, sorted by unit.
    pub async fn stop_all(&self, template: &str) -> Result<Vec<Stopped>, Error> {
        check_template(template)?;
        let loaded: Vec<String> = self
            .manager
            .list_units(&[pattern(template)])
            .await?
            .into_iter()
            .map(|u| u.name)
            .filter(|n| is_instance_of(n, template))
            .collect();
        let stored: Vec<String> = self
            .stored_units()?
            .into_iter()
            .filter(|n| is_instance_of(n, template) && !loaded.contains(n))
            .collect();
        self.stop_units(loaded, &stored).await
    }

    /// Stops `loaded` concurrently, then removes the settings of `loaded` and `unloaded`.
    async fn stop_units(
        &self,
        loaded: Vec<String>,
        unloaded: &[String],
    ) -> Result<Vec<Stopped>, Error> {
        // At most STOP_CONCURRENCY jobs in flight: a hundred podman stops at once take longer
        // than a job's time limit on a small machine (measured: 2 cores, 100 consoles).
        // The limit is the job's own (JobOptions::timeout), so that its expiry names the job,
        // which keeps running in the manager.
        let outcomes: Vec<_> = futures_util::stream::iter(loaded.iter().map(|u| self.stop_job(u)))
            .buffered(STOP_CONCURRENCY)
            .collect()
            .await;
        let mut result = Vec::new();
        for (unit, outcome) in loaded.into_iter().zip(outcomes) {
            let removed_settings = self.forget(&unit)?;
            // A container stopped by a signal can leave the unit failed: leave nothing behind.
            if outcome.as_ref().is_ok_and(bus::JobOutcome::is_success) {
                if let Ok(state) = self.manager.unit_status(&unit).await {
                    if state.active_state == "failed" {
                        let _ = self.manager.reset_failed(Some(&unit)).await;
                    }
                }
            }
            result.push(Stopped {
                unit,
                outcome: Some(outcome),
                removed_settings,
            });
        }
        for unit in unloaded {
            result.push(Stopped {
                unit: unit.clone(),
                outcome: None,
                removed_settings: self.forget(unit)?,
            });
        }
        result.sort_by(|a, b| a.unit.cmp(&b.unit));
        Ok(result)
    }

    /// The instance of `template` for `id`: its state, its settings (secret values masked),
    /// the addresses it actually listens on, and its resource use.
    pub async fn show(&self, template: &str, id: &str) -> Result<Details, Error> {
        let unit = unit_name(template, id)?;
        let stored = self.read_any(&unit)?;
        let persistent = stored.as_ref().is_some_and(|(_, p)| *p);
        let stored = stored.map(|(s, _)| s);
        let state = match self.manager.unit_status(&unit).await {
            Ok(state) => state,
            Err(bus::Error::NoSuchUnit { .. }) if stored.is_none() => {
                return Err(self.no_template(template).await)
            }
            Err(bus::Error::NoSuchUnit { .. }) => bus::UnitState {
                load_state: "not-found".to_owned(),
                active_state: "inactive".to_owned(),
                sub_state: "dead".to_owned(),
                ..bus::UnitState::default()
            },
            Err(e) => return Err(e.into()),
        };
        let secret = TemplateInfo::read(Path::new(&state.fragment_path))
            .map(|i| i.secret)
            .unwrap_or_default();
        let published = if is_running(&state.active_state) {
            let pids: Vec<u32> = self
                .manager
                .unit_processes(&unit)
                .await
                .map(|ps| ps.into_iter().map(|p| p.pid).collect())
                .unwrap_or_default();
            published::published(&state.resources.control_group, &pids)
        } else {
            Vec::new()
        };
        let mut settings = stored
            .as_ref()
            .map(|s| s.settings.clone())
            .unwrap_or_default();
        let mut secret_keys = Vec::new();
        for (k, v) in &mut settings {
            if secret.contains(k) {
                MASK.clone_into(v);
                secret_keys.push(k.clone());
            }
        }
        Ok(Details {
            id: stored
                .as_ref()
                .map_or_else(|| id.to_owned(), |s| s.id.clone()),
            unit,
            load_state: state.load_state,
            active_state: state.active_state,
            sub_state: state.sub_state,
            has_settings: stored.is_some(),
            persistent,
            settings,
            secret_keys,
            published,
            resources: state.resources,
        })
    }

    /// [`Error::NoTemplate`] for `template`, naming the templates of its type the manager has
    /// (none named when they cannot be listed).
    async fn no_template(&self, template: &str) -> Error {
        let kind = template.rsplit_once('.').map_or("service", |(_, t)| t);
        Error::NoTemplate {
            template: template.to_owned(),
            templates: self
                .manager
                .unit_file_names(&[format!("*@.{kind}")])
                .await
                .ok(),
        }
    }

    /// [`Error::NoTemplate`] if the manager has no unit file `template` (for a listing or a
    /// stop of all instances that found none, to tell a mistyped name from no instances).
    pub async fn check_template(&self, template: &str) -> Result<(), Error> {
        check_template(template)?;
        if self.manager.unit_file_names(&[template]).await?.is_empty() {
            return Err(self.no_template(template).await);
        }
        Ok(())
    }

    /// Removes the settings of `unit`, and its lock file unless a start holds it.
    fn forget(&self, unit: &str) -> Result<bool, Error> {
        let removed = self.remove_settings(unit)?;
        if let Ok(Some(lock)) = self.store.instance_lock(unit, false) {
            lock.remove();
        }
        Ok(removed)
    }

    /// The instances of `template`: those the manager has loaded and not inactive, and those
    /// with stored settings; sorted by unit. Settings are reported by key only.
    pub async fn list(&self, template: &str) -> Result<Vec<InstanceInfo>, Error> {
        check_template(template)?;
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let stored: BTreeSet<String> = self
            .stored_units()?
            .into_iter()
            .filter(|n| is_instance_of(n, template))
            .collect();
        for u in self.manager.list_units(&[pattern(template)]).await? {
            if !is_instance_of(&u.name, template)
                || (u.active_state == "inactive" && !stored.contains(&u.name))
            {
                continue;
            }
            seen.insert(u.name.clone());
            out.push(self.info(&u.name, u.load_state, u.active_state, u.sub_state));
        }
        for unit in stored.into_iter().filter(|u| !seen.contains(u)) {
            out.push(self.info(
                &unit,
                "not-loaded".to_owned(),
                "inactive".to_owned(),
                "dead".to_owned(),
            ));
        }
        out.sort_by(|a, b| a.unit.cmp(&b.unit));
        Ok(out)
    }

    fn info(&self, unit: &str, load: String, active: String, sub: String) -> InstanceInfo {
        let found = self.read_any(unit).ok().flatten();
        let persistent = found.as_ref().is_some_and(|(_, p)| *p);
        let settings = found.map(|(s, _)| s);
        InstanceInfo {
            unit: unit.to_owned(),
            id: settings
                .as_ref()
                .map_or_else(|| id_of(unit), |s| s.id.clone()),
            load_state: load,
            active_state: active,
            sub_state: sub,
            has_settings: settings.is_some(),
            persistent,
            keys: settings
                .map(|s| s.settings.into_keys().collect())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_template_is_told_with_the_closest_and_the_ones_there_are() {
        let no = |t: &str, known: Option<Vec<&str>>| {
            Error::NoTemplate {
                template: t.to_owned(),
                templates: known.map(|k| k.into_iter().map(str::to_owned).collect()),
            }
            .to_string()
        };
        let head = "template consol@.service not found (is the Quadlet file installed and the manager reloaded?)";
        assert_eq!(
            no("consol@.service", Some(vec!["console@.service", "kube@.service"])),
            format!("{head}; did you mean console@.service? (the manager's *@.service templates: console@.service, kube@.service)")
        );
        assert_eq!(
            no("consol@.service", Some(vec![])),
            format!("{head}; the manager has no *@.service template")
        );
        assert_eq!(no("consol@.service", None), head);
        let many: Vec<String> = (0..12).map(|i| format!("t{i:02}@.service")).collect();
        let text = no(
            "consol@.service",
            Some(many.iter().map(String::as_str).collect()),
        );
        assert!(text.ends_with("t09@.service and 2 more)"), "{text}");
    }

    #[test]
    fn missing_settings_name_the_misspelt_keys_given() {
        let e = Error::MissingSettings {
            unit: "c@x.service".into(),
            keys: vec!["DEVICE".into(), "PORT".into()],
            unread: vec![("DEVCE".into(), Some("DEVICE".into())), ("ZZ".into(), None)],
        };
        assert_eq!(
            e.to_string(),
            "c@x.service: missing required setting(s) DEVICE, PORT: pass them with \
             `unitwright instance start ... --set KEY=VALUE`; DEVCE is not a setting the \
             template reads: did you mean DEVICE?; ZZ is not a setting the template reads"
        );
    }

    #[test]
    fn the_same_settings_are_those_stored_with_allocated_ports_for_auto_port() {
        let stored = Settings {
            unit: "c@x.service".into(),
            id: "x".into(),
            settings: [("A", "1"), ("PORT", "41234")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            auto: vec!["PORT".into()],
        };
        let given = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(same_settings(
            &stored,
            &given(&[("A", "1"), ("PORT", AUTO_PORT)])
        ));
        assert!(same_settings(
            &stored,
            &given(&[("A", "1"), ("PORT", "41234")])
        ));
        assert!(!same_settings(
            &stored,
            &given(&[("A", "2"), ("PORT", AUTO_PORT)])
        ));
        assert!(!same_settings(&stored, &given(&[("A", "1")])));
        assert!(!same_settings(
            &stored,
            &given(&[("A", "1"), ("PORT", AUTO_PORT), ("B", "")])
        ));
        let fixed = Settings {
            auto: Vec::new(),
            ..stored
        };
        assert!(!same_settings(
            &fixed,
            &given(&[("A", "1"), ("PORT", AUTO_PORT)])
        ));
    }

    #[test]
    fn unit_names_are_systemd_escape_template() {
        assert_eq!(
            unit_name("console@.service", "a-b").unwrap(),
            "console@a\\x2db.service"
        );
        assert_eq!(
            unit_name("console@.service", "ax2db").unwrap(),
            "console@ax2db.service"
        );
        assert_eq!(
            unit_name("console@.service", "node 7/a:b").unwrap(),
            "console@node\\x207-a:b.service"
        );
        assert!(unit_name("console.service", "x").is_err());
        assert!(unit_name("console@.service", "").is_err());
        assert!(unit_name("console@.service", &"x".repeat(250)).is_err());
    }

    #[test]
    fn instances_are_matched_to_their_template_only() {
        assert_eq!(pattern("console@.service"), "console@*.service");
        assert!(is_instance_of(
            "console@a\\x2db.service",
            "console@.service"
        ));
        assert!(!is_instance_of("console@.service", "console@.service"));
        assert!(!is_instance_of("consoles@a.service", "console@.service"));
        assert_eq!(id_of("console@node\\x207-a:b.service"), "node 7/a:b");
    }
}
