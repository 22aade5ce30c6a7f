//! Thresholds as data (each with its `why`) and the helpers every rule uses: a threshold by
//! name, the severity a value reaches, evidence, a finding. A resource's own thresholds live
//! in its module (`disk::THRESHOLDS`); [`THRESHOLDS`] holds those of resources not yet moved.

use super::contract::{Evidence, Finding, Severity};
use crate::num::r2;

/// One threshold: warn at `warn`, critical at `crit` (compared with `>=` unless said).
#[derive(Debug, Clone, Copy)]
pub struct Threshold {
    pub id: &'static str,
    pub warn: f64,
    pub crit: f64,
    pub unit: &'static str,
    /// Where the number comes from (seed line, or our reasoning).
    pub why: &'static str,
}

pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "syscalls.process_calls_per_s", warn: 50000.0, crit: 500000.0, unit: "per_s", why: "a minimal syscall costs ~100-200 ns (S0:262, S0:966) and 2 M/s cost 200-400 ms of CPU (S0:1154): 50k/s from one process is already ~1% of a CPU in entry/exit alone; 500k/s is a tight loop (S0:994)" },
    Threshold { id: "syscalls.top_process_share_pct", warn: 60.0, crit: 60.0, unit: "pct", why: "companion of the storm rule: the process issues clearly more calls than all others together (our choice for 'far more than the rest': 60%, so two equal loops are not 'a storm from one process')" },
    Threshold { id: "syscalls.futex_time_pct", warn: 50.0, crit: 90.0, unit: "pct", why: "'If 90% of time is in futex(), the process is contending on a lock' (S0:977); warn at half" },
    Threshold { id: "syscalls.futex_busy_cpu_pct", warn: 20.0, crit: 20.0, unit: "pct", why: "companion of the futex rule: contention is waiting while the lock holder runs (S0:1365: contention = high CPU, deadlock = zero CPU); or a futex rate of >= 10k/s. Idle pools are told apart by how their waits end (a timeout is not a wakeup by a holder) and by wait length, so a fifth of a CPU (a holder on a box whose CPUs are shared) is enough" },
    Threshold { id: "syscalls.futex_calls_per_s", warn: 10000.0, crit: 1000000.0, unit: "per_s", why: "healthy ~4,000 futex/s vs pathological ~8 M/s (S0:1352, S0:1361); 'millions of futex() calls per second indicates severe lock contention'" },
    Threshold { id: "syscalls.errors_per_s", warn: 1000.0, crit: 10000.0, unit: "per_s", why: "our choice: failing calls at 1000/s are work wasted in a loop; needs >= 50% of that syscall's calls failing (EAGAIN on non-blocking I/O is normal in small numbers)" },
    Threshold { id: "syscalls.error_pct", warn: 50.0, crit: 50.0, unit: "pct", why: "companion of the error-rate rule: most calls of that syscall fail" },
    Threshold { id: "syscalls.exhaustion_errors", warn: 1.0, crit: 100.0, unit: "count", why: "EMFILE/ENFILE (fd limit, S0:213), ENOMEM, ENOSPC/EDQUOT (S3:303): any one is a resource running out" },
    Threshold { id: "syscalls.refused_per_s", warn: 10.0, crit: 1000.0, unit: "per_s", why: "our choice: ECONNREFUSED at 10/s is a client hammering a dead or overloaded backend" },
    Threshold { id: "syscalls.process_sys_share_pct", warn: 70.0, crit: 90.0, unit: "pct", why: "'100% kernel-mode CPU with no user-mode time means the process is spinning inside the kernel' (S0:976, S0:991); needs >= 20% CPU used so an idle process is never named" },
];

/// Every threshold: the resources' own, then those of resources not yet moved.
pub fn all() -> impl Iterator<Item = &'static Threshold> {
    super::cgroup::THRESHOLDS
        .iter()
        .chain(super::cpu::THRESHOLDS)
        .chain(super::disk::THRESHOLDS)
        .chain(super::filesystem::THRESHOLDS)
        .chain(super::limits::THRESHOLDS)
        .chain(super::memory::THRESHOLDS)
        .chain(super::netif::THRESHOLDS)
        .chain(super::pressure::THRESHOLDS)
        .chain(super::qdisc::THRESHOLDS)
        .chain(super::tcp::THRESHOLDS)
        .chain(super::tasks::THRESHOLDS)
        .chain(THRESHOLDS)
}

pub fn threshold(id: &str) -> Threshold {
    all()
        .find(|t| t.id == id)
        .copied()
        .unwrap_or_else(|| panic!("no threshold named {id}: THRESHOLDS and the rules disagree"))
}

/// `2`, `1.50`: a CPU count as a person writes it.
pub fn fmt_cpus(n: f64) -> String {
    if (n - n.round()).abs() < 0.01 {
        format!("{}", n.round() as i64)
    } else {
        format!("{n:.2}")
    }
}

pub fn ev(metric: &str, value: f64, cmp: &str, t: f64, unit: &str) -> Evidence {
    Evidence {
        metric: metric.to_string(),
        value: r2(value),
        comparison: cmp.to_string(),
        threshold: t,
        unit: unit.to_string(),
    }
}

/// Severity for `value` against threshold `id`, if it crosses the warning level.
pub fn level(id: &str, value: f64) -> Option<(Severity, Threshold)> {
    let t = threshold(id);
    if value >= t.crit {
        Some((Severity::Critical, t))
    } else if value >= t.warn {
        Some((Severity::Warning, t))
    } else {
        None
    }
}

pub fn finding(
    id: &str,
    sev: Severity,
    resource: &str,
    summary: String,
    evidence: Vec<Evidence>,
    next: Vec<String>,
) -> Finding {
    let score = evidence
        .first()
        .map(|e| {
            if e.threshold > 0.0 {
                e.value / e.threshold
            } else {
                1.0
            }
        })
        .unwrap_or(1.0);
    Finding {
        id: id.to_string(),
        severity: sev,
        resource: resource.to_string(),
        subject: Default::default(),
        summary,
        evidence,
        next,
        score: r2(score),
    }
}
