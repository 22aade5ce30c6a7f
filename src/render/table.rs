//! The report for people: findings first, then the USE summary, then the checklist's tables,
//! then what could not be measured. Fits 100 columns; color only when asked (TTY, no NO_COLOR).

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use super::sanitize;
use crate::analyze::human_bytes;
use crate::model::report::{Report, Severity, UseKind};

pub const WIDTH: u16 = 100;

/// No borders, a dashed line under the header: compact, and pastes cleanly into tickets.
const UNDERLINED_HEADER: &str = "     -              ";

#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub(super) fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub(super) fn head(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

pub(super) fn new_table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UNDERLINED_HEADER)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH)
        .set_header(headers.iter().map(|h| Cell::new(*h)));
    for i in 1..headers.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

pub(super) fn f1(v: f64) -> String {
    format!("{v:.1}")
}

pub(super) fn o1(v: Option<f64>) -> String {
    v.map(f1).unwrap_or_else(|| "-".into())
}

pub(super) fn ou(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

pub(super) fn s(x: &str) -> String {
    sanitize(x).into_owned()
}

/// Word-wrap `text` to WIDTH columns: the first line starts with `first`, the others with
/// `rest` (indentation). A word longer than a line stays whole.
pub(super) fn wrap(out: &mut String, first: &str, rest: &str, text: &str) {
    let width = WIDTH as usize;
    let mut line = first.to_string();
    // The first line's prefix is a label (`CRIT`, `next:`): a space follows it.
    let mut empty = first.is_empty();
    for word in text.split(' ') {
        let wlen = word.chars().count();
        if !empty && line.chars().count() + 1 + wlen > width {
            let _ = writeln!(out, "{}", line.trim_end());
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    let _ = writeln!(out, "{}", line.trim_end());
}

/// Keep the end of a long name (`…sandbox/v1/python`): the end tells mounts and cgroups apart.
pub(super) fn shorten(x: &str, max: usize) -> String {
    let n = x.chars().count();
    if n <= max {
        return x.to_string();
    }
    let tail: String = x.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

pub(super) fn section(out: &mut String, st: &Style, title: &str, t: &Table) {
    let _ = writeln!(out, "\n{}", st.head(title));
    for line in t.to_string().lines() {
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

pub fn render(r: &Report, st: &Style) -> String {
    let mut out = String::new();
    let h = &r.host;
    let eff = if (h.effective_cpus - h.online_cpus as f64).abs() > 0.01 {
        format!(
            " (effective {:.2}: {})",
            h.effective_cpus,
            s(&h.effective_cpus_source)
        )
    } else {
        String::new()
    };
    let mem = h
        .memory_total_bytes
        .map(human_bytes)
        .unwrap_or_else(|| "?".into());
    let head = format!(
        "{} on {}: kernel {}, {} CPUs{eff}, {mem} RAM, cgroup {}{}",
        r.command,
        s(&h.hostname),
        s(&h.kernel),
        h.online_cpus,
        s(&h.cgroup_mode),
        if h.in_container {
            format!(
                ", in a container ({})",
                s(h.container_evidence.as_deref().unwrap_or(""))
            )
        } else {
            String::new()
        }
    );
    wrap(&mut out, &st.head("triage"), "  ", &head);
    let _ = writeln!(
        out,
        "window {:.2} s from {} ({} task samples); rates are per second over the window",
        r.window.elapsed_s, r.window.start, r.window.samples
    );

    findings(&mut out, r, st);
    super::syscalls::render(&mut out, r, st);
    if r.sections.offcpu.is_none() && r.sections.profile.is_none() {
        use_summary(&mut out, r, st);
        checklist(&mut out, r, st);
    }
    super::deep::render(&mut out, r, st);
    super::offcpu::render(&mut out, r, st);
    super::profile::render(&mut out, r, st);

    if !r.unavailable.is_empty() {
        let _ = writeln!(out, "\n{}", st.head("NOT MEASURED"));
        for u in &r.unavailable {
            let fix = u
                .fix
                .as_deref()
                .map(|f| format!(" -> {}", s(f)))
                .unwrap_or_default();
            let text = format!("{}: {}{fix}", s(&u.what), s(&u.reason));
            wrap(&mut out, "  -", "    ", &text);
        }
    }
    super::cost::render(&mut out, r);
    out
}

fn findings(out: &mut String, r: &Report, st: &Style) {
    let _ = writeln!(out, "\n{}", st.head("FINDINGS"));
    let real: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .collect();
    if real.is_empty() {
        let _ = writeln!(
            out,
            "  No resource is saturated or erroring in this window."
        );
    }
    for f in &r.findings {
        let tag = match f.severity {
            Severity::Critical => st.paint("1;31", "CRIT"),
            Severity::Warning => st.paint("1;33", "WARN"),
            Severity::Info => st.paint("36", "info"),
        };
        wrap(out, &format!("  {tag}"), "       ", &s(&f.summary));
        let ev: Vec<String> = f
            .evidence
            .iter()
            .map(|e| format!("{} {} {} {}", e.metric, e.value, e.comparison, e.threshold))
            .collect();
        wrap(
            out,
            "       evidence:",
            "         ",
            &format!("{}  [{}]", ev.join("; "), f.id),
        );
        if !f.next.is_empty() {
            let next = f
                .next
                .iter()
                .map(|n| s(n))
                .collect::<Vec<_>>()
                .join("  |  ");
            wrap(out, "       next:", "         ", &next);
        }
    }
}

fn use_summary(out: &mut String, r: &Report, st: &Style) {
    let mut t = new_table(&["resource", "utilization", "saturation", "errors"]);
    for c in 1..4 {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Left);
        }
    }
    for res in &r.resources {
        let name = match &res.instance {
            Some(i) => format!("{} {}", res.name, shorten(&s(i), 18)),
            None => res.name.clone(),
        };
        let col = |k: UseKind| {
            res.metrics
                .iter()
                .filter(|m| m.kind == k)
                .map(|m| {
                    let v = match m.value {
                        Some(v) if m.unit == "pct" => format!("{v:.0}%"),
                        Some(v) if m.unit == "count" => format!("{v:.0}"),
                        Some(v) if m.unit == "kb_per_s" => format!("{v:.0} kB/s"),
                        Some(v) if m.unit == "per_s" => format!("{v:.1}/s"),
                        Some(v) if m.unit == "ms" => format!("{v:.1} ms"),
                        Some(v) => format!("{v:.1}"),
                        None => "n/a".into(),
                    };
                    format!("{} {v}", m.label)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        t.add_row(vec![
            name,
            col(UseKind::Utilization),
            col(UseKind::Saturation),
            col(UseKind::Errors),
        ]);
    }
    section(out, st, "USE (utilization / saturation / errors)", &t);
}

fn checklist(out: &mut String, r: &Report, st: &Style) {
    let sec = &r.sections;
    if let Some(l) = &sec.load {
        let _ = writeln!(
            out,
            "\n{} load average {:.2} {:.2} {:.2} on {:.2} effective CPUs ({:.2} per CPU)",
            st.head("uptime:"),
            l.load1,
            l.load5,
            l.load15,
            l.effective_cpus,
            l.load1_per_cpu
        );
    }
    if let Some(v) = &sec.vmstat {
        let mut t = new_table(&[
            "r", "b", "si kB/s", "so kB/s", "majflt/s", "cs/s", "in/s", "us", "sy", "id", "wa",
            "st",
        ]);
        let mm = |a: Option<u32>, b: Option<f64>, c: Option<u32>| {
            format!(
                "{}/{}/{}",
                ou(a.map(u64::from)),
                o1(b),
                ou(c.map(u64::from))
            )
        };
        t.add_row(vec![
            mm(v.runnable_min, v.runnable_avg, v.runnable_max),
            mm(v.blocked_min, v.blocked_avg, v.blocked_max),
            o1(v.swap_in_kb_per_s),
            o1(v.swap_out_kb_per_s),
            o1(v.major_faults_per_s),
            o1(v.context_switches_per_s.map(f64::round)),
            o1(v.interrupts_per_s.map(f64::round)),
            o1(v.user_pct),
            o1(v.system_pct),
            o1(v.idle_pct),
            o1(v.iowait_pct),
            o1(v.steal_pct),
        ]);
        section(
            out,
            st,
            &format!(
                "vmstat (r runnable, b blocked: min/avg/max of {} samples)",
                v.samples
            ),
            &t,
        );
    }
    if !sec.cpus.is_empty() {
        let mut t = new_table(&[
            "CPU", "%usr", "%nice", "%sys", "%iowait", "%irq", "%soft", "%steal", "%guest", "%idle",
        ]);
        for c in &sec.cpus {
            t.add_row(vec![
                c.cpu.clone(),
                f1(c.usr_pct),
                f1(c.nice_pct),
                f1(c.sys_pct),
                f1(c.iowait_pct),
                f1(c.irq_pct),
                f1(c.soft_pct),
                f1(c.steal_pct),
                f1(c.guest_pct),
                f1(c.idle_pct),
            ]);
        }
        section(out, st, "mpstat -P ALL", &t);
    }
    if let Some(p) = &sec.processes {
        let mut t = new_table(&[
            "PID", "command", "state", "%CPU", "%usr", "%sys", "RSS", "threads", "majflt/s",
        ]);
        if let Some(c) = t.column_mut(1) {
            c.set_cell_alignment(CellAlignment::Left);
        }
        for x in &p.top_cpu {
            t.add_row(vec![
                x.pid.to_string(),
                s(&x.comm),
                x.state.clone(),
                f1(x.cpu_pct),
                f1(x.usr_pct),
                f1(x.sys_pct),
                human_bytes(x.rss_bytes),
                x.threads.to_string(),
                f1(x.major_faults_per_s),
            ]);
        }
        section(
            out,
            st,
            &format!(
                "pidstat/top: by CPU ({} processes, {} threads, {} zombies)",
                p.count, p.threads, p.zombies
            ),
            &t,
        );
        let mut t = new_table(&["PID", "command", "RSS", "%CPU"]);
        if let Some(c) = t.column_mut(1) {
            c.set_cell_alignment(CellAlignment::Left);
        }
        for x in &p.top_rss {
            t.add_row(vec![
                x.pid.to_string(),
                s(&x.comm),
                human_bytes(x.rss_bytes),
                f1(x.cpu_pct),
            ]);
        }
        section(out, st, "top: by resident memory", &t);
        if !p.d_state.is_empty() {
            let mut t = new_table(&["PID", "TID", "command", "waiting in"]);
            for d in &p.d_state {
                t.add_row(vec![
                    d.pid.to_string(),
                    d.tid.to_string(),
                    s(&d.comm),
                    s(d.wchan.as_deref().unwrap_or("-")),
                ]);
            }
            section(out, st, "tasks in D state (uninterruptible)", &t);
        }
    }
    // The deep dives other than `disk` leave the disk tables out.
    if !matches!(r.command.as_str(), "cpu" | "mem" | "net") {
        let mut t = new_table(&[
            "device", "r/s", "w/s", "rkB/s", "wkB/s", "r_await", "w_await", "aqu-sz", "%util",
        ]);
        if let Some(c) = t.column_mut(0) {
            c.set_cell_alignment(CellAlignment::Left);
        }
        for d in &sec.disks {
            let util = if d.util_pct > 100.0 {
                format!("{:.1}!", d.util_pct)
            } else {
                f1(d.util_pct)
            };
            t.add_row(vec![
                s(&d.device),
                f1(d.r_per_s),
                f1(d.w_per_s),
                f1(d.rkb_per_s),
                f1(d.wkb_per_s),
                o1(d.r_await_ms),
                o1(d.w_await_ms),
                format!("{:.2}", d.aqu_sz),
                util,
            ]);
        }
        let title = format!(
            "iostat -xz ({} idle or memory-backed devices hidden)",
            sec.disks_idle
        );
        if sec.disks.is_empty() {
            let _ = writeln!(out, "\n{}\n  no disk I/O in the window", st.head(&title));
        } else {
            section(out, st, &title, &t);
            for d in sec.disks.iter().filter(|d| d.caveat.is_some()) {
                let _ = writeln!(
                    out,
                    "  note {}: {}",
                    s(&d.device),
                    d.caveat.as_deref().unwrap_or("")
                );
            }
        }
    }
    if let Some(m) = &sec.memory {
        let mut t = new_table(&["", "total", "used", "free", "buff/cache", "available"]);
        t.add_row(vec![
            "Mem".into(),
            human_bytes(m.total_bytes),
            human_bytes(m.used_bytes),
            human_bytes(m.free_bytes),
            human_bytes(m.buff_cache_bytes),
            m.available_bytes
                .map(human_bytes)
                .unwrap_or_else(|| "-".into()),
        ]);
        t.add_row(vec![
            "Swap".into(),
            human_bytes(m.swap_total_bytes),
            human_bytes(m.swap_used_bytes),
            human_bytes(m.swap_total_bytes.saturating_sub(m.swap_used_bytes)),
            String::new(),
            String::new(),
        ]);
        let lim = match (&m.limit_bytes, &m.limit_source) {
            (Some(b), Some(src)) => format!(" (cgroup limit {} from {})", human_bytes(*b), s(src)),
            _ => String::new(),
        };
        section(out, st, &format!("free{lim}"), &t);
    }
    if !sec.filesystems.is_empty() {
        let mut t = new_table(&["mount", "type", "size", "avail", "use%", "inodes%"]);
        if let Some(c) = t.column_mut(1) {
            c.set_cell_alignment(CellAlignment::Left);
        }
        for f in &sec.filesystems {
            t.add_row(vec![
                format!(
                    "{}{}",
                    s(&f.mount_point),
                    if f.read_only { " (ro)" } else { "" }
                ),
                s(&f.fs_type),
                human_bytes(f.size_bytes),
                human_bytes(f.avail_bytes),
                o1(f.used_pct),
                o1(f.inodes_used_pct),
            ]);
        }
        section(out, st, "df", &t);
    }
    if !matches!(r.command.as_str(), "cpu" | "mem" | "disk") {
        let mut t = new_table(&[
            "netns", "iface", "rxkB/s", "txkB/s", "rxpck/s", "txpck/s", "rxerr/s", "txerr/s",
            "rxdrop/s", "txdrop/s",
        ]);
        for c in 0..2 {
            if let Some(col) = t.column_mut(c) {
                col.set_cell_alignment(CellAlignment::Left);
            }
        }
        for i in &sec.interfaces {
            t.add_row(vec![
                s(&i.namespace),
                s(&i.interface),
                f1(i.rx_kb_per_s),
                f1(i.tx_kb_per_s),
                f1(i.rx_packets_per_s),
                f1(i.tx_packets_per_s),
                f1(i.rx_errors_per_s),
                f1(i.tx_errors_per_s),
                f1(i.rx_drops_per_s),
                f1(i.tx_drops_per_s),
            ]);
        }
        if sec.interfaces.is_empty() {
            let _ = writeln!(
                out,
                "\n{}\n  no traffic in the window",
                st.head("sar -n DEV,EDEV")
            );
        } else {
            section(out, st, "sar -n DEV,EDEV", &t);
        }
    }
    if !sec.tcp.is_empty() {
        let mut t = new_table(&[
            "netns", "actv/s", "pasv/s", "retr/s", "retr%", "ierr/s", "rst/s", "ovfl/s", "estab",
            "tw", "clwait", "orph",
        ]);
        if let Some(col) = t.column_mut(0) {
            col.set_cell_alignment(CellAlignment::Left);
        }
        for x in &sec.tcp {
            t.add_row(vec![
                s(&x.namespace),
                o1(x.active_opens_per_s),
                o1(x.passive_opens_per_s),
                o1(x.retrans_segs_per_s),
                o1(x.retrans_pct),
                o1(x.in_errs_per_s),
                o1(x.out_rsts_per_s),
                o1(x.listen_overflows_per_s),
                ou(x.established),
                ou(x.time_wait),
                ou(x.close_wait),
                ou(x.orphans),
            ]);
        }
        section(
            out,
            st,
            "sar -n TCP,ETCP and ss -s (per network namespace)",
            &t,
        );
        for x in sec
            .tcp
            .iter()
            .filter(|x| x.namespace != "own" && !x.processes.is_empty())
        {
            let _ = writeln!(out, "  {}: {}", s(&x.namespace), s(&x.processes.join(", ")));
        }
    }
    if !sec.pressure.is_empty() {
        let mut t = new_table(&[
            "resource",
            "some % of window",
            "full % of window",
            "some avg10",
            "some avg60",
        ]);
        for p in &sec.pressure {
            t.add_row(vec![
                p.resource.clone(),
                o1(p.some_pct),
                o1(p.full_pct),
                f1(p.some_avg10_pct),
                f1(p.some_avg60_pct),
            ]);
        }
        section(out, st, "pressure stall information (PSI)", &t);
    }
    if !sec.cgroups.is_empty() {
        let mut t = new_table(&[
            "cgroup",
            "CPU limit",
            "CPU used",
            "throttled%",
            "thr ms/s",
            "memory",
            "mem limit",
            "mem%",
            "OOM kills",
        ]);
        if let Some(col) = t.column_mut(0) {
            col.set_cell_alignment(CellAlignment::Left);
        }
        for c in &sec.cgroups {
            t.add_row(vec![
                s(&c.path),
                o1(c.cpu_limit_cpus),
                o1(c.cpu_used_cpus),
                o1(c.throttled_periods_pct),
                o1(c.throttled_ms_per_s),
                c.memory_bytes
                    .map(human_bytes)
                    .unwrap_or_else(|| "-".into()),
                c.memory_limit_bytes
                    .map(human_bytes)
                    .unwrap_or_else(|| "-".into()),
                o1(c.memory_used_pct),
                ou(c.oom_kills),
            ]);
        }
        section(out, st, "cgroups with limits", &t);
    }
    if let Some(l) = &sec.limits {
        let mut parts = Vec::new();
        if let (Some(a), Some(m)) = (l.file_handles, l.file_handles_max) {
            parts.push(format!("file handles {a}/{m}"));
        }
        if let (Some(t), Some(p)) = (l.threads, l.pid_max) {
            parts.push(format!(
                "threads {t} (pid_max {p}, threads-max {})",
                ou(l.threads_max)
            ));
        }
        if let (Some(c), Some(m)) = (l.conntrack, l.conntrack_max) {
            parts.push(format!("conntrack {c}/{m}"));
        }
        if let Some(p) = &sec.processes {
            if let Some(f) = p.fd_top.first() {
                parts.push(format!(
                    "most fds: {} (pid {}) {}/{}",
                    s(&f.comm),
                    f.pid,
                    f.open_fds,
                    ou(f.soft_limit)
                ));
            }
        }
        if !parts.is_empty() {
            let _ = writeln!(out);
            wrap(out, &st.head("limits:"), "  ", &parts.join("; "));
        }
    }
    if let Some(k) = &sec.kernel_log {
        let _ = writeln!(
            out,
            "\n{}",
            st.head(&format!(
                "dmesg: problem messages in the last {:.0} min",
                k.lookback_s / 60.0
            ))
        );
        if k.events.is_empty() {
            let _ = writeln!(out, "  none");
        }
        for e in &k.events {
            let line = format!("[{}] {}", e.class, s(&e.message));
            wrap(
                out,
                &format!("  {:>7.1}s ago", e.age_s),
                "            ",
                &line,
            );
        }
    }
}
