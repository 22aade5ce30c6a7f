//! The deep dives (`triage cpu|mem|disk|net`) over fixtures: insta snapshots of every
//! fixture x subcommand (table and JSON), what each deep fault fixture must be diagnosed as,
//! and that the idle recordings give no deep finding.

mod common;

use std::path::{Path, PathBuf};

use triage::analyze::Analysis;
use triage::collect::deep::Spec;
use triage::collect::run::from_fixture_spec;
use triage::commands::pipeline::report as deep_report;
use triage::commands::views::{self, View};
use triage::model::deep::Scope;
use triage::model::report::{Report, Severity};
use triage::render;

const FOCI: [&View; 4] = [&views::CPU, &views::MEM, &views::DISK, &views::NET];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn scoped(name: &str, focus: &View, scope: Scope) -> Report {
    let dir = fixtures_dir().join(name);
    let r = from_fixture_spec(&dir, &Spec::ALL).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    deep_report(&r, focus, &scope, &Analysis::default())
}

fn report(name: &str, focus: &View) -> Report {
    scoped(
        name,
        focus,
        Scope {
            top: 10,
            ..Default::default()
        },
    )
}

fn warnings(r: &Report) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(|f| format!("{}: {}", f.id, f.summary))
        .collect()
}

/// The fixtures the deep dives are snapshot-tested on: the deep recordings and hand-made
/// faults, plus the sixty-second ones that matter for a resource (they lack deep files: the
/// views must still render).
const SNAPSHOT_FIXTURES: &[&str] = &[
    "deep-idle",
    "deep-cpu-saturation",
    "deep-memory-pressure-swap",
    "deep-disk-saturation",
    "softirq-one-cpu",
    "memory-leak",
    "direct-reclaim-v1-limit",
    "disk-await-outlier",
    "close-wait-leak",
    "udp-rcvbuf-errors",
    "listen-overflow",
    "softnet-drops",
    "port-exhaustion",
    "oom-kill",
    "io-cgroup-limit",
    "cgroup-v2-only",
    "container-quota-2-of-64",
    "memory-pressure-swap",
    "disk-saturation",
    "net-retransmits",
    "qdisc-drops-retransmits",
    "cpu-saturation",
    "cgroup-cpu-throttle",
];

#[test]
fn every_deep_view_renders_table_and_json() {
    common::check_each(SNAPSHOT_FIXTURES, |name| {
        for focus in FOCI {
            let r = report(name, focus);
            assert_eq!(r.command, focus.name);
            let json = render::json(&r);
            let back: Report = serde_json::from_str(&json).unwrap();
            assert_eq!(back, r, "{name} {}: JSON does not round-trip", focus.name);
            let table = render::table::render(&r, &render::table::Style { color: false });
            for line in table.lines() {
                assert!(
                    line.chars().count() <= 100 || !line.trim().contains(' '),
                    "{name} {}: table line over 100 columns: {line}",
                    focus.name
                );
                assert!(!line.contains('\x1b'));
            }
            insta::assert_snapshot!(format!("{name}.{}.table", focus.name), table);
            insta::assert_json_snapshot!(format!("{name}.{}.json", focus.name), r);
        }
    });
}

