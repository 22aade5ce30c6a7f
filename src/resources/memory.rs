//! The memory resource (free): the system's memory and swap at the end of the window, with
//! the cgroup limit that applies to us; the mem view's detail section (the MemAvailable
//! picture, reclaim, OOM kills, RSS by process, memory cgroups); its USE metrics; the
//! memory thresholds; the memory rules (available memory, swap, swapping, major faults, OOM
//! kills), which also weigh other resources, passed in as [`Inputs`] (vmstat paging,
//! processes, cgroups, the kernel log); free's columns. The mem view's rules and tables are
//! in [`deep`].

pub mod deep;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::cgroup::CgroupRow;
use super::columns::{Align, Column};
use super::contract::{Finding, Metric, Resource, Severity, Subject, UseKind};
use super::kernel_log::{is_oom, klog_when, KernelLogSection, KlogGroup};
use super::pressure::PsiRow;
use super::rule::{ev, finding, level, threshold, Threshold};
use super::scope::{before, cut, in_cgroup, psi_stall_ms, Scope};
use super::tasks::ProcRow;
use crate::collect::kmsg::{self, KmsgClass};
use crate::collect::run::Readings;
use crate::num::{delta, pct, r2, rate, SatSum};
use crate::text::human_bytes;
use UseKind::{Errors as E, Saturation as S, Utilization as U};

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MemorySection {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub available_bytes: Option<u64>,
    pub buff_cache_bytes: u64,
    pub available_pct: Option<f64>,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub dirty_bytes: u64,
    pub committed_as_bytes: Option<u64>,
    pub commit_limit_bytes: Option<u64>,
    /// The workload's cgroup limit, when tighter than the host's memory.
    pub limit_bytes: Option<u64>,
    pub limit_source: Option<String>,
}

// ---- deep level (`triage mem`) ------------------------------------------------------------

/// The MemAvailable picture, bytes (/proc/meminfo).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MemBreakdown {
    pub total_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    pub anon_bytes: Option<u64>,
    pub file_cache_bytes: Option<u64>,
    pub dirty_bytes: Option<u64>,
    pub slab_reclaimable_bytes: Option<u64>,
    pub slab_unreclaimable_bytes: Option<u64>,
    pub shmem_bytes: Option<u64>,
    pub page_tables_bytes: Option<u64>,
    pub kernel_stack_bytes: Option<u64>,
    pub hugepages_total: Option<u64>,
    pub hugepages_free: Option<u64>,
    pub hugepage_size_bytes: Option<u64>,
    pub committed_as_bytes: Option<u64>,
    pub commit_limit_bytes: Option<u64>,
    pub committed_pct_of_limit: Option<f64>,
    pub swap_total_bytes: Option<u64>,
    pub swap_used_bytes: Option<u64>,
}

/// Paging and reclaim over the window (/proc/vmstat), per second.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Reclaim {
    pub swap_in_kb_per_s: Option<f64>,
    pub swap_out_kb_per_s: Option<f64>,
    pub minor_faults_per_s: Option<f64>,
    pub major_faults_per_s: Option<f64>,
    pub kswapd_scan_per_s: Option<f64>,
    pub kswapd_steal_per_s: Option<f64>,
    pub direct_scan_per_s: Option<f64>,
    pub direct_steal_per_s: Option<f64>,
    /// Allocations that had to reclaim directly (allocstall_*), the stall vmstat cannot show.
    pub allocation_stalls_per_s: Option<f64>,
}

/// An OOM kill from the kernel log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct OomEvent {
    pub age_s: f64,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub anon_rss_kb: Option<u64>,
    /// `task_memcg=` of the kill summary, when the log has it.
    pub cgroup: Option<String>,
    pub cgroup_oom: bool,
}

