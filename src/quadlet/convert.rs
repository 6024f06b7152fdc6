//! Converting a set of loaded Quadlet files into service units: what the generator does between
//! loading and writing, usable in process ([`convert_all`], or [`Converter`] one unit at a
//! time).
//!
//! Units are converted in Quadlet's order ([`sort_for_conversion`]: images, then volumes and
//! networks, builds, containers and kubes, pods last; within a priority, load order), because a
//! unit uses the resource names set by the ones converted before it (a pod lists the containers
//! that join it).

use std::collections::HashMap;
use std::path::PathBuf;

use super::compat::{Compat, Setting};
use super::fasthash::FastMap;
use super::versions::{self, NEWEST_KNOWN};
use super::{Context, ConvertError, Diagnostic, Kind, Quadlet, Severity, UnitInfo};
use crate::unit::UnitFile;

/// What a conversion needs to know beyond the files; nothing is read from the environment or
/// from configuration files.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// User (rootless) mode.
    pub user: bool,
    /// argv\[0\] of the podman commands (the generator passes `$PODMAN` or `/usr/bin/podman`).
    pub podman: String,
    /// The podman release to write units for (see [`super::compat`] and [`super::versions`]);
    /// by default [`Setting::Auto`]: the installed podman is asked once, when there are units.
    pub podman_version: Setting,
    /// Where [`Setting::Auto`] caches the detected version (see
    /// [`super::compat::Compat::with_cache`]); `None`: not cached.
    pub version_cache: Option<PathBuf>,
    /// The `unitwright` binary that wraps commands of templates with instance settings
    /// (absolute; empty means `/usr/bin/unitwright`; see [`super::settings`]).
    pub unitwright: String,
    /// Report every error of a file that fails, not only the first (for `quadlet verify`):
    /// after the conversion proper, a failed file is converted once more in collecting mode
    /// ([`Context::collecting`]) on a copy of the run's state, and the further errors found
    /// are added to its diagnostics. The conversion proper, its unit (none) and its effect on
    /// the other files are those of the generator, which leaves this off.
    pub collect_errors: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            user: false,
            podman: "/usr/bin/podman".to_owned(),
            podman_version: Setting::Auto,
            version_cache: None,
            unitwright: String::new(),
            collect_errors: false,
        }
    }
}

/// The result of converting one file.
#[derive(Debug)]
pub struct Converted {
    /// The source file's name (`web.container`).
    pub source: String,
    /// The source file's path.
    pub path: PathBuf,
    /// The service unit, without the generator's header comment; `None` if the file could not
    /// be converted (the reason is among the diagnostics, at error level).
    pub unit: Option<UnitFile>,
    /// The unit's file name (`web.service`), also when the conversion failed.
    pub service_file_name: String,
    /// The `[Install]` symlinks to create, relative to the unit directory
    /// (`default.target.wants/web.service`), pointing at [`Self::service_file_name`].
    pub links: Vec<PathBuf>,
    /// Errors, warnings and debug records of this conversion, in order.
    pub diagnostics: Vec<Diagnostic>,
    /// The source file (or one of its drop-ins) is not readable by others (e.g. 0600: it may
    /// hold secrets): write the unit with mode 0600, not 0644.
    pub private: bool,
}

impl Converted {
    /// True if the unit was produced.
    pub fn ok(&self) -> bool {
        self.unit.is_some()
    }
}

/// Sorts units into conversion order (stable: within a priority, the given order).
pub fn sort_for_conversion(units: &mut [Quadlet]) {
    units.sort_by_key(|q| q.kind.priority());
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
        // Containers join a pod by its name since 5.6 (`--pod NAME`).
        Kind::Pod => super::pod::pod_name(q),
        Kind::Build => q
            .unit
            .lookup_all("Build", "ImageTag")
            .first()
            .map(|s| (*s).to_owned())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Converts units one at a time, in the order of [`sort_for_conversion`]; it knows every unit of
/// the run (for references between them) and which service names were produced already.
#[derive(Debug)]
pub struct Converter<'u> {
    ctx: Context,
    compat: Compat,
    produced: FastMap<String, &'u str>,
    told_newer: bool,
    collect_errors: bool,
}

