//! Quadlet conversion: Quadlet files (`.container`, `.volume`, `.network`, `.kube`, `.pod`,
//! `.image`, `.build`, `.artifact`) to systemd service units, as the Quadlet of the targeted
//! podman release writes them (5.4.2 to 5.8: [`versions`]; older podman: 5.4.2's units adapted
//! by [`compat`]).
//!
//! # API for in-process callers
//! This module converts; it reads no environment variable and no configuration file (the
//! generator's inputs from the environment and `generator.conf` are read by
//! [`crate::quadlet_env`], for callers that must convert as the installed generator does, and
//! reach this module as arguments), runs no process except `podman --version` when asked to
//! detect the version ([`compat::Setting::Auto`]), and logs nothing: problems come back as
//! [`Diagnostic`]s with file, line and key. The generator program (flags, environment, output directory, kmsg,
//! threads, coexistence with podman's generator) is the `unitwright-generator` crate
//! (`generator/`), a caller of this API like `unitwright quadlet ...`.
//!
//! 1. [`search::search_paths`] gives the search roots for explicit [`search::SearchInputs`]
//!    (user or system, uid, home, runtime dir, an override list);
//! 2. [`search::scan`] walks them; [`load::load`](fn@load::load) reads every Quadlet file with its drop-ins
//!    ([`load::LoadedFile`]: the [`Quadlet`] or why not);
//! 3. [`convert_all`] (or a [`Converter`], one unit at a time) converts them
//!    ([`ConvertOptions`]: user mode, podman path, podman version, wrapper path) and returns per
//!    file a [`Converted`]: the unit model (`to_text()` gives the text), the service file name,
//!    the `[Install]` links and the diagnostics.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use unitwright::quadlet::{convert_all, load, search, ConvertOptions, Threads};
//!
//! let inputs = search::SearchInputs {
//!     user: true,
//!     uid: 1000,
//!     home: Some(PathBuf::from("/home/ann")),
//!     runtime_dir: Some(PathBuf::from("/run/user/1000")),
//!     ..Default::default()
//! };
//! let (roots, problems) = search::search_paths(&inputs);
//! let scan = search::scan(&roots);
//! let mut units = Vec::new();
//! for file in load::load(&scan, Threads::One) {
//!     match file.result {
//!         Ok(q) => units.push(q),
//!         Err(e) => eprintln!("{e}"),
//!     }
//! }
//! let options = ConvertOptions { user: true, ..ConvertOptions::default() };
//! for c in convert_all(&mut units, &options) {
//!     for d in &c.diagnostics {
//!         eprintln!("{d}");
//!     }
//!     if let Some(unit) = &c.unit {
//!         println!("{}:\n{}", c.service_file_name, unit.to_text());
//!     }
//! }
//! # let _ = problems;
//! ```
//!
//! # Layout
//! * [`search`]: search paths and the directory walk; [`load`](mod@load): loading with drop-ins;
//!   [`convert`]: the conversion of a set of files; [`compat`]: the podman version targeted.
//! * [`common`]: helpers shared by the kinds (service skeleton, networks, volumes, user
//!   namespaces, image sources, `[Service]` rules); [`podman`]: typed podman command lines and
//!   their serialization (`escapeWords`).
//! * One file per kind: [`container`], [`volume`], [`network`], [`kube`], [`pod`], [`image`],
//!   [`build`]; [`resource`]: what the one-shot resource kinds (volume, network, image, build)
//!   share.
//!
//! # Writing a kind
//! Every kind exposes one function with the [`ConvertFn`] signature:
//!
//! ```ignore
//! pub fn convert<'q>(q: &'q Quadlet, ctx: &mut Context) -> Result<Service<'q>, ConvertError>
//! ```
//!
//! * `q` is the loaded file (drop-ins already merged): [`Quadlet::unit`] for look-ups,
//!   [`Quadlet::name`] (file name, key of [`Context::units`]), [`Quadlet::path`] (for
//!   `SourcePath=`), [`Quadlet::dir`] (for relative paths), [`Quadlet::kind`].
//! * `ctx` holds the mode ([`Context::user`]), the podman path and the table of all loaded files
//!   ([`Context::units`], keyed by file name) used to resolve references. A kind that defines a
//!   resource (volume, network, image) stores its resource name in its own [`UnitInfo`]; a pod
//!   reads [`UnitInfo::containers_to_start`] (filled by containers converted before it).
//! * The result is the service unit *without* the generator header, its podman command lines
//!   still typed ([`Service`], a [`UnitFile`] plus [`ExecLine`]s at their places in
//!   `[Service]`); [`Converter`] lets [`settings`] and [`compat`] edit those commands, writes
//!   them ([`Service::finish`]), names the unit `<service name>.service` and lists the
//!   `[Install]` symlinks; the generator writes them.
//! * Start with [`common::check_supported_keys`] and [`common::new_service`], build command lines
//!   with [`podman::PodmanCmd::base`] (`with_sub`, `add` for options, `arg` for the final
//!   arguments) and add them with [`Service::add_exec`]; return errors made with [`ConvertError::new`] or
//!   [`ConvertError::at_key`] (which adds the file and line of the key). The framework prints
//!   them as `converting "<file>": <message>`.
//!
//! # Deliberate differences from Quadlet (every release; per release see [`versions`] and
//! unitwright-generator(8))
//! * A file that does not parse is reported (with file and line) and skipped; the other files of
//!   its directory are still converted (5.4.2 drops the whole directory).
//! * Drop-in precedence across directories follows the most specific directory name (podman
//!   #26555, fixed in 5.6.0); see [`crate::unit::dropin`].
//! * Options whose order came from Go map iteration are emitted in a fixed documented order.
//! * Units are processed in a stable order (type priority, then load order), where 5.4.2 used an
//!   unstable sort (identical for up to 12 files).
//! * Every output file is written to a temporary file in the same directory and renamed; it is
//!   not fsync'ed on tmpfs (`/run`), where fsync is pointless.
//! * Errors about a key name the file and line of that key.
//! * The keys Quadlet gained in podman 5.5 to 5.8 are accepted when the podman version is known
//!   to be new enough (`PodmanVersion=`, see [`compat`]); otherwise they are 5.4.2's
//!   `unsupported key` errors, with a hint after the location.
//! * Units systemd could not load are refused (invalid unit names, lines over
//!   [`convert::LONG_LINE_MAX`], NUL bytes); special files and broken links named like Quadlet
//!   files are reported; a symlinked directory is not followed out of its search root
//!   ([`search`]); a unit from a source only its owner can read is marked
//!   [`Converted::private`].