/// One process's memory (pidstat -r, /proc/PID/status).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MemProcRow {
    pub pid: i32,
    pub comm: String,
    pub rss_bytes: u64,
    pub anon_bytes: Option<u64>,
    pub file_bytes: Option<u64>,
    pub shmem_bytes: Option<u64>,
    pub swap_bytes: Option<u64>,
    /// RSS growth over the window (negative when it shrank).
    pub rss_growth_bytes_per_s: Option<f64>,
    pub minor_faults_per_s: f64,
    pub major_faults_per_s: f64,
}

/// A memory cgroup against its limits, and its events in the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MemCgroupRow {
    pub path: String,
    pub usage_bytes: u64,
    /// memory.max (v2) or memory.limit_in_bytes (v1).
    pub limit_bytes: Option<u64>,
    /// memory.high (v2).
    pub high_bytes: Option<u64>,
    pub used_pct: Option<f64>,
    pub swap_bytes: Option<u64>,
    /// memory.events in the window (v2): high, max, oom, oom_kill; v1 failcnt as `max`.
    pub high_events: Option<u64>,
    pub max_events: Option<u64>,
    pub oom_events: Option<u64>,
    pub oom_kill_events: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MemDetail {
    /// Rows each `--top` list left out (list name -> rows not shown), when any (since 1.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub left_out: BTreeMap<String, usize>,
    pub breakdown: MemBreakdown,
    pub reclaim: Reclaim,
    /// PSI memory in the window.
    pub psi_some_stall_ms: Option<f64>,
    pub psi_full_stall_ms: Option<f64>,
    /// /proc/vmstat oom_kill: in the window and since boot.
    pub oom_kills: Option<u64>,
    pub oom_kills_since_boot: Option<u64>,
    pub oom_events: Vec<OomEvent>,
    pub top_rss: Vec<MemProcRow>,
    pub cgroups: Vec<MemCgroupRow>,
    pub thp_enabled: Option<String>,
    pub thp_defrag: Option<String>,
    pub overcommit_memory: Option<u64>,
    pub overcommit_ratio: Option<u64>,
}

fn ro(v: Option<f64>) -> Option<f64> {
    v.map(r2)
}

fn vm_rate(r: &Readings, keys: &[&str]) -> Option<f64> {
    let (a, b) = (&r.t0.system.vmstat, &r.t1.system.vmstat);
    let mut sum = 0.0;
    let mut any = false;
    for k in keys {
        if let (Some(&x), Some(&y)) = (a.get(*k), b.get(*k)) {
            sum += rate(x, y, r.meta.elapsed_s)?;
            any = true;
        }
    }
    any.then_some(r2(sum))
}

fn breakdown(r: &Readings) -> MemBreakdown {
    let m = &r.end.deep.meminfo;
    let kb = |k: &str| m.get(k).map(|v| v.saturating_mul(1024));
    let sum = |ks: &[&str]| -> Option<u64> {
        ks.iter()
            .map(|k| kb(k))
            .try_fold(0u64, |acc, v| Some(acc.saturating_add(v?)))
    };
    let committed = kb("Committed_AS");
    let limit = kb("CommitLimit");
    MemBreakdown {
        total_bytes: kb("MemTotal"),
        available_bytes: kb("MemAvailable"),
        free_bytes: kb("MemFree"),
        anon_bytes: kb("AnonPages"),
        // Page cache as free(1) counts it, shared memory (which lives there) excluded.
        file_cache_bytes: sum(&["Cached", "Buffers"])
            .map(|c| c.saturating_sub(kb("Shmem").unwrap_or(0))),
        dirty_bytes: kb("Dirty"),
        slab_reclaimable_bytes: kb("SReclaimable"),
        slab_unreclaimable_bytes: kb("SUnreclaim"),
        shmem_bytes: kb("Shmem"),
        page_tables_bytes: kb("PageTables"),
        kernel_stack_bytes: kb("KernelStack"),
        hugepages_total: m.get("HugePages_Total").copied(),
        hugepages_free: m.get("HugePages_Free").copied(),
        hugepage_size_bytes: kb("Hugepagesize"),
        committed_as_bytes: committed,
        commit_limit_bytes: limit,
        committed_pct_of_limit: committed
            .zip(limit)
            .filter(|(_, l)| *l > 0)
            .map(|(c, l)| r2(c as f64 / l as f64 * 100.0)),
        swap_total_bytes: kb("SwapTotal"),
        swap_used_bytes: kb("SwapTotal")
            .zip(kb("SwapFree"))
            .map(|(t, f)| t.saturating_sub(f)),
    }
}

