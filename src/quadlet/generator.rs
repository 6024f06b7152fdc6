//! The generator program: flags, loading, dispatch to the kinds, output, exit status
//! (Quadlet 5.4.2 `cmd/quadlet/main.go`, with the improvements listed in [`super`]).
//!
//! Flags are parsed like Go's `flag` package (which users and scripts know from Quadlet): `-v`,
//! `-no-kmsg-log`, `-user`, `-dryrun`, `-version`, with one or two dashes, `-flag=false` accepted,
//! parsing stops at the first non-flag argument or `--`; an unknown flag prints usage and exits
//! with 2, `-h`/`-help` exits with 0. Positional arguments are the one or three output
//! directories systemd passes (only the first is used); `-dryrun` needs none.
//!
//! User mode: `-user`, `SYSTEMD_SCOPE=user`, or a program name (basename of argv[0]) containing
//! `user` (the `podman-user-generator` symlink convention).
//!
//! Exit status: 0 when everything converted, 1 when any file failed to load or convert or an
//! output could not be written (the other units are still written), 2 on usage errors.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::fasthash::{FastMap, FastSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::log::{Logger, Record};
use super::output::{OutputDir, Unnamed};
use super::parallel::{self, Threads};
use super::search::{self, EntryKind, Scan};
use super::{Context, Kind, Quadlet, UnitInfo};
use crate::unit::{self, dropin, UnitFile};

/// The name used in log records.
pub const LOG_NAME: &str = "unitwright-generator";

/// Parsed command line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct Options {
    /// `-v`: debug logging.
    pub verbose: bool,
    /// `-no-kmsg-log`: log to stderr.
    pub no_kmsg: bool,
    /// `-user`: user (rootless) mode.
    pub user: bool,
    /// `-dryrun`: print the units instead of writing them.
    pub dryrun: bool,
    /// `-version`: print the version.
    pub version: bool,
    /// `-h`/`-help`.
    pub help: bool,
    /// Output directories.
    pub dirs: Vec<PathBuf>,
}

/// Go `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses arguments (without argv[0]) the way Go's `flag` package does.
pub fn parse_args(args: &[OsString]) -> Result<Options, String> {
    let mut opts = Options::default();
    let mut idx = 0;
    while idx < args.len() {
        let Some(a) = args[idx].to_str() else { break };
        if a == "--" {
            idx += 1;
            break;
        }
        if a.len() < 2 || !a.starts_with('-') {
            break;
        }
        let name = a.strip_prefix("--").unwrap_or(&a[1..]);
        if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
            return Err(format!("bad flag syntax: {a}"));
        }
        let (name, value) =
            match name.split_once('=') {
                Some((n, v)) => (
                    n,
                    Some(parse_go_bool(v).ok_or_else(|| {
                        format!("invalid boolean value {v:?} for -{n}: parse error")
                    })?),
                ),
                None => (name, None),
            };
        let v = value.unwrap_or(true);
        match name {
            "v" => opts.verbose = v,
            "no-kmsg-log" => opts.no_kmsg = v,
            "user" => opts.user = v,
            "dryrun" => opts.dryrun = v,
            "version" => opts.version = v,
            "h" | "help" => opts.help = true,
            _ => return Err(format!("flag provided but not defined: -{name}")),
        }
        idx += 1;
    }
    opts.dirs = args[idx..].iter().map(PathBuf::from).collect();
    Ok(opts)
}

fn usage(argv0: &str) -> String {
    format!(
        "Usage of {argv0}:\n  {argv0} [-v] [-user] [-no-kmsg-log] [-dryrun] [-version] NORMAL-DIR [EARLY-DIR LATE-DIR]\n\
         \x20 -dryrun\n\tRun in dryrun mode printing debug information\n\
         \x20 -no-kmsg-log\n\tDon't log to kmsg\n\
         \x20 -user\n\tRun as systemd user\n\
         \x20 -v\tPrint debug information\n\
         \x20 -version\n\tPrint version information and exit\n"
    )
}

/// Entry point of the `unitwright-generator` binary (see [`generator_status`]).
pub fn generator_main() -> ExitCode {
    ExitCode::from(generator_status())
}

