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

/// Tests: write `text` to `root/rel`, making the directories on the way.
#[cfg(test)]
pub(crate) fn write_test_file(root: &std::path::Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}
