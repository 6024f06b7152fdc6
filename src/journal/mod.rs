//! Reading the systemd journal natively, through libsystemd's sd-journal(3) API.
//!
//! Never a `journalctl` subprocess: this module calls `sd_journal_*` in `libsystemd.so.0`
//! (linked by its soname, so building needs no `libsystemd-dev`). The bindings are the dozen
//! functions used here, declared by hand in `ffi`; the `systemd` crate would bring an LGPL
//! Rust crate into this MIT/Apache project and a pkg-config build script for the same dozen
//! calls. All `unsafe` code of the crate is in this file, behind the safe [`Journal`].
//!
//! Which records belong to a unit follows journalctl's `-u` / `--user-unit` (systemd 252,
//! `add_matches_for_unit` / `add_matches_for_user_unit`):
//! * a system unit: its own processes (`_SYSTEMD_UNIT=`), the manager's messages about it
//!   (`_PID=1` and `UNIT=`), messages about it from privileged programs (`_UID=0` and
//!   `OBJECT_SYSTEMD_UNIT=`), and its core dumps (`COREDUMP_UNIT=`);
//! * a user unit of user `UID`: its processes (`_SYSTEMD_USER_UNIT=` and `_UID=`), its user
//!   manager's messages about it (`USER_UNIT=` and `_UID=`), and its core dumps
//!   (`COREDUMP_USER_UNIT=`).
//!
//! Feature `journal` (part of `cli`); the generator never links it.

use std::ffi::{CStr, CString};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};

/// The message ID of systemd-coredump's records.
const COREDUMP_MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";

/// Errors of the journal API: the failing call and its errno.
#[derive(Debug, thiserror::Error)]
#[error("{call}: {}", std::io::Error::from_raw_os_error(*errno))]
pub struct Error {
    /// The sd-journal call that failed.
    pub call: &'static str,
    /// Its (positive) errno.
    pub errno: i32,
}

fn check(call: &'static str, r: i32) -> Result<i32, Error> {
    if r < 0 {
        Err(Error { call, errno: -r })
    } else {
        Ok(r)
    }
}

/// Whose units to match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Units of the system manager.
    System,
    /// Units of the user manager of this UID.
    User(u32),
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `__REALTIME_TIMESTAMP`: µs since the epoch.
    pub realtime_usec: u64,
    /// `__CURSOR`: where the record is, for resuming.
    pub cursor: String,
    /// Every field as `(NAME, value)`, in the journal's order. Binary values are kept as
    /// lossily decoded text.
    pub fields: Vec<(String, String)>,
}

impl Entry {
    /// The value of field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `MESSAGE=` (empty if none).
    pub fn message(&self) -> &str {
        self.get("MESSAGE").unwrap_or("")
    }

    /// `PRIORITY=` (6, info, when absent or invalid).
    pub fn priority(&self) -> u8 {
        self.get("PRIORITY")
            .and_then(|p| p.parse().ok())
            .unwrap_or(6)
    }

    /// The writer as journalctl names it: `SYSLOG_IDENTIFIER`, else `_COMM`, with
    /// `[SYSLOG_PID or _PID]`.
    pub fn identifier(&self) -> String {
        let ident = self
            .get("SYSLOG_IDENTIFIER")
            .or_else(|| self.get("_COMM"))
            .unwrap_or("unknown");
        match self.get("SYSLOG_PID").or_else(|| self.get("_PID")) {
            Some(pid) => format!("{ident}[{pid}]"),
            None => ident.to_owned(),
        }
    }

    /// journalctl's `short` format in UTC: `Dec 06 20:47:03 host sh[34]: message`; with
    /// `colour`, errors red and warnings yellow as journalctl does on a terminal.
    pub fn short_line(&self, colour: bool) -> String {
        let host = self.get("_HOSTNAME").unwrap_or("localhost");
        let head = format!(
            "{} {host} {}:",
            crate::cli::fmt::short_timestamp(self.realtime_usec),
            self.identifier()
        );
        let msg = self.message();
        let msg = match self.priority() {
            p if colour && p <= 3 => {
                crate::cli::fmt::paint(true, crate::cli::fmt::Colour::Red, msg)
            }
            4 if colour => crate::cli::fmt::paint(true, crate::cli::fmt::Colour::Yellow, msg),
            _ => msg.to_owned(),
        };
        format!("{head} {msg}")
    }

