//! Where installed Quadlet files live, which files form which app, the scope lock, and the
//! crash-safe transaction that changes them.
//!
//! # Layout
//! * The scope's Quadlet directory ([`install_dir`]): system `/etc/containers/systemd`, user
//!   `$XDG_CONFIG_HOME/containers/systemd` (`~/.config/...`); with `QUADLET_UNIT_DIRS` set, its
//!   first entry (the generator then reads it too). Files are installed flat, as users place
//!   them by hand; drop-ins go to `NAME.d/`.
//! * `<dir>/.unitwright/`: `lock` (one `flock` per scope: two commands never interleave),
//!   `apps/<app>.json` (`{"app": NAME, "files": [relative paths]}`) and `txn/` while a
//!   transaction runs. Nothing in it has a Quadlet extension, so the generator, which walks
//!   sub-directories, ignores it.
//!
//! # Transactions
//! 1. Each new file is written to `txn/new/<i>` (mode and owner of the file it replaces, never
//!    looser than the source's mode), each file that will be replaced or removed is hard-linked
//!    to `txn/bak/<i>` (same inode: mode, owner and content kept), all synced.
//! 2. `txn/journal` is written (temporary file + rename) with phase `commit`, the operations, and
//!    the units to restart/start afterwards. Only now does anything visible change.
//! 3. Each new file is renamed over its target; removed files are unlinked.
//! 4. The journal's phase becomes `done`; the caller reloads the manager and restarts units,
//!    then removes `txn/`.
//!
//! A later run (under the lock) that finds `txn/`: no journal → it is removed (nothing had
//! changed); phase `commit` or `rollback` → every target is restored from its backup (added
//! files removed): all files of the transaction are old again; phase `done` → all files are new,
//! the run completes the reload and the restarts. Either way the report says so. A rename of
//! a backup over its target that is still the same inode does nothing (POSIX), so a restore is
//! correct whichever renames had happened.
//!
//! For tests, `UNITWRIGHT_TEST_PAUSE_AT=<step>` makes the command write `<step>` to the file
//! named by `UNITWRIGHT_TEST_PAUSE_FILE` and sleep at that step (`staged`, `committing`,
//! `committed`, `reloaded`), so that a test can `kill -9` it there.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::adapter::Overlay;

/// The name of the state directory inside the Quadlet directory.
pub const STATE_DIR: &str = ".unitwright";

/// The directory `install`/`apply` write to for the scope (see the module documentation).
pub fn install_dir(user: bool) -> Option<PathBuf> {
    if let Some(list) = std::env::var_os("QUADLET_UNIT_DIRS").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list)
            .next()
            .filter(|p| p.is_absolute());
    }
    if user {
        super::adapter::user_config_dir().map(|c| c.join("containers/systemd"))
    } else {
        Some(PathBuf::from("/etc/containers/systemd"))
    }
}

/// Pauses at `step` when a test asks for it (see the module documentation).
pub fn test_point(step: &str) {
    if std::env::var("UNITWRIGHT_TEST_PAUSE_AT").is_ok_and(|s| s == step) {
        if let Ok(f) = std::env::var("UNITWRIGHT_TEST_PAUSE_FILE") {
            let _ = fs::write(f, step);
        }
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

/// The scope's store: its Quadlet directory, held under the scope lock.
#[derive(Debug)]
pub struct Store {
    /// The Quadlet directory (resolved).
    pub dir: PathBuf,
    _lock: fs::File,
}

/// An app record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct App {
    /// The app's name.
    pub name: String,
    /// Its files, relative to the Quadlet directory.
    pub files: Vec<PathBuf>,
}

/// One change of a transaction.
#[derive(Debug, Clone)]
pub struct Op {
    /// The file changed (absolute).
    pub target: PathBuf,
    /// Its new content and mode, or `None` to remove it.
    pub new: Option<(Vec<u8>, u32)>,
}

/// What a recovery found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// An interrupted transaction had changed nothing yet; it was discarded.
    Discarded,
    /// Files had been (partly) replaced; the old ones are back. The manager must be reloaded.
    RolledBack {
        /// The files restored.
        files: Vec<PathBuf>,
    },
    /// All files had been replaced; the reload and these restarts/starts are still to do.
    Completed {
        /// Units to try-restart.
        restart: Vec<String>,
        /// Units to start.
        start: Vec<String>,
    },
}

