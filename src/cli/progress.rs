//! The progress display of the waiting verbs (`start`, `stop`, ..., `wait`): while jobs run,
//! one line per unit still waited for, `UNIT: ACTIVE (SUB) COMMAND ELAPSED`, redrawn in place
//! every half second and erased when the wait ends, as systemctl shows a slow start.
//!
//! Only when stderr is a terminal (and the CLI is not logging to the journal): scripts,
//! pipes and files never see it. Nothing is drawn for the first second, so quick jobs leave
//! no trace even on a terminal. At most as many units as fit in a third of the terminal's
//! height (10 when unknown) get a line, the oldest first, and one more line counts the rest.
//! A progress read is best effort: a unit whose state cannot be read in time shows only its
//! elapsed time.

use std::collections::BTreeSet;
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::bus::Manager;

/// How long a wait may take before anything is drawn.
const FIRST_DRAW: Duration = Duration::from_secs(1);
/// How often the lines are redrawn.
const REFRESH: Duration = Duration::from_millis(500);

/// Whether to show progress: stderr is a terminal that can move its cursor, and log records
/// are not going to the journal.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
        && super::log::current_target() == super::log::Target::Stderr
        && std::env::var_os("TERM").is_some_and(|t| t != "dumb")
}

/// The units still waited for: indices into the caller's list, with when the wait began.
#[derive(Debug)]
pub struct Waiting {
    pending: Mutex<BTreeSet<usize>>,
    since: Instant,
    drawn: AtomicUsize,
}

impl Waiting {
    /// All of `n` units are waited for, from now on.
    pub fn new(n: usize) -> Self {
        Waiting {
            pending: Mutex::new((0..n).collect()),
            since: Instant::now(),
            drawn: AtomicUsize::new(0),
        }
    }

    /// Unit `i` has its result.
    pub fn done(&self, i: usize) {
        self.lock().remove(&i);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<usize>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Draws the lines for `units` until cancelled (drop the future, then call
    /// [`Waiting::clear`]).
    pub async fn show(&self, m: &Manager, units: &[String]) {
        tokio::time::sleep(FIRST_DRAW).await;
        loop {
            let (rows, cols) = size();
            let shown = (rows / 3).max(1);
            let (ids, total) = {
                let p = self.lock();
                (p.iter().take(shown).copied().collect::<Vec<_>>(), p.len())
            };
            let reads = ids.iter().map(|&i| async move {
                let read = tokio::time::timeout(REFRESH, m.unit_progress(&units[i])).await;
                (i, read.ok().and_then(Result::ok))
            });
            let states = futures_util::future::join_all(reads).await;
            let elapsed = elapsed_text(self.since.elapsed());
            let mut lines: Vec<String> = states
                .into_iter()
                .map(|(i, p)| {
                    let state = p.map(|p| {
                        let command = p.command.map(|c| format!(" {c}")).unwrap_or_default();
                        format!(" {} ({}){command}", p.active_state, p.sub_state)
                    });
                    format!("{}:{} {elapsed}", units[i], state.unwrap_or_default())
                })
                .collect();
            if total > ids.len() {
                lines.push(format!(
                    "... and {} more waiting, {elapsed}",
                    total - ids.len()
                ));
            }
            self.draw(&lines, cols);
            tokio::time::sleep(REFRESH).await;
        }
    }

    /// Replaces the lines drawn before with `lines`, in one write.
    fn draw(&self, lines: &[String], cols: usize) {
        let mut out = self.erase_text();
        for l in lines {
            // Cut to the width so that no line wraps (a wrapped line breaks the redraw).
            let cut: String = l.chars().take(cols.saturating_sub(1)).collect();
            out.push_str(&cut);
            out.push('\n');
        }
        self.drawn.store(lines.len(), Ordering::Relaxed);
        let _ = std::io::stderr().write_all(out.as_bytes());
    }

    /// Moves up over the lines drawn and erases them.
    fn erase_text(&self) -> String {
        match self.drawn.swap(0, Ordering::Relaxed) {
            0 => "\r\x1b[J".to_owned(),
            n => format!("\r\x1b[{n}A\x1b[J"),
        }
    }

    /// Runs `work`, showing the lines for `units` meanwhile when [`enabled`] and `show`, then
    /// erases them: the wait of every verb that waits for jobs.
    pub async fn around<F: std::future::Future>(
        &self,
        m: &Manager,
        units: &[String],
        show: bool,
        work: F,
    ) -> F::Output {
        let out = if show && enabled() {
            tokio::select! {
                out = work => out,
                () = self.show(m, units) => unreachable!("the progress display never ends"),
            }
        } else {
            work.await
        };
        self.clear();
        out
    }

    /// Erases what [`Waiting::show`] drew, if anything.
    pub fn clear(&self) {
        if self.drawn.load(Ordering::Relaxed) > 0 {
            let _ = std::io::stderr().write_all(self.erase_text().as_bytes());
        }
    }
}

/// `5s`, `1min 5s`, `1h 2min`.
fn elapsed_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}min {}s", s / 60, s % 60),
        _ => format!("{}h {}min", s / 3600, s % 3600 / 60),
    }
}

/// Rows and columns of the terminal on stderr (30 × 80 when unknown).
fn size() -> (usize, usize) {
    match rustix::termios::tcgetwinsize(std::io::stderr()) {
        Ok(w) if w.ws_row > 0 && w.ws_col > 0 => (usize::from(w.ws_row), usize::from(w.ws_col)),
        _ => (30, 80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_time_reads_like_systemctl() {
        assert_eq!(elapsed_text(Duration::from_millis(5400)), "5s");
        assert_eq!(elapsed_text(Duration::from_secs(65)), "1min 5s");
        assert_eq!(elapsed_text(Duration::from_secs(3720)), "1h 2min");
    }
}
