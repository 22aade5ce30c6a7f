//! `triage offcpu`: where threads wait instead of run. Off-CPU time by (process, thread,
//! kernel stack, user stack, state) from the scheduler's switch tracepoint, for `--duration`
//! or until Ctrl-C; a top-stacks table, folded stacks, an SVG flame graph or JSON.
//!
//! `--record DIR` stores the probe output as `DIR/probes/offcpu.json`; `--fixture DIR`
//! replays it without BPF.

use std::path::Path;

use crate::cli::Global;
use crate::model::offcpu::{LatencyReadings, LatencySection, OffcpuProbe, OffcpuSection};
use crate::model::report::{Host, Report, Tool, Unavailable, Window, SCHEMA_VERSION};

pub const NAME: &str = "offcpu";
/// Blocks this long or longer are all recorded (with their stacks).
pub const DEFAULT_MIN_BLOCK_US: u64 = 1000;
/// Below that, one block in this many is recorded and weighted by it...
pub const DEFAULT_SAMPLE_EVERY: u32 = 16;
/// ...down to this length (shorter waits cost about what a context switch costs).
pub const DEFAULT_SAMPLE_FLOOR_US: u64 = 10;

pub use crate::cli::OffcpuArgs as Args;

pub fn run(a: &Args, g: &Global) -> Result<Report, String> {
    if a.bench_probe.is_some() {
        bench_probe(a)?;
        std::process::exit(0);
    }
    // The output directory is taken before tracing: a bad one fails fast.
    let record_dir = match &a.record {
        Some(dir) => Some(super::sixty_second::prepare_capture_dir(dir)?),
        None => None,
    };
    let probe = match &a.fixture {
        Some(dir) => load_fixture(dir)?,
        None => {
            check_scope(a)?;
            trace_live(a, g)?
        }
    };
    if let Some(dir) = &record_dir {
        let json = serde_json::to_string_pretty(&probe).map_err(|e| e.to_string())?;
        dir.write("probes/offcpu.json", (json + "\n").as_bytes())
            .map_err(|e| e.to_string())?;
    }
    if let Some(svg) = &a.svg {
        write_svg(&probe, svg)?;
    }
    if a.folded {
        let mut text = String::new();
        for s in &probe.stacks {
            text.push_str(&s.folded());
            text.push('\n');
        }
        std::process::exit(super::print_or_exit_code(&text));
    }
    Ok(report(probe, a.top, a.fixture.is_none()))
}

/// A scope that names nothing is an error, not an empty report.
fn check_scope(a: &Args) -> Result<(), String> {
    if let Some(pid) = a.pid {
        if pid == 0 || !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(format!("--pid {pid}: no such process"));
        }
    }
    if let Some(c) = &a.cgroup {
        super::syscalls::resolve_cgroup(c)?;
    }
    Ok(())
}

fn load_fixture(dir: &Path) -> Result<OffcpuProbe, String> {
    load_probe(dir, "offcpu")
}

/// A recorded probe output, `DIR/probes/NAME.json`, read beneath DIR and capped.
pub fn load_probe<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T, String> {
    let rel = format!("probes/{name}.json");
    let path = dir.join(&rel);
    let text =
        crate::host::safe::read_in(dir, &rel).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(feature = "bpf"))]
fn trace_live(_a: &Args, _g: &Global) -> Result<OffcpuProbe, String> {
    Err(crate::probe::NO_BPF.into())
}

#[cfg(feature = "bpf")]
fn trace_live(a: &Args, g: &Global) -> Result<OffcpuProbe, String> {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    crate::probe::set_verbose(g.verbose);
    crate::probe::preflight::require_bpf("offcpu")?;
    let cgroup = match &a.cgroup {
        Some(c) => Some(super::syscalls::resolve_cgroup(c)?),
        None => None,
    };
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
    let flag = super::interrupt_flag();
    let dur = Duration::from_secs_f64(a.duration.clamp(0.1, 86400.0));
    let mut t0: Option<Instant> = None;
    let mut progress = None;
    let traced = crate::probe::offcpu::trace(&opts, || {
        let t = *t0.get_or_insert_with(Instant::now);
        progress.get_or_insert_with(|| {
            super::output::Progress::start(
                &format!("off-CPU time ({:.1} s)", dur.as_secs_f64()),
                dur,
            )
        });
        t.elapsed() >= dur || flag.load(Ordering::Relaxed)
    });
    drop(progress);
    traced.map_err(|e| {
        format!(
            "offcpu probe did not attach: {e} ({})",
            crate::probe::attach_fix(&e.to_string())
        )
    })
}

