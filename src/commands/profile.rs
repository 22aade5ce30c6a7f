//! `triage profile`: where the CPU goes. Timed stack samples on every CPU (one perf event
//! per CPU, `-F` per second, a BPF program counting (process, thread, CPU, kernel stack, user
//! stack) in the kernel) for `--duration` or until Ctrl-C; top processes, threads, functions
//! and stacks, folded stacks, an SVG flame graph or JSON.
//!
//! `--record DIR` stores the probe output as `DIR/probes/profile.json`; `--fixture DIR`
//! replays it without BPF.

use std::path::Path;

use crate::cli::Global;
use crate::model::profile::ProfileProbe;
use crate::model::report::{Report, Tool, Unavailable, Window, SCHEMA_VERSION};

pub const NAME: &str = "profile";

pub use crate::cli::ProfileArgs as Args;

pub fn run(a: &Args, g: &Global) -> Result<Report, String> {
    // The output directory is taken before sampling (created 0700 by us, or empty and ours;
    // files created without following symlinks): a bad one fails fast.
    let record_dir = match &a.record {
        Some(dir) => Some(super::sixty_second::prepare_capture_dir(dir)?),
        None => None,
    };
    let probe = match &a.fixture {
        Some(dir) => load_fixture(dir)?,
        None => trace_live(a, g)?,
    };
    if let Some(dir) = &record_dir {
        let json = serde_json::to_string_pretty(&probe).map_err(|e| e.to_string())?;
        dir.write("probes/profile.json", (json + "\n").as_bytes())
            .map_err(|e| e.to_string())?;
    }
    if let Some(svg) = &a.svg {
        let lines = folded(&probe);
        if lines.is_empty() {
            return Err("no on-CPU samples recorded: nothing to draw".into());
        }
        super::offcpu::flame_svg(
            &lines,
            "On-CPU samples (triage profile)",
            "samples",
            inferno::flamegraph::color::BasicPalette::Hot,
            svg,
        )?;
    }
    if a.folded {
        let mut text = folded(&probe).join("\n");
        text.push('\n');
        use std::io::Write;
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
        std::process::exit(0);
    }
    Ok(report(probe, a.top, a.fixture.is_none()))
}

/// Folded lines of every stack of work (the idle task doing nothing left out).
pub fn folded(p: &ProfileProbe) -> Vec<String> {
    p.stacks
        .iter()
        .filter(|s| !s.is_idle())
        .map(|s| s.folded())
        .collect()
}

fn load_fixture(dir: &Path) -> Result<ProfileProbe, String> {
    super::offcpu::load_probe(dir, "profile")
}

#[cfg(not(feature = "bpf"))]
fn trace_live(_a: &Args, _g: &Global) -> Result<ProfileProbe, String> {
    Err(crate::probe::NO_BPF.into())
}

#[cfg(feature = "bpf")]
fn trace_live(a: &Args, g: &Global) -> Result<ProfileProbe, String> {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    crate::probe::set_verbose(g.verbose);
    crate::probe::preflight::require_bpf("profile")?;
    let cgroup = match &a.cgroup {
        Some(c) => Some(super::syscalls::resolve_cgroup(c)?),
        None => None,
    };
    let opts = crate::probe::profile::Options {
        pid: a.pid,
        cgroup,
        comm: a.comm.clone(),
        frequency_hz: a.frequency,
        event: a.event.clone(),
        user_stacks: !a.no_user_stacks,
        max_entries: a.max_entries,
        stack_entries: a.stack_entries,
    };
    let flag = super::interrupt_flag();
    let dur = Duration::from_secs_f64(a.duration.clamp(0.1, 86400.0));
    let mut t0: Option<Instant> = None;
    crate::probe::profile::trace(&opts, || {
        let t = *t0.get_or_insert_with(Instant::now);
        t.elapsed() >= dur || flag.load(Ordering::Relaxed)
    })
    .map_err(|e| {
        format!(
            "profile probe did not attach: {e} ({})",
            crate::probe::attach_fix(&e.to_string())
        )
    })
}