/// (fixture, subcommand, finding id, words the summary must hold, its subject as `k=v` pairs)
const EXPECTED: &[(&str, &View, &str, &[&str], &str)] = &[
    (
        "deep-cpu-saturation",
        &views::CPU,
        "cpu.saturation.runqueue",
        &["scn_spin", "on 2 CPUs"],
        "pid=10181 comm=scn_spin",
    ),
    (
        "deep-memory-pressure-swap",
        &views::MEM,
        "memory.saturation.swapping",
        &["/scn-memory-pressure-swap"],
        "pid=9653 comm=scn_memtouch cgroup=/scn-memory-pressure-swap",
    ),
    (
        "deep-memory-pressure-swap",
        &views::MEM,
        "cgroup.memory.limit_hits",
        &["/scn-memory-pressure-swap", "memory.failcnt"],
        "cgroup=/scn-memory-pressure-swap",
    ),
    (
        "deep-disk-saturation",
        &views::DISK,
        "disk.saturation.queue",
        &["vda", "fio"],
        "pid=9101 comm=fio device=vda",
    ),
    (
        "softirq-one-cpu",
        &views::CPU,
        "cpu.saturation.softirq_one_cpu",
        &["NET_RX", "CPU 0", "45%"],
        "cpu=0 class=net_rx",
    ),
    (
        "memory-leak",
        &views::MEM,
        "memory.errors.rss_growth",
        &["leaky (pid 18339)", "6.0 MiB/s"],
        "pid=18339 comm=leaky",
    ),
    (
        "direct-reclaim-v1-limit",
        &views::MEM,
        "memory.saturation.direct_reclaim",
        &["300 allocations/s"],
        "",
    ),
    (
        "direct-reclaim-v1-limit",
        &views::MEM,
        "cgroup.memory.limit_hits",
        &["/app", "400 time(s)"],
        "cgroup=/app",
    ),
    (
        "direct-reclaim-v1-limit",
        &views::MEM,
        "cgroup.memory.near_limit",
        &["/app", "97%"],
        "cgroup=/app",
    ),
    (
        "disk-await-outlier",
        &views::DISK,
        "disk.errors.await_outlier",
        &["vdb", "80.0 ms", "48x"],
        "device=vdb",
    ),
    (
        "close-wait-leak",
        &views::NET,
        "tcp.errors.close_wait_growth",
        &["from 40 to 180"],
        "",
    ),
    (
        "udp-rcvbuf-errors",
        &views::NET,
        "udp.errors.rcvbuf",
        &["800 datagrams/s"],
        "",
    ),
    (
        "listen-overflow",
        &views::NET,
        "tcp.saturation.accept_queue_full",
        &["0.0.0.0:8080", "129/128", "api-server (pid 18339)"],
        "pid=18339 comm=api-server local=0.0.0.0:8080 port=8080",
    ),
    (
        "softnet-drops",
        &views::NET,
        "network.saturation.softnet_drops",
        &["300 packets/s", "CPU 1"],
        "cpu=1",
    ),
    (
        "port-exhaustion",
        &views::NET,
        "tcp.saturation.ephemeral_ports",
        &["26000 sockets from 10.0.2.15 to 10.0.2.20:5432", "28232"],
        "local=10.0.2.15 remote=10.0.2.20:5432 port=5432",
    ),
    (
        "io-cgroup-limit",
        &views::DISK,
        "cgroup.io.at_limit",
        &["/backup", "99%", "254:0 wbps 10485760"],
        "cgroup=/backup",
    ),
    (
        "oom-kill",
        &views::MEM,
        "memory.errors.oom_kill",
        &["worker", "31337"],
        "pid=31337 comm=worker cgroup=/app/worker class=oom_kill",
    ),
    (
        "cgroup-v2-only",
        &views::MEM,
        "cgroup.memory.near_limit",
        &["/system.slice/web.service", "92%"],
        "cgroup=/system.slice/web.service",
    ),
    (
        "cgroup-v2-only",
        &views::CPU,
        "cgroup.cpu.throttled",
        &["/system.slice/batch.service"],
        "cgroup=/system.slice/batch.service",
    ),
    (
        "container-quota-2-of-64",
        &views::CPU,
        "cpu.saturation.runqueue",
        &["on 2 CPUs"],
        "pid=40001 comm=worker cgroup=/kubepods/burstable/pod1234/ctr",
    ),
];

