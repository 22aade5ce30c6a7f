//! Faults a senior engineer would diagnose differently from a threshold (issue 9): each has a
//! workload of its own (tests/offcpu/*.c, `triage-workload` modes), a fixture recorded under it,
//! and a test of the top finding's id, severity and subject. The live tests need root (eBPF)
//! and are ignored otherwise; `cargo xtask test` runs them as root.

use std::path::{Path, PathBuf};

use triage::analyze::Analysis;
use triage::collect::run::from_fixture;
use triage::model::report::{Finding, Report, Severity};

mod common;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn syscalls_fixture(name: &str) -> (Report, triage::probe::output::SyscallsProbe) {
    use triage::commands::syscalls::{report, PROBE_FILE};
    let dir = fixture(name);
    let readings = from_fixture(&dir).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    let probe: triage::probe::output::SyscallsProbe =
        serde_json::from_slice(&triage::host::safe::read_in(&dir, PROBE_FILE).unwrap()).unwrap();
    let r = report(&readings, Some(&probe), Vec::new(), &Analysis::default());
    (r, probe)
}

fn offcpu_fixture(name: &str) -> (Report, triage::model::offcpu::OffcpuProbe) {
    let text = triage::host::safe::read_in(&fixture(name), "probes/offcpu.json").unwrap();
    let probe: triage::model::offcpu::OffcpuProbe = serde_json::from_slice(&text).unwrap();
    (
        triage::commands::offcpu::report(probe.clone(), 10, false),
        probe,
    )
}

/// The most important finding about process `pid` (the box may have had other faults while
/// the fixture was recorded: the CI machine's own compiles saturate its two CPUs).
fn top_about(r: &Report, pid: u32) -> &Finding {
    r.findings
        .iter()
        .find(|f| f.subject.pid == Some(pid as i32))
        .unwrap_or_else(|| panic!("no finding about pid {pid}: {:#?}", r.findings))
}

fn ids(r: &Report) -> Vec<&str> {
    r.findings.iter().map(|f| f.id.as_str()).collect()
}

// ---- 1. Idle thread pools are not lock contention -------------------------------------

