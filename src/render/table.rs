//! The report for people: findings first, then the USE summary, then the checklist's tables,
//! then what could not be measured. Fits 100 columns; color only when asked (TTY, no NO_COLOR).

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use super::sanitize;
use crate::model::report::{Report, Severity, UseKind};
use crate::resources::columns::{Align, Column};
use crate::text::human_bytes;

/// The default width (not a terminal, and no --width).
pub const WIDTH: u16 = 100;

thread_local! {
    /// The width this thread renders at: [`WIDTH`] unless [`render_width`] (or
    /// [`with_width`]) says otherwise.
    static CURRENT_WIDTH: std::cell::Cell<u16> = const { std::cell::Cell::new(WIDTH) };
}

/// The width tables and wrapped text are rendered at now.
pub fn width() -> u16 {
    CURRENT_WIDTH.with(|w| w.get())
}

/// Run `f` with tables and text wrapped at `width` columns.
pub fn with_width<T>(width: u16, f: impl FnOnce() -> T) -> T {
    let old = CURRENT_WIDTH.with(|w| w.replace(width));
    let out = f();
    CURRENT_WIDTH.with(|w| w.set(old));
    out
}

/// [`render`] at `width` columns (the terminal's, or --width).
pub fn render_width(r: &Report, st: &Style, width: u16) -> String {
    with_width(width, || render(r, st))
}

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
    pub fn head(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

pub(super) fn new_table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UNDERLINED_HEADER)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width())
        .set_header(headers.iter().map(|h| Cell::new(*h)));
    for i in 1..headers.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// A table drawn from its column specs: the headers, each column's alignment, a row per item.
