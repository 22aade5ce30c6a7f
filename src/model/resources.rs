//! The USE view: for every resource, its Utilization, Saturation and Errors metrics, taken from
//! the detail sections so that the two can never disagree.

use super::report::{Metric, Resource, UseKind};
use super::sections::Sections;

use UseKind::{Errors as E, Saturation as S, Utilization as U};

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

pub fn resources(s: &Sections, effective_cpus: f64) -> Vec<Resource> {
    let mut out = Vec::new();

    // CPU
    let mut cpu = Resource::new("cpu", None);
    let all = s.cpus.first();
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.busy_pct",
            U,
            "busy",
            all.map(|c| c.busy_pct),
            "pct",
            "/proc/stat",
            "no /proc/stat delta",
        ),
    );
    let hottest = s.cpus.iter().skip(1).map(|c| c.busy_pct).reduce(f64::max);
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.hottest_cpu_busy_pct",
            U,
            "max CPU",
            hottest,
            "pct",
            "/proc/stat",
            "no per-CPU lines",
        ),
    );
    let vm = s.vmstat.as_ref();
    let runq = vm
        .and_then(|v| v.runnable_avg)
        .map(|r| super::build::r2(r / effective_cpus));
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.runnable_per_cpu",
            S,
            "runq/CPU",
            runq,
            "ratio",
            "/proc/stat procs_running (sampled)",
            "no samples in the window",
        ),
    );
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.load1_per_cpu",
            S,
            "load/CPU",
            s.load.as_ref().map(|l| l.load1_per_cpu),
            "ratio",
            "/proc/loadavg",
            "no /proc/loadavg",
        ),
    );
    let psi_cpu = s
        .pressure
        .iter()
        .find(|p| p.resource == "cpu")
        .and_then(|p| p.some_pct);
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.pressure_some_pct",
            S,
            "PSI",
            psi_cpu,
            "pct",
            "/proc/pressure/cpu",
            "PSI not available",
        ),
    );
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.steal_pct",
            S,
            "steal",
            vm.and_then(|v| v.steal_pct),
            "pct",
            "/proc/stat",
            "no /proc/stat delta",
        ),
    );
    // CPUs report their errors in the kernel log: machine checks, lockups, RCU stalls.
    let cpu_errors = s.kernel_log.as_ref().map(|k| {
        ["hardware error", "CPU lockup", "RCU stall"]
            .iter()
            .map(|c| k.counts.get(*c).copied().unwrap_or(0))
            .sum::<u32>() as f64
    });
    push(
        &mut cpu,
        Metric::maybe(
            "cpu.kernel_errors",
            E,
            "MCE/lockups",
            cpu_errors,
            "count",
            "/dev/kmsg",
            "kernel log not readable",
        ),
    );
    out.push(cpu);

    // Memory
    let mut mem = Resource::new("memory", None);
    let m = s.memory.as_ref();
    push(
        &mut mem,
        Metric::maybe(
            "memory.used_pct",
            U,
            "used",
            m.and_then(|m| m.available_pct.map(|a| super::build::r2(100.0 - a))),
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
            vm.and_then(|v| v.swap_in_kb_per_s),
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
            vm.and_then(|v| v.swap_out_kb_per_s),
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
            m.filter(|m| m.swap_total_bytes > 0).map(|m| {
                super::build::r2(m.swap_used_bytes as f64 * 100.0 / m.swap_total_bytes as f64)
            }),
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
            vm.and_then(|v| v.major_faults_per_s),
            "per_s",
            "/proc/vmstat pgmajfault",
            "no /proc/vmstat delta",
        ),
    );
    let psi_mem = s
        .pressure
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
            vm.and_then(|v| v.oom_kills.map(|k| k as f64)),
            "count",
            "/proc/vmstat oom_kill",
            "no oom_kill counter (kernel < 4.13)",
        ),
    );
    out.push(mem);

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
