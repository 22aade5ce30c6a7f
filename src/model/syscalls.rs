//! The `syscalls` section: what the syscall probe counted, as tables (top processes, top
//! syscalls with errors and latency, process x syscall), with names resolved and rates over
//! the traced time. Built from [`SyscallsProbe`] (live or recorded) plus the /proc process
//! table for each process's user/system CPU split.

use crate::model::SatSum;
use serde::{Deserialize, Serialize};

use super::build::r2;
use super::sections::ProcessSection;
use crate::probe::hist::{self, Percentile};
use crate::probe::names::{errno_name, syscall_name};
use crate::probe::output::{Dropped, SyscallsProbe};

/// Rows kept per table.
pub const TOP_PROCESSES: usize = 20;
pub const TOP_SYSCALLS: usize = 25;
pub const TOP_BREAKDOWN: usize = 25;
/// Slots of the BPF histogram (`MAX_SLOTS` in bpf/syscalls.h).
pub const HIST_SLOTS: usize = 36;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SyscallsSection {
    /// How the probe attached: `tp_btf`, `raw_tp` or `tracepoint`.
    pub attach_type: String,
    /// Whether time in syscall was measured (`--latency`, the default).
    pub latency_measured: bool,
    /// The syscall table used for names: `x86_64` or `aarch64`.
    pub arch: String,
    /// `system-wide`, `pid 812`, `cgroup /a/b`, `comm nginx`.
    pub scope: String,
    /// Seconds the probe was attached; rates divide by it.
    pub traced_s: f64,
    /// Load + attach time of the probe.
    pub startup_ms: f64,
    pub calls: u64,
    pub calls_per_s: f64,
    pub errors: u64,
    pub errors_per_s: f64,
    /// Thread-time spent in syscalls, summed (can exceed the window with many threads).
    pub time_in_syscalls_ms: Option<f64>,
    /// Processes seen (all of them; `processes` lists the busiest).
    pub processes_seen: u32,
    pub processes: Vec<SyscallProcessRow>,
    /// Distinct syscalls seen (`syscalls` lists the most called).
    pub syscalls_seen: u32,
    pub syscalls: Vec<SyscallRow>,
    /// The busiest (process, syscall) pairs.
    pub breakdown: Vec<ProcessSyscallRow>,
    /// Events not recorded because a map was full; non-zero means a table is incomplete.
    pub dropped: Dropped,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SyscallProcessRow {
    pub pid: u32,
    /// The name when first seen (kept after the process exits).
    pub comm: String,
    pub calls: u64,
    pub calls_per_s: f64,
    /// Share of all calls in the scope.
    pub calls_pct: f64,
    pub errors: u64,
    pub time_ms: Option<f64>,
    /// Its most called syscall and that syscall's share of its calls.
    pub top_syscall: String,
    pub top_syscall_pct: f64,
    /// Where most of its syscall time went (latency mode).
    pub top_time_syscall: Option<String>,
    pub top_time_syscall_pct: Option<f64>,
    /// From /proc over the same window, when the process is among the top CPU users.
    pub cpu_pct: Option<f64>,
    pub sys_pct: Option<f64>,
    /// Time in futex calls that returned 0 (woken by another thread), and in futex calls that
    /// failed (timed out, interrupted), ms; latency mode, processes that waited in futex only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub futex_woken_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub futex_failed_ms: Option<f64>,
    /// Futex calls that did not fail (waits that were woken, and wakes).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub futex_ok_calls: u64,
    /// The row is the children of process `pid` together (calls that did not fit in the
    /// per-process table); `comm` reads `children of NAME`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub children: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SyscallRow {
    pub nr: u32,
    pub name: String,
    pub calls: u64,
    pub calls_per_s: f64,
    pub errors: u64,
    pub errors_per_s: f64,
    pub error_pct: f64,
    /// Most frequent errnos, most first.
    pub top_errors: Vec<ErrnoRow>,
    pub time_ms: Option<f64>,
    /// Share of all syscall time.
    pub time_pct: Option<f64>,
    pub avg_us: Option<f64>,
    pub latency: Option<LatencyHistogram>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ErrnoRow {
    pub errno: u32,
    pub name: String,
    pub count: u64,
}

/// log2 histogram of time in the syscall. Percentiles are bucket-bounded: the true value lies
/// in `[lo_ns, hi_ns)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct LatencyHistogram {
    pub count: u64,
    pub sum_ns: u64,
    pub buckets: Vec<Bucket>,
    pub p50: Option<Percentile>,
    pub p90: Option<Percentile>,
    pub p99: Option<Percentile>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Bucket {
    pub lo_ns: u64,
    /// Exclusive; `null` for the last, open bucket.
    pub hi_ns: Option<u64>,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProcessSyscallRow {
    pub pid: u32,
    pub comm: String,
    pub syscall: String,
    pub calls: u64,
    pub calls_per_s: f64,
    pub errors: u64,
    pub time_ms: Option<f64>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn rate(n: u64, s: f64) -> f64 {
    if s > 0.0 {
        r2(n as f64 / s)
    } else {
        0.0
    }
}

fn pct(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        r2(100.0 * a / b)
    } else {
        0.0
    }
}

fn ms(ns: u64) -> f64 {
    r2(ns as f64 / 1e6)
}

pub fn histogram(slots: &[u64], sum_ns: u64) -> Option<LatencyHistogram> {
    let count: u64 = slots.iter().copied().sat_sum();
    if count == 0 {
        return None;
    }
    let buckets = slots
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| Bucket {
            lo_ns: hist::slot_lo(i),
            hi_ns: hist::slot_hi(i, HIST_SLOTS),
            count: c,
        })
        .collect();
    Some(LatencyHistogram {
        count,
        sum_ns,
        buckets,
        p50: hist::percentile(slots, 50.0, HIST_SLOTS),
        p90: hist::percentile(slots, 90.0, HIST_SLOTS),
        p99: hist::percentile(slots, 99.0, HIST_SLOTS),
    })
}

/// The section from the probe's output; `procs` (the /proc table of the same window) adds each
/// process's CPU split.
pub fn section(p: &SyscallsProbe, procs: Option<&ProcessSection>) -> SyscallsSection {
    let secs = p.traced_s;
    let name = |nr: u32| syscall_name(&p.arch, nr);
    let calls: u64 = p.syscalls.iter().map(|s| s.count).sat_sum();
    let errors: u64 = p.syscalls.iter().map(|s| s.errors).sat_sum();
    let time_ns: u64 = p.syscalls.iter().map(|s| s.time_ns).sat_sum();
    let lat = p.latency;

    let mut syscalls: Vec<SyscallRow> = p
        .syscalls
        .iter()
        .map(|s| {
            let mut errs: Vec<ErrnoRow> = p
                .errnos
                .iter()
                .filter(|e| e.nr == s.nr)
                .map(|e| ErrnoRow {
                    errno: e.errno,
                    name: errno_name(e.errno),
                    count: e.count,
                })
                .collect();
            errs.sort_by(|a, b| b.count.cmp(&a.count).then(a.errno.cmp(&b.errno)));
            errs.truncate(3);
            let timed: u64 = s.slots.iter().copied().sat_sum();
            SyscallRow {
                nr: s.nr,
                name: name(s.nr),
                calls: s.count,
                calls_per_s: rate(s.count, secs),
                errors: s.errors,
                errors_per_s: rate(s.errors, secs),
                error_pct: pct(s.errors as f64, s.count as f64),
                top_errors: errs,
                time_ms: lat.then(|| ms(s.time_ns)),
                time_pct: lat.then(|| pct(s.time_ns as f64, time_ns as f64)),
                avg_us: (lat && timed > 0).then(|| r2(s.time_ns as f64 / timed as f64 / 1e3)),
                latency: if lat {
                    histogram(&s.slots, s.time_ns)
                } else {
                    None
                },
            }
        })
        .collect();
    syscalls.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.nr.cmp(&b.nr)));
    let syscalls_seen = syscalls.len() as u32;
    syscalls.truncate(TOP_SYSCALLS);

    let cpu_of = |pid: u32| {
        procs
            .and_then(|ps| ps.top_cpu.iter().find(|r| r.pid == pid as i32))
            .map(|r| (r.cpu_pct, r.sys_pct))
    };
    let mut processes: Vec<SyscallProcessRow> = Vec::new();
    let mut breakdown: Vec<ProcessSyscallRow> = Vec::new();
    for pr in &p.processes {
        let mut comm = pr.comm.clone().unwrap_or_else(|| "?".into());
        if pr.children {
            comm = format!("children of {comm}");
        }
        let pcalls: u64 = pr.syscalls.iter().map(|s| s.count).sat_sum();
        let perrs: u64 = pr.syscalls.iter().map(|s| s.errors).sat_sum();
        let ptime: u64 = pr.syscalls.iter().map(|s| s.time_ns).sat_sum();
        let top = pr
            .syscalls
            .iter()
            .max_by(|a, b| a.count.cmp(&b.count).then(b.nr.cmp(&a.nr)));
        let top_t = pr
            .syscalls
            .iter()
            .filter(|s| s.time_ns > 0)
            .max_by(|a, b| a.time_ns.cmp(&b.time_ns).then(b.nr.cmp(&a.nr)));
        let cpu = cpu_of(pr.pid);
        let futex = pr.syscalls.iter().filter(|s| name(s.nr) == "futex").fold(
            (0u64, 0u64, 0u64),
            |a, s| {
                (
                    a.0 + s.time_ns,
                    a.1 + s.fail_ns,
                    a.2 + s.count.saturating_sub(s.errors),
                )
            },
        );
        processes.push(SyscallProcessRow {
            pid: pr.pid,
            comm: comm.clone(),
            calls: pcalls,
            calls_per_s: rate(pcalls, secs),
            calls_pct: pct(pcalls as f64, calls as f64),
            errors: perrs,
            time_ms: lat.then(|| ms(ptime)),
            top_syscall: top.map(|s| name(s.nr)).unwrap_or_default(),
            top_syscall_pct: top
                .map(|s| pct(s.count as f64, pcalls as f64))
                .unwrap_or(0.0),
            top_time_syscall: top_t.map(|s| name(s.nr)),
            top_time_syscall_pct: top_t.map(|s| pct(s.time_ns as f64, ptime as f64)),
            cpu_pct: cpu.map(|c| c.0),
            sys_pct: cpu.map(|c| c.1),
            futex_woken_ms: (lat && futex.0 > 0).then(|| ms(futex.0.saturating_sub(futex.1))),
            futex_failed_ms: (lat && futex.0 > 0).then(|| ms(futex.1)),
            futex_ok_calls: futex.2,
            children: pr.children,
        });
        for s in &pr.syscalls {
            breakdown.push(ProcessSyscallRow {
                pid: pr.pid,
                comm: comm.clone(),
                syscall: name(s.nr),
                calls: s.count,
                calls_per_s: rate(s.count, secs),
                errors: s.errors,
                time_ms: lat.then(|| ms(s.time_ns)),
            });
        }
    }
    processes.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.pid.cmp(&b.pid)));
    let processes_seen = processes.len() as u32;
    processes.truncate(TOP_PROCESSES);
    breakdown.sort_by(|a, b| {
        b.calls
            .cmp(&a.calls)
            .then(a.pid.cmp(&b.pid))
            .then(a.syscall.cmp(&b.syscall))
    });
    breakdown.truncate(TOP_BREAKDOWN);

    SyscallsSection {
        attach_type: p.attach_type.clone(),
        latency_measured: lat,
        arch: p.arch.clone(),
        scope: p.scope.describe(),
        traced_s: (secs * 1000.0).round() / 1000.0,
        startup_ms: r2(p.startup_ms),
        calls,
        calls_per_s: rate(calls, secs),
        errors,
        errors_per_s: rate(errors, secs),
        time_in_syscalls_ms: lat.then(|| ms(time_ns)),
        processes_seen,
        processes,
        syscalls_seen,
        syscalls,
        breakdown,
        dropped: p.dropped.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::output::*;

    fn probe() -> SyscallsProbe {
        let mut slots = vec![0; 8];
        slots[7] = 100; // [128, 256) ns
        SyscallsProbe {
            format_version: SYSCALLS_FORMAT,
            arch: "x86_64".into(),
            attach_type: "tp_btf".into(),
            latency: true,
            traced_s: 2.0,
            syscalls: vec![
                SyscallTotal {
                    nr: 110,
                    count: 100,
                    errors: 0,
                    time_ns: 15_000,
                    slots,
                },
                SyscallTotal {
                    nr: 257,
                    count: 10,
                    errors: 4,
                    time_ns: 0,
                    slots: vec![],
                },
            ],
            processes: vec![ProcessTotal {
                pid: 42,
                start_ns: 1,
                children: false,
                exited: 0,
                comm: Some("loop".into()),
                syscalls: vec![
                    ProcessSyscall {
                        nr: 110,
                        count: 100,
                        errors: 0,
                        time_ns: 15_000,
                        fail_ns: 0,
                    },
                    ProcessSyscall {
                        nr: 257,
                        count: 10,
                        errors: 4,
                        time_ns: 0,
                        fail_ns: 0,
                    },
                ],
            }],
            errnos: vec![ErrnoCount {
                nr: 257,
                errno: 2,
                count: 4,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn names_rates_errors_and_percentiles() {
        let s = section(&probe(), None);
        assert_eq!(s.calls, 110);
        assert_eq!(s.calls_per_s, 55.0);
        assert_eq!(s.syscalls[0].name, "getppid");
        assert_eq!(s.syscalls[0].avg_us, Some(0.15));
        let h = s.syscalls[0].latency.as_ref().unwrap();
        assert_eq!(h.p50.unwrap().lo_ns, 128);
        assert_eq!(h.p99.unwrap().hi_ns, Some(256));
        assert_eq!(s.syscalls[1].name, "openat");
        assert_eq!(s.syscalls[1].error_pct, 40.0);
        assert_eq!(s.syscalls[1].top_errors[0].name, "ENOENT");
        assert_eq!(s.processes[0].comm, "loop");
        assert_eq!(s.processes[0].top_syscall, "getppid");
        assert_eq!(s.processes[0].calls_pct, 100.0);
        assert_eq!(s.breakdown.len(), 2);
    }

    /// A reused PID is a different process (another start time): two rows, never merged.
    #[test]
    fn reused_pid_stays_two_processes() {
        let mut p = probe();
        let mut again = p.processes[0].clone();
        again.start_ns = 999;
        again.comm = Some("other".into());
        again.syscalls.truncate(1);
        p.processes.push(again);
        let s = section(&p, None);
        assert_eq!(s.processes_seen, 2);
        let comms: Vec<&str> = s.processes.iter().map(|r| r.comm.as_str()).collect();
        assert_eq!(comms, ["loop", "other"]);
        assert!(s.processes.iter().all(|r| r.pid == 42));
    }
}
