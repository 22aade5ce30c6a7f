//! Tasks and processes: the processes at the end of the window with their CPU, memory and
//! faults over it (pidstat/top), zombies and their parent, tasks in uninterruptible sleep (D
//! state), the process whose RSS grew fastest, the parents of short-lived children
//! ([`spawn`]). Their build from two process scans and the measured elapsed time, the `tasks`
//! USE resource, thresholds (with their why), the zombie and RSS-growth rules, and the columns of
//! the pidstat/top and D-state tables. (The PID/thread limit is judged with the other limits,
//! [`super::limits`]; the rules that read tasks with other resources, D-state load and fork
//! storms, are in `analyze`.)

pub mod spawn;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::columns::{f1, s, Align, Column};
use super::contract::{Finding, Metric, Resource, Severity, Subject, UseKind};
use super::limits::{FdRow, LimitsSection};
use super::rule::{ev, finding, level, threshold, Threshold};
use super::vmstat::VmstatSection;
use crate::collect::run::Readings;
use crate::num::{delta, r2};
use crate::text::human_bytes;
use UseKind::{Errors as E, Saturation as S, Utilization as U};

/// How many processes the top lists hold.
pub const TOP_N: usize = 5;

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct DTask {
    pub pid: i32,
    pub tid: i32,
    pub comm: String,
    pub wchan: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProcRow {
    pub pid: i32,
    pub comm: String,
    pub state: String,
    /// Of one CPU: 200 means two CPUs' worth.
    pub cpu_pct: f64,
    pub usr_pct: f64,
    pub sys_pct: f64,
    pub rss_bytes: u64,
    pub threads: i64,
    pub major_faults_per_s: f64,
    /// The CPU it last ran on at the end of the window (`/proc/PID/stat` field 39).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cpu: Option<u32>,
}

impl ProcRow {
    /// The finding subject naming this process.
    pub fn subject(&self) -> Subject {
        Subject::process(self.pid, &self.comm)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProcessSection {
    pub count: u32,
    pub threads: i64,
    pub zombies: u32,
    /// Parent of the most zombies, when there are any.
    pub zombie_parent: Option<ProcRef>,
    pub top_cpu: Vec<ProcRow>,
    pub top_rss: Vec<ProcRow>,
    pub d_state: Vec<DTask>,
    /// Processes whose open file descriptors approach their limit (most used first).
    pub fd_top: Vec<FdRow>,
    /// Processes whose fds or namespaces could not be inspected (permissions).
    pub not_inspected: u32,
    /// The process whose resident memory grew fastest over the window (only when one grew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_grower: Option<RssGrowth>,
    /// When the box forks at least 100 processes/s: the parents whose children come and go
    /// (most reaped children's CPU first). Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spawners: Vec<SpawnerRow>,
}

/// A process that spawns many short-lived children.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SpawnerRow {
    pub pid: i32,
    pub comm: String,
    pub ppid: i32,
    /// CPU of the short-lived children it reaped in the window, % of one CPU: the growth of
    /// its cutime + cstime, less what children already running at t0 brought (short-lived
    /// children leave no other trace in /proc).
    pub children_cpu_pct: f64,
    /// Its children born in the window and still alive at the end.
    pub new_children: u32,
    /// The most common name among those children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_comm: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct RssGrowth {
    pub pid: i32,
    pub comm: String,
    pub rss_bytes: u64,
    pub growth_bytes_per_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProcRef {
    pub pid: i32,
    pub comm: String,
    pub count: u32,
}

// ---- build ---------------------------------------------------------------------------------

pub fn processes(r: &Readings) -> Option<ProcessSection> {
    let el = r.meta.elapsed_s;
    let tck = r.meta.clock_ticks_per_s.max(1) as f64;
    let page = r.meta.page_size_bytes;
    let p1 = &r.t1.procs.procs;
    if p1.is_empty() {
        return None;
    }
    let p0 = &r.t0.procs.procs;
    let mut rows = Vec::new();
    for p in p1.values() {
        // Same PID and same start time: the same process. Otherwise it started in the window.
        let (du, ds, dmaj) = match p0.get(&p.pid).filter(|o| o.starttime == p.starttime) {
            Some(o) => (
                delta(o.utime, p.utime).unwrap_or(0),
                delta(o.stime, p.stime).unwrap_or(0),
                delta(o.majflt, p.majflt).unwrap_or(0),
            ),
            None => (p.utime, p.stime, p.majflt),
        };
        let f = |t: u64| r2(t as f64 / tck / el * 100.0);
        rows.push(ProcRow {
            pid: p.pid,
            comm: p.comm.clone(),
            state: p.state.to_string(),
            cpu_pct: f(du.saturating_add(ds)),
            usr_pct: f(du),
            sys_pct: f(ds),
            rss_bytes: p.rss_pages.saturating_mul(page),
            threads: p.num_threads,
            major_faults_per_s: r2(dmaj as f64 / el),
            last_cpu: p.processor,
        });
    }
    let mut top_cpu: Vec<ProcRow> = rows.iter().filter(|p| p.cpu_pct > 0.0).cloned().collect();
    top_cpu.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(a.pid.cmp(&b.pid)));
    top_cpu.truncate(TOP_N);
    let mut top_rss: Vec<ProcRow> = rows.iter().filter(|p| p.rss_bytes > 0).cloned().collect();
    top_rss.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    top_rss.truncate(TOP_N);

    let zombies: Vec<_> = p1.values().filter(|p| p.state == 'Z').collect();
    let mut by_parent: BTreeMap<i32, u32> = BTreeMap::new();
    for z in &zombies {
        *by_parent.entry(z.ppid).or_default() += 1;
    }
    let zombie_parent = by_parent
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(&pid, &count)| ProcRef {
            pid,
            comm: p1.get(&pid).map(|p| p.comm.clone()).unwrap_or_default(),
            count,
        });

    let fd_top = crate::resources::limits::fd_top(r, p1);

    // The same process at both ends whose RSS grew fastest (a process born in the window
    // did not "grow": it started).
    let rss_grower = p1
        .values()
        .filter_map(|p| {
            let o = p0.get(&p.pid).filter(|o| o.starttime == p.starttime)?;
            let grew = p.rss_pages.checked_sub(o.rss_pages).filter(|g| *g > 0)?;
            Some((p, grew as f64 * page as f64 / el))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.pid.cmp(&a.0.pid)))
        .map(|(p, g)| RssGrowth {
            pid: p.pid,
            comm: p.comm.clone(),
            rss_bytes: p.rss_pages.saturating_mul(page),
            growth_bytes_per_s: r2(g),
        });

    Some(ProcessSection {
        count: p1.len() as u32,
        threads: p1
            .values()
            .map(|p| p.num_threads.max(0))
            .fold(0, |a: i64, b| a.saturating_add(b)),
        zombies: zombies.len() as u32,
        zombie_parent,
        top_cpu,
        top_rss,
        d_state: r
            .end
            .d_threads
            .iter()
            .map(|(pid, tid, comm, wchan)| DTask {
                pid: *pid,
                tid: *tid,
                comm: comm.clone(),
                wchan: wchan.clone(),
            })
            .collect(),
        fd_top,
        not_inspected: (r.end.fd_denied.max(r.namespaces.denied)) as u32,
        rss_grower,
        spawners: spawn::spawners(r),
    })
}

// ---- USE metrics ---------------------------------------------------------------------------

/// The `tasks` USE resource: threads against the PID/thread limit, D-state tasks (sampled),
/// zombies.
pub fn use_resource(
    l: &LimitsSection,
    vm: Option<&VmstatSection>,
    procs: Option<&ProcessSection>,
) -> Resource {
    let mut tasks = Resource::new("tasks", None);
    push(
        &mut tasks,
        Metric::maybe(
            "tasks.used_pct",
            U,
            "threads",
            l.tasks_pct,
            "pct",
            "/proc/loadavg, pid_max, threads-max",
            "limits unreadable",
        ),
    );
    push(
        &mut tasks,
        Metric::maybe(
            "tasks.blocked_avg",
            S,
            "D avg",
            vm.and_then(|v| v.blocked_avg),
            "count",
            "/proc/stat procs_blocked (sampled)",
            "no samples",
        ),
    );
    let z = procs.map(|p| p.zombies as f64);
    push(
        &mut tasks,
        Metric::maybe(
            "tasks.zombies",
            E,
            "zombies",
            z,
            "count",
            "/proc/PID/stat",
            "no process scan",
        ),
    );
    tasks
}

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

// ---- thresholds and rules ------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "tasks.zombies", warn: 100.0, crit: 1000.0, unit: "count", why: "a few zombies are harmless; many mean a parent not reaping (S0:46)" },
    Threshold { id: "tasks.blocked_avg", warn: 1.0, crit: 4.0, unit: "count", why: "high load with low CPU and D-state tasks = I/O or NFS stall (S3:243)" },
];

