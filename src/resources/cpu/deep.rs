//! The cpu view's detail section (`triage cpu`): processes and threads by CPU (pidstat -u -w
//! [-t]), softirqs by type and their busiest CPU (/proc/softirqs), PSI cpu; its build from two
//! snapshots over the measured window; the softirq-on-one-CPU rule; the columns of its tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::collect::deep::ProcStatus;
use crate::collect::procs::ProcSample;
use crate::collect::run::Readings;
use crate::num::{delta, r2, rate, SatSum};
use crate::resources::columns::{f1, o1, s, Column};
use crate::resources::contract::{Finding, Subject};
use crate::resources::rule::{ev, finding, level, threshold};
use crate::resources::scope::{before, cut, psi_stall_ms, Scope};

/// One process or thread by CPU (pidstat -u -w [-t]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct TaskCpuRow {
    pub pid: i32,
    /// The thread id (thread rows only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    pub comm: String,
    pub cpu_pct: f64,
    pub usr_pct: f64,
    pub sys_pct: f64,
    /// voluntary_ctxt_switches over the window (/proc/PID/status, or the thread's
    /// /proc/PID/task/TID/status; a process row counts its main thread, as pidstat -w does).
    pub voluntary_switches_per_s: Option<f64>,
    pub involuntary_switches_per_s: Option<f64>,
}

/// One softirq type over the window (/proc/softirqs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SoftirqRow {
    pub name: String,
    pub per_s: f64,
    /// The CPU that handled most of them, and its share.
    pub busiest_cpu: u32,
    pub busiest_cpu_share_pct: f64,
    /// That CPU's %soft over the window (mpstat).
    pub busiest_cpu_soft_pct: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CpuDetail {
    /// Rows each `--top` list left out (list name -> rows not shown), when any (since 1.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub left_out: BTreeMap<String, usize>,
    pub online_cpus: u32,
    pub effective_cpus: f64,
    pub effective_cpus_source: String,
    /// PSI cpu `some` stall time in the window, ms (source /proc/pressure/cpu).
    pub psi_some_stall_ms: Option<f64>,
    pub psi_some_avg10_pct: Option<f64>,
    pub psi_some_avg60_pct: Option<f64>,
    pub top_processes: Vec<TaskCpuRow>,
    pub top_threads: Vec<TaskCpuRow>,
    /// Softirq types with activity, busiest first.
    pub softirqs: Vec<SoftirqRow>,
}

/// Online CPUs, the effective CPUs (cgroup quota or cpuset, else online) rounded to two
/// decimals, and where the effective count comes from: the report's `host` says the same.
pub fn cpu_counts(r: &Readings) -> (u32, f64, String) {
    let online = r.end.online_cpus.unwrap_or(0);
    let (eff, src) = r
        .end
        .effective_cpus
        .clone()
        .unwrap_or_else(|| (online.max(1) as f64, format!("online {online}")));
    (online, r2(eff), src)
}

fn cpu_row(r: &Readings, p: &ProcSample, old: Option<&ProcSample>) -> TaskCpuRow {
    let tck = r.meta.clock_ticks_per_s.max(1) as f64;
    let el = r.meta.elapsed_s;
    let (du, ds) = match old {
        Some(o) => (
            delta(o.utime, p.utime).unwrap_or(0),
            delta(o.stime, p.stime).unwrap_or(0),
        ),
        None => (p.utime, p.stime),
    };
    let f = |t: u64| r2(t as f64 / tck / el * 100.0);
    TaskCpuRow {
        pid: p.pid,
        tid: None,
        comm: p.comm.clone(),
        cpu_pct: f(du.saturating_add(ds)),
        usr_pct: f(du),
        sys_pct: f(ds),
        voluntary_switches_per_s: None,
        involuntary_switches_per_s: None,
    }
}

fn by_cpu(a: &TaskCpuRow, b: &TaskCpuRow) -> std::cmp::Ordering {
    b.cpu_pct
        .total_cmp(&a.cpu_pct)
        .then(a.pid.cmp(&b.pid))
        .then(a.tid.cmp(&b.tid))
}

