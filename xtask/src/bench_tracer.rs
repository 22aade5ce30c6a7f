//! What `bench --offcpu` and `bench --profile` share: the tracers/profilers they alternate
//! (started in their own process group, given time to attach, stopped with SIGINT and reaped
//! with their own CPU and peak RSS), triage's start-up as it reports it, and their options.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{measure, usage_err};

/// A tracer (or profiler) run alongside the workload; no argv: none.
pub struct Tracer {
    pub label: &'static str,
    pub argv: Vec<String>,
}

pub fn tracer(label: &'static str, argv: &[&str]) -> Tracer {
    Tracer {
        label,
        argv: argv.iter().map(|s| s.to_string()).collect(),
    }
}

/// Start a tracer in its own process group, and give it time to attach (triage: < 0.1 s;
/// perf: ~0.2 s; bpftrace compiles its script: ~1-2 s).
pub fn start(t: &Tracer) -> Result<Option<Child>> {
    if t.argv.is_empty() {
        return Ok(None);
    }
    let child = Command::new(&t.argv[0])
        .args(&t.argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", t.argv[0]))?;
    std::thread::sleep(Duration::from_millis(2500));
    Ok(Some(child))
}

/// SIGINT the tracer and reap it (SIGKILL after 30 s): its (CPU seconds, peak RSS in MB).
pub fn stop(c: Option<Child>) -> Option<(f64, f64)> {
    let c = c?;
    let pid = c.id() as libc::pid_t;
    // SAFETY: our own unreaped child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our unreaped child; status and ru are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: still our unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(c);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some((
        tv(ru.ru_utime) + tv(ru.ru_stime),
        ru.ru_maxrss as f64 / 1024.0,
    ))
}

/// One run of the workload under a tracer: its wall and CPU seconds (wait4), and the
/// tracer's own (CPU seconds, peak RSS in MB) when there was one.
pub struct Run {
    pub wall: f64,
    pub cpu: f64,
    pub tracer: Option<(f64, f64)>,
}

/// `runs` rounds of every tracer in turn, the order rotated every round so that drift does
/// not favour one: start it, run `workload()` (it must exit 0; `what` names it in the
/// error), stop it. The runs per tracer, indexed like `ts`.
pub fn alternate(
    ts: &[Tracer],
    runs: usize,
    what: &str,
    mut workload: impl FnMut() -> Command,
) -> Result<Vec<Vec<Run>>> {
    let mut out: Vec<Vec<Run>> = ts.iter().map(|_| Vec::new()).collect();
    for round in 0..runs {
        for k in 0..ts.len() {
            let i = (k + round) % ts.len();
            let tr = start(&ts[i])?;
            let mut cmd = workload();
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let u = measure::run_child(&mut cmd, Duration::from_secs(600));
            let tracer = stop(tr);
            let u = u?;
            if u.code != Some(0) {
                bail!("{what} failed under {}", ts[i].label);
            }
            out[i].push(Run {
                wall: u.wall.as_secs_f64(),
                cpu: u.cpu.as_secs_f64(),
                tracer,
            });
        }
    }
    Ok(out)
}

/// `triage VIEW --duration 0.1 --json`: the probe's load + attach as the report gives it
/// (`sections.VIEW.probe.startup_ms`), and the whole run's wall time, in ms.
pub fn startup(triage: &str, view: &str) -> Result<(f64, f64)> {
    let t0 = Instant::now();
    let out = Command::new(triage)
        .args([view, "--duration", "0.1", "--json"])
        .output()?;
    let wall = t0.elapsed().as_secs_f64() * 1000.0;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
    let s = v["sections"][view]["probe"]["startup_ms"]
        .as_f64()
        .unwrap_or(f64::NAN);
    Ok((s, wall))
}

/// Options that each take a positive number (`--runs N`), into `opts`; `what` names the
/// bench in the error for an unknown one.
pub fn positive_options(args: &[String], what: &str, opts: &mut [(&str, &mut u64)]) -> Result<()> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some((name, value)) = opts.iter_mut().find(|(n, _)| *n == a.as_str()) else {
            return usage_err(format!("{what}: unknown option {a}"));
        };
        match it.next().map(|v| v.parse::<u64>()) {
            Some(Ok(v)) if v > 0 => **value = v,
            _ => return usage_err(format!("{name} needs a positive number")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn positive_options_set_what_is_named_and_refuse_the_rest() {
        let (mut runs, mut steps) = (5u64, 100u64);
        positive_options(
            &args(&["--steps", "7"]),
            "bench --x",
            &mut [("--runs", &mut runs), ("--steps", &mut steps)],
        )
        .unwrap();
        assert_eq!((runs, steps), (5, 7));
        for bad in [
            &["--runs", "0"][..],
            &["--runs"],
            &["--runs", "x"],
            &["--loops", "3"],
        ] {
            let e = positive_options(&args(bad), "bench --x", &mut [("--runs", &mut runs)]);
            assert!(e.is_err(), "{bad:?}");
        }
        assert_eq!(runs, 5);
    }
}
