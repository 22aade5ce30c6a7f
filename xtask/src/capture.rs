//! `cargo xtask capture NAME|all [--duration SECS]`: record fixtures of real faults.
//!
//! The shared scenario scripts (`$TRIAGE_SHARED/scenarios`, default `<repo>/../shared`) start a
//! fault, prove it with standard tools, and clean up; `run.sh` runs our command in the middle.
//! Our command is `triage capture`, which writes exactly what it read into `fixtures/NAME`, so a
//! fixture is a faithful recording of a machine that verifiably had the fault.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};

use crate::{deps, util};

/// The scenarios `triage capture` can record (the eBPF-only ones need probes it does not
/// record).
pub const SCENARIOS: &[&str] = &[
    "idle",
    "cpu-saturation",
    "cgroup-cpu-throttle",
    "memory-pressure-swap",
    "disk-saturation",
    "net-retransmits",
];

/// Fixtures recorded by `triage syscalls --record` (the /proc files plus the syscall probe's
/// output), as (fixture name, scenario script).
pub const SYSCALL_SCENARIOS: &[(&str, &str)] = &[
    ("syscall-storm", "syscall-storm"),
    ("futex-lock-contention", "offcpu-lock-contention"),
];

/// Seconds the fault runs before the capture starts, so it is at steady state.
const WARMUP_S: &str = "5";

/// Parses `NAME|all [--duration SECS]`, builds once, then captures each scenario in turn.
pub fn run(args: &[String]) -> Result<ExitCode> {
    let mut name = None;
    let mut duration = "2".to_string();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--duration" => {
                let secs: f64 = util::parse_value("--duration", it.next())?;
                if secs.is_nan() || secs <= 0.0 {
                    return crate::usage_err("--duration must be positive");
                }
                duration = secs.to_string();
            }
            a if !a.starts_with('-') && name.is_none() => name = Some(a.to_string()),
            a => return crate::usage_err(format!("capture: unexpected argument `{a}`")),
        }
    }
    let Some(name) = name else {
        return crate::usage_err("capture: missing scenario NAME (or `all`)");
    };
    let known: Vec<&str> = SCENARIOS
        .iter()
        .copied()
        .chain(SYSCALL_SCENARIOS.iter().map(|s| s.0))
        .collect();
    let names: Vec<&str> = if name == "all" {
        known
    } else if let Some(n) = known.iter().find(|s| **s == name) {
        vec![n]
    } else {
        return crate::usage_err(format!(
            "capture: unknown scenario `{name}` (known: {}, all)",
            known.join(" ")
        ));
    };

    let run_sh = shared_dir()?.join("scenarios").join("run.sh");
    if !run_sh.is_file() {
        bail!(
            "{} not found (set TRIAGE_SHARED to the shared checkout)",
            run_sh.display()
        );
    }
    deps::ensure(true)?;
    deps::ensure_packages(deps::SCENARIOS)?;
    let bin = util::build_release()?;

    let mut failed = Vec::new();
    for n in &names {
        if let Err(e) = capture_one(&run_sh, &bin, n, &duration) {
            eprintln!("xtask: capture {n}: {e:#}");
            failed.push(*n);
        }
    }
    if names.len() > 1 {
        println!(
            "captured {}/{}; failed: {}",
            names.len() - failed.len(),
            names.len(),
            if failed.is_empty() {
                "none".to_string()
            } else {
                failed.join(" ")
            }
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `$TRIAGE_SHARED`, else `../shared` next to the workspace.
fn shared_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("TRIAGE_SHARED") {
        Some(d) => PathBuf::from(d),
        None => util::root().join("..").join("shared"),
    };
    dir.canonicalize()
        .with_context(|| format!("shared scenarios directory {} not found", dir.display()))
}

/// One scenario: fresh fixture dir, run.sh around `triage capture`, then check both run.sh's
/// verdict and that triage itself succeeded (run.sh only reports the latter as `cmd_rc=`).
fn capture_one(run_sh: &PathBuf, bin: &PathBuf, name: &str, duration: &str) -> Result<()> {
    let out = util::root().join("fixtures").join(name);
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .with_context(|| format!("cannot remove old {}", out.display()))?;
    }
    // The syscall fixtures are recorded by `triage syscalls --record` (needs root for BPF).
    let (scenario, sub, flag) = match SYSCALL_SCENARIOS.iter().find(|s| s.0 == name) {
        Some((_, scenario)) => (*scenario, "syscalls", "--record"),
        None => (name, "capture", "--out"),
    };
    let mut cmd = Command::new(run_sh);
    cmd.current_dir(util::root())
        .args([scenario, "-w", WARMUP_S, "--"])
        .arg(bin)
        .arg(sub)
        .arg(flag)
        .arg(&out)
        .args(["--duration", duration])
        .stdin(Stdio::null())
        // stderr (progress, CHECK lines) stays live; stdout is the result block we parse.
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    eprintln!("xtask: $ {}", util::display(&cmd));
    let result = cmd
        .output()
        .with_context(|| format!("cannot run {}", run_sh.display()))?;
    let stdout = String::from_utf8_lossy(&result.stdout);
    print!("{stdout}");

    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    if let (Some(rc), Some(cmd_out)) = (field("cmd_rc"), field("cmd_out")) {
        // run.sh saved the command's stderr next to its stdout; its tail says why triage failed.
        let err_file = PathBuf::from(cmd_out).with_file_name("err");
        if let (false, Ok(err)) = (rc == "0", std::fs::read_to_string(&err_file)) {
            let lines: Vec<&str> = err.lines().collect();
            eprintln!("--- {} (tail) ---", err_file.display());
            for l in &lines[lines.len().saturating_sub(20)..] {
                eprintln!("{l}");
            }
        }
    }
    match result.status.code() {
        Some(0) => {}
        Some(1) => bail!(
            "run.sh: verify FAILED, the fault was not as expected (was the machine busy?); \
             {} was written but is unverified: do not commit it",
            relative(&out)
        ),
        Some(3) => bail!("run.sh: the scenario left processes or state behind (see above)"),
        Some(4) => bail!("run.sh: the scenario failed to start (see above)"),
        _ => bail!("run.sh failed ({})", result.status),
    }
    if field("cmd_rc").as_deref() != Some("0") {
        bail!(
            "triage capture exited with cmd_rc={}",
            field("cmd_rc").unwrap_or_default()
        );
    }
    if !out.join("meta.json").is_file() {
        bail!("{} has no meta.json after capture", out.display());
    }
    // A recording of hundreds of files is committed packed (one tree.tar beside meta.json).
    crate::fixtures::pack_if_large(&out)?;
    Ok(())
}

/// `path` relative to the workspace root, for messages.
fn relative(path: &std::path::Path) -> String {
    path.strip_prefix(util::root())
        .unwrap_or(path)
        .display()
        .to_string()
}