    /// The record as one JSON object, like `journalctl -o json`: every field as a string,
    /// plus `__REALTIME_TIMESTAMP` and `__CURSOR`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("__CURSOR".into(), json!(self.cursor));
        m.insert(
            "__REALTIME_TIMESTAMP".into(),
            json!(self.realtime_usec.to_string()),
        );
        for (k, v) in &self.fields {
            m.insert(k.clone(), json!(v));
        }
        Value::Object(m)
    }
}

/// What [`Journal::watch`] returns: a wait for changes of the journal.
#[derive(Debug)]
pub struct Changes {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

impl Changes {
    /// Waits until the journal changed (new records, new or rotated files); then call
    /// [`Journal::process`] before reading on. Cancel-safe.
    pub async fn changed(&self) -> std::io::Result<()> {
        self.fd.readable().await?.clear_ready();
        Ok(())
    }
}

/// An open journal (all local journal files, or one directory's).
#[derive(Debug)]
pub struct Journal {
    j: *mut ffi::SdJournal,
}

impl Drop for Journal {
    fn drop(&mut self) {
        // SAFETY: `j` came from a successful sd_journal_open* and is closed once.
        unsafe { ffi::sd_journal_close(self.j) }
    }
}

impl Journal {
    /// Opens the local journal files (`/run/log/journal`, `/var/log/journal`), or only those
    /// in `directory` (like `journalctl -D`).
    pub fn open(directory: Option<&Path>) -> Result<Journal, Error> {
        let mut j: *mut ffi::SdJournal = std::ptr::null_mut();
        match directory {
            None => {
                // SAFETY: `j` is a valid out-pointer.
                let r = unsafe { ffi::sd_journal_open(&mut j, ffi::SD_JOURNAL_LOCAL_ONLY) };
                check("sd_journal_open", r)?;
            }
            Some(dir) => {
                let path = CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| Error {
                    call: "sd_journal_open_directory",
                    errno: 22,
                })?;
                // SAFETY: valid out-pointer and NUL-terminated path.
                let r = unsafe { ffi::sd_journal_open_directory(&mut j, path.as_ptr(), 0) };
                check("sd_journal_open_directory", r)?;
            }
        }
        Ok(Journal { j })
    }

    /// Adds `FIELD=value` to the current match group (matches of different fields are
    /// ANDed, of the same field ORed).
    pub fn add_match(&mut self, field: &str, value: &str) -> Result<(), Error> {
        let m = format!("{field}={value}");
        // SAFETY: pointer and length of a live buffer.
        let r = unsafe { ffi::sd_journal_add_match(self.j, m.as_ptr().cast(), m.len()) };
        check("sd_journal_add_match", r).map(drop)
    }

    /// Removes every match: what follows matches anew.
    pub fn flush_matches(&mut self) {
        // SAFETY: `j` is open.
        unsafe { ffi::sd_journal_flush_matches(self.j) }
    }

    /// Ends the current group of matches; the next group is ORed with it.
    pub fn add_disjunction(&mut self) -> Result<(), Error> {
        // SAFETY: `j` is open.
        check("sd_journal_add_disjunction", unsafe {
            ffi::sd_journal_add_disjunction(self.j)
        })
        .map(drop)
    }

    /// Ends the current set of groups; what follows is ANDed with it.
    pub fn add_conjunction(&mut self) -> Result<(), Error> {
        // SAFETY: `j` is open.
        check("sd_journal_add_conjunction", unsafe {
            ffi::sd_journal_add_conjunction(self.j)
        })
        .map(drop)
    }

