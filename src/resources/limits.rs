//! System-wide limits and per-process file descriptors: file handles against fs.file-max,
//! threads against pid_max / threads-max, conntrack entries against nf_conntrack_max (the
//! `limits` section), and the processes whose open fds approach their soft RLIMIT_NOFILE. Their
//! build from the end-of-window readings, the `file_descriptors` and `conntrack` USE resources,
//! the thresholds (with their why) and rules, and the limits line of the table.
//! (The `tasks` USE resource and the zombie rule are in [`super::tasks`].)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::columns::{ou, s};
use super::contract::{Finding, Metric, Resource, Subject, UseKind};
use super::rule::{ev, finding, level, Threshold};
use super::tasks::TOP_N;
use crate::collect::procs::ProcSample;
use crate::collect::run::Readings;
use crate::num::{pct, r2};
use UseKind::Utilization as U;

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct FdRow {
    pub pid: i32,
    pub comm: String,
    pub open_fds: u64,
    pub soft_limit: Option<u64>,
    pub used_pct: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct LimitsSection {
    pub file_handles: Option<u64>,
    pub file_handles_max: Option<u64>,
    pub file_handles_pct: Option<f64>,
    pub threads: Option<u64>,
    pub threads_max: Option<u64>,
    pub pid_max: Option<u64>,
    pub tasks_pct: Option<f64>,
    pub conntrack: Option<u64>,
    pub conntrack_max: Option<u64>,
    pub conntrack_pct: Option<f64>,
}

// ---- build ---------------------------------------------------------------------------------

/// The system-wide handles at the end of the window.
pub fn limits(r: &Readings) -> LimitsSection {
    let l = &r.end.limits;
    let threads = r.t1.system.load.map(|x| x.threads as u64);
    let task_cap = match (l.pid_max, l.threads_max) {
        (Some(p), Some(t)) => Some(p.min(t)),
        (a, b) => a.or(b),
    };
    LimitsSection {
        file_handles: l.file_nr.map(|f| f.0),
        file_handles_max: l.file_nr.map(|f| f.1),
        file_handles_pct: l.file_nr.and_then(|(a, m)| pct(a as f64, m as f64)).map(r2),
        threads,
        threads_max: l.threads_max,
        pid_max: l.pid_max,
        tasks_pct: threads
            .zip(task_cap)
            .and_then(|(t, c)| pct(t as f64, c as f64))
            .map(r2),
        conntrack: l.conntrack_count,
        conntrack_max: l.conntrack_max,
        conntrack_pct: l
            .conntrack_count
            .zip(l.conntrack_max)
            .and_then(|(c, m)| pct(c as f64, m as f64))
            .map(r2),
    }
}

/// The processes whose open fds are closest to their soft limit (most used first); `procs`
/// are the processes at the end of the window (for their names).
pub fn fd_top(r: &Readings, procs: &BTreeMap<i32, ProcSample>) -> Vec<FdRow> {
    let mut fd_top: Vec<FdRow> = r
        .end
        .fd_use
        .iter()
        .map(|(&pid, u)| FdRow {
            pid,
            comm: procs.get(&pid).map(|p| p.comm.clone()).unwrap_or_default(),
            open_fds: u.open,
            soft_limit: u.soft_limit,
            used_pct: u
                .soft_limit
                .and_then(|l| pct(u.open as f64, l as f64))
                .map(r2),
        })
        .filter(|f| f.used_pct.is_some())
        .collect();
    fd_top.sort_by(|a, b| {
        b.used_pct
            .unwrap_or(0.0)
            .total_cmp(&a.used_pct.unwrap_or(0.0))
            .then(a.pid.cmp(&b.pid))
    });
    fd_top.truncate(TOP_N);
    fd_top
}

// ---- USE metrics ---------------------------------------------------------------------------

/// The `file_descriptors` USE resource: system file handles, and the process closest to its
/// limit (the first of `fd_top`).
pub fn fds_resource(l: &LimitsSection, fd_top: Option<&[FdRow]>) -> Resource {
    let mut fds = Resource::new("file_descriptors", None);
    fds.metrics.push(Metric::maybe(
        "file_descriptors.used_pct",
        U,
        "system",
        l.file_handles_pct,
        "pct",
        "/proc/sys/fs/file-nr",
        "file-nr unreadable",
    ));
    let worst = fd_top.and_then(|f| f.first()).and_then(|f| f.used_pct);
    fds.metrics.push(Metric::maybe(
        "file_descriptors.worst_process_pct",
        U,
        "max proc",
        worst,
        "pct",
        "/proc/PID/fd, /proc/PID/limits",
        "no process fd counts (needs root for other users' processes)",
    ));
    fds
}

/// The `conntrack` USE resource, when the conntrack table exists (nf_conntrack loaded).
pub fn conntrack_resource(l: &LimitsSection) -> Option<Resource> {
    l.conntrack_max?;
    let mut ct = Resource::new("conntrack", None);
    ct.metrics.push(Metric::maybe(
        "conntrack.used_pct",
        U,
        "entries",
        l.conntrack_pct,
        "pct",
        "/proc/sys/net/netfilter",
        "unreadable",
    ));
    Some(ct)
}

// ---- thresholds and rules ------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "conntrack.used_pct", warn: 80.0, crit: 95.0, unit: "pct", why: "count at or near max (S0:1039)" },
    Threshold { id: "file_descriptors.process_pct", warn: 80.0, crit: 95.0, unit: "pct", why: "approaching ulimit -n causes EMFILE (S0:213)" },
    Threshold { id: "file_descriptors.used_pct", warn: 80.0, crit: 95.0, unit: "pct", why: "system-wide file-max (S0:212)" },
    Threshold { id: "tasks.used_pct", warn: 80.0, crit: 95.0, unit: "pct", why: "PID exhaustion makes fork fail (S0:104)" },
];

