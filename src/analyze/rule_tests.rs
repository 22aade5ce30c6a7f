//! Each rule against hand-built sections: it fires past its threshold, names what it should,
//! and stays quiet just below. (The recorded fixtures test the rules on real faults.)

use super::*;
use crate::model::report::{Host, Subject};

fn proc_subj(pid: i32, comm: &str) -> Subject {
    Subject::process(pid, comm)
}

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
    // System-wide tables: no narrower subject applies.
    assert!(f.iter().all(|f| f.subject.is_empty()));
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
    assert_eq!(f[0].subject, proc_subj(812, "nginx"));
    // The zombies' subject is the parent that does not reap them.
    assert_eq!(f[1].subject, proc_subj(77, "supervisor"));
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
    // Our own namespace: no netns in the subject; another one is named.
    assert!(f.iter().all(|f| f.subject.netns.is_none()));
    let mut other = row(120.0, 6.0, 0.0, 0);
    other.namespace = "netns:4026532281".into();
    let f = run(&Sections {
        tcp: vec![other],
        ..Default::default()
    });
    assert_eq!(f[0].subject.netns.as_deref(), Some("netns:4026532281"));
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
                device: "/dev/sdb1".into(),
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
    assert_eq!(f[0].subject.mount.as_deref(), Some("/srv"));
    assert_eq!(f[0].subject.device.as_deref(), Some("/dev/sdb1"));
    assert_eq!(f[1].subject.mount.as_deref(), Some("/var"));
    assert_eq!(f[2].subject.interface.as_deref(), Some("eth0"));
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
        disks: vec![DiskRow {
            device: "vdb".into(),
            util_pct: 40.0,
            ..Default::default()
        }],
        processes: Some(ProcessSection {
            top_cpu: vec![ProcRow {
                pid: 44,
                comm: "rsync".into(),
                cpu_pct: 30.0,
                sys_pct: 25.0,
                threads: 2,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(
        ids(&f),
        vec![
            "cpu.saturation.iowait",
            "cpu.saturation.steal",
            "cpu.utilization.system_time"
        ]
    );
    assert_eq!(f[0].subject.device.as_deref(), Some("vdb"));
    assert!(f[1].subject.is_empty());
    assert_eq!(f[2].subject, proc_subj(44, "rsync"));
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
    assert_eq!(f[0].subject, proc_subj(900, "postgres"));
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

fn klog(groups: Vec<KlogGroup>) -> Option<KernelLogSection> {
    Some(KernelLogSection {
        lookback_s: 600.0,
        groups,
        ..Default::default()
    })
}

#[test]
fn one_oom_kill_is_one_critical_finding_naming_victim_and_cgroup() {
    let s = Sections {
        vmstat: Some(VmstatSection {
            oom_kills: Some(1),
            ..Default::default()
        }),
        kernel_log: klog(vec![KlogGroup {
            class: "cgroup_oom".into(),
            label: "cgroup OOM kill".into(),
            count: 1,
            recent: 1,
            in_window: 1,
            newest_age_s: 0.5,
            pid: Some(4321),
            comm: Some("java".into()),
            cgroup: Some("/app".into()),
            message: "Memory cgroup out of memory: Killed process 4321 (java)".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(ids(&f), vec!["memory.errors.oom_kill"]);
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(
        f[0].subject,
        Subject {
            cgroup: Some("/app".into()),
            class: Some("oom_kill".into()),
            ..proc_subj(4321, "java")
        }
    );
    assert!(f[0].summary.contains("java (pid 4321)"), "{}", f[0].summary);
}

#[test]
fn oom_kill_before_the_window_warns_when_recent_and_is_info_when_older() {
    let g = |age: f64, recent: u32| Sections {
        kernel_log: klog(vec![KlogGroup {
            class: "oom_kill".into(),
            label: "OOM kill".into(),
            count: 12,
            recent,
            newest_age_s: age,
            pid: Some(77),
            comm: Some("hog".into()),
            message: "Out of memory: Killed process 77 (hog)".into(),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let f = run(&g(7.0, 12));
    assert_eq!(ids(&f), vec!["memory.errors.oom_kill"]);
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].evidence[0].value, 12.0);
    assert_eq!(f[0].subject.pid, Some(77));
    let f = run(&g(400.0, 0));
    assert_eq!(f[0].severity, Severity::Info);
}

#[test]
fn kernel_errors_are_one_finding_per_class_and_device() {
    let grp =
        |class: &str, label: &str, dev: Option<&str>, recent: u32, in_window: u32| KlogGroup {
            class: class.into(),
            label: label.into(),
            device: dev.map(str::to_string),
            count: recent.max(1),
            recent,
            in_window,
            newest_age_s: if recent > 0 { 7.0 } else { 400.0 },
            message: "m".into(),
            ..Default::default()
        };
    let s = Sections {
        kernel_log: klog(vec![
            grp("io_error", "I/O error", Some("loop7"), 40, 0),
            grp("io_error", "I/O error", Some("sdb"), 0, 0),
            KlogGroup {
                pid: Some(5150),
                comm: Some("dd".into()),
                ..grp("hung_task", "hung task", None, 1, 1)
            },
            grp("conntrack_full", "conntrack table full", None, 3, 0),
        ]),
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(
        ids(&f),
        vec![
            "kernel_log.errors.hung_task",
            "kernel_log.errors.io_error",
            "kernel_log.errors.conntrack_full",
            "kernel_log.errors.io_error"
        ]
    );
    let sev: Vec<Severity> = f.iter().map(|f| f.severity).collect();
    assert_eq!(
        sev,
        vec![
            Severity::Critical,
            Severity::Warning,
            Severity::Warning,
            Severity::Info
        ]
    );
    assert_eq!(
        f[0].subject,
        Subject {
            class: Some("hung_task".into()),
            ..proc_subj(5150, "dd")
        }
    );
    assert_eq!(f[1].subject.device.as_deref(), Some("loop7"));
    assert_eq!(f[1].evidence[0].value, 40.0);
    assert_eq!(f[2].subject.class.as_deref(), Some("conntrack_full"));
    assert_eq!(f[3].subject.device.as_deref(), Some("sdb"));
}

fn cpu(n: &str, busy: f64) -> CpuRow {
    CpuRow {
        cpu: n.into(),
        busy_pct: busy,
        idle_pct: 100.0 - busy,
        ..Default::default()
    }
}

fn spinner(pid: i32, comm: &str, cpu_pct: f64, threads: i64) -> ProcRow {
    ProcRow {
        pid,
        comm: comm.into(),
        cpu_pct,
        usr_pct: cpu_pct,
        threads,
        ..Default::default()
    }
}

#[test]
fn a_single_threaded_process_pegging_a_cpu_is_found_beside_a_busy_one() {
    // CPU1 pegged by a one-thread spinner while CPU0 is 61% busy (the others' median is far
    // above 30%: the old "others idle" condition would say nothing).
    let s = Sections {
        cpus: vec![cpu("all", 80.0), cpu("0", 61.0), cpu("1", 99.5)],
        processes: Some(ProcessSection {
            top_cpu: vec![
                spinner(300, "builder", 120.0, 8),
                spinner(412, "spin", 99.5, 1),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(ids(&f), vec!["cpu.utilization.single_cpu"]);
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(
        f[0].subject,
        Subject {
            cpu: Some(1),
            ..proc_subj(412, "spin")
        }
    );
    // Where it last ran decides the CPU, even when another CPU is busier.
    let s = Sections {
        cpus: vec![cpu("all", 99.0), cpu("0", 100.0), cpu("1", 98.0)],
        processes: Some(ProcessSection {
            top_cpu: vec![ProcRow {
                last_cpu: Some(1),
                ..spinner(412, "spin", 95.0, 1)
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].subject.cpu, Some(1));
    // A multi-threaded process using 1.2 CPUs is not a single-thread bottleneck, and a
    // single-threaded one at 80% is not pegged.
    let s = Sections {
        cpus: vec![cpu("all", 70.0), cpu("0", 61.0), cpu("1", 80.0)],
        processes: Some(ProcessSection {
            top_cpu: vec![
                spinner(300, "builder", 120.0, 8),
                spinner(412, "spin", 80.0, 1),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(run(&s).is_empty());
}

#[test]
fn a_pegged_cpu_of_a_page_faulting_process_is_a_consequence() {
    let s = Sections {
        cpus: vec![cpu("all", 50.0), cpu("0", 1.0), cpu("1", 99.0)],
        vmstat: Some(VmstatSection {
            swap_in_kb_per_s: Some(50_000.0),
            major_faults_per_s: Some(3000.0),
            ..Default::default()
        }),
        processes: Some(ProcessSection {
            top_cpu: vec![ProcRow {
                major_faults_per_s: 3000.0,
                ..spinner(55, "leaky", 99.0, 1)
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let f = run(&s);
    assert_eq!(
        ids(&f),
        vec!["memory.saturation.swapping", "cpu.utilization.single_cpu"]
    );
    assert_eq!(f[0].subject, proc_subj(55, "leaky"));
    assert_eq!(f[1].severity, Severity::Info);
    assert_eq!(f[1].subject.pid, Some(55));
    assert!(f[1].summary.contains("consequence"), "{}", f[1].summary);
}

#[test]
fn runqueue_throttling_and_disk_findings_name_their_subject() {
    let s = Sections {
        vmstat: Some(VmstatSection {
            runnable_avg: Some(9.0),
            ..Default::default()
        }),
        processes: Some(ProcessSection {
            top_cpu: vec![spinner(10, "hog", 70.0, 1)],
            ..Default::default()
        }),
        cgroups: vec![CgroupRow {
            path: "/batch".into(),
            cpu_limit_cpus: Some(0.2),
            cpu_used_cpus: Some(0.2),
            throttled_periods_pct: Some(99.0),
            ..Default::default()
        }],
        disks: vec![DiskRow {
            device: "vda".into(),
            util_pct: 99.0,
            aqu_sz: 21.0,
            w_per_s: 5000.0,
            ..Default::default()
        }],
        ..Default::default()
    };
    let h = host();
    let f = findings(
        &s,
        &Context {
            host: &h,
            elapsed_s: 2.0,
            runnable_samples: &[9, 9, 9, 9],
        },
    );
    let by = |id: &str| f.iter().find(|f| f.id == id).unwrap();
    assert_eq!(by("cpu.saturation.runqueue").subject, proc_subj(10, "hog"));
    assert_eq!(
        by("cgroup.cpu.throttled").subject.cgroup.as_deref(),
        Some("/batch")
    );
    assert_eq!(
        by("disk.saturation.queue").subject,
        Subject {
            device: Some("vda".into()),
            ..proc_subj(10, "hog")
        }
    );
}

/// Swap nearly full: info with RAM to spare (cold pages), a warning when RAM is short too,
/// critical when pages still move; quiet below 80% and with no swap at all.
#[test]
fn swap_space_is_judged_with_ram_and_traffic() {
    let gib = 1u64 << 30;
    let sec = |swap_used_pct: u64, avail_pct: f64, swap_out: f64| Sections {
        memory: Some(MemorySection {
            total_bytes: 16 * gib,
            available_bytes: Some((16.0 * gib as f64 * avail_pct / 100.0) as u64),
            available_pct: Some(avail_pct),
            swap_total_bytes: 4 * gib,
            swap_used_bytes: 4 * gib * swap_used_pct / 100,
            ..Default::default()
        }),
        vmstat: Some(VmstatSection {
            swap_out_kb_per_s: Some(swap_out),
            ..Default::default()
        }),
        ..Default::default()
    };
    let swap = |s: &Sections| {
        run(s)
            .into_iter()
            .find(|f| f.id == "swap.utilization.space")
            .map(|f| f.severity)
    };
    assert_eq!(swap(&sec(79, 50.0, 0.0)), None);
    assert_eq!(swap(&sec(90, 50.0, 0.0)), Some(Severity::Info));
    assert_eq!(swap(&sec(90, 10.0, 0.0)), Some(Severity::Warning));
    assert_eq!(swap(&sec(97, 10.0, 0.0)), Some(Severity::Warning));
    assert_eq!(swap(&sec(97, 10.0, 50.0)), Some(Severity::Critical));
    assert_eq!(swap(&sec(90, 10.0, 50.0)), Some(Severity::Warning));
    let mut none = sec(0, 10.0, 0.0);
    none.memory.as_mut().unwrap().swap_total_bytes = 0;
    assert_eq!(swap(&none), None);
}
