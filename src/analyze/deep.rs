//! Rules over the deep-dive sections (`cpu_detail`, `mem_detail`, `disk_detail`,
//! `net_detail`): what the checklist cannot see. Thresholds are in [`super::THRESHOLDS`]; a
//! section that is absent (not this subcommand, or a fixture without the readings) gives no
//! finding, and a healthy idle box gives none either.

use super::{ev, finding, human_bytes, level};
use crate::model::report::{Finding, Host, Severity, Subject};
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

fn net_rules(sec: &Sections, out: &mut Vec<Finding>) {
    let Some(n) = &sec.net_detail else { return };
    if let (Some(a), Some(b)) = (n.close_wait_start, n.close_wait_end) {
        let growth = b.saturating_sub(a) as f64;
        if let Some((sev, t)) = level("tcp.close_wait_growth", growth) {
            out.push(finding(
                "tcp.errors.close_wait_growth",
                sev,
                "tcp",
                format!(
                    "CLOSE_WAIT grew from {a} to {b} in the window: peers closed and the application never close()s: a connection or fd leak"
                ),
                vec![ev("tcp.close_wait_growth", growth, ">=", t.warn, "count")],
                vec![
                    "ss -tanp state close-wait".into(),
                    "ls -l /proc/PID/fd | grep -c socket".into(),
                ],
            ));
        }
    }
    if let Some(e) = n.counters.udp_rcvbuf_errors_per_s {
        if let Some((sev, t)) = level("udp.rcvbuf_errors_per_s", e) {
            out.push(finding(
                "udp.errors.rcvbuf",
                sev,
                "udp",
                format!(
                    "UDP receive buffer overflows: {e:.0} datagrams/s dropped because a socket's buffer was full ({:.0} datagrams/s received): the reader is too slow or SO_RCVBUF too small",
                    n.counters.udp_in_datagrams_per_s.unwrap_or(0.0)
                ),
                vec![ev("udp.rcvbuf_errors_per_s", e, ">=", t.warn, "per_s")],
                vec![
                    "ss -uamp".into(),
                    "nstat -az Udp*".into(),
                    "sysctl net.core.rmem_max net.core.rmem_default".into(),
                ],
            ));
        }
    }
    let overflows = sec
        .tcp
        .iter()
        .find(|t| t.namespace == "own")
        .and_then(|t| t.listen_overflows_per_s)
        .unwrap_or(0.0);
    for l in n.listeners.iter().filter(|l| l.full) {
        let Some(fill) = l.fill_pct else { continue };
        let Some((mut sev, t)) = level("tcp.listen_queue_fill_pct", fill) else {
            continue;
        };
        if overflows > 0.0 {
            sev = Severity::Critical;
        }
        let owner = match (&l.owner_comm, l.owner_pid) {
            (Some(c), Some(p)) => format!("{} (pid {p})", s(c)),
            _ => "an unknown process".into(),
        };
        let next_pid = l
            .owner_pid
            .map(|p| format!("pidstat -t -p {p} 1"))
            .unwrap_or_else(|| "ss -ltnp".into());
        out.push(finding(
            "tcp.saturation.accept_queue_full",
            sev,
            "tcp",
            format!(
                "accept queue of {}:{} is full ({}/{}), owned by {owner}; {overflows:.1} listen overflows/s: the application does not accept() fast enough (or the backlog is too small)",
                s(&l.addr), l.port, l.accept_queue, l.backlog
            ),
            vec![
                ev("tcp.listen_queue_fill_pct", fill, ">=", t.warn, "pct"),
                ev("tcp.listen_overflows_per_s", overflows, ">=", 0.0, "per_s"),
            ],
            vec![
                format!("ss -ltn 'sport = :{}'", l.port),
                next_pid,
                "sysctl net.core.somaxconn net.ipv4.tcp_max_syn_backlog".into(),
            ],
        ).with_subject(Subject {
            pid: l.owner_pid,
            comm: l.owner_comm.clone(),
            local: Some(format!("{}:{}", l.addr, l.port)),
            port: Some(l.port),
            ..Default::default()
        }));
    }
    let drops: f64 = n.softnet.iter().map(|c| c.dropped_per_s).sum();
    if let Some((sev, t)) = level("network.softnet_drops_per_s", drops) {
        let worst = n.softnet.iter().max_by(|a, b| {
            a.dropped_per_s
                .total_cmp(&b.dropped_per_s)
                .then(b.cpu.cmp(&a.cpu))
        });
        out.push(finding(
            "network.saturation.softnet_drops",
            sev,
            "network",
            format!(
                "the kernel dropped {drops:.0} packets/s because a CPU's backlog queue was full (most on CPU {}): raise net.core.netdev_max_backlog or spread the load",
                worst.map(|w| w.cpu).unwrap_or(0)
            ),
            vec![ev("network.softnet_drops_per_s", drops, ">=", t.warn, "per_s")],
            vec!["cat /proc/net/softnet_stat".into(), "sysctl net.core.netdev_max_backlog".into()],
        ).with_subject(Subject {
            cpu: worst.map(|w| w.cpu),
            ..Default::default()
        }));
    }
    // Ephemeral ports run out per destination: the kernel needs a local port unique for
    // (local address, remote address:port). Only client-side sockets count; accepted sockets
    // share their listener's port. Without the per-destination dump, no finding: the state
    // counts alone cannot tell 28k server-side TIME_WAIT from exhaustion.
    if let (Some(p), Some(top)) = (
        n.ephemeral_busiest_pct,
        n.client_ports.as_ref().and_then(|c| c.first()),
    ) {
        if let Some((sev, t)) = level("tcp.ephemeral_used_pct", p) {
            let port = top
                .remote
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok());
            out.push(
                finding(
                    "tcp.saturation.ephemeral_ports",
                    sev,
                    "tcp",
                    format!(
                        "{} sockets from {} to {} hold {p:.0}% of the {} ephemeral ports ({} of them in TIME_WAIT): new connections to {} will fail with EADDRNOTAVAIL",
                        top.sockets,
                        s(&top.local_addr),
                        s(&top.remote),
                        n.ephemeral_ports.unwrap_or(0),
                        top.time_wait,
                        s(&top.remote)
                    ),
                    vec![ev("tcp.ephemeral_used_pct", p, ">=", t.warn, "pct")],
                    vec![
                        format!("ss -tan dst {}", s(&top.remote)),
                        "sysctl net.ipv4.ip_local_port_range net.ipv4.tcp_tw_reuse".into(),
                        "reuse connections (pooling / keep-alive) to that destination".into(),
                    ],
                )
                .with_subject(Subject {
                    local: Some(top.local_addr.clone()),
                    remote: Some(top.remote.clone()),
                    port,
                    ..Default::default()
                }),
            );
        }
    }
}
