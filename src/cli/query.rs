//! The verbs scripts reach for, with systemctl's meaning and exit codes: `is-active`,
//! `is-failed`, `is-enabled`, `cat`, `show`, `list-jobs`, `mask`, `unmask`.
//!
//! | verb | prints (unless `-q`) | exit 0 when | otherwise |
//! |---|---|---|---|
//! | `is-active UNIT...` | each `ActiveState` | at least one is active (or reloading) | 3 |
//! | `is-failed UNIT...` | each `ActiveState` | at least one is failed | 1 |
//! | `is-enabled UNIT...` | each `UnitFileState` | at least one is enabled, enabled-runtime, static, alias, indirect, generated or transient | 1 (also when a unit file does not exist, with a message) |
//! | `cat UNIT...` | the unit file and its drop-ins, each after a `# PATH` line | all were found | 1 |
//! | `show [UNIT...] [-p PROP]...` | `Name=value` lines of the unit's (or the manager's) properties | the unit could be read | 1 |
//! | `list-jobs` | the queued jobs | always | - |
//! | `mask`/`unmask UNIT...` | the symlinks created/removed (stderr) | done | 1 |
//!
//! Everything goes through the same connection set-up as the other verbs
//! (`systemd::connect`), so `--user`/`--system` (and any remote option it learns) apply.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use serde_json::Value;
use zbus::zvariant::{OwnedValue, Value as ZValue};

use crate::bus::{mangle, Manager};

/// Units of `is-active`/`is-failed`/`is-enabled`/`cat`/`mask`/`unmask`.
#[derive(Debug, clap::Args)]
pub struct UnitsArgs {
    /// The units (`web` means `web.service`).
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
}

/// Options of `show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The units (the manager itself when none is given).
    #[arg(value_name = "UNIT")]
    pub units: Vec<String>,
    /// Only these properties (repeatable, or comma-separated), e.g. `-p ActiveState,MainPID`.
    #[arg(short, long = "property", value_name = "PROP", value_delimiter = ',')]
    pub property: Vec<String>,
    /// Print only the values, one per line (systemctl --value).
    #[arg(long)]
    pub value: bool,
    /// Print one JSON object per unit (property names to values as D-Bus gave them).
    #[arg(long)]
    pub json: bool,
}

/// Exit status of `is-active` when no unit is active (systemctl's, LSB "not running").
pub const NOT_ACTIVE: u8 = 3;

/// `is-active` / `is-failed`.
pub async fn is_state(m: &Manager, args: &UnitsArgs, failed: bool, quiet: bool) -> ExitCode {
    let units: Vec<String> = args.units.iter().map(|u| mangle(u)).collect();
    let states = futures_util::future::join_all(units.iter().map(|u| m.active_state(u))).await;
    let mut any = false;
    let mut out = std::io::stdout().lock();
    for (unit, state) in units.iter().zip(states) {
        let state = match state {
            Ok(s) => s,
            Err(e) => {
                ::log::debug!("{unit}: {e}");
                "inactive".to_owned()
            }
        };
        any |= if failed {
            state == "failed"
        } else {
            matches!(state.as_str(), "active" | "reloading")
        };
        if !quiet {
            let _ = writeln!(out, "{state}");
        }
    }
    match (any, failed) {
        (true, _) => ExitCode::SUCCESS,
        (false, true) => ExitCode::FAILURE,
        (false, false) => ExitCode::from(NOT_ACTIVE),
    }
}

/// `is-enabled`.
pub async fn is_enabled(m: &Manager, args: &UnitsArgs, quiet: bool) -> ExitCode {
    let units: Vec<String> = args.units.iter().map(|u| mangle(u)).collect();
    let states = futures_util::future::join_all(units.iter().map(|u| m.unit_file_state(u))).await;
    let mut any = false;
    let mut out = std::io::stdout().lock();
    for state in states {
        match state {
            Ok(s) => {
                any |= matches!(
                    s.as_str(),
                    "enabled"
                        | "enabled-runtime"
                        | "static"
                        | "alias"
                        | "indirect"
                        | "generated"
                        | "transient"
                );
                if !quiet {
                    let _ = writeln!(out, "{s}");
                }
            }
            Err(e) => eprintln!("unitwright: {e}"),
        }
    }
    if any {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `cat`: the unit file and drop-ins as the manager loaded them (paths from `FragmentPath`
/// and `DropInPaths`, contents read from disk like systemctl does).
pub async fn cat(m: &Manager, args: &UnitsArgs) -> anyhow::Result<ExitCode> {
    let units: Vec<String> = args.units.iter().map(|u| mangle(u)).collect();
    let states = futures_util::future::join_all(units.iter().map(|u| m.unit_status(u))).await;
    let mut code = ExitCode::SUCCESS;
    let mut out = std::io::stdout().lock();
    let mut first = true;
    for (unit, state) in units.iter().zip(states) {
        let state = match state {
            Ok(s) if !s.fragment_path.is_empty() || !s.drop_in_paths.is_empty() => s,
            Ok(_) => {
                eprintln!("unitwright: {unit} has no unit file");
                code = ExitCode::FAILURE;
                continue;
            }
            Err(e) => {
                eprintln!("unitwright: {e}");
                code = ExitCode::FAILURE;
                continue;
            }
        };
        let files = std::iter::once(&state.fragment_path)
            .filter(|p| !p.is_empty())
            .chain(&state.drop_in_paths);
        for path in files {
            if !first {
                writeln!(out)?;
            }
            first = false;
            writeln!(out, "# {path}")?;
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    out.write_all(text.as_bytes())?;
                    if !text.ends_with('\n') && !text.is_empty() {
                        writeln!(out)?;
                    }
                }
                Err(e) => {
                    eprintln!("unitwright: reading {path}: {e}");
                    code = ExitCode::FAILURE;
                }
            }
        }
        if !state.source_path.is_empty() {
            writeln!(out, "# generated from {}", state.source_path)?;
        }
    }
    Ok(code)
}

/// `show`.
pub async fn show(m: &Manager, args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let targets: Vec<Option<String>> = if args.units.is_empty() {
        vec![None]
    } else {
        args.units.iter().map(|u| Some(mangle(u))).collect()
    };
    let mut out = std::io::stdout().lock();
    let mut code = ExitCode::SUCCESS;
    for (i, unit) in targets.iter().enumerate() {
        let props = match m.all_properties(unit.as_deref()).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("unitwright: {e}");
                code = ExitCode::FAILURE;
                continue;
            }
        };
        let wanted =
            |name: &str| args.property.is_empty() || args.property.iter().any(|p| p == name);
        if args.json {
            let map: serde_json::Map<String, Value> = props
                .iter()
                .filter(|(k, _)| wanted(k))
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect();
            writeln!(out, "{}", Value::Object(map))?;
            continue;
        }
        if i > 0 {
            writeln!(out)?;
        }
        // In the order asked for with -p, else sorted by name.
        let mut rows: Vec<(&String, &OwnedValue)> =
            props.iter().filter(|(k, _)| wanted(k)).collect();
        if args.property.is_empty() {
            rows.sort_by(|a, b| a.0.cmp(b.0));
        } else {
            rows.sort_by_key(|(k, _)| args.property.iter().position(|p| p == *k));
        }
        for (k, v) in rows {
            if args.value {
                writeln!(out, "{}", format_value(v))?;
            } else {
                writeln!(out, "{k}={}", format_value(v))?;
            }
        }
    }
    Ok(code)
}

