//! `triage diff BEFORE AFTER`: did my change help? Findings that appeared, cleared or changed
//! severity (matched by id and the host-independent part of their subject, so a restarted
//! process is the same subject), and metrics that moved by more than their noise.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::fleet_subject;
use super::read::Doc;
use super::render::{md, sev, subject_text};
use crate::model::report::{Finding, Severity, Subject};
use crate::render::sanitize;

pub const DIFF_SCHEMA_VERSION: &str = "1.0";

/// Relative change that counts, on top of the unit's absolute floor.
pub const MOVE_RELATIVE: f64 = 0.2;

/// The smallest absolute change of a metric in `unit` that is not noise between two short
/// windows of the same box (a 2 s window sees a few percent of CPU come and go).
pub fn noise_floor(unit: &str) -> f64 {
    match unit {
        "pct" => 5.0,
        "per_s" => 1.0,
        "kb_per_s" => 64.0,
        "ms" => 2.0,
        "ratio" => 0.25,
        "bytes" => 1048576.0,
        "bytes_per_s" => 65536.0,
        _ => 1.0,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub source: String,
    pub hostname: String,
    pub command: String,
    pub window_start: String,
    pub schema_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingChange {
    pub id: String,
    #[serde(skip_serializing_if = "Subject::is_empty")]
    pub subject: Subject,
    pub before_severity: Option<Severity>,
    pub after_severity: Option<Severity>,
    pub before_score: Option<f64>,
    pub after_score: Option<f64>,
    /// The finding's summary on the side where it exists (after, else before).
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricMove {
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub id: String,
    pub unit: String,
    pub before: f64,
    pub after: f64,
    pub delta: f64,
    /// The change that would have counted as noise.
    pub noise: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub schema_version: &'static str,
    pub kind: &'static str,
    pub before: Side,
    pub after: Side,
    pub appeared: Vec<FindingChange>,
    pub cleared: Vec<FindingChange>,
    pub changed: Vec<FindingChange>,
    /// Findings present on both sides at the same severity.
    pub unchanged: Vec<FindingChange>,
    pub metrics_moved: Vec<MetricMove>,
    pub metrics_compared: usize,
}

fn side(source: &str, d: &Doc) -> Side {
    Side {
        source: source.to_string(),
        hostname: d.hostname.clone(),
        command: d.command.clone(),
        window_start: d.window.start.clone(),
        schema_version: d.schema_version.clone(),
    }
}

/// The worst finding per (id, subject) key.
fn keyed(findings: &[Finding]) -> BTreeMap<(String, Subject), &Finding> {
    let mut m: BTreeMap<(String, Subject), &Finding> = BTreeMap::new();
    for f in findings {
        let k = (f.id.clone(), fleet_subject(&f.subject));
        match m.get(&k) {
            Some(old) if (old.severity, old.score) >= (f.severity, f.score) => {}
            _ => {
                m.insert(k, f);
            }
        }
    }
    m
}

pub fn diff(before_src: &str, before: &Doc, after_src: &str, after: &Doc) -> Diff {
    let b = keyed(&before.findings);
    let a = keyed(&after.findings);
    let change =
        |k: &(String, Subject), fb: Option<&&Finding>, fa: Option<&&Finding>| FindingChange {
            id: k.0.clone(),
            subject: k.1.clone(),
            before_severity: fb.map(|f| f.severity),
            after_severity: fa.map(|f| f.severity),
            before_score: fb.map(|f| f.score),
            after_score: fa.map(|f| f.score),
            summary: fa.or(fb).map(|f| f.summary.clone()).unwrap_or_default(),
        };
    let (mut appeared, mut cleared, mut changed, mut unchanged) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (k, fa) in &a {
        match b.get(k) {
            None => appeared.push(change(k, None, Some(fa))),
            Some(fb) if fb.severity != fa.severity => changed.push(change(k, Some(fb), Some(fa))),
            Some(fb) => unchanged.push(change(k, Some(fb), Some(fa))),
        }
    }
    for (k, fb) in &b {
        if !a.contains_key(k) {
            cleared.push(change(k, Some(fb), None));
        }
    }
    let by_sev = |v: &mut Vec<FindingChange>| {
        v.sort_by(|x, y| {
            let sx = x.after_severity.max(x.before_severity);
            let sy = y.after_severity.max(y.before_severity);
            sy.cmp(&sx)
                .then(x.id.cmp(&y.id))
                .then(x.subject.cmp(&y.subject))
        })
    };
    by_sev(&mut appeared);
    by_sev(&mut cleared);
    by_sev(&mut changed);
    by_sev(&mut unchanged);

    // Metrics: same resource, instance and id on both sides, both with a value.
    let mut before_vals = BTreeMap::new();
    for r in &before.resources {
        for m in &r.metrics {
            if let Some(v) = m.value {
                before_vals.insert((r.name.clone(), r.instance.clone(), m.id.clone()), v);
            }
        }
    }
    let mut moved = Vec::new();
    let mut compared = 0;
    for r in &after.resources {
        for m in &r.metrics {
            let (Some(va), Some(vb)) = (
                m.value,
                before_vals.get(&(r.name.clone(), r.instance.clone(), m.id.clone())),
            ) else {
                continue;
            };
            compared += 1;
            let delta = va - vb;
            let noise = noise_floor(&m.unit).max(MOVE_RELATIVE * vb.abs().max(va.abs()));
            if delta.abs() >= noise {
                moved.push(MetricMove {
                    resource: r.name.clone(),
                    instance: r.instance.clone(),
                    id: m.id.clone(),
                    unit: m.unit.clone(),
                    before: *vb,
                    after: va,
                    delta,
                    noise,
                });
            }
        }
    }
    moved.sort_by(|x, y| {
        (y.delta.abs() / y.noise)
            .total_cmp(&(x.delta.abs() / x.noise))
            .then(x.id.cmp(&y.id))
    });
    Diff {
        schema_version: DIFF_SCHEMA_VERSION,
        kind: "diff",
        before: side(before_src, before),
        after: side(after_src, after),
        appeared,
        cleared,
        changed,
        unchanged,
        metrics_moved: moved,
        metrics_compared: compared,
    }
}

fn label(c: &FindingChange) -> String {
    let sub = subject_text(&c.subject);
    if sub.is_empty() {
        c.id.clone()
    } else {
        format!("{} [{}]", c.id, sub)
    }
}

fn where_text(m: &MetricMove) -> String {
    match &m.instance {
        Some(i) => format!("{} {}", m.id, i),
        None => m.id.clone(),
    }
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

pub fn table_text(d: &Diff) -> String {
    let clean = |x: &str| sanitize(x).into_owned();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "triage diff: {} ({}) -> {} ({})",
        clean(&d.before.source),
        clean(&d.before.hostname),
        clean(&d.after.source),
        clean(&d.after.hostname)
    );
    let _ = writeln!(
        o,
        "findings: {} appeared, {} cleared, {} changed severity, {} unchanged; {} of {} metrics moved beyond noise\n",
        d.appeared.len(),
        d.cleared.len(),
        d.changed.len(),
        d.unchanged.len(),
        d.metrics_moved.len(),
        d.metrics_compared
    );
    let mut list = |title: &str, v: &[FindingChange]| {
        if v.is_empty() {
            return;
        }
        let _ = writeln!(o, "{title}");
        for c in v {
            let _ = writeln!(
                o,
                "  {:>4} -> {:<4} {}",
                sev(c.before_severity),
                sev(c.after_severity),
                clean(&label(c))
            );
            let _ = writeln!(o, "       {}", clean(&c.summary));
        }
        let _ = writeln!(o);
    };
    list("APPEARED", &d.appeared);
    list("CLEARED", &d.cleared);
    list("CHANGED SEVERITY", &d.changed);
    if !d.metrics_moved.is_empty() {
        let _ = writeln!(o, "METRICS MOVED (|change| >= max(unit noise, 20%))");
        for m in &d.metrics_moved {
            let _ = writeln!(
                o,
                "  {:<52} {:>10} -> {:<10} ({}{})",
                clean(&where_text(m)),
                fmt(m.before),
                fmt(m.after),
                if m.delta > 0.0 { "+" } else { "" },
                fmt(m.delta)
            );
        }
    }
    o
}

pub fn markdown_text(d: &Diff) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## triage diff: {} -> {}\n",
        md(&d.before.source),
        md(&d.after.source)
    );
    let _ = writeln!(o, "| change | before | after | finding | summary |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    for (what, v) in [
        ("appeared", &d.appeared),
        ("cleared", &d.cleared),
        ("changed", &d.changed),
    ] {
        for c in v {
            let _ = writeln!(
                o,
                "| {what} | {} | {} | {} | {} |",
                sev(c.before_severity),
                sev(c.after_severity),
                md(&label(c)),
                md(&c.summary)
            );
        }
    }
    if !d.metrics_moved.is_empty() {
        let _ = writeln!(o, "\n| metric | before | after | change |");
        let _ = writeln!(o, "|---|---:|---:|---:|");
        for m in &d.metrics_moved {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                md(&where_text(m)),
                fmt(m.before),
                fmt(m.after),
                fmt(m.delta)
            );
        }
    }
    o
}

