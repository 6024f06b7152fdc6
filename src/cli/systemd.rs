//! The systemctl-like verbs: `reload` (daemon-reload, or `reload UNIT...`), `start`, `stop`, `restart`,
//! `try-restart`, `reload-or-restart`, `kill`, `reset-failed`, `status`, `list`, `enable`,
//! `disable`, `watch`, `wait`.
//!
//! Verbs and their meaning are systemctl's; everything goes through [`crate::bus`] (D-Bus),
//! never through a systemctl subprocess.
//!
//! # Contract
//! * Unit names given without a type suffix get `.service` (`web` → `web.service`), as
//!   systemctl does; glob patterns are left alone.
//! * Several units in one call run concurrently on one connection.
//! * Exit status 0 only when every job succeeded (a start skipped by a false `Condition*=`
//!   is a success, as in systemctl, and is noted on stderr); otherwise 1, with one line per
//!   failed unit on stderr, e.g.
//!   `unitwright: start of bad.service failed: result exit-code, ExecStart exited with status 3`.
//!   A unit that does not exist is such a failure (`... failed: unit x.service not found`).
//!   Usage errors exit 2.
//! * Jobs are waited for until they finish, like systemctl. `--timeout S` (counted from the
//!   start of the command, connecting included) is opt-in; when it runs out the job keeps
//!   running, stderr says `... timed out: ...` with the job's path, and the exit status is
//!   [`EXIT_TIMEOUT`] (124) unless a unit failed (1). `--no-block` prints the job paths,
//!   which `wait` accepts. Progress lines appear on a terminal only (`cli::progress`).
//! * `--json` output is described in `docs/json.md`; its field names and meanings are stable.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{json, Value};

use super::explain::Explanation;
use super::log::line;
use super::status;
use crate::bus::{
    self, mangle, mangle_pattern, parse_signal, JobMode, JobOptions, JobOutcome, JobVerb, KillWhom,
    ListedUnit, Manager, Options, UnitChange,
};

/// The systemctl-like subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Without units: reload the manager's configuration, rerunning generators and rereading
    /// all unit files (systemctl daemon-reload). With units: reload their own configuration
    /// (ExecReload=), like systemctl reload UNIT.
    #[command(visible_alias = "daemon-reload")]
    Reload(ReloadArgs),
    /// Start units and wait until they are started.
    Start(JobArgs),
    /// Stop units and wait until they are stopped.
    Stop(StopArgs),
    /// Restart units (starting those that are not running).
    Restart(JobArgs),
    /// Restart units that are running; leave the others alone.
    TryRestart(JobArgs),
    /// Reload units that support it, restart the others.
    ReloadOrRestart(JobArgs),
    /// Send a signal to the processes of units.
    Kill(KillArgs),
    /// Reset the failed state of units (of all units when none is given).
    ResetFailed(ResetFailedArgs),
    /// Show the state of units (of the manager when none is given).
    Status(StatusArgs),
    /// List loaded units, optionally only those matching glob patterns.
    List(ListArgs),
    /// Enable unit files (create their [Install] symlinks), then reload the manager.
    Enable(FileArgs),
    /// Disable unit files (remove their [Install] symlinks), then reload the manager.
    Disable(FileArgs),
    /// Print unit state changes as they happen, until interrupted.
    Watch(WatchArgs),
    /// Show the journal records of units (like journalctl -u), read natively.
    Logs(super::logs::LogsArgs),
    /// Print whether units are active; exit 0 if at least one is, else 3.
    IsActive(super::query::UnitsArgs),
    /// Print whether units are failed; exit 0 if at least one is, else 1.
    IsFailed(super::query::UnitsArgs),
    /// Print the unit file state of units; exit 0 if at least one is enabled (also static,
    /// generated, ...), else 1.
    IsEnabled(super::query::UnitsArgs),
    /// Print the unit files and drop-ins of units, as the manager loaded them.
    Cat(super::query::UnitsArgs),
    /// Print properties of units (of the manager when none is given) as NAME=VALUE.
    Show(super::query::ShowArgs),
    /// List the queued and running jobs.
    ListJobs,
    /// Mask unit files (link them to /dev/null so nothing can start them), then reload.
    Mask(super::query::UnitsArgs),
    /// Unmask unit files, then reload.
    Unmask(super::query::UnitsArgs),
    /// Wait for jobs (a job path or number, as --no-block prints) or units.
    Wait(WaitArgs),
    /// Change resource-control properties of a unit while it runs (no reload), and keep them
    /// (as drop-ins the manager writes).
    #[command(after_long_help = SET_PROPERTY_HELP)]
    SetProperty(SetPropertyArgs),
}

const SET_PROPERTY_HELP: &str = "\
Properties (unit-file syntax, as in systemd.resource-control(5)):
  CPUQuota=20%            a percentage of one CPU (150% = one and a half); empty: none
  CPUWeight=200           1-10000 or idle (also StartupCPUWeight); IOWeight=, StartupIOWeight=
                          1-10000
  MemoryMax=512M          bytes (K, M, G, T, P, E: 1024-based), 50% of RAM, or infinity;
                          also MemoryHigh, MemoryLow, MemoryMin, MemorySwapMax, MemoryLimit
  TasksMax=64             a number, a percentage of the system's limit, or infinity
  AllowedCPUs=0-1         CPU numbers and ranges; AllowedMemoryNodes alike
  CPUAccounting=yes       also MemoryAccounting, TasksAccounting, IOAccounting, IPAccounting
  CPUQuotaPeriodSec=10ms, CPUShares=, BlockIOWeight=, DevicePolicy=auto|closed|strict,
  Description=TEXT

