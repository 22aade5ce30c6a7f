//! `triage offcpu`: where threads wait instead of run. Off-CPU time by (process, thread,
//! kernel stack, user stack, state) from the scheduler's switch tracepoint, for `--duration`
//! or until Ctrl-C; a top-stacks table, folded stacks, an SVG flame graph or JSON.
//!
//! `--record DIR` stores the probe output as `DIR/probes/offcpu.json`; `--fixture DIR`
//! replays it without BPF.

use std::path::{Path, PathBuf};

use crate::cli::Global;
use crate::model::offcpu::{LatencyReadings, LatencySection, OffcpuProbe, OffcpuSection};
use crate::model::report::{Host, Report, Tool, Unavailable, Window, SCHEMA_VERSION};

pub const NAME: &str = "offcpu";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How long to trace, in seconds (Ctrl-C ends it early).
    #[arg(long, short = 'd', default_value_t = 5.0)]
    pub duration: f64,
    /// Only this process (tgid).
    #[arg(long, short = 'p')]
    pub pid: Option<u32>,
    /// Only this cgroup (v2 path under /sys/fs/cgroup) and below.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Ignore blocks shorter than this (`1ms`, `200us`, a bare number is microseconds).
    #[arg(long, default_value = "1ms", value_parser = parse_us, value_name = "TIME")]
    pub min_block: u64,
    /// Rows in the top-stacks table.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print folded stacks (`proc;frame;frame value_us`) for flame-graph tools instead.
    #[arg(long)]
    pub folded: bool,
    /// Also write an SVG flame graph to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Kernel stacks only (cheaper; user stacks need frame pointers anyway).
    #[arg(long)]
    pub no_user_stacks: bool,
    /// Also trace kernel threads.
    #[arg(long)]
    pub kernel_threads: bool,
    /// Also count preemption (state R: runnable, waiting for a CPU).
    #[arg(long)]
    pub include_runnable: bool,
    /// Store the probe output in DIR/probes/offcpu.json (a fixture).
    #[arg(long, value_name = "DIR", conflicts_with = "fixture")]
    pub record: Option<PathBuf>,
    /// Replay DIR/probes/offcpu.json instead of tracing.
    #[arg(long, value_name = "DIR")]
    pub fixture: Option<PathBuf>,
    /// For `cargo xtask bench --offcpu`: run only this other probe (`runqlat`) for the
    /// duration, and print its start-up time.
    #[arg(long, hide = true, value_name = "PROBE")]
    pub bench_probe: Option<String>,
}

/// `1ms`, `250us`, `2s`, or a bare number of microseconds.
pub fn parse_us(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e6)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a time (e.g. 1ms, 200us)"))?;
    if !(0.0..=3.6e9).contains(&(v * mult)) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok((v * mult) as u64)
}

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
        None => trace_live(a, g)?,
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

fn load_fixture(dir: &Path) -> Result<OffcpuProbe, String> {
    let path = dir.join("probes").join("offcpu.json");
    let text = crate::host::safe::read_in(dir, "probes/offcpu.json")
        .map_err(|e| format!("{}: {e}", path.display()))?;
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
    if let Some(b) = crate::probe::preflight::bpf_blockers().first() {
        let fix = b
            .fix
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default();
        return Err(format!("offcpu needs eBPF: {}{fix}", b.reason));
    }
    let cgroup = match &a.cgroup {
        Some(c) => Some(cgroup_id(c)?),
        None => None,
    };
    let opts = crate::probe::offcpu::Options {
        pid: a.pid,
        cgroup,
        min_block_us: a.min_block,
        user_stacks: !a.no_user_stacks,
        kernel_threads: a.kernel_threads,
        include_runnable: a.include_runnable,
        ..Default::default()
    };
    let flag = super::interrupt_flag();
    let dur = Duration::from_secs_f64(a.duration.clamp(0.1, 86400.0));
    let mut t0: Option<Instant> = None;
    crate::probe::offcpu::trace(&opts, || {
        let t = *t0.get_or_insert_with(Instant::now);
        t.elapsed() >= dur || flag.load(Ordering::Relaxed)
    })
    .map_err(|e| {
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

/// A v2 cgroup path -> (path, id = inode of its directory, depth below the root).
#[cfg(feature = "bpf")]
pub fn cgroup_id(path: &str) -> Result<(String, u64, u32), String> {
    use std::os::unix::fs::MetadataExt;
    let rel = path.trim_start_matches("/sys/fs/cgroup").trim_matches('/');
    let full = Path::new("/sys/fs/cgroup").join(rel);
    let md = std::fs::metadata(&full).map_err(|e| format!("{}: {e}", full.display()))?;
    let level = rel.split('/').filter(|c| !c.is_empty()).count() as u32;
    Ok((path.to_string(), md.ino(), level))
}

fn write_svg(p: &OffcpuProbe, path: &Path) -> Result<(), String> {
    let lines: Vec<String> = p.stacks.iter().map(|s| s.folded()).collect();
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = "Off-CPU time (triage offcpu)".into();
    opts.count_name = "us".into();
    opts.colors =
        inferno::flamegraph::Palette::Basic(inferno::flamegraph::color::BasicPalette::Blue);
    if lines.is_empty() {
        return Err("no off-CPU stacks recorded: nothing to draw".into());
    }
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
    let processes = crate::analyze::offcpu::per_process(&probe, top.max(1));
    let stacks_total = probe.stacks.len();
    let mut probe = probe;
    probe.stacks.truncate(top.max(1));
    let secs = probe.traced_s;
    let (host, start, end) = if live {
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
            cgroup_mode: "-".into(),
            ..Default::default()
        };
        (host, start.to_string(), end.to_string())
    } else {
        let host = Host {
            hostname: "(fixture)".into(),
            kernel: "-".into(),
            effective_cpus_source: "-".into(),
            cgroup_mode: "-".into(),
            ..Default::default()
        };
        (host, "-".into(), "-".into())
    };
    Report {
        schema_version: SCHEMA_VERSION.into(),
        tool: Tool {
            name: "triage".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        command: NAME.into(),
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
                probe,
            }),
            ..Default::default()
        },
        unavailable,
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
