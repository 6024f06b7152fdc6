//! Plans and runs `install`, `apply` and `rm` (see `docs/json.md` for the report).
//!
//! Every command: take the scope lock, finish or undo what a killed run left behind, convert the
//! scope's files before and after the change in process, refuse on any error in the files
//! concerned (nothing written), then one transaction ([`super::store`]), exactly one
//! daemon-reload when a file changed (none when nothing did), and jobs: stop units whose files
//! go away (before), restart active units whose generated unit changed, start new units that have
//! `[Install]` (or all new ones with `--now`). A failed job or write puts the previous files back,
//! reloads, restarts what had been restarted, and the report says `rolled_back`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::adapter::{self, Converted, Overlay};
use super::store::{self, App, Op, Recovery, Store};
use super::{Diagnostic, Severity};
use crate::bus::{JobOptions, JobOutcome, JobVerb, Manager};

/// A file to install: where it goes (relative to the Quadlet directory) and what it holds.
#[derive(Debug, Clone)]
pub struct Source {
    /// Relative target path (`web.container`, `web.container.d/10-env.conf`).
    pub rel: PathBuf,
    /// Content.
    pub data: Vec<u8>,
    /// Permission bits of the source.
    pub mode: u32,
}

/// What the command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `install`: add files (refuses to overwrite without `replace`).
    Install,
    /// `apply`: the given files are the app's whole content.
    Apply,
    /// `rm`.
    Remove,
}

/// Options of a command.
#[derive(Debug, Clone, Default)]
#[allow(clippy::struct_excessive_bools)]
pub struct Options {
    /// User scope.
    pub user: bool,
    /// The app.
    pub app: Option<String>,
    /// `install --replace`.
    pub replace: bool,
    /// Start all new units (not only those with `[Install]`).
    pub now: bool,
    /// `apply --prune`.
    pub prune: bool,
    /// Change nothing, say what would happen.
    pub check: bool,
    /// Unified diffs of sources and generated units.
    pub diff: bool,
    /// How long the units it started or restarted must stay up: a unit that fails (or is
    /// being restarted after a failure) within it failed its start, and the change is rolled
    /// back. A start job ends when the unit says it is up (podman's READY comes as soon as
    /// the container runs), before a container that cannot find its configuration exits.
    /// Zero (the default of the library) does not wait.
    pub settle: std::time::Duration,
}

/// A file's action in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAction {
    /// The installed path.
    pub path: PathBuf,
    /// `added`, `changed`, `unchanged`, `removed`.
    pub action: &'static str,
}

/// A unit's action in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitAction {
    /// The unit.
    pub unit: String,
    /// `restart`, `start`, `stop`.
    pub action: &'static str,
    /// The job result (`done`, `failed`, ...), `planned` with `--check`, or an error message.
    pub result: String,
    /// When the job failed: where to find why in the journal (the unit is usually gone after the
    /// roll back, so its output is the one account left).
    pub failure: Option<FailedJob>,
}

/// A failed job of a report, for reading the unit's output in the journal (the library's
/// caller does that: [`FailedJob::output`] is theirs to fill).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJob {
    /// When the job was queued, in µs since the epoch.
    pub since: u64,
    /// The unit's processes that ran (`ExecMainPID`, ...): their lines count even when journald
    /// read the process's cgroup too late to name the unit.
    pub pids: Vec<u32>,
    /// The messages of the unit's last output lines since `since`, oldest first (filled by the
    /// caller).
    pub output: Vec<String>,
    /// The same lines as the journal shows them (`Dec 07 03:10:06 host web[92]: message`).
    pub output_lines: Vec<String>,
}

/// One diff (Ansible's shape).
#[derive(Debug, Clone)]
pub struct Diff {
    /// What was before (`/etc/containers/systemd/web.container (before)`, `web.service`).
    pub before_header: String,
    /// What is after.
    pub after_header: String,
    /// The old text.
    pub before: String,
    /// The new text.
    pub after: String,
}

