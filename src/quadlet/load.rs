//! Loading Quadlet files: every file of a walked search path ([`super::search::scan`]) read,
//! parsed and merged with its drop-ins (5.4.2 `loadUnitsFromDir`, `loadDropins`).
//!
//! * The first file of a name in search order wins; a later file of the same name is used only
//!   if the first one does not parse.
//! * A file that does not parse is reported (with file and line) and skipped; the other files of
//!   its directory are still loaded (5.4.2 dropped the whole directory).
//! * Drop-ins: every `NAME.d/`, `KIND.d/` and prefix directory (`a-b-.container.d/`) of every
//!   searched directory, selected and ordered by [`crate::unit::dropin`] (the most specific
//!   directory wins, podman #26555). A drop-in that does not parse skips its unit.
//!
//! Nothing is logged here: [`load`] returns one [`LoadedFile`] per file tried, in search order,
//! and the caller reports them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::fasthash::{FastMap, FastSet};
use super::parallel::{self, Threads};
use super::search::{EntryKind, Scan};
use super::{Diagnostic, Kind, Quadlet, Severity};
use crate::unit::{self, dropin, UnitFile};

/// One Quadlet file tried by [`load`].
#[derive(Debug)]
pub struct LoadedFile {
    /// The file's path.
    pub path: PathBuf,
    /// The drop-ins read for it, in application order.
    pub dropins: Vec<PathBuf>,
    /// The loaded unit, or why it could not be loaded (the file or one of its drop-ins does not
    /// parse; an error naming file and line).
    pub result: Result<Quadlet, Diagnostic>,
}

/// The `.d` directories of the scan, by name, with the indexes of the directories holding them
/// (in search order).
fn dropin_index(scan: &Scan) -> FastMap<&OsStr, Vec<usize>> {
    let mut map: FastMap<&OsStr, Vec<usize>> = FastMap::default();
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
    index: FastMap<&'s OsStr, Vec<usize>>,
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
            let Some(dirs) = self.index.get(OsStr::new(&dname)) else {
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
struct Raw {
    path: PathBuf,
    /// The unit with its drop-ins merged, or why the file itself could not be loaded.
    unit: Result<UnitFile, unit::ParseError>,
    /// The drop-ins read, in order; the last one failed if `dropin_error` is set.
    dropins: Vec<PathBuf>,
    /// Why the last of `dropins` could not be loaded (the unit is then skipped).
    dropin_error: Option<String>,
}

/// Reads and parses `dir/name` and merges the drop-ins that apply to it, stopping at the first
/// one that does not parse.
fn load_file(dropins: &mut Dropins<'_>, dir: &Path, name: &str) -> Raw {
    let path = dir.join(name);
    let mut load = Raw {
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
pub fn service_name(unit: &UnitFile, kind: Kind, name: &str) -> String {
    if let Some(s) = unit.lookup(kind.group(), "ServiceName") {
        return s.to_owned();
    }
    let base = name.rsplit_once('.').map_or(name, |(b, _)| b);
    [base, kind.service_suffix()].concat()
}

/// Loads every Quadlet file of `scan` (see the module documentation), on two threads when
/// `threads` says so (the result is the same). Returns one entry per file tried, in search
/// order; the loaded units are the `Ok` results.
///
/// ```no_run
/// use unitwright::quadlet::{load, search, Threads};
///
/// let (roots, _) = search::search_paths(&search::SearchInputs::default());
/// let scan = search::scan(&roots);
/// for f in load::load(&scan, Threads::One) {
///     match f.result {
///         Ok(q) => println!("{} -> {}", q.name, q.service_file_name()),
///         Err(e) => eprintln!("{e}"),
///     }
/// }
/// ```
pub fn load(scan: &Scan, threads: Threads) -> Vec<LoadedFile> {
    // Load the first file of each name up front (on two threads for many files); a later
    // file of the same name is loaded only if that one does not parse, below.
    let mut first: FastSet<&OsStr> = FastSet::default();
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
        threads,
        &todo,
        || Dropins::new(scan),
        |dropins, &(di, ei)| {
            let dir = &scan.dirs[di];
            let name = dir.entries[ei].name.to_str().unwrap_or_default();
            load_file(dropins, &dir.path, name)
        },
    );
    let mut loaded = todo.into_iter().zip(loaded).peekable();
    // Everything that depends on order (which file of a name wins) happens here, in search
    // order.
    let mut seen: FastSet<&OsStr> = FastSet::default();
    let mut out = Vec::with_capacity(loaded.len());
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
            let raw = match loaded.next_if(|(at, _)| *at == (di, ei)) {
                Some((_, raw)) => raw,
                None => load_file(
                    dropins.get_or_insert_with(|| Dropins::new(scan)),
                    &dir.path,
                    name,
                ),
            };
            let result = match raw.unit {
                Err(e) => {
                    let mut d = Diagnostic::new(Severity::Error, format!("error loading {e}"));
                    d.file = Some(raw.path.clone());
                    d.line = e.line();
                    Err(d)
                }
                Ok(unit) => {
                    seen.insert(e.name.as_os_str());
                    if let Some(err) = raw.dropin_error {
                        let mut d = Diagnostic::new(
                            Severity::Error,
                            format!("error loading drop-in of {name}: {err}; {name} is skipped"),
                        );
                        d.file = raw.dropins.last().cloned();
                        Err(d)
                    } else {
                        let service_name = service_name(&unit, kind, name);
                        Ok(Quadlet {
                            name: name.to_owned(),
                            path: raw.path.clone(),
                            dir: dir.path.clone(),
                            kind,
                            unit,
                            service_name,
                        })
                    }
                }
            };
            out.push(LoadedFile {
                path: raw.path,
                dropins: raw.dropins,
                result,
            });
        }
    }
    out
}
