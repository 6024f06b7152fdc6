//! The systemctl-like verbs: reload, start, stop, status, list, watch, ...

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Reload the manager's configuration (daemon-reload).
    Reload,
}

pub fn run(_global: &super::Global, _cmd: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
