//! The Quadlet generator: Quadlet files (`.container`, `.volume`, `.network`, `.kube`, `.pod`,
//! `.image`, `.build`) to systemd service units, behaving like podman's Quadlet 5.4.2
//! (`cmd/quadlet/main.go`, `pkg/systemd/quadlet/quadlet.go`) where users rely on it.
//!
//! # Layout
//! * [`generator`]: the program (flags, search, loading, dispatch, output, exit status).
//! * [`search`]: search paths and the directory walk; [`output`]: atomic writes and symlinks;
//!   [`log`]: the kmsg/stderr logger; [`parallel`]: how large runs use a second thread.
//! * [`common`]: helpers shared by the kinds (service skeleton, networks, volumes, user
//!   namespaces, image sources, `[Service]` rules); [`podman`]: podman command lines and their
//!   serialization (`escapeWords`).
//! * One file per kind: [`container`], [`volume`], [`network`], [`kube`], [`pod`], [`image`],
//!   [`build`]; [`resource`]: what the one-shot resource kinds (volume, network, image, build)
//!   share.
//!
//! # Writing a kind
//! Every kind exposes one function with the [`ConvertFn`] signature:
//!
//! ```ignore
//! pub fn convert(q: &Quadlet, ctx: &mut Context) -> Result<UnitFile, ConvertError>
//! ```
//!
//! * `q` is the loaded file (drop-ins already merged): [`Quadlet::unit`] for look-ups,
//!   [`Quadlet::name`] (file name, key of [`Context::units`]), [`Quadlet::path`] (for
//!   `SourcePath=`), [`Quadlet::dir`] (for relative paths), [`Quadlet::kind`].
//! * `ctx` holds the mode ([`Context::user`]), the podman path and the table of all loaded files
//!   ([`Context::units`], keyed by file name) used to resolve references. A kind that defines a
//!   resource (volume, network, image) stores its resource name in its own [`UnitInfo`]; a pod
//!   reads [`UnitInfo::containers_to_start`] (filled by containers converted before it).
//! * The result is the service unit *without* the generator header; the framework names it
//!   `<service name>.service`, writes it and creates the `[Install]` symlinks.
//! * Start with [`common::check_supported_keys`] and [`common::new_service`], build command lines
//!   with [`podman::PodmanCmd::base`], and return errors made with [`ConvertError::new`] or
//!   [`ConvertError::at_key`] (which adds the file and line of the key). The framework prints
//!   them as `converting "<file>": <message>`.
//!
//! # Deliberate differences from 5.4.2
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

// Quadlet's file-name suffixes (`.volume`, `.image`) are case-sensitive by design.
#![allow(clippy::case_sensitive_file_extension_comparisons)]

pub mod build;
pub mod coexist;
pub mod common;
pub mod compat;
pub mod container;
pub mod fasthash;
pub mod generator;
pub mod image;
pub mod kube;
pub mod log;
pub mod network;
pub mod output;
pub mod parallel;
pub mod pod;
pub mod podman;
pub mod resource;
pub mod search;
pub mod settings;
pub mod volume;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::unit::{Origin, UnitFile};

pub use generator::{generator_main, generator_status};

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
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 7] = [
        Kind::Container,
        Kind::Volume,
        Kind::Network,
        Kind::Kube,
        Kind::Pod,
        Kind::Image,
        Kind::Build,
    ];

    /// The kind of a file name, from its extension.
    pub fn from_file_name(name: &str) -> Option<Kind> {
        let ext = name.rsplit_once('.')?.1;
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
        }
    }

    /// Processing priority: images first, pods last (5.4.2 main.go).
    pub fn priority(self) -> u8 {
        match self {
            Kind::Image => 1,
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
#[derive(Debug, Default)]
pub struct Context {
    /// True in user (rootless) mode.
    pub user: bool,
    /// argv[0] of podman commands: `$PODMAN` or `/usr/bin/podman`.
    pub podman: String,
    /// Every loaded file by file name.
    pub units: HashMap<String, UnitInfo>,
    /// Warnings produced by the current conversion; the framework logs them.
    pub warnings: Vec<String>,
    /// The podman release that the current file's keys from after Quadlet 5.4.2 are checked
    /// against ([`compat::NEW_KEYS`]); `None` refuses them as 5.4.2 does (`PodmanVersion=off`,
    /// a version podman did not tell, or a file that uses none of them, for which podman is not
    /// asked). Set by the framework before each conversion.
    pub podman_version: Option<compat::Version>,
}

impl Context {
    /// Records a warning (logged at warning level by the framework).
    pub fn warn(&mut self, msg: impl Into<String>) {
        self.warnings.push(msg.into());
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
}

impl ConvertError {
    /// An error not tied to a line.
    pub fn new(message: impl Into<String>) -> Self {
        ConvertError {
            message: message.into(),
            location: None,
            hint: None,
        }
    }

    /// An error about the last assignment of `key` in `group` of `q` (location added if the key
    /// exists).
    pub fn at_key(q: &Quadlet, group: &str, key: &str, message: impl Into<String>) -> Self {
        let location = q
            .unit
            .last_line(group, key)
            .map(|l| describe_location(&q.unit, l.origin));
        ConvertError {
            message: message.into(),
            location,
            hint: None,
        }
    }

    /// An error about a specific line.
    pub fn at_origin(q: &Quadlet, origin: Origin, message: impl Into<String>) -> Self {
        ConvertError {
            message: message.into(),
            location: (origin.line != 0).then(|| describe_location(&q.unit, origin)),
            hint: None,
        }
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
pub type ConvertFn = fn(&Quadlet, &mut Context) -> Result<UnitFile, ConvertError>;
