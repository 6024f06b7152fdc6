//! Where Quadlet files are searched (Quadlet 5.4.2 `getUnitDirs`, `appendSubPaths`) and the
//! directory walk that reads every directory once.
//!
//! Nothing here reads the environment: [`search_paths`] takes what the generator reads from it
//! ([`SearchInputs`]) and returns the roots, [`scan`] walks them.
//!
//! * An override list (Quadlet's `QUADLET_UNIT_DIRS`, colon-separated absolute paths) replaces
//!   the search path; the first entry that is not absolute is reported and ends the list.
//! * System mode: `/run/containers/systemd`, `/etc/containers/systemd` (without its `users`
//!   sub-tree), `/usr/share/containers/systemd`.
//! * User mode: `$XDG_RUNTIME_DIR/containers/systemd` (if given), `$XDG_CONFIG_HOME` or
//!   `$HOME/.config` + `/containers/systemd` (if neither is given: a warning, and the `/etc` dirs
//!   are skipped too, as in 5.4.2), `/etc/containers/systemd/users` (without sub-trees whose first
//!   component is numeric, i.e. other users' uid dirs), `/etc/containers/systemd/users/$UID`.
//! * Every root is walked recursively, depth first, entries in name order; symlinked directories
//!   are followed (a visited set prevents loops); directories ending in `.d` are drop-in
//!   directories and are not walked.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use super::{Diagnostic, Severity};

/// System-mode search roots, highest priority first.
pub const SYSTEM_DIRS: [&str; 3] = [
    "/run/containers/systemd",
    "/etc/containers/systemd",
    "/usr/share/containers/systemd",
];

/// The admin directory whose `users` sub-tree holds per-user Quadlets.
pub const ADMIN_DIR: &str = "/etc/containers/systemd";

/// What a directory entry is (symlinks resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (or a symlink to one).
    File,
    /// A directory (or a symlink to one).
    Dir,
    /// Anything else, or a dangling symlink.
    Other,
}

/// One entry of a walked directory.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's file name.
    pub name: OsString,
    /// What it is.
    pub kind: EntryKind,
}

/// A walked directory: its resolved path and its entries sorted by name.
#[derive(Debug, Clone)]
pub struct Dir {
    /// The resolved (symlink-free) path.
    pub path: PathBuf,
    /// The entries, sorted by name.
    pub entries: Vec<Entry>,
}

/// How the sub-tree of a root is filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Walk everything.
    None,
    /// System mode: skip `/etc/containers/systemd/users/**`.
    NoUsers,
    /// User mode under `users/`: skip sub-trees whose first component is numeric.
    NonNumericUsers,
}

/// All directories to read, in precedence order.
#[derive(Debug, Default)]
pub struct Scan {
    /// Walked directories, highest priority first.
    pub dirs: Vec<Dir>,
    /// Problems met on the way, in order.
    pub problems: Vec<Diagnostic>,
}

fn is_numeric(s: &std::ffi::OsStr) -> bool {
    s.as_encoded_bytes().iter().all(u8::is_ascii_digit)
}

fn allowed(path: &Path, filter: Filter, users: &Path) -> bool {
    match filter {
        Filter::None => true,
        Filter::NoUsers => !path.starts_with(users),
        Filter::NonNumericUsers => match path.strip_prefix(users) {
            Ok(rest) => rest
                .components()
                .next()
                .map_or(true, |c| !is_numeric(c.as_os_str())),
            Err(_) => true,
        },
    }
}

/// What [`search_paths`] needs to know about the process (the generator reads it from the
/// environment; an in-process caller may pass anything).
#[derive(Debug, Clone, Default)]
pub struct SearchInputs {
    /// User (rootless) mode.
    pub user: bool,
    /// The user's uid (user mode: selects `/etc/containers/systemd/users/$UID`).
    pub uid: u32,
    /// `$HOME`, if known.
    pub home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`, if set.
    pub config_home: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`, if set.
    pub runtime_dir: Option<PathBuf>,
    /// Replaces the whole search path when set (Quadlet's `QUADLET_UNIT_DIRS`).
    pub unit_dirs: Option<Vec<PathBuf>>,
}

/// A directory to walk, with the part of its sub-tree that is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRoot {
    /// The directory as configured (it is resolved when walked).
    pub path: PathBuf,
    /// Which sub-trees are skipped.
    pub filter: Filter,
}