/// Many zombies: a parent not reaping its children (named, when one has most of them).
pub fn zombie_rule(p: &ProcessSection, out: &mut Vec<Finding>) {
    if let Some((sev, t)) = level("tasks.zombies", p.zombies as f64) {
        let parent = p
            .zombie_parent
            .as_ref()
            .map(|z| {
                format!(
                    "; {} of them children of {} (pid {}), which does not reap them",
                    z.count, z.comm, z.pid
                )
            })
            .unwrap_or_default();
        out.push(
            finding(
                "tasks.errors.zombies",
                sev,
                "tasks",
                format!("{} zombie processes{parent}", p.zombies),
                vec![ev("tasks.zombies", p.zombies as f64, ">=", t.warn, "count")],
                vec!["ps -eo pid,ppid,stat,comm | awk '$3 ~ /Z/'".into()],
            )
            .with_subject(
                p.zombie_parent
                    .as_ref()
                    .map(|z| Subject::process(z.pid, &z.comm))
                    .unwrap_or_default(),
            ),
        );
    }
}

/// A process whose resident memory grows fast over the window: a leak if it keeps growing.
/// One window is one measure, so a warning at most (the mem view with `--interval` confirms).
pub fn rss_growth_rule(p: &ProcessSection, out: &mut Vec<Finding>) {
    let Some(g) = p.rss_grower.as_ref() else {
        return;
    };
    let kb = g.growth_bytes_per_s / 1024.0;
    // The checklist sees one short window: only growth at the critical rate (tens of MB/s)
    // is worth a warning here; slower growth is for the mem view over several windows.
    let t = threshold("memory.rss_growth_kb_per_s");
    if kb < t.crit {
        return;
    }
    out.push(
        finding(
            "memory.errors.rss_growth",
            Severity::Warning,
            "memory",
            format!(
                "{} (pid {}) grew by {}/s over the window to {} RSS: a leak if it keeps growing",
                g.comm,
                g.pid,
                human_bytes(g.growth_bytes_per_s as u64),
                human_bytes(g.rss_bytes)
            ),
            vec![ev(
                "memory.rss_growth_kb_per_s",
                kb,
                ">=",
                t.crit,
                "kb_per_s",
            )],
            vec![format!(
                "triage mem --pid {} --interval 5 --count 12",
                g.pid
            )],
        )
        .with_subject(Subject::process(g.pid, &g.comm)),
    );
}

