//! A local queueing discipline dropping packets (tbf/htb over their rate, a full fq/pfifo, an
//! AQM under sustained overload), and the TCP retransmits it causes.
//!
//! A packet a qdisc drops never leaves the host: TCP retransmits it, and the retransmit
//! finding alone would blame "loss or congestion on the path". When a qdisc of this host drops
//! at least as many packets as half the retransmits of the same window, the drops explain them:
//! the retransmit finding is then a consequence (info), names the interface and qdisc in its
//! subject and carries the drops as evidence, like the SYN retransmits of a listen overflow.
//! Below that share the drops are added as evidence and the finding keeps its severity (most
//! of the loss is elsewhere).

use super::{ev, finding, level, threshold};
use crate::model::qdisc::QdiscRow;
use crate::model::report::{Finding, Severity, Subject};
use crate::model::sections::Sections;

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
fn dropping(s: &Sections) -> Vec<(&QdiscRow, Severity, f64)> {
    let vol = threshold("network.qdisc_drops_per_s");
    s.qdiscs
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

/// `network.saturation.qdisc_drops`, then the retransmit findings tied to the drops.
pub fn rules(s: &Sections, out: &mut Vec<Finding>) {
    let drops = per_interface(&dropping(s));
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
    tie_retransmits(s, &drops, out);
}

/// Give the retransmit findings of the window the local drops that explain them.
/// `drops`: one qdisc per interface. Their drops together are what this host lost; the most
/// dropping one is named.
fn tie_retransmits(s: &Sections, drops: &[(&QdiscRow, Severity, f64)], out: &mut [Finding]) {
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
        let Some(retrans) = s
            .tcp
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sections::TcpRow;

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

    fn run(s: &Sections) -> Vec<Finding> {
        let mut out = Vec::new();
        crate::analyze::net_rules(s, &mut out);
        rules(s, &mut out);
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
            ..Default::default()
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
            ..Default::default()
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
            ..Default::default()
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
            ..Default::default()
        };
        let f = run(&s);
        assert!(
            f.iter().all(|f| f.id != "network.saturation.qdisc_drops"),
            "{f:#?}"
        );
    }
}