// Quadlet's file-name suffixes (`.volume`, `.image`) are case-sensitive by design.
#![allow(clippy::case_sensitive_file_extension_comparisons)]

pub mod artifact;
pub mod build;
pub mod common;
pub mod compat;
pub mod container;
pub mod convert;
#[doc(hidden)]
pub mod fasthash;
pub mod image;
pub mod kube;
pub mod load;
pub mod network;
mod parallel;
pub mod pod;
pub mod podman;
pub mod resource;
pub mod search;
pub mod settings;
pub mod versions;
pub mod volume;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::unit::{Origin, UnitFile};

pub use compat::{Setting as PodmanVersionSetting, Version};
pub use convert::{convert_all, ConvertOptions, Converted, Converter};
pub use load::{load, LoadedFile};
pub use parallel::Threads;
pub use podman::{ExecLine, PodmanCmd, Service};
pub use search::{scan, search_paths, SearchInputs};

/// How serious a [`Diagnostic`] is (syslog levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The file (or the run) failed.
    Error,
    /// Converted, but something deserves attention.
    Warning,
    /// Worth telling once.
    Notice,
    /// Only for `-v`.
    Debug,
}

/// A problem or note of loading or converting, with the file, line and key it is about where
/// known. Its text ([`Diagnostic::message`], also its `Display`) is the generator's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// How serious.
    pub severity: Severity,
    /// The file it is about (the Quadlet file or the drop-in holding the line).
    pub file: Option<PathBuf>,
    /// The 1-based line in [`Self::file`].
    pub line: Option<u32>,
    /// The key it is about.
    pub key: Option<String>,
    /// The full message.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic not tied to a file.
    pub fn new(severity: Severity, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            file: None,
            line: None,
            key: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The kinds of Quadlet files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `.container`
    Container,
    /// `.volume`
    Volume,
    /// `.network`
    Network,
    /// `.kube`
    Kube,
    /// `.pod`
    Pod,
    /// `.image`
    Image,
    /// `.build`
    Build,
    /// `.artifact` (podman 5.7)
    Artifact,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 8] = [
        Kind::Container,
        Kind::Volume,
        Kind::Network,
        Kind::Kube,
        Kind::Pod,
        Kind::Image,
        Kind::Build,
        Kind::Artifact,
    ];

    /// The kind of a file name, from its extension.
    pub fn from_file_name(name: &str) -> Option<Kind> {
        Kind::from_extension(name.rsplit_once('.')?.1)
    }

    /// The kind of an extension without the dot (`container`).
    pub fn from_extension(ext: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.extension() == ext)
    }

    /// The extension without the dot (`container`).
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Volume => "volume",
            Kind::Network => "network",
            Kind::Kube => "kube",
            Kind::Pod => "pod",
            Kind::Image => "image",
            Kind::Build => "build",
            Kind::Artifact => "artifact",
        }
    }

    /// The type group (`Container`).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Container => "Container",
            Kind::Volume => "Volume",
            Kind::Network => "Network",
            Kind::Kube => "Kube",
            Kind::Pod => "Pod",
            Kind::Image => "Image",
            Kind::Build => "Build",
            Kind::Artifact => "Artifact",
        }
    }

    /// The name the type group gets in the output (`X-Container`), so systemd ignores it.
    pub fn x_group(self) -> &'static str {
        match self {
            Kind::Container => "X-Container",
            Kind::Volume => "X-Volume",
            Kind::Network => "X-Network",
            Kind::Kube => "X-Kube",
            Kind::Pod => "X-Pod",
            Kind::Image => "X-Image",
            Kind::Build => "X-Build",
            Kind::Artifact => "X-Artifact",
        }
    }

    /// The suffix added to the base name to form the service name (`-volume`).
    pub fn service_suffix(self) -> &'static str {
        match self {
            Kind::Container | Kind::Kube => "",
            Kind::Volume => "-volume",
            Kind::Network => "-network",
            Kind::Pod => "-pod",
            Kind::Image => "-image",
            Kind::Build => "-build",
            Kind::Artifact => "-artifact",
        }
    }

    /// Processing priority: images (and artifacts) first, pods last (5.4.2 and 5.8 main.go).
    pub fn priority(self) -> u8 {
        match self {
            Kind::Image | Kind::Artifact => 1,
            Kind::Volume | Kind::Network => 2,
            Kind::Build => 3,
            Kind::Container | Kind::Kube => 4,
            Kind::Pod => 5,
        }
    }

    /// The conversion function of this kind.
    pub fn converter(self) -> ConvertFn {
        match self {
            Kind::Container => container::convert,
            Kind::Volume => volume::convert,
            Kind::Network => network::convert,
            Kind::Kube => kube::convert,
            Kind::Pod => pod::convert,
            Kind::Image => image::convert,
            Kind::Build => build::convert,
            Kind::Artifact => artifact::convert,
        }
    }
}

