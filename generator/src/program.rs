//! The generator program: flags, environment, loading, conversion, output, exit status
//! (Quadlet 5.4.2 `cmd/quadlet/main.go`, with the improvements listed in
//! `unitwright::quadlet`). Search, loading and conversion are the library's
//! (`unitwright::quadlet`); this module reads the environment and the configuration file, logs,
//! and writes.
//!
//! Flags are parsed like Go's `flag` package (which users and scripts know from Quadlet): `-v`,
//! `-no-kmsg-log`, `-user`, `-dryrun`, `-version`, with one or two dashes, `-flag=false` accepted,
//! parsing stops at the first non-flag argument or `--`; an unknown flag prints usage and exits
//! with 2, `-h`/`-help` exits with 0. Positional arguments are the one or three output
//! directories systemd passes (only the first is used); `-dryrun` needs none.
//!
//! User mode: `-user`, `SYSTEMD_SCOPE=user`, or a program name (basename of argv\[0\]) containing
//! `user` (the `podman-user-generator` symlink convention).
//!
//! Exit status: 0 when everything converted, 1 when any file failed to load or convert or an
//! output could not be written (the other units are still written), 2 on usage errors.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use unitwright::quadlet::search;
use unitwright::quadlet::{
    load, ConvertOptions, Converted, Converter, Diagnostic, Quadlet, Severity,
};
use unitwright::quadlet_env as environment;

use super::log::{write_stderr, Level, Logger, Record};
use super::output::{OutputDir, Unnamed};
use super::parallel::{self, Threads};

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

/// Parses arguments (without argv\[0\]) the way Go's `flag` package does.
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
            write_stderr(&format!("{e}\n{}", usage(&argv0)));
            return 2;
        }
    };
    if opts.help {
        write_stderr(&usage(&argv0));
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
    let options = environment::convert_options(user, &mut |w| log.warning(&w));
    let run = Run {
        log: &log,
        options,
        dryrun: opts.dryrun,
        argv0,
        out_dir: opts.dirs.first().cloned(),
    };
    // 0 when everything was converted and written, 1 otherwise.
    u8::from(!run.run())
}

/// One generator run.
struct Run<'a> {
    log: &'a Logger,
    options: ConvertOptions,
    dryrun: bool,
    argv0: String,
    out_dir: Option<PathBuf>,
}

/// The number of Quadlet files in `scan` (for the choice of threads).
fn scan_files(scan: &search::Scan) -> usize {
    scan.dirs
        .iter()
        .flat_map(|d| &d.entries)
        .filter(|e| {
            e.kind == search::EntryKind::File
                && e.name
                    .to_str()
                    .is_some_and(|n| unitwright::quadlet::Kind::from_file_name(n).is_some())
        })
        .count()
}

/// Logs a diagnostic of the library at its level.
fn report(log: &Logger, d: &Diagnostic) {
    let level = match d.severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warning,
        Severity::Notice => Level::Notice,
        Severity::Debug => Level::Debug,
    };
    log.log(level, &d.message);
}

impl Run<'_> {
    /// Loads every Quadlet file of the search path, logging in search order. Returns the units
    /// and whether everything loaded.
    fn load(&self, scan: &search::Scan) -> (Vec<Quadlet>, bool) {
        let mut ok = true;
        let mut units = Vec::new();
        let files = load::load(scan, parallel::for_items(scan_files(scan)));
        for f in files {
            self.log
                .debug_with(|| format!("Loading source unit file {}", f.path.display()));
            for d in &f.dropins {
                self.log
                    .debug_with(|| format!("Loading source drop-in file {}", d.display()));
            }
            match f.result {
                Ok(q) => units.push(q),
                Err(e) => {
                    report(self.log, &e);
                    ok = false;
                }
            }
        }
        (units, ok)
    }

    fn run(&self) -> bool {
        let (roots, problems) =
            search::search_paths(&environment::search_inputs(self.options.user));
        for p in &problems {
            report(self.log, p);
        }
        let scan = search::scan(&roots);
        for p in &scan.problems {
            report(self.log, p);
        }
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
        // Stable: within a priority, load order (search-path precedence, then name order).
        unitwright::quadlet::convert::sort_for_conversion(&mut units);
        let mut stdout = String::new();
        let mut converter = Converter::new(&mut units, &self.options);
        let header = format!("# Automatically generated by {}", self.argv0);
        // Conversion logs through `log`, which keeps the records; they go out with the unit, in
        // order, just before it is written (see `parallel`).
        let log = &self.log.deferred();
        let threads = if out.is_some() {
            parallel::for_items(units.len())
        } else {
            Threads::One
        };
        let mut all_converted = true;
        let mut written = true;
        let produce = |feed: &mut parallel::Feed<'_, Job>| {
            for q in &units {
                let c = converter.convert(q);
                all_converted &= c.ok();
                for d in &c.diagnostics {
                    report(log, d);
                }
                let Converted {
                    unit,
                    service_file_name: file_name,
                    links,
                    private,
                    ..
                } = c;
                // A unit made from a file only its owner may read may hold secrets.
                let mode = if private { 0o600 } else { 0o644 };
                let pending = unit.and_then(|mut service| {
                    if let Some(out) = &out {
                        service.prepend_comments(&[&header, "# "]);
                        let text = service.to_text();
                        // When the writing thread is behind, create the file here; it is named
                        // there, in order.
                        let prepared = (feed.backlog() >= HELP_BACKLOG)
                            .then(|| out.prepare(text.as_bytes(), mode));
                        Some(Pending {
                            file_name,
                            text,
                            links,
                            prepared,
                            mode,
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
        ok &= written && all_converted;
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
        std::mem::forget(converter);
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
                prepared.and_then(|file| out.commit(&p.file_name, p.text.as_bytes(), file, p.mode))
            }
            None => out.write_file(&p.file_name, p.text.as_bytes(), p.mode),
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
    /// The file mode (0644, or 0600 for a unit from a private source).
    mode: u32,
}

/// The writer's backlog (in units) from which the converting thread creates the files of the
/// units it hands over (see [`OutputDir::prepare`]), so that both threads share the kernel work.
const HELP_BACKLOG: usize = 16;

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
