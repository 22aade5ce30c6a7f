//! Queueing disciplines over the window: moved to [`crate::resources::qdisc`] (row, build,
//! USE metric, thresholds, rules, columns); re-exported under the old path.

pub use crate::resources::qdisc::{add_to_use, rows, QdiscRow, MAX_ROWS};
