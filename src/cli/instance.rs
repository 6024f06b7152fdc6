//! `unitwright instance`: template instances with per-instance settings.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the instances of a template.
    List { template: String },
}

pub fn run(_global: &super::Global, _cmd: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("instance: not implemented yet")
}
