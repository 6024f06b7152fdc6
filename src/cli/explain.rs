//! Why a job failed, beyond its result: the unit's last output lines from the journal, the
//! hard dependencies that failed (with their output), and the command that shows more.
//!
//! One explanation for every verb that runs jobs: the systemctl-like job verbs
//! (`cli::systemd`) and the instance verbs (`cli::instance`), so that a failed `instance
//! start` says exactly what a failed `start` says, in text and in `--json`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::bus::{self, JobOutcome, Manager};

/// How many of a unit's last output lines a failed (or, with `--json`, finished) job quotes.
const OUTPUT_LINES: usize = 5;
/// How long to wait for the manager's record of a job's end to reach the journal.
const SETTLE: Duration = Duration::from_secs(2);

/// What explains a job's outcome beyond its result: the unit's last output lines, and for a
/// `dependency` result the dependencies that failed and their output.
#[derive(Debug, Default)]
pub struct Explanation {
    /// The unit's last output lines since the job was queued (`None` when not read).
    output: Option<Vec<crate::journal::Entry>>,
    /// The hard dependencies that are not active, for a `dependency` result.
    dependencies: Vec<FailedDependency>,
    /// The journal could not be read: why.
    journal_error: Option<String>,
    /// Whether the units are the user manager's (for the `--user` in the hint).
    user: bool,
}

#[derive(Debug)]
struct FailedDependency {
    state: bus::UnitState,
    /// Why it failed, as for a job (`result exit-code, ExecStart exited with status 1`).
    failure: Option<String>,
    output: Vec<crate::journal::Entry>,
}

/// Whose journal records belong to the units of `m`: the system's, or those of the calling
/// user's manager.
pub fn journal_scope(m: &Manager) -> crate::journal::Scope {
    journal_scope_of(m.scope() == bus::Scope::User)
}

/// Whose journal records belong to the units of the user manager (`user`) or the system's.
pub fn journal_scope_of(user: bool) -> crate::journal::Scope {
    if user {
        crate::journal::Scope::User(rustix::process::getuid().as_raw())
    } else {
        crate::journal::Scope::System
    }
}

/// The last output lines of `unit` since `since` (µs since the epoch), from its records and
/// those of `pids` (the processes its job ran), as a failed job quotes them: at most
/// `OUTPUT_LINES` (5), empty ones dropped (a container's lines come through conmon with their
/// newline).
pub fn unit_output(
    unit: &str,
    scope: crate::journal::Scope,
    since: u64,
    pids: &[u32],
) -> Result<Vec<crate::journal::Entry>, crate::journal::Error> {
    let mut lines =
        crate::journal::output_since(unit, scope, since, OUTPUT_LINES, pids, SETTLE, None)?;
    lines.retain(|e| !e.message().trim().is_empty());
    Ok(lines)
}

impl Explanation {
    /// An explanation that reads nothing (the journal of a remote host is not ours to read):
    /// only the `more:` hint, for the units of `m`.
    pub fn unread(m: &Manager) -> Self {
        Explanation {
            user: m.scope() == bus::Scope::User,
            ..Explanation::default()
        }
    }

    /// Reads what explains `outcome`, a job of `m` queued at `since` (µs since the epoch):
    /// for a failed job (and, with `json`, a start whose unit ran and exited) the unit's last
    /// output lines, from its own records and those of the processes it ran (the PIDs in the
    /// outcome's state); for a `dependency` result also the failed dependencies.
    pub async fn read(m: &Manager, since: u64, outcome: Option<&JobOutcome>, json: bool) -> Self {
        let mut why = Explanation::unread(m);
        let Some(o) = outcome else {
            return why;
        };
        let failed = o.failure().is_some();
        let finished = o.after_start() == Some(bus::AfterStart::Exited);
        if !(failed || (json && finished)) {
            return why;
        }
        let scope = journal_scope(m);
        let pids = |s: Option<&bus::UnitState>| {
            s.and_then(|s| s.service.as_ref())
                .map_or_else(Vec::new, bus::ServiceState::ran_pids)
        };
        let read = |unit: &str, pids: &[u32]| unit_output(unit, scope, since, pids);
        match read(&o.unit, &pids(o.state.as_ref())) {
            Ok(lines) => why.output = Some(lines),
            Err(e) => why.journal_error = Some(e.to_string()),
        }
        if o.result == Some(bus::JobResult::Dependency) {
            for state in m.failed_dependencies(&o.unit).await.unwrap_or_default() {
                let failure = state.service.as_ref().map(|svc| {
                    let mut parts = vec![format!("{} ({})", state.active_state, state.sub_state)];
                    if !svc.result.is_empty() && svc.result != "success" {
                        parts.push(format!("result {}", svc.result));
                    }
                    parts.extend(svc.main_process_exit());
                    parts.join(", ")
                });
                let output = if why.journal_error.is_none() {
                    read(&state.name, &pids(Some(&state))).unwrap_or_default()
                } else {
                    Vec::new()
                };
                why.dependencies.push(FailedDependency {
                    state,
                    failure,
                    output,
                });
            }
        }
        why
    }

    /// The report of a failed job of `unit`: `headline` (e.g. `start of web.service failed:
    /// result exit-code, ExecStart exited with status 3`), the failed dependencies named on
    /// the same line, then one indented line per output line, and the command that shows
    /// more (`  more: unitwright --user logs 'UNIT'`, shell-quoted).
    pub fn message(&self, headline: &str, unit: &str) -> String {
        let mut text = headline.to_owned();
        if !self.dependencies.is_empty() {
            let deps: Vec<String> = self
                .dependencies
                .iter()
                .map(|d| match &d.failure {
                    Some(f) => format!("{} ({f})", d.state.name),
                    None => format!("{} ({})", d.state.name, d.state.active_state),
                })
                .collect();
            text.push_str("; failed dependency: ");
            text.push_str(&deps.join(", "));
        }
        for line in self.lines(unit) {
            text.push('\n');
            text.push_str(&line);
        }
        text
    }

    /// The lines printed under a failed job: failed dependencies' output, the unit's last
    /// output, and the command that shows more.
    fn lines(&self, unit: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let user = self.user;
        let more = |u: &str| {
            format!(
                "  more: unitwright{} logs {}",
                if user { " --user" } else { "" },
                crate::escape::shell_quote(u)
            )
        };
        for d in &self.dependencies {
            for e in &d.output {
                lines.push(format!(
                    "  {} {}",
                    d.state.name,
                    e.short_line(false).trim_end()
                ));
            }
            lines.push(more(&d.state.name));
        }
        if let Some(out) = &self.output {
            for e in out {
                lines.push(format!("  {}", e.short_line(false).trim_end()));
            }
        }
        if let Some(e) = &self.journal_error {
            lines.push(format!("  (its journal could not be read: {e})"));
        }
        lines.push(more(unit));
        lines
    }

    /// Sets the `--json` fields of the explanation on the object `v` (docs/json.md, "Job
    /// verbs"): `output` (the messages, or null when not read) and `failed_dependencies`.
    pub fn add_json(&self, v: &mut Value) {
        v["failed_dependencies"] = self
            .dependencies
            .iter()
            .map(|d| {
                json!({
                    "unit": d.state.name,
                    "active_state": d.state.active_state,
                    "failure": d.failure,
                    "output": messages(&d.output),
                })
            })
            .collect::<Vec<_>>()
            .into();
        v["output"] = self.output.as_deref().map(messages).into();
    }
}

fn messages(entries: &[crate::journal::Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.message().trim_end()).collect()
}
