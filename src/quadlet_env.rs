//! The generator's inputs from the process environment and its configuration file, in one
//! place for every caller that must convert exactly as the installed generator does (the
//! `unitwright-generator` program and `unitwright quadlet ...`). It is kept out of
//! [`crate::quadlet`], which reads no environment variable and no configuration file: what is
//! read here reaches the conversion as arguments ([`SearchInputs`], [`ConvertOptions`]).
//!
//! * the search path: `HOME`, `XDG_CONFIG_HOME`, `XDG_RUNTIME_DIR`, `QUADLET_UNIT_DIRS` and
//!   the real uid ([`search_inputs`]);
//! * the conversion: `PODMAN` (else `/usr/bin/podman`), `UNITWRIGHT` (the instance-settings
//!   wrapper), the podman release from `UNITWRIGHT_PODMAN_VERSION`, else `PodmanVersion=` in
//!   `[Generator]` of the first configuration file that sets it ([`CONFIG_FILES`]), else
//!   `auto`; the detected version cached in `/run/unitwright` (system) or
//!   `$XDG_RUNTIME_DIR/unitwright` (user) ([`convert_options`]).
//!
//! An empty variable counts as unset. Invalid settings are ignored with a warning, which goes
//! to the caller's `warn`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::quadlet::compat::{Setting, CONFIG_FILES, VERSION_ENV};
use crate::quadlet::search::SearchInputs;
use crate::quadlet::ConvertOptions;

/// Where a system generator caches the detected podman version (tmpfs: gone at boot, kept
/// across daemon-reloads; see [`crate::quadlet::compat::Compat::with_cache`]).
pub const SYSTEM_VERSION_CACHE: &str = "/run/unitwright";

/// An environment variable, `None` when unset or empty.
pub fn env_nonempty(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// What the search path depends on, from the environment.
pub fn search_inputs(user: bool) -> SearchInputs {
    SearchInputs {
        user,
        uid: rustix::process::getuid().as_raw(),
        home: env_nonempty("HOME").map(PathBuf::from),
        config_home: env_nonempty("XDG_CONFIG_HOME").map(PathBuf::from),
        runtime_dir: env_nonempty("XDG_RUNTIME_DIR").map(PathBuf::from),
        unit_dirs: env_nonempty("QUADLET_UNIT_DIRS").map(|l| std::env::split_paths(&l).collect()),
    }
}

/// The conversion options of the generator in this environment (see the module
/// documentation); problems with the settings go to `warn`.
pub fn convert_options(user: bool, warn: &mut dyn FnMut(String)) -> ConvertOptions {
    ConvertOptions {
        user,
        podman: std::env::var("PODMAN")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/usr/bin/podman".to_owned()),
        podman_version: podman_version_setting(warn),
        version_cache: if user {
            env_nonempty("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join("unitwright"))
        } else {
            Some(PathBuf::from(SYSTEM_VERSION_CACHE))
        },
        unitwright: std::env::var("UNITWRIGHT").unwrap_or_default(),
        collect_errors: false,
    }
}

/// The `PodmanVersion=` setting, first match wins: `$UNITWRIGHT_PODMAN_VERSION`, then
/// `PodmanVersion=` in `[Generator]` of the first configuration file that sets it
/// ([`CONFIG_FILES`]), else `auto`.
pub fn podman_version_setting(warn: &mut dyn FnMut(String)) -> Setting {
    if let Ok(v) = std::env::var(VERSION_ENV) {
        if let Some(s) = Setting::parse(&v) {
            return s;
        }
        warn(format!(
            "{VERSION_ENV}={v:?} is not valid (expected auto, off or a version such as 4.3.1); ignored"
        ));
    }
    for path in CONFIG_FILES {
        if let Some(s) = setting_from_file(Path::new(path), warn) {
            return s;
        }
    }
    Setting::Auto
}

/// The setting of one configuration file, `None` if it does not exist or says nothing valid.
pub fn setting_from_file(path: &Path, warn: &mut dyn FnMut(String)) -> Option<Setting> {
    if !path.exists() {
        return None;
    }
    let unit = match crate::unit::parse_file(path) {
        Ok(u) => u,
        Err(e) => {
            warn(format!("ignoring {}: {e}", path.display()));
            return None;
        }
    };
    let line = unit.last_line("Generator", "PodmanVersion")?;
    let parsed = Setting::parse(&line.value);
    if parsed.is_none() {
        warn(format!(
            "{}:{}: PodmanVersion={:?} is not valid (expected auto, off or a version such as 4.3.1); ignored",
            path.display(),
            line.origin.line,
            line.value
        ));
    }
    parsed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::quadlet::Version;

    #[test]
    fn the_config_file_sets_the_version_and_bad_values_are_ignored_with_a_warning() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("generator.conf");
        let mut warnings = Vec::new();
        let mut warn = |w: String| warnings.push(w);
        std::fs::write(&f, "[Generator]\nPodmanVersion=4.3.1\n").unwrap();
        assert_eq!(
            setting_from_file(&f, &mut warn),
            Some(Setting::Fixed(Version(4, 3, 1)))
        );
        std::fs::write(&f, "[Generator]\nPodmanVersion=auto\n").unwrap();
        assert_eq!(setting_from_file(&f, &mut warn), Some(Setting::Auto));
        std::fs::write(&f, "[Generator]\nPodmanVersion=soon\n").unwrap();
        assert_eq!(setting_from_file(&f, &mut warn), None);
        assert_eq!(setting_from_file(&d.path().join("absent"), &mut warn), None);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("generator.conf:2: PodmanVersion=\"soon\" is not valid"));
    }
}
