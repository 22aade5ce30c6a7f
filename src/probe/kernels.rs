//! The oldest kernel each probe runs on, and why (docs/kernels.md explains each line).
//!
//! A probe on a kernel older than its floor is not loaded: it is reported unavailable with the
//! feature it lacks, instead of a verifier or attach error (or, for the block tracepoints
//! before 5.11, silently wrong numbers: their raw arguments changed). Distribution kernels
//! that backported the feature can skip the check with `TRIAGE_SKIP_KERNEL_FLOOR=1`.

/// Environment variable that skips the floor check (backported kernels, e.g. RHEL).
pub const SKIP_ENV: &str = "TRIAGE_SKIP_KERNEL_FLOOR";

/// One thing a probe (or one part of it) needs from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// Probe name (`syscalls`, `offcpu`, `latency`).
    pub probe: &'static str,
    /// The part of the probe that needs it (`all`, or `runqueue`, `block`, `cgroup filter`...).
    pub part: &'static str,
    /// Oldest upstream kernel with it.
    pub kernel: (u32, u32),
    /// What it is.
    pub feature: &'static str,
}

const fn need(
    probe: &'static str,
    part: &'static str,
    kernel: (u32, u32),
    feature: &'static str,
) -> Need {
    Need {
        probe,
        part,
        kernel,
        feature,
    }
}

/// What sets each probe's floor on its oldest attach path (the tp_btf path needs more: see
/// [`TP_BTF`]). Only the highest requirement of a part is listed.
pub const NEEDS: &[Need] = &[
    need(
        "syscalls",
        "all",
        (5, 3),
        "bounded loops (the --comm filter's loop; back-edges are rejected before 5.3), on top of \
         global data (.rodata settings, 5.2)",
    ),
    need(
        "syscalls",
        "cgroup filter",
        (5, 6),
        "bpf_get_current_ancestor_cgroup_id (--cgroup)",
    ),
    need(
        "offcpu",
        "all",
        (5, 18),
        "sched_switch's prev_state argument (added in 5.18; earlier kernels reject the attach)",
    ),
    need(
        "offcpu",
        "cgroup filter",
        (5, 6),
        "bpf_get_current_ancestor_cgroup_id (--cgroup)",
    ),
    need(
        "profile",
        "all",
        (5, 3),
        "bounded loops (the --comm filter's loop), on top of global data (.rodata, 5.2) and \
         perf_event programs with bpf_get_stackid (4.9)",
    ),
    need(
        "profile",
        "cgroup filter",
        (5, 6),
        "bpf_get_current_ancestor_cgroup_id (--cgroup)",
    ),
    need(
        "latency",
        "runqueue",
        (5, 18),
        "sched_switch's prev_state argument (added in 5.18)",
    ),
    need(
        "latency",
        "block",
        (5, 11),
        "block_rq_issue/block_rq_insert taking only the request (before 5.11 the queue came \
         first: the raw arguments would be misread)",
    ),
    need(
        "latency",
        "retransmits",
        (5, 2),
        "global data (.rodata settings)",
    ),
    need(
        "tasks",
        "all",
        (5, 17),
        "bpf_loop (counting each process's open fds), on top of the iter/task program type with \
         bpf_seq_write (5.8), task_struct.__state (5.14) and thread_info.cpu (5.16), read \
         through CO-RE",
    ),
];

/// What the preferred tp_btf path adds (the probes fall back to raw_tp without it).
pub const TP_BTF: &[Need] = &[
    need(
        "syscalls",
        "tp_btf",
        (5, 11),
        "bpf_get_current_task_btf and task-local storage",
    ),
    need("offcpu", "tp_btf", (5, 9), "bpf_get_task_stack"),
    need("latency", "tp_btf", (5, 5), "BTF-typed raw tracepoints"),
];

/// `major.minor` of a kernel release string (`5.15.0-91-generic` -> (5, 15)).
pub fn version(release: &str) -> Option<(u32, u32)> {
    crate::probe::checks::kernel_version(release)
}

