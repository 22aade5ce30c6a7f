//! Queueing disciplines over the window (`tc -s qdisc` as rates): what a local qdisc dropped,
//! delayed and held queued, per interface of our own network namespace.

use serde::{Deserialize, Serialize};

use super::build::r2;
use super::report::{Metric, Resource, UseKind};
use crate::collect::run::Readings;
use crate::host::qdisc::{handle_name, Qdisc};

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
                UseKind::Saturation,
                "qdisc drops",
                Some(r2(d)),
                "per_s",
                "rtnetlink RTM_GETQDISC",
            ));
        }
    }
}

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
}
