//! `triage fleet`, `triage diff` and `--format openmetrics` over the recorded fixtures, and the
//! shipped engine files (Kubernetes manifests, systemd units) checked by real parsers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn triage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_triage"))
}

fn fixture(name: &str) -> String {
    repo().join("fixtures").join(name).display().to_string()
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "status {:?}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

/// `triage sixty-second --fixture NAME --json`, as a host would send it.
fn report(name: &str) -> String {
    let o = triage()
        .args(["sixty-second", "--fixture", &fixture(name), "--json"])
        .output()
        .unwrap();
    // A report is printed either way; an incomplete one (core readings missing) exits 1.
    assert!(
        matches!(o.status.code(), Some(0 | 1)) && !o.stdout.is_empty(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

const FAULTS: &[&str] = &[
    "cpu-saturation",
    "cpu-saturation-ebpf",
    "container-quota-2-of-64",
    "net-retransmits",
    "disk-saturation",
    "cgroup-cpu-throttle",
];
const IDLE: &[&str] = &["idle", "deep-idle"];

/// A directory of reports made from the fixtures, plus files a real collection leaves behind:
/// a truncated report, a foreign JSON file, a report of schema 2.0, and a 1.0 report (no
/// `subject`, which 1.1 added).
fn reports_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in FAULTS.iter().chain(IDLE) {
        std::fs::write(dir.path().join(format!("{name}.json")), report(name)).unwrap();
    }
    let idle = report("idle");
    std::fs::write(
        dir.path().join("zz-truncated.json"),
        &idle[..idle.len() / 3],
    )
    .unwrap();
    std::fs::write(
        dir.path().join("zz-foreign.json"),
        "{\"apiVersion\": \"v1\"}\n",
    )
    .unwrap();
    let mut v2: Value = serde_json::from_str(&report("cpu-saturation")).unwrap();
    v2["schema_version"] = "2.0".into();
    v2["findings"] = "moved elsewhere in 2.0".into();
    std::fs::write(dir.path().join("zz-v2.json"), v2.to_string()).unwrap();
    let mut v10: Value = serde_json::from_str(&report("disk-saturation")).unwrap();
    v10["schema_version"] = "1.0".into();
    v10["host"]["hostname"] = "old-triage".into();
    for f in v10["findings"].as_array_mut().unwrap() {
        f.as_object_mut().unwrap().remove("subject");
    }
    std::fs::write(dir.path().join("old.json"), v10.to_string()).unwrap();
    dir
}

#[test]
fn fleet_ranks_fault_fixtures_above_idle_and_groups_shared_findings() {
    let dir = reports_dir();
    let o = ok(triage()
        .args(["fleet", "--json"])
        .arg(dir.path())
        .output()
        .unwrap());
    let f = json(&o);
    assert_eq!(f["kind"], "fleet");
    // 6 faults + 2 idle + the 1.0 report; the three broken files named and skipped.
    assert_eq!(f["reports_read"], 9);
    let skipped: Vec<(String, String)> = f["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped[0].0.contains("zz-foreign.json") && skipped[0].1.starts_with("not a triage"));
    assert!(skipped[1].0.contains("zz-truncated.json") && skipped[1].1.starts_with("truncated"));
    assert!(skipped[2].0.contains("zz-v2.json") && skipped[2].1.starts_with("schema_version 2.0"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("zz-v2.json"),
        "skips are named on stderr: {stderr}"
    );

    // Every fixture says hostname `vm`: the hosts are told apart by file.
    let hosts = f["hosts"].as_array().unwrap();
    let label = |h: &Value| h["label"].as_str().unwrap().to_string();
    let rank_of = |name: &str| {
        hosts
            .iter()
            .position(|h| label(h) == format!("vm ({name})"))
            .unwrap_or_else(|| {
                panic!(
                    "{name} not ranked: {:?}",
                    hosts.iter().map(label).collect::<Vec<_>>()
                )
            })
    };
    let worst_idle = IDLE.iter().map(|n| rank_of(n)).min().unwrap();
    for fault in FAULTS {
        assert!(
            rank_of(fault) < worst_idle,
            "{fault} ranked below an idle host"
        );
        assert_eq!(
            hosts[rank_of(fault)]["worst_severity"],
            "critical",
            "{fault}"
        );
    }
    for idle in IDLE {
        assert!(
            hosts[rank_of(idle)]["worst_severity"].is_null(),
            "{idle} has findings"
        );
    }
    // The 1.0 report (no subject) is read and ranked among the faults.
    let old = hosts
        .iter()
        .find(|h| h["hostname"] == "old-triage")
        .unwrap();
    assert_eq!(old["schema_version"], "1.0");
    assert_eq!(old["top_finding"]["id"], "disk.saturation.queue");
    // Ranks are 1..n in order.
    for (i, h) in hosts.iter().enumerate() {
        assert_eq!(h["rank"], i + 1);
    }

    // The run queue saturated on three of the hosts: one group, "some" of 9, naming them.
    let groups = f["groups"].as_array().unwrap();
    let rq = groups
        .iter()
        .find(|g| g["id"] == "cpu.saturation.runqueue")
        .unwrap();
    assert_eq!(rq["hosts"], 3, "{rq}");
    assert_eq!(rq["hosts_total"], 9);
    assert_eq!(rq["spread"], "some");
    assert_eq!(
        rq["host_labels"],
        serde_json::json!([
            "vm (container-quota-2-of-64)",
            "vm (cpu-saturation)",
            "vm (cpu-saturation-ebpf)"
        ])
    );
    let retrans = groups
        .iter()
        .find(|g| g["id"] == "tcp.errors.retransmits")
        .unwrap();
    assert_eq!(
        retrans["host_labels"],
        serde_json::json!(["vm (net-retransmits)"])
    );
    assert_eq!(retrans["spread"], "one");
    let disk = groups
        .iter()
        .find(|g| g["id"] == "disk.saturation.queue")
        .unwrap();
    assert_eq!(disk["hosts"], 2, "the recording and its 1.0 copy");

    // Outliers: the retransmitting host on its retransmit rate (148/s vs a median of 0).
    let out = f["outliers"].as_array().unwrap();
    let o = out
        .iter()
        .find(|o| o["metric"] == "tcp.retrans_segs_per_s")
        .expect("retransmit outlier");
    assert_eq!(o["host"], "vm (net-retransmits)");
    assert!((o["value"].as_f64().unwrap() - 148.0).abs() < 1.0, "{o}");
    assert_eq!(o["median"], 0.0);
    assert!(out
        .iter()
        .all(|o| !o["host"].as_str().unwrap().contains("idle")));

    // Table and markdown carry the same ranking.
    let t = ok(triage().arg("fleet").arg(dir.path()).output().unwrap());
    let t = String::from_utf8(t.stdout).unwrap();
    assert!(t.contains("only vm (net-retransmits)"), "{t}");
    assert!(t.contains("on 3 of 9 hosts"), "{t}");
    assert!(t.contains("SKIPPED"));
    let m = ok(triage()
        .args(["fleet", "--markdown"])
        .arg(dir.path())
        .output()
        .unwrap());
    let m = String::from_utf8(m.stdout).unwrap();
    assert!(m.contains("| # | host | worst |"), "{m}");
    assert!(m.contains("### Skipped"));
}

#[test]
fn fleet_reads_ndjson_and_concatenated_reports_on_stdin() {
    let mut input = String::new();
    for name in ["idle", "net-retransmits", "cpu-saturation"] {
        let v: Value = serde_json::from_str(&report(name)).unwrap();
        input.push_str(&v.to_string());
        input.push('\n');
    }
    // A pretty one after the NDJSON lines, then a cut-off line: still read, still named.
    let pretty = report("disk-saturation");
    let cut_line = 3 + pretty.lines().count() + 1;
    input.push_str(&pretty);
    input.push_str("{\"schema_version\":\"1.1\",\"tool\":{\"name\":\"triage\"");
    let mut child = triage()
        .args(["fleet", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let o = ok(child.wait_with_output().unwrap());
    writer.join().unwrap().unwrap();
    let f = json(&o);
    assert_eq!(f["reports_read"], 4);
    assert_eq!(
        f["skipped"][0]["source"],
        format!("stdin#5 (line {cut_line})").as_str()
    );
    let sources: Vec<&str> = f["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["source"].as_str().unwrap())
        .collect();
    // Ranked: retransmits (50.5) > disk queue (20.8) > run queue (3.0) > idle.
    assert_eq!(sources, ["stdin#2", "stdin#4", "stdin#3", "stdin"]);
}

#[test]
fn fleet_without_any_readable_report_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.json"), "not json\n").unwrap();
    let o = triage().arg("fleet").arg(dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("x.json") && e.contains("no report could be read"),
        "{e}"
    );
}

#[test]
fn diff_of_fixture_directories_and_of_report_files() {
    // Fixture directories are replayed.
    let o = ok(triage()
        .args([
            "diff",
            "--json",
            &fixture("idle"),
            &fixture("cpu-saturation"),
        ])
        .output()
        .unwrap());
    let d = json(&o);
    assert_eq!(d["kind"], "diff");
    let ids = |k: &str| -> Vec<String> {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("appeared"), ["cpu.saturation.runqueue"]);
    assert!(ids("cleared").is_empty());
    assert_eq!(d["appeared"][0]["after_severity"], "critical");
    assert!(d["appeared"][0]["before_severity"].is_null());
    let moved: Vec<&str> = d["metrics_moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(moved.contains(&"cpu.busy_pct"), "{moved:?}");
    assert!(moved.contains(&"cpu.runnable_per_cpu"), "{moved:?}");
    // Memory did not move beyond noise between these two recordings.
    assert!(!moved.contains(&"memory.used_pct"), "{moved:?}");
    let busy = d["metrics_moved"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "cpu.busy_pct")
        .unwrap();
    assert!(busy["after"].as_f64().unwrap() > 99.0 && busy["before"].as_f64().unwrap() < 10.0);

    // Report files, the other way round: the finding cleared.
    let dir = tempfile::tempdir().unwrap();
    let (b, a) = (
        dir.path().join("before.json"),
        dir.path().join("after.json"),
    );
    std::fs::write(&b, report("net-retransmits")).unwrap();
    std::fs::write(&a, report("idle")).unwrap();
    let o = ok(triage().arg("diff").arg(&b).arg(&a).output().unwrap());
    let t = String::from_utf8(o.stdout).unwrap();
    assert!(t.contains("CLEARED"), "{t}");
    assert!(t.contains("tcp.errors.retransmits"), "{t}");
    assert!(t.contains("1 cleared"), "{t}");
    // A missing side is an error naming it.
    let o = triage()
        .arg("diff")
        .arg(&b)
        .arg(dir.path().join("nope.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

/// A Python with prometheus-client: installed with pip (or apt) if missing (idempotent; once per
/// run).
fn python_with_prometheus_client() -> String {
    static PY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PY.get_or_init(find_or_install_prometheus_client).clone()
}

fn find_or_install_prometheus_client() -> String {
    let py = "python3".to_string();
    let has = |py: &str| {
        Command::new(py)
            .args(["-c", "import prometheus_client"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has(&py) {
        return py;
    }
    for extra in [&[][..], &["--break-system-packages"][..]] {
        let _ = Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(extra)
            .arg("prometheus-client")
            .status();
        if has(&py) {
            return py;
        }
    }
    // No pip (a fresh Debian): Debian's own package, as root.
    for update_first in [false, true] {
        if update_first {
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        }
        let _ = Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .arg("python3-prometheus-client")
            .status();
        for candidate in [py.as_str(), "/usr/bin/python3"] {
            if has(candidate) {
                return candidate.to_string();
            }
        }
    }
    panic!(
        "python3 with prometheus-client is needed: python3 -m pip install prometheus-client \
         (or apt-get install python3-prometheus-client)"
    );
}

/// Parses `text` with prometheus-client's OpenMetrics parser and with its classic text-format
/// parser (what node_exporter's textfile collector reads); returns the OpenMetrics samples as
/// `[name, labels, value]`.
fn parse_openmetrics(text: &str) -> Vec<(String, serde_json::Map<String, Value>, f64)> {
    let py = python_with_prometheus_client();
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
from prometheus_client.parser import text_string_to_metric_families as classic
text = sys.stdin.read()
out = []
for fam in om(text):
    assert fam.type == "gauge", (fam.name, fam.type)
    for s in fam.samples:
        out.append([s.name, s.labels, s.value])
n = sum(len(f.samples) for f in classic(text))
assert n == len(out), (n, len(out))
print(json.dumps(out))
"#;
    let mut child = Command::new(py)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "the parser rejected it: {}\n{text}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Vec<(String, serde_json::Map<String, Value>, f64)> =
        serde_json::from_slice(&o.stdout).unwrap();
    v
}

#[test]
fn openmetrics_parses_with_prometheus_client() {
    for name in ["net-retransmits", "cpu-saturation", "garbled-proc", "idle"] {
        let o = triage()
            .args([
                "sixty-second",
                "--fixture",
                &fixture(name),
                "--format",
                "openmetrics",
            ])
            .output()
            .unwrap();
        // garbled-proc lacks core readings: an incomplete report (exit 1), still exported.
        let code = if name == "garbled-proc" { 1 } else { 0 };
        assert_eq!(o.status.code(), Some(code), "{name}");
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(text.ends_with("# EOF\n"));
        let samples = parse_openmetrics(&text);
        let j: Value = serde_json::from_str(&report(name)).unwrap();
        // One triage_finding per finding, with its id and severity.
        let findings: Vec<_> = samples.iter().filter(|s| s.0 == "triage_finding").collect();
        assert_eq!(
            findings.len(),
            j["findings"].as_array().unwrap().len(),
            "{name}"
        );
        for (f, jf) in findings.iter().zip(j["findings"].as_array().unwrap()) {
            assert_eq!(f.1["id"], jf["id"]);
            assert_eq!(f.1["severity"], jf["severity"]);
            assert_eq!(f.2, 1.0);
        }
        let count = |sev: &str| {
            samples
                .iter()
                .find(|s| s.0 == "triage_findings" && s.1["severity"] == sev)
                .map(|s| s.2)
        };
        let crit = j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "critical")
            .count() as f64;
        assert_eq!(count("critical"), Some(crit), "{name}");
        let warn = j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "warning")
            .count() as f64;
        assert_eq!(count("warning"), Some(warn), "{name}");
        assert!(count("info").is_some());
        // Every USE metric with a value is there, with its value.
        let busy = j["resources"][0]["metrics"][0]["value"].as_f64().unwrap();
        let s = samples
            .iter()
            .find(|s| s.0 == "triage_cpu_busy_pct")
            .unwrap();
        assert!((s.2 - busy).abs() < 1e-9, "{name}: {} vs {busy}", s.2);
        assert_eq!(s.1["kind"], "utilization");
        let with_value = j["resources"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["metrics"].as_array().unwrap())
            .filter(|m| !m["value"].is_null())
            .count();
        let use_samples = samples
            .iter()
            .filter(|s| s.1.contains_key("resource") && !s.0.starts_with("triage_finding"))
            .count();
        assert_eq!(use_samples, with_value, "{name}");
    }
}

#[test]
fn openmetrics_escapes_hostile_label_values() {
    use triage::model::report::Subject;
    let w = triage::cli::WindowArgs {
        duration: 2.0,
        root: None,
        fixture: Some(repo().join("fixtures/cpu-saturation")),
        log_lookback: 600.0,
        no_bpf: true,
        task_scan: Default::default(),
    };
    let mut r = triage::commands::sixty_second::run(&w, None, "", false).unwrap();
    let hostile = "we\"ird\\na{me}=\"x\",y";
    r.findings[0].subject = Subject {
        comm: Some(hostile.into()),
        cgroup: Some("/a\nb\x1b[31m".into()),
        pid: Some(7),
        ..Default::default()
    };
    // The same finding twice: the second gets `dup`, so no two samples share labels.
    let again = r.findings[0].clone();
    r.findings.push(again);
    let text = triage::render::openmetrics::render(&r);
    let samples = parse_openmetrics(&text);
    let f: Vec<_> = samples.iter().filter(|s| s.0 == "triage_finding").collect();
    assert_eq!(f.len(), 2);
    // Quotes and backslashes round-trip exactly; control characters arrive as visible escapes.
    assert_eq!(f[0].1["comm"], hostile);
    assert_eq!(f[0].1["cgroup"], "/a\\x0ab\\x1b[31m");
    assert_eq!(f[0].1["pid"], "7");
    assert_eq!(f[1].1["dup"], "2");
    assert!(!text.contains('\x1b'));
}

#[test]
fn systemd_unit_writes_the_textfile_atomically() {
    let unit =
        std::fs::read_to_string(repo().join("contrib/systemd/triage-textfile.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    // systemd turns `$$` into `$` and passes the rest to /bin/sh -c.
    let script = exec
        .strip_prefix("/bin/sh -c '")
        .and_then(|s| s.strip_suffix('\''))
        .expect("ExecStart=/bin/sh -c '...'")
        .replace("$$", "$");
    assert!(script.contains("--format openmetrics"));
    assert!(
        script.contains("mv -f"),
        "written to a temporary file, then renamed"
    );
    // Run it for real against a fixture, in a temporary textfile directory.
    let script = script.replace(
        "/usr/local/bin/triage sixty-second --duration 5",
        &format!(
            "{} sixty-second --fixture {}",
            env!("CARGO_BIN_EXE_triage"),
            fixture("net-retransmits")
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let o = ok(Command::new("/bin/sh")
        .args(["-c", &script])
        .env("TEXTFILE_DIR", dir.path())
        .output()
        .unwrap());
    assert!(
        o.stdout.is_empty(),
        "the report goes to the file, not stdout"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["triage.prom"], "only the final file is left");
    let text = std::fs::read_to_string(dir.path().join("triage.prom")).unwrap();
    let samples = parse_openmetrics(&text);
    assert!(samples
        .iter()
        .any(|s| s.0 == "triage_finding" && s.1["id"] == "tcp.errors.retransmits"));
    let timer =
        std::fs::read_to_string(repo().join("contrib/systemd/triage-textfile.timer")).unwrap();
    assert!(timer.contains("OnUnitActiveSec=") && timer.contains("WantedBy=timers.target"));
}

fn yaml_docs(path: &Path) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn strs(v: &serde_yaml::Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// The pod template of a DaemonSet or Job: host namespaces, capabilities, mounts, `--root`.
fn check_pod(kind: &str, pod: &serde_yaml::Value) {
    assert_eq!(pod["hostPID"].as_bool(), Some(true), "{kind}: hostPID");
    assert_eq!(
        pod["hostNetwork"].as_bool(),
        Some(true),
        "{kind}: hostNetwork"
    );
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(
        sc["privileged"].as_bool(),
        Some(false),
        "{kind}: not privileged"
    );
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    let add = strs(&sc["capabilities"]["add"]);
    for cap in ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"] {
        assert!(
            add.contains(&cap.to_string()),
            "{kind}: CAP_{cap} missing: {add:?}"
        );
    }
    assert!(
        !add.contains(&"SYS_ADMIN".to_string()),
        "{kind}: SYS_ADMIN is not needed"
    );
    // /proc and /sys of the host, read-only, under the --root directory.
    let volumes = pod["volumes"].as_sequence().unwrap();
    let host_path = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .and_then(|v| v["hostPath"]["path"].as_str())
            .map(str::to_string)
    };
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    let mount_of = |host: &str| {
        mounts
            .iter()
            .find(|m| host_path(m["name"].as_str().unwrap()).as_deref() == Some(host))
            .unwrap_or_else(|| panic!("{kind}: {host} not mounted"))
    };
    for (host, at) in [("/proc", "/host/proc"), ("/sys", "/host/sys")] {
        let m = mount_of(host);
        assert_eq!(m["mountPath"].as_str(), Some(at), "{kind}");
        assert_eq!(
            m["readOnly"].as_bool(),
            Some(true),
            "{kind}: {host} read-only"
        );
    }
    let cmdline = [strs(&c["command"]), strs(&c["args"])].concat().join(" ");
    assert!(cmdline.contains("sixty-second"), "{kind}: {cmdline}");
    assert!(cmdline.contains("--json"), "{kind}: {cmdline}");
    assert!(cmdline.contains("--root /host"), "{kind}: {cmdline}");
}

#[test]
fn kubernetes_manifests_parse_and_grant_only_what_triage_needs() {
    let dir = repo().join("contrib/kubernetes");
    let docs = yaml_docs(&dir.join("daemonset.yaml"));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Namespace", "DaemonSet"]);
    let ds = &docs[1];
    assert_eq!(ds["apiVersion"].as_str(), Some("apps/v1"));
    assert_eq!(ds["metadata"]["namespace"].as_str(), Some("triage"));
    // The selector matches the template's labels (else the API server rejects it).
    assert_eq!(
        ds["spec"]["selector"]["matchLabels"],
        ds["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(
        ds["spec"]["template"]["spec"]["tolerations"][0]["operator"].as_str(),
        Some("Exists"),
        "every node, tainted ones too"
    );
    check_pod("DaemonSet", &ds["spec"]["template"]["spec"]);

    let job = yaml_docs(&dir.join("job.yaml"));
    assert_eq!(job[0]["kind"].as_str(), Some("Job"));
    let pod = &job[0]["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
    assert_eq!(pod["nodeName"].as_str(), Some("NODE_NAME"));
    check_pod("Job", pod);

    // collect.sh reads the same label the DaemonSet sets.
    let collect = std::fs::read_to_string(dir.join("collect.sh")).unwrap();
    assert!(collect.contains("app.kubernetes.io/name=triage"));
    assert!(collect.contains("fleet"));
}
