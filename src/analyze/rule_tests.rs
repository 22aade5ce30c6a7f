//! Each rule against hand-built sections: it fires past its threshold, names what it should,
//! and stays quiet just below. (The recorded fixtures test the rules on real faults.)

use super::*;
use crate::model::report::Host;

fn host() -> Host {
    Host {
        online_cpus: 4,
        effective_cpus: 4.0,
        ..Default::default()
    }
}

fn run(s: &Sections) -> Vec<Finding> {
    let h = host();
    findings(
        s,
        &Context {
            host: &h,
            elapsed_s: 2.0,
            runnable_samples: &[],
        },
    )
}

fn ids(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.id.as_str()).collect()
}

fn with_limits(l: LimitsSection) -> Sections {
    Sections {
        limits: Some(l),
        ..Default::default()
    }
}

#[test]
fn empty_sections_give_no_finding() {
    assert!(run(&Sections::default()).is_empty());
}

#[test]
fn conntrack_file_handles_and_tasks_near_their_limits() {
    let near = with_limits(LimitsSection {
        conntrack: Some(250_000),
        conntrack_max: Some(262_144),
        conntrack_pct: Some(95.4),
        file_handles: Some(900),
        file_handles_max: Some(1000),
        file_handles_pct: Some(90.0),
        threads: Some(30_000),
        pid_max: Some(32_768),
        tasks_pct: Some(91.6),
        ..Default::default()
    });
    let f = run(&near);
    assert_eq!(
        ids(&f),
        vec![
            "conntrack.utilization.table",
            "tasks.utilization.pid_max",
            "file_descriptors.utilization.system"
        ]
    );
    assert_eq!(f[0].severity, Severity::Critical);
    assert!(f[0].summary.contains("250000/262144"), "{}", f[0].summary);
    let below = with_limits(LimitsSection {
        conntrack_pct: Some(79.9),
        file_handles_pct: Some(79.9),
        tasks_pct: Some(79.9),
        ..Default::default()
    });
    assert!(run(&below).is_empty());
}

