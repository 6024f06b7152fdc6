//! The `unitwright` command line.
//!
//! Contract, tested in `tests/cli.rs`:
//! * exit 0 on success, 1 on failure, 2 on a usage error;
//! * errors are printed as `unitwright: <what failed>: <why>`;
//! * `--user` talks to the calling user's service manager, `--system` (the default) to the
//!   system manager, with systemctl's meaning; `-H [USER@]HOST[:PORT]` to that manager on
//!   another host over ssh (see `bus::remote`), through [`Global::bus_options`].
//!
//! Each group of subcommands lives in its own module with an `Args`/`Command` type and a
//! `run` function; this module only parses and dispatches.
// The doc comments of the clap arguments are help text, where `[Install]` names a section,
// not a link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// `println!` for the CLI's standard output, through [`write_stdout`]: `unitwright list | head
/// -1` ends quietly (exit 141) when `head` has gone, where `println!` would panic.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

pub mod escape;
pub mod explain;
pub mod fmt;
pub mod instance;
pub mod log;
pub mod logs;
pub mod progress;
pub mod quadlet;
pub mod query;
pub mod remote;
pub mod render;
pub mod sandbox;
pub mod status;
pub mod systemd;

/// Which service manager a command talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// The system manager on the system bus (`--system`, the default).
    #[default]
    System,
    /// The calling user's manager on the session bus (`--user`).
    User,
}

/// Options that every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Talk to the service manager of the calling user.
    #[arg(long, global = true, conflicts_with = "system")]
    pub user: bool,
    /// Talk to the service manager of the system (the default).
    #[arg(long, global = true)]
    pub system: bool,
    /// Talk to the service manager on HOST over ssh (`[USER@]HOST[:PORT]`; systemd-stdio-bridge
    /// there). With --user: the remote login's own user manager.
    #[arg(short = 'H', long, global = true, value_name = "[USER@]HOST[:PORT]")]
    pub host: Option<crate::bus::Host>,
    /// Log more (repeat for debug output).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Quiet: is-active, is-failed and is-enabled print nothing (only the exit status
    /// tells), enable/disable/mask/unmask do not list the symlinks.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl Global {
    /// The manager selected by `--user`/`--system`.
    pub fn scope(&self) -> Scope {
        if self.user {
            Scope::User
        } else {
            Scope::System
        }
    }

    /// [`Global::scope`] as the bus client's scope.
    pub fn bus_scope(&self) -> crate::bus::Scope {
        match self.scope() {
            Scope::User => crate::bus::Scope::User,
            Scope::System => crate::bus::Scope::System,
        }
    }
}

impl Global {
    /// Connection options for the selected manager: the remote host of `-H`, if any. Every
    /// verb that talks D-Bus builds its connection from these, so that `-H` works for all.
    pub fn bus_options(&self) -> crate::bus::Options {
        crate::bus::Options {
            host: self.host.clone(),
            ..crate::bus::Options::default()
        }
    }
}

/// unitwright: systemd as the engine for containerised and templated services.
#[derive(Debug, Parser)]
#[command(name = "unitwright", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Escape strings for use in unit names, exactly like systemd-escape(1).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Escape(escape::Args),
    /// Manage instances of a template unit with per-instance settings.
    #[command(subcommand)]
    Instance(instance::Command),
    /// Quadlet files to running units: verify, install, apply, list, cat, rm.
    #[command(subcommand, after_long_help = quadlet::EXAMPLES)]
    Quadlet(quadlet::Command),
    /// Render a unit file from a tera template, escaping each value for its context.
    Render(render::Args),
    /// Run COMMAND against a real systemd (user manager, or --system as PID 1 of private
    /// namespaces) with its own bus, then remove every trace of it.
    #[command(long_about = sandbox::ABOUT, after_long_help = sandbox::EXAMPLES)]
    Sandbox(sandbox::Args),
    #[command(flatten)]
    Systemd(systemd::Command),
}