/// The report: header facts, the profile section, findings, and what was lost or could not
/// be unwound. `live`: the host facts are this machine's (a fixture gets none, so snapshots
/// are stable).
pub fn report(probe: ProfileProbe, top: usize, live: bool) -> Report {
    let mut unavailable = Vec::new();
    let d = &probe.dropped;
    if d.total() > 0 {
        unavailable.push(Unavailable {
            what: "some samples' stacks".into(),
            reason: format!(
                "maps full or stacks collided: {} samples not counted, {} kernel stacks and {} \
                 user stacks lost (their samples are counted without them)",
                d.aggregations, d.kernel_stacks, d.user_stacks
            ),
            fix: Some(
                "raise --stack-entries / --max-entries, narrow the scope (-p, --cgroup, --comm) \
                 or shorten --duration"
                    .into(),
            ),
        });
    }
    if let Some((what, reason, fix)) =
        crate::probe::decode::refused_note("profile", d.decode_errors)
    {
        unavailable.push(Unavailable {
            what,
            reason,
            fix: Some(fix),
        });
    }
    if probe.frames_unresolved > 0 {
        unavailable.push(Unavailable {
            what: "some stack frames' names".into(),
            reason: format!(
                "{} of {} frames unresolved (shown as module+offset): stripped binaries or \
                 JIT code",
                probe.frames_unresolved, probe.frames_total
            ),
            fix: Some("install the debug symbols (the -dbgsym packages)".into()),
        });
    }
    let findings = crate::analyze::profile::findings(&probe);
    let section = crate::analyze::profile::section(&probe, top.max(1));
    // Stacks that stopped before the program's or thread's start: frame pointers missing.
    let bad: Vec<String> = section
        .unwind
        .iter()
        .filter(|u| u.truncated * 5 >= u.with_user_stack)
        .map(|u| {
            format!(
                "{} (pid {}): {} of {} samples, stopped in {}",
                u.process, u.pid, u.truncated, u.with_user_stack, u.stopped_in
            )
        })
        .collect();
    if !bad.is_empty() {
        unavailable.push(Unavailable {
            what: "full user stacks (unwound by frame pointers)".into(),
            reason: format!(
                "user stacks stop before main/thread start: {}; the code there was built \
                 without frame pointers, so callers above it are missing (self time is right, \
                 total time is short)",
                bad.join("; ")
            ),
            fix: Some(
                "rebuild with -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer (C/C++), \
                 -C force-frame-pointers=yes (Rust), or use a distribution built with frame \
                 pointers (libc included)"
                    .into(),
            ),
        });
    }
    if probe.traced_s >= 1.0
        && section.rate_hz > 0.0
        && (section.rate_hz - probe.frequency_hz as f64).abs() > 0.05 * probe.frequency_hz as f64
    {
        unavailable.push(Unavailable {
            what: "the requested sampling rate".into(),
            reason: format!(
                "{:.1} samples/s per CPU observed against {} requested (the kernel throttles \
                 samples when they take too long: kernel.perf_event_max_sample_rate)",
                section.rate_hz, probe.frequency_hz
            ),
            fix: Some("lower -F".into()),
        });
    }
    unavailable.sort();
    let secs = probe.traced_s;
    let (host, start, end) = super::offcpu::header(secs, live);
    let mut rep = Report {
        schema_version: SCHEMA_VERSION.into(),
        tool: Tool {
            name: "triage".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        command: NAME.into(),
        summary: Default::default(),
        host,
        window: Window {
            start,
            end,
            elapsed_s: (secs * 1000.0).round() / 1000.0,
            samples: 0,
        },
        resources: Vec::new(),
        findings,
        sections: crate::model::sections::Sections {
            profile: Some(section),
            ..Default::default()
        },
        unavailable,
        cost: None,
    };
    crate::model::summary::refresh(&mut rep);
    rep
}
