//! `unitwright [--user|--system] quadlet verify|install|apply|list|cat|rm`: Quadlet files to
//! running units (see [`crate::lifecycle`] and docs/json.md).
//!
//! Exit status: 0 success, 1 errors (in the files, a failed job, a refused change), 2 usage.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::log::line;
use crate::bus::{self, Manager, Options};
use crate::lifecycle::engine::{self, Report, Source, Verb};
use crate::lifecycle::{adapter, quadlets, store, Diagnostic, Severity};

/// Examples and notes for `unitwright quadlet --help` and unitwright-quadlet(1).
pub const EXAMPLES: &str = "\
Files go to /etc/containers/systemd (--user: ~/.config/containers/systemd; with \
QUADLET_UNIT_DIRS set, its first entry). A PATH is a Quadlet file, a directory (an app: its \
files and NAME.d/*.conf drop-ins) or a podman .quadlets file.

Examples:
  unitwright quadlet verify ./web/
  unitwright quadlet install ./web/ --now
  unitwright quadlet apply ./web/ --app web --check --diff --json
  unitwright quadlet apply ./web/ --app web --prune
  unitwright quadlet list --app web
  unitwright quadlet cat web.container
  unitwright quadlet rm --app web

Exit status: 0 success (also a no-op apply), 1 errors in the files, a refused change or a \
rolled-back apply, 2 usage. A unit is restarted only when its generated unit changed; a no-op \
apply writes nothing and does not reload. JSON formats: docs/json.md.";

/// The Quadlet subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check Quadlet files (with what is installed) without changing anything: every problem
    /// with file, line, key and a hint.
    Verify(VerifyArgs),
    /// Install Quadlet files, a directory (an app) or a podman .quadlets file, then reload.
    Install(InstallArgs),
    /// Make an app exactly the given files: write what changed, reload once, restart the units
    /// whose generated unit changed.
    Apply(ApplyArgs),
    /// List the Quadlet files of the scope with their unit, app and state.
    List(ListArgs),
    /// Print a Quadlet file, its drop-ins and the unit it generates.
    Cat(CatArgs),
    /// Stop the units of Quadlet files or an app and remove the files, then reload.
    Rm(RmArgs),
}

impl Command {
    /// For `-H` (`cli::remote`): the local PATHs the verb reads, and whether it prints JSON.
    pub fn remote_parts(&self) -> (Vec<PathBuf>, bool) {
        match self {
            Command::Verify(a) => (a.paths.clone(), a.json),
            Command::Install(a) => (a.paths.clone(), a.json),
            Command::Apply(a) => (a.paths.clone(), a.json),
            Command::List(a) => (Vec::new(), a.json),
            Command::Cat(_) => (Vec::new(), false),
            Command::Rm(a) => (Vec::new(), a.json),
        }
    }
}

/// `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Files, directories or .quadlets files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print a JSON array of diagnostics.
    #[arg(long)]
    pub json: bool,
}

/// `install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Files, directories or .quadlets files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The app the files form (default: the directory's or .quadlets file's name).
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Overwrite files that exist; a file of another app moves to this one.
    #[arg(long)]
    pub replace: bool,
    /// Start the new units and wait for their jobs.
    #[arg(long)]
    pub now: bool,
    /// After the jobs, watch the started and restarted units for SECONDS: one that fails (or
    /// is restarted after a failure) in that time counts as a failed start, and the change is
    /// rolled back (0: do not wait).
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = parse_settle)]
    pub settle: std::time::Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `apply`.
