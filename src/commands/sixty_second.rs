//! `triage sixty-second` (and `capture`, which is the same run recorded into a fixture).

use std::path::Path;
use std::time::Duration;

use crate::cli::WindowArgs;
use crate::collect::run::{self, LiveOptions};
use crate::host::LiveSource;
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
    let readings = if let Some(dir) = &w.fixture {
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
        run::live(&src, &opts, record)
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
    Ok(model::build_report(&readings, NAME, &analysis))
}

pub fn prepare_capture_dir(out: &Path) -> Result<(), String> {
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