/// The report of install/apply/rm.
#[derive(Debug, Clone, Default)]
#[allow(clippy::struct_excessive_bools)]
pub struct Report {
    /// Something was (or with `--check` would be) changed.
    pub changed: bool,
    /// The manager was reloaded.
    pub reloaded: bool,
    /// Per file.
    pub files: Vec<FileAction>,
    /// Per unit.
    pub units: Vec<UnitAction>,
    /// Problems found in the files.
    pub diagnostics: Vec<Diagnostic>,
    /// A step failed and the previous files are back.
    pub rolled_back: bool,
    /// What a recovery of an interrupted run did, and other notes for stderr.
    pub notes: Vec<String>,
    /// With `--diff`.
    pub diffs: Vec<Diff>,
    /// True when the command failed (exit 1).
    pub failed: bool,
}

impl Report {
    /// The JSON of docs/json.md (`diff` only with `--diff`).
    pub fn to_json(&self, with_diff: bool) -> Value {
        let mut v = json!({
            "changed": self.changed,
            "reloaded": self.reloaded,
            "files": self.files.iter().map(|f| json!({"path": f.path, "action": f.action})).collect::<Vec<_>>(),
            "units": self.units.iter().map(|u| json!({"unit": u.unit, "action": u.action, "result": u.result,
                "output": u.failure.as_ref().map(|f| &f.output)})).collect::<Vec<_>>(),
            "diagnostics": self.diagnostics.iter().map(Diagnostic::to_json).collect::<Vec<_>>(),
            "rolled_back": self.rolled_back,
        });
        if with_diff {
            v["diff"] = self
                .diffs
                .iter()
                .map(|d| {
                    json!({"before_header": d.before_header, "after_header": d.after_header,
                           "before": d.before, "after": d.after})
                })
                .collect::<Vec<_>>()
                .into();
        }
        v
    }
}

/// The manager, connected on first use: a no-op apply never talks to it.
#[derive(Debug)]
pub struct Lazy {
    scope: crate::bus::Scope,
    cell: tokio::sync::OnceCell<Manager>,
}

impl Lazy {
    /// The user manager (`user`) or the system manager.
    pub fn new(user: bool) -> Self {
        Lazy {
            scope: if user {
                crate::bus::Scope::User
            } else {
                crate::bus::Scope::System
            },
            cell: tokio::sync::OnceCell::new(),
        }
    }

    /// The connection, made now if needed.
    pub async fn get(&self) -> Result<&Manager, Refused> {
        self.cell
            .get_or_try_init(|| Manager::connect(self.scope))
            .await
            .map_err(|e| Refused(e.to_string()))
    }
}

/// The error of a command that could not run at all (exit 1 with a message).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn io(what: &str, e: &std::io::Error) -> Refused {
    Refused(format!("{what}: {e}"))
}

/// Opens the scope's store (lock held) and completes an interrupted run; what was recovered is
/// printed on stderr (`unitwright: recovered: ...`) at once, so that it is said even when the
/// command then fails.
pub async fn open(user: bool, m: Option<&Lazy>) -> Result<Store, Refused> {
    let mut notes = Vec::new();
    let st = open_inner(user, m, &mut notes).await;
    for n in notes {
        // One write per line (lines of parallel runs sharing a stderr never interleave).
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("unitwright: {n}\n").as_bytes(),
        );
    }
    st
}

