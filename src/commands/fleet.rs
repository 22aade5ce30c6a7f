//! `triage fleet` (many hosts' reports: rank, group, outliers) and `triage diff` (before and
//! after). Reading, folding and rendering live in `crate::fleet`; this is the I/O around them.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::cli::{Format, Global};
use crate::fleet::{self, diff, read};

pub use crate::cli::FleetArgs as Args;

pub use crate::cli::DiffArgs;

/// `--format NAME` by its name, so formats this file does not know yet (markdown) still work.
fn format_name(g: &Global) -> String {
    g.format
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

fn json(g: &Global) -> bool {
    g.json || g.format == Format::Json
}

pub fn run_fleet(a: &Args, g: &Global) -> Result<String, String> {
    let inputs = if a.reports.is_empty() {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(
                "give report files or directories, or pipe reports on stdin \
                        (e.g. `cat reports/*.json | triage fleet`)"
                    .into(),
            );
        }
        vec![PathBuf::from("-")]
    } else {
        a.reports.clone()
    };
    let f = fleet::from_inputs(&inputs);
    for s in &f.skipped {
        eprintln!(
            "triage: skipped {}: {}",
            crate::render::sanitize(&s.source),
            crate::render::sanitize(&s.reason)
        );
    }
    if f.reports_read == 0 {
        return Err("no report could be read".into());
    }
    if json(g) {
        // Straight to stdout: a thousand hosts' document is never held as one string.
        let out = std::io::stdout().lock();
        let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
        let r = serde_json::to_writer_pretty(&mut w, &f)
            .map_err(std::io::Error::from)
            .and_then(|_| std::io::Write::write_all(&mut w, b"\n"))
            .and_then(|_| std::io::Write::flush(&mut w));
        // A closed pipe (`| head`) is not an error worth a message.
        if let Err(e) = r {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(format!("writing the report: {e}"));
            }
        }
        return Ok(String::new());
    }
    Ok(match format_name(g).as_str() {
        "markdown" => fleet::render::markdown_text(&f, a.top),
        _ if a.markdown => fleet::render::markdown_text(&f, a.top),
        "table" => fleet::render::table_text(&f, a.top),
        other => return Err(format!("--format {other} is not available for `fleet`")),
    })
}

/// One report: a fixture directory replayed through `sixty-second`, or the first report of a
/// file (`-` for stdin).
fn load(path: &Path) -> Result<read::Doc, String> {
    if path.is_dir() {
        let w = crate::cli::WindowArgs {
            duration: 2.0,
            root: None,
            fixture: Some(path.to_path_buf()),
            log_lookback: 600.0,
            no_bpf: true,
            task_scan: Default::default(),
        };
        return super::sixty_second::run(&w, None, "", false).map(read::Doc::from_report);
    }
    let mut first = None;
    let mut why = Vec::new();
    read::read_inputs(&[path.to_path_buf()], &mut |item| match item {
        read::Item::Report { doc, .. } if first.is_none() => first = Some(*doc),
        read::Item::Report { .. } => {}
        read::Item::Skipped(s) => why.push(format!("{}: {}", s.source, s.reason)),
    });
    first.ok_or_else(|| {
        format!(
            "{}: no readable report{}",
            path.display(),
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            }
        )
    })
}

pub fn run_diff(a: &DiffArgs, g: &Global) -> Result<String, String> {
    let before = load(&a.before)?;
    let after = load(&a.after)?;
    let d = diff::diff(
        &a.before.display().to_string(),
        &before,
        &a.after.display().to_string(),
        &after,
    );
    Ok(match format_name(g).as_str() {
        _ if json(g) => diff::json_text(&d),
        "markdown" => diff::markdown_text(&d),
        _ if a.markdown => diff::markdown_text(&d),
        "table" => diff::table_text(&d),
        other => return Err(format!("--format {other} is not available for `diff`")),
    })
}
