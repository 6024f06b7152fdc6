//! The Quadlet lifecycle behind `unitwright quadlet verify|install|apply|list|cat|rm`: from
//! Quadlet files to running units, with verification before anything is written, atomic
//! transactions, app records, one daemon-reload, and restarts of exactly the units whose
//! generated unit changed.
//!
//! * [`adapter`]: the only module that calls the Quadlet conversion ([`crate::quadlet`]).
//! * [`lint`]: value checks Quadlet leaves to podman and systemd.
//! * [`quadlets`]: splitting podman's multi-file `.quadlets` format.
//! * [`store`]: the scope's Quadlet directory, app records, the scope lock and the crash-safe
//!   transaction (journal, staged files, backups; replayed or rolled back by the next run).
//! * [`engine`]: plans and runs install/apply/rm against the manager ([`crate::bus::Manager`]).
//!
//! # "Did the unit change?"
//! The generated unit is what the conversion produces in this process for the files before and
//! after the change (all of the scope's files, so a changed `.network` also changes the
//! containers that use it). The manager's loaded copy (`FragmentPath`) is not read: the
//! generator that the manager runs is this same conversion with the same inputs, and reading
//! 1,000 fragments would cost more than converting them.

pub mod adapter;
#[cfg(feature = "bus")]
pub mod engine;
pub mod lint;
pub mod quadlets;
pub mod store;

use std::fmt;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The file produces no unit (or the unit cannot start).
    Error,
    /// The unit is produced; something in it is ignored or suspicious.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found in a Quadlet file (JSON: `{"file","line","key","severity","message","hint"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (a drop-in when the line comes from one).
    pub file: String,
    /// The 1-based line in that file, when known.
    pub line: Option<u32>,
    /// The key of that line, when there is one.
    pub key: Option<String>,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    /// `file:line: severity: message (hint)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": {}: {}", self.severity.as_str(), self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

#[cfg(feature = "bus")]
impl Diagnostic {
    /// The JSON object of docs/json.md.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "file": self.file,
            "line": self.line,
            "key": self.key,
            "severity": self.severity.as_str(),
            "message": self.message,
            "hint": self.hint,
        })
    }
}
