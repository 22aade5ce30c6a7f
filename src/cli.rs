//! Command-line interface: global flags and one entry per subcommand. Help text, `--help` and
//! the usage errors (exit 2) all come from this one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "triage",
    version,
    about = "Why is this Linux box slow? USE-method readings from /proc, /sys and cgroups, in seconds.",
    after_help = "Exit status: 0 report produced (findings or not); 1 no report, or an incomplete one \
(core readings missing); 2 usage error. With --fail-on LEVEL: 3 the worst finding is a warning \
(--fail-on warning), 4 it is critical (--fail-on warning|critical); 0 otherwise."
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
    /// Output format: table (people), json (one document), markdown (tickets: GitHub/GitLab
    /// flavoured), ndjson (a time series streamed as one JSON document per window).
    #[arg(long = "format", global = true, value_enum, value_name = "FORMAT")]
    pub format_arg: Option<Format>,
    /// The format in effect (from --format and --json), set by [`Global::resolve`].
    #[arg(skip = Format::Table)]
    pub format: Format,
    /// Exit status says the worst severity found: 3 for a warning (only with `warning`), 4 for
    /// a critical finding; 0 below LEVEL. Without it a report exits 0 whatever it found.
    #[arg(long, global = true, value_enum, value_name = "LEVEL")]
    pub fail_on: Option<FailOn>,
    /// Table width in columns (default: the terminal's width on a terminal, at least 80;
    /// 100 when not a terminal).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(60..=1000))]
    pub width: Option<u16>,
    /// When to color the table.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Say what was read, what was skipped and why, and the verdict (to stderr).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// BTF file describing the running kernel, for kernels without /sys/kernel/btf/vmlinux
    /// (e.g. from BTFHub): the eBPF probes relocate against it. Also TRIAGE_BTF=FILE.
    #[arg(long, global = true, value_name = "FILE")]
    pub btf: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
    Ndjson,
    /// OpenMetrics text (findings and USE metrics) for the node_exporter textfile collector.
    Openmetrics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum FailOn {
    Warning,
    Critical,
}

/// Exit codes (documented in `--help`, README and docs/json.md).
pub mod exit {
    /// A report was produced (and, with --fail-on, nothing at or above the level was found).
    pub const OK: i32 = 0;
    /// No report could be produced, or it is incomplete (core readings missing).
    pub const NO_REPORT: i32 = 1;
    /// Usage error.
    pub const USAGE: i32 = 2;
    /// --fail-on warning: the worst finding is a warning.
    pub const WARNING: i32 = 3;
    /// --fail-on warning|critical: a critical finding.
    pub const CRITICAL: i32 = 4;
}

impl Global {
    /// Settle the output format and reject flags that contradict each other (a usage error,
    /// exit 2): `--json` with another `--format`, `--format ndjson` without a time series.
    pub fn resolve(&mut self, command: &Command) -> Result<(), String> {
        self.format = match (self.json, self.format_arg) {
            (true, Some(f)) if f != Format::Json => {
                return Err(format!(
                    "--json and --format {} contradict each other; give one",
                    format_name(f)
                ))
            }
            (true, _) => Format::Json,
            (false, Some(f)) => f,
            (false, None) => Format::Table,
        };
        let series = command.interval().is_some();
        if self.format == Format::Ndjson && !series {
            return Err(
                "--format ndjson streams a time series: use it with --interval S (cpu, mem, disk, net)"
                    .into(),
            );
        }
        if series && self.format == Format::Markdown {
            return Err(
                "--format markdown renders one report; a time series (--interval) prints a table, --json or --format ndjson"
                    .into(),
            );
        }
        if matches!(command, Command::Doctor(_))
            && matches!(
                self.format,
                Format::Markdown | Format::Ndjson | Format::Openmetrics
            )
        {
            return Err(format!(
                "doctor prints a table or JSON, not --format {}",
                format_name(self.format)
            ));
        }
        if let Command::Offcpu(a) = command {
            if a.folded && (self.json || self.format_arg.is_some()) {
                return Err(
                    "offcpu: --folded and --json/--format are different outputs; give one".into(),
                );
            }
        }
        Ok(())
    }
}

