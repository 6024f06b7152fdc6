//! Errors of the D-Bus client.
//!
//! A job that ran and failed is *not* an error: it is a [`super::JobOutcome`] whose result says
//! why. Errors are for everything that kept an answer from arriving: the unit does not exist,
//! the manager refused the call, the bus went away, or the answer took too long.

use std::time::Duration;

/// Everything that can go wrong talking to the service manager.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bus could not be reached.
    #[error("cannot connect to the {bus} bus: {error}")]
    Connect {
        /// `session`, `system` or the address that was given.
        bus: String,
        /// What zbus reported (part of the message, hence not also a `source()`).
        error: zbus::Error,
    },
    /// A remote service manager could not be reached over ssh (host unreachable,
    /// authentication refused, no `systemd-stdio-bridge` there, bus not running, ...).
    #[error("cannot reach the service manager on {host}: {why}")]
    Remote {
        /// `[USER@]HOST[:PORT]` as given.
        host: String,
        /// What went wrong, with ssh's own words.
        why: String,
    },
    /// The unit does not exist (`org.freedesktop.systemd1.NoSuchUnit` or `LoadState=not-found`).
    #[error("{what} failed: unit {unit} not found")]
    NoSuchUnit {
        /// The operation, e.g. `start of web.service`.
        what: String,
        /// The unit name.
        unit: String,
    },
    /// The manager answered the call with a D-Bus error.
    #[error("{what} failed: {message} ({name})")]
    Refused {
        /// The operation, e.g. `start of web.service`.
        what: String,
        /// The D-Bus error name, e.g. `org.freedesktop.DBus.Error.InvalidArgs`.
        name: String,
        /// The error message sent by the manager.
        message: String,
    },
    /// Any other bus-level failure of a call.
    #[error("{what} failed: {error}")]
    Bus {
        /// The operation.
        what: String,
        /// What zbus reported (part of the message, hence not also a `source()`).
        error: zbus::Error,
    },
    /// No answer within the time limit: with `job`, the job was queued and had not finished
    /// (it keeps running in the manager); without, the manager did not answer the call (for
    /// a job verb: the job may or may not have been queued).
    #[error("{}", timeout_text(what, *after, job.as_deref()))]
    Timeout {
        /// The operation.
        what: String,
        /// The limit that was exceeded.
        after: Duration,
        /// The job's object path, when the job exists and was being waited for.
        job: Option<String>,
    },
    /// The manager dropped its name on the bus and did not take it back in time
    /// (it crashed or was killed; a daemon-reexec normally comes back within a second).
    #[error("{what} failed: the service manager left the bus and did not come back within {} s", after.as_secs_f64())]
    ManagerGone {
        /// The operation.
        what: String,
        /// How long we waited for it to come back.
        after: Duration,
    },
    /// The manager dropped its bus connection while the job ran and came back, but the job
    /// had ended meanwhile and its result never reached this client (dbus-daemon drops the
    /// manager's connection when it exceeds a limit such as its match rules).
    #[error("{what} failed: the service manager lost its bus connection while the job ran, and the job's result with it; check the unit's state")]
    ResultLost {
        /// The operation.
        what: String,
    },
    /// The connection to the bus was closed.
    #[error("{what} failed: the connection to the bus was lost")]
    ConnectionLost {
        /// The operation.
        what: String,
    },
}

fn timeout_text(what: &str, after: Duration, job: Option<&str>) -> String {
    let secs = after.as_secs_f64();
    match job {
        Some(job) => format!(
            "{what} timed out: not finished after {secs} s; the job ({job}) continues in the manager"
        ),
        None => format!("{what} timed out: no answer within {secs} s"),
    }
}

/// The D-Bus error name systemd uses for units that are not loaded and cannot be found.
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";

impl Error {
    /// Classifies a zbus error of a call about `unit` (if any).
    pub(crate) fn from_call(what: &str, unit: Option<&str>, e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, message, _) => {
                if name.as_str() == NO_SUCH_UNIT {
                    if let Some(unit) = unit {
                        return Error::NoSuchUnit {
                            what: what.to_owned(),
                            unit: unit.to_owned(),
                        };
                    }
                }
                Error::Refused {
                    what: what.to_owned(),
                    name: name.as_str().to_owned(),
                    message: message.unwrap_or_default(),
                }
            }
            zbus::Error::InputOutput(_) => Error::ConnectionLost {
                what: what.to_owned(),
            },
            error => Error::Bus {
                what: what.to_owned(),
                error,
            },
        }
    }

    /// The job path of a job that was queued but not waited for to the end
    /// ([`Error::Timeout`]).
    pub fn job(&self) -> Option<&str> {
        match self {
            Error::Timeout { job, .. } => job.as_deref(),
            _ => None,
        }
    }

    /// True for [`Error::Timeout`]: the caller's time limit expired; nothing failed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The unit this error is about, when there is exactly one.
    pub fn unit(&self) -> Option<&str> {
        match self {
            Error::NoSuchUnit { unit, .. } => Some(unit),
            _ => None,
        }
    }
}
