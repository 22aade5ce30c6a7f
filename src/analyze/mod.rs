//! USE rules: from the report's sections to ranked findings.
//!
//! Thresholds are data ([`THRESHOLDS`]), so every finding's evidence quotes the exact value it
//! crossed. Where the seed documents disagree, the choice and the reason are in `why`. A healthy
//! idle machine must produce no warning: every rule needs real evidence of a fault, not the
//! mere presence of activity.

pub mod catalog;
pub mod deep;
pub mod io_sync;
pub mod offcpu;
pub mod procs_storm;
pub mod profile;
mod report;
pub mod syscalls;

use crate::model::report::{Finding, Host, Severity, Subject};
use crate::model::sections::*;
use crate::model::SatSum;
pub use crate::resources::memory::human_kb_rate;
use crate::resources::{cpu, memory};
pub use crate::text::human_bytes;
pub use report::{build_report, Analysis};

use crate::resources::rule::fmt_cpus;
pub use crate::resources::rule::{ev, finding, level, threshold, Threshold, THRESHOLDS};

/// Everything the rules look at besides the sections.
pub struct Context<'a> {
    pub host: &'a Host,
    pub elapsed_s: f64,
    /// Runnable-task samples, for "consistently above" (excluding the reader itself).
    pub runnable_samples: &'a [u32],
}

pub fn findings(s: &Sections, cx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    let no_procs = Vec::new();
    let (top_cpu, top_rss) = s
        .processes
        .as_ref()
        .map_or((&no_procs, &no_procs), |p| (&p.top_cpu, &p.top_rss));
    let vm = s.vmstat.as_ref();
    memory::rules(
        &memory::Inputs {
            memory: s.memory.as_ref(),
            swap_in_kb_per_s: vm.and_then(|v| v.swap_in_kb_per_s),
            swap_out_kb_per_s: vm.and_then(|v| v.swap_out_kb_per_s),
            major_faults_per_s: vm.and_then(|v| v.major_faults_per_s),
            oom_kills: vm.and_then(|v| v.oom_kills),
            top_cpu,
            top_rss,
            cgroups: &s.cgroups,
            kernel_log: s.kernel_log.as_ref(),
        },
        &mut out,
    );
    rss_growth_rule(s, &mut out);
    // The memory rules run first: a CPU finding about a process that is page-faulting through
    // swap is composed as a consequence of that (info), not as a second cause.
    let faulting = memory::page_faulting(top_cpu, &out);
    cpu::rules(
        &cpu::Inputs {
            cpus: &s.cpus,
            load: s.load.as_ref(),
            runnable_avg: vm.and_then(|v| v.runnable_avg),
            runnable_samples: cx.runnable_samples,
            effective_cpus: cx.host.effective_cpus,
            own_cgroup: cx.host.cgroup.as_deref(),
            cgroups: &s.cgroups,
            top_cpu,
            faulting: &faulting,
            pressure: &s.pressure,
            disks: &s.disks,
            io_limited: &s.io_limited_cgroups,
        },
        &mut out,
    );
    dstate_load_rule(s, &mut out);
    disk_rules(s, &mut out);
    net_rules(s, &mut out);
    crate::resources::qdisc::rules(&s.qdiscs, &s.tcp, &mut out);
    software_rules(s, &mut out);
    crate::resources::kernel_log::rules(s.kernel_log.as_ref(), &mut out);
    procs_storm::rules(s, cx, &mut out);
    io_sync::rules(s, &mut out);
    rank(&mut out);
    out
}

/// Most severe first; within a severity, furthest past its threshold; then by id for stability.
pub fn rank(f: &mut [Finding]) {
    f.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.score.total_cmp(&a.score))
            .then(a.id.cmp(&b.id))
    });
}

