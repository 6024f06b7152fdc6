//! `unitwright-generator`: the systemd generator binary. All logic lives in
//! [`unitwright::quadlet`]; this crate only exists so that the generator links
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

#[cfg(not(test))]
use std::ffi::{c_char, c_int};

mod alloc;

/// Size-class free lists instead of glibc's malloc (see the module for why).
#[global_allocator]
static ALLOC: alloc::SmallAlloc = alloc::SmallAlloc::new();

/// The C entry point.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    let status = unitwright::quadlet::generator_status();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    c_int::from(status)
}
