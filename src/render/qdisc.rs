//! `tc -s qdisc` over the window, in the network view: what each interface's queueing
//! discipline dropped, delayed and held queued.

use super::table::{f1, new_table, o1, s, section, shorten, Style};
use crate::model::qdisc::QdiscRow;
use crate::text::human_bytes;

/// The qdisc table; nothing when no qdisc was read (a recording without them, `--root`).
pub fn render(out: &mut String, rows: &[QdiscRow], st: &Style) {
    if rows.is_empty() {
        return;
    }
    let mut t = new_table(&[
        "interface",
        "qdisc",
        "handle",
        "parent",
        "pkts/s",
        "drops/s",
        "overlimits/s",
        "requeues/s",
        "backlog",
    ]);
    for c in 0..4 {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(comfy_table::CellAlignment::Left);
        }
    }
    for q in rows {
        t.add_row(vec![
            shorten(&s(&q.interface), 18),
            shorten(&s(&q.kind), 12),
            s(&q.handle),
            s(&q.parent),
            f1(q.packets_per_s),
            f1(q.drops_per_s),
            f1(q.overlimits_per_s),
            o1(q.requeues_per_s),
            format!(
                "{} {}p",
                human_bytes(q.backlog_bytes).replace(' ', ""),
                q.backlog_packets
            ),
        ]);
    }
    section(
        out,
        st,
        "tc -s qdisc: queueing disciplines (backlog at the end)",
        &t,
    );
}
