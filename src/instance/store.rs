//! The settings store: one JSON file per instance, named exactly by the instance unit name,
//! in a runtime directory (`$XDG_RUNTIME_DIR/unitwright/instances/` for the user manager,
//! `/run/unitwright/instances/` for the system manager: `%t/unitwright/instances/` from the
//! unit's side).
//!
//! * The directory is created with mode 0700 and every file with mode 0600: settings may hold
//!   credentials. Values are never logged.
//! * Files are written to a temporary file in the same directory and renamed over the old one, so
//!   a reader sees the old or the new settings, never half of them.
//! * Port allocation and writing happen under an exclusive `flock` on `<dir>/.lock`, so two
//!   concurrent starts never get the same port.
//! * Each instance has its own lock, `<dir>/.locks/<unit>` ([`Store::instance_lock`]), held by
//!   `instance start`/`restart`/`stop` from the "already active" check to the job's result: a
//!   second caller is refused at once ("already starting"), never interleaved.
//! * A new settings file is created exclusively (linked into place only if no file of that
//!   name exists, the `O_EXCL` of a complete file), so two writers can never both believe
//!   they own it.
//! * The directory must be a real directory owned by the caller; one with group or other
//!   permissions is set back to 0700. Settings files are read without following symbolic
//!   links, must be regular files of at most [`MAX_FILE_SIZE`] bytes, and are validated:
//!   every key a variable name that is not [reserved](reserved_key), no NUL in a value, and
//!   the `unit` field equal to the file's name.
//!
//! File format (stable; extra fields are ignored when read):
//!
//! ```json
//! {"unit": "console@a\\x2db.service", "id": "a-b",
//!  "settings": {"IMAGE": "localhost/bb", "PORT": "41234"}, "auto": ["PORT"]}
//! ```
//!
//! `auto` lists the keys whose values unitwright allocated (`auto-port`); only those ports are
//! considered taken by the allocator.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;
use crate::escape::{self, Kinds};
use crate::unit::quote::is_valid_env_name;

/// The special value of `--set KEY=auto-port`.
pub const AUTO_PORT: &str = "auto-port";

/// The largest settings file read (1 MiB): far above any real one, small enough that a
/// corrupt or hostile file cannot make the wrapper allocate without limit.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// Names a setting can never have, because the wrapper puts settings into the environment
/// of the command it execs (podman, or whatever the template runs): the dynamic loader's
/// (`LD_*`, `GLIBC_TUNABLES`, `MALLOC_*`), the shell's and libc's (`PATH`, `IFS`, `ENV`,
/// `BASH_ENV`, `SHELLOPTS`, `PS4`, `GCONV_PATH`, `HOSTALIASES`, `LOCALDOMAIN`, `RES_OPTIONS`,
/// `NLSPATH`, `TMPDIR`, `HOME`, `BASH_FUNC_*`), podman's and the container libraries'
/// configuration (`CONTAINERS_*`, `CONTAINER_*`, `PODMAN_*`, `REGISTRY_AUTH_FILE`,
/// `DOCKER_*`, `XDG_*`, `DBUS_*`), systemd's protocol variables (`NOTIFY_SOCKET`,
/// `LISTEN_*`, `SYSTEMD_*`, `INVOCATION_ID`, `MAINPID`, `WATCHDOG_*`, `CREDENTIALS_DIRECTORY`,
/// `RUNTIME_DIRECTORY` and the other `*_DIRECTORY`) and the wrapper's own `UNITWRIGHT_*`.
pub fn reserved_key(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "PATH",
        "IFS",
        "ENV",
        "BASH_ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "GCONV_PATH",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "RES_OPTIONS",
        "NLSPATH",
        "TMPDIR",
        "HOME",
        "SHELL",
        "USER",
        "LOGNAME",
        "GLIBC_TUNABLES",
        "REGISTRY_AUTH_FILE",
        "NOTIFY_SOCKET",
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "MAINPID",
        "MANAGERPID",
        "TERM",
    ];
    const PREFIXES: &[&str] = &[
        "LD_",
        "MALLOC_",
        "BASH_FUNC_",
        "CONTAINERS_",
        "CONTAINER_",
        "PODMAN_",
        "DOCKER_",
        "XDG_",
        "DBUS_",
        "LISTEN_",
        "SYSTEMD_",
        "WATCHDOG_",
        "UNITWRIGHT_",
    ];
    EXACT.contains(&key)
        || PREFIXES.iter().any(|p| key.starts_with(p))
        || key.ends_with("_DIRECTORY")
}