pub(super) fn spec_table<R>(cols: &[Column<R>], rows: &[R]) -> Table {
    let mut t = new_table(&Column::headers(cols));
    for (i, c) in cols.iter().enumerate() {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(match c.align {
                Align::Left => CellAlignment::Left,
                Align::Right => CellAlignment::Right,
            });
        }
    }
    for r in rows {
        t.add_row(Column::cells(cols, r));
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
    let width = width() as usize;
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

pub(super) use crate::resources::columns::shorten;

pub(super) fn section(out: &mut String, st: &Style, title: &str, t: &Table) {
    // A long title wraps like text (each line painted on its own).
    let mut lines = String::new();
    wrap(&mut lines, "", "  ", title);
    let _ = writeln!(out);
    for l in lines.lines() {
        let _ = writeln!(out, "{}", st.head(l));
    }
    for (i, part) in fit(t, width()).iter().enumerate() {
        if i > 0 {
            let _ = writeln!(out);
        }
        for line in part.to_string().lines() {
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
}

/// Columns are separated by their padding: one space each side.
const COLUMN_PADDING: usize = 2;

/// Lay `t` out in `width` columns without ever splitting a word: each column is at least as
/// wide as its longest word (numbers, ids and names stay whole; cells wrap only at spaces).
/// When even that is too wide, the columns are shown in groups, each repeating the first
/// column (the row's key), one table after the other.
pub(super) fn fit(t: &Table, width: u16) -> Vec<Table> {
    let ncols = t
        .header()
        .map(|h| h.cell_count())
        .unwrap_or(0)
        .max(t.row_iter().map(|r| r.cell_count()).max().unwrap_or(0));
    if ncols == 0 {
        return vec![t.clone()];
    }
    // The longest line of each column: when every column fits whole, nothing to arrange.
    let mut widest = vec![0usize; ncols];
    for row in t.header().into_iter().chain(t.row_iter()) {
        for (i, c) in row.cell_iter().enumerate() {
            let w = c
                .content()
                .lines()
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(0);
            widest[i] = widest[i].max(w);
        }
    }
    if widest.iter().map(|w| w + COLUMN_PADDING).sum::<usize>() <= width as usize {
        let mut whole = t.clone();
        whole.set_width(width);
        return vec![whole];
    }
    // The longest word of each column, header included.
    let mut min = vec![1usize; ncols];
    let rows = t.header().into_iter().chain(t.row_iter());
    for row in rows {
        for (i, c) in row.cell_iter().enumerate() {
            let w = c
                .content()
                .split_whitespace()
                .map(|w| w.chars().count())
                .max()
                .unwrap_or(0);
            min[i] = min[i].max(w);
        }
    }
    let need = |cols: &[usize]| cols.iter().map(|&i| min[i] + COLUMN_PADDING).sum::<usize>();
    let all: Vec<usize> = (0..ncols).collect();
    let groups: Vec<Vec<usize>> = if need(&all) <= width as usize || ncols == 1 {
        vec![all]
    } else {
        let mut groups = Vec::new();
        let mut cur = vec![0];
        for (i, &m) in min.iter().enumerate().skip(1) {
            if cur.len() > 1 && need(&cur) + m + COLUMN_PADDING > width as usize {
                groups.push(std::mem::replace(&mut cur, vec![0]));
            }
            cur.push(i);
        }
        groups.push(cur);
        groups
    };
    groups
        .iter()
        .map(|g| {
            let mut part = t.clone();
            part.set_width(width);
            for (i, &m) in min.iter().enumerate() {
                if let Some(c) = part.column_mut(i) {
                    c.set_constraint(if g.contains(&i) {
                        comfy_table::ColumnConstraint::LowerBoundary(comfy_table::Width::Fixed(
                            (m + COLUMN_PADDING) as u16,
                        ))
                    } else {
                        comfy_table::ColumnConstraint::Hidden
                    });
                }
            }
            part
        })
        .collect()
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
    // Only what is known: an unknown fact is left out, never shown as `?` or `-`.
    let mut facts = Vec::new();
    if !h.kernel.is_empty() && h.kernel != "-" {
        facts.push(format!("kernel {}", s(&h.kernel)));
    }
    if h.online_cpus > 0 {
        facts.push(format!("{} CPUs{eff}", h.online_cpus));
    }
    if let Some(m) = h.memory_total_bytes {
        facts.push(format!("{} RAM", human_bytes(m)));
    }
    if let Some(c) = &h.cgroup_mode {
        facts.push(format!("cgroup {}", s(c)));
    }
    if h.in_container == Some(true) {
        facts.push(format!(
            "in a container ({})",
            s(h.container_evidence.as_deref().unwrap_or(""))
        ));
    }
    let head = format!(
        "{} on {}: {}",
        r.command,
        if h.hostname.is_empty() {
            "an unknown host".to_string()
        } else {
            s(&h.hostname)
        },
        if facts.is_empty() {
            "no host facts could be read".to_string()
        } else {
            facts.join(", ")
        }
    );
    verdict(&mut out, r, st);
    wrap(&mut out, &st.head("triage"), "  ", &head);
    let window = format!(
        "window {:.2} s from {} ({} task samples); rates are per second over the window",
        r.window.elapsed_s, r.window.start, r.window.samples
    );
    wrap(&mut out, "", "  ", &window);

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

/// The verdict line, first: the status (colored) and the one-line summary.
pub(super) fn verdict(out: &mut String, r: &Report, st: &Style) {
    out.push_str(&verdict_line(&r.summary, st));
}

/// [`verdict`] of a summary, wrapped to the current width.
pub fn verdict_line(sum: &crate::model::summary::Summary, st: &Style) -> String {
    use crate::model::summary::Status;
    let mut out = String::new();
    let text = s(&sum.text);
    let (code, tag) = match sum.status {
        Status::Ok => ("1;32", "OK"),
        Status::Warning => ("1;33", "WARNING"),
        Status::Critical => ("1;31", "CRITICAL"),
        Status::Incomplete => ("1;35", "INCOMPLETE"),
    };
    // The text starts with the status word: paint that word only.
    let rest = text.strip_prefix(tag).unwrap_or(&text);
    wrap(
        &mut out,
        &st.paint(code, &format!("{tag}:")),
        "  ",
        rest.trim_start_matches(':').trim_start(),
    );
    out
}

/// [`shorten`] for the other output modules.
pub fn shorten_pub(x: &str, max: usize) -> String {
    shorten(x, max)
}

fn findings(out: &mut String, r: &Report, st: &Style) {
    let _ = writeln!(out, "\n{}", st.head("FINDINGS"));
    let real: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .collect();
    if r.summary.status == crate::model::summary::Status::Incomplete {
        let _ = writeln!(
            out,
            "  No verdict: core readings are missing (see NOT MEASURED)."
        );
    } else if real.is_empty() {
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

pub(super) fn checklist(out: &mut String, r: &Report, st: &Style) {
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
        let t = spec_table(crate::resources::vmstat::COLUMNS, std::slice::from_ref(v));
        section(out, st, &crate::resources::vmstat::title(v), &t);
    }
    if !sec.cpus.is_empty() {
        let t = spec_table(crate::resources::cpu::COLUMNS, &sec.cpus);
        section(out, st, "mpstat -P ALL", &t);
    }
    if let Some(p) = &sec.processes {
        use crate::resources::tasks;
        let t = spec_table(tasks::TOP_CPU_COLUMNS, &p.top_cpu);
        section(out, st, &tasks::top_cpu_title(p), &t);
        let t = spec_table(tasks::TOP_RSS_COLUMNS, &p.top_rss);
        section(out, st, "top: by resident memory", &t);
        if !p.d_state.is_empty() {
            let t = spec_table(tasks::CHECKLIST_D_STATE_COLUMNS, &p.d_state);
            section(out, st, "tasks in D state (uninterruptible)", &t);
        }
    }
    // The deep dives other than `disk` leave the disk tables out.
    if !matches!(r.command.as_str(), "cpu" | "mem" | "net") {
        let t = spec_table(crate::resources::disk::COLUMNS, &sec.disks);
        let title = format!(
            "iostat -xz ({} idle or memory-backed devices hidden)",
            sec.disks_idle
        );
        if sec.disks.is_empty() {
            let _ = writeln!(out, "\n{}\n  no disk I/O in the window", st.head(&title));
        } else {
            section(out, st, &title, &t);
            for d in sec.disks.iter().filter(|d| d.caveat.is_some()) {
                let note = format!("{}: {}", s(&d.device), d.caveat.as_deref().unwrap_or(""));
                wrap(out, "  note", "       ", &note);
            }
        }
    }
    if let Some(m) = &sec.memory {
        let t = spec_table(
            crate::resources::memory::COLUMNS,
            &crate::resources::memory::free_lines(m),
        );
        let lim = match (&m.limit_bytes, &m.limit_source) {
            (Some(b), Some(src)) => format!(" (cgroup limit {} from {})", human_bytes(*b), s(src)),
            _ => String::new(),
        };
        section(out, st, &format!("free{lim}"), &t);
    }
    if !sec.filesystems.is_empty() {
        let t = spec_table(crate::resources::filesystem::COLUMNS, &sec.filesystems);
        section(out, st, "df", &t);
    }
    if !matches!(r.command.as_str(), "cpu" | "mem" | "disk") {
        let t = spec_table(crate::resources::netif::COLUMNS, &sec.interfaces);
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
        let t = spec_table(crate::resources::tcp::COLUMNS, &sec.tcp);
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
        let t = spec_table(crate::resources::pressure::COLUMNS, &sec.pressure);
        section(out, st, "pressure stall information (PSI)", &t);
    }
    if !sec.cgroups.is_empty() {
        let t = spec_table(crate::resources::cgroup::COLUMNS, &sec.cgroups);
        section(out, st, "cgroups with limits", &t);
    }
    if let Some(l) = &sec.limits {
        let most_fds = sec.processes.as_ref().and_then(|p| p.fd_top.first());
        let parts = crate::resources::limits::line(l, most_fds);
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
