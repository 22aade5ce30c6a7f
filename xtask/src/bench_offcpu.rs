//! `cargo xtask bench --offcpu [--runs N] [--loops N] [--forks N]`: what tracing the
//! scheduler costs. Two workloads — `taskset -c 0 perf bench sched pipe -l N` (two tasks
//! ping-ponging on one CPU: a context switch every few microseconds) and a fork-heavy shell
//! loop — each run with no tracer, `triage offcpu`, triage's run-queue latency probe,
//! libbpf-tools `offcputime` and `runqlat`, and bpftrace sched_switch scripts (with and
//! without stacks). Tracers are alternated round-robin within each round; the figure is the
//! median wall time over rounds, as a slowdown against the median without tracer.
//! Also: triage offcpu's start-up (load + attach) as it reports it.

use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::bench::median;
use crate::bench_tracer::{alternate, positive_options, startup, tracer as t, Tracer};
use crate::{deps, util};

fn tracers(triage: &str) -> Vec<Tracer> {
    vec![
        t("none", &[]),
        t(
            "triage offcpu (min-block 1us)",
            &[
                triage,
                "offcpu",
                "--duration",
                "3600",
                "--min-block",
                "1us",
                "--json",
            ],
        ),
        t(
            "triage offcpu (default: 1ms, 1/16 from 10us)",
            &[triage, "offcpu", "--duration", "3600", "--json"],
        ),
        t(
            "triage offcpu (min-block 1ms, exact only)",
            &[
                triage,
                "offcpu",
                "--duration",
                "3600",
                "--min-block",
                "1ms",
                "--json",
            ],
        ),
        t(
            "triage run-queue latency",
            &[
                triage,
                "offcpu",
                "--bench-probe",
                "runqlat",
                "--duration",
                "3600",
            ],
        ),
        t("libbpf-tools offcputime", &["offcputime"]),
        t("libbpf-tools runqlat", &["runqlat"]),
        t(
            "bpftrace sched_switch + stacks",
            &[
                "bpftrace",
                "-q",
                "-e",
                "tracepoint:sched:sched_switch { @[kstack, ustack, comm] = count(); }",
            ],
        ),
        t(
            "bpftrace sched_switch",
            &[
                "bpftrace",
                "-q",
                "-e",
                "tracepoint:sched:sched_switch { @[comm] = count(); }",
            ],
        ),
    ]
}

fn workload(kind: &str, loops: u64, forks: u64) -> Command {
    let mut c;
    if kind == "pipe" {
        c = Command::new("taskset");
        c.args(["-c", "0", "perf", "bench", "sched", "pipe", "-l"])
            .arg(loops.to_string());
    } else {
        c = Command::new("sh");
        c.arg("-c").arg(format!(
            "i=0; while [ $i -lt {forks} ]; do /bin/true; i=$((i+1)); done"
        ));
    }
    c
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let (mut runs, mut loops, mut forks) = (5u64, 200_000u64, 2000u64);
    positive_options(
        args,
        "bench --offcpu",
        &mut [
            ("--runs", &mut runs),
            ("--loops", &mut loops),
            ("--forks", &mut forks),
        ],
    )?;
    let runs = runs as usize;
    deps::ensure_packages(&["linux-perf", "libbpf-tools", "bpftrace", "util-linux"])?;
    let bin = util::build_release()?;
    let triage = bin.to_string_lossy().into_owned();
    let (s, wall) = startup(&triage, "offcpu")?;
    println!("triage offcpu start-up: load+attach {s:.1} ms; whole 0.1 s run {wall:.0} ms");
    let ts = tracers(&triage);
    for kind in ["pipe", "fork"] {
        let what = format!("{kind} workload");
        let times: Vec<Vec<f64>> = alternate(&ts, runs, &what, || workload(kind, loops, forks))?
            .into_iter()
            .map(|v| v.into_iter().map(|r| r.wall).collect())
            .collect();
        let base = median(times[0].iter().copied());
        let what = if kind == "pipe" {
            format!("taskset -c 0 perf bench sched pipe -l {loops}")
        } else {
            format!("fork loop: {forks} x /bin/true from sh")
        };
        println!("\n{what}: medians of {runs} alternated runs");
        for (t, v) in ts.iter().zip(&times) {
            let m = median(v.iter().copied());
            let per = if kind == "pipe" {
                // Two context switches per loop.
                format!(
                    ", +{:.2} us per switch",
                    (m - base) * 1e6 / (2.0 * loops as f64)
                )
            } else {
                format!(", +{:.0} us per fork", (m - base) * 1e6 / forks as f64)
            };
            println!("  {:<42} {:>8.3} s  {:>5.2}x{per}", t.label, m, m / base);
        }
    }
    Ok(ExitCode::SUCCESS)
}
