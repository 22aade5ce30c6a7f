//! The report model: detail sections computed from readings, the USE resources derived from
//! them, and the report that carries both with the findings.

pub mod build;
pub mod deep;
pub mod offcpu;
pub mod report;
pub mod resources;
pub mod sections;

use crate::analyze;

/// Saturating sums of counters that come from the system, a fixture or a BPF map: a hostile or
/// garbled value (u64::MAX) must not overflow (a panic with overflow checks, a wrapped nonsense
/// value without).
pub trait SatSum {
    fn sat_sum(self) -> u64;
}

impl<I: Iterator<Item = u64>> SatSum for I {
    fn sat_sum(self) -> u64 {
        self.fold(0u64, |a, b| a.saturating_add(b))
    }
}
use crate::collect::run::Readings;
use report::{Host, Report, Tool, Unavailable, Window, SCHEMA_VERSION};

/// Host facts from the readings (the fixture's or the live system's).
pub fn host(r: &Readings) -> Host {
    let e = &r.end;
    let layout = e.cgroup_layout.as_ref();
    let online = e.online_cpus.unwrap_or(0);
    let (eff, eff_src) = e
        .effective_cpus
        .clone()
        .unwrap_or_else(|| (online.max(1) as f64, format!("online {online}")));
    Host {
        hostname: e.hostname.clone().unwrap_or_default(),
        kernel: e.kernel.clone().unwrap_or_default(),
        uptime_s: r.t1.system.uptime_s,
        online_cpus: online,
        effective_cpus: build::r2(eff),
        effective_cpus_source: eff_src,
        memory_total_bytes: r.t1.system.mem.map(|m| m.total),
        memory_limit_bytes: e.memory_limit.as_ref().map(|m| m.0),
        memory_limit_source: e.memory_limit.as_ref().map(|m| m.1.clone()),
        cgroup_mode: layout
            .map(|l| l.mode.as_str())
            .unwrap_or("none")
            .to_string(),
        cgroup: layout.and_then(|l| l.own_v2.clone().or_else(|| l.own_v1.get("cpu").cloned())),
        in_container: e.container.is_some(),
        container_evidence: e.container.clone(),
        clock_ticks_per_s: r.meta.clock_ticks_per_s,
        page_size_bytes: r.meta.page_size_bytes,
    }
}

/// Options that shape the analysis (not the collection).
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Kernel log messages this far before the end of the window are reported.
    pub log_lookback_s: f64,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            log_lookback_s: 600.0,
        }
    }
}

pub fn build_report(r: &Readings, command: &str, a: &Analysis) -> Report {
    let host = host(r);
    let sections = build::sections(r, a.log_lookback_s);
    let resources = resources::resources(&sections, host.effective_cpus.max(0.01));
    let runnable: Vec<u32> = r
        .samples
        .iter()
        .map(|s| s.running.saturating_sub(1))
        .collect();
    let findings = analyze::findings(
        &sections,
        &analyze::Context {
            host: &host,
            elapsed_s: r.meta.elapsed_s,
            runnable_samples: &runnable,
        },
    );
    let mut unavailable: Vec<Unavailable> = r
        .problems
        .iter()
        .map(|p| Unavailable {
            what: p.what.clone(),
            reason: format!("{}: {}", p.path, p.reason),
            fix: p.fix.clone(),
        })
        .collect();
    if r.end.fd_denied > 0 || r.namespaces.denied > 0 {
        unavailable.push(denied_note(r));
    }
    for what in build::counter_resets(r) {
        unavailable.push(Unavailable {
            what: format!("rates of {what}"),
            reason: "a counter went backwards during the window (reset, wrap or device replaced): no rate".into(),
            fix: Some("measure again".into()),
        });
    }
    unavailable.sort();
    unavailable.dedup();
    Report {
        schema_version: SCHEMA_VERSION.into(),
        tool: Tool {
            name: "triage".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        command: command.into(),
        host,
        window: Window {
            start: r.meta.start.clone(),
            end: r.meta.end.clone(),
            elapsed_s: (r.meta.elapsed_s * 1000.0).round() / 1000.0,
            samples: r.samples.len() as u32,
        },
        resources,
        findings,
        sections,
        unavailable,
    }
}
pub mod syscalls;

/// CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE (19): what reading other processes' fds and
/// namespaces needs.
const INSPECT_CAPS: u64 = (1 << 2) | (1 << 19);

/// The `unavailable` note for processes that could not be inspected: named (pid and command),
/// and "run as root" only when we lack the capabilities that would help. With them, the denial
/// comes from elsewhere (an LSM, or a process the kernel hides even from root, such as PID 1
/// of a sandboxed VM), and saying "run as root" to root would mislead.
fn denied_note(r: &crate::collect::run::Readings) -> Unavailable {
    let mut pids: Vec<i32> = r
        .end
        .fd_denied_pids
        .iter()
        .chain(&r.namespaces.denied_pids)
        .copied()
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let n = pids.len().max(r.end.fd_denied.max(r.namespaces.denied));
    let name = |pid: i32| {
        let comm =
            r.t1.procs
                .procs
                .get(&pid)
                .or_else(|| r.t0.procs.procs.get(&pid))
                .map(|p| p.comm.as_str());
        match comm {
            Some(c) => format!("{c} (pid {pid})"),
            None => format!("pid {pid}"),
        }
    };
    let mut named: Vec<String> = pids.iter().take(5).map(|&p| name(p)).collect();
    if pids.len() > 5 {
        named.push(format!("and {} more", pids.len() - 5));
    }
    let who = if named.is_empty() {
        String::new()
    } else {
        format!(": {}", named.join(", "))
    };
    let privileged = r
        .end
        .cap_eff
        .is_some_and(|c| c & INSPECT_CAPS == INSPECT_CAPS);
    let (reason, fix) = if privileged {
        (
            format!(
                "{n} process(es) could not be inspected: permission denied even with \
                 CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (a security module or the kernel \
                 denies it to every user, as for PID 1 of a VM sandbox){who}"
            ),
            None,
        )
    } else {
        (
            format!("{n} process(es) could not be inspected (permission denied){who}"),
            Some("run as root (CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH)".into()),
        )
    };
    Unavailable {
        what: "other users' processes: open fds and network namespaces".into(),
        reason,
        fix,
    }
}
