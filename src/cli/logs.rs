//! `logs UNIT... [-n N] [-f] [--since T] [--until T] [--json] [-D DIR]`: the journal records
//! of units, read natively ([`crate::journal`]), like `journalctl -u` (`--user`:
//! `journalctl --user-unit`).
//!
//! * Without `-n` every matching record is shown (`-f` alone starts with the last 10);
//!   `-n N` the last N (after `--since`, if given).
//! * Text is journalctl's `short` format in UTC (`Dec 06 20:47:03 host sh[34]: message`),
//!   errors red and warnings yellow on a terminal; `--json` prints one object per record with
//!   every field as a string (`journalctl -o json`).
//! * `-f` keeps printing new records as they arrive, until SIGINT or SIGTERM (or until the
//!   reader of standard output closes it, e.g. `| head -1`); it then stops between two
//!   records and exits 0, like `journalctl -f` since systemd 258 and like `watch`.
//! * Every record is written as one whole line in one write: an interrupt or a closed pipe
//!   never leaves half a line.
//! * Exit 0, also when nothing matched or the reader of the output went away; 1 when the
//!   journal cannot be read.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::FutureExt as _;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use tokio::signal::unix::{signal, SignalKind};

use crate::bus::mangle;
use crate::journal::{Changes, Entry, Journal, Scope};

/// Options of `logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The units (`web` means `web.service`).
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
    /// Show only the last N records.
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
    /// Keep printing new records as they arrive, until interrupted (SIGINT, SIGTERM) or the
    /// reader of the output goes away; then exit 0.
    #[arg(short, long)]
    pub follow: bool,
    /// Only records at or after this time: `YYYY-MM-DD [HH:MM[:SS]]`, `HH:MM`, `today`,
    /// `yesterday`, `-5min`, `2h ago`, `@EPOCH` (UTC).
    #[arg(long, value_name = "TIME", value_parser = super::fmt::parse_time, allow_hyphen_values = true)]
    pub since: Option<u64>,
    /// Only records before this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = super::fmt::parse_time, allow_hyphen_values = true)]
    pub until: Option<u64>,
    /// Print one JSON object per record (all fields as strings, like journalctl -o json).
    #[arg(long)]
    pub json: bool,
    /// Read the journal files in DIR instead of the system's (like journalctl -D).
    #[arg(short = 'D', long, value_name = "DIR")]
    pub directory: Option<PathBuf>,
}

/// The journal scope of the calling user's or the system's units.
pub fn scope(global: &super::Global) -> Scope {
    match global.scope() {
        super::Scope::User => Scope::User(rustix::process::getuid().as_raw()),
        super::Scope::System => Scope::System,
    }
}

/// Writes one record as one line with a single `write_all` of the whole line, so that an
/// interrupt or a reader that goes away never leaves half a line. `Ok(false)`: the reader of
/// standard output is gone (EPIPE), stop quietly.
fn emit(out: &mut impl Write, e: &Entry, json: bool, colour: bool) -> std::io::Result<bool> {
    let mut line = if json {
        e.to_json().to_string()
    } else {
        e.short_line(colour)
    };
    line.push('\n');
    match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs `logs`.
pub fn run(global: &super::Global, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    if global.host.is_some() {
        anyhow::bail!("logs reads this machine's journal; -H/--host is not supported for it");
    }
    let units: Vec<String> = args.units.iter().map(|u| mangle(u)).collect();
    let mut j = Journal::open(args.directory.as_deref()).context("opening the journal")?;
    // With -f, watch for changes from the start, so that nothing written while the first
    // records are read is missed.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the async runtime")?;
    let changes = if args.follow {
        let _in_runtime = runtime.enter();
        Some(j.watch().context("watching the journal")?)
    } else {
        None
    };
    j.match_units(&units, scope(global))
        .context("matching the units' records")?;
    let colour = !args.json && super::fmt::colour();
    let mut out = std::io::stdout().lock();
    let until = args.until.unwrap_or(u64::MAX);
    let lines = args.lines.or(args.follow.then_some(10));
    let first: Vec<Entry> = match (args.since, lines) {
        (None, Some(n)) if args.until.is_none() => j.last(n).context("reading the journal")?,
        (since, n) => {
            match since {
                Some(t) => j.seek_time(t),
                None => j.seek_head(),
            }
            .context("reading the journal")?;
            let mut kept = VecDeque::new();
            while let Some(e) = j.next_entry().context("reading the journal")? {
                if e.realtime_usec >= until {
                    break;
                }
                kept.push_back(e);
                if n.is_some_and(|n| kept.len() > n) {
                    kept.pop_front();
                }
            }
            kept.into()
        }
    };
    for e in &first {
        if !emit(&mut out, e, args.json, colour)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    // As journalctl says it: nothing printed would look like a unit that logs nothing and a
    // misspelled name alike.
    if first.is_empty() && !args.json && !args.follow {
        writeln!(out, "-- No entries --")?;
    }
    let Some(changes) = changes else {
        return Ok(ExitCode::SUCCESS);
    };
    // Continue after the last record shown (or at the end when none was).
    match first.last() {
        Some(e) => j.seek_after(&e.cursor),
        None => j.seek_tail(),
    }
    .context("reading the journal")?;
    let since = args.since.unwrap_or(0);
    runtime.block_on(follow(&mut j, changes, since..until, |e| {
        emit(&mut out, e, args.json, colour)
    }))
}

/// Whether the reader of standard output closed it (a pipe or socket reports an error or
/// hang-up then; a terminal or file never does).
fn reader_gone() -> bool {
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
    matches!(poll(&mut fds, Some(&Timespec::default())), Ok(n) if n > 0)
        && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
}

/// `-f`: prints the records that arrive (through `emit`, which says `false` when the reader
/// is gone) until SIGINT or SIGTERM, the reader of standard output closing it (`| head -1`,
/// noticed within a second also when no record arrives), or the end of `times` (records
/// before its start, e.g. a `--since` in the future, are skipped). All of these end with
/// exit 0, between two records, as `journalctl -f` does since systemd 258 (252 dies of the
/// signal), and as `unitwright watch` ends on an interrupt.
async fn follow(
    j: &mut Journal,
    changes: Changes,
    times: std::ops::Range<u64>,
    mut emit: impl FnMut(&Entry) -> std::io::Result<bool>,
) -> anyhow::Result<ExitCode> {
    let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    loop {
        while let Some(e) = j.next_entry().context("reading the journal")? {
            if e.realtime_usec >= times.end {
                return Ok(ExitCode::SUCCESS);
            }
            if e.realtime_usec >= times.start && !emit(&e)? {
                return Ok(ExitCode::SUCCESS);
            }
            // A signal that came while records were printed ends it here, between records.
            if interrupt.recv().now_or_never().is_some()
                || terminate.recv().now_or_never().is_some()
            {
                return Ok(ExitCode::SUCCESS);
            }
        }
        if super::fmt::now_usec() >= times.end || reader_gone() {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = interrupt.recv() => return Ok(ExitCode::SUCCESS),
            _ = terminate.recv() => return Ok(ExitCode::SUCCESS),
            result = changes.changed() => result.context("watching the journal")?,
            // Also look now and then: whether the reader went away, whether `until` passed,
            // and journal files on a network file system, which signal nothing.
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        j.process().context("reading the journal")?;
    }
}
