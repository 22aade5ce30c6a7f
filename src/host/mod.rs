//! Where the system lives (a [`Source`]) and facts about it.

pub mod sockdiag;
pub mod source;

pub use source::{FixtureSource, FixtureTree, FsStat, LiveSource, Source};