/// Runs the generator with the process's arguments and environment; returns the exit status
/// (0, 1 or 2, see the module documentation). The binary's C `main` calls this directly.
pub fn generator_status() -> u8 {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let argv0 = argv
        .first()
        .map_or_else(|| LOG_NAME.to_owned(), |a| a.to_string_lossy().into_owned());
    let opts = match parse_args(argv.get(1..).unwrap_or_default()) {
        Ok(o) => o,
        Err(e) => {
            eprint!("{e}\n{}", usage(&argv0));
            return 2;
        }
    };
    if opts.help {
        eprint!("{}", usage(&argv0));
        return 0;
    }
    if opts.version {
        println!(
            "{LOG_NAME} version {} (Quadlet 5.4.2 compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return 0;
    }
    let program = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let user = opts.user
        || std::env::var_os("SYSTEMD_SCOPE").is_some_and(|s| s == "user")
        || program.contains("user");
    let mut log = Logger::new(LOG_NAME, !opts.no_kmsg && !opts.dryrun);
    if opts.verbose || opts.dryrun {
        log.set_debug();
    }
    if !opts.dryrun && opts.dirs.is_empty() {
        log.error("missing output directory argument");
        return 1;
    }
    if !opts.dryrun && opts.dirs.len() != 1 && opts.dirs.len() != 3 {
        log.error("This program takes one or three arguments.");
        return 1;
    }
    if let Some(theirs) = (!opts.dryrun)
        .then(|| super::coexist::active_podman_generator(user))
        .flatten()
    {
        log.log(
            super::log::Level::Notice,
            &super::coexist::stand_down_message(user, &theirs),
        );
        return 0;
    }
    let podman = std::env::var("PODMAN")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/bin/podman".to_owned());
    let run = Run {
        log: &log,
        user,
        dryrun: opts.dryrun,
        podman,
        argv0,
        out_dir: opts.dirs.first().cloned(),
    };
    // 0 when everything was converted and written, 1 otherwise.
    u8::from(!run.run())
}

/// One generator run.
struct Run<'a> {
    log: &'a Logger,
    user: bool,
    dryrun: bool,
    podman: String,
    argv0: String,
    out_dir: Option<PathBuf>,
}

/// The `.d` directories of the scan, by name, with the indexes of the directories holding them
/// (in search order).
fn dropin_index(scan: &Scan) -> FastMap<&std::ffi::OsStr, Vec<usize>> {
    let mut map: FastMap<&std::ffi::OsStr, Vec<usize>> = FastMap::default();
    for (i, d) in scan.dirs.iter().enumerate() {
        for e in &d.entries {
            if e.kind == EntryKind::Dir && e.name.as_encoded_bytes().ends_with(b".d") {
                map.entry(e.name.as_os_str()).or_default().push(i);
            }
        }
    }
    map
}

/// Drop-in look-up with caches: every drop-in directory is listed once and every drop-in file
/// parsed once, however many units share it (`container.d/` applies to all containers).
struct Dropins<'s> {
    scan: &'s Scan,
    index: FastMap<&'s std::ffi::OsStr, Vec<usize>>,
    /// By drop-in directory name (`container.d`): the `.conf` files of every directory of that
    /// name, in search order (each sorted by name).
    listings: FastMap<String, Vec<PathBuf>>,
    parsed: FastMap<PathBuf, Result<UnitFile, String>>,
}

impl<'s> Dropins<'s> {
    fn new(scan: &'s Scan) -> Self {
        Dropins {
            scan,
            index: dropin_index(scan),
            listings: FastMap::default(),
            parsed: FastMap::default(),
        }
    }

