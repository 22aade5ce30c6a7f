//! The real binary, spawned as a user would run it.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn triage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_triage"))
}

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

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn help_lists_only_working_subcommands() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("sixty-second"));
    assert!(text.contains("capture"));
    assert!(text.contains("syscalls"));
    assert!(
        !text.contains("offcpu"),
        "help mentions unbuilt subcommand offcpu"
    );
}

#[test]
fn bad_flag_is_a_usage_error() {
    let o = run(&["sixty-second", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--no-such-flag"));
    let o = run(&["sixty-second", "--duration", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a number of seconds"));
}

#[test]
fn missing_fixture_is_a_clear_runtime_error() {
    let o = run(&["sixty-second", "--fixture", "/nonexistent/fixture"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/fixture/meta.json"));
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
    assert_eq!(j["schema_version"], "1.0");
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

fn can_drop_privileges() -> bool {
    rustix::process::geteuid().is_root()
        && Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// As nobody: the /proc report is complete and what could not be read is listed.
#[test]
fn unprivileged_run_reports_what_it_could_not_read() {
    if !can_drop_privileges() {
        eprintln!("skipped: needs root and setpriv to drop privileges");
        return;
    }
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
