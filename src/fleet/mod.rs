//! Many hosts' reports at once: `triage fleet` (rank hosts, group findings across hosts, robust
//! outliers on the main USE metrics) and `triage diff` (before/after of one host).
//!
//! Reports are streamed ([`read`]): each is reduced to a [`HostRow`] and its findings folded
//! into the groups as it arrives, so memory does not grow with report size, only by a small
//! row per host.

pub mod diff;
pub mod read;
pub mod render;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::report::{Finding, Severity, Subject};
use read::{Doc, Item, Skipped};

/// The fleet document's own version (`kind: "fleet"`), additive like a report's.
pub const FLEET_SCHEMA_VERSION: &str = "1.0";

/// The main USE metrics compared across hosts, each the worst (highest) over the host's
/// instances (disks, interfaces, network namespaces, mounts), with the smallest spread that
/// counts: below it, differences between hosts are noise, not a sick host.
pub const MAIN_METRICS: &[(&str, f64)] = &[
    ("cpu.busy_pct", 5.0),
    ("cpu.runnable_per_cpu", 0.25),
    ("cpu.pressure_some_pct", 2.0),
    ("memory.used_pct", 5.0),
    ("memory.swap_out_kb_per_s", 64.0),
    ("memory.major_faults_per_s", 10.0),
    ("memory.pressure_some_pct", 2.0),
    ("disk.util_pct", 5.0),
    ("disk.await_ms", 2.0),
    ("io.pressure_some_pct", 2.0),
    ("network.drops_per_s", 1.0),
    ("network.errors_per_s", 1.0),
    ("tcp.retrans_segs_per_s", 1.0),
    ("tcp.retrans_pct", 0.5),
    ("tcp.listen_overflows_per_s", 1.0),
    ("filesystem.used_pct", 2.0),
    ("kernel_log.error_events", 1.0),
];

/// Modified z-score cut (Iglewicz and Hoaglin: |0.6745 (x - median) / MAD| > 3.5 is an outlier).
pub const OUTLIER_Z: f64 = 3.5;

/// The top finding of a host, as shown in the ranking.
#[derive(Debug, Clone, Serialize)]
pub struct TopFinding {
    pub id: String,
    pub severity: Severity,
    pub score: f64,
    pub summary: String,
    #[serde(skip_serializing_if = "Subject::is_empty")]
    pub subject: Subject,
}

/// One host (one report).
#[derive(Debug, Clone, Serialize)]
pub struct HostRow {
    pub rank: usize,
    /// The hostname, or `hostname (file)` when several reports share it.
    pub label: String,
    pub hostname: String,
    pub source: String,
    pub schema_version: String,
    pub tool_version: String,
    pub command: String,
    pub window_start: String,
    pub elapsed_s: f64,
    pub worst_severity: Option<Severity>,
    /// The top finding's score (value / threshold), 0 without findings.
    pub score: f64,
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
    pub top_finding: Option<TopFinding>,
    /// How many of the main metrics are outliers on this host.
    pub outliers: usize,
    /// The main metrics (worst instance), by id; absent when the report has no value.
    pub metrics: BTreeMap<&'static str, f64>,
}

/// The fields of a subject that mean the same thing on two hosts (a pid, a socket's addresses
/// or a CPU number do not); findings are grouped across hosts by these.
pub fn fleet_subject(s: &Subject) -> Subject {
    Subject {
        comm: s.comm.clone(),
        device: s.device.clone(),
        interface: s.interface.clone(),
        mount: s.mount.clone(),
        cgroup: s.cgroup.clone(),
        netns: s.netns.clone(),
        port: s.port,
        syscall: s.syscall.clone(),
        class: s.class.clone(),
        ..Default::default()
    }
}

/// The same finding id on several hosts.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: String,
    pub resource: String,
    pub worst_severity: Severity,
    /// Hosts with this finding (at any severity).
    pub hosts: usize,
    pub hosts_total: usize,
    /// `all`, `most` (more than half), `some`, or `one`.
    pub spread: &'static str,
    pub host_labels: Vec<String>,
    /// The same finding split by what it is about (same device, namespace, cgroup...).
    pub subjects: Vec<SubjectGroup>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubjectGroup {
    #[serde(skip_serializing_if = "Subject::is_empty")]
    pub subject: Subject,
    pub hosts: usize,
    pub host_labels: Vec<String>,
}

