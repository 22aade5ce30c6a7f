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

use super::build::{delta, r2, rate};
use crate::collect::deep::{listener_full, ProcStatus};
use crate::collect::procs::ProcSample;
use crate::collect::run::Readings;
pub use crate::resources::disk::{
    detail as disk, io_cgroups, DiskDetail, DiskExtraRow, IoCgroupRow, IoProcRow,
};
pub use crate::resources::memory::{
    detail as mem, MemBreakdown, MemCgroupRow, MemDetail, MemProcRow, OomEvent, Reclaim,
};
use crate::resources::scope::{before, cut, psi_stall_ms};
pub use crate::resources::scope::{in_cgroup, Scope};

/// One process or thread by CPU (pidstat -u -w [-t]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct TaskCpuRow {
    pub pid: i32,
    /// The thread id (thread rows only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    pub comm: String,
    pub cpu_pct: f64,
    pub usr_pct: f64,
    pub sys_pct: f64,
    /// voluntary_ctxt_switches over the window (/proc/PID/status, or the thread's
    /// /proc/PID/task/TID/status; a process row counts its main thread, as pidstat -w does).
    pub voluntary_switches_per_s: Option<f64>,
    pub involuntary_switches_per_s: Option<f64>,
}

/// One softirq type over the window (/proc/softirqs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SoftirqRow {
    pub name: String,
    pub per_s: f64,
    /// The CPU that handled most of them, and its share.
    pub busiest_cpu: u32,
    pub busiest_cpu_share_pct: f64,
    /// That CPU's %soft over the window (mpstat).
    pub busiest_cpu_soft_pct: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CpuDetail {
    /// Rows each `--top` list left out (list name -> rows not shown), when any (since 1.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub left_out: BTreeMap<String, usize>,
    pub online_cpus: u32,
    pub effective_cpus: f64,
    pub effective_cpus_source: String,
    /// PSI cpu `some` stall time in the window, ms (source /proc/pressure/cpu).
    pub psi_some_stall_ms: Option<f64>,
    pub psi_some_avg10_pct: Option<f64>,
    pub psi_some_avg60_pct: Option<f64>,
    pub top_processes: Vec<TaskCpuRow>,
    pub top_threads: Vec<TaskCpuRow>,
    /// Softirq types with activity, busiest first.
    pub softirqs: Vec<SoftirqRow>,
}

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

fn cpu_row(r: &Readings, p: &ProcSample, old: Option<&ProcSample>) -> TaskCpuRow {
    let tck = r.meta.clock_ticks_per_s.max(1) as f64;
    let el = r.meta.elapsed_s;
    let (du, ds) = match old {
        Some(o) => (
            delta(o.utime, p.utime).unwrap_or(0),
            delta(o.stime, p.stime).unwrap_or(0),
        ),
        None => (p.utime, p.stime),
    };
    let f = |t: u64| r2(t as f64 / tck / el * 100.0);
    TaskCpuRow {
        pid: p.pid,
        tid: None,
        comm: p.comm.clone(),
        cpu_pct: f(du.saturating_add(ds)),
        usr_pct: f(du),
        sys_pct: f(ds),
        voluntary_switches_per_s: None,
        involuntary_switches_per_s: None,
    }
}

fn by_cpu(a: &TaskCpuRow, b: &TaskCpuRow) -> std::cmp::Ordering {
    b.cpu_pct
        .total_cmp(&a.cpu_pct)
        .then(a.pid.cmp(&b.pid))
        .then(a.tid.cmp(&b.tid))
}