    /// Matches the records of `units` (ORed) of `scope`, as journalctl's `-u`/`--user-unit`
    /// (see the module docs).
    pub fn match_units<S: AsRef<str>>(&mut self, units: &[S], scope: Scope) -> Result<(), Error> {
        for unit in units {
            let unit = unit.as_ref();
            match scope {
                Scope::System => {
                    self.add_match("_SYSTEMD_UNIT", unit)?;
                    self.add_disjunction()?;
                    self.add_match("MESSAGE_ID", COREDUMP_MESSAGE_ID)?;
                    self.add_match("_UID", "0")?;
                    self.add_match("COREDUMP_UNIT", unit)?;
                    self.add_disjunction()?;
                    self.add_match("_PID", "1")?;
                    self.add_match("UNIT", unit)?;
                    self.add_disjunction()?;
                    self.add_match("_UID", "0")?;
                    self.add_match("OBJECT_SYSTEMD_UNIT", unit)?;
                    self.add_disjunction()?;
                }
                Scope::User(uid) => {
                    let uid = uid.to_string();
                    self.add_match("_SYSTEMD_USER_UNIT", unit)?;
                    self.add_match("_UID", &uid)?;
                    self.add_disjunction()?;
                    self.add_match("USER_UNIT", unit)?;
                    self.add_match("_UID", &uid)?;
                    self.add_disjunction()?;
                    self.add_match("MESSAGE_ID", COREDUMP_MESSAGE_ID)?;
                    self.add_match("_UID", &uid)?;
                    self.add_match("COREDUMP_USER_UNIT", unit)?;
                    self.add_disjunction()?;
                }
            }
        }
        Ok(())
    }

    /// Restricts what was matched so far to the current boot (`_BOOT_ID=`), as
    /// `systemctl status` does.
    pub fn match_this_boot(&mut self) -> Result<(), Error> {
        let mut id = [0u8; 16];
        // SAFETY: `id` is a 16-byte out-buffer, the size of sd_id128_t.
        check("sd_id128_get_boot", unsafe {
            ffi::sd_id128_get_boot(id.as_mut_ptr())
        })?;
        let hex = id.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        self.add_conjunction()?;
        self.add_match("_BOOT_ID", &hex)
    }