    /// The drop-in files that apply to `name`, in application order.
    fn find(&mut self, name: &str) -> Vec<PathBuf> {
        if self.index.is_empty() {
            // No `.d` directory anywhere (the common case): nothing to look up per unit.
            return Vec::new();
        }
        let mut candidates = Vec::new();
        for dname in dropin::dropin_dir_names(name) {
            let Some(dirs) = self.index.get(std::ffi::OsStr::new(&dname)) else {
                continue;
            };
            let scan = self.scan;
            let confs = self.listings.entry(dname).or_insert_with_key(|dname| {
                let mut all = Vec::new();
                for &i in dirs {
                    let dir = scan.dirs[i].path.join(dname);
                    let mut confs: Vec<PathBuf> = std::fs::read_dir(dir)
                        .into_iter()
                        .flatten()
                        .filter_map(Result::ok)
                        .filter(|e| e.file_name().as_encoded_bytes().ends_with(b".conf"))
                        .map(|e| e.path())
                        .collect();
                    confs.sort();
                    all.extend(confs);
                }
                all
            });
            candidates.extend(confs.iter().cloned());
        }
        dropin::select_dropins(candidates)
    }

    /// The parsed drop-in at `path` (the error message if it does not parse).
    fn parse(&mut self, path: &Path) -> &Result<UnitFile, String> {
        self.parsed
            .entry(path.to_owned())
            .or_insert_with(|| unit::parse_file(path).map_err(|e| e.to_string()))
    }
}

/// One Quadlet file read, parsed and merged with its drop-ins (see [`load_file`]).
struct Loaded {
    path: PathBuf,
    /// The unit with its drop-ins merged, or why the file itself could not be loaded.
    unit: Result<UnitFile, unit::ParseError>,
    /// The drop-ins read, in order; the last one failed if `dropin_error` is set.
    dropins: Vec<PathBuf>,
    /// Why the last of `dropins` could not be loaded (the unit is then skipped).
    dropin_error: Option<String>,
}

/// Reads and parses `dir/name` and merges the drop-ins that apply to it, stopping at the first
/// one that does not parse. Logs nothing: the caller does, in search order.
fn load_file(dropins: &mut Dropins<'_>, dir: &Path, name: &str) -> Loaded {
    let path = dir.join(name);
    let mut load = Loaded {
        unit: unit::parse_file(&path),
        path,
        dropins: Vec::new(),
        dropin_error: None,
    };
    if let Ok(unit) = &mut load.unit {
        for d in dropins.find(name) {
            let parsed = dropins.parse(&d);
            load.dropins.push(d);
            match parsed {
                Ok(di) => unit.merge(di),
                Err(err) => {
                    load.dropin_error = Some(err.clone());
                    break;
                }
            }
        }
    }
    load
}

/// Quadlet's `getServiceName`: `ServiceName=` of the type group, else base name + suffix.
fn service_name(unit: &UnitFile, kind: Kind, name: &str) -> String {
    if let Some(s) = unit.lookup(kind.group(), "ServiceName") {
        return s.to_owned();
    }
    let base = name.rsplit_once('.').map_or(name, |(b, _)| b);
    [base, kind.service_suffix()].concat()
}

