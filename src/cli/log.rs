//! Logging of the `unitwright` command: to the journal with structured fields when stderr is
//! the journal, else plain lines on stderr.
//!
//! * "stderr is the journal" is systemd's own test (`sd_journal_stream_fd` users, systemd.exec(5)
//!   `$JOURNAL_STREAM`): the variable holds `<device>:<inode>` of the stream the manager connected,
//!   and it only counts if stderr still is that stream (a redirected stderr is not).
//! * In the journal every record carries `PRIORITY=` (error 3, warning 4, info 5 = notice,
//!   debug 6, trace 7: systemd-journal-logger's mapping), `SYSLOG_IDENTIFIER=unitwright` and the
//!   structured fields given at the call site, e.g.
//!   `log::info!(unitwright_unit = unit, unitwright_instance = id; "started")` gives
//!   `UNITWRIGHT_UNIT=` and `UNITWRIGHT_INSTANCE=` ([`UNIT`], [`INSTANCE`]).
//! * On stderr a record is `unitwright: <level>: <message> (unit=…, instance=…)`.
//! * Verbosity: on stderr warnings and errors by default, `-v` adds info, `-vv` debug, `-vvv`
//!   trace. In the journal one step more by default (info: job results, instances started and
//!   stopped, files rendered are what an operator reads the journal for; systemd's own tools
//!   log at info by default), so there `-v` gives debug and `-vv` trace.
//! * Outcomes the command always tells the user about (a failed job, a failed instance stop)
//!   go through [`report`]: on stderr they stay the exact line `unitwright: <what>: <why>` they
//!   always were, with no log record besides (that would print the failure twice); in the
//!   journal they become one record at their level with the fields instead, because stderr *is*
//!   the journal there and the plain line would be a second, unstructured copy at info priority.
//!   Successful outcomes are plain records at info ([`record`]), so on stderr they appear only
//!   with `-v`, as `unitwright: info: …`.
//! * Fields name units, instances, verbs, results, templates and paths, never the values of
//!   instance settings (they may be credentials).
//!
//! [`init`] is called once by `cli::run` after the arguments are parsed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Key of the unit a record is about (journal field `UNITWRIGHT_UNIT`).
pub const UNIT: &str = "unitwright_unit";
/// Key of the instance a record is about (journal field `UNITWRIGHT_INSTANCE`).
pub const INSTANCE: &str = "unitwright_instance";
/// Key of the job verb of a record, `start`, `stop`, … (journal field `UNITWRIGHT_JOB`).
pub const JOB: &str = "unitwright_job";
/// Key of a job's result, `done`, `failed`, … (journal field `UNITWRIGHT_RESULT`).
pub const RESULT: &str = "unitwright_result";
/// Key of the template a record is about (journal field `UNITWRIGHT_TEMPLATE`).
pub const TEMPLATE: &str = "unitwright_template";
/// Key of the file a record is about (journal field `UNITWRIGHT_PATH`).
pub const PATH: &str = "unitwright_path";

/// Where [`init`] sent the records.
static TARGET: OnceLock<Target> = OnceLock::new();

