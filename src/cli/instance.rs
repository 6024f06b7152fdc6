//! `unitwright instance`: template instances with per-instance settings (see
//! [`crate::instance`]).
//!
//! * `instance start TEMPLATE ID [--set KEY=VALUE]... [--set-file KEY=PATH]... [--json]`:
//!   stores the settings of the instance `systemd-escape --template=TEMPLATE ID`, starts it
//!   and waits for the job.
//!   `--set KEY=auto-port` allocates a free TCP port on 127.0.0.1. A failed start exits 1,
//!   says why exactly as a failed `start` does (`cli::explain`: job result, exit status, the
//!   unit's last output lines, failed dependencies, `more: unitwright logs 'UNIT'`; with
//!   `--json` the job verbs' fields plus `id`), and leaves neither settings nor a failed unit.
//!   Exit statuses are the job verbs' ([`EXIT_STATUS`]).
//! * `instance stop TEMPLATE ID`, `instance stop-all TEMPLATE` (concurrently; also removes the
//!   settings of instances that are not loaded), `instance list TEMPLATE [--json]` (keys only).
//! * `instance exec [--settings-dir DIR] [--require KEY]... UNIT -- CMD ARGS...`: the wrapper
//!   generated units run (see [`crate::instance::exec`]); no D-Bus.
//!
//! Credentials: `start --json` prints the `--set` and allocated settings back with their
//! values, because the caller passed them on the command line (where any local user can read
//! them in /proc anyway) and needs the allocated ones; secrets go through `--set-file KEY=PATH`
//! (or `KEY=-`, standard input), which keeps them out of argv and out of the output; `list` never prints values, and no value is ever logged. Settings
//! files are mode 0600 in a 0700 directory.
//!
//! Logging (see `cli::log`): every start, stop and failure of an instance is a record with the
//! fields `UNITWRIGHT_UNIT` and `UNITWRIGHT_INSTANCE` (the id) — info on success; a failure is
//! [reported](super::log::report): the usual `unitwright: …` line on stderr, one error record
//! in the journal.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use ::log::Level;

use super::explain::Explanation;
use super::log::{record, report, INSTANCE, JOB, RESULT, UNIT};
use super::systemd::JobError;
use crate::bus::{self, JobOutcome, JobVerb};
use crate::instance::exec::{exec, ExecRequest};
use crate::instance::{
    Details, Error as InstanceError, IfActive, InstanceInfo, Instances, StartOptions, Started,
    Stopped, Store, EXIT_NOT_FOUND, EXIT_TIMEOUT,
};

/// The exit statuses of `instance start`, `restart`, `stop` and `stop-all` (those of the job
/// verbs), for their help and man pages.
pub const EXIT_STATUS: &str = "\
Exit status (as start, stop and restart of units):
  0    done; also a stop of an instance that is not running, and a start of one that is
       active with the same settings
  1    the job failed (the unit's last output lines are quoted), or the instance is already
       running with other settings (start without --replace), busy, or has no settings
       (restart)
  2    a template name, id or setting that cannot be valid
  5    the template (or the unit) does not exist; the error names the templates that do
  124  --timeout ran out first: the job continues, the settings are kept

Instance verbs always wait for their job: a failed start's cleanup and a stop's removal of
the settings need its result (there is no --no-block; --timeout bounds the wait).";

/// The `instance` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Store an instance's settings and start it, waiting for the job.
    #[command(after_long_help = EXIT_STATUS)]
    Start(StartArgs),
    /// Restart a running instance with its stored settings (allocated ports stay).
    #[command(after_long_help = EXIT_STATUS)]
    Restart(StopArgs),
    /// Stop an instance and remove its settings.
    #[command(after_long_help = EXIT_STATUS)]
    Stop(StopArgs),
    /// Stop every instance of a template concurrently and remove all their settings.
    #[command(after_long_help = EXIT_STATUS)]
    StopAll(TemplateArgs),
    /// List the instances of a template (settings by key only).
    List(ListArgs),
    /// Show one instance: state, settings (secret ones masked), published addresses, resources
    /// (exit 4 when the template does not exist, as `status` for a unit).
    Show(ShowArgs),
    /// Run CMD with the settings of UNIT (used in generated units; no D-Bus).
    Exec(ExecArgs),
}