impl<'u> Converter<'u> {
    /// A converter for a run over `units` (all of them, in any order). Knowing the podman
    /// release targeted (with `auto`, podman is asked here when there are units), it adapts
    /// how the units read their files and name their services to that release
    /// ([`versions::MATCHED_QUOTES`], [`versions::TEMPLATE_RESOURCES`]).
    pub fn new(units: &mut [Quadlet], options: &ConvertOptions) -> Self {
        let mut compat = Compat::with_setting(&options.podman, options.podman_version);
        if let Some(dir) = &options.version_cache {
            compat = compat.with_cache(dir);
        }
        let podman_version = if units.is_empty() {
            None
        } else {
            compat.version()
        };
        let mut ctx = Context {
            user: options.user,
            podman: options.podman.clone(),
            unitwright: options.unitwright.clone(),
            units: HashMap::with_capacity(units.len()),
            podman_version,
            ..Context::default()
        };
        for q in units.iter_mut() {
            if ctx.writes(versions::MATCHED_QUOTES) {
                q.unit.matched_quotes = true;
            }
            if ctx.writes(versions::TEMPLATE_RESOURCES)
                && !q.unit.has_key(q.kind.group(), "ServiceName")
            {
                if let Some(template) = q.base_name().strip_suffix('@') {
                    q.service_name = [template, q.kind.service_suffix(), "@"].concat();
                }
            }
        }
        for q in units.iter() {
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
        Converter {
            compat,
            produced: FastMap::with_capacity_and_hasher(
                units.len(),
                std::hash::BuildHasherDefault::default(),
            ),
            told_newer: false,
            collect_errors: options.collect_errors,
            ctx,
        }
    }

    /// Converts `q`.
    pub fn convert(&mut self, q: &'u Quadlet) -> Converted {
        let ctx = &mut self.ctx;
        ctx.podman_version = self.compat.version();
        if ctx.writes(versions::WARN_SERVICE_USER) {
            for key in ["User", "Group", "DynamicUser"] {
                if q.unit.has_key("Service", key) {
                    ctx.warn(format!("Warning: using key {key} in the Service group is not supported - use at your own risk"));
                }
            }
        }
        if matches!(q.kind, Kind::Container | Kind::Volume | Kind::Image)
            && !super::settings::image_from_settings(q)
        {
            super::common::warn_if_ambiguous_image(q, ctx);
        }
        let mut diagnostics = self.compat.take_notes();
        if let Some(v) = ctx
            .podman_version
            .filter(|v| (v.0, v.1) > (NEWEST_KNOWN.0, NEWEST_KNOWN.1))
        {
            if !self.told_newer {
                self.told_newer = true;
                diagnostics.push(Diagnostic::new(
                    Severity::Notice,
                    format!("podman {v} is newer than the newest Quadlet release known here ({NEWEST_KNOWN}); writing units as that release does"),
                ));
            }
        }
        let converted = convert_unit(&self.compat, q, ctx);
        if ctx.writes(versions::ENV_FROM_HOST) {
            ctx.warnings
                .extend(super::common::unsplittable_value_warnings(q));
        }
        for w in ctx.warnings.drain(..) {
            let mut d = Diagnostic::new(Severity::Warning, w);
            d.file = Some(q.path.clone());
            diagnostics.push(d);
        }
        let service_file_name = q.service_file_name();
        let mut out = Converted {
            source: q.name.clone(),
            path: q.path.clone(),
            unit: None,
            service_file_name,
            links: Vec::new(),
            diagnostics,
            private: false,
        };
        let service = match converted {
            Ok(s) => s,
            Err(e) => {
                self.fail(q, e, &mut out.diagnostics);
                return out;
            }
        };
        if let Err(e) = check_loadable(q, &out.service_file_name, &service) {
            self.fail(q, e, &mut out.diagnostics);
            return out;
        }
        if let Some(prev) = self
            .produced
            .insert(out.service_file_name.clone(), q.name.as_str())
        {
            let mut d = Diagnostic::new(
                Severity::Warning,
                format!(
                    "{} and {} both generate {}; the unit from {} replaces the other",
                    prev, q.name, out.service_file_name, q.name
                ),
            );
            d.file = Some(q.path.clone());
            out.diagnostics.push(d);
        }
        // Most units have no [Install] group: no links and nothing to check.
        let install = service.has_group("Install");
        if install {
            out.links = install_links(
                &out.service_file_name,
                &service,
                ctx.writes(versions::UPHELD_BY),
            );
        }
        for key in ["WantedBy", "RequiredBy", "UpheldBy"]
            .into_iter()
            .filter(|_| install)
        {
            for t in service.lookup_all_strv("Install", key) {
                if t.contains('/') {
                    let mut d = Diagnostic::new(
                        Severity::Warning,
                        format!("{}: {key}={t} is not a unit name (it contains \"/\"); no link is made for it", q.name),
                    );
                    d.file = Some(q.path.clone());
                    d.key = Some(key.to_owned());
                    out.diagnostics.push(d);
                }
            }
        }
        out.private = is_private(q);
        out.unit = Some(service);
        out
    }
}

impl Converter<'_> {
    /// Records the error that ends the conversion of `q`, and with
    /// [`ConvertOptions::collect_errors`] the others the file has.
    fn fail(&self, q: &Quadlet, first: ConvertError, diagnostics: &mut Vec<Diagnostic>) {
        let more = if self.collect_errors {
            self.all_errors(q)
        } else {
            Vec::new()
        };
        // In the order found; the first error is normally among them.
        for d in more
            .into_iter()
            .chain([first])
            .map(|e| e.into_diagnostic(q))
        {
            if !diagnostics.contains(&d) {
                diagnostics.push(d);
            }
        }
    }

