//! `triage syscalls` for real: the eBPF probe against a workload with a known answer (exactly
//! N getppid calls, N failing opens, sleeps of a known length), Ctrl-C, and an unprivileged
//! run. The probe tests need root (or CAP_BPF+CAP_PERFMON): they are `#[ignore]`d with the
//! reason, and `cargo xtask test` runs them as root;
//! they hold one lock so no two tracers (and the leak check) overlap.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

mod common;
use common::{json, triage};

static ONE_TRACER: Mutex<()> = Mutex::new(());

/// Start triage with `args` and return once its probe is attached (it says so on stderr).
fn start_tracing(args: &[&str]) -> (Child, std::thread::JoinHandle<String>) {
    let mut child = triage()
        .arg("syscalls")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn triage");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("tracing syscalls") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("triage did not start tracing");
    (child, reader)
}

/// Run the workload under `triage syscalls --pid`: the tracer attaches first, then the
/// workload is told to go.
fn traced_workload(work: &[&str], duration: &str) -> Value {
    traced_workload_with(work, duration, &[], true)
}

/// As [`traced_workload`], with extra triage arguments; `by_pid` scopes with `--pid`.
fn traced_workload_with(work: &[&str], duration: &str, extra: &[&str], by_pid: bool) -> Value {
    let mut w = Command::new(env!("CARGO_BIN_EXE_triage-workload"))
        .args(work)
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn workload");
    let pid = w.id().to_string();
    let mut args = vec!["--duration", duration, "--json"];
    if by_pid {
        args.extend(["--pid", &pid]);
    }
    args.extend(extra);
    let (child, reader) = start_tracing(&args);
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(w.wait().unwrap().success());
    let o = child.wait_with_output().unwrap();
    let err = reader.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{err}");
    let j = json(&o);
    assert_eq!(j["command"], "syscalls");
    if by_pid {
        assert_eq!(j["sections"]["syscalls"]["scope"], format!("pid {pid}"));
    }
    j
}

fn calls_of(j: &Value, pid: u32, name: &str) -> Option<u64> {
    j["sections"]["syscalls"]["breakdown"]
        .as_array()?
        .iter()
        .find(|b| b["pid"] == pid && b["syscall"] == name)
        .and_then(|b| b["calls"].as_u64())
}

fn syscall<'a>(j: &'a Value, name: &str) -> &'a Value {
    j["sections"]["syscalls"]["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} row in {}", j["sections"]["syscalls"]))
}

