//! `cargo xtask bench --profile [--runs N] [--steps N]`: what on-CPU sampling costs. A
//! CPU-bound workload (`triage-workload --now spin N`: pure computation, no syscalls) runs
//! with no profiler, under `triage profile -F 99` (system-wide, and scoped to a pid nobody
//! has: the sampling cost alone), `perf record -F 99 -g -a` and bpftrace `profile:hz:99`
//! counting (kernel stack, user stack, comm). Profilers are alternated round-robin, rotated
//! every round; the figures are medians over rounds of the workload's CPU time (user+sys from
//! wait4: steadier than wall time on a shared machine) and wall time, as slowdowns against
//! no profiler. Also each profiler's own CPU and peak RSS (wait4 of the profiler process),
//! and triage's start-up (load + attach as it reports it, and the whole 0.1 s run).

use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::bench::median;
use crate::bench_tracer::{alternate, positive_options, startup, tracer as p, Tracer};
use crate::{deps, util};

fn profilers(triage: &str, perf_out: &str) -> Vec<Tracer> {
    vec![
        p("none", &[]),
        p(
            "triage profile -F 99 (system-wide)",
            &[triage, "profile", "-F", "99", "-d", "3600", "--json"],
        ),
        p(
            "triage profile -F 99 -p <none>",
            &[
                triage, "profile", "-F", "99", "-d", "3600", "-p", "4194304", "--json",
            ],
        ),
        p(
            "perf record -F 99 -g -a",
            &[
                "perf", "record", "-F", "99", "-g", "-a", "-q", "-o", perf_out,
            ],
        ),
        p(
            "bpftrace profile:hz:99 stacks",
            &[
                "bpftrace",
                "-q",
                "-e",
                "profile:hz:99 { @[kstack, ustack, comm] = count(); }",
            ],
        ),
    ]
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let (mut runs, mut steps) = (5u64, 100_000u64);
    positive_options(
        args,
        "bench --profile",
        &mut [("--runs", &mut runs), ("--steps", &mut steps)],
    )?;
    let runs = runs as usize;
    deps::ensure_packages(&["linux-perf", "bpftrace"])?;
    let bin = util::build_release()?;
    let triage = bin.to_string_lossy().into_owned();
    let workload = bin.with_file_name("triage-workload");
    let tmp = std::env::temp_dir().join(format!("triage-bench-profile-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let perf_out = tmp.join("perf.data").to_string_lossy().into_owned();

    let mut ups = Vec::new();
    let mut walls = Vec::new();
    for _ in 0..runs {
        let (s, w) = startup(&triage, "profile")?;
        ups.push(s);
        walls.push(w);
    }
    println!(
        "triage profile start-up (median of {runs}): load+attach {:.1} ms; whole 0.1 s run {:.0} ms",
        median(ups.iter().copied()),
        median(walls.iter().copied())
    );

    let ps = profilers(&triage, &perf_out);
    let done = alternate(&ps, runs, "workload", || {
        let mut cmd = Command::new(&workload);
        cmd.args(["--now", "spin"]).arg(steps.to_string());
        cmd
    })?;
    let cpu: Vec<Vec<f64>> = done
        .iter()
        .map(|v| v.iter().map(|r| r.cpu).collect())
        .collect();
    let wall: Vec<Vec<f64>> = done
        .iter()
        .map(|v| v.iter().map(|r| r.wall).collect())
        .collect();
    let own: Vec<Vec<(f64, f64)>> = done
        .iter()
        .map(|v| v.iter().filter_map(|r| r.tracer).collect())
        .collect();
    let _ = std::fs::remove_dir_all(&tmp);
    let (bc, bw) = (median(cpu[0].clone()), median(wall[0].clone()));
    println!(
        "\nCPU-bound workload (triage-workload spin {steps}): medians of {runs} alternated rounds"
    );
    println!(
        "  {:<38} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "profiler", "CPU s", "slowdown", "wall s", "slowdown", "its CPU s", "its RSS"
    );
    for (i, p) in ps.iter().enumerate() {
        let (c, w) = (median(cpu[i].clone()), median(wall[i].clone()));
        let (oc, orss) = if own[i].is_empty() {
            ("-".to_string(), "-".to_string())
        } else {
            (
                format!("{:.3}", median(own[i].iter().map(|x| x.0))),
                format!("{:.1} MB", median(own[i].iter().map(|x| x.1))),
            )
        };
        println!(
            "  {:<38} {:>9.3} {:>8.2}% {:>9.3} {:>8.2}% {:>11} {:>9}",
            p.label,
            c,
            (c / bc - 1.0) * 100.0,
            w,
            (w / bw - 1.0) * 100.0,
            oc,
            orss
        );
    }
    let spread = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        (hi - lo) / median(v.iter().copied()) * 100.0
    };
    println!(
        "  (run-to-run spread without a profiler: CPU {:.1}%, wall {:.1}% of the median)",
        spread(&cpu[0]),
        spread(&wall[0])
    );
    println!("reproduce: cargo xtask bench --profile --runs {runs} --steps {steps}");
    Ok(ExitCode::SUCCESS)
}