/// `idlepool 16 50 60`: 16 threads in 50 ms `pthread_cond_timedwait` that always time out,
/// one thread at 60% CPU holding no lock. Recorded with `triage syscalls --pid --record`.
#[test]
fn idle_pool_is_not_contention_in_syscalls() {
    let (r, probe) = syscalls_fixture("syscalls-idle-pool");
    // The ground truth of the recording: futex dominates the pool's syscall time and nearly
    // all of it is in calls that failed (ETIMEDOUT).
    let pool = &probe.processes[0];
    assert_eq!(pool.comm.as_deref(), Some("idlepool"));
    let futex = pool.syscalls.iter().find(|s| s.nr == 202).unwrap();
    assert!(futex.time_ns > 10_000_000_000, "{futex:?}");
    assert!(
        futex.fail_ns as f64 > 0.95 * futex.time_ns as f64,
        "{futex:?}"
    );
    assert!(
        r.findings.iter().all(|f| !f.id.starts_with("locks.")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn idle_pool_is_not_contention_in_offcpu() {
    let (r, probe) = offcpu_fixture("offcpu-idle-pool");
    let timed: u64 = probe.stacks.iter().map(|s| s.timer_count).sum();
    let all: u64 = probe.stacks.iter().map(|s| s.count).sum();
    assert!(
        timed as f64 >= 0.9 * all as f64,
        "{timed} of {all} by a timer"
    );
    assert!(
        r.findings.iter().all(|f| f.severity < Severity::Warning),
        "{:#?}",
        r.findings
    );
}

/// `contend 4 2000`: four threads on one mutex held 2 ms at a time.
#[test]
fn mutex_contention_is_found_in_syscalls() {
    let (r, probe) = syscalls_fixture("syscalls-mutex-contention");
    let pid = probe.processes[0].pid;
    let f = top_about(&r, pid);
    assert_eq!(f.id, "locks.saturation.futex", "{f:#?}");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.subject.comm.as_deref(), Some("contend"));
    assert_eq!(f.subject.syscall.as_deref(), Some("futex"));
}

#[test]
fn mutex_contention_is_found_in_offcpu() {
    let (r, probe) = offcpu_fixture("offcpu-mutex-contention");
    let f = &r.findings[0];
    assert_eq!(f.id, "locks.saturation.contention", "{:?}", ids(&r));
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.subject.pid, Some(probe.stacks[0].pid as i32));
    assert_eq!(f.subject.comm.as_deref(), Some("contend"));
}

/// Live: the workloads under the real probes.
mod live {
    use super::*;
    use std::io::Write;
    use std::process::{Child, Command, Stdio};
    use std::sync::Mutex;

    static SERIAL: Mutex<()> = Mutex::new(());

    pub fn build(name: &str, dir: &Path) -> PathBuf {
        common::build_offcpu_workload(name, dir)
    }

    pub fn start(bin: &Path, args: &[&str]) -> Child {
        let mut c = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(b"g").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        c
    }

    pub fn triage_json(args: &[&str]) -> Report {
        let out = Command::new(env!("CARGO_BIN_EXE_triage"))
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "triage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn both(bin: &Path, args: &[&str]) -> (u32, Report, Report) {
        let mut c = start(bin, args);
        let pid = c.id().to_string();
        let off = triage_json(&["offcpu", "-p", &pid, "-d", "2"]);
        let sys = triage_json(&["syscalls", "-p", &pid, "--duration", "2"]);
        let _ = c.kill();
        let _ = c.wait();
        (c.id(), off, sys)
    }

    /// A new task's first return to user space passes sys_exit with its parent's vfork
    /// number: counted once, the totals equal the per-process table and the children made.
    #[test]
    #[ignore = "needs root: eBPF syscall probe"]
    fn vfork_is_counted_once() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let bin = build("forkstorm", dir.path());
        let mut c = Command::new(&bin)
            .args(["300", "1", "1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = c.id().to_string();
        let mut stdin = c.stdin.take().unwrap();
        let go = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(1500)); // traced by then
            stdin.write_all(b"g").unwrap();
        });
        let r = triage_json(&["syscalls", "-p", &pid, "--duration", "3"]);
        go.join().unwrap();
        let out = c.wait_with_output().unwrap();
        let children: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let s = r.sections.syscalls.as_ref().unwrap();
        let total = s.syscalls.iter().find(|x| x.name == "vfork").unwrap().calls;
        let per: u64 = s
            .breakdown
            .iter()
            .filter(|b| b.syscall == "vfork")
            .map(|b| b.calls)
            .sum();
        assert!(children >= 100, "{children}");
        assert_eq!((total, per), (children, children));
    }

    #[test]
    #[ignore = "needs root: eBPF off-CPU probe, SCHED_FIFO"]
    fn short_sync_waits_are_found_by_default() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let bin = build("syncwriter", dir.path());
        let file = dir.path().join("f");
        // Real-time priority: on a box whose CPUs are busy the writer still waits on the disk,
        // not for a CPU.
        let mut c = Command::new("chrt")
            .args(["-f", "10"])
            .arg(&bin)
            .arg(&file)
            .args(["4096", "6"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(b"g").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let pid = c.id().to_string();
        let by_default = triage_json(&["offcpu", "-p", &pid, "-d", "2"]);
        let _ = c.kill();
        let _ = c.wait();
        let f = top_about(&by_default, c.id());
        assert_eq!(
            f.id, "io.saturation.blocked_threads",
            "{:#?}",
            by_default.findings
        );
        assert_eq!(f.subject.comm.as_deref(), Some("syncwriter"));
    }

    #[test]
    #[ignore = "needs root: eBPF off-CPU and syscall probes"]
    fn idle_pool_live_gives_no_lock_finding() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let bin = build("idlepool", dir.path());
        let (_, off, sys) = both(&bin, &["16", "50", "20", "6"]);
        for r in [&off, &sys] {
            assert!(
                r.findings
                    .iter()
                    .all(|f| !f.id.starts_with("locks.") && f.id != "locks.saturation.contention"),
                "{:#?}",
                r.findings
            );
        }
    }

    #[test]
    #[ignore = "needs root: eBPF off-CPU and syscall probes"]
    fn mutex_contention_live_names_the_process() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let bin = build("contend", dir.path());
        let (pid, off, sys) = both(&bin, &["4", "2000", "6"]);
        // The lock finding about the process. Not necessarily the first about it: while other
        // builds share the CPUs, `contend` at ~96% CPU is also rightly named by a critical
        // `cpu.saturation.runqueue` (seen in CI).
        for (r, id) in [
            (&off, "locks.saturation.contention"),
            (&sys, "locks.saturation.futex"),
        ] {
            let f = r
                .findings
                .iter()
                .find(|f| f.subject.pid == Some(pid as i32) && f.id == id)
                .unwrap_or_else(|| panic!("no {id} about pid {pid}: {:#?}", r.findings));
            assert_eq!(f.subject.comm.as_deref(), Some("contend"));
            assert!(f.severity >= Severity::Warning);
            // And nothing about it ranks above it but CPU saturation.
            let first = top_about(r, pid);
            assert!(
                first.id == id || first.id == "cpu.saturation.runqueue",
                "{:#?}",
                r.findings
            );
        }
    }
}

