//! Writing generated units and `[Install]` symlinks into the generator's output directory.
//!
//! Every file appears atomically: it is written to an unnamed `O_TMPFILE` file in the same
//! directory and then linked under its name (or, where that is not possible, to a temporary file
//! renamed over the final name), so systemd (or a concurrent generator run, podman #29004) never
//! sees a half-written unit. The two steps ([`OutputDir::prepare`], [`OutputDir::commit`]) may
//! run on different threads. Symlinks are created under a temporary name and renamed as well.
//! Files are fsync'ed before the rename unless the directory is on tmpfs/ramfs (the normal case,
//! `/run/systemd/generator`), where fsync is pointless and only costs time at boot.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rustix::fs::{AtFlags, Mode, OFlags};

use unitwright::quadlet::fasthash::FastSet;

/// `TMPFS_MAGIC` from `linux/magic.h`.
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// `RAMFS_MAGIC` from `linux/magic.h`.
const RAMFS_MAGIC: u64 = 0x8584_58f6;

/// An output directory, held open: files are created relative to its descriptor (`openat`,
/// `renameat`, `symlinkat`), which saves a path walk per system call.
#[derive(Debug)]
pub struct OutputDir {
    path: PathBuf,
    dir: OwnedFd,
    sync: bool,
    pid: u32,
    /// Sub-directories known to exist (avoids a mkdir per symlink).
    made_dirs: Mutex<FastSet<Vec<u8>>>,
    /// Whether the `O_TMPFILE` + `linkat` fast path works here.
    tmpfile: AtomicBool,
}

/// A written file without a name yet, from [`OutputDir::prepare`]; dropping it discards it.
#[derive(Debug)]
pub struct Unnamed(fs::File);

/// True if `path` is on a memory file system (tmpfs or ramfs), where fsync is useless.
pub fn is_memory_fs(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| {
        #[allow(clippy::cast_sign_loss, clippy::unnecessary_cast)]
        let magic = s.f_type as u64;
        magic == TMPFS_MAGIC || magic == RAMFS_MAGIC
    })
}

/// The pid in a temporary name made by [`tmp_name`] (`.#NAME.PID.tmp`).
fn temporary_owner(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(b".#")?.strip_suffix(b".tmp")?;
    let dot = rest.iter().rposition(|&b| b == b'.')?;
    let pid = &rest[dot + 1..];
    if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(pid).ok()?.parse().ok()
}

fn tmp_name(final_name: &OsStr, pid: u32) -> OsString {
    let mut n = OsString::from(".#");
    n.push(final_name);
    n.push(format!(".{pid}.tmp"));
    n
}

