//! `unitwright render`: tera templates rendered with unit-file-context escaping.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub template: std::path::PathBuf,
}

pub fn run(_global: &super::Global, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("render: not implemented yet")
}
