//! triage: why is this Linux box slow? One pipeline for every subcommand:
//! `host` (where to read) -> `collect` (raw readings at t0, samples, t1) -> `model` (rates over
//! the measured window, USE resources) -> `analyze` (findings) -> `render` (table or JSON).

pub mod analyze;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod fleet;
#[doc(hidden)]
pub mod fuzz;
pub mod host;
pub mod model;
pub mod num;
pub mod probe;
pub mod render;
pub mod resources;
pub mod text;
