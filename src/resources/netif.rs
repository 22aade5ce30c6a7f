//! The network interface resource (sar -n DEV,EDEV): traffic, errors and drops per interface
//! and network namespace over the window; its USE metrics; its thresholds and rules; sar's
//! columns. The net view's links and per-CPU backlog rows are in [`deep`].

pub mod deep;

use serde::{Deserialize, Serialize};

use super::columns::{f1, s, Column};
use super::contract::{Finding, Metric, Resource, Subject, UseKind};
use super::rule::{ev, finding, level, Threshold};
use crate::collect::run::Readings;
use crate::num::{r2, rate};
use UseKind::{Errors as E, Saturation as S, Utilization as U};

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct IfRow {
    /// `host` for our own namespace, else `netns:INODE`.
    pub namespace: String,
    pub interface: String,
    pub rx_kb_per_s: f64,
    pub tx_kb_per_s: f64,
    pub rx_packets_per_s: f64,
    pub tx_packets_per_s: f64,
    pub rx_errors_per_s: f64,
    pub tx_errors_per_s: f64,
    pub rx_drops_per_s: f64,
    pub tx_drops_per_s: f64,
}

// ---- build ---------------------------------------------------------------------------------

/// Name of a network namespace for people.
pub fn ns_label(r: &Readings, ino: u64) -> String {
    if Some(ino) == r.namespaces.own || ino == 0 {
        "own".into()
    } else {
        format!("netns:{ino}")
    }
}

/// Interfaces of our own network namespace other than loopback with no traffic, errors or
/// drops in the window (counters valid at both ends): listed with zeros in the USE table.
pub fn idle_interfaces(r: &Readings) -> Vec<String> {
    let mut out = Vec::new();
    for (ino, b) in &r.t1.net {
        if ns_label(r, *ino) != "own" {
            continue;
        }
        let Some(a) = r.t0.net.get(ino) else { continue };
        for (name, i1) in &b.interfaces {
            let Some(i0) = a.interfaces.get(name) else {
                continue;
            };
            let same = i0.rx_packets == i1.rx_packets
                && i0.tx_packets == i1.tx_packets
                && i0.rx_errs == i1.rx_errs
                && i0.tx_errs == i1.tx_errs
                && i0.rx_drop == i1.rx_drop
                && i0.tx_drop == i1.tx_drop;
            if name != "lo" && same {
                out.push(name.clone());
            }
        }
    }
    out.sort();
    out
}

pub fn interfaces(r: &Readings) -> Vec<IfRow> {
    let el = r.meta.elapsed_s;
    let mut rows = Vec::new();
    for (ino, b) in &r.t1.net {
        let Some(a) = r.t0.net.get(ino) else { continue };
        for (name, i1) in &b.interfaces {
            let Some(i0) = a.interfaces.get(name) else {
                continue;
            };
            if interface_reset(i0, i1) {
                continue; // reported by `counter_resets`
            }
            let rt = |x: u64, y: u64| rate(x, y, el).map(r2).unwrap_or(0.0);
            let row = IfRow {
                namespace: ns_label(r, *ino),
                interface: name.clone(),
                rx_kb_per_s: r2(rt(i0.rx_bytes, i1.rx_bytes) / 1024.0),
                tx_kb_per_s: r2(rt(i0.tx_bytes, i1.tx_bytes) / 1024.0),
                rx_packets_per_s: rt(i0.rx_packets, i1.rx_packets),
                tx_packets_per_s: rt(i0.tx_packets, i1.tx_packets),
                rx_errors_per_s: rt(i0.rx_errs, i1.rx_errs),
                tx_errors_per_s: rt(i0.tx_errs, i1.tx_errs),
                rx_drops_per_s: rt(i0.rx_drop, i1.rx_drop),
                tx_drops_per_s: rt(i0.tx_drop, i1.tx_drop),
            };
            let active = row.rx_packets_per_s
                + row.tx_packets_per_s
                + row.rx_errors_per_s
                + row.tx_errors_per_s
                + row.rx_drops_per_s
                + row.tx_drops_per_s
                > 0.0;
            if active {
                rows.push(row);
            }
        }
    }
    rows
}

pub fn interface_reset(
    a: &crate::collect::net::IfCounters,
    b: &crate::collect::net::IfCounters,
) -> bool {
    b.rx_bytes < a.rx_bytes
        || b.tx_bytes < a.tx_bytes
        || b.rx_packets < a.rx_packets
        || b.tx_packets < a.tx_packets
}

// ---- USE metrics ---------------------------------------------------------------------------

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

