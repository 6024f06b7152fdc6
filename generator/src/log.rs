//! A tiny logger for generators: one record per line to `/dev/kmsg` as `<prio>name[pid]: message`
//! (the format of systemd's `log_dispatch` to kmsg, facility `LOG_DAEMON`: err `<27>`, warning
//! `<28>`, info `<30>`, debug `<31>`), or to stderr as `name[pid]: message` when kmsg cannot be
//! opened for writing or is not wanted (`-no-kmsg-log`, `-dryrun`).
//!
//! The maximum level comes from `SYSTEMD_LOG_LEVEL` (`err`, `warning`, `notice`, `info`, `debug`
//! or a number 0-7; default `info`), raised to `debug` by [`Logger::set_debug`] (Quadlet's `-v`).
//!
//! When the service manager invoked us (`$SYSTEMD_EXEC_PID` is our pid or `*`, see
//! [`super::coexist::invoked_by_systemd`]) the kernel command line is honoured too, as systemd's
//! `log_setup_generator()` → `log_parse_environment()` does (log.c `should_parse_proc_cmdline`,
//! `parse_proc_cmdline_item`): `debug` and `systemd.log_level=` set the level. systemd parses the
//! command line first and the environment after it, so a valid `SYSTEMD_LOG_LEVEL` wins over the
//! command line; an invalid one is ignored and leaves the command line's level in place. The
//! command line comes from `$SYSTEMD_PROC_CMDLINE` if set (systemd's test override, honoured the
//! same way), else `/proc/cmdline`; it is read only when invoked by systemd. `rd.`-prefixed keys
//! are for the initrd and ignored here (we never run there), `-` and `_` in key names are
//! equivalent (`proc_cmdline_key_streq`), and a word may be quoted with `"` or `'`. Only the level
//! is taken from the command line: the sink is fixed by the generator's own rules.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

/// Severity of a record (syslog numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `LOG_ERR` (3)
    Error = 3,
    /// `LOG_WARNING` (4)
    Warning = 4,
    /// `LOG_NOTICE` (5)
    Notice = 5,
    /// `LOG_INFO` (6)
    Info = 6,
    /// `LOG_DEBUG` (7)
    Debug = 7,
}

/// `LOG_DAEMON` facility (3 << 3).
const FACILITY_DAEMON: u8 = 24;

impl Level {
    /// Parses a `SYSTEMD_LOG_LEVEL` value.
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim() {
            "emerg" | "alert" | "crit" | "err" | "0" | "1" | "2" | "3" => Some(Level::Error),
            "warning" | "4" => Some(Level::Warning),
            "notice" | "5" => Some(Level::Notice),
            "info" | "6" => Some(Level::Info),
            "debug" | "7" => Some(Level::Debug),
            _ => None,
        }
    }
}

/// The log level the kernel command line `cmdline` asks for, if any: the last of `debug` (a bare
/// word) and `systemd.log_level=<level>` wins, as systemd applies them in order; an invalid level
/// is ignored. Words are split on whitespace, with `"…"` or `'…'` quoting (systemd's
/// `extract_first_word` with `EXTRACT_UNQUOTE|EXTRACT_RELAX`, minus backslash escapes, which no
/// log level needs).
pub fn level_from_cmdline(cmdline: &str) -> Option<Level> {
    let mut level = None;
    for word in cmdline_words(cmdline) {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word.as_str(), None),
        };
        match value {
            None if key == "debug" => level = Some(Level::Debug),
            Some(v) if key_eq(key, "systemd.log_level") => {
                if let Some(l) = Level::parse(v) {
                    level = Some(l);
                }
            }
            _ => {}
        }
    }
    level
}

/// `proc_cmdline_key_streq`: key names compare equal with `-` and `_` interchanged.
fn key_eq(a: &str, b: &str) -> bool {
    let norm = |c: u8| if c == b'-' { b'_' } else { c };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
}