// ---- columns -------------------------------------------------------------------------------

/// The pidstat/top table's title: the counts the rows are the top of.
pub fn top_cpu_title(p: &ProcessSection) -> String {
    format!(
        "pidstat/top: by CPU ({} processes, {} threads, {} zombies)",
        p.count, p.threads, p.zombies
    )
}

/// pidstat/top: the processes using the most CPU over the window.
pub const TOP_CPU_COLUMNS: &[Column<ProcRow>] = &[
    Column::left("PID", |x| x.pid.to_string()),
    Column::left("command", |x| s(&x.comm)),
    Column::right("state", |x| s(&x.state)),
    Column::right("%CPU", |x| f1(x.cpu_pct)),
    Column::right("%usr", |x| f1(x.usr_pct)),
    Column::right("%sys", |x| f1(x.sys_pct)),
    Column::right("RSS", |x| human_bytes(x.rss_bytes)),
    Column::right("threads", |x| x.threads.to_string()),
    Column::right("majflt/s", |x| f1(x.major_faults_per_s)),
];

/// top: the processes with the most resident memory at the end of the window.
pub const TOP_RSS_COLUMNS: &[Column<ProcRow>] = &[
    Column::left("PID", |x| x.pid.to_string()),
    Column::left("command", |x| s(&x.comm)),
    Column::right("RSS", |x| human_bytes(x.rss_bytes)),
    Column::right("%CPU", |x| f1(x.cpu_pct)),
];

/// Tasks in D state: the disk view aligns the names left, the checklist right (as its table
/// always was; one alignment for both would change the checklist's snapshots).
pub const fn d_state_columns(names: Align) -> [Column<DTask>; 4] {
    [
        Column::left("PID", |x| x.pid.to_string()),
        Column::right("TID", |x| x.tid.to_string()),
        Column::new("command", names, |x| s(&x.comm)),
        Column::new("waiting in", names, |x| {
            s(x.wchan.as_deref().unwrap_or("-"))
        }),
    ]
}

/// Tasks in D state, as the disk view lists them.
pub const D_STATE_COLUMNS: &[Column<DTask>] = &d_state_columns(Align::Left);