Examples:
  unitwright --user set-property web MemoryMax=1G CPUQuota=50%
  unitwright set-property --runtime 'console@a\\x2db.service' TasksMax=128";

/// Options of `set-property`.
#[derive(Debug, clap::Args)]
pub struct SetPropertyArgs {
    /// The unit (`web` means `web.service`).
    #[arg(value_name = "UNIT")]
    pub unit: String,
    /// The properties to set, e.g. `MemoryMax=1G CPUQuota=50%` (see below).
    #[arg(required = true, value_name = "KEY=VALUE")]
    pub assignments: Vec<String>,
    /// Only until the next reboot: the manager keeps the change under its runtime
    /// directory instead of its configuration directory.
    #[arg(long)]
    pub runtime: bool,
}

/// Units and options of `stop`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// The units and job options.
    #[command(flatten)]
    pub job: JobArgs,
    /// A unit that does not exist counts as stopped (said once on stderr, exit 0), instead
    /// of an error (exit 5).
    #[arg(long)]
    pub ignore_missing: bool,
}

/// Options of `wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Jobs (`/org/freedesktop/systemd1/job/42` or `42`) or units (`web` means
    /// `web.service`).
    #[arg(required = true, value_name = "JOB|UNIT")]
    pub targets: Vec<String>,
    /// For units: wait until each is active (exit 1 if it failed instead), inactive (or
    /// failed), or has no job queued or running (done, the default). Jobs are always
    /// waited for until they finish.
    #[arg(long = "for", value_name = "STATE", default_value = "done", value_parser = target_arg)]
    pub state: bus::UnitTarget,
    /// Stop waiting after SECONDS and exit 124 (default: wait as long as it takes).
    #[arg(long, value_name = "SECONDS", value_parser = super::fmt::seconds_arg)]
    pub timeout: Option<Duration>,
}

fn target_arg(s: &str) -> Result<bus::UnitTarget, String> {
    match s {
        "active" => Ok(bus::UnitTarget::Active),
        "inactive" => Ok(bus::UnitTarget::Inactive),
        "done" => Ok(bus::UnitTarget::Done),
        _ => Err(format!(
            "unknown state {s:?}; valid: active, inactive, done"
        )),
    }
}

/// Options for `reload`.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// Units to reload; the manager itself when none is given.
    #[arg(value_name = "UNIT")]
    pub units: Vec<String>,
    /// Job options (with units; --timeout also without: default 180 s for the manager).
    #[command(flatten)]
    pub job: JobFlags,
}

/// Units and options of the job verbs.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The units (`web` means `web.service`).
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
    /// Job options.
    #[command(flatten)]
    pub job: JobFlags,
}

/// Options shared by the verbs that create jobs.
#[derive(Debug, clap::Args)]
pub struct JobFlags {
    /// Return once the jobs are queued instead of waiting for them to finish.
    #[arg(long)]
    pub no_block: bool,
    /// Stop waiting after SECONDS, counted from the start of the command (connecting
    /// included). Without it (or with 0) the command waits as long as the jobs take, like
    /// systemctl. A job still running then keeps running in the manager; the command exits
    /// 124 (not 1: nothing failed).
    #[arg(long, value_name = "SECONDS", value_parser = super::fmt::seconds_arg)]
    pub timeout: Option<Duration>,
    /// How to treat conflicting queued jobs (fail, replace, replace-irreversibly, isolate,
    /// ignore-dependencies, ignore-requirements, flush, triggering).
    #[arg(long, value_name = "MODE", default_value = "replace")]
    pub job_mode: JobMode,
    /// Print one JSON object per unit on stdout (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// Options of `kill`.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// The units.
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
    /// The signal: a name (TERM, SIGHUP) or number.
    #[arg(short, long, value_name = "SIGNAL", default_value = "TERM", value_parser = signal_arg)]
    pub signal: i32,
    /// Which processes: main, control or all.
    #[arg(long, value_name = "WHOM", default_value = "all", value_parser = whom_arg)]
    pub kill_whom: KillWhom,
}

/// Units of `reset-failed`.
#[derive(Debug, clap::Args)]
pub struct ResetFailedArgs {
    /// The units (all failed units when none is given).
    #[arg(value_name = "UNIT")]
    pub units: Vec<String>,
}

/// Options of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The units (the manager itself when none is given).
    #[arg(value_name = "UNIT")]
    pub units: Vec<String>,
    /// Show this many of each unit's last journal lines (this boot; 0 for none).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
    pub lines: usize,
    /// Print JSON on stdout (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// Options of `list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Glob patterns on unit names (`hello@*`); all loaded units when none is given.
    #[arg(value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// Only units whose load, active or sub state is STATE (repeatable).
    #[arg(long, value_name = "STATE")]
    pub state: Vec<String>,
    /// Only units of this type: service, socket, target, timer, ... (repeatable, or
    /// comma-separated as with systemctl: `-t service,timer`).
    #[arg(short = 't', long = "type", value_name = "TYPE", value_delimiter = ',', value_parser = unit_type)]
    pub types: Vec<String>,
    /// Print a JSON array on stdout (see docs/json.md).
    #[arg(long)]
    pub json: bool,
    /// Print only the rows: no header, no count (for scripts and shell completion).
    #[arg(long)]
    pub no_legend: bool,
}

