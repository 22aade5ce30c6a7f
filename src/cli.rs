//! Command-line interface: global flags and one entry per subcommand. Help text, `--help` and
//! the usage errors (exit 2) all come from this one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "triage",
    version,
    about = "Why is this Linux box slow? USE-method readings from /proc, /sys and cgroups, in seconds.",
    after_help = "Exit status: 0 report produced (findings or not), 1 could not produce a report, 2 usage error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Print the report as one JSON document (same as --format json).
    #[arg(long, global = true)]
    pub json: bool,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// When to color the table.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Say what is read and why something could not be (to stderr).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The 60-second checklist (uptime, dmesg, vmstat, mpstat, pidstat, iostat, free, sar, ss, top)
    /// as one USE report with ranked findings.
    #[command(name = "sixty-second")]
    SixtySecond(WindowArgs),
    /// Record every file the collection reads into a fixture directory (t0/, samples/, t1/,
    /// meta.json) and print the report; replay it anywhere with `--fixture DIR`.
    Capture {
        /// Fixture directory to create (must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// What was running, stored in meta.json.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// CPU deep dive: per-CPU modes, run queue, PSI, top processes and threads, cgroup quotas,
    /// softirqs.
    Cpu(crate::commands::cpu::Args),
    /// Memory deep dive: MemAvailable breakdown, swap, faults, reclaim, OOM kills, cgroup limits.
    Mem(crate::commands::mem::Args),
    /// Disk deep dive: per-device latency and queues, filesystems, top I/O processes.
    Disk(crate::commands::disk::Args),
    /// Network deep dive: interfaces, TCP/UDP errors, socket states, listen queues, conntrack.
    Net(crate::commands::net::Args),
    /// Syscall counts, errors and latency per process and per syscall, counted in the kernel
    /// with eBPF (needs root or CAP_BPF+CAP_PERFMON); --pid/--cgroup/--comm to scope.
    Syscalls(crate::commands::syscalls::Args),
    /// What this box allows: kernel, BTF, tracefs, lockdown, capabilities, sysctls, memlock,
    /// cgroups, namespaces, and whether each probe loads here, with the exact fix for each problem.
    /// Always exits 0 when it ran.
    Doctor(crate::commands::doctor::Args),
    /// Where threads wait instead of run: off-CPU time by stack and state (eBPF), as a table,
    /// folded stacks or a flame graph.
    Offcpu(crate::commands::offcpu::Args),
    /// Where the CPU goes: timed stack sampling on every CPU (eBPF + perf events), by process,
    /// thread, function and stack, as a table, folded stacks or a flame graph.
    Profile(crate::commands::profile::Args),
}

#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    /// Length of the measurement window in seconds (rates are over the measured time).
    #[arg(long, short = 'd', default_value_t = 2.0, value_parser = parse_duration)]
    pub duration: f64,
    /// Read the system under DIR instead of / (DIR/proc, DIR/sys, DIR/dev/kmsg), e.g. the host
    /// seen from a container.
    #[arg(long, value_name = "DIR", conflicts_with = "fixture")]
    pub root: Option<PathBuf>,
    /// Analyze a recorded fixture directory instead of the live system.
    #[arg(long, value_name = "DIR")]
    pub fixture: Option<PathBuf>,
    /// Report kernel log problems this many seconds before the end of the window.
    #[arg(long, default_value_t = 600.0, value_name = "SECS")]
    pub log_lookback: f64,
    /// Leave out the eBPF latency histograms (run queue, block I/O, TCP retransmits).
    #[arg(long)]
    pub no_bpf: bool,
}

pub fn parse_duration(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.2..=3600.0).contains(&v) {
        return Err(format!("{v} s is outside 0.2..3600 s"));
    }
    Ok(v)
}