/// A host whose metric stands out from the others'.
#[derive(Debug, Clone, Serialize)]
pub struct Outlier {
    pub metric: String,
    pub host: String,
    pub value: f64,
    pub median: f64,
    /// Median absolute deviation of the hosts' values.
    pub mad: f64,
    /// 0.6745 (value - median) / max(MAD, the metric's noise floor).
    pub robust_z: f64,
    pub hosts_compared: usize,
}

/// The `triage fleet` document.
#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    pub schema_version: &'static str,
    pub kind: &'static str,
    pub reports_read: usize,
    pub hosts: Vec<HostRow>,
    pub groups: Vec<Group>,
    pub outliers: Vec<Outlier>,
    pub skipped: Vec<Skipped>,
}

#[derive(Default)]
struct GroupAcc {
    resource: String,
    worst: Option<Severity>,
    hosts: Vec<usize>,
    subjects: BTreeMap<Subject, Vec<usize>>,
}

/// Folds reports one at a time; `finish` ranks and groups.
#[derive(Default)]
pub struct Builder {
    rows: Vec<HostRow>,
    groups: BTreeMap<String, GroupAcc>,
    skipped: Vec<Skipped>,
}

fn worst_of(findings: &[Finding]) -> Option<&Finding> {
    findings.iter().max_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.score.total_cmp(&b.score))
            // max_by keeps the last of equals: prefer the first in the report's own order.
            .then(std::cmp::Ordering::Greater)
    })
}

/// The worst value of `id` over every resource instance that has it.
pub fn worst_metric(doc: &Doc, id: &str) -> Option<f64> {
    doc.resources
        .iter()
        .filter_map(|r| r.metric(id)?.value)
        .filter(|v| v.is_finite())
        .reduce(f64::max)
}

impl Builder {
    pub fn add(&mut self, item: Item) {
        match item {
            Item::Report { source, doc } => self.add_doc(source, &doc),
            Item::Skipped(s) => self.skipped.push(s),
        }
    }

    pub fn add_doc(&mut self, source: String, doc: &Doc) {
        let idx = self.rows.len();
        let count = |s: Severity| doc.findings.iter().filter(|f| f.severity == s).count();
        let top = worst_of(&doc.findings).map(|f| TopFinding {
            id: f.id.clone(),
            severity: f.severity,
            score: f.score,
            summary: f.summary.clone(),
            subject: f.subject.clone(),
        });
        let metrics = MAIN_METRICS
            .iter()
            .filter_map(|(id, _)| worst_metric(doc, id).map(|v| (*id, v)))
            .collect();
        self.rows.push(HostRow {
            rank: 0,
            label: doc.hostname.clone(),
            hostname: doc.hostname.clone(),
            source,
            schema_version: doc.schema_version.clone(),
            tool_version: doc.tool.version.clone(),
            command: doc.command.clone(),
            window_start: doc.window.start.clone(),
            elapsed_s: doc.window.elapsed_s,
            worst_severity: top.as_ref().map(|t| t.severity),
            score: top.as_ref().map(|t| t.score).unwrap_or(0.0),
            critical: count(Severity::Critical),
            warning: count(Severity::Warning),
            info: count(Severity::Info),
            top_finding: top,
            outliers: 0,
            metrics,
        });
        for f in &doc.findings {
            let g = self.groups.entry(f.id.clone()).or_default();
            g.resource.clone_from(&f.resource);
            g.worst = g.worst.max(Some(f.severity));
            if g.hosts.last() != Some(&idx) {
                g.hosts.push(idx);
            }
            let hosts = g.subjects.entry(fleet_subject(&f.subject)).or_default();
            if hosts.last() != Some(&idx) {
                hosts.push(idx);
            }
        }
    }

