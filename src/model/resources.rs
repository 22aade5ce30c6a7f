//! The USE view: for every resource, its Utilization, Saturation and Errors metrics, taken from
//! the detail sections so that the two can never disagree.

use super::report::Resource;
use super::sections::Sections;

pub fn resources(s: &Sections, effective_cpus: f64) -> Vec<Resource> {
    let mut out = Vec::new();

    let vm = s.vmstat.as_ref();
    out.push(crate::resources::cpu::use_resource(
        &s.cpus,
        s.load.as_ref(),
        &s.pressure,
        s.kernel_log.as_ref(),
        vm.and_then(|v| v.runnable_avg),
        vm.and_then(|v| v.steal_pct),
        effective_cpus,
    ));
    out.push(crate::resources::memory::use_resource(
        s.memory.as_ref(),
        &s.pressure,
        vm.and_then(|v| v.swap_in_kb_per_s),
        vm.and_then(|v| v.swap_out_kb_per_s),
        vm.and_then(|v| v.major_faults_per_s),
        vm.and_then(|v| v.oom_kills),
    ));

    // Disks
    for d in &s.disks {
        out.push(crate::resources::disk::use_resource(d));
    }
    out.extend(crate::resources::pressure::io_resource(&s.pressure));

    // Filesystems
    for f in &s.filesystems {
        out.push(crate::resources::filesystem::use_resource(f));
    }

    // Network interfaces
    for i in &s.interfaces {
        out.push(crate::resources::netif::use_resource(i));
    }

    // TCP, per namespace
    for t in &s.tcp {
        out.push(crate::resources::tcp::use_resource(t));
    }

    // Software resources
    if let Some(l) = &s.limits {
        out.push(crate::resources::limits::fds_resource(
            l,
            s.processes.as_ref().map(|p| p.fd_top.as_slice()),
        ));

        out.push(crate::resources::tasks::use_resource(
            l,
            s.vmstat.as_ref(),
            s.processes.as_ref(),
        ));

        out.extend(crate::resources::limits::conntrack_resource(l));
    }

    // cgroups with limits or throttling
    out.extend(
        s.cgroups
            .iter()
            .filter_map(crate::resources::cgroup::use_resource),
    );

    // Kernel log
    out.extend(
        s.kernel_log
            .as_ref()
            .map(crate::resources::kernel_log::use_resource),
    );
    out
}

/// Add the idle disks and interfaces (no I/O, no traffic in the window) to the USE view with
/// zeros, after the active ones of their kind, so every resource is listed, idle or not.
pub fn add_idle(out: &mut Vec<Resource>, disks: &[String], interfaces: &[String]) {
    let after = |out: &Vec<Resource>, kinds: &[&str]| {
        out.iter()
            .rposition(|r| kinds.contains(&r.name.as_str()))
            .map(|i| i + 1)
    };
    let mut at = after(out, &["disk"])
        .or_else(|| after(out, &["memory"]))
        .unwrap_or(out.len());
    for d in disks {
        if out
            .iter()
            .any(|r| r.name == "disk" && r.instance.as_deref() == Some(d))
        {
            continue;
        }
        let r = crate::resources::disk::idle_resource(d);
        out.insert(at, r);
        at += 1;
    }
    let mut at = after(out, &["network"])
        .or_else(|| after(out, &["filesystem", "io", "disk", "memory"]))
        .unwrap_or(out.len());
    for i in interfaces {
        if out
            .iter()
            .any(|r| r.name == "network" && r.instance.as_deref() == Some(i))
        {
            continue;
        }
        let r = crate::resources::netif::idle_resource(i);
        out.insert(at, r);
        at += 1;
    }
}