// ---- 2. Process-creation storms -------------------------------------------------------

fn fixture_report(cmd: &str, name: &str) -> Report {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["--json", cmd, "--fixture"])
        .arg(fixture(name))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `forkstorm 1300 8 2`: two threads of one process vfork + exec /bin/true + wait, ~1,300
/// children per second. Recorded with `triage capture`.
#[test]
fn fork_storm_names_the_parent_in_sixty_second_and_cpu() {
    // Ground truth from the recording (packed: read through the fixture reader): the
    // spawner's pid.
    use triage::host::Source;
    let tree = triage::host::FixtureTree::open(&fixture("fork-storm")).unwrap();
    let t1 = tree.phase("t1").unwrap();
    let spawner: i32 = t1
        .list("proc")
        .unwrap()
        .iter()
        .filter_map(|n| n.parse::<i32>().ok())
        .find(|pid| {
            t1.read_string(&format!("proc/{pid}/stat"))
                .is_ok_and(|s| s.contains("(forkstorm)"))
        })
        .expect("forkstorm in the recording");
    for cmd in ["sixty-second", "cpu"] {
        let r = fixture_report(cmd, "fork-storm");
        let f = r
            .findings
            .iter()
            .find(|f| f.id == "tasks.saturation.fork_storm")
            .unwrap_or_else(|| panic!("{cmd}: {:?}", ids(&r)));
        assert_eq!(f.severity, Severity::Critical, "{cmd}");
        assert_eq!(f.subject.pid, Some(spawner), "{cmd}");
        assert_eq!(f.subject.comm.as_deref(), Some("forkstorm"), "{cmd}");
        let rate = f.evidence[0].value;
        assert!((1100.0..1700.0).contains(&rate), "{cmd}: {rate} forks/s");
        // The storm is the most important finding about a process; the system-time finding
        // (which can only name a survivor of the window) is context.
        assert_eq!(
            r.findings
                .iter()
                .find(|f| !f.subject.is_empty() && !recording_noise(f))
                .map(|f| &f.id),
            Some(&f.id)
        );
        for st in r
            .findings
            .iter()
            .filter(|f| f.id == "cpu.utilization.system_time")
        {
            assert_eq!(st.severity, Severity::Info, "{cmd}: {st:#?}");
        }
    }
}

/// `forkstorm 1300 3 2` under `triage syscalls --record` (system-wide): exited processes are
/// folded into their parent's "children of" row (and calls that do not fit in the in-kernel
/// table go there too), so no call is dropped, the table is not 4,000 pids, and vfork is
/// counted once.
#[test]
fn fork_storm_syscalls_lose_no_call_and_count_vfork_once() {
    let (r, probe) = syscalls_fixture("syscalls-fork-storm");
    let s = r.sections.syscalls.as_ref().unwrap();
    assert_eq!(s.dropped.process_syscalls, 0);
    let top = &s.processes[0];
    assert!(top.children, "{top:?}");
    assert_eq!(top.comm, "children of forkstorm");
    // ~3,900 children were made in the window: the table holds the box's processes, not them.
    assert!(s.processes_seen < 500, "{} rows", s.processes_seen);
    let row = probe
        .processes
        .iter()
        .find(|p| p.children && p.pid == top.pid)
        .unwrap();
    assert!(row.exited >= 1000, "{} children folded", row.exited);
    // The per-process rows (children rows included) add up to the per-syscall totals.
    let vfork_total = probe.syscalls.iter().find(|x| x.nr == 58).unwrap().count;
    let vfork_rows: u64 = probe
        .processes
        .iter()
        .flat_map(|p| p.syscalls.iter())
        .filter(|x| x.nr == 58)
        .map(|x| x.count)
        .sum();
    // (The maps are read one after the other while the probe still counts; the totals last,
    // so the rows, read first, may miss the last few calls but never exceed the totals.)
    assert!(
        vfork_rows <= vfork_total && vfork_rows as f64 >= vfork_total as f64 * 0.9,
        "{vfork_rows} in rows, {vfork_total} in total"
    );
    // One vfork in the parent per execve in its children: vfork is not counted twice.
    let count = |p: &triage::probe::output::ProcessTotal, nr: u32| {
        p.syscalls
            .iter()
            .filter(|x| x.nr == nr)
            .map(|x| x.count)
            .sum::<u64>()
    };
    let parent = probe
        .processes
        .iter()
        .find(|p| !p.children && p.pid == top.pid)
        .unwrap();
    let (vforks, execs) = (count(parent, 58), count(row, 59));
    assert!(
        (execs as f64 - vforks as f64).abs() <= 0.1 * vforks as f64,
        "{vforks} vfork in the parent, {execs} execve in its children"
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.id == "tasks.saturation.fork_storm")
        .unwrap_or_else(|| panic!("{:?}", ids(&r)));
    assert_eq!(f.subject.pid, Some(top.pid as i32));
    assert_eq!(f.subject.comm.as_deref(), Some("forkstorm"));
}

