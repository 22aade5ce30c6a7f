//! USE rules: from the report's sections to ranked findings.
//!
//! Thresholds are data ([`THRESHOLDS`]), so every finding's evidence quotes the exact value it
//! crossed. Where the seed documents disagree, the choice and the reason are in `why`. A healthy
//! idle machine must produce no warning: every rule needs real evidence of a fault, not the
//! mere presence of activity.

pub mod catalog;
pub mod deep;
pub mod io_sync;
pub mod offcpu;
pub mod procs_storm;
pub mod profile;
pub mod qdisc;
mod report;
pub mod syscalls;

use crate::model::report::{Finding, Host, Severity, Subject};
use crate::model::sections::*;
use crate::model::SatSum;
use crate::num::median;
use crate::resources::kernel_log::{is_oom, klog_when};
pub use crate::text::human_bytes;
pub use report::{build_report, Analysis};

pub use crate::resources::rule::{ev, finding, level, threshold, Threshold, THRESHOLDS};

fn fmt_cpus(n: f64) -> String {
    if (n - n.round()).abs() < 0.01 {
        format!("{}", n.round() as i64)
    } else {
        format!("{n:.2}")
    }
}

fn top_procs(s: &Sections, n: usize) -> String {
    let Some(p) = &s.processes else {
        return String::new();
    };
    p.top_cpu
        .iter()
        .take(n)
        .map(|p| format!("{} (pid {}) {:.0}%", p.comm, p.pid, p.cpu_pct))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything the rules look at besides the sections.
pub struct Context<'a> {
    pub host: &'a Host,
    pub elapsed_s: f64,
    /// Runnable-task samples, for "consistently above" (excluding the reader itself).
    pub runnable_samples: &'a [u32],
}

pub fn findings(s: &Sections, cx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    memory_rules(s, &mut out);
    // The memory rules run first: a CPU finding about a process that is page-faulting through
    // swap is composed as a consequence of that (info), not as a second cause.
    let faulting = page_faulting(s, &out);
    cpu_rules(s, cx, &faulting, &mut out);
    io_wait_rule(s, &mut out);
    disk_rules(s, &mut out);
    net_rules(s, &mut out);
    qdisc::rules(s, &mut out);
    software_rules(s, &mut out);
    crate::resources::kernel_log::rules(s.kernel_log.as_ref(), &mut out);
    procs_storm::rules(s, cx, &mut out);
    io_sync::rules(s, &mut out);
    rank(&mut out);
    out
}

/// A process that is page-faulting through swap spends its time in the kernel, often on one
/// CPU: the high system time and the pegged CPU are symptoms of the memory problem, not causes.
/// The pids of such processes, when a memory-fault finding was made (empty otherwise); the CPU
/// rules keep their findings about these visible, as info, and say why.
fn page_faulting(s: &Sections, out: &[Finding]) -> Vec<i32> {
    let memory_fault = out
        .iter()
        .any(|f| f.id == "memory.saturation.swapping" || f.id == "memory.saturation.major_faults");
    if !memory_fault {
        return Vec::new();
    }
    s.processes
        .iter()
        .flat_map(|p| p.top_cpu.iter())
        .filter(|p| p.major_faults_per_s > 0.0)
        .map(|p| p.pid)
        .collect()
}

/// Severity and summary suffix of a CPU finding about `pid`: info when the process is
/// page-faulting (see [`page_faulting`]).
fn consequence(faulting: &[i32], pid: Option<i32>, sev: Severity) -> (Severity, &'static str) {
    match pid {
        Some(p) if faulting.contains(&p) => (
            Severity::Info,
            " (a consequence of the page faulting above)",
        ),
        _ => (sev, ""),
    }
}

fn proc_subject(p: &ProcRow) -> Subject {
    Subject::process(p.pid, &p.comm)
}

fn cgroup_subject(path: &str) -> Subject {
    Subject {
        cgroup: Some(path.to_string()),
        ..Default::default()
    }
}

