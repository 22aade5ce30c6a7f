//! From readings to the report's detail sections: deltas over the measured window, per resource.
//!
//! Invariants: a counter that went backwards (reset, wrap, a PID reused) yields no value, never a
//! negative or huge rate; rates divide by the measured elapsed time, never the nominal one.

use std::collections::BTreeMap;

use super::sections::*;
use crate::collect::run::Readings;

pub use crate::num::delta;
pub use crate::resources::cgroup::cgroups;
pub use crate::resources::cpu::{cpus, effective_cpus, load};
pub use crate::resources::disk::{disks, idle_disks};
pub use crate::resources::filesystem::filesystems;
pub use crate::resources::kernel_log::{kernel_log, log_window};
pub use crate::resources::limits::limits;
pub use crate::resources::memory::memory;
pub use crate::resources::netif::{idle_interfaces, interface_reset, interfaces, ns_label};
pub use crate::resources::pressure::pressure;
pub use crate::resources::tasks::{processes, TOP_N};
pub use crate::resources::tcp::tcp;
pub use crate::resources::vmstat::vmstat;

pub use crate::num::{opt_rate, rate};

pub use crate::num::r2;

/// Counters that went backwards during the window (a reset, a wrap, a device replaced): their
/// rates are left out (never negative or huge), and each one is said here.
pub fn counter_resets(r: &Readings) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (&r.t0.system.stat, &r.t1.system.stat) {
        if b.total.total() < a.total.total() || b.ctxt < a.ctxt || b.intr < a.intr {
            out.push("/proc/stat CPU or task counters".to_string());
        }
    }
    for k in ["pswpin", "pswpout", "pgmajfault", "pgpgin", "pgpgout"] {
        if let (Some(x), Some(y)) = (r.t0.system.vmstat.get(k), r.t1.system.vmstat.get(k)) {
            if y < x {
                out.push(format!("/proc/vmstat {k}"));
            }
        }
    }
    if let (Some(a), Some(b)) = (&r.t0.disks, &r.t1.disks) {
        let before: BTreeMap<&str, _> = a.iter().map(|d| (d.name.as_str(), d)).collect();
        for d1 in b {
            if let Some(d0) = before.get(d1.name.as_str()) {
                if d1.reads < d0.reads
                    || d1.writes < d0.writes
                    || d1.time_in_progress < d0.time_in_progress
                {
                    out.push(format!("disk {}", d1.name));
                }
            }
        }
    }
    for (ino, b) in &r.t1.net {
        let Some(a) = r.t0.net.get(ino) else { continue };
        for (name, i1) in &b.interfaces {
            if a.interfaces
                .get(name)
                .is_some_and(|i0| interface_reset(i0, i1))
            {
                out.push(format!("interface {name} ({})", ns_label(r, *ino)));
            }
        }
    }
    out
}

/// Every section of the sixty-second checklist.
pub fn sections(r: &Readings, lookback_s: f64) -> Sections {
    let cpus = cpus(r);
    let (disks, disks_idle) = disks(r);
    Sections {
        load: load(r),
        vmstat: vmstat(r, cpus.first()),
        processes: processes(r),
        cpus,
        disks,
        disks_idle,
        filesystems: filesystems(r),
        memory: memory(r),
        interfaces: interfaces(r),
        tcp: tcp(r),
        qdiscs: super::qdisc::rows(r),
        pressure: pressure(r),
        cgroups: cgroups(r),
        kernel_log: kernel_log(r, lookback_s),
        limits: Some(limits(r)),
        io_limited_cgroups: super::deep::io_cgroups(
            r,
            &super::deep::Scope {
                top: 10,
                ..Default::default()
            },
        )
        .into_iter()
        .filter(|c| !c.limits.is_empty())
        .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_going_backwards_gives_no_rate() {
        assert_eq!(rate(100, 50, 1.0), None);
        assert_eq!(rate(100, 300, 2.0), Some(100.0));
        assert_eq!(rate(1, 2, 0.0), None);
    }
}
