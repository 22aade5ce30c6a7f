//! Every fixture under fixtures/ through the whole pipeline, rendered as JSON and as a table
//! (insta snapshots), plus what each fault fixture must be diagnosed as.

mod common;

use std::path::{Path, PathBuf};

use triage::analyze::{build_report, Analysis};
use triage::collect::run::from_fixture;
use triage::model::report::{Report, Severity};
use triage::render;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn report(name: &str) -> Report {
    let dir = fixtures_dir().join(name);
    let readings = from_fixture(&dir).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    build_report(&readings, "sixty-second", &Analysis::default())
}

fn all_fixtures() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/ exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn warnings(r: &Report) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| format!("{}: {}", f.id, f.summary))
        .collect()
}

#[test]
fn every_fixture_renders_table_and_json() {
    let names = all_fixtures();
    assert!(
        names.len() >= 9,
        "expected the captured and hand-made fixtures, found {names:?}"
    );
    common::check_each(names, |name| {
        let r = report(name);
        let json = render::json(&r);
        // The JSON is valid, versioned and round-trips to the same model.
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r, "{name}: JSON does not round-trip");
        assert_eq!(back.schema_version, triage::model::report::SCHEMA_VERSION);
        let table = render::table::render(&r, &render::table::Style { color: false });
        for line in table.lines() {
            // Only a single unbreakable word (a long path) may overflow.
            assert!(
                line.chars().count() <= 100 || !line.trim().contains(' '),
                "{name}: table line over 100 columns: {line}"
            );
            assert!(!line.contains('\x1b'), "{name}: escape sequence in table");
        }
        insta::assert_snapshot!(format!("{name}.table"), table);
        insta::assert_json_snapshot!(format!("{name}.json"), r);
    });
}

/// The fault each captured scenario produces, as the top finding.
const EXPECTED_TOP: &[(&str, &str)] = &[
    ("cpu-saturation", "cpu.saturation.runqueue"),
    ("cgroup-cpu-throttle", "cgroup.cpu.throttled"),
    ("memory-pressure-swap", "memory.saturation.swapping"),
    ("disk-saturation", "disk.saturation.queue"),
    ("net-retransmits", "tcp.errors.retransmits"),
    ("qdisc-drops-retransmits", "network.saturation.qdisc_drops"),
];

#[test]
fn fault_fixtures_name_the_fault_first() {
    for (name, id) in EXPECTED_TOP {
        let r = report(name);
        let top = r
            .findings
            .first()
            .unwrap_or_else(|| panic!("{name}: no finding at all"));
        assert_eq!(
            &top.id, id,
            "{name}: top finding is {} ({})",
            top.id, top.summary
        );
        assert!(
            top.severity >= Severity::Warning,
            "{name}: top finding only {:?}",
            top.severity
        );
        assert!(
            !top.evidence.is_empty() && !top.next.is_empty(),
            "{name}: finding without evidence or next step"
        );
    }
}

#[test]
fn idle_has_no_warning() {
    let r = report("idle");
    assert_eq!(warnings(&r), Vec::<String>::new());
    // ... and still measured everything.
    assert!(r.sections.vmstat.as_ref().unwrap().samples >= 10);
    assert!(r.window.elapsed_s > 1.0);
    assert!(!r.sections.cpus.is_empty());
}

#[test]
fn cgroup_v2_only_host_reads_v2_limits_and_throttling() {
    let r = report("cgroup-v2-only");
    assert_eq!(r.host.cgroup_mode.as_deref(), Some("v2"));
    assert_eq!(
        r.host.cgroup.as_deref(),
        Some("/system.slice/triage.service")
    );
    let ids: Vec<(&str, &str)> = r
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.summary.as_str()))
        .collect();
    let throttled = ids
        .iter()
        .find(|(id, _)| *id == "cgroup.cpu.throttled")
        .expect("throttling found");
    assert!(
        throttled.1.contains("/system.slice/batch.service") && throttled.1.contains("60%"),
        "{}",
        throttled.1
    );
    let mem = ids
        .iter()
        .find(|(id, _)| *id == "cgroup.memory.near_limit")
        .expect("memory near limit found");
    assert!(
        mem.1.contains("/system.slice/web.service") && mem.1.contains("92%"),
        "{}",
        mem.1
    );
    let web = r
        .sections
        .cgroups
        .iter()
        .find(|c| c.path == "/system.slice/web.service")
        .unwrap();
    assert_eq!(web.memory_limit_bytes, Some(1 << 30));
}

#[test]
fn container_quota_sets_effective_cpus_and_drives_saturation() {
    let r = report("container-quota-2-of-64");
    assert_eq!(r.host.online_cpus, 64);
    assert_eq!(r.host.effective_cpus, 2.0);
    assert!(
        r.host.effective_cpus_source.contains("cpu.max"),
        "{}",
        r.host.effective_cpus_source
    );
    assert_eq!(r.host.in_container, Some(true));
    assert_eq!(r.host.memory_limit_bytes, Some(2 << 30));
    let top = &r.findings[0];
    assert_eq!(top.id, "cpu.saturation.runqueue");
    assert!(
        top.summary.contains("on 2 CPUs") && top.summary.contains("worker"),
        "{}",
        top.summary
    );
    // 6 runnable on 64 host CPUs would be nothing: the quota is what makes it saturation.
    assert_eq!(r.sections.cpus.len(), 65);
}

