//! The CPU resource (uptime, mpstat -P ALL): the load average against the effective CPUs,
//! and the per-CPU split of the window's ticks (`all` first), built from two /proc/stat
//! snapshots; its USE metrics; the CPU thresholds; the CPU rules (run queue, one pegged CPU,
//! kernel time, steal, I/O wait), which also weigh other resources, passed in as [`Inputs`]
//! (run queue, PSI, disks, processes, cgroups); mpstat's columns. The cpu view's detail
//! section (pidstat, softirqs) is in [`deep`].

pub mod deep;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::cgroup::{throttle_rules, CgroupRow};
use super::columns::{f1, Column};
use super::contract::{Finding, Metric, Resource, Severity, Subject, UseKind};
use super::disk::{DiskRow, IoCgroupRow};
use super::kernel_log::KernelLogSection;
use super::pressure::PsiRow;
use super::rule::{ev, finding, fmt_cpus, level, threshold, Threshold};
use super::tasks::ProcRow;
use crate::collect::run::Readings;
use crate::collect::system::CpuTicks;
use crate::num::{delta, median, r2};
use UseKind::{Errors as E, Saturation as S, Utilization as U};

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

// ---- USE metrics ---------------------------------------------------------------------------

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

/// The CPU's USE metrics: busy and the hottest CPU; the run queue per CPU (vmstat `r`), load
/// per CPU, PSI and steal; the CPU errors the kernel logged (machine checks, lockups, RCU
/// stalls).
pub fn use_resource(
    cpus: &[CpuRow],
    load: Option<&LoadSection>,
    pressure: &[PsiRow],
    kernel_log: Option<&KernelLogSection>,
    runnable_avg: Option<f64>,
    steal_pct: Option<f64>,
    effective_cpus: f64,
) -> Resource {
    let mut cpu = Resource::new("cpu", None);
    let all = cpus.first();
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.busy_pct",
            U,
            "busy",
            all.map(|c| c.busy_pct),
            "pct",
            "/proc/stat",
            "no /proc/stat delta",
        ),
    );
    let hottest = cpus.iter().skip(1).map(|c| c.busy_pct).reduce(f64::max);
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.hottest_cpu_busy_pct",
            U,
            "max CPU",
            hottest,
            "pct",
            "/proc/stat",
            "no per-CPU lines",
        ),
    );
    let runq = runnable_avg.map(|r| r2(r / effective_cpus));
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.runnable_per_cpu",
            S,
            "runq/CPU",
            runq,
            "ratio",
            "/proc/stat procs_running (sampled)",
            "no samples in the window",
        ),
    );
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.load1_per_cpu",
            S,
            "load/CPU",
            load.map(|l| l.load1_per_cpu),
            "ratio",
            "/proc/loadavg",
            "no /proc/loadavg",
        ),
    );
    let psi_cpu = pressure
        .iter()
        .find(|p| p.resource == "cpu")
        .and_then(|p| p.some_pct);
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.pressure_some_pct",
            S,
            "PSI",
            psi_cpu,
            "pct",
            "/proc/pressure/cpu",
            "PSI not available",
        ),
    );
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.steal_pct",
            S,
            "steal",
            steal_pct,
            "pct",
            "/proc/stat",
            "no /proc/stat delta",
        ),
    );
    // CPUs report their errors in the kernel log: machine checks, lockups, RCU stalls.
    let cpu_errors = kernel_log.map(|k| {
        ["hardware error", "CPU lockup", "RCU stall"]
            .iter()
            .map(|c| k.counts.get(*c).copied().unwrap_or(0))
            .sum::<u32>() as f64
    });
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.kernel_errors",
            E,
            "MCE/lockups",
            cpu_errors,
            "count",
            "/dev/kmsg",
            "kernel log not readable",
        ),
    );
    cpu
}

