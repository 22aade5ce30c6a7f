//! `triage syscalls`: syscall counts, errors and time per process and per syscall, counted in
//! the kernel by the eBPF syscall probe while the usual /proc window runs, so each process's
//! user/system CPU split sits next to the syscalls that explain it.
//!
//! When the probe cannot run (privileges, no BTF, a /proc-only build), the /proc report is
//! still produced, the reason is in `unavailable` with its fix and on stderr, and the exit
//! status stays 0 (a report was produced).

use std::time::Duration;

use super::probe_view;
use crate::analyze::Analysis;
use crate::cli::Global;
use crate::collect::run::{self, LiveOptions, Readings};
use crate::collect::Problem;
use crate::host::LiveSource;
use crate::model;
use crate::model::report::{Report, Unavailable};
use crate::probe::output::SyscallsProbe;

pub const NAME: &str = super::views::SYSCALLS.name;
/// Where a recording keeps the probe output, inside the fixture directory.
pub const PROBE_FILE: &str = "probes/syscalls.json";

pub use crate::cli::SyscallsArgs as Args;

pub fn run(args: &Args, global: &Global) -> Result<Report, String> {
    let w = &args.window;
    if let Some(c) = &args.comm {
        if c.is_empty() {
            return Err("--comm: empty name (no thread has one)".into());
        }
    }
    crate::probe::set_verbose(global.verbose);
    let (readings, probe, mut problems) = if let Some(dir) = &w.fixture {
        let readings = run::from_fixture(dir).map_err(|e| e.to_string())?;
        let path = dir.join(PROBE_FILE);
        match crate::host::safe::read_in(dir, PROBE_FILE) {
            Ok(b) => {
                let p: SyscallsProbe = serde_json::from_slice(&b)
                    .map_err(|e| format!("{}: invalid probe output: {e}", path.display()))?;
                (readings, Some(p), Vec::new())
            }
            Err(e) => (
                readings,
                None,
                vec![
                    Problem::io("syscall tracing (eBPF)", &path.display().to_string(), &e)
                        .with_fix("record the fixture with `triage syscalls --record DIR`"),
                ],
            ),
        }
    } else {
        live(args, global.verbose)?
    };
    if global.verbose {
        for p in &readings.problems {
            eprintln!(
                "triage: not measured: {} ({}: {})",
                p.what, p.path, p.reason
            );
        }
    }
    for p in &problems {
        eprintln!(
            "triage: {}: {}{}",
            p.what,
            p.reason,
            p.fix
                .as_ref()
                .map(|f| format!(" (fix: {f})"))
                .unwrap_or_default()
        );
    }
    let analysis = Analysis {
        log_lookback_s: w.log_lookback,
    };
    Ok(report(
        &readings,
        probe.as_ref(),
        std::mem::take(&mut problems),
        &analysis,
    ))
}

/// The report: the /proc window as in every command, plus the syscalls section and its
/// findings. Public so fixture tests build exactly what the binary prints.
pub fn report(
    readings: &Readings,
    probe: Option<&SyscallsProbe>,
    problems: Vec<Problem>,
    analysis: &Analysis,
) -> Report {
    // A checklist-level view: the whole /proc report, nothing narrowed.
    let view = &super::views::SYSCALLS;
    let mut r = super::pipeline::report(readings, view, &Default::default(), analysis);
    if let Some(p) = probe {
        let sec = model::syscalls::section(p, r.sections.processes.as_ref());
        r.findings.extend(crate::analyze::syscalls::findings(&sec));
        crate::analyze::syscalls::demote_explained(&mut r.findings);
        crate::analyze::syscalls::name_spawner(&sec, &mut r.findings);
        crate::analyze::rank(&mut r.findings);
        if sec.dropped.total() > 0 {
            r.unavailable.push(Unavailable {
                what: "part of the syscall tables".into(),
                reason: format!(
                    "in-kernel maps full: {} call(s) missing from per-process rows, {} errno \
                     count(s), {} latency sample(s), {} process name(s)",
                    sec.dropped.process_syscalls,
                    sec.dropped.errnos,
                    sec.dropped.start_times,
                    sec.dropped.process_names
                ),
                fix: Some("raise --max-entries, or scope with --pid/--cgroup/--comm".into()),
            });
        }
        if let Some((what, reason, fix)) =
            crate::probe::decode::refused_note("syscalls", sec.dropped.decode_errors)
        {
            r.unavailable.push(Unavailable {
                what,
                reason,
                fix: Some(fix),
            });
        }
        r.sections.syscalls = Some(sec);
    }
    for p in problems {
        r.unavailable.push(Unavailable {
            what: p.what,
            reason: format!("{}: {}", p.path, p.reason),
            fix: p.fix,
        });
    }
    r.unavailable.sort();
    r.unavailable.dedup();
    crate::model::summary::refresh(&mut r);
    r
}