/// OOM kills in the kernel log, with the cgroup from the `oom-kill:` summary when present.
fn oom_events(r: &Readings, lookback_s: f64) -> Vec<OomEvent> {
    let Some(recs) = r.end.kmsg.as_ref() else {
        return Vec::new();
    };
    let (now_us, since) = super::kernel_log::log_window(r, recs, lookback_s);
    // pid -> memcg from the summaries.
    let mut memcg: BTreeMap<String, String> = BTreeMap::new();
    for rec in recs.iter().filter(|x| x.message.starts_with("oom-kill:")) {
        let field = |k: &str| {
            rec.message
                .split(',')
                .find_map(|kv| kv.strip_prefix(k))
                .map(str::to_string)
        };
        if let (Some(pid), Some(cg)) = (field("pid="), field("task_memcg=")) {
            memcg.insert(pid, cg);
        }
    }
    kmsg::classify(recs, since)
        .into_iter()
        .filter(|e| matches!(e.class, KmsgClass::OomKill | KmsgClass::CgroupOom))
        .map(|e| OomEvent {
            age_s: r2(now_us.saturating_sub(e.ts_us) as f64 / 1e6),
            pid: e.pid,
            comm: e.comm.clone(),
            anon_rss_kb: e.anon_rss_kb,
            cgroup: e.pid.and_then(|p| memcg.get(&p.to_string()).cloned()),
            cgroup_oom: e.class == KmsgClass::CgroupOom,
        })
        .collect()
}

fn mem_cgroups(r: &Readings, scope: &Scope) -> Vec<MemCgroupRow> {
    let Some(s1) = &r.t1.cgroups else {
        return Vec::new();
    };
    let before: BTreeMap<&str, _> =
        r.t0.cgroups
            .as_ref()
            .map(|s| s.groups.iter().map(|g| (g.path.as_str(), g)).collect())
            .unwrap_or_default();
    let mut rows: Vec<MemCgroupRow> = s1
        .groups
        .iter()
        .filter(|g| {
            scope
                .cgroup
                .as_deref()
                .is_none_or(|c| in_cgroup(&g.path, c))
        })
        .filter_map(|g| {
            let m1 = g.memory.as_ref()?;
            let m0 = before.get(g.path.as_str()).and_then(|g| g.memory.as_ref());
            let ev = |f: fn(&crate::collect::cgroup::MemCg) -> Option<u64>| delta(f(m0?)?, f(m1)?);
            let row = MemCgroupRow {
                path: g.path.clone(),
                usage_bytes: m1.current_bytes,
                limit_bytes: m1.max_bytes,
                high_bytes: m1.high_bytes,
                used_pct: m1
                    .max_bytes
                    .filter(|m| *m > 0)
                    .map(|m| r2(m1.current_bytes as f64 / m as f64 * 100.0)),
                swap_bytes: m1.swap_bytes,
                high_events: ev(|m| m.high_events),
                max_events: ev(|m| m.max_events.or(m.failcnt)),
                oom_events: ev(|m| m.oom_events),
                oom_kill_events: ev(|m| m.oom_kill_events),
            };
            let eventful = [row.high_events, row.max_events, row.oom_kill_events]
                .iter()
                .any(|e| e.unwrap_or(0) > 0);
            (row.limit_bytes.is_some() || row.high_bytes.is_some() || eventful).then_some(row)
        })
        .collect();
    rows.sort_by(|a, b| {
        b.used_pct
            .unwrap_or(0.0)
            .total_cmp(&a.used_pct.unwrap_or(0.0))
            .then(a.path.cmp(&b.path))
    });
    rows.truncate(scope.top.max(1) * 4);
    rows
}

