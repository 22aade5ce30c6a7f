//! Queueing disciplines (`tc -s qdisc` as rates over the window): what a local qdisc dropped,
//! delayed and held queued, per interface of our own network namespace, built from two
//! rtnetlink dumps; the interface's qdisc-drop USE metric; the qdisc thresholds; the rule of a
//! dropping qdisc and the TCP retransmits it explains; the qdisc table's columns.
//!
//! The rule: a local queueing discipline dropping packets (tbf/htb over their rate, a full fq/pfifo, an
//! AQM under sustained overload), and the TCP retransmits it causes.
//!
//! A packet a qdisc drops never leaves the host: TCP retransmits it, and the retransmit
//! finding alone would blame "loss or congestion on the path". When a qdisc of this host drops
//! at least as many packets as half the retransmits of the same window, the drops explain them:
//! the retransmit finding is then a consequence (info), names the interface and qdisc in its
//! subject and carries the drops as evidence, like the SYN retransmits of a listen overflow.
//! Below that share the drops are added as evidence and the finding keeps its severity (most
//! of the loss is elsewhere).

use serde::{Deserialize, Serialize};

use super::columns::{f1, o1, s, shorten, Align, Column};
use super::contract::{Finding, Metric, Resource, Severity, Subject, UseKind};
use super::rule::{ev, finding, level, threshold, Threshold};
use super::tcp::TcpRow;
use crate::collect::qdisc::{handle_name, Qdisc};
use crate::collect::run::Readings;
use crate::num::r2;
use crate::text::human_bytes;
use UseKind::Saturation as S;

// ---- section and build ---------------------------------------------------------------------

/// Rows the report keeps at most (the most dropping first).
pub const MAX_ROWS: usize = 64;
const TC_H_ROOT: u32 = 0xffff_ffff;

/// One qdisc over the window. Listed: every interface's root qdisc (but `noqueue`, which queues
/// nothing) and any other qdisc that dropped in the window; never loopback.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct QdiscRow {
    pub interface: String,
    /// `tbf`, `htb`, `fq`, `fq_codel`, `pfifo_fast`, `mq`...
    pub kind: String,
    /// `tc`'s spelling: `8001:`, `1:10`.
    pub handle: String,
    /// `root`, `ingress`, or the parent class (`1:10`).
    pub parent: String,
    pub packets_per_s: f64,
    pub kb_per_s: f64,
    /// Packets the qdisc dropped (queue full, over its rate for longer than its latency).
    pub drops_per_s: f64,
    /// Times a packet had to wait: over the shaper's rate (tbf/htb), not yet allowed to leave.
    pub overlimits_per_s: f64,
    /// Packets handed back by the driver (device busy); absent from old kernels' counters.
    pub requeues_per_s: Option<f64>,
    /// Dropped in the window (count).
    pub drops: u64,
    /// Queued at the end of the window.
    pub backlog_bytes: u64,
    pub backlog_packets: u64,
    /// A counter went backwards, or the qdisc appeared or was replaced in the window: the
    /// rates count from zero (the qdisc's own counters since it started), never negative.
    pub reset: bool,
}

fn key(q: &Qdisc) -> (u32, u32, u32) {
    (q.ifindex, q.parent, q.handle)
}

