//! The TCP resource (sar -n TCP,ETCP and ss -s), per network namespace: opens, segments,
//! retransmits, errors, listen overflows and socket states over the window; its USE metrics;
//! the tcp/udp thresholds and the checklist's TCP rules; the table's columns.

use serde::{Deserialize, Serialize};

use super::columns::{o1, ou, s, Column};
use super::contract::{Finding, Metric, Resource, Severity, Subject, UseKind};
use super::netif::{netns_of, ns_label};
use super::rule::{ev, finding, level, threshold, Threshold};
use crate::collect::net::NetReading;
use crate::collect::run::Readings;
use crate::num::r2;
use UseKind::{Errors as E, Saturation as S, Utilization as U};

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct TcpRow {
    pub namespace: String,
    /// A few processes in the namespace (`iperf3 (pid 812)`), to name it.
    pub processes: Vec<String>,
    pub active_opens_per_s: Option<f64>,
    pub passive_opens_per_s: Option<f64>,
    pub out_segs_per_s: Option<f64>,
    pub retrans_segs_per_s: Option<f64>,
    /// Retransmitted share of sent segments in the window.
    pub retrans_pct: Option<f64>,
    pub in_errs_per_s: Option<f64>,
    pub out_rsts_per_s: Option<f64>,
    pub estab_resets_per_s: Option<f64>,
    pub listen_overflows_per_s: Option<f64>,
    pub listen_drops_per_s: Option<f64>,
    /// Retransmitted SYNs (TcpExt.TCPSynRetrans): connection attempts not answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syn_retrans_per_s: Option<f64>,
    pub established: Option<u64>,
    pub time_wait: Option<u64>,
    pub close_wait: Option<u64>,
    pub orphans: Option<u64>,
}

// ---- build ---------------------------------------------------------------------------------

pub fn ns_members(r: &Readings, ino: u64, n: usize) -> Vec<String> {
    let Some(pids) = r.namespaces.members.get(&ino) else {
        return Vec::new();
    };
    let procs = &r.t1.procs.procs;
    let mut out: Vec<String> = Vec::new();
    for pid in pids {
        if let Some(p) = procs.get(pid).or_else(|| r.t0.procs.procs.get(pid)) {
            let s = format!("{} (pid {})", p.comm, p.pid);
            if !out.iter().any(|o| o.starts_with(&format!("{} ", p.comm))) {
                out.push(s);
            }
        }
        if out.len() >= n {
            break;
        }
    }
    out
}

fn counter_rate(a: &NetReading, b: &NetReading, key: &str, el: f64) -> Option<f64> {
    let (x, y) = (*a.counters.get(key)?, *b.counters.get(key)?);
    if x < 0 || y < x {
        return None;
    }
    Some(r2((y - x) as f64 / el))
}

pub fn tcp(r: &Readings) -> Vec<TcpRow> {
    let el = r.meta.elapsed_s;
    let mut rows = Vec::new();
    for (ino, b) in &r.t1.net {
        let Some(a) = r.t0.net.get(ino) else { continue };
        let cr = |k: &str| counter_rate(a, b, k, el);
        let states = r.end.tcp_states.get(ino);
        let out_segs = cr("Tcp.OutSegs");
        let retrans = cr("Tcp.RetransSegs");
        let row = TcpRow {
            namespace: ns_label(r, *ino),
            processes: ns_members(r, *ino, 3),
            active_opens_per_s: cr("Tcp.ActiveOpens"),
            passive_opens_per_s: cr("Tcp.PassiveOpens"),
            out_segs_per_s: out_segs,
            retrans_segs_per_s: retrans,
            // OutSegs excludes retransmitted segments (RFC 4022): the share is of all segments
            // sent, retransmissions included, so it cannot exceed 100%.
            retrans_pct: match (retrans, out_segs) {
                (Some(rt), Some(o)) if o + rt > 0.0 => Some(r2(rt / (o + rt) * 100.0)),
                _ => None,
            },
            syn_retrans_per_s: cr("TcpExt.TCPSynRetrans"),
            in_errs_per_s: cr("Tcp.InErrs"),
            out_rsts_per_s: cr("Tcp.OutRsts"),
            estab_resets_per_s: cr("Tcp.EstabResets"),
            listen_overflows_per_s: cr("TcpExt.ListenOverflows"),
            listen_drops_per_s: cr("TcpExt.ListenDrops"),
            established: states.map(|s| s.get("ESTABLISHED").copied().unwrap_or(0)),
            time_wait: b.sockstat.get("TCP.tw").copied(),
            close_wait: states.map(|s| s.get("CLOSE_WAIT").copied().unwrap_or(0)),
            orphans: b.sockstat.get("TCP.orphan").copied(),
        };
        let own = row.namespace == "own";
        let busy = [
            row.out_segs_per_s,
            row.retrans_segs_per_s,
            row.listen_overflows_per_s,
            row.in_errs_per_s,
        ]
        .iter()
        .any(|v| v.unwrap_or(0.0) > 0.0)
            || row.established.unwrap_or(0) > 0
            || row.time_wait.unwrap_or(0) > 0;
        if own || busy {
            rows.push(row);
        }
    }
    // Our own namespace first, then the busiest.
    rows.sort_by(|a, b| {
        (b.namespace == "own")
            .cmp(&(a.namespace == "own"))
            .then(
                b.out_segs_per_s
                    .unwrap_or(0.0)
                    .total_cmp(&a.out_segs_per_s.unwrap_or(0.0)),
            )
            .then(a.namespace.cmp(&b.namespace))
    });
    rows
}