/// The cpu view's section over the window, scoped by `--pid`/`--cgroup`, cut to `--top`.
pub fn detail(r: &Readings, scope: &Scope) -> CpuDetail {
    let el = r.meta.elapsed_s;
    let (online_cpus, effective_cpus, effective_cpus_source) = cpu_counts(r);
    let status_rate = |pid: i32, f: fn(&ProcStatus) -> Option<u64>| -> Option<f64> {
        let a = f(r.t0.deep.status.get(&pid)?)?;
        let b = f(r.t1.deep.status.get(&pid)?)?;
        rate(a, b, el).map(r2)
    };
    let mut procs: Vec<TaskCpuRow> = Vec::new();
    for p in r.t1.procs.procs.values() {
        if !scope.wants(r, p.pid) {
            continue;
        }
        let old = before(r, p);
        let mut row = cpu_row(r, p, old);
        if old.is_some() {
            row.voluntary_switches_per_s = status_rate(p.pid, |s| s.voluntary_switches);
            row.involuntary_switches_per_s = status_rate(p.pid, |s| s.involuntary_switches);
        }
        if row.cpu_pct > 0.0 || scope.pid.is_some() {
            procs.push(row);
        }
    }
    procs.sort_by(by_cpu);
    let mut left_out = BTreeMap::new();
    cut(&mut procs, scope.top, "top_processes", &mut left_out);

    let mut threads: Vec<TaskCpuRow> = Vec::new();
    for (pid, ts) in &r.t1.deep.threads {
        if !scope.wants(r, *pid) {
            continue;
        }
        let old: BTreeMap<i32, &ProcSample> =
            r.t0.deep
                .threads
                .get(pid)
                .map(|v| v.iter().map(|t| (t.pid, t)).collect())
                .unwrap_or_default();
        for t in ts {
            let o = old
                .get(&t.pid)
                .copied()
                .filter(|o| o.starttime == t.starttime);
            let mut row = cpu_row(r, t, o);
            row.tid = Some(t.pid);
            row.pid = *pid;
            if o.is_some() {
                let sw = |f: fn(&ProcStatus) -> Option<u64>| -> Option<f64> {
                    let a = f(r.t0.deep.thread_status.get(&t.pid)?)?;
                    let b = f(r.t1.deep.thread_status.get(&t.pid)?)?;
                    rate(a, b, el).map(r2)
                };
                row.voluntary_switches_per_s = sw(|s| s.voluntary_switches);
                row.involuntary_switches_per_s = sw(|s| s.involuntary_switches);
            }
            if row.cpu_pct > 0.0 {
                threads.push(row);
            }
        }
    }
    threads.sort_by(by_cpu);
    cut(&mut threads, scope.top, "top_threads", &mut left_out);

    let soft_pct: BTreeMap<String, f64> = super::cpus(r)
        .into_iter()
        .map(|c| (c.cpu, c.soft_pct))
        .collect();
    let mut softirqs = Vec::new();
    for (name, b) in &r.t1.deep.softirqs {
        let Some(a) = r.t0.deep.softirqs.get(name) else {
            continue;
        };
        let a: BTreeMap<u32, u64> = a.iter().copied().collect();
        let per_cpu: Vec<(u32, u64)> = b
            .iter()
            .filter_map(|(c, y)| Some((*c, delta(*a.get(c)?, *y)?)))
            .collect();
        let total: u64 = per_cpu.iter().map(|x| x.1).sat_sum();
        if total == 0 {
            continue;
        }
        let &(cpu, n) = per_cpu
            .iter()
            .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(&x.0)))
            .unwrap_or(&(0, 0));
        softirqs.push(SoftirqRow {
            name: name.clone(),
            per_s: r2(total as f64 / el),
            busiest_cpu: cpu,
            busiest_cpu_share_pct: r2(n as f64 / total as f64 * 100.0),
            busiest_cpu_soft_pct: soft_pct.get(&cpu.to_string()).copied(),
        });
    }
    softirqs.sort_by(|a, b| b.per_s.total_cmp(&a.per_s).then(a.name.cmp(&b.name)));

    let psi = r.t1.system.psi.get("cpu");
    CpuDetail {
        left_out,
        online_cpus,
        effective_cpus,
        effective_cpus_source,
        psi_some_stall_ms: psi_stall_ms(r, "cpu", false),
        psi_some_avg10_pct: psi.map(|p| p.some.avg10),
        psi_some_avg60_pct: psi.map(|p| p.some.avg60),
        top_processes: procs,
        top_threads: threads,
        softirqs,
    }
}

/// Softirq types that one queue/IRQ can pin to a CPU (timers and RCU are per-CPU anyway).
const PINNABLE_SOFTIRQS: &[&str] = &["NET_RX", "NET_TX", "BLOCK", "TASKLET", "IRQ_POLL"];