/// An error that ends the program with exit status 1 and a message
/// `unitwright: <what>: <why>`.
#[derive(Debug)]
pub struct Failure {
    /// What failed, e.g. `starting console@a.service`.
    pub what: String,
    /// Why, e.g. `the unit's ExecStart exited with status 1`.
    pub why: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

impl std::error::Error for Failure {}

/// Parses `std::env::args_os()` and runs the command.
pub fn main() -> ExitCode {
    run(std::env::args_os())
}

/// Parses `args` (including the program name) and runs the command.
pub fn run<I>(args: I) -> ExitCode
where
    I: IntoIterator<Item = OsString>,
{
    let args: Vec<OsString> = args.into_iter().collect();
    // `escape` parses its own arguments exactly like systemd-escape (getopt_long), so that
    // clap's global options (`-v`, `--user`) and help handling never take its arguments.
    if args.get(1).is_some_and(|a| a == "escape") {
        return escape::run_raw(&args[2..]);
    }
    let cli = match Cli::try_parse_from(args.iter()) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    log::init(cli.global.verbose);
    ::log::debug!(
        "unitwright {}: {:?}",
        env!("CARGO_PKG_VERSION"),
        cli.command
    );
    let result = match (&cli.global.host, cli.command) {
        // The instance settings live on that host: the remote unitwright does the work.
        (Some(host), Command::Instance(_)) => remote::run(host, cli.global.bus_scope(), &args),
        // The files travel to that host; its unitwright installs them there.
        (Some(host), Command::Quadlet(cmd)) => {
            let (paths, json) = cmd.remote_parts();
            remote::run_quadlet(host, cli.global.bus_scope(), &args, &paths, json)
        }
        (Some(_), Command::Render(_) | Command::Escape(_) | Command::Sandbox(_)) => {
            // Never act locally when a remote host was asked for.
            log::line(
                "unitwright: -H/--host does not apply to render, escape and sandbox (they work locally)",
            );
            return ExitCode::from(2);
        }
        (_, command) => dispatch(&cli.global, command),
    };
    match result {
        Ok(code) => code,
        // `unitwright status x | head -3`: the reader has what it wanted. Like a tool killed by
        // SIGPIPE (Rust ignores the signal), end quietly with the status a shell shows for it.
        Err(e) if broken_stdout(&e) => ExitCode::from(128 + 13),
        Err(e) => {
            log::line(&format!("unitwright: {}", log::error_text(&e)));
            ExitCode::FAILURE
        }
    }
}

/// Whether `e` is a write to a standard output whose reader is gone (an `EPIPE` from another
/// pipe, such as ssh's, is a real error and is reported).
fn broken_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) && stdout_reader_gone()
}

/// Writes to standard output. When its reader has gone (`EPIPE`) the command ends at once,
/// quietly, with the status a shell shows for a tool killed by SIGPIPE (141), as systemctl
/// does; another write error (a full disk) is said on stderr and ends it with 1. Either way
/// nothing more is written: every caller writes its result last.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(128 + 13);
        }
        log::line(&format!("unitwright: writing to standard output: {e}"));
        std::process::exit(1);
    }
}

/// Whether the reader of standard output closed it (a pipe or socket reports an error or
/// hang-up then; a terminal or file never does).
pub(crate) fn stdout_reader_gone() -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
    matches!(poll(&mut fds, Some(&Timespec::default())), Ok(n) if n > 0)
        && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
}

/// Runs `work` to its end on a single-threaded async runtime (the D-Bus verbs' way).
pub fn block_on<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(work)
}

/// Runs a parsed command locally (or, for the D-Bus verbs, on the manager `-H` names).
fn dispatch(global: &Global, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Escape(args) => escape::run(global, args),
        Command::Instance(cmd) => instance::run(global, cmd),
        Command::Quadlet(cmd) => quadlet::run(global, cmd),
        Command::Render(args) => render::run(global, args),
        Command::Sandbox(args) => sandbox::run(global, args),
        Command::Systemd(cmd) => systemd::run(global, cmd),
    }
}
