//! Rules over the `syscalls` section: a syscall storm, lock contention seen as futex time,
//! failing syscalls, and a process in system time explained by its syscalls. Thresholds are in
//! [`super::THRESHOLDS`] (`syscalls.*`).

use super::{ev, finding, level, threshold};
use crate::model::report::{Finding, Severity, Subject};
use crate::model::syscalls::SyscallsSection;

const FUTEX: &str = "futex";

/// A rate for people: `1.26M`, `52.3k`, `940`.
fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}
const EXHAUSTION: &[&str] = &["EMFILE", "ENFILE", "ENOMEM", "ENOSPC", "EDQUOT"];

pub fn findings(s: &SyscallsSection) -> Vec<Finding> {
    let mut out = Vec::new();
    storm(s, &mut out);
    futex(s, &mut out);
    errors(s, &mut out);
    system_time(s, &mut out);
    out
}

/// The /proc rule "high kernel time" names a process (its subject); when the syscall rules
/// explain that process's system time, the /proc finding becomes context (info) and carries
/// the explaining finding's evidence.
pub fn demote_explained(all: &mut [Finding]) {
    let explained: Vec<(i32, Vec<crate::model::report::Evidence>)> = all
        .iter()
        .filter(|f| f.id == "cpu.utilization.syscall_system_time")
        .filter_map(|f| Some((f.subject.pid?, f.evidence.clone())))
        .collect();
    for f in all.iter_mut() {
        if f.id != "cpu.utilization.system_time" {
            continue;
        }
        if let Some((_, ev)) = explained.iter().find(|(p, _)| Some(*p) == f.subject.pid) {
            f.severity = Severity::Info;
            f.evidence.extend(ev.iter().cloned());
        }
    }
}

const FORKS: &[&str] = &["fork", "vfork", "clone", "clone3"];

