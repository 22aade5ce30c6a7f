//! The last line of every table: what producing the report cost.

use std::fmt::Write as _;

use crate::model::report::Report;

pub fn render(out: &mut String, r: &Report) {
    let Some(c) = &r.cost else { return };
    let mut line = format!(
        "{:.1} ms CPU ({:.1} user, {:.1} system), peak RSS {:.1} MB",
        c.cpu_ms(),
        c.cpu_user_ms,
        c.cpu_system_ms,
        c.max_rss_kb as f64 / 1024.0
    );
    if !c.programs.is_empty() {
        let insns: u64 = c.programs.iter().map(|p| p.verified_insns as u64).sum();
        let _ = write!(
            line,
            "; {} eBPF programs ({} instructions verified)",
            c.programs.len(),
            insns
        );
        match c.bpf_run_time_ns() {
            Some(ns) => {
                let runs: u64 = c.programs.iter().filter_map(|p| p.run_count).sum();
                let _ = write!(line, " ran {runs} times for {:.2} ms", ns as f64 / 1e6);
            }
            None => line.push_str(
                ", their run time not measured (kernel.bpf_stats_enabled is off; triage does \
                 not turn it on)",
            ),
        }
    }
    out.push('\n');
    super::table::wrap(out, "triage's own cost:", "  ", &line);
}
