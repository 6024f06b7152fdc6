//! The one place where the lifecycle calls into the Quadlet conversion ([`crate::quadlet`]).
//!
//! Everything the lifecycle needs from Quadlet goes through the functions here: the search path,
//! loading files with their drop-ins (from disk, with an [`Overlay`] of files that are about to
//! be written or removed), the conversion of the whole set for the target podman version, the
//! kinds' key lists and the service name of a file. The rest of the lifecycle only sees
//! [`Converted`] records and plain [`UnitFile`]s, so that a change of the conversion library's
//! API is adapted here alone.
//!
//! The conversion is the generator's own (same kinds, same `[X-Unitwright]` settings, same
//! podman compatibility layer with `UNITWRIGHT_PODMAN_VERSION` / `generator.conf`), run in this
//! process; the generated text is compared without the generator's `# Automatically generated`
//! header, which names the generator's path and never changes between runs.

// Quadlet's file-name suffixes are case-sensitive by design.
#![allow(clippy::case_sensitive_file_extension_comparisons)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::{Diagnostic, Severity};
use crate::quadlet::compat::NEW_KEYS;
use crate::quadlet::search;
use crate::quadlet::{self as q, ConvertOptions, Converter, Kind, Quadlet};
use crate::quadlet_env as environment;
use crate::unit::{self, dropin, UnitFile};

/// Files that differ from the disk for one conversion: `Some(bytes)` is a file as it will be
/// written, `None` a file that will be gone. Paths are absolute and resolved (see
/// [`resolve_dir`]).
pub type Overlay = BTreeMap<PathBuf, Option<Vec<u8>>>;

/// The Quadlet file extensions (`container`, `volume`, ...).
pub fn is_quadlet_name(name: &str) -> bool {
    Kind::from_file_name(name).is_some()
}

/// The extension of the kind whose type group is `group` (`Container` -> `container`).
pub fn kind_of_group(group: &str) -> Option<&'static str> {
    Kind::ALL
        .into_iter()
        .find(|k| k.group() == group)
        .map(Kind::extension)
}

/// The kind's extension of a Quadlet file name (`container`).
pub fn kind_of(name: &str) -> Option<&'static str> {
    Kind::from_file_name(name).map(Kind::extension)
}

/// The service a Quadlet file name generates when the file sets no `ServiceName=`
/// (`db.volume` → `db-volume.service`).
pub fn default_service(name: &str) -> Option<String> {
    let kind = Kind::from_file_name(name)?;
    let base = name.rsplit_once('.').map_or(name, |(b, _)| b);
    Some([base, kind.service_suffix(), ".service"].concat())
}

/// The service a loaded Quadlet file generates (`ServiceName=` honoured).
pub fn service_of(name: &str, unit: &UnitFile) -> Option<String> {
    let kind = Kind::from_file_name(name)?;
    Some(q::load::service_name(unit, kind, name) + ".service")
}

/// The keys the type group of `name`'s kind accepts (5.4.2's and the later ones, whatever the
/// podman version: the version check is the conversion's).
pub fn known_keys(name: &str) -> Vec<&'static str> {
    let Some(kind) = Kind::from_file_name(name) else {
        return Vec::new();
    };
    let base = match kind {
        Kind::Container => q::container::SUPPORTED_KEYS.keys(),
        Kind::Volume => q::volume::SUPPORTED_KEYS.keys(),
        Kind::Network => q::network::SUPPORTED_KEYS.keys(),
        Kind::Kube => q::kube::SUPPORTED_KEYS.keys(),
        Kind::Pod => q::pod::SUPPORTED_KEYS.keys(),
        Kind::Image => q::image::SUPPORTED_KEYS.keys(),
        Kind::Build => q::build::SUPPORTED_KEYS.keys(),
        Kind::Artifact => q::artifact::SUPPORTED_KEYS.keys(),
    };
    let mut keys = base.to_vec();
    keys.extend(NEW_KEYS.iter().filter(|k| k.kind == kind).map(|k| k.key));
    keys
}

/// The type group of a Quadlet file name (`Container`).
pub fn group_of(name: &str) -> Option<&'static str> {
    Kind::from_file_name(name).map(Kind::group)
}

/// The search directories of the scope, highest priority first, as the generator walks them
/// (`QUADLET_UNIT_DIRS`, `XDG_*` and `HOME` honoured), sub-directories included.
pub fn search_dirs(user: bool) -> Vec<PathBuf> {
    let (roots, _) = search::search_paths(&environment::search_inputs(user));
    search::scan(&roots)
        .dirs
        .into_iter()
        .map(|d| d.path)
        .collect()
}

