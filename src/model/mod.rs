//! The report model: detail sections computed from readings, the USE resources derived from
//! them, and the report that carries both with the findings.

pub mod build;
pub use crate::probe::cost_model as cost;
pub mod deep;
/// The off-CPU and latency probes' readings and sections live with the probes (they are what the
/// probes return); the model names them here for the layers above.
pub use crate::probe::offcpu_model as offcpu;
pub use crate::probe::profile_model as profile;
pub mod qdisc;
pub mod report;
pub mod resources;
pub mod sections;
/// The parents of short-lived children are part of the tasks resource.
pub use crate::resources::tasks::spawn;
pub mod summary;
pub mod syscalls;

use crate::collect::run::Readings;
pub use crate::num::SatSum;
use report::Host;

/// Host facts from the readings (the fixture's or the live system's).
pub fn host(r: &Readings) -> Host {
    let e = &r.end;
    let layout = e.cgroup_layout.as_ref();
    let (online, eff, eff_src) = crate::resources::cpu::deep::cpu_counts(r);
    Host {
        hostname: e.hostname.clone().unwrap_or_default(),
        kernel: e.kernel.clone().unwrap_or_default(),
        uptime_s: r.t1.system.uptime_s,
        online_cpus: online,
        effective_cpus: eff,
        effective_cpus_source: eff_src,
        memory_total_bytes: r.t1.system.mem.map(|m| m.total),
        memory_limit_bytes: e.memory_limit.as_ref().map(|m| m.0),
        memory_limit_source: e.memory_limit.as_ref().map(|m| m.1.clone()),
        cgroup_mode: layout.map(|l| l.mode.as_str().to_string()),
        cgroup: layout.and_then(|l| l.own_v2.clone().or_else(|| l.own_v1.get("cpu").cloned())),
        in_container: layout.map(|_| e.container.is_some()),
        container_evidence: e.container.clone(),
        clock_ticks_per_s: Some(r.meta.clock_ticks_per_s).filter(|&t| t > 0),
        page_size_bytes: Some(r.meta.page_size_bytes).filter(|&p| p > 0),
    }
}
