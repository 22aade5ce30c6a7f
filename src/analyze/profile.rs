//! From on-CPU samples (`triage profile`) to the section's tables and the findings: where a
//! busy process spends its samples (one hot function, or the kernel), and which CPU serves
//! softirqs instead of applications.
//!
//! Every share is of samples of work: the idle task doing nothing is left out (it is only
//! the per-CPU idle share). Functions are counted by their name (`func`, else
//! `module+offset`) and whether they are the kernel's.

use std::collections::{BTreeMap, BTreeSet};

use super::{ev, finding, rank, Threshold};
use crate::model::profile::*;
use crate::model::report::{Finding, Severity, Subject};

/// The profile rules' thresholds (same shape and meaning as [`super::THRESHOLDS`]).
pub const PROFILE_THRESHOLDS: &[Threshold] = &[
    Threshold { id: "profile.function_self_pct", warn: 50.0, crit: 101.0, unit: "pct", why: "our choice: when one function is the innermost frame of half of a busy process's samples, that function is the answer to 'doing what?' (Gregg: profile, then look at the hottest code path); never critical on its own: a hot function is a lead, not a fault" },
    Threshold { id: "profile.kernel_pct", warn: 30.0, crit: 70.0, unit: "pct", why: "sy high = kernel/syscall overhead (S0:844); '100% kernel-mode CPU with no user-mode time means the process is spinning inside the kernel' (S0:976): critical at 70%" },
    Threshold { id: "profile.cpu_softirq_pct", warn: 20.0, crit: 50.0, unit: "pct", why: "as cpu.softirq_cpu_soft_pct (mpstat %soft): a fifth of a CPU in softirq is visibly taken from applications; half is a saturated core" },
    Threshold { id: "profile.process_cpus", warn: 0.1, crit: 0.1, unit: "cpus", why: "companion of the process rules: a process using under a tenth of a CPU (or with under 20 samples) is not where the CPU goes; not higher, because on a saturated box each of many busy processes gets a small share" },
];

/// Fewest samples a process needs before its shares mean anything.
pub const MIN_SAMPLES: u64 = 20;

fn thr(id: &str) -> Threshold {
    *PROFILE_THRESHOLDS
        .iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("no profile threshold {id}"))
}

fn level(id: &str, v: f64) -> Option<(Severity, Threshold)> {
    let t = thr(id);
    if v >= t.crit {
        Some((Severity::Critical, t))
    } else if v >= t.warn {
        Some((Severity::Warning, t))
    } else {
        None
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        r1(100.0 * part as f64 / whole as f64)
    }
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A function's identity: name (or module+offset), module, kernel.
type FnKey = (String, Option<String>, bool);

fn fn_key(f: &Frame, kernel: bool) -> FnKey {
    let module = if kernel {
        Some("[kernel]".to_string())
    } else {
        f.module.clone()
    };
    (f.short(), module, kernel)
}

/// `compute_hash (user)`, `copy_page (kernel)`.
fn fn_label(k: &FnKey) -> String {
    format!("{} ({})", k.0, if k.2 { "kernel" } else { "user" })
}

/// The system call a kernel stack is serving (`read` from `__x64_sys_read`), or `page
/// fault`.
pub fn kernel_entry(s: &ProfileStack) -> Option<String> {
    for f in s.kernel.iter().rev() {
        let Some(n) = f.func.as_deref() else { continue };
        for p in [
            "__x64_sys_",
            "__arm64_sys_",
            "__ia32_sys_",
            "__se_sys_",
            "__do_sys_",
        ] {
            if let Some(name) = n.strip_prefix(p) {
                return Some(name.to_string());
            }
        }
        if n == "exc_page_fault" || n == "do_user_addr_fault" {
            return Some("page fault".into());
        }
    }
    None
}

#[derive(Default)]
struct ProcAgg {
    process: String,
    samples: u64,
    kernel: u64,
    tids: BTreeSet<u32>,
    self_fns: BTreeMap<FnKey, u64>,
    kernel_self: BTreeMap<FnKey, u64>,
    entries: BTreeMap<String, u64>,
}

fn top<K: Clone + Ord>(m: &BTreeMap<K, u64>) -> Option<(K, u64)> {
    // Largest count; ties by the smallest key, so the choice is deterministic.
    m.iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(k, v)| (k.clone(), *v))
}