/// Tasks in D state, as the checklist lists them.
pub const CHECKLIST_D_STATE_COLUMNS: &[Column<DTask>] = &d_state_columns(Align::Right);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::procs::ProcSample;

    fn proc(
        pid: i32,
        ppid: i32,
        comm: &str,
        state: char,
        utime: u64,
        starttime: u64,
    ) -> ProcSample {
        ProcSample {
            pid,
            ppid,
            comm: comm.into(),
            state,
            utime,
            stime: 0,
            cutime: 0,
            cstime: 0,
            minflt: 0,
            majflt: 0,
            num_threads: 1,
            starttime,
            rss_pages: 0,
            kernel_thread: false,
            processor: None,
        }
    }

    fn readings(t0: Vec<ProcSample>, t1: Vec<ProcSample>) -> Readings {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idle");
        let mut r = crate::collect::run::from_fixture(&dir).unwrap();
        r.meta.elapsed_s = 2.0;
        r.meta.clock_ticks_per_s = 100;
        r.meta.page_size_bytes = 4096;
        r.t0.procs.procs = t0.into_iter().map(|p| (p.pid, p)).collect();
        r.t1.procs.procs = t1.into_iter().map(|p| (p.pid, p)).collect();
        r.end.fd_use.clear();
        r.end.d_threads = vec![(30, 31, "dd".into(), Some("io_schedule".into()))];
        r
    }

    /// The same process at both ends is judged on its deltas over the measured window; a pid
    /// reused in the window (another start time) on its whole life, and it did not "grow";
    /// zombies are counted with the parent that holds most of them.
    #[test]
    fn deltas_over_the_window_and_a_reused_pid_is_a_new_process() {
        let mut a = proc(10, 1, "app", 'R', 100, 500);
        a.rss_pages = 1000;
        let mut b = a.clone();
        b.utime = 300; // 200 ticks = 2 s of CPU in 2 s: one CPU.
        b.rss_pages = 3000;
        let old = proc(20, 1, "old", 'S', 1000, 600);
        let mut reused = proc(20, 1, "new", 'R', 50, 900);
        reused.rss_pages = 100_000;
        let zombies = (0..3).map(|i| proc(40 + i, 10, "child", 'Z', 0, 700));
        let t1: Vec<ProcSample> = [b, reused].into_iter().chain(zombies).collect();
        let p = processes(&readings(vec![a, old], t1)).unwrap();
        let cpu: Vec<(i32, f64)> = p.top_cpu.iter().map(|x| (x.pid, x.cpu_pct)).collect();
        assert_eq!(cpu, [(10, 100.0), (20, 25.0)]);
        assert_eq!(p.top_rss[0].pid, 20);
        let g = p.rss_grower.as_ref().unwrap();
        assert_eq!((g.pid, g.growth_bytes_per_s), (10, 4_096_000.0));
        assert_eq!((p.count, p.zombies), (5, 3));
        let z = p.zombie_parent.as_ref().unwrap();
        assert_eq!((z.pid, z.comm.as_str(), z.count), (10, "app", 3));
        assert_eq!(p.d_state[0].wchan.as_deref(), Some("io_schedule"));
        let u = use_resource(&LimitsSection::default(), None, Some(&p));
        assert_eq!(u.metric("tasks.zombies").and_then(|m| m.value), Some(3.0));
        assert_eq!(u.metric("tasks.blocked_avg").and_then(|m| m.value), None);
        let mut out = Vec::new();
        zombie_rule(&p, &mut out);
        assert!(out.is_empty(), "3 zombies are below the warning");
        // 4 MB/s is below the critical growth rate this single window warns at.
        rss_growth_rule(&p, &mut out);
        assert!(out.is_empty());
    }

    /// The tables show a row per process, names escaped.
    #[test]
    fn columns_escape_names() {
        let row = ProcRow {
            pid: 7,
            comm: "x\u{202e}y".into(),
            state: "R".into(),
            cpu_pct: 99.94,
            rss_bytes: 3 << 20,
            threads: 1,
            ..Default::default()
        };
        assert_eq!(
            Column::cells(TOP_CPU_COLUMNS, &row),
            [
                "7",
                "x\\u{202e}y",
                "R",
                "99.9",
                "0.0",
                "0.0",
                "3.0 MiB",
                "1",
                "0.0"
            ]
        );
        assert_eq!(
            Column::cells(TOP_RSS_COLUMNS, &row),
            ["7", "x\\u{202e}y", "3.0 MiB", "99.9"]
        );
    }
}
