//! Rules over the `syscalls` section: a syscall storm, lock contention seen as futex time,
//! failing syscalls, and a process in system time explained by its syscalls. Thresholds are in
//! [`super::THRESHOLDS`] (`syscalls.*`).

use super::{ev, finding, level, threshold};
use crate::model::report::{Finding, Severity};
use crate::model::syscalls::SyscallsSection;

const FUTEX: &str = "futex";
const EXHAUSTION: &[&str] = &["EMFILE", "ENFILE", "ENOMEM", "ENOSPC", "EDQUOT"];

pub fn findings(s: &SyscallsSection) -> Vec<Finding> {
    let mut out = Vec::new();
    storm(s, &mut out);
    futex(s, &mut out);
    errors(s, &mut out);
    system_time(s, &mut out);
    out
}

/// The /proc rule "high kernel time" names a process; when the syscall rules explain that
/// process's system time, the /proc finding becomes context (info), pointing at them.
pub fn demote_explained(all: &mut [Finding]) {
    let explained: Vec<String> = all
        .iter()
        .filter(|f| f.id == "cpu.utilization.syscall_system_time")
        .filter_map(|f| {
            let i = f.summary.find("(pid ")?;
            let end = f.summary[i..].find(')')?;
            Some(f.summary[i..i + end + 1].to_string())
        })
        .collect();
    for f in all.iter_mut() {
        if f.id == "cpu.utilization.system_time"
            && explained.iter().any(|p| f.summary.contains(p.as_str()))
        {
            f.severity = Severity::Info;
            f.summary
                .push_str(" (explained by its syscalls: see cpu.utilization.syscall_system_time)");
        }
    }
}

fn storm(s: &SyscallsSection, out: &mut Vec<Finding>) {
    let Some(top) = s.processes.first() else {
        return;
    };
    let share_min = threshold("syscalls.top_process_share_pct").warn;
    let Some((sev, t)) = level("syscalls.process_calls_per_s", top.calls_per_s) else {
        return;
    };
    if top.calls_pct < share_min {
        return;
    }
    let second = s
        .processes
        .get(1)
        .map(|p| {
            format!(
                "; the next busiest: {} (pid {}) {:.0}/s",
                p.comm, p.pid, p.calls_per_s
            )
        })
        .unwrap_or_default();
    out.push(finding(
        "syscalls.saturation.storm",
        sev,
        "syscalls",
        format!(
            "Syscall storm: {} (pid {}) makes {:.0} syscalls/s, {:.0}% of all, {:.0}% of them {}{second}",
            top.comm, top.pid, top.calls_per_s, top.calls_pct, top.top_syscall_pct, top.top_syscall
        ),
        vec![
            ev("syscalls.process_calls_per_s", top.calls_per_s, ">=", t.warn, "per_s"),
            ev("syscalls.top_process_share_pct", top.calls_pct, ">=", share_min, "pct"),
        ],
        vec![
            format!("triage syscalls --pid {}", top.pid),
            format!("strace -f -e trace={} -p {} (briefly: 10-100x slowdown)", top.top_syscall, top.pid),
            format!("perf top -p {}", top.pid),
        ],
    ));
}

fn futex(s: &SyscallsSection, out: &mut Vec<Finding>) {
    if !s.latency_measured {
        return;
    }
    let busy_min = threshold("syscalls.futex_busy_cpu_pct").warn;
    let rate_min = threshold("syscalls.futex_calls_per_s").warn;
    for p in &s.processes {
        if p.top_time_syscall.as_deref() != Some(FUTEX) {
            continue;
        }
        let Some(share) = p.top_time_syscall_pct else {
            continue;
        };
        let Some((sev, t)) = level("syscalls.futex_time_pct", share) else {
            continue;
        };
        let futex_rate = s
            .breakdown
            .iter()
            .find(|b| b.pid == p.pid && b.syscall == FUTEX)
            .map(|b| b.calls_per_s)
            .unwrap_or(0.0);
        let cpu = p.cpu_pct.unwrap_or(0.0);
        let contended = cpu >= busy_min || futex_rate >= rate_min;
        if !contended {
            continue;
        }
        let waited = p.time_ms.unwrap_or(0.0) * share / 100.0 / 1000.0 / s.traced_s.max(1e-3);
        let mut e = vec![ev("syscalls.futex_time_pct", share, ">=", t.warn, "pct")];
        if cpu >= busy_min {
            e.push(ev(
                "syscalls.futex_busy_cpu_pct",
                cpu,
                ">=",
                busy_min,
                "pct",
            ));
        } else {
            e.push(ev(
                "syscalls.futex_calls_per_s",
                futex_rate,
                ">=",
                rate_min,
                "per_s",
            ));
        }
        out.push(finding(
            "locks.saturation.futex",
            sev,
            "locks",
            format!(
                "Lock contention: {} (pid {}) spends {share:.0}% of its syscall time in futex \
                 ({waited:.1} thread-seconds per second, {futex_rate:.0} calls/s) while using {cpu:.0}% CPU",
                p.comm, p.pid
            ),
            e,
            vec![
                format!("triage offcpu --pid {}", p.pid),
                format!("perf lock record -p {} -- sleep 5 && perf lock report", p.pid),
                format!("strace -f -e futex -c -p {} (briefly)", p.pid),
            ],
        ));
    }
}

