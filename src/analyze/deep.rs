//! Rules over the deep-dive sections (`cpu_detail`, `mem_detail`, `disk_detail`,
//! `net_detail`): what the checklist cannot see. Thresholds are in [`super::THRESHOLDS`]; a
//! section that is absent (not this subcommand, or a fixture without the readings) gives no
//! finding, and a healthy idle box gives none either.

use super::{ev, finding, human_bytes, level};
use crate::model::report::{Finding, Host, Subject};
use crate::model::sections::Sections;
use crate::text::sanitize;

fn s(x: &str) -> String {
    sanitize(x).into_owned()
}

pub fn findings(sec: &Sections, host: &Host) -> Vec<Finding> {
    let mut out = Vec::new();
    softirq_rules(sec, host, &mut out);
    mem_rules(sec, &mut out);
    disk_rules(sec, &mut out);
    net_rules(sec, &mut out);
    out
}

/// The cpu view's rule (`resources::cpu::deep`): a softirq type pinned to one CPU.
fn softirq_rules(sec: &Sections, host: &Host, out: &mut Vec<Finding>) {
    if let Some(c) = &sec.cpu_detail {
        crate::resources::cpu::deep::softirq_rule(c, host.online_cpus, out);
    }
}

fn mem_rules(sec: &Sections, out: &mut Vec<Finding>) {
    let Some(m) = &sec.mem_detail else { return };
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

/// The disk view's rules (`resources::disk`): cgroups at their I/O limit, await outliers.
fn disk_rules(sec: &Sections, out: &mut Vec<Finding>) {
    let Some(dd) = &sec.disk_detail else {
        return;
    };
    crate::resources::disk::io_cgroup_rule(&dd.cgroups, out);
    crate::resources::disk::await_outlier_rule(&sec.disks, out);
}

/// The net view's rules (`resources::sockets`).
fn net_rules(sec: &Sections, out: &mut Vec<Finding>) {
    if let Some(n) = &sec.net_detail {
        crate::resources::sockets::rules(n, &sec.tcp, out);
    }
}