/// The search roots for `inputs`, highest priority first, and the problems found (an override
/// entry that is not absolute; user mode without a home).
///
/// ```
/// use std::path::{Path, PathBuf};
/// use unitwright::quadlet::search::{search_paths, SearchInputs};
///
/// let inputs = SearchInputs {
///     user: true,
///     uid: 1000,
///     home: Some(PathBuf::from("/home/ann")),
///     runtime_dir: Some(PathBuf::from("/run/user/1000")),
///     ..SearchInputs::default()
/// };
/// let (roots, problems) = search_paths(&inputs);
/// assert!(problems.is_empty());
/// assert_eq!(roots[0].path, Path::new("/run/user/1000/containers/systemd"));
/// assert_eq!(roots[1].path, Path::new("/home/ann/.config/containers/systemd"));
/// assert_eq!(roots[3].path, Path::new("/etc/containers/systemd/users/1000"));
/// ```
pub fn search_paths(inputs: &SearchInputs) -> (Vec<SearchRoot>, Vec<Diagnostic>) {
    let mut roots = Vec::new();
    let mut problems = Vec::new();
    let root = |path: PathBuf, filter| SearchRoot { path, filter };
    if let Some(list) = &inputs.unit_dirs {
        for dir in list {
            if !dir.is_absolute() {
                problems.push(Diagnostic::new(
                    Severity::Error,
                    format!("{} not a valid file path", dir.display()),
                ));
                break;
            }
            roots.push(root(dir.clone(), Filter::None));
        }
        return (roots, problems);
    }
    if inputs.user {
        if let Some(rt) = &inputs.runtime_dir {
            roots.push(root(rt.join("containers/systemd"), Filter::None));
        }
        let config = inputs
            .config_home
            .clone()
            .or_else(|| inputs.home.as_ref().map(|h| h.join(".config")));
        let Some(config) = config else {
            problems.push(Diagnostic::new(
                Severity::Warning,
                "Warning: neither $XDG_CONFIG_HOME nor $HOME are defined",
            ));
            return (roots, problems);
        };
        roots.push(root(config.join("containers/systemd"), Filter::None));
        let users_dir = Path::new(ADMIN_DIR).join("users");
        roots.push(root(users_dir.clone(), Filter::NonNumericUsers));
        roots.push(root(users_dir.join(inputs.uid.to_string()), Filter::None));
    } else {
        for d in SYSTEM_DIRS {
            roots.push(root(PathBuf::from(d), Filter::NoUsers));
        }
    }
    (roots, problems)
}

struct Walker {
    scan: Scan,
    visited: std::collections::HashSet<PathBuf>,
    users: PathBuf,
}

impl Walker {
    /// Walks `path`, which is already resolved.
    fn walk(&mut self, path: &Path, filter: Filter) {
        if self.visited.contains(path)
            || path.as_os_str().as_encoded_bytes().ends_with(b".d")
            || !allowed(path, filter, &self.users)
        {
            return;
        }
        let rd = match fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.scan.problems.push(Diagnostic::new(
                        Severity::Debug,
                        format!("error reading directory {:?}: {e}", path.display()),
                    ));
                }
                return;
            }
        };
        self.visited.insert(path.to_owned());
        let mut entries: Vec<Entry> = rd
            .filter_map(Result::ok)
            .map(|de| {
                let kind = match de.file_type() {
                    Ok(t) if t.is_file() => EntryKind::File,
                    Ok(t) if t.is_dir() => EntryKind::Dir,
                    Ok(t) if t.is_symlink() => match fs::metadata(de.path()) {
                        Ok(m) if m.is_file() => EntryKind::File,
                        Ok(m) if m.is_dir() => EntryKind::Dir,
                        _ => EntryKind::Other,
                    },
                    _ => EntryKind::Other,
                };
                Entry {
                    name: de.file_name(),
                    kind,
                }
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let subdirs: Vec<OsString> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Dir)
            .map(|e| e.name.clone())
            .collect();
        self.scan.dirs.push(Dir {
            path: path.to_owned(),
            entries,
        });
        for name in subdirs {
            let sub = path.join(&name);
            // Real directories under a resolved path are resolved already; only symlinks need it.
            let resolved = match fs::symlink_metadata(&sub) {
                Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(&sub) {
                    Ok(p) => p,
                    Err(_) => continue,
                },
                _ => sub,
            };
            self.walk(&resolved, filter);
        }
    }

    fn root(&mut self, path: &Path, filter: Filter) {
        match fs::canonicalize(path) {
            Ok(p) => {
                if p.is_dir() {
                    self.walk(&p, filter);
                }
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.scan.problems.push(Diagnostic::new(
                        Severity::Debug,
                        format!("error resolving path {:?}: {e}", path.display()),
                    ));
                }
            }
        }
    }
}

/// Walks `roots` in order (see the module documentation). Problems (directories that exist but
/// cannot be read) are in [`Scan::problems`], at debug level as in Quadlet.
pub fn scan(roots: &[SearchRoot]) -> Scan {
    // Only the default search path filters the `users` sub-tree (by its resolved path).
    let users_dir = Path::new(ADMIN_DIR).join("users");
    let users = if roots.iter().any(|r| r.filter != Filter::None) {
        fs::canonicalize(&users_dir).unwrap_or(users_dir)
    } else {
        PathBuf::new()
    };
    let mut w = Walker {
        scan: Scan::default(),
        visited: std::collections::HashSet::new(),
        users,
    };
    for r in roots {
        w.root(&r.path, r.filter);
    }
    w.scan
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numeric_user_dirs_are_filtered_in_user_mode() {
        let users = Path::new("/etc/containers/systemd/users");
        assert!(allowed(users, Filter::NonNumericUsers, users));
        assert!(allowed(
            &users.join("shared"),
            Filter::NonNumericUsers,
            users
        ));
        assert!(!allowed(
            &users.join("1000"),
            Filter::NonNumericUsers,
            users
        ));
        assert!(!allowed(
            &users.join("1000/x"),
            Filter::NonNumericUsers,
            users
        ));
        assert!(!allowed(&users.join("0"), Filter::NoUsers, users));
        assert!(allowed(
            Path::new("/etc/containers/systemd"),
            Filter::NoUsers,
            users
        ));
    }
}