/// Why `key` with `value` cannot be a setting, if it cannot.
pub fn check_setting(key: &str, value: &str) -> Result<(), String> {
    if !is_valid_env_name(key) {
        return Err(format!(
            "{key:?} is not a variable name (letters, digits and _, not starting with a digit)"
        ));
    }
    if reserved_key(key) {
        return Err(format!(
            "{key} is reserved: settings become environment variables of the command the unit runs, and {key} would change how that command (or the loader, shell or podman) behaves; use another name"
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "the value of {key} contains a NUL byte, which cannot be in an environment variable"
        ));
    }
    Ok(())
}

/// The settings of one instance, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The instance unit name, e.g. `console@a\x2db.service`.
    pub unit: String,
    /// The instance id (unescaped), e.g. `a-b`.
    pub id: String,
    /// `KEY` → value.
    pub settings: BTreeMap<String, String>,
    /// Keys whose values were allocated by unitwright (`auto-port`).
    #[serde(default)]
    pub auto: Vec<String>,
}

/// The directory holding the settings files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    dir: PathBuf,
}

/// Holds the store's lock until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: fs::File,
}

/// Holds one instance's lock until dropped ([`Store::instance_lock`]).
#[derive(Debug)]
pub struct InstanceLock {
    _file: fs::File,
    path: PathBuf,
}

impl InstanceLock {
    /// Releases the lock and removes its file (when the instance is gone for good: its
    /// settings removed). Safe against a concurrent locker: lockers check after locking that
    /// the file they locked is still the one at the path.
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Store {
    /// A store in `dir` (not created until written to).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Store { dir: dir.into() }
    }

    /// The store the units of the user manager (`user == true`) or of the system manager read:
    /// `$XDG_RUNTIME_DIR/unitwright/instances` or `/run/unitwright/instances`.
    pub fn for_manager(user: bool) -> Result<Self, Error> {
        if user {
            let rt = std::env::var_os("XDG_RUNTIME_DIR")
                .filter(|d| Path::new(d).is_absolute())
                .ok_or(Error::NoRuntimeDir)?;
            Ok(Store::new(Path::new(&rt).join("unitwright/instances")))
        } else {
            Ok(Store::new("/run/unitwright/instances"))
        }
    }