/// `instance start`.
#[derive(clap::Args)]
pub struct StartArgs {
    /// The template unit, e.g. console@.service.
    pub template: String,
    /// The instance id: any text (escaped into the unit name like systemd-escape does).
    #[arg(allow_hyphen_values = true)]
    pub id: String,
    /// A setting; `KEY=auto-port` allocates a free TCP port on 127.0.0.1. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub set: Vec<(String, String)>,
    /// A setting read from a file (`-`: standard input), so that secrets stay out of argv;
    /// one trailing newline is removed. `--json` prints no such value. Repeatable.
    #[arg(long = "set-file", value_name = "KEY=PATH", value_parser = parse_setting_file)]
    pub set_file: Vec<(String, PathBuf)>,
    /// Print the started instance as JSON; a failure as the job verbs' JSON object (result,
    /// exit status, the unit's last output lines) with its `id`.
    #[arg(long)]
    pub json: bool,
    /// If the instance is running: stop it and start it with these settings (an `auto-port`
    /// key keeps the port it had).
    #[arg(long)]
    pub replace: bool,
    /// Keep the settings where they survive a reboot (system: /var/lib/unitwright/instances,
    /// user: $XDG_STATE_HOME/unitwright/instances), not on the runtime tmpfs.
    #[arg(long)]
    pub persistent: bool,
    /// Wait at most SECONDS for the start (default: the unit's own start timeout,
    /// TimeoutStartSec=, plus 15 s; 0 waits forever). A start still running then keeps its
    /// settings.
    #[arg(long, value_name = "SECONDS", value_parser = super::fmt::seconds_arg)]
    pub timeout: Option<Duration>,
}

/// Shows the settings' keys only: `cli::run` logs the parsed command at debug level, and the
/// values may be credentials.
impl std::fmt::Debug for StartArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.set.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("StartArgs")
            .field("template", &self.template)
            .field("id", &self.id)
            .field("set_keys", &keys)
            .field("set_file", &self.set_file)
            .field("json", &self.json)
            .field("replace", &self.replace)
            .field("persistent", &self.persistent)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `instance stop` and `instance restart`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// The template unit, e.g. console@.service.
    pub template: String,
    /// The instance id.
    #[arg(allow_hyphen_values = true)]
    pub id: String,
    /// Wait at most SECONDS for the job (default: a restart waits for the unit's start
    /// timeout plus 15 s, a stop as long as the manager takes; 0 waits forever).
    #[arg(long, value_name = "SECONDS", value_parser = super::fmt::seconds_arg)]
    pub timeout: Option<Duration>,
    /// Print the restarted instance, or the failure, as JSON (restart only).
    #[arg(long)]
    pub json: bool,
}

/// Commands taking only a template.
#[derive(Debug, clap::Args)]
pub struct TemplateArgs {
    /// The template unit, e.g. console@.service.
    pub template: String,
}

/// `instance list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The template unit, e.g. console@.service.
    pub template: String,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `instance show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The template unit, e.g. console@.service.
    pub template: String,
    /// The instance id.
    #[arg(allow_hyphen_values = true)]
    pub id: String,
    /// Print a JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `instance exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Where the settings files are; repeatable, the first directory holding the unit's file
    /// wins (default: the runtime, then the persistent directory of --user/--system).
    #[arg(long, value_name = "DIR")]
    pub settings_dir: Vec<PathBuf>,
    /// Then look in $XDG_STATE_HOME/unitwright/instances (default
    /// ~/.local/state/unitwright/instances), where `--user instance start --persistent` keeps
    /// settings (what generated user units pass).
    #[arg(long)]
    pub user_state: bool,
    /// A key that must be set (by the settings or the service's environment). Repeatable.
    #[arg(long = "require", value_name = "KEY")]
    pub require: Vec<String>,
    /// The exact unit name (%n).
    #[arg(allow_hyphen_values = true)]
    pub unit: OsString,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Runs one `instance` command.
