//! Process-creation storms: many short-lived processes per second. Each fork, exec and exit is
//! kernel work (page tables, mappings, the dynamic loader), so a storm shows as system time
//! spread over processes that are gone before any scan; /proc/stat's `processes` counter gives
//! the rate and the parent's reaped-children CPU names who spawns them
//! ([`crate::resources::tasks::spawn`]).

use super::{ev, finding, threshold, Context};
use crate::model::report::{Finding, Severity, Subject};
use crate::model::sections::Sections;

pub const ID: &str = "tasks.saturation.fork_storm";
/// New processes per second: an idle box makes a few, a busy shell script or a parallel build
/// tens to a few hundred; 500/s and more costs whole CPUs in fork/exec/exit alone (each is
/// ~0.5-1 ms of CPU for a small dynamically linked program).
pub const FORKS_WARN_PER_S: f64 = 500.0;
pub const FORKS_CRIT_PER_S: f64 = 2000.0;

/// The storm finding, and the system-time finding demoted when the storm explains it.
pub fn rules(s: &Sections, _cx: &Context, out: &mut Vec<Finding>) {
    let Some(forks) = s.vmstat.as_ref().and_then(|v| v.forks_per_s) else {
        return;
    };
    if forks < FORKS_WARN_PER_S {
        return;
    }
    let all = s.cpus.iter().find(|c| c.cpu == "all");
    let sys = all.map_or(0.0, |a| a.sys_pct + a.irq_pct + a.soft_pct);
    let sys_warn = threshold("cpu.system_pct").warn;
    let sev = if forks >= FORKS_CRIT_PER_S || sys >= sys_warn {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let top = s.processes.as_ref().and_then(|p| p.spawners.first());
    let (who, subject, next) = match top {
        Some(p) => {
            let children = p
                .child_comm
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let alive = if p.new_children > 0 {
                format!(
                    ", {} of them alive at the end of the window",
                    p.new_children
                )
            } else {
                String::new()
            };
            (
                format!(
                    "; spawned by {} (pid {}, parent {}): its short-lived children{children} \
                     used {:.0}% of a CPU{alive}",
                    p.comm, p.pid, p.ppid, p.children_cpu_pct
                ),
                Subject {
                    ppid: Some(p.pid),
                    ..Subject::process(p.pid, &p.comm)
                },
                vec![
                    format!("pstree -p {}", p.pid),
                    format!("triage syscalls --pid {}", p.pid),
                    "perf trace -s -e 'sched:sched_process_exec' -a -- sleep 2".into(),
                ],
            )
        }
        None => (
            "; the parent is not identified (its children were reaped by a process that \
             exited, or by init)"
                .into(),
            Subject::default(),
            vec![
                "perf trace -e 'sched:sched_process_exec' -a -- sleep 2".into(),
                "triage syscalls".into(),
            ],
        ),
    };
    let mut e = vec![ev(
        "vmstat.forks_per_s",
        forks,
        ">=",
        FORKS_WARN_PER_S,
        "per_s",
    )];
    if sys >= sys_warn {
        e.push(ev("cpu.system_pct", sys, ">=", sys_warn, "pct"));
    }
    out.push(
        finding(
            ID,
            sev,
            "tasks",
            format!(
                "Process-creation storm: {forks:.0} new processes/s, {sys:.0}% system time (fork, \
                 exec and exit are kernel work){who}"
            ),
            e,
            next,
        )
        .with_subject(subject),
    );
    demote_system_time(s, out);
}

/// The system-time finding names the process with the most system time among those that
/// survive the window; in a fork storm the system time is the storm's, spread over children
/// that are gone. When the spawner's children used more CPU than the named process's system
/// time (or the named process is the spawner, or is unknown and the children used at least a
/// quarter of the system time), the system-time finding becomes context.
fn demote_system_time(s: &Sections, out: &mut [Finding]) {
    let Some(spawner) = s.processes.as_ref().and_then(|p| p.spawners.first()) else {
        return;
    };
    let ncpu = s.cpus.iter().filter(|c| c.cpu != "all").count().max(1) as f64;
    let all_sys = s
        .cpus
        .iter()
        .find(|c| c.cpu == "all")
        .map_or(0.0, |a| (a.sys_pct + a.irq_pct + a.soft_pct) * ncpu);
    let sys_of = |pid: i32| {
        s.processes
            .as_ref()
            .and_then(|p| p.top_cpu.iter().find(|r| r.pid == pid))
            .map(|r| r.sys_pct)
    };
    for f in out.iter_mut() {
        if f.id != "cpu.utilization.system_time" || f.severity < Severity::Warning {
            continue;
        }
        let explained = match f.subject.pid {
            Some(pid) if pid == spawner.pid => false,
            Some(pid) => sys_of(pid).is_none_or(|sys| spawner.children_cpu_pct > sys),
            None => spawner.children_cpu_pct >= 0.25 * all_sys,
        };
        if explained {
            f.severity = Severity::Info;
            f.summary.push_str(&format!(
                " (explained by the process-creation storm: see {ID})"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::report::Host;
    use crate::model::sections::*;

    fn sections(forks: f64, sys: f64, spawner: Option<SpawnerRow>) -> Sections {
        Sections {
            vmstat: Some(VmstatSection {
                forks_per_s: Some(forks),
                ..Default::default()
            }),
            cpus: ["all", "0", "1"]
                .iter()
                .map(|c| CpuRow {
                    cpu: c.to_string(),
                    sys_pct: sys,
                    ..Default::default()
                })
                .collect(),
            processes: Some(ProcessSection {
                top_cpu: vec![ProcRow {
                    pid: 50,
                    comm: "unrelated".into(),
                    cpu_pct: 8.0,
                    sys_pct: 6.0,
                    ..Default::default()
                }],
                spawners: spawner.into_iter().collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn spawner() -> SpawnerRow {
        SpawnerRow {
            pid: 40,
            comm: "loop".into(),
            ppid: 1,
            children_cpu_pct: 60.0,
            new_children: 2,
            child_comm: Some("true".into()),
        }
    }

    fn run(s: &Sections, mut out: Vec<Finding>) -> Vec<Finding> {
        let h = Host::default();
        let cx = Context {
            host: &h,
            elapsed_s: 2.0,
            runnable_samples: &[],
        };
        rules(s, &cx, &mut out);
        out
    }

    fn system_time(pid: Option<i32>) -> Finding {
        finding(
            "cpu.utilization.system_time",
            Severity::Critical,
            "cpu",
            "High kernel time".into(),
            vec![],
            vec![],
        )
        .with_subject(Subject {
            pid,
            ..Default::default()
        })
    }

    #[test]
    fn storm_names_the_parent_and_explains_system_time() {
        let s = sections(1300.0, 52.0, Some(spawner()));
        let f = run(&s, vec![system_time(Some(50)), system_time(None)]);
        let storm = f.iter().find(|f| f.id == ID).unwrap();
        assert_eq!(storm.severity, Severity::Critical); // 52% system time
        assert_eq!(storm.subject.pid, Some(40));
        assert_eq!(storm.subject.comm.as_deref(), Some("loop"));
        assert_eq!(storm.evidence[0].value, 1300.0);
        // The unrelated process with 6% of 52% system time is no longer the story.
        let demoted: Vec<_> = f
            .iter()
            .filter(|f| f.id == "cpu.utilization.system_time")
            .map(|f| f.severity)
            .collect();
        assert_eq!(demoted, [Severity::Info, Severity::Info]);
        // When the system-time finding names the spawner itself, it stays.
        let f = run(&s, vec![system_time(Some(40))]);
        assert_eq!(f[0].severity, Severity::Critical);
        // Quiet system time: a warning.
        let f = run(&sections(600.0, 5.0, Some(spawner())), vec![]);
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn no_storm_below_the_rate_and_no_parent_is_still_a_finding() {
        assert!(run(&sections(450.0, 52.0, Some(spawner())), vec![]).is_empty());
        let f = run(&sections(2500.0, 10.0, None), vec![system_time(Some(50))]);
        assert_eq!(f[1].id, ID);
        assert_eq!(f[1].severity, Severity::Critical);
        assert!(f[1].subject.is_empty());
        // Nobody to blame instead: the system-time finding stays as it was.
        assert_eq!(f[0].severity, Severity::Critical);
    }
}
