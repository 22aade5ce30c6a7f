//! The net view's detail section (`triage net`): UDP and extra TCP counters of our own
//! namespace (sar -n UDP,ETCP), TCP sockets by state and CLOSE_WAIT growth (ss -s), listeners
//! by accept-queue fill (ss -ltn), conntrack, ephemeral ports per destination; with the links
//! and the per-CPU backlog of `netif::deep`. Its build over the measured window, the net
//! view's rules (CLOSE_WAIT growth, UDP receive-buffer overflows, full accept queues, softnet
//! drops, ephemeral-port exhaustion; thresholds in `tcp::THRESHOLDS` and
//! `netif::THRESHOLDS`), its columns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::columns::{o1, s, shorten, Align, Column};
use super::contract::{Finding, Severity, Subject};
use super::netif::deep::{links, softnet, softnet_rule, LinkRow, SoftnetCpuRow};
use super::rule::{ev, finding, level};
use super::scope::Scope;
use super::tcp::TcpRow;
use crate::collect::deep::{listener_full, PortUse};
use crate::collect::run::Readings;
use crate::num::{r2, SatSum};

/// A listening socket's accept queue (ss -lnt Recv-Q / Send-Q).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ListenRow {
    pub addr: String,
    pub port: u16,
    pub accept_queue: u32,
    pub backlog: u32,
    pub fill_pct: Option<f64>,
    pub full: bool,
    pub owner_pid: Option<i32>,
    pub owner_comm: Option<String>,
}

/// Counters of our own namespace beyond the checklist's TCP row, per second.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct NetCounters {
    pub syn_cookies_sent_per_s: Option<f64>,
    pub tcp_memory_pressures_per_s: Option<f64>,
    pub udp_in_datagrams_per_s: Option<f64>,
    pub udp_out_datagrams_per_s: Option<f64>,
    pub udp_in_errors_per_s: Option<f64>,
    pub udp_rcvbuf_errors_per_s: Option<f64>,
    pub udp_sndbuf_errors_per_s: Option<f64>,
    pub udp_no_ports_per_s: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct NetDetail {
    pub links: Vec<LinkRow>,
    pub softnet: Vec<SoftnetCpuRow>,
    pub counters: NetCounters,
    /// TCP sockets by state at the end of the window (sock_diag, or /proc/net/tcp*).
    pub tcp_states: BTreeMap<String, u64>,
    /// CLOSE_WAIT at the start and end of the window (growth = a peer closed and the
    /// application never did: a connection or fd leak).
    pub close_wait_start: Option<u64>,
    pub close_wait_end: Option<u64>,
    pub listeners: Vec<ListenRow>,
    pub listeners_total: u32,
    pub conntrack: Option<u64>,
    pub conntrack_max: Option<u64>,
    /// ip_local_port_range, and TCP sockets not listening (each holds a local port at most).
    pub ephemeral_ports: Option<u64>,
    pub tcp_sockets_bound: Option<u64>,
    pub ephemeral_used_pct: Option<f64>,
    /// Client-side TCP sockets per (local address, remote address:port), busiest first: how
    /// the kernel hands out ephemeral ports (absent when sock_diag could not be asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ports: Option<Vec<PortUse>>,
    /// The busiest destination's sockets against the ephemeral range: what `connect()` to it
    /// runs out of (EADDRNOTAVAIL at 100%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_busiest_pct: Option<f64>,
    /// Local ports holding the most TIME_WAIT sockets, `[port, count]`, most first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_wait_local_ports: Option<Vec<(u16, u64)>>,
}

