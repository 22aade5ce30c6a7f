//! The cgroup resource: cgroups with a CPU, memory or pids limit, or throttled or OOM-killed
//! in the window, built from two cgroup scans; their USE metrics; the cgroup thresholds; the
//! cgroups table's columns; the CPU throttling and memory-limit rules (run by the CPU and
//! memory rules). (The deep views' cgroup rows are in `model::deep`.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::columns::{o1, ou, s, Column};
use super::contract::{Finding, Metric, Resource, Subject, UseKind};
use super::rule::{ev, finding, level, threshold, Threshold};
use crate::collect::cgroup::CgroupSample;
use crate::collect::run::Readings;
use crate::num::{delta, opt_rate, pct, r2, rate};
use crate::text::human_bytes;
use UseKind::{Errors as E, Saturation as S, Utilization as U};

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CgroupRow {
    pub path: String,
    /// quota / period.
    pub cpu_limit_cpus: Option<f64>,
    /// CPU used in the window, in CPUs.
    pub cpu_used_cpus: Option<f64>,
    /// Share of CFS periods in the window in which the group was throttled.
    pub throttled_periods_pct: Option<f64>,
    pub throttled_ms_per_s: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub memory_used_pct: Option<f64>,
    pub swap_bytes: Option<u64>,
    pub oom_kills: Option<u64>,
    pub pids: Option<u64>,
    pub pids_limit: Option<u64>,
}

// ---- build ---------------------------------------------------------------------------------

fn cgroup_row(a: Option<&CgroupSample>, b: &CgroupSample, el: f64) -> CgroupRow {
    let mut row = CgroupRow {
        path: b.path.clone(),
        ..Default::default()
    };
    if let Some(c1) = &b.cpu {
        row.cpu_limit_cpus = match (c1.quota_us, c1.period_us) {
            (Some(q), Some(p)) if p > 0 => Some(r2(q as f64 / p as f64)),
            _ => None,
        };
        if let Some(c0) = a.and_then(|a| a.cpu.as_ref()) {
            row.cpu_used_cpus = opt_rate(c0.usage_us, c1.usage_us, el).map(|us| r2(us / 1e6));
            if let (Some(dp), Some(dt)) = (
                delta(c0.nr_periods, c1.nr_periods),
                delta(c0.nr_throttled, c1.nr_throttled),
            ) {
                row.throttled_periods_pct = if dp > 0 {
                    Some(r2(dt as f64 / dp as f64 * 100.0))
                } else {
                    Some(0.0)
                };
            }
            row.throttled_ms_per_s =
                rate(c0.throttled_us, c1.throttled_us, el).map(|us| r2(us / 1000.0));
        }
    }
    if let Some(m1) = &b.memory {
        row.memory_bytes = Some(m1.current_bytes);
        row.memory_limit_bytes = m1.max_bytes;
        row.memory_used_pct = m1
            .max_bytes
            .and_then(|mx| pct(m1.current_bytes as f64, mx as f64))
            .map(r2);
        row.swap_bytes = m1.swap_bytes;
        let k0 = a
            .and_then(|a| a.memory.as_ref())
            .and_then(|m| m.oom_kill_events);
        row.oom_kills = match (k0, m1.oom_kill_events) {
            (Some(x), Some(y)) => delta(x, y),
            _ => None,
        };
    }
    if let Some(p) = &b.pids {
        row.pids = Some(p.current);
        row.pids_limit = p.max;
    }
    row
}

/// Cgroups worth a row: limited (CPU, memory or pids) or throttled in the window.
pub fn cgroups(r: &Readings) -> Vec<CgroupRow> {
    let el = r.meta.elapsed_s;
    let Some(s1) = &r.t1.cgroups else {
        return Vec::new();
    };
    let before: BTreeMap<&str, &CgroupSample> =
        r.t0.cgroups
            .as_ref()
            .map(|s| s.groups.iter().map(|g| (g.path.as_str(), g)).collect())
            .unwrap_or_default();
    let mut rows: Vec<CgroupRow> = s1
        .groups
        .iter()
        .map(|g| cgroup_row(before.get(g.path.as_str()).copied(), g, el))
        .filter(|c| {
            c.cpu_limit_cpus.is_some()
                || c.memory_limit_bytes.is_some()
                || c.pids_limit.is_some()
                || c.throttled_periods_pct.unwrap_or(0.0) > 0.0
                || c.oom_kills.unwrap_or(0) > 0
        })
        .collect();
    rows.sort_by(|a, b| {
        b.throttled_periods_pct
            .unwrap_or(0.0)
            .total_cmp(&a.throttled_periods_pct.unwrap_or(0.0))
            .then(
                b.memory_used_pct
                    .unwrap_or(0.0)
                    .total_cmp(&a.memory_used_pct.unwrap_or(0.0)),
            )
            .then(a.path.cmp(&b.path))
    });
    rows.truncate(20);
    rows
}

