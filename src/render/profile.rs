//! Tables for `triage profile`: top processes, threads, functions (self and total), CPUs, the
//! top stacks, and what was lost or could not be unwound.

use std::fmt::Write as _;

use super::table::{new_table, section, Style};
use crate::model::profile::ProfileSection;
use crate::model::report::Report;

fn s(x: &str) -> String {
    super::sanitize(x).into_owned()
}

/// Long (C++/Rust) names cut to fit a table cell.
fn name(x: &str) -> String {
    const MAX: usize = 60;
    let x = s(x);
    if x.chars().count() <= MAX {
        x
    } else {
        let mut t: String = x.chars().take(MAX - 1).collect();
        t.push('~');
        t
    }
}

fn p1(v: f64) -> String {
    format!("{v:.1}%")
}

pub fn render(out: &mut String, r: &Report, st: &Style) {
    if let Some(p) = &r.sections.profile {
        profile(out, p, st);
    }
}

fn profile(out: &mut String, o: &ProfileSection, st: &Style) {
    let p = &o.probe;
    let _ = writeln!(
        out,
        "\n{} {} at {} Hz per CPU ({}, {:.1} s): {} samples of work; observed {:.1} samples/s \
         per CPU; start-up {:.1} ms",
        p.event,
        s(&p.scope),
        p.frequency_hz,
        p.attach_type,
        p.traced_s,
        o.samples,
        o.rate_hz,
        p.startup_ms
    );
    let mut t = new_table(&[
        "process",
        "threads",
        "samples",
        "share",
        "CPUs",
        "kernel",
        "hottest function (self)",
    ]);
    for x in &o.processes {
        t.add_row(vec![
            format!("{} ({})", s(&x.process), x.pid),
            x.threads.to_string(),
            x.samples.to_string(),
            p1(x.pct),
            format!("{:.2}", x.cpus),
            p1(x.kernel_pct),
            x.top_function
                .as_deref()
                .map(|f| format!("{} {}", name(f), p1(x.top_function_pct)))
                .unwrap_or_default(),
        ]);
    }
    section(out, st, "TOP PROCESSES BY ON-CPU SAMPLES", &t);

    let mut t = new_table(&["process", "thread", "samples", "share"]);
    for x in &o.threads {
        t.add_row(vec![
            format!("{} ({})", s(&x.process), x.pid),
            format!("{} ({})", s(&x.thread), x.tid),
            x.samples.to_string(),
            p1(x.pct),
        ]);
    }
    section(out, st, "TOP THREADS", &t);

    let mut t = new_table(&["function", "where", "self", "self%", "total", "total%"]);
    for f in &o.functions {
        let place = match (&f.module, f.kernel) {
            (_, true) => "kernel".to_string(),
            (Some(m), false) => s(m.rsplit('/').next().unwrap_or(m)),
            (None, false) => "user".into(),
        };
        t.add_row(vec![
            name(&f.function),
            place,
            f.self_samples.to_string(),
            p1(f.self_pct),
            f.total_samples.to_string(),
            p1(f.total_pct),
        ]);
    }
    section(
        out,
        st,
        "TOP FUNCTIONS (self: the innermost frame; total: anywhere in the stack)",
        &t,
    );

    let mut t = new_table(&[
        "cpu",
        "samples",
        "idle",
        "user",
        "kernel",
        "softirq",
        "top softirq",
    ]);
    for c in &o.cpus {
        t.add_row(vec![
            c.cpu.to_string(),
            c.samples.to_string(),
            p1(c.idle_pct),
            p1(c.user_pct),
            p1(c.kernel_pct),
            p1(c.softirq_pct),
            c.top_softirq
                .as_deref()
                .map(|h| format!("{} {}", s(h), p1(c.top_softirq_pct)))
                .unwrap_or_default(),
        ]);
    }
    section(
        out,
        st,
        "PER CPU (share of each CPU's samples; user/kernel of the samples in scope)",
        &t,
    );

    let _ = writeln!(
        out,
        "\nTOP STACKS (innermost first; user frames, then kernel; {} of {})",
        p.stacks.len(),
        o.stacks_total
    );
    for (i, x) in p.stacks.iter().enumerate() {
        let _ = writeln!(
            out,
            "#{} {} ({}) / {} ({}) on CPU {}: {} samples ({})",
            i + 1,
            s(&x.process),
            x.pid,
            s(&x.thread),
            x.tid,
            x.cpu,
            x.samples,
            p1(100.0 * x.samples as f64 / o.samples.max(1) as f64)
        );
        for f in x.user.iter().take(12) {
            let _ = writeln!(out, "    {}", s(&f.label()));
        }
        if x.user_missing {
            let _ = writeln!(out, "    [user stack lost]");
        }
        if (!x.user.is_empty() || x.user_missing) && (!x.kernel.is_empty() || x.kernel_missing) {
            let _ = writeln!(out, "    --");
        }
        for f in x.kernel.iter().take(12) {
            let _ = writeln!(out, "    {}", s(&f.label()));
        }
        if x.kernel_missing {
            let _ = writeln!(out, "    [kernel stack lost]");
        }
    }
    if !o.unwind.is_empty() {
        let mut t = new_table(&["process", "truncated", "of", "stopped in"]);
        for u in &o.unwind {
            t.add_row(vec![
                format!("{} ({})", s(&u.process), u.pid),
                u.truncated.to_string(),
                u.with_user_stack.to_string(),
                s(&u.stopped_in),
            ]);
        }
        section(
            out,
            st,
            "USER STACKS THAT STOP EARLY (no frame pointers past this frame)",
            &t,
        );
    }
    let d = &p.dropped;
    let _ = writeln!(
        out,
        "\nframes unresolved: {} of {} ({:.1}%); dropped: {} samples, {} kernel stacks, {} user \
         stacks",
        p.frames_unresolved,
        p.frames_total,
        100.0 * p.frames_unresolved as f64 / (p.frames_total.max(1)) as f64,
        d.aggregations,
        d.kernel_stacks,
        d.user_stacks
    );
}