async fn open_inner(
    user: bool,
    m: Option<&Lazy>,
    notes: &mut Vec<String>,
) -> Result<Store, Refused> {
    let dir = store::install_dir(user).ok_or_else(|| {
        Refused("cannot tell the Quadlet directory: neither XDG_CONFIG_HOME nor HOME is set".into())
    })?;
    let st = Store::open(&dir).map_err(|e| io(&format!("opening {}", dir.display()), &e))?;
    match st
        .recover()
        .map_err(|e| io("recovering an interrupted run", &e))?
    {
        None => {}
        Some(Recovery::Discarded) => notes.push(
            "recovered: an interrupted run had changed nothing; its staged files were discarded"
                .into(),
        ),
        Some(Recovery::RolledBack { files }) => {
            notes.push(format!(
                "recovered: an interrupted run was rolled back; the previous version of {} file(s) is in place",
                files.len()
            ));
            if let Some(m) = m {
                m.get()
                    .await?
                    .reload()
                    .await
                    .map_err(|e| Refused(e.to_string()))?;
            }
        }
        Some(Recovery::Completed { restart, start }) => {
            notes.push(format!(
                "recovered: an interrupted run had written all its files; completing its reload and {} restart(s)",
                restart.len() + start.len()
            ));
            if let Some(m) = m {
                let m = m.get().await?;
                m.reload().await.map_err(|e| Refused(e.to_string()))?;
                let _ = m
                    .jobs(JobVerb::TryRestart, &restart, JobOptions::default())
                    .await;
                let _ = m.start_many(&start).await;
            }
        }
    }
    Ok(st)
}

/// Units and their generated text (files that produced one, not hidden).
fn units_of(conv: &[Converted]) -> BTreeMap<String, (String, PathBuf, bool)> {
    conv.iter()
        .filter(|c| c.hidden_by.is_none())
        .filter_map(|c| {
            Some((
                c.unit.clone()?,
                (c.text.clone()?, c.path.clone(), c.installs),
            ))
        })
        .collect()
}

/// What systemd reads of a generated unit: its lines without comments and empty lines (the
/// generator copies the source's comments; editing one must not restart anything).
fn effective(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .collect()
}

/// True when the generated units differ in what systemd reads.
fn differs(a: &str, b: &str) -> bool {
    a != b && effective(a) != effective(b)
}

async fn is_active(m: &Manager, unit: &str) -> bool {
    m.unit_status(unit).await.is_ok_and(|s| {
        matches!(
            s.active_state.as_str(),
            "active" | "activating" | "reloading"
        )
    })
}

fn job_result(r: &Result<JobOutcome, crate::bus::Error>) -> (bool, String) {
    match r {
        Ok(o) if o.is_success() => (
            true,
            o.result
                .as_ref()
                .map_or("queued".to_owned(), |r| r.as_str().to_owned()),
        ),
        Ok(o) => (false, o.failure().unwrap_or_else(|| "failed".to_owned())),
        // The report names the job; the bus error's own "start of X failed: " would repeat it.
        Err(e) => {
            let text = e.to_string();
            let bare = text
                .split_once(" failed: ")
                .filter(|(what, _)| what.contains(" of "))
                .map_or(text.as_str(), |(_, why)| why);
            (false, bare.to_owned())
        }
    }
}

/// The [`UnitAction`] of one job of [`run_change`]; a failed one says where its output is and,
/// when the unit is missing after the reload, why that may be (`notes`).
fn unit_action(
    unit: &str,
    action: &'static str,
    r: &Result<JobOutcome, crate::bus::Error>,
    (since, st, user): (u64, &Store, bool),
    failed: &mut Vec<String>,
) -> UnitAction {
    let (ok, result) = job_result(r);
    let mut failure = None;
    if !ok {
        failed.push(format!("{action} of {unit} failed: {result}"));
        if matches!(r, Err(crate::bus::Error::NoSuchUnit { .. })) {
            failed.push(missing_after_reload(unit, &st.dir, user));
        }
        // A job that ran (no bus error): the unit's output may say why it failed.
        if let Ok(o) = r {
            failure = Some(FailedJob {
                since,
                pids: o
                    .state
                    .as_ref()
                    .and_then(|s| s.service.as_ref())
                    .map_or_else(Vec::new, crate::bus::ServiceState::ran_pids),
                output: Vec::new(),
                output_lines: Vec::new(),
            });
        }
    }
    UnitAction {
        unit: unit.to_owned(),
        action,
        result,
        failure,
    }
}

