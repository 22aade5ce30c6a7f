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
    model::qdisc::add_to_use(&mut resources, &sections.qdiscs);
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
        unavailable.push(denied_note(r));
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