/// The window's rows: root qdiscs (not `noqueue`) and dropping ones, most dropping first.
pub fn rows(r: &Readings) -> Vec<QdiscRow> {
    let (Some(t0), Some(t1)) = (&r.t0.qdiscs, &r.t1.qdiscs) else {
        return Vec::new();
    };
    let el = r.meta.elapsed_s;
    if !(el.is_finite() && el > 0.0) {
        return Vec::new();
    }
    let before: std::collections::BTreeMap<_, &Qdisc> = t0.iter().map(|q| (key(q), q)).collect();
    let mut out = Vec::new();
    for q in t1.iter().filter(|q| q.interface != "lo") {
        let prev = before.get(&key(q)).filter(|p| p.kind == q.kind);
        let mut reset = prev.is_none();
        // A counter that went down was reset: count from zero.
        let mut d = |f: fn(&Qdisc) -> u64| -> u64 {
            let now = f(q);
            match prev.map(|p| f(p)) {
                Some(was) if was <= now => now - was,
                _ => {
                    reset = true;
                    now
                }
            }
        };
        let drops = d(|q| q.drops);
        let packets = d(|q| q.packets);
        let bytes = d(|q| q.bytes);
        let overlimits = d(|q| q.overlimits);
        let requeues = match (q.requeues, prev.map(|p| p.requeues)) {
            (Some(now), Some(Some(was))) if was <= now => Some(now - was),
            (Some(now), _) => {
                reset |= prev.is_some_and(|p| p.requeues.is_some());
                Some(now)
            }
            (None, _) => None,
        };
        let root = q.parent == TC_H_ROOT;
        if !(root && q.kind != "noqueue" || drops > 0) {
            continue;
        }
        let rt = |n: u64| r2(n as f64 / el);
        out.push(QdiscRow {
            interface: q.interface.clone(),
            kind: q.kind.clone(),
            handle: handle_name(q.handle),
            parent: handle_name(q.parent),
            packets_per_s: rt(packets),
            kb_per_s: r2(bytes as f64 / 1024.0 / el),
            drops_per_s: rt(drops),
            overlimits_per_s: rt(overlimits),
            requeues_per_s: requeues.map(rt),
            drops,
            backlog_bytes: q.backlog_bytes,
            backlog_packets: q.qlen,
            reset,
        });
    }
    out.sort_by(|a, b| {
        b.drops_per_s
            .total_cmp(&a.drops_per_s)
            .then_with(|| a.interface.cmp(&b.interface))
            .then_with(|| (a.parent != "root").cmp(&(b.parent != "root")))
            .then_with(|| a.handle.cmp(&b.handle))
    });
    out.truncate(MAX_ROWS);
    out
}

// ---- USE metrics ---------------------------------------------------------------------------

/// Qdisc drops per interface as a saturation metric of the USE table's interface rows (own
/// namespace): the sum over that interface's listed qdiscs is not used, the root's drops are
/// (a root classful qdisc counts what its leaves dropped). Nothing when no qdisc was read, so
/// reports of recordings without qdiscs are unchanged.
pub fn add_to_use(out: &mut [Resource], rows: &[QdiscRow]) {
    for res in out.iter_mut().filter(|r| r.name == "network") {
        let Some(iface) = res.instance.as_deref() else {
            continue;
        };
        let drops = rows
            .iter()
            .filter(|q| q.interface == iface && q.parent == "root")
            .map(|q| q.drops_per_s)
            .fold(None, |a: Option<f64>, v| Some(a.unwrap_or(0.0) + v));
        if let Some(d) = drops {
            res.metrics.push(Metric::new(
                "network.qdisc_drops_per_s",
                S,
                "qdisc drops",
                Some(r2(d)),
                "per_s",
                "rtnetlink RTM_GETQDISC",
            ));
        }
    }
}

// ---- thresholds ----------------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "network.qdisc_drop_pct", warn: 1.0, crit: 5.0, unit: "pct", why: "non-zero drops indicate saturation (S0:438), judged like retransmits (tcp.retrans_pct): a qdisc dropping 1% of the packets it is given costs TCP a retransmit and a cwnd cut for each; 5% is a shaper or queue far under its load. Over the window, never since boot: an fq_codel with a few drops over months is healthy" },
    Threshold { id: "network.qdisc_drops_per_s", warn: 10.0, crit: 100.0, unit: "per_s", why: "companion of the share: a share needs volume to mean something, at least 10 drops/s (as tcp.retrans_segs_per_s)" },
    Threshold { id: "tcp.retrans_qdisc_drop_pct", warn: 50.0, crit: 50.0, unit: "pct", why: "each packet a local qdisc drops costs TCP at least one retransmit (more with tail losses and spurious ones): when this host's qdisc drops at least half as many packets as TCP retransmits in the same window, the loss is local, and the retransmit finding is its consequence (info)" },
];

