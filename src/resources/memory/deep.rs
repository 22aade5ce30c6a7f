//! The mem view's rules and tables (`triage mem`) over its detail section ([`MemDetail`],
//! built in `resources::memory`): direct reclaim, memory cgroups at their limit, the
//! fastest-growing process; the columns of its reclaim, OOM-kill, RSS and cgroup tables.
//! Thresholds in `memory::THRESHOLDS` and `cgroup::THRESHOLDS`.

use super::{MemCgroupRow, MemDetail, MemProcRow, OomEvent, Reclaim};
use crate::resources::columns::{f1, o1, ou, s, shorten, Align, Column};
use crate::resources::contract::{Finding, Subject};
use crate::resources::rule::{ev, finding, level};
use crate::text::human_bytes;

/// The mem view's rules: allocations stalled in direct reclaim, cgroups that hit their memory
/// limit in the window, and the process whose RSS grew fastest (a leak to confirm with
/// `--interval`).
pub fn rules(m: &MemDetail, out: &mut Vec<Finding>) {
    if let Some(stalls) = m.reclaim.allocation_stalls_per_s {
        if let Some((sev, t)) = level("memory.allocation_stalls_per_s", stalls) {
            out.push(finding(
                "memory.saturation.direct_reclaim",
                sev,
                "memory",
                format!(
                    "direct reclaim: {stalls:.0} allocations/s stalled to reclaim memory themselves ({:.0} pages/s scanned directly, kswapd {:.0}/s): latency for every allocating process",
                    m.reclaim.direct_scan_per_s.unwrap_or(0.0),
                    m.reclaim.kswapd_scan_per_s.unwrap_or(0.0)
                ),
                vec![ev("memory.allocation_stalls_per_s", stalls, ">=", t.warn, "per_s")],
                vec![
                    "vmstat 1".into(),
                    "grep -E 'allocstall|pgscan|pgsteal' /proc/vmstat".into(),
                    "cat /proc/pressure/memory".into(),
                ],
            ));
        }
    }
    for c in &m.cgroups {
        let events = c.max_events.unwrap_or(0) + c.high_events.unwrap_or(0);
        if let Some((sev, t)) = level("cgroup.memory_limit_events", events as f64) {
            out.push(finding(
                "cgroup.memory.limit_hits",
                sev,
                "cgroup",
                match c.high_events {
                    // v2: memory.events.
                    Some(high) => format!(
                        "{} hit its memory limit {events} time(s) in the window (memory.high {high}, memory.max {}): reclaimed or throttled at {}",
                        s(&c.path),
                        c.max_events.unwrap_or(0),
                        c.limit_bytes.or(c.high_bytes).map(human_bytes).unwrap_or("?".into()),
                    ),
                    // v1: memory.failcnt.
                    None => format!(
                        "{} hit its memory limit {events} time(s) in the window (memory.failcnt): reclaimed at {}",
                        s(&c.path),
                        c.limit_bytes.map(human_bytes).unwrap_or("?".into()),
                    ),
                },
                vec![ev("cgroup.memory_limit_events", events as f64, ">=", t.warn, "count")],
                vec![
                    if c.high_events.is_some() {
                        format!("cat /sys/fs/cgroup{}/memory.events", s(&c.path))
                    } else {
                        format!("cat /sys/fs/cgroup/memory{}/memory.failcnt", s(&c.path))
                    },
                    format!("triage mem --cgroup {}", s(&c.path)),
                ],
            ).with_subject(Subject {
                cgroup: Some(c.path.clone()),
                ..Default::default()
            }));
        }
    }
    // The leak: the fastest-growing process.
    let grower = m
        .top_rss
        .iter()
        .filter_map(|p| Some((p, p.rss_growth_bytes_per_s?)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.pid.cmp(&a.0.pid)));
    if let Some((p, growth)) = grower {
        let kb = growth / 1024.0;
        if let Some((sev, t)) = level("memory.rss_growth_kb_per_s", kb) {
            out.push(finding(
                "memory.errors.rss_growth",
                sev,
                "memory",
                format!(
                    "{} (pid {}) grew by {}/s over the window to {} RSS: a leak if it keeps growing (watch with --interval)",
                    s(&p.comm),
                    p.pid,
                    human_bytes(growth as u64),
                    human_bytes(p.rss_bytes)
                ),
                vec![ev("memory.rss_growth_kb_per_s", kb, ">=", t.warn, "kb_per_s")],
                vec![
                    format!("triage mem --pid {} --interval 5 --count 12", p.pid),
                    format!("pidstat -r -p {} 5", p.pid),
                    format!("cat /proc/{}/smaps_rollup", p.pid),
                ],
            ).with_subject(Subject::process(p.pid, &p.comm)));
        }
    }
}

/// `human_bytes` without the space (`549.7MiB`): narrow columns in wide tables.
fn hb(v: u64) -> String {
    human_bytes(v).replace(' ', "")
}

/// [`hb`], `-` for none.
fn ob(v: Option<u64>) -> String {
    v.map(hb).unwrap_or_else(|| "-".into())
}

