//! `cargo xtask bench [--runs N] [--duration SECS] [--procs N]`: what a diagnosis costs.
//!
//! Two questions, answered with medians because the machine is shared and noisy:
//!
//! - **A. vs the classic checklist.** `triage sixty-second --json` against the ten commands of
//!   the "Linux performance analysis in 60 seconds" checklist, each timed the same way (wall
//!   from spawn to reap, CPU = user + sys from `wait4`). Triage's overhead is its wall time
//!   beyond the window it reports (`window.elapsed_s`).
//! - **B. scale.** The same diagnosis with N extra sleeping processes, against an in-process
//!   baseline that lists /proc and reads every `/proc/PID/stat` once: the cheapest possible
//!   per-process pass, so `marginal / baseline` says how close to that floor triage stays.
//!
//! Subjects alternate within each round (round r runs each subject once, starting at subject
//! r), so slow drifts of the machine spread across all subjects instead of biasing one. One
//! unrecorded warm-up round fills the page cache first.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::measure::{self, Usage};
use crate::sleepers::Sleepers;
use crate::{deps, util};

/// The classic checklist, as (label, argv). Output goes to /dev/null: we measure the tools,
/// not a terminal.
const CLASSIC: &[(&str, &[&str])] = &[
    ("uptime", &["uptime"]),
    ("dmesg | tail", &["bash", "-c", "dmesg | tail"]),
    ("vmstat 1 2", &["vmstat", "1", "2"]),
    ("mpstat -P ALL 1 1", &["mpstat", "-P", "ALL", "1", "1"]),
    ("pidstat 1 1", &["pidstat", "1", "1"]),
    ("iostat -xz 1 1", &["iostat", "-xz", "1", "1"]),
    ("free -m", &["free", "-m"]),
    ("sar -n DEV 1 1", &["sar", "-n", "DEV", "1", "1"]),
    ("sar -n TCP,ETCP 1 1", &["sar", "-n", "TCP,ETCP", "1", "1"]),
    ("top -bn1", &["top", "-bn1"]),
];

/// Targets from the project's goals; reported, not enforced (a noisy run should not fail CI).
const TARGET_OVERHEAD_S: f64 = 0.1;
const TARGET_CPU_MS: f64 = 20.0;
const TARGET_MARGINAL_RATIO: f64 = 1.5;

struct Opts {
    runs: usize,
    duration: f64,
    procs: usize,
    /// Pass `--no-bpf`: the /proc-only cost, without the eBPF latency probes' load and attach.
    no_bpf: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Self> {
        let mut o = Opts {
            runs: 5,
            duration: 2.0,
            procs: 5000,
            no_bpf: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--runs" => o.runs = util::parse_value("--runs", it.next())?,
                "--duration" => o.duration = util::parse_value("--duration", it.next())?,
                "--procs" => o.procs = util::parse_value("--procs", it.next())?,
                "--no-bpf" => o.no_bpf = true,
                a => return crate::usage_err(format!("bench: unexpected argument `{a}`")),
            }
        }
        if o.runs == 0 {
            return crate::usage_err("--runs must be at least 1");
        }
        if o.duration.is_nan() || o.duration <= 0.0 {
            return crate::usage_err("--duration must be positive");
        }
        Ok(o)
    }

    /// The command line that reproduces this run, printed and stored with the results.
    fn reproduce(&self) -> String {
        format!(
            "cargo xtask bench --runs {} --duration {} --procs {}{}",
            self.runs,
            self.duration,
            self.procs,
            if self.no_bpf { " --no-bpf" } else { "" }
        )
    }
}

/// What is measured in one slot of a round.
#[derive(Clone, Copy)]
enum Subject {
    Triage,
    Classic(usize),
    /// The in-process floor: read every /proc/PID/stat once.
    Baseline,
    /// triage with its probes loaded as libbpf alone would (`TRIAGE_MINIMAL_BTF=0`: CO-RE
    /// against the whole kernel BTF, libbpf's own tp_btf attach-id lookup): what the minimal
    /// BTF and triage's attach ids save, measured in the same rounds.
    TriageWholeBtf,
}

impl Subject {
    fn label(self) -> String {
        match self {
            Subject::Triage => "triage sixty-second --json".into(),
            Subject::Classic(i) => CLASSIC[i].0.into(),
            Subject::Baseline => "baseline: read every /proc/PID/stat".into(),
            Subject::TriageWholeBtf => "triage, probes on the whole kernel BTF".into(),
        }
    }
}