/// The system-wide limits: conntrack table, file handles, PID/thread limit.
pub fn rules(l: &LimitsSection, out: &mut Vec<Finding>) {
    if let Some(p) = l.conntrack_pct {
        if let Some((sev, t)) = level("conntrack.used_pct", p) {
            out.push(finding(
                "conntrack.utilization.table",
                sev,
                "conntrack",
                format!(
                    "conntrack table {p:.0}% full ({}/{}): new flows will be dropped",
                    l.conntrack.unwrap_or(0),
                    l.conntrack_max.unwrap_or(0)
                ),
                vec![ev("conntrack.used_pct", p, ">=", t.warn, "pct")],
                vec![
                    "conntrack -S".into(),
                    "raise net.netfilter.nf_conntrack_max".into(),
                ],
            ));
        }
    }
    if let Some(p) = l.file_handles_pct {
        if let Some((sev, t)) = level("file_descriptors.used_pct", p) {
            out.push(finding(
                "file_descriptors.utilization.system",
                sev,
                "file_descriptors",
                format!(
                    "System file handles {p:.0}% of fs.file-max ({}/{})",
                    l.file_handles.unwrap_or(0),
                    l.file_handles_max.unwrap_or(0)
                ),
                vec![ev("file_descriptors.used_pct", p, ">=", t.warn, "pct")],
                vec!["cat /proc/sys/fs/file-nr".into()],
            ));
        }
    }
    if let Some(p) = l.tasks_pct {
        if let Some((sev, t)) = level("tasks.used_pct", p) {
            out.push(finding(
                "tasks.utilization.pid_max",
                sev,
                "tasks",
                format!(
                    "{} threads: {p:.0}% of the PID/thread limit; fork() will start failing",
                    l.threads.unwrap_or(0)
                ),
                vec![ev("tasks.used_pct", p, ">=", t.warn, "pct")],
                vec!["ps -eLf | wc -l".into()],
            ));
        }
    }
}

