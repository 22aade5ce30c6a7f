//! The CPU resource (uptime, mpstat -P ALL): the load average against the effective CPUs,
//! and the per-CPU split of the window's ticks (`all` first), built from two /proc/stat
//! snapshots; the CPU thresholds; mpstat's columns. The CPU rules and USE metrics read other
//! resources too (run queue, PSI, processes, cgroups) and are still in `analyze` and
//! `model::resources`; the cpu view's detail section is still in `model::deep`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::columns::{f1, Align, Column};
use super::rule::Threshold;
use crate::collect::run::Readings;
use crate::collect::system::CpuTicks;
use crate::num::{delta, r2};

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CpuRow {
    /// `all` or the CPU number.
    pub cpu: String,
    pub usr_pct: f64,
    pub nice_pct: f64,
    pub sys_pct: f64,
    pub iowait_pct: f64,
    pub irq_pct: f64,
    pub soft_pct: f64,
    pub steal_pct: f64,
    pub guest_pct: f64,
    pub idle_pct: f64,
    /// 100 - idle - iowait.
    pub busy_pct: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct LoadSection {
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    pub effective_cpus: f64,
    /// load1 / effective CPUs.
    pub load1_per_cpu: f64,
}

// ---- build ---------------------------------------------------------------------------------

fn cpu_row(name: String, a: &CpuTicks, b: &CpuTicks) -> Option<CpuRow> {
    let total = delta(a.total(), b.total())? as f64;
    if total <= 0.0 {
        return None;
    }
    let f = |x: u64, y: u64| r2(y.saturating_sub(x) as f64 / total * 100.0);
    // user and nice include guest time: mpstat shows them without it.
    let guest = b
        .guest
        .saturating_sub(a.guest)
        .saturating_add(b.guest_nice.saturating_sub(a.guest_nice));
    let usr = (b.user.saturating_sub(a.user)).saturating_sub(b.guest.saturating_sub(a.guest));
    let nice =
        (b.nice.saturating_sub(a.nice)).saturating_sub(b.guest_nice.saturating_sub(a.guest_nice));
    let idle = f(a.idle, b.idle);
    let iowait = f(a.iowait, b.iowait);
    Some(CpuRow {
        cpu: name,
        usr_pct: r2(usr as f64 / total * 100.0),
        nice_pct: r2(nice as f64 / total * 100.0),
        sys_pct: f(a.system, b.system),
        iowait_pct: iowait,
        irq_pct: f(a.irq, b.irq),
        soft_pct: f(a.softirq, b.softirq),
        steal_pct: f(a.steal, b.steal),
        guest_pct: r2(guest as f64 / total * 100.0),
        idle_pct: idle,
        busy_pct: r2((100.0 - idle - iowait).max(0.0)),
    })
}

pub fn cpus(r: &Readings) -> Vec<CpuRow> {
    let (Some(a), Some(b)) = (&r.t0.system.stat, &r.t1.system.stat) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    rows.extend(cpu_row("all".into(), &a.total, &b.total));
    let before: BTreeMap<u32, &CpuTicks> = a.cpus.iter().map(|(i, t)| (*i, t)).collect();
    for (id, t1) in &b.cpus {
        if let Some(t0) = before.get(id) {
            rows.extend(cpu_row(id.to_string(), t0, t1));
        }
    }
    rows
}

pub fn effective_cpus(r: &Readings) -> f64 {
    r.end
        .effective_cpus
        .as_ref()
        .map(|e| e.0)
        .filter(|v| *v > 0.0)
        .or(r.end.online_cpus.map(f64::from))
        .unwrap_or(1.0)
}

pub fn load(r: &Readings) -> Option<LoadSection> {
    let l = r.t1.system.load?;
    let eff = effective_cpus(r);
    Some(LoadSection {
        load1: l.one,
        load5: l.five,
        load15: l.fifteen,
        effective_cpus: r2(eff),
        load1_per_cpu: r2(l.one / eff),
    })
}

// ---- thresholds ----------------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "cpu.runnable_per_cpu", warn: 1.0, crit: 2.0, unit: "ratio", why: "vmstat r consistently > CPU count = CPU saturation (S0:430); r is sampled every 100 ms and must exceed the CPUs in at least half the samples" },
    Threshold { id: "cpu.load1_per_cpu", warn: 1.0, crit: 2.0, unit: "ratio", why: "load average > CPU count = saturation somewhere (S0:448); only used with the run queue or D-state tasks to say which" },
    Threshold { id: "cpu.hottest_cpu_busy_pct", warn: 95.0, crit: 99.0, unit: "pct", why: "one core ~100% while others idle = single-threaded bottleneck (S0:458); others' median must be <= 30%" },
    Threshold { id: "cpu.single_thread_process_pct", warn: 90.0, crit: 99.0, unit: "pct", why: "one core ~100% = single-threaded bottleneck (S0:458): a process with one thread at ~100% of a CPU cannot go faster whatever the other CPUs do; 90% leaves room for a busy box taking its share (a pegged thread beside others' work measured 95%), 99% is a thread that never waits" },
    Threshold { id: "cpu.others_median_busy_pct", warn: 30.0, crit: 30.0, unit: "pct", why: "companion of the single-core rule: the other CPUs are mostly idle" },
    Threshold { id: "cpu.iowait_pct", warn: 20.0, crit: 50.0, unit: "pct", why: "high %iowait = the problem is I/O, not CPU (S0:429); the seeds give no number, 20% is where iostat users start looking" },
    Threshold { id: "cpu.system_pct", warn: 30.0, crit: 60.0, unit: "pct", why: "sy high = kernel/syscall overhead (S0:844); no number in the seeds" },
    Threshold { id: "cpu.steal_pct", warn: 10.0, crit: 25.0, unit: "pct", why: "not in the seeds; 10% steal is the common cloud alerting level" },
    Threshold { id: "cpu.busy_pct_low", warn: 50.0, crit: 50.0, unit: "pct", why: "companion of the D-state rule: CPUs mostly idle" },
    Threshold { id: "cpu.softirq_cpu_soft_pct", warn: 20.0, crit: 50.0, unit: "pct", why: "not in the seeds: a CPU spending a fifth of its time in softirq is visibly taken from applications; half is a saturated core (mpstat %soft)" },
    Threshold { id: "cpu.softirq_one_cpu_share_pct", warn: 90.0, crit: 90.0, unit: "pct", why: "companion: 90% of a softirq type on one CPU means one queue/IRQ (NET_RX all on one CPU, S0 network tuning); below that the work is spread" },
];

