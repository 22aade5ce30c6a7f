//! What surrounds a report on its way out: the table width, a time series streamed window by
//! window, the exit status, shell completions and man pages, progress on a terminal, and
//! what `-v` says.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{exit, FailOn, Format, Shell};
use crate::model::deep::Series;
use crate::model::report::Report;
use crate::model::summary::Status;
use crate::render;
use crate::render::table::Style;

/// The narrowest terminal tables are laid out for.
pub const MIN_WIDTH: u16 = 80;

/// `--width N`; else the terminal's width (at least [`MIN_WIDTH`]) when stdout is a terminal;
/// else the 100-column default.
pub fn table_width(flag: Option<u16>) -> u16 {
    if let Some(w) = flag {
        return w;
    }
    if std::io::stdout().is_terminal() {
        // The terminal's size; else $COLUMNS (a terminal that reports no size).
        let w = terminal_size::terminal_size()
            .map(|(terminal_size::Width(w), _)| w)
            .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok());
        if let Some(w) = w.filter(|&w| w > 0) {
            return w.max(MIN_WIDTH);
        }
    }
    render::table::WIDTH
}

/// The exit status of a produced report with status `status` (see [`crate::cli::exit`]).
pub fn exit_code(status: Status, fail_on: Option<FailOn>) -> i32 {
    match (status, fail_on) {
        (Status::Incomplete, _) => exit::NO_REPORT,
        (Status::Critical, Some(_)) => exit::CRITICAL,
        (Status::Warning, Some(FailOn::Warning)) => exit::WARNING,
        _ => exit::OK,
    }
}

/// A time series printed as it is measured: the table's title and header before the first
/// window, then one row per window; or one NDJSON document per window. The JSON document
/// (`--json`) is printed whole at the end instead.
pub struct SeriesStream {
    format: Format,
    style: Style,
    width: u16,
    interval_s: f64,
    /// `-v`: what each window read and skipped, on stderr.
    pub verbose: bool,
    /// Column widths, fixed at the first window (a later longer value widens its row only).
    cols: Vec<(usize, bool)>,
}

impl SeriesStream {
    pub fn new(format: Format, style: &Style, width: u16, interval_s: f64) -> Self {
        SeriesStream {
            format,
            style: *style,
            width,
            interval_s,
            verbose: false,
            cols: Vec::new(),
        }
    }

