//! Spreading a large generator run over two threads without changing what it does.
//!
//! With many units most of a run is kernel work: opening and reading every Quadlet file, then
//! creating every unit file and `[Install]` symlink (on tmpfs, `/run/systemd/generator`). Two
//! phases hand part of it to a second thread:
//! * loading: both threads read and parse the files and merge their drop-ins, taking them in
//!   runs ([`map`]); everything that depends on order (which file of a name wins, log records)
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

/// The environment variable overriding the choice (see the module documentation).
pub const THREADS_ENV: &str = "UNITWRIGHT_GENERATOR_THREADS";

/// The fewest files (to load) or units (to write) handed to a second thread by default.
/// Measured with `generator/bench/compare.sh` on two CPUs (`UNITWRIGHT_GENERATOR_THREADS=2`
/// against `1`): 7% slower at 24 units, even from about 50 to 80, 10% faster at 100, 30% at
/// 200, 45% at 1,000. Starting the thread and waking it cost a fixed few hundred µs.
pub const MIN_UNITS: usize = 64;

/// Items taken at a time by each thread in [`map`].
const CHUNK: usize = 16;

/// Jobs per hand-over in [`pipeline`].
const BATCH: usize = 8;

/// Batches waiting for the consumer in [`pipeline`] before the producer waits.
const QUEUE: usize = 8;

/// How a phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// On the calling thread only.
    One,
    /// On the calling thread and one more.
    Two,
}

impl Threads {
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
}

/// True if this process may run on more than one CPU (asked once per run: it reads the cgroup
/// CPU quota).
fn several_cpus() -> bool {
    static SEVERAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SEVERAL.get_or_init(|| thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// `items.iter().map(|i| f(&mut state, i)).collect()` with `state = init()`, shared with another
/// thread (which gets its own `init()` state) when `threads` is [`Threads::Two`]: both take runs
/// of [`CHUNK`] items in turn until none is left, so that neither waits for the other (the
/// other thread starts late, a CPU may be busy). The results are in the order of `items`
/// either way.
pub fn map<T, S, R, I, F>(threads: Threads, items: &[T], init: I, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    I: Fn() -> S + Sync,
    F: Fn(&mut S, &T) -> R + Sync,
{
    if threads == Threads::Two && items.len() >= 2 {
        let next = AtomicUsize::new(0);
        let work = || {
            let mut state = init();
            let mut runs = Vec::new();
            loop {
                let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                if start >= items.len() {
                    return runs;
                }
                let end = items.len().min(start + CHUNK);
                let run: Vec<R> = items[start..end].iter().map(|i| f(&mut state, i)).collect();
                runs.push((start, run));
            }
        };
        let work = &work;
        let done = thread::scope(|s| {
            let worker = thread::Builder::new()
                .name("uw-load".to_owned())
                .spawn_scoped(s, work)
                .ok()?;
            let mut runs = work();
            match worker.join() {
                Ok(theirs) => runs.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
            Some(runs)
        });
        if let Some(mut runs) = done {
            runs.sort_unstable_by_key(|&(start, _)| start);
            return runs.into_iter().flat_map(|(_, run)| run).collect();
        }
    }
    let mut state = init();
    items.iter().map(|i| f(&mut state, i)).collect()
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

    /// Holds each thread at its first item until two threads have arrived (or 10 s passed, so
    /// that a run on one thread fails instead of hanging); returns the thread ids seen.
    struct Rendezvous {
        seen: Mutex<Vec<thread::ThreadId>>,
        arrived: std::sync::Condvar,
    }

    impl Rendezvous {
        fn new() -> Self {
            Rendezvous {
                seen: Mutex::new(Vec::new()),
                arrived: std::sync::Condvar::new(),
            }
        }

        fn arrive(&self) {
            let me = thread::current().id();
            let mut seen = self.seen.lock().unwrap();
            if seen.contains(&me) {
                return;
            }
            seen.push(me);
            self.arrived.notify_all();
            let _ = self
                .arrived
                .wait_timeout_while(seen, std::time::Duration::from_secs(10), |s| s.len() < 2)
                .unwrap();
        }
    }

    #[test]
    fn map_keeps_the_order_of_the_items_on_two_threads() {
        let items: Vec<u32> = (0..1001).collect();
        let meet = Rendezvous::new();
        let out = map(Threads::Two, &items, Vec::new, |seen: &mut Vec<u32>, i| {
            meet.arrive();
            seen.push(*i);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(
            meet.seen.into_inner().unwrap().len(),
            2,
            "not shared by two threads"
        );
    }

    #[test]
    fn map_on_one_thread_stays_on_the_calling_thread() {
        let me = thread::current().id();
        let out = map(
            Threads::One,
            &[1, 2, 3],
            || 10,
            |state, i| {
                assert_eq!(thread::current().id(), me);
                *state += 1;
                *state + i
            },
        );
        // One state, threaded through the items in order.
        assert_eq!(out, vec![12, 14, 16]);
    }

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
