//! Subcommands. Each one chooses which readings, sections and rules take part; the pipeline
//! (collect -> model -> analyze -> render) is shared. A new subcommand is one file here plus
//! one entry in `cli::Command`.

pub mod cpu;
pub mod deep;
pub mod disk;
pub mod doctor;
pub mod mem;
pub mod net;
pub mod offcpu;
pub mod sixty_second;
pub mod syscalls;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cli::{Cli, ColorChoice, Command, Format, Global};
use crate::model::report::Report;
use crate::render;
use deep::Output;

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

/// Run the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let g = &cli.global;
    let one = |r: Result<Report, String>| r.map(|r| Output::One(Box::new(r)));
    let report: Result<Output, String> = match &cli.command {
        Command::SixtySecond(w) => one(sixty_second::run(w, None, "", g.verbose)),
        Command::Capture { out, note, window } => {
            one(sixty_second::run(window, Some(out), note, g.verbose))
        }
        Command::Cpu(a) => cpu::run(a, g),
        Command::Mem(a) => mem::run(a, g),
        Command::Disk(a) => disk::run(a, g),
        Command::Net(a) => net::run(a, g),
        Command::Syscalls(a) => one(syscalls::run(a, g)),
        // Not a window report: a document of its own (docs/json.md), exit 0 whenever it ran.
        Command::Doctor(a) => return doctor::run(a, g, use_color(g)),
        Command::Offcpu(a) => one(offcpu::run(a, g)),
    };
    match report {
        Ok(Output::Series(series)) => {
            let json = g.json || g.format == Format::Json;
            let text = if json {
                render::deep::series_json(&series)
            } else {
                render::deep::series_table(&series)
            };
            print_or_exit_code(&text)
        }
        Ok(Output::One(r)) => {
            let json = g.json || g.format == Format::Json;
            let text = if json {
                render::json(&r)
            } else {
                let color = use_color(g);
                render::table::render(&r, &render::table::Style { color })
            };
            print_or_exit_code(&text)
        }
        Err(e) => {
            eprintln!("triage: {e}");
            1
        }
    }
}