// ---- thresholds ----------------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "cpu.runnable_per_cpu", warn: 1.0, crit: 2.0, unit: "ratio", why: "vmstat r consistently > CPU count = CPU saturation (S0:430); r is sampled every 100 ms and must exceed the CPUs in at least half the samples" },
    Threshold { id: "cpu.runnable_samples_above_pct", warn: 50.0, crit: 50.0, unit: "pct", why: "companion of the run-queue rule: 'consistently' more runnable tasks than CPUs (S0:430) is in at least half of the 100 ms samples, so one burst in a quiet window is not saturation" },
    Threshold { id: "cpu.own_cgroup_quota_used_pct", warn: 90.0, crit: 90.0, unit: "pct", why: "companion of the run-queue rule: procs_running counts the whole host; under a CPU quota, the host's runnable tasks are ours to worry about only when our own cgroup uses (nearly) all of its quota" },
    Threshold { id: "cpu.load1_per_cpu", warn: 1.0, crit: 2.0, unit: "ratio", why: "load average > CPU count = saturation somewhere (S0:448); only used with the run queue or D-state tasks to say which" },
    Threshold { id: "cpu.hottest_cpu_busy_pct", warn: 95.0, crit: 99.0, unit: "pct", why: "one core ~100% while others idle = single-threaded bottleneck (S0:458); others' median must be <= 30%" },
    Threshold { id: "cpu.single_thread_process_pct", warn: 90.0, crit: 99.0, unit: "pct", why: "one core ~100% = single-threaded bottleneck (S0:458): a process with one thread at ~100% of a CPU cannot go faster whatever the other CPUs do; 90% leaves room for a busy box taking its share (a pegged thread beside others' work measured 95%), 99% is a thread that never waits" },
    Threshold { id: "cpu.hottest_cpu_soft_pct", warn: 50.0, crit: 50.0, unit: "pct", why: "companion of the single-core rule, compared with >: a pegged CPU spending more than half its time in softirq is interrupt/network processing pinned to one CPU (RSS/RPS), not a process" },
    Threshold { id: "cpu.others_median_busy_pct", warn: 30.0, crit: 30.0, unit: "pct", why: "companion of the single-core rule: the other CPUs are mostly idle" },
    Threshold { id: "cpu.iowait_pct", warn: 20.0, crit: 50.0, unit: "pct", why: "high %iowait = the problem is I/O, not CPU (S0:429); the seeds give no number, 20% is where iostat users start looking" },
    Threshold { id: "cpu.system_pct", warn: 30.0, crit: 60.0, unit: "pct", why: "sy high = kernel/syscall overhead (S0:844); no number in the seeds" },
    Threshold { id: "cpu.steal_pct", warn: 10.0, crit: 25.0, unit: "pct", why: "not in the seeds; 10% steal is the common cloud alerting level" },
    Threshold { id: "cpu.busy_pct_low", warn: 50.0, crit: 50.0, unit: "pct", why: "companion of the D-state rule: CPUs mostly idle" },
    Threshold { id: "cpu.softirq_cpu_soft_pct", warn: 20.0, crit: 50.0, unit: "pct", why: "not in the seeds: a CPU spending a fifth of its time in softirq is visibly taken from applications; half is a saturated core (mpstat %soft)" },
    Threshold { id: "cpu.softirq_one_cpu_share_pct", warn: 90.0, crit: 90.0, unit: "pct", why: "companion: 90% of a softirq type on one CPU means one queue/IRQ (NET_RX all on one CPU, S0 network tuning); below that the work is spread" },
];

// ---- rules ---------------------------------------------------------------------------------

/// What the CPU rules read: the CPU rows and the other resources they name or weigh (the
/// run queue, load, PSI, disks, cgroups, the busiest processes).
pub struct Inputs<'a> {
    /// mpstat: `all` first, then each CPU.
    pub cpus: &'a [CpuRow],
    pub load: Option<&'a LoadSection>,
    /// vmstat `r` (runnable tasks), the window's average.
    pub runnable_avg: Option<f64>,
    /// Runnable-task samples, for "consistently above" (excluding the reader itself).
    pub runnable_samples: &'a [u32],
    pub effective_cpus: f64,
    /// The cgroup we run in, when we know it.
    pub own_cgroup: Option<&'a str>,
    pub cgroups: &'a [CgroupRow],
    /// The top processes by CPU (pidstat), busiest first.
    pub top_cpu: &'a [ProcRow],
    /// Processes page-faulting through swap ([`super::memory::page_faulting`]): a CPU
    /// finding about one of them is a consequence (info).
    pub faulting: &'a [i32],
    pub pressure: &'a [PsiRow],
    pub disks: &'a [DiskRow],
    pub io_limited: &'a [IoCgroupRow],
}

