//! The memory resource (free): the system's memory and swap at the end of the window, with
//! the cgroup limit that applies to us; the memory thresholds; free's columns. The memory
//! rules and USE metrics read other resources too (vmstat paging, PSI, processes, cgroups)
//! and are still in `analyze` and `model::resources`.

use serde::{Deserialize, Serialize};

use super::columns::{Align, Column};
use super::rule::Threshold;
use crate::collect::run::Readings;
use crate::num::{pct, r2};
use crate::text::human_bytes;

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

// ---- build ---------------------------------------------------------------------------------

pub fn memory(r: &Readings) -> Option<MemorySection> {
    let m = r.t1.system.mem?;
    let buff_cache = m.buffers + m.cached + m.sreclaimable.unwrap_or(0);
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
    Column {
        header: "",
        align: Align::Left,
        value: |l| l.label.to_string(),
    },
    Column {
        header: "total",
        align: Align::Right,
        value: |l| human_bytes(l.total),
    },
    Column {
        header: "used",
        align: Align::Right,
        value: |l| human_bytes(l.used),
    },
    Column {
        header: "free",
        align: Align::Right,
        value: |l| human_bytes(l.free),
    },
    Column {
        header: "buff/cache",
        align: Align::Right,
        value: |l| l.buff_cache.map(human_bytes).unwrap_or_default(),
    },
    Column {
        header: "available",
        align: Align::Right,
        value: |l| match l.available {
            Some(a) => a.map(human_bytes).unwrap_or_else(|| "-".into()),
            None => String::new(),
        },
    },
];