#[test]
fn each_deep_fault_fixture_has_its_finding() {
    for (name, focus, id, words, subject) in EXPECTED {
        let r = report(name, focus);
        let f = r
            .findings
            .iter()
            .find(|f| f.id == *id)
            .unwrap_or_else(|| panic!("{name} {}: no {id} in {:#?}", focus.name, warnings(&r)));
        assert!(
            f.severity >= Severity::Warning,
            "{name}: {id} only {:?}",
            f.severity
        );
        assert!(!f.evidence.is_empty() && !f.next.is_empty());
        for w in *words {
            assert!(
                f.summary.contains(w),
                "{name} {id}: `{w}` not in {}",
                f.summary
            );
        }
        assert_eq!(
            subject_pairs(&f.subject),
            subject.to_string(),
            "{name} {id}: subject"
        );
    }
}

/// `pid=1 comm=x device=vda`: the subject's fields that are set, in declaration order.
fn subject_pairs(s: &triage::model::report::Subject) -> String {
    let v = serde_json::to_value(s).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(x) => format!("{k}={x}"),
            x => format!("{k}={x}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn idle_recordings_have_no_deep_finding() {
    for name in ["deep-idle", "idle"] {
        for focus in FOCI {
            let r = report(name, focus);
            assert_eq!(warnings(&r), Vec::<String>::new(), "{name} {}", focus.name);
        }
    }
    // Every deep rule id is absent on idle even as info.
    for focus in FOCI {
        let r = report("deep-idle", focus);
        for (_, _, id, _, _) in EXPECTED {
            assert!(r.findings.iter().all(|f| f.id != *id), "{id} on idle");
        }
    }
}

#[test]
fn deep_views_hold_real_values() {
    let c = report("softirq-one-cpu", &views::CPU);
    let cd = c.sections.cpu_detail.as_ref().unwrap();
    let net_rx = cd.softirqs.iter().find(|s| s.name == "NET_RX").unwrap();
    assert_eq!(net_rx.busiest_cpu, 0);
    assert!(net_rx.busiest_cpu_share_pct > 99.0 && net_rx.per_s > 39_000.0);
    assert_eq!(cd.online_cpus, 2);
    // Only this resource's sections.
    assert!(c.sections.disks.is_empty() && c.sections.memory.is_none());
    assert!(c.sections.mem_detail.is_none() && c.sections.net_detail.is_none());

    let m = report("direct-reclaim-v1-limit", &views::MEM);
    let md = m.sections.mem_detail.as_ref().unwrap();
    assert_eq!(
        md.reclaim.allocation_stalls_per_s.map(f64::round),
        Some(300.0)
    );
    let app = md.cgroups.iter().find(|c| c.path == "/app").unwrap();
    assert_eq!(app.limit_bytes, Some(512 << 20));
    assert_eq!(app.max_events, Some(400));
    assert!(md.breakdown.total_bytes.unwrap() > 1 << 30);
    assert_eq!(md.thp_enabled.as_deref(), Some("madvise"));

    let d = report("disk-await-outlier", &views::DISK);
    let vdb = d.sections.disks.iter().find(|x| x.device == "vdb").unwrap();
    assert_eq!(vdb.r_await_ms, Some(80.0));
    let extra = d.sections.disk_detail.as_ref().unwrap();
    assert!(extra
        .devices
        .iter()
        .any(|x| x.device == "vdb" && x.areq_sz_kb == Some(4.0)));

    // Recorded: fio is the I/O consumer; the scenario's hogs run with involuntary switches;
    // the swapping process's RSS is anonymous and partly swapped.
    let d = report("deep-disk-saturation", &views::DISK);
    let top = &d.sections.disk_detail.as_ref().unwrap().top_io[0];
    assert_eq!(top.comm, "fio");
    assert!(top.read_kb_per_s > 10_000.0 && top.write_kb_per_s > 10_000.0);
    let c = report("deep-cpu-saturation", &views::CPU);
    let spin = c
        .sections
        .cpu_detail
        .as_ref()
        .unwrap()
        .top_processes
        .iter()
        .find(|p| p.comm == "scn_spin")
        .unwrap();
    assert!(spin.involuntary_switches_per_s.unwrap() > 10.0 && spin.usr_pct > 10.0);
    let m = report("deep-memory-pressure-swap", &views::MEM);
    let md = m.sections.mem_detail.as_ref().unwrap();
    let touch = md
        .top_rss
        .iter()
        .find(|p| p.comm.starts_with("scn_memtou"))
        .unwrap();
    assert!(touch.anon_bytes.unwrap() > 200 << 20 && touch.swap_bytes.unwrap() > 100 << 20);
    assert!(md.reclaim.swap_in_kb_per_s.unwrap() > 10_000.0);
    assert!(md.psi_some_stall_ms.unwrap() > 100.0);

    let io = report("io-cgroup-limit", &views::DISK);
    let rows = &io.sections.disk_detail.as_ref().unwrap().cgroups;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].path.as_str(), rows[0].version.as_str()),
        ("/backup", "v1")
    );
    assert_eq!(rows[0].limit_used_pct, Some(99.0));
    assert_eq!(
        (rows[1].path.as_str(), rows[1].read_kb_per_s),
        ("/web", 200.0)
    );

    let o = report("oom-kill", &views::MEM);
    let od = o.sections.mem_detail.as_ref().unwrap();
    assert_eq!(od.oom_kills, Some(1));
    let e = &od.oom_events[0];
    assert_eq!(
        (
            e.pid,
            e.comm.as_deref(),
            e.anon_rss_kb,
            e.cgroup.as_deref(),
            e.cgroup_oom
        ),
        (
            Some(31337),
            Some("worker"),
            Some(524288),
            Some("/app/worker"),
            true
        )
    );
    assert!(e.age_s > 0.5 && e.age_s < 2.0, "{}", e.age_s);

    let n = report("listen-overflow", &views::NET);
    let nd = n.sections.net_detail.as_ref().unwrap();
    let l = &nd.listeners[0];
    assert_eq!(
        (l.port, l.accept_queue, l.backlog, l.full),
        (8080, 129, 128, true)
    );
    assert_eq!(l.owner_comm.as_deref(), Some("api-server"));
    assert_eq!(nd.listeners_total, 2);
}

