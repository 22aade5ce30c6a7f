//! `triage net`: the network deep dive.
//!
//! Not built yet: hidden from `--help` until it works.

use crate::cli::{Global, WindowArgs};
use crate::model::report::Report;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub window: WindowArgs,
}

pub fn run(_args: &Args, _global: &Global) -> Result<Report, String> {
    Err("`net` is not built yet".into())
}