/// High load with idle CPUs and D-state tasks: an I/O or NFS stall, not the CPU.
fn dstate_load_rule(s: &Sections, out: &mut Vec<Finding>) {
    let all = s.cpus.first();
    let vm = s.vmstat.as_ref();
    if let (Some(l), Some(a), Some(v)) = (&s.load, all, vm) {
        let blocked = v.blocked_avg.unwrap_or(0.0);
        let low = threshold("cpu.busy_pct_low").warn;
        if l.load1_per_cpu >= threshold("cpu.load1_per_cpu").warn && a.busy_pct < low {
            if let Some((sev, t)) = level("tasks.blocked_avg", blocked) {
                let d = s.processes.as_ref().and_then(|p| p.d_state.first());
                let who = d
                    .map(|d| {
                        format!(
                            "; e.g. {} (pid {}) in {}",
                            d.comm,
                            d.tid,
                            d.wchan.as_deref().unwrap_or("?")
                        )
                    })
                    .unwrap_or_default();
                out.push(finding(
                    "cpu.saturation.dstate_load",
                    sev,
                    "tasks",
                    format!(
                        "Load {:.1} on {} CPUs but CPUs {:.0}% busy: {blocked:.1} tasks blocked in D state (I/O or NFS stall){who}",
                        l.load1,
                        fmt_cpus(l.effective_cpus),
                        a.busy_pct
                    ),
                    vec![
                        ev("tasks.blocked_avg", blocked, ">=", t.warn, "count"),
                        ev("cpu.load1_per_cpu", l.load1_per_cpu, ">=", threshold("cpu.load1_per_cpu").warn, "ratio"),
                        ev("cpu.busy_pct", a.busy_pct, "<", low, "pct"),
                    ],
                    vec!["triage disk".into(), "triage offcpu".into(), "cat /proc/PID/stack".into()],
                ).with_subject(d.map(|d| Subject::process(d.pid, &d.comm)).unwrap_or_default()));
            }
        }
    }
}

/// Disk and filesystem findings (also re-run by the disk view once it knows the I/O consumers).
pub fn disk_rules(s: &Sections, out: &mut Vec<Finding>) {
    // The process behind the I/O: the top I/O consumer when the disk view measured it, else
    // a task in D state, else the top CPU user.
    let consumer_subject = || {
        if let Some(t) = s.disk_detail.as_ref().and_then(|d| d.top_io.first()) {
            return Subject::process(t.pid, &t.comm);
        }
        let Some(p) = s.processes.as_ref() else {
            return Subject::default();
        };
        if let Some(d) = p.d_state.first() {
            return Subject::process(d.pid, &d.comm);
        }
        p.top_cpu.first().map(ProcRow::subject).unwrap_or_default()
    };
    let consumer = || {
        if let Some(t) = s.disk_detail.as_ref().and_then(|d| d.top_io.first()) {
            return Some(format!(
                "; top I/O: {} (pid {}) {:.0} kB/s read, {:.0} kB/s written",
                t.comm, t.pid, t.read_kb_per_s, t.write_kb_per_s
            ));
        }
        let p = s.processes.as_ref()?;
        if let Some(d) = p.d_state.first() {
            return Some(format!("; in D state: {} (pid {})", d.comm, d.pid));
        }
        p.top_cpu
            .first()
            .map(|t| format!("; top CPU: {} (pid {}) {:.0}%", t.comm, t.pid, t.cpu_pct))
    };
    crate::resources::disk::rules(&s.disks, consumer_subject, consumer, out);
    crate::resources::filesystem::rules(&s.filesystems, out);
}

fn net_rules(s: &Sections, out: &mut Vec<Finding>) {
    crate::resources::netif::rules(&s.interfaces, out);
    crate::resources::tcp::rules(&s.tcp, |out| time_wait_rule(s, out), out);
}