pub fn run(global: &super::Global, cmd: Command) -> anyhow::Result<ExitCode> {
    if let Command::Exec(args) = cmd {
        let mut dirs = args.settings_dir;
        if args.user_state {
            // Without $XDG_STATE_HOME and $HOME there is no such store; the others may do.
            if let Ok(p) = Store::persistent_for_manager(true) {
                dirs.push(p.dir().to_owned());
            }
        } else if dirs.is_empty() {
            dirs.push(Store::for_manager(global.user)?.dir().to_owned());
            if let Ok(p) = Store::persistent_for_manager(global.user) {
                dirs.push(p.dir().to_owned());
            }
        }
        let err = exec(&ExecRequest {
            settings_dirs: &dirs,
            unit: &args.unit,
            required: &args.require,
            command: &args.command,
        });
        super::log::line(&format!("unitwright: {err}"));
        return Ok(ExitCode::from(err.exec_exit_status()));
    }
    match super::block_on(run_async(global, cmd)) {
        // The exit status of the job verbs for the same kind of failure.
        Err(e) => match e.downcast_ref::<InstanceError>() {
            Some(ie) => {
                super::log::line(&format!("unitwright: {}", super::log::error_text(&e)));
                Ok(ExitCode::from(ie.exit_status()))
            }
            None => Err(e),
        },
        ok => ok,
    }
}

/// The instance unit's name for the log fields (the id as given if it cannot be escaped: the
/// command then fails and says why).
fn instance_unit(template: &str, id: &str) -> String {
    crate::instance::unit_name(template, id).unwrap_or_else(|_| id.to_owned())
}

/// `KEY=VALUE` of `--set` (a malformed one is a usage error, exit 2).
fn parse_setting(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    crate::instance::store::check_setting(k, v)?;
    Ok((k.to_owned(), v.to_owned()))
}

/// The largest value `--set-file` reads (64 KiB): a setting becomes an environment
/// variable and a command-line argument, where the kernel allows 128 KiB per string.
pub const MAX_SET_FILE: u64 = 64 * 1024;

/// Reads at most [`MAX_SET_FILE`] bytes from `r`; more is an error naming `key` and `from`.
fn read_bounded(r: impl std::io::Read, key: &str, from: &str) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut r.take(MAX_SET_FILE + 1), &mut buf)
        .with_context(|| format!("reading the value of {key} from {from}"))?;
    anyhow::ensure!(
        buf.len() as u64 <= MAX_SET_FILE,
        "the value of {key} in {from} is longer than {MAX_SET_FILE} bytes (the limit of --set-file)"
    );
    Ok(buf)
}

/// `KEY=PATH` of `--set-file` (a malformed one is a usage error, exit 2).
fn parse_setting_file(s: &str) -> Result<(String, PathBuf), String> {
    let (k, path) = parse_setting(s)?;
    if path.is_empty() {
        return Err(format!(
            "expected KEY=PATH (or KEY=- for standard input), got {s:?}"
        ));
    }
    Ok((k, PathBuf::from(path)))
}

/// The settings of `start`: `--set` values and the contents of `--set-file` files (one
/// trailing newline removed, as `echo secret > file` adds one). A key given twice is an
/// error: which value would win is not obvious across the two options.
fn start_settings(args: &StartArgs) -> anyhow::Result<BTreeMap<String, String>> {
    let mut settings = BTreeMap::new();
    let mut read_stdin = false;
    let from_files = args.set_file.iter().map(|(key, path)| {
        let bytes = if path.as_os_str() == "-" {
            anyhow::ensure!(
                !read_stdin,
                "--set-file: standard input can be read only once"
            );
            read_stdin = true;
            read_bounded(std::io::stdin(), key, "standard input")?
        } else {
            let file = std::fs::File::open(path)
                .with_context(|| format!("reading the value of {key} from {}", path.display()))?;
            read_bounded(file, key, &path.display().to_string())?
        };
        let mut value = String::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!("the value of {key} in {} is not UTF-8 text", path.display())
        })?;
        if value.ends_with('\n') {
            value.pop();
        }
        Ok((key.clone(), value))
    });
    let from_files: Vec<(String, String)> = from_files.collect::<anyhow::Result<_>>()?;
    for (key, value) in args.set.iter().cloned().chain(from_files) {
        anyhow::ensure!(
            !settings.contains_key(&key),
            "setting {key} is given more than once (by --set or --set-file)"
        );
        settings.insert(key, value);
    }
    Ok(settings)
}