/// One measurement.
#[derive(Clone, Copy, Default)]
struct Sample {
    wall_s: f64,
    cpu_ms: f64,
    /// Triage only: the window it reports having measured.
    elapsed_s: Option<f64>,
    /// Child subjects only: exit code (`None`: killed by a signal).
    code: Option<i32>,
    /// Baseline only: how many stat files it read.
    procs: Option<usize>,
}

impl Sample {
    fn from_usage(u: Usage) -> Self {
        Sample {
            wall_s: u.wall.as_secs_f64(),
            cpu_ms: u.cpu.as_secs_f64() * 1e3,
            code: u.code,
            ..Sample::default()
        }
    }

    fn overhead_s(&self) -> Option<f64> {
        self.elapsed_s.map(|e| self.wall_s - e)
    }

    fn to_json(self) -> Value {
        let mut v = json!({ "wall_s": self.wall_s, "cpu_ms": self.cpu_ms });
        if let Some(e) = self.elapsed_s {
            v["elapsed_s"] = json!(e);
            v["overhead_s"] = json!(self.wall_s - e);
        }
        if self.code != Some(0) && self.procs.is_none() {
            v["exit_code"] = json!(self.code);
        }
        if let Some(p) = self.procs {
            v["procs"] = json!(p);
        }
        v
    }
}

/// Runs subjects and remembers where triage writes its report.
struct Runner {
    bin: PathBuf,
    duration: String,
    no_bpf: bool,
    work: PathBuf,
    /// Classic commands already warned about for a non-zero exit (warn once, not every round).
    warned: Vec<usize>,
}

impl Runner {
    fn measure(&mut self, s: Subject) -> Result<Sample> {
        match s {
            Subject::Triage => self.triage(false),
            Subject::Classic(i) => self.classic(i),
            Subject::Baseline => Ok(read_every_stat()),
            Subject::TriageWholeBtf => self.triage(true),
        }
    }

    /// One `triage sixty-second --json`; stdout goes to a file (not a pipe we would have to
    /// drain while waiting) and is parsed for `window.elapsed_s`.
    fn triage(&mut self, whole_btf: bool) -> Result<Sample> {
        let out = self.work.join("triage.json");
        let err = self.work.join("triage.err");
        let mut cmd = Command::new(&self.bin);
        cmd.args(["sixty-second", "--json", "--duration", &self.duration]);
        if self.no_bpf {
            cmd.arg("--no-bpf");
        }
        if whole_btf {
            cmd.env("TRIAGE_MINIMAL_BTF", "0");
        }
        cmd.stdin(Stdio::null())
            .stdout(File::create(&out)?)
            .stderr(File::create(&err)?);
        let timeout = Duration::from_secs_f64(self.duration.parse::<f64>()? + 120.0);
        let usage = measure::run_child(&mut cmd, timeout)?;
        if usage.code != Some(0) {
            bail!(
                "`{}` exited with {}; stderr:\n{}",
                util::display(&cmd),
                exit_desc(usage.code),
                Some(std::fs::read_to_string(&err).unwrap_or_default())
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| "(empty)".into())
                    .trim_end()
            );
        }
        let report: Value = serde_json::from_slice(&std::fs::read(&out)?)
            .with_context(|| format!("triage printed invalid JSON (see {})", out.display()))?;
        let elapsed = report["window"]["elapsed_s"].as_f64().with_context(|| {
            format!(
                "triage's JSON has no window.elapsed_s (see {})",
                out.display()
            )
        })?;
        Ok(Sample {
            elapsed_s: Some(elapsed),
            ..Sample::from_usage(usage)
        })
    }

    fn classic(&mut self, i: usize) -> Result<Sample> {
        let (label, argv) = CLASSIC[i];
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let sample = Sample::from_usage(measure::run_child(&mut cmd, Duration::from_secs(60))?);
        if sample.code != Some(0) && !self.warned.contains(&i) {
            self.warned.push(i);
            eprintln!(
                "xtask: warning: `{label}` exited with {}; its cost is still counted",
                exit_desc(sample.code)
            );
        }
        Ok(sample)
    }
}

/// The floor for a per-process pass: list /proc and read each /proc/PID/stat once, timed with
/// this process's own CPU clock (no other thread of ours is running meanwhile).
fn read_every_stat() -> Sample {
    let wall = Instant::now();
    let cpu = measure::process_cpu();
    let mut n = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
                continue;
            }
            let mut path = PathBuf::from("/proc");
            path.push(&name);
            path.push("stat");
            if let Ok(bytes) = std::fs::read(&path) {
                std::hint::black_box(bytes);
                n += 1;
            }
        }
    }
    Sample {
        wall_s: wall.elapsed().as_secs_f64(),
        cpu_ms: (measure::process_cpu() - cpu).as_secs_f64() * 1e3,
        procs: Some(n),
        ..Sample::default()
    }
}