/// The resource name known before conversion (5.4.2 `generateUnitsInfoMap`): a container's name
/// with `%N` replaced by the service name (empty if other specifiers remain), a build's first
/// `ImageTag`.
fn initial_resource_name(q: &Quadlet) -> String {
    match q.kind {
        Kind::Container => {
            let name = super::container::container_name(q);
            let name = name.replace("%N", &q.service_name);
            if name.contains('%') {
                String::new()
            } else {
                name
            }
        }
        Kind::Build => q
            .unit
            .lookup_all("Build", "ImageTag")
            .first()
            .map(|s| (*s).to_owned())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

impl Run<'_> {
    /// Loads every Quadlet file of the scan (first file name wins), merging drop-ins. Returns the
    /// units and whether everything loaded.
    fn load(&self, scan: &Scan) -> (Vec<Quadlet>, bool) {
        // Load the first file of each name up front (on two threads for many files); a later
        // file of the same name is loaded only if that one does not parse, below.
        let mut first: FastSet<&std::ffi::OsStr> = FastSet::default();
        let mut todo = Vec::new();
        for (di, dir) in scan.dirs.iter().enumerate() {
            for (ei, e) in dir.entries.iter().enumerate() {
                if e.kind == EntryKind::File
                    && e.name
                        .to_str()
                        .is_some_and(|n| Kind::from_file_name(n).is_some())
                    && first.insert(e.name.as_os_str())
                {
                    todo.push((di, ei));
                }
            }
        }
        let loaded = parallel::map(
            Threads::for_items(todo.len()),
            &todo,
            || Dropins::new(scan),
            |dropins, &(di, ei)| {
                let dir = &scan.dirs[di];
                let name = dir.entries[ei].name.to_str().unwrap_or_default();
                load_file(dropins, &dir.path, name)
            },
        );
        let mut loaded = todo.into_iter().zip(loaded).peekable();
        // Everything that depends on order (which file of a name wins, log records) happens
        // here, in search order.
        let mut ok = true;
        let mut seen: FastSet<&std::ffi::OsStr> = FastSet::default();
        let mut units = Vec::new();
        let mut dropins = None;
        for (di, dir) in scan.dirs.iter().enumerate() {
            for (ei, e) in dir.entries.iter().enumerate() {
                if e.kind != EntryKind::File || seen.contains(e.name.as_os_str()) {
                    continue;
                }
                let Some(name) = e.name.to_str() else {
                    continue;
                };
                let Some(kind) = Kind::from_file_name(name) else {
                    continue;
                };
                let load = match loaded.next_if(|(at, _)| *at == (di, ei)) {
                    Some((_, load)) => load,
                    None => load_file(
                        dropins.get_or_insert_with(|| Dropins::new(scan)),
                        &dir.path,
                        name,
                    ),
                };
                self.log
                    .debug_with(|| format!("Loading source unit file {}", load.path.display()));
                let unit = match load.unit {
                    Ok(u) => u,
                    Err(e) => {
                        // The other files of the directory are still loaded (5.4.2 dropped them).
                        self.log.error(&format!("error loading {e}"));
                        ok = false;
                        continue;
                    }
                };
                seen.insert(e.name.as_os_str());
                for d in &load.dropins {
                    self.log
                        .debug_with(|| format!("Loading source drop-in file {}", d.display()));
                }
                if let Some(err) = load.dropin_error {
                    self.log.error(&format!(
                        "error loading drop-in of {name}: {err}; {name} is skipped"
                    ));
                    ok = false;
                    continue;
                }
                let service_name = service_name(&unit, kind, name);
                units.push(Quadlet {
                    name: name.to_owned(),
                    path: load.path,
                    dir: dir.path.clone(),
                    kind,
                    unit,
                    service_name,
                });
            }
        }
        (units, ok)
    }

    fn run(&self) -> bool {
        let scan = search::scan(self.user, self.log);
        let (mut units, mut ok) = self.load(&scan);
        if units.is_empty() {
            let dirs: Vec<String> = scan
                .dirs
                .iter()
                .map(|d| d.path.display().to_string())
                .collect();
            self.log
                .debug_with(|| format!("No files parsed from [{}]", dirs.join(" ")));
            return ok;
        }
        let out = match &self.out_dir {
            Some(d) if !self.dryrun => match OutputDir::create(d) {
                Ok(o) => Some(o),
                Err(e) => {
                    self.log.error(&format!(
                        "cannot create output directory {}: {e}",
                        d.display()
                    ));
                    return false;
                }
            },
            _ => None,
        };
        let mut ctx = Context {
            user: self.user,
            podman: self.podman.clone(),
            units: HashMap::with_capacity(units.len()),
            warnings: Vec::new(),
            podman_version: None,
        };
        for q in &units {
            ctx.units.insert(
                q.name.clone(),
                UnitInfo {
                    kind: q.kind,
                    service_name: q.service_name.clone(),
                    resource_name: initial_resource_name(q),
                    containers_to_start: Vec::new(),
                },
            );
        }
        // Stable: within a priority, load order (search-path precedence, then name order).
        units.sort_by_key(|q| q.kind.priority());
        let mut stdout = String::new();
        let compat = super::compat::Compat::new(&self.podman, self.log);
        let mut produced: FastMap<String, &str> =
            FastMap::with_capacity_and_hasher(units.len(), BuildHasherDefault::default());
        let header = format!("# Automatically generated by {}", self.argv0);
        // Conversion logs through `log`, which keeps the records; they go out with the unit, in
        // order, just before it is written (see `parallel`).
        let log = &self.log.deferred();
        let threads = if out.is_some() {
            Threads::for_items(units.len())
        } else {
            Threads::One
        };
        let mut converted = true;
        let mut written = true;
        let produce = |feed: &mut parallel::Feed<'_, Job>| {
            for q in &units {
                let service = convert_one(q, &mut ctx, &compat, log, &mut produced);
                converted &= service.is_some();
                let pending = service.and_then(|(file_name, mut service)| {
                    if let Some(out) = &out {
                        let links = install_links(&file_name, &service);
                        service.prepend_comments(&[&header, "# "]);
                        let text = service.to_text();
                        // When the writing thread is behind, create the file here; it is named
                        // there, in order.
                        let prepared =
                            (feed.backlog() >= HELP_BACKLOG).then(|| out.prepare(text.as_bytes()));
                        Some(Pending {
                            file_name,
                            text,
                            links,
                            prepared,
                        })
                    } else {
                        stdout.push_str("---");
                        stdout.push_str(&file_name);
                        stdout.push_str("---\n");
                        service.write_to(&mut stdout);
                        stdout.push('\n');
                        None
                    }
                });
                feed.send(Job {
                    records: log.take(),
                    pending,
                });
            }
        };
        let consume = |job: Job| {
            self.log.replay(job.records);
            if let (Some(out), Some(p)) = (&out, job.pending) {
                written &= self.write_with_links(out, p);
            }
        };
        parallel::pipeline(threads, produce, consume);
        ok &= written && converted;
        if self.dryrun {
            use std::io::Write;
            let mut so = std::io::stdout().lock();
            if so
                .write_all(stdout.as_bytes())
                .and_then(|()| so.flush())
                .is_err()
            {
                return false;
            }
        }
        // The process exits right after this: leave the parsed units to the kernel instead of
        // freeing their many small allocations one by one (about a tenth of the instructions
        // of a 1,000-unit run, measured with generator/bench/compare.sh).
        std::mem::forget(produced);
        std::mem::forget(ctx);
        std::mem::forget(units);
        std::mem::forget(scan);
        ok
    }

    /// Writes one unit; false (and an error logged) if it could not be written.
    fn write_one(&self, out: &OutputDir, p: &mut Pending) -> bool {
        self.log.debug_with(|| {
            format!(
                "writing {:?}",
                out.path().join(&p.file_name).display().to_string()
            )
        });
        let result = match p.prepared.take() {
            Some(prepared) => {
                prepared.and_then(|file| out.commit(&p.file_name, p.text.as_bytes(), file))
            }
            None => out.write_file(&p.file_name, p.text.as_bytes()),
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                self.log.error(&format!(
                    "generating service file {}: {e}",
                    out.path().join(&p.file_name).display()
                ));
                false
            }
        }
    }

    /// Writes one unit, then its `[Install]` symlinks (in processing order, so conflicting
    /// `Alias=` links resolve as in 5.4.2: the unit processed last wins). Units are written as
    /// they are converted (on one thread, or a few batches behind on a second one, see
    /// [`parallel`]), so only a few generated texts are held in memory at a time.
    fn write_with_links(&self, out: &OutputDir, mut p: Pending) -> bool {
        if !self.write_one(out, &mut p) {
            return false;
        }
        for rel in &p.links {
            self.log.debug_with(|| {
                format!(
                    "Creating symlink {} -> {}",
                    out.path().join(rel).display(),
                    p.file_name
                )
            });
            if let Err(e) = out.symlink_unit(rel, &p.file_name) {
                self.log.warning(&format!(
                    "Can't create symlink {} for {}: {e}",
                    rel.display(),
                    p.file_name
                ));
            }
        }
        true
    }
}

