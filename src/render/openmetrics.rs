//! `--format openmetrics`: a report as OpenMetrics text for the Prometheus node_exporter
//! textfile collector (write it to `DIR/triage.prom` atomically: a temporary file, then
//! `rename`; see contrib/systemd/).
//!
//! Only gauges, and no name ending in a suffix OpenMetrics reserves (`_total`, `_info`, ...), so
//! the same text also parses as the Prometheus 0.0.4 text format node_exporter reads (`# EOF`
//! is a comment there). Families:
//! - `triage_finding{id, severity, resource, <subject fields>} 1`, one per finding, and
//!   `triage_finding_score{...}` with the same labels (value / threshold);
//! - `triage_findings{severity}`: how many findings of each severity (0 included, to alert on);
//! - `triage_<metric id>{resource, resource_instance?, kind}`: every USE metric with a value
//!   (`cpu.busy_pct` -> `triage_cpu_busy_pct`); a null metric is left out, not made up;
//! - `triage_window_seconds`, `triage_window_end_timestamp_seconds`, `triage_report_details`.
//!
//! Label values from the system (process names, cgroups, mounts) are untrusted: control
//! characters become visible escapes (`\x1b`), then `\`, `"` and newline are escaped as the
//! format requires. `resource_instance` is not called `instance`: Prometheus sets that label.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::sanitize;
use crate::model::report::{Report, Severity, Subject};

/// A label value escaped for the text format (after making control characters visible).
pub fn escape_label(v: &str) -> String {
    let clean = sanitize(v);
    let mut o = String::with_capacity(clean.len() + 2);
    for c in clean.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// HELP text: backslash and newline escaped (valid in both formats; no quotes used).
fn escape_help(v: &str) -> String {
    sanitize(v)
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "'")
}

/// `triage_` + the id with every character outside `[a-zA-Z0-9_]` made `_`.
pub fn metric_name(id: &str) -> String {
    let mut n = String::from("triage_");
    for c in id.chars() {
        n.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    n
}

fn value(v: f64) -> String {
    // Rust prints finite floats without exponent; integers without `.0` stay valid.
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

type Labels = Vec<(&'static str, String)>;

fn labels_text(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn family(out: &mut String, name: &str, help: &str, samples: &[(Labels, f64)]) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{} {}", labels_text(labels), value(*v));
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn subject_labels(s: &Subject, l: &mut Labels) {
    let mut put = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            l.push((k, v));
        }
    };
    put("pid", s.pid.map(|v| v.to_string()));
    put("comm", s.comm.clone());
    put("ppid", s.ppid.map(|v| v.to_string()));
    put("cpu", s.cpu.map(|v| v.to_string()));
    put("device", s.device.clone());
    put("interface", s.interface.clone());
    put("mount", s.mount.clone());
    put("cgroup", s.cgroup.clone());
    put("netns", s.netns.clone());
    put("local", s.local.clone());
    put("remote", s.remote.clone());
    put("port", s.port.map(|v| v.to_string()));
    put("syscall", s.syscall.clone());
    put("class", s.class.clone());
}

/// Two samples of one family must not share a label set: a repeat gets `dup="2"`, ...
fn dedup(samples: &mut [(Labels, f64)]) {
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for (labels, _) in samples.iter_mut() {
        let n = seen.entry(labels_text(labels)).or_insert(0);
        *n += 1;
        if *n > 1 {
            labels.push(("dup", n.to_string()));
        }
    }
}

/// The whole exposition, ending with `# EOF`.
pub fn render(r: &Report) -> String {
    let mut out = String::new();

    let mut findings: Vec<(Labels, f64)> = r
        .findings
        .iter()
        .map(|f| {
            let mut l: Labels = vec![
                ("id", f.id.clone()),
                ("severity", severity_name(f.severity).to_string()),
                ("resource", f.resource.clone()),
            ];
            subject_labels(&f.subject, &mut l);
            (l, f.score)
        })
        .collect();
    dedup(&mut findings);
    let ones: Vec<(Labels, f64)> = findings.iter().map(|(l, _)| (l.clone(), 1.0)).collect();
    family(
        &mut out,
        "triage_finding",
        "A finding of the last triage run (1 per finding; the labels say which and about what).",
        &ones,
    );
    let scores: Vec<(Labels, f64)> = findings
        .into_iter()
        .filter(|(_, s)| s.is_finite())
        .collect();
    family(
        &mut out,
        "triage_finding_score",
        "How far the finding's leading evidence is past its threshold (value / threshold).",
        &scores,
    );
    let counts: Vec<(Labels, f64)> = [Severity::Critical, Severity::Warning, Severity::Info]
        .iter()
        .map(|s| {
            let n = r.findings.iter().filter(|f| f.severity == *s).count();
            (vec![("severity", severity_name(*s).to_string())], n as f64)
        })
        .collect();
    family(
        &mut out,
        "triage_findings",
        "Findings of the last triage run by severity.",
        &counts,
    );

    // USE metrics, one family per metric id, in the report's (fixed) resource order.
    let mut order: Vec<String> = Vec::new();
    let mut fams: BTreeMap<String, (String, Vec<(Labels, f64)>)> = BTreeMap::new();
    for res in &r.resources {
        for m in &res.metrics {
            let Some(v) = m.value.filter(|v| v.is_finite()) else {
                continue;
            };
            let name = metric_name(&m.id);
            let entry = fams.entry(name.clone()).or_insert_with(|| {
                order.push(name.clone());
                let kind = format!("{:?}", m.kind).to_lowercase();
                let help = format!(
                    "triage {} ({kind}, {}), from {}; see docs/json.md",
                    m.label, m.unit, m.source
                );
                (help, Vec::new())
            });
            let mut l: Labels = vec![("resource", res.name.clone())];
            if let Some(i) = &res.instance {
                l.push(("resource_instance", i.clone()));
            }
            l.push(("kind", format!("{:?}", m.kind).to_lowercase()));
            entry.1.push((l, v));
        }
    }
    for name in &order {
        if let Some((help, samples)) = fams.get_mut(name) {
            dedup(samples);
            family(&mut out, name, help, samples);
        }
    }

    family(
        &mut out,
        "triage_window_seconds",
        "Length of the measured window the rates are over.",
        &[(vec![], r.window.elapsed_s)],
    );
    if let Ok(ts) = r.window.end.parse::<jiff::Timestamp>() {
        family(
            &mut out,
            "triage_window_end_timestamp_seconds",
            "When the measured window ended (Unix time): how fresh this file is.",
            &[(vec![], ts.as_millisecond() as f64 / 1000.0)],
        );
    }
    family(
        &mut out,
        "triage_report_details",
        "The producing triage and report (always 1).",
        &[(
            vec![
                ("version", r.tool.version.clone()),
                ("command", r.command.clone()),
                ("schema_version", r.schema_version.clone()),
                ("hostname", r.host.hostname.clone()),
            ],
            1.0,
        )],
    );
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escaped_and_controls_visible() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\\\x0ay");
        assert_eq!(escape_label("\x1b[31m"), "\\\\x1b[31m");
        assert_eq!(metric_name("cpu.busy_pct"), "triage_cpu_busy_pct");
        assert_eq!(metric_name("a-b c"), "triage_a_b_c");
        assert_eq!(value(3.0), "3");
        assert_eq!(value(0.25), "0.25");
    }
}