pub fn json_text(d: &Diff) -> String {
    let mut s =
        serde_json::to_string_pretty(d).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::report::{Metric, Resource, Tool, UseKind, Window};

    fn doc(findings: Vec<(&str, Severity, Option<i32>)>, busy: f64, retr: f64) -> Doc {
        let mut cpu = Resource::new("cpu", None);
        cpu.metrics.push(Metric::new(
            "cpu.busy_pct",
            UseKind::Utilization,
            "busy",
            Some(busy),
            "pct",
            "s",
        ));
        let mut tcp = Resource::new("tcp", None);
        tcp.metrics.push(Metric::new(
            "tcp.retrans_segs_per_s",
            UseKind::Errors,
            "r",
            Some(retr),
            "per_s",
            "s",
        ));
        Doc {
            schema_version: "1.1".into(),
            tool: Tool {
                name: "triage".into(),
                version: "0".into(),
            },
            command: "sixty-second".into(),
            hostname: "h".into(),
            window: Window::default(),
            resources: vec![cpu, tcp],
            findings: findings
                .into_iter()
                .map(|(id, severity, pid)| Finding {
                    id: id.into(),
                    severity,
                    resource: "x".into(),
                    subject: Subject {
                        pid,
                        comm: pid.map(|_| "nginx".to_string()),
                        ..Default::default()
                    },
                    summary: id.into(),
                    evidence: vec![],
                    next: vec![],
                    score: 1.0,
                })
                .collect(),
        }
    }

    #[test]
    fn appeared_cleared_changed_and_moved() {
        use Severity::*;
        let before = doc(
            vec![
                ("cpu.saturation.runqueue", Critical, None),
                ("memory.x", Warning, Some(10)),
            ],
            97.0,
            3.0,
        );
        // The same process restarted (pid 11): still the same subject, severity changed.
        let after = doc(
            vec![
                ("memory.x", Critical, Some(11)),
                ("tcp.errors.retransmits", Warning, None),
            ],
            95.0,
            40.0,
        );
        let d = diff("b", &before, "a", &after);
        assert_eq!(d.appeared.len(), 1);
        assert_eq!(d.appeared[0].id, "tcp.errors.retransmits");
        assert_eq!(d.cleared[0].id, "cpu.saturation.runqueue");
        assert_eq!(d.changed[0].id, "memory.x");
        assert_eq!(
            (d.changed[0].before_severity, d.changed[0].after_severity),
            (Some(Warning), Some(Critical))
        );
        // 97 -> 95 % busy is noise; 3 -> 40 retransmits/s is not.
        assert_eq!(d.metrics_compared, 2);
        assert_eq!(d.metrics_moved.len(), 1);
        assert_eq!(d.metrics_moved[0].id, "tcp.retrans_segs_per_s");
        assert_eq!(d.metrics_moved[0].delta, 37.0);
        assert!(table_text(&d).contains("APPEARED"));
    }
}
