//! `triage fleet` as a table (people), markdown (tickets, chat) or JSON (machines). Every string
//! that came from a report (hostnames, summaries, subjects, file names) is untrusted: sanitized
//! in the table, and escaped too in markdown.

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use super::{Fleet, Group, HostRow, Outlier};
use crate::model::report::{Severity, Subject};
use crate::render::sanitize;

const WIDTH: u16 = 100;
/// The same look as the report tables: no borders, a dashed line under the header.
const UNDERLINED_HEADER: &str = "     -              ";

fn s(x: &str) -> String {
    sanitize(x).into_owned()
}

pub fn sev(s: Option<Severity>) -> &'static str {
    match s {
        Some(Severity::Critical) => "CRIT",
        Some(Severity::Warning) => "WARN",
        Some(Severity::Info) => "info",
        None => "ok",
    }
}

/// `device=vda netns=net:[4026532177]`: the subject's fields, in a fixed order.
pub fn subject_text(sub: &Subject) -> String {
    let mut parts = Vec::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    put("pid", sub.pid.map(|v| v.to_string()));
    put("comm", sub.comm.clone());
    put("ppid", sub.ppid.map(|v| v.to_string()));
    put("cpu", sub.cpu.map(|v| v.to_string()));
    put("device", sub.device.clone());
    put("interface", sub.interface.clone());
    put("mount", sub.mount.clone());
    put("cgroup", sub.cgroup.clone());
    put("netns", sub.netns.clone());
    put("local", sub.local.clone());
    put("remote", sub.remote.clone());
    put("port", sub.port.map(|v| v.to_string()));
    put("syscall", sub.syscall.clone());
    put("class", sub.class.clone());
    parts.join(" ")
}

/// "on 37 of 40 hosts", "only web-17", "on all 40 hosts".
pub fn spread_text(g: &Group) -> String {
    match g.spread {
        "one" => format!(
            "only {}",
            g.host_labels.first().map(String::as_str).unwrap_or("?")
        ),
        "all" => format!("on all {} hosts", g.hosts_total),
        _ => {
            let mut t = format!("on {} of {} hosts", g.hosts, g.hosts_total);
            if g.hosts <= 5 {
                let _ = write!(t, ": {}", g.host_labels.join(", "));
            }
            t
        }
    }
}

fn subjects_text(g: &Group) -> String {
    let named: Vec<String> = g
        .subjects
        .iter()
        .filter(|sg| !sg.subject.is_empty())
        .take(4)
        .map(|sg| format!("{} ({})", subject_text(&sg.subject), sg.hosts))
        .collect();
    let mut t = named.join("; ");
    let more = g
        .subjects
        .iter()
        .filter(|sg| !sg.subject.is_empty())
        .count();
    if more > named.len() {
        let _ = write!(t, "; +{} more", more - named.len());
    }
    t
}

