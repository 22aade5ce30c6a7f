//! `triage sixty-second` (and `capture`, which is the same run recorded into a fixture).

use std::path::Path;
use std::time::Duration;

use crate::cli::WindowArgs;
use crate::collect::run::{self, LiveOptions};
use crate::host::LiveSource;
use crate::model::offcpu::{LatencyReadings, LatencySection};
use crate::model::report::Unavailable;
use crate::model::{self, report::Report, Analysis};

pub const NAME: &str = "sixty-second";

/// Runnable/blocked tasks are sampled this often inside the window.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

pub fn run(
    w: &WindowArgs,
    record: Option<&Path>,
    note: &str,
    verbose: bool,
) -> Result<Report, String> {
    let latency: Option<LatencyReadings>;
    let mut not_run: Option<Unavailable> = None;
    let readings = if let Some(dir) = &w.fixture {
        latency = read_latency_fixture(dir)?;
        run::from_fixture(dir).map_err(|e| e.to_string())?
    } else {
        if let Some(out) = record {
            prepare_capture_dir(out)?;
        }
        let base = w.root.clone().unwrap_or_else(|| "/".into());
        let mut src = LiveSource::new(&base);
        if let Some(out) = record {
            src = src.with_recorder(out);
        }
        let opts = LiveOptions {
            duration: Duration::from_secs_f64(w.duration),
            sample_interval: SAMPLE_INTERVAL,
            note: note.to_string(),
            interrupted: Some(super::interrupt_flag()),
        };
        // The probes run during the window: started before t0, read after t1.
        let probes = if w.no_bpf {
            None
        } else {
            start_latency(&mut not_run, verbose)
        };
        let readings = run::live(&src, &opts, record);
        latency = probes.map(|p| p.finish());
        if let (Some(out), Some(l)) = (record, &latency) {
            write_latency_fixture(out, l)?;
        }
        readings
    };
    if verbose {
        for p in &readings.problems {
            eprintln!(
                "triage: not measured: {} ({}: {})",
                p.what, p.path, p.reason
            );
        }
    }
    let analysis = Analysis {
        log_lookback_s: w.log_lookback,
    };
    let mut report = model::build_report(&readings, NAME, &analysis);
    if let Some(l) = &latency {
        let sec = LatencySection::from_readings(l);
        crate::analyze::offcpu::enrich(&mut report, &sec);
        report.sections.latency = Some(sec);
    }
    if let Some(u) = not_run {
        report.unavailable.push(u);
        report.unavailable.sort();
    }
    Ok(report)
}

const LATENCY_WHAT: &str = "eBPF latency histograms (run queue, block I/O, TCP retransmits)";

#[cfg(feature = "bpf")]
fn start_latency(
    not_run: &mut Option<Unavailable>,
    verbose: bool,
) -> Option<crate::probe::latency::Running> {
    crate::probe::set_verbose(verbose);
    if let Some(b) = crate::probe::preflight::bpf_blockers().into_iter().next() {
        *not_run = Some(Unavailable {
            what: LATENCY_WHAT.into(),
            reason: b.reason,
            fix: b.fix,
        });
        return None;
    }
    match crate::probe::latency::start(&crate::probe::latency::Wanted::all()) {
        Ok(r) => Some(r),
        Err(e) => {
            *not_run = Some(Unavailable {
                what: LATENCY_WHAT.into(),
                reason: format!("did not attach: {e}"),
                fix: Some(crate::probe::attach_fix(&e.to_string())),
            });
            None
        }
    }
}

/// Without eBPF support nothing starts, and the report says why.
#[cfg(not(feature = "bpf"))]
fn start_latency(not_run: &mut Option<Unavailable>, _verbose: bool) -> Option<NoProbe> {
    *not_run = Some(Unavailable {
        what: LATENCY_WHAT.into(),
        reason: crate::probe::NO_BPF.into(),
        fix: None,
    });
    None
}

#[cfg(not(feature = "bpf"))]
struct NoProbe;
#[cfg(not(feature = "bpf"))]
impl NoProbe {
    fn finish(self) -> LatencyReadings {
        LatencyReadings::default()
    }
}

/// `probes/latency.json` of a fixture, when it has one (older fixtures do not).
fn read_latency_fixture(dir: &Path) -> Result<Option<LatencyReadings>, String> {
    let path = dir.join("probes").join("latency.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn write_latency_fixture(dir: &Path, l: &LatencyReadings) -> Result<(), String> {
    let pdir = dir.join("probes");
    std::fs::create_dir_all(&pdir).map_err(|e| format!("{}: {e}", pdir.display()))?;
    let path = pdir.join("latency.json");
    let json = serde_json::to_string_pretty(l).map_err(|e| e.to_string())?;
    std::fs::write(&path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

fn prepare_capture_dir(out: &Path) -> Result<(), String> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(format!(
                "{}: exists and is not empty; choose a new directory",
                out.display()
            ));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))
}