/// Splits a kernel command line into words, removing `"` and `'` quotes (a quote may start or
/// end anywhere in a word, as in `systemd.log_level="debug"`; an unterminated quote runs to the
/// end).
fn cmdline_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Where records go.
#[derive(Debug)]
enum Sink {
    Kmsg(File),
    Stderr,
    /// Kept for later, see [`Logger::deferred`].
    Buffer(Vec<Record>),
}

/// A record kept by a [`Logger::deferred`] logger: its level and message.
pub type Record = (Level, String);

/// The generator's logger (see the module documentation).
#[derive(Debug)]
pub struct Logger {
    name: String,
    pid: u32,
    max: Level,
    sink: Mutex<Sink>,
}

impl Logger {
    /// A logger named `name`; tries `/dev/kmsg` when `use_kmsg`, else logs to stderr.
    pub fn new(name: &str, use_kmsg: bool) -> Self {
        let sink = if use_kmsg {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/kmsg")
                .map_or(Sink::Stderr, Sink::Kmsg)
        } else {
            Sink::Stderr
        };
        let cmdline = if super::coexist::invoked_by_systemd() {
            std::env::var("SYSTEMD_PROC_CMDLINE")
                .ok()
                .or_else(|| std::fs::read_to_string("/proc/cmdline").ok())
        } else {
            None
        };
        let max = std::env::var("SYSTEMD_LOG_LEVEL")
            .ok()
            .and_then(|v| Level::parse(&v))
            .or_else(|| cmdline.as_deref().and_then(level_from_cmdline))
            .unwrap_or(Level::Info);
        Logger {
            name: name.to_owned(),
            pid: std::process::id(),
            max,
            sink: Mutex::new(sink),
        }
    }

    /// A logger with the same name and level that keeps its records instead of writing them;
    /// [`take`](Self::take) hands them over, [`replay`](Self::replay) writes them to the real
    /// logger. The generator's conversion logs through one while another thread writes the units
    /// converted before, so that every record still comes out in the order of a sequential run.
    #[must_use]
    pub fn deferred(&self) -> Logger {
        Logger {
            name: self.name.clone(),
            pid: self.pid,
            max: self.max,
            sink: Mutex::new(Sink::Buffer(Vec::new())),
        }
    }

    /// The records kept so far by a [`deferred`](Self::deferred) logger (none for the others).
    pub fn take(&self) -> Vec<Record> {
        match self.sink.lock().as_deref_mut() {
            Ok(Sink::Buffer(b)) => std::mem::take(b),
            _ => Vec::new(),
        }
    }

    /// Writes records kept by a deferred logger, in their order.
    pub fn replay(&self, records: Vec<Record>) {
        for (level, msg) in records {
            self.log(level, &msg);
        }
    }

    /// Enables debug records (`-v`).
    pub fn set_debug(&mut self) {
        self.max = Level::Debug;
    }

    /// True if records of `level` are written.
    pub fn enabled(&self, level: Level) -> bool {
        level <= self.max
    }

    /// Writes `msg` (each of its lines as a record) at `level`.
    pub fn log(&self, level: Level, msg: &str) {
        if !self.enabled(level) {
            return;
        }
        let Ok(mut sink) = self.sink.lock() else {
            return;
        };
        let mut kmsg = match &mut *sink {
            Sink::Buffer(b) => {
                b.push((level, msg.to_owned()));
                return;
            }
            Sink::Kmsg(f) => Some(f),
            Sink::Stderr => None,
        };
        // What goes to stderr is written with one write(2) per message, so that messages of
        // processes sharing the stream never interleave (`writeln!` writes each piece).
        let mut to_stderr = String::new();
        for line in msg.split('\n') {
            if let Some(f) = kmsg.as_deref_mut() {
                let rec = format!(
                    "<{}>{}[{}]: {}\n",
                    FACILITY_DAEMON + level as u8,
                    self.name,
                    self.pid,
                    line
                );
                // kmsg takes one record per write; a failed write falls back to stderr.
                if f.write_all(rec.as_bytes()).is_ok() {
                    continue;
                }
            }
            let _ = writeln!(to_stderr, "{}[{}]: {}", self.name, self.pid, line);
        }
        if !to_stderr.is_empty() {
            write_stderr(&to_stderr);
        }
    }

