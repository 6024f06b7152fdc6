//! `logs UNIT... [-n N] [-f] [--since T] [--until T] [--json] [-D DIR]`: the journal records
//! of units, read natively ([`crate::journal`]), like `journalctl -u` (`--user`:
//! `journalctl --user-unit`).
//!
//! * Without `-n` every matching record is shown (`-f` alone starts with the last 10);
//!   `-n N` the last N (after `--since`, if given).
//! * Text is journalctl's `short` format in UTC (`Dec 06 20:47:03 host sh[34]: message`),
//!   errors red and warnings yellow on a terminal; `--json` prints one object per record with
//!   every field as a string (`journalctl -o json`).
//! * `-f` keeps printing new records until interrupted.
//! * Exit 0, also when nothing matched; 1 when the journal cannot be read.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::bus::mangle;
use crate::journal::{Entry, Journal, Scope};

/// Options of `logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The units (`web` means `web.service`).
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
    /// Show only the last N records.
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
    /// Keep printing new records as they arrive, until interrupted.
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

/// Runs `logs`.
pub fn run(global: &super::Global, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    if global.host.is_some() {
        anyhow::bail!("logs reads this machine's journal; -H/--host is not supported for it");
    }
    let units: Vec<String> = args.units.iter().map(|u| mangle(u)).collect();
    let mut j = Journal::open(args.directory.as_deref()).context("opening the journal")?;
    j.match_units(&units, scope(global))
        .context("matching the units' records")?;
    let colour = !args.json && super::fmt::colour();
    let mut out = std::io::stdout().lock();
    let until = args.until.unwrap_or(u64::MAX);
    let lines = args.lines.or(args.follow.then_some(10));
    let print = |out: &mut std::io::StdoutLock<'_>, e: &Entry| -> std::io::Result<()> {
        if args.json {
            writeln!(out, "{}", e.to_json())
        } else {
            writeln!(out, "{}", e.short_line(colour))
        }
    };
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
        print(&mut out, e)?;
    }
    out.flush()?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Continue after the last record shown (or at the end when none was).
    match first.last() {
        Some(e) => j.seek_after(&e.cursor),
        None => j.seek_tail(),
    }
    .context("reading the journal")?;
    loop {
        while let Some(e) = j.next_entry().context("reading the journal")? {
            if e.realtime_usec >= until {
                return Ok(ExitCode::SUCCESS);
            }
            print(&mut out, &e)?;
        }
        out.flush()?;
        j.wait(Duration::from_secs(1))
            .context("waiting for the journal")?;
    }
}
