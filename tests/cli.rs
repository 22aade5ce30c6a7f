//! The real binary, spawned as a user would run it.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{json, triage};

fn run(args: &[&str]) -> Output {
    triage().args(args).output().expect("spawn triage")
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn help_lists_only_working_subcommands() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("sixty-second"));
    assert!(text.contains("capture"));
    for built in ["cpu", "mem", "disk", "net", "syscalls", "offcpu", "doctor"] {
        assert!(text.contains(built), "help does not list {built}");
    }
}

#[test]
fn bad_flag_is_a_usage_error() {
    let o = run(&["sixty-second", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--no-such-flag"));
    let o = run(&["sixty-second", "--duration", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a duration"));
}

#[test]
fn missing_fixture_is_a_clear_runtime_error() {
    let o = run(&["sixty-second", "--fixture", "/nonexistent/fixture"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/fixture/meta.json"));
}

/// An error quoting a hostile path (here a fixture named with a terminal-title escape) prints
/// it escaped: no control byte reaches the terminal.
#[test]
fn errors_escape_the_names_they_quote() {
    let o = run(&["sixty-second", "--fixture", "/tmp/no\x1b]0;pwned\x07where"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("/tmp/no\\x1b]0;pwned\\x07where"), "{err}");
    assert!(!err.bytes().any(|b| b < 0x20 && b != b'\n'), "{err:?}");
}

#[test]
fn fixture_json_and_table_agree() {
    let o = run(&[
        "sixty-second",
        "--fixture",
        &fixture("cpu-saturation"),
        "--json",
    ]);
    assert!(o.status.success());
    let j = json(&o);
    assert_eq!(j["schema_version"], triage::model::report::SCHEMA_VERSION);
    assert_eq!(j["findings"][0]["id"], "cpu.saturation.runqueue");
    let summary = j["findings"][0]["summary"].as_str().unwrap().to_string();
    let t = run(&["sixty-second", "--fixture", &fixture("cpu-saturation")]);
    assert!(t.status.success());
    // The table wraps long lines: compare the words.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words(&String::from_utf8_lossy(&t.stdout)).contains(&words(&summary)));
}

#[test]
fn no_color_when_not_a_tty_and_color_when_forced() {
    let plain = run(&["sixty-second", "--fixture", &fixture("idle")]);
    assert!(!plain.stdout.contains(&0x1b));
    let forced = run(&[
        "sixty-second",
        "--fixture",
        &fixture("idle"),
        "--color",
        "always",
    ]);
    assert!(forced.stdout.contains(&0x1b));
}

#[test]
fn live_run_measures_this_machine() {
    let start = Instant::now();
    let o = run(&["sixty-second", "--duration", "0.5", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = json(&o);
    let el = j["window"]["elapsed_s"].as_f64().unwrap();
    assert!((0.45..1.5).contains(&el), "elapsed {el}");
    assert!(j["window"]["samples"].as_u64().unwrap() >= 3);
    assert!(j["host"]["online_cpus"].as_u64().unwrap() >= 1);
    assert!(j["sections"]["cpus"].as_array().unwrap().len() >= 2);
    assert!(j["sections"]["processes"]["count"].as_u64().unwrap() > 1);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn sigint_ends_the_window_early_with_a_valid_report() {
    let child = triage()
        .args(["sixty-second", "--duration", "30", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let j = json(&o);
    let el = j["window"]["elapsed_s"].as_f64().unwrap();
    assert!(el < 5.0, "window did not end early: {el}");
}

/// As nobody: the /proc report is complete and what could not be read is listed.
#[test]
#[ignore = "needs root: drops privileges with setpriv; cargo xtask test runs it as root"]
fn unprivileged_run_reports_what_it_could_not_read() {
    common::require_root();
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_triage"))
        .args(["sixty-second", "--duration", "0.5", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j = json(&o);
    assert!(j["sections"]["cpus"].as_array().unwrap().len() >= 2);
    assert!(j["sections"]["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(j["sections"]["processes"]["count"].as_u64().unwrap() > 1);
    let unavailable = j["unavailable"].as_array().unwrap();
    let whats: Vec<&str> = unavailable
        .iter()
        .map(|u| u["what"].as_str().unwrap())
        .collect();
    assert!(
        whats.iter().any(|w| w.contains("other users' processes")),
        "unprivileged run does not say it could not inspect other users' processes: {whats:?}"
    );
    // The kernel log needs CAP_SYSLOG here (dmesg_restrict): said, with the fix.
    let klog = unavailable
        .iter()
        .find(|u| u["what"] == "kernel log")
        .expect("kernel log listed as unavailable");
    assert!(klog["fix"].as_str().unwrap().contains("CAP_SYSLOG"));
    assert!(j["sections"]["kernel_log"].is_null());
}

#[test]
fn help_lists_the_deep_dives() {
    let o = run(&["--help"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for cmd in ["cpu", "mem", "disk", "net"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(cmd)),
            "help does not list {cmd}:\n{text}"
        );
        let h = run(&[cmd, "--help"]);
        assert!(h.status.success());
        let h = String::from_utf8_lossy(&h.stdout);
        for flag in [
            "--pid",
            "--cgroup",
            "--top",
            "--interval",
            "--count",
            "--fixture",
        ] {
            assert!(h.contains(flag), "{cmd} --help lacks {flag}");
        }
    }
}

#[test]
fn each_deep_dive_on_a_fixture_as_table_and_json() {
    for (cmd, fixture_name, id, section) in [
        (
            "cpu",
            "softirq-one-cpu",
            "cpu.saturation.softirq_one_cpu",
            "cpu_detail",
        ),
        (
            "mem",
            "memory-leak",
            "memory.errors.rss_growth",
            "mem_detail",
        ),
        (
            "disk",
            "disk-await-outlier",
            "disk.errors.await_outlier",
            "disk_detail",
        ),
        (
            "net",
            "listen-overflow",
            "tcp.saturation.accept_queue_full",
            "net_detail",
        ),
    ] {
        let o = run(&[cmd, "--fixture", &fixture(fixture_name), "--json"]);
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let j = json(&o);
        assert_eq!(j["command"], cmd);
        assert!(j["sections"][section].is_object(), "{cmd}: no {section}");
        let ids: Vec<&str> = j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["id"].as_str())
            .collect();
        assert!(ids.contains(&id), "{cmd}: {ids:?}");
        let t = run(&[cmd, "--fixture", &fixture(fixture_name)]);
        assert!(t.status.success());
        let text = String::from_utf8_lossy(&t.stdout);
        assert!(text.contains(&format!("[{id}]")), "{cmd} table:\n{text}");
    }
}

#[test]
fn pid_scopes_a_deep_dive_and_unknown_pid_fails() {
    let o = run(&[
        "mem",
        "--fixture",
        &fixture("memory-leak"),
        "--pid",
        "18339",
        "--json",
    ]);
    assert!(o.status.success());
    let j = json(&o);
    let top = j["sections"]["mem_detail"]["top_rss"].as_array().unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0]["comm"], "leaky");
    let o = run(&["cpu", "--fixture", &fixture("deep-idle"), "--pid", "999999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such process"));
}

#[test]
fn cgroup_and_top_scope_a_deep_dive() {
    let o = run(&[
        "mem",
        "--fixture",
        &fixture("direct-reclaim-v1-limit"),
        "--cgroup",
        "/app",
        "--top",
        "3",
        "--json",
    ]);
    assert!(o.status.success());
    let j = json(&o);
    let cgs = j["sections"]["mem_detail"]["cgroups"].as_array().unwrap();
    assert!(!cgs.is_empty());
    assert!(cgs
        .iter()
        .all(|c| c["path"].as_str().unwrap().starts_with("/app")));
    let o = run(&[
        "cpu",
        "--fixture",
        &fixture("deep-idle"),
        "--top",
        "1",
        "--json",
    ]);
    let j = json(&o);
    assert_eq!(
        j["sections"]["cpu_detail"]["top_processes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let o = run(&["cpu", "--top", "0"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Live, bounded: 3 windows of 0.2 s each.
#[test]
fn interval_count_gives_a_versioned_series() {
    for cmd in ["cpu", "mem", "disk", "net"] {
        let o = run(&[cmd, "--interval", "0.2", "--count", "3", "--json"]);
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let j = json(&o);
        assert_eq!(
            j["schema_version"],
            triage::model::deep::SERIES_SCHEMA_VERSION
        );
        assert_eq!(j["kind"], "series");
        assert_eq!(j["command"], cmd);
        assert_eq!(j["count"], 3);
        let samples = j["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 3);
        let mut cpu = Vec::new();
        for s in samples {
            assert_eq!(s["command"], cmd);
            assert!(s["window"]["elapsed_s"].as_f64().unwrap() >= 0.19);
            // Each window says what it cost (per-window semantics: probe::cost unit test).
            let c = &s["cost"];
            cpu.push(c["cpu_user_ms"].as_f64().unwrap() + c["cpu_system_ms"].as_f64().unwrap());
            assert!(c["max_rss_kb"].as_u64().unwrap() > 1000, "{cmd}: {c}");
        }
        // Window 1 carries start-up too; every window did some work of its own.
        assert!(cpu.iter().all(|&ms| ms > 0.0), "{cmd}: {cpu:?}");
    }
    let o = run(&["mem", "--interval", "0.2", "--count", "2"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    // Header, rule, one row per window, then the findings.
    let rows = text
        .lines()
        .filter(|l| l.len() > 9 && l.as_bytes()[1].is_ascii_digit() && l.as_bytes()[3] == b':')
        .count();
    assert_eq!(rows, 2, "{text}");
    assert!(text.contains("FINDINGS (in any window)"));
    // --count needs --interval; --interval does not replay a fixture.
    assert_eq!(run(&["mem", "--count", "2"]).status.code(), Some(2));
    let o = run(&["mem", "--interval", "1", "--fixture", &fixture("idle")]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn doctor_says_what_this_box_allows() {
    let o = run(&["doctor"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("BTF"), "{text}");
    let caps = text
        .lines()
        .find(|l| {
            l.trim_start()
                .get(5..)
                .is_some_and(|r| r.starts_with("capabilities "))
        })
        .unwrap_or_else(|| panic!("no capabilities line:\n{text}"));
    assert!(caps.contains("CapEff"), "{caps}");
    for l in text.lines() {
        assert!(l.chars().count() <= 100, "wider than 100 columns: {l}");
    }
    assert!(
        !o.stdout.contains(&0x1b),
        "color escapes without a terminal"
    );
}

#[test]
fn doctor_json_is_the_documented_document() {
    let o = run(&["doctor", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let j = json(&o);
    assert_eq!(
        j["schema_version"],
        triage::commands::doctor::SCHEMA_VERSION
    );
    assert_eq!(j["command"], "doctor");
    assert_eq!(j["tool"]["name"], "triage");
    let pf = &j["preflight"];
    assert!(pf["kernel"].is_string());
    assert!(pf["btf"].is_boolean());
    assert!(pf["caps"].is_array());
    assert!(pf["cgroup_mode"].is_string());
    for key in [
        "tracefs",
        "debugfs",
        "lockdown",
        "cap_eff",
        "unprivileged_bpf_disabled",
        "perf_event_paranoid",
        "kptr_restrict",
        "dmesg_restrict",
        "memlock_limit",
        "container",
        "pid_ns_is_init",
        "net_ns_is_init",
    ] {
        assert!(pf.get(key).is_some(), "preflight.{key} missing");
    }
    assert!(j["can_bpf"].is_boolean());
    assert!(j["bpf_blockers"].is_array());
    assert!(j["probes"].is_array());
    let checks = j["checks"].as_array().unwrap();
    for c in checks {
        assert!(c["name"].is_string() && c["ok"].is_boolean() && c["value"].is_string());
        assert!(c.get("fix").is_some());
    }
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for n in [
        "kernel",
        "btf",
        "tracefs",
        "debugfs",
        "lockdown",
        "capabilities",
        "unprivileged_bpf_disabled",
        "perf_event_paranoid",
        "kptr_restrict",
        "dmesg_restrict",
        "memlock",
        "cgroup_mode",
        "container",
        "pid_namespace",
        "net_namespace",
        "kernel_log",
        "other_users_fds",
        "psi",
    ] {
        assert!(names.contains(&n), "check {n} missing: {names:?}");
    }
    // can_bpf agrees with the blockers.
    assert_eq!(
        j["can_bpf"].as_bool().unwrap(),
        j["bpf_blockers"].as_array().unwrap().is_empty()
    );
}

fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .output()
        .unwrap()
}

/// As nobody: no capabilities, said with the exact fix, and still exit 0 (doctor is a report).
#[test]
#[ignore = "needs root: drops privileges with setpriv; cargo xtask test runs it as root"]
fn unprivileged_doctor_names_missing_capabilities_and_the_fix() {
    common::require_root();
    const SETCAP: &str = "sudo setcap cap_bpf,cap_perfmon+ep $(which triage)";
    let o = as_nobody(&["doctor"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("eBPF probes: NOT allowed here"), "{text}");
    assert!(text.contains(" NO   capabilities "), "{text}");
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("missing CAP_BPF CAP_PERFMON CAP_SYS_ADMIN"),
        "{text}"
    );
    assert!(text.contains(SETCAP), "fix not on one line:\n{text}");
    assert!(text.contains("run as root"), "{text}");

    let o = as_nobody(&["doctor", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let j = json(&o);
    assert_eq!(j["preflight"]["cap_eff"], 0);
    assert_eq!(j["preflight"]["caps"].as_array().unwrap().len(), 0);
    assert_eq!(j["can_bpf"], false);
    let blockers = j["bpf_blockers"].as_array().unwrap();
    assert!(blockers
        .iter()
        .any(|b| b["fix"].as_str().unwrap_or("").contains(SETCAP)));
    let check = |n: &str| {
        j["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(check("capabilities")["ok"], false);
    assert!(check("capabilities")["fix"]
        .as_str()
        .unwrap()
        .contains(SETCAP));
    // /proc/1/fd belongs to root: not readable as nobody, with the capability fix.
    assert_eq!(check("other_users_fds")["ok"], false);
    assert!(check("other_users_fds")["fix"]
        .as_str()
        .unwrap()
        .contains("CAP_SYS_PTRACE"));
}

/// Live, bounded: a thread of this test process spins for the window; `triage cpu --pid` lists
/// it as a thread with its user time and its context-switch rates.
#[test]
fn cpu_pid_lists_a_busy_thread_with_its_switches() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let spinner = std::thread::spawn(move || {
        let mut x = 0u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    });
    let pid = std::process::id().to_string();
    let o = run(&["cpu", "--pid", &pid, "--duration", "0.5", "--json"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    spinner.join().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = json(&o);
    let threads = j["sections"]["cpu_detail"]["top_threads"]
        .as_array()
        .unwrap();
    let busy = threads
        .iter()
        .find(|t| t["tid"].as_i64() != Some(i64::from(std::process::id())))
        .unwrap_or_else(|| panic!("no spinning thread in {threads:#?}"));
    assert!(busy["usr_pct"].as_f64().unwrap() > 5.0, "{busy}");
    assert!(busy["voluntary_switches_per_s"].is_number(), "{busy}");
    assert!(busy["involuntary_switches_per_s"].is_number(), "{busy}");
    let procs = j["sections"]["cpu_detail"]["top_processes"]
        .as_array()
        .unwrap();
    assert_eq!(procs.len(), 1);
    assert_eq!(
        procs[0]["pid"].as_i64(),
        Some(i64::from(std::process::id()))
    );
}

/// One duration syntax: units everywhere, bare numbers are seconds, a bad value is a usage
/// error naming the syntax.
#[test]
fn durations_take_units_and_bad_ones_are_usage_errors() {
    let ok = run(&[
        "sixty-second",
        "--fixture",
        &fixture("idle"),
        "--log-lookback",
        "10m",
        "--json",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let live = run(&["sixty-second", "-d", "300ms", "--json"]);
    assert!(live.status.success());
    let elapsed = json(&live)["window"]["elapsed_s"].as_f64().unwrap();
    assert!((0.25..1.5).contains(&elapsed), "elapsed {elapsed}");
    for args in [
        &["sixty-second", "-d", "fast"][..],
        &["sixty-second", "-d", "2h"][..],
        &["offcpu", "--min-block", "200"][..],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("duration") || err.contains("unit") || err.contains("outside"),
            "{args:?}: {err}"
        );
    }
}