/// The mem view's detail section (`triage mem`): the MemAvailable picture, reclaim, OOM
/// kills, RSS by process, memory cgroups against their limits.
pub fn detail(r: &Readings, scope: &Scope, lookback_s: f64) -> MemDetail {
    let el = r.meta.elapsed_s;
    let page = r.meta.page_size_bytes;
    let page_kb = page as f64 / 1024.0;
    let mut top: Vec<MemProcRow> = Vec::new();
    for p in r.t1.procs.procs.values() {
        if p.kernel_thread || !scope.wants(r, p.pid) {
            continue;
        }
        let st = r.t1.deep.status.get(&p.pid);
        let old = before(r, p);
        let growth = old.map(|o| r2((p.rss_pages as f64 - o.rss_pages as f64) * page as f64 / el));
        let fault = |a: Option<u64>, b: u64| match a {
            Some(a) => rate(a, b, el).map(r2).unwrap_or(0.0),
            None => r2(b as f64 / el),
        };
        top.push(MemProcRow {
            pid: p.pid,
            comm: p.comm.clone(),
            rss_bytes: p.rss_pages.saturating_mul(page),
            anon_bytes: st.and_then(|s| s.rss_anon_bytes),
            file_bytes: st.and_then(|s| s.rss_file_bytes),
            shmem_bytes: st.and_then(|s| s.rss_shmem_bytes),
            swap_bytes: st.and_then(|s| s.swap_bytes),
            rss_growth_bytes_per_s: growth,
            minor_faults_per_s: fault(old.map(|o| o.minflt), p.minflt),
            major_faults_per_s: fault(old.map(|o| o.majflt), p.majflt),
        });
    }
    top.retain(|p| p.rss_bytes > 0);
    top.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    let mut left_out = BTreeMap::new();
    cut(&mut top, scope.top, "top_rss", &mut left_out);
    let (a, b) = (&r.t0.system.vmstat, &r.t1.system.vmstat);
    let minor = vm_rate(r, &["pgfault"])
        .zip(vm_rate(r, &["pgmajfault"]))
        .map(|(f, m)| r2((f - m).max(0.0)));
    let reclaim = Reclaim {
        swap_in_kb_per_s: ro(vm_rate(r, &["pswpin"]).map(|v| v * page_kb)),
        swap_out_kb_per_s: ro(vm_rate(r, &["pswpout"]).map(|v| v * page_kb)),
        minor_faults_per_s: minor,
        major_faults_per_s: vm_rate(r, &["pgmajfault"]),
        kswapd_scan_per_s: vm_rate(r, &["pgscan_kswapd"]),
        kswapd_steal_per_s: vm_rate(r, &["pgsteal_kswapd"]),
        direct_scan_per_s: vm_rate(r, &["pgscan_direct"]),
        direct_steal_per_s: vm_rate(r, &["pgsteal_direct"]),
        allocation_stalls_per_s: vm_rate(
            r,
            &[
                "allocstall_dma",
                "allocstall_dma32",
                "allocstall_normal",
                "allocstall_movable",
                "allocstall_device",
            ],
        ),
    };
    let d = &r.end.deep;
    MemDetail {
        left_out,
        breakdown: breakdown(r),
        reclaim,
        psi_some_stall_ms: psi_stall_ms(r, "memory", false),
        psi_full_stall_ms: psi_stall_ms(r, "memory", true),
        oom_kills: match (a.get("oom_kill"), b.get("oom_kill")) {
            (Some(&x), Some(&y)) => delta(x, y),
            _ => None,
        },
        oom_kills_since_boot: b.get("oom_kill").copied(),
        oom_events: oom_events(r, lookback_s),
        top_rss: top,
        cgroups: mem_cgroups(r, scope),
        thp_enabled: d.thp_enabled.clone(),
        thp_defrag: d.thp_defrag.clone(),
        overcommit_memory: d.overcommit_memory,
        overcommit_ratio: d.overcommit_ratio,
    }
}

