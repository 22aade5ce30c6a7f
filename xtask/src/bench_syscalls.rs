//! `cargo xtask bench --syscalls [--runs N] [--calls N]`: what tracing syscalls costs the
//! traced. Not a timed test: a measurement to read.
//!
//! Three workloads with a fixed amount of work (N `getppid` calls, N zero-byte `read`s, and
//! `dd if=/dev/zero of=/dev/null bs=1 count=N`, i.e. 2N syscalls) are timed untraced and
//! under each tracer: `triage syscalls` (count mode and latency mode), `strace -c -f`,
//! `perf trace -s`, a bpftrace one-liner counting `raw_syscalls:sys_enter` by pid and id, and
//! libbpf-tools `syscount` (count and `-L` latency), and a floor: triage's exit program
//! attached but returning at its pid check (`--pid 1`), i.e. the raw tracepoint's own cost. Subjects alternate within each round
//! (round r starts at subject r) so drifts of this shared machine spread over all of them.
//! Slowdown = median wall time traced / median untraced. It also checks triage's count for
//! the getppid workload is exact, and reports triage's load+attach time and peak RSS.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{deps, util};

struct Opts {
    runs: usize,
    calls: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Subject {
    Untraced,
    TriageCount,
    TriageLatency,
    /// triage's programs attached but returning at the pid check: the tracepoint's own cost.
    TriageFloor,
    Strace,
    PerfTrace,
    Bpftrace,
    Syscount,
    SyscountLatency,
}

const SUBJECTS: [Subject; 9] = [
    Subject::Untraced,
    Subject::TriageCount,
    Subject::TriageLatency,
    Subject::TriageFloor,
    Subject::Strace,
    Subject::PerfTrace,
    Subject::Bpftrace,
    Subject::Syscount,
    Subject::SyscountLatency,
];

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::Untraced => "untraced",
            Subject::TriageCount => "triage syscalls --no-latency",
            Subject::TriageLatency => "triage syscalls (latency)",
            Subject::TriageFloor => "floor: triage --no-latency --pid 1",
            Subject::Strace => "strace -c -f",
            Subject::PerfTrace => "perf trace -s -a",
            Subject::Bpftrace => "bpftrace @[pid, args->id] = count()",
            Subject::Syscount => "syscount (libbpf-tools)",
            Subject::SyscountLatency => "syscount -L (libbpf-tools)",
        }
    }
}

const WORKLOADS: [&str; 3] = ["getppid loop", "read(0 bytes) loop", "dd bs=1"];

/// A tracer running in the background while workloads run.
struct Tracer {
    child: Child,
    out: PathBuf,
}

/// Wait until a tracer says it is attached; a tracer that never says so gets 3 s more and a
/// warning (its figure may then include some untraced time).
/// A tracer left running would skew every later measurement (and hide events from perf, for
/// those whose programs return 0): on every early return it is killed and reaped.
impl Drop for Tracer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_for(path: &Path, marker: &str, timeout: Duration) -> Result<()> {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(marker)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "xtask: warning: {} never printed `{marker}`; continuing after 3 s more",
        path.display()
    );
    std::thread::sleep(Duration::from_secs(3));
    Ok(())
}

/// SIGINT, then reap with wait4: (exit code, peak RSS in KiB).
fn stop(t: Tracer) -> Result<(Option<i32>, u64)> {
    let pid = t.child.id() as libc::pid_t;
    // SAFETY: our own unreaped child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let mut status = 0;
    // SAFETY: zeroed rusage is valid; pid is our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        bail!("wait4 failed for tracer {pid}");
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let _ = &t.out;
    Ok((code, ru.ru_maxrss as u64))
}

fn spawn_bg(argv: &[&str], dir: &Path, name: &str) -> Result<Tracer> {
    let out = dir.join(format!("{name}.out"));
    let err = dir.join(format!("{name}.err"));
    let child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(&err)?)
        .spawn()
        .with_context(|| format!("cannot start {}", argv.join(" ")))?;
    Ok(Tracer { child, out })
}

struct Ctx {
    triage: PathBuf,
    workload: PathBuf,
    dir: PathBuf,
    calls: u64,
}

impl Ctx {
    fn workload_argv(&self, w: usize) -> Vec<String> {
        let n = self.calls.to_string();
        let wl = self.workload.display().to_string();
        match w {
            0 => vec![wl, "--now".into(), "getppid".into(), n],
            1 => vec![wl, "--now".into(), "read0".into(), n],
            _ => vec![
                "dd".into(),
                "if=/dev/zero".into(),
                "of=/dev/null".into(),
                "bs=1".into(),
                format!("count={n}"),
            ],
        }
    }

