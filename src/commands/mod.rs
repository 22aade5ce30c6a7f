//! Subcommands. A report subcommand is a view of the registry ([`views`]): it names the
//! resources, level, sections, findings and probe that take part, and [`pipeline`] runs any
//! view (collect -> model -> analyze); this file resolves the arguments into a [`Plan`] once
//! and renders. A new view is one registry entry plus its arguments in `cli::Command`.

pub mod doctor;
pub mod fleet;
pub mod latency;
pub mod offcpu;
pub mod output;
pub mod pipeline;
pub mod probe_view;
pub mod profile;
pub mod schema;
pub mod sixty_second;
pub mod syscalls;
pub mod views;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cli::{exit, Cli, ColorChoice, Command, Format, Global};
use crate::model::report::Report;
use crate::render;
use pipeline::{Output, Plan};

fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|_| out.flush())
}

/// Print `text` to stdout; the exit code: 0 when written, or when the reader closed the pipe
/// (`| head` is not an error worth a message); 1 with a message when the write failed (a full
/// disk, `> /dev/full`): a report that was not delivered must not look delivered.
pub fn print_or_exit_code(text: &str) -> i32 {
    match write_stdout(text) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("triage: writing the report to stdout: {e}");
            1
        }
    }
}

/// Set by SIGINT/SIGTERM: the window ends early and the report covers the time measured.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
    }
    flag
}

/// Color only when asked, or on a terminal without `NO_COLOR`.
fn use_color(g: &Global) -> bool {
    match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::IsTerminal::is_terminal(&std::io::stdout())
        }
    }
}

/// Print a command's error on stderr. Errors quote paths and names from the system, a
/// fixture or an archive inside one: every line is escaped (a name cannot drive the terminal),
/// the line breaks of a multi-line message are kept.
fn print_error(e: &str) {
    let lines: Vec<_> = e.split('\n').map(crate::text::sanitize).collect();
    eprintln!("triage: {}", lines.join("\n"));
}

/// Prints a rendered document (exit 0) or the error (exit 1).
fn text_or_error(r: Result<String, String>) -> i32 {
    match r {
        Ok(text) => print_or_exit_code(&text),
        Err(e) => {
            print_error(&e);
            1
        }
    }
}

/// Run the parsed command; returns the process exit code (see [`crate::cli::exit`]).
pub fn run(mut cli: Cli) -> i32 {
    if let Err(e) = cli.global.resolve(&cli.command) {
        print_error(&e);
        return exit::USAGE;
    }
    let g = &cli.global;
    crate::probe::btf::set_external(g.btf.clone());
    // Before any thread opens a BPF object (libbpf's handler table is not thread-safe).
    #[cfg(feature = "bpf")]
    crate::probe::tpbtf::register();
    let width = output::table_width(g.width);
    let style = render::table::Style {
        color: use_color(g),
    };
    if let Command::Completions { shell } = &cli.command {
        return output::completions(*shell);
    }
    let one = |r: Result<Report, String>| r.map(|r| Output::One(Box::new(r)));
    let report: Result<Output, String> = match &cli.command {
        Command::SixtySecond(w) => one(sixty_second::run(w, None, "", g.verbose)),
        Command::Capture { out, note, window } => {
            one(sixty_second::run(window, Some(out), note, g.verbose))
        }
        Command::Cpu(a) | Command::Mem(a) | Command::Disk(a) | Command::Net(a) => {
            let view = views::of(&cli.command).expect("a deep view");
            let plan = Plan::deep(view, a, g);
            if let Some(interval) = plan.interval {
                // A time series streams: a row (or an NDJSON document) per window as it ends.
                let mut stream = output::SeriesStream::new(g.format, &style, width, interval);
                stream.verbose = g.verbose;
                pipeline::run_streaming(&plan, &mut |rep, i, n| stream.window(rep, i, n))
            } else {
                pipeline::run(&plan)
            }
        }
        Command::Syscalls(a) => one(syscalls::run(a, g)),
        // Not a window report: a document of its own (docs/json.md), exit 0 whenever it ran.
        Command::Doctor(a) => {
            return render::table::with_width(width, || doctor::run(a, g, use_color(g)))
        }
        Command::Offcpu(a) => one(offcpu::run(a, g)),
        Command::Profile(a) => one(profile::run(a, g)),
        Command::Completions { .. } => unreachable!("handled above"),
        Command::Manpages { out } => return output::manpages(out),
        // Documents of their own (many reports, or two), not a window report.
        Command::Fleet(a) => return text_or_error(fleet::run_fleet(a, g)),
        Command::Diff(a) => return text_or_error(fleet::run_diff(a, g)),
    };
    match report {
        Ok(Output::Series(mut series)) => {
            series.refresh_summary();
            let text = match g.format {
                Format::Json => render::deep::series_json(&series),
                // A textfile holds the current state: the last window.
                Format::Openmetrics => series
                    .samples
                    .last()
                    .map(render::openmetrics::render)
                    .unwrap_or_default(),
                // Rows and documents were printed as each window ended; the table ends with
                // the findings of any window and the verdict.
                Format::Ndjson => String::new(),
                Format::Table | Format::Markdown => output::series_footer(&series, &style, width),
            };
            match print_or_exit_code(&text) {
                0 => output::exit_code(series.summary.status, g.fail_on),
                failed => failed,
            }
        }
        Ok(Output::One(mut r)) => {
            crate::model::summary::refresh(&mut r);
            // What this run cost (CPU, memory, the probes' verified and run time).
            r.cost = Some(crate::probe::cost::own_cost());
            let text = match g.format {
                Format::Json | Format::Ndjson => render::json(&r),
                Format::Markdown => render::markdown::render(&r),
                Format::Openmetrics => render::openmetrics::render(&r),
                Format::Table => render::table::render_width(&r, &style, width),
            };
            let written = print_or_exit_code(&text);
            if g.verbose {
                output::verbose_summary(&r);
            }
            match written {
                0 => output::exit_code(r.summary.status, g.fail_on),
                failed => failed,
            }
        }
        Err(e) => {
            print_error(&e);
            exit::NO_REPORT
        }
    }
}
