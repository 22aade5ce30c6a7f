//! `triage profile`: where the CPU goes. Timed stack samples on every CPU (one perf event
//! per CPU, `-F` per second, a BPF program counting (process, thread, CPU, kernel stack, user
//! stack) in the kernel) for `--duration` or until Ctrl-C; top processes, threads, functions
//! and stacks, folded stacks, an SVG flame graph or JSON.
//!
//! `--record DIR` stores the probe output as `DIR/probes/profile.json`; `--fixture DIR`
//! replays it without BPF.

use super::probe_view::{self, Flame, Plan, ProbeView};
use super::views::View;
use crate::cli::Global;
use crate::model::profile::ProfileProbe;
use crate::model::report::{Report, Unavailable};

pub const NAME: &str = super::views::PROFILE.name;

pub use crate::cli::ProfileArgs as Args;

pub fn run(a: &Args, g: &Global) -> Result<Report, String> {
    probe_view::run::<Profile>(a, g)
}

/// The `profile` view of the registry, run by [`probe_view::run`].
pub struct Profile;

impl ProbeView for Profile {
    type Args = Args;
    type Probe = ProfileProbe;
    const VIEW: &'static View = &super::views::PROFILE;
    const FLAME: Flame = Flame {
        title: "On-CPU samples (triage profile)",
        count_name: "samples",
        palette: inferno::flamegraph::color::BasicPalette::Hot,
        empty: "no on-CPU samples recorded: nothing to draw",
    };

    fn plan(a: &Args) -> Plan<'_> {
        Plan {
            record: a.record.as_deref(),
            fixture: a.fixture.as_deref(),
            svg: a.svg.as_deref(),
            folded: a.folded,
            top: a.top,
        }
    }

    #[cfg(feature = "bpf")]
    fn trace(a: &Args, g: &Global) -> Result<ProfileProbe, String> {
        probe_view::trace_window(
            NAME,
            g,
            a.cgroup.as_deref(),
            a.duration,
            None,
            |cgroup, stop| {
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
                crate::probe::profile::trace(&opts, stop)
            },
        )
    }

    fn folded(p: &ProfileProbe) -> Vec<String> {
        folded(p)
    }

    fn report(p: ProfileProbe, top: usize, live: bool) -> Report {
        report(p, top, live)
    }
}

/// Folded lines of every stack of work (the idle task doing nothing left out).
pub fn folded(p: &ProfileProbe) -> Vec<String> {
    p.stacks
        .iter()
        .filter(|s| !s.is_idle())
        .map(|s| s.folded())
        .collect()
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
    let sections = crate::model::sections::Sections {
        profile: Some(section),
        ..Default::default()
    };
    probe_view::report(
        &super::views::PROFILE,
        secs,
        live,
        findings,
        sections,
        unavailable,
    )
}