/// The net view's section over the window; listeners scoped by `--pid` and cut to `--top`.
pub fn detail(r: &Readings, scope: &Scope) -> NetDetail {
    let el = r.meta.elapsed_s;
    let own = r.namespaces.own.unwrap_or(0);
    let (n0, n1) = (r.t0.net.get(&own), r.t1.net.get(&own));
    let cr = |k: &str| -> Option<f64> {
        let (x, y) = (*n0?.counters.get(k)?, *n1?.counters.get(k)?);
        (x >= 0 && y >= x).then(|| r2((y - x) as f64 / el))
    };
    let counters = NetCounters {
        syn_cookies_sent_per_s: cr("TcpExt.SyncookiesSent"),
        tcp_memory_pressures_per_s: cr("TcpExt.TCPMemoryPressures"),
        udp_in_datagrams_per_s: cr("Udp.InDatagrams"),
        udp_out_datagrams_per_s: cr("Udp.OutDatagrams"),
        udp_in_errors_per_s: cr("Udp.InErrors"),
        udp_rcvbuf_errors_per_s: cr("Udp.RcvbufErrors"),
        udp_sndbuf_errors_per_s: cr("Udp.SndbufErrors"),
        udp_no_ports_per_s: cr("Udp.NoPorts"),
    };
    let tcp_states: BTreeMap<String, u64> = r
        .end
        .tcp_states
        .get(&own)
        .map(|s| s.iter().map(|(k, v)| (k.to_string(), *v)).collect())
        .unwrap_or_default();
    let cw = |m: &BTreeMap<String, u64>| m.get("CLOSE_WAIT").copied().unwrap_or(0);
    let d = &r.end.deep;
    let mut listeners: Vec<ListenRow> = d
        .listeners
        .iter()
        .flatten()
        .map(|l| {
            let owner = d.listener_owners.get(&l.inode);
            ListenRow {
                addr: l.addr.clone(),
                port: l.port,
                accept_queue: l.accept_queue,
                backlog: l.backlog,
                fill_pct: (l.backlog > 0)
                    .then(|| r2(l.accept_queue as f64 / l.backlog as f64 * 100.0)),
                full: listener_full(l),
                owner_pid: owner.map(|o| o.0),
                owner_comm: owner.map(|o| o.1.clone()),
            }
        })
        .filter(|l| scope.pid.is_none() || l.owner_pid == scope.pid)
        .collect();
    let listeners_total = listeners.len() as u32;
    listeners.sort_by(|a, b| {
        b.fill_pct
            .unwrap_or(0.0)
            .total_cmp(&a.fill_pct.unwrap_or(0.0))
            .then(a.port.cmp(&b.port))
            .then(a.addr.cmp(&b.addr))
    });
    listeners.truncate(scope.top);
    let l = &r.end.limits;
    let ports = l
        .ip_local_port_range
        .map(|(lo, hi)| u64::from(hi.saturating_sub(lo)) + 1);
    let bound = (!tcp_states.is_empty()).then(|| {
        tcp_states
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "LISTEN" | "CLOSE" | "NEW_SYN_RECV"))
            .map(|(_, v)| *v)
            .sat_sum()
    });
    NetDetail {
        links: links(r),
        softnet: softnet(r),
        counters,
        close_wait_start: r.t0.deep.tcp_states.as_ref().map(cw),
        close_wait_end: (!tcp_states.is_empty()).then(|| cw(&tcp_states)),
        tcp_states,
        listeners,
        listeners_total,
        conntrack: l.conntrack_count,
        conntrack_max: l.conntrack_max,
        ephemeral_ports: ports,
        tcp_sockets_bound: bound,
        ephemeral_used_pct: ports
            .zip(bound)
            .filter(|(p, _)| *p > 0)
            .map(|(p, b)| r2(b as f64 / p as f64 * 100.0)),
        ephemeral_busiest_pct: ports.filter(|p| *p > 0).and_then(|p| {
            let top =
                r.t1.deep
                    .port_use
                    .as_ref()?
                    .destinations
                    .first()
                    .map(|u| u.sockets)
                    .unwrap_or(0);
            Some(r2(top as f64 / p as f64 * 100.0))
        }),
        client_ports: r.t1.deep.port_use.as_ref().map(|u| u.destinations.clone()),
        time_wait_local_ports: r
            .t1
            .deep
            .port_use
            .as_ref()
            .map(|u| u.time_wait_local_ports.clone()),
    }
}

/// The net view's rules. `tcp` is the checklist's TCP rows: our own namespace's listen
/// overflows make a full accept queue critical.
pub fn rules(n: &NetDetail, tcp: &[TcpRow], out: &mut Vec<Finding>) {
    close_wait_rule(n, out);
    udp_rcvbuf_rule(n, out);
    let overflows = tcp
        .iter()
        .find(|t| t.namespace == "own")
        .and_then(|t| t.listen_overflows_per_s)
        .unwrap_or(0.0);
    accept_queue_rule(&n.listeners, overflows, out);
    softnet_rule(&n.softnet, out);
    ephemeral_rule(n, out);
}

