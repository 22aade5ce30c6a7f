//! `triage net`: the network deep dive (sar -n DEV,EDEV,TCP,ETCP,UDP, ss, softnet, listeners, conntrack).
//!
//! The shared deep-dive machinery is in [`super::deep`]; this file chooses the resource.

use super::deep::{DeepArgs, Focus, Output};
use crate::cli::Global;

pub type Args = DeepArgs;

pub fn run(args: &Args, global: &Global) -> Result<Output, String> {
    super::deep::run(Focus::Net, args, global)
}