fn top_procs(top_cpu: &[ProcRow], n: usize) -> String {
    top_cpu
        .iter()
        .take(n)
        .map(|p| format!("{} (pid {}) {:.0}%", p.comm, p.pid, p.cpu_pct))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Severity and summary suffix of a CPU finding about `pid`: info when the process is
/// page-faulting (see [`super::memory::page_faulting`]).
fn consequence(faulting: &[i32], pid: Option<i32>, sev: Severity) -> (Severity, &'static str) {
    match pid {
        Some(p) if faulting.contains(&p) => (
            Severity::Info,
            " (a consequence of the page faulting above)",
        ),
        _ => (sev, ""),
    }
}

/// The CPU findings: run queue, one pegged CPU, kernel time, steal, cgroup throttling, I/O
/// wait.
pub fn rules(i: &Inputs, out: &mut Vec<Finding>) {
    let eff = i.effective_cpus.max(0.01);
    let all = i.cpus.first();

    // Run queue: consistently more runnable tasks than CPUs.
    if let Some(avg) = i.runnable_avg {
        let per_cpu = avg / eff;
        let above = i
            .runnable_samples
            .iter()
            .filter(|&&r| r as f64 > eff)
            .count();
        let n = i.runnable_samples.len();
        let consistent = n > 0
            && above as f64 * 100.0 / n as f64 >= threshold("cpu.runnable_samples_above_pct").warn;
        // procs_running is host-wide. Under a CPU quota, runnable host tasks are only ours to
        // worry about when our cgroup really uses (nearly) all of its quota.
        let own = i
            .own_cgroup
            .and_then(|p| i.cgroups.iter().find(|c| c.path == p));
        let quota_full = match own.and_then(|c| c.cpu_used_cpus.zip(c.cpu_limit_cpus)) {
            Some((used, lim)) => {
                used >= threshold("cpu.own_cgroup_quota_used_pct").warn / 100.0 * lim
            }
            None => true,
        };
        let consistent = consistent && quota_full;
        if let (Some((sev, t)), true) = (level("cpu.runnable_per_cpu", per_cpu), consistent) {
            let load = i
                .load
                .map(|l| format!(", load1 {:.2}", l.load1))
                .unwrap_or_default();
            let top = top_procs(i.top_cpu, 3);
            // In a CPU-limited cgroup, the host's busy share says nothing: use the cgroup's.
            let busy = match own.and_then(|c| c.cpu_used_cpus.zip(c.cpu_limit_cpus)) {
                Some((used, lim)) => {
                    format!("cgroup using {used:.2} of its {} CPUs, ", fmt_cpus(lim))
                }
                None => all
                    .map(|a| format!("CPUs {:.0}% busy, ", a.busy_pct))
                    .unwrap_or_default(),
            };
            let summary = format!(
                "CPU saturated: {busy}{avg:.1} runnable tasks on {} CPUs (run queue {:.1} per CPU{load}){}",
                fmt_cpus(eff),
                per_cpu,
                if top.is_empty() { String::new() } else { format!("; top: {top}") }
            );
            let e = vec![ev("cpu.runnable_per_cpu", per_cpu, ">=", t.warn, "ratio")];
            let top = i.top_cpu.first();
            let mut next = vec!["triage cpu".to_string()];
            if let Some(p) = top {
                next.push(format!("pidstat -t -p {} 1", p.pid));
            }
            next.push(top.map_or("triage profile".into(), |p| {
                format!("triage profile -p {}", p.pid)
            }));
            // The busiest process, and the cgroup whose quota is the CPU count, when one is.
            let mut subject = top.map(ProcRow::subject).unwrap_or_default();
            subject.cgroup = own
                .filter(|c| c.cpu_limit_cpus.is_some())
                .map(|c| c.path.clone());
            out.push(
                finding("cpu.saturation.runqueue", sev, "cpu", summary, e, next)
                    .with_subject(subject),
            );
        }
    }

    single_cpu_rule(i, out);

    if let Some(a) = all {
        let sys = a.sys_pct + a.irq_pct + a.soft_pct;
        if let Some((sev, t)) = level("cpu.system_pct", sys) {
            let top = i
                .top_cpu
                .iter()
                .max_by(|x, y| x.sys_pct.total_cmp(&y.sys_pct))
                .filter(|p| p.sys_pct > 0.0);
            let who = top
                .map(|p| {
                    format!(
                        "; most system time: {} (pid {}) {:.0}% sys",
                        p.comm, p.pid, p.sys_pct
                    )
                })
                .unwrap_or_default();
            let mut next = vec!["triage syscalls".to_string()];
            if let Some(p) = top {
                next[0] = format!("triage syscalls --pid {}", p.pid);
            }
            let (sev, why) = consequence(i.faulting, top.map(|p| p.pid), sev);
            out.push(
                finding(
                    "cpu.utilization.system_time",
                    sev,
                    "cpu",
                    format!("High kernel time: {sys:.0}% of CPU in system/irq/softirq{who}{why}"),
                    vec![ev("cpu.system_pct", sys, ">=", t.warn, "pct")],
                    next,
                )
                .with_subject(top.map(ProcRow::subject).unwrap_or_default()),
            );
        }
        if let Some((sev, t)) = level("cpu.steal_pct", a.steal_pct) {
            out.push(finding(
                "cpu.saturation.steal",
                sev,
                "cpu",
                format!(
                    "Hypervisor steal {:.0}%: this VM waits for physical CPUs held by other guests",
                    a.steal_pct
                ),
                vec![ev("cpu.steal_pct", a.steal_pct, ">=", t.warn, "pct")],
                vec![
                    "mpstat -P ALL 1".into(),
                    "ask the provider / move to a less contended host".into(),
                ],
            ));
        }
    }

    // cgroup CPU throttling.
    let host_idle = all.map(|a| a.idle_pct).unwrap_or(0.0);
    throttle_rules(i.cgroups, host_idle, out);

    io_wait_rule(i, out);
}

/// One CPU held at ~100%: by a single-threaded process (it cannot go faster whatever the other
/// CPUs do: the classic "can't scale" bottleneck), or, with no such process, one CPU pegged
/// while the others idle (softirq pinned to one CPU, or a thread we could not see).
fn single_cpu_rule(i: &Inputs, out: &mut Vec<Finding>) {
    if i.cpus.len() <= 2 {
        return;
    }
    let per: Vec<&CpuRow> = i.cpus.iter().skip(1).collect();
    let Some(hot) = per.iter().max_by(|a, b| a.busy_pct.total_cmp(&b.busy_pct)) else {
        return;
    };
    let others: Vec<f64> = per
        .iter()
        .filter(|c| c.cpu != hot.cpu)
        .map(|c| c.busy_pct)
        .collect();
    let med = median(others).unwrap_or(100.0);
    let lim = threshold("cpu.others_median_busy_pct").warn;
    let cpu_num = hot.cpu.parse::<u32>().ok();

    // A single-threaded process at ~100% of one CPU.
    let pegger = i
        .top_cpu
        .iter()
        .filter(|p| p.threads == 1)
        .max_by(|a, b| a.cpu_pct.total_cmp(&b.cpu_pct).then(b.pid.cmp(&a.pid)));
    if let Some(p) = pegger {
        if let Some((sev, t)) = level("cpu.single_thread_process_pct", p.cpu_pct) {
            // The CPU it holds: where it ran last, when that CPU is pegged too (a process that
            // migrates spreads its 100% over several CPUs); else the hottest, when pegged.
            let busy_of = |n: u32| {
                per.iter()
                    .find(|c| c.cpu.parse::<u32>().ok() == Some(n))
                    .map(|c| c.busy_pct)
            };
            let on = match p.last_cpu {
                Some(n) => busy_of(n).filter(|b| *b >= t.warn).map(|_| n),
                None => (hot.busy_pct >= t.warn).then_some(cpu_num).flatten(),
            };
            let on_busy = on.and_then(busy_of).unwrap_or(hot.busy_pct);
            let (sev, why) = consequence(i.faulting, Some(p.pid), sev);
            let where_ = on
                .map(|c| format!(" (CPU{c} {on_busy:.0}% busy)"))
                .unwrap_or_else(|| {
                    format!(
                        " (moving between CPUs; the busiest is {:.0}% busy)",
                        hot.busy_pct
                    )
                });
            let mut subject = p.subject();
            subject.cpu = on;
            out.push(
                finding(
                    "cpu.utilization.single_cpu",
                    sev,
                    "cpu",
                    format!(
                        "{} (pid {}) holds one CPU at {:.0}% with a single thread{where_}: it cannot go faster by adding CPUs; {:.0}% user, {:.0}% system{why}",
                        p.comm, p.pid, p.cpu_pct, p.usr_pct, p.sys_pct
                    ),
                    vec![
                        ev("cpu.single_thread_process_pct", p.cpu_pct, ">=", t.warn, "pct"),
                        ev("cpu.hottest_cpu_busy_pct", on_busy, ">=", 0.0, "pct"),
                    ],
                    vec![
                        format!("triage profile -p {}", p.pid),
                        format!("triage cpu --pid {}", p.pid),
                        "mpstat -P ALL 1".into(),
                    ],
                )
                .with_subject(subject),
            );
            return;
        }
    }

    // One CPU pegged while the others idle, with no single-threaded process to blame.
    if let (Some((sev, t)), true) = (level("cpu.hottest_cpu_busy_pct", hot.busy_pct), med <= lim) {
        let top = i.top_cpu.first();
        let softirq = hot.soft_pct > threshold("cpu.hottest_cpu_soft_pct").warn;
        let what = if softirq {
            " in softirq: interrupt/network processing pinned to one CPU (check RSS/RPS)"
                .to_string()
        } else {
            top.map(|p| {
                format!(
                    ": single-threaded bottleneck? top: {} (pid {}) {:.0}%",
                    p.comm, p.pid, p.cpu_pct
                )
            })
            .unwrap_or_default()
        };
        let mut subject = Subject {
            cpu: cpu_num,
            ..Default::default()
        };
        let mut sev = sev;
        let mut why = "";
        if !softirq {
            if let Some(p) = top {
                (sev, why) = consequence(i.faulting, Some(p.pid), sev);
                subject.pid = Some(p.pid);
                subject.comm = Some(p.comm.clone());
            }
        }
        out.push(
            finding(
                "cpu.utilization.single_cpu",
                sev,
                "cpu",
                format!(
                    "CPU{} at {:.0}% while the others' median is {med:.0}%{what}{why}",
                    hot.cpu, hot.busy_pct
                ),
                vec![
                    ev(
                        "cpu.hottest_cpu_busy_pct",
                        hot.busy_pct,
                        ">=",
                        t.warn,
                        "pct",
                    ),
                    ev("cpu.others_median_busy_pct", med, "<=", lim, "pct"),
                ],
                vec![
                    "triage cpu".into(),
                    top.map_or("triage profile".into(), |p| {
                        format!("triage profile -p {}", p.pid)
                    }),
                    "mpstat -P ALL 1".into(),
                ],
            )
            .with_subject(subject),
        );
    }
}

/// Tasks waiting on I/O: iowait (counted only while a CPU is otherwise idle, so a busy box hides
/// it) or the io pressure stall share. With the disks idle, the wait is not the disk's: a
/// cgroup at its I/O limit (named), or a device outside the disk table (NFS, a slow path).
fn io_wait_rule(i: &Inputs, out: &mut Vec<Finding>) {
    let iowait = i.cpus.first().map(|a| a.iowait_pct).unwrap_or(0.0);
    let psi = i
        .pressure
        .iter()
        .find(|p| p.resource == "io")
        .and_then(|p| p.some_pct)
        .unwrap_or(0.0);
    let busiest = i
        .disks
        .iter()
        .filter(|d| d.caveat.as_deref().is_none_or(|c| !c.starts_with("memory")))
        .max_by(|a, b| a.util_pct.total_cmp(&b.util_pct));
    let idle_below = threshold("disk.util_pct_idle").warn;
    let disk_idle = busiest.is_none_or(|d| d.util_pct < idle_below);
    let capped = i
        .io_limited
        .iter()
        .filter(|c| c.limit_used_pct.is_some())
        .max_by(|a, b| {
            a.limit_used_pct
                .unwrap_or(0.0)
                .total_cmp(&b.limit_used_pct.unwrap_or(0.0))
        })
        .filter(|c| c.limit_used_pct.unwrap_or(0.0) >= threshold("cgroup.io_limit_used_pct").warn);
    let by_iowait = level("cpu.iowait_pct", iowait);
    // The stall share alone speaks only when a cgroup limit explains it and the disk is idle.
    let by_psi = level("io.stall_pct", psi).filter(|_| disk_idle && capped.is_some());
    let Some((sev, e)) = by_iowait
        .map(|(sev, t)| (sev, ev("cpu.iowait_pct", iowait, ">=", t.warn, "pct")))
        .or_else(|| by_psi.map(|(sev, t)| (sev, ev("io.stall_pct", psi, ">=", t.warn, "pct"))))
    else {
        return;
    };
    let mut evidence = vec![e];
    let disk = busiest
        .map(|d| {
            format!(
                "busiest disk {} {:.0}% busy, aqu-sz {:.1}",
                d.device, d.util_pct, d.aqu_sz
            )
        })
        .unwrap_or_else(|| "no disk I/O".into());
    let lead = if by_iowait.is_some() {
        format!("CPUs {iowait:.0}% in iowait")
    } else {
        format!("tasks stalled on I/O {psi:.0}% of the window (PSI)")
    };
    // The disk is the subject only when it is what the tasks wait for.
    let mut subject = Subject {
        device: busiest.filter(|_| !disk_idle).map(|d| d.device.clone()),
        ..Default::default()
    };
    let mut next = vec!["triage disk".to_string(), "iostat -xz 1".into()];
    let summary = if !disk_idle {
        format!("{lead}: the wait is on I/O, not CPU; {disk}")
    } else {
        evidence.push(ev(
            "disk.util_pct",
            busiest.map(|d| d.util_pct).unwrap_or(0.0),
            "<",
            idle_below,
            "pct",
        ));
        match capped {
            Some(c) => {
                let pct = c.limit_used_pct.unwrap_or(0.0);
                evidence.push(ev(
                    "cgroup.io_limit_used_pct",
                    pct,
                    ">=",
                    threshold("cgroup.io_limit_used_pct").warn,
                    "pct",
                ));
                subject.cgroup = Some(c.path.clone());
                next.insert(0, format!("triage disk --cgroup {}", c.path));
                format!(
                    "{lead}: tasks wait on I/O while the disk is idle ({disk}): cgroup {} does I/O at {pct:.0}% of its limit `{}`; the cgroup's I/O throttle, not the disk, is the cap",
                    c.path,
                    c.busiest_limit.as_deref().unwrap_or("?")
                )
            }
            None => format!(
                "{lead}: tasks wait on I/O while the disk is idle ({disk}): a cgroup I/O limit, a network filesystem or a device outside this table"
            ),
        }
    };
    out.push(
        finding("cpu.saturation.iowait", sev, "cpu", summary, evidence, next).with_subject(subject),
    );
}

// ---- columns -------------------------------------------------------------------------------

/// mpstat -P ALL's columns.
pub const COLUMNS: &[Column<CpuRow>] = &[
    Column::left("CPU", |c| c.cpu.clone()),
    Column::right("%usr", |c| f1(c.usr_pct)),
    Column::right("%nice", |c| f1(c.nice_pct)),
    Column::right("%sys", |c| f1(c.sys_pct)),
    Column::right("%iowait", |c| f1(c.iowait_pct)),
    Column::right("%irq", |c| f1(c.irq_pct)),
    Column::right("%soft", |c| f1(c.soft_pct)),
    Column::right("%steal", |c| f1(c.steal_pct)),
    Column::right("%guest", |c| f1(c.guest_pct)),
    Column::right("%idle", |c| f1(c.idle_pct)),
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

    fn inputs<'a>(cpus: &'a [CpuRow], cgroups: &'a [CgroupRow], samples: &'a [u32]) -> Inputs<'a> {
        Inputs {
            cpus,
            load: None,
            runnable_avg: Some(6.0),
            runnable_samples: samples,
            effective_cpus: 2.0,
            own_cgroup: Some("/app"),
            cgroups,
            top_cpu: &[],
            faulting: &[],
            pressure: &[],
            disks: &[],
            io_limited: &[],
        }
    }

    /// The CPU rules judged on their own (no report): 6 runnable tasks on a 2-CPU quota are
    /// ours to worry about only when our cgroup uses 90% of the quota
    /// (`cpu.own_cgroup_quota_used_pct`) and the run queue is above the CPUs in half the
    /// samples; then the cgroup is the subject.
    #[test]
    fn the_run_queue_under_a_quota_counts_only_when_the_quota_is_nearly_used() {
        let cpus = [CpuRow {
            cpu: "all".into(),
            busy_pct: 50.0,
            idle_pct: 50.0,
            ..Default::default()
        }];
        let own = |used: f64| CgroupRow {
            path: "/app".into(),
            cpu_limit_cpus: Some(2.0),
            cpu_used_cpus: Some(used),
            ..Default::default()
        };
        let run_with = |used: f64, samples: &[u32]| {
            let cg = [own(used)];
            let mut out = Vec::new();
            rules(&inputs(&cpus, &cg, samples), &mut out);
            out
        };
        let run = |used: f64| run_with(used, &[6, 6, 6, 6]);
        let f = run(1.8);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].id, "cpu.saturation.runqueue");
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].evidence[0].metric, "cpu.runnable_per_cpu");
        assert_eq!(f[0].evidence[0].value, 3.0);
        assert_eq!(f[0].subject.cgroup.as_deref(), Some("/app"));
        assert!(run(1.79).is_empty());
        // Consistently: above the CPUs in at least half the samples
        // (`cpu.runnable_samples_above_pct`).
        assert_eq!(run_with(1.8, &[6, 6, 1, 1]).len(), 1);
        assert!(run_with(1.8, &[6, 1, 1, 1]).is_empty());
    }

    /// The USE metrics from the CPU rows, the run queue and the kernel log's CPU errors.
    #[test]
    fn use_metrics_of_the_cpu() {
        let cpus = [
            CpuRow {
                cpu: "all".into(),
                busy_pct: 40.0,
                ..Default::default()
            },
            CpuRow {
                cpu: "0".into(),
                busy_pct: 70.0,
                ..Default::default()
            },
            CpuRow {
                cpu: "1".into(),
                busy_pct: 10.0,
                ..Default::default()
            },
        ];
        let r = use_resource(&cpus, None, &[], None, Some(3.0), Some(1.5), 2.0);
        let v = |id: &str| r.metrics.iter().find(|m| m.id == id).and_then(|m| m.value);
        assert_eq!(r.name, "cpu");
        assert_eq!(v("cpu.busy_pct"), Some(40.0));
        assert_eq!(v("cpu.hottest_cpu_busy_pct"), Some(70.0));
        assert_eq!(v("cpu.runnable_per_cpu"), Some(1.5));
        assert_eq!(v("cpu.steal_pct"), Some(1.5));
        assert_eq!(v("cpu.load1_per_cpu"), None);
        assert_eq!(v("cpu.kernel_errors"), None);
    }
}
