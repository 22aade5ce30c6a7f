//! `cargo xtask bench --fleet [--reports N] [--runs N]`: `triage fleet` over N report files
//! against `jq -s` reading the same files in the same run (rounds alternate which goes first;
//! medians), and memory: triage streams, keeping only a small row per host, so its peak RSS
//! grows by far less than a report per report (measured at N and N/10), while `jq -s` holds
//! every document.
//!
//! The reports are real: `triage sixty-second --fixture X --json` of the recorded fixtures,
//! each copy given its own hostname.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{deps, util};

const FIXTURES: &[&str] = &[
    "idle",
    "cpu-saturation",
    "net-retransmits",
    "disk-saturation",
    "memory-pressure-swap",
    "cgroup-cpu-throttle",
    "deep-idle",
    "listen-overflow",
];

/// What jq does in the comparison: the least a ranking needs (every document parsed, the
/// worst severity and score per host, sorted).
const JQ_PROGRAM: &str = r#"[.[] | {host: .host.hostname,
  worst: ([.findings[].severity | {"critical": 3, "warning": 2, "info": 1}[.]] | max // 0),
  score: ([.findings[].score] | max // 0)}] | sort_by(-.worst, -.score)"#;

struct Run {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: i64,
}

/// Spawns `cmd` (stdout to /dev/null) and returns wall, CPU and peak RSS from wait4.
fn measure(cmd: &mut Command) -> Result<Run> {
    let shown = util::display(cmd);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; status and ru are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            bail!("wait4 on `{shown}` failed: {err}");
        }
    }
    let wall = start.elapsed();
    drop(child);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("`{shown}` failed (status {status})");
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(Run {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss,
    })
}

fn median<T: Copy + PartialOrd>(v: &mut [T]) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// N report files in `dir` (`host-0000.json`, ...), each a real report with its own hostname.
fn make_reports(bin: &Path, dir: &Path, n: usize) -> Result<u64> {
    let mut bases = Vec::new();
    for f in FIXTURES {
        let fx = util::root().join("fixtures").join(f);
        let out = Command::new(bin)
            .args(["sixty-second", "--json", "--fixture"])
            .arg(&fx)
            .output()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        if !out.status.success() {
            bail!("triage sixty-second --fixture {f} failed");
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        bases.push(v);
    }
    std::fs::create_dir_all(dir)?;
    let mut bytes = 0;
    for i in 0..n {
        let mut v = bases[i % bases.len()].clone();
        v["host"]["hostname"] = format!("host-{i:04}").into();
        let text = serde_json::to_string_pretty(&v)? + "\n";
        bytes += text.len() as u64;
        std::fs::write(dir.join(format!("host-{i:04}.json")), text)?;
    }
    Ok(bytes)
}

fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    v.sort();
    Ok(v)
}

pub fn run(args: &[String]) -> Result<std::process::ExitCode> {
    let mut reports = 1000usize;
    let mut runs = 5usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--fleet" => {}
            "--reports" => reports = util::parse_value("--reports", it.next())?,
            "--runs" => runs = util::parse_value("--runs", it.next())?,
            other => return crate::usage_err(format!("bench --fleet: unknown argument `{other}`")),
        }
    }
    if reports < 10 || runs == 0 {
        return crate::usage_err("bench --fleet: --reports >= 10 and --runs >= 1");
    }
    deps::ensure_packages(&["jq"])?;
    let bin = util::build_release()?;
    let tmp = std::env::temp_dir().join(format!("triage-bench-fleet-{}", std::process::id()));
    let result = bench(&bin, &tmp, reports, runs);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn bench(bin: &Path, tmp: &Path, n: usize, runs: usize) -> Result<std::process::ExitCode> {
    let big = tmp.join("n");
    let small = tmp.join("n10");
    let bytes = make_reports(bin, &big, n)?;
    make_reports(bin, &small, n / 10)?;
    let big_files = files(&big)?;
    let small_files = files(&small)?;
    eprintln!(
        "xtask: {n} reports, {:.1} MB ({:.1} kB each); {runs} alternated rounds",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64 / 1e3
    );
    let fleet = |dir: &Path| {
        let mut c = Command::new(bin);
        c.args(["fleet", "--json"]).arg(dir);
        c
    };
    let jq = |fs: &[PathBuf]| {
        let mut c = Command::new("jq");
        c.args(["-s", JQ_PROGRAM]).args(fs);
        c
    };
    // Warm the page cache for both.
    measure(&mut fleet(&big))?;
    measure(&mut jq(&big_files))?;
    let (mut fw, mut fc, mut fr, mut jw, mut jc, mut jr) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut fr10, mut jr10) = (vec![], vec![]);
    for round in 0..runs {
        let order: [bool; 2] = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for triage_first in order {
            if triage_first {
                let r = measure(&mut fleet(&big))?;
                fw.push(r.wall.as_secs_f64());
                fc.push(r.cpu.as_secs_f64());
                fr.push(r.max_rss_kb);
                fr10.push(measure(&mut fleet(&small))?.max_rss_kb);
            } else {
                let r = measure(&mut jq(&big_files))?;
                jw.push(r.wall.as_secs_f64());
                jc.push(r.cpu.as_secs_f64());
                jr.push(r.max_rss_kb);
                jr10.push(measure(&mut jq(&small_files))?.max_rss_kb);
            }
        }
    }
    let (fw, fc, fr, fr10) = (
        median(&mut fw),
        median(&mut fc),
        median(&mut fr),
        median(&mut fr10),
    );
    let (jw, jc, jr, jr10) = (
        median(&mut jw),
        median(&mut jc),
        median(&mut jr),
        median(&mut jr10),
    );
    println!(
        "bench --fleet: {n} reports ({:.1} MB), medians of {runs} alternated rounds",
        bytes as f64 / 1e6
    );
    println!(
        "{:<28} {:>9} {:>9} {:>14} {:>14}",
        "subject",
        "wall s",
        "CPU s",
        "peak RSS MB",
        format!("RSS at {} MB", n / 10)
    );
    println!(
        "{:<28} {:>9.3} {:>9.3} {:>14.1} {:>14.1}",
        "triage fleet --json",
        fw,
        fc,
        fr as f64 / 1024.0,
        fr10 as f64 / 1024.0
    );
    println!(
        "{:<28} {:>9.3} {:>9.3} {:>14.1} {:>14.1}",
        "jq -s (rank by worst)",
        jw,
        jc,
        jr as f64 / 1024.0,
        jr10 as f64 / 1024.0
    );
    println!(
        "ratio jq/triage: wall {:.1}x, CPU {:.1}x, peak RSS {:.1}x",
        jw / fw,
        jc / fc,
        jr as f64 / fr as f64
    );
    // Growth per extra report between N/10 and N: what is kept per host (its row for the
    // output), against the size of a report (what holding the reports would cost).
    let extra = (n - n / 10) as f64;
    let per_report_kb = bytes as f64 / n as f64 / 1024.0;
    let triage_growth = (fr - fr10) as f64 / extra;
    let jq_growth = (jr - jr10) as f64 / extra;
    println!(
        "memory: +{triage_growth:.1} kB per extra report for triage (its host row), \
         +{jq_growth:.1} kB for jq -s; a report is {per_report_kb:.1} kB"
    );
    let flat = triage_growth < per_report_kb / 4.0;
    println!(
        "target: {n} reports <= 1 s: {}; streamed (growth per report < 1/4 of a report): {}",
        if fw <= 1.0 { "met" } else { "NOT met" },
        if flat { "met" } else { "NOT met" }
    );
    Ok(std::process::ExitCode::SUCCESS)
}