fn table(headers: &[&str], right_from: usize) -> Table {
    let mut t = Table::new();
    t.load_preset(UNDERLINED_HEADER)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(WIDTH)
        .set_header(headers.iter().map(|h| Cell::new(*h)));
    for i in right_from..headers.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn headline(f: &Fleet) -> String {
    let bad = f
        .hosts
        .iter()
        .filter(|h| h.worst_severity >= Some(Severity::Warning))
        .count();
    format!(
        "triage fleet: {} reports read, {} skipped; {} of {} hosts with a warning or worse",
        f.reports_read,
        f.skipped.len(),
        bad,
        f.hosts.len()
    )
}

fn top_text(h: &HostRow) -> String {
    h.top_finding
        .as_ref()
        .map(|t| format!("{}: {}", t.id, t.summary))
        .unwrap_or_default()
}

/// The table for people. `top` limits the host list (0 = all).
pub fn table_text(f: &Fleet, top: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", headline(f));
    let shown = if top == 0 {
        f.hosts.len()
    } else {
        top.min(f.hosts.len())
    };
    let _ = writeln!(out, "HOSTS (worst first)");
    let mut t = table(
        &[
            "#",
            "host",
            "worst",
            "score",
            "crit",
            "warn",
            "outl",
            "top finding",
        ],
        3,
    );
    if let Some(c) = t.column_mut(7) {
        c.set_cell_alignment(CellAlignment::Left);
    }
    for h in &f.hosts[..shown] {
        t.add_row(vec![
            h.rank.to_string(),
            s(&h.label),
            sev(h.worst_severity).to_string(),
            num(h.score),
            h.critical.to_string(),
            h.warning.to_string(),
            h.outliers.to_string(),
            s(&shorten(&top_text(h), 110)),
        ]);
    }
    let _ = writeln!(out, "{t}");
    if shown < f.hosts.len() {
        let _ = writeln!(
            out,
            "  ... {} more hosts (--top 0 for all)",
            f.hosts.len() - shown
        );
    }
    if !f.groups.is_empty() {
        let _ = writeln!(out, "\nFINDINGS ACROSS HOSTS");
        let mut t = table(&["finding", "worst", "where", "subjects (hosts)"], 9);
        for g in &f.groups {
            t.add_row(vec![
                s(&g.id),
                sev(Some(g.worst_severity)).to_string(),
                s(&spread_text(g)),
                s(&subjects_text(g)),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }
    outliers_table(&mut out, &f.outliers);
    if !f.skipped.is_empty() {
        let _ = writeln!(out, "\nSKIPPED (not merged)");
        for sk in &f.skipped {
            let _ = writeln!(out, "  {}: {}", s(&sk.source), s(&sk.reason));
        }
    }
    out
}

/// At most `max` characters, with an ellipsis when cut (the full text is in JSON/markdown).
fn shorten(x: &str, max: usize) -> String {
    if x.chars().count() <= max {
        return x.to_string();
    }
    let mut t: String = x.chars().take(max - 1).collect();
    t.push('…');
    t
}

fn outliers_table(out: &mut String, outliers: &[Outlier]) {
    if outliers.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nOUTLIERS (robust z = 0.6745 (value - median) / MAD > 3.5; MAD floored by the metric's noise)"
    );
    let mut t = table(
        &["metric", "host", "value", "median", "MAD", "z", "hosts"],
        2,
    );
    for o in outliers {
        t.add_row(vec![
            o.metric.clone(),
            s(&o.host),
            num(o.value),
            num(o.median),
            num(o.mad),
            format!("{:.1}", o.robust_z),
            o.hosts_compared.to_string(),
        ]);
    }
    let _ = writeln!(out, "{t}");
}

/// Markdown: sanitized, and `|`, backticks, `*`, `_`, `<`, `>` and brackets escaped so a
/// hostname cannot break the table or inject markup.
pub fn md(x: &str) -> String {
    let mut o = String::with_capacity(x.len());
    for c in sanitize(x).chars() {
        if matches!(
            c,
            '|' | '`' | '*' | '_' | '<' | '>' | '[' | ']' | '\\' | '#' | '!'
        ) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

pub fn markdown_text(f: &Fleet, top: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n", md(&headline(f)));
    let shown = if top == 0 {
        f.hosts.len()
    } else {
        top.min(f.hosts.len())
    };
    let _ = writeln!(out, "### Hosts (worst first)\n");
    let _ = writeln!(
        out,
        "| # | host | worst | score | crit | warn | outliers | top finding |"
    );
    let _ = writeln!(out, "|---:|---|---|---:|---:|---:|---:|---|");
    for h in &f.hosts[..shown] {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            h.rank,
            md(&h.label),
            sev(h.worst_severity),
            num(h.score),
            h.critical,
            h.warning,
            h.outliers,
            md(&top_text(h))
        );
    }
    if !f.groups.is_empty() {
        let _ = writeln!(out, "\n### Findings across hosts\n");
        let _ = writeln!(out, "| finding | worst | where | subjects (hosts) |");
        let _ = writeln!(out, "|---|---|---|---|");
        for g in &f.groups {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                md(&g.id),
                sev(Some(g.worst_severity)),
                md(&spread_text(g)),
                md(&subjects_text(g))
            );
        }
    }
    if !f.outliers.is_empty() {
        let _ = writeln!(out, "\n### Outliers (robust z > 3.5)\n");
        let _ = writeln!(out, "| metric | host | value | median | MAD | z |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
        for o in &f.outliers {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1} |",
                md(&o.metric),
                md(&o.host),
                num(o.value),
                num(o.median),
                num(o.mad),
                o.robust_z
            );
        }
    }
    if !f.skipped.is_empty() {
        let _ = writeln!(out, "\n### Skipped\n");
        for sk in &f.skipped {
            let _ = writeln!(out, "- {}: {}", md(&sk.source), md(&sk.reason));
        }
    }
    out
}

pub fn json_text(f: &Fleet) -> String {
    let mut s =
        serde_json::to_string_pretty(f).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_table_breakers_and_controls() {
        assert_eq!(md("web|17"), "web\\|17");
        assert_eq!(md("a\x1b[31mb"), "a\\\\x1b\\[31mb");
        assert_eq!(md("<script>"), "\\<script\\>");
    }
}