    /// Window `i` of `n` ended with report `r`: print what belongs to it now.
    pub fn window(&mut self, r: &Report, i: u32, n: u32) {
        let text = match self.format {
            Format::Ndjson => {
                let mut s = serde_json::to_string(r).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Table | Format::Markdown => {
                let mut out = String::new();
                if self.verbose {
                    verbose_summary(r);
                }
                if i == 0 {
                    self.header(&mut out, r, n);
                }
                let (_, rows) = render::deep::series_parts(&r.command, std::slice::from_ref(r));
                if let Some(row) = rows.first() {
                    self.row(&mut out, row);
                }
                out
            }
            // The whole document (or the last window) is printed at the end.
            Format::Json | Format::Openmetrics => String::new(),
        };
        // A stream that cannot be delivered (a full disk) ends the run with the error.
        if super::print_or_exit_code(&text) != 0 {
            std::process::exit(exit::NO_REPORT);
        }
    }

    fn header(&mut self, out: &mut String, r: &Report, n: u32) {
        let (headers, _) = render::deep::series_parts(&r.command, &[]);
        let _ = writeln!(
            out,
            "{}",
            self.style.head(&format!(
                "triage {} on {}: {n} windows of {:.2} s, a row as each window ends",
                r.command,
                render::sanitize(&r.host.hostname),
                self.interval_s
            ))
        );
        // Numbers right-aligned in columns as wide as their header (at least 6); the text
        // columns (process, device) left-aligned and given what remains of the width.
        let text_col = |h: &str| matches!(h, "top process" | "RSS grower" | "device");
        let fixed: usize = headers
            .iter()
            .filter(|h| !text_col(h))
            .map(|h| h.len().max(5) + 1)
            .sum::<usize>()
            + 1;
        let texts = headers.iter().filter(|h| text_col(h)).count().max(1);
        let room = (self.width as usize).saturating_sub(fixed) / texts;
        self.cols = headers
            .iter()
            .map(|h| {
                if text_col(h) {
                    (room.clamp(9, 24), false)
                } else if *h == "time" {
                    (8, false)
                } else {
                    (h.len().max(5), true)
                }
            })
            .collect();
        let cells: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        let line = self.line(&cells, true);
        let _ = writeln!(out, "{line}");
        let _ = writeln!(
            out,
            "{}",
            "-".repeat(line.chars().count().min(self.width as usize))
        );
    }

    fn line(&self, cells: &[String], header: bool) -> String {
        // A leading space, like the other tables.
        let mut line = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let (w, right) = self.cols.get(i).copied().unwrap_or((6, true));
            let c = if header || right || c.chars().count() <= w {
                c.clone()
            } else if let Some((name, tail)) = c.rsplit_once(' ') {
                // `name 34%`: shorten the name, keep the number whole.
                let keep = w.saturating_sub(tail.chars().count() + 1).max(2);
                format!("{} {tail}", render::table::shorten_pub(name, keep))
            } else {
                render::table::shorten_pub(c, w)
            };
            if i > 0 {
                line.push(' ');
            }
            if right {
                let _ = write!(line, "{c:>w$}");
            } else {
                let _ = write!(line, "{c:<w$}");
            }
        }
        line.trim_end().to_string()
    }

    fn row(&self, out: &mut String, row: &[String]) {
        let _ = writeln!(out, "{}", self.line(row, false));
    }
}

/// After a streamed table: the findings of any window and the series' verdict.
pub fn series_footer(series: &Series, style: &Style, width: u16) -> String {
    render::table::with_width(width, || {
        let mut out = render::deep::series_findings(series);
        let _ = writeln!(out);
        out.push_str(&render::table::verdict_line(&series.summary, style));
        out
    })
}

/// `triage completions SHELL`.
pub fn completions(shell: Shell) -> i32 {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    let mut out = std::io::stdout().lock();
    match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "triage", &mut out)
        }
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "triage", &mut out)
        }
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "triage", &mut out)
        }
    }
    exit::OK
}

/// Write `triage.1` and `triage-SUBCOMMAND.1` for every visible subcommand into `dir`;
/// returns the files written.
pub fn write_manpages(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let mut cmd = crate::cli::Cli::command();
    // Propagate the global flags into each subcommand, so every page lists them.
    cmd.build();
    let mut written = Vec::new();
    let mut page = |c: clap::Command, name: String| -> std::io::Result<()> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(c)
            .title(name.to_uppercase())
            .render(&mut buf)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, buf)?;
        written.push(path);
        Ok(())
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("triage-{}", sub.get_name());
        // A page names its command `triage-SUB` (clap wants a 'static name; this runs once).
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        page(sub.clone().name(leaked), name)?;
    }
    page(cmd, "triage".into())?;
    written.sort();
    Ok(written)
}

/// The hidden `triage manpages DIR` behind `cargo xtask man`.
pub fn manpages(dir: &Path) -> i32 {
    match write_manpages(dir) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("triage: {}: {e}", dir.display());
            exit::NO_REPORT
        }
    }
}