#[derive(Debug, clap::Args)]
#[allow(clippy::struct_excessive_bools)]
pub struct ApplyArgs {
    /// The app's files, directories or .quadlets files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The app.
    #[arg(long, value_name = "NAME", required = true)]
    pub app: String,
    /// Stop and remove the app's files that are no longer given.
    #[arg(long)]
    pub prune: bool,
    /// Start all new units, not only those with [Install].
    #[arg(long)]
    pub now: bool,
    /// After the jobs, watch the started and restarted units for SECONDS: one that fails (or
    /// is restarted after a failure) in that time counts as a failed start, and the change is
    /// rolled back (0: do not wait).
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = parse_settle)]
    pub settle: std::time::Duration,
    /// Change nothing; say what would happen.
    #[arg(long)]
    pub check: bool,
    /// Show unified diffs of the sources and of the generated units.
    #[arg(long)]
    pub diff: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--settle SECONDS`: a number of seconds, fractions allowed, 0 or more.
fn parse_settle(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|secs| std::time::Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| {
            format!("expected a number of seconds, 0 or more (such as 2 or 0.5), got {s:?}")
        })
}

/// `list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only the files of this app.
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `cat`.
#[derive(Debug, clap::Args)]
pub struct CatArgs {
    /// A Quadlet file name (`web.container`) or the unit it generates.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// `rm`.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Quadlet file names (`web.container`).
    #[arg(value_name = "NAME", required_unless_present = "app")]
    pub names: Vec<String>,
    /// Remove every file of this app.
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs one quadlet command.
pub fn run(global: &super::Global, cmd: Command) -> anyhow::Result<ExitCode> {
    let user = global.scope() == super::Scope::User;
    match cmd {
        Command::Verify(a) => Ok(verify(user, &a)),
        Command::List(a) => with_runtime(list(user, a)),
        Command::Cat(a) => Ok(cat(user, &a)),
        Command::Install(a) => with_runtime(install(user, a)),
        Command::Apply(a) => with_runtime(apply(user, a)),
        Command::Rm(a) => with_runtime(rm(user, a)),
    }
}

fn with_runtime(
    f: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    super::block_on(f)
}

async fn connect(user: bool) -> anyhow::Result<Manager> {
    let scope = if user {
        bus::Scope::User
    } else {
        bus::Scope::System
    };
    Ok(Manager::connect_with(scope, &Options::default()).await?)
}

/// [`read_sources`] for a verb: a PATH that cannot be read is a usage error (exit 2, as a bad
/// `--app`), a `.quadlets` file that does not split is an error in the input (exit 1).
fn given_sources(paths: &[PathBuf]) -> Result<(Vec<Source>, Option<String>), ExitCode> {
    read_sources(paths).map_err(|e| {
        if e.root_cause().downcast_ref::<std::io::Error>().is_some() {
            line(&format!(
                "unitwright: {e:#} (a PATH is a Quadlet file, a directory of them or a podman \
                 .quadlets file)"
            ));
            ExitCode::from(2)
        } else {
            line(&format!("unitwright: {e:#}"));
            ExitCode::FAILURE
        }
    })
}

/// Reads the given paths: files (as they are), directories (their files and `NAME.d/*.conf`)
/// and podman `.quadlets` files. Returns the sources and the default app name.
pub fn read_sources(paths: &[PathBuf]) -> anyhow::Result<(Vec<Source>, Option<String>)> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = Vec::new();
    let mut app = None;
    let mode_of =
        |p: &Path| std::fs::metadata(p).map_or(0o644, |m| m.permissions().mode() & 0o7777);
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
        if meta.is_dir() {
            app = app.or_else(|| {
                std::fs::canonicalize(p)
                    .ok()
                    .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            });
            let mut entries: Vec<_> = std::fs::read_dir(p)?.flatten().collect();
            entries.sort_by_key(std::fs::DirEntry::file_name);
            for e in entries {
                let path = e.path();
                let name = e.file_name();
                if path.is_dir() {
                    if name.to_string_lossy().ends_with(".d") {
                        let mut confs: Vec<_> = std::fs::read_dir(&path)?
                            .flatten()
                            .map(|c| c.path())
                            .collect();
                        confs.sort();
                        for c in confs.into_iter().filter(|c| c.is_file()) {
                            out.push(Source {
                                rel: PathBuf::from(&name).join(c.file_name().unwrap_or_default()),
                                data: std::fs::read(&c)
                                    .with_context(|| format!("reading {}", c.display()))?,
                                mode: mode_of(&c),
                            });
                        }
                    }
                    continue;
                }
                if name.to_string_lossy().starts_with('.') || !path.is_file() {
                    continue;
                }
                out.push(Source {
                    rel: PathBuf::from(&name),
                    data: std::fs::read(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                    mode: mode_of(&path),
                });
            }
        } else if p.extension().is_some_and(|e| e == "quadlets") {
            app = app.or_else(|| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            out.extend(split_quadlets(p, &text, mode_of(p))?);
        } else {
            let name = p.file_name().context("a path without a file name")?;
            out.push(Source {
                rel: PathBuf::from(name),
                data: std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                mode: mode_of(p),
            });
        }
    }
    Ok((out, app))
}

/// A podman `.quadlets` file as sources ([`quadlets::split`]), errors located in `path`.
fn split_quadlets(path: &Path, text: &str, mode: u32) -> anyhow::Result<Vec<Source>> {
    let sections = quadlets::split(text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
    Ok(sections
        .into_iter()
        .map(|s| Source {
            rel: PathBuf::from(s.name),
            data: s.text.into_bytes(),
            mode,
        })
        .collect())
}

fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        line(&format!("{d}"));
    }
}

