//! The report for an incident ticket: GitHub-flavoured markdown that also reads as plain text.
//! The verdict first, then the findings with their evidence and next steps, the USE table,
//! and the long sections folded in `<details>`.
//!
//! Every system string is sanitized (control and bidi characters made visible) and escaped
//! for markdown (emphasis, links, HTML, table pipes), so a process named `` `|<b>` `` shows
//! as itself and cannot break the ticket's layout. Preformatted sections use a code fence
//! longer than any run of backticks inside them.

use std::fmt::Write as _;

use super::sanitize;
use super::table::{self, Style};
use crate::model::report::{Report, Severity, UseKind};
use crate::model::summary::Status;

/// Sanitize and escape `s` as markdown inline text (also safe in a table cell).
pub fn escape(s: &str) -> String {
    let s = sanitize(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '|' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// `s` as an inline code span: delimited by more backticks than it contains.
pub fn code(s: &str) -> String {
    code_span(&sanitize(s).replace(['\n', '\r'], " "))
}

/// [`code`] inside a table cell: pipes escaped too (GitHub tables split on them even inside
/// code spans, and show `\|` there as `|`).
pub fn cell_code(s: &str) -> String {
    code_span(&sanitize(s).replace(['\n', '\r'], " ").replace('|', "\\|"))
}

fn code_span(s: &str) -> String {
    let run = longest_backtick_run(s);
    let fence = "`".repeat(run + 1);
    if run > 0 || s.starts_with(' ') || s.ends_with(' ') {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// A fenced block of preformatted text (already sanitized by the table renderer).
fn fenced(out: &mut String, text: &str) {
    let fence = "`".repeat(longest_backtick_run(text).max(2) + 1);
    let _ = writeln!(out, "{fence}text");
    for line in text.lines() {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{fence}");
}

/// A folded section: `<details>` with a summary line, the body after a blank line.
fn details(out: &mut String, summary: &str, body: &str) {
    let _ = writeln!(out, "\n<details><summary>{}</summary>\n", escape(summary));
    out.push_str(body);
    let _ = writeln!(out, "\n</details>");
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Warning => "WARNING",
        Status::Critical => "CRITICAL",
        Status::Incomplete => "INCOMPLETE",
    }
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let word = status_word(r.summary.status);
    let text = r.summary.text.strip_prefix(word).unwrap_or(&r.summary.text);
    let _ = writeln!(
        out,
        "**{word}**: {}\n",
        escape(text.trim_start_matches(':').trim_start())
    );
    let h = &r.host;
    let mut facts = Vec::new();
    if !h.kernel.is_empty() && h.kernel != "-" {
        facts.push(format!("kernel {}", code(&h.kernel)));
    }
    if h.online_cpus > 0 {
        facts.push(format!(
            "{} CPUs (effective {})",
            h.online_cpus, h.effective_cpus
        ));
    }
    if let Some(m) = h.memory_total_bytes {
        facts.push(format!("{} RAM", crate::analyze::human_bytes(m)));
    }
    if let Some(c) = &h.cgroup_mode {
        facts.push(format!("cgroup {}", escape(c)));
    }
    if h.in_container == Some(true) {
        facts.push(format!(
            "in a container ({})",
            escape(h.container_evidence.as_deref().unwrap_or(""))
        ));
    }
    let _ = writeln!(
        out,
        "### triage {} on {}\n",
        escape(&r.command),
        code(&h.hostname)
    );
    if !facts.is_empty() {
        let _ = writeln!(out, "{}  ", facts.join(", "));
    }
    let _ = writeln!(
        out,
        "Window {:.2} s from {} ({} task samples); rates are per second over the window.",
        r.window.elapsed_s,
        escape(&r.window.start),
        r.window.samples
    );

    findings(&mut out, r);
    if !r.resources.is_empty() {
        use_table(&mut out, r);
    }
    top_processes(&mut out, r);

    // The long sections, as the table renders them, folded.
    let st = Style { color: false };
    let mut body = String::new();
    table::with_width(table::WIDTH, || {
        super::syscalls::render(&mut body, r, &st);
        if r.sections.offcpu.is_none() {
            table::checklist(&mut body, r, &st);
        }
        super::deep::render(&mut body, r, &st);
        super::offcpu::render(&mut body, r, &st);
    });
    let body = body.trim_matches('\n');
    if !body.is_empty() {
        let mut fenced_body = String::new();
        fenced(&mut fenced_body, body);
        details(&mut out, &sections_title(body), &fenced_body);
    }
    if !r.unavailable.is_empty() {
        let mut list = String::new();
        for u in &r.unavailable {
            let fix = u
                .fix
                .as_deref()
                .map(|f| format!(" Fix: {}", escape(f)))
                .unwrap_or_default();
            let _ = writeln!(
                list,
                "- **{}**: {}.{fix}",
                escape(&u.what),
                escape(&u.reason)
            );
        }
        details(
            &mut out,
            &format!("Not measured ({})", r.unavailable.len()),
            &list,
        );
    }
    out
}

/// The folded section's title: its table titles (the first line of each block).
fn sections_title(body: &str) -> String {
    let titles: Vec<&str> = body
        .split("\n\n")
        .filter_map(|b| b.lines().next())
        .map(|l| l.split([':', '(']).next().unwrap_or(l).trim())
        .filter(|l| !l.is_empty())
        .take(8)
        .collect();
    format!("Details: {}", titles.join(", "))
}

fn findings(out: &mut String, r: &Report) {
    let _ = writeln!(out, "\n#### Findings\n");
    if r.findings.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            if r.summary.status == Status::Incomplete {
                "No verdict: core readings are missing (see *Not measured*)."
            } else {
                "No resource is saturated or erroring in this window."
            }
        );
        return;
    }
    for f in &r.findings {
        let tag = match f.severity {
            Severity::Critical => "**CRIT**",
            Severity::Warning => "**WARN**",
            Severity::Info => "info",
        };
        let _ = writeln!(out, "- {tag} {} ({})", escape(&f.summary), code(&f.id));
        let ev: Vec<String> = f
            .evidence
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {}",
                    code(&e.metric),
                    e.value,
                    escape(&e.comparison),
                    e.threshold
                )
            })
            .collect();
        if !ev.is_empty() {
            let _ = writeln!(out, "  - evidence: {}", ev.join("; "));
        }
        if !f.next.is_empty() {
            let next: Vec<String> = f.next.iter().map(|n| code(n)).collect();
            let _ = writeln!(out, "  - next: {}", next.join(", "));
        }
    }
}