#[test]
fn garbled_files_become_unavailable_entries_and_the_rest_is_reported() {
    let r = report("garbled-proc");
    let what: Vec<String> = r
        .unavailable
        .iter()
        .map(|u| format!("{}: {}", u.what, u.reason))
        .collect();
    for expected in [
        "memory: proc/meminfo: truncated or garbled content",
        "load averages: proc/loadavg: truncated or garbled content",
        "TCP/UDP counters: proc/net/snmp",
        "cpu pressure (PSI): proc/pressure/cpu",
        "disk I/O counters: proc/diskstats: 1 unparseable line(s) skipped",
        "some processes: proc/PID/stat: 1 unparseable stat file(s) skipped",
        "some kernel log lines: dev/kmsg",
    ] {
        assert!(
            what.iter().any(|w| w.starts_with(expected)),
            "missing `{expected}` in {what:#?}"
        );
    }
    // What could be read is still there.
    assert_eq!(r.sections.cpus.len(), 3);
    assert!(r.sections.memory.is_none());
    assert!(r.sections.processes.as_ref().unwrap().count > 10);
    assert!(r.resources.iter().any(|res| res.name == "memory"
        && res
            .metric("memory.used_pct")
            .is_some_and(|m| m.value.is_none() && m.reason.is_some())));
}

#[test]
fn counters_going_backwards_give_no_rate_and_a_note() {
    let r = report("counter-reset");
    // Neither a negative nor a huge rate: the device and interface have no row at all...
    assert!(r.sections.disks.iter().all(|d| d.device != "vda"));
    assert!(r.sections.interfaces.iter().all(|i| i.interface != "eth0"));
    assert!(r
        .resources
        .iter()
        .all(|res| res.instance.as_deref() != Some("vda")));
    // ... and the report says why.
    let notes: Vec<&str> = r.unavailable.iter().map(|u| u.what.as_str()).collect();
    assert!(notes.contains(&"rates of disk vda"), "{notes:?}");
    assert!(
        notes.contains(&"rates of interface eth0 (own)"),
        "{notes:?}"
    );
    assert_eq!(warnings(&r), Vec::<String>::new());
}

/// A swap 97% full with no swap traffic on a box with RAM to spare (the rest of the fixture is
/// the idle recording, through its overlay): the swap space is named, as context (cold pages),
/// and nothing warns.
#[test]
fn swap_nearly_full_with_ram_to_spare_is_context() {
    let r = report("swap-nearly-full");
    let w = warnings(&r);
    assert!(w.is_empty(), "{w:?}");
    let f = &r.findings[0];
    assert_eq!(f.id, "swap.utilization.space");
    assert_eq!(f.severity, Severity::Info);
    assert!(f.summary.contains("cold pages"), "{}", f.summary);
    assert_eq!(f.evidence[0].value, 97.0);
    assert!(f.subject.is_empty());
    assert_eq!(r.value("memory", "memory.swap_used_pct"), Some(97.0));
    // The idle recording itself has no swap: no metric value, and a reason.
    let idle = report("idle");
    assert_eq!(idle.value("memory", "memory.swap_used_pct"), None);
}

/// Small writes at 0.5 ms, each followed by a 45 ms cache flush (the rest of the fixture is the
/// idle recording, through its overlay): the slow flush is named on its device, with the flush
/// time as its metric, though w_await and the queue look healthy.
#[test]
fn slow_cache_flushes_are_named_though_w_await_is_fast() {
    let r = report("disk-slow-flush");
    let f = &r.findings[0];
    assert_eq!(f.id, "disk.saturation.flush");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.subject.device.as_deref(), Some("vda"));
    assert_eq!(f.evidence[0].metric, "disk.flush_await_ms");
    assert_eq!(f.evidence[0].value, 45.0);
    assert_eq!(f.evidence[1].value, 15.0);
    let metric = |r: &Report| {
        r.resource("disk", Some("vda"))
            .and_then(|d| d.metric("disk.flush_await_ms"))
            .and_then(|m| m.value)
    };
    assert_eq!(metric(&r), Some(45.0));
    // Only the flush is slow: no await or queue finding, and w_await is 0.5 ms.
    let vda = r.sections.disks.iter().find(|d| d.device == "vda").unwrap();
    assert_eq!(vda.w_await_ms, Some(0.5));
    let disk: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.resource == "disk")
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(disk, ["disk.saturation.flush"]);
    // The idle recording completed no flush in its window: no metric, no finding.
    let idle = report("idle");
    assert_eq!(metric(&idle), None);
    assert!(idle
        .findings
        .iter()
        .all(|f| f.id != "disk.saturation.flush"));
}

/// fixtures/ stays small: a recording of 300 files or more is packed (`cargo xtask fixtures
/// pack NAME`: one `tree.tar` beside `meta.json`, nothing else), and an overlay holds only its
/// changes. A new capture committed as a directory fails here with the command to run.
#[test]
fn large_recordings_are_packed() {
    fn files(p: &Path) -> usize {
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                if e.file_type().unwrap().is_dir() {
                    files(&e.path())
                } else {
                    1
                }
            })
            .sum()
    }
    let mut packed = 0;
    for name in all_fixtures() {
        let dir = fixtures_dir().join(&name);
        let n = files(&dir);
        if dir.join(triage::host::packed::TREE_FILE).is_file() {
            assert_eq!(
                n, 2,
                "{name}: a packed fixture is tree.tar and meta.json only"
            );
            packed += 1;
        } else {
            assert!(
                n < 300,
                "fixtures/{name} has {n} files: run `cargo xtask fixtures pack {name}`"
            );
        }
    }
    assert!(packed >= 27, "{packed} packed fixtures");
}