/// The maximum level for a `-v` count.
pub fn level_for(verbose: u8) -> LevelFilter {
    match verbose {
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Where the records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The journal's native protocol.
    Journal,
    /// Plain lines on stderr.
    Stderr,
}

/// The target for this process: the journal when stderr is the journal stream.
pub fn target() -> Target {
    if systemd_journal_logger::connected_to_journal() {
        Target::Journal
    } else {
        Target::Stderr
    }
}

/// Installs the logger (once; later calls do nothing) and returns where it logs.
pub fn init(verbose: u8) -> Target {
    let mut chosen = target();
    let journal = (chosen == Target::Journal)
        .then(systemd_journal_logger::JournalLog::new)
        .and_then(Result::ok);
    let installed = if let Some(j) = journal {
        j.with_syslog_identifier("unitwright".to_owned())
            .install()
            .is_ok()
    } else {
        chosen = Target::Stderr;
        log::set_boxed_logger(Box::new(StderrLog)).is_ok()
    };
    if installed {
        let journal_step = u8::from(chosen == Target::Journal);
        log::set_max_level(level_for(verbose.saturating_add(journal_step)));
        let _ = TARGET.set(chosen);
    }
    chosen
}

/// Where the records go: what [`init`] chose, stderr before it ran.
pub fn current_target() -> Target {
    TARGET.get().copied().unwrap_or(Target::Stderr)
}

/// Logs `message` at `level` with the structured `fields` (keys such as [`UNIT`]), to whichever
/// target [`init`] chose.
pub fn record(level: Level, fields: &[(&str, &str)], message: &str) {
    if level > log::max_level() {
        return;
    }
    log::logger().log(
        &Record::builder()
            .level(level)
            .target("unitwright")
            .args(format_args!("{message}"))
            .key_values(&fields)
            .build(),
    );
}

/// Tells the user about an outcome the command always reports (see the module documentation):
/// the line `unitwright: <message>` on stderr, or one record at `level` with `fields` in the
/// journal.
pub fn report(level: Level, fields: &[(&str, &str)], message: &str) {
    match current_target() {
        Target::Journal => record(level, fields, message),
        Target::Stderr => line(&format!("unitwright: {message}")),
    }
}

/// Writes `text` and a newline to stderr with one write(2), so that the lines of processes
/// sharing a stderr (parallel runs in a script, a journal stream) never interleave
/// (`eprintln!` writes each formatted piece separately). Every stderr line of the CLI goes
/// through here.
pub fn line(text: &str) {
    let mut buf = String::with_capacity(text.len() + 1);
    buf.push_str(text);
    buf.push('\n');
    let _ = std::io::stderr().write_all(buf.as_bytes());
}

/// The text of `error` and its causes, `what: why: deeper why`, leaving out a cause whose
/// text the message already carries (error types that print their source in their own
/// message, as most here do, would otherwise say it twice).
pub fn error_text(error: &anyhow::Error) -> String {
    chain_text(error.chain())
}

/// [`error_text`] of an error that is not an `anyhow::Error`.
pub fn std_error_text(error: &(dyn std::error::Error + 'static)) -> String {
    chain_text(std::iter::successors(Some(error), |e| e.source()))
}

fn chain_text<'e>(chain: impl Iterator<Item = &'e (dyn std::error::Error + 'static)>) -> String {
    let mut text = String::new();
    for cause in chain {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// The stderr logger.
#[derive(Debug)]
struct StderrLog;

impl Log for StderrLog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            // format_line ends in a newline: one write(2), as in [`line`].
            let line = format_line(record);
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Collects the key-value pairs of a record as `key=value` (the `unitwright_` prefix dropped).
struct Fields(String);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        if !self.0.is_empty() {
            self.0.push_str(", ");
        }
        let key = key.as_str();
        let _ = write!(
            self.0,
            "{}={value}",
            key.strip_prefix("unitwright_").unwrap_or(key)
        );
        Ok(())
    }
}

/// One stderr line for `record`.
pub fn format_line(record: &Record) -> String {
    let level = match record.level() {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    };
    let mut fields = Fields(String::new());
    let _ = record.key_values().visit(&mut fields);
    let mut line = format!("unitwright: {level}: {}", record.args());
    if !fields.0.is_empty() {
        let _ = write!(line, " ({})", fields.0);
    }
    line.push('\n');
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_adds_info_then_debug_then_trace() {
        assert_eq!(level_for(0), LevelFilter::Warn);
        assert_eq!(level_for(1), LevelFilter::Info);
        assert_eq!(level_for(2), LevelFilter::Debug);
        assert_eq!(level_for(9), LevelFilter::Trace);
    }

    #[test]
    fn stderr_lines_carry_level_message_and_fields() {
        let kvs = [(UNIT, "console@a.service"), (INSTANCE, "a")];
        let line = format_line(
            &Record::builder()
                .level(Level::Warn)
                .args(format_args!("start failed"))
                .key_values(&kvs)
                .build(),
        );
        assert_eq!(
            line,
            "unitwright: warning: start failed (unit=console@a.service, instance=a)\n"
        );
        let plain = format_line(
            &Record::builder()
                .level(Level::Debug)
                .args(format_args!("x"))
                .build(),
        );
        assert_eq!(plain, "unitwright: debug: x\n");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug)]
        struct Inner;
        impl std::fmt::Display for Inner {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"\" is not a valid instance")
            }
        }
        impl std::error::Error for Inner {}
        #[derive(Debug)]
        struct Outer(Inner);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot make an instance of t@.service: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Outer(Inner)).context("starting t@.service");
        assert_eq!(
            error_text(&e),
            "starting t@.service: cannot make an instance of t@.service: \"\" is not a valid instance"
        );
        let plain = anyhow::anyhow!("no such file").context("reading x");
        assert_eq!(error_text(&plain), "reading x: no such file");
    }
}
