//! `triage mem`: the memory deep dive (free, vmstat, /proc/meminfo, pidstat -r, OOM kills, memory cgroups).
//!
//! The shared deep-dive machinery is in [`super::deep`]; this file chooses the resource.

use super::deep::{DeepArgs, Focus, Output};
use crate::cli::Global;

pub type Args = DeepArgs;

pub fn run(args: &Args, global: &Global) -> Result<Output, String> {
    super::deep::run(Focus::Mem, args, global)
}
