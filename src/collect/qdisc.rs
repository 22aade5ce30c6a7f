//! The queueing disciplines of our own network namespace, as `Source::qdiscs` reads them (an
//! rtnetlink `RTM_GETQDISC` dump, `Snapshot::qdiscs`): the reading's type and `tc`'s handle
//! spelling, for the layers above. They are defined by the netlink parser in
//! [`crate::host::qdisc`], since `Source` returns them (and a recording stores them as
//! `qdisc.json`); `host` cannot import `collect`, so they are re-exported here.

pub use crate::host::qdisc::{handle_name, Qdisc};