/// The roots of the search path of the scope, without walking them (for messages).
pub fn search_roots(user: bool) -> Vec<PathBuf> {
    search::search_paths(&environment::search_inputs(user))
        .0
        .into_iter()
        .map(|r| r.path)
        .collect()
}

/// The conversion options the generator would use with this environment
/// ([`environment::convert_options`]; its warnings about invalid settings are the generator's
/// to log).
pub fn convert_options(user: bool) -> ConvertOptions {
    environment::convert_options(user, &mut |_| {})
}

/// `$XDG_CONFIG_HOME`, else `$HOME/.config`.
pub fn user_config_dir() -> Option<PathBuf> {
    environment::env_nonempty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| environment::env_nonempty("HOME").map(|h| PathBuf::from(h).join(".config")))
}

/// `dir` with its symlinks resolved (as the generator's walk records it), or as given if it
/// does not exist yet.
pub fn resolve_dir(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())
}

/// One Quadlet file of the converted set.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The file name (`web.container`).
    pub name: String,
    /// Where it is (or will be).
    pub path: PathBuf,
    /// The kind (`container`).
    pub kind: &'static str,
    /// The unit it generates (`web.service`), when the file could be read.
    pub unit: Option<String>,
    /// The generated unit (without the generator's header), or `None` when the conversion
    /// failed (see `diagnostics`) or the file is hidden by another of the same name.
    pub text: Option<String>,
    /// True when the generated unit has `WantedBy=`, `RequiredBy=` or `Alias=` in `[Install]`.
    pub installs: bool,
    /// The drop-ins applied, in order.
    pub dropins: Vec<PathBuf>,
    /// The file of the same name earlier in the search path that hides this one.
    pub hidden_by: Option<PathBuf>,
    /// Errors and warnings of loading and conversion, and the value checks of [`super::lint`].
    pub diagnostics: Vec<Diagnostic>,
}

impl Converted {
    /// True when the file produced a unit.
    pub fn ok(&self) -> bool {
        self.text.is_some()
    }
}

/// Reads files through an [`Overlay`].
struct Reader<'o> {
    overlay: &'o Overlay,
    /// `.conf` files of each drop-in directory (disk and overlay), sorted.
    listings: HashMap<PathBuf, Vec<PathBuf>>,
}