fn per_process(p: &ProfileProbe) -> BTreeMap<u32, ProcAgg> {
    let mut procs: BTreeMap<u32, ProcAgg> = BTreeMap::new();
    for s in p.stacks.iter().filter(|s| s.pid != 0) {
        let e = procs.entry(s.pid).or_default();
        if e.process.is_empty() {
            e.process = s.process.clone();
        }
        e.samples += s.samples;
        e.tids.insert(s.tid);
        if let Some((f, k)) = s.leaf() {
            *e.self_fns.entry(fn_key(f, k)).or_default() += s.samples;
        }
        if s.in_kernel() {
            e.kernel += s.samples;
            if let Some(f) = s.kernel.first() {
                *e.kernel_self.entry(fn_key(f, true)).or_default() += s.samples;
            }
            if let Some(x) = kernel_entry(s) {
                *e.entries.entry(x).or_default() += s.samples;
            }
        }
    }
    procs
}

/// Samples of work: in scope, the idle task doing nothing left out.
pub fn work_samples(p: &ProfileProbe) -> u64 {
    p.stacks
        .iter()
        .filter(|s| !s.is_idle())
        .map(|s| s.samples)
        .sum()
}

/// The section: top processes, threads, functions (self and total), CPUs, where unwinding
/// stopped; stacks cut to `top` rows (idle left out).
pub fn section(p: &ProfileProbe, top_n: usize) -> ProfileSection {
    let total = work_samples(p);
    let window = (p.frequency_hz as f64 * p.traced_s).max(1e-9);
    let procs = per_process(p);
    let mut processes: Vec<ProfProcess> = procs
        .iter()
        .map(|(pid, a)| {
            let hot = top(&a.self_fns);
            ProfProcess {
                pid: *pid,
                process: a.process.clone(),
                threads: a.tids.len() as u32,
                samples: a.samples,
                pct: pct(a.samples, total),
                cpus: (a.samples as f64 / window * 100.0).round() / 100.0,
                kernel_pct: pct(a.kernel, a.samples),
                top_function_pct: hot.as_ref().map_or(0.0, |h| pct(h.1, a.samples)),
                top_function: hot.map(|h| fn_label(&h.0)),
            }
        })
        .collect();
    processes.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.pid.cmp(&b.pid)));
    processes.truncate(top_n);

    let mut threads: BTreeMap<(u32, u32), ProfThread> = BTreeMap::new();
    for s in p.stacks.iter().filter(|s| !s.is_idle()) {
        let t = threads.entry((s.pid, s.tid)).or_insert_with(|| ProfThread {
            pid: s.pid,
            process: s.process.clone(),
            tid: s.tid,
            thread: s.thread.clone(),
            ..Default::default()
        });
        t.samples += s.samples;
    }
    let mut threads: Vec<ProfThread> = threads
        .into_values()
        .map(|mut t| {
            t.pct = pct(t.samples, total);
            t
        })
        .collect();
    threads.sort_by(|a, b| {
        b.samples
            .cmp(&a.samples)
            .then(a.pid.cmp(&b.pid))
            .then(a.tid.cmp(&b.tid))
    });
    threads.truncate(top_n);

    let mut self_s: BTreeMap<FnKey, u64> = BTreeMap::new();
    let mut total_s: BTreeMap<FnKey, u64> = BTreeMap::new();
    for s in p.stacks.iter().filter(|s| !s.is_idle()) {
        if let Some((f, k)) = s.leaf() {
            *self_s.entry(fn_key(f, k)).or_default() += s.samples;
        }
        let keys: BTreeSet<FnKey> = s
            .kernel
            .iter()
            .map(|f| fn_key(f, true))
            .chain(s.user.iter().map(|f| fn_key(f, false)))
            .collect();
        for k in keys {
            *total_s.entry(k).or_default() += s.samples;
        }
    }
    let mut functions: Vec<ProfFunction> = total_s
        .iter()
        .map(|(k, t)| {
            let sf = self_s.get(k).copied().unwrap_or(0);
            ProfFunction {
                function: k.0.clone(),
                module: k.1.clone(),
                kernel: k.2,
                self_samples: sf,
                self_pct: pct(sf, total),
                total_samples: *t,
                total_pct: pct(*t, total),
            }
        })
        .collect();
    functions.sort_by(|a, b| {
        b.self_samples
            .cmp(&a.self_samples)
            .then(b.total_samples.cmp(&a.total_samples))
            .then(a.function.cmp(&b.function))
    });
    // The top by self time, then the top by total time not already there.
    let mut shown: Vec<ProfFunction> = functions.iter().take(top_n).cloned().collect();
    let mut by_total = functions.clone();
    by_total.sort_by(|a, b| {
        b.total_samples
            .cmp(&a.total_samples)
            .then(a.function.cmp(&b.function))
    });
    for f in by_total.into_iter().take(top_n) {
        if !shown
            .iter()
            .any(|x| x.function == f.function && x.kernel == f.kernel && x.module == f.module)
        {
            shown.push(f);
        }
    }

    let cpus = cpu_rows(p);
    let unwind = unwind_rows(p, top_n);
    let rate_hz = if p.per_cpu.is_empty() || p.traced_s <= 0.0 {
        0.0
    } else {
        let n: u64 = p.per_cpu.iter().map(|c| c.samples).sum();
        r1(n as f64 / p.per_cpu.len() as f64 / p.traced_s)
    };
    let mut probe = p.clone();
    probe.stacks.retain(|s| !s.is_idle());
    let stacks_total = probe.stacks.len();
    probe.stacks.truncate(top_n);
    ProfileSection {
        probe,
        samples: total,
        rate_hz,
        stacks_total,
        processes,
        threads,
        functions: shown,
        cpus,
        unwind,
    }
}

