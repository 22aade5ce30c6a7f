//! Kernels without BTF, for real: in a private mount namespace an empty directory hides
//! /sys/kernel/btf (what a kernel built without CONFIG_DEBUG_INFO_BTF looks like to libbpf).
//! Without BTF every probe is reported unavailable with that reason while the /proc report
//! stays complete; with `--btf` pointing at a copy of the kernel's BTF the probes load again
//! (raw_tp: tp_btf needs the kernel's own BTF) and count exactly.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// `triage ARGS` inside `unshare -m` with /sys/kernel/btf hidden under `empty`.
fn hidden_btf(empty: &Path) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$0" /sys/kernel/btf && exec "$@""#)
        .arg(empty)
        .arg(env!("CARGO_BIN_EXE_triage"));
    c
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

struct Setup {
    _dir: tempfile::TempDir,
    empty: std::path::PathBuf,
    btf: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let btf = dir.path().join("vmlinux.btf");
    std::fs::copy("/sys/kernel/btf/vmlinux", &btf).expect("this test needs kernel BTF to copy");
    Setup {
        _dir: dir,
        empty,
        btf,
    }
}

/// The wrapper really hides BTF (else the test below would prove nothing).
fn assert_hidden(empty: &Path) {
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$0" /sys/kernel/btf && ls /sys/kernel/btf | wc -l"#)
        .arg(empty)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0", "{o:?}");
}

