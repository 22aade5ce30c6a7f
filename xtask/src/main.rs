//! `cargo xtask <cmd>`: the repository's automation, written in Rust so it runs wherever cargo
//! does and needs no Makefile dialect or shell tricks.
//!
//! The alias lives in `.cargo/config.toml`. Commands:
//!
//! - `deps [--bench]`: install the Debian packages building (and benchmarking) needs.
//! - `layers`: no two top-level modules of `src/` import each other.
//! - `test`: deps, then layers, fmt check, clippy with `-D warnings`, and the whole test suite (what CI
//!   runs via `.ci/run`).
//! - `sixty-second [ARGS...]`: deps, release build, then exec `triage sixty-second ARGS...`.
//! - `dist [--check-repro]`: the static binary, tarball, .deb and checksums (see dist.rs).
//! - `bench [--runs N] [--duration SECS] [--procs N]`: triage against the classic 60-second
//!   checklist, and its cost as the process count grows; `bench --deep` times the deep dives
//!   with extra processes and loopback sockets.
//! - `bench --syscalls [--runs N] [--calls N]`: what `triage syscalls` costs the traced
//!   process, against strace, perf trace, bpftrace and syscount.
//! - `bench --fleet [--reports N] [--runs N]`: `triage fleet` over N reports against `jq -s`.
//! - `capture NAME|all [--duration SECS]`: record fixtures of real faults via the shared
//!   scenario scripts.
//! - `vmlinux [--btf FILE] [--arch x86|arm64]`: regenerate the pinned vmlinux.h from BTF.
//! - `overlay NAME BASE`: reduce a derived fixture to the files that differ from its base.
//! - `fixtures pack NAME...|--min-files N`, `fixtures unpack NAME`: a recording as one
//!   deterministic `tree.tar` beside its `meta.json`, and back.
//! - `man [--out DIR]`: man pages and shell completions from the clap definitions.
//! - `handmade [NAME...]`: derive the hand-made fixtures (situations this machine cannot record)
//!   from `fixtures/idle` (and `fixtures/deep-idle` for the deep dives).

mod bench;
mod bench_deep;
mod bench_fleet;
mod bench_offcpu;
mod bench_procs;
mod bench_profile;
mod bench_syscalls;
mod bench_tracer;
mod capture;
mod check;
mod deps;
mod dist;
mod fixtures;
mod handmade;
mod layers;
pub mod man;
mod measure;
mod overlay;
mod sleepers;
mod util;
mod vmlinux;

