//! Living beside podman's own Quadlet generator.
//!
//! podman 4.4 and later install `podman-system-generator` and `podman-user-generator`. Both
//! generators read the same Quadlet files and would write the same unit names into the same
//! generator directory, in parallel (systemd runs generators concurrently): whichever wrote last
//! would win, file by file. So only one of them may run.
//!
//! The rule: **unitwright-generator stands down while podman's generator is active** (it logs one
//! notice and exits 0 without writing). The administrator chooses unitwright by masking podman's
//! generator the way systemd masks any generator, a symlink to `/dev/null` with the same name in a
//! directory that comes earlier in the search path:
//!
//! ```text
//! ln -s /dev/null /etc/systemd/system-generators/podman-system-generator
//! ln -s /dev/null /etc/systemd/user-generators/podman-user-generator
//! ```
//!
//! No package touches `/etc` for this, and removing unitwright leaves podman's Quadlet working.
//!
//! "Active" is decided the way systemd's `generator_binary_paths()` and `conf_files_list_strv()`
//! select generators: the directories of `$SYSTEMD_GENERATOR_PATH` (colon-separated; an empty
//! last entry appends the defaults) or the default list; for the basename, the first directory
//! that has it decides; a symlink to `/dev/null` or an empty file masks it; a file that is not an
//! executable regular file is skipped.
//!
//! Only a run by the service manager stands down: `$SYSTEMD_EXEC_PID` equals the generator's own
//! pid (or is `*`, systemd's convention for tests), as in systemd's `log_setup_generator()`. A
//! manual run (`-dryrun`, debugging, the test suites) always generates.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// System generator directories, highest priority first (systemd 252; `/lib` is Debian's
/// `systemdsystemgeneratordir`, `/usr/lib` the merged-/usr one).
pub const SYSTEM_GENERATOR_DIRS: [&str; 5] = [
    "/run/systemd/system-generators",
    "/etc/systemd/system-generators",
    "/usr/local/lib/systemd/system-generators",
    "/lib/systemd/system-generators",
    "/usr/lib/systemd/system-generators",
];

/// User generator directories, highest priority first.
pub const USER_GENERATOR_DIRS: [&str; 4] = [
    "/run/systemd/user-generators",
    "/etc/systemd/user-generators",
    "/usr/local/lib/systemd/user-generators",
    "/usr/lib/systemd/user-generators",
];

/// The name of podman's generator for the mode.
pub fn podman_generator_name(user: bool) -> &'static str {
    if user {
        "podman-user-generator"
    } else {
        "podman-system-generator"
    }
}

/// The generator search path: `$SYSTEMD_GENERATOR_PATH` or the defaults.
pub fn generator_dirs(user: bool, env: Option<&str>) -> Vec<PathBuf> {
    let defaults: &[&str] = if user {
        &USER_GENERATOR_DIRS
    } else {
        &SYSTEM_GENERATOR_DIRS
    };
    let Some(env) = env else {
        return defaults.iter().map(PathBuf::from).collect();
    };
    let mut dirs: Vec<PathBuf> = env
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    if env.ends_with(':') {
        dirs.extend(defaults.iter().map(PathBuf::from));
    }
    dirs
}

/// What the search path says about one generator name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not installed (or only non-executable files).
    Absent,
    /// Masked at this path (`/dev/null` symlink or empty file).
    Masked(PathBuf),
    /// Would run from this path.
    Active(PathBuf),
}

/// The state of the generator `name` in `dirs` (see the module documentation).
pub fn generator_state(dirs: &[PathBuf], name: &str) -> State {
    for dir in dirs {
        let path = dir.join(name);
        let Ok(lmeta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if lmeta.file_type().is_symlink()
            && std::fs::read_link(&path).is_ok_and(|t| t == Path::new("/dev/null"))
        {
            return State::Masked(path);
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_file() && meta.len() == 0 {
            return State::Masked(path);
        }
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return State::Active(path);
        }
    }
    State::Absent
}

/// True when the service manager started this process as a generator (`$SYSTEMD_EXEC_PID`).
pub fn invoked_by_systemd() -> bool {
    std::env::var("SYSTEMD_EXEC_PID")
        .is_ok_and(|p| p == "*" || p.parse::<u32>().is_ok_and(|p| p == std::process::id()))
}

/// If this is a run by the service manager and podman's generator is active for this mode, the
/// path it runs from.
pub fn active_podman_generator(user: bool) -> Option<PathBuf> {
    if !invoked_by_systemd() {
        return None;
    }
    let env = std::env::var("SYSTEMD_GENERATOR_PATH").ok();
    match generator_state(
        &generator_dirs(user, env.as_deref()),
        podman_generator_name(user),
    ) {
        State::Active(p) => Some(p),
        State::Absent | State::Masked(_) => None,
    }
}

/// The notice logged when standing down.
pub fn stand_down_message(user: bool, podman_generator: &Path) -> String {
    let kind = if user { "user" } else { "system" };
    format!(
        "podman's Quadlet generator {} is active and writes the same units; not generating any. \
         To use unitwright instead, mask it: ln -s /dev/null /etc/systemd/{kind}-generators/{}",
        podman_generator.display(),
        podman_generator_name(user)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn exe(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn generator_path_env_replaces_or_extends_the_defaults() {
        assert_eq!(
            generator_dirs(true, Some("/a:/b")),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        let d = generator_dirs(false, Some("/a:"));
        assert_eq!(d[0], PathBuf::from("/a"));
        assert_eq!(d.len(), 1 + SYSTEM_GENERATOR_DIRS.len());
        assert_eq!(generator_dirs(true, None).len(), USER_GENERATOR_DIRS.len());
    }

    #[test]
    fn first_directory_decides_and_dev_null_masks() {
        let t = tempfile::tempdir().unwrap();
        let (hi, lo) = (t.path().join("hi"), t.path().join("lo"));
        std::fs::create_dir_all(&hi).unwrap();
        std::fs::create_dir_all(&lo).unwrap();
        let dirs = vec![hi.clone(), lo.clone()];
        let name = "podman-system-generator";
        assert_eq!(generator_state(&dirs, name), State::Absent);
        exe(&lo.join(name));
        assert_eq!(generator_state(&dirs, name), State::Active(lo.join(name)));
        std::os::unix::fs::symlink("/dev/null", hi.join(name)).unwrap();
        assert_eq!(generator_state(&dirs, name), State::Masked(hi.join(name)));
        std::fs::remove_file(hi.join(name)).unwrap();
        std::fs::write(hi.join(name), "").unwrap();
        assert_eq!(generator_state(&dirs, name), State::Masked(hi.join(name)));
        std::fs::write(hi.join(name), "not executable").unwrap();
        assert_eq!(generator_state(&dirs, name), State::Active(lo.join(name)));
    }
}