// ---- build ---------------------------------------------------------------------------------

pub fn memory(r: &Readings) -> Option<MemorySection> {
    let m = r.t1.system.mem?;
    let buff_cache = m
        .buffers
        .saturating_add(m.cached)
        .saturating_add(m.sreclaimable.unwrap_or(0));
    let used = m.total.saturating_sub(m.free).saturating_sub(buff_cache);
    let limit = r.end.memory_limit.clone().filter(|(l, _)| *l < m.total);
    Some(MemorySection {
        total_bytes: m.total,
        used_bytes: used,
        free_bytes: m.free,
        available_bytes: m.available,
        buff_cache_bytes: buff_cache,
        available_pct: m
            .available
            .and_then(|a| pct(a as f64, m.total as f64))
            .map(r2),
        swap_total_bytes: m.swap_total,
        swap_used_bytes: m.swap_total.saturating_sub(m.swap_free),
        dirty_bytes: m.dirty,
        committed_as_bytes: m.committed_as,
        commit_limit_bytes: m.commit_limit,
        limit_bytes: limit.as_ref().map(|l| l.0),
        limit_source: limit.map(|l| l.1),
    })
}

// ---- USE metrics ---------------------------------------------------------------------------

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

/// Memory's USE metrics: RAM and swap used; swapping, major faults (vmstat) and PSI; OOM
/// kills.
pub fn use_resource(
    memory: Option<&MemorySection>,
    pressure: &[PsiRow],
    swap_in_kb_per_s: Option<f64>,
    swap_out_kb_per_s: Option<f64>,
    major_faults_per_s: Option<f64>,
    oom_kills: Option<u64>,
) -> Resource {
    let mut mem = Resource::new("memory", None);
    let m = memory;
    push(
        &mut mem,
        Metric::maybe(
            "memory.used_pct",
            U,
            "used",
            m.and_then(|m| m.available_pct.map(|a| r2(100.0 - a))),
            "pct",
            "/proc/meminfo",
            "no MemAvailable",
        ),
    );
    push(
        &mut mem,
        Metric::maybe(
            "memory.swap_in_kb_per_s",
            S,
            "swap in",
            swap_in_kb_per_s,
            "kb_per_s",
            "/proc/vmstat pswpin",
            "no /proc/vmstat delta",
        ),
    );
    push(
        &mut mem,
        Metric::maybe(
            "memory.swap_out_kb_per_s",
            S,
            "swap out",
            swap_out_kb_per_s,
            "kb_per_s",
            "/proc/vmstat pswpout",
            "no /proc/vmstat delta",
        ),
    );
    push(
        &mut mem,
        Metric::maybe(
            "memory.swap_used_pct",
            U,
            "swap used",
            m.filter(|m| m.swap_total_bytes > 0)
                .map(|m| r2(m.swap_used_bytes as f64 * 100.0 / m.swap_total_bytes as f64)),
            "pct",
            "/proc/meminfo SwapTotal, SwapFree",
            "no swap configured",
        ),
    );
    push(
        &mut mem,
        Metric::maybe(
            "memory.major_faults_per_s",
            S,
            "majflt",
            major_faults_per_s,
            "per_s",
            "/proc/vmstat pgmajfault",
            "no /proc/vmstat delta",
        ),
    );
    let psi_mem = pressure
        .iter()
        .find(|p| p.resource == "memory")
        .and_then(|p| p.some_pct);
    push(
        &mut mem,
        Metric::maybe(
            "memory.pressure_some_pct",
            S,
            "PSI",
            psi_mem,
            "pct",
            "/proc/pressure/memory",
            "PSI not available",
        ),
    );
    push(
        &mut mem,
        Metric::maybe(
            "memory.oom_kills",
            E,
            "OOM kills",
            oom_kills.map(|k| k as f64),
            "count",
            "/proc/vmstat oom_kill",
            "no oom_kill counter (kernel < 4.13)",
        ),
    );
    mem
}