use std::process::ExitCode;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  deps [--bench]                 install build (and benchmark) packages on Debian (root)
  test                           deps, layers, cargo fmt --check, clippy -D warnings, cargo test
                                 (= CI; as root it includes the tests marked `needs root`)
  layers                         fail if two top-level modules of src/ import each other
  overlay NAME BASE              reduce fixtures/NAME (a modified copy of fixtures/BASE) to an
                                 overlay: only the files that differ, meta.json naming BASE
  fixtures pack NAME... | fixtures pack --min-files N
                                 store fixtures/NAME's tree as one deterministic tree.tar
                                 beside its meta.json (--min-files: every plain fixture with
                                 at least N files)
  fixtures unpack NAME           turn a packed fixture back into a directory (for review)
  sixty-second [ARGS...]         deps, release build, run `triage sixty-second ARGS...`
  dist [--check-repro]           static x86_64 binary (+ split debug info), tarball, .deb and
                                 SHA256SUMS in target/dist/out; --check-repro builds twice
                                 from scratch and fails unless the artifacts are identical
  bench [--runs N] [--duration SECS] [--procs N] [--no-bpf]
                                 triage vs the classic 60-second commands, and scale cost
                                 (defaults: --runs 5 --duration 2 --procs 5000)
  bench --deep [--runs N] [--duration SECS] [--procs N] [--sockets N]
                                 triage cpu|mem|disk|net vs pidstat/ps/ss under load
                                 (defaults: --runs 5 --duration 2 --procs 5000 --sockets 50000)
  bench --procs-scan [--runs N] [--duration SECS] [--procs N]
                                 the process scan with N sleepers: BPF task iterator vs /proc,
                                 a C stat+statm floor and `ps aux` (root)
  bench --offcpu [--runs N] [--loops N] [--forks N]
                                 slowdown of `perf bench sched pipe` and a fork loop under
                                 triage offcpu / run-queue probe, libbpf-tools, bpftrace
  bench --profile [--runs N] [--steps N]
                                 slowdown of a CPU-bound workload under triage profile -F 99,
                                 perf record -F 99 -g -a and bpftrace profile:hz:99; start-up, RSS
  bench --syscalls [--runs N] [--calls N]
                                 slowdown of syscall loops under triage syscalls vs strace,
                                 perf trace, bpftrace and libbpf-tools syscount
                                 (defaults: --runs 3 --calls 300000)
  bench --fleet [--reports N] [--runs N]
                                 triage fleet over N reports vs jq -s over the same files,
                                 wall/CPU/peak RSS (defaults: --reports 1000 --runs 5)
  capture NAME|all [--duration SECS]
                                 record fixtures/NAME from a real fault scenario
                                 (NAME: idle cpu-saturation cgroup-cpu-throttle
                                  memory-pressure-swap disk-saturation net-retransmits;
                                  with `triage syscalls --record`: syscall-storm
                                  futex-lock-contention)
  vmlinux [--btf FILE] [--arch x86|arm64]
                                 regenerate bpf/vmlinux/<arch>/vmlinux_<ver>.h with bpftool
                                 (default: this kernel's BTF)
  man [--out DIR]                man pages (DIR/man1) and bash/zsh/fish completions
                                 (DIR/completions) from the CLI definitions
                                 (default DIR: target/man)
  handmade [NAME...]             derive hand-made fixtures/NAME from fixtures/idle
                                 (default all: cgroup-v2-only container-quota-2-of-64
                                  garbled-proc) or, for the deep dives, fixtures/deep-idle
                                 (softirq-one-cpu memory-leak direct-reclaim-v1-limit
                                  disk-await-outlier close-wait-leak udp-rcvbuf-errors
                                  listen-overflow)

environment:
  TRIAGE_SHARED=DIR              the shared scenarios checkout (default: <repo>/../shared)
  XTASK_SKIP_DEPS=1              do not check or install Debian packages (non-Debian hosts)
  XTASK_TRIAGE_BIN=PATH          use this triage binary instead of building one
";

/// A wrong invocation: reported with the usage text and exit code 2, like the CLI itself.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand for failing with a [`UsageError`].
pub fn usage_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(UsageError(msg.into()).into())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<UsageError>().is_some() => {
            eprintln!("xtask: {e}\n(`cargo xtask help` for usage)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Routes the first argument to its command; each command parses the rest itself.
fn dispatch(args: &[String]) -> Result<ExitCode> {
    let Some((cmd, rest)) = args.split_first() else {
        return usage_err("missing command");
    };
    match cmd.as_str() {
        "deps" => {
            let bench = match rest {
                [] => false,
                [flag] if flag == "--bench" => true,
                _ => return usage_err(format!("deps: unexpected arguments {rest:?}")),
            };
            deps::ensure(bench)?;
            Ok(ExitCode::SUCCESS)
        }
        "test" => {
            if !rest.is_empty() {
                return usage_err(format!("test: unexpected arguments {rest:?}"));
            }
            check::run()
        }
        "sixty-second" => sixty_second(rest),
        "dist" => dist::run(rest),
        "bench" if rest.iter().any(|a| a == "--deep") => bench_deep::run(rest),
        "bench" if rest.iter().any(|a| a == "--fleet") => bench_fleet::run(rest),
        "bench" if rest.iter().any(|a| a == "--procs-scan") => bench_procs::run(rest),
        "bench" if rest.first().is_some_and(|a| a == "--offcpu") => bench_offcpu::run(&rest[1..]),
        "bench" if rest.first().is_some_and(|a| a == "--profile") => bench_profile::run(&rest[1..]),
        "bench" if rest.first().is_some_and(|a| a == "--syscalls") => {
            bench_syscalls::run(&rest[1..])
        }
        "bench" => bench::run(rest),
        // Internal: a helper process of `bench --deep` holding loopback sockets.
        "__hold-sockets" => bench_deep::hold_sockets(rest),
        "capture" => capture::run(rest),
        "handmade" => handmade::run(rest),
        "fixtures" => fixtures::run(rest),
        "overlay" => {
            overlay::run(rest)?;
            Ok(ExitCode::SUCCESS)
        }
        "layers" => {
            layers::run(&util::root().join("src"))?;
            Ok(ExitCode::SUCCESS)
        }
        "vmlinux" => vmlinux::run(rest),
        "man" => man::run(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => usage_err(format!("unknown command `{other}`")),
    }
}

/// README quick-start #1: one command from a fresh checkout to a report. Replaces this process
/// with triage so its exit code, signals and terminal handling are exactly the binary's own.
fn sixty_second(args: &[String]) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;

    deps::ensure(false)?;
    let bin = util::build_release()?;
    let err = std::process::Command::new(&bin)
        .arg("sixty-second")
        .args(args)
        .exec();
    bail!("cannot exec {}: {err}", bin.display())
}