/// A loaded Quadlet file with its drop-ins merged.
#[derive(Debug, Clone)]
pub struct Quadlet {
    /// The file name (`web.container`, `db@.container`); the key of [`Context::units`].
    pub name: String,
    /// The path it was found at (resolved directory + file name), used for `SourcePath=`.
    pub path: PathBuf,
    /// The directory of [`path`](Self::path), base of relative paths.
    pub dir: PathBuf,
    /// The kind, from the extension.
    pub kind: Kind,
    /// The parsed file with drop-ins merged.
    pub unit: UnitFile,
    /// The service name without `.service` (`web`, `data-volume`, `db@`, `db@a`).
    pub service_name: String,
}

impl Quadlet {
    /// A Quadlet from text, as if read from `path` (the kind comes from its extension). For
    /// callers that have the text in hand; files on disk are loaded with [`load::load`].
    pub fn from_text(path: &Path, text: &str) -> Result<Quadlet, Diagnostic> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let Some(kind) = Kind::from_file_name(&name) else {
            let mut d = Diagnostic::new(
                Severity::Error,
                format!("{}: not a Quadlet file name", path.display()),
            );
            d.file = Some(path.to_owned());
            return Err(d);
        };
        let unit = crate::unit::parse_str(text, path).map_err(|e| {
            let mut d = Diagnostic::new(Severity::Error, format!("error loading {e}"));
            d.file = Some(path.to_owned());
            d.line = e.line();
            d
        })?;
        let service_name = load::service_name(&unit, kind, &name);
        Ok(Quadlet {
            dir: path.parent().map(Path::to_owned).unwrap_or_default(),
            path: path.to_owned(),
            name,
            kind,
            unit,
            service_name,
        })
    }

    /// The base name: the file name without its extension (`db@` for `db@.container`).
    pub fn base_name(&self) -> &str {
        self.name
            .rsplit_once('.')
            .map_or(self.name.as_str(), |(b, _)| b)
    }

    /// The output file name (`web.service`).
    pub fn service_file_name(&self) -> String {
        [self.service_name.as_str(), ".service"].concat()
    }
}