#[cfg(not(feature = "bpf"))]
fn bench_probe(_a: &Args) -> Result<(), String> {
    Err(crate::probe::NO_BPF.into())
}

#[cfg(feature = "bpf")]
fn bench_probe(a: &Args) -> Result<(), String> {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    if a.bench_probe.as_deref() != Some("runqlat") {
        return Err("--bench-probe: only `runqlat`".into());
    }
    let flag = super::interrupt_flag();
    let t0 = Instant::now();
    let run = crate::probe::latency::start(&crate::probe::latency::Wanted {
        runqueue: true,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    eprintln!(
        "runqlat probe attached in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let dur = Duration::from_secs_f64(a.duration);
    while t0.elapsed() < dur && !flag.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = run.finish();
    if let Some(s) = r.runqueue_total().and_then(|t| t.summary()) {
        eprintln!(
            "run-queue latency: {} wakeups, p99 < {:?} us",
            s.count, s.p99_hi_us
        );
    }
    Ok(())
}

/// How the latency probes are named in `unavailable`.
pub const LATENCY_WHAT: &str = "eBPF latency histograms (run queue, block I/O, TCP retransmits)";

#[cfg(feature = "bpf")]
pub fn start_latency(
    wanted: &crate::probe::latency::Wanted,
    verbose: bool,
) -> (Option<crate::probe::latency::Running>, Option<Unavailable>) {
    crate::probe::set_verbose(verbose);
    if let Some(b) = crate::probe::preflight::bpf_blockers().into_iter().next() {
        let u = Unavailable {
            what: LATENCY_WHAT.into(),
            reason: b.reason,
            fix: b.fix,
        };
        return (None, Some(u));
    }
    match crate::probe::latency::start(wanted) {
        Ok(r) => (Some(r), None),
        Err(e) => {
            let u = Unavailable {
                what: LATENCY_WHAT.into(),
                reason: format!("did not attach: {e}"),
                fix: Some(crate::probe::attach_fix(&e.to_string())),
            };
            (None, Some(u))
        }
    }
}

/// The probes a caller wants (a unit in builds without eBPF).
#[cfg(feature = "bpf")]
pub type Wanted = crate::probe::latency::Wanted;
#[cfg(not(feature = "bpf"))]
pub type Wanted = ();

/// Every latency probe (what sixty-second runs).
#[cfg(feature = "bpf")]
pub fn all_latency() -> crate::probe::latency::Wanted {
    crate::probe::latency::Wanted::all()
}

/// What `triage cpu` / `disk` / `net` run: run-queue latency (of one process's threads with
/// `pid`), block I/O latency (of requests one process issued with `pid`), TCP retransmits.
#[cfg(feature = "bpf")]
pub fn latency_for(resource: &str, pid: Option<u32>) -> crate::probe::latency::Wanted {
    let mut w = crate::probe::latency::Wanted::default();
    match resource {
        "cpu" => {
            w.runqueue = true;
            w.runqueue_pid = pid;
        }
        "disk" => {
            w.block = true;
            w.block_pid = pid;
        }
        "net" => w.retransmits = true,
        _ => w = crate::probe::latency::Wanted::all(),
    }
    w
}

#[cfg(not(feature = "bpf"))]
pub fn latency_for(_resource: &str, _pid: Option<u32>) {}

/// Without eBPF support nothing starts, and the report says why.
#[cfg(not(feature = "bpf"))]
pub fn start_latency(_wanted: &(), _verbose: bool) -> (Option<NoProbe>, Option<Unavailable>) {
    let u = Unavailable {
        what: LATENCY_WHAT.into(),
        reason: crate::probe::NO_BPF.into(),
        fix: None,
    };
    (None, Some(u))
}

#[cfg(not(feature = "bpf"))]
pub fn all_latency() {}

/// Stands in for `probe::latency::Running` in builds without eBPF.
#[cfg(not(feature = "bpf"))]
pub struct NoProbe;
#[cfg(not(feature = "bpf"))]
impl NoProbe {
    pub fn finish(self) -> LatencyReadings {
        LatencyReadings::default()
    }
}

/// Put the latency readings into `report` (section, evidence on findings, re-ranked) and say
/// why they are missing, if they are.
pub fn add_latency(
    report: &mut Report,
    latency: Option<&LatencyReadings>,
    not_run: Option<Unavailable>,
) {
    if let Some(l) = latency {
        let sec = LatencySection::from_readings(l);
        crate::analyze::offcpu::enrich(report, &sec);
        report.sections.latency = Some(sec);
    }
    if let Some(u) = not_run {
        report.unavailable.push(u);
        report.unavailable.sort();
    }
}

fn write_svg(p: &OffcpuProbe, path: &Path) -> Result<(), String> {
    let lines: Vec<String> = p.stacks.iter().map(|s| s.folded()).collect();
    if lines.is_empty() {
        return Err("no off-CPU stacks recorded: nothing to draw".into());
    }
    flame_svg(
        &lines,
        "Off-CPU time (triage offcpu)",
        "us",
        inferno::flamegraph::color::BasicPalette::Blue,
        path,
    )
}

/// Draw folded `lines` as an SVG flame graph into `path`.
pub fn flame_svg(
    lines: &[String],
    title: &str,
    count_name: &str,
    palette: inferno::flamegraph::color::BasicPalette,
    path: &Path,
) -> Result<(), String> {
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.into();
    opts.count_name = count_name.into();
    opts.colors = inferno::flamegraph::Palette::Basic(palette);
    let f = crate::host::outdir::create_output_file(path).map_err(|e| e.to_string())?;
    let mut w = std::io::BufWriter::new(f);
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(|s| s.as_str()), &mut w)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // A full disk shows here (BufWriter's drop would swallow it).
    use std::io::Write;
    w.flush().map_err(|e| format!("{}: {e}", path.display()))
}

fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
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
    let (host, start, end) = header(secs, live);
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
            offcpu: Some(OffcpuSection {
                total_ms: (total_ms * 1000.0).round() / 1000.0,
                stacks_total,
                processes,
                processes_total,
                probe,
            }),
            ..Default::default()
        },
        unavailable,
        cost: None,
    };
    crate::model::summary::refresh(&mut rep);
    rep
}

