//! `tc -s qdisc` over the window, in the network view: what each interface's queueing
//! discipline dropped, delayed and held queued (columns: [`crate::resources::qdisc::COLUMNS`]).

use super::table::{section, spec_table, Style};
use crate::model::qdisc::QdiscRow;

/// The qdisc table; nothing when no qdisc was read (a recording without them, `--root`).
pub fn render(out: &mut String, rows: &[QdiscRow], st: &Style) {
    if rows.is_empty() {
        return;
    }
    let t = spec_table(crate::resources::qdisc::COLUMNS, rows);
    section(
        out,
        st,
        "tc -s qdisc: queueing disciplines (backlog at the end)",
        &t,
    );
}
