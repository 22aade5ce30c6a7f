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
    /// Leave out the eBPF latency histograms (run queue, block I/O, TCP retransmits).
    #[arg(long)]
    pub no_bpf: bool,
}

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
