//! Where the system lives (a [`Source`]) and facts about it.

pub mod memsource;
pub mod netlink;
pub mod outdir;
pub mod packed;
pub mod qdisc;
pub mod safe;
pub mod sockdiag;
pub mod source;

pub use source::{FixtureSource, FixtureTree, FsStat, LiveSource, Source};