/// Watches the units this change started or restarted for `settle`: one that fails, or is
/// being restarted after a failure (`Restart=`), in that time failed its start after all; its
/// [`UnitAction`] says so (its output is read from `since`, when the jobs began) and `failed`
/// gets a note. Ends early at the first such unit (the
/// change is rolled back anyway). Units whose job failed or that were not active after their
/// job (a oneshot that finished, a skipped condition) are not watched.
async fn settle_units(
    m: &Manager,
    settle: std::time::Duration,
    since: u64,
    report: &mut Report,
    failed: &mut Vec<String>,
) {
    let watched: Vec<usize> = report
        .units
        .iter()
        .enumerate()
        .filter(|(_, u)| matches!(u.action, "start" | "restart") && u.failure.is_none())
        .map(|(i, _)| i)
        .collect();
    if watched.is_empty() {
        return;
    }
    let deadline = tokio::time::Instant::now() + settle;
    loop {
        let mut any = false;
        for &i in &watched {
            let unit = report.units[i].unit.clone();
            let Ok(state) = m.unit_status(&unit).await else {
                continue;
            };
            let restarting = state.sub_state == "auto-restart";
            if state.active_state != "failed" && !restarting {
                continue;
            }
            any = true;
            let mut why = Vec::new();
            if let Some(svc) = &state.service {
                if !svc.result.is_empty() && svc.result != "success" {
                    why.push(format!("result {}", svc.result));
                }
                why.extend(svc.main_process_exit());
            }
            let u = &mut report.units[i];
            u.result = format!(
                "{} within {} s of its {}{}{}",
                if restarting {
                    "failed and is being restarted"
                } else {
                    "failed"
                },
                settle.as_secs_f64(),
                u.action,
                if why.is_empty() { "" } else { ": " },
                why.join(", ")
            );
            failed.push(format!("{} of {} failed: {}", u.action, u.unit, u.result));
            u.failure = Some(FailedJob {
                since,
                pids: state
                    .service
                    .as_ref()
                    .map_or_else(Vec::new, crate::bus::ServiceState::ran_pids),
                output: Vec::new(),
                output_lines: Vec::new(),
            });
        }
        if any || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(
            std::time::Duration::from_millis(100)
                .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
        )
        .await;
    }
}

/// Now, in µs since the epoch (the journal's clock).
fn now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Why a unit made from a Quadlet file can be missing right after the reload: the manager ran
/// no generator that reads the directory the file went to. Says where the file went, a
/// `QUADLET_UNIT_DIRS` that only this command has (the manager's generator reads the manager's
/// environment), and which Quadlet generators are installed for that manager, or that none is.
fn missing_after_reload(unit: &str, dir: &Path, user: bool) -> String {
    let kind = if user { "user" } else { "system" };
    let dirs = [
        format!("/run/systemd/{kind}-generators"),
        format!("/etc/systemd/{kind}-generators"),
        format!("/usr/local/lib/systemd/{kind}-generators"),
        format!("/usr/lib/systemd/{kind}-generators"),
    ];
    let found: Vec<String> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("quadlet") || n.starts_with("unitwright"))
        })
        .map(|p| p.display().to_string())
        .collect();
    let mut why = format!(
        "{unit} does not exist after the reload, so no generator made it from the file put in {}",
        dir.display()
    );
    if let Some(v) = std::env::var_os("QUADLET_UNIT_DIRS").filter(|v| !v.is_empty()) {
        let _ = write!(
            why,
            "; QUADLET_UNIT_DIRS={} is set for this command, but the manager's generator reads \
             the manager's own environment",
            v.to_string_lossy()
        );
    }
    if found.is_empty() {
        let _ = write!(
            why,
            "; no Quadlet generator (unitwright-generator, or podman's quadlet) was found in {}",
            dirs.join(", ")
        );
    } else {
        let _ = write!(
            why,
            "; installed Quadlet generator(s): {} (do they read that directory?)",
            found.join(", ")
        );
    }
    why
}