/// What is known about every loaded file before conversion, keyed by file name in
/// [`Context::units`]. Filled in load order; resource names of volumes, networks and images are
/// set by their own conversion (which runs before the kinds that refer to them).
#[derive(Debug, Clone)]
pub struct UnitInfo {
    /// The kind of the file.
    pub kind: Kind,
    /// The service name without `.service`.
    pub service_name: String,
    /// The podman-side name: container name, volume name, network name, image name. Empty when
    /// not (yet) known or not referenceable (a template container).
    pub resource_name: String,
    /// For pods: the services (`x.service`) of the containers that join it with
    /// `StartWithPod` true, in container processing order.
    pub containers_to_start: Vec<String>,
}

impl UnitInfo {
    /// `<service name>.service`.
    pub fn service_file_name(&self) -> String {
        [self.service_name.as_str(), ".service"].concat()
    }
}

/// State shared by all conversions of one generator run.
#[derive(Debug, Default, Clone)]
pub struct Context {
    /// True in user (rootless) mode.
    pub user: bool,
    /// argv\[0\] of podman commands: `$PODMAN` or `/usr/bin/podman`.
    pub podman: String,
    /// The `unitwright` wrapper for templates with instance settings (empty: the default
    /// `/usr/bin/unitwright`; see [`settings`]).
    pub unitwright: String,
    /// Every loaded file by file name.
    pub units: HashMap<String, UnitInfo>,
    /// Warnings produced by the current conversion; the framework logs them.
    pub warnings: Vec<String>,
    /// The podman release that the current file's keys from after Quadlet 5.4.2 are checked
    /// against ([`compat::NEW_KEYS`]); `None` refuses them as 5.4.2 does (`PodmanVersion=off`,
    /// a version podman did not tell, or a file that uses none of them, for which podman is not
    /// asked). Set by the framework before each conversion.
    pub podman_version: Option<compat::Version>,
    /// True in a collecting conversion ([`ConvertOptions::collect_errors`], run by
    /// [`Converter`] only for a file that failed): errors that the rest of the conversion can
    /// do without are recorded in [`Self::collected`] ([`Context::recover`]) and the
    /// conversion goes on, so that every problem of the file is found, not only the first.
    pub collecting: bool,
    /// The errors recorded by a collecting conversion, in the order found.
    pub collected: RefCell<Vec<ConvertError>>,
}

impl Context {
    /// Records a warning (logged at warning level by the framework).
    pub fn warn(&mut self, msg: impl Into<String>) {
        self.warnings.push(msg.into());
    }

    /// An error the conversion can go on past: in a collecting conversion it is recorded and
    /// `Ok` returned (the caller goes on as if the offending value were absent); otherwise it
    /// is returned, ending the conversion with it as the generator does.
    pub fn recover(&self, e: ConvertError) -> Result<(), ConvertError> {
        if self.collecting {
            self.collected.borrow_mut().push(e);
            Ok(())
        } else {
            Err(e)
        }
    }
}

/// [`Context::recover`] for a result: in a collecting conversion an error is recorded and
/// `fallback` used in place of the value.
pub trait OrCollect<T> {
    /// The value, or `fallback` after recording the error (collecting), or the error.
    fn or_collect(self, ctx: &Context, fallback: T) -> Result<T, ConvertError>;
}