#[test]
#[ignore = "needs root: loads eBPF probes (CAP_BPF+CAP_PERFMON); cargo xtask test runs it as root"]
fn counts_exactly_n_getppid_calls_of_the_traced_pid() {
    let _g = ONE_TRACER.lock().unwrap_or_else(|e| e.into_inner());
    common::require_bpf();
    const N: u64 = 12_345;
    let j = traced_workload(&["getppid", &N.to_string()], "1.5");
    let s = &j["sections"]["syscalls"];
    assert_eq!(s["attach_type"], "tp_btf");
    assert_eq!(syscall(&j, "getppid")["calls"], N);
    assert_eq!(syscall(&j, "getppid")["errors"], 0);
    let p = &s["processes"][0];
    assert_eq!(p["comm"], "triage-workload");
    assert_eq!(p["top_syscall"], "getppid");
    let b = s["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["syscall"] == "getppid")
        .unwrap();
    assert_eq!(b["calls"], N);
    assert_eq!(s["dropped"]["process_syscalls"], 0);
}

/// The fallbacks count exactly too: raw_tp, and the classic tracepoint (which must return 1 to
/// leave the event to other perf users).
#[test]
#[ignore = "needs root: loads eBPF probes (CAP_BPF+CAP_PERFMON); cargo xtask test runs it as root"]
fn raw_tp_and_tracepoint_fallbacks_count_exactly() {
    let _g = ONE_TRACER.lock().unwrap_or_else(|e| e.into_inner());
    common::require_bpf();
    common::ensure_tracefs();
    for kind in ["raw_tp", "tracepoint"] {
        let j = traced_workload_with(&["getppid", "1000"], "1", &["--attach", kind], true);
        assert_eq!(j["sections"]["syscalls"]["attach_type"], kind);
        assert_eq!(syscall(&j, "getppid")["calls"], 1000, "{kind}");
    }
}

/// `--comm` filters in the kernel: only the workload is counted, exactly.
#[test]
#[ignore = "needs root: loads eBPF probes (CAP_BPF+CAP_PERFMON); cargo xtask test runs it as root"]
fn comm_filter_counts_only_that_command() {
    let _g = ONE_TRACER.lock().unwrap_or_else(|e| e.into_inner());
    common::require_bpf();
    let j = traced_workload_with(
        &["getppid", "4321"],
        "1",
        &["--comm", "triage-workload", "--no-latency"],
        false,
    );
    let s = &j["sections"]["syscalls"];
    assert_eq!(s["scope"], "comm triage-workload");
    assert_eq!(s["latency_measured"], false);
    let procs = s["processes"].as_array().unwrap();
    assert!(!procs.is_empty());
    assert!(
        procs.iter().all(|p| p["comm"] == "triage-workload"),
        "{procs:?}"
    );
    let pid = procs[0]["pid"].as_u64().unwrap() as u32;
    assert_eq!(calls_of(&j, pid, "getppid"), Some(4321));
    assert!(syscall(&j, "getppid")["latency"].is_null());
}

#[test]
#[ignore = "needs root: loads eBPF probes (CAP_BPF+CAP_PERFMON); cargo xtask test runs it as root"]
fn counts_n_failed_opens_as_enoent() {
    let _g = ONE_TRACER.lock().unwrap_or_else(|e| e.into_inner());
    common::require_bpf();
    const N: u64 = 777;
    let j = traced_workload(&["enoent", &N.to_string()], "1.5");
    let open = syscall(&j, "openat");
    assert_eq!(open["errors"], N);
    assert_eq!(open["top_errors"][0]["name"], "ENOENT");
    assert_eq!(open["top_errors"][0]["count"], N);
}

#[test]
#[ignore = "needs root: loads eBPF probes (CAP_BPF+CAP_PERFMON); cargo xtask test runs it as root"]
fn nanosleep_lands_in_its_latency_bucket() {
    let _g = ONE_TRACER.lock().unwrap_or_else(|e| e.into_inner());
    common::require_bpf();
    // 40 ms = 4.0e7 ns: bucket [2^25, 2^26) ns = [33.6 ms, 67.1 ms).
    let j = traced_workload(&["nanosleep", "40", "5"], "1.5");
    let n = syscall(&j, "nanosleep");
    assert_eq!(n["calls"], 5);
    let h = &n["latency"];
    assert_eq!(h["count"], 5);
    for p in ["p50", "p99"] {
        assert_eq!(h[p]["lo_ns"], 1u64 << 25, "{p}: {h}");
        assert_eq!(h[p]["hi_ns"], 1u64 << 26, "{p}: {h}");
    }
    let avg_ms = n["avg_us"].as_f64().unwrap() / 1000.0;
    assert!((40.0..60.0).contains(&avg_ms), "avg {avg_ms} ms");
}

/// Ids of the BPF programs loaded in the kernel now (libbpf-rs query API), by name.
#[cfg(feature = "bpf")]
fn loaded_programs() -> Vec<(u32, String)> {
    libbpf_rs::query::ProgInfoIter::default()
        .map(|p| (p.id, p.name.to_string_lossy().into_owned()))
        .collect()
}

/// Ids of the BPF programs process `pid` holds through its fds (program and link fds say
/// `prog_id` in their fdinfo). Precise even when other tracers run on the machine.
#[cfg(feature = "bpf")]
fn programs_held_by(pid: u32) -> Vec<u32> {
    let mut ids = Vec::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return ids;
    };
    for e in rd.flatten() {
        let info = std::fs::read_to_string(e.path()).unwrap_or_default();
        for l in info.lines() {
            if let Some(v) = l.strip_prefix("prog_id:") {
                if let Ok(id) = v.trim().parse() {
                    ids.push(id);
                }
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(feature = "bpf")]
#[test]
#[ignore = "needs root: loads eBPF probes (CAP_BPF+CAP_PERFMON); cargo xtask test runs it as root"]
fn sigint_prints_a_valid_report_and_leaves_no_program_loaded() {
    let _g = ONE_TRACER.lock().unwrap_or_else(|e| e.into_inner());
    common::require_bpf();
    let (child, reader) = start_tracing(&["--duration", "30", "--json"]);
    let ours = programs_held_by(child.id());
    let names: Vec<String> = loaded_programs()
        .into_iter()
        .filter(|(id, _)| ours.contains(id))
        .map(|(_, n)| n)
        .collect();
    // Latency mode: one program on sys_enter, one on sys_exit (names cut to 15 bytes).
    assert_eq!(names.len(), 2, "programs held while tracing: {names:?}");
    assert!(names.iter().all(|n| n.starts_with("triage_")), "{names:?}");
    std::thread::sleep(Duration::from_millis(300));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let o = child.wait_with_output().unwrap();
    let _ = reader.join();
    assert_eq!(o.status.code(), Some(0));
    let j = json(&o);
    let traced = j["sections"]["syscalls"]["traced_s"].as_f64().unwrap();
    assert!(traced < 5.0, "window did not end early: {traced}");
    // Programs are freed once the last reference goes; give the kernel a moment.
    let still = || -> Vec<(u32, String)> {
        loaded_programs()
            .into_iter()
            .filter(|(id, _)| ours.contains(id))
            .collect()
    };
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while !still().is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(still(), vec![], "left loaded after SIGINT");
}

/// As nobody, without capabilities: the /proc report, exit 0, and the reason with its fix.
#[test]
#[ignore = "needs root: drops privileges with setpriv; cargo xtask test runs it as root"]
fn unprivileged_run_names_the_missing_capabilities() {
    common::require_root();
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_triage"))
        .args(["syscalls", "--duration", "0.3", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let j = json(&o);
    assert!(j["sections"]["syscalls"].is_null());
    assert!(j["sections"]["cpus"].as_array().unwrap().len() >= 2);
    let u = j["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["what"] == "syscall tracing (eBPF)")
        .expect("syscall tracing listed as unavailable");
    if cfg!(feature = "bpf") {
        assert!(u["reason"].as_str().unwrap().contains("CAP_BPF"), "{u}");
        assert!(u["fix"].as_str().unwrap().contains("CAP_PERFMON"), "{u}");
        assert!(
            err.contains("CAP_BPF"),
            "stderr does not say what is missing: {err}"
        );
    }
}

/// `--cgroup` filters in the kernel on a v2 cgroup: a workload moved into a fresh cgroup is
/// the only process counted, exactly.
#[test]
#[ignore = "needs root: loads eBPF probes (CAP_BPF+CAP_PERFMON); cargo xtask test runs it as root"]
fn cgroup_filter_counts_only_that_cgroup() {
    let _g = ONE_TRACER.lock().unwrap_or_else(|e| e.into_inner());
    common::require_bpf();
    let mount = common::cgroup2_mount();
    let name = format!("triage-test-{}", std::process::id());
    let dir = std::path::Path::new(mount).join(&name);
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("create a cgroup under {mount}: {e}"));
    let mut w = Command::new(env!("CARGO_BIN_EXE_triage-workload"))
        .args(["getppid", "2500"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = w.id();
    std::fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
    let cg = format!("/{name}");
    let (child, reader) = start_tracing(&["--cgroup", &cg, "--duration", "1", "--json"]);
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(w.wait().unwrap().success());
    let o = child.wait_with_output().unwrap();
    let _ = reader.join();
    let _ = std::fs::remove_dir(&dir);
    let j = json(&o);
    let s = &j["sections"]["syscalls"];
    assert_eq!(s["scope"], format!("cgroup {cg}"));
    let procs = s["processes"].as_array().unwrap();
    assert!(procs.iter().all(|p| p["pid"] == pid), "{procs:?}");
    assert_eq!(calls_of(&j, pid, "getppid"), Some(2500));
}

/// The classic tracepoint program returns 1, so the event still reaches other perf users:
/// `perf stat` counting raw_syscalls:sys_exit for the workload sees all N calls while triage
/// is attached as `tracepoint`.
#[test]
#[ignore = "needs root: loads eBPF probes (CAP_BPF+CAP_PERFMON); cargo xtask test runs it as root"]
fn classic_tracepoint_leaves_events_to_other_perf_users() {
    let _g = ONE_TRACER.lock().unwrap_or_else(|e| e.into_inner());
    common::require_bpf();
    let perf_ok = Command::new("perf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        perf_ok,
        "perf (linux-perf) is missing: cargo xtask test installs it"
    );
    common::ensure_tracefs();
    const N: u64 = 3000;
    // Without triage first: another program on this machine that returns 0 on sys_exit
    // (libbpf-tools syscount does) would hide the events from perf whatever triage does.
    let (seen, _) = perf_counts_sys_exit(N, None);
    assert!(
        seen >= N,
        "perf sees {seen} < {N} sys_exit events even without triage: another tracer on this \
         machine hides them (a classic tracepoint program returning 0, e.g. libbpf-tools syscount)"
    );
    let (seen, j) = perf_counts_sys_exit(N, Some("tracepoint"));
    let j = j.unwrap();
    assert_eq!(j["sections"]["syscalls"]["attach_type"], "tracepoint");
    assert_eq!(syscall(&j, "getppid")["calls"], N);
    assert!(seen >= N, "perf saw {seen} sys_exit events, fewer than {N}");
}

/// Run the getppid workload under `perf stat -e raw_syscalls:sys_exit -p`, with triage
/// attached as `attach` if given: (events perf counted, triage's report).
fn perf_counts_sys_exit(n: u64, attach: Option<&str>) -> (u64, Option<Value>) {
    let mut w = Command::new(env!("CARGO_BIN_EXE_triage-workload"))
        .args(["getppid", &n.to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = w.id().to_string();
    let tracer =
        attach.map(|a| start_tracing(&["--pid", &pid, "--attach", a, "--duration", "2", "--json"]));
    let perf = Command::new("perf")
        .args(["stat", "-x,", "-e", "raw_syscalls:sys_exit", "-p", &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(w.wait().unwrap().success());
    let p = perf.wait_with_output().unwrap();
    let report = tracer.map(|(child, reader)| {
        let o = child.wait_with_output().unwrap();
        let _ = reader.join();
        json(&o)
    });
    let text = String::from_utf8_lossy(&p.stderr);
    let seen: u64 = text
        .lines()
        .find(|l| l.contains("raw_syscalls:sys_exit"))
        .and_then(|l| l.split(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count from perf stat: {text}"));
    (seen, report)
}
