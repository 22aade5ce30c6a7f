//! `cargo xtask bench --procs-scan [--runs N] [--duration SECS] [--procs N]`: what the process
//! scan costs with N extra sleeping processes, through the BPF task iterator and through
//! /proc, against a C program reading `stat` and `statm` of every process twice (the floor of a
//! /proc scan at both ends of a window) and `ps aux` (one pass).
//!
//! Subjects alternate within each round (round r starts at subject r), after one unrecorded
//! warm-up round; medians of CPU time (user + sys of the child, from `wait4`). The same two
//! triage subjects also run on the box without the sleepers, so the per-process cost of each
//! path is the difference.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bench::median;
use crate::measure;
use crate::sleepers::Sleepers;
use crate::{deps, util};

/// Goal of issue 13: the privileged scan costs at most half the C floor.
const GOAL_RATIO: f64 = 0.5;
const ITER_PROBLEM: &str = "process scan through the BPF task iterator";

struct Opts {
    runs: usize,
    duration: f64,
    procs: usize,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Self> {
        let mut o = Opts {
            runs: 5,
            duration: 1.0,
            procs: 5000,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--procs-scan" => {}
                "--runs" => o.runs = util::parse_value("--runs", it.next())?,
                "--duration" => o.duration = util::parse_value("--duration", it.next())?,
                "--procs" => o.procs = util::parse_value("--procs", it.next())?,
                a => return crate::usage_err(format!("bench --procs-scan: unexpected `{a}`")),
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

    fn reproduce(&self) -> String {
        format!(
            "cargo xtask bench --procs-scan --runs {} --duration {} --procs {}",
            self.runs, self.duration, self.procs
        )
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Subject {
    /// `sixty-second` as root: the task iterator (and the latency probes).
    Iter,
    /// `sixty-second --no-bpf`: the /proc scan.
    Proc,
    /// `sixty-second --task-scan proc` as root: the /proc scan with the latency probes, the
    /// iterator's fair comparison (where `--task-scan auto` should switch).
    ProcProbes,
    /// The C program: stat + statm of every process, twice.
    Floor,
    /// `ps aux`, one pass.
    Ps,
}

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::Iter => "triage sixty-second (BPF task iterator)",
            Subject::Proc => "triage sixty-second --no-bpf (/proc)",
            Subject::ProcProbes => "triage sixty-second --task-scan proc",
            Subject::Floor => "C: stat+statm of every process, twice",
            Subject::Ps => "ps aux",
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Sample {
    cpu_ms: f64,
    wall_s: f64,
}

struct Runner {
    bin: PathBuf,
    floor: PathBuf,
    duration: String,
    work: PathBuf,
}

impl Runner {
    fn measure(&self, s: Subject) -> Result<Sample> {
        let (mut cmd, out) = match s {
            Subject::Iter | Subject::Proc | Subject::ProcProbes => {
                let mut c = Command::new(&self.bin);
                c.args(["sixty-second", "--json", "--duration", &self.duration]);
                if s == Subject::Proc {
                    c.arg("--no-bpf");
                } else if s == Subject::ProcProbes {
                    c.args(["--task-scan", "proc"]);
                } else {
                    // Also when idle (`auto` would read /proc below 1,000 tasks).
                    c.args(["--task-scan", "bpf"]);
                }
                (c, Some(self.work.join("procs-scan.json")))
            }
            Subject::Floor => (Command::new(&self.floor), None),
            Subject::Ps => {
                let mut c = Command::new("ps");
                c.arg("aux");
                (c, None)
            }
        };
        cmd.stdin(Stdio::null()).stderr(Stdio::null());
        match &out {
            Some(p) => cmd.stdout(File::create(p)?),
            None => cmd.stdout(Stdio::null()),
        };
        let u = measure::run_child(&mut cmd, Duration::from_secs(120))?;
        if u.code != Some(0) {
            bail!("`{}` exited with {:?}", util::display(&cmd), u.code);
        }
        if let Some(p) = out {
            let report: Value = serde_json::from_slice(&std::fs::read(&p)?)
                .with_context(|| format!("triage printed invalid JSON ({})", p.display()))?;
            let without_iter = report["unavailable"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|u| u.to_string().contains(ITER_PROBLEM));
            match (s, without_iter) {
                (Subject::Iter, Some(u)) => bail!("the task iterator did not run: {u}"),
                (Subject::Proc, Some(u)) => bail!("--no-bpf tried the task iterator: {u}"),
                _ => {}
            }
        }
        Ok(Sample {
            cpu_ms: u.cpu.as_secs_f64() * 1e3,
            wall_s: u.wall.as_secs_f64(),
        })
    }
}

fn rounds(r: &Runner, phase: &str, runs: usize, subjects: &[Subject]) -> Result<Vec<Vec<Sample>>> {
    let n = subjects.len();
    let mut out = vec![Vec::with_capacity(runs); n];
    for round in 0..runs {
        eprintln!(
            "xtask: bench --procs-scan {phase}: round {}/{runs}",
            round + 1
        );
        for k in 0..n {
            let i = (round + k) % n;
            out[i].push(
                r.measure(subjects[i])
                    .with_context(|| format!("measuring {}", subjects[i].label()))?,
            );
        }
    }
    Ok(out)
}

/// Compiles the C floor into `dir` with the system's C compiler.
fn build_floor(dir: &Path) -> Result<PathBuf> {
    let src = util::root().join("xtask/src/procs_floor.c");
    let bin = dir.join("procs_floor");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    util::run(Command::new(cc).args(["-O2", "-o"]).arg(&bin).arg(&src))?;
    Ok(bin)
}

fn cpu(s: &[Sample]) -> f64 {
    median(s.iter().map(|x| x.cpu_ms))
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let opts = Opts::parse(args)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bench --procs-scan measures the privileged path: run it as root");
    }
    deps::ensure(true)?;
    let bin = util::build_release()?;
    let work = util::target_dir()?.join("bench").join("work");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let runner = Runner {
        bin,
        floor: build_floor(&work)?,
        duration: opts.duration.to_string(),
        work,
    };
    let started = Instant::now();
    let both = [Subject::Iter, Subject::Proc, Subject::ProcProbes];
    let idle_tasks = tasks_now();
    rounds(&runner, "warm-up", 1, &both)?;
    let idle = rounds(&runner, "idle", opts.runs, &both)?;
    let all = [
        Subject::Iter,
        Subject::Proc,
        Subject::ProcProbes,
        Subject::Floor,
        Subject::Ps,
    ];
    let sleepers = Sleepers::spawn(opts.procs)?;
    let scaled = rounds(&runner, "warm-up (sleepers)", 1, &all)
        .and_then(|_| rounds(&runner, "with sleepers", opts.runs, &all));
    let pgid = sleepers.pgid();
    sleepers.finish()?;
    eprintln!("xtask: sleepers stopped; none left in process group {pgid}");
    let scaled = scaled?;

    let floor = cpu(&scaled[3]);
    let mut t = String::new();
    t.push_str(&format!(
        "process scan with +{} sleeping processes: CPU ms, medians of {} alternated rounds\n",
        opts.procs, opts.runs
    ));
    t.push_str(&format!(
        "{:<44} {:>9} {:>9} {:>10} {:>9}\n",
        "subject", "idle", "+procs", "marginal", "/ floor"
    ));
    let mut rows = Vec::new();
    for (i, s) in all.iter().enumerate() {
        let with = cpu(&scaled[i]);
        let idle_ms = (i < both.len()).then(|| cpu(&idle[i]));
        let marginal = idle_ms.map(|m| with - m);
        t.push_str(&format!(
            "{:<44} {:>9} {:>9.1} {:>10} {:>9.2}\n",
            s.label(),
            idle_ms.map_or("-".into(), |m| format!("{m:.1}")),
            with,
            marginal.map_or("-".into(), |m| format!("{m:.1}")),
            with / floor
        ));
        rows.push(json!({
            "subject": s.label(),
            "cpu_ms_idle": idle_ms,
            "cpu_ms_with_procs": with,
            "cpu_ms_marginal": marginal,
            "ratio_to_floor": with / floor,
            "samples_cpu_ms": scaled[i].iter().map(|x| x.cpu_ms).collect::<Vec<_>>(),
            "samples_wall_s": scaled[i].iter().map(|x| x.wall_s).collect::<Vec<_>>(),
        }));
    }
    let ratio = cpu(&scaled[0]) / floor;
    t.push_str(&format!(
        "goal: the iterator path <= {GOAL_RATIO}x the C floor: {ratio:.2}x -> {}\n",
        if ratio <= GOAL_RATIO {
            "met"
        } else {
            "NOT met"
        }
    ));
    // Where the iterator's fixed cost (its load) is paid back by its cheaper per-process scan,
    // against /proc with the same probes: what `--task-scan auto` should use.
    let fixed = cpu(&idle[0]) - cpu(&idle[2]);
    let per_proc = ((cpu(&scaled[2]) - cpu(&idle[2])) - (cpu(&scaled[0]) - cpu(&idle[0])))
        / opts.procs.max(1) as f64;
    let break_even = (per_proc > 0.0).then(|| idle_tasks as f64 + fixed / per_proc);
    t.push_str(&format!(
        "iterator vs /proc, both with the probes: fixed {fixed:.1} ms, {:.1} us less per process \
         -> break-even at ~{} tasks ({idle_tasks} idle; `auto` takes the iterator from {})\n",
        per_proc * 1e3,
        break_even.map_or("-".into(), |b| format!("{b:.0}")),
        AUTO_MIN_TASKS
    ));
    let json_path = util::target_dir()?.join("bench").join("procs-scan.json");
    let doc = json!({
        "reproduce": opts.reproduce(),
        "runs": opts.runs,
        "duration_s": opts.duration,
        "extra_procs": opts.procs,
        "subjects": rows,
        "goal_ratio": GOAL_RATIO,
        "iterator_ratio_to_floor": ratio,
        "iterator_fixed_ms": fixed,
        "iterator_saving_per_process_us": per_proc * 1e3,
        "break_even_tasks": break_even,
        "idle_tasks": idle_tasks,
    });
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    t.push_str(&format!(
        "raw samples: {} (bench took {:.0} s)\nreproduce with: {}\n",
        json_path.display(),
        started.elapsed().as_secs_f64(),
        opts.reproduce()
    ));
    print!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// `--task-scan auto`'s threshold (`triage::cli::TASK_ITER_MIN_TASKS`; xtask does not link
/// triage, `check_auto_min_tasks` keeps the two equal).
const AUTO_MIN_TASKS: u64 = 600;

/// Tasks (threads) on the box now: /proc/loadavg's fourth field, "running/total".
fn tasks_now() -> u64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            let f = s.split_whitespace().nth(3)?;
            f.split('/').nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod auto_tests {
    #[test]
    fn check_auto_min_tasks() {
        let cli = include_str!("../../src/cli.rs");
        let want = format!(
            "pub const TASK_ITER_MIN_TASKS: u64 = {};",
            super::AUTO_MIN_TASKS
        );
        assert!(cli.contains(&want), "src/cli.rs must say `{want}`");
    }
}
