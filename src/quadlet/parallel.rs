//! Loading many Quadlet files on two threads without changing the result ([`map`]).
//!
//! Both threads read and parse files and merge their drop-ins, taking them in runs; everything
//! that depends on order (which file of a name wins, problems reported) is then done in search
//! order on the calling thread with the results. Whether a second thread is used is the caller's
//! choice ([`Threads`]); the generator decides from the number of files and the CPUs
//! (`generator/src/parallel.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// Items taken at a time by each thread in [`map`].
const CHUNK: usize = 16;

/// How a phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// On the calling thread only.
    One,
    /// On the calling thread and one more.
    Two,
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
}