impl<T> OrCollect<T> for Result<T, ConvertError> {
    fn or_collect(self, ctx: &Context, fallback: T) -> Result<T, ConvertError> {
        match self {
            Ok(v) => Ok(v),
            Err(e) => ctx.recover(e).map(|()| fallback),
        }
    }
}

/// A conversion failure. Printed by the framework as `converting "<file>": <message>`, followed by
/// ` (<location>)` when the problem is tied to a line and `; <hint>` when there is a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{message}{}{}",
    location.as_ref().map(|l| format!(" ({l})")).unwrap_or_default(),
    hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
)]
pub struct ConvertError {
    /// The message, worded as in Quadlet 5.4.2 where it has one.
    pub message: String,
    /// `line N` (in the main file) or `path:N` (in a drop-in), when known.
    pub location: Option<String>,
    /// What to do about it, written after the location so that the 5.4.2 message and its
    /// location stay together for whoever matches them.
    pub hint: Option<String>,
    /// What the error is about, when known (boxed: errors travel in every `Result` of the
    /// kinds).
    pub at: Option<Box<ErrorAt>>,
}

/// The file, line and key a [`ConvertError`] is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorAt {
    /// The file holding the line (a drop-in or the main file), when known.
    pub file: Option<PathBuf>,
    /// The 1-based line in [`Self::file`], when known.
    pub line: Option<u32>,
    /// The key, when known.
    pub key: Option<String>,
}

impl ConvertError {
    /// An error not tied to a line.
    pub fn new(message: impl Into<String>) -> Self {
        ConvertError {
            message: message.into(),
            location: None,
            hint: None,
            at: None,
        }
    }

    /// The same error, about `key` (e.g. one that is missing), without a location: the
    /// message stays as it is.
    #[must_use]
    pub fn about_key(mut self, key: &str) -> Self {
        self.at.get_or_insert_with(Box::default).key = Some(key.to_owned());
        self
    }

    /// The diagnostic for this error while converting `q` (the generator's
    /// `converting "<file>": ...` line).
    pub fn into_diagnostic(self, q: &Quadlet) -> Diagnostic {
        let message = format!("converting {:?}: {self}", q.name);
        let at = self.at.map(|a| *a).unwrap_or_default();
        Diagnostic {
            severity: Severity::Error,
            message,
            file: Some(at.file.unwrap_or_else(|| q.path.clone())),
            line: at.line,
            key: at.key,
        }
    }

    /// An error about the last assignment of `key` in `group` of `q` (location added if the key
    /// exists).
    pub fn at_key(q: &Quadlet, group: &str, key: &str, message: impl Into<String>) -> Self {
        let origin = q.unit.last_line(group, key).map(|l| l.origin);
        let mut e = ConvertError::new(message);
        e.at = Some(Box::new(ErrorAt {
            key: Some(key.to_owned()),
            ..ErrorAt::default()
        }));
        if let Some(origin) = origin {
            e.set_origin(q, origin);
        }
        e
    }

    /// An error about a specific line.
    pub fn at_origin(q: &Quadlet, origin: Origin, message: impl Into<String>) -> Self {
        let mut e = ConvertError::new(message);
        if origin.line != 0 {
            e.set_origin(q, origin);
        }
        e
    }

    fn set_origin(&mut self, q: &Quadlet, origin: Origin) {
        self.location = Some(describe_location(&q.unit, origin));
        let at = self.at.get_or_insert_with(Box::default);
        at.file = q.unit.sources.get(usize::from(origin.source)).cloned();
        at.line = (origin.line != 0).then_some(origin.line);
    }
}

/// `line N` for the main file, `path:N` for a drop-in.
fn describe_location(unit: &UnitFile, origin: Origin) -> String {
    if origin.source == 0 {
        format!("line {}", origin.line)
    } else {
        unit.describe_origin(origin)
    }
}

/// The signature of every kind's conversion function; see the module documentation.
pub type ConvertFn = for<'q> fn(&'q Quadlet, &mut Context) -> Result<Service<'q>, ConvertError>;