// ---- USE metrics ---------------------------------------------------------------------------

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

/// The namespace's TCP USE metrics (`tcp` resource of the report).
pub fn use_resource(t: &TcpRow) -> Resource {
    let inst = if t.namespace == "own" {
        None
    } else {
        Some(t.namespace.clone())
    };
    let mut r = Resource::new("tcp", inst);
    push(
        &mut r,
        Metric::maybe(
            "tcp.established",
            U,
            "established",
            t.established.map(|v| v as f64),
            "count",
            "/proc/net/tcp*",
            "socket table unreadable",
        ),
    );
    push(
        &mut r,
        Metric::maybe(
            "tcp.listen_overflows_per_s",
            S,
            "lstn ovfl",
            t.listen_overflows_per_s,
            "per_s",
            "/proc/net/netstat",
            "no TcpExt counters",
        ),
    );
    push(
        &mut r,
        Metric::maybe(
            "tcp.time_wait",
            S,
            "TIME_WAIT",
            t.time_wait.map(|v| v as f64),
            "count",
            "/proc/net/sockstat",
            "no sockstat",
        ),
    );
    push(
        &mut r,
        Metric::maybe(
            "tcp.retrans_segs_per_s",
            E,
            "retr",
            t.retrans_segs_per_s,
            "per_s",
            "/proc/net/snmp",
            "no Tcp counters",
        ),
    );
    push(
        &mut r,
        Metric::maybe(
            "tcp.retrans_pct",
            E,
            "retr",
            t.retrans_pct,
            "pct",
            "/proc/net/snmp",
            "no segments sent",
        ),
    );
    r
}

// ---- thresholds and rules ------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "tcp.retrans_pct", warn: 1.0, crit: 5.0, unit: "pct", why: "retrans non-zero = network problem (S0:1327); below 1% of segments is background noise on real links" },
    Threshold { id: "tcp.retrans_segs_per_s", warn: 10.0, crit: 100.0, unit: "per_s", why: "a share needs volume to mean something: at least 10 retransmits/s" },
    Threshold { id: "tcp.listen_overflows_per_s", warn: 0.1, crit: 10.0, unit: "per_s", why: "any listen overflow drops a connection attempt (S0:299)" },
    Threshold { id: "tcp.time_wait", warn: 20000.0, crit: 28000.0, unit: "count", why: "> 20,000 TIME_WAIT = near ephemeral port exhaustion (S0:1330); 28k = the default port range" },
    Threshold { id: "tcp.close_wait_growth", warn: 10.0, crit: 100.0, unit: "count", why: "CLOSE_WAIT accumulating = application not closing sockets, a leak (S0:1331); growth within one window, not the level, separates a leak from a busy server" },
    Threshold { id: "udp.rcvbuf_errors_per_s", warn: 1.0, crit: 100.0, unit: "per_s", why: "RcvbufErrors: datagrams dropped for a full socket buffer (S0 network errors: any non-zero drop is a problem)" },
    Threshold { id: "tcp.listen_queue_fill_pct", warn: 100.0, crit: 100.0, unit: "pct", why: "accept queue at its backlog: the next handshake is dropped (S0:299 listen overflows); critical when ListenOverflows grows in the window" },
    Threshold { id: "tcp.ephemeral_used_pct", warn: 80.0, crit: 95.0, unit: "pct", why: "TIME_WAIT near port exhaustion (S0:1330) generalized: client-side sockets to one (local address, remote address:port) against ip_local_port_range, as the kernel allocates (accepted sockets hold no ephemeral port)" },
];

