//! `unitwright instance`: template instances with per-instance settings (see
//! [`crate::instance`]).
//!
//! * `instance start TEMPLATE ID [--set KEY=VALUE]... [--json]`: stores the settings of the
//!   instance `systemd-escape --template=TEMPLATE ID`, starts it and waits for the job.
//!   `--set KEY=auto-port` allocates a free TCP port on 127.0.0.1. A failed start exits 1,
//!   says why (job result, exit status), and leaves neither settings nor a failed unit.
//! * `instance stop TEMPLATE ID`, `instance stop-all TEMPLATE` (concurrently; also removes the
//!   settings of instances that are not loaded), `instance list TEMPLATE [--json]` (keys only).
//! * `instance exec [--settings-dir DIR] [--require KEY]... UNIT -- CMD ARGS...`: the wrapper
//!   generated units run (see [`crate::instance::exec`]); no D-Bus.
//!
//! Credentials: `start --json` prints every setting back with its value, because the caller
//! passed them on the command line (where any local user can read them in /proc anyway) and
//! needs the allocated ones; `list` never prints values, and nothing is logged. Settings files
//! are mode 0600 in a 0700 directory.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;

use crate::bus::Scope;
use crate::instance::exec::{exec, ExecRequest};
use crate::instance::{InstanceInfo, Instances, Started, Store};

/// The `instance` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Store an instance's settings and start it, waiting for the job.
    Start(StartArgs),
    /// Stop an instance and remove its settings.
    Stop(StopArgs),
    /// Stop every instance of a template concurrently and remove all their settings.
    StopAll(TemplateArgs),
    /// List the instances of a template (settings by key only).
    List(ListArgs),
    /// Run CMD with the settings of UNIT (used in generated units; no D-Bus).
    Exec(ExecArgs),
}

/// `instance start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The template unit, e.g. console@.service.
    pub template: String,
    /// The instance id: any text (escaped into the unit name like systemd-escape does).
    #[arg(allow_hyphen_values = true)]
    pub id: String,
    /// A setting; `KEY=auto-port` allocates a free TCP port on 127.0.0.1. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the started instance as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `instance stop`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// The template unit, e.g. console@.service.
    pub template: String,
    /// The instance id.
    #[arg(allow_hyphen_values = true)]
    pub id: String,
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

/// `instance exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Where the settings files are (default: that of --user/--system).
    #[arg(long, value_name = "DIR")]
    pub settings_dir: Option<PathBuf>,
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

fn scope(global: &super::Global) -> Scope {
    match global.scope() {
        super::Scope::User => Scope::User,
        super::Scope::System => Scope::System,
    }
}

/// Runs one `instance` command.
pub fn run(global: &super::Global, cmd: Command) -> anyhow::Result<ExitCode> {
    if let Command::Exec(args) = cmd {
        let dir = match args.settings_dir {
            Some(d) => d,
            None => Store::for_manager(global.user)?.dir().to_owned(),
        };
        let err = exec(&ExecRequest {
            settings_dir: &dir,
            unit: &args.unit,
            required: &args.require,
            command: &args.command,
        });
        return Err(err.into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(global, cmd))
}

fn parse_set(set: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for s in set {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--set {s:?}: expected KEY=VALUE"))?;
        map.insert(k.to_owned(), v.to_owned());
    }
    Ok(map)
}

async fn run_async(global: &super::Global, cmd: Command) -> anyhow::Result<ExitCode> {
    let instances = Instances::connect(scope(global)).await?;
    match cmd {
        Command::Start(args) => {
            let settings = parse_set(&args.set)?;
            let started = instances.start(&args.template, &args.id, settings).await?;
            if args.json {
                println!("{}", started_json(&started));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stop(args) => {
            let stopped = instances.stop(&args.template, &args.id).await?;
            match stopped.failure() {
                Some(why) => anyhow::bail!(why),
                None => Ok(ExitCode::SUCCESS),
            }
        }
        Command::StopAll(args) => {
            let mut ok = true;
            for s in instances.stop_all(&args.template).await? {
                if let Some(why) = s.failure() {
                    eprintln!("unitwright: {why}");
                    ok = false;
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::List(args) => {
            let list = instances.list(&args.template).await?;
            if args.json {
                let items: Vec<_> = list.iter().map(info_json).collect();
                println!("{}", serde_json::Value::Array(items));
            } else {
                print_table(&list);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec(_) => unreachable!("handled without a runtime"),
    }
}

fn started_json(s: &Started) -> serde_json::Value {
    json!({
        "unit": s.unit,
        "id": s.id,
        "active_state": s.active_state,
        "sub_state": s.sub_state,
        "settings": s.settings,
    })
}

fn info_json(i: &InstanceInfo) -> serde_json::Value {
    json!({
        "unit": i.unit,
        "id": i.id,
        "load_state": i.load_state,
        "active_state": i.active_state,
        "sub_state": i.sub_state,
        "has_settings": i.has_settings,
        "keys": i.keys,
    })
}

fn print_table(list: &[InstanceInfo]) {
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|i| {
            [
                i.unit.clone(),
                format!("{}/{}", i.active_state, i.sub_state),
                i.keys.join(","),
                serde_json::Value::String(i.id.clone()).to_string(),
            ]
        })
        .collect();
    let header = [
        "UNIT".to_owned(),
        "STATE".to_owned(),
        "SETTINGS".to_owned(),
        "ID".to_owned(),
    ];
    let mut width = [0usize; 3];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, c) in width.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        println!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        );
    }
}