    /// Run workload `w`, wrapped by `wrap` (strace), and return (wall s, CPU s, pid). CPU is
    /// user + system of the workload (and its reaped children) from wait4: steadier than wall
    /// time on a shared machine, but blind to time spent waiting for a tracer (strace).
    fn run_workload(&self, w: usize, wrap: &[&str]) -> Result<(f64, f64, u32)> {
        let argv = self.workload_argv(w);
        let mut cmd = if wrap.is_empty() {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        } else {
            let mut c = Command::new(wrap[0]);
            c.args(&wrap[1..]).args(&argv);
            c
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let start = Instant::now();
        let mut child = cmd.spawn().context("cannot start workload")?;
        let pid = child.id();
        let mut status = 0;
        // SAFETY: zeroed rusage is valid; pid is our own unreaped child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut ru) };
        let wall = start.elapsed().as_secs_f64();
        let _ = child.try_wait();
        if r != pid as libc::pid_t || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            bail!("workload {} failed (status {status})", argv.join(" "));
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        // With a wrapper (strace), the wrapper's own CPU is included: it is part of the cost.
        let cpu = secs(ru.ru_utime) + secs(ru.ru_stime);
        Ok((wall, cpu, pid))
    }
}

/// Per subject and workload, the (wall, CPU) times of every round.
type Times = Vec<Vec<Vec<(f64, f64)>>>;

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let mut o = Opts {
        runs: 3,
        calls: 300_000,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => o.runs = util::parse_value("--runs", it.next())?,
            "--calls" => o.calls = util::parse_value("--calls", it.next())?,
            other => return crate::usage_err(format!("bench --syscalls: unknown option {other}")),
        }
    }
    deps::ensure(true)?;
    deps::ensure_packages(deps::BENCH_SYSCALLS)?;
    let triage = util::build_release()?;
    let workload = triage.with_file_name("triage-workload");
    if !workload.is_file() {
        bail!("{} was not built", workload.display());
    }
    let dir = util::target_dir()?.join("bench").join("syscalls");
    std::fs::create_dir_all(&dir)?;
    let cx = Ctx {
        triage,
        workload,
        dir,
        calls: o.calls,
    };
    let have = |bin: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let subjects: Vec<Subject> = SUBJECTS
        .iter()
        .copied()
        .filter(|s| match s {
            Subject::Strace => have("strace"),
            Subject::PerfTrace => have("perf"),
            Subject::Bpftrace => have("bpftrace"),
            Subject::Syscount | Subject::SyscountLatency => have("syscount"),
            _ => true,
        })
        .collect();
    let mut times: Times = vec![vec![Vec::new(); WORKLOADS.len()]; subjects.len()];
    let mut startup_ms = Vec::new();
    let mut rss_kb = Vec::new();
    let mut exact = Vec::new();
    // Warm-up: page cache, binaries.
    for w in 0..WORKLOADS.len() {
        cx.run_workload(w, &[])?;
    }
    for round in 0..o.runs {
        for k in 0..subjects.len() {
            let si = (round + k) % subjects.len();
            let s = subjects[si];
            eprintln!("xtask: round {}/{}: {}", round + 1, o.runs, s.label());
            let r = measure_subject(&cx, s)?;
            for (w, t) in r.walls.iter().enumerate() {
                times[si][w].push(*t);
            }
            if let Some(ms) = r.startup_ms {
                startup_ms.push(ms);
            }
            if let Some(kb) = r.rss_kb {
                rss_kb.push(kb as f64);
            }
            if let Some(e) = r.exact {
                exact.push(e);
            }
        }
    }
    let med = |si: usize, w: usize, cpu: bool| {
        let v: Vec<f64> = times[si][w]
            .iter()
            .map(|t| if cpu { t.1 } else { t.0 })
            .collect();
        median(&v)
    };
    for (cpu, what) in [(false, "wall time"), (true, "CPU time (user+sys)")] {
        println!(
            "\nslowdown of the traced workload, {what} (median of {} runs); untraced, {} calls: {}",
            o.runs,
            o.calls,
            (0..WORKLOADS.len())
                .map(|w| format!("{} {:.0} ms", WORKLOADS[w], med(0, w, cpu) * 1000.0))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "{:<40} {:>14} {:>20} {:>10}",
            "tracer", WORKLOADS[0], WORKLOADS[1], WORKLOADS[2]
        );
        for (si, s) in subjects.iter().enumerate() {
            let cells: Vec<String> = (0..WORKLOADS.len())
                .map(|w| format!("{:.2}x", med(si, w, cpu) / med(0, w, cpu)))
                .collect();
            println!(
                "{:<40} {:>14} {:>20} {:>10}",
                s.label(),
                cells[0],
                cells[1],
                cells[2]
            );
        }
    }
    println!(
        "\ntriage: load+attach median {:.1} ms (max {:.1}), peak RSS median {:.1} MB (max {:.1}), \
         getppid count exact in {}/{} runs",
        median(&startup_ms),
        startup_ms.iter().cloned().fold(0.0, f64::max),
        median(&rss_kb) / 1024.0,
        rss_kb.iter().cloned().fold(0.0, f64::max) / 1024.0,
        exact.iter().filter(|e| **e).count(),
        exact.len()
    );
    println!(
        "reproduce: cargo xtask bench --syscalls --runs {} --calls {}",
        o.runs, o.calls
    );
    Ok(ExitCode::SUCCESS)
}