/// `install` (with [`Verb::Install`]) and `apply` (with [`Verb::Apply`]).
pub async fn apply(
    lazy: &Lazy,
    verb: Verb,
    opts: &Options,
    sources: Vec<Source>,
) -> Result<Report, Refused> {
    let mut report = Report::default();
    let st = open(opts.user, Some(lazy)).await?;
    let dir = st.dir.clone();
    let apps = st.apps();
    let owner_of =
        |rel: &Path| -> Option<&App> { apps.iter().find(|a| a.files.iter().any(|f| f == rel)) };
    let old_app = opts
        .app
        .as_deref()
        .and_then(|a| apps.iter().find(|x| x.name == a))
        .cloned();
    // Refusals that need no conversion: names, conflicts.
    let mut seen = BTreeSet::new();
    // Files of other apps that `install --replace` takes over, by their app.
    let mut taken: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
    for s in &sources {
        if !seen.insert(s.rel.clone()) {
            return Err(Refused(format!("{} is given twice", s.rel.display())));
        }
        let target = dir.join(&s.rel);
        let owner = owner_of(&s.rel).map(|a| a.name.as_str());
        let mine = owner.is_some() && owner == opts.app.as_deref();
        if !mine {
            if let Some(other) = owner {
                // Another app's file changes hands only when asked for: `install --replace`
                // (an explicit overwrite). `apply` states one app's content and never takes
                // files from another app (two apps' applies would take a file back and forth).
                if verb == Verb::Install && opts.replace {
                    taken.entry(other).or_default().push(&s.rel);
                    continue;
                }
                let to = opts
                    .app
                    .as_deref()
                    .map_or_else(String::new, |a| format!(" --app {a}"));
                return Err(Refused(format!(
                    "{} belongs to app {other}; remove it there first (unitwright quadlet rm --app {other}), or move it with unitwright quadlet install --replace{to}",
                    target.display()
                )));
            }
            if verb == Verb::Install && target.exists() && !opts.replace {
                return Err(Refused(format!(
                    "{} exists already; use --replace to overwrite it",
                    target.display()
                )));
            }
        }
    }
    // The overlay: new and changed files, and with --prune the app's files no longer given.
    let mut overlay = Overlay::new();
    let mut changes = Vec::new();
    for s in &sources {
        let target = dir.join(&s.rel);
        let old = std::fs::read(&target).ok();
        let action = match &old {
            None => "added",
            Some(o) if *o == s.data => "unchanged",
            Some(_) => "changed",
        };
        report.files.push(FileAction {
            path: target.clone(),
            action,
        });
        if action != "unchanged" {
            if opts.diff {
                report.diffs.push(Diff {
                    before_header: format!("{} (before)", target.display()),
                    after_header: format!("{} (after)", target.display()),
                    before: String::from_utf8_lossy(old.as_deref().unwrap_or_default())
                        .into_owned(),
                    after: String::from_utf8_lossy(&s.data).into_owned(),
                });
            }
            overlay.insert(target.clone(), Some(s.data.clone()));
            changes.push(Op {
                target,
                new: Some((s.data.clone(), s.mode)),
            });
        }
    }
    let given: BTreeSet<&PathBuf> = sources.iter().map(|s| &s.rel).collect();
    let mut record_files: Vec<PathBuf> = sources.iter().map(|s| s.rel.clone()).collect();
    if let Some(old) = &old_app {
        for f in &old.files {
            if given.contains(f) {
                continue;
            }
            let target = dir.join(f);
            if verb == Verb::Apply && opts.prune {
                if opts.diff {
                    report.diffs.push(Diff {
                        before_header: format!("{} (before)", target.display()),
                        after_header: format!("{} (removed)", target.display()),
                        before: std::fs::read_to_string(&target).unwrap_or_default(),
                        after: String::new(),
                    });
                }
                report.files.push(FileAction {
                    path: target.clone(),
                    action: "removed",
                });
                overlay.insert(target.clone(), None);
                changes.push(Op { target, new: None });
            } else {
                report.files.push(FileAction {
                    path: target,
                    action: "unchanged",
                });
                record_files.push(f.clone());
            }
        }
    }
    record_files.sort();
    record_files.dedup();
    // The apps that lose files to `install --replace` (same transaction; an app left without
    // files loses its record).
    for (other, files) in &taken {
        if let Some(old) = apps.iter().find(|a| a.name == *other) {
            let rec = App {
                name: old.name.clone(),
                files: old
                    .files
                    .iter()
                    .filter(|f| !files.contains(&f.as_path()))
                    .cloned()
                    .collect(),
            };
            changes.push(st.app_op(&rec));
            for f in files {
                report.notes.push(format!(
                    "{} moved from app {other}{}",
                    dir.join(f).display(),
                    opts.app
                        .as_deref()
                        .map_or_else(String::new, |a| format!(" to app {a}"))
                ));
            }
        }
    }
    // The app record changes with the files (one transaction).
    if let Some(app) = &opts.app {
        let rec = App {
            name: app.clone(),
            files: record_files,
        };
        if old_app.as_ref() != Some(&rec) {
            changes.push(st.app_op(&rec));
        }
    }
    report.diagnostics.extend(super::lint::misnamed(
        sources
            .iter()
            .filter_map(|s| Some((s.rel.to_str()?, s.data.as_slice()))),
    ));
    let files_changed = report.files.iter().any(|f| f.action != "unchanged");
    // A no-op writes nothing, reloads nothing and does not even connect to the manager: the
    // files in place are exactly the given ones (verified when they were written).
    if !files_changed && changes.is_empty() {
        return Ok(report);
    }
    // Verify: the whole scope before and after; errors in the given files, and files that
    // worked before and fail after, refuse the change.
    let before = adapter::convert_all(opts.user, &dir, &Overlay::new());
    let after = if files_changed {
        adapter::convert_all(opts.user, &dir, &overlay)
    } else {
        before.clone()
    };
    let touched: BTreeSet<PathBuf> = sources.iter().map(|s| dir.join(&s.rel)).collect();
    let ok_before: BTreeSet<&PathBuf> = before.iter().filter(|c| c.ok()).map(|c| &c.path).collect();
    for c in &after {
        let concerned = touched.contains(&c.path)
            || (ok_before.contains(&c.path) && !c.ok() && c.hidden_by.is_none());
        if concerned {
            report.diagnostics.extend(c.diagnostics.iter().cloned());
        }
    }
    if report
        .diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error)
    {
        report.failed = true;
        report.files.iter_mut().for_each(|f| {
            if f.action != "unchanged" {
                f.action = "unchanged";
            }
        });
        report
            .notes
            .push("nothing was changed: the files have errors".into());
        report.diffs.clear();
        return Ok(report);
    }
    let m = lazy.get().await?;
    // Units: stopped (gone), restarted (changed), started (new).
    let ub = units_of(&before);
    let ua = units_of(&after);
    let mut stop = Vec::new();
    let mut restart = Vec::new();
    let mut start = Vec::new();
    for (unit, (text, _, _)) in &ub {
        match ua.get(unit) {
            None => {
                if is_active(m, unit).await {
                    stop.push(unit.clone());
                }
            }
            Some((t2, _, _)) if differs(t2, text) => {
                if opts.diff {
                    report.diffs.push(Diff {
                        before_header: format!("{unit} (generated, before)"),
                        after_header: format!("{unit} (generated, after)"),
                        before: text.clone(),
                        after: t2.clone(),
                    });
                }
                if is_active(m, unit).await {
                    restart.push(unit.clone());
                }
            }
            Some(_) => {}
        }
    }
    for (unit, (text, _, installs)) in &ua {
        if !ub.contains_key(unit) {
            if opts.diff {
                report.diffs.push(Diff {
                    before_header: format!("{unit} (generated, absent)"),
                    after_header: format!("{unit} (generated, after)"),
                    before: String::new(),
                    after: text.clone(),
                });
            }
            if *installs || opts.now {
                start.push(unit.clone());
            }
        }
    }
    report.changed = true;
    if opts.check {
        for (list, action) in [(&stop, "stop"), (&restart, "restart"), (&start, "start")] {
            for u in list {
                report.units.push(UnitAction {
                    unit: u.clone(),
                    action,
                    result: "planned".into(),
                    failure: None,
                });
            }
        }
        return Ok(report);
    }
    let jobs = Jobs {
        stop: &stop,
        restart: &restart,
        start: &start,
        settle: opts.settle,
    };
    run_change(m, &st, changes, &jobs, &mut report).await?;
    drop(st);
    Ok(report)
}