    /// The last `n` matching records, oldest first.
    pub fn last(&mut self, n: usize) -> Result<Vec<Entry>, Error> {
        // SAFETY: `j` is open.
        check("sd_journal_seek_tail", unsafe {
            ffi::sd_journal_seek_tail(self.j)
        })?;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            // SAFETY: `j` is open.
            let r = check("sd_journal_previous", unsafe {
                ffi::sd_journal_previous(self.j)
            })?;
            if r == 0 {
                break;
            }
            out.push(self.entry()?);
        }
        out.reverse();
        Ok(out)
    }

    /// Positions the journal so that [`Journal::next_entry`] returns the first record at or
    /// after `usec` (µs since the epoch).
    pub fn seek_time(&mut self, usec: u64) -> Result<(), Error> {
        // SAFETY: `j` is open.
        check("sd_journal_seek_realtime_usec", unsafe {
            ffi::sd_journal_seek_realtime_usec(self.j, usec)
        })
        .map(drop)
    }

    /// Positions the journal before its first record.
    pub fn seek_head(&mut self) -> Result<(), Error> {
        // SAFETY: `j` is open.
        check("sd_journal_seek_head", unsafe {
            ffi::sd_journal_seek_head(self.j)
        })
        .map(drop)
    }

    /// Positions the journal after its last record (then [`Journal::next_entry`] returns only
    /// records that arrive later).
    pub fn seek_tail(&mut self) -> Result<(), Error> {
        // SAFETY: `j` is open.
        check("sd_journal_seek_tail", unsafe {
            ffi::sd_journal_seek_tail(self.j)
        })?;
        // After seek_tail, sd_journal_next would return the last record; step onto it with
        // previous so that next moves past it.
        // SAFETY: `j` is open.
        check("sd_journal_previous", unsafe {
            ffi::sd_journal_previous(self.j)
        })
        .map(drop)
    }

    /// Positions the journal on the record at `cursor` (from [`Entry::cursor`]), so that
    /// [`Journal::next_entry`] returns the records after it.
    pub fn seek_after(&mut self, cursor: &str) -> Result<(), Error> {
        let c = CString::new(cursor).map_err(|_| Error {
            call: "sd_journal_seek_cursor",
            errno: 22,
        })?;
        // SAFETY: `j` is open; `c` is NUL-terminated.
        check("sd_journal_seek_cursor", unsafe {
            ffi::sd_journal_seek_cursor(self.j, c.as_ptr())
        })?;
        // SAFETY: `j` is open. Moves onto the record of the cursor.
        check("sd_journal_next", unsafe { ffi::sd_journal_next(self.j) }).map(drop)
    }

    /// The next matching record, or `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        // SAFETY: `j` is open.
        let r = check("sd_journal_next", unsafe { ffi::sd_journal_next(self.j) })?;
        if r == 0 {
            return Ok(None);
        }
        self.entry().map(Some)
    }

    /// Waits until the journal changes or `timeout` passes (`sd_journal_wait`).
    pub fn wait(&mut self, timeout: Duration) -> Result<(), Error> {
        let usec = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        // SAFETY: `j` is open.
        check("sd_journal_wait", unsafe {
            ffi::sd_journal_wait(self.j, usec)
        })
        .map(drop)
    }

    /// Watches the journal for changes in tokio's reactor (`sd_journal_get_fd`), to wait for
    /// them together with other things: after [`Changes::changed`], call
    /// [`Journal::process`]. Call it right after opening, before reading, so that no change in
    /// between is missed. Needs a tokio runtime with I/O enabled.
    pub fn watch(&mut self) -> Result<Changes, Error> {
        // SAFETY: `j` is open.
        let fd = check("sd_journal_get_fd", unsafe {
            ffi::sd_journal_get_fd(self.j)
        })?;
        // SAFETY: `fd` is the journal's inotify descriptor, open while `self` is; it is only
        // borrowed here to duplicate it.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let own = rustix::io::fcntl_dupfd_cloexec(borrowed, 0).map_err(|e| Error {
            call: "fcntl(F_DUPFD_CLOEXEC)",
            errno: e.raw_os_error(),
        })?;
        // The duplicate shares the inotify instance, so it becomes readable when the journal's
        // descriptor does; sd_journal_process reads the events.
        // SAFETY: `own` is owned by the AsyncFd and stays open until the AsyncFd drops it.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(own, tokio::io::Interest::READABLE)
        }
        .map_err(|e| Error {
            call: "registering the journal's descriptor",
            errno: e.into_parts().1.raw_os_error().unwrap_or(5),
        })?;
        Ok(Changes { fd })
    }

    /// Takes in the changes the descriptor of [`Journal::watch`] signalled: new records, new or rotated files
    /// (`sd_journal_process`).
    pub fn process(&mut self) -> Result<(), Error> {
        // SAFETY: `j` is open.
        check("sd_journal_process", unsafe {
            ffi::sd_journal_process(self.j)
        })
        .map(drop)
    }

    /// The record at the current position.
    fn entry(&mut self) -> Result<Entry, Error> {
        let mut usec = 0u64;
        // SAFETY: `j` is positioned on a record; `usec` is a valid out-pointer.
        check("sd_journal_get_realtime_usec", unsafe {
            ffi::sd_journal_get_realtime_usec(self.j, &mut usec)
        })?;
        let mut cursor_ptr: *mut std::ffi::c_char = std::ptr::null_mut();
        // SAFETY: valid out-pointer; the string is malloc'd and freed below.
        let cursor = match unsafe { ffi::sd_journal_get_cursor(self.j, &mut cursor_ptr) } {
            r if r >= 0 && !cursor_ptr.is_null() => {
                // SAFETY: sd_journal_get_cursor returned a NUL-terminated malloc'd string.
                let s = unsafe { CStr::from_ptr(cursor_ptr) }
                    .to_string_lossy()
                    .into_owned();
                // SAFETY: it was allocated with malloc by libsystemd.
                unsafe { ffi::free(cursor_ptr.cast()) };
                s
            }
            _ => String::new(),
        };
        let mut fields = Vec::new();
        // SAFETY: `j` is positioned on a record.
        unsafe { ffi::sd_journal_restart_data(self.j) };
        loop {
            let mut data: *const std::ffi::c_void = std::ptr::null();
            let mut len = 0usize;
            // SAFETY: valid out-pointers; the data stays valid until the next call on `j`,
            // and is copied before that.
            let r = unsafe { ffi::sd_journal_enumerate_data(self.j, &mut data, &mut len) };
            if r <= 0 || data.is_null() {
                break;
            }
            // SAFETY: libsystemd returned `len` readable bytes at `data`.
            let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
            if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
                fields.push((
                    String::from_utf8_lossy(&bytes[..eq]).into_owned(),
                    String::from_utf8_lossy(&bytes[eq + 1..]).into_owned(),
                ));
            }
        }
        Ok(Entry {
            realtime_usec: usec,
            cursor,
            fields,
        })
    }
}