struct SubjectResult {
    walls: Vec<(f64, f64)>,
    startup_ms: Option<f64>,
    rss_kb: Option<u64>,
    exact: Option<bool>,
}

fn measure_subject(cx: &Ctx, s: Subject) -> Result<SubjectResult> {
    let mut res = SubjectResult {
        walls: Vec::new(),
        startup_ms: None,
        rss_kb: None,
        exact: None,
    };
    let dir = &cx.dir;
    let triage = cx.triage.display().to_string();
    let bg = match s {
        Subject::TriageCount | Subject::TriageLatency | Subject::TriageFloor => {
            let mut argv = vec![triage.as_str(), "syscalls", "--duration", "3600", "--json"];
            if s != Subject::TriageLatency {
                argv.push("--no-latency");
            }
            // The floor: the same exit program attached, returning at the pid check (pid 1
            // makes next to no syscalls): what the tracepoint costs before triage counts.
            if s == Subject::TriageFloor {
                argv.extend(["--pid", "1"]);
            }
            let t = spawn_bg(&argv, dir, "triage")?;
            wait_for(
                &dir.join("triage.err"),
                "tracing syscalls",
                Duration::from_secs(30),
            )?;
            Some(t)
        }
        Subject::PerfTrace => {
            let t = spawn_bg(
                &["perf", "trace", "-s", "-a", "-o", "/dev/null"],
                dir,
                "perf",
            )?;
            // perf trace prints nothing when ready: give it time to open every event.
            std::thread::sleep(Duration::from_secs(3));
            Some(t)
        }
        Subject::Bpftrace => {
            let t = spawn_bg(
                &[
                    "bpftrace",
                    "-e",
                    "tracepoint:raw_syscalls:sys_enter { @[pid, args->id] = count(); }",
                ],
                dir,
                "bpftrace",
            )?;
            wait_for(
                &dir.join("bpftrace.out"),
                "Attaching",
                Duration::from_secs(30),
            )?;
            std::thread::sleep(Duration::from_millis(500));
            Some(t)
        }
        Subject::Syscount | Subject::SyscountLatency => {
            // stdbuf: syscount's "Tracing..." line must reach the file before it is read.
            let mut argv = vec!["stdbuf", "-oL", "syscount"];
            if s == Subject::SyscountLatency {
                argv.push("-L");
            }
            let t = spawn_bg(&argv, dir, "syscount")?;
            wait_for(
                &dir.join("syscount.out"),
                "Tracing",
                Duration::from_secs(30),
            )?;
            Some(t)
        }
        Subject::Untraced | Subject::Strace => None,
    };
    let wrap: &[&str] = if s == Subject::Strace {
        &["strace", "-c", "-f", "-o", "/dev/null"]
    } else {
        &[]
    };
    let mut getppid_pid = 0;
    for w in 0..WORKLOADS.len() {
        let (wall, cpu, pid) = cx.run_workload(w, wrap)?;
        if w == 0 {
            getppid_pid = pid;
        }
        res.walls.push((wall, cpu));
    }
    if let Some(t) = bg {
        let (_, rss) = stop(t)?;
        if matches!(s, Subject::TriageCount | Subject::TriageLatency) {
            res.rss_kb = Some(rss);
            let j: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("triage.out"))?)
                    .context("triage output is not JSON")?;
            let sc = &j["sections"]["syscalls"];
            res.startup_ms = sc["startup_ms"].as_f64();
            let got = sc["breakdown"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|b| b["pid"] == getppid_pid && b["syscall"] == "getppid")
                .and_then(|b| b["calls"].as_u64());
            res.exact = Some(got == Some(cx.calls));
            if got != Some(cx.calls) {
                eprintln!(
                    "xtask: triage counted {got:?} getppid calls, expected {}",
                    cx.calls
                );
            }
        }
    }
    Ok(res)
}