    /// The store of `--persistent` settings, which survive a reboot: `%S/unitwright/instances`
    /// from the unit's side, that is `/var/lib/unitwright/instances` for the system manager
    /// and `$XDG_STATE_HOME/unitwright/instances` (default `~/.local/state/...`) for the user
    /// manager.
    pub fn persistent_for_manager(user: bool) -> Result<Self, Error> {
        if !user {
            return Ok(Store::new("/var/lib/unitwright/instances"));
        }
        let absolute =
            |v: std::ffi::OsString| Path::new(&v).is_absolute().then(|| PathBuf::from(v));
        let state = std::env::var_os("XDG_STATE_HOME")
            .and_then(absolute)
            .or_else(|| {
                std::env::var_os("HOME")
                    .and_then(absolute)
                    .map(|h| h.join(".local/state"))
            })
            .ok_or(Error::NoStateDir)?;
        Ok(Store::new(state.join("unitwright/instances")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `unit`, which must be a valid unit name (so it has no `/` and is at most
    /// 255 bytes: a valid file name).
    pub fn path(&self, unit: &str) -> Result<PathBuf, Error> {
        if !escape::is_valid(unit, Kinds::ANY) {
            return Err(Error::BadUnitName {
                name: unit.to_owned(),
            });
        }
        Ok(self.dir.join(unit))
    }

    fn io(what: &str, path: &Path, source: std::io::Error) -> Error {
        Error::Store {
            what: format!("{what} {}", path.display()),
            source,
        }
    }

    /// Creates the directory (mode 0700), or checks the existing one: a real directory (not a
    /// symbolic link) owned by the caller; group and other permissions are removed.
    fn create_dir(&self) -> Result<(), Error> {
        private_dir(&self.dir)
    }

    /// Takes the lock of `unit` (`<dir>/.locks/<unit>`, see the module docs). With `wait`
    /// false, returns `Ok(None)` at once when another process holds it.
    pub fn instance_lock(&self, unit: &str, wait: bool) -> Result<Option<InstanceLock>, Error> {
        self.path(unit)?;
        let dir = self.dir.join(".locks");
        private_dir(&dir)?;
        let path = dir.join(unit);
        loop {
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(open_flags(rustix::fs::OFlags::NOFOLLOW))
                .open(&path)
                .map_err(|e| Self::io("opening", &path, e))?;
            let op = if wait {
                rustix::fs::FlockOperation::LockExclusive
            } else {
                rustix::fs::FlockOperation::NonBlockingLockExclusive
            };
            match rustix::fs::flock(&file, op) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(Self::io("locking", &path, e.into())),
            }
            // The holder before us may have removed the file after we opened it: then our
            // lock is on an orphan, and a third process may lock a new file. Retry.
            let locked = file.metadata().map_err(|e| Self::io("reading", &path, e))?;
            match fs::symlink_metadata(&path) {
                Ok(now) if now.ino() == locked.ino() && now.dev() == locked.dev() => {
                    return Ok(Some(InstanceLock { _file: file, path }))
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Self::io("reading", &path, e)),
            }
        }
    }

    /// Takes the store's exclusive lock (creating the directory).
    pub fn lock(&self) -> Result<Lock, Error> {
        self.create_dir()?;
        let path = self.dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Self::io("opening", &path, e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Self::io("locking", &path, e.into()))?;
        Ok(Lock { _file: file })
    }

    /// Reads the settings of `unit`; `None` if there are none. The file is not followed if it
    /// is a symbolic link, must be a regular file of at most [`MAX_FILE_SIZE`] bytes, and is
    /// validated ([`check_setting`], `unit` equal to the file name).
    pub fn read(&self, unit: &str) -> Result<Option<Settings>, Error> {
        let path = self.path(unit)?;
        let bad = |detail: String| Error::BadSettings {
            path: path.clone(),
            detail,
        };
        let file = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(open_flags(
                rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK,
            ))
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(bad(
                    "it is a symbolic link; settings files are never followed".to_owned(),
                ))
            }
            Err(e) => return Err(Self::io("reading", &path, e)),
        };
        let meta = file.metadata().map_err(|e| Self::io("reading", &path, e))?;
        if !meta.file_type().is_file() {
            return Err(bad("not a regular file".to_owned()));
        }
        let mut data = Vec::new();
        file.take(MAX_FILE_SIZE + 1)
            .read_to_end(&mut data)
            .map_err(|e| Self::io("reading", &path, e))?;
        if data.len() as u64 > MAX_FILE_SIZE {
            return Err(bad(format!("larger than {MAX_FILE_SIZE} bytes")));
        }
        let settings = parse(&path, &data)?;
        if settings.unit != unit {
            return Err(bad(format!(
                "it holds the settings of {:?}, not of {unit:?}",
                settings.unit
            )));
        }
        for (k, v) in &settings.settings {
            check_setting(k, v).map_err(|why| bad(format!("setting {why}")))?;
        }
        Ok(Some(settings))
    }

    /// Writes `settings` atomically (mode 0600), replacing any existing ones. Call with the
    /// [`Lock`] held when ports were allocated.
    pub fn write(&self, settings: &Settings) -> Result<(), Error> {
        let (tmp, path) = self.temp_with(settings)?;
        tmp.persist(&path)
            .map_err(|e| Self::io("renaming a temporary file to", &path, e.error))?;
        Ok(())
    }

    /// Creates the settings of `settings.unit`, complete and mode 0600, only if none exist
    /// (the file is linked into place, which fails if the name exists): [`Error::SettingsExist`]
    /// otherwise.
    pub fn create(&self, settings: &Settings) -> Result<(), Error> {
        let (tmp, path) = self.temp_with(settings)?;
        match tmp.persist_noclobber(&path) {
            Ok(_) => Ok(()),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::SettingsExist {
                    unit: settings.unit.clone(),
                })
            }
            Err(e) => Err(Self::io("linking a temporary file to", &path, e.error)),
        }
    }

    /// A complete temporary file holding `settings`, and the path it belongs at.
    fn temp_with(&self, settings: &Settings) -> Result<(tempfile::NamedTempFile, PathBuf), Error> {
        let path = self.path(&settings.unit)?;
        for (k, v) in &settings.settings {
            check_setting(k, v).map_err(|detail| Error::BadSettings {
                path: path.clone(),
                detail,
            })?;
        }
        self.create_dir()?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(|e| Self::io("creating a temporary file in", &self.dir, e))?;
        let data = serde_json::to_vec(settings).map_err(|e| Error::Store {
            what: format!("encoding the settings of {}", settings.unit),
            source: e.into(),
        })?;
        tmp.write_all(&data)
            .map_err(|e| Self::io("writing", tmp.path(), e))?;
        Ok((tmp, path))
    }

    /// Removes the settings of `unit`; true if there were any.
    pub fn remove(&self, unit: &str) -> Result<bool, Error> {
        let path = self.path(unit)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Self::io("removing", &path, e)),
        }
    }

    /// The unit names that have settings (sorted).
    pub fn units(&self) -> Result<Vec<String>, Error> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io("reading", &self.dir, e)),
        };
        let mut units: Vec<String> = rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| escape::is_valid(n, Kinds::ANY))
            .collect();
        units.sort();
        Ok(units)
    }

    /// Ports allocated (`auto`) to any instance in the store.
    fn allocated_ports(&self) -> BTreeSet<u16> {
        let mut ports = BTreeSet::new();
        for unit in self.units().unwrap_or_default() {
            // Unreadable files are skipped: they cannot hold a port we would collide with
            // through the store, and one bad file must not block every start.
            if let Ok(Some(s)) = self.read(&unit) {
                ports.extend(
                    s.auto
                        .iter()
                        .filter_map(|k| s.settings.get(k))
                        .filter_map(|v| v.parse::<u16>().ok()),
                );
            }
        }
        ports
    }

    /// Replaces every `auto-port` value of `settings` by a free TCP port on 127.0.0.1 that no
    /// other instance of this store or of `others` was given, and records those keys in
    /// `settings.auto`. Hold the [`Lock`] until the settings are written.
    pub fn allocate_ports(&self, settings: &mut Settings, others: &[&Store]) -> Result<(), Error> {
        let keys: Vec<String> = settings
            .settings
            .iter()
            .filter(|(_, v)| v.as_str() == AUTO_PORT)
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let mut taken = self.allocated_ports();
        for other in others {
            taken.extend(other.allocated_ports());
        }
        for key in keys {
            let port = free_port(&taken)?;
            taken.insert(port);
            settings.settings.insert(key.clone(), port.to_string());
            settings.auto.push(key);
        }
        Ok(())
    }
}