fn verify(user: bool, a: &VerifyArgs) -> ExitCode {
    let (sources, _) = match given_sources(&a.paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let dir = store::install_dir(user)
        .map(|d| adapter::resolve_dir(&d))
        .unwrap_or_default();
    // The given files as if installed (so that references between them and to installed files
    // resolve); diagnostics name the given paths.
    let mut overlay = adapter::Overlay::new();
    let mut names = std::collections::BTreeMap::new();
    let origins = given_paths(&a.paths, &sources);
    for (s, origin) in sources.iter().zip(&origins) {
        let target = dir.join(&s.rel);
        overlay.insert(target.clone(), Some(s.data.clone()));
        names.insert(target.display().to_string(), origin.clone());
    }
    let conv = adapter::convert_all(user, &dir, &overlay);
    let mut diags: Vec<Diagnostic> = Vec::new();
    for c in &conv {
        for d in &c.diagnostics {
            if let Some(orig) = names.get(&d.file) {
                let mut d = d.clone();
                d.message = d.message.replace(&d.file, orig);
                d.file.clone_from(orig);
                diags.push(d);
            }
        }
    }
    for mut d in crate::lifecycle::lint::misnamed(
        sources
            .iter()
            .filter_map(|s| Some((s.rel.to_str()?, s.data.as_slice()))),
    ) {
        // Named as given (`dir/web.txt`), like the conversion's diagnostics.
        if let Some(orig) = names.get(&dir.join(&d.file).display().to_string()) {
            d.message = d.message.replacen(&d.file, orig, 1);
            d.file.clone_from(orig);
        }
        diags.push(d);
    }
    let errors = diags.iter().any(|d| d.severity == Severity::Error);
    if a.json {
        outln!(
            "{}",
            Value::Array(diags.iter().map(Diagnostic::to_json).collect())
        );
    } else {
        for d in &diags {
            outln!("{d}");
        }
        if !errors {
            line(&format!(
                "{} file(s) verified, {} warning(s)",
                sources.len(),
                diags.len()
            ));
        }
    }
    if errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The path each source came from, for messages (`dir/web.container`, `app.quadlets`).
fn given_paths(paths: &[PathBuf], sources: &[Source]) -> Vec<String> {
    sources
        .iter()
        .map(|s| {
            for p in paths {
                if p.is_dir() && p.join(&s.rel).exists() {
                    return p.join(&s.rel).display().to_string();
                }
                if p.file_name().is_some_and(|n| Path::new(n) == s.rel) && p.is_file() {
                    return p.display().to_string();
                }
            }
            paths
                .iter()
                .find(|p| p.extension().is_some_and(|e| e == "quadlets"))
                .map_or_else(
                    || s.rel.display().to_string(),
                    |p| format!("{}#{}", p.display(), s.rel.display()),
                )
        })
        .collect()
}

fn print_report(mut r: Report, user: bool, json_out: bool, diff: bool) -> ExitCode {
    read_failed_output(&mut r, user);
    for n in &r.notes {
        line(&format!("unitwright: {n}"));
        // Under a failed job's note, what its unit wrote: after a roll back the unit is gone,
        // and `status` could no longer show it.
        let failed = r.units.iter().find(|u| {
            u.failure.is_some() && n.starts_with(&format!("{} of {} failed: ", u.action, u.unit))
        });
        if let Some((u, Some(f))) = failed.map(|u| (u, &u.failure)) {
            for l in &f.output_lines {
                line(&format!("  {l}"));
            }
            if !f.output_lines.is_empty() {
                line(&format!(
                    "  more: unitwright{} logs {}",
                    if user { " --user" } else { "" },
                    crate::escape::shell_quote(&u.unit)
                ));
            }
        }
    }
    if json_out {
        outln!("{}", r.to_json(diff));
    } else {
        print_diagnostics(&r.diagnostics);
        if diff {
            for d in &r.diffs {
                out!(
                    "{}",
                    unified_diff(&d.before_header, &d.after_header, &d.before, &d.after)
                );
            }
        }
        for f in &r.files {
            if f.action != "unchanged" {
                outln!("{} {}", f.action, f.path.display());
            }
        }
        for u in &r.units {
            outln!("{} {}: {}", u.action, u.unit, u.result);
        }
        if !r.changed && !r.failed {
            outln!("no change");
        } else if r.reloaded {
            outln!("reloaded the manager");
        }
    }
    if r.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Fills in the output of the failed jobs of `r` from this machine's journal (best effort: a
/// journal that cannot be read leaves it empty).
fn read_failed_output(r: &mut Report, user: bool) {
    let scope = super::explain::journal_scope_of(user);
    for u in &mut r.units {
        if let Some(f) = &mut u.failure {
            if let Ok(lines) = super::explain::unit_output(&u.unit, scope, f.since, &f.pids) {
                f.output = lines
                    .iter()
                    .map(|e| e.message().trim_end().to_owned())
                    .collect();
                f.output_lines = lines
                    .iter()
                    .map(|e| e.short_line(false).trim_end().to_owned())
                    .collect();
            }
        }
    }
}

fn refused(e: &engine::Refused) -> ExitCode {
    line(&format!("unitwright: {e}"));
    ExitCode::FAILURE
}

async fn install(user: bool, a: InstallArgs) -> anyhow::Result<ExitCode> {
    let (sources, default_app) = match given_sources(&a.paths) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let app = a.app.or(default_app);
    if let Some(app) = &app {
        if let Err(e) = store::Store::check_app_name(app) {
            line(&format!("unitwright: {e}"));
            return Ok(ExitCode::from(2));
        }
    }
    let m = engine::Lazy::new(user);
    let opts = engine::Options {
        user,
        app,
        replace: a.replace,
        now: a.now,
        settle: a.settle,
        ..Default::default()
    };
    Ok(
        match engine::apply(&m, Verb::Install, &opts, sources).await {
            Ok(r) => print_report(r, user, a.json, false),
            Err(e) => refused(&e),
        },
    )
}

async fn apply(user: bool, a: ApplyArgs) -> anyhow::Result<ExitCode> {
    if let Err(e) = store::Store::check_app_name(&a.app) {
        line(&format!("unitwright: {e}"));
        return Ok(ExitCode::from(2));
    }
    let (sources, _) = match given_sources(&a.paths) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let m = engine::Lazy::new(user);
    let opts = engine::Options {
        user,
        app: Some(a.app),
        prune: a.prune,
        now: a.now,
        check: a.check,
        diff: a.diff,
        settle: a.settle,
        ..Default::default()
    };
    Ok(match engine::apply(&m, Verb::Apply, &opts, sources).await {
        Ok(r) => print_report(r, user, a.json, a.diff),
        Err(e) => refused(&e),
    })
}

async fn rm(user: bool, a: RmArgs) -> anyhow::Result<ExitCode> {
    let m = engine::Lazy::new(user);
    let opts = engine::Options {
        user,
        app: a.app,
        ..Default::default()
    };
    Ok(match engine::remove(&m, &opts, &a.names).await {
        Ok(r) => print_report(r, user, a.json, false),
        Err(e) => refused(&e),
    })
}

/// Why a file produced no unit, in one line.
fn reason(c: &adapter::Converted) -> Option<String> {
    if let Some(h) = &c.hidden_by {
        return Some(format!("hidden by {}", h.display()));
    }
    if c.ok() {
        return None;
    }
    c.diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)
        .map(|d| match d.line {
            Some(l) => format!("{}:{l}: {}", d.file, d.message),
            None => d.message.clone(),
        })
}

async fn list(user: bool, a: ListArgs) -> anyhow::Result<ExitCode> {
    let dir = store::install_dir(user)
        .map(|d| adapter::resolve_dir(&d))
        .unwrap_or_default();
    // The committed state, without the scope lock: an apply in progress does not make `list`
    // wait, and its half-made changes are not shown.
    let (committed, conv) =
        store::read_committed(&dir, |c| adapter::convert_all(user, &dir, &c.overlay));
    let apps = committed.apps;
    let app_of = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(&dir).ok()?;
        apps.iter()
            .find(|x| x.files.iter().any(|f| f == rel))
            .map(|x| x.name.clone())
    };
    // Active states from the manager, when it can be reached.
    let mut states = std::collections::HashMap::new();
    if let Ok(m) = connect(user).await {
        let units: Vec<String> = conv.iter().filter_map(|c| c.unit.clone()).collect();
        if let Ok(listed) = m.list_units(&units).await {
            for u in listed {
                states.insert(u.name.clone(), u.active_state.clone());
            }
        }
    }
    let rows: Vec<(&adapter::Converted, Option<String>, String)> = conv
        .iter()
        .map(|c| {
            let app = app_of(&c.path);
            let active = match (&c.unit, c.ok()) {
                (Some(u), true) => states.get(u).cloned().unwrap_or_else(|| "inactive".into()),
                _ => "-".into(),
            };
            (c, app, active)
        })
        .filter(|(_, app, _)| a.app.is_none() || app.as_ref() == a.app.as_ref())
        .collect();
    if a.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(c, app, active)| {
                json!({"file": c.path, "kind": c.kind, "unit": c.unit.as_ref().filter(|_| c.ok()),
                       "app": app, "active": active, "reason": reason(c)})
            })
            .collect();
        outln!("{}", Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    let w = rows
        .iter()
        .map(|(c, _, _)| c.path.display().to_string().len())
        .max()
        .unwrap_or(4)
        .max(4);
    outln!(
        "{:w$}  {:9}  {:28}  {:12}  ACTIVE",
        "FILE",
        "KIND",
        "UNIT",
        "APP"
    );
    for (c, app, active) in &rows {
        let unit = if c.ok() {
            c.unit.clone().unwrap_or_default()
        } else {
            "-".into()
        };
        outln!(
            "{:w$}  {:9}  {:28}  {:12}  {}",
            c.path.display(),
            c.kind,
            unit,
            app.as_deref().unwrap_or("-"),
            active
        );
        if let Some(r) = reason(c) {
            outln!("{:w$}  no unit: {r}", "");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cat(user: bool, a: &CatArgs) -> ExitCode {
    let dir = store::install_dir(user)
        .map(|d| adapter::resolve_dir(&d))
        .unwrap_or_default();
    let conv = adapter::convert_all(user, &dir, &adapter::Overlay::new());
    let unit = bus::mangle(&a.name);
    let Some(c) = conv
        .iter()
        .filter(|c| c.hidden_by.is_none())
        .find(|c| c.name == a.name || c.unit.as_deref() == Some(unit.as_str()))
    else {
        line(&format!(
            "unitwright: no Quadlet file {} (or one generating {unit}) in the search path",
            a.name
        ));
        return ExitCode::FAILURE;
    };
    let mut out = String::new();
    for p in std::iter::once(&c.path).chain(&c.dropins) {
        let _ = writeln!(out, "# {}", p.display());
        out.push_str(&std::fs::read_to_string(p).unwrap_or_default());
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    if let Some(t) = &c.text {
        let _ = write!(
            out,
            "# {} (generated)\n{t}",
            c.unit.as_deref().unwrap_or_default()
        );
    } else {
        out.push_str("# no unit generated:\n");
        for d in &c.diagnostics {
            let _ = writeln!(out, "#   {d}");
        }
    }
    out!("{out}");
    ExitCode::SUCCESS
}

/// A unified diff of two texts (3 lines of context), empty when they are equal.
#[allow(clippy::many_single_char_names)]
pub fn unified_diff(from: &str, to: &str, a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    // Longest common subsequence table (the files are small).
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // Edit script: (' ' | '-' | '+', line, index in a, index in b).
    let mut ops: Vec<(char, &str, usize, usize)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i], i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i], i, j));
            i += 1;
        } else {
            ops.push(('+', b[j], i, j));
            j += 1;
        }
    }
    if ops.iter().all(|o| o.0 == ' ') {
        return String::new();
    }
    let mut out = format!("--- {from}\n+++ {to}\n");
    let mut k = 0;
    while k < ops.len() {
        if ops[k].0 == ' ' {
            k += 1;
            continue;
        }
        let start = k.saturating_sub(3);
        let mut end = k;
        // Extend the hunk while changes are within 6 lines of each other.
        let mut last_change = k;
        while end < ops.len() {
            if ops[end].0 != ' ' {
                last_change = end;
            } else if end - last_change > 6 {
                break;
            }
            end += 1;
        }
        let end = (last_change + 4).min(ops.len());
        let hunk = &ops[start..end];
        let a_len = hunk.iter().filter(|o| o.0 != '+').count();
        let b_len = hunk.iter().filter(|o| o.0 != '-').count();
        let a_start = hunk[0].2 + usize::from(a_len > 0);
        let b_start = hunk[0].3 + usize::from(b_len > 0);
        let _ = writeln!(out, "@@ -{a_start},{a_len} +{b_start},{b_len} @@");
        for o in hunk {
            out.push(o.0);
            out.push_str(o.1);
            out.push('\n');
        }
        k = end;
    }
    out
}

