//! From readings to the report's detail sections: deltas over the measured window, per resource.
//!
//! Invariants: a counter that went backwards (reset, wrap, a PID reused) yields no value, never a
//! negative or huge rate; rates divide by the measured elapsed time, never the nominal one.

use std::collections::BTreeMap;

use super::sections::*;
use crate::collect::run::Readings;

/// How many processes the top lists hold.
pub const TOP_N: usize = 5;

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
pub use crate::resources::tcp::tcp;
pub use crate::resources::vmstat::vmstat;

pub use crate::num::{opt_rate, rate};

pub use crate::num::r2;

pub fn processes(r: &Readings) -> Option<ProcessSection> {
    let el = r.meta.elapsed_s;
    let tck = r.meta.clock_ticks_per_s.max(1) as f64;
    let page = r.meta.page_size_bytes;
    let p1 = &r.t1.procs.procs;
    if p1.is_empty() {
        return None;
    }
    let p0 = &r.t0.procs.procs;
    let mut rows = Vec::new();
    for p in p1.values() {
        // Same PID and same start time: the same process. Otherwise it started in the window.
        let (du, ds, dmaj) = match p0.get(&p.pid).filter(|o| o.starttime == p.starttime) {
            Some(o) => (
                delta(o.utime, p.utime).unwrap_or(0),
                delta(o.stime, p.stime).unwrap_or(0),
                delta(o.majflt, p.majflt).unwrap_or(0),
            ),
            None => (p.utime, p.stime, p.majflt),
        };
        let f = |t: u64| r2(t as f64 / tck / el * 100.0);
        rows.push(ProcRow {
            pid: p.pid,
            comm: p.comm.clone(),
            state: p.state.to_string(),
            cpu_pct: f(du.saturating_add(ds)),
            usr_pct: f(du),
            sys_pct: f(ds),
            rss_bytes: p.rss_pages.saturating_mul(page),
            threads: p.num_threads,
            major_faults_per_s: r2(dmaj as f64 / el),
            last_cpu: p.processor,
        });
    }
    let mut top_cpu: Vec<ProcRow> = rows.iter().filter(|p| p.cpu_pct > 0.0).cloned().collect();
    top_cpu.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(a.pid.cmp(&b.pid)));
    top_cpu.truncate(TOP_N);
    let mut top_rss: Vec<ProcRow> = rows.iter().filter(|p| p.rss_bytes > 0).cloned().collect();
    top_rss.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    top_rss.truncate(TOP_N);

    let zombies: Vec<_> = p1.values().filter(|p| p.state == 'Z').collect();
    let mut by_parent: BTreeMap<i32, u32> = BTreeMap::new();
    for z in &zombies {
        *by_parent.entry(z.ppid).or_default() += 1;
    }
    let zombie_parent = by_parent
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(&pid, &count)| ProcRef {
            pid,
            comm: p1.get(&pid).map(|p| p.comm.clone()).unwrap_or_default(),
            count,
        });

    let fd_top = crate::resources::limits::fd_top(r, p1);

    // The same process at both ends whose RSS grew fastest (a process born in the window
    // did not "grow": it started).
    let rss_grower = p1
        .values()
        .filter_map(|p| {
            let o = p0.get(&p.pid).filter(|o| o.starttime == p.starttime)?;
            let grew = p.rss_pages.checked_sub(o.rss_pages).filter(|g| *g > 0)?;
            Some((p, grew as f64 * page as f64 / el))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.pid.cmp(&a.0.pid)))
        .map(|(p, g)| RssGrowth {
            pid: p.pid,
            comm: p.comm.clone(),
            rss_bytes: p.rss_pages.saturating_mul(page),
            growth_bytes_per_s: r2(g),
        });

    Some(ProcessSection {
        count: p1.len() as u32,
        threads: p1
            .values()
            .map(|p| p.num_threads.max(0))
            .fold(0, |a: i64, b| a.saturating_add(b)),
        zombies: zombies.len() as u32,
        zombie_parent,
        top_cpu,
        top_rss,
        d_state: r
            .end
            .d_threads
            .iter()
            .map(|(pid, tid, comm, wchan)| DTask {
                pid: *pid,
                tid: *tid,
                comm: comm.clone(),
                wchan: wchan.clone(),
            })
            .collect(),
        fd_top,
        not_inspected: (r.end.fd_denied.max(r.namespaces.denied)) as u32,
        rss_grower,
        spawners: super::spawn::spawners(r),
    })
}

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