/// Runs `runs` rounds; round r runs every subject once, starting at subject r mod n.
/// Returns the samples per subject, indexed like `subjects`, in round order.
fn rounds(
    runner: &mut Runner,
    phase: &str,
    runs: usize,
    subjects: &[Subject],
) -> Result<Vec<Vec<Sample>>> {
    let n = subjects.len();
    let mut out = vec![Vec::with_capacity(runs); n];
    for r in 0..runs {
        eprintln!("xtask: bench {phase}: round {}/{runs}", r + 1);
        for k in 0..n {
            let i = (r + k) % n;
            let sample = runner
                .measure(subjects[i])
                .with_context(|| format!("measuring {}", subjects[i].label()))?;
            out[i].push(sample);
        }
    }
    Ok(out)
}

pub(crate) fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn min_max(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    values
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        })
}

/// Medians of one subject's samples, for the JSON.
fn summarize(label: &str, samples: &[Sample]) -> Value {
    let mut med = json!({
        "wall_s": median(samples.iter().map(|s| s.wall_s)),
        "cpu_ms": median(samples.iter().map(|s| s.cpu_ms)),
    });
    if samples.iter().all(|s| s.elapsed_s.is_some()) && !samples.is_empty() {
        med["elapsed_s"] = json!(median(samples.iter().filter_map(|s| s.elapsed_s)));
        med["overhead_s"] = json!(median(samples.iter().filter_map(Sample::overhead_s)));
    }
    json!({
        "subject": label,
        "samples": samples.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        "median": med,
    })
}

/// Appends one line of the results table.
fn line(t: &mut String, s: String) {
    t.push_str(&s);
    t.push('\n');
}

/// Appends an aligned "key  value" line of the results table.
fn kv(t: &mut String, key: &str, value: String) {
    line(t, format!("  {key:<34} {value}"));
}