// ---- thresholds ----------------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "memory.used_pct", warn: 85.0, crit: 95.0, unit: "pct", why: "seeds alert at 70% and 85% (S0:816) as early warnings for dashboards; a one-shot diagnosis warns at 85% used (MemAvailable < 15%) so a busy but healthy box is quiet" },
    Threshold { id: "memory.swap_used_pct", warn: 80.0, crit: 95.0, unit: "pct", why: "not in the seeds: swap is the last reserve before the OOM killer; once it is 80% full a burst has little left to go to, and at 95% the next allocation under pressure kills something; a swap that is used but not busy (no swap-in/out) is a warning, never more" },
    Threshold { id: "memory.swap_kb_per_s", warn: 1.0, crit: 10240.0, unit: "kb_per_s", why: "any non-zero swap-out means memory pressure (S0:433); 10 MB/s and more is critical" },
    Threshold { id: "memory.major_faults_per_s", warn: 100.0, crit: 1000.0, unit: "per_s", why: "major faults cost 1-10 ms each (S0:126): 100/s is ~0.1-1 s of stall per second" },
    Threshold { id: "memory.oom_kills", warn: 1.0, crit: 1.0, unit: "count", why: "any OOM kill is an error (S0:131)" },
    Threshold { id: "memory.allocation_stalls_per_s", warn: 1.0, crit: 100.0, unit: "per_s", why: "any direct reclaim (allocstall) means an allocation waited for reclaim (S0: direct reclaim = latency); an idle box has none; 100/s is sustained pressure" },
    Threshold { id: "memory.rss_growth_kb_per_s", warn: 1024.0, crit: 10240.0, unit: "kb_per_s", why: "not in the seeds: 1 MiB/s of steady RSS growth is 3.5 GiB an hour; a one-window measure, so a warning to confirm with --interval" },
];

// ---- rules ---------------------------------------------------------------------------------

/// What the memory rules read: the memory section and the other resources they name or weigh
/// (vmstat's paging, the processes, cgroups, the kernel log's OOM kills).
pub struct Inputs<'a> {
    pub memory: Option<&'a MemorySection>,
    pub swap_in_kb_per_s: Option<f64>,
    pub swap_out_kb_per_s: Option<f64>,
    pub major_faults_per_s: Option<f64>,
    /// OOM kills in the window (/proc/vmstat oom_kill).
    pub oom_kills: Option<u64>,
    /// The top processes by CPU and by RSS (pidstat).
    pub top_cpu: &'a [ProcRow],
    pub top_rss: &'a [ProcRow],
    pub cgroups: &'a [CgroupRow],
    pub kernel_log: Option<&'a KernelLogSection>,
}

/// A process that is page-faulting through swap spends its time in the kernel, often on one
/// CPU: the high system time and the pegged CPU are symptoms of the memory problem, not causes.
/// The pids of such processes, when a memory-fault finding was made (empty otherwise); the CPU
/// rules keep their findings about these visible, as info, and say why.
pub fn page_faulting(top_cpu: &[ProcRow], out: &[Finding]) -> Vec<i32> {
    let memory_fault = out
        .iter()
        .any(|f| f.id == "memory.saturation.swapping" || f.id == "memory.saturation.major_faults");
    if !memory_fault {
        return Vec::new();
    }
    top_cpu
        .iter()
        .filter(|p| p.major_faults_per_s > 0.0)
        .map(|p| p.pid)
        .collect()
}