/// A transaction in progress (see the module documentation).
#[derive(Debug)]
pub struct Txn {
    dir: PathBuf,
    ops: Vec<Op>,
    backups: Vec<bool>,
    restart: Vec<String>,
    start: Vec<String>,
}

fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

impl Store {
    /// Opens (creating if needed) the Quadlet directory `dir` and takes the scope lock, waiting
    /// for another command that holds it.
    pub fn open(dir: &Path) -> std::io::Result<Store> {
        fs::create_dir_all(dir.join(STATE_DIR).join("apps"))?;
        let dir = super::adapter::resolve_dir(dir);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(STATE_DIR).join("lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(Store { dir, _lock: lock })
    }

    fn state(&self) -> PathBuf {
        self.dir.join(STATE_DIR)
    }

    fn app_path(&self, name: &str) -> PathBuf {
        self.state().join("apps").join(format!("{name}.json"))
    }

    /// Checks an app name (letters, digits, `-_.@`, not starting with a dot).
    pub fn check_app_name(name: &str) -> Result<(), String> {
        if valid_app_name(name) {
            Ok(())
        } else {
            Err(format!(
                "invalid app name {name:?}: use letters, digits and - _ . @, not starting with a dot"
            ))
        }
    }

    /// The record of app `name`, if any.
    pub fn app(&self, name: &str) -> Option<App> {
        parse_app(&fs::read(self.app_path(name)).ok()?)
    }

    /// Every app record, by name.
    pub fn apps(&self) -> Vec<App> {
        read_apps(&self.state(), &Overlay::new())
    }

    /// The transaction operation that writes (or, with no files, removes) the record of `app`.
    pub fn app_op(&self, app: &App) -> Op {
        let target = self.app_path(&app.name);
        if app.files.is_empty() {
            return Op { target, new: None };
        }
        let files: Vec<String> = app
            .files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        Op {
            target,
            new: Some((serde_like::render(&app.name, &files).into_bytes(), 0o644)),
        }
    }

    /// Finishes or undoes a transaction a killed run left behind. `None` when there was none.
    pub fn recover(&self) -> std::io::Result<Option<Recovery>> {
        let txn = self.state().join("txn");
        if !txn.exists() {
            return Ok(None);
        }
        let journal = fs::read(txn.join("journal")).ok();
        let Some(j) = journal.as_deref().and_then(serde_like::parse_journal) else {
            fs::remove_dir_all(&txn)?;
            return Ok(Some(Recovery::Discarded));
        };
        let t = Txn {
            dir: txn,
            backups: j.ops.iter().map(|o| o.2).collect(),
            ops: j
                .ops
                .iter()
                .map(|(target, new, _)| Op {
                    target: PathBuf::from(target),
                    new: new.then(|| (Vec::new(), 0)),
                })
                .collect(),
            restart: j.restart,
            start: j.start,
        };
        if j.phase == "done" {
            let r = Recovery::Completed {
                restart: t.restart.clone(),
                start: t.start.clone(),
            };
            t.finish()?;
            return Ok(Some(r));
        }
        let files = t.ops.iter().map(|o| o.target.clone()).collect();
        t.rollback()?;
        t.finish()?;
        Ok(Some(Recovery::RolledBack { files }))
    }

    /// Stages `ops` (step 1 and 2 of the module documentation). `restart` and `start` are the
    /// units a recovery completes after a crash past the commit.
    pub fn begin(
        &self,
        ops: Vec<Op>,
        restart: &[String],
        start: &[String],
    ) -> std::io::Result<Txn> {
        let dir = self.state().join("txn");
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(dir.join("new"))?;
        fs::create_dir_all(dir.join("bak"))?;
        let mut backups = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let old = fs::symlink_metadata(&op.target).ok();
            if let Some((data, src_mode)) = &op.new {
                let staged = dir.join("new").join(i.to_string());
                let mut f = fs::File::create(&staged)?;
                f.write_all(data)?;
                // The old file's mode and owner, never looser than the source's.
                let mode = match &old {
                    Some(m) => (m.mode() & 0o7777) & (src_mode | !0o077),
                    None => src_mode & 0o7777,
                };
                f.set_permissions(fs::Permissions::from_mode(mode))?;
                if let Some(m) = &old {
                    if m.uid() != rustix::process::geteuid().as_raw()
                        || m.gid() != rustix::process::getegid().as_raw()
                    {
                        std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))?;
                    }
                }
                f.sync_all()?;
            }
            let backup = old.is_some_and(|m| m.is_file());
            if backup {
                fs::hard_link(&op.target, dir.join("bak").join(i.to_string()))?;
            }
            backups.push(backup);
        }
        sync_dir(&dir.join("new"));
        sync_dir(&dir.join("bak"));
        let t = Txn {
            dir,
            ops,
            backups,
            restart: restart.to_vec(),
            start: start.to_vec(),
        };
        test_point("staged");
        t.write_journal("commit")?;
        Ok(t)
    }
}