/// `-v`: what the report read and what it could not, after the report (stderr).
pub fn verbose_summary(r: &Report) {
    let mut read = Vec::new();
    let sec = &r.sections;
    let mut say = |what: &str, ok: bool| {
        if ok {
            read.push(what.to_string());
        }
    };
    say(
        "CPU counters (/proc/stat)",
        !sec.cpus.is_empty() || sec.vmstat.is_some(),
    );
    say(
        "memory (/proc/meminfo)",
        r.host.memory_total_bytes.is_some(),
    );
    say("load (/proc/loadavg)", sec.load.is_some());
    say("processes (/proc/PID/stat)", sec.processes.is_some());
    say(
        "disks (/proc/diskstats)",
        !sec.disks.is_empty() || sec.disks_idle > 0,
    );
    say(
        "filesystems (mountinfo, statvfs)",
        !sec.filesystems.is_empty(),
    );
    say("interfaces (/proc/net/dev)", !sec.interfaces.is_empty());
    say("TCP (/proc/net/snmp, netstat)", !sec.tcp.is_empty());
    say("PSI (/proc/pressure)", !sec.pressure.is_empty());
    say("cgroups", !sec.cgroups.is_empty());
    say("kernel log (/dev/kmsg)", sec.kernel_log.is_some());
    say("syscall probe (eBPF)", sec.syscalls.is_some());
    say("off-CPU probe (eBPF)", sec.offcpu.is_some());
    let mut text = format!(
        "triage: -v: {} over {:.2} s; read: {}\n",
        r.command,
        r.window.elapsed_s,
        if read.is_empty() {
            "nothing".into()
        } else {
            read.join(", ")
        }
    );
    if r.unavailable.is_empty() {
        text.push_str("triage: -v: nothing skipped\n");
    }
    for u in &r.unavailable {
        let _ = writeln!(
            text,
            "triage: -v: skipped {}: {}{}",
            render::sanitize(&u.what),
            render::sanitize(&u.reason),
            u.fix
                .as_deref()
                .map(|f| format!(" (fix: {})", render::sanitize(f)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        text,
        "triage: -v: verdict {} ({} critical, {} warning, {} info)",
        r.summary.status.name(),
        r.summary.critical,
        r.summary.warning,
        r.summary.info
    );
    eprint!("{text}");
}

/// On a terminal (stderr), "measuring WHAT: N s left" until dropped; nothing otherwise.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Start showing progress for a window of `total` measuring `what`.
    pub fn start(what: &str, total: Duration) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() || std::env::var_os("TRIAGE_NO_PROGRESS").is_some() {
            return Progress { stop, thread: None };
        }
        let what = what.to_string();
        let flag = Arc::clone(&stop);
        let t0 = Instant::now();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                use std::io::Write;
                while !flag.load(Ordering::Relaxed) {
                    let left = total.saturating_sub(t0.elapsed()).as_secs_f64();
                    let mut e = std::io::stderr().lock();
                    let _ = write!(e, "\r\x1b[2Ktriage: measuring {what}: {left:.1} s left");
                    let _ = e.flush();
                    drop(e);
                    std::thread::sleep(Duration::from_millis(200));
                }
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "\r\x1b[2K");
                let _ = e.flush();
            })
            .ok();
        Progress { stop, thread }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        use FailOn::*;
        assert_eq!(exit_code(Status::Critical, None), 0);
        assert_eq!(exit_code(Status::Warning, None), 0);
        assert_eq!(exit_code(Status::Incomplete, None), 1);
        assert_eq!(exit_code(Status::Incomplete, Some(Warning)), 1);
        assert_eq!(exit_code(Status::Ok, Some(Warning)), 0);
        assert_eq!(exit_code(Status::Warning, Some(Warning)), 3);
        assert_eq!(exit_code(Status::Warning, Some(Critical)), 0);
        assert_eq!(exit_code(Status::Critical, Some(Warning)), 4);
        assert_eq!(exit_code(Status::Critical, Some(Critical)), 4);
    }

    #[test]
    fn manpages_for_every_visible_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_manpages(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for n in [
            "triage.1",
            "triage-sixty-second.1",
            "triage-offcpu.1",
            "triage-completions.1",
        ] {
            assert!(names.contains(&n.to_string()), "{n} not in {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("manpages")));
        let page = std::fs::read_to_string(dir.path().join("triage-cpu.1")).unwrap();
        assert!(page.contains("\\-\\-interval"), "{page}");
    }
}