#[test]
fn process_near_fd_limit_and_zombies_name_the_process() {
    let s = Sections {
        processes: Some(ProcessSection {
            zombies: 150,
            zombie_parent: Some(ProcRef {
                pid: 77,
                comm: "supervisor".into(),
                count: 150,
            }),
            fd_top: vec![FdRow {
                pid: 812,
                comm: "nginx".into(),
                open_fds: 1019,
                soft_limit: Some(1024),
                used_pct: Some(99.51),
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(
        ids(&f),
        vec![
            "file_descriptors.utilization.process",
            "tasks.errors.zombies"
        ]
    );
    assert!(
        f[0].summary.contains("nginx (pid 812) has 1019 of 1024"),
        "{}",
        f[0].summary
    );
    assert!(
        f[1].summary.contains("supervisor (pid 77)"),
        "{}",
        f[1].summary
    );
}

#[test]
fn tcp_rules_need_volume_and_cross_thresholds() {
    let row = |retr: f64, pct: f64, ovf: f64, tw: u64| TcpRow {
        namespace: "own".into(),
        retrans_segs_per_s: Some(retr),
        retrans_pct: Some(pct),
        listen_overflows_per_s: Some(ovf),
        time_wait: Some(tw),
        ..Default::default()
    };
    let s = Sections {
        tcp: vec![row(120.0, 6.0, 3.0, 25_000)],
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(
        ids(&f),
        vec![
            "tcp.errors.retransmits",
            "tcp.saturation.listen_overflow",
            "tcp.saturation.time_wait"
        ]
    );
    // 50% of a trickle (2 segments/s) is not a retransmit problem worth a warning.
    let quiet = Sections {
        tcp: vec![row(2.0, 50.0, 0.0, 100)],
        ..Default::default()
    };
    assert!(run(&quiet).is_empty());
}

#[test]
fn interface_errors_and_filesystems() {
    let s = Sections {
        interfaces: vec![IfRow {
            namespace: "own".into(),
            interface: "eth0".into(),
            rx_drops_per_s: 12.0,
            ..Default::default()
        }],
        filesystems: vec![
            FsRow {
                mount_point: "/var".into(),
                used_pct: Some(96.0),
                inodes_used_pct: Some(10.0),
                ..Default::default()
            },
            FsRow {
                mount_point: "/srv".into(),
                used_pct: Some(50.0),
                inodes_used_pct: Some(100.0),
                ..Default::default()
            },
            FsRow {
                mount_point: "/snap".into(),
                used_pct: Some(100.0),
                read_only: true,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(
        ids(&f),
        vec![
            "filesystem.utilization.inodes",
            "filesystem.utilization.space",
            "network.errors.interface"
        ]
    );
    assert!(f[0].summary.contains("/srv"));
}

#[test]
fn iowait_steal_and_system_time() {
    let all = CpuRow {
        cpu: "all".into(),
        iowait_pct: 55.0,
        steal_pct: 12.0,
        sys_pct: 31.0,
        idle_pct: 0.0,
        ..Default::default()
    };
    let s = Sections {
        cpus: vec![all],
        ..Default::default()
    };
    assert_eq!(
        ids(&run(&s)),
        vec![
            "cpu.saturation.iowait",
            "cpu.saturation.steal",
            "cpu.utilization.system_time"
        ]
    );
}

#[test]
fn dstate_load_needs_idle_cpus_and_blocked_tasks() {
    let mk = |busy: f64, blocked: f64| Sections {
        load: Some(LoadSection {
            load1: 12.0,
            effective_cpus: 4.0,
            load1_per_cpu: 3.0,
            ..Default::default()
        }),
        cpus: vec![CpuRow {
            cpu: "all".into(),
            busy_pct: busy,
            idle_pct: 100.0 - busy,
            ..Default::default()
        }],
        vmstat: Some(VmstatSection {
            blocked_avg: Some(blocked),
            ..Default::default()
        }),
        processes: Some(ProcessSection {
            d_state: vec![DTask {
                pid: 900,
                tid: 901,
                comm: "postgres".into(),
                wchan: Some("nfs_wait_bit_killable".into()),
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let f = run(&mk(10.0, 8.0));
    assert_eq!(ids(&f), vec!["cpu.saturation.dstate_load"]);
    assert!(
        f[0].summary.contains("nfs_wait_bit_killable"),
        "{}",
        f[0].summary
    );
    assert!(run(&mk(80.0, 8.0)).is_empty(), "busy CPUs explain the load");
    assert!(
        run(&mk(10.0, 0.2)).is_empty(),
        "no blocked tasks, no D-state story"
    );
}

#[test]
fn oom_kills_from_the_counter_are_critical_and_quote_the_kernel() {
    let s = Sections {
        vmstat: Some(VmstatSection {
            oom_kills: Some(1),
            ..Default::default()
        }),
        kernel_log: Some(KernelLogSection {
            lookback_s: 600.0,
            events: vec![KlogEvent {
                age_s: 0.5,
                class: "OOM kill".into(),
                message: "Out of memory: Killed process 4321 (java)".into(),
            }],
            counts: [("OOM kill".to_string(), 1)].into(),
        }),
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(
        ids(&f),
        vec!["kernel_log.errors.recent", "memory.errors.oom_kill"]
    );
    assert!(f.iter().all(|f| f.severity == Severity::Critical));
    assert!(f[1].summary.contains("Killed process 4321 (java)"));
}

#[test]
fn old_kernel_messages_are_info_only() {
    let s = Sections {
        kernel_log: Some(KernelLogSection {
            lookback_s: 600.0,
            events: vec![KlogEvent {
                age_s: 300.0,
                class: "I/O error".into(),
                message: "I/O error, dev sdb, sector 42".into(),
            }],
            counts: [("I/O error".to_string(), 1)].into(),
        }),
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(ids(&f), vec!["kernel_log.errors.earlier"]);
    assert_eq!(f[0].severity, Severity::Info);
}