// ---- rules ---------------------------------------------------------------------------------

/// Queueing disciplines whose drops are their design (they drop early to signal congestion);
/// said in the summary, judged by the same numbers.
const AQM: &[&str] = &[
    "fq_codel", "codel", "pie", "fq_pie", "cake", "red", "choke", "sfb",
];

/// Share of sent packets: dequeued plus dropped (a dropped packet was never sent).
fn drop_pct(q: &QdiscRow) -> f64 {
    let total = q.packets_per_s + q.drops_per_s;
    if total > 0.0 {
        q.drops_per_s / total * 100.0
    } else {
        0.0
    }
}

/// The qdiscs that drop enough to be a finding, with (severity, drop share).
fn dropping(qdiscs: &[QdiscRow]) -> Vec<(&QdiscRow, Severity, f64)> {
    let vol = threshold("network.qdisc_drops_per_s");
    qdiscs
        .iter()
        .filter(|q| q.drops_per_s.is_finite() && q.drops_per_s >= vol.warn)
        .filter_map(|q| {
            let pct = drop_pct(q);
            level("network.qdisc_drop_pct", pct).map(|(sev, _)| (q, sev, pct))
        })
        .collect()
}

fn subject(q: &QdiscRow) -> Subject {
    Subject {
        interface: Some(q.interface.clone()),
        class: Some(q.kind.clone()),
        ..Default::default()
    }
}