    /// Logs at error level.
    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg);
    }

    /// Logs at warning level.
    pub fn warning(&self, msg: &str) {
        self.log(Level::Warning, msg);
    }

    /// Logs at debug level, building the message only when debug records are enabled.
    pub fn debug_with(&self, msg: impl FnOnce() -> String) {
        if self.enabled(Level::Debug) {
            self.log(Level::Debug, &msg());
        }
    }
}

/// Writes `text` to stderr with one write(2) (`eprint!` writes each formatted piece
/// separately, so the output of processes sharing the stream could interleave).
pub fn write_stderr(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_parse_names_and_numbers() {
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("4"), Some(Level::Warning));
        assert_eq!(Level::parse("err"), Some(Level::Error));
        assert_eq!(Level::parse("loud"), None);
    }

    #[test]
    fn kernel_command_line_debug_word_enables_debug() {
        assert_eq!(
            level_from_cmdline("BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro debug quiet\n"),
            Some(Level::Debug)
        );
    }

    #[test]
    fn kernel_command_line_log_level_takes_names_and_numbers() {
        assert_eq!(
            level_from_cmdline("ro systemd.log_level=warning"),
            Some(Level::Warning)
        );
        assert_eq!(
            level_from_cmdline("systemd.log_level=7"),
            Some(Level::Debug)
        );
        assert_eq!(
            level_from_cmdline("systemd.log-level=notice"),
            Some(Level::Notice)
        );
    }

    #[test]
    fn kernel_command_line_later_words_override_earlier_ones() {
        assert_eq!(
            level_from_cmdline("debug systemd.log_level=err"),
            Some(Level::Error)
        );
        assert_eq!(
            level_from_cmdline("systemd.log_level=err debug"),
            Some(Level::Debug)
        );
    }

    #[test]
    fn kernel_command_line_quotes_are_removed() {
        assert_eq!(
            level_from_cmdline("a=\"x y\" systemd.log_level=\"debug\""),
            Some(Level::Debug)
        );
        // A quoted space does not split a word: "debug" here is part of another value.
        assert_eq!(level_from_cmdline("opt='x debug'"), None);
    }

    #[test]
    fn kernel_command_line_ignores_unrelated_invalid_and_initrd_words() {
        assert_eq!(level_from_cmdline(""), None);
        assert_eq!(level_from_cmdline("root=/dev/sda1 ro quiet"), None);
        assert_eq!(level_from_cmdline("debug=1"), None);
        assert_eq!(level_from_cmdline("nodebug systemd.debug"), None);
        assert_eq!(level_from_cmdline("systemd.log_level=loud"), None);
        assert_eq!(level_from_cmdline("rd.systemd.log_level=debug"), None);
        assert_eq!(
            level_from_cmdline("systemd.log_level=info systemd.log_level=loud"),
            Some(Level::Info)
        );
    }

    #[test]
    fn a_deferred_logger_keeps_enabled_records_in_order_until_taken() {
        let mut real = Logger::new("test", false);
        real.max = Level::Warning;
        let deferred = real.deferred();
        deferred.warning("first");
        deferred.log(Level::Debug, "not enabled");
        deferred.error("second\nwith two lines");
        assert_eq!(
            deferred.take(),
            vec![
                (Level::Warning, "first".to_owned()),
                (Level::Error, "second\nwith two lines".to_owned())
            ]
        );
        assert!(deferred.take().is_empty());
        // A logger that writes keeps nothing.
        real.warning("written");
        assert!(real.take().is_empty());
    }

    #[test]
    fn kmsg_priorities_use_the_daemon_facility() {
        assert_eq!(FACILITY_DAEMON + Level::Error as u8, 27);
        assert_eq!(FACILITY_DAEMON + Level::Warning as u8, 28);
        assert_eq!(FACILITY_DAEMON + Level::Info as u8, 30);
        assert_eq!(FACILITY_DAEMON + Level::Debug as u8, 31);
    }
}