fn parse_app(data: &[u8]) -> Option<App> {
    let v: serde_like::Record = serde_like::parse(data)?;
    Some(App {
        name: v.app,
        files: v.files.into_iter().map(PathBuf::from).collect(),
    })
}

/// The app records under `state` (the state directory), by name, with `overlay` applied.
fn read_apps(state: &Path, overlay: &Overlay) -> Vec<App> {
    let apps = state.join("apps");
    let mut paths: Vec<PathBuf> = fs::read_dir(&apps)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .chain(
            overlay
                .keys()
                .filter(|p| p.parent() == Some(&apps))
                .cloned(),
        )
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.dedup();
    paths
        .iter()
        .filter_map(|p| match overlay.get(p) {
            Some(Some(data)) => parse_app(data),
            Some(None) => None,
            None => parse_app(&fs::read(p).ok()?),
        })
        .collect()
}

/// The committed state of a scope's Quadlet directory, read without the scope lock (for
/// `quadlet list`, which must not wait while an apply runs; see [`read_committed`]).
#[derive(Debug, Default)]
pub struct Committed {
    /// The resolved Quadlet directory.
    pub dir: PathBuf,
    /// The files of a transaction in progress (not yet `done`) as they were before it: old
    /// content, or `None` for a file it adds. Empty when no transaction is in progress.
    pub overlay: Overlay,
    /// The app records, by name, as committed.
    pub apps: Vec<App>,
}

/// What changes with every transaction step: the state directory's and the transaction
/// directory's modification times (a transaction creates and removes `txn/`; every journal
/// phase is a rename in it) and the journal.
type Stamp = (Option<(i64, i64)>, Option<(i64, i64)>, Option<Vec<u8>>);

fn stamp(state: &Path) -> Stamp {
    let mtime = |p: &Path| fs::metadata(p).ok().map(|m| (m.mtime(), m.mtime_nsec()));
    (
        mtime(state),
        mtime(&state.join("txn")),
        fs::read(state.join("txn/journal")).ok(),
    )
}