fn errors(s: &SyscallsSection, out: &mut Vec<Finding>) {
    for r in &s.syscalls {
        if r.errors == 0 {
            continue;
        }
        let top = r.top_errors.first();
        let top_name = top.map(|e| e.name.as_str()).unwrap_or("");
        let errs = r
            .top_errors
            .iter()
            .map(|e| format!("{} {}", e.name, e.count))
            .collect::<Vec<_>>()
            .join(", ");
        let who = s
            .breakdown
            .iter()
            .filter(|b| b.syscall == r.name && b.errors > 0)
            .max_by_key(|b| b.errors)
            .map(|b| format!("; most from {} (pid {})", b.comm, b.pid));
        let next = |extra: &str| {
            let mut v = vec![format!("strace -f -e trace={} -Z (briefly)", r.name)];
            if !extra.is_empty() {
                v.push(extra.to_string());
            }
            v
        };
        // A resource ran out: any occurrence counts.
        let exhausted: u64 = r
            .top_errors
            .iter()
            .filter(|e| EXHAUSTION.contains(&e.name.as_str()))
            .map(|e| e.count)
            .sum();
        if let Some((sev, t)) = level("syscalls.exhaustion_errors", exhausted as f64) {
            let name = r
                .top_errors
                .iter()
                .find(|e| EXHAUSTION.contains(&e.name.as_str()))
                .map(|e| e.name.clone())
                .unwrap_or_default();
            let hint = match name.as_str() {
                "EMFILE" => "the per-process fd limit (ulimit -n) is reached",
                "ENFILE" => "the system-wide file table (fs.file-max) is full",
                "ENOMEM" => "the kernel refused memory",
                _ => "a filesystem is full (space, inodes or quota)",
            };
            out.push(finding(
                "syscalls.errors.exhaustion",
                sev,
                "syscalls",
                format!(
                    "{} failed {exhausted} time(s) with {name}: {hint}{}",
                    r.name,
                    who.clone().unwrap_or_default()
                ),
                vec![ev(
                    "syscalls.exhaustion_errors",
                    exhausted as f64,
                    ">=",
                    t.warn,
                    "count",
                )],
                next("triage sixty-second (file descriptors, filesystems)"),
            ));
            continue;
        }
        let refused = r
            .top_errors
            .iter()
            .find(|e| e.name == "ECONNREFUSED")
            .map(|e| e.count as f64 / s.traced_s.max(1e-3))
            .unwrap_or(0.0);
        if let Some((sev, t)) = level("syscalls.refused_per_s", refused) {
            out.push(finding(
                "syscalls.errors.connection_refused",
                sev,
                "syscalls",
                format!(
                    "{} refused {refused:.0} times/s (ECONNREFUSED): nothing listens where a client connects{}",
                    r.name,
                    who.clone().unwrap_or_default()
                ),
                vec![ev("syscalls.refused_per_s", refused, ">=", t.warn, "per_s")],
                next("ss -tnp state syn-sent"),
            ));
            continue;
        }
        let pct_min = threshold("syscalls.error_pct").warn;
        if let (Some((sev, t)), true) = (
            level("syscalls.errors_per_s", r.errors_per_s),
            r.error_pct >= pct_min,
        ) {
            // EAGAIN from non-blocking I/O and futex timeouts are how those APIs work: info.
            let benign = matches!(top_name, "EAGAIN" | "ETIMEDOUT" | "EINTR" | "EINPROGRESS");
            let sev = if benign { Severity::Info } else { sev };
            out.push(finding(
                "syscalls.errors.rate",
                sev,
                "syscalls",
                format!(
                    "{} fails {:.0} times/s ({:.0}% of its calls): {errs}{}",
                    r.name,
                    r.errors_per_s,
                    r.error_pct,
                    who.unwrap_or_default()
                ),
                vec![
                    ev(
                        "syscalls.errors_per_s",
                        r.errors_per_s,
                        ">=",
                        t.warn,
                        "per_s",
                    ),
                    ev("syscalls.error_pct", r.error_pct, ">=", pct_min, "pct"),
                ],
                next(""),
            ));
        }
    }
}

fn system_time(s: &SyscallsSection, out: &mut Vec<Finding>) {
    for p in &s.processes {
        let (Some(cpu), Some(sys)) = (p.cpu_pct, p.sys_pct) else {
            continue;
        };
        if cpu < 20.0 {
            continue;
        }
        let share = 100.0 * sys / cpu;
        let Some((sev, t)) = level("syscalls.process_sys_share_pct", share) else {
            continue;
        };
        let why = match (&p.top_time_syscall, p.top_time_syscall_pct) {
            (Some(n), Some(pc)) if n != FUTEX => format!(
                "; {:.0} syscalls/s, {:.0}% {} by count, {pc:.0}% of its syscall time in {n}",
                p.calls_per_s, p.top_syscall_pct, p.top_syscall
            ),
            _ => format!(
                "; {:.0} syscalls/s, {:.0}% of them {}",
                p.calls_per_s, p.top_syscall_pct, p.top_syscall
            ),
        };
        out.push(finding(
            "cpu.utilization.syscall_system_time",
            sev,
            "cpu",
            format!(
                "{} (pid {}) spends {share:.0}% of its {cpu:.0}% CPU in the kernel{why}",
                p.comm, p.pid
            ),
            vec![ev(
                "syscalls.process_sys_share_pct",
                share,
                ">=",
                t.warn,
                "pct",
            )],
            vec![
                format!("perf top -p {}", p.pid),
                format!("triage syscalls --pid {}", p.pid),
            ],
        ));
    }
}