#[test]
#[ignore = "needs root: mount namespace, bind mounts and eBPF"]
fn without_btf_probes_say_why_and_the_proc_report_is_complete() {
    let s = setup();
    assert_hidden(&s.empty);
    let o = hidden_btf(&s.empty)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let d = json(&o);
    let btf = d["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "btf")
        .unwrap();
    assert_eq!(btf["ok"], false, "{btf}");
    assert!(btf["fix"].as_str().unwrap().contains("--btf FILE"), "{btf}");
    let probes = d["probes"].as_array().unwrap();
    assert_eq!(probes.len(), triage::probe::catalog().len());
    for p in probes {
        assert_eq!(p["ok"], false, "{p}");
        let err = p["error"].as_str().unwrap();
        assert!(err.contains("btf/vmlinux absent"), "{p}");
        let fix = p["fix"].as_str().unwrap();
        assert!(fix.contains("BTFHub") && fix.contains("--btf"), "{p}");
    }

    let o = hidden_btf(&s.empty)
        .args(["sixty-second", "--duration", "0.5", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let r = json(&o);
    let kinds: Vec<&str> = r["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| !x["metrics"].as_array().unwrap().is_empty())
        .filter_map(|x| x["name"].as_str())
        .collect();
    for want in ["cpu", "memory", "disk", "tcp"] {
        assert!(kinds.contains(&want), "{kinds:?}");
    }
    let unavailable = r["unavailable"].as_array().unwrap();
    let lat = unavailable
        .iter()
        .find(|u| u["what"].as_str().unwrap().contains("eBPF latency"))
        .expect("the latency probes are listed as unavailable");
    assert!(lat["reason"].as_str().unwrap().contains("BTF"), "{lat}");
    // Nothing read from /proc is missing.
    assert!(
        !unavailable
            .iter()
            .any(|u| u["reason"].as_str().unwrap_or("").contains("/proc/stat")),
        "{unavailable:?}"
    );
}

#[test]
#[ignore = "needs root: mount namespace, bind mounts and eBPF"]
fn with_btf_flag_the_probes_load_and_count_exactly() {
    let s = setup();
    assert_hidden(&s.empty);
    let btf = s.btf.to_str().unwrap();
    let o = hidden_btf(&s.empty)
        .args(["--btf", btf, "doctor", "--json"])
        .output()
        .unwrap();
    let d = json(&o);
    for p in d["probes"].as_array().unwrap() {
        if p["name"] == "tasks" {
            // An iterator attaches by the kernel's own BTF ids: an external file cannot help,
            // and doctor says so (the process scan reads /proc then).
            assert_eq!(p["ok"], false, "{p}");
            assert!(
                p["error"].as_str().unwrap().contains("kernel's own BTF"),
                "{p}"
            );
            assert!(
                p["fix"].as_str().unwrap().contains("/sys/kernel/btf"),
                "{p}"
            );
            continue;
        }
        assert_eq!(p["ok"], true, "{p}");
        // tp_btf attaches by the kernel's own BTF ids, which libbpf cannot see here; the
        // profile probe runs on perf events, not tracepoints.
        let want = if p["name"] == "profile" {
            "perf_event"
        } else {
            "raw_tp"
        };
        assert_eq!(p["attach_type"], want, "{p}");
    }

    // Exactly N getppid calls of one process, counted through the external BTF (here via the
    // environment variable, the flag's twin).
    const N: u64 = 7_777;
    let mut w = Command::new(env!("CARGO_BIN_EXE_triage-workload"))
        .args(["getppid", &N.to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = w.id();
    let mut t: Child = hidden_btf(&s.empty)
        .env("TRIAGE_BTF", btf)
        .args(["syscalls", "--pid", &pid.to_string()])
        .args(["--duration", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = t.stderr.take().unwrap();
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
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = w.kill();
        let _ = t.kill();
        panic!("triage did not start tracing: {}", reader.join().unwrap());
    }
    w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(w.wait().unwrap().success());
    let o = t.wait_with_output().unwrap();
    let err = reader.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{err}");
    let j = json(&o);
    let sc = &j["sections"]["syscalls"];
    assert_eq!(sc["attach_type"], "raw_tp", "{sc}");
    let calls = sc["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["pid"] == pid && b["syscall"] == "getppid")
        .and_then(|b| b["calls"].as_u64());
    assert_eq!(calls, Some(N), "{sc}");
}

/// The checklist's latency probe loads against a minimal BTF cut from the kernel's (a few
/// hundred types, not libbpf's search of every kernel type) and still measures: tp_btf, a
/// run-queue histogram with samples. `TRIAGE_MINIMAL_BTF=0` loads against the whole BTF.
#[test]
#[ignore = "needs root: eBPF"]
fn latency_loads_against_the_minimal_btf() {
    // `-v` prints libbpf's own log on stderr.
    for (env, source) in [("1", "minimal"), ("0", "kernel")] {
        let o = Command::new(env!("CARGO_BIN_EXE_triage"))
            .env("TRIAGE_MINIMAL_BTF", env)
            .args(["-v", "sixty-second", "--json", "--duration", "1"])
            .output()
            .unwrap();
        let j = json(&o);
        // tp_btf attach ids: triage gives them from its own pass over the kernel BTF, so
        // libbpf never parses the whole of it; left to libbpf (=0), it does.
        let log = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            log.contains("loaded kernel BTF from '/sys/kernel/btf/vmlinux'"),
            source == "kernel",
            "{log}"
        );
        let btf = j["cost"]["btf"].as_array().expect("cost.btf");
        let lat = btf
            .iter()
            .find(|b| b["probe"] == "latency")
            .expect("latency");
        assert_eq!(lat["source"], source, "{lat}");
        if source == "minimal" {
            let types = lat["types"].as_u64().unwrap();
            assert!((100..5_000).contains(&types), "{lat}");
            assert!(lat.get("fallback").is_none(), "{lat}");
        } else {
            assert_eq!(lat["fallback"], "TRIAGE_MINIMAL_BTF=0", "{lat}");
        }
        let l = &j["sections"]["latency"];
        assert_eq!(l["attach_type"], "tp_btf", "{l}");
        let samples: u64 = l["runqueue"]
            .as_array()
            .expect("runqueue histograms")
            .iter()
            .map(|h| h["latency"]["count"].as_u64().unwrap_or(0))
            .sum();
        assert!(samples > 0, "{l}");
    }
}