/// The unit types of systemd 252, as the suffixes of unit names.
const UNIT_TYPES: [&str; 11] = [
    "service",
    "mount",
    "swap",
    "socket",
    "target",
    "device",
    "automount",
    "timer",
    "path",
    "slice",
    "scope",
];

/// `--type TYPE`: one of [`UNIT_TYPES`].
fn unit_type(s: &str) -> Result<String, String> {
    if UNIT_TYPES.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "unknown unit type {s:?}; the types are {}",
            UNIT_TYPES.join(", ")
        ))
    }
}

/// Unit files of `enable`/`disable`.
#[derive(Debug, clap::Args)]
pub struct FileArgs {
    /// The unit files (names, or paths of unit files to link).
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
    /// Also start (enable) or stop (disable) the units, waiting for the jobs.
    #[arg(long)]
    pub now: bool,
}

/// Options of `watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Glob patterns on unit names; all units when none is given.
    #[arg(value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// Print one JSON object per line (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

fn signal_arg(s: &str) -> Result<i32, String> {
    parse_signal(s)
        .ok_or_else(|| format!("unknown signal {s:?}; give a name like TERM or a number"))
}

fn whom_arg(s: &str) -> Result<KillWhom, String> {
    match s {
        "main" => Ok(KillWhom::Main),
        "control" => Ok(KillWhom::Control),
        "all" => Ok(KillWhom::All),
        _ => Err(format!(
            "unknown --kill-whom {s:?}; valid: main, control, all"
        )),
    }
}

/// `--timeout SECONDS` as an optional limit: `None` when not given or 0 (no limit).
fn limit(s: Option<Duration>) -> Option<Duration> {
    s.filter(|&d| d != Duration::MAX)
}

/// The exit status when `--timeout` expired before every job or wait finished (as
/// timeout(1)); a failure of any unit (1) takes precedence.
pub const EXIT_TIMEOUT: u8 = crate::instance::EXIT_TIMEOUT;

/// A time limit counted from the start of the command: connecting uses it too, and what
/// is left of it applies to the jobs.
#[derive(Debug, Clone, Copy)]
struct Deadline(Option<(Duration, std::time::Instant)>);

impl Deadline {
    fn new(seconds: Option<Duration>) -> Self {
        Deadline(limit(seconds).map(|l| (l, std::time::Instant::now() + l)))
    }

    /// Connection options whose call limit (connecting included) is at most this one.
    fn options(self) -> Options {
        let mut options = Options::default();
        if let Some((l, _)) = self.0 {
            options.timeouts.query = options.timeouts.query.min(l);
        }
        options
    }

    /// Timeouts say the limit the user gave, not what was left of it after connecting.
    fn name_limit<T>(self, results: &mut [Result<T, bus::Error>]) {
        if let Some((limit, _)) = self.0 {
            for r in results {
                if let Err(bus::Error::Timeout { after, .. }) = r {
                    *after = limit;
                }
            }
        }
    }

    /// What is left of the limit (at least a millisecond).
    fn left(self) -> Option<Duration> {
        self.0.map(|(_, at)| {
            at.saturating_duration_since(std::time::Instant::now())
                .max(Duration::from_millis(1))
        })
    }
}

/// Runs one systemctl-like command.
pub fn run(global: &super::Global, cmd: Command) -> anyhow::Result<ExitCode> {
    // Verbs that need no connection to the manager run without the async runtime.
    if let Command::Logs(args) = &cmd {
        return super::logs::run(global, args);
    }
    // Quadlet files are looked up on this machine only: with -H they are not ours to read.
    let _ = QUADLET_SCOPE.set(
        global
            .host
            .is_none()
            .then_some(global.scope() == super::Scope::User),
    );
    super::block_on(run_async(global, cmd))
}

async fn connect(global: &super::Global, options: Options) -> anyhow::Result<Manager> {
    Ok(connect_bus(global, options).await?)
}

/// Connects to the manager selected by `--user`/`--system` and `-H` (the one place where the
/// systemctl-like verbs connect, so every verb works remotely).
async fn connect_bus(global: &super::Global, mut options: Options) -> Result<Manager, bus::Error> {
    options.host.clone_from(&global.bus_options().host);
    Manager::connect_with(global.bus_scope(), &options).await
}

/// Connects within `deadline`; `Err(code)` when that failed and the command should exit
/// with `code`: [`EXIT_TIMEOUT`] when the time ran out (said on stderr), else the error.
async fn connect_within(
    global: &super::Global,
    deadline: Deadline,
) -> anyhow::Result<Result<Manager, ExitCode>> {
    match connect_bus(global, deadline.options()).await {
        Ok(m) => Ok(Ok(m)),
        Err(e) if e.is_timeout() => {
            line(&format!("unitwright: {e}"));
            Ok(Err(ExitCode::from(EXIT_TIMEOUT)))
        }
        Err(e) => Err(e.into()),
    }
}

/// For a remote manager whose ssh connection ended: one line saying how (after the per-unit
/// errors, which only know that the connection was lost).
async fn report_transport(m: &Manager) {
    if let (Some(host), Some(how)) = (m.host(), m.transport_ended().await) {
        line(&format!(
            "unitwright: the connection to {host} was lost: {how}"
        ));
    }
}