/// Why probe `probe` (with `parts` of it wanted; "all" is always included) cannot run on kernel
/// `release`, or `None` when it can (or the version is unknown: then loading decides).
pub fn too_old(probe: &str, parts: &[&str], release: &str) -> Option<String> {
    let have = version(release)?;
    let missing: Vec<&Need> = NEEDS
        .iter()
        .filter(|n| n.probe == probe && (n.part == "all" || parts.contains(&n.part)))
        .filter(|n| have < n.kernel)
        .collect();
    let worst = missing.iter().max_by_key(|n| n.kernel)?;
    let (ma, mi) = worst.kernel;
    Some(format!(
        "kernel {} is older than {ma}.{mi}, which the {probe} probe{} needs: {} \
         (if your distribution backported it, set {SKIP_ENV}=1)",
        release.split_whitespace().next().unwrap_or(release),
        if worst.part == "all" {
            String::new()
        } else {
            format!("'s {}", worst.part)
        },
        worst.feature
    ))
}

/// [`too_old`] for the running kernel, unless `TRIAGE_SKIP_KERNEL_FLOOR` is set.
pub fn running_too_old(probe: &str, parts: &[&str]) -> Option<String> {
    if std::env::var_os(SKIP_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        return None;
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    too_old(probe, parts, release.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_by_probe_and_part() {
        // Debian 11 (5.10): syscalls yes, offcpu no (prev_state), latency's block no.
        assert_eq!(too_old("syscalls", &[], "5.10.0-28-amd64"), None);
        let off = too_old("offcpu", &[], "5.10.0-28-amd64").unwrap();
        assert!(off.contains("older than 5.18"), "{off}");
        assert!(off.contains("prev_state"), "{off}");
        assert!(off.contains(SKIP_ENV), "{off}");
        let blk = too_old("latency", &["block", "retransmits"], "5.10.0-28-amd64").unwrap();
        assert!(blk.contains("5.11") && blk.contains("'s block"), "{blk}");
        assert_eq!(too_old("latency", &["retransmits"], "5.10.0"), None);
        // The highest missing requirement is the one named.
        let all = too_old("latency", &["runqueue", "block"], "5.4.0-150-generic").unwrap();
        assert!(all.contains("5.18") && all.contains("runqueue"), "{all}");
        // Ubuntu 20.04 GA kernel: --cgroup needs 5.6.
        let cg = too_old("syscalls", &["cgroup filter"], "5.4.0-150-generic").unwrap();
        assert!(cg.contains("5.6") && cg.contains("ancestor_cgroup"), "{cg}");
        // RHEL 8 (4.18): nothing.
        assert!(too_old("syscalls", &[], "4.18.0-513.el8.x86_64")
            .unwrap()
            .contains("5.3"));
        // This kernel and unknown versions: go.
        assert_eq!(too_old("offcpu", &["cgroup filter"], "6.18.44"), None);
        assert_eq!(too_old("latency", &["runqueue", "block"], "5.18.0"), None);
        assert_eq!(too_old("offcpu", &[], "garbage"), None);
        // The task iterator: bpf_loop sets its floor (5.17), not iter/task (5.8).
        let t = too_old("tasks", &[], "5.15.0-91-generic").unwrap();
        assert!(
            t.contains("older than 5.17") && t.contains("bpf_loop"),
            "{t}"
        );
        assert_eq!(too_old("tasks", &[], "5.17.0"), None);
        assert_eq!(too_old("tasks", &[], "6.18.44"), None);
    }

    #[test]
    fn every_probe_has_a_floor() {
        for p in super::super::catalog() {
            assert!(NEEDS.iter().any(|n| n.probe == p.name), "{}", p.name);
            // A probe on tracepoints has a preferred tp_btf path; `profile` runs on perf
            // events, `tasks` is an iterator (attached by BTF id: no fallback).
            if p.name != "profile" && p.name != "tasks" {
                assert!(TP_BTF.iter().any(|n| n.probe == p.name), "{}", p.name);
            }
        }
    }
}