/// One qdisc per interface, most dropping interface first: its most dropping qdisc. A
/// classful root (htb, mq, prio) counts its leaves' drops too: when one leaf drops them all,
/// the leaf is the one named.
fn per_interface<'a>(
    drops: &[(&'a QdiscRow, Severity, f64)],
) -> Vec<(&'a QdiscRow, Severity, f64)> {
    let mut out: Vec<(&QdiscRow, Severity, f64)> = Vec::new();
    for (first, _, _) in drops {
        if out.iter().any(|o| o.0.interface == first.interface) {
            continue;
        }
        let best = drops
            .iter()
            .filter(|d| d.0.interface == first.interface)
            .max_by(|a, b| {
                a.0.drops_per_s
                    .total_cmp(&b.0.drops_per_s)
                    .then((a.0.parent != "root").cmp(&(b.0.parent != "root")))
            });
        out.extend(best.copied());
    }
    out
}

/// `network.saturation.qdisc_drops`, then the retransmit findings (already in `out`, made
/// from `tcp`) tied to the drops.
pub fn rules(qdiscs: &[QdiscRow], tcp: &[TcpRow], out: &mut Vec<Finding>) {
    let drops = per_interface(&dropping(qdiscs));
    for &(q, sev, pct) in &drops {
        let pt = threshold("network.qdisc_drop_pct");
        let vt = threshold("network.qdisc_drops_per_s");
        let aqm = if AQM.contains(&q.kind.as_str()) {
            " (an AQM drops by design to slow senders down; this much means the link is overloaded)"
        } else {
            ""
        };
        let at = if q.parent == "root" {
            String::new()
        } else {
            format!(" {} (class {})", q.handle, q.parent)
        };
        out.push(
            finding(
                "network.saturation.qdisc_drops",
                sev,
                "network",
                format!(
                    "Queueing discipline {kind}{at} on {iface} dropping {d:.0} packets/s ({pct:.1}% of what it was given), over its limit {o:.0} times/s, {bl} bytes ({p} packets) queued at the end: packets lost on this host, before the wire{aqm}",
                    kind = q.kind,
                    iface = q.interface,
                    d = q.drops_per_s,
                    o = q.overlimits_per_s,
                    bl = q.backlog_bytes,
                    p = q.backlog_packets,
                ),
                vec![
                    ev("network.qdisc_drop_pct", pct, ">=", pt.warn, "pct"),
                    ev("network.qdisc_drops_per_s", q.drops_per_s, ">=", vt.warn, "per_s"),
                    ev("network.qdisc_overlimits_per_s", q.overlimits_per_s, ">=", 0.0, "per_s"),
                    ev("network.qdisc_backlog_bytes", q.backlog_bytes as f64, ">=", 0.0, "bytes"),
                ],
                vec![
                    format!("tc -s qdisc show dev {}", q.interface),
                    "triage net".into(),
                ],
            )
            .with_subject(subject(q)),
        );
    }
    tie_retransmits(tcp, &drops, out);
}

/// Give the retransmit findings of the window the local drops that explain them.
/// `drops`: one qdisc per interface. Their drops together are what this host lost; the most
/// dropping one is named.
fn tie_retransmits(tcp: &[TcpRow], drops: &[(&QdiscRow, Severity, f64)], out: &mut [Finding]) {
    let Some((q, _, _)) = drops
        .iter()
        .max_by(|a, b| a.0.drops_per_s.total_cmp(&b.0.drops_per_s))
    else {
        return;
    };
    let local: f64 = drops.iter().map(|d| d.0.drops_per_s).sum();
    let share = threshold("tcp.retrans_qdisc_drop_pct");
    for f in out.iter_mut().filter(|f| f.id == "tcp.errors.retransmits") {
        // The namespace row this finding was made from (its subject names it, or our own).
        let ns = f.subject.netns.clone().unwrap_or_else(|| "own".into());
        let Some(retrans) = tcp
            .iter()
            .find(|t| t.namespace == ns)
            .and_then(|t| t.retrans_segs_per_s)
            .filter(|r| *r > 0.0)
        else {
            continue;
        };
        if f.severity == Severity::Info {
            continue; // already a consequence of something else (a listen overflow)
        }
        let explained = local / retrans * 100.0;
        f.evidence.push(ev(
            "tcp.retrans_qdisc_drop_pct",
            explained,
            ">=",
            share.warn,
            "pct",
        ));
        f.subject.interface = Some(q.interface.clone());
        f.subject.class = Some(q.kind.clone());
        if explained >= share.warn {
            f.severity = Severity::Info;
            f.summary.push_str(&format!(
                "; the drops are local, not the network: {} on {} drops {:.0} packets/s on this host (see network.saturation.qdisc_drops)",
                q.kind, q.interface, q.drops_per_s
            ));
            f.next
                .insert(0, format!("tc -s qdisc show dev {}", q.interface));
        } else {
            f.summary.push_str(&format!(
                "; {} on {} drops {:.0} packets/s on this host too, fewer than half the retransmits: most loss is elsewhere",
                q.kind, q.interface, q.drops_per_s
            ));
        }
    }
}

// ---- columns -------------------------------------------------------------------------------

/// The qdisc table's columns.
pub const COLUMNS: &[Column<QdiscRow>] = &[
    Column::left("interface", |q| shorten(&s(&q.interface), 18)),
    Column::left("qdisc", |q| shorten(&s(&q.kind), 12)),
    Column::left("handle", |q| s(&q.handle)),
    Column::left("parent", |q| s(&q.parent)),
    Column::right("pkts/s", |q| f1(q.packets_per_s)),
    Column::right("drops/s", |q| f1(q.drops_per_s)),
    Column::right("overlimits/s", |q| f1(q.overlimits_per_s)),
    Column::right("requeues/s", |q| o1(q.requeues_per_s)),
    Column {
        header: "backlog",
        align: Align::Right,
        value: |q| {
            format!(
                "{} {}p",
                human_bytes(q.backlog_bytes).replace(' ', ""),
                q.backlog_packets
            )
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn qd(iface: &str, kind: &str, handle: u32, parent: u32, pkts: u64, drops: u64) -> Qdisc {
        Qdisc {
            interface: iface.into(),
            ifindex: iface.len() as u32,
            kind: kind.into(),
            handle,
            parent,
            bytes: pkts * 1500,
            packets: pkts,
            drops,
            overlimits: drops * 10,
            requeues: Some(0),
            backlog_bytes: 3000,
            qlen: 2,
        }
    }

    fn readings(t0: Option<Vec<Qdisc>>, t1: Option<Vec<Qdisc>>) -> Readings {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idle");
        let mut r = crate::collect::run::from_fixture(&dir).unwrap();
        r.meta.elapsed_s = 2.0;
        r.t0.qdiscs = t0;
        r.t1.qdiscs = t1;
        r
    }

    #[test]
    fn rates_over_the_window_roots_and_dropping_children_only() {
        let t0 = vec![
            qd("tq0", "tbf", 0x8001_0000, TC_H_ROOT, 1000, 50),
            qd("eth0", "htb", 0x0001_0000, TC_H_ROOT, 10, 0),
            qd("eth0", "fq_codel", 0x0010_0000, 0x0001_0010, 10, 0),
            qd("eth0", "fq_codel", 0x0020_0000, 0x0001_0020, 10, 0),
            qd("lo", "noqueue", 0, TC_H_ROOT, 0, 0),
            qd("veth1", "noqueue", 0, TC_H_ROOT, 0, 0),
        ];
        let mut t1 = t0.clone();
        t1[0] = qd("tq0", "tbf", 0x8001_0000, TC_H_ROOT, 2280, 280);
        t1[1] = qd("eth0", "htb", 0x0001_0000, TC_H_ROOT, 30, 4);
        t1[2] = qd("eth0", "fq_codel", 0x0010_0000, 0x0001_0010, 30, 4);
        let rows = rows(&readings(Some(t0), Some(t1)));
        let names: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (r.interface.as_str(), r.kind.as_str(), r.parent.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("tq0", "tbf", "root"),
                ("eth0", "htb", "root"),
                ("eth0", "fq_codel", "1:10")
            ]
        );
        let tbf = &rows[0];
        assert_eq!(tbf.handle, "8001:");
        assert_eq!((tbf.drops_per_s, tbf.drops), (115.0, 230));
        assert_eq!((tbf.packets_per_s, tbf.overlimits_per_s), (640.0, 1150.0));
        assert_eq!((tbf.backlog_bytes, tbf.backlog_packets), (3000, 2));
        assert_eq!(tbf.requeues_per_s, Some(0.0));
        assert!(!tbf.reset);
    }

    /// A counter that went down (qdisc replaced: `tc qdisc replace`, a link reset) counts from
    /// zero; a qdisc new in the window counts its own counters; never a negative rate.
    #[test]
    fn resets_and_new_qdiscs_count_from_zero() {
        let t0 = vec![qd("tq0", "tbf", 0x8001_0000, TC_H_ROOT, 5000, 900)];
        let t1 = vec![
            qd("tq0", "tbf", 0x8001_0000, TC_H_ROOT, 200, 20),
            qd("tq1", "pfifo", 0x0001_0000, TC_H_ROOT, 100, 6),
        ];
        let rows = rows(&readings(Some(t0), Some(t1)));
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.reset && r.drops_per_s >= 0.0));
        assert_eq!(rows[0].drops_per_s, 10.0);
        assert_eq!(rows[1].drops_per_s, 3.0);
    }

    #[test]
    fn no_reading_gives_no_rows_and_no_use_metric() {
        let one = vec![qd("tq0", "tbf", 0x8001_0000, TC_H_ROOT, 5000, 900)];
        assert!(rows(&readings(None, Some(one.clone()))).is_empty());
        assert!(rows(&readings(Some(one), None)).is_empty());
        let mut res = vec![Resource::new("network", Some("eth0".into()))];
        add_to_use(&mut res, &[]);
        assert!(res[0].metrics.is_empty());
        let row = QdiscRow {
            interface: "eth0".into(),
            parent: "root".into(),
            drops_per_s: 4.5,
            ..Default::default()
        };
        add_to_use(&mut res, &[row]);
        assert_eq!(res[0].metrics[0].id, "network.qdisc_drops_per_s");
        assert_eq!(res[0].metrics[0].value, Some(4.5));
    }

    fn q(iface: &str, kind: &str, pkts: f64, drops: f64) -> QdiscRow {
        QdiscRow {
            interface: iface.into(),
            kind: kind.into(),
            handle: "8001:".into(),
            parent: "root".into(),
            packets_per_s: pkts,
            drops_per_s: drops,
            overlimits_per_s: 900.0,
            drops: (drops * 2.0) as u64,
            backlog_bytes: 21_000,
            backlog_packets: 7,
            ..Default::default()
        }
    }

    fn retrans(ns: &str, per_s: f64, pct: f64) -> TcpRow {
        TcpRow {
            namespace: ns.into(),
            retrans_segs_per_s: Some(per_s),
            retrans_pct: Some(pct),
            out_segs_per_s: Some(per_s / pct * 100.0),
            ..Default::default()
        }
    }

    /// What the rules see of a report.
    #[derive(Default)]
    struct Sections {
        qdiscs: Vec<QdiscRow>,
        tcp: Vec<TcpRow>,
    }

    /// The TCP rules, then the qdisc rules (as `analyze::findings` runs them).
    fn run(s: &Sections) -> Vec<Finding> {
        let mut out = Vec::new();
        crate::resources::tcp::rules(&s.tcp, |_| {}, &mut out);
        rules(&s.qdiscs, &s.tcp, &mut out);
        out
    }

    #[test]
    fn a_dropping_shaper_is_named_with_its_interface_and_kind() {
        let s = Sections {
            qdiscs: vec![
                q("tq0", "tbf", 640.0, 115.0),
                q("eth0", "pfifo_fast", 50.0, 0.0),
            ],
            ..Default::default()
        };
        let f = run(&s);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].id, "network.saturation.qdisc_drops");
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].subject.interface.as_deref(), Some("tq0"));
        assert_eq!(f[0].subject.class.as_deref(), Some("tbf"));
        assert_eq!(f[0].evidence[0].value, 15.23);
        assert_eq!(f[0].evidence[1].value, 115.0);
        assert_eq!(f[0].next[0], "tc -s qdisc show dev tq0");
    }

    /// An htb root whose one fq_codel leaf drops everything: the leaf is named.
    #[test]
    fn the_dropping_leaf_of_a_classful_root_is_named() {
        let mut leaf = q("eth0", "fq_codel", 900.0, 50.0);
        (leaf.handle, leaf.parent) = ("10:".into(), "1:10".into());
        let s = Sections {
            qdiscs: vec![q("eth0", "htb", 900.0, 50.0), leaf],
            ..Default::default()
        };
        let f = run(&s);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].subject.class.as_deref(), Some("fq_codel"));
        assert!(
            f[0].summary.contains("fq_codel 10: (class 1:10) on eth0"),
            "{}",
            f[0].summary
        );
    }

    /// A healthy box: an fq_codel signalling congestion now and then (2 drops/s of 5,000
    /// packets/s), a trickle of drops on a quiet link (5/s of 10/s): no finding.
    #[test]
    fn a_few_drops_are_not_a_finding() {
        for (pkts, drops) in [(5000.0, 2.0), (10.0, 5.0), (5000.0, 40.0)] {
            let s = Sections {
                qdiscs: vec![q("eth0", "fq_codel", pkts, drops)],
                ..Default::default()
            };
            assert!(run(&s).is_empty(), "{pkts} pkts/s, {drops} drops/s");
        }
        // Just over both: a warning that says what an AQM's drops mean.
        let s = Sections {
            qdiscs: vec![q("eth0", "fq_codel", 1000.0, 12.0)],
            ..Default::default()
        };
        let f = run(&s);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].summary.contains("AQM"), "{}", f[0].summary);
    }

    /// The drops explain the retransmits (115 drops/s against 180 retransmits/s): the
    /// retransmit finding is their consequence (info) and names the interface.
    #[test]
    fn retransmits_caused_by_local_drops_are_a_consequence() {
        let s = Sections {
            qdiscs: vec![q("tq0", "tbf", 640.0, 115.0)],
            tcp: vec![retrans("netns:4026532177", 180.0, 22.0)],
        };
        let f = run(&s);
        let rt = f.iter().find(|f| f.id == "tcp.errors.retransmits").unwrap();
        assert_eq!(rt.severity, Severity::Info);
        assert_eq!(rt.subject.interface.as_deref(), Some("tq0"));
        assert_eq!(rt.subject.class.as_deref(), Some("tbf"));
        assert_eq!(rt.subject.netns.as_deref(), Some("netns:4026532177"));
        let e = rt.evidence.last().unwrap();
        assert_eq!(
            (e.metric.as_str(), e.value),
            ("tcp.retrans_qdisc_drop_pct", 63.89)
        );
        assert!(rt.summary.contains("local"), "{}", rt.summary);
        assert_eq!(rt.next[0], "tc -s qdisc show dev tq0");
    }

    /// Two shaped interfaces, 45 and 40 drops/s, 150 retransmits/s: together they explain
    /// them (57%), though neither alone does; the bigger is named.
    #[test]
    fn drops_of_every_interface_add_up() {
        let s = Sections {
            qdiscs: vec![
                q("veth1", "tbf", 900.0, 45.0),
                q("veth2", "htb", 900.0, 40.0),
            ],
            tcp: vec![retrans("own", 150.0, 10.0)],
        };
        let f = run(&s);
        assert_eq!(
            f.iter()
                .filter(|f| f.id == "network.saturation.qdisc_drops")
                .count(),
            2
        );
        let rt = f.iter().find(|f| f.id == "tcp.errors.retransmits").unwrap();
        assert_eq!(rt.severity, Severity::Info);
        assert_eq!(rt.evidence.last().unwrap().value, 56.67);
        assert_eq!(rt.subject.interface.as_deref(), Some("veth1"));
    }

    /// Drops far fewer than the retransmits: the loss is mostly elsewhere; the finding keeps
    /// its severity and carries the drops as evidence.
    #[test]
    fn retransmits_mostly_elsewhere_keep_their_severity() {
        let s = Sections {
            qdiscs: vec![q("eth0", "fq", 5000.0, 60.0)],
            tcp: vec![retrans("own", 400.0, 8.0)],
        };
        let f = run(&s);
        let rt = f.iter().find(|f| f.id == "tcp.errors.retransmits").unwrap();
        assert_eq!(rt.severity, Severity::Critical);
        assert_eq!(rt.evidence.last().unwrap().value, 15.0);
        assert_eq!(rt.subject.interface.as_deref(), Some("eth0"));
        // No qdisc dropping: the retransmit finding is as before.
        let s = Sections {
            tcp: vec![retrans("own", 400.0, 8.0)],
            ..Default::default()
        };
        let f = run(&s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject.interface, None);
        assert_eq!(f[0].evidence.len(), 2);
    }

    #[test]
    fn hostile_numbers_do_not_fire_or_panic() {
        let s = Sections {
            qdiscs: vec![
                q("a", "tbf", f64::NAN, f64::NAN),
                q("b", "tbf", f64::INFINITY, f64::INFINITY),
                q("c", "tbf", 0.0, 0.0),
            ],
            tcp: vec![retrans("own", 1e300, 100.0)],
        };
        let f = run(&s);
        assert!(
            f.iter().all(|f| f.id != "network.saturation.qdisc_drops"),
            "{f:#?}"
        );
    }
}