/// A property value as systemctl show prints simple ones: strings as they are, booleans
/// `yes`/`no`, numbers in decimal (`[not set]` for the "unset" `UINT64_MAX` of counters,
/// `infinity` for limits), string arrays space-separated, byte arrays (IDs) in hex; other
/// structures in D-Bus notation.
pub fn format_value(v: &ZValue<'_>) -> String {
    match v {
        ZValue::Str(s) => s.to_string(),
        ZValue::ObjectPath(p) => p.to_string(),
        ZValue::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        ZValue::U8(n) => n.to_string(),
        ZValue::I16(n) => n.to_string(),
        ZValue::U16(n) => n.to_string(),
        ZValue::I32(n) => n.to_string(),
        ZValue::U32(n) => n.to_string(),
        ZValue::I64(n) => n.to_string(),
        ZValue::U64(n) if *n == u64::MAX => "[not set]".to_owned(),
        ZValue::U64(n) => n.to_string(),
        ZValue::F64(n) => n.to_string(),
        ZValue::Value(inner) => format_value(inner),
        ZValue::Array(a) => {
            if a.element_signature() == "y" {
                a.iter()
                    .filter_map(|b| u8::try_from(b).ok())
                    .fold(String::new(), |mut s, b| {
                        let _ = write!(s, "{b:02x}");
                        s
                    })
            } else {
                a.iter().map(format_value).collect::<Vec<_>>().join(" ")
            }
        }
        other => format!("{other}"),
    }
}

fn to_json(v: &ZValue<'_>) -> Value {
    match v {
        ZValue::Str(s) => Value::from(s.as_str()),
        ZValue::ObjectPath(p) => Value::from(p.as_str()),
        ZValue::Bool(b) => Value::from(*b),
        ZValue::U8(n) => Value::from(*n),
        ZValue::I16(n) => Value::from(*n),
        ZValue::U16(n) => Value::from(*n),
        ZValue::I32(n) => Value::from(*n),
        ZValue::U32(n) => Value::from(*n),
        ZValue::I64(n) => Value::from(*n),
        ZValue::U64(n) => Value::from(*n),
        ZValue::F64(n) => Value::from(*n),
        ZValue::Value(inner) => to_json(inner),
        ZValue::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        ZValue::Structure(s) => Value::Array(s.fields().iter().map(to_json).collect()),
        other => Value::from(format!("{other}")),
    }
}

/// `list-jobs`.
pub async fn list_jobs(m: &Manager) -> anyhow::Result<ExitCode> {
    let mut jobs = m.list_jobs().await?;
    jobs.sort_by_key(|j| j.id);
    let mut out = std::io::stdout().lock();
    if jobs.is_empty() {
        writeln!(out, "No jobs running.")?;
        return Ok(ExitCode::SUCCESS);
    }
    let w_unit = jobs
        .iter()
        .map(|j| j.unit.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let w_type = jobs
        .iter()
        .map(|j| j.job_type.len())
        .max()
        .unwrap_or(0)
        .max(4);
    writeln!(
        out,
        "{:>5} {:w_unit$} {:w_type$} STATE",
        "JOB", "UNIT", "TYPE"
    )?;
    for j in &jobs {
        writeln!(
            out,
            "{:>5} {:w_unit$} {:w_type$} {}",
            j.id, j.unit, j.job_type, j.state
        )?;
    }
    writeln!(out, "\n{} jobs listed.", jobs.len())?;
    Ok(ExitCode::SUCCESS)
}