// ---- columns -------------------------------------------------------------------------------

/// mpstat -P ALL's columns.
pub const COLUMNS: &[Column<CpuRow>] = &[
    Column {
        header: "CPU",
        align: Align::Left,
        value: |c| c.cpu.clone(),
    },
    Column {
        header: "%usr",
        align: Align::Right,
        value: |c| f1(c.usr_pct),
    },
    Column {
        header: "%nice",
        align: Align::Right,
        value: |c| f1(c.nice_pct),
    },
    Column {
        header: "%sys",
        align: Align::Right,
        value: |c| f1(c.sys_pct),
    },
    Column {
        header: "%iowait",
        align: Align::Right,
        value: |c| f1(c.iowait_pct),
    },
    Column {
        header: "%irq",
        align: Align::Right,
        value: |c| f1(c.irq_pct),
    },
    Column {
        header: "%soft",
        align: Align::Right,
        value: |c| f1(c.soft_pct),
    },
    Column {
        header: "%steal",
        align: Align::Right,
        value: |c| f1(c.steal_pct),
    },
    Column {
        header: "%guest",
        align: Align::Right,
        value: |c| f1(c.guest_pct),
    },
    Column {
        header: "%idle",
        align: Align::Right,
        value: |c| f1(c.idle_pct),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_row_excludes_guest_from_user() {
        let a = CpuTicks::default();
        let b = CpuTicks {
            user: 50,
            guest: 20,
            idle: 50,
            ..Default::default()
        };
        let row = cpu_row("0".into(), &a, &b).unwrap();
        assert_eq!(row.usr_pct, 30.0);
        assert_eq!(row.guest_pct, 20.0);
        assert_eq!(row.idle_pct, 50.0);
        assert_eq!(row.busy_pct, 50.0);
    }
}