// ---- USE metrics ---------------------------------------------------------------------------

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

/// The cgroup's USE metrics, when it has any.
pub fn use_resource(c: &CgroupRow) -> Option<Resource> {
    let mut r = Resource::new("cgroup", Some(c.path.clone()));
    if let (Some(used), Some(lim)) = (c.cpu_used_cpus, c.cpu_limit_cpus) {
        push(
            &mut r,
            Metric::new(
                "cgroup.cpu_quota_used_pct",
                U,
                "of quota",
                Some(r2(used / lim * 100.0)),
                "pct",
                "cgroup cpu.stat, cpu.max",
            ),
        );
    }
    if c.throttled_periods_pct.is_some() {
        push(
            &mut r,
            Metric::new(
                "cgroup.throttled_periods_pct",
                S,
                "throttled",
                c.throttled_periods_pct,
                "pct",
                "cgroup cpu.stat",
            ),
        );
    }
    if c.memory_used_pct.is_some() {
        push(
            &mut r,
            Metric::new(
                "cgroup.memory_used_pct",
                U,
                "mem of limit",
                c.memory_used_pct,
                "pct",
                "cgroup memory.current, memory.max",
            ),
        );
    }
    if c.oom_kills.is_some() {
        push(
            &mut r,
            Metric::new(
                "cgroup.oom_kills",
                E,
                "OOM kills",
                c.oom_kills.map(|v| v as f64),
                "count",
                "cgroup memory.events",
            ),
        );
    }
    (!r.metrics.is_empty()).then_some(r)
}

// ---- thresholds ----------------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "cgroup.throttled_periods_pct", warn: 10.0, crit: 25.0, unit: "pct", why: "nr_throttled high and growing (S0:928); the war story's 40% of periods was bad; 25% is critical here" },
    Threshold { id: "cgroup.throttled_host_idle_pct", warn: 20.0, crit: 20.0, unit: "pct", why: "companion of the throttling rule: a throttled cgroup on a host with a fifth of its CPU idle is capped by its limit, not by the machine (the summary says so; the severity does not change)" },
    Threshold { id: "cgroup.memory_used_pct", warn: 80.0, crit: 90.0, unit: "pct", why: "working set / limit > 0.8 (S0:1207); 90% is where the kernel starts reclaiming hard" },
    Threshold { id: "cgroup.memory_limit_events", warn: 1.0, crit: 100.0, unit: "count", why: "memory.events high/max increments: the cgroup hit its limit and was throttled or reclaimed in the window (S0:1207 working set near limit)" },
    Threshold { id: "cgroup.io_limit_used_pct", warn: 90.0, crit: 98.0, unit: "pct", why: "not in the seeds: like CPU throttling (S0:928), a cgroup running at its blkio/io.max limit is capped by the limit; 90% of it over a whole window means it is pressing on it" },
];

// ---- rules ---------------------------------------------------------------------------------

/// A cgroup subject.
pub fn subject(path: &str) -> Subject {
    Subject {
        cgroup: Some(path.to_string()),
        ..Default::default()
    }
}