/// CLOSE_WAIT growing within the window: peers closed, the application did not.
fn close_wait_rule(n: &NetDetail, out: &mut Vec<Finding>) {
    let (Some(a), Some(b)) = (n.close_wait_start, n.close_wait_end) else {
        return;
    };
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

/// Datagrams dropped for a full socket receive buffer.
fn udp_rcvbuf_rule(n: &NetDetail, out: &mut Vec<Finding>) {
    let Some(e) = n.counters.udp_rcvbuf_errors_per_s else {
        return;
    };
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

/// A listener whose accept queue is at its backlog; critical when the namespace's listen
/// overflows grew in the window (`overflows` per second).
fn accept_queue_rule(listeners: &[ListenRow], overflows: f64, out: &mut Vec<Finding>) {
    for l in listeners.iter().filter(|l| l.full) {
        let Some(fill) = l.fill_pct else { continue };
        let Some((_, t)) = level("tcp.listen_queue_fill_pct", fill) else {
            continue;
        };
        // Full at the end of the window is a warning; dropping handshakes in it (the
        // namespace's ListenOverflows grew) is critical. The threshold's warn and crit are
        // both "full", so its own level would make every full queue critical.
        let sev = if overflows > 0.0 {
            Severity::Critical
        } else {
            Severity::Warning
        };
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
}

/// Ephemeral ports run out per destination: the kernel needs a local port unique for
/// (local address, remote address:port). Only client-side sockets count; accepted sockets
/// share their listener's port. Without the per-destination dump, no finding: the state
/// counts alone cannot tell 28k server-side TIME_WAIT from exhaustion.
fn ephemeral_rule(n: &NetDetail, out: &mut Vec<Finding>) {
    let (Some(p), Some(top)) = (
        n.ephemeral_busiest_pct,
        n.client_ports.as_ref().and_then(|c| c.first()),
    ) else {
        return;
    };
    let Some((sev, t)) = level("tcp.ephemeral_used_pct", p) else {
        return;
    };
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

/// sar -n UDP,ETCP: one row, our own namespace's counters per second.
pub const COUNTER_COLUMNS: &[Column<NetCounters>] = &[
    Column::left("UDP in/s", |c| o1(c.udp_in_datagrams_per_s)),
    Column::right("out/s", |c| o1(c.udp_out_datagrams_per_s)),
    Column::right("in err/s", |c| o1(c.udp_in_errors_per_s)),
    Column::right("rcvbuf err/s", |c| o1(c.udp_rcvbuf_errors_per_s)),
    Column::right("sndbuf err/s", |c| o1(c.udp_sndbuf_errors_per_s)),
    Column::right("no port/s", |c| o1(c.udp_no_ports_per_s)),
    Column::right("SYN cookies/s", |c| o1(c.syn_cookies_sent_per_s)),
    Column::right("TCP mem press/s", |c| o1(c.tcp_memory_pressures_per_s)),
];

/// ss -ltn: listeners by accept-queue fill, with their owner (`?` for a full queue whose
/// owner is unknown).
pub const LISTEN_COLUMNS: &[Column<ListenRow>] = &[
    Column::left("address", |l| shorten(&s(&l.addr), 40)),
    Column::right("port", |l| l.port.to_string()),
    Column::right("accept queue", |l| l.accept_queue.to_string()),
    Column::right("backlog", |l| l.backlog.to_string()),
    Column::right("fill %", |l| o1(l.fill_pct)),
    Column {
        header: "owner",
        align: Align::Left,
        value: |l| match (&l.owner_comm, l.owner_pid) {
            (Some(c), Some(p)) => format!("{} ({p})", s(c)),
            _ if l.full => "?".into(),
            _ => "".into(),
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn full(owner: Option<(i32, &str)>) -> ListenRow {
        ListenRow {
            addr: "0.0.0.0".into(),
            port: 8080,
            accept_queue: 129,
            backlog: 128,
            fill_pct: Some(100.78),
            full: true,
            owner_pid: owner.map(|o| o.0),
            owner_comm: owner.map(|o| o.1.to_string()),
        }
    }

    #[test]
    fn full_accept_queue_names_its_owner_and_the_overflows() {
        let n = NetDetail {
            listeners: vec![full(Some((812, "server")))],
            ..Default::default()
        };
        let mut out = Vec::new();
        rules(&n, &[], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "tcp.saturation.accept_queue_full");
        // Full, but no handshake dropped in the window: a warning.
        assert_eq!(out[0].severity, Severity::Warning);
        assert_eq!(out[0].evidence[1].value, 0.0);
        assert_eq!(out[0].subject.pid, Some(812));
        assert_eq!(out[0].subject.port, Some(8080));
        assert_eq!(out[0].subject.local.as_deref(), Some("0.0.0.0:8080"));

        let tcp = [TcpRow {
            namespace: "own".into(),
            listen_overflows_per_s: Some(2.5),
            ..Default::default()
        }];
        let mut out = Vec::new();
        rules(&n, &tcp, &mut out);
        assert_eq!(out[0].severity, Severity::Critical);
        assert_eq!(out[0].evidence[1].value, 2.5);
    }

    #[test]
    fn close_wait_counts_growth_not_level() {
        let n = |a, b| NetDetail {
            close_wait_start: Some(a),
            close_wait_end: Some(b),
            ..Default::default()
        };
        let mut out = Vec::new();
        // Many, but not growing: a busy server, not a leak.
        rules(&n(500, 505), &[], &mut out);
        assert!(out.is_empty(), "{out:?}");
        rules(&n(500, 620), &[], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "tcp.errors.close_wait_growth");
        assert_eq!(out[0].severity, Severity::Critical);
        assert_eq!(out[0].evidence[0].value, 120.0);
    }

    #[test]
    fn listener_owner_cell_marks_an_unknown_owner_of_a_full_queue() {
        let owner = |l: &ListenRow| (LISTEN_COLUMNS[5].value)(l);
        assert_eq!(owner(&full(Some((812, "server")))), "server (812)");
        assert_eq!(owner(&full(None)), "?");
        let idle = ListenRow {
            full: false,
            ..full(None)
        };
        assert_eq!(owner(&idle), "");
    }
}
