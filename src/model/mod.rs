//! The report model: detail sections computed from readings, the USE resources derived from
//! them, and the report that carries both with the findings.

pub mod build;
pub mod deep;
pub mod offcpu;
pub mod report;
pub mod resources;
pub mod sections;
pub mod spawn;

use crate::analyze;
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
        unavailable.push(Unavailable {
            what: "other users' processes: open fds and network namespaces".into(),
            reason: format!(
                "{} process(es) could not be inspected (permission denied)",
                r.end.fd_denied.max(r.namespaces.denied)
            ),
            fix: Some("run as root (CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH)".into()),
        });
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
