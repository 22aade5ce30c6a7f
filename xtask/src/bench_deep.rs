//! `cargo xtask bench --deep [--runs N] [--duration SECS] [--procs N] [--sockets N]`: the deep
//! dives under load.
//!
//! With N extra sleeping processes and M loopback TCP sockets (M/2 established connections,
//! both ends held open by helper processes, since one process may not hold that many fds),
//! each of `triage cpu|mem|disk|net --json` runs alternately with the classic tools that answer
//! the same questions (`pidstat -u -w -t`, `pidstat -r`, `pidstat -d`, `ps -eLf`, `ss -tan`,
//! `ss -s`). Goal: each report is ready within its window + 0.5 s. Medians over the rounds;
//! every helper and sleeper is gone when the bench returns (on error too).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bench::median;
use crate::measure;
use crate::sleepers::Sleepers;
use crate::util;

/// Goal from the issue: report ready within the window + this.
const TARGET_OVERHEAD_S: f64 = 0.5;
/// Sockets per helper process (each end is an fd: stays well under a 20,000 RLIMIT_NOFILE).
const SOCKETS_PER_HELPER: usize = 12_500;

struct Opts {
    runs: usize,
    duration: f64,
    procs: usize,
    sockets: usize,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        runs: 5,
        duration: 2.0,
        procs: 5000,
        sockets: 50_000,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--deep" => {}
            "--runs" => o.runs = util::parse_value("--runs", it.next())?,
            "--duration" => o.duration = util::parse_value("--duration", it.next())?,
            "--procs" => o.procs = util::parse_value("--procs", it.next())?,
            "--sockets" => o.sockets = util::parse_value("--sockets", it.next())?,
            a => return crate::usage_err(format!("bench --deep: unexpected argument `{a}`")),
        }
    }
    if o.runs == 0 || o.duration.is_nan() || o.duration <= 0.0 {
        return crate::usage_err("--runs must be at least 1 and --duration positive");
    }
    Ok(o)
}

/// A helper process holding `n` loopback sockets (n/2 connections) until its stdin closes.
struct SocketHolder(Child);

