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
use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;
use crate::escape::{self, Kinds};

/// The special value of `--set KEY=auto-port`.
pub const AUTO_PORT: &str = "auto-port";

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

    fn create_dir(&self) -> Result<(), Error> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| Self::io("creating", &self.dir, e))
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

    /// Reads the settings of `unit`; `None` if there are none.
    pub fn read(&self, unit: &str) -> Result<Option<Settings>, Error> {
        let path = self.path(unit)?;
        match fs::read(&path) {
            Ok(data) => parse(&path, &data).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io("reading", &path, e)),
        }
    }

    /// Writes `settings` atomically (mode 0600). Call with the [`Lock`] held when ports were
    /// allocated.
    pub fn write(&self, settings: &Settings) -> Result<(), Error> {
        let path = self.path(&settings.unit)?;
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
        tmp.persist(&path)
            .map_err(|e| Self::io("renaming a temporary file to", &path, e.error))?;
        Ok(())
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
    /// other instance of the store was given, and records those keys in `settings.auto`. Hold
    /// the [`Lock`] until the settings are written.
    pub fn allocate_ports(&self, settings: &mut Settings) -> Result<(), Error> {
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
        for key in keys {
            let port = free_port(&taken)?;
            taken.insert(port);
            settings.settings.insert(key.clone(), port.to_string());
            settings.auto.push(key);
        }
        Ok(())
    }
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
    use std::os::unix::fs::PermissionsExt as _;

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
            store.allocate_ports(&mut s).unwrap();
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
}