/// Host facts and the window's start and end for a probe-only report that traced `secs`
/// ending now. `live`: the host facts are this machine's; a replayed fixture gets none (null,
/// not a made-up value), so snapshots are stable.
pub fn header(secs: f64, live: bool) -> (Host, String, String) {
    if live {
        let online = read_trim("/sys/devices/system/cpu/online");
        let cpus = count_cpus(&online);
        let now = jiff::Timestamp::now();
        let end = now.round(jiff::Unit::Millisecond).unwrap_or(now);
        let start = end
            .checked_sub(jiff::SignedDuration::from_secs_f64(secs))
            .unwrap_or(end);
        let host = Host {
            hostname: read_trim("/proc/sys/kernel/hostname"),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            online_cpus: cpus,
            effective_cpus: cpus as f64,
            effective_cpus_source: format!("online {online}"),
            ..live_host_facts()
        };
        (host, start.to_string(), end.to_string())
    } else {
        let host = Host {
            hostname: "(fixture)".into(),
            kernel: "-".into(),
            effective_cpus_source: "-".into(),
            // Not recorded with the probe: null, not a made-up value.
            ..Default::default()
        };
        (host, "-".into(), "-".into())
    }
}

/// The host facts every report has, read from this machine the same way the /proc pipeline
/// reads them (unknown ones stay null).
fn live_host_facts() -> Host {
    let src = crate::host::LiveSource::new(std::path::Path::new("/"));
    let layout = crate::collect::cgroup::layout(&src).ok();
    let container = layout
        .as_ref()
        .and_then(|l| crate::collect::cgroup::container_evidence(&src, l));
    let mem_total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    Host {
        memory_total_bytes: mem_total,
        cgroup_mode: layout.as_ref().map(|l| l.mode.as_str().to_string()),
        in_container: layout.as_ref().map(|_| container.is_some()),
        container_evidence: container,
        clock_ticks_per_s: Some(rustix::param::clock_ticks_per_second()),
        page_size_bytes: Some(rustix::param::page_size() as u64),
        ..Default::default()
    }
}

/// CPUs in a list such as `0-3,8`.
fn count_cpus(list: &str) -> u32 {
    list.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('-') {
            Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => u32::from(p.parse::<u32>().is_ok()),
        })
        .sum()
}
