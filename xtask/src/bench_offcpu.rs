//! `cargo xtask bench --offcpu [--runs N] [--loops N] [--forks N]`: what tracing the
//! scheduler costs. Two workloads — `taskset -c 0 perf bench sched pipe -l N` (two tasks
//! ping-ponging on one CPU: a context switch every few microseconds) and a fork-heavy shell
//! loop — each run with no tracer, `triage offcpu`, triage's run-queue latency probe,
//! libbpf-tools `offcputime` and `runqlat`, and bpftrace sched_switch scripts (with and
//! without stacks). Tracers are alternated round-robin within each round; the figure is the
//! median wall time over rounds, as a slowdown against the median without tracer.
//! Also: triage offcpu's start-up (load + attach) as it reports it.

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{deps, usage_err, util};

struct Tracer {
    label: &'static str,
    argv: Vec<String>,
}

fn tracers(triage: &str) -> Vec<Tracer> {
    let t = |label, argv: &[&str]| Tracer {
        label,
        argv: argv.iter().map(|s| s.to_string()).collect(),
    };
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
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn start(t: &Tracer) -> Result<Option<Child>> {
    if t.argv.is_empty() {
        return Ok(None);
    }
    let child = Command::new(&t.argv[0])
        .args(&t.argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", t.argv[0]))?;
    // Attached well within this (triage: < 0.1 s; bpftrace compiles its script: ~1-2 s).
    std::thread::sleep(Duration::from_millis(2500));
    Ok(Some(child))
}

fn stop(c: Option<Child>) {
    if let Some(mut c) = c {
        unsafe {
            libc::kill(c.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn startup_ms(triage: &str) -> Result<(f64, f64)> {
    let t0 = Instant::now();
    let out = Command::new(triage)
        .args(["offcpu", "--duration", "0.1", "--json"])
        .output()?;
    let wall = t0.elapsed().as_secs_f64() * 1000.0;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
    let s = v["sections"]["offcpu"]["probe"]["startup_ms"]
        .as_f64()
        .unwrap_or(f64::NAN);
    Ok((s, wall))
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let (mut runs, mut loops, mut forks) = (5usize, 200_000u64, 2000u64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64> {
            match it.next().map(|v| v.parse::<u64>()) {
                Some(Ok(v)) if v > 0 => Ok(v),
                _ => usage_err(format!("{name} needs a positive number")),
            }
        };
        match a.as_str() {
            "--runs" => runs = num("--runs")? as usize,
            "--loops" => loops = num("--loops")?,
            "--forks" => forks = num("--forks")?,
            other => return usage_err(format!("bench --offcpu: unknown option {other}")),
        }
    }
    deps::ensure_packages(&["linux-perf", "libbpf-tools", "bpftrace", "util-linux"])?;
    let bin = util::build_release()?;
    let triage = bin.to_string_lossy().into_owned();
    let (s, wall) = startup_ms(&triage)?;
    println!("triage offcpu start-up: load+attach {s:.1} ms; whole 0.1 s run {wall:.0} ms");
    let ts = tracers(&triage);
    for kind in ["pipe", "fork"] {
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); ts.len()];
        for round in 0..runs {
            // Rotate the order every round, so drift does not favour one tracer.
            for k in 0..ts.len() {
                let i = (k + round) % ts.len();
                let tr = start(&ts[i])?;
                let t0 = Instant::now();
                let st = workload(kind, loops, forks).status()?;
                let el = t0.elapsed().as_secs_f64();
                stop(tr);
                if !st.success() {
                    bail!("{kind} workload failed under {}", ts[i].label);
                }
                times[i].push(el);
            }
        }
        let base = median(times[0].clone());
        let what = if kind == "pipe" {
            format!("taskset -c 0 perf bench sched pipe -l {loops}")
        } else {
            format!("fork loop: {forks} x /bin/true from sh")
        };
        println!("\n{what}: medians of {runs} alternated runs");
        for (t, v) in ts.iter().zip(&times) {
            let m = median(v.clone());
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