    pub fn finish(self) -> Fleet {
        let Builder {
            mut rows,
            groups,
            skipped,
        } = self;
        disambiguate(&mut rows);
        let outliers = outliers(&rows);
        for o in &outliers {
            if let Some(r) = rows.iter_mut().find(|r| r.label == o.host) {
                r.outliers += 1;
            }
        }
        let total = rows.len();
        let labels = |idx: &[usize]| -> Vec<String> {
            let mut v: Vec<String> = idx.iter().map(|&i| rows[i].label.clone()).collect();
            v.sort();
            v
        };
        let mut groups: Vec<Group> = groups
            .into_iter()
            .map(|(id, g)| {
                let n = g.hosts.len();
                let mut subjects: Vec<SubjectGroup> = g
                    .subjects
                    .iter()
                    .map(|(s, h)| SubjectGroup {
                        subject: s.clone(),
                        hosts: h.len(),
                        host_labels: labels(h),
                    })
                    .collect();
                subjects.sort_by(|a, b| b.hosts.cmp(&a.hosts).then(a.subject.cmp(&b.subject)));
                Group {
                    id,
                    resource: g.resource,
                    worst_severity: g.worst.unwrap_or(Severity::Info),
                    hosts: n,
                    hosts_total: total,
                    spread: spread(n, total),
                    host_labels: labels(&g.hosts),
                    subjects,
                }
            })
            .collect();
        groups.sort_by(|a, b| {
            b.worst_severity
                .cmp(&a.worst_severity)
                .then(b.hosts.cmp(&a.hosts))
                .then(a.id.cmp(&b.id))
        });
        rows.sort_by(|a, b| {
            b.worst_severity
                .cmp(&a.worst_severity)
                .then(b.score.total_cmp(&a.score))
                .then(b.outliers.cmp(&a.outliers))
                .then(a.label.cmp(&b.label))
                .then(a.source.cmp(&b.source))
        });
        for (i, r) in rows.iter_mut().enumerate() {
            r.rank = i + 1;
        }
        Fleet {
            schema_version: FLEET_SCHEMA_VERSION,
            kind: "fleet",
            reports_read: total,
            hosts: rows,
            groups,
            outliers,
            skipped,
        }
    }
}

fn spread(n: usize, total: usize) -> &'static str {
    if n == total && total > 1 {
        "all"
    } else if n == 1 {
        "one"
    } else if 2 * n > total {
        "most"
    } else {
        "some"
    }
}

/// The file a report came from, without directories and `.json`, `#N` or `(line N)`.
fn stem(source: &str) -> String {
    let s = source.split(" (line").next().unwrap_or(source);
    let base = s.rsplit('/').next().unwrap_or(s);
    let base = base.strip_suffix(".json").unwrap_or(base);
    base.replace(".json#", "#")
}

/// Several reports with one hostname (network namespaces or containers sharing a UTS
/// namespace, or one host measured twice) are told apart by their file.
fn disambiguate(rows: &mut [HostRow]) {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows.iter() {
        *count.entry(r.hostname.clone()).or_default() += 1;
    }
    for r in rows.iter_mut() {
        if count[&r.hostname] > 1 || r.hostname.is_empty() {
            r.label = format!("{} ({})", r.hostname, stem(&r.source))
                .trim_start()
                .to_string();
        }
    }
}

pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Hosts far above the others on a main metric: median and MAD over the hosts that have a
/// value (at least 3), the MAD floored by the metric's noise so that identical healthy hosts
/// (MAD 0) do not make every small difference an outlier. Only the high side: for these
/// metrics, higher is worse.
pub fn outliers(rows: &[HostRow]) -> Vec<Outlier> {
    let mut out = Vec::new();
    for (id, floor) in MAIN_METRICS {
        let vals: Vec<(usize, f64)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.metrics.get(*id).map(|v| (i, *v)))
            .collect();
        if vals.len() < 3 {
            continue;
        }
        let mut sorted: Vec<f64> = vals.iter().map(|(_, v)| *v).collect();
        sorted.sort_by(f64::total_cmp);
        let med = median(&sorted);
        let mut dev: Vec<f64> = sorted.iter().map(|v| (v - med).abs()).collect();
        dev.sort_by(f64::total_cmp);
        let mad = median(&dev);
        let scale = mad.max(*floor);
        for (i, v) in vals {
            let z = 0.6745 * (v - med) / scale;
            if z > OUTLIER_Z {
                out.push(Outlier {
                    metric: id.to_string(),
                    host: rows[i].label.clone(),
                    value: v,
                    median: med,
                    mad,
                    robust_z: z,
                    hosts_compared: sorted.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| {
        b.robust_z
            .total_cmp(&a.robust_z)
            .then(a.metric.cmp(&b.metric))
    });
    out
}

/// Reads every input and builds the fleet view.
pub fn from_inputs(inputs: &[std::path::PathBuf]) -> Fleet {
    let mut b = Builder::default();
    read::read_inputs(inputs, &mut |item| b.add(item));
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::report::{Metric, Resource, Tool, UseKind, Window};

    fn doc(host: &str, findings: &[(&str, Severity, f64, Option<&str>)], retrans: f64) -> Doc {
        let mut tcp = Resource::new("tcp", None);
        tcp.metrics.push(Metric::new(
            "tcp.retrans_segs_per_s",
            UseKind::Errors,
            "retrans",
            Some(retrans),
            "per_s",
            "/proc/net/snmp",
        ));
        let mut ns = Resource::new("tcp", Some("netns:1".into()));
        ns.metrics.push(Metric::new(
            "tcp.retrans_segs_per_s",
            UseKind::Errors,
            "r",
            Some(0.5),
            "per_s",
            "x",
        ));
        Doc {
            schema_version: "1.1".into(),
            tool: Tool {
                name: "triage".into(),
                version: "0".into(),
            },
            command: "sixty-second".into(),
            hostname: host.into(),
            window: Window::default(),
            resources: vec![tcp, ns],
            findings: findings
                .iter()
                .map(|(id, sev, score, dev)| Finding {
                    id: id.to_string(),
                    severity: *sev,
                    resource: id.split('.').next().unwrap().into(),
                    subject: Subject {
                        device: dev.map(|d| d.to_string()),
                        pid: Some(42),
                        ..Default::default()
                    },
                    summary: format!("{id} on {host}"),
                    evidence: vec![],
                    next: vec![],
                    score: *score,
                })
                .collect(),
        }
    }

    #[test]
    fn ranks_by_worst_finding_then_score_and_groups_by_subject() {
        let mut b = Builder::default();
        let w = Severity::Warning;
        let c = Severity::Critical;
        b.add_doc(
            "a.json".into(),
            &doc("a", &[("disk.saturation.queue", w, 9.0, Some("vda"))], 0.0),
        );
        b.add_doc(
            "b.json".into(),
            &doc("b", &[("disk.saturation.queue", w, 2.0, Some("vda"))], 0.0),
        );
        b.add_doc(
            "c.json".into(),
            &doc(
                "c",
                &[
                    ("disk.saturation.queue", w, 1.5, Some("vdb")),
                    ("tcp.errors.retransmits", c, 1.1, None),
                ],
                150.0,
            ),
        );
        b.add_doc("d.json".into(), &doc("d", &[], 0.0));
        let f = b.finish();
        let order: Vec<_> = f.hosts.iter().map(|h| h.label.as_str()).collect();
        assert_eq!(order, ["c", "a", "b", "d"]);
        assert_eq!(f.hosts[0].worst_severity, Some(c));
        assert_eq!(f.hosts[3].worst_severity, None);
        assert_eq!(f.groups[0].id, "tcp.errors.retransmits");
        assert_eq!((f.groups[0].hosts, f.groups[0].spread), (1, "one"));
        let disk = &f.groups[1];
        assert_eq!((disk.hosts, disk.hosts_total, disk.spread), (3, 4, "most"));
        // Grouped by device, the pid dropped: vda on a and b, vdb on c.
        assert_eq!(disk.subjects.len(), 2);
        assert_eq!(disk.subjects[0].subject.device.as_deref(), Some("vda"));
        assert_eq!(disk.subjects[0].host_labels, ["a", "b"]);
        assert_eq!(disk.subjects[0].subject.pid, None);
        // The worst instance counts: 150/s on c, 0.5/s (a namespace) elsewhere.
        assert_eq!(f.hosts[3].metrics["tcp.retrans_segs_per_s"], 0.5);
        assert_eq!(f.outliers.len(), 1, "{:?}", f.outliers);
        assert_eq!(f.outliers[0].host, "c");
        assert_eq!(f.outliers[0].median, 0.5);
        assert_eq!(f.hosts[0].outliers, 1);
    }

    #[test]
    fn same_hostname_is_told_apart_by_file() {
        let mut b = Builder::default();
        b.add_doc("/r/h1.json".into(), &doc("vm", &[], 0.0));
        b.add_doc("/r/h2.json".into(), &doc("vm", &[], 0.0));
        b.add_doc("/r/other.json".into(), &doc("db", &[], 0.0));
        let f = b.finish();
        let labels: Vec<_> = f.hosts.iter().map(|h| h.label.as_str()).collect();
        assert_eq!(labels, ["db", "vm (h1)", "vm (h2)"]);
    }

    #[test]
    fn mad_floor_keeps_noise_out_and_needs_three_hosts() {
        let rows: Vec<HostRow> = [0.0, 0.4, 0.9, 1.0]
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut b = Builder::default();
                b.add_doc(format!("{i}"), &doc(&format!("h{i}"), &[], *v));
                b.finish().hosts.remove(0)
            })
            .collect();
        assert!(outliers(&rows).is_empty());
        assert!(outliers(&rows[..2]).is_empty());
        assert_eq!(median(&[1.0, 2.0, 10.0, 20.0]), 6.0);
    }
}