fn exit_desc(code: Option<i32>) -> String {
    code.map_or("a signal".into(), |c| format!("exit code {c}"))
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

/// The whole bench: parse, deps, build, warm up, phases A and B, table and JSON.
pub fn run(args: &[String]) -> Result<ExitCode> {
    let opts = Opts::parse(args)?;
    deps::ensure(true)?;
    let bin = util::build_release()?;
    let bench_dir = util::target_dir()?.join("bench");
    let work = bench_dir.join("work");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let started = Instant::now();
    let mut runner = Runner {
        bin: bin.clone(),
        duration: opts.duration.to_string(),
        no_bpf: opts.no_bpf,
        work,
        warned: Vec::new(),
    };

    // A: triage, the ten classic commands and the idle baseline, alternating.
    let mut subjects = vec![Subject::Triage];
    subjects.extend((0..CLASSIC.len()).map(Subject::Classic));
    subjects.push(Subject::Baseline);
    if !opts.no_bpf {
        subjects.push(Subject::TriageWholeBtf);
    }
    rounds(&mut runner, "warm-up", 1, &subjects)?;
    let a = rounds(&mut runner, "A (vs classic)", opts.runs, &subjects)?;
    let triage_idle = &a[0];
    let classic = &a[1..=CLASSIC.len()];
    let baseline_idle = &a[CLASSIC.len() + 1];
    let whole_btf = a.get(CLASSIC.len() + 2);
    // Sums per round, then the median of those sums: one number per "ran the whole checklist".
    let classic_sum: Vec<Sample> = (0..opts.runs)
        .map(|r| Sample {
            wall_s: classic.iter().map(|s| s[r].wall_s).sum(),
            cpu_ms: classic.iter().map(|s| s[r].cpu_ms).sum(),
            code: Some(0),
            ..Sample::default()
        })
        .collect();

    let idle_cpu = median(triage_idle.iter().map(|s| s.cpu_ms));
    let idle_wall = median(triage_idle.iter().map(|s| s.wall_s));
    let overhead = median(triage_idle.iter().filter_map(Sample::overhead_s));
    let classic_cpu = median(classic_sum.iter().map(|s| s.cpu_ms));
    let classic_wall = median(classic_sum.iter().map(|s| s.wall_s));
    let idle_procs = baseline_idle
        .iter()
        .filter_map(|s| s.procs)
        .max()
        .unwrap_or(0);

    // B: the same diagnosis with N extra processes, against the stat-reading floor.
    let scale = if opts.procs > 0 {
        let sleepers = Sleepers::spawn(opts.procs)?;
        let result = rounds(
            &mut runner,
            "B (scale)",
            opts.runs,
            &[Subject::Triage, Subject::Baseline],
        );
        let pgid = sleepers.pgid();
        sleepers.finish()?;
        eprintln!("xtask: sleepers stopped; none left in process group {pgid}");
        Some(result?)
    } else {
        None
    };

    // Report.
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut t = String::new();
    line(
        &mut t,
        format!(
            "triage bench: {} runs (medians), window {} s, {cpus} CPUs, kernel {kernel}, \
             {idle_procs} processes",
            opts.runs, opts.duration
        ),
    );
    line(&mut t, String::new());
    line(
        &mut t,
        "A. one diagnosis vs the classic 60-second commands".into(),
    );
    line(
        &mut t,
        format!(
            "  {:<36} {:>8} {:>9} {:>17}",
            "subject", "wall s", "cpu ms", "cpu ms min..max"
        ),
    );
    let row = |t: &mut String, label: &str, samples: &[Sample]| {
        let (lo, hi) = min_max(samples.iter().map(|s| s.cpu_ms));
        line(
            t,
            format!(
                "  {label:<36} {:>8.3} {:>9.1} {:>17}",
                median(samples.iter().map(|s| s.wall_s)),
                median(samples.iter().map(|s| s.cpu_ms)),
                format!("{lo:.1}..{hi:.1}")
            ),
        );
    };
    row(&mut t, &Subject::Triage.label(), triage_idle);
    for (i, samples) in classic.iter().enumerate() {
        row(&mut t, &format!("  {}", CLASSIC[i].0), samples);
    }
    row(
        &mut t,
        &format!("classic sum ({} commands)", CLASSIC.len()),
        &classic_sum,
    );
    line(&mut t, String::new());
    kv(
        &mut t,
        "triage overhead beyond the window",
        format!(
            "{overhead:>9.3} s    (target < {TARGET_OVERHEAD_S} s)  {}",
            verdict(overhead < TARGET_OVERHEAD_S)
        ),
    );
    kv(
        &mut t,
        "triage CPU",
        format!(
            "{idle_cpu:>9.1} ms   (target < {TARGET_CPU_MS} ms)  {}",
            verdict(idle_cpu < TARGET_CPU_MS)
        ),
    );
    kv(
        &mut t,
        "triage CPU / classic CPU sum",
        format!("{:>9.3}x", idle_cpu / classic_cpu),
    );
    let whole_btf_cpu = whole_btf.map(|w| median(w.iter().map(|s| s.cpu_ms)));
    if let Some(w) = whole_btf_cpu {
        kv(
            &mut t,
            "triage CPU, probes as libbpf alone loads them",
            format!(
                "{w:>9.1} ms   (triage's BTF cut and attach ids / libbpf alone: {:.3}x)",
                idle_cpu / w
            ),
        );
    }
    kv(
        &mut t,
        "triage wall / classic wall sum",
        format!("{:>9.3}x", idle_wall / classic_wall),
    );

    let mut summary = json!({
        "triage_overhead_s": overhead,
        "triage_cpu_ms": idle_cpu,
        "triage_wall_s": idle_wall,
        "classic_cpu_sum_ms": classic_cpu,
        "classic_wall_sum_s": classic_wall,
        "ratio_cpu_triage_to_classic": idle_cpu / classic_cpu,
        "ratio_wall_triage_to_classic": idle_wall / classic_wall,
        "baseline_idle_ms": median(baseline_idle.iter().map(|s| s.cpu_ms)),
        "triage_whole_btf_cpu_ms": whole_btf_cpu,
        "targets": {
            "overhead_s": TARGET_OVERHEAD_S,
            "cpu_ms": TARGET_CPU_MS,
            "ratio_marginal_to_baseline": TARGET_MARGINAL_RATIO,
        },
        "pass": {
            "overhead": overhead < TARGET_OVERHEAD_S,
            "cpu": idle_cpu < TARGET_CPU_MS,
        },
    });

    let mut scale_json = Value::Null;
    if let Some(c) = &scale {
        let (with, base) = (&c[0], &c[1]);
        let with_cpu = median(with.iter().map(|s| s.cpu_ms));
        let base_cpu = median(base.iter().map(|s| s.cpu_ms));
        let base_idle = median(baseline_idle.iter().map(|s| s.cpu_ms));
        let marginal = with_cpu - idle_cpu;
        let per_proc_us = marginal * 1e3 / opts.procs as f64;
        let procs_seen = base.iter().filter_map(|s| s.procs).max().unwrap_or(0);
        let ratio_marginal = marginal / base_cpu;
        let ratio_total = with_cpu / base_cpu;
        line(&mut t, String::new());
        line(
            &mut t,
            format!(
                "B. scale: +{} sleeping processes ({procs_seen} in /proc)",
                opts.procs
            ),
        );
        kv(&mut t, "triage CPU idle", format!("{idle_cpu:>9.1} ms"));
        kv(
            &mut t,
            &format!("triage CPU with +{} procs", opts.procs),
            format!(
                "{with_cpu:>9.1} ms   (wall {:.3} s)",
                median(with.iter().map(|s| s.wall_s))
            ),
        );
        kv(
            &mut t,
            "marginal (with - idle)",
            format!("{marginal:>9.1} ms   ({per_proc_us:.2} us per process)"),
        );
        kv(
            &mut t,
            "baseline: every stat read once",
            format!("{base_cpu:>9.1} ms   (idle box: {base_idle:.2} ms)"),
        );
        kv(
            &mut t,
            "marginal / baseline",
            format!(
                "{ratio_marginal:>9.2}x   (target < {TARGET_MARGINAL_RATIO})  {}",
                verdict(ratio_marginal < TARGET_MARGINAL_RATIO)
            ),
        );
        kv(&mut t, "total / baseline", format!("{ratio_total:>9.2}x"));
        summary["triage_cpu_with_procs_ms"] = json!(with_cpu);
        summary["marginal_ms"] = json!(marginal);
        summary["marginal_us_per_process"] = json!(per_proc_us);
        summary["baseline_ms"] = json!(base_cpu);
        summary["ratio_marginal_to_baseline"] = json!(ratio_marginal);
        summary["ratio_total_to_baseline"] = json!(ratio_total);
        summary["pass"]["marginal_ratio"] = json!(ratio_marginal < TARGET_MARGINAL_RATIO);
        scale_json = json!({
            "extra_procs": opts.procs,
            "procs_in_proc": procs_seen,
            "subjects": [
                summarize("triage sixty-second --json (with extra procs)", with),
                summarize(&Subject::Baseline.label(), base),
            ],
        });
    }

    let json_path = bench_dir.join("sixty-second.json");
    let doc = json!({
        "reproduce": opts.reproduce(),
        "config": {
            "runs": opts.runs,
            "duration_s": opts.duration,
            "procs": opts.procs,
            "cpus": cpus,
            "kernel": kernel,
            "triage": bin,
            "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "cpu_measure": "child: wait4 rusage user+sys (incl. reaped descendants); \
                            baseline: CLOCK_PROCESS_CPUTIME_ID delta",
            "order": "round r runs every subject once, starting at subject r; \
                      one warm-up round is discarded",
        },
        "idle": {
            "procs_in_proc": idle_procs,
            "subjects": std::iter::once(summarize(&Subject::Triage.label(), triage_idle))
                .chain(classic.iter().enumerate().map(|(i, s)| summarize(CLASSIC[i].0, s)))
                .chain(std::iter::once(summarize(
                    &format!("classic sum ({} commands)", CLASSIC.len()),
                    &classic_sum,
                )))
                .chain(std::iter::once(summarize(&Subject::Baseline.label(), baseline_idle)))
                .chain(whole_btf.map(|w| summarize(&Subject::TriageWholeBtf.label(), w)))
                .collect::<Vec<_>>(),
        },
        "scale": scale_json,
        "summary": summary,
    });
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;

    line(&mut t, String::new());
    line(
        &mut t,
        format!(
            "raw samples and medians: {}  (bench took {:.0} s)",
            relative(&json_path).display(),
            started.elapsed().as_secs_f64()
        ),
    );
    line(&mut t, format!("reproduce with: {}", opts.reproduce()));
    print!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// `path` relative to the workspace root when it is inside it, for shorter output.
fn relative(path: &Path) -> &Path {
    path.strip_prefix(util::root()).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median([]).is_nan());
    }

    #[test]
    fn reproduce_line_names_every_option() {
        let o = Opts::parse(&["--procs".into(), "10".into()]).unwrap();
        assert_eq!(
            o.reproduce(),
            "cargo xtask bench --runs 5 --duration 2 --procs 10"
        );
    }
}