/// The drop-in `enable` writes for a unit generated from a Quadlet file.
pub const ENABLE_DROPIN: &str = "50-unitwright-enable.conf";

/// `enable`/`disable` of units generated from Quadlet files, which systemd refuses ("transient
/// or generated"): `enable` adds an `[Install]` drop-in in the Quadlet file's `NAME.d/`
/// (`WantedBy=default.target` for the user manager, `multi-user.target` for the system),
/// `disable` removes it. Says what it did on stderr. Returns the names that are not generated
/// from a Quadlet file (for the manager's own enable/disable) and whether a drop-in changed (the
/// caller then reloads).
pub fn enable_generated(
    user: bool,
    enable: bool,
    names: &[String],
) -> anyhow::Result<(Vec<String>, bool)> {
    let dir = store::install_dir(user)
        .map(|d| adapter::resolve_dir(&d))
        .unwrap_or_default();
    let conv = adapter::convert_all(user, &dir, &adapter::Overlay::new());
    let mut rest = Vec::new();
    let mut changed = false;
    for name in names {
        let unit = adapter::unit_for_quadlet_name(user, name).unwrap_or_else(|| bus::mangle(name));
        let Some(c) = conv
            .iter()
            .find(|c| c.hidden_by.is_none() && c.unit.as_deref() == Some(unit.as_str()))
        else {
            rest.push(name.clone());
            continue;
        };
        let dropin = c
            .path
            .with_file_name(format!("{}.d", c.name))
            .join(ENABLE_DROPIN);
        let target = if user {
            "default.target"
        } else {
            "multi-user.target"
        };
        if enable {
            if dropin.exists() || c.installs {
                line(&format!(
                    "{unit} is generated from {} and enabled already by its [Install] section{}",
                    c.path.display(),
                    if dropin.exists() {
                        format!(" (drop-in {})", dropin.display())
                    } else {
                        String::new()
                    }
                ));
                continue;
            }
            let d = dropin.parent().context("drop-in directory")?;
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            let tmp = d.join(format!(".{ENABLE_DROPIN}.tmp"));
            std::fs::write(
                &tmp,
                format!("# Written by `unitwright enable {unit}`; `unitwright disable` removes it.\n[Install]\nWantedBy={target}\n"),
            )
            .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &dropin)
                .with_context(|| format!("writing {}", dropin.display()))?;
            line(&format!(
                "{unit} is generated from {}: systemd cannot enable it, so its [Install] goes into the drop-in {} (WantedBy={target}).",
                c.path.display(),
                dropin.display()
            ));
            changed = true;
        } else if dropin.exists() {
            std::fs::remove_file(&dropin)
                .with_context(|| format!("removing {}", dropin.display()))?;
            if let Some(d) = dropin.parent() {
                let _ = std::fs::remove_dir(d);
            }
            line(&format!(
                "{unit} is generated from {}: removed the drop-in {}.",
                c.path.display(),
                dropin.display()
            ));
            changed = true;
        } else if c.installs {
            anyhow::bail!(
                "{unit} is enabled by the [Install] section of {} (or one of its drop-ins); remove WantedBy=/RequiredBy=/Alias= there",
                c.path.display()
            );
        } else {
            line(&format!(
                "{unit} is generated from {} and not enabled.",
                c.path.display()
            ));
        }
    }
    Ok((rest, changed))
}

