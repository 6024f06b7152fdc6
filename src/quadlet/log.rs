//! A tiny logger for generators: one record per line to `/dev/kmsg` as `<prio>name[pid]: message`
//! (the format of systemd's `log_dispatch` to kmsg, facility `LOG_DAEMON`: err `<27>`, warning
//! `<28>`, info `<30>`, debug `<31>`), or to stderr as `name[pid]: message` when kmsg cannot be
//! opened for writing or is not wanted (`-no-kmsg-log`, `-dryrun`).
//!
//! The maximum level comes from `SYSTEMD_LOG_LEVEL` (`err`, `warning`, `notice`, `info`, `debug`
//! or a number 0-7; default `info`), raised to `debug` by [`Logger::set_debug`] (Quadlet's `-v`).

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

/// Where records go.
#[derive(Debug)]
enum Sink {
    Kmsg(File),
    Stderr,
}

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
        let max = std::env::var("SYSTEMD_LOG_LEVEL")
            .ok()
            .and_then(|v| Level::parse(&v))
            .unwrap_or(Level::Info);
        Logger {
            name: name.to_owned(),
            pid: std::process::id(),
            max,
            sink: Mutex::new(sink),
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
        for line in msg.split('\n') {
            match &mut *sink {
                Sink::Kmsg(f) => {
                    let rec = format!(
                        "<{}>{}[{}]: {}\n",
                        FACILITY_DAEMON + level as u8,
                        self.name,
                        self.pid,
                        line
                    );
                    // kmsg takes one record per write; a failed write falls back to stderr.
                    if f.write_all(rec.as_bytes()).is_err() {
                        let _ =
                            writeln!(std::io::stderr(), "{}[{}]: {}", self.name, self.pid, line);
                    }
                }
                Sink::Stderr => {
                    let _ = writeln!(std::io::stderr(), "{}[{}]: {}", self.name, self.pid, line);
                }
            }
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

    /// Logs at info level.
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg);
    }

    /// Logs at debug level.
    pub fn debug(&self, msg: &str) {
        self.log(Level::Debug, msg);
    }

    /// Logs at debug level, building the message only when debug records are enabled.
    pub fn debug_with(&self, msg: impl FnOnce() -> String) {
        if self.enabled(Level::Debug) {
            self.log(Level::Debug, &msg());
        }
    }
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
    fn kmsg_priorities_use_the_daemon_facility() {
        assert_eq!(FACILITY_DAEMON + Level::Error as u8, 27);
        assert_eq!(FACILITY_DAEMON + Level::Warning as u8, 28);
        assert_eq!(FACILITY_DAEMON + Level::Info as u8, 30);
        assert_eq!(FACILITY_DAEMON + Level::Debug as u8, 31);
    }
}