/// Most severe first; within a severity, furthest past its threshold; then by id for stability.
pub fn rank(f: &mut [Finding]) {
    f.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.score.total_cmp(&a.score))
            .then(a.id.cmp(&b.id))
    });
}

fn cpu_rules(s: &Sections, cx: &Context, faulting: &[i32], out: &mut Vec<Finding>) {
    let eff = cx.host.effective_cpus.max(0.01);
    let all = s.cpus.first();
    let vm = s.vmstat.as_ref();

    // Run queue: consistently more runnable tasks than CPUs.
    if let Some(avg) = vm.and_then(|v| v.runnable_avg) {
        let per_cpu = avg / eff;
        let above = cx
            .runnable_samples
            .iter()
            .filter(|&&r| r as f64 > eff)
            .count();
        let consistent = !cx.runnable_samples.is_empty() && above * 2 >= cx.runnable_samples.len();
        // procs_running is host-wide. Under a CPU quota, runnable host tasks are only ours to
        // worry about when our cgroup really uses (nearly) all of its quota.
        let own = cx
            .host
            .cgroup
            .as_deref()
            .and_then(|p| s.cgroups.iter().find(|c| c.path == p));
        let quota_full = match own.and_then(|c| c.cpu_used_cpus.zip(c.cpu_limit_cpus)) {
            Some((used, lim)) => used >= 0.9 * lim,
            None => true,
        };
        let consistent = consistent && quota_full;
        if let (Some((sev, t)), true) = (level("cpu.runnable_per_cpu", per_cpu), consistent) {
            let load = s
                .load
                .as_ref()
                .map(|l| format!(", load1 {:.2}", l.load1))
                .unwrap_or_default();
            let top = top_procs(s, 3);
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
            let top = s.processes.as_ref().and_then(|p| p.top_cpu.first());
            let mut next = vec!["triage cpu".to_string()];
            if let Some(p) = top {
                next.push(format!("pidstat -t -p {} 1", p.pid));
            }
            next.push(top.map_or("triage profile".into(), |p| {
                format!("triage profile -p {}", p.pid)
            }));
            // The busiest process, and the cgroup whose quota is the CPU count, when one is.
            let mut subject = top.map(proc_subject).unwrap_or_default();
            subject.cgroup = own
                .filter(|c| c.cpu_limit_cpus.is_some())
                .map(|c| c.path.clone());
            out.push(
                finding("cpu.saturation.runqueue", sev, "cpu", summary, e, next)
                    .with_subject(subject),
            );
        }
    }

    single_cpu_rule(s, faulting, out);

    if let Some(a) = all {
        let sys = a.sys_pct + a.irq_pct + a.soft_pct;
        if let Some((sev, t)) = level("cpu.system_pct", sys) {
            let top = s
                .processes
                .as_ref()
                .and_then(|p| {
                    p.top_cpu
                        .iter()
                        .max_by(|x, y| x.sys_pct.total_cmp(&y.sys_pct))
                })
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
            let (sev, why) = consequence(faulting, top.map(|p| p.pid), sev);
            out.push(
                finding(
                    "cpu.utilization.system_time",
                    sev,
                    "cpu",
                    format!("High kernel time: {sys:.0}% of CPU in system/irq/softirq{who}{why}"),
                    vec![ev("cpu.system_pct", sys, ">=", t.warn, "pct")],
                    next,
                )
                .with_subject(top.map(proc_subject).unwrap_or_default()),
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
    for c in &s.cgroups {
        let Some(p) = c.throttled_periods_pct else {
            continue;
        };
        if let Some((sev, t)) = level("cgroup.throttled_periods_pct", p) {
            let quota = c
                .cpu_limit_cpus
                .map(|q| format!(" at a {}-CPU quota", fmt_cpus(q)))
                .unwrap_or_default();
            let used = c
                .cpu_used_cpus
                .map(|u| format!(", using {u:.2} CPUs"))
                .unwrap_or_default();
            let ms = c
                .throttled_ms_per_s
                .map(|m| format!(" ({m:.0} ms/s throttled)"))
                .unwrap_or_default();
            let cap = if host_idle >= 20.0 {
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
                .with_subject(cgroup_subject(&c.path)),
            );
        }
    }

    // High load with idle CPUs and D-state tasks: I/O or NFS stall.
    if let (Some(l), Some(a), Some(v)) = (&s.load, all, vm) {
        let blocked = v.blocked_avg.unwrap_or(0.0);
        let low = threshold("cpu.busy_pct_low").warn;
        if l.load1_per_cpu >= threshold("cpu.load1_per_cpu").warn && a.busy_pct < low {
            if let Some((sev, t)) = level("tasks.blocked_avg", blocked) {
                let d = s.processes.as_ref().and_then(|p| p.d_state.first());
                let who = d
                    .map(|d| {
                        format!(
                            "; e.g. {} (pid {}) in {}",
                            d.comm,
                            d.tid,
                            d.wchan.as_deref().unwrap_or("?")
                        )
                    })
                    .unwrap_or_default();
                out.push(finding(
                    "cpu.saturation.dstate_load",
                    sev,
                    "tasks",
                    format!(
                        "Load {:.1} on {} CPUs but CPUs {:.0}% busy: {blocked:.1} tasks blocked in D state (I/O or NFS stall){who}",
                        l.load1,
                        fmt_cpus(l.effective_cpus),
                        a.busy_pct
                    ),
                    vec![
                        ev("tasks.blocked_avg", blocked, ">=", t.warn, "count"),
                        ev("cpu.load1_per_cpu", l.load1_per_cpu, ">=", threshold("cpu.load1_per_cpu").warn, "ratio"),
                        ev("cpu.busy_pct", a.busy_pct, "<", low, "pct"),
                    ],
                    vec!["triage disk".into(), "triage offcpu".into(), "cat /proc/PID/stack".into()],
                ).with_subject(d.map(|d| Subject::process(d.pid, &d.comm)).unwrap_or_default()));
            }
        }
    }
}

/// One CPU held at ~100%: by a single-threaded process (it cannot go faster whatever the other
/// CPUs do: the classic "can't scale" bottleneck), or, with no such process, one CPU pegged
/// while the others idle (softirq pinned to one CPU, or a thread we could not see).
fn single_cpu_rule(s: &Sections, faulting: &[i32], out: &mut Vec<Finding>) {
    if s.cpus.len() <= 2 {
        return;
    }
    let per: Vec<&CpuRow> = s.cpus.iter().skip(1).collect();
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
    let pegger = s
        .processes
        .iter()
        .flat_map(|p| p.top_cpu.iter())
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
            let (sev, why) = consequence(faulting, Some(p.pid), sev);
            let where_ = on
                .map(|c| format!(" (CPU{c} {on_busy:.0}% busy)"))
                .unwrap_or_else(|| {
                    format!(
                        " (moving between CPUs; the busiest is {:.0}% busy)",
                        hot.busy_pct
                    )
                });
            let mut subject = proc_subject(p);
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
        let top = s.processes.as_ref().and_then(|p| p.top_cpu.first());
        let softirq = hot.soft_pct > 50.0;
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
                (sev, why) = consequence(faulting, Some(p.pid), sev);
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

fn memory_rules(s: &Sections, out: &mut Vec<Finding>) {
    let vm = s.vmstat.as_ref();
    if let Some(m) = &s.memory {
        if let Some(avail) = m.available_pct {
            let used = 100.0 - avail;
            if let Some((sev, t)) = level("memory.used_pct", used) {
                let top = s.processes.as_ref().and_then(|p| p.top_rss.first());
                let who = top
                    .map(|p| {
                        format!(
                            "; largest: {} (pid {}) {}",
                            p.comm,
                            p.pid,
                            human_bytes(p.rss_bytes)
                        )
                    })
                    .unwrap_or_default();
                out.push(
                    finding(
                        "memory.utilization.available_low",
                        sev,
                        "memory",
                        format!(
                            "Low memory: only {} available of {} ({avail:.0}%){who}",
                            human_bytes(m.available_bytes.unwrap_or(0)),
                            human_bytes(m.total_bytes)
                        ),
                        vec![ev("memory.used_pct", used, ">=", t.warn, "pct")],
                        vec!["triage mem".into(), "ps aux --sort=-rss | head".into()],
                    )
                    .with_subject(top.map(proc_subject).unwrap_or_default()),
                );
            }
        }
    }
    // Swap space nearly full: the reserve before the OOM killer is almost gone.
    if let Some(m) = s.memory.as_ref().filter(|m| m.swap_total_bytes > 0) {
        let used = m.swap_used_bytes as f64 * 100.0 / m.swap_total_bytes as f64;
        if let Some((sev, t)) = level("memory.swap_used_pct", used) {
            // Only critical while pages still move: a full but quiet swap is a warning. With
            // RAM to spare it holds cold pages the kernel chose to keep out: context (info).
            let moving = vm.is_some_and(|v| {
                v.swap_in_kb_per_s.unwrap_or(0.0) + v.swap_out_kb_per_s.unwrap_or(0.0) > 0.0
            });
            let ram_short = m
                .available_pct
                .is_some_and(|a| 100.0 - a >= threshold("memory.used_pct").warn);
            let (sev, tail) = match (ram_short, moving) {
                (false, _) => (
                    Severity::Info,
                    "RAM is not short: cold pages, not a shortage".to_string(),
                ),
                (true, true) => (sev, "pages still move: the OOM killer is next".to_string()),
                (true, false) => (
                    Severity::Warning,
                    "RAM is short too: the next burst has little left before the OOM killer"
                        .to_string(),
                ),
            };
            out.push(finding(
                "swap.utilization.space",
                sev,
                "swap",
                format!(
                    "Swap {used:.0}% full: {} of {} used, {} available in RAM; {tail}",
                    human_bytes(m.swap_used_bytes),
                    human_bytes(m.swap_total_bytes),
                    human_bytes(m.available_bytes.unwrap_or(0))
                ),
                vec![ev("memory.swap_used_pct", used, ">=", t.warn, "pct")],
                vec![
                    "triage mem".into(),
                    "grep VmSwap /proc/*/status | sort -k2 -n | tail".into(),
                ],
            ));
        }
    }
    if let Some(v) = vm {
        let si = v.swap_in_kb_per_s.unwrap_or(0.0);
        let so = v.swap_out_kb_per_s.unwrap_or(0.0);
        if let Some((sev, t)) = level("memory.swap_kb_per_s", si + so) {
            let cg = s
                .cgroups
                .iter()
                .filter(|c| {
                    c.memory_used_pct.unwrap_or(0.0) >= 80.0 || c.swap_bytes.unwrap_or(0) > 0
                })
                .max_by(|a, b| {
                    a.memory_used_pct
                        .unwrap_or(0.0)
                        .total_cmp(&b.memory_used_pct.unwrap_or(0.0))
                });
            let cgs = cg
                .map(|c| {
                    format!(
                        "; cgroup {} at {} of its {} limit",
                        c.path,
                        human_bytes(c.memory_bytes.unwrap_or(0)),
                        human_bytes(c.memory_limit_bytes.unwrap_or(0))
                    )
                })
                .unwrap_or_default();
            let majf = v
                .major_faults_per_s
                .map(|m| format!(", {m:.0} major faults/s"))
                .unwrap_or_default();
            let top = s.processes.as_ref().and_then(|p| {
                // The process faulting hardest, not the first busy one that faults at all.
                p.top_cpu
                    .iter()
                    .chain(p.top_rss.iter())
                    .filter(|p| p.major_faults_per_s > 0.0)
                    .max_by(|a, b| a.major_faults_per_s.total_cmp(&b.major_faults_per_s))
            });
            let who = top
                .map(|p| {
                    format!(
                        "; faulting: {} (pid {}) {:.0}/s",
                        p.comm, p.pid, p.major_faults_per_s
                    )
                })
                .unwrap_or_default();
            out.push(
                finding(
                    "memory.saturation.swapping",
                    sev,
                    "memory",
                    format!(
                        "Memory pressure: swapping in {}, out {}{majf}{cgs}{who}",
                        human_kb_rate(si),
                        human_kb_rate(so)
                    ),
                    vec![ev(
                        "memory.swap_kb_per_s",
                        si + so,
                        ">=",
                        t.warn,
                        "kb_per_s",
                    )],
                    vec!["triage mem".into(), "vmstat 1".into()],
                )
                .with_subject(Subject {
                    cgroup: cg.map(|c| c.path.clone()),
                    ..top.map(proc_subject).unwrap_or_default()
                }),
            );
        } else if let Some(mf) = v.major_faults_per_s {
            if let Some((sev, t)) = level("memory.major_faults_per_s", mf) {
                let top =
                    s.processes
                        .as_ref()
                        .and_then(|p| {
                            p.top_cpu.iter().chain(p.top_rss.iter()).max_by(|a, b| {
                                a.major_faults_per_s.total_cmp(&b.major_faults_per_s)
                            })
                        })
                        .filter(|p| p.major_faults_per_s > 0.0);
                let who = top
                    .map(|p| {
                        format!(
                            "; top: {} (pid {}) {:.0}/s",
                            p.comm, p.pid, p.major_faults_per_s
                        )
                    })
                    .unwrap_or_default();
                out.push(finding(
                    "memory.saturation.major_faults",
                    sev,
                    "memory",
                    format!("Major-fault storm: {mf:.0} page faults/s needing disk reads (working set does not fit in RAM?){who}"),
                    vec![ev("memory.major_faults_per_s", mf, ">=", t.warn, "per_s")],
                    vec!["triage mem".into(), "sar -B 1".into()],
                ).with_subject(top.map(proc_subject).unwrap_or_default()));
            }
        }
    }
    oom_rule(s, out);
    rss_growth_rule(s, out);
    for c in &s.cgroups {
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
            ).with_subject(cgroup_subject(&c.path)));
        }
    }
}

/// Tasks waiting on I/O: iowait (counted only while a CPU is otherwise idle, so a busy box hides
/// it) or the io pressure stall share. With the disks idle, the wait is not the disk's: a
/// cgroup at its I/O limit (named), or a device outside the disk table (NFS, a slow path).
fn io_wait_rule(s: &Sections, out: &mut Vec<Finding>) {
    let iowait = s.cpus.first().map(|a| a.iowait_pct).unwrap_or(0.0);
    let psi = s
        .pressure
        .iter()
        .find(|p| p.resource == "io")
        .and_then(|p| p.some_pct)
        .unwrap_or(0.0);
    let busiest = s
        .disks
        .iter()
        .filter(|d| d.caveat.as_deref().is_none_or(|c| !c.starts_with("memory")))
        .max_by(|a, b| a.util_pct.total_cmp(&b.util_pct));
    let idle_below = threshold("disk.util_pct_idle").warn;
    let disk_idle = busiest.is_none_or(|d| d.util_pct < idle_below);
    let capped = s
        .io_limited_cgroups
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

/// Disk and filesystem findings (also re-run by the disk view once it knows the I/O consumers).
pub fn disk_rules(s: &Sections, out: &mut Vec<Finding>) {
    // The process behind the I/O: the top I/O consumer when the disk view measured it, else
    // a task in D state, else the top CPU user.
    let consumer_subject = || {
        if let Some(t) = s.disk_detail.as_ref().and_then(|d| d.top_io.first()) {
            return Subject::process(t.pid, &t.comm);
        }
        let Some(p) = s.processes.as_ref() else {
            return Subject::default();
        };
        if let Some(d) = p.d_state.first() {
            return Subject::process(d.pid, &d.comm);
        }
        p.top_cpu.first().map(proc_subject).unwrap_or_default()
    };
    let consumer = || {
        if let Some(t) = s.disk_detail.as_ref().and_then(|d| d.top_io.first()) {
            return Some(format!(
                "; top I/O: {} (pid {}) {:.0} kB/s read, {:.0} kB/s written",
                t.comm, t.pid, t.read_kb_per_s, t.write_kb_per_s
            ));
        }
        let p = s.processes.as_ref()?;
        if let Some(d) = p.d_state.first() {
            return Some(format!("; in D state: {} (pid {})", d.comm, d.pid));
        }
        p.top_cpu
            .first()
            .map(|t| format!("; top CPU: {} (pid {}) {:.0}%", t.comm, t.pid, t.cpu_pct))
    };
    crate::resources::disk::rules(&s.disks, consumer_subject, consumer, out);
    crate::resources::filesystem::rules(&s.filesystems, out);
}

fn net_rules(s: &Sections, out: &mut Vec<Finding>) {
    crate::resources::netif::rules(&s.interfaces, out);
    crate::resources::tcp::rules(&s.tcp, |out| time_wait_rule(s, out), out);
}

/// TIME_WAIT in our own namespace. With the net view's socket dump it names the local ports
/// holding them and the destination using the most ephemeral ports, and tells the server side
/// (this host closes first on its listening ports: no ephemeral port is held, info) from the
/// client side (a warning only when one destination really uses many ports).
pub fn time_wait_rule(s: &Sections, out: &mut Vec<Finding>) {
    let Some(tw) = s
        .tcp
        .iter()
        .find(|t| t.namespace == "own")
        .and_then(|t| t.time_wait)
    else {
        return;
    };
    let Some((sev, th)) = level("tcp.time_wait", tw as f64) else {
        return;
    };
    let e = vec![ev("tcp.time_wait", tw as f64, ">=", th.warn, "count")];
    let next_ss: String =
        "ss -tan state time-wait | awk '{print $3}' | sort | uniq -c | sort -n | tail".into();
    let detail = s.net_detail.as_ref().and_then(|n| {
        Some((
            n.time_wait_local_ports.as_ref()?,
            n.client_ports.as_ref()?,
            n.ephemeral_busiest_pct,
            n,
        ))
    });
    let Some((ports, dests, busiest, n)) = detail else {
        out.push(
            finding(
                "tcp.saturation.time_wait",
                sev,
                "tcp",
                format!("{tw} sockets in TIME_WAIT: close to ephemeral port exhaustion for a busy peer (triage net tells client from server side)"),
                e,
                vec!["triage net".into(), next_ss, "consider connection pooling / net.ipv4.tcp_tw_reuse=1".into()],
            ),
        );
        return;
    };
    let on_top: u64 = ports.iter().map(|p| p.1).sat_sum();
    let owner = |port: u16| {
        n.listeners
            .iter()
            .find(|l| l.port == port)
            .and_then(|l| Some((l.owner_pid?, l.owner_comm.clone()?)))
    };
    let warn_pct = threshold("tcp.ephemeral_used_pct").warn;
    let client = busiest.is_some_and(|p| p >= warn_pct / 2.0);
    if !client && !ports.is_empty() && on_top * 2 >= tw {
        // Server side: a few local ports hold them.
        let list = ports
            .iter()
            .map(|p| format!("{} ({})", p.0, p.1))
            .collect::<Vec<_>>()
            .join(", ");
        let top = ports[0].0;
        let who = owner(top)
            .map(|(p, c)| format!(", listener owned by {c} (pid {p})"))
            .unwrap_or_default();
        let mut subject = Subject {
            local: Some(format!("*:{top}")),
            port: Some(top),
            ..Default::default()
        };
        if let Some((p, c)) = owner(top) {
            subject.pid = Some(p);
            subject.comm = Some(c);
        }
        out.push(
            finding(
                "tcp.saturation.time_wait",
                Severity::Info,
                "tcp",
                format!(
                    "{tw} sockets in TIME_WAIT, {:.0}% of them on local ports {list}{who}: this host closes first on its own ports (server side); they hold no ephemeral port, and the busiest destination holds {} of the {} ephemeral ports: not port exhaustion",
                    on_top as f64 * 100.0 / tw as f64,
                    dests.first().map(|d| d.sockets).unwrap_or(0),
                    n.ephemeral_ports.unwrap_or(0)
                ),
                e,
                vec![next_ss],
            )
            .with_subject(subject),
        );
        return;
    }
    // Client side (or spread): the destination using the most ports. When it is near the
    // range, the ephemeral-port finding tells it (with its TIME_WAIT count): one fault, one
    // finding.
    if busiest.is_some_and(|p| p >= warn_pct) {
        return;
    }
    let top = dests.first();
    let subject = top
        .map(|d| Subject {
            local: Some(d.local_addr.clone()),
            remote: Some(d.remote.clone()),
            port: d.remote.rsplit_once(':').and_then(|(_, p)| p.parse().ok()),
            ..Default::default()
        })
        .unwrap_or_default();
    let to = top
        .map(|d| {
            format!(
                "; most to {} from {}: {} sockets ({} in TIME_WAIT), {:.0}% of the ephemeral ports",
                d.remote,
                d.local_addr,
                d.sockets,
                d.time_wait,
                busiest.unwrap_or(0.0)
            )
        })
        .unwrap_or_default();
    let sev = if client { sev } else { Severity::Info };
    out.push(
        finding(
            "tcp.saturation.time_wait",
            sev,
            "tcp",
            format!("{tw} sockets in TIME_WAIT{to}"),
            e,
            vec![
                next_ss,
                "consider connection pooling / net.ipv4.tcp_tw_reuse=1".into(),
            ],
        )
        .with_subject(subject),
    );
}

fn software_rules(s: &Sections, out: &mut Vec<Finding>) {
    if let Some(l) = &s.limits {
        crate::resources::limits::rules(l, out);
    }
    if let Some(p) = &s.processes {
        crate::resources::limits::process_rules(&p.fd_top, out);
        crate::resources::tasks::zombie_rule(p, out);
    }
}

/// The tasks resource's rule ([`crate::resources::tasks::rss_growth_rule`]), run with the
/// memory rules.
fn rss_growth_rule(s: &Sections, out: &mut Vec<Finding>) {
    if let Some(p) = &s.processes {
        crate::resources::tasks::rss_growth_rule(p, out);
    }
}

/// OOM kills: the counter, the cgroups' oom_kill events and the kernel log are one finding.
/// Critical when in the window, a warning when recent ([`KLOG_RECENT_S`]), else info.
fn oom_rule(s: &Sections, out: &mut Vec<Finding>) {
    let counter = s.vmstat.as_ref().and_then(|v| v.oom_kills).unwrap_or(0);
    let cg: Vec<&CgroupRow> = s
        .cgroups
        .iter()
        .filter(|c| c.oom_kills.unwrap_or(0) > 0)
        .collect();
    let cg_kills: u64 = cg.iter().map(|c| c.oom_kills.unwrap_or(0)).sat_sum();
    let log: Vec<&KlogGroup> = s
        .kernel_log
        .iter()
        .flat_map(|k| k.groups.iter())
        .filter(|g| is_oom(&g.class))
        .collect();
    let sum = |f: fn(&KlogGroup) -> u32| log.iter().map(|g| f(g) as u64).sum::<u64>();
    let (log_window, log_recent, log_all) =
        (sum(|g| g.in_window), sum(|g| g.recent), sum(|g| g.count));
    let newest = log
        .iter()
        .min_by(|a, b| a.newest_age_s.total_cmp(&b.newest_age_s));
    let kills = counter.max(cg_kills).max(log_window);
    let lookback = s.kernel_log.as_ref().map(|k| k.lookback_s).unwrap_or(0.0);
    let t = threshold("memory.oom_kills");
    let (sev, n, metric, when) = if kills > 0 {
        (
            Severity::Critical,
            kills,
            "memory.oom_kills",
            klog_when(1, 1, lookback),
        )
    } else if log_recent > 0 {
        (
            Severity::Warning,
            log_recent,
            "kernel_log.oom_kills_recent",
            klog_when(0, 1, lookback),
        )
    } else if log_all > 0 {
        (
            Severity::Info,
            log_all,
            "kernel_log.oom_kills_earlier",
            klog_when(0, 0, lookback),
        )
    } else {
        return;
    };
    let cgroup = newest
        .and_then(|g| g.cgroup.clone())
        .or_else(|| cg.first().map(|c| c.path.clone()));
    let cgs = cgroup
        .as_deref()
        .map(|c| format!(" in cgroup {c}"))
        .unwrap_or_default();
    let victim = newest
        .map(|g| {
            let who = match (&g.comm, g.pid) {
                (Some(c), Some(p)) => format!("{c} (pid {p})"),
                (None, Some(p)) => format!("pid {p}"),
                _ => "a process".into(),
            };
            let ago = if kills > 0 {
                String::new()
            } else {
                format!(" {:.0} s before the end of the window", g.newest_age_s)
            };
            format!("; the kernel killed {who}{ago}")
        })
        .unwrap_or_default();
    let mut e = vec![ev(metric, n as f64, ">=", t.warn, "count")];
    if let (Some(g), 0, true) = (newest, kills, log_recent > 0) {
        e.push(ev(
            "kernel_log.newest_age_s",
            g.newest_age_s,
            "<=",
            KLOG_RECENT_S,
            "s",
        ));
    }
    out.push(
        finding(
            "memory.errors.oom_kill",
            sev,
            "memory",
            format!("OOM killer fired {n} time(s) {when}{cgs}{victim}"),
            e,
            vec![
                match &cgroup {
                    Some(c) => format!("triage mem --cgroup {c}"),
                    None => "triage mem".into(),
                },
                "dmesg -T | grep -i -A5 'killed process'".into(),
            ],
        )
        .with_subject(Subject {
            pid: newest.and_then(|g| g.pid).map(|p| p as i32),
            comm: newest.and_then(|g| g.comm.clone()),
            cgroup,
            class: Some("oom_kill".into()),
            ..Default::default()
        }),
    );
}

/// `512 kB/s`, `242.2 MB/s`.
pub fn human_kb_rate(kb: f64) -> String {
    if kb >= 10_240.0 {
        format!("{:.1} MB/s", kb / 1024.0)
    } else {
        format!("{kb:.0} kB/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_threshold_is_ordered_and_unique() {
        let all: Vec<&Threshold> = crate::resources::rule::all().collect();
        for (i, t) in all.iter().enumerate() {
            assert!(t.warn <= t.crit, "{}", t.id);
            assert!(
                all[i + 1..].iter().all(|o| o.id != t.id),
                "duplicate {}",
                t.id
            );
        }
    }

    #[test]
    fn level_picks_severity() {
        assert_eq!(level("disk.await_ms", 5.0).map(|l| l.0), None);
        assert_eq!(
            level("disk.await_ms", 10.0).map(|l| l.0),
            Some(Severity::Warning)
        );
        assert_eq!(
            level("disk.await_ms", 80.0).map(|l| l.0),
            Some(Severity::Critical)
        );
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}

#[cfg(test)]
mod rule_tests;