async fn run_async(global: &super::Global, cmd: Command) -> anyhow::Result<ExitCode> {
    let mut options = Options::default();
    match cmd {
        Command::Reload(args) if !args.units.is_empty() => {
            let job_args = JobArgs {
                units: args.units,
                job: args.job,
            };
            run_jobs(global, JobVerb::Reload, job_args, false).await
        }
        Command::Reload(args) => {
            options.timeouts.reload = limit(args.job.timeout).unwrap_or(options.timeouts.reload);
            let m = connect(global, options).await?;
            m.reload().await?;
            // Like systemctl, exit 0; but say which Quadlet files produced no unit.
            let rejected = quadlet_scope()
                .map(super::quadlet::rejected)
                .unwrap_or_default();
            for d in &rejected {
                line(&super::quadlet::rejected_line(d));
            }
            if args.job.json {
                let list: Vec<Value> = rejected
                    .iter()
                    .map(crate::lifecycle::Diagnostic::to_json)
                    .collect();
                outln!("{}", json!({ "reloaded": true, "rejected": list }));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Start(args) => run_jobs(global, JobVerb::Start, args, false).await,
        Command::Stop(args) => run_jobs(global, JobVerb::Stop, args.job, args.ignore_missing).await,
        Command::SetProperty(args) => set_property(global, args).await,
        Command::Restart(args) => run_jobs(global, JobVerb::Restart, args, false).await,
        Command::TryRestart(args) => run_jobs(global, JobVerb::TryRestart, args, false).await,
        Command::ReloadOrRestart(args) => {
            run_jobs(global, JobVerb::ReloadOrRestart, args, false).await
        }
        Command::Kill(args) => {
            let m = connect(global, options).await?;
            let units = mangle_all(&args.units);
            let results = futures_util::future::join_all(
                units.iter().map(|u| m.kill(u, args.kill_whom, args.signal)),
            )
            .await;
            Ok(report_errors(results))
        }
        Command::ResetFailed(args) => {
            let m = connect(global, options).await?;
            if args.units.is_empty() {
                m.reset_failed(None).await?;
                return Ok(ExitCode::SUCCESS);
            }
            let units = mangle_all(&args.units);
            let results =
                futures_util::future::join_all(units.iter().map(|u| m.reset_failed(Some(u)))).await;
            Ok(report_errors(results))
        }
        Command::Status(mut args) => {
            // The journal read is this machine's: not the one of a remote host.
            if global.host.is_some() {
                args.lines = 0;
            }
            status(&connect(global, options).await?, args).await
        }
        Command::List(args) => {
            let m = connect(global, options).await?;
            let patterns: Vec<String> = args.patterns.iter().map(|p| mangle_pattern(p)).collect();
            let mut units = m.list_units_filtered(&args.state, &patterns).await?;
            if !args.types.is_empty() {
                units.retain(|u| {
                    u.name
                        .rsplit_once('.')
                        .is_some_and(|(_, t)| args.types.iter().any(|w| w == t))
                });
            }
            if args.json {
                let list: Vec<Value> = units.iter().map(listed_json).collect();
                outln!("{}", Value::Array(list));
            } else {
                print_table(&units, !args.no_legend)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Enable(args) => files(global, &connect(global, options).await?, true, args).await,
        Command::Disable(args) => {
            files(global, &connect(global, options).await?, false, args).await
        }
        Command::Watch(args) => watch(&connect(global, options).await?, args).await,
        Command::Logs(args) => super::logs::run(global, &args),
        Command::Wait(args) => wait(global, args).await,
        Command::IsActive(args) => {
            let m = connect(global, options).await?;
            Ok(super::query::is_state(&m, &args, false, global.quiet).await)
        }
        Command::IsFailed(args) => {
            let m = connect(global, options).await?;
            Ok(super::query::is_state(&m, &args, true, global.quiet).await)
        }
        Command::IsEnabled(args) => {
            let m = connect(global, options).await?;
            Ok(super::query::is_enabled(&m, &args, global.quiet).await)
        }
        Command::Cat(args) => super::query::cat(&connect(global, options).await?, &args).await,
        Command::Show(args) => super::query::show(&connect(global, options).await?, &args).await,
        Command::ListJobs => super::query::list_jobs(&connect(global, options).await?).await,
        Command::Mask(args) => {
            let m = connect(global, options).await?;
            let changes = m.mask(&mangle_all(&args.units)).await?;
            print_changes(&changes, global.quiet);
            Ok(ExitCode::SUCCESS)
        }
        Command::Unmask(args) => {
            let m = connect(global, options).await?;
            let changes = m.unmask(&mangle_all(&args.units)).await?;
            print_changes(&changes, global.quiet);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// enable/disable, printing the changes like systemctl (on stderr; nothing with `-q`); with
/// `--now` also start/stop the units and wait for the jobs (exiting as `start`/`stop` would).
async fn files(
    global: &super::Global,
    m: &Manager,
    enable: bool,
    args: FileArgs,
) -> anyhow::Result<ExitCode> {
    // Units generated from Quadlet files get an [Install] drop-in instead (systemd refuses them).
    let (rest, dropins) = match quadlet_scope() {
        Some(user) => super::quadlet::enable_generated(user, enable, &args.units)?,
        None => (args.units.clone(), false),
    };
    if dropins {
        m.reload().await?;
        if !global.quiet {
            line("Reloaded the manager.");
        }
    }
    if !rest.is_empty() {
        // Paths of unit files are passed as they are; names get their suffix.
        let units: Vec<String> = rest
            .iter()
            .map(|u| {
                if u.contains('/') {
                    u.clone()
                } else {
                    mangle(u)
                }
            })
            .collect();
        let changes = if enable {
            m.enable(&units).await?
        } else {
            m.disable(&units).await?
        };
        print_changes(&changes, global.quiet);
    }
    if !args.now {
        return Ok(ExitCode::SUCCESS);
    }
    // --now: the units named (a path means the unit of that file).
    let names: Vec<String> = args
        .units
        .iter()
        .map(|u| u.rsplit('/').next().unwrap_or(u).to_owned())
        .collect();
    let job_args = JobArgs {
        units: names,
        job: JobFlags {
            no_block: false,
            timeout: None,
            job_mode: JobMode::Replace,
            json: false,
        },
    };
    let verb = if enable {
        JobVerb::Start
    } else {
        JobVerb::Stop
    };
    run_jobs(global, verb, job_args, false).await
}

/// The exit status of `set-property` when an assignment cannot be parsed (a usage error:
/// nothing was sent).
const EXIT_USAGE: u8 = crate::instance::EXIT_USAGE;

/// `set-property UNIT KEY=VALUE... [--runtime]`: every assignment is parsed (and typed)
/// before the manager is asked, in one `SetUnitProperties` call.
async fn set_property(global: &super::Global, args: SetPropertyArgs) -> anyhow::Result<ExitCode> {
    let assignments = match bus::property::parse_all(&args.assignments) {
        Ok(a) => a,
        Err(e) => {
            line(&format!("unitwright: set-property: {e}"));
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let unit = mangle_all(std::slice::from_ref(&args.unit)).remove(0);
    let m = connect(global, Options::default()).await?;
    match m.set_properties(&unit, args.runtime, &assignments).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            line(&format!("unitwright: {e}"));
            if matches!(e, bus::Error::NoSuchUnit { .. }) {
                Ok(ExitCode::from(EXIT_NOT_FOUND))
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// The symlinks created or removed, like systemctl prints them (stderr; nothing with `-q`).
fn print_changes(changes: &[bus::UnitFileChange], quiet: bool) {
    if quiet {
        return;
    }
    for c in changes {
        match c.kind.as_str() {
            "symlink" => line(&format!("Created symlink {} → {}.", c.path, c.target)),
            "unlink" => line(&format!("Removed \"{}\".", c.path)),
            other => line(&format!("{other} {} {}", c.path, c.target)),
        }
    }
}

/// The scope whose Quadlet files this command may read (`Some(user)`), or `None` with `-H`
/// (set once by [`run`]; used by [`mangle_all`], enable/disable, reload and status).
static QUADLET_SCOPE: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();

fn quadlet_scope() -> Option<bool> {
    QUADLET_SCOPE.get().copied().flatten()
}

/// Unit names as given, with `.service` added where systemctl adds it; a Quadlet file name
/// (`web.container`) means the unit it generates (see [`crate::lifecycle::adapter`]).
fn mangle_all(units: &[String]) -> Vec<String> {
    let scope = quadlet_scope();
    units
        .iter()
        .map(|u| {
            scope
                .and_then(|user| crate::lifecycle::adapter::unit_for_quadlet_name(user, u))
                .unwrap_or_else(|| mangle(u))
        })
        .collect()
}

/// Prints each error on stderr; exit 1 if there was any.
fn report_errors(results: Vec<Result<(), bus::Error>>) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for e in results.into_iter().filter_map(Result::err) {
        line(&format!("unitwright: {e}"));
        code = ExitCode::FAILURE;
    }
    code
}

/// Runs `verb` on the units of `args`; with `ignore_missing` (`stop --ignore-missing`), a
/// unit that does not exist is a success, said once.
async fn run_jobs(
    global: &super::Global,
    verb: JobVerb,
    args: JobArgs,
    ignore_missing: bool,
) -> anyhow::Result<ExitCode> {
    let deadline = Deadline::new(args.job.timeout);
    let m = match connect_within(global, deadline).await? {
        Ok(m) => m,
        Err(code) => return Ok(code),
    };
    let units = mangle_all(&args.units);
    let job_options = JobOptions {
        mode: args.job.job_mode,
        wait: !args.job.no_block,
        timeout: deadline.left(),
    };
    let started = super::fmt::now_usec();
    let waiting = super::progress::Waiting::new(units.len());
    let jobs = m.jobs_observed(verb, &units, job_options, |i| waiting.done(i));
    let mut results = waiting.around(&m, &units, job_options.wait, jobs).await;
    deadline.name_limit(&mut results);
    let mut failed = false;
    let mut timed_out = false;
    let mut not_found = false;
    let mut stdout = std::io::stdout().lock();
    for (unit, result) in units.iter().zip(&results) {
        // The journal read is this machine's: no explanation from it for a remote host.
        let missing = matches!(result, Err(bus::Error::NoSuchUnit { .. }));
        if ignore_missing && missing {
            if !global.quiet {
                line(&format!(
                    "unitwright: {unit} does not exist; nothing to {verb} (--ignore-missing)"
                ));
            }
            if args.job.json {
                let mut v = job_json(verb, unit, result);
                v["success"] = true.into();
                v["error"] = Value::Null;
                v["failed_dependencies"] = json!([]);
                v["output"] = Value::Null;
                writeln!(stdout, "{v}")?;
            }
            continue;
        }
        let why = if global.host.is_some() {
            Explanation::unread(&m)
        } else {
            Explanation::read(&m, started, result.as_ref().ok(), args.job.json).await
        };
        if !report_job(verb, unit, result, &why) {
            match result {
                Err(e) if e.is_timeout() => timed_out = true,
                Err(bus::Error::NoSuchUnit { .. }) => not_found = true,
                _ => failed = true,
            }
        }
        if args.job.json {
            let mut v = job_json(verb, unit, result);
            why.add_json(&mut v);
            writeln!(stdout, "{v}")?;
        } else if !job_options.wait {
            // --no-block: the job paths, one per unit, for `unitwright wait`.
            if let Ok(o) = result {
                writeln!(stdout, "{}", o.job)?;
            }
        }
    }
    if results.iter().any(Result::is_err) {
        report_transport(&m).await;
    }
    if not_found && !failed {
        return Ok(ExitCode::from(EXIT_NOT_FOUND));
    }
    Ok(exit_code(failed, timed_out))
}

/// Exit status of a job verb when a unit does not exist and nothing else failed
/// (systemctl's, LSB "program is not installed").
pub const EXIT_NOT_FOUND: u8 = crate::instance::EXIT_NOT_FOUND;

/// 1 if anything failed, else [`EXIT_TIMEOUT`] if a wait timed out, else 0.
fn exit_code(failed: bool, timed_out: bool) -> ExitCode {
    if failed {
        ExitCode::FAILURE
    } else if timed_out {
        ExitCode::from(EXIT_TIMEOUT)
    } else {
        ExitCode::SUCCESS
    }
}

/// `wait JOB|UNIT...`: each target waited for concurrently.
async fn wait(global: &super::Global, args: WaitArgs) -> anyhow::Result<ExitCode> {
    let deadline = Deadline::new(args.timeout);
    let m = match connect_within(global, deadline).await? {
        Ok(m) => m,
        Err(code) => return Ok(code),
    };
    let left = deadline.left();
    let targets: Vec<String> = args
        .targets
        .iter()
        .map(|t| {
            if t.starts_with('/') {
                t.clone()
            } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                format!("/org/freedesktop/systemd1/job/{t}")
            } else {
                mangle(t)
            }
        })
        .collect();
    let waiting = super::progress::Waiting::new(targets.len());
    // Progress lines only for units; a job's unit is not known here.
    for (i, t) in targets.iter().enumerate() {
        if t.starts_with('/') {
            waiting.done(i);
        }
    }
    let waits = futures_util::future::join_all(targets.iter().enumerate().map(|(i, t)| {
        let (m, waiting) = (&m, &waiting);
        async move {
            let r = if t.starts_with('/') {
                m.wait_job(t, left).await.map(WaitEnd::Job)
            } else {
                m.wait_unit(t, args.state, left).await.map(WaitEnd::Unit)
            };
            waiting.done(i);
            r
        }
    }));
    let mut results = waiting.around(&m, &targets, true, waits).await;
    deadline.name_limit(&mut results);
    let (mut failed, mut timed_out) = (false, false);
    for (t, r) in targets.iter().zip(results) {
        match r {
            Ok(WaitEnd::Job(Some(result))) if result.is_success() => {}
            Ok(WaitEnd::Job(Some(result))) => {
                line(&format!("unitwright: {t} finished with result {result}"));
                failed = true;
            }
            Ok(WaitEnd::Job(None)) => line(&format!(
                "unitwright: {t} is not queued (it finished before the wait began; the manager \
                 keeps no result of finished jobs)"
            )),
            Ok(WaitEnd::Unit(p)) => {
                if args.state == bus::UnitTarget::Active && p.active_state == "failed" {
                    line(&format!("unitwright: {t} failed ({})", p.sub_state));
                    failed = true;
                }
            }
            Err(e) => {
                line(&format!("unitwright: {e}"));
                if e.is_timeout() {
                    timed_out = true;
                } else {
                    failed = true;
                }
            }
        }
    }
    Ok(exit_code(failed, timed_out))
}

/// How one wait ended.
enum WaitEnd {
    /// The job's result (`None`: the job no longer existed).
    Job(Option<bus::JobResult>),
    /// The unit's state when it reached the state waited for.
    Unit(bus::UnitProgress),
}

/// Tells the user and the journal how one job went (see `cli::log`: failures and unmet
/// conditions are reported, on stderr exactly as `unitwright: <outcome>`; a success is an info
/// record). Returns false if it failed.
fn report_job(
    verb: JobVerb,
    unit: &str,
    result: &Result<JobOutcome, bus::Error>,
    why: &Explanation,
) -> bool {
    use super::log::{record, report, JOB, RESULT, UNIT};
    use ::log::Level;
    let job_result = match result {
        Ok(o) => o.result.as_ref().map_or("queued", bus::JobResult::as_str),
        Err(_) => "error",
    };
    let fields = [(UNIT, unit), (JOB, verb.as_str()), (RESULT, job_result)];
    match result {
        Ok(outcome) if outcome.failure().is_some() => {
            let text = why.message(&outcome.to_string(), unit);
            report(Level::Error, &fields, &text);
            false
        }
        Ok(outcome)
            if outcome.after_start().is_some_and(|a| {
                matches!(
                    a,
                    bus::AfterStart::Skipped
                        | bus::AfterStart::Failed
                        | bus::AfterStart::SkippedOrExited
                )
            }) =>
        {
            report(Level::Warn, &fields, &outcome.to_string());
            true
        }
        Ok(outcome) => {
            record(Level::Info, &fields, &outcome.to_string());
            true
        }
        Err(e) => {
            report(Level::Error, &fields, &e.to_string());
            false
        }
    }
}

/// The `--json` object of one job (docs/json.md, "Job verbs").
pub fn job_json(verb: JobVerb, unit: &str, result: &Result<JobOutcome, bus::Error>) -> Value {
    match result {
        Ok(o) => {
            let state = o.state.as_ref();
            let service = state.and_then(|s| s.service.as_ref());
            json!({
                "unit": o.unit,
                "verb": verb.as_str(),
                "job": o.job,
                "result": o.result.as_ref().map(bus::JobResult::as_str),
                "success": o.is_success(),
                "condition_failed": o.condition_failed(),
                "after_start": o.after_start().map(bus::AfterStart::as_str),
                "failure": o.failure(),
                "active_state": state.map(|s| s.active_state.as_str()).filter(|s| !s.is_empty()),
                "sub_state": state.map(|s| s.sub_state.as_str()).filter(|s| !s.is_empty()),
                "service_result": service.map(|s| s.result.as_str()),
                "exec_main_code": service.map(|s| s.exec_main_code),
                "exec_main_status": service.map(|s| s.exec_main_status),
                "timed_out": false,
                "not_found": false,
                "error": Value::Null,
            })
        }
        Err(e) => error_json(
            verb,
            unit,
            &JobError {
                job: e.job(),
                timed_out: e.is_timeout(),
                not_found: matches!(e, bus::Error::NoSuchUnit { .. }),
                error: &e.to_string(),
            },
        ),
    }
}

/// Why a job verb has no job result, for [`error_json`].
#[derive(Debug)]
pub struct JobError<'a> {
    /// The job's path, if one was queued.
    pub job: Option<&'a str>,
    /// `--timeout` (or the instance's start limit) ran out first.
    pub timed_out: bool,
    /// The unit (or an instance's template) does not exist.
    pub not_found: bool,
    /// What went wrong, as on stderr without the `unitwright: ` prefix.
    pub error: &'a str,
}

/// The `--json` object of a job verb that got no job result (docs/json.md, "Job verbs").
pub fn error_json(verb: JobVerb, unit: &str, e: &JobError<'_>) -> Value {
    json!({
        "unit": unit,
        "verb": verb.as_str(),
        "job": e.job,
        "timed_out": e.timed_out,
        "not_found": e.not_found,
        "result": Value::Null,
        "success": false,
        "condition_failed": false,
        "after_start": Value::Null,
        "failure": Value::Null,
        "active_state": Value::Null,
        "sub_state": Value::Null,
        "service_result": Value::Null,
        "exec_main_code": Value::Null,
        "exec_main_status": Value::Null,
        "error": e.error,
    })
}

/// `status` exit status when a unit is not active (LSB "program is not running").
const STATUS_NOT_RUNNING: u8 = 3;
/// `status` exit status when a unit does not exist (LSB "program or service status is unknown").
pub const STATUS_UNKNOWN: u8 = 4;

async fn status(m: &Manager, args: StatusArgs) -> anyhow::Result<ExitCode> {
    if args.units.is_empty() {
        let s = m.manager_state().await?;
        if args.json {
            outln!(
                "{}",
                json!({
                    "version": s.version,
                    "system_state": s.system_state,
                    "jobs": s.n_jobs,
                    "failed_units": s.n_failed_units,
                    "units": s.n_names,
                })
            );
        } else {
            outln!("State: {}", s.system_state);
            outln!(" Jobs: {} queued", s.n_jobs);
            outln!("Units: {} loaded, {} failed", s.n_names, s.n_failed_units);
            outln!("  systemd {}", s.version);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let units = mangle_all(&args.units);
    let results = futures_util::future::join_all(units.iter().map(|u| m.unit_status(u))).await;
    // systemctl's (LSB) status codes: the first unit in order that is not fine decides.
    let mut code = 0;
    let mut shown = Vec::new();
    for result in results {
        let this = match result {
            Ok(state) => {
                let running = matches!(state.active_state.as_str(), "active" | "reloading");
                shown.push(state);
                if running {
                    0
                } else {
                    STATUS_NOT_RUNNING
                }
            }
            Err(e) => {
                line(&format!("unitwright: {e}"));
                if let bus::Error::NoSuchUnit { unit, .. } = &e {
                    if let Some(why) =
                        quadlet_scope().and_then(|user| super::quadlet::why_missing(user, unit))
                    {
                        line(&format!("unitwright: {why}"));
                    }
                }
                if matches!(e, bus::Error::NoSuchUnit { .. }) {
                    STATUS_UNKNOWN
                } else {
                    1
                }
            }
        };
        if code == 0 {
            code = this;
        }
    }
    let code = ExitCode::from(code);
    // The processes of the units that have any, concurrently.
    let processes = futures_util::future::join_all(shown.iter().map(|s| async move {
        if s.resources.control_group.is_empty() || s.active_state == "inactive" {
            return Vec::new();
        }
        m.unit_processes(&s.name).await.unwrap_or_default()
    }))
    .await;
    // The journal lines of all units, from one opened journal.
    let names: Vec<&str> = shown.iter().map(|s| s.name.as_str()).collect();
    let mut journals = match args.lines {
        0 => Ok(Vec::new()),
        n => crate::journal::last_lines_each(&names, super::explain::journal_scope(m), n, None),
    }
    .map(Vec::into_iter);
    let views: Vec<status::UnitView> = shown
        .into_iter()
        .zip(processes)
        .map(|(state, processes)| {
            let (journal, journal_error) = match &mut journals {
                _ if args.lines == 0 => (None, None),
                Ok(lines) => (lines.next(), None),
                Err(e) => (None, Some(e.to_string())),
            };
            status::UnitView {
                state,
                processes,
                journal,
                journal_error,
            }
        })
        .collect();
    if args.json {
        let list: Vec<Value> = views.iter().map(status::json).collect();
        outln!("{}", Value::Array(list));
    } else {
        let colour = super::fmt::colour();
        let mut out = std::io::stdout().lock();
        for (i, v) in views.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            status::print(v, colour, &mut out)?;
        }
    }
    Ok(code)
}

/// The `list --json` object of one unit (docs/json.md, "list").
pub fn listed_json(u: &ListedUnit) -> Value {
    json!({
        "unit": u.name,
        "load_state": u.load_state,
        "active_state": u.active_state,
        "sub_state": u.sub_state,
        "description": u.description,
        "job": u.job_type,
    })
}

fn print_table(units: &[ListedUnit], legend: bool) -> std::io::Result<()> {
    let width = |f: fn(&ListedUnit) -> &str, title: &str| {
        units
            .iter()
            .map(|u| f(u).chars().count())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (mut w_unit, w_load, w_active, w_sub) = (
        width(|u| &u.name, "UNIT"),
        width(|u| &u.load_state, "LOAD"),
        width(|u| &u.active_state, "ACTIVE"),
        width(|u| &u.sub_state, "SUB"),
    );
    // On a terminal, lines fit its width as systemctl's do: the description is cut first,
    // then long unit names (down to a third of the width).
    let columns = super::fmt::terminal_width();
    let mut w_desc = usize::MAX;
    if let Some(cols) = columns {
        let fixed = w_load + w_active + w_sub + 4;
        let min_desc = 12;
        if w_unit + fixed + min_desc > cols {
            w_unit = w_unit.min((cols / 3).max(8));
        }
        w_desc = cols.saturating_sub(w_unit + fixed).max(1);
    }
    let cut = |s: &str, w: usize| super::fmt::ellipsize(s, w);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let header = format!(
        "{:w_unit$} {:w_load$} {:w_active$} {:w_sub$} DESCRIPTION",
        "UNIT", "LOAD", "ACTIVE", "SUB"
    );
    match columns {
        _ if !legend => {}
        Some(cols) => writeln!(out, "{}", cut(&header, cols))?,
        None => writeln!(out, "{header}")?,
    }
    for u in units {
        let description = if columns.is_some() {
            cut(&u.description, w_desc)
        } else {
            u.description.clone()
        };
        writeln!(
            out,
            "{:w_unit$} {:w_load$} {:w_active$} {:w_sub$} {description}",
            cut(&u.name, w_unit),
            u.load_state,
            u.active_state,
            u.sub_state
        )?;
    }
    if legend {
        writeln!(out, "\n{} loaded units listed.", units.len())?;
    }
    out.flush()
}

/// The `watch --json` object of one change (docs/json.md, "watch").
pub fn change_json(c: &UnitChange) -> Value {
    json!({
        "unit": c.unit,
        "event": c.event.as_str(),
        "active_state": c.active_state,
        "sub_state": c.sub_state,
    })
}

async fn watch(m: &Manager, args: WatchArgs) -> anyhow::Result<ExitCode> {
    let patterns: Vec<String> = args.patterns.iter().map(|p| mangle_pattern(p)).collect();
    let mut changes = m.watch(&patterns).await?;
    line("unitwright: watching unit state changes; interrupt to stop");
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut stdout = std::io::stdout().lock();
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(ExitCode::SUCCESS),
            change = changes.next() => {
                let Some(c) = change else {
                    match changes.error() {
                        Some(e) => anyhow::bail!("{e}"),
                        None => anyhow::bail!("watching units failed: the connection to the bus was lost"),
                    }
                };
                let now = super::fmt::now_usec();
                if args.json {
                    let mut v = change_json(&c);
                    v["time"] = super::fmt::rfc3339(now).into();
                    writeln!(stdout, "{v}")?;
                } else {
                    let time = super::fmt::short_timestamp(now);
                    match (&c.active_state, &c.sub_state) {
                        (Some(a), Some(s)) => writeln!(stdout, "{time} {} {a} ({s})", c.unit)?,
                        (Some(a), None) => writeln!(stdout, "{time} {} {a}", c.unit)?,
                        (None, Some(s)) => writeln!(stdout, "{time} {} ({s})", c.unit)?,
                        (None, None) => {
                            writeln!(stdout, "{time} {} {}", c.unit, c.event.as_str())?;
                        }
                    }
                }
                stdout.flush()?;
            }
        }
    }
}
