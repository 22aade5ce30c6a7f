//! The deep-dive sections (`triage cpu|mem|disk|net`): what mpstat/pidstat/vmstat/iostat/sar/
//! ss/free would show about one resource, computed over the measured window from the same
//! readings as the checklist. Each is absent from `sixty-second` reports (and their JSON).
//!
//! Invariants as in `build`: counters that went backwards give `null`; rates divide by the
//! measured elapsed time; lists are sorted deterministically (biggest first, ties by id).
//!
//! The views' sections live with their resources and are re-exported here: cpu
//! (`resources::cpu::deep`), mem (`resources::memory`), disk (`resources::disk`), net
//! (`resources::sockets`, with `resources::netif::deep`'s links and softnet rows). What stays
//! here is the time series (`--interval S --count N`).

use serde::{Deserialize, Serialize};

pub use crate::resources::cpu::deep::{detail as cpu, CpuDetail, SoftirqRow, TaskCpuRow};
pub use crate::resources::disk::{
    detail as disk, io_cgroups, DiskDetail, DiskExtraRow, IoCgroupRow, IoProcRow,
};
pub use crate::resources::memory::{
    detail as mem, MemBreakdown, MemCgroupRow, MemDetail, MemProcRow, OomEvent, Reclaim,
};
pub use crate::resources::netif::deep::{LinkRow, SoftnetCpuRow};
pub use crate::resources::scope::{in_cgroup, Scope};
pub use crate::resources::sockets::{detail as net, ListenRow, NetCounters, NetDetail};

/// Version of the time-series wrapper (`--interval S --count N --json`).
pub const SERIES_SCHEMA_VERSION: &str = "1.1";

/// A time series: one complete report per window, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Series {
    pub schema_version: String,
    /// Always `series` (a single report has no `kind`).
    pub kind: String,
    pub command: String,
    pub interval_s: f64,
    /// Windows measured (fewer than asked when interrupted).
    pub count: u32,
    /// The verdict over every window: the worst status of any window (`incomplete` if one
    /// was), its top findings (since 1.1).
    #[serde(default)]
    pub summary: super::summary::Summary,
    pub samples: Vec<super::report::Report>,
}

impl Series {
    pub fn new(command: &str, interval_s: f64, samples: Vec<super::report::Report>) -> Self {
        Series {
            schema_version: SERIES_SCHEMA_VERSION.into(),
            kind: "series".into(),
            command: command.into(),
            interval_s,
            count: samples.len() as u32,
            summary: Default::default(),
            samples,
        }
        .with_summary()
    }

    fn with_summary(mut self) -> Self {
        self.refresh_summary();
        self
    }

    /// The series' verdict from its windows' (see [`super::summary::over_windows`]).
    pub fn refresh_summary(&mut self) {
        for r in &mut self.samples {
            super::summary::refresh(r);
        }
        self.summary = super::summary::over_windows(&self.samples);
    }
}