/// Reads the committed state once; `None` when a transaction moved under it.
fn read_committed_once(dir: &Path) -> Option<Committed> {
    let state = dir.join(STATE_DIR);
    let txn = state.join("txn");
    let mut overlay = Overlay::new();
    if let Some(j) = fs::read(txn.join("journal"))
        .ok()
        .and_then(|d| serde_like::parse_journal(&d))
    {
        if j.phase != "done" {
            // Committing or rolling back: what was there before counts (what a recovery would
            // restore). A backup renamed back during a rollback is its target again.
            for (i, (target, _, backup)) in j.ops.iter().enumerate() {
                let target = PathBuf::from(target);
                let old = if *backup {
                    match fs::read(txn.join("bak").join(i.to_string())) {
                        Ok(d) => Some(d),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            Some(fs::read(&target).ok()?)
                        }
                        Err(_) => return None,
                    }
                } else {
                    None
                };
                overlay.insert(target, old);
            }
        }
    }
    let apps = read_apps(&state, &overlay);
    Some(Committed {
        dir: dir.to_owned(),
        overlay,
        apps,
    })
}

/// The committed state of the Quadlet directory `dir` (resolved), without the scope lock, and
/// what `read` makes of it (it reads the other files from disk, e.g. a conversion with the
/// overlay). Always consistent: app records and Quadlet files are only ever replaced by
/// rename (whole, old or new), a transaction in progress is seen as not yet made (its files'
/// old contents from the backups), and when a transaction step happened during the reading
/// (`Stamp`), it is read again.
pub fn read_committed<T>(dir: &Path, mut read: impl FnMut(&Committed) -> T) -> (Committed, T) {
    let state = dir.join(STATE_DIR);
    let mut last = None;
    for _ in 0..100 {
        let before = stamp(&state);
        let Some(c) = read_committed_once(dir) else {
            std::thread::sleep(std::time::Duration::from_millis(5));
            continue;
        };
        let t = read(&c);
        if stamp(&state) == before {
            return (c, t);
        }
        last = Some((c, t));
    }
    // Transactions without end (not seen in practice): the last reading.
    last.unwrap_or_else(|| {
        let c = Committed {
            dir: dir.to_owned(),
            apps: read_apps(&state, &Overlay::new()),
            ..Committed::default()
        };
        let t = read(&c);
        (c, t)
    })
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

impl Txn {
    fn write_journal(&self, phase: &str) -> std::io::Result<()> {
        let ops: Vec<(String, bool, bool)> = self
            .ops
            .iter()
            .zip(&self.backups)
            .map(|(o, b)| (o.target.to_string_lossy().into_owned(), o.new.is_some(), *b))
            .collect();
        let text = serde_like::render_journal(phase, &ops, &self.restart, &self.start);
        let tmp = self.dir.join("journal.tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join("journal"))?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Step 3 and 4: puts every new file in place and removes the removed ones.
    pub fn commit(&self) -> std::io::Result<()> {
        test_point("committing-start");
        for (i, op) in self.ops.iter().enumerate() {
            if op.new.is_some() {
                if let Some(parent) = op.target.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::rename(self.dir.join("new").join(i.to_string()), &op.target)?;
            } else {
                match fs::remove_file(&op.target) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                remove_empty_dropin_dir(&op.target);
            }
            if i == 0 {
                test_point("committing");
            }
        }
        for op in &self.ops {
            if let Some(parent) = op.target.parent() {
                sync_dir(parent);
            }
        }
        self.write_journal("done")?;
        test_point("committed");
        Ok(())
    }

    /// Restores every target from its backup (added files are removed).
    pub fn rollback(&self) -> std::io::Result<()> {
        self.write_journal("rollback")?;
        for (i, op) in self.ops.iter().enumerate() {
            if self.backups[i] {
                if let Some(parent) = op.target.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::rename(self.dir.join("bak").join(i.to_string()), &op.target)?;
            } else {
                match fs::remove_file(&op.target) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => remove_empty_dropin_dir(&op.target),
                }
            }
        }
        Ok(())
    }

    /// Removes the transaction directory: the transaction is over.
    pub fn finish(self) -> std::io::Result<()> {
        fs::remove_dir_all(&self.dir)
    }
}

/// Removes the `NAME.d` directory of a removed drop-in when it is empty.
fn remove_empty_dropin_dir(target: &Path) {
    if let Some(parent) = target.parent() {
        if parent.extension().is_some_and(|e| e == "d") {
            let _ = fs::remove_dir(parent);
        }
    }
}

/// The two small JSON files of the store, written and read without serde (this module is
/// built without the `bus` feature too).
mod serde_like {
    use std::fmt::Write as _;

    pub struct Record {
        pub app: String,
        pub files: Vec<String>,
    }

    pub struct Journal {
        pub phase: String,
        pub ops: Vec<(String, bool, bool)>,
        pub restart: Vec<String>,
        pub start: Vec<String>,
    }

    fn quote(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    fn list(items: &[String]) -> String {
        let q: Vec<String> = items.iter().map(|s| quote(s)).collect();
        format!("[{}]", q.join(", "))
    }

    pub fn render(app: &str, files: &[String]) -> String {
        format!("{{\"app\": {}, \"files\": {}}}\n", quote(app), list(files))
    }

    pub fn render_journal(
        phase: &str,
        ops: &[(String, bool, bool)],
        restart: &[String],
        start: &[String],
    ) -> String {
        // One value per line: `phase`, then `op`, `restart`, `start` lines; easy to read back
        // without a JSON parser and still readable by people.
        let mut s = format!("phase {}\n", quote(phase));
        for (t, new, bak) in ops {
            let _ = writeln!(s, "op {} {} {}", u8::from(*new), u8::from(*bak), quote(t));
        }
        for u in restart {
            let _ = writeln!(s, "restart {}", quote(u));
        }
        for u in start {
            let _ = writeln!(s, "start {}", quote(u));
        }
        s.push_str("end\n");
        s
    }

    /// Reads one quoted string at the start of `s`; returns it and the rest.
    fn unquote(s: &str) -> Option<(String, &str)> {
        let s = s.trim_start().strip_prefix('"')?;
        let mut out = String::new();
        let mut chars = s.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((out, &s[i + 1..])),
                '\\' => match chars.next()?.1 {
                    'u' => {
                        let hex: String =
                            (0..4).filter_map(|_| chars.next().map(|x| x.1)).collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    c => out.push(c),
                },
                c => out.push(c),
            }
        }
        None
    }

    pub fn parse_journal(data: &[u8]) -> Option<Journal> {
        let text = std::str::from_utf8(data).ok()?;
        // A journal without its last line was not completely written (it is renamed into
        // place, so this does not happen; kept as a guard).
        if !text.ends_with("end\n") {
            return None;
        }
        let mut j = Journal {
            phase: String::new(),
            ops: Vec::new(),
            restart: Vec::new(),
            start: Vec::new(),
        };
        for line in text.lines() {
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            match word {
                "phase" => j.phase = unquote(rest)?.0,
                "op" => {
                    let mut it = rest.splitn(3, ' ');
                    let new = it.next()? == "1";
                    let bak = it.next()? == "1";
                    j.ops.push((unquote(it.next()?)?.0, new, bak));
                }
                "restart" => j.restart.push(unquote(rest)?.0),
                "start" => j.start.push(unquote(rest)?.0),
                _ => {}
            }
        }
        Some(j)
    }

    /// Reads `{"app": "...", "files": ["...", ...]}` as written by [`render`].
    pub fn parse(data: &[u8]) -> Option<Record> {
        let text = std::str::from_utf8(data).ok()?;
        let rest = text.trim().strip_prefix('{')?.trim_start();
        let rest = rest.strip_prefix("\"app\":")?;
        let (app, rest) = unquote(rest)?;
        let rest = rest.trim_start().strip_prefix(',')?.trim_start();
        let mut rest = rest
            .strip_prefix("\"files\":")?
            .trim_start()
            .strip_prefix('[')?;
        let mut files = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.starts_with(']') {
                break;
            }
            let (f, r) = unquote(rest)?;
            files.push(f);
            rest = r.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        Some(Record { app, files })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn records_and_journals_read_back() {
        let r = serde_like::render("web", &["a.container".into(), "we\"ird\\.volume".into()]);
        let p = serde_like::parse(r.as_bytes()).unwrap();
        assert_eq!(p.app, "web");
        assert_eq!(p.files, vec!["a.container", "we\"ird\\.volume"]);
        let j = serde_like::render_journal(
            "commit",
            &[("/x/a b".into(), true, false)],
            &["a.service".into()],
            &[],
        );
        let p = serde_like::parse_journal(j.as_bytes()).unwrap();
        assert_eq!(p.phase, "commit");
        assert_eq!(p.ops, vec![("/x/a b".to_owned(), true, false)]);
        assert!(serde_like::parse_journal(&j.as_bytes()[..j.len() - 2]).is_none());
    }

    #[test]
    fn the_scope_lock_keeps_a_second_command_waiting() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let d = tempfile::tempdir().unwrap();
        let first = Store::open(d.path()).unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let (dir, flag) = (d.path().to_owned(), Arc::clone(&got));
        let second = std::thread::spawn(move || {
            let s = Store::open(&dir).unwrap();
            flag.store(true, Ordering::SeqCst);
            drop(s);
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !got.load(Ordering::SeqCst),
            "the second open did not wait for the lock"
        );
        drop(first);
        second.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
    }

    /// `a.container` ("old") to be replaced by "new", `b.container` to be added.
    fn replace_a_add_b(store: &Store) -> (PathBuf, PathBuf, Vec<Op>) {
        let a = store.dir.join("a.container");
        fs::write(&a, "old").unwrap();
        let b = store.dir.join("b.container");
        let ops = vec![
            Op {
                target: a.clone(),
                new: Some((b"new".to_vec(), 0o644)),
            },
            Op {
                target: b.clone(),
                new: Some((b"b".to_vec(), 0o644)),
            },
        ];
        (a, b, ops)
    }

    #[test]
    fn the_committed_state_is_the_old_one_until_the_transaction_is_done() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let (a, new_b, mut ops) = replace_a_add_b(&store);
        let rec = App {
            name: "x".into(),
            files: vec!["a.container".into(), "b.container".into()],
        };
        ops.push(store.app_op(&rec));
        let txn = store.begin(ops, &[], &[]).unwrap();
        // Half-way through the renames (phase `commit`): a is new on disk, b and the record
        // are not there yet; the committed state is the old one. The lock is held meanwhile.
        fs::rename(store.state().join("txn/new/0"), &a).unwrap();
        let (c, n) = read_committed(&store.dir, |c| c.overlay.len());
        assert_eq!(n, 3);
        assert_eq!(c.overlay[&a].as_deref(), Some(&b"old"[..]));
        assert_eq!(c.overlay[&new_b], None);
        assert!(c.apps.is_empty());
        // Done: the new state, no overlay.
        fs::rename(&a, store.state().join("txn/new/0")).unwrap();
        txn.commit().unwrap();
        let (c, ()) = read_committed(&store.dir, |_| ());
        assert!(c.overlay.is_empty());
        assert_eq!(c.apps, vec![rec.clone()]);
        // Rolling back (phase `rollback`, a backup already renamed back): the old state.
        txn.rollback().unwrap();
        let (c, ()) = read_committed(&store.dir, |_| ());
        assert_eq!(c.overlay[&a].as_deref(), Some(&b"old"[..]));
        assert!(c.apps.is_empty());
        txn.finish().unwrap();
        let (c, ()) = read_committed(&store.dir, |_| ());
        assert!(c.overlay.is_empty() && c.apps.is_empty());
    }

    #[test]
    fn a_transaction_rolls_back_to_the_old_files() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let (a, b, ops) = replace_a_add_b(&store);
        fs::set_permissions(&a, fs::Permissions::from_mode(0o600)).unwrap();
        let t = store.begin(ops, &[], &[]).unwrap();
        t.commit().unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "new");
        assert_eq!(fs::metadata(&a).unwrap().mode() & 0o777, 0o600);
        t.rollback().unwrap();
        t.finish().unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "old");
        assert!(!b.exists());
    }
}