/// The busiest processes and the tasks stuck in D state: what a ticket reader asks next.
fn top_processes(out: &mut String, r: &Report) {
    let Some(p) = &r.sections.processes else {
        return;
    };
    if !p.top_cpu.is_empty() {
        let _ = writeln!(out, "\n#### Top processes by CPU\n");
        let _ = writeln!(out, "| PID | command | state | %CPU | %usr | %sys | RSS |");
        let _ = writeln!(out, "|---:|---|---|---:|---:|---:|---:|");
        for x in p.top_cpu.iter().take(5) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {} |",
                x.pid,
                cell_code(&x.comm),
                escape(&x.state),
                x.cpu_pct,
                x.usr_pct,
                x.sys_pct,
                crate::analyze::human_bytes(x.rss_bytes)
            );
        }
    }
    if !p.d_state.is_empty() {
        let _ = writeln!(out, "\n#### Tasks in D state (uninterruptible)\n");
        let _ = writeln!(out, "| PID | TID | command | waiting in |");
        let _ = writeln!(out, "|---:|---:|---|---|");
        for d in &p.d_state {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                d.pid,
                d.tid,
                cell_code(&d.comm),
                d.wchan
                    .as_deref()
                    .map(cell_code)
                    .unwrap_or_else(|| "-".into())
            );
        }
    }
}

fn use_table(out: &mut String, r: &Report) {
    let _ = writeln!(out, "\n#### USE (utilization / saturation / errors)\n");
    let _ = writeln!(out, "| resource | utilization | saturation | errors |");
    let _ = writeln!(out, "|---|---|---|---|");
    for res in &r.resources {
        let name = match &res.instance {
            Some(i) => format!("{} {}", escape(&res.name), cell_code(i)),
            None => escape(&res.name),
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
                    format!("{} {v}", escape(&m.label))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            col(UseKind::Utilization),
            col(UseKind::Saturation),
            col(UseKind::Errors)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_and_html_and_control() {
        assert_eq!(escape("nginx"), "nginx");
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("<script>"), "\\<script>");
        assert_eq!(escape("`x`"), "\\`x\\`");
        assert_eq!(
            escape("*bold* _it_ [l](u)"),
            "\\*bold\\* \\_it\\_ \\[l\\](u)"
        );
        assert_eq!(escape("a\x1b[31mb"), "a\\\\x1b\\[31mb");
        assert_eq!(escape("rtl\u{202e}x"), "rtl\\\\u{202e}x");
        // Sanitized first: a newline in a system string is shown as an escape.
        assert_eq!(escape("line\nbreak"), "line\\\\x0abreak");
    }

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("ls -l"), "`ls -l`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code("x | y"), "`x | y`");
        assert_eq!(cell_code("x | y"), "`x \\| y`");
        let mut out = String::new();
        fenced(&mut out, "a ```` b");
        assert!(out.starts_with("`````text\n"), "{out}");
    }
}