#[test]
fn pid_and_cgroup_scope_the_views() {
    let one = scoped(
        "memory-leak",
        &views::MEM,
        Scope {
            pid: Some(18339),
            top: 10,
            ..Default::default()
        },
    );
    let md = one.sections.mem_detail.as_ref().unwrap();
    assert_eq!(md.top_rss.len(), 1);
    assert_eq!(md.top_rss[0].comm, "leaky");
    // A cgroup path: only processes whose /proc/PID/cgroup is in it.
    let all = report("deep-idle", &views::CPU);
    let cg = scoped(
        "deep-idle",
        &views::CPU,
        Scope {
            cgroup: Some("/nonexistent.slice".into()),
            top: 10,
            ..Default::default()
        },
    );
    assert!(!all
        .sections
        .cpu_detail
        .as_ref()
        .unwrap()
        .top_processes
        .is_empty());
    assert!(cg
        .sections
        .cpu_detail
        .as_ref()
        .unwrap()
        .top_processes
        .is_empty());
    let top1 = scoped(
        "deep-idle",
        &views::MEM,
        Scope {
            top: 1,
            ..Default::default()
        },
    );
    assert_eq!(top1.sections.mem_detail.as_ref().unwrap().top_rss.len(), 1);
}

#[test]
fn sixty_second_json_has_no_deep_sections() {
    let dir = fixtures_dir().join("deep-idle");
    let r = triage::collect::run::from_fixture(&dir).unwrap();
    let rep = triage::analyze::build_report(&r, "sixty-second", &Analysis::default());
    let json = render::json(&rep);
    for k in ["cpu_detail", "mem_detail", "disk_detail", "net_detail"] {
        assert!(!json.contains(k), "{k} in sixty-second JSON");
    }
}