// ---- 4. Latency-bound sync writes are not saturation ------------------------------------

/// `syncwriter FILE 4096` under `chrt -f 10`: 4 KB write + fsync in a loop, one at a time
/// (aqu-sz 1.3, 80% busy, w_await 0.04 ms, PSI io 33%). Recorded with `triage capture`.
#[test]
fn sync_writes_are_named_not_called_saturation() {
    for cmd in ["sixty-second", "disk"] {
        let r = fixture_report(cmd, "sync-writes");
        assert!(
            r.findings
                .iter()
                .all(|f| !f.id.starts_with("disk.saturation")),
            "{cmd}: {:?}",
            ids(&r)
        );
        let f = r
            .findings
            .iter()
            .find(|f| !f.subject.is_empty() && !recording_noise(f))
            .unwrap_or_else(|| panic!("{cmd}: {:?}", ids(&r)));
        assert_eq!(f.id, "io.saturation.sync_writes", "{cmd}");
        assert_eq!(f.severity, Severity::Warning, "{cmd}");
        assert_eq!(f.subject.device.as_deref(), Some("vda"), "{cmd}");
        assert_eq!(f.subject.comm.as_deref(), Some("syncwriter"), "{cmd}");
        let d = &r.sections.disks[0];
        assert!(f.subject.pid.is_some());
        // The ground truth behind it: flushes at a high rate, writes served at once.
        assert!(d.flushes_per_s.unwrap() > 1000.0, "{d:?}");
        assert!(d.w_await_ms.unwrap() < 0.5, "{d:?}");
    }
    // The disk view's top finding.
    let r = fixture_report("disk", "sync-writes");
    assert_eq!(r.findings[0].id, "io.saturation.sync_writes");
}

/// The same writer under `triage offcpu -p` with the default block filter: its waits are
/// ~0.05 ms each, below the old 1 ms default, and add up to most of a thread.
#[test]
fn short_io_waits_add_up_in_offcpu_by_default() {
    let (r, probe) = offcpu_fixture("offcpu-sync-writes");
    assert_eq!(probe.sample_every, 16);
    let (n, ns): (u64, u64) = probe
        .stacks
        .iter()
        .fold((0, 0), |a, s| (a.0 + s.count, a.1 + s.total_ns));
    assert!(ns / n.max(1) < 1_000_000, "{n} blocks, {ns} ns: not short");
    let f = &r.findings[0];
    assert_eq!(f.id, "io.saturation.blocked_threads", "{:?}", ids(&r));
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.subject.comm.as_deref(), Some("syncwriter"));
    assert_eq!(f.subject.pid, Some(probe.stacks[0].pid as i32));
}

// ---- 12. Bad scopes are errors ---------------------------------------------------------

fn triage_fails(args: &[&str], says: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "triage {args:?}: {err}");
    assert!(out.stdout.is_empty(), "triage {args:?} printed a report");
    assert!(err.contains(says), "triage {args:?}: {err}");
}

#[test]
fn bad_scopes_are_errors() {
    // No such process: checked before any probe loads (so also unprivileged).
    triage_fails(&["offcpu", "-p", "999999"], "--pid 999999: no such process");
    triage_fails(
        &["offcpu", "--cgroup", "/does/not/exist"],
        "--cgroup /does/not/exist: no such cgroup",
    );
    let idle = fixture("idle");
    let idle = idle.to_str().unwrap();
    for cmd in ["mem", "cpu", "disk"] {
        triage_fails(
            &[cmd, "--fixture", idle, "--cgroup", "/does/not/exist"],
            "--cgroup /does/not/exist: no such cgroup",
        );
    }
    triage_fails(&["syscalls", "--comm", ""], "--comm: empty name");
    // A cgroup that exists in the recording is fine.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["mem", "--fixture", idle, "--cgroup", "/"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// These fixtures were recorded while other builds saturated the box's two CPUs: the run-queue
/// finding they carry (naming a compiler as the top CPU user) is real but not the fault under
/// test, so "the first finding about a subject" skips it.
fn recording_noise(f: &triage::model::report::Finding) -> bool {
    f.id == "cpu.saturation.runqueue"
}