/// Converts one unit: its file name and service, or `None` (and an error logged) when it
/// cannot be converted or named.
fn convert_one<'u>(
    q: &'u Quadlet,
    ctx: &mut Context,
    compat: &super::compat::Compat,
    log: &Logger,
    produced: &mut FastMap<String, &'u str>,
) -> Option<(String, UnitFile)> {
    if matches!(q.kind, Kind::Container | Kind::Volume | Kind::Image) {
        super::common::warn_if_ambiguous_image(q, ctx);
    }
    ctx.podman_version = compat.version_for_new_keys(q, log);
    let converted = (q.kind.converter())(q, ctx)
        .and_then(|mut s| super::settings::apply(q, ctx, &mut s).map(|()| s))
        .and_then(|s| compat.adapt(q, s, &mut ctx.warnings, log));
    for w in ctx.warnings.drain(..) {
        log.warning(&w);
    }
    let service = match converted {
        Ok(s) => s,
        Err(e) => {
            log.error(&format!("converting {:?}: {e}", q.name));
            return None;
        }
    };
    let file_name = q.service_file_name();
    if file_name.contains('/') {
        // 5.4.2 wrote such a unit outside the output directory.
        log.error(&format!(
            "converting {:?}: {}",
            q.name,
            super::ConvertError::at_key(
                q,
                q.kind.group(),
                "ServiceName",
                format!("ServiceName={} would put the unit outside the output directory; use a plain unit name", q.service_name),
            )
        ));
        return None;
    }
    if let Some(prev) = produced.insert(file_name.clone(), q.name.as_str()) {
        log.warning(&format!(
            "{} and {} both generate {file_name}; the unit from {} replaces the other",
            prev, q.name, q.name
        ));
    }
    Some((file_name, service))
}

