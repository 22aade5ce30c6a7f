//! The deep-dive sections (`triage cpu|mem|disk|net`): what mpstat/pidstat/vmstat/iostat/sar/
//! ss/free would show about one resource, computed over the measured window from the same
//! readings as the checklist. Each is absent from `sixty-second` reports (and their JSON).
//!
//! Invariants as in `build`: counters that went backwards give `null`; rates divide by the
//! measured elapsed time; lists are sorted deterministically (biggest first, ties by id).
//!
//! The disk and mem views' sections live with their resources (`resources::disk`,
//! `resources::memory`) and are re-exported here; cpu and net are still here.

use crate::model::SatSum;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::build::{r2, rate};
use crate::collect::deep::listener_full;
use crate::collect::run::Readings;
pub use crate::resources::cpu::deep::{detail as cpu, CpuDetail, SoftirqRow, TaskCpuRow};
pub use crate::resources::disk::{
    detail as disk, io_cgroups, DiskDetail, DiskExtraRow, IoCgroupRow, IoProcRow,
};
pub use crate::resources::memory::{
    detail as mem, MemBreakdown, MemCgroupRow, MemDetail, MemProcRow, OomEvent, Reclaim,
};
pub use crate::resources::scope::{in_cgroup, Scope};

/// Link utilization where the speed is known (sar -n DEV %ifutil).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct LinkRow {
    pub interface: String,
    pub speed_mbps: u64,
    pub rx_util_pct: Option<f64>,
    pub tx_util_pct: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SoftnetCpuRow {
    pub cpu: u32,
    pub processed_per_s: f64,
    pub dropped_per_s: f64,
    pub time_squeeze_per_s: f64,
}

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
    pub client_ports: Option<Vec<crate::host::sockdiag::PortUse>>,
    /// The busiest destination's sockets against the ephemeral range: what `connect()` to it
    /// runs out of (EADDRNOTAVAIL at 100%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_busiest_pct: Option<f64>,
    /// Local ports holding the most TIME_WAIT sockets, `[port, count]`, most first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_wait_local_ports: Option<Vec<(u16, u64)>>,
}

/// Version of the time-series wrapper (`--interval S --count N --json`).
pub const SERIES_SCHEMA_VERSION: &str = "1.1";

/// A time series: one complete report per window, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Series {
    pub schema_version: String,
    /// Always `series` (a single report has no `kind`).
    pub kind: String,
    pub command: String,
    pub interval_s: f64,
    /// Windows measured (fewer than asked when interrupted).
    pub count: u32,
    /// The verdict over every window: the worst status of any window (`incomplete` if one
    /// was), its top findings (since 1.1).
    #[serde(default)]
    pub summary: super::summary::Summary,
    pub samples: Vec<super::report::Report>,
}

impl Series {
    pub fn new(command: &str, interval_s: f64, samples: Vec<super::report::Report>) -> Self {
        Series {
            schema_version: SERIES_SCHEMA_VERSION.into(),
            kind: "series".into(),
            command: command.into(),
            interval_s,
            count: samples.len() as u32,
            summary: Default::default(),
            samples,
        }
        .with_summary()
    }

    fn with_summary(mut self) -> Self {
        self.refresh_summary();
        self
    }

    /// The series' verdict from its windows' (see [`super::summary::over_windows`]).
    pub fn refresh_summary(&mut self) {
        for r in &mut self.samples {
            super::summary::refresh(r);
        }
        self.summary = super::summary::over_windows(&self.samples);
    }
}

pub fn net(r: &Readings, scope: &Scope) -> NetDetail {
    let el = r.meta.elapsed_s;
    let own = r.namespaces.own.unwrap_or(0);
    let (n0, n1) = (r.t0.net.get(&own), r.t1.net.get(&own));
    let mut links = Vec::new();
    if let (Some(a), Some(b)) = (n0, n1) {
        for (name, speed) in &r.end.deep.link_speed_mbps {
            let (Some(i0), Some(i1)) = (a.interfaces.get(name), b.interfaces.get(name)) else {
                continue;
            };
            let util = |x: u64, y: u64| {
                rate(x, y, el).map(|bps| r2(bps * 8.0 / (*speed as f64 * 1e6) * 100.0))
            };
            links.push(LinkRow {
                interface: name.clone(),
                speed_mbps: *speed,
                rx_util_pct: util(i0.rx_bytes, i1.rx_bytes),
                tx_util_pct: util(i0.tx_bytes, i1.tx_bytes),
            });
        }
    }
    let before: BTreeMap<u32, _> = r.t0.deep.softnet.iter().map(|s| (s.cpu, s)).collect();
    let softnet =
        r.t1.deep
            .softnet
            .iter()
            .filter_map(|s1| {
                let s0 = before.get(&s1.cpu)?;
                let f = |x: u64, y: u64| rate(x, y, el).map(r2).unwrap_or(0.0);
                Some(SoftnetCpuRow {
                    cpu: s1.cpu,
                    processed_per_s: f(s0.processed, s1.processed),
                    dropped_per_s: f(s0.dropped, s1.dropped),
                    time_squeeze_per_s: f(s0.time_squeeze, s1.time_squeeze),
                })
            })
            .collect();
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
        links,
        softnet,
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