fn cpu_rows(p: &ProfileProbe) -> Vec<ProfCpu> {
    let mut out = Vec::new();
    for c in &p.per_cpu {
        let on: Vec<&ProfileStack> = p.stacks.iter().filter(|s| s.cpu == c.cpu).collect();
        let user: u64 = on
            .iter()
            .filter(|s| s.pid != 0 && !s.in_kernel())
            .map(|s| s.samples)
            .sum();
        let kernel: u64 = on
            .iter()
            .filter(|s| s.in_kernel() && !s.is_idle())
            .map(|s| s.samples)
            .sum();
        let mut soft: BTreeMap<String, u64> = BTreeMap::new();
        for s in &on {
            if let Some(h) = s.softirq() {
                *soft.entry(h).or_default() += s.samples;
            }
        }
        let soft_total: u64 = soft.values().sum();
        let idle_softirq: u64 = on
            .iter()
            .filter(|s| s.pid == 0 && !s.is_idle())
            .map(|s| s.samples)
            .sum();
        let t = top(&soft);
        out.push(ProfCpu {
            cpu: c.cpu,
            samples: c.samples,
            idle_pct: pct(c.idle.saturating_sub(idle_softirq), c.samples),
            user_pct: pct(user, c.samples),
            kernel_pct: pct(kernel, c.samples),
            softirq_pct: pct(soft_total, c.samples),
            top_softirq_pct: t.as_ref().map_or(0.0, |t| pct(t.1, c.samples)),
            top_softirq: t.map(|t| t.0),
        });
    }
    out
}