/// What the conversion of one unit hands to the writer: the log records of the conversion and
/// the unit to write (none if it failed, or with `-dryrun`).
struct Job {
    records: Vec<Record>,
    pending: Option<Pending>,
}

/// A converted unit waiting to be written.
struct Pending {
    file_name: String,
    text: String,
    links: Vec<PathBuf>,
    /// The file already written without a name by the converting thread (or why that failed);
    /// `None`: all of the writing is left to the writer.
    prepared: Option<std::io::Result<Option<Unnamed>>>,
}

/// The writer's backlog (in units) from which the converting thread creates the files of the
/// units it hands over (see [`OutputDir::prepare`]), so that both threads share the kernel work.
const HELP_BACKLOG: usize = 16;

/// Quadlet's `enableServiceFile`: the symlinks for `[Install]` `Alias=`, `WantedBy=` and
/// `RequiredBy=` (relative to the output dir). A template (`foo@.service`) gets `WantedBy=` and
/// `RequiredBy=` links only with `DefaultInstance=` (named `foo@<instance>.service`); values of
/// `WantedBy=`/`RequiredBy=` containing `/` are ignored. `UpheldBy=` and `Also=` are not used.
fn install_links(file_name: &str, service: &UnitFile) -> Vec<PathBuf> {
    let mut links: Vec<PathBuf> = service
        .lookup_all_strv("Install", "Alias")
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let stem = file_name.strip_suffix(".service").unwrap_or(file_name);
    let mut link_name = Some(file_name.to_owned());
    if let Some(base) = stem.strip_suffix('@') {
        link_name = service
            .lookup("Install", "DefaultInstance")
            .map(|inst| format!("{base}@{inst}.service"));
    }
    if let Some(link_name) = link_name {
        for (key, suffix) in [("WantedBy", "wants"), ("RequiredBy", "requires")] {
            for t in service.lookup_all_strv("Install", key) {
                if !t.contains('/') {
                    links.push(PathBuf::from(
                        [t.as_str(), ".", suffix, "/", &link_name].concat(),
                    ));
                }
            }
        }
    }
    links
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags_accept_one_or_two_dashes_and_values() {
        let o = parse_args(&args(&["--user", "-no-kmsg-log", "-v=false", "/out"])).unwrap();
        assert!(o.user && o.no_kmsg && !o.verbose);
        assert_eq!(o.dirs, vec![PathBuf::from("/out")]);
    }

    #[test]
    fn flag_parsing_stops_at_first_positional() {
        let o = parse_args(&args(&["/a", "-dryrun"])).unwrap();
        assert!(!o.dryrun);
        assert_eq!(o.dirs.len(), 2);
    }

    #[test]
    fn unknown_flags_are_errors() {
        assert!(parse_args(&args(&["-frobnicate"])).is_err());
        assert!(parse_args(&args(&["-user=maybe"])).is_err());
    }
}