/// A process close to its soft fd limit (EMFILE next), one finding each.
pub fn process_rules(fd_top: &[FdRow], out: &mut Vec<Finding>) {
    for f in fd_top {
        let Some(u) = f.used_pct else { continue };
        if let Some((sev, t)) = level("file_descriptors.process_pct", u) {
            out.push(
                finding(
                    "file_descriptors.utilization.process",
                    sev,
                    "file_descriptors",
                    format!(
                        "{} (pid {}) has {} of {} file descriptors open ({u:.0}%): EMFILE is near",
                        f.comm,
                        f.pid,
                        f.open_fds,
                        f.soft_limit.unwrap_or(0)
                    ),
                    vec![ev("file_descriptors.process_pct", u, ">=", t.warn, "pct")],
                    vec![format!(
                        "ls -l /proc/{}/fd | awk '{{print $NF}}' | sort | uniq -c | sort -n | tail",
                        f.pid
                    )],
                )
                .with_subject(Subject::process(f.pid, &f.comm)),
            );
        }
    }
}

// ---- table ---------------------------------------------------------------------------------

/// The limits line of the table (no columns: one line of `what used/max` parts), with the
/// process using the most of its fd limit; empty when nothing could be read.
pub fn line(l: &LimitsSection, most_fds: Option<&FdRow>) -> Vec<String> {
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
    if let Some(f) = most_fds {
        parts.push(format!(
            "most fds: {} (pid {}) {}/{}",
            s(&f.comm),
            f.pid,
            f.open_fds,
            ou(f.soft_limit)
        ));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::procs::FdUse;
    use crate::collect::system::{Limits, Load};
    use crate::resources::contract::Severity;

    fn readings() -> Readings {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idle");
        crate::collect::run::from_fixture(&dir).unwrap()
    }

    /// Threads are judged against the lower of pid_max and threads-max; each share is of its
    /// own maximum; the line says what was read.
    #[test]
    fn shares_of_their_limits_and_the_line() {
        let mut r = readings();
        r.end.limits = Limits {
            file_nr: Some((900, 1000)),
            pid_max: Some(4_194_304),
            threads_max: Some(2000),
            conntrack_count: Some(250),
            conntrack_max: Some(1000),
            ..Default::default()
        };
        r.t1.system.load = Some(Load {
            threads: 1900,
            ..Default::default()
        });
        let l = limits(&r);
        assert_eq!(l.file_handles_pct, Some(90.0));
        assert_eq!(l.tasks_pct, Some(95.0));
        assert_eq!(l.conntrack_pct, Some(25.0));
        let mut out = Vec::new();
        rules(&l, &mut out);
        let got: Vec<(&str, Severity)> = out.iter().map(|f| (f.id.as_str(), f.severity)).collect();
        assert_eq!(
            got,
            [
                ("file_descriptors.utilization.system", Severity::Warning),
                ("tasks.utilization.pid_max", Severity::Critical),
            ]
        );
        let most = FdRow {
            pid: 7,
            comm: "a\x1bb".into(),
            open_fds: 10,
            soft_limit: None,
            used_pct: None,
        };
        assert_eq!(
            line(&l, Some(&most)),
            [
                "file handles 900/1000",
                "threads 1900 (pid_max 4194304, threads-max 2000)",
                "conntrack 250/1000",
                "most fds: a\\x1bb (pid 7) 10/-",
            ]
        );
        let none = limits(&Readings {
            end: Default::default(),
            t1: Default::default(),
            ..r
        });
        assert!(line(&none, None).is_empty());
        assert!(conntrack_resource(&none).is_none());
    }

    /// Unlimited processes are not listed; the rest most used first, at most [`TOP_N`].
    #[test]
    fn fd_top_lists_the_processes_closest_to_their_limit() {
        let mut r = readings();
        let limited = |open, lim| FdUse {
            open,
            soft_limit: lim,
        };
        r.end.fd_use = (1..=8)
            .map(|pid| (pid, limited(pid as u64 * 100, Some(1024))))
            .chain([(99, limited(5000, None))])
            .collect();
        let top = fd_top(&r, &Default::default());
        let pids: Vec<i32> = top.iter().map(|f| f.pid).collect();
        assert_eq!(pids, [8, 7, 6, 5, 4]);
        assert_eq!(top[0].used_pct, Some(78.13));
        let mut out = Vec::new();
        process_rules(&top, &mut out);
        assert!(out.is_empty(), "78% is below the 80% warning");
    }
}