/// The Quadlet files of the scope that produce no unit (as the generator run by the last
/// reload saw them, converted again here with the same inputs), with their errors.
pub fn rejected(user: bool) -> Vec<Diagnostic> {
    let dir = store::install_dir(user)
        .map(|d| adapter::resolve_dir(&d))
        .unwrap_or_default();
    adapter::convert_all(user, &dir, &adapter::Overlay::new())
        .into_iter()
        .filter(|c| !c.ok() && c.hidden_by.is_none())
        .flat_map(|c| {
            c.diagnostics
                .into_iter()
                .filter(|d| d.severity == Severity::Error)
        })
        .collect()
}

/// `FILE:LINE: message` (and `; hint`), the line `reload` prints per rejected file.
pub fn rejected_line(d: &Diagnostic) -> String {
    let mut s = d.file.clone();
    if let Some(l) = d.line {
        let _ = write!(s, ":{l}");
    }
    let _ = write!(s, ": {}", d.message);
    if let Some(h) = &d.hint {
        let _ = write!(s, "; {h}");
    }
    s
}

/// Why `unit` is not loaded, when a Quadlet file of the scope would make it: the file was
/// rejected (its first error), it is hidden by a file of the same name, or the manager has not
/// been reloaded since the file appeared.
pub fn why_missing(user: bool, unit: &str) -> Option<String> {
    let dir = store::install_dir(user)
        .map(|d| adapter::resolve_dir(&d))
        .unwrap_or_default();
    let conv = adapter::convert_all(user, &dir, &adapter::Overlay::new());
    let c = conv
        .iter()
        .filter(|c| c.unit.as_deref() == Some(unit))
        .find(|c| c.hidden_by.is_none())?;
    if c.ok() {
        return Some(format!(
            "{unit} would be generated from {}, but the manager has not been reloaded since it appeared (unitwright{} reload)",
            c.path.display(),
            if user { " --user" } else { "" }
        ));
    }
    let first = c
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)?;
    Some(format!(
        "{unit} is missing because the generator rejected {}: {}",
        c.path.display(),
        rejected_line(first)
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn diffs_are_unified() {
        let d = unified_diff("a", "b", "x\ny\nz\n", "x\nY\nz\n");
        assert_eq!(d, "--- a\n+++ b\n@@ -1,3 +1,3 @@\n x\n-y\n+Y\n z\n");
        assert!(unified_diff("a", "b", "same\n", "same\n").is_empty());
        assert_eq!(
            unified_diff("a", "b", "", "new\n"),
            "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+new\n"
        );
    }

    #[test]
    fn quadlets_files_split_into_sections() {
        let text = "# FileName=web\n[Container]\nImage=x\n---\n# FileName=data.volume\n[Volume]\n";
        let s = split_quadlets(Path::new("a.quadlets"), text, 0o644).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].rel, PathBuf::from("web.container"));
        assert_eq!(s[1].rel, PathBuf::from("data.volume"));
        assert!(split_quadlets(Path::new("a.quadlets"), "[Container]\n", 0o644).is_err());
    }
}