    /// Every error of `q`: a collecting conversion ([`Context::collecting`]) on a copy of the
    /// run's state, so that the run itself (the resource names and pod members the other files
    /// see) stays the generator's.
    fn all_errors(&self, q: &Quadlet) -> Vec<ConvertError> {
        let mut ctx = self.ctx.clone();
        ctx.warnings.clear();
        ctx.collecting = true;
        let last = convert_unit(&self.compat, q, &mut ctx)
            .and_then(|s| check_loadable(q, &q.service_file_name(), &s));
        let mut errors = ctx.collected.into_inner();
        if let Err(e) = last {
            errors.push(e);
        }
        errors
    }
}

/// The unit of `q`: the kind's conversion, whose typed command lines the settings wrapper and the
/// adaptation to older podman releases (`compat`) edit, written once, here.
fn convert_unit(compat: &Compat, q: &Quadlet, ctx: &mut Context) -> Result<UnitFile, ConvertError> {
    let mut service = (q.kind.converter())(q, ctx)?;
    super::settings::apply(q, ctx, &mut service)?;
    let mut warnings = std::mem::take(&mut ctx.warnings);
    let adapted = compat.adapt_with(q, &mut service, &mut warnings, &|e| ctx.recover(e));
    ctx.warnings = warnings;
    adapted?;
    Ok(service.finish(ctx.writes(versions::ESCAPE_SPACE)))
}

/// systemd's `LONG_LINE_MAX` (1 MiB): the longest line its unit file parser reads.
pub const LONG_LINE_MAX: usize = 1024 * 1024;

/// Refuses a unit systemd could not load: a name that is not a valid unit name (a space, an
/// empty stem as in `.container`, a `/` that would also put it outside the output directory,
/// more than 255 bytes) or a line longer than [`LONG_LINE_MAX`].
fn check_loadable(q: &Quadlet, file_name: &str, service: &UnitFile) -> Result<(), ConvertError> {
    if file_name.contains('/') {
        // 5.4.2 wrote such a unit outside the output directory.
        return Err(ConvertError::at_key(
            q,
            q.kind.group(),
            "ServiceName",
            format!("ServiceName={} would put the unit outside the output directory; use a plain unit name", q.service_name),
        ));
    }
    if crate::escape::classify(file_name).is_none() {
        let mut e = if q.unit.has_key(q.kind.group(), "ServiceName") {
            ConvertError::at_key(q, q.kind.group(), "ServiceName", "")
        } else {
            ConvertError::new("")
        };
        e.message = format!(
            "{file_name:?} is not a unit name systemd can load (1 to 255 bytes of ASCII letters, digits and \":-_.\\\", one \"@\", a non-empty name before the suffix)"
        );
        e.hint = Some(
            "rename the file (systemd-escape makes a name from any string) or set ServiceName="
                .to_owned(),
        );
        return Err(e);
    }
    for g in &service.groups {
        for l in &g.lines {
            let len = if l.comment {
                l.value.len()
            } else {
                l.key.len() + 1 + l.value.len()
            };
            if len > LONG_LINE_MAX {
                let mut e = ConvertError::at_origin(
                    q,
                    l.origin,
                    format!(
                        "the line {}= in [{}] would be {len} bytes long; systemd reads lines of at most {LONG_LINE_MAX} bytes",
                        l.key, g.name
                    ),
                );
                e.at.get_or_insert_with(Box::default).key = Some(l.key.clone());
                return Err(e);
            }
        }
    }
    Ok(())
}