pub fn format_name(f: Format) -> &'static str {
    match f {
        Format::Table => "table",
        Format::Json => "json",
        Format::Markdown => "markdown",
        Format::Ndjson => "ndjson",
        Format::Openmetrics => "openmetrics",
    }
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
    Cpu(DeepArgs),
    /// Memory deep dive: MemAvailable breakdown, swap, faults, reclaim, OOM kills, cgroup limits.
    Mem(DeepArgs),
    /// Disk deep dive: per-device latency and queues, filesystems, top I/O processes.
    Disk(DeepArgs),
    /// Network deep dive: interfaces, TCP/UDP errors, socket states, listen queues, conntrack.
    Net(DeepArgs),
    /// Syscall counts, errors and latency per process and per syscall, counted in the kernel
    /// with eBPF (needs root or CAP_BPF+CAP_PERFMON); --pid/--cgroup/--comm to scope.
    Syscalls(SyscallsArgs),
    /// What this box allows: kernel, BTF, tracefs, lockdown, capabilities, sysctls, memlock,
    /// cgroups, namespaces, and whether each probe loads here, with the exact fix for each problem.
    /// Always exits 0 when it ran.
    Doctor(DoctorArgs),
    /// Where threads wait instead of run: off-CPU time by stack and state (eBPF), as a table,
    /// folded stacks or a flame graph.
    Offcpu(OffcpuArgs),
    /// Print a shell completion script: `triage completions bash > /etc/bash_completion.d/triage`
    /// (zsh: into a directory of $fpath as `_triage`; fish: ~/.config/fish/completions/triage.fish).
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write the man pages (triage.1 and one per subcommand) into DIR (`cargo xtask man`).
    #[command(hide = true)]
    Manpages {
        #[arg(value_name = "DIR")]
        out: PathBuf,
    },
    /// Many hosts' reports at once (files, directories, NDJSON on stdin): hosts ranked worst
    /// first, findings grouped across hosts, outliers on the main USE metrics.
    Fleet(FleetArgs),
    /// Two reports of one host (files or fixture directories): findings that appeared, cleared
    /// or changed severity, and metrics that moved beyond noise.
    Diff(DiffArgs),
    /// Where the CPU goes: timed stack sampling on every CPU (eBPF + perf events), by process,
    /// thread, function and stack, as a table, folded stacks or a flame graph.
    Profile(ProfileArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Command {
    /// `--interval S` of a deep dive (a time series), if given.
    pub fn interval(&self) -> Option<f64> {
        match self {
            Command::Cpu(a) | Command::Mem(a) | Command::Disk(a) | Command::Net(a) => a.interval,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    /// Length of the measurement window (`2s`, `500ms`; a bare number is seconds). Rates are over
    /// the measured time.
    #[arg(long, short = 'd', default_value_t = 2.0, value_parser = parse_duration)]
    pub duration: f64,
    /// Read the system under DIR instead of / (DIR/proc, DIR/sys, DIR/dev/kmsg), e.g. the host
    /// seen from a container.
    #[arg(long, value_name = "DIR", conflicts_with = "fixture")]
    pub root: Option<PathBuf>,
    /// Analyze a recorded fixture directory instead of the live system.
    #[arg(long, value_name = "DIR")]
    pub fixture: Option<PathBuf>,
    /// Report kernel log problems this long before the end of the window (`10m`, `1h`; a bare
    /// number is seconds).
    #[arg(long, default_value = "10m", value_name = "TIME", value_parser = parse_lookback)]
    pub log_lookback: f64,
    /// Leave out the eBPF latency histograms (run queue, block I/O, TCP retransmits) and the
    /// task iterator.
    #[arg(long)]
    pub no_bpf: bool,
    /// How to scan processes: `auto` uses the BPF task iterator when privileged and the box runs
    /// at least 600 tasks (below that its ~12 ms load costs more than /proc), `bpf` always
    /// tries it, `proc` reads /proc only.
    #[arg(long, value_enum, default_value_t = TaskScan::Auto, value_name = "HOW")]
    pub task_scan: TaskScan,
}

/// `--task-scan`: where the process scan reads from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TaskScan {
    #[default]
    Auto,
    Bpf,
    Proc,
}

/// `--task-scan auto` takes the task iterator from this many tasks (threads) on: its load
/// (~12 ms of CPU on the minimal BTF) against ~24 us saved per process breaks even near 610
/// tasks (`cargo xtask bench --procs-scan` prints the break-even of its run).
pub const TASK_ITER_MIN_TASKS: u64 = 600;

/// One duration syntax for every flag: a number with a unit (`500ms`, `2s`, `10m`, `1h`, `200us`,
/// `1m30s`), or a bare number of seconds. Returns seconds.
pub fn duration_s(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if let Ok(v) = t.parse::<f64>() {
        return if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(format!("`{s}` is not a duration"))
        };
    }
    // jiff's friendly format: `500ms`, `2s`, `10m`, `1h 30m`, `200us`.
    t.parse::<jiff::SignedDuration>()
        .ok()
        .filter(|d| !d.is_negative())
        .map(|d| d.as_secs_f64())
        .ok_or_else(|| {
            format!("`{s}` is not a duration (e.g. 2s, 500ms, 10m; a bare number is seconds)")
        })
}

/// A measurement window: 0.2 s to 1 h.
pub fn parse_duration(s: &str) -> Result<f64, String> {
    let v = duration_s(s)?;
    if !(0.2..=3600.0).contains(&v) {
        return Err(format!("{v} s is outside 0.2 s..1 h"));
    }
    Ok(v)
}

/// How far back to look in the kernel log: 0 to 30 days.
pub fn parse_lookback(s: &str) -> Result<f64, String> {
    let v = duration_s(s)?;
    if v > 30.0 * 86400.0 {
        return Err(format!("{v} s is more than 30 days"));
    }
    Ok(v)
}

/// A short time in microseconds (`--min-block 1ms`): the unit is required, since a bare number
/// meant microseconds before this flag took the common syntax.
pub fn parse_micros(s: &str) -> Result<u64, String> {
    if s.trim().parse::<f64>().is_ok() {
        return Err(format!("`{s}` needs a unit (e.g. 200us, 1ms)"));
    }
    let v = duration_s(s)? * 1e6;
    if v > 3.6e9 {
        return Err(format!("`{s}` is out of range (at most 1 h)"));
    }
    Ok(v.round() as u64)
}

/// `commands/deep.rs`
#[derive(Debug, Clone, clap::Args)]
pub struct DeepArgs {
    #[command(flatten)]
    pub window: WindowArgs,
    /// Scope the view to one process (and its threads, its I/O, its listeners).
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,
    /// Scope the view to a cgroup and its descendants (path as in /proc/PID/cgroup).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Rows in the top lists, in the table and in JSON alike (the JSON's `left_out` says how
    /// many rows each list left out).
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub top: u32,
    /// Print a time series: windows of this length one after another (like `vmstat S N`;
    /// `1s`, `500ms`, a bare number is seconds).
    #[arg(long, value_name = "TIME", value_parser = crate::cli::parse_duration, conflicts_with = "fixture")]
    pub interval: Option<f64>,
    /// How many windows the time series has (with --interval; default 5).
    #[arg(long, value_name = "N", requires = "interval", value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub count: Option<u32>,
}

/// `commands/fleet.rs`
#[derive(Debug, Clone, clap::Args)]
pub struct FleetArgs {
    /// Report files, directories of them (read recursively), or `-` for stdin (the default):
    /// one JSON report per file, NDJSON, or reports one after the other.
    #[arg(value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Print markdown (for a ticket or a chat) instead of the table.
    #[arg(long)]
    pub markdown: bool,
    /// Show this many hosts in the table and markdown (0: all; JSON always has all).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub top: usize,
}

/// `commands/fleet.rs`
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// The report before the change: a JSON report, or a fixture directory (replayed).
    #[arg(value_name = "BEFORE")]
    pub before: PathBuf,
    /// The report after the change.
    #[arg(value_name = "AFTER")]
    pub after: PathBuf,
    /// Print markdown instead of the table.
    #[arg(long)]
    pub markdown: bool,
}