/// `flags` for [`OpenOptionsExt::custom_flags`] (which takes the C `int`).
fn open_flags(flags: rustix::fs::OFlags) -> i32 {
    i32::from_ne_bytes(flags.bits().to_ne_bytes())
}

/// Creates `dir` (and missing parents) with mode 0700, or checks an existing one: it must be
/// a directory, not a symbolic link, and owned by the caller; group and other permissions
/// are removed (settings may hold credentials).
pub(crate) fn private_dir(dir: &Path) -> Result<(), Error> {
    let io = |what: &str, e| Store::io(what, dir, e);
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io("creating", e))
                .and_then(|()| private_dir_checked(dir));
        }
        Err(e) => return Err(io("reading", e)),
        Ok(_) => {}
    }
    private_dir_checked(dir)
}

fn private_dir_checked(dir: &Path) -> Result<(), Error> {
    let refuse = |why: String| Error::Store {
        what: format!("using {} for settings", dir.display()),
        source: std::io::Error::other(why),
    };
    let meta = fs::symlink_metadata(dir).map_err(|e| Store::io("reading", dir, e))?;
    if !meta.file_type().is_dir() {
        return Err(refuse(
            "it is not a directory (a symbolic link is not followed)".to_owned(),
        ));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(format!(
            "it belongs to uid {}, not to uid {me}",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Store::io("setting mode 0700 on", dir, e))?;
    }
    Ok(())
}

/// A port the kernel considers free on 127.0.0.1 and that is not in `taken`.
fn free_port(taken: &BTreeSet<u16>) -> Result<u16, Error> {
    for _ in 0..200 {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| Error::Store {
            what: "finding a free port on 127.0.0.1".to_owned(),
            source: e,
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Store {
                what: "finding a free port on 127.0.0.1".to_owned(),
                source: e,
            })?
            .port();
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    Err(Error::Store {
        what: "finding a free port on 127.0.0.1".to_owned(),
        source: std::io::Error::other("every port offered was already allocated"),
    })
}

fn parse(path: &Path, data: &[u8]) -> Result<Settings, Error> {
    serde_json::from_slice(data).map_err(|e| Error::BadSettings {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(unit: &str, pairs: &[(&str, &str)]) -> Settings {
        Settings {
            unit: unit.to_owned(),
            id: "x".to_owned(),
            settings: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            auto: Vec::new(),
        }
    }

    #[test]
    fn names_differing_only_by_escapes_are_different_files() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path().join("instances"));
        store
            .write(&settings("c@a\\x2db.service", &[("K", "escaped")]))
            .unwrap();
        store
            .write(&settings("c@ax2db.service", &[("K", "plain")]))
            .unwrap();
        let a = store.read("c@a\\x2db.service").unwrap().unwrap();
        let b = store.read("c@ax2db.service").unwrap().unwrap();
        assert_eq!(a.settings["K"], "escaped");
        assert_eq!(b.settings["K"], "plain");
        assert_eq!(
            store.units().unwrap(),
            ["c@a\\x2db.service", "c@ax2db.service"]
        );
    }

    #[test]
    fn files_are_private_and_the_directory_too() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path().join("instances"));
        store
            .write(&settings("c@1.service", &[("PW", "s3cret")]))
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&store.path("c@1.service").unwrap()), 0o600);
        assert_eq!(mode(store.dir()), 0o700);
    }

    #[test]
    fn unit_names_with_slashes_or_dots_are_refused() {
        let store = Store::new("/nonexistent");
        for bad in ["../x.service", "a/b.service", "..", "", "x"] {
            assert!(store.path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allocated_ports_are_not_given_twice() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        let mut seen = BTreeSet::new();
        for i in 0..20 {
            let _lock = store.lock().unwrap();
            let mut s = settings(
                &format!("c@{i}.service"),
                &[("PORT", AUTO_PORT), ("X", "1")],
            );
            store.allocate_ports(&mut s, &[]).unwrap();
            assert_eq!(s.auto, ["PORT"]);
            assert!(seen.insert(s.settings["PORT"].clone()));
            store.write(&s).unwrap();
        }
    }

    #[test]
    fn missing_settings_are_none_and_removal_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        assert_eq!(store.read("c@1.service").unwrap(), None);
        assert!(!store.remove("c@1.service").unwrap());
    }

    #[test]
    fn an_existing_directory_is_made_private_or_refused() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("instances");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let store = Store::new(&dir);
        store
            .write(&settings("c@1.service", &[("PW", "x")]))
            .unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        // A symbolic link to a directory is not used.
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = Store::new(&link)
            .write(&settings("c@1.service", &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("it is not a directory"), "{err}");

        // Nor a directory of another user (the tests run as root, which can chown).
        if rustix::process::geteuid().is_root() {
            let foreign = d.path().join("foreign");
            fs::create_dir(&foreign).unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), None).unwrap();
            let err = Store::new(&foreign)
                .write(&settings("c@1.service", &[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("it belongs to uid 65534"), "{err}");
        }
    }

    #[test]
    fn create_never_replaces_existing_settings() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        store
            .create(&settings("c@1.service", &[("V", "a")]))
            .unwrap();
        let err = store.create(&settings("c@1.service", &[("V", "b")]));
        assert!(matches!(err, Err(Error::SettingsExist { .. })), "{err:?}");
        let kept = store.read("c@1.service").unwrap().unwrap();
        assert_eq!(kept.settings["V"], "a");
    }

    #[test]
    fn instance_locks_exclude_each_other_and_survive_removal() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        let held = store.instance_lock("c@1.service", false).unwrap().unwrap();
        assert!(store.instance_lock("c@1.service", false).unwrap().is_none());
        assert!(store.instance_lock("c@2.service", false).unwrap().is_some());
        held.remove();
        let again = store.instance_lock("c@1.service", false).unwrap();
        assert!(again.is_some());
    }

    #[test]
    fn reserved_names_are_refused() {
        for k in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "PATH",
            "XDG_RUNTIME_DIR",
            "UNITWRIGHT_ID",
            "STATE_DIRECTORY",
            "BASH_FUNC_x%%",
        ] {
            assert!(check_setting(k, "v").is_err(), "{k}");
        }
        for k in ["IMAGE", "PORT", "APP_INFO", "LDAP_URL", "MY_PATH"] {
            assert!(check_setting(k, "v").is_ok(), "{k}");
        }
    }
}