/// cgroups CPU-throttled in the window; `host_idle` (the host's idle %) tells whether the
/// limit, not the machine, is the cap.
pub fn throttle_rules(cgroups: &[CgroupRow], host_idle: f64, out: &mut Vec<Finding>) {
    for c in cgroups {
        let Some(p) = c.throttled_periods_pct else {
            continue;
        };
        if let Some((sev, t)) = level("cgroup.throttled_periods_pct", p) {
            let quota = c
                .cpu_limit_cpus
                .map(|q| format!(" at a {}-CPU quota", super::rule::fmt_cpus(q)))
                .unwrap_or_default();
            let used = c
                .cpu_used_cpus
                .map(|u| format!(", using {u:.2} CPUs"))
                .unwrap_or_default();
            let ms = c
                .throttled_ms_per_s
                .map(|m| format!(" ({m:.0} ms/s throttled)"))
                .unwrap_or_default();
            let cap = if host_idle >= threshold("cgroup.throttled_host_idle_pct").warn {
                format!(" while the host is {host_idle:.0}% idle: the limit, not the machine, is the cap")
            } else {
                String::new()
            };
            let e = vec![ev("cgroup.throttled_periods_pct", p, ">=", t.warn, "pct")];
            out.push(
                finding(
                    "cgroup.cpu.throttled",
                    sev,
                    "cgroup",
                    format!(
                        "cgroup {} CPU-throttled in {p:.0}% of periods{quota}{used}{ms}{cap}",
                        c.path
                    ),
                    e,
                    vec![
                        format!("triage cpu --cgroup {}", c.path),
                        "raise or remove the CPU limit (cpu.max / cfs_quota_us), or reduce parallelism"
                            .into(),
                    ],
                )
                .with_subject(subject(&c.path)),
            );
        }
    }
}

/// cgroups near their memory limit.
pub fn memory_rules(cgroups: &[CgroupRow], out: &mut Vec<Finding>) {
    for c in cgroups {
        let Some(p) = c.memory_used_pct else { continue };
        if let Some((sev, t)) = level("cgroup.memory_used_pct", p) {
            out.push(finding(
                "cgroup.memory.near_limit",
                sev,
                "cgroup",
                format!(
                    "cgroup {} uses {} of its {} memory limit ({p:.0}%): reclaim, swap or OOM kills follow",
                    c.path,
                    human_bytes(c.memory_bytes.unwrap_or(0)),
                    human_bytes(c.memory_limit_bytes.unwrap_or(0))
                ),
                vec![ev("cgroup.memory_used_pct", p, ">=", t.warn, "pct")],
                vec![format!("triage mem --cgroup {}", c.path)],
            ).with_subject(subject(&c.path)));
        }
    }
}

// ---- columns -------------------------------------------------------------------------------

fn bytes(v: Option<u64>) -> String {
    v.map(human_bytes).unwrap_or_else(|| "-".into())
}

/// The cgroups table's columns.
pub const COLUMNS: &[Column<CgroupRow>] = &[
    Column::left("cgroup", |c| s(&c.path)),
    Column::right("CPU limit", |c| o1(c.cpu_limit_cpus)),
    Column::right("CPU used", |c| o1(c.cpu_used_cpus)),
    Column::right("throttled%", |c| o1(c.throttled_periods_pct)),
    Column::right("thr ms/s", |c| o1(c.throttled_ms_per_s)),
    Column::right("memory", |c| bytes(c.memory_bytes)),
    Column::right("mem limit", |c| bytes(c.memory_limit_bytes)),
    Column::right("mem%", |c| o1(c.memory_used_pct)),
    Column::right("OOM kills", |c| ou(c.oom_kills)),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::contract::Severity;

    /// A throttled cgroup is the finding's subject; with a fifth of the host idle
    /// (`cgroup.throttled_host_idle_pct`) the summary says the limit is the cap, the severity
    /// stays what the throttled share says.
    #[test]
    fn throttling_names_the_cgroup_and_whether_the_host_had_room() {
        let c = CgroupRow {
            path: "/batch".into(),
            cpu_limit_cpus: Some(0.5),
            cpu_used_cpus: Some(0.5),
            throttled_periods_pct: Some(30.0),
            ..Default::default()
        };
        let run = |idle: f64| {
            let mut out = Vec::new();
            throttle_rules(std::slice::from_ref(&c), idle, &mut out);
            out
        };
        for (idle, cap) in [(20.0, true), (19.9, false)] {
            let f = run(idle);
            assert_eq!(f.len(), 1);
            assert_eq!(f[0].id, "cgroup.cpu.throttled");
            assert_eq!(f[0].severity, Severity::Critical);
            assert_eq!(f[0].subject.cgroup.as_deref(), Some("/batch"));
            assert_eq!(
                f[0].summary.contains("the limit, not the machine"),
                cap,
                "{idle}"
            );
        }
        let quiet = CgroupRow {
            throttled_periods_pct: Some(9.9),
            ..c.clone()
        };
        let mut out = Vec::new();
        throttle_rules(&[quiet], 90.0, &mut out);
        assert!(out.is_empty());
    }
}