fn unwind_rows(p: &ProfileProbe, n: usize) -> Vec<ProfUnwind> {
    let mut m: BTreeMap<u32, (ProfUnwind, BTreeMap<String, u64>)> = BTreeMap::new();
    for s in p.stacks.iter().filter(|s| s.pid != 0 && !s.user.is_empty()) {
        let (e, at) = m.entry(s.pid).or_insert_with(|| {
            (
                ProfUnwind {
                    pid: s.pid,
                    process: s.process.clone(),
                    ..Default::default()
                },
                BTreeMap::new(),
            )
        });
        e.with_user_stack += s.samples;
        if !s.user_complete() {
            e.truncated += s.samples;
            if let Some(f) = s.user.last() {
                let module = f
                    .module
                    .as_deref()
                    .map(|m| m.rsplit('/').next().unwrap_or(m).to_string())
                    .unwrap_or_else(|| "?".into());
                let func = f.func.clone().unwrap_or_else(|| f.label());
                *at.entry(format!("{func} in {module}")).or_default() += s.samples;
            }
        }
    }
    let mut v: Vec<ProfUnwind> = m
        .into_values()
        .filter(|(e, _)| e.truncated > 0)
        .map(|(mut e, at)| {
            e.stopped_in = top(&at).map(|t| t.0).unwrap_or_default();
            e
        })
        .collect();
    v.sort_by(|a, b| b.truncated.cmp(&a.truncated).then(a.pid.cmp(&b.pid)));
    v.truncate(n);
    v
}