type Live = (Readings, Option<SyscallsProbe>, Vec<Problem>);

fn live(args: &Args, verbose: bool) -> Result<Live, String> {
    let w = &args.window;
    if let Some(pid) = args.pid {
        probe_view::check_pid(pid)?;
    }
    let out_dir = match &args.record {
        Some(out) => Some(super::sixty_second::prepare_capture_dir(out)?),
        None => None,
    };
    let base = w.root.clone().unwrap_or_else(|| "/".into());
    let mut src = LiveSource::new(&base);
    if let Some(out) = &out_dir {
        src = src.with_recorder(out.clone());
    }
    let opts = LiveOptions {
        duration: Duration::from_secs_f64(w.duration),
        sample_interval: super::sixty_second::SAMPLE_INTERVAL,
        note: String::new(),
        interrupted: Some(super::interrupt_flag()),
        spec: crate::collect::deep::Spec::SIXTY_SECOND,
    };
    let record = args.record.as_deref();
    let window = || {
        let _progress = super::output::Progress::start(
            &format!("syscalls and /proc ({:.1} s window)", w.duration),
            opts.duration,
        );
        run::live(&src, &opts, record)
    };
    let (readings, probe, problems) = traced(args, verbose, window)?;
    if let (Some(dir), Some(p)) = (&out_dir, &probe) {
        probe_view::write_probe(dir, NAME, p)?;
    }
    Ok((readings, probe, problems))
}

#[cfg(not(feature = "bpf"))]
fn traced(_args: &Args, _verbose: bool, window: impl FnOnce() -> Readings) -> Result<Live, String> {
    let p = Problem::new("syscall tracing (eBPF)", "triage", crate::probe::NO_BPF)
        .with_fix("rebuild triage with the default `bpf` feature");
    Ok((window(), None, vec![p]))
}

#[cfg(feature = "bpf")]
fn traced(args: &Args, _verbose: bool, window: impl FnOnce() -> Readings) -> Result<Live, String> {
    use crate::probe::{preflight, syscalls};

    let blockers = preflight::bpf_blockers();
    if !blockers.is_empty() {
        let blockers = blockers
            .into_iter()
            .map(|mut p| {
                p.what = "syscall tracing (eBPF)".into();
                p
            })
            .collect();
        return Ok((window(), None, blockers));
    }
    let cgroup = match &args.cgroup {
        Some(c) => Some(probe_view::resolve_cgroup(c)?),
        None => None,
    };
    let opts = syscalls::Options {
        pid: args.pid,
        cgroup,
        comm: args.comm.clone(),
        latency: !args.no_latency,
        max_proc_entries: args.max_entries.max(64),
        only_attach: args.attach.clone(),
    };
    let scope = crate::probe::output::Scope {
        pid: opts.pid,
        cgroup: args.cgroup.clone(),
        comm: opts.comm.clone(),
    }
    .describe();
    let secs = args.window.duration;
    let mut window = Some(window);
    let during = || {
        eprintln!("triage: tracing syscalls ({scope}) for {secs} s; Ctrl-C to stop early");
        (window.take().expect("window runs once"))()
    };
    match syscalls::trace(&opts, during) {
        Ok((probe, readings)) => Ok((readings, Some(probe), Vec::new())),
        Err(e) => {
            let msg = e.to_string();
            let p = Problem::new(
                "syscall tracing (eBPF)",
                "bpf",
                format!("could not attach: {msg}"),
            )
            .with_fix(crate::probe::attach_fix(&msg));
            let w = window.take().expect("window not run when attach fails");
            Ok((w(), None, vec![p]))
        }
    }
}