/// The memory findings: low available memory, swap space, swapping or major faults, OOM
/// kills, cgroups near their memory limit.
pub fn rules(i: &Inputs, out: &mut Vec<Finding>) {
    if let Some(m) = i.memory {
        if let Some(avail) = m.available_pct {
            let used = 100.0 - avail;
            if let Some((sev, t)) = level("memory.used_pct", used) {
                let top = i.top_rss.first();
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
                    .with_subject(top.map(ProcRow::subject).unwrap_or_default()),
                );
            }
        }
    }
    // Swap space nearly full: the reserve before the OOM killer is almost gone.
    if let Some(m) = i.memory.filter(|m| m.swap_total_bytes > 0) {
        let used = m.swap_used_bytes as f64 * 100.0 / m.swap_total_bytes as f64;
        if let Some((sev, t)) = level("memory.swap_used_pct", used) {
            // Only critical while pages still move: a full but quiet swap is a warning. With
            // RAM to spare it holds cold pages the kernel chose to keep out: context (info).
            let moving =
                i.swap_in_kb_per_s.unwrap_or(0.0) + i.swap_out_kb_per_s.unwrap_or(0.0) > 0.0;
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
    let si = i.swap_in_kb_per_s.unwrap_or(0.0);
    let so = i.swap_out_kb_per_s.unwrap_or(0.0);
    if let Some((sev, t)) = level("memory.swap_kb_per_s", si + so) {
        // A cgroup near its memory limit, or swapping, is named.
        let near = threshold("cgroup.memory_used_pct").warn;
        let cg = i
            .cgroups
            .iter()
            .filter(|c| c.memory_used_pct.unwrap_or(0.0) >= near || c.swap_bytes.unwrap_or(0) > 0)
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
        let majf = i
            .major_faults_per_s
            .map(|m| format!(", {m:.0} major faults/s"))
            .unwrap_or_default();
        // The process faulting hardest, not the first busy one that faults at all.
        let top = i
            .top_cpu
            .iter()
            .chain(i.top_rss.iter())
            .filter(|p| p.major_faults_per_s > 0.0)
            .max_by(|a, b| a.major_faults_per_s.total_cmp(&b.major_faults_per_s));
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
                ..top.map(ProcRow::subject).unwrap_or_default()
            }),
        );
    } else if let Some(mf) = i.major_faults_per_s {
        if let Some((sev, t)) = level("memory.major_faults_per_s", mf) {
            let top = i
                .top_cpu
                .iter()
                .chain(i.top_rss.iter())
                .max_by(|a, b| a.major_faults_per_s.total_cmp(&b.major_faults_per_s))
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
            ).with_subject(top.map(ProcRow::subject).unwrap_or_default()));
        }
    }
    oom_rule(i, out);
    super::cgroup::memory_rules(i.cgroups, out);
}

