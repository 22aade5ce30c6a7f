//! `cargo xtask deps [--bench]`: make a fresh Debian 12 machine able to build, test and
//! benchmark triage, and cost almost nothing when everything is already there.
//!
//! Presence is checked with `dpkg-query` (one call, milliseconds), so `apt-get update` — the
//! slow, network-bound part — only runs when something is actually missing.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util;

/// Needed by every build: the eBPF programs are compiled with clang against libelf/zlib, found
/// through pkg-config; libbpf-sys builds its vendored libbpf with make and the C compiler.
pub const BUILD: &[&str] = &[
    "clang",
    "libelf-dev",
    "zlib1g-dev",
    "pkg-config",
    "make",
    "gcc",
];

/// What the test suite needs beyond [`BUILD`] (installed by `cargo xtask test`, so CI on a fresh
/// machine runs every test for real): `perf` checks that a classic tracepoint program leaves
/// events to other perf users; `setpriv` (util-linux) runs the unprivileged-run tests.
/// `ip` and `tc` (iproute2) build the network namespaces, veths and the dropping tbf of the
/// qdisc test (tests/qdisc.rs). `git apply --check` keeps the floor patches (xtask/floors) in
/// step with the probes.
pub const TEST: &[&str] = &["linux-perf", "util-linux", "iproute2", "git"];

/// The classic 60-second commands the bench compares against (sysstat, procps, util-linux),
/// and the load generators and profilers the fault scenarios and benchmarks use.
pub const BENCH: &[&str] = &[
    "sysstat",
    "procps",
    "util-linux",
    "fio",
    "iperf3",
    "linux-perf",
    "hyperfine",
    // `bench --profile` compares against bpftrace's profile:hz:99.
    "bpftrace",
];

/// The syscall tracers `bench --syscalls` compares against (strace, perf trace is in BENCH).
pub const BENCH_SYSCALLS: &[&str] = &["strace", "bpftrace", "libbpf-tools"];

/// What the shared fault scenarios need beyond [`BENCH`]: they compile small C loads and build
/// network namespaces.
pub const SCENARIOS: &[&str] = &["gcc", "iproute2"];

/// Ensures the build packages, plus the bench ones when `bench` is set.
pub fn ensure(bench: bool) -> Result<()> {
    let mut pkgs = BUILD.to_vec();
    if bench {
        pkgs.extend_from_slice(BENCH);
    }
    ensure_packages(&pkgs)
}

/// Installs whichever of `pkgs` are missing. Fails with the exact command to run when that
/// needs root and we are not root.
pub fn ensure_packages(pkgs: &[&str]) -> Result<()> {
    if std::env::var_os("XTASK_SKIP_DEPS").is_some_and(|v| !v.is_empty() && v != "0") {
        return Ok(());
    }
    let missing = missing(pkgs)?;
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "missing packages: {}\nrun as root:\n  apt-get update && {install}\n\
             (or set XTASK_SKIP_DEPS=1 if they are provided some other way)",
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    util::run(Command::new("apt-get").arg("update"))?;
    util::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )?;
    let still = self::missing(pkgs)?;
    if !still.is_empty() {
        bail!("still missing after apt-get install: {}", still.join(" "));
    }
    Ok(())
}

/// The packages of `pkgs` that dpkg does not report as fully installed.
fn missing(pkgs: &[&str]) -> Result<Vec<String>> {
    // dpkg-query exits 1 when some package is unknown to it, yet still prints the known ones:
    // its stdout is the whole answer, its exit code is not.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package}\t${Status}\n"])
        .args(pkgs)
        .output()
        .context(
            "cannot run dpkg-query: `cargo xtask deps` supports Debian/Ubuntu only; \
             install the packages yourself and set XTASK_SKIP_DEPS=1",
        )?;
    let listing = String::from_utf8_lossy(&out.stdout);
    let installed = |pkg: &str| {
        listing.lines().any(|line| {
            line.split_once('\t')
                .is_some_and(|(name, status)| name == pkg && status == "install ok installed")
        })
    };
    Ok(pkgs
        .iter()
        .filter(|p| !installed(p))
        .map(|p| p.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unknown packages make dpkg-query exit 1; the known ones must still be recognised.
    #[test]
    fn missing_reports_only_absent_packages() {
        if Command::new("dpkg-query")
            .arg("--version")
            .output()
            .is_err()
        {
            return; // not a Debian host
        }
        let got = missing(&["dpkg", "xtask-no-such-package"]).unwrap();
        assert_eq!(got, vec!["xtask-no-such-package".to_string()]);
    }
}
