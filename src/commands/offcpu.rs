//! `triage offcpu`: where threads wait instead of run. Off-CPU time by (process, thread,
//! kernel stack, user stack, state) from the scheduler's switch tracepoint, for `--duration`
//! or until Ctrl-C; a top-stacks table, folded stacks, an SVG flame graph or JSON.
//!
//! `--record DIR` stores the probe output as `DIR/probes/offcpu.json`; `--fixture DIR`
//! replays it without BPF.

use super::probe_view::{self, Flame, Plan, ProbeView};
use super::views::View;
use crate::cli::Global;
use crate::model::offcpu::{OffcpuProbe, OffcpuSection};
use crate::model::report::{Report, Unavailable};

pub const NAME: &str = super::views::OFFCPU.name;
/// Blocks this long or longer are all recorded (with their stacks).
pub const DEFAULT_MIN_BLOCK_US: u64 = 1000;
/// Below that, one block in this many is recorded and weighted by it...
pub const DEFAULT_SAMPLE_EVERY: u32 = 16;
/// ...down to this length (shorter waits cost about what a context switch costs).
pub const DEFAULT_SAMPLE_FLOOR_US: u64 = 10;

pub use crate::cli::OffcpuArgs as Args;

pub fn run(a: &Args, g: &Global) -> Result<Report, String> {
    if let Some(probe) = &a.bench_probe {
        super::latency::bench_probe(probe, a.duration)?;
        std::process::exit(0);
    }
    probe_view::run::<Offcpu>(a, g)
}

/// The `offcpu` view of the registry, run by [`probe_view::run`].
pub struct Offcpu;

impl ProbeView for Offcpu {
    type Args = Args;
    type Probe = OffcpuProbe;
    const VIEW: &'static View = &super::views::OFFCPU;
    const FLAME: Flame = Flame {
        title: "Off-CPU time (triage offcpu)",
        count_name: "us",
        palette: inferno::flamegraph::color::BasicPalette::Blue,
        empty: "no off-CPU stacks recorded: nothing to draw",
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

    fn check_scope(a: &Args) -> Result<(), String> {
        if let Some(pid) = a.pid {
            probe_view::check_pid(pid)?;
        }
        if let Some(c) = &a.cgroup {
            probe_view::resolve_cgroup(c)?;
        }
        Ok(())
    }

    #[cfg(feature = "bpf")]
    fn trace(a: &Args, g: &Global) -> Result<OffcpuProbe, String> {
        let what = Some("off-CPU time");
        probe_view::trace_window(
            NAME,
            g,
            a.cgroup.as_deref(),
            a.duration,
            what,
            |cgroup, stop| {
                let opts = crate::probe::offcpu::Options {
                    pid: a.pid,
                    cgroup,
                    min_block_us: a.min_block.unwrap_or(DEFAULT_MIN_BLOCK_US),
                    sample_every: if a.min_block.is_none() {
                        DEFAULT_SAMPLE_EVERY
                    } else {
                        0
                    },
                    sample_floor_us: DEFAULT_SAMPLE_FLOOR_US,
                    user_stacks: !a.no_user_stacks,
                    kernel_threads: a.kernel_threads,
                    include_runnable: a.include_runnable,
                    ..Default::default()
                };
                crate::probe::offcpu::trace(&opts, stop)
            },
        )
    }

    /// Every stack, the heaviest first.
    fn folded(p: &OffcpuProbe) -> Vec<String> {
        p.stacks.iter().map(|s| s.folded()).collect()
    }

    fn report(p: OffcpuProbe, top: usize, live: bool) -> Report {
        report(p, top, live)
    }
}

/// The report: header facts, the off-CPU section, findings, and what was dropped.
/// `live`: the host facts are this machine's (a replayed fixture gets none, so snapshots are
/// stable).
pub fn report(probe: OffcpuProbe, top: usize, live: bool) -> Report {
    let total_ms = probe.stacks.iter().map(|s| s.total_ms()).sum::<f64>();
    let mut unavailable = Vec::new();
    if probe.dropped.total() > 0 {
        unavailable.push(Unavailable {
            what: "some off-CPU events".into(),
            reason: format!(
                "maps full or stacks collided: {} start records, {} aggregations, {} kernel \
                 stacks, {} user stacks dropped",
                probe.dropped.start_records,
                probe.dropped.aggregations,
                probe.dropped.kernel_stacks,
                probe.dropped.user_stacks
            ),
            fix: Some("narrow the scope (--pid, --cgroup) or raise --min-block".into()),
        });
    }
    if let Some((what, reason, fix)) =
        crate::probe::decode::refused_note("offcpu", probe.dropped.decode_errors)
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
                "{} of {} frames unresolved (shown as module+offset)",
                probe.frames_unresolved, probe.frames_total
            ),
            fix: None,
        });
    }
    if probe.user_stacks_truncated > 0 {
        unavailable.push(Unavailable {
            what: "full user stacks".into(),
            reason: format!(
                "{} user stacks have one frame or none: the program was likely built without \
                 frame pointers",
                probe.user_stacks_truncated
            ),
            fix: Some(
                "rebuild with -fno-omit-frame-pointer (C/C++) or -C force-frame-pointers=yes (Rust)"
                    .into(),
            ),
        });
    }
    let findings = crate::analyze::offcpu::findings(&probe);
    // Every process, then cut: the document says how many the cut left out.
    let mut processes = crate::analyze::offcpu::per_process(&probe, usize::MAX);
    let processes_total = processes.len();
    processes.truncate(top.max(1));
    let stacks_total = probe.stacks.len();
    let mut probe = probe;
    probe.stacks.truncate(top.max(1));
    let secs = probe.traced_s;
    let sections = crate::model::sections::Sections {
        offcpu: Some(OffcpuSection {
            total_ms: (total_ms * 1000.0).round() / 1000.0,
            stacks_total,
            processes,
            processes_total,
            probe,
        }),
        ..Default::default()
    };
    probe_view::report(
        &super::views::OFFCPU,
        secs,
        live,
        findings,
        sections,
        unavailable,
    )
}