/// The /proc storm rule names the parent by its reaped children's CPU, which a long job of
/// another parent can blur; the syscall probe counts who calls fork/vfork/clone. When a fork
/// storm was found, its subject becomes the process that made the most of those calls (not a
/// "children of" row: grandchildren do not fork the storm).
pub fn name_spawner(s: &SyscallsSection, all: &mut [Finding]) {
    let secs = s.traced_s.max(1e-3);
    let mut by: std::collections::BTreeMap<u32, (String, u64)> = Default::default();
    for b in s
        .breakdown
        .iter()
        .filter(|b| FORKS.contains(&b.syscall.as_str()))
    {
        let e = by.entry(b.pid).or_insert_with(|| (b.comm.clone(), 0));
        e.1 += b.calls;
    }
    let children: Vec<u32> = s
        .processes
        .iter()
        .filter(|p| p.children)
        .map(|p| p.pid)
        .collect();
    let Some((pid, (comm, calls))) = by
        .into_iter()
        .filter(|(pid, (comm, _))| !(children.contains(pid) && comm.starts_with("children of ")))
        .max_by(|a, b| a.1 .1.cmp(&b.1 .1).then(b.0.cmp(&a.0)))
    else {
        return;
    };
    for f in all.iter_mut().filter(|f| f.id == super::procs_storm::ID) {
        f.subject = Subject {
            ppid: Some(pid as i32),
            ..Subject::process(pid as i32, &comm)
        };
        let value = |m: &str| f.evidence.iter().find(|e| e.metric == m).map(|e| e.value);
        let sys = value("cpu.system_pct")
            .map(|v| format!(", {v:.0}% system time (fork, exec and exit are kernel work)"))
            .unwrap_or_default();
        f.summary = format!(
            "Process-creation storm: {:.0} new processes/s{sys}; spawned by {comm} (pid {pid}), \
             which called fork/vfork/clone {}/s (traced)",
            value("vmstat.forks_per_s").unwrap_or(0.0),
            rate(calls as f64 / secs)
        );
        f.next.insert(0, format!("pstree -p {pid}"));
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
                "; the next busiest: {} (pid {}) {}/s",
                p.comm,
                p.pid,
                rate(p.calls_per_s)
            )
        })
        .unwrap_or_default();
    out.push(finding(
        "syscalls.saturation.storm",
        sev,
        "syscalls",
        format!(
            "Syscall storm: {} (pid {}) makes {} syscalls/s, {:.0}% of all, {:.0}% of them {}{second}",
            top.comm,
            top.pid,
            rate(top.calls_per_s),
            top.calls_pct,
            top.top_syscall_pct,
            top.top_syscall
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

/// Longest average futex wait (ms) that still reads as waiting for a lock holder: a holder
/// keeps a lock for micro- to milliseconds; a pool parked on a condition variable until work
/// arrives waits for hundreds of ms or seconds.
const FUTEX_WOKEN_AVG_MAX_MS: f64 = 100.0;
/// Threads waiting on woken futexes, on average, below which nothing waits enough to matter.
const FUTEX_WAITERS_MIN: f64 = 0.5;

/// Lock contention: threads that wait in futex until another thread wakes them (return 0),
/// in short waits, while the process is busy or calls futex at a pathological rate. A wait
/// that ends in a timeout (an idle pool polling its queue, `pthread_cond_timedwait`) is the
/// thread giving up, not a lock holder handing over: it does not count.
fn futex(s: &SyscallsSection, out: &mut Vec<Finding>) {
    if !s.latency_measured {
        return;
    }
    let busy_min = threshold("syscalls.futex_busy_cpu_pct").warn;
    let rate_min = threshold("syscalls.futex_calls_per_s").warn;
    let secs = s.traced_s.max(1e-3);
    for p in &s.processes {
        let (Some(ptime), Some(woken), Some(failed)) =
            (p.time_ms, p.futex_woken_ms, p.futex_failed_ms)
        else {
            continue;
        };
        if ptime <= 0.0 || woken <= 0.0 {
            continue;
        }
        let share = 100.0 * woken / ptime;
        let Some((sev, t)) = level("syscalls.futex_time_pct", share) else {
            continue;
        };
        let waiters = woken / 1000.0 / secs;
        let avg_ms = woken / p.futex_ok_calls.max(1) as f64;
        if waiters < FUTEX_WAITERS_MIN || avg_ms > FUTEX_WOKEN_AVG_MAX_MS {
            continue;
        }
        let futex_rate = s
            .breakdown
            .iter()
            .find(|b| b.pid == p.pid && b.syscall == FUTEX)
            .map(|b| b.calls_per_s)
            .unwrap_or(p.futex_ok_calls as f64 / secs);
        let cpu = p.cpu_pct.unwrap_or(0.0);
        if cpu < busy_min && futex_rate < rate_min {
            continue;
        }
        let timed_out = 100.0 * failed / (woken + failed).max(1e-9);
        let mut e = vec![
            ev("syscalls.futex_time_pct", share, ">=", t.warn, "pct"),
            ev(
                "syscalls.futex_woken_wait_avg_ms",
                avg_ms,
                "<=",
                FUTEX_WOKEN_AVG_MAX_MS,
                "ms",
            ),
        ];
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
        out.push(
            finding(
                "locks.saturation.futex",
                sev,
                "locks",
                format!(
                    "Lock contention: {} (pid {}) spends {share:.0}% of its syscall time in futex \
                     waits that another thread ended ({waiters:.1} thread-seconds per second, \
                     {avg_ms:.2} ms per call, {} futex calls/s{}) while using {cpu:.0}% CPU",
                    p.comm,
                    p.pid,
                    rate(futex_rate),
                    if failed > 0.0 {
                        format!("; {timed_out:.0}% of futex time timed out")
                    } else {
                        String::new()
                    }
                ),
                e,
                vec![
                    format!("triage offcpu --pid {}", p.pid),
                    format!(
                        "perf lock record -p {} -- sleep 5 && perf lock report",
                        p.pid
                    ),
                    format!("strace -f -e futex -c -p {} (briefly)", p.pid),
                ],
            )
            .with_subject(Subject {
                syscall: Some(FUTEX.into()),
                ..Subject::process(p.pid as i32, &p.comm)
            }),
        );
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
                "; {} syscalls/s, {:.0}% {} by count, {pc:.0}% of its syscall time in {n}",
                rate(p.calls_per_s),
                p.top_syscall_pct,
                p.top_syscall
            ),
            _ => format!(
                "; {} syscalls/s, {:.0}% of them {}",
                rate(p.calls_per_s),
                p.top_syscall_pct,
                p.top_syscall
            ),
        };
        out.push(
            finding(
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
            )
            .with_subject(crate::model::report::Subject {
                syscall: Some(p.top_syscall.clone()),
                ..crate::model::report::Subject::process(p.pid as i32, &p.comm)
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sections::{ProcRow, ProcessSection};
    use crate::model::syscalls::section;
    use crate::probe::output::*;

    fn proc(pid: u32, comm: &str, calls: &[(u32, u64, u64, u64)]) -> ProcessTotal {
        ProcessTotal {
            pid,
            start_ns: 1,
            children: false,
            exited: 0,
            comm: Some(comm.into()),
            syscalls: calls
                .iter()
                .map(|&(nr, count, errors, time_ns)| ProcessSyscall {
                    nr,
                    count,
                    errors,
                    time_ns,
                    fail_ns: 0,
                })
                .collect(),
        }
    }

    fn probe(procs: Vec<ProcessTotal>, errnos: Vec<ErrnoCount>) -> SyscallsProbe {
        let mut totals: std::collections::BTreeMap<u32, SyscallTotal> = Default::default();
        for p in &procs {
            for s in &p.syscalls {
                let t = totals.entry(s.nr).or_insert(SyscallTotal {
                    nr: s.nr,
                    ..Default::default()
                });
                t.count += s.count;
                t.errors += s.errors;
                t.time_ns += s.time_ns;
            }
        }
        SyscallsProbe {
            arch: "x86_64".into(),
            latency: true,
            traced_s: 1.0,
            syscalls: totals.into_values().collect(),
            processes: procs,
            errnos,
            ..Default::default()
        }
    }

    fn busy(pid: i32, cpu: f64, sys: f64) -> ProcessSection {
        ProcessSection {
            top_cpu: vec![ProcRow {
                pid,
                comm: "x".into(),
                cpu_pct: cpu,
                sys_pct: sys,
                usr_pct: cpu - sys,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn ids(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn storm_needs_rate_and_dominance() {
        // 600k getppid/s from one process, others quiet: critical storm.
        let p = probe(
            vec![
                proc(1, "loop", &[(110, 600_000, 0, 0)]),
                proc(2, "sh", &[(0, 10, 0, 0)]),
            ],
            vec![],
        );
        let f = findings(&section(&p, None));
        assert_eq!(ids(&f), ["syscalls.saturation.storm"]);
        assert_eq!(f[0].severity, Severity::Critical);
        // Two equally busy processes: nobody dominates, no storm.
        let p = probe(
            vec![
                proc(1, "a", &[(110, 60_000, 0, 0)]),
                proc(2, "b", &[(110, 60_000, 0, 0)]),
            ],
            vec![],
        );
        assert!(findings(&section(&p, None)).is_empty());
    }

    #[test]
    fn futex_time_is_contention_only_when_busy() {
        // 8 s/s waiting in futex (202), 2000 calls/s.
        let p = probe(
            vec![proc(7, "pool", &[(202, 2000, 0, 8_000_000_000)])],
            vec![],
        );
        // An idle thread pool waits in futex too: no finding.
        assert!(findings(&section(&p, Some(&busy(7, 1.0, 0.5)))).is_empty());
        // Busy while waiting: lock contention.
        let f = findings(&section(&p, Some(&busy(7, 100.0, 5.0))));
        assert_eq!(ids(&f), ["locks.saturation.futex"]);
    }

    #[test]
    fn futex_waits_that_time_out_are_an_idle_pool_not_contention() {
        // 16 threads in 50 ms timed waits: 8 s/s in futex, 320 calls/s, every wait timing out,
        // in a process that is busy elsewhere (a thread at 90% CPU).
        let mut p = probe(
            vec![proc(7, "pool", &[(202, 320, 320, 8_000_000_000)])],
            vec![],
        );
        p.processes[0].syscalls[0].fail_ns = 8_000_000_000;
        assert!(findings(&section(&p, Some(&busy(7, 90.0, 5.0)))).is_empty());
        // The same time in waits that another thread ended: contention, naming the process.
        p.processes[0].syscalls[0].fail_ns = 0;
        p.processes[0].syscalls[0].errors = 0;
        let f = findings(&section(&p, Some(&busy(7, 90.0, 5.0))));
        assert_eq!(ids(&f), ["locks.saturation.futex"]);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].subject.pid, Some(7));
        assert_eq!(f[0].subject.comm.as_deref(), Some("pool"));
        // Woken, but each wait lasts a second (workers parked until rare work arrives): idle.
        let p = probe(vec![proc(7, "pool", &[(202, 8, 0, 8_000_000_000)])], vec![]);
        assert!(findings(&section(&p, Some(&busy(7, 90.0, 5.0)))).is_empty());
    }

    #[test]
    fn errors_by_kind() {
        // EMFILE once is exhaustion; ECONNREFUSED at 50/s; ENOENT at 5000/s, all failing.
        let p = probe(
            vec![proc(
                3,
                "srv",
                &[(43, 10, 1, 0), (42, 50, 50, 0), (257, 5000, 5000, 0)],
            )],
            vec![
                ErrnoCount {
                    nr: 43,
                    errno: 24,
                    count: 1,
                },
                ErrnoCount {
                    nr: 42,
                    errno: 111,
                    count: 50,
                },
                ErrnoCount {
                    nr: 257,
                    errno: 2,
                    count: 5000,
                },
            ],
        );
        let mut got = ids(&findings(&section(&p, None)))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        got.sort();
        assert_eq!(
            got,
            [
                "syscalls.errors.connection_refused",
                "syscalls.errors.exhaustion",
                "syscalls.errors.rate"
            ]
        );
        // EAGAIN at the same rate is how non-blocking I/O works: info only.
        let p = probe(
            vec![proc(3, "srv", &[(0, 5000, 5000, 0)])],
            vec![ErrnoCount {
                nr: 0,
                errno: 11,
                count: 5000,
            }],
        );
        let f = findings(&section(&p, None));
        assert_eq!(f[0].severity, Severity::Info);
    }

    #[test]
    fn system_time_is_explained_by_the_top_syscall() {
        let p = probe(
            vec![proc(9, "spin", &[(110, 900_000, 0, 400_000_000)])],
            vec![],
        );
        let mut f = findings(&section(&p, Some(&busy(9, 99.0, 93.0))));
        let sys = f
            .iter()
            .find(|f| f.id == "cpu.utilization.syscall_system_time")
            .unwrap();
        assert!(sys.summary.contains("getppid"), "{}", sys.summary);
        assert_eq!(
            sys.subject,
            crate::model::report::Subject {
                syscall: Some("getppid".into()),
                ..crate::model::report::Subject::process(9, "spin")
            }
        );
        // The /proc rule naming the same process becomes context.
        f.push(Finding {
            id: "cpu.utilization.system_time".into(),
            severity: Severity::Warning,
            resource: "cpu".into(),
            subject: crate::model::report::Subject::process(9, "spin"),
            summary: "High kernel time: most system time: spin (pid 9) 93% sys".into(),
            evidence: vec![],
            next: vec![],
            score: 1.0,
        });
        demote_explained(&mut f);
        let demoted = f.last().unwrap();
        assert_eq!(demoted.severity, Severity::Info);
        assert_eq!(demoted.evidence[0].metric, "syscalls.process_sys_share_pct");
    }
}