/// OOM kills: the counter, the cgroups' oom_kill events and the kernel log are one finding.
/// Critical when in the window, a warning when recent ([`super::kernel_log::KLOG_RECENT_S`]), else
/// info.
fn oom_rule(i: &Inputs, out: &mut Vec<Finding>) {
    let counter = i.oom_kills.unwrap_or(0);
    let cg: Vec<&CgroupRow> = i
        .cgroups
        .iter()
        .filter(|c| c.oom_kills.unwrap_or(0) > 0)
        .collect();
    let cg_kills: u64 = cg.iter().map(|c| c.oom_kills.unwrap_or(0)).sat_sum();
    let log: Vec<&KlogGroup> = i
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
    let lookback = i.kernel_log.map(|k| k.lookback_s).unwrap_or(0.0);
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
        e.push(super::kernel_log::recent_evidence(g));
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

// ---- columns -------------------------------------------------------------------------------

/// One line of free's table.
pub struct FreeLine {
    pub label: &'static str,
    pub total: u64,
    pub used: u64,
    pub free: u64,
    /// None: the column is blank on this line.
    pub buff_cache: Option<u64>,
    /// None: blank; `Some(None)`: not known (`-`).
    pub available: Option<Option<u64>>,
}

/// free's lines: `Mem` and `Swap`.
pub fn free_lines(m: &MemorySection) -> [FreeLine; 2] {
    [
        FreeLine {
            label: "Mem",
            total: m.total_bytes,
            used: m.used_bytes,
            free: m.free_bytes,
            buff_cache: Some(m.buff_cache_bytes),
            available: Some(m.available_bytes),
        },
        FreeLine {
            label: "Swap",
            total: m.swap_total_bytes,
            used: m.swap_used_bytes,
            free: m.swap_total_bytes.saturating_sub(m.swap_used_bytes),
            buff_cache: None,
            available: None,
        },
    ]
}

/// free's columns.
pub const COLUMNS: &[Column<FreeLine>] = &[
    Column::left("", |l| l.label.to_string()),
    Column::right("total", |l| human_bytes(l.total)),
    Column::right("used", |l| human_bytes(l.used)),
    Column::right("free", |l| human_bytes(l.free)),
    Column::right("buff/cache", |l| {
        l.buff_cache.map(human_bytes).unwrap_or_default()
    }),
    Column {
        header: "available",
        align: Align::Right,
        value: |l| match l.available {
            Some(a) => a.map(human_bytes).unwrap_or_else(|| "-".into()),
            None => String::new(),
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn faulter(pid: i32, majflt: f64) -> ProcRow {
        ProcRow {
            pid,
            comm: format!("p{pid}"),
            cpu_pct: 90.0,
            major_faults_per_s: majflt,
            ..Default::default()
        }
    }

    /// The memory rules judged on their own: swapping names the process faulting hardest and
    /// the cgroup at its memory limit (`cgroup.memory_used_pct`, 80%), not one just below;
    /// then `page_faulting` hands the faulting pids to the CPU rules.
    #[test]
    fn swapping_names_the_faulting_process_and_the_cgroup_at_its_limit() {
        let procs = [faulter(10, 5.0), faulter(11, 400.0), faulter(12, 0.0)];
        let cg = |path: &str, pct: f64| CgroupRow {
            path: path.into(),
            memory_used_pct: Some(pct),
            ..Default::default()
        };
        let cgroups = [cg("/below", 79.9), cg("/at", 80.0)];
        let inputs = Inputs {
            memory: None,
            swap_in_kb_per_s: Some(2048.0),
            swap_out_kb_per_s: Some(10240.0),
            major_faults_per_s: Some(405.0),
            oom_kills: Some(0),
            top_cpu: &procs,
            top_rss: &[],
            cgroups: &cgroups,
            kernel_log: None,
        };
        let mut out = Vec::new();
        rules(&inputs, &mut out);
        // The cgroup at its limit is also a finding of its own (the one below is not).
        let ids: Vec<(&str, Option<&str>)> = out
            .iter()
            .map(|f| (f.id.as_str(), f.subject.cgroup.as_deref()))
            .collect();
        assert_eq!(
            ids,
            [
                ("memory.saturation.swapping", Some("/at")),
                ("cgroup.memory.near_limit", Some("/at"))
            ]
        );
        let f = &out[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.evidence[0].value, 12288.0);
        assert_eq!(
            (f.subject.pid, f.subject.comm.as_deref()),
            (Some(11), Some("p11"))
        );
        assert_eq!(f.subject.cgroup.as_deref(), Some("/at"));
        assert_eq!(page_faulting(&procs, &out), vec![10, 11]);
        assert!(page_faulting(&procs, &[]).is_empty());
    }

    /// No vmstat reading (no paging figures) and no memory section: no finding, no panic; the
    /// USE metrics say why each is missing.
    #[test]
    fn nothing_measured_is_no_finding_and_null_metrics() {
        let inputs = Inputs {
            memory: None,
            swap_in_kb_per_s: None,
            swap_out_kb_per_s: None,
            major_faults_per_s: None,
            oom_kills: None,
            top_cpu: &[],
            top_rss: &[],
            cgroups: &[],
            kernel_log: None,
        };
        let mut out = Vec::new();
        rules(&inputs, &mut out);
        assert!(out.is_empty(), "{out:#?}");
        let r = use_resource(None, &[], None, None, None, None);
        assert_eq!(r.name, "memory");
        assert_eq!(r.metrics.len(), 7);
        assert!(r
            .metrics
            .iter()
            .all(|m| m.value.is_none() && m.reason.is_some()));
    }
}
