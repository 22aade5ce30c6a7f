//! `triage sixty-second` (and `capture`, which is the same run recorded into a fixture).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::pipeline::{self, Output, Plan};
use super::views;
use crate::cli::WindowArgs;
use crate::collect::deep::Spec;
use crate::collect::run::{self, LiveOptions, Readings};
use crate::host::outdir::OutDir;
use crate::host::LiveSource;
use crate::model::offcpu::LatencyReadings;
use crate::model::report::Report;
use crate::model::report::Unavailable;

pub const NAME: &str = views::SIXTY_SECOND.name;

/// Runnable/blocked tasks are sampled this often inside the window.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

pub fn run(
    w: &WindowArgs,
    record: Option<&Path>,
    note: &str,
    verbose: bool,
) -> Result<Report, String> {
    let mut plan = Plan::checklist(&views::SIXTY_SECOND, w, verbose);
    plan.record = record.map(Path::to_path_buf);
    plan.note = note.to_string();
    match pipeline::run(&plan)? {
        Output::One(r) => Ok(*r),
        Output::Series(_) => unreachable!("a checklist plan has no --interval"),
    }
}

/// One window's /proc readings and the eBPF latency histograms that ran during it.
pub struct WindowReadings {
    pub readings: Readings,
    pub latency: Option<LatencyReadings>,
    /// Why the latency probes did not run, when they were wanted and did not.
    pub latency_missing: Option<Unavailable>,
}

impl WindowReadings {
    /// Put the histograms into the report (section, evidence, `unavailable`).
    pub fn add_latency_to(self, report: &mut Report) {
        super::latency::add_latency(report, self.latency.as_ref(), self.latency_missing);
    }
}

/// One window's readings, live (optionally recorded) or from `--fixture`, with what `spec`
/// adds and, unless `--no-bpf`, the `wanted` latency probes running during the window
/// (started before t0, read after t1); with `verbose`, what could not be read goes to stderr.
pub fn readings(
    w: &WindowArgs,
    record: Option<&Path>,
    note: &str,
    verbose: bool,
    spec: &Spec,
    wanted: Option<&super::latency::Wanted>,
) -> Result<WindowReadings, String> {
    readings_after(w, record, note, verbose, spec, wanted, None)
}

/// [`readings`] of the window that starts where `prev` ended (a series, back to back).
pub fn readings_after(
    w: &WindowArgs,
    record: Option<&Path>,
    note: &str,
    verbose: bool,
    spec: &Spec,
    wanted: Option<&super::latency::Wanted>,
    prev: Option<&run::Readings>,
) -> Result<WindowReadings, String> {
    let mut latency_missing = None;
    let latency;
    let readings = if let Some(dir) = &w.fixture {
        latency = read_latency_fixture(dir)?;
        run::from_fixture_spec(dir, spec).map_err(|e| e.to_string())?
    } else {
        let out_dir = match record {
            Some(out) => Some(prepare_capture_dir(out)?),
            None => None,
        };
        let base = w.root.clone().unwrap_or_else(|| "/".into());
        let mut src = LiveSource::new(&base);
        if let Some(out) = &out_dir {
            src = src.with_recorder(out.clone());
        }
        let (src, iter_missing) = with_task_iterator(src, w);
        let opts = LiveOptions {
            duration: Duration::from_secs_f64(w.duration),
            sample_interval: SAMPLE_INTERVAL,
            note: note.to_string(),
            interrupted: Some(super::interrupt_flag()),
            spec: *spec,
        };
        let probes = match wanted {
            Some(wanted) if !w.no_bpf => {
                let (p, why) = super::latency::start_latency(wanted, verbose);
                latency_missing = why;
                p
            }
            _ => None,
        };
        let progress = super::output::Progress::start(
            &format!("{} ({:.1} s window)", spec_name(spec), w.duration),
            opts.duration,
        );
        let mut readings = run::live_after(&src, &opts, record, prev);
        #[cfg(feature = "bpf")]
        if src.has_task_dumper() {
            crate::probe::taskiter::note_cost();
        }
        if let Some(p) = iter_missing {
            readings.problems.push(p);
            readings.problems.sort();
        }
        drop(progress);
        latency = probes.map(|p| p.finish());
        if let (Some(out), Some(l)) = (&out_dir, &latency) {
            write_latency_fixture(out, l)?;
        }
        readings
    };
    Ok(WindowReadings {
        readings,
        latency,
        latency_missing,
    })
}

/// What a window with `spec` measures, for the progress line.
fn spec_name(spec: &Spec) -> &'static str {
    match (spec.cpu, spec.mem, spec.disk, spec.net) {
        (true, true, true, true) => "everything",
        (true, false, false, false) => "CPU",
        (false, true, false, false) => "memory",
        (false, false, true, false) => "disks",
        (false, false, false, true) => "network",
        _ => "the 60-second checklist",
    }
}

/// `probes/latency.json` of a fixture, when it has one (older fixtures do not).
fn read_latency_fixture(dir: &Path) -> Result<Option<LatencyReadings>, String> {
    let path = dir.join("probes").join("latency.json");
    let text = match crate::host::safe::read_in(dir, "probes/latency.json") {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn write_latency_fixture(dir: &OutDir, l: &LatencyReadings) -> Result<(), String> {
    let json = serde_json::to_string_pretty(l).map_err(|e| e.to_string())?;
    dir.write("probes/latency.json", (json + "\n").as_bytes())
        .map_err(|e| e.to_string())
}

/// The output directory of a recording: created by us (0700), or an existing empty directory
/// of ours that is not a symlink (see [`OutDir`]).
pub fn prepare_capture_dir(out: &Path) -> Result<Arc<OutDir>, String> {
    OutDir::create(out).map(Arc::new).map_err(|e| e.to_string())
}

/// Tasks (threads) on the box now: the total of /proc/loadavg's `running/total` (the real
/// root's; read directly, not recorded). 0 when unreadable: then /proc.
fn tasks_now() -> u64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// The live source scanning processes through the BPF task iterator when it can: the real
/// root, eBPF not refused (`--no-bpf`) and allowed here. Otherwise the source as it was (the
/// /proc scan) and, when the iterator was wanted, why it is not used (for `unavailable`).
fn with_task_iterator(
    src: LiveSource,
    w: &WindowArgs,
) -> (LiveSource, Option<crate::collect::Problem>) {
    use crate::cli::TaskScan;
    if w.no_bpf
        || w.task_scan == TaskScan::Proc
        || w.root.as_ref().is_some_and(|r| r != Path::new("/"))
    {
        return (src, None);
    }
    if w.task_scan == TaskScan::Auto && tasks_now() < crate::cli::TASK_ITER_MIN_TASKS {
        return (src, None);
    }
    #[cfg(feature = "bpf")]
    let r = crate::probe::taskiter::dumper();
    #[cfg(not(feature = "bpf"))]
    let r: Result<crate::host::source::TaskDumper, String> = Err(crate::probe::NO_BPF.into());
    match r {
        Ok(d) => (src.with_task_dumper(d), None),
        Err(why) => (
            src,
            Some(crate::collect::Problem::new(
                "process scan through the BPF task iterator",
                "bpf iter/task",
                format!("{why}; processes read from /proc instead"),
            )),
        ),
    }
}