/// Retransmits, listen overflows and TIME_WAIT per namespace. `own_time_wait` judges TIME_WAIT
/// in our own namespace (it reads the net view's socket dump when there is one).
pub fn rules(
    tcp: &[TcpRow],
    mut own_time_wait: impl FnMut(&mut Vec<Finding>),
    out: &mut Vec<Finding>,
) {
    for t in tcp {
        let ns_subject = Subject {
            netns: netns_of(&t.namespace),
            ..Default::default()
        };
        let who = if t.namespace == "own" {
            String::new()
        } else if t.processes.is_empty() {
            format!(" in {}", t.namespace)
        } else {
            format!(" in {} ({})", t.namespace, t.processes.join(", "))
        };
        if let (Some(p), Some(r)) = (t.retrans_pct, t.retrans_segs_per_s) {
            let vol = threshold("tcp.retrans_segs_per_s");
            if let (Some((sev, th)), true) = (level("tcp.retrans_pct", p), r >= vol.warn) {
                // Mostly SYNs while the listen queue overflows: the retransmits are the
                // dropped connection attempts of that overflow, not a lossy network.
                let syn = t.syn_retrans_per_s.unwrap_or(0.0);
                let overflowing = t
                    .listen_overflows_per_s
                    .and_then(|o| level("tcp.listen_overflows_per_s", o))
                    .is_some();
                let syn_share = if r > 0.0 { syn / r * 100.0 } else { 0.0 };
                let (sev, why) = if overflowing && syn_share >= 50.0 {
                    (
                        Severity::Info,
                        format!(
                            "; {syn_share:.0}% of them SYNs: the connection attempts the listen queue overflow drops (see tcp.saturation.listen_overflow)"
                        ),
                    )
                } else if syn > 0.0 {
                    (sev, format!("; {syn:.0}/s of them SYNs"))
                } else {
                    (sev, String::new())
                };
                let mut e = vec![
                    ev("tcp.retrans_pct", p, ">=", th.warn, "pct"),
                    ev("tcp.retrans_segs_per_s", r, ">=", vol.warn, "per_s"),
                ];
                if t.syn_retrans_per_s.is_some() {
                    e.push(ev("tcp.syn_retrans_pct", r2(syn_share), ">=", 50.0, "pct"));
                }
                out.push(
                    finding(
                        "tcp.errors.retransmits",
                        sev,
                        "tcp",
                        format!("TCP retransmits{who}: {r:.0}/s, {p:.1}% of segments sent{why}"),
                        e,
                        vec![
                            "triage net".into(),
                            "ss -ti".into(),
                            "tcpretrans (bcc/libbpf-tools)".into(),
                        ],
                    )
                    .with_subject(ns_subject.clone()),
                );
            }
        }
        if let Some(o) = t.listen_overflows_per_s {
            if let Some((sev, th)) = level("tcp.listen_overflows_per_s", o) {
                out.push(finding(
                    "tcp.saturation.listen_overflow",
                    sev,
                    "tcp",
                    format!("Listen queue overflowing{who}: {o:.1} connection attempts/s dropped (the application is not accepting fast enough, or the backlog is too small)"),
                    vec![ev("tcp.listen_overflows_per_s", o, ">=", th.warn, "per_s")],
                    vec!["ss -ltn".into(), "triage net".into()],
                ).with_subject(ns_subject.clone()));
            }
        }
        if t.namespace == "own" {
            own_time_wait(out);
        } else if let Some(tw) = t.time_wait {
            if let Some((sev, th)) = level("tcp.time_wait", tw as f64) {
                out.push(finding(
                    "tcp.saturation.time_wait",
                    sev,
                    "tcp",
                    format!("{tw} sockets in TIME_WAIT{who}: close to ephemeral port exhaustion for a busy peer"),
                    vec![ev("tcp.time_wait", tw as f64, ">=", th.warn, "count")],
                    vec!["triage net".into()],
                ).with_subject(ns_subject.clone()));
            }
        }
    }
}

// ---- columns -------------------------------------------------------------------------------

/// sar -n TCP,ETCP and ss -s's columns.
pub const COLUMNS: &[Column<TcpRow>] = &[
    Column::left("netns", |x| s(&x.namespace)),
    Column::right("actv/s", |x| o1(x.active_opens_per_s)),
    Column::right("pasv/s", |x| o1(x.passive_opens_per_s)),
    Column::right("retr/s", |x| o1(x.retrans_segs_per_s)),
    Column::right("retr%", |x| o1(x.retrans_pct)),
    Column::right("ierr/s", |x| o1(x.in_errs_per_s)),
    Column::right("rst/s", |x| o1(x.out_rsts_per_s)),
    Column::right("ovfl/s", |x| o1(x.listen_overflows_per_s)),
    Column::right("estab", |x| ou(x.established)),
    Column::right("tw", |x| ou(x.time_wait)),
    Column::right("clwait", |x| ou(x.close_wait)),
    Column::right("orph", |x| ou(x.orphans)),
];