impl SocketHolder {
    fn spawn(n: usize) -> Result<Self> {
        // /proc/self/exe: this very binary, even if a rebuild replaced the file meanwhile.
        let mut cmd = Command::new("/proc/self/exe");
        cmd.args(["__hold-sockets", &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("cannot start a socket holder")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("holder stdout")?).read_line(&mut line)?;
        if !line.starts_with("ready") {
            let _ = child.kill();
            let _ = child.wait();
            bail!("socket holder failed: `{}`", line.trim());
        }
        Ok(SocketHolder(child))
    }
}

impl Drop for SocketHolder {
    fn drop(&mut self) {
        // EOF on stdin ends it; a kill if it does not go.
        drop(self.0.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `xtask __hold-sockets N`: open N/2 loopback connections (both ends here), say `ready`,
/// hold them until stdin is closed.
pub fn hold_sockets(args: &[String]) -> Result<ExitCode> {
    let n: usize = util::parse_value("N", args.first())?;
    raise_nofile();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut held = Vec::with_capacity(n);
    for _ in 0..n / 2 {
        let c = TcpStream::connect(addr).context("connect")?;
        let (s, _) = listener.accept().context("accept")?;
        held.push(c);
        held.push(s);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {}", held.len())?;
    out.flush()?;
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(ExitCode::SUCCESS)
}

fn raise_nofile() {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// One subject: a label, argv, and whether it is triage (then its JSON window is parsed).
struct Subject {
    label: String,
    argv: Vec<String>,
    triage: bool,
}

#[derive(Clone, Copy)]
struct Sample {
    wall_s: f64,
    cpu_ms: f64,
    elapsed_s: Option<f64>,
}

fn measure_one(s: &Subject, work: &std::path::Path) -> Result<Sample> {
    let out = work.join("deep.out");
    let mut cmd = Command::new(&s.argv[0]);
    cmd.args(&s.argv[1..])
        .stdin(Stdio::null())
        .stdout(File::create(&out)?)
        .stderr(Stdio::null());
    let u = measure::run_child(&mut cmd, Duration::from_secs(180))?;
    if s.triage && u.code != Some(0) {
        bail!("`{}` exited with {:?}", s.label, u.code);
    }
    let elapsed_s = if s.triage {
        let v: Value = serde_json::from_slice(&std::fs::read(&out)?)
            .with_context(|| format!("{}: invalid JSON", s.label))?;
        v["window"]["elapsed_s"].as_f64()
    } else {
        None
    };
    Ok(Sample {
        wall_s: u.wall.as_secs_f64(),
        cpu_ms: u.cpu.as_secs_f64() * 1e3,
        elapsed_s,
    })
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let o = parse(args)?;
    let bin = util::build_release()?;
    let work: PathBuf = util::target_dir()?.join("bench").join("work");
    std::fs::create_dir_all(&work)?;
    let b = bin.display().to_string();
    let d = o.duration.to_string();
    let pidstat_s = o.duration.round().max(1.0).to_string();
    let mut subjects: Vec<Subject> = Vec::new();
    for c in ["cpu", "mem", "disk", "net"] {
        subjects.push(Subject {
            label: format!("triage {c} --json"),
            argv: vec![
                b.clone(),
                c.into(),
                "--json".into(),
                "--duration".into(),
                d.clone(),
            ],
            triage: true,
        });
    }
    let classic: &[(&str, &[&str])] = &[
        ("pidstat -u -w -t S 1", &["pidstat", "-u", "-w", "-t"]),
        ("pidstat -r S 1", &["pidstat", "-r"]),
        ("pidstat -d S 1", &["pidstat", "-d"]),
        ("ps -eLf", &["ps", "-eLf"]),
        ("ss -tan", &["ss", "-tan"]),
        ("ss -s", &["ss", "-s"]),
    ];
    for (label, argv) in classic {
        let mut v: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        if argv[0] == "pidstat" {
            v.push(pidstat_s.clone());
            v.push("1".into());
        }
        subjects.push(Subject {
            label: label.replace('S', &pidstat_s),
            argv: v,
            triage: false,
        });
    }

    eprintln!("xtask: bench --deep: starting {} sleepers", o.procs);
    let sleepers = if o.procs > 0 {
        Some(Sleepers::spawn(o.procs)?)
    } else {
        None
    };
    let mut holders = Vec::new();
    let mut left = o.sockets;
    let started = Instant::now();
    while left > 0 {
        let n = left.min(SOCKETS_PER_HELPER);
        holders.push(SocketHolder::spawn(n)?);
        left -= n;
    }
    eprintln!(
        "xtask: bench --deep: {} loopback sockets open in {:.1} s",
        o.sockets,
        started.elapsed().as_secs_f64()
    );
    let n = subjects.len();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); n];
    let result = (|| -> Result<()> {
        for r in 0..=o.runs {
            eprintln!("xtask: bench --deep: round {r}/{} (0 = warm-up)", o.runs);
            for k in 0..n {
                let i = (r + k) % n;
                let s = measure_one(&subjects[i], &work)?;
                if r > 0 {
                    samples[i].push(s);
                }
            }
        }
        Ok(())
    })();
    drop(holders);
    if let Some(s) = sleepers {
        s.finish()?;
    }
    result?;

    let mut t = String::new();
    t.push_str(&format!(
        "triage bench --deep: {} runs (medians), window {} s, +{} sleeping processes, +{} loopback TCP sockets\n",
        o.runs, o.duration, o.procs, o.sockets
    ));
    t.push_str(&format!(
        "  {:<28} {:>8} {:>9} {:>11} {:>8}\n",
        "subject", "wall s", "cpu ms", "overhead s", "goal"
    ));
    let mut rows = Vec::new();
    let mut all_ok = true;
    for (s, v) in subjects.iter().zip(&samples) {
        let wall = median(v.iter().map(|x| x.wall_s));
        let cpu = median(v.iter().map(|x| x.cpu_ms));
        let overhead = s
            .triage
            .then(|| median(v.iter().filter_map(|x| Some(x.wall_s - x.elapsed_s?))));
        let verdict = match overhead {
            Some(ov) if ov <= TARGET_OVERHEAD_S => "PASS",
            Some(_) => {
                all_ok = false;
                "MISS"
            }
            None => "",
        };
        t.push_str(&format!(
            "  {:<28} {:>8.3} {:>9.1} {:>11} {:>8}\n",
            s.label,
            wall,
            cpu,
            overhead
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "-".into()),
            verdict
        ));
        rows.push(json!({"subject": s.label, "wall_s": wall, "cpu_ms": cpu, "overhead_s": overhead,
            "samples": v.iter().map(|x| json!({"wall_s": x.wall_s, "cpu_ms": x.cpu_ms, "elapsed_s": x.elapsed_s})).collect::<Vec<_>>()}));
    }
    t.push_str(&format!(
        "  goal: each report within its window + {TARGET_OVERHEAD_S} s (pidstat's wall includes its {pidstat_s} s interval)\n"
    ));
    let reproduce = format!(
        "cargo xtask bench --deep --runs {} --duration {} --procs {} --sockets {}",
        o.runs, o.duration, o.procs, o.sockets
    );
    t.push_str(&format!("  reproduce: {reproduce}\n"));
    print!("{t}");
    let path = util::target_dir()?.join("bench").join("deep.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(
            &json!({"reproduce": reproduce, "subjects": rows, "all_within_goal": all_ok}),
        )?,
    )?;
    eprintln!("xtask: results in {}", path.display());
    Ok(ExitCode::SUCCESS)
}