/// The last `n` records of `units` in this boot, oldest first: what `systemctl status` shows
/// under a unit, and what a failed job's message quotes.
pub fn last_lines<S: AsRef<str>>(
    units: &[S],
    scope: Scope,
    n: usize,
    directory: Option<&Path>,
) -> Result<Vec<Entry>, Error> {
    let mut j = Journal::open(directory)?;
    j.match_units(units, scope)?;
    j.match_this_boot()?;
    j.last(n)
}

/// The last `n` records in this boot of each unit of `units` on its own, oldest first, in the
/// order of `units`: what `status` shows under each unit. The journal is opened once for all
/// (opening maps every journal file; that is most of the cost for a few lines).
pub fn last_lines_each<S: AsRef<str>>(
    units: &[S],
    scope: Scope,
    n: usize,
    directory: Option<&Path>,
) -> Result<Vec<Vec<Entry>>, Error> {
    let mut j = Journal::open(directory)?;
    units
        .iter()
        .map(|unit| {
            j.flush_matches();
            j.match_units(std::slice::from_ref(unit), scope)?;
            j.match_this_boot()?;
            j.last(n)
        })
        .collect()
}

/// What the processes of `unit` wrote since `since` (µs since the epoch): its last `n`
/// records, oldest first, without the manager's messages about it. For explaining a failed or
/// finished job: first waits (up to `settle`) until the manager's record of the job's result
/// (`JOB_RESULT=`) is in the journal, because journald may take the unit's last output
/// lines from its stream a moment after the job ended.
///
/// `pids` are the unit's processes that ran (e.g. `ExecMainPID`): their records count too.
/// journald attributes a line to a unit by reading the writer's cgroup when it processes the
/// line; a process that already exited by then (a failing `podman run`, a quick one-shot)
/// leaves a record without `_SYSTEMD_USER_UNIT=`/`_SYSTEMD_UNIT=` for the unit, on hosts as in
/// the test sandbox. Only records since `since` are considered, so a reused PID does not
/// bring in older lines.
pub fn output_since(
    unit: &str,
    scope: Scope,
    since: u64,
    n: usize,
    pids: &[u32],
    settle: Duration,
    directory: Option<&Path>,
) -> Result<Vec<Entry>, Error> {
    // Without a running journald (no socket) nothing more will arrive.
    let settle = if Path::new("/run/systemd/journal/socket").exists() {
        settle
    } else {
        Duration::ZERO
    };
    let deadline = std::time::Instant::now() + settle;
    let mut j = Journal::open(directory)?;
    match scope {
        Scope::System => {
            j.add_match("_PID", "1")?;
            j.add_match("UNIT", unit)?;
        }
        Scope::User(uid) => {
            j.add_match("USER_UNIT", unit)?;
            j.add_match("_UID", &uid.to_string())?;
        }
    }
    j.seek_time(since)?;
    'settled: loop {
        while let Some(e) = j.next_entry()? {
            if e.get("JOB_RESULT").is_some() {
                break 'settled;
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        j.wait(left.min(Duration::from_millis(100)))?;
    }
    let mut j = Journal::open(directory)?;
    let uid = match scope {
        Scope::System => None,
        Scope::User(uid) => Some(uid.to_string()),
    };
    match &uid {
        None => j.add_match("_SYSTEMD_UNIT", unit)?,
        Some(uid) => {
            j.add_match("_SYSTEMD_USER_UNIT", unit)?;
            j.add_match("_UID", uid)?;
        }
    }
    for pid in pids {
        j.add_disjunction()?;
        j.add_match("_PID", &pid.to_string())?;
        if let Some(uid) = &uid {
            j.add_match("_UID", uid)?;
        }
    }
    j.seek_time(since)?;
    let mut kept = std::collections::VecDeque::new();
    while let Some(e) = j.next_entry()? {
        kept.push_back(e);
        if kept.len() > n {
            kept.pop_front();
        }
    }
    Ok(kept.into())
}

/// The raw declarations of the sd-journal functions used (sd-journal(3), sd-id128(3)).
mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    /// `sd_journal`, opaque.
    #[repr(C)]
    pub struct SdJournal {
        _private: [u8; 0],
    }

    /// `SD_JOURNAL_LOCAL_ONLY`.
    pub const SD_JOURNAL_LOCAL_ONLY: c_int = 1;

    #[link(name = "libsystemd.so.0", kind = "dylib", modifiers = "+verbatim")]
    extern "C" {
        pub fn sd_journal_open(ret: *mut *mut SdJournal, flags: c_int) -> c_int;
        pub fn sd_journal_open_directory(
            ret: *mut *mut SdJournal,
            path: *const c_char,
            flags: c_int,
        ) -> c_int;
        pub fn sd_journal_close(j: *mut SdJournal);
        pub fn sd_journal_add_match(j: *mut SdJournal, data: *const c_void, size: usize) -> c_int;
        pub fn sd_journal_add_disjunction(j: *mut SdJournal) -> c_int;
        pub fn sd_journal_flush_matches(j: *mut SdJournal);
        pub fn sd_journal_add_conjunction(j: *mut SdJournal) -> c_int;
        pub fn sd_journal_seek_head(j: *mut SdJournal) -> c_int;
        pub fn sd_journal_seek_tail(j: *mut SdJournal) -> c_int;
        pub fn sd_journal_seek_realtime_usec(j: *mut SdJournal, usec: u64) -> c_int;
        pub fn sd_journal_seek_cursor(j: *mut SdJournal, cursor: *const c_char) -> c_int;
        pub fn sd_journal_next(j: *mut SdJournal) -> c_int;
        pub fn sd_journal_previous(j: *mut SdJournal) -> c_int;
        pub fn sd_journal_get_realtime_usec(j: *mut SdJournal, ret: *mut u64) -> c_int;
        pub fn sd_journal_get_cursor(j: *mut SdJournal, cursor: *mut *mut c_char) -> c_int;
        pub fn sd_journal_restart_data(j: *mut SdJournal);
        pub fn sd_journal_enumerate_data(
            j: *mut SdJournal,
            data: *mut *const c_void,
            length: *mut usize,
        ) -> c_int;
        pub fn sd_journal_wait(j: *mut SdJournal, timeout_usec: u64) -> c_int;
        pub fn sd_journal_get_fd(j: *mut SdJournal) -> c_int;
        pub fn sd_journal_process(j: *mut SdJournal) -> c_int;
        pub fn sd_id128_get_boot(ret: *mut u8) -> c_int;
    }

    extern "C" {
        pub fn free(p: *mut c_void);
    }
}
