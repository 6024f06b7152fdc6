//! `unitwright escape`: systemd-escape(1) of systemd 252, option parsing included.

use std::ffi::OsString;
use std::process::ExitCode;

/// Raw arguments, parsed by hand with GNU getopt_long semantics.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

pub fn run(_global: &super::Global, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("escape: not implemented yet")
}