impl OutputDir {
    /// Creates the directory (and parents) if needed and opens it.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(path)?;
        let dir = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let out = OutputDir {
            path: path.to_owned(),
            dir,
            sync: !is_memory_fs(path),
            pid: std::process::id(),
            made_dirs: Mutex::default(),
            tmpfile: AtomicBool::new(true),
        };
        out.remove_stale_temporaries();
        Ok(out)
    }

    /// Removes the temporary files (`.#NAME.PID.tmp`, in the directory and its link
    /// sub-directories) of earlier runs that were killed between creating and renaming them:
    /// those whose process no longer exists. A run that is still writing (a concurrent
    /// generator) keeps its own. Best effort: what cannot be read or removed stays.
    fn remove_stale_temporaries(&self) {
        let Ok(entries) = fs::read_dir(&self.path) else {
            return;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let sub = Path::new(&name);
                for s in fs::read_dir(e.path())
                    .into_iter()
                    .flatten()
                    .filter_map(Result::ok)
                {
                    self.remove_if_stale(&sub.join(s.file_name()));
                }
            } else {
                self.remove_if_stale(Path::new(&name));
            }
        }
    }

    /// Removes `rel` if it is a temporary file of a process that no longer exists.
    fn remove_if_stale(&self, rel: &Path) {
        let Some(pid) = rel.file_name().and_then(|n| temporary_owner(n.as_bytes())) else {
            return;
        };
        let alive = pid == self.pid
            || rustix::process::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)).is_some_and(
                |p| {
                    !matches!(
                        rustix::process::test_kill_process(p),
                        Err(rustix::io::Errno::SRCH)
                    )
                },
            );
        if !alive {
            let _ = rustix::fs::unlinkat(&self.dir, rel, AtFlags::empty());
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `data` to `name` (a plain file name, with `mode`) atomically: a temporary file in the
    /// same directory, renamed over `name`.
    /// `mode` is 0644, or 0600 for units generated from files that others may not read (they
    /// can hold secrets).
    pub fn write_file(&self, name: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
        let prepared = self.prepare(data, mode)?;
        self.commit(name, data, prepared, mode)
    }

    /// The first half of [`write_file`](Self::write_file), which may run on another thread than
    /// the second: `data` written to a new unnamed file (`O_TMPFILE`) in the directory, not yet
    /// visible. `None` when the file system or our privileges do not allow it (then the fast path
    /// is switched off for the run, and [`commit`](Self::commit) uses temporary file + rename).
    pub fn prepare(&self, data: &[u8], mode: u32) -> std::io::Result<Option<Unnamed>> {
        if !self.tmpfile.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let Ok(fd) = rustix::fs::openat(
            &self.dir,
            ".",
            OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_bits_truncate(mode),
        ) else {
            self.tmpfile.store(false, Ordering::Relaxed);
            return Ok(None);
        };
        let mut f = fs::File::from(fd);
        f.write_all(data)?;
        if self.sync {
            f.sync_all()?;
        }
        Ok(Some(Unnamed(f)))
    }

    /// The second half of [`write_file`](Self::write_file): gives the prepared file its name
    /// (`linkat(AT_EMPTY_PATH)`), atomic like temporary file + rename without creating and
    /// moving a temporary directory entry. When `name` exists already, or `linkat` is not
    /// allowed (`AT_EMPTY_PATH` needs `CAP_DAC_READ_SEARCH`; the fast path is then switched off),
    /// or nothing was prepared, `data` is written to a temporary file renamed over `name`.
    /// `mode` is the one the file was prepared with.
    pub fn commit(
        &self,
        name: &str,
        data: &[u8],
        prepared: Option<Unnamed>,
        mode: u32,
    ) -> std::io::Result<()> {
        if let Some(Unnamed(f)) = prepared {
            match rustix::fs::linkat(&f, "", &self.dir, name, AtFlags::EMPTY_PATH) {
                Ok(()) => return Ok(()),
                Err(rustix::io::Errno::EXIST) => {}
                Err(_) => self.tmpfile.store(false, Ordering::Relaxed),
            }
        }
        let tmp = tmp_name(OsStr::new(name), self.pid);
        let result = (|| {
            let fd = rustix::fs::openat(
                &self.dir,
                tmp.as_os_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
                Mode::from_bits_truncate(mode),
            )?;
            let mut f = fs::File::from(fd);
            f.write_all(data)?;
            if self.sync {
                f.sync_all()?;
            }
            drop(f);
            rustix::fs::renameat(&self.dir, tmp.as_os_str(), &self.dir, name)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&self.dir, tmp.as_os_str(), AtFlags::empty());
        }
        result
    }

    /// Creates the symlink `rel` (relative to the output dir, may contain directories) pointing
    /// to the unit `target_name` in the output dir, with a relative target. An existing entry is
    /// replaced. `rel` must be relative and must not contain `..`; `.` and empty components are
    /// ignored.
    pub fn symlink_unit(&self, rel: &Path, target_name: &str) -> std::io::Result<()> {
        let bytes = rel.as_os_str().as_bytes();
        if bytes.first() == Some(&b'/') {
            return Err(escaping_link_name());
        }
        // The components, checked and normalized on bytes (this runs for every link).
        let parts: Vec<&[u8]> = bytes
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        if parts.contains(&&b".."[..]) {
            return Err(escaping_link_name());
        }
        let Some((file_name, dirs)) = parts.split_last() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "empty link name",
            ));
        };
        let normalized;
        let rel = if parts.len() == bytes.split(|&b| b == b'/').count() {
            rel
        } else {
            normalized = OsString::from_vec(parts.join(&b'/'));
            Path::new(&normalized)
        };
        let mut target = "../".repeat(dirs.len());
        target.push_str(target_name);
        if !dirs.is_empty() {
            let rel_bytes = rel.as_os_str().as_bytes();
            let parent = &rel_bytes[..rel_bytes.len() - file_name.len() - 1];
            let mut made = self
                .made_dirs
                .lock()
                .map_err(|_| std::io::Error::other("lock poisoned"))?;
            if !made.contains(parent) {
                fs::create_dir_all(self.path.join(OsStr::from_bytes(parent)))?;
                made.insert(parent.to_vec());
            }
        }
        // Creating a symlink is atomic; only an existing entry needs the temporary + rename.
        match rustix::fs::symlinkat(target.as_str(), &self.dir, rel) {
            Err(rustix::io::Errno::EXIST) => {}
            other => return other.map_err(Into::into),
        }
        let tmp = rel.with_file_name(tmp_name(OsStr::from_bytes(file_name), self.pid));
        let _ = rustix::fs::unlinkat(&self.dir, &tmp, AtFlags::empty());
        rustix::fs::symlinkat(target.as_str(), &self.dir, &tmp)?;
        if let Err(e) = rustix::fs::renameat(&self.dir, &tmp, &self.dir, rel) {
            let _ = rustix::fs::unlinkat(&self.dir, &tmp, AtFlags::empty());
            return Err(e.into());
        }
        Ok(())
    }
}