/// The jobs of a change.
struct Jobs<'a> {
    stop: &'a [String],
    restart: &'a [String],
    start: &'a [String],
    /// [`Options::settle`].
    settle: std::time::Duration,
}

/// Stops, writes, reloads, restarts and starts; rolls back on a failure.
async fn run_change(
    m: &Manager,
    st: &Store,
    ops: Vec<Op>,
    jobs: &Jobs<'_>,
    report: &mut Report,
) -> Result<(), Refused> {
    let Jobs {
        stop,
        restart,
        start,
        settle,
    } = *jobs;
    let results = m.jobs(JobVerb::Stop, stop, JobOptions::default()).await;
    for (u, r) in stop.iter().zip(&results) {
        let (_, result) = job_result(r);
        report.units.push(UnitAction {
            unit: u.clone(),
            action: "stop",
            result,
            failure: None,
        });
    }
    let txn = st
        .begin(ops, restart, start)
        .map_err(|e| io("staging the files", &e))?;
    if let Err(e) = txn.commit() {
        txn.rollback()
            .map_err(|e| io("restoring the previous files", &e))?;
        txn.finish()
            .map_err(|e| io("finishing the transaction", &e))?;
        report.rolled_back = true;
        report.failed = true;
        report.notes.push(format!(
            "writing the files failed ({e}); the previous files are back"
        ));
        let _ = m.start_many(stop).await;
        return Ok(());
    }
    // Only the app record changed (files adopted as they are): nothing for the manager.
    if report.files.iter().all(|f| f.action == "unchanged") {
        txn.finish()
            .map_err(|e| io("finishing the transaction", &e))?;
        return Ok(());
    }
    m.reload().await.map_err(|e| Refused(e.to_string()))?;
    report.reloaded = true;
    store::test_point("reloaded");
    let mut failed = Vec::new();
    let user = matches!(m.scope(), crate::bus::Scope::User);
    let since = now_usec();
    let results = m
        .jobs(JobVerb::Restart, restart, JobOptions::default())
        .await;
    for (u, r) in restart.iter().zip(&results) {
        let action = unit_action(u, "restart", r, (since, st, user), &mut failed);
        report.units.push(action);
    }
    let results = m.start_many(start).await;
    for (u, r) in start.iter().zip(&results) {
        let action = unit_action(u, "start", r, (since, st, user), &mut failed);
        report.units.push(action);
    }
    if failed.is_empty() && !settle.is_zero() {
        settle_units(m, settle, since, report, &mut failed).await;
    }
    if failed.is_empty() {
        txn.finish()
            .map_err(|e| io("finishing the transaction", &e))?;
        return Ok(());
    }
    // Roll back: old files, reload, old units running again.
    report.notes.extend(failed);
    txn.rollback()
        .map_err(|e| io("restoring the previous files", &e))?;
    m.reload().await.map_err(|e| Refused(e.to_string()))?;
    let _ = m.jobs(JobVerb::Stop, start, JobOptions::default()).await;
    for u in start {
        let _ = m.reset_failed(Some(u)).await;
    }
    let _ = m
        .jobs(JobVerb::Restart, restart, JobOptions::default())
        .await;
    let _ = m.start_many(stop).await;
    txn.finish()
        .map_err(|e| io("finishing the transaction", &e))?;
    report.rolled_back = true;
    report.failed = true;
    report
        .notes
        .push("the previous files are back and the manager was reloaded".into());
    Ok(())
}