/// vmstat/sar -B: one row, paging and reclaim per second (steal is kswapd's and direct).
pub const RECLAIM_COLUMNS: &[Column<Reclaim>] = &[
    Column::left("si kB/s", |rc| o1(rc.swap_in_kb_per_s)),
    Column::right("so kB/s", |rc| o1(rc.swap_out_kb_per_s)),
    Column::right("minflt/s", |rc| o1(rc.minor_faults_per_s)),
    Column::right("majflt/s", |rc| o1(rc.major_faults_per_s)),
    Column::right("kswapd scan/s", |rc| o1(rc.kswapd_scan_per_s)),
    Column::right("direct scan/s", |rc| o1(rc.direct_scan_per_s)),
    Column {
        header: "steal/s",
        align: Align::Right,
        value: |rc| {
            o1(rc
                .kswapd_steal_per_s
                .zip(rc.direct_steal_per_s)
                .map(|(a, b)| a + b))
        },
    },
    Column::right("allocstall/s", |rc| o1(rc.allocation_stalls_per_s)),
];

/// OOM kills from the kernel log.
pub const OOM_COLUMNS: &[Column<OomEvent>] = &[
    Column::left("age s", |e| format!("{:.0}", e.age_s)),
    Column::right("PID", |e| ou(e.pid.map(u64::from))),
    Column::left("victim", |e| s(e.comm.as_deref().unwrap_or("-"))),
    Column::right("anon-rss", |e| {
        ob(e.anon_rss_kb.map(|k| k.saturating_mul(1024)))
    }),
    Column::left("cgroup", |e| {
        shorten(&s(e.cgroup.as_deref().unwrap_or("-")), 40)
    }),
];

/// pidstat -r: processes by resident memory (growth signed: `-1.0MiB` when it shrank).
pub const RSS_COLUMNS: &[Column<MemProcRow>] = &[
    Column::left("PID", |p| p.pid.to_string()),
    Column::left("command", |p| shorten(&s(&p.comm), 15)),
    Column::right("RSS", |p| hb(p.rss_bytes)),
    Column::right("anon", |p| ob(p.anon_bytes)),
    Column::right("file", |p| ob(p.file_bytes)),
    Column::right("shmem", |p| ob(p.shmem_bytes)),
    Column::right("swap", |p| ob(p.swap_bytes)),
    Column {
        header: "growth/s",
        align: Align::Right,
        value: |p| {
            p.rss_growth_bytes_per_s
                .map(|g| {
                    let sign = if g < 0.0 { "-" } else { "" };
                    format!("{sign}{}", hb(g.abs() as u64))
                })
                .unwrap_or_else(|| "-".into())
        },
    },
    Column::right("minflt/s", |p| f1(p.minor_faults_per_s)),
    Column::right("majflt/s", |p| f1(p.major_faults_per_s)),
];

/// Memory cgroups against their limits, with their events in the window.
pub const CGROUP_COLUMNS: &[Column<MemCgroupRow>] = &[
    Column::left("cgroup", |c| shorten(&s(&c.path), 32)),
    Column::right("usage", |c| hb(c.usage_bytes)),
    Column::right("max", |c| ob(c.limit_bytes)),
    Column::right("high", |c| ob(c.high_bytes)),
    Column::right("used%", |c| o1(c.used_pct)),
    Column::right("swap", |c| ob(c.swap_bytes)),
    Column::right("high ev", |c| ou(c.high_events)),
    Column::right("max ev", |c| ou(c.max_events)),
    Column::right("oom kills", |c| ou(c.oom_kill_events)),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::contract::Severity;

    #[test]
    fn cgroup_limit_hits_say_which_interface_counted_them() {
        let v2 = MemCgroupRow {
            path: "/app".into(),
            high_events: Some(3),
            max_events: Some(2),
            high_bytes: Some(1 << 30),
            ..Default::default()
        };
        let v1 = MemCgroupRow {
            path: "/app".into(),
            max_events: Some(150),
            ..Default::default()
        };
        let m = MemDetail {
            cgroups: vec![v2, v1],
            ..Default::default()
        };
        let mut out = Vec::new();
        rules(&m, &mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|f| f.id == "cgroup.memory.limit_hits"));
        assert_eq!(out[0].severity, Severity::Warning);
        assert_eq!(out[0].evidence[0].value, 5.0);
        assert_eq!(out[0].next[0], "cat /sys/fs/cgroup/app/memory.events");
        assert_eq!(out[1].severity, Severity::Critical);
        assert_eq!(
            out[1].next[0],
            "cat /sys/fs/cgroup/memory/app/memory.failcnt"
        );
        assert_eq!(out[1].subject.cgroup.as_deref(), Some("/app"));
    }

    #[test]
    fn the_fastest_grower_is_named_and_a_shrinking_process_shows_a_sign() {
        let p = |pid, g: f64| MemProcRow {
            pid,
            comm: format!("p{pid}"),
            rss_bytes: 100 << 20,
            rss_growth_bytes_per_s: Some(g),
            ..Default::default()
        };
        let m = MemDetail {
            top_rss: vec![
                p(10, 2.0 * 1024.0 * 1024.0),
                p(11, 20.0 * 1024.0 * 1024.0),
                p(12, -1024.0),
            ],
            ..Default::default()
        };
        let mut out = Vec::new();
        rules(&m, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "memory.errors.rss_growth");
        assert_eq!(out[0].severity, Severity::Critical);
        assert_eq!(out[0].subject.pid, Some(11));
        assert_eq!((RSS_COLUMNS[7].value)(&m.top_rss[2]), "-1.0KiB");
        assert_eq!((RSS_COLUMNS[7].value)(&m.top_rss[0]), "2.0MiB");
    }
}
