//! From readings to a report: the model (sections, USE resources) and the rules' findings,
//! assembled into the one `Report` every renderer reads.

use crate::collect::run::Readings;
use crate::model;
use crate::model::report::{Report, Tool, Unavailable, Window, SCHEMA_VERSION};

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
    let host = model::host(r);
    let sections = model::build::sections(r, a.log_lookback_s);
    let mut resources = model::resources::resources(&sections, host.effective_cpus.max(0.01));
    model::resources::add_idle(
        &mut resources,
        &model::build::idle_disks(r),
        &model::build::idle_interfaces(r),
    );
    let runnable: Vec<u32> = r
        .samples
        .iter()
        .map(|s| s.running.saturating_sub(1))
        .collect();
    let findings = super::findings(
        &sections,
        &super::Context {
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
    for what in model::build::counter_resets(r) {
        unavailable.push(Unavailable {
            what: format!("rates of {what}"),
            reason: "a counter went backwards during the window (reset, wrap or device replaced): no rate".into(),
            fix: Some("measure again".into()),
        });
    }
    unavailable.sort();
    unavailable.dedup();
    let missing = model::summary::missing_core(r);
    let mut rep = Report {
        schema_version: SCHEMA_VERSION.into(),
        tool: Tool {
            name: "triage".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        command: command.into(),
        summary: Default::default(),
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
        cost: None,
    };
    rep.summary = model::summary::summarize(&rep, &missing);
    rep
}