/// `rm NAME... | --app NAME`: stops the units, removes the files and the app record, one reload.
pub async fn remove(lazy: &Lazy, opts: &Options, names: &[String]) -> Result<Report, Refused> {
    let mut report = Report::default();
    let st = open(opts.user, Some(lazy)).await?;
    let m = lazy.get().await?;
    let dir = st.dir.clone();
    let apps = st.apps();
    let mut rels: Vec<PathBuf> = Vec::new();
    let mut records: Vec<App> = Vec::new();
    if let Some(app) = &opts.app {
        let a = apps
            .iter()
            .find(|a| &a.name == app)
            .ok_or_else(|| Refused(format!("no app {app} is installed in {}", dir.display())))?;
        rels.extend(a.files.iter().cloned());
        records.push(App {
            name: a.name.clone(),
            files: Vec::new(),
        });
    }
    for n in names {
        let rel = PathBuf::from(n);
        let rel = if rel.is_absolute() {
            rel.strip_prefix(&dir)
                .map(Path::to_path_buf)
                .map_err(|_| Refused(format!("{n} is not in {}", dir.display())))?
        } else {
            rel
        };
        if !dir.join(&rel).exists() {
            return Err(Refused(format!(
                "{} does not exist",
                dir.join(&rel).display()
            )));
        }
        // Its drop-in directory goes with it.
        let dd = dir.join(format!("{}.d", rel.display()));
        for e in std::fs::read_dir(&dd).into_iter().flatten().flatten() {
            rels.push(
                rel.with_file_name(format!("{}.d", rel.display()))
                    .join(e.file_name()),
            );
        }
        rels.push(rel.clone());
        for a in &apps {
            if a.files.contains(&rel) {
                let mut a2 = records
                    .iter()
                    .find(|r| r.name == a.name)
                    .cloned()
                    .unwrap_or_else(|| a.clone());
                a2.files
                    .retain(|f| f != &rel && !f.starts_with(format!("{}.d", rel.display())));
                records.retain(|r| r.name != a.name);
                records.push(a2);
            }
        }
    }
    rels.sort();
    rels.dedup();
    let mut overlay = Overlay::new();
    let mut changes = Vec::new();
    for rel in &rels {
        let target = dir.join(rel);
        report.files.push(FileAction {
            path: target.clone(),
            action: "removed",
        });
        overlay.insert(target.clone(), None);
        changes.push(Op { target, new: None });
    }
    for r in &records {
        changes.push(st.app_op(r));
    }
    let before = adapter::convert_all(opts.user, &dir, &Overlay::new());
    let after = adapter::convert_all(opts.user, &dir, &overlay);
    let ub = units_of(&before);
    let ua = units_of(&after);
    let mut stop = Vec::new();
    let mut restart = Vec::new();
    for (u, (t, _, _)) in &ub {
        let after = ua.get(u).map(|x| &x.0);
        if after.is_some_and(|a| !differs(a, t)) || !is_active(m, u).await {
            continue;
        }
        if after.is_none() {
            stop.push(u.clone());
        } else {
            restart.push(u.clone());
        }
    }
    if changes.is_empty() {
        return Ok(report);
    }
    report.changed = true;
    if opts.check {
        for u in &stop {
            report.units.push(UnitAction {
                unit: u.clone(),
                action: "stop",
                result: "planned".into(),
                failure: None,
            });
        }
        return Ok(report);
    }
    let jobs = Jobs {
        stop: &stop,
        restart: &restart,
        start: &[],
        settle: opts.settle,
    };
    run_change(m, &st, changes, &jobs, &mut report).await?;
    Ok(report)
}