impl Reader<'_> {
    fn read(&self, path: &Path) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match self.overlay.get(path) {
            Some(Some(data)) => Ok(std::borrow::Cow::Borrowed(data)),
            Some(None) => Err(std::io::ErrorKind::NotFound.into()),
            None => std::fs::read(path).map(std::borrow::Cow::Owned),
        }
    }

    fn parse(&self, path: &Path) -> Result<UnitFile, unit::ParseError> {
        match self.read(path) {
            Ok(data) => unit::parse_bytes(&data, path),
            Err(source) => Err(unit::ParseError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn confs(&mut self, dir: &Path) -> &[PathBuf] {
        let overlay = self.overlay;
        self.listings.entry(dir.to_owned()).or_insert_with(|| {
            let mut confs: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .filter(|p| !matches!(overlay.get(p), Some(None)))
                .collect();
            for (p, data) in overlay.range(dir.to_owned()..) {
                if !p.starts_with(dir) {
                    break;
                }
                if data.is_some()
                    && p.parent() == Some(dir)
                    && p.extension().is_some_and(|e| e == "conf")
                    && !confs.contains(p)
                {
                    confs.push(p.clone());
                }
            }
            confs.sort();
            confs
        })
    }
}

/// Converts every Quadlet file of the scope as the generator would, with `overlay` applied.
/// `install_dir` (resolved) is searched first if the walk did not find it (it does not exist
/// yet). Returns the files in search order (hidden files included).
pub fn convert_all(user: bool, install_dir: &Path, overlay: &Overlay) -> Vec<Converted> {
    let mut dirs = search_dirs(user);
    if !dirs.iter().any(|d| d == install_dir) {
        dirs.insert(0, install_dir.to_owned());
    }
    // Files per directory: what is on disk, plus the overlay's new files, minus its removals.
    let mut files: Vec<(PathBuf, Vec<String>)> = Vec::with_capacity(dirs.len());
    let mut dropin_dirs: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for dir in &dirs {
        let mut names: Vec<String> = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = e.path();
            // The entry's type from the directory itself; only symlinks cost a stat.
            let (is_dir, is_file) = match e.file_type() {
                Ok(t) if t.is_symlink() => {
                    std::fs::metadata(&path).map_or((false, false), |m| (m.is_dir(), m.is_file()))
                }
                Ok(t) => (t.is_dir(), t.is_file()),
                Err(_) => (false, false),
            };
            if is_dir {
                if name.ends_with(".d") {
                    dropin_dirs.insert(path);
                }
                continue;
            }
            if is_file && is_quadlet_name(name) && !matches!(overlay.get(&path), Some(None)) {
                names.push(name.to_owned());
            }
        }
        for (p, data) in overlay.range(dir.clone()..) {
            if !p.starts_with(dir) {
                break;
            }
            if data.is_none() {
                continue;
            }
            if p.parent() == Some(dir.as_path()) {
                if let Some(n) = p.file_name().and_then(|n| n.to_str()) {
                    if is_quadlet_name(n) && !names.iter().any(|x| x == n) {
                        names.push(n.to_owned());
                    }
                }
            } else if let Some(parent) = p.parent() {
                if parent.parent() == Some(dir.as_path())
                    && parent.extension().is_some_and(|e| e == "d")
                {
                    dropin_dirs.insert(parent.to_owned());
                }
            }
        }
        names.sort();
        files.push((dir.clone(), names));
    }
    let mut reader = Reader {
        overlay,
        listings: HashMap::new(),
    };
    let mut out: Vec<Converted> = Vec::new();
    let mut loaded: Vec<(usize, Quadlet)> = Vec::new();
    let mut first: HashMap<String, PathBuf> = HashMap::new();
    for (dir, names) in &files {
        for name in names {
            let path = dir.join(name);
            let kind = Kind::from_file_name(name).map_or("", Kind::extension);
            let mut c = Converted {
                name: name.clone(),
                path: path.clone(),
                kind,
                unit: None,
                text: None,
                installs: false,
                dropins: Vec::new(),
                hidden_by: None,
                diagnostics: Vec::new(),
            };
            if let Some(winner) = first.get(name) {
                c.hidden_by = Some(winner.clone());
                out.push(c);
                continue;
            }
            let mut unit = match reader.parse(&path) {
                Ok(u) => u,
                Err(e) => {
                    // As in the generator, a later file of the same name may still win.
                    c.diagnostics.push(parse_diagnostic(&e));
                    out.push(c);
                    continue;
                }
            };
            first.insert(name.clone(), path.clone());
            let mut candidates = Vec::new();
            if !dropin_dirs.is_empty() {
                for dname in dropin::dropin_dir_names(name) {
                    for (d, _) in &files {
                        let dd = d.join(&dname);
                        if dropin_dirs.contains(&dd) {
                            candidates.extend(reader.confs(&dd).iter().cloned());
                        }
                    }
                }
            }
            let mut dropin_failed = false;
            for d in dropin::select_dropins(candidates) {
                match reader.parse(&d) {
                    Ok(di) => unit.merge(&di),
                    Err(e) => {
                        let mut diag = parse_diagnostic(&e);
                        diag.message = format!(
                            "{}; {name} is skipped (drop-in {} does not parse)",
                            diag.message,
                            d.display()
                        );
                        c.diagnostics.push(diag);
                        dropin_failed = true;
                    }
                }
                c.dropins.push(d);
            }
            let Some(kind) = Kind::from_file_name(name) else {
                continue;
            };
            c.unit = Some(q::load::service_name(&unit, kind, name) + ".service");
            c.diagnostics
                .extend(super::lint::check(&unit, name, &known_keys(name)));
            let idx = out.len();
            out.push(c);
            if dropin_failed {
                continue;
            }
            let service = q::load::service_name(&unit, kind, name);
            loaded.push((
                idx,
                Quadlet {
                    name: name.clone(),
                    dir: dir.clone(),
                    path,
                    kind,
                    unit,
                    service_name: service,
                },
            ));
        }
    }
    convert_loaded(user, &mut out, loaded);
    out
}

/// The conversion proper, in the generator's order (kind priority, then search order), by the
/// library's [`Converter`].
fn convert_loaded(user: bool, out: &mut [Converted], mut loaded: Vec<(usize, Quadlet)>) {
    // Stable: within a priority, search order.
    loaded.sort_by_key(|(_, qd)| qd.kind.priority());
    let (sorted_idx, mut sorted): (Vec<usize>, Vec<Quadlet>) = loaded.into_iter().unzip();
    // Every error of a failing file, not only the first; the units are the generator's.
    let options = ConvertOptions {
        collect_errors: true,
        ..convert_options(user)
    };
    let mut conv = Converter::new(&mut sorted, &options);
    for (qd, &i) in sorted.iter().zip(&sorted_idx) {
        let r = conv.convert(qd);
        let c = &mut out[i];
        for d in r.diagnostics {
            if !matches!(d.severity, q::Severity::Error | q::Severity::Warning) {
                continue;
            }
            let d = from_library(qd, d);
            // The value checks may have found the same problem on the same line already.
            let dup = d.severity == Severity::Error
                && d.line.is_some()
                && c.diagnostics
                    .iter()
                    .any(|x| x.severity == Severity::Error && x.line == d.line && x.file == d.file);
            if !dup {
                c.diagnostics.push(d);
            }
        }
        if let Some(unit) = r.unit {
            c.installs = !r.links.is_empty();
            c.text = Some(unit.to_text());
        }
        // By file (the main file before its drop-ins), then line; problems without a line
        // (a missing key) last.
        c.diagnostics.sort_by(|a, b| {
            (&a.file, a.line.is_none(), a.line).cmp(&(&b.file, b.line.is_none(), b.line))
        });
    }
}

/// A library diagnostic as ours: the generator's `converting "<file>": ` prefix, the location
/// and the path repeated in the message are dropped (they are fields here), and the hint that
/// follows the location is split off.
fn from_library(qd: &Quadlet, d: q::Diagnostic) -> Diagnostic {
    let file = d.file.unwrap_or_else(|| qd.path.clone());
    let mut message = d.message;
    let prefix = format!("converting {:?}: ", qd.name);
    if message.starts_with(&prefix) {
        message.drain(..prefix.len());
    }
    let mut hint = None;
    let location = match d.line {
        Some(l) if file == qd.path => Some(format!(" (line {l})")),
        Some(l) => Some(format!(" ({}:{l})", file.display())),
        None => None,
    };
    if let Some(loc) = location {
        if let Some(at) = message.find(&loc) {
            let rest = message[at + loc.len()..].to_owned();
            hint = rest.strip_prefix("; ").map(str::to_owned);
            message.truncate(at);
        }
    }
    let repeated = format!(" in {}", qd.path.display());
    if message.ends_with(&repeated) {
        message.truncate(message.len() - repeated.len());
    }
    if hint.is_none() && message.starts_with("unsupported key") {
        if let Some(k) = &d.key {
            hint = super::lint::did_you_mean(k, &known_keys(&qd.name));
        }
    }
    Diagnostic {
        file: file.display().to_string(),
        line: d.line,
        key: d.key,
        severity: if d.severity == q::Severity::Error {
            Severity::Error
        } else {
            Severity::Warning
        },
        message,
        hint,
    }
}

/// A parse error as a diagnostic.
fn parse_diagnostic(e: &unit::ParseError) -> Diagnostic {
    let (file, line) = match e {
        unit::ParseError::BadLine { path, line, .. }
        | unit::ParseError::NoGroup { path, line, .. }
        | unit::ParseError::BadGroup { path, line, .. }
        | unit::ParseError::NotUtf8 { path, line }
        | unit::ParseError::Nul { path, line } => (path.clone(), Some(*line)),
        unit::ParseError::Io { path, .. } => (path.clone(), None),
    };
    // The error's text starts with `path:line: `; the diagnostic has them apart.
    let text = e.to_string();
    let prefix = match line {
        Some(l) => format!("{}:{l}: ", file.display()),
        None => format!("{}: ", file.display()),
    };
    Diagnostic {
        file: file.display().to_string(),
        line,
        key: None,
        severity: Severity::Error,
        message: text.strip_prefix(&prefix).unwrap_or(&text).to_owned(),
        hint: None,
    }
}

/// The Quadlet file named `name` that the generator would use (the first in search order),
/// with its drop-ins merged.
pub fn load_named(user: bool, name: &str) -> Option<(PathBuf, UnitFile)> {
    let dirs = search_dirs(user);
    let path = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())?;
    let overlay = Overlay::new();
    let mut reader = Reader {
        overlay: &overlay,
        listings: HashMap::new(),
    };
    let mut unit = reader.parse(&path).ok()?;
    let mut candidates = Vec::new();
    for dname in dropin::dropin_dir_names(name) {
        for d in &dirs {
            let dd = d.join(&dname);
            if dd.is_dir() {
                candidates.extend(reader.confs(&dd).iter().cloned());
            }
        }
    }
    for d in dropin::select_dropins(candidates) {
        if let Ok(di) = reader.parse(&d) {
            unit.merge(&di);
        }
    }
    Some((path, unit))
}

/// The unit a name given to a unit verb means: for a Quadlet file name (`web.container`,
/// `db.volume`) the unit that file generates (`ServiceName=` honoured, `db-volume.service`
/// when there is no such file); `None` for any other name.
pub fn unit_for_quadlet_name(user: bool, name: &str) -> Option<String> {
    if !is_quadlet_name(name) || name.contains('/') {
        return None;
    }
    match load_named(user, name) {
        Some((_, unit)) => service_of(name, &unit),
        None => default_service(name),
    }
}