/// The interface's USE metrics (`network` resource of the report).
pub fn use_resource(i: &IfRow) -> Resource {
    let name = if i.namespace == "own" {
        i.interface.clone()
    } else {
        format!("{}/{}", i.namespace, i.interface)
    };
    let mut r = Resource::new("network", Some(name));
    push(
        &mut r,
        Metric::new(
            "network.rx_kb_per_s",
            U,
            "rx",
            Some(i.rx_kb_per_s),
            "kb_per_s",
            "/proc/net/dev",
        ),
    );
    push(
        &mut r,
        Metric::new(
            "network.tx_kb_per_s",
            U,
            "tx",
            Some(i.tx_kb_per_s),
            "kb_per_s",
            "/proc/net/dev",
        ),
    );
    push(
        &mut r,
        Metric::new(
            "network.drops_per_s",
            S,
            "drops",
            Some(r2(i.rx_drops_per_s + i.tx_drops_per_s)),
            "per_s",
            "/proc/net/dev",
        ),
    );
    push(
        &mut r,
        Metric::new(
            "network.errors_per_s",
            E,
            "errors",
            Some(r2(i.rx_errors_per_s + i.tx_errors_per_s)),
            "per_s",
            "/proc/net/dev",
        ),
    );
    r
}

/// An interface with no traffic in the window: zeros.
pub fn idle_resource(i: &str) -> Resource {
    let mut r = Resource::new("network", Some(i.to_string()));
    r.metrics = vec![
        Metric::new(
            "network.rx_kb_per_s",
            U,
            "rx",
            Some(0.0),
            "kb_per_s",
            "/proc/net/dev",
        ),
        Metric::new(
            "network.tx_kb_per_s",
            U,
            "tx",
            Some(0.0),
            "kb_per_s",
            "/proc/net/dev",
        ),
        Metric::new(
            "network.drops_per_s",
            S,
            "drops",
            Some(0.0),
            "per_s",
            "/proc/net/dev",
        ),
        Metric::new(
            "network.errors_per_s",
            E,
            "errors",
            Some(0.0),
            "per_s",
            "/proc/net/dev",
        ),
    ];
    r
}

// ---- thresholds and rules ------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "network.errors_per_s", warn: 1.0, crit: 100.0, unit: "per_s", why: "non-zero drops/errors indicate saturation or misconfiguration (S0:438)" },
    Threshold { id: "network.softnet_drops_per_s", warn: 1.0, crit: 100.0, unit: "per_s", why: "softnet_stat dropped: the per-CPU backlog (netdev_max_backlog) overflowed; any drop is a saturation error (S0:438)" },
];

/// The network namespace of a row, when it is not our own.
pub fn netns_of(ns: &str) -> Option<String> {
    (ns != "own").then(|| ns.to_string())
}

/// An interface dropping or erroring.
pub fn rules(interfaces: &[IfRow], out: &mut Vec<Finding>) {
    for i in interfaces {
        let bad = i.rx_errors_per_s + i.tx_errors_per_s + i.rx_drops_per_s + i.tx_drops_per_s;
        if let Some((sev, t)) = level("network.errors_per_s", bad) {
            let ns = if i.namespace == "own" {
                String::new()
            } else {
                format!(" ({})", i.namespace)
            };
            out.push(finding(
                "network.errors.interface",
                sev,
                "network",
                format!(
                    "Interface {}{ns} dropping/erroring: rx errors {:.1}/s, rx drops {:.1}/s, tx errors {:.1}/s, tx drops {:.1}/s",
                    i.interface, i.rx_errors_per_s, i.rx_drops_per_s, i.tx_errors_per_s, i.tx_drops_per_s
                ),
                vec![ev("network.errors_per_s", bad, ">=", t.warn, "per_s")],
                vec!["triage net".into(), format!("ip -s link show {}", i.interface)],
            ).with_subject(Subject {
                interface: Some(i.interface.clone()),
                netns: netns_of(&i.namespace),
                ..Default::default()
            }));
        }
    }
}

// ---- columns -------------------------------------------------------------------------------

/// sar -n DEV,EDEV's columns.
pub const COLUMNS: &[Column<IfRow>] = &[
    Column::left("netns", |i| s(&i.namespace)),
    Column::left("iface", |i| s(&i.interface)),
    Column::right("rxkB/s", |i| f1(i.rx_kb_per_s)),
    Column::right("txkB/s", |i| f1(i.tx_kb_per_s)),
    Column::right("rxpck/s", |i| f1(i.rx_packets_per_s)),
    Column::right("txpck/s", |i| f1(i.tx_packets_per_s)),
    Column::right("rxerr/s", |i| f1(i.rx_errors_per_s)),
    Column::right("txerr/s", |i| f1(i.tx_errors_per_s)),
    Column::right("rxdrop/s", |i| f1(i.rx_drops_per_s)),
    Column::right("txdrop/s", |i| f1(i.tx_drops_per_s)),
];
