//! `unitwright-generator`: the systemd generator program. Search paths, loading and conversion
//! are the library's (`unitwright::quadlet`, which reads no environment); this crate is the
//! process around them: flags and environment ([`program`]), the output directory
//! ([`output`]), kmsg logging ([`log`]), the writer thread ([`parallel`]), standing down for
//! podman's own generator ([`coexist`]). It is a separate crate so that the generator links
//! neither zbus, tokio nor tera.
//!
//! The binary has a plain C `main` instead of Rust's usual start-up (`#![no_main]`): systemd runs
//! every generator at boot and at each daemon-reload, and the Rust runtime set-up (reading
//! `/proc/self/maps` for the main thread's stack guard, an alternate signal stack, signal
//! handlers) was about a fifth of the instructions and system calls of a run with one unit
//! (generator/bench/compare.sh). What that set-up gave and this binary does without:
//! * the "stack overflow" message: an overflow still ends the process (SIGSEGV on the kernel's
//!   guard page);
//! * SIGPIPE ignored: with `-dryrun` into a closed pipe the process ends by SIGPIPE, as
//!   Quadlet (a Go program) does;
//! * stdout flushed at exit: done below.
//!
//! `std::env::args_os` works without it (glibc hands argv to Rust's initialiser).
// (Not for `cargo test`, whose harness brings its own `main`.)
#![cfg_attr(not(test), no_main)]
// Under `cargo test` there is no C `main` calling the program, so most of it looks unused.
#![cfg_attr(test, allow(dead_code))]

#[cfg(not(test))]
use std::ffi::{c_char, c_int};

mod alloc;
mod coexist;
mod log;
mod output;
mod parallel;
mod program;

/// Size-class free lists instead of glibc's malloc (see the module for why).
#[global_allocator]
static ALLOC: alloc::SmallAlloc = alloc::SmallAlloc::new();

/// The C entry point.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    let status = program::generator_status();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    c_int::from(status)
}
