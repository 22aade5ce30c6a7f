//! `triage syscalls` over recorded fixtures (those with `probes/syscalls.json`): the whole
//! report without loading BPF, as insta snapshots, and the fault each recording must be
//! diagnosed as.

mod common;

use std::path::{Path, PathBuf};

use triage::analyze::Analysis;
use triage::collect::run::from_fixture;
use triage::commands::syscalls::{report, PROBE_FILE};
use triage::model::report::Report;
use triage::probe::output::SyscallsProbe;
use triage::render;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn syscalls_report(name: &str) -> Report {
    let dir = fixtures_dir().join(name);
    let readings = from_fixture(&dir).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    let probe: SyscallsProbe =
        serde_json::from_slice(&triage::host::safe::read_in(&dir, PROBE_FILE).unwrap()).unwrap();
    report(&readings, Some(&probe), Vec::new(), &Analysis::default())
}

fn recorded() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        // Packed or not (`host::packed`): asked through the fixture reader.
        .filter(|e| triage::host::safe::read_in(&e.path(), PROBE_FILE).is_ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn every_recorded_probe_renders_table_and_json() {
    let names = recorded();
    assert!(
        names.len() >= 2,
        "expected syscall recordings, found {names:?}"
    );
    common::check_each(names, |name| {
        let r = syscalls_report(name);
        let json = render::json(&r);
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r, "{name}: JSON does not round-trip");
        let table = render::table::render(&r, &render::table::Style { color: false });
        for line in table.lines() {
            assert!(
                line.chars().count() <= 100 || !line.trim().contains(' '),
                "{name}: table line over 100 columns: {line}"
            );
        }
        insta::assert_snapshot!(format!("{name}.syscalls.table"), table);
        insta::assert_json_snapshot!(format!("{name}.syscalls.json"), r);
    });
}

#[test]
fn syscall_storm_is_the_top_finding_and_names_the_loop() {
    let r = syscalls_report("syscall-storm");
    let f = &r.findings[0];
    assert_eq!(f.id, "syscalls.saturation.storm", "{:#?}", r.findings);
    assert!(f.summary.contains("scn_sysstorm"), "{}", f.summary);
    assert!(f.summary.contains("getppid"), "{}", f.summary);
    // The process in system time is explained by its syscall.
    let sys = r
        .findings
        .iter()
        .find(|f| f.id == "cpu.utilization.syscall_system_time")
        .expect("system-time finding");
    assert!(sys.summary.contains("getppid"), "{}", sys.summary);
    let s = r.sections.syscalls.as_ref().unwrap();
    assert_eq!(s.attach_type, "tp_btf");
    assert_eq!(s.syscalls[0].name, "getppid");
    assert_eq!(s.dropped.total(), 0);
}

#[test]
fn lock_contention_is_seen_as_futex_time() {
    let r = syscalls_report("futex-lock-contention");
    let f = &r.findings[0];
    assert_eq!(f.id, "locks.saturation.futex", "{:#?}", r.findings);
    assert!(f.summary.contains("scn_lockc"), "{}", f.summary);
    // The sleeper waits too, but alone and idle: not a lock problem.
    assert!(!r
        .findings
        .iter()
        .any(|f| f.id == "locks.saturation.futex" && f.summary.contains("scn_sleeper")));
}

/// The same fixture through the binary: `--fixture` replays the probe output.
#[test]
fn binary_replays_a_recording() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["syscalls", "--json", "--fixture"])
        .arg(fixtures_dir().join("syscall-storm"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["findings"][0]["id"], "syscalls.saturation.storm");
    assert_eq!(j["sections"]["syscalls"]["syscalls"][0]["name"], "getppid");
}
