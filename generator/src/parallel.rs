//! Spreading a large generator run over two threads without changing what it does.
//!
//! With many units most of a run is kernel work: opening and reading every Quadlet file, then
//! creating every unit file and `[Install]` symlink (on tmpfs, `/run/systemd/generator`). Two
//! phases hand part of it to a second thread:
//! * loading: both threads read and parse the files and merge their drop-ins, taking them in
//!   runs (`unitwright::quadlet::load`); everything that depends on order (which file of a name wins, log records)
//!   is then done in search order on the calling thread with the results;
//! * output: conversion stays on the calling thread and in order (a unit uses the resource names
//!   set by the units converted before it) and hands each converted unit, with the log records
//!   of its conversion, to a second thread that writes the records, the file and its symlinks in
//!   arrival order ([`pipeline`]). Records, files and symlinks therefore come out in exactly the
//!   order of a sequential run, while the file creation overlaps the following conversions. When
//!   the writer falls behind, the converting thread writes a unit's content into an unnamed file
//!   itself ([`super::output::OutputDir::prepare`]); only the writer gives files their names,
//!   so which of two units with the same name wins never depends on timing.
//!
//! A second thread is used only for enough work to pay for starting it ([`MIN_UNITS`]) when more
//! than one CPU is available (`sched_getaffinity`, cgroup CPU quota), and falls back to the
//! calling thread if it cannot be started. `UNITWRIGHT_GENERATOR_THREADS=1` keeps every run on
//! one thread; `UNITWRIGHT_GENERATOR_THREADS=2` uses the second thread whenever there are two
//! units or more, whatever the CPUs (the tests compare both paths with it); other values mean
//! the automatic choice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

pub use unitwright::quadlet::Threads;

/// The environment variable overriding the choice (see the module documentation).
pub const THREADS_ENV: &str = "UNITWRIGHT_GENERATOR_THREADS";

/// The fewest files (to load) or units (to write) handed to a second thread by default.
/// Measured with `generator/bench/compare.sh` on two CPUs (`UNITWRIGHT_GENERATOR_THREADS=2`
/// against `1`): 7% slower at 24 units, even from about 50 to 80, 10% faster at 100, 30% at
/// 200, 45% at 1,000. Starting the thread and waking it cost a fixed few hundred µs.
pub const MIN_UNITS: usize = 64;

/// Jobs per hand-over in [`pipeline`].
const BATCH: usize = 8;

/// Batches waiting for the consumer in [`pipeline`] before the producer waits.
const QUEUE: usize = 8;

/// The choice for a phase with `items` files or units (see the module documentation).
pub fn for_items(items: usize) -> Threads {
    let setting = std::env::var_os(THREADS_ENV);
    let two = match setting.as_ref().and_then(|v| v.to_str()) {
        Some("1") => false,
        Some("2") => items >= 2,
        _ => items >= MIN_UNITS && several_cpus(),
    };
    if two {
        Threads::Two
    } else {
        Threads::One
    }
}

/// True if this process may run on more than one CPU (asked once per run: it reads the cgroup
/// CPU quota).
fn several_cpus() -> bool {
    static SEVERAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SEVERAL.get_or_init(|| thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// Where [`pipeline`]'s producer puts its jobs.
pub struct Feed<'a, J> {
    to: To<'a, J>,
    sent: usize,
}

enum To<'a, J> {
    /// Consumed on the spot.
    Here(&'a mut dyn FnMut(J)),
    /// Sent in batches to the consumer thread, which counts the jobs it has consumed.
    Thread {
        tx: mpsc::SyncSender<Vec<J>>,
        batch: Vec<J>,
        done: &'a AtomicUsize,
    },
}

impl<J> Feed<'_, J> {
    /// Hands `job` to the consumer.
    pub fn send(&mut self, job: J) {
        self.sent += 1;
        match &mut self.to {
            To::Here(consume) => consume(job),
            To::Thread { tx, batch, .. } => {
                batch.push(job);
                if batch.len() == BATCH {
                    // A failed send means the consumer panicked; the join reports it.
                    drop(tx.send(std::mem::replace(batch, Vec::with_capacity(BATCH))));
                }
            }
        }
    }

    /// How many jobs are sent but not consumed yet (always 0 on one thread): a producer that is
    /// ahead may take over part of the consumer's work.
    pub fn backlog(&self) -> usize {
        match &self.to {
            To::Here(_) => 0,
            To::Thread { done, .. } => self.sent - done.load(Ordering::Relaxed),
        }
    }
}

