//! Tables for the eBPF views: the top off-CPU stacks (`triage offcpu`) and the latency
//! histograms (run queue, block I/O, TCP retransmits) in sixty-second and the resource views.

use std::fmt::Write as _;

use super::table::{new_table, section, Style};
use crate::model::offcpu::{HistSummary, LatencySection, OffcpuSection};
use crate::model::report::Report;
use crate::probe::hist::human_ns;

fn s(x: &str) -> String {
    super::sanitize(x).into_owned()
}

fn us(v: f64) -> String {
    human_ns((v * 1e3) as u64)
}

fn bounded(lo: f64, hi: Option<f64>) -> String {
    match hi {
        Some(h) => format!("{}-{}", us(lo), us(h)),
        None => format!(">={}", us(lo)),
    }
}

/// Both sections, when present.
pub fn render(out: &mut String, r: &Report, st: &Style) {
    if let Some(o) = &r.sections.offcpu {
        offcpu(out, o, st);
    }
    if let Some(l) = &r.sections.latency {
        latency(out, l, st);
    }
}

fn offcpu(out: &mut String, o: &OffcpuSection, st: &Style) {
    let p = &o.probe;
    let mut t = new_table(&[
        "process",
        "threads",
        "off-CPU ms",
        "lock",
        "I/O",
        "sleep",
        "net",
        "poll",
        "other",
    ]);
    let ms = |v: f64| {
        if v > 0.0 {
            format!("{v:.0}")
        } else {
            "-".into()
        }
    };
    for x in &o.processes {
        t.add_row(vec![
            format!("{} ({})", s(&x.process), x.pid),
            x.threads.to_string(),
            format!("{:.0}", x.total_ms),
            ms(x.lock_ms),
            ms(x.io_ms),
            ms(x.sleep_ms),
            ms(x.net_ms),
            ms(x.poll_ms),
            ms(x.other_ms),
        ]);
    }
    section(
        out,
        st,
        "OFF-CPU BY PROCESS (thread-ms by what it waits for: futex, D-state I/O, nanosleep, \
         socket receive, poll/epoll)",
        &t,
    );
    let mut t = new_table(&[
        "#",
        "off-CPU ms",
        "share",
        "count",
        "max ms",
        "state",
        "process/thread",
    ]);
    let top: Vec<_> = p.stacks.iter().collect();
    for (i, x) in top.iter().enumerate() {
        t.add_row(vec![
            format!("{}", i + 1),
            format!("{:.1}", x.total_ms()),
            format!("{:.1}%", 100.0 * x.total_ms() / o.total_ms.max(1e-9)),
            x.count.to_string(),
            format!("{:.1}", x.max_ns as f64 / 1e6),
            x.state.clone(),
            format!(
                "{} ({}) / {} ({})",
                s(&x.process),
                x.pid,
                s(&x.thread),
                x.tid
            ),
        ]);
    }
    let blocks = if p.sample_every >= 2 {
        format!(
            "blocks >= {}, 1/{} from {}",
            human_ns(p.min_block_us.saturating_mul(1000)),
            p.sample_every,
            human_ns(p.sample_floor_us.saturating_mul(1000))
        )
    } else {
        format!(
            "blocks >= {}",
            human_ns(p.min_block_us.saturating_mul(1000))
        )
    };
    let title = format!(
        "TOP OFF-CPU STACKS ({}, {:.1} s, {blocks}, {}; total {:.1} ms over {} stacks)",
        s(&p.scope),
        p.traced_s,
        p.attach_type,
        o.total_ms,
        o.stacks_total
    );
    section(out, st, &title, &t);
    let _ = writeln!(out, "\nSTACKS (innermost first; user frames, then kernel)");
    for (i, x) in top.iter().enumerate() {
        let _ = writeln!(
            out,
            "#{} {} ({}) tid {} state {}: {:.1} ms in {} blocks",
            i + 1,
            s(&x.process),
            x.pid,
            x.tid,
            x.state,
            x.total_ms(),
            x.count
        );
        for f in x.user.iter().take(12) {
            let _ = writeln!(out, "    {}", frame(&f.label()));
        }
        if x.user_missing {
            let _ = writeln!(out, "    [user stack not captured]");
        }
        if !x.user.is_empty() || x.user_missing {
            let _ = writeln!(out, "    --");
        }
        for f in x.kernel.iter().take(12) {
            let _ = writeln!(out, "    {}", frame(&f.label()));
        }
        if x.kernel_missing {
            let _ = writeln!(out, "    [kernel stack not captured]");
        }
    }
    let d = &p.dropped;
    let _ = writeln!(out);
    let line = format!(
        "frames unresolved: {} of {} ({:.1}%); user stacks truncated: {}; dropped: {} start, {} \
         aggregation, {} kernel stack, {} user stack",
        p.frames_unresolved,
        p.frames_total,
        100.0 * p.frames_unresolved as f64 / (p.frames_total.max(1)) as f64,
        p.user_stacks_truncated,
        d.start_records,
        d.aggregations,
        d.kernel_stacks,
        d.user_stacks
    );
    super::table::wrap(out, "", "  ", &line);
}

