//! The net view's per-link and per-CPU rows: link utilization where the speed is known (sar -n
//! DEV %ifutil) and the per-CPU backlog (/proc/net/softnet_stat); their build over the
//! measured window; the softnet-drop rule; their columns. The rest of the net view's detail
//! section (sockets, listeners, ports) is in `resources::sockets`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::collect::run::Readings;
use crate::num::{r2, rate};
use crate::resources::columns::{f1, o1, s, Column};
use crate::resources::contract::{Finding, Subject};
use crate::resources::rule::{ev, finding, level};

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

/// Our own namespace's links with a known speed, their rx/tx utilization over the window.
pub fn links(r: &Readings) -> Vec<LinkRow> {
    let el = r.meta.elapsed_s;
    let own = r.namespaces.own.unwrap_or(0);
    let mut links = Vec::new();
    let (Some(a), Some(b)) = (r.t0.net.get(&own), r.t1.net.get(&own)) else {
        return links;
    };
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
    links
}

/// Per CPU: packets processed, dropped (backlog full) and time squeezes per second.
pub fn softnet(r: &Readings) -> Vec<SoftnetCpuRow> {
    let el = r.meta.elapsed_s;
    let before: BTreeMap<u32, _> = r.t0.deep.softnet.iter().map(|s| (s.cpu, s)).collect();
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
        .collect()
}

/// Packets the kernel dropped for a full per-CPU backlog, all CPUs together (threshold
/// `network.softnet_drops_per_s` in [`super::THRESHOLDS`]); the subject is the CPU that
/// dropped most.
pub fn softnet_rule(softnet: &[SoftnetCpuRow], out: &mut Vec<Finding>) {
    let drops: f64 = softnet.iter().map(|c| c.dropped_per_s).sum();
    let Some((sev, t)) = level("network.softnet_drops_per_s", drops) else {
        return;
    };
    let worst = softnet.iter().max_by(|a, b| {
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

/// sar -n DEV %ifutil: links with a known speed.
pub const LINK_COLUMNS: &[Column<LinkRow>] = &[
    Column::left("interface", |l| s(&l.interface)),
    Column::right("speed Mb/s", |l| l.speed_mbps.to_string()),
    Column::right("rx %util", |l| o1(l.rx_util_pct)),
    Column::right("tx %util", |l| o1(l.tx_util_pct)),
];

/// /proc/net/softnet_stat, per CPU.
pub const SOFTNET_COLUMNS: &[Column<SoftnetCpuRow>] = &[
    Column::left("CPU", |c| c.cpu.to_string()),
    Column::right("processed/s", |c| f1(c.processed_per_s)),
    Column::right("dropped/s", |c| f1(c.dropped_per_s)),
    Column::right("squeezed/s", |c| f1(c.time_squeeze_per_s)),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::contract::Severity;

    fn cpu(cpu: u32, dropped: f64) -> SoftnetCpuRow {
        SoftnetCpuRow {
            cpu,
            processed_per_s: 1000.0,
            dropped_per_s: dropped,
            time_squeeze_per_s: 0.0,
        }
    }

    #[test]
    fn softnet_drops_sum_over_cpus_and_name_the_worst_lowest_on_a_tie() {
        let mut out = Vec::new();
        softnet_rule(&[cpu(0, 0.5), cpu(1, 0.4)], &mut out);
        assert!(out.is_empty(), "0.9/s is under the 1/s warning: {out:?}");
        softnet_rule(&[cpu(0, 10.0), cpu(2, 60.0), cpu(1, 60.0)], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "network.saturation.softnet_drops");
        assert_eq!(out[0].severity, Severity::Critical);
        assert_eq!(out[0].evidence[0].value, 130.0);
        assert_eq!(out[0].subject.cpu, Some(1));
    }
}