/// TIME_WAIT in our own namespace. With the net view's socket dump it names the local ports
/// holding them and the destination using the most ephemeral ports, and tells the server side
/// (this host closes first on its listening ports: no ephemeral port is held, info) from the
/// client side (a warning only when one destination really uses many ports).
pub fn time_wait_rule(s: &Sections, out: &mut Vec<Finding>) {
    let Some(tw) = s
        .tcp
        .iter()
        .find(|t| t.namespace == "own")
        .and_then(|t| t.time_wait)
    else {
        return;
    };
    let Some((sev, th)) = level("tcp.time_wait", tw as f64) else {
        return;
    };
    let e = vec![ev("tcp.time_wait", tw as f64, ">=", th.warn, "count")];
    let next_ss: String =
        "ss -tan state time-wait | awk '{print $3}' | sort | uniq -c | sort -n | tail".into();
    let detail = s.net_detail.as_ref().and_then(|n| {
        Some((
            n.time_wait_local_ports.as_ref()?,
            n.client_ports.as_ref()?,
            n.ephemeral_busiest_pct,
            n,
        ))
    });
    let Some((ports, dests, busiest, n)) = detail else {
        out.push(
            finding(
                "tcp.saturation.time_wait",
                sev,
                "tcp",
                format!("{tw} sockets in TIME_WAIT: close to ephemeral port exhaustion for a busy peer (triage net tells client from server side)"),
                e,
                vec!["triage net".into(), next_ss, "consider connection pooling / net.ipv4.tcp_tw_reuse=1".into()],
            ),
        );
        return;
    };
    let on_top: u64 = ports.iter().map(|p| p.1).sat_sum();
    let owner = |port: u16| {
        n.listeners
            .iter()
            .find(|l| l.port == port)
            .and_then(|l| Some((l.owner_pid?, l.owner_comm.clone()?)))
    };
    let warn_pct = threshold("tcp.ephemeral_used_pct").warn;
    let client = busiest.is_some_and(|p| p >= warn_pct / 2.0);
    if !client && !ports.is_empty() && on_top * 2 >= tw {
        // Server side: a few local ports hold them.
        let list = ports
            .iter()
            .map(|p| format!("{} ({})", p.0, p.1))
            .collect::<Vec<_>>()
            .join(", ");
        let top = ports[0].0;
        let who = owner(top)
            .map(|(p, c)| format!(", listener owned by {c} (pid {p})"))
            .unwrap_or_default();
        let mut subject = Subject {
            local: Some(format!("*:{top}")),
            port: Some(top),
            ..Default::default()
        };
        if let Some((p, c)) = owner(top) {
            subject.pid = Some(p);
            subject.comm = Some(c);
        }
        out.push(
            finding(
                "tcp.saturation.time_wait",
                Severity::Info,
                "tcp",
                format!(
                    "{tw} sockets in TIME_WAIT, {:.0}% of them on local ports {list}{who}: this host closes first on its own ports (server side); they hold no ephemeral port, and the busiest destination holds {} of the {} ephemeral ports: not port exhaustion",
                    on_top as f64 * 100.0 / tw as f64,
                    dests.first().map(|d| d.sockets).unwrap_or(0),
                    n.ephemeral_ports.unwrap_or(0)
                ),
                e,
                vec![next_ss],
            )
            .with_subject(subject),
        );
        return;
    }
    // Client side (or spread): the destination using the most ports. When it is near the
    // range, the ephemeral-port finding tells it (with its TIME_WAIT count): one fault, one
    // finding.
    if busiest.is_some_and(|p| p >= warn_pct) {
        return;
    }
    let top = dests.first();
    let subject = top
        .map(|d| Subject {
            local: Some(d.local_addr.clone()),
            remote: Some(d.remote.clone()),
            port: d.remote.rsplit_once(':').and_then(|(_, p)| p.parse().ok()),
            ..Default::default()
        })
        .unwrap_or_default();
    let to = top
        .map(|d| {
            format!(
                "; most to {} from {}: {} sockets ({} in TIME_WAIT), {:.0}% of the ephemeral ports",
                d.remote,
                d.local_addr,
                d.sockets,
                d.time_wait,
                busiest.unwrap_or(0.0)
            )
        })
        .unwrap_or_default();
    let sev = if client { sev } else { Severity::Info };
    out.push(
        finding(
            "tcp.saturation.time_wait",
            sev,
            "tcp",
            format!("{tw} sockets in TIME_WAIT{to}"),
            e,
            vec![
                next_ss,
                "consider connection pooling / net.ipv4.tcp_tw_reuse=1".into(),
            ],
        )
        .with_subject(subject),
    );
}

fn software_rules(s: &Sections, out: &mut Vec<Finding>) {
    if let Some(l) = &s.limits {
        crate::resources::limits::rules(l, out);
    }
    if let Some(p) = &s.processes {
        crate::resources::limits::process_rules(&p.fd_top, out);
        crate::resources::tasks::zombie_rule(p, out);
    }
}

/// The tasks resource's rule ([`crate::resources::tasks::rss_growth_rule`]), run with the
/// memory rules.
fn rss_growth_rule(s: &Sections, out: &mut Vec<Finding>) {
    if let Some(p) = &s.processes {
        crate::resources::tasks::rss_growth_rule(p, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_threshold_is_ordered_and_unique() {
        let all: Vec<&Threshold> = crate::resources::rule::all().collect();
        for (i, t) in all.iter().enumerate() {
            assert!(t.warn <= t.crit, "{}", t.id);
            assert!(
                all[i + 1..].iter().all(|o| o.id != t.id),
                "duplicate {}",
                t.id
            );
        }
    }

    #[test]
    fn level_picks_severity() {
        assert_eq!(level("disk.await_ms", 5.0).map(|l| l.0), None);
        assert_eq!(
            level("disk.await_ms", 10.0).map(|l| l.0),
            Some(Severity::Warning)
        );
        assert_eq!(
            level("disk.await_ms", 80.0).map(|l| l.0),
            Some(Severity::Critical)
        );
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}

#[cfg(test)]
mod rule_tests;
