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
//! * Every root is walked recursively, depth first, entries in name order; directories ending in
//!   `.d` are drop-in directories and are not walked.
//! * Symbolic links to directories are followed only while their target stays inside the root
//!   being walked (a visited set prevents loops); a link leading out of it is reported and not
//!   followed. Quadlet follows any such link (`EvalSymlinks`) and only filters the resolved
//!   path by the `users` rules, so a link could pull a sibling tree (another search directory,
//!   another user's files) into this one. A root that is itself a link is resolved first and
//!   may point anywhere: that is how a Quadlet directory is kept elsewhere (a git checkout).
//! * An entry named like a Quadlet file that is not a regular file or a link to one (a FIFO,
//!   socket or device, a dangling link, a link loop) is reported and skipped, never opened (a
//!   FIFO would block the generator).

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

/// `ELOOP` on Linux (too many levels of symbolic links).
const ELOOP: i32 = 40;

/// What a special file is, for a message.
fn special_kind(t: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a file"
    }
}

struct Walker {
    /// The resolved root being walked: symbolic links to directories outside it are not
    /// followed.
    root: PathBuf,
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
        let mut entries: Vec<Entry> = Vec::new();
        for de in rd.filter_map(Result::ok) {
            let kind = match de.file_type() {
                Ok(t) if t.is_file() => EntryKind::File,
                Ok(t) if t.is_dir() => EntryKind::Dir,
                Ok(t) if t.is_symlink() => match fs::metadata(de.path()) {
                    Ok(m) if m.is_file() => EntryKind::File,
                    Ok(m) if m.is_dir() => EntryKind::Dir,
                    Ok(m) => self.skipped(&de.path(), special_kind(m.file_type())),
                    Err(e) if e.raw_os_error() == Some(ELOOP) => {
                        self.skipped(&de.path(), "a symbolic link loop")
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        self.skipped(&de.path(), "a dangling symbolic link")
                    }
                    Err(e) => self.skipped(&de.path(), &format!("unreadable ({e})")),
                },
                Ok(t) => self.skipped(&de.path(), special_kind(t)),
                Err(_) => EntryKind::Other,
            };
            entries.push(Entry {
                name: de.file_name(),
                kind,
            });
        }
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
            if name.as_encoded_bytes().ends_with(b".d") {
                continue; // drop-in directories are read by the loader
            }
            let sub = path.join(&name);
            // Real directories under a resolved path are resolved already; only symlinks need it.
            let resolved = match fs::symlink_metadata(&sub) {
                Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(&sub) {
                    Ok(p) => p,
                    Err(_) => continue,
                },
                _ => sub,
            };
            if !resolved.starts_with(&self.root) {
                // Quadlet follows such a link anywhere; here a link leading out of the search
                // directory (into a sibling tree, another search directory, another user's
                // files) is not followed.
                self.scan.problems.push(Diagnostic::new(
                    Severity::Warning,
                    format!(
                        "{}: not followed: the symbolic link leads to {}, outside {}",
                        path.join(&name).display(),
                        resolved.display(),
                        self.root.display()
                    ),
                ));
                continue;
            }
            self.walk(&resolved, filter);
        }
    }

    /// Records that the entry at `path` is skipped because it is `what`, when its name is that
    /// of a Quadlet file (other entries are not ours to judge); returns [`EntryKind::Other`].
    fn skipped(&mut self, path: &Path, what: &str) -> EntryKind {
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(super::Kind::from_file_name)
            .is_some()
        {
            let mut d = Diagnostic::new(
                Severity::Warning,
                format!(
                    "{}: skipped: it is {what}, not a regular file",
                    path.display()
                ),
            );
            d.file = Some(path.to_owned());
            self.scan.problems.push(d);
        }
        EntryKind::Other
    }

    fn root(&mut self, path: &Path, filter: Filter) {
        match fs::canonicalize(path) {
            Ok(p) => {
                if p.is_dir() {
                    self.root.clone_from(&p);
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
        root: PathBuf::new(),
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