/// True if the file of `q` or one of its drop-ins cannot be read by others (see
/// [`Converted::private`]).
fn is_private(q: &Quadlet) -> bool {
    use std::os::unix::fs::PermissionsExt;
    // The first source is the file itself (when it was read from disk).
    let paths = if q.unit.sources.is_empty() {
        std::slice::from_ref(&q.path)
    } else {
        &q.unit.sources[..]
    };
    paths
        .iter()
        .any(|p| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o004 == 0))
}

/// Converts every unit of `units` (sorting them into conversion order first) and returns one
/// result per unit, in that order.
///
/// ```
/// use std::path::Path;
/// use unitwright::quadlet::{convert_all, ConvertOptions, Quadlet};
///
/// let q = Quadlet::from_text(Path::new("/etc/containers/systemd/web.container"),
///     "[Container]\nImage=docker.io/library/nginx\n[Install]\nWantedBy=default.target\n")
///     .unwrap();
/// let mut units = vec![q];
/// let results = convert_all(&mut units, &ConvertOptions::default());
/// let web = &results[0];
/// assert_eq!(web.service_file_name, "web.service");
/// assert_eq!(web.links[0], Path::new("default.target.wants/web.service"));
/// let text = web.unit.as_ref().unwrap().to_text();
/// assert!(text.contains("ExecStart=/usr/bin/podman run --name systemd-%N"));
/// ```
pub fn convert_all(units: &mut [Quadlet], options: &ConvertOptions) -> Vec<Converted> {
    sort_for_conversion(units);
    let mut c = Converter::new(units, options);
    let units: &[Quadlet] = units;
    units.iter().map(|q| c.convert(q)).collect()
}