/// A stack frame, sanitized and cut to the table width (keeping its end).
fn frame(label: &str) -> String {
    super::table::shorten(
        &s(label),
        (super::table::width() as usize).saturating_sub(4).max(20),
    )
}

fn hist_cells(h: &HistSummary) -> Vec<String> {
    vec![
        h.count.to_string(),
        us(h.avg_us),
        bounded(h.p50_lo_us, h.p50_hi_us),
        bounded(h.p99_lo_us, h.p99_hi_us),
        us(h.max_us),
    ]
}

fn latency(out: &mut String, l: &LatencySection, st: &Style) {
    if !l.runqueue.is_empty() {
        let mut t = new_table(&["cpu", "wakeups", "avg", "p50", "p99", "max"]);
        for q in &l.runqueue {
            let mut row = vec![q.cpu.clone()];
            row.extend(hist_cells(&q.latency));
            t.add_row(row);
        }
        let title = format!(
            "RUN-QUEUE LATENCY (eBPF {}: wakeup to switch-in; percentiles bucket-bounded)",
            l.attach_type
        );
        section(out, st, &title, &t);
    }
    if !l.block.is_empty() {
        let mut t = new_table(&["device", "op", "requests", "avg", "p50", "p99", "max"]);
        for b in &l.block {
            let mut row = vec![s(&b.device), b.op.clone()];
            row.extend(hist_cells(&b.latency));
            t.add_row(row);
        }
        section(out, st, "BLOCK I/O LATENCY (eBPF: issue to completion)", &t);
    }
    if !l.retransmits.is_empty() {
        let mut t = new_table(&["local", "remote", "state", "retransmits", "netns"]);
        for x in l.retransmits.iter().take(10) {
            t.add_row(vec![
                s(&x.local),
                s(&x.remote),
                x.state.clone(),
                x.count.to_string(),
                x.netns.to_string(),
            ]);
        }
        section(
            out,
            st,
            "TCP RETRANSMITS (eBPF tcp:tcp_retransmit_skb, all namespaces)",
            &t,
        );
    }
    // A probe that ran and saw nothing says so: an absent table is not a silent gap.
    let quiet: Vec<&str> = [
        ("runqueue", l.runqueue.is_empty(), "run-queue wakeups"),
        ("block", l.block.is_empty(), "block I/O requests"),
        ("retransmits", l.retransmits.is_empty(), "TCP retransmits"),
    ]
    .iter()
    .filter(|(p, empty, _)| *empty && l.probes.iter().any(|x| x == p))
    .map(|x| x.2)
    .collect();
    if !quiet.is_empty() {
        let _ = writeln!(
            out,
            "\neBPF ({}): no {} in the window",
            l.attach_type,
            quiet.join(", no ")
        );
    }
    if l.dropped > 0 {
        let _ = writeln!(
            out,
            "latency probes dropped {} events (maps full)",
            l.dropped
        );
    }
}
