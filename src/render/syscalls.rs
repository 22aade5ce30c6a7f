//! The `syscalls` section as tables: a header with how the probe ran, top processes, top
//! syscalls (errors, time, bucket-bounded p50/p99), process x syscall, and the latency
//! histogram of the syscalls that took the most time.

use std::fmt::Write as _;

use super::table::{new_table, s, section, shorten, wrap, Style};
use crate::model::report::Report;
use crate::model::syscalls::{LatencyHistogram, SyscallsSection};
use crate::probe::hist::{human_ns, human_range, Percentile};

fn count(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}", v)
    } else {
        format!("{v:.1}")
    }
}

/// A bucket-bounded percentile as its upper bound (`<2us`), or `>=34s` for the open bucket.
fn pctl(p: &Option<Percentile>) -> String {
    match p {
        Some(Percentile { hi_ns: Some(h), .. }) => format!("<{}", human_ns(*h)),
        Some(p) => human_range(p.lo_ns, None),
        None => "-".into(),
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

pub fn render(out: &mut String, r: &Report, st: &Style) {
    let Some(x) = &r.sections.syscalls else {
        if r.command == "syscalls" {
            let _ = writeln!(
                out,
                "\n{} not traced: the eBPF probe could not run (why and the fix: NOT MEASURED below)",
                st.head("SYSCALLS")
            );
        }
        return;
    };
    header(out, x, st);
    processes(out, x, st);
    syscalls(out, x, st);
    breakdown(out, x, st);
    histograms(out, x, st);
}

fn header(out: &mut String, x: &SyscallsSection, st: &Style) {
    let time = x
        .time_in_syscalls_ms
        .map(|t| format!(", {:.1} thread-s in syscalls", t / 1000.0))
        .unwrap_or_else(|| ", time in syscall not measured (--no-latency)".into());
    let dropped = if x.dropped.total() > 0 {
        format!(
            "; DROPPED (maps full): {} calls from per-process rows, {} errnos, {} latency samples",
            x.dropped.process_syscalls, x.dropped.errnos, x.dropped.start_times
        )
    } else {
        "; nothing dropped".into()
    };
    let unnumbered = if x.dropped.bad_numbers > 0 {
        format!(
            "; {} calls without a number at exit (rt_sigreturn) not in the tables",
            x.dropped.bad_numbers
        )
    } else {
        String::new()
    };
    let text = format!(
        "{} calls ({}/s), {} errors over {:.2} s traced ({}), {} processes, {} distinct syscalls{time}; \
         probe attached as {} in {:.0} ms{dropped}{unnumbered}",
        x.calls,
        count(x.calls_per_s),
        x.errors,
        x.traced_s,
        s(&x.scope),
        x.processes_seen,
        x.syscalls_seen,
        x.attach_type,
        x.startup_ms,
    );
    let _ = writeln!(out);
    wrap(out, &st.head("SYSCALLS"), "  ", &text);
}

fn processes(out: &mut String, x: &SyscallsSection, st: &Style) {
    if x.processes.is_empty() {
        return;
    }
    let mut t = new_table(&[
        "pid",
        "comm",
        "calls/s",
        "share%",
        "errors",
        "time ms",
        "top syscall",
        "cpu%",
        "sys%",
    ]);
    for p in &x.processes {
        t.add_row(vec![
            p.pid.to_string(),
            shorten(&s(&p.comm), 16),
            count(p.calls_per_s),
            format!("{:.1}", p.calls_pct),
            p.errors.to_string(),
            opt_ms(p.time_ms),
            format!("{} {:.0}%", p.top_syscall, p.top_syscall_pct),
            p.cpu_pct
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into()),
            p.sys_pct
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    section(
        out,
        st,
        "top processes by syscalls (comm as first seen; cpu/sys% from /proc)",
        &t,
    );
}

fn syscalls(out: &mut String, x: &SyscallsSection, st: &Style) {
    if x.syscalls.is_empty() {
        return;
    }
    let mut t = new_table(&[
        "syscall",
        "calls/s",
        "errors",
        "err%",
        "top errno",
        "time ms",
        "time%",
        "avg us",
        "p50",
        "p99",
    ]);
    for r in &x.syscalls {
        let errno = r
            .top_errors
            .first()
            .map(|e| format!("{} {}", e.name, e.count))
            .unwrap_or_default();
        let lat = r.latency.as_ref();
        t.add_row(vec![
            r.name.clone(),
            count(r.calls_per_s),
            r.errors.to_string(),
            format!("{:.1}", r.error_pct),
            errno,
            opt_ms(r.time_ms),
            r.time_pct
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "-".into()),
            r.avg_us
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into()),
            lat.map(|h| pctl(&h.p50)).unwrap_or_else(|| "-".into()),
            lat.map(|h| pctl(&h.p99)).unwrap_or_else(|| "-".into()),
        ]);
    }
    section(
        out,
        st,
        "top syscalls (p50/p99: upper bound of the log2 bucket holding them)",
        &t,
    );
}

fn breakdown(out: &mut String, x: &SyscallsSection, st: &Style) {
    if x.breakdown.is_empty() {
        return;
    }
    let mut t = new_table(&["pid", "comm", "syscall", "calls/s", "errors", "time ms"]);
    for b in &x.breakdown {
        t.add_row(vec![
            b.pid.to_string(),
            shorten(&s(&b.comm), 16),
            b.syscall.clone(),
            count(b.calls_per_s),
            b.errors.to_string(),
            opt_ms(b.time_ms),
        ]);
    }
    section(out, st, "process x syscall", &t);
}

/// The histograms of the (up to) two syscalls with the most time.
fn histograms(out: &mut String, x: &SyscallsSection, st: &Style) {
    let mut by_time: Vec<_> = x
        .syscalls
        .iter()
        .filter_map(|r| r.latency.as_ref().map(|h| (r, h)))
        .collect();
    by_time.sort_by(|a, b| b.1.sum_ns.cmp(&a.1.sum_ns).then(a.0.nr.cmp(&b.0.nr)));
    for (r, h) in by_time.into_iter().take(2) {
        let _ = writeln!(
            out,
            "\n{} {} ({} calls, {} total)",
            st.head("latency:"),
            r.name,
            h.count,
            human_ns(h.sum_ns)
        );
        bars(out, h);
    }
}

fn bars(out: &mut String, h: &LatencyHistogram) {
    let max = h.buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1);
    for b in &h.buckets {
        let n = ((b.count as f64 / max as f64) * 40.0).ceil() as usize;
        let _ = writeln!(
            out,
            "  {:>16} {:>10} |{}",
            human_range(b.lo_ns, b.hi_ns),
            b.count,
            "*".repeat(n)
        );
    }
}
