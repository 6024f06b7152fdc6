//! Writing generated units and `[Install]` symlinks into the generator's output directory.
//!
//! Every file appears atomically: it is written to a temporary file in the same directory and
//! renamed over the final name, so systemd (or a concurrent generator run, podman #29004) never
//! sees a half-written unit. Symlinks are created under a temporary name and renamed as well.
//! Files are fsync'ed before the rename unless the directory is on tmpfs/ramfs (the normal case,
//! `/run/systemd/generator`), where fsync is pointless and only costs time at boot.

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// `TMPFS_MAGIC` from `linux/magic.h`.
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// `RAMFS_MAGIC` from `linux/magic.h`.
const RAMFS_MAGIC: u64 = 0x8584_58f6;

/// An output directory.
#[derive(Debug)]
pub struct OutputDir {
    path: PathBuf,
    sync: bool,
}

/// True if `path` is on a memory file system (tmpfs or ramfs), where fsync is useless.
pub fn is_memory_fs(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| {
        #[allow(clippy::cast_sign_loss, clippy::unnecessary_cast)]
        let magic = s.f_type as u64;
        magic == TMPFS_MAGIC || magic == RAMFS_MAGIC
    })
}

fn tmp_name(final_name: &std::ffi::OsStr) -> PathBuf {
    let mut n = std::ffi::OsString::from(".#");
    n.push(final_name);
    n.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(n)
}

impl OutputDir {
    /// Creates the directory (and parents) if needed.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(path)?;
        Ok(OutputDir {
            path: path.to_owned(),
            sync: !is_memory_fs(path),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `data` to `name` (a plain file name) atomically.
    pub fn write_file(&self, name: &str, data: &[u8]) -> std::io::Result<PathBuf> {
        let dest = self.path.join(name);
        let tmp = self
            .path
            .join(tmp_name(dest.file_name().unwrap_or_default()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(data)?;
            if self.sync {
                f.sync_all()?;
            }
            drop(f);
            fs::rename(&tmp, &dest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| dest)
    }

    /// Creates the symlink `rel` (relative to the output dir, may contain directories) pointing
    /// to the unit `target_name` in the output dir, with a relative target. An existing entry is
    /// replaced. `rel` must be relative and must not contain `..`.
    pub fn symlink_unit(&self, rel: &Path, target_name: &str) -> std::io::Result<PathBuf> {
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the link name must be a relative path inside the output directory",
            ));
        }
        let rel: PathBuf = rel
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        let Some(file_name) = rel.file_name() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "empty link name",
            ));
        };
        let depth = rel.components().count() - 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push(target_name);
        let link = self.path.join(&rel);
        let dir = link.parent().unwrap_or(&self.path);
        fs::create_dir_all(dir)?;
        let tmp = dir.join(tmp_name(file_name));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)?;
        if let Err(e) = fs::rename(&tmp, &link) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(link)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn written_file_replaces_the_old_one_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let out = OutputDir::create(d.path()).unwrap();
        out.write_file("a.service", b"old").unwrap();
        out.write_file("a.service", b"new").unwrap();
        assert_eq!(fs::read(d.path().join("a.service")).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
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
        assert!(out
            .symlink_unit(Path::new("../evil.service"), "u.service")
            .is_err());
        assert!(out
            .symlink_unit(Path::new("/etc/evil.service"), "u.service")
            .is_err());
    }
}