/// Quadlet's `enableServiceFile`: the symlinks for `[Install]` `Alias=`, `WantedBy=` and
/// `RequiredBy=` (relative to the output dir), and from 5.5 on `UpheldBy=` when `upheld_by`
/// ([`versions::UPHELD_BY`]). A template (`foo@.service`) gets these links only with
/// `DefaultInstance=` (named `foo@<instance>.service`); values containing `/` are ignored.
/// `Also=` is not used.
pub fn install_links(file_name: &str, service: &UnitFile, upheld_by: bool) -> Vec<PathBuf> {
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
        let keys = [
            ("WantedBy", "wants"),
            ("RequiredBy", "requires"),
            ("UpheldBy", "upholds"),
        ];
        for (key, suffix) in &keys[..if upheld_by { 3 } else { 2 }] {
            for t in service.lookup_all_strv("Install", key) {
                if !t.contains('/') {
                    links.push(PathBuf::from(
                        [t.as_str(), ".", *suffix, "/", &link_name].concat(),
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
    use std::path::Path;

    /// Line and key of each error.
    type Errors = Vec<(Option<u32>, Option<String>)>;

    fn errors(text: &str, collect_errors: bool) -> (Errors, bool) {
        errors_of("web.container", text, collect_errors)
    }

    /// The errors of the file `name` (with `text`) converted beside a good `data.volume`.
    fn errors_of(name: &str, text: &str, collect_errors: bool) -> (Errors, bool) {
        errors_for(Setting::Off, name, text, collect_errors)
    }

    /// [`errors_of`] for the podman release `podman_version`.
    fn errors_for(
        podman_version: Setting,
        name: &str,
        text: &str,
        collect_errors: bool,
    ) -> (Errors, bool) {
        let q = Quadlet::from_text(&Path::new("/q").join(name), text).unwrap();
        let vol = Quadlet::from_text(Path::new("/q/data.volume"), "[Volume]\n").unwrap();
        let options = ConvertOptions {
            podman_version,
            collect_errors,
            ..ConvertOptions::default()
        };
        let mut units = vec![q, vol];
        let results = convert_all(&mut units, &options);
        let web = results.iter().find(|c| c.source == name).unwrap();
        let errs = web
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| (d.line, d.key.clone()))
            .collect();
        (errs, web.ok())
    }

    #[test]
    fn collecting_finds_every_error_and_still_produces_no_unit() {
        let text = "[Container]\nImag=x\nExposeHostPort=abc\nNetwork=no.network\nVolume=data.volume:/d\nRemapUsers=bogus\n";
        // The generator's way: the first error only.
        let (first, ok) = errors(text, false);
        assert!(!ok);
        assert_eq!(first, vec![(Some(2), Some("Imag".to_owned()))]);
        // Collecting: every one, the first among them; still no unit.
        let (all, ok) = errors(text, true);
        assert!(!ok);
        for e in [
            (Some(2), Some("Imag")),
            (None, Some("Image")),
            (Some(3), Some("ExposeHostPort")),
            (Some(4), Some("Network")),
            (Some(6), Some("RemapUsers")),
        ] {
            assert!(
                all.contains(&(e.0, e.1.map(str::to_owned))),
                "{e:?} not in {all:?}"
            );
        }
        // data.volume converted (it is fine): the reference to it is no error.
        assert!(
            !all.iter().any(|e| e.1.as_deref() == Some("Volume")),
            "{all:?}"
        );
        // A file without errors is the same either way.
        let good = "[Container]\nImage=localhost/x\n";
        assert_eq!(errors(good, true), errors(good, false));
        assert!(errors(good, true).1);
    }

    #[test]
    fn collecting_goes_past_the_first_error_in_every_kind() {
        type Want = &'static [(Option<u32>, Option<&'static str>)];
        let cases: [(&str, &str, Want); 4] = [
            (
                "app.build",
                "[Build]\nImagTag=x\nSetWorkingDirectory=yaml\n",
                &[
                    (Some(2), Some("ImagTag")),
                    (None, Some("ImageTag")),
                    (Some(3), Some("SetWorkingDirectory")),
                ],
            ),
            (
                "pull.image",
                "[Image]\nImag=x\n",
                &[(Some(2), Some("Imag")), (None, Some("Image"))],
            ),
            (
                "net.network",
                "[Network]\nSubnt=10.0.0.0/24\nGateway=10.0.0.1\n",
                &[(Some(2), Some("Subnt")), (Some(3), Some("Gateway"))],
            ),
            (
                "app.kube",
                "[Kube]\nYml=a.yaml\nSetWorkingDirectory=file\n",
                &[
                    (Some(2), Some("Yml")),
                    (None, None),
                    (Some(3), Some("SetWorkingDirectory")),
                ],
            ),
        ];
        for (name, text, want) in cases {
            let (first, ok) = errors_of(name, text, false);
            assert!(!ok, "{name}");
            assert_eq!(
                first.len(),
                1,
                "{name}: the generator's way has one: {first:?}"
            );
            let (all, ok) = errors_of(name, text, true);
            assert!(!ok, "{name}");
            for e in want {
                assert!(
                    all.contains(&(e.0, e.1.map(str::to_owned))),
                    "{name}: {e:?} not in {all:?}"
                );
            }
        }
    }

    #[test]
    fn collecting_reports_every_key_an_older_podman_refuses() {
        let v431 = || Setting::Fixed(super::super::compat::Version::parse("4.3.1").unwrap());
        let text =
            "[Container]\nImage=localhost/x\nHealthStartupCmd=true\nHealthStartupRetries=3\n";
        let (first, ok) = errors_for(v431(), "web.container", text, false);
        assert!(!ok);
        assert_eq!(first, vec![(Some(3), Some("HealthStartupCmd".to_owned()))]);
        let (all, ok) = errors_for(v431(), "web.container", text, true);
        assert!(!ok);
        assert_eq!(
            all,
            vec![
                (Some(3), Some("HealthStartupCmd".to_owned())),
                (Some(4), Some("HealthStartupRetries".to_owned())),
            ]
        );
    }

    #[test]
    fn collecting_reports_every_bad_instance_settings_key() {
        let text = "[Container]\nImage=localhost/x\nExposeHostPort=abc\n\
                    [X-Unitwright]\nInstanceSetings=yes\nRequiredSettings=OK 1BAD\n\
                    SecretSettings=ALSO-BAD\n";
        let (first, _) = errors(text, false);
        assert_eq!(first, vec![(Some(3), Some("ExposeHostPort".to_owned()))]);
        let (all, ok) = errors(text, true);
        assert!(!ok);
        assert_eq!(all.len(), 4, "{all:?}");
        for key in ["ExposeHostPort", "RequiredSettings", "SecretSettings"] {
            assert!(
                all.iter().any(|e| e.1.as_deref() == Some(key)),
                "{key} not in {all:?}"
            );
        }
        assert!(all.iter().any(|e| e.0 == Some(5)), "{all:?}");
    }
}