impl<J> std::fmt::Debug for Feed<'_, J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("sent", &self.sent)
            .field("backlog", &self.backlog())
            .finish_non_exhaustive()
    }
}

/// Runs `produce`, which [sends](Feed::send) jobs, and `consume` on every job in the order
/// sent: on a second thread, fed in batches while `produce` goes on, when `threads` is
/// [`Threads::Two`]; else (or if the thread cannot be started) on the calling thread, each job
/// as soon as it is sent. Returns when every job is consumed.
pub fn pipeline<J, P, C>(threads: Threads, produce: P, mut consume: C)
where
    J: Send,
    P: FnOnce(&mut Feed<'_, J>),
    C: FnMut(J) + Send,
{
    let produce = if threads == Threads::Two {
        let consumer = &mut consume;
        let done = AtomicUsize::new(0);
        let done = &done;
        thread::scope(|s| {
            // Bounded: a producer far ahead waits, so that it never holds more than a few
            // batches of jobs (converted texts, prepared files and their descriptors).
            let (tx, rx) = mpsc::sync_channel::<Vec<J>>(QUEUE);
            let spawned = thread::Builder::new()
                .name("uw-write".to_owned())
                .spawn_scoped(s, move || {
                    for batch in rx {
                        let n = batch.len();
                        batch.into_iter().for_each(&mut *consumer);
                        done.fetch_add(n, Ordering::Relaxed);
                    }
                });
            match spawned {
                Ok(worker) => {
                    let mut feed = Feed {
                        to: To::Thread {
                            tx,
                            batch: Vec::with_capacity(BATCH),
                            done,
                        },
                        sent: 0,
                    };
                    produce(&mut feed);
                    if let To::Thread { tx, batch, .. } = feed.to {
                        drop(tx.send(batch));
                    }
                    if let Err(panic) = worker.join() {
                        std::panic::resume_unwind(panic);
                    }
                    None
                }
                Err(_) => Some(produce),
            }
        })
    } else {
        Some(produce)
    };
    if let Some(produce) = produce {
        produce(&mut Feed {
            to: To::Here(&mut consume),
            sent: 0,
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn pipeline_consumes_every_job_in_order_on_another_thread() {
        let me = thread::current().id();
        let mut got = Vec::new();
        pipeline(
            Threads::Two,
            |feed| (0..500).for_each(|j| feed.send(j)),
            |j: i32| {
                assert_ne!(thread::current().id(), me);
                got.push(j);
            },
        );
        assert_eq!(got, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn pipeline_on_one_thread_consumes_each_job_before_the_next_is_produced() {
        let log = Mutex::new(Vec::new());
        pipeline(
            Threads::One,
            |feed| {
                for j in 0..3 {
                    log.lock().unwrap().push(format!("produce {j}"));
                    feed.send(j);
                    assert_eq!(feed.backlog(), 0);
                }
            },
            |j| log.lock().unwrap().push(format!("consume {j}")),
        );
        assert_eq!(
            log.into_inner().unwrap(),
            [
                "produce 0",
                "consume 0",
                "produce 1",
                "consume 1",
                "produce 2",
                "consume 2"
            ]
        );
    }

    #[test]
    #[should_panic(expected = "consumer failed")]
    fn a_panic_on_the_second_thread_reaches_the_caller() {
        pipeline(
            Threads::Two,
            |feed| (0..10).for_each(|j| feed.send(j)),
            |j: i32| assert!(j < 5, "consumer failed"),
        );
    }
}
