//! `cargo xtask test`: the one quality gate, shared verbatim by the README and CI (`.ci/run`).
//!
//! Every step runs even when an earlier one fails, so one CI run reports formatting, lint and
//! test problems together; the exit code is non-zero if any step failed.

use std::process::ExitCode;

use anyhow::Result;

use crate::{deps, util};

/// CI fuzzes FUZZ_EXECS mutated fixtures (about a minute on 2 cores), at most FUZZ_SECS, and
/// fails below FUZZ_MIN.
const FUZZ_EXECS: &str = "12000";
const FUZZ_SECS: &str = "150";
const FUZZ_MIN: &str = "10000";

/// Runs deps, fmt, clippy and the tests, then prints a one-line verdict per step.
pub fn run() -> Result<ExitCode> {
    deps::ensure_packages(&[deps::BUILD, deps::TEST].concat())?;

    // Tests that need root (eBPF, setpriv, cgroups) are `#[ignore = "needs root: ..."]`, so a
    // plain `cargo test` never passes them silently. As root we run them too; in CI we must be
    // root, or the run fails rather than skipping them.
    let root = is_root();
    if !root && std::env::var_os("CI").is_some() {
        eprintln!("xtask: CI=true but not root: the privileged tests could not run");
        return Ok(ExitCode::FAILURE);
    }
    let test_args: &[&str] = if root {
        &[
            "test",
            "--workspace",
            "--no-fail-fast",
            "--",
            "--include-ignored",
        ]
    } else {
        eprintln!(
            "xtask: not root: tests marked `needs root` are ignored (run as root to include them)"
        );
        &["test", "--workspace", "--no-fail-fast"]
    };

    let mut steps: Vec<(&str, &[&str])> = vec![
        ("fmt", &["fmt", "--all", "--", "--check"]),
        (
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        // The /proc-only build (no clang needed) must keep compiling: check, not build.
        (
            "no-bpf",
            &[
                "check",
                "-p",
                "triage",
                "--no-default-features",
                "--all-targets",
            ],
        ),
    ];
    // As root (CI), the static release artifacts are built first: tests/dist.rs runs them in
    // an empty root and installs the .deb (those tests are `needs root`, so a non-root run
    // skips both). `cargo xtask dist` = this cargo invocation (the alias).
    if root {
        steps.push((
            "dist",
            &["run", "--quiet", "--package", "xtask", "--", "dist"],
        ));
    }
    // --no-fail-fast: a failing test binary must not hide the results of the others.
    // Output is inherited, so the test binaries' "test result:" lines go to our stdout.
    steps.push(("test", test_args));
    steps.push(
        // Mutation fuzzing of every fixture (tests/fuzz.rs) in the `fuzz` profile: optimized,
        // with overflow checks. FUZZ_EXECS mutated fixtures, bounded in time (FUZZ_SECS) and
        // required to reach FUZZ_MIN, with no panic and no hang. Without eBPF: the harness needs none, and
        // the build is shorter.
        (
            "fuzz",
            &[
                "test",
                "-p",
                "triage",
                "--profile",
                "fuzz",
                "--no-default-features",
                "--test",
                "fuzz",
            ],
        ),
    );

    let mut failed = Vec::new();
    let mut verdicts = Vec::new();
    // No import cycle between the top-level modules of src/ (layers read one way).
    match crate::layers::run(&util::root().join("src")) {
        Ok(()) => verdicts.push("layers ok".to_string()),
        Err(e) => {
            eprintln!("xtask: {e:#}");
            verdicts.push("layers FAILED".to_string());
            failed.push("layers");
        }
    }
    // The floor patches (xtask/floors, issue 13's measurements) still apply to the probes.
    match floors_apply() {
        Ok(()) => verdicts.push("floors ok".to_string()),
        Err(e) => {
            eprintln!("xtask: {e:#}");
            verdicts.push("floors FAILED".to_string());
            failed.push("floors");
        }
    }
    for (name, args) in steps {
        let mut cmd = util::cargo();
        cmd.args(args);
        if name == "fuzz" {
            cmd.env("TRIAGE_FUZZ_SECS", FUZZ_SECS)
                .env("TRIAGE_FUZZ_EXECS", FUZZ_EXECS)
                .env("TRIAGE_FUZZ_MIN", FUZZ_MIN);
        }
        let ok = match util::run(&mut cmd) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("xtask: {e:#}");
                false
            }
        };
        verdicts.push(format!("{name} {}", if ok { "ok" } else { "FAILED" }));
        if !ok {
            failed.push(name);
        }
    }

    println!("xtask test: {}", verdicts.join(", "));
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: failed steps: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// Effective uid 0 (read from /proc/self/status, so xtask needs no extra dependency).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// `git apply --check` of every xtask/floors/*.patch against the tree: a floor that no longer
/// applies would silently stop measuring what the benchmarks' notes quote.
fn floors_apply() -> anyhow::Result<()> {
    let dir = util::root().join("xtask/floors");
    let mut patches: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    patches.sort();
    anyhow::ensure!(!patches.is_empty(), "no patch in {}", dir.display());
    for p in patches {
        let ok = std::process::Command::new("git")
            .arg("apply")
            .arg("--check")
            .arg(&p)
            .current_dir(util::root())
            .status()?
            .success();
        anyhow::ensure!(
            ok,
            "{} no longer applies: update it with the probe",
            p.display()
        );
    }
    Ok(())
}