/// Findings over one profile: a hot function or much kernel time in a busy process, and a
/// CPU serving softirqs (system-wide runs only: a scoped run does not see other work).
pub fn findings(p: &ProfileProbe) -> Vec<Finding> {
    let mut out = Vec::new();
    let window = (p.frequency_hz as f64 * p.traced_s).max(1e-9);
    let min_cpus = thr("profile.process_cpus").warn;
    for (pid, a) in per_process(p) {
        let cpus = a.samples as f64 / window;
        if a.samples < MIN_SAMPLES || cpus < min_cpus {
            continue;
        }
        let subject = Subject::process(pid as i32, &a.process);
        let cpu_ev = ev("profile.process_cpus", cpus, ">=", min_cpus, "cpus");
        if let Some((k, n)) = top(&a.self_fns) {
            let share = 100.0 * n as f64 / a.samples as f64;
            if let Some((_, t)) = level("profile.function_self_pct", share) {
                // A lead, not a fault: a warning only when the process uses half a CPU.
                let sev = if cpus >= 0.5 {
                    Severity::Warning
                } else {
                    Severity::Info
                };
                out.push(
                    finding(
                        "cpu.utilization.hot_function",
                        sev,
                        "cpu",
                        format!(
                            "{} (pid {pid}) spends {share:.0}% of its samples in {}; {cpus:.2} \
                             CPUs on average over the window",
                            a.process,
                            fn_label(&k)
                        ),
                        vec![
                            ev("profile.function_self_pct", share, ">=", t.warn, "pct"),
                            cpu_ev.clone(),
                        ],
                        vec![
                            format!("triage profile -p {pid} --svg profile.svg"),
                            format!(
                                "perf record -F 99 -g -p {pid} -- sleep 10 && perf annotate {}",
                                k.0
                            ),
                        ],
                    )
                    .with_subject(subject.clone()),
                );
            }
        }
        let kshare = 100.0 * a.kernel as f64 / a.samples as f64;
        if let Some((sev, t)) = level("profile.kernel_pct", kshare) {
            let under = top(&a.kernel_self)
                .map(|(k, n)| {
                    format!(
                        " under {} ({:.0}%)",
                        k.0,
                        100.0 * n as f64 / a.samples as f64
                    )
                })
                .unwrap_or_default();
            let entry = top(&a.entries);
            let via = entry
                .as_ref()
                .map(|(e, n)| {
                    if e == "page fault" {
                        format!(
                            ", {:.0}% in page faults",
                            100.0 * *n as f64 / a.samples as f64
                        )
                    } else {
                        format!(
                            ", {:.0}% in the {e} syscall",
                            100.0 * *n as f64 / a.samples as f64
                        )
                    }
                })
                .unwrap_or_default();
            let mut subject = subject.clone();
            subject.syscall = entry.filter(|e| e.0 != "page fault").map(|e| e.0);
            out.push(
                finding(
                    "cpu.utilization.kernel_time",
                    sev,
                    "cpu",
                    format!(
                        "{} (pid {pid}): {kshare:.0}% of its samples in the kernel{under}{via}",
                        a.process
                    ),
                    vec![
                        ev("profile.kernel_pct", kshare, ">=", t.warn, "pct"),
                        cpu_ev.clone(),
                    ],
                    vec![
                        format!("triage syscalls --pid {pid}"),
                        format!("triage profile -p {pid} --svg profile.svg"),
                    ],
                )
                .with_subject(subject),
            );
        }
    }
    if p.scope == "system-wide" {
        for c in cpu_rows(p) {
            if c.samples < MIN_SAMPLES {
                continue;
            }
            if let Some((sev, t)) = level("profile.cpu_softirq_pct", c.softirq_pct) {
                let what = c
                    .top_softirq
                    .as_ref()
                    .map(|h| format!(", {:.0}% in {h}", c.top_softirq_pct))
                    .unwrap_or_default();
                out.push(
                    finding(
                        "cpu.utilization.softirq_time",
                        sev,
                        "cpu",
                        format!(
                            "CPU{} spends {:.0}% of its samples in softirq{what}",
                            c.cpu, c.softirq_pct
                        ),
                        vec![ev(
                            "profile.cpu_softirq_pct",
                            c.softirq_pct,
                            ">=",
                            t.warn,
                            "pct",
                        )],
                        vec![
                            "triage cpu".into(),
                            "watch -d -n1 cat /proc/softirqs".into(),
                            "triage net".into(),
                        ],
                    )
                    .with_subject(Subject {
                        cpu: Some(c.cpu),
                        class: c.top_softirq.clone(),
                        ..Default::default()
                    }),
                );
            }
        }
    }
    rank(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> Frame {
        Frame {
            func: Some(name.into()),
            offset: 0,
            module: Some("/bin/x".into()),
        }
    }

    fn stack(pid: u32, cpu: u32, n: u64, kernel: &[&str], user: &[&str]) -> ProfileStack {
        ProfileStack {
            pid,
            process: if pid == 0 {
                "swapper/0".into()
            } else {
                format!("p{pid}")
            },
            tid: pid,
            thread: format!("p{pid}"),
            cpu,
            samples: n,
            kernel: kernel.iter().map(|x| f(x)).collect(),
            user: user.iter().map(|x| f(x)).collect(),
            ..Default::default()
        }
    }

    fn probe(stacks: Vec<ProfileStack>) -> ProfileProbe {
        ProfileProbe {
            format_version: PROFILE_FORMAT,
            frequency_hz: 100,
            traced_s: 2.0,
            scope: "system-wide".into(),
            per_cpu: vec![
                CpuSamples {
                    cpu: 0,
                    samples: 200,
                    idle: 100,
                },
                CpuSamples {
                    cpu: 1,
                    samples: 200,
                    idle: 150,
                },
            ],
            stacks,
            ..Default::default()
        }
    }

    #[test]
    fn hot_function_kernel_time_and_softirq() {
        let p = probe(vec![
            // pid 7: 90 of 100 samples in compute (user), 10 in the kernel under copy_page.
            stack(7, 0, 90, &[], &["compute", "work", "main"]),
            stack(
                7,
                0,
                10,
                &["copy_page", "__x64_sys_read", "do_syscall_64"],
                &["read", "main"],
            ),
            // the idle task: 100 idle on CPU 0, 150 on CPU 1 of which 60 serve net_rx_action.
            stack(0, 0, 100, &["default_idle"], &[]),
            stack(0, 1, 90, &["default_idle"], &[]),
            stack(
                0,
                1,
                60,
                &["net_rx_action", "handle_softirqs", "irq_exit_rcu"],
                &[],
            ),
        ]);
        let s = section(&p, 10);
        assert_eq!(s.samples, 160);
        assert_eq!(s.rate_hz, 100.0);
        assert_eq!(s.processes[0].pid, 7);
        assert_eq!(
            s.processes[0].top_function.as_deref(),
            Some("compute (user)")
        );
        assert_eq!(s.processes[0].top_function_pct, 90.0);
        assert_eq!(s.processes[0].kernel_pct, 10.0);
        assert_eq!(s.processes[0].cpus, 0.5);
        let compute = s
            .functions
            .iter()
            .find(|x| x.function == "compute")
            .unwrap();
        assert_eq!((compute.self_samples, compute.total_samples), (90, 90));
        let main = s.functions.iter().find(|x| x.function == "main").unwrap();
        assert_eq!((main.self_samples, main.total_samples), (0, 100));
        assert_eq!(s.cpus[1].softirq_pct, 30.0);
        assert_eq!(s.cpus[1].idle_pct, 45.0);
        assert_eq!(s.cpus[1].top_softirq.as_deref(), Some("net_rx_action"));
        assert_eq!(s.cpus[0].user_pct, 45.0);
        // Idle-only stacks are not in the shown stacks.
        assert!(s.probe.stacks.iter().all(|x| !x.is_idle()));

        let fs = findings(&p);
        let hot = fs
            .iter()
            .find(|x| x.id == "cpu.utilization.hot_function")
            .unwrap();
        assert_eq!(hot.subject.pid, Some(7));
        assert!(
            hot.summary.contains("90% of its samples in compute (user)"),
            "{}",
            hot.summary
        );
        assert_eq!(hot.severity, Severity::Warning);
        assert!(!fs.iter().any(|x| x.id == "cpu.utilization.kernel_time"));
        let soft = fs
            .iter()
            .find(|x| x.id == "cpu.utilization.softirq_time")
            .unwrap();
        assert_eq!(soft.subject.cpu, Some(1));
        assert!(
            soft.summary
                .starts_with("CPU1 spends 30% of its samples in softirq, 30% in net_rx_action"),
            "{}",
            soft.summary
        );
    }

    #[test]
    fn kernel_time_names_the_function_and_syscall() {
        let p = probe(vec![
            stack(
                9,
                0,
                41,
                &["copy_page", "__x64_sys_read", "do_syscall_64"],
                &["read", "main"],
            ),
            stack(9, 0, 59, &[], &["spin", "main"]),
        ]);
        let fs = findings(&p);
        let k = fs
            .iter()
            .find(|x| x.id == "cpu.utilization.kernel_time")
            .unwrap();
        assert!(
            k.summary.contains(
                "41% of its samples in the kernel under copy_page (41%), 41% in the read syscall"
            ),
            "{}",
            k.summary
        );
        assert_eq!(k.subject.syscall.as_deref(), Some("read"));
        assert_eq!(k.severity, Severity::Warning);
        // 59% in spin: a hot function too.
        assert!(fs.iter().any(|x| x.id == "cpu.utilization.hot_function"));
    }

    #[test]
    fn quiet_or_small_processes_make_no_finding() {
        // 10 samples: below MIN_SAMPLES.
        let p = probe(vec![stack(5, 0, 10, &[], &["spin", "main"])]);
        assert!(findings(&p).is_empty());
        // No softirq finding when scoped.
        let mut p = probe(vec![stack(
            0,
            1,
            150,
            &["net_rx_action", "handle_softirqs"],
            &[],
        )]);
        assert!(findings(&p)
            .iter()
            .any(|x| x.id == "cpu.utilization.softirq_time"));
        p.scope = "pid 5".into();
        assert!(findings(&p).is_empty());
    }

    #[test]
    fn truncated_user_stacks_are_located() {
        let mut s = stack(3, 0, 40, &[], &["leaf", "mid"]);
        s.user[1].module = Some("/usr/lib/libfoo.so".into());
        let p = probe(vec![s, stack(3, 0, 60, &[], &["leaf", "main"])]);
        let sec = section(&p, 10);
        assert_eq!(sec.unwind.len(), 1);
        assert_eq!(sec.unwind[0].truncated, 40);
        assert_eq!(sec.unwind[0].with_user_stack, 100);
        assert_eq!(sec.unwind[0].stopped_in, "mid in libfoo.so");
    }
}