/// One CPU doing (nearly) all of a softirq type while spending much of its time in softirq:
/// typically one NIC queue/IRQ, no RPS/RSS (the CPU saturates while others idle). Needs two
/// or more online CPUs (the host's count). Thresholds: `cpu.softirq_cpu_soft_pct` and
/// `cpu.softirq_one_cpu_share_pct` in [`super::THRESHOLDS`].
pub fn softirq_rule(c: &CpuDetail, online_cpus: u32, out: &mut Vec<Finding>) {
    if online_cpus < 2 {
        return;
    }
    let share_t = threshold("cpu.softirq_one_cpu_share_pct");
    for row in &c.softirqs {
        let Some(soft) = row.busiest_cpu_soft_pct else {
            continue;
        };
        let Some((sev, t)) = level("cpu.softirq_cpu_soft_pct", soft) else {
            continue;
        };
        if row.busiest_cpu_share_pct < share_t.warn
            || !PINNABLE_SOFTIRQS.contains(&row.name.as_str())
        {
            continue;
        }
        out.push(finding(
            "cpu.saturation.softirq_one_cpu",
            sev,
            "cpu",
            format!(
                "{} softirqs pinned to CPU {}: {:.0}% of {:.0}/s handled there, and that CPU spends {:.0}% in softirq while {} CPUs are online (one queue/IRQ: spread it with RSS/RPS or irqbalance)",
                s(&row.name), row.busiest_cpu, row.busiest_cpu_share_pct, row.per_s, soft, online_cpus
            ),
            vec![
                ev("cpu.softirq_cpu_soft_pct", soft, ">=", t.warn, "pct"),
                ev("cpu.softirq_one_cpu_share_pct", row.busiest_cpu_share_pct, ">=", share_t.warn, "pct"),
            ],
            vec![
                "cat /proc/interrupts".into(),
                "mpstat -P ALL -I SCPU 1".into(),
                "ethtool -l IFACE; cat /sys/class/net/IFACE/queues/rx-*/rps_cpus".into(),
            ],
        ).with_subject(Subject {
            cpu: Some(row.busiest_cpu),
            class: Some(row.name.to_ascii_lowercase()),
            ..Default::default()
        }));
    }
}

/// pidstat -u -w [-t]: processes or threads by CPU (`-` for a process row's thread id).
pub const TASK_COLUMNS: &[Column<TaskCpuRow>] = &[
    Column::left("PID", |x| x.pid.to_string()),
    Column::right("TID", |x| {
        x.tid.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
    }),
    Column::left("command", |x| s(&x.comm)),
    Column::right("%CPU", |x| f1(x.cpu_pct)),
    Column::right("%usr", |x| f1(x.usr_pct)),
    Column::right("%sys", |x| f1(x.sys_pct)),
    Column::right("cswch/s", |x| o1(x.voluntary_switches_per_s)),
    Column::right("nvcswch/s", |x| o1(x.involuntary_switches_per_s)),
];

/// /proc/softirqs: each type's rate and the CPU that handled most of it.
pub const SOFTIRQ_COLUMNS: &[Column<SoftirqRow>] = &[
    Column::left("softirq", |x| s(&x.name)),
    Column::right("per s", |x| f1(x.per_s)),
    Column::right("busiest CPU", |x| x.busiest_cpu.to_string()),
    Column::right("its share %", |x| f1(x.busiest_cpu_share_pct)),
    Column::right("its %soft", |x| o1(x.busiest_cpu_soft_pct)),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::contract::Severity;

    fn pinned(name: &str, soft: f64) -> CpuDetail {
        CpuDetail {
            softirqs: vec![SoftirqRow {
                name: name.into(),
                per_s: 50000.0,
                busiest_cpu: 3,
                busiest_cpu_share_pct: 98.0,
                busiest_cpu_soft_pct: Some(soft),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn softirq_pinned_to_one_cpu_names_the_cpu_and_the_type() {
        let mut out = Vec::new();
        softirq_rule(&pinned("NET_RX", 60.0), 4, &mut out);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f.id, "cpu.saturation.softirq_one_cpu");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.cpu, Some(3));
        assert_eq!(f.subject.class.as_deref(), Some("net_rx"));
        assert_eq!(f.evidence[1].value, 98.0);

        let mut out = Vec::new();
        softirq_rule(&pinned("NET_RX", 25.0), 4, &mut out);
        assert_eq!(out[0].severity, Severity::Warning);
    }

    #[test]
    fn softirq_rule_needs_two_cpus_and_a_pinnable_type() {
        let mut out = Vec::new();
        // One CPU: it does every softirq by definition.
        softirq_rule(&pinned("NET_RX", 60.0), 1, &mut out);
        // Timers are per-CPU: no queue to spread.
        softirq_rule(&pinned("TIMER", 60.0), 4, &mut out);
        // Below the %soft warning level.
        softirq_rule(&pinned("NET_RX", 10.0), 4, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn task_columns_show_a_dash_for_a_process_row_thread_id() {
        let row = TaskCpuRow {
            pid: 42,
            tid: None,
            comm: "a\x1bb".into(),
            cpu_pct: 12.345,
            voluntary_switches_per_s: Some(3.0),
            ..Default::default()
        };
        let cells = Column::cells(TASK_COLUMNS, &row);
        assert_eq!(cells[0], "42");
        assert_eq!(cells[1], "-");
        assert!(!cells[2].contains('\x1b'), "{}", cells[2]);
        assert_eq!(cells[3], "12.3");
        assert_eq!(cells[6], "3.0");
        assert_eq!(cells[7], "-");
    }
}