async fn run_async(global: &super::Global, cmd: Command) -> anyhow::Result<ExitCode> {
    let timeout = match &cmd {
        Command::Start(a) => a.timeout,
        Command::Stop(a) | Command::Restart(a) => a.timeout,
        _ => None,
    };
    // Bad settings are refused before anything else happens.
    let settings = match &cmd {
        Command::Start(args) => start_settings(args)?,
        _ => BTreeMap::new(),
    };
    let instances = Instances::connect(global.bus_scope())
        .await?
        .with_timeout(timeout);
    match cmd {
        Command::Start(args) => {
            let unit = instance_unit(&args.template, &args.id);
            let fields = [(UNIT, unit.as_str()), (INSTANCE, args.id.as_str())];
            let options = StartOptions {
                if_active: if args.replace {
                    IfActive::Replace
                } else {
                    IfActive::Refuse
                },
                persistent: args.persistent,
            };
            let start = instances.start_with(&args.template, &args.id, settings, options);
            let started = match with_progress(&instances, &unit, Box::pin(start)).await {
                Ok(s) => s,
                Err(e) => {
                    let failed = Failed::of(JobVerb::Start, &unit, &args.id, &e);
                    return Ok(failed.report(&instances, args.json).await);
                }
            };
            record(
                Level::Info,
                &fields,
                &format!(
                    "started {} ({}/{})",
                    started.unit, started.active_state, started.sub_state
                ),
            );
            if args.json {
                let mut started = started;
                // What came from files stays out of the output (see the module docs).
                for (key, _) in &args.set_file {
                    started.settings.remove(key);
                }
                outln!("{}", started_json(JobVerb::Start, &started));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Restart(args) => {
            let unit = instance_unit(&args.template, &args.id);
            let fields = [(UNIT, unit.as_str()), (INSTANCE, args.id.as_str())];
            let restart = instances.restart(&args.template, &args.id);
            match with_progress(&instances, &unit, Box::pin(restart)).await {
                Ok(started) => {
                    record(
                        Level::Info,
                        &fields,
                        &format!(
                            "restarted {} ({}/{})",
                            started.unit, started.active_state, started.sub_state
                        ),
                    );
                    if args.json {
                        // Values may be secrets that never were on this command line: keys
                        // only, as `list` shows them.
                        let mut v = started_json(JobVerb::Restart, &started);
                        if let Some(o) = v.as_object_mut() {
                            o.remove("settings");
                            o.insert(
                                "keys".to_owned(),
                                json!(started.settings.keys().collect::<Vec<_>>()),
                            );
                        }
                        outln!("{v}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    let failed = Failed::of(JobVerb::Restart, &unit, &args.id, &e);
                    Ok(failed.report(&instances, args.json).await)
                }
            }
        }
        Command::Stop(args) => {
            let unit = instance_unit(&args.template, &args.id);
            let fields = [(UNIT, unit.as_str()), (INSTANCE, args.id.as_str())];
            let since = crate::bus::now_usec();
            let stop = instances.stop(&args.template, &args.id);
            let stopped = match with_progress(&instances, &unit, Box::pin(stop)).await {
                Ok(stopped) => stopped,
                Err(e) => {
                    let failed = Failed::of(JobVerb::Stop, &unit, &args.id, &e);
                    return Ok(failed.report(&instances, false).await);
                }
            };
            if let Some(failed) = Failed::of_stop(&stopped, &args.id, since) {
                return Ok(failed.report(&instances, false).await);
            }
            record(Level::Info, &fields, &format!("stopped {unit}"));
            Ok(ExitCode::SUCCESS)
        }
        Command::StopAll(args) => {
            let since = crate::bus::now_usec();
            let mut code = ExitCode::SUCCESS;
            let stopped = instances.stop_all(&args.template).await?;
            if stopped.is_empty() {
                // None stopped: say so if that is because there is no such template (as `stop`
                // of a unit that does not exist, exit 5).
                if let Err(e) = instances.check_template(&args.template).await {
                    let failed = Failed::of(JobVerb::Stop, &args.template, "", &e);
                    return Ok(failed.report(&instances, false).await);
                }
            }
            for s in stopped {
                let id = crate::escape::unescape_instance_of(&args.template, &s.unit)
                    .map(|id| String::from_utf8_lossy(&id).into_owned())
                    .unwrap_or_default();
                let fields = [(UNIT, s.unit.as_str()), (INSTANCE, id.as_str())];
                if let Some(failed) = Failed::of_stop(&s, &id, since) {
                    code = failed.report(&instances, false).await;
                } else {
                    record(Level::Info, &fields, &format!("stopped {}", s.unit));
                }
            }
            Ok(code)
        }
        Command::List(args) => {
            let list = instances.list(&args.template).await?;
            if list.is_empty() {
                // Like `list PATTERN`, an empty listing is a success; a mistyped template is
                // named on stderr.
                if let Err(e) = instances.check_template(&args.template).await {
                    super::log::line(&format!("unitwright: {}", super::log::std_error_text(&e)));
                }
            }
            if args.json {
                let items: Vec<_> = list.iter().map(info_json).collect();
                outln!("{}", serde_json::Value::Array(items));
            } else {
                print_table(&list);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show(args) => {
            let d = match instances.show(&args.template, &args.id).await {
                Ok(d) => d,
                // As `status` of a unit that does not exist (LSB "unknown").
                Err(e @ InstanceError::NoTemplate { .. }) => {
                    super::log::line(&format!("unitwright: {e}"));
                    return Ok(ExitCode::from(super::systemd::STATUS_UNKNOWN));
                }
                Err(e) => return Err(e.into()),
            };
            if args.json {
                outln!("{}", details_json(&d));
            } else {
                print_details(&d);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec(_) => unreachable!("handled without a runtime"),
    }
}

/// Waits for `work` on the instance `unit`, with the job verbs' progress line on a terminal.
async fn with_progress<F: std::future::Future>(
    instances: &Instances,
    unit: &str,
    work: F,
) -> F::Output {
    let units = [unit.to_owned()];
    super::progress::Waiting::new(1)
        .around(instances.manager(), &units, true, work)
        .await
}

/// How a failed `start`, `restart` or `stop` of an instance is told: as a failed job verb
/// tells it (see `cli::explain`), the reason with the unit's last output lines from the
/// journal, the failed dependencies and `more: unitwright logs 'UNIT'`; with `--json` the
/// same facts in the fields of a job verb's object (docs/json.md), plus `id`. The exit
/// status is the job verbs' too: 1 failed, 5 no such unit or template, 124 still running
/// when the wait ended.
struct Failed<'a> {
    verb: JobVerb,
    unit: &'a str,
    id: &'a str,
    /// The message's first line (`starting X failed: ...`).
    text: String,
    /// The job that ran and failed, and when it was queued (µs since the epoch).
    job: Option<(&'a JobOutcome, u64)>,
    /// Why the job failed (its `failure`, with what the instance adds to it).
    failure: Option<String>,
    /// The exit status.
    code: u8,
}

impl<'a> Failed<'a> {
    /// The failure of `verb` on the instance `unit` (`id`) that ended with `error`.
    fn of(verb: JobVerb, unit: &'a str, id: &'a str, error: &'a InstanceError) -> Self {
        let (job, failure) = match error {
            InstanceError::StartFailed {
                job,
                since_usec,
                why,
                ..
            }
            | InstanceError::RestartFailed {
                job,
                since_usec,
                why,
                ..
            } => (job.as_deref().map(|j| (j, *since_usec)), Some(why.clone())),
            _ => (None, None),
        };
        let code = error.exit_status();
        Failed {
            verb,
            unit,
            id,
            // Exactly what `cli::run` would print for the error.
            text: super::log::std_error_text(error),
            job,
            failure,
            code,
        }
    }

    /// The failure of a stop, if it failed.
    fn of_stop(stopped: &'a Stopped, id: &'a str, since: u64) -> Option<Self> {
        let text = stopped.failure()?;
        let (job, code) = match &stopped.outcome {
            Some(Ok(o)) => (Some((o, since)), 1),
            Some(Err(bus::Error::NoSuchUnit { .. })) => (None, EXIT_NOT_FOUND),
            Some(Err(e)) if e.is_timeout() => (None, EXIT_TIMEOUT),
            _ => (None, 1),
        };
        Some(Failed {
            verb: JobVerb::Stop,
            unit: &stopped.unit,
            id,
            failure: job.and_then(|(o, _)| o.failure()),
            text,
            job,
            code,
        })
    }

    /// Tells it on stderr (or the journal) and, with `json`, on stdout; the exit status.
    async fn report(self, instances: &Instances, json: bool) -> ExitCode {
        let m = instances.manager();
        // A job that ran is explained from the journal, whatever its kind of failure.
        let why = match self.job {
            Some((job, since)) => Some(Explanation::read(m, since, Some(job), json).await),
            None if self.failure.is_some() => Some(Explanation::unread(m)),
            None => None,
        };
        let message = match &why {
            Some(why) => why.message(&self.text, self.unit),
            None => self.text.clone(),
        };
        let result = self.job.map_or("error", |(j, _)| {
            j.result.as_ref().map_or("queued", bus::JobResult::as_str)
        });
        let fields = [
            (UNIT, self.unit),
            (INSTANCE, self.id),
            (JOB, self.verb.as_str()),
            (RESULT, result),
        ];
        report(Level::Error, &fields, &message);
        if json {
            let mut v = match self.job {
                Some((job, _)) => {
                    let mut v = super::systemd::job_json(self.verb, self.unit, &Ok(job.clone()));
                    v["failure"] = self.failure.clone().into();
                    v
                }
                None => super::systemd::error_json(
                    self.verb,
                    self.unit,
                    &JobError {
                        job: None,
                        timed_out: self.code == EXIT_TIMEOUT,
                        not_found: self.code == EXIT_NOT_FOUND,
                        error: &self.text,
                    },
                ),
            };
            v["id"] = self.id.into();
            why.unwrap_or_default().add_json(&mut v);
            outln!("{v}");
        }
        ExitCode::from(self.code)
    }
}

/// The `--json` object of a started or restarted instance.
fn started_json(verb: JobVerb, s: &Started) -> serde_json::Value {
    json!({
        "unit": s.unit,
        "id": s.id,
        "verb": verb.as_str(),
        "success": true,
        "active_state": s.active_state,
        "sub_state": s.sub_state,
        "settings": s.settings,
    })
}

fn details_json(d: &Details) -> serde_json::Value {
    let r = &d.resources;
    json!({
        "unit": d.unit,
        "id": d.id,
        "load_state": d.load_state,
        "active_state": d.active_state,
        "sub_state": d.sub_state,
        "has_settings": d.has_settings,
        "persistent": d.persistent,
        "settings": d.settings,
        "secret_keys": d.secret_keys,
        "published": d.published,
        "memory_current_bytes": r.memory_current_bytes,
        "cpu_usage_nsec": r.cpu_usage_nsec,
        "tasks_current": r.tasks_current,
        "effective_cpus": r.effective_cpus,
    })
}

fn print_details(d: &Details) {
    let r = &d.resources;
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    outln!("unit:      {}", d.unit);
    outln!("id:        {}", serde_json::Value::String(d.id.clone()));
    outln!(
        "state:     {}/{} ({})",
        d.active_state,
        d.sub_state,
        d.load_state
    );
    outln!(
        "published: {}",
        if d.published.is_empty() {
            "-".to_owned()
        } else {
            d.published.join(" ")
        }
    );
    outln!(
        "memory:    {}",
        or_dash(r.memory_current_bytes.map(|b| format!("{b} bytes")))
    );
    outln!(
        "cpu time:  {}",
        or_dash(r.cpu_usage_nsec.map(|n| format!(
            "{}.{:03}s",
            n / 1_000_000_000,
            n % 1_000_000_000 / 1_000_000
        )))
    );
    outln!(
        "tasks:     {}",
        or_dash(r.tasks_current.map(|t| t.to_string()))
    );
    outln!(
        "cpus:      {}",
        or_dash(r.effective_cpus.as_deref().map(crate::bus::format_cpus))
    );
    if d.has_settings {
        outln!("settings:");
        for (k, v) in &d.settings {
            outln!("  {k}={}", serde_json::Value::String(v.clone()));
        }
    } else {
        outln!("settings:  none stored");
    }
}

fn info_json(i: &InstanceInfo) -> serde_json::Value {
    json!({
        "unit": i.unit,
        "id": i.id,
        "load_state": i.load_state,
        "active_state": i.active_state,
        "sub_state": i.sub_state,
        "has_settings": i.has_settings,
        "persistent": i.persistent,
        "keys": i.keys,
    })
}

fn print_table(list: &[InstanceInfo]) {
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|i| {
            [
                i.unit.clone(),
                format!("{}/{}", i.active_state, i.sub_state),
                match (i.has_settings, i.persistent) {
                    (false, _) => "-",
                    (true, false) => "runtime",
                    (true, true) => "persistent",
                }
                .to_owned(),
                i.keys.join(","),
                serde_json::Value::String(i.id.clone()).to_string(),
            ]
        })
        .collect();
    let header = ["UNIT", "STATE", "STORED", "SETTINGS", "ID"].map(str::to_owned);
    let mut width = [0usize; 4];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, c) in width.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (c, w) in r.iter().zip(width) {
            let _ = write!(line, "{c:w$}  ");
        }
        line.push_str(&r[4]);
        outln!("{line}");
    }
}
