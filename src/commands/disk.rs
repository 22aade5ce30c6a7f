//! `triage disk`: the disk deep dive (iostat -x, pidstat -d, df, kernel I/O errors).
//!
//! The shared deep-dive machinery is in [`super::deep`]; this file chooses the resource.

use super::deep::{DeepArgs, Focus, Output};
use crate::cli::Global;

pub type Args = DeepArgs;

pub fn run(args: &Args, global: &Global) -> Result<Output, String> {
    super::deep::run(Focus::Disk, args, global)
}