fn escaping_link_name() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "the link name must be a relative path inside the output directory",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_of_dead_processes_are_removed_and_others_kept() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("default.target.wants")).unwrap();
        // Pids beyond pid_max (4194304 at most) belong to no process.
        let dead = [
            ".#web.service.99999999.tmp",
            "default.target.wants/.#web.service.99999998.tmp",
        ];
        let own = format!(".#db.service.{}.tmp", std::process::id());
        let keep = [
            own.as_str(),
            ".#not-ours.tmp",
            "web.service",
            ".#x.service.1.tmp",
        ];
        for f in dead.iter().chain(&keep) {
            fs::write(d.path().join(f), "x").unwrap();
        }
        OutputDir::create(d.path()).unwrap();
        for f in dead {
            assert!(!d.path().join(f).exists(), "{f} left");
        }
        for f in keep {
            assert!(d.path().join(f).exists(), "{f} removed");
        }
    }

    #[test]
    fn written_file_replaces_the_old_one_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::create(d.path()).unwrap();
        out.write_file("a.service", b"old", 0o644).unwrap();
        out.write_file("a.service", b"new", 0o644).unwrap();
        assert_eq!(fs::read(d.path().join("a.service")).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_prepared_file_appears_only_when_committed_and_replaces_an_existing_one() {
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::create(d.path()).unwrap();
        out.write_file("a.service", b"old", 0o644).unwrap();
        let prepared = out.prepare(b"new", 0o644).unwrap();
        let discarded = out.prepare(b"never named", 0o644).unwrap();
        // Unnamed files are invisible until linked.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        assert_eq!(fs::read(d.path().join("a.service")).unwrap(), b"old");
        drop(discarded);
        // The name exists: the commit falls back to temporary file + rename.
        out.commit("a.service", b"new", prepared, 0o644).unwrap();
        out.commit("b.service", b"b", out.prepare(b"b", 0o644).unwrap(), 0o644)
            .unwrap();
        assert_eq!(fs::read(d.path().join("a.service")).unwrap(), b"new");
        assert_eq!(fs::read(d.path().join("b.service")).unwrap(), b"b");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn commit_without_a_prepared_file_writes_the_data() {
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::create(d.path()).unwrap();
        out.commit("c.service", b"data", None, 0o644).unwrap();
        assert_eq!(fs::read(d.path().join("c.service")).unwrap(), b"data");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn temporary_file_and_rename_path_writes_complete_files() {
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::create(d.path()).unwrap();
        out.tmpfile.store(false, Ordering::Relaxed);
        out.write_file("b.service", b"content", 0o644).unwrap();
        assert_eq!(fs::read(d.path().join("b.service")).unwrap(), b"content");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn units_on_tmpfs_are_not_fsynced() {
        // /dev/shm is tmpfs on Linux; /run/systemd/generator is too.
        let shm = Path::new("/dev/shm");
        if !is_memory_fs(shm) {
            assert!(
                std::env::var_os("CI").map_or(true, |v| v != "true"),
                "CI=true but /dev/shm is not tmpfs: cannot test the no-fsync path"
            );
            eprintln!("SKIPPED: /dev/shm is not tmpfs here");
            return;
        }
        let d = tempfile::tempdir_in(shm).unwrap();
        assert!(!OutputDir::create(d.path()).unwrap().sync);
    }

    #[test]
    fn new_files_are_created_with_mode_0644() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::create(d.path()).unwrap();
        out.write_file("c.service", b"x", 0o644).unwrap();
        let mode = fs::metadata(d.path().join("c.service"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn symlinks_get_relative_targets_and_refuse_escaping_names() {
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::create(d.path()).unwrap();
        out.symlink_unit(Path::new("in/a/dir/x.service"), "u.service")
            .unwrap();
        assert_eq!(
            fs::read_link(d.path().join("in/a/dir/x.service")).unwrap(),
            PathBuf::from("../../../u.service")
        );
        // `.` and empty components are dropped; `..` anywhere is refused.
        out.symlink_unit(Path::new("./in//b/./y.service/"), "u.service")
            .unwrap();
        assert_eq!(
            fs::read_link(d.path().join("in/b/y.service")).unwrap(),
            PathBuf::from("../../u.service")
        );
        assert!(out
            .symlink_unit(Path::new("in/../../evil.service"), "u.service")
            .is_err());
        assert!(out.symlink_unit(Path::new("./"), "u.service").is_err());
        // An existing link is replaced.
        out.symlink_unit(Path::new("alias.service"), "u.service")
            .unwrap();
        out.symlink_unit(Path::new("alias.service"), "v.service")
            .unwrap();
        assert_eq!(
            fs::read_link(d.path().join("alias.service")).unwrap(),
            PathBuf::from("v.service")
        );
        assert!(out
            .symlink_unit(Path::new("../evil.service"), "u.service")
            .is_err());
        assert!(out
            .symlink_unit(Path::new("/etc/evil.service"), "u.service")
            .is_err());
    }
}