/// `commands/offcpu.rs`
#[derive(Debug, Clone, clap::Args)]
pub struct OffcpuArgs {
    /// How long to trace (`5s`, `1m`; a bare number is seconds). Ctrl-C ends it early.
    #[arg(long, short = 'd', default_value = "5s", value_parser = crate::cli::duration_s)]
    pub duration: f64,
    /// Only this process (tgid).
    #[arg(long, short = 'p')]
    pub pid: Option<u32>,
    /// Only this cgroup (v2 path under /sys/fs/cgroup) and below.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Ignore blocks shorter than this (`1ms`, `200us`; the unit is required).
    /// Default: every block of 1 ms or more, and one in 16 of the blocks from 10 us to 1 ms
    /// (counted 16 times), so many short waits that add up (fsync at 0.1 ms each, a lock held
    /// for microseconds) are seen at a sixteenth of the cost of recording each one.
    #[arg(long, value_parser = crate::cli::parse_micros, value_name = "TIME")]
    pub min_block: Option<u64>,
    /// Rows in the top-stacks and per-process lists, in the table and in JSON alike (the JSON's
    /// `stacks_total` and `processes_total` say how many there were).
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

/// `commands/profile.rs`
#[derive(Debug, Clone, clap::Args)]
pub struct ProfileArgs {
    /// How long to sample, in seconds (Ctrl-C ends it early).
    #[arg(long, short = 'd', default_value_t = 5.0)]
    pub duration: f64,
    /// Samples per second on each CPU (99 avoids lockstep with 100 Hz timers).
    #[arg(long = "frequency", short = 'F', default_value_t = 99,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub frequency: u64,
    /// Only this process (tgid).
    #[arg(long, short = 'p')]
    pub pid: Option<u32>,
    /// Only this cgroup (v2 path under /sys/fs/cgroup) and below.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Only threads with this command name (first 15 bytes, as the kernel keeps it).
    #[arg(long, value_name = "NAME")]
    pub comm: Option<String>,
    /// What clocks the samples: `cpu-clock` (a timer; works everywhere) or `cycles` (the
    /// PMU; falls back to cpu-clock where there is none, as in most VMs).
    #[arg(long, default_value = "cpu-clock", value_parser = ["cpu-clock", "cycles"])]
    pub event: String,
    /// Rows in each table.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print folded stacks (`proc;frame;frame samples`) for flame-graph tools instead.
    #[arg(long)]
    pub folded: bool,
    /// Also write an SVG flame graph to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Kernel stacks only (user stacks need frame pointers anyway).
    #[arg(long)]
    pub no_user_stacks: bool,
    /// Capacity of the in-kernel count map ((thread, CPU, stacks) rows); what does not fit is
    /// counted as dropped.
    #[arg(long, default_value_t = 16384, value_name = "N")]
    pub max_entries: u32,
    /// Capacity of the stack map; stacks that do not fit or collide are counted as dropped.
    #[arg(long, default_value_t = 16384, value_name = "N")]
    pub stack_entries: u32,
    /// Store the probe output in DIR/probes/profile.json (a fixture).
    #[arg(long, value_name = "DIR", conflicts_with = "fixture")]
    pub record: Option<PathBuf>,
    /// Replay DIR/probes/profile.json instead of sampling.
    #[arg(long, value_name = "DIR")]
    pub fixture: Option<PathBuf>,
}

/// `commands/syscalls.rs`
#[derive(Debug, Clone, clap::Args)]
pub struct SyscallsArgs {
    #[command(flatten)]
    pub window: WindowArgs,
    /// Only this process (tgid); filtered in the kernel.
    #[arg(long, short = 'p', value_name = "PID")]
    pub pid: Option<u32>,
    /// Only this cgroup v2 and below: a path like /system.slice/nginx.service (or the full
    /// /sys/fs/cgroup/... path); filtered in the kernel.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
    /// Only threads with this command name (first 15 bytes, as the kernel keeps it).
    #[arg(long, value_name = "NAME")]
    pub comm: Option<String>,
    /// Do not measure time in syscall (no latency histograms): only counts and errors, one
    /// probe instead of two (lower overhead).
    #[arg(long)]
    pub no_latency: bool,
    /// Capacity of the in-kernel (process, syscall) table; calls beyond it are counted as
    /// dropped from the per-process tables (the per-syscall totals stay exact).
    #[arg(long, default_value_t = 16384, value_name = "N")]
    pub max_entries: u32,
    /// Record the run as a fixture in DIR (the /proc files read, and probes/syscalls.json);
    /// replay it with `--fixture DIR`.
    #[arg(long, value_name = "DIR", conflicts_with = "fixture")]
    pub record: Option<PathBuf>,
    /// Force one attach type instead of the cheapest that loads (for testing the fallbacks).
    #[arg(long, hide = true, value_parser = ["tp_btf", "raw_tp", "tracepoint"])]
    pub attach: Option<String>,
}

/// `commands/doctor/mod.rs`
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Read the system under DIR instead of / (DIR/proc, DIR/sys, DIR/dev/kmsg). Probes are
    /// still tried against the running kernel.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_duration_syntax() {
        assert_eq!(duration_s("2").unwrap(), 2.0);
        assert_eq!(duration_s("0.5").unwrap(), 0.5);
        assert_eq!(duration_s("500ms").unwrap(), 0.5);
        assert_eq!(duration_s("2s").unwrap(), 2.0);
        assert_eq!(duration_s("10m").unwrap(), 600.0);
        assert_eq!(duration_s("1h").unwrap(), 3600.0);
        assert_eq!(duration_s("1m30s").unwrap(), 90.0);
        assert!((duration_s("200us").unwrap() - 0.0002).abs() < 1e-12);
        assert!(duration_s("-1").is_err());
        assert!(duration_s("fast").is_err());
        assert!(parse_duration("0.1").is_err());
        assert!(parse_duration("2h").is_err());
        assert_eq!(parse_lookback("10m").unwrap(), 600.0);
        assert_eq!(parse_micros("1ms").unwrap(), 1000);
        assert_eq!(parse_micros("200us").unwrap(), 200);
        assert!(parse_micros("200").is_err());
    }
}