pub fn cpu(r: &Readings, scope: &Scope) -> CpuDetail {
    let el = r.meta.elapsed_s;
    let host = super::host(r);
    let status_rate = |pid: i32, f: fn(&ProcStatus) -> Option<u64>| -> Option<f64> {
        let a = f(r.t0.deep.status.get(&pid)?)?;
        let b = f(r.t1.deep.status.get(&pid)?)?;
        rate(a, b, el).map(r2)
    };
    let mut procs: Vec<TaskCpuRow> = Vec::new();
    for p in r.t1.procs.procs.values() {
        if !scope.wants(r, p.pid) {
            continue;
        }
        let old = before(r, p);
        let mut row = cpu_row(r, p, old);
        if old.is_some() {
            row.voluntary_switches_per_s = status_rate(p.pid, |s| s.voluntary_switches);
            row.involuntary_switches_per_s = status_rate(p.pid, |s| s.involuntary_switches);
        }
        if row.cpu_pct > 0.0 || scope.pid.is_some() {
            procs.push(row);
        }
    }
    procs.sort_by(by_cpu);
    let mut left_out = BTreeMap::new();
    cut(&mut procs, scope.top, "top_processes", &mut left_out);

    let mut threads: Vec<TaskCpuRow> = Vec::new();
    for (pid, ts) in &r.t1.deep.threads {
        if !scope.wants(r, *pid) {
            continue;
        }
        let old: BTreeMap<i32, &ProcSample> =
            r.t0.deep
                .threads
                .get(pid)
                .map(|v| v.iter().map(|t| (t.pid, t)).collect())
                .unwrap_or_default();
        for t in ts {
            let o = old
                .get(&t.pid)
                .copied()
                .filter(|o| o.starttime == t.starttime);
            let mut row = cpu_row(r, t, o);
            row.tid = Some(t.pid);
            row.pid = *pid;
            if o.is_some() {
                let sw = |f: fn(&ProcStatus) -> Option<u64>| -> Option<f64> {
                    let a = f(r.t0.deep.thread_status.get(&t.pid)?)?;
                    let b = f(r.t1.deep.thread_status.get(&t.pid)?)?;
                    rate(a, b, el).map(r2)
                };
                row.voluntary_switches_per_s = sw(|s| s.voluntary_switches);
                row.involuntary_switches_per_s = sw(|s| s.involuntary_switches);
            }
            if row.cpu_pct > 0.0 {
                threads.push(row);
            }
        }
    }
    threads.sort_by(by_cpu);
    cut(&mut threads, scope.top, "top_threads", &mut left_out);

    let soft_pct: BTreeMap<String, f64> = super::build::cpus(r)
        .into_iter()
        .map(|c| (c.cpu, c.soft_pct))
        .collect();
    let mut softirqs = Vec::new();
    for (name, b) in &r.t1.deep.softirqs {
        let Some(a) = r.t0.deep.softirqs.get(name) else {
            continue;
        };
        let a: BTreeMap<u32, u64> = a.iter().copied().collect();
        let per_cpu: Vec<(u32, u64)> = b
            .iter()
            .filter_map(|(c, y)| Some((*c, delta(*a.get(c)?, *y)?)))
            .collect();
        let total: u64 = per_cpu.iter().map(|x| x.1).sat_sum();
        if total == 0 {
            continue;
        }
        let &(cpu, n) = per_cpu
            .iter()
            .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(&x.0)))
            .unwrap_or(&(0, 0));
        softirqs.push(SoftirqRow {
            name: name.clone(),
            per_s: r2(total as f64 / el),
            busiest_cpu: cpu,
            busiest_cpu_share_pct: r2(n as f64 / total as f64 * 100.0),
            busiest_cpu_soft_pct: soft_pct.get(&cpu.to_string()).copied(),
        });
    }
    softirqs.sort_by(|a, b| b.per_s.total_cmp(&a.per_s).then(a.name.cmp(&b.name)));

    let psi = r.t1.system.psi.get("cpu");
    CpuDetail {
        left_out,
        online_cpus: host.online_cpus,
        effective_cpus: host.effective_cpus,
        effective_cpus_source: host.effective_cpus_source,
        psi_some_stall_ms: psi_stall_ms(r, "cpu", false),
        psi_some_avg10_pct: psi.map(|p| p.some.avg10),
        psi_some_avg60_pct: psi.map(|p| p.some.avg60),
        top_processes: procs,
        top_threads: threads,
        softirqs,
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
