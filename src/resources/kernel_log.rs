//! The kernel log (dmesg): problem messages classified over the look-back, grouped by class
//! and device; the `kernel_log` USE resource; one finding per class (OOM kills are the memory
//! rules'). The dmesg lines of the table are not a column table (`render::table`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::contract::{Finding, Metric, Resource, Severity, Subject, UseKind};
use super::rule::{ev, finding};
use crate::collect::kmsg;
use crate::collect::run::Readings;
use crate::num::r2;
use UseKind::Errors as E;

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct KernelLogSection {
    /// How far back messages are considered, in seconds before the end of the window.
    pub lookback_s: f64,
    pub events: Vec<KlogEvent>,
    /// Events per class (all of them, also those not listed).
    pub counts: std::collections::BTreeMap<String, u32>,
    /// All the events grouped by class (and device, for I/O, filesystem and NFS errors): what
    /// the kernel-log rules make one finding each of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<KlogGroup>,
}

/// Kernel-log events younger than this (seconds before the end of the window) are recent: a
/// warning, not history. Five minutes: long enough that a fault seen a moment before the run
/// (the usual "it was slow just now") still warns, short enough that the default look-back of
/// ten minutes leaves room for context.
pub const KLOG_RECENT_S: f64 = 300.0;

/// The evidence that a group's newest message is recent: its age against [`KLOG_RECENT_S`].
pub fn recent_evidence(g: &KlogGroup) -> super::contract::Evidence {
    ev(
        "kernel_log.newest_age_s",
        g.newest_age_s,
        "<=",
        KLOG_RECENT_S,
        "s",
    )
}

/// One class of kernel-log trouble (and its device), over the look-back.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct KlogGroup {
    /// The class id: `oom_kill`, `cgroup_oom`, `io_error`, `hung_task`, `conntrack_full`, ...
    pub class: String,
    /// Short words for it (`I/O error`).
    pub label: String,
    /// The block or filesystem device, or the NFS server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Events in the look-back.
    pub count: u32,
    /// Of them, within [`KLOG_RECENT_S`] of the end of the window.
    pub recent: u32,
    /// Of them, inside the measured window.
    pub in_window: u32,
    /// Seconds before the end of the window of the newest one.
    pub newest_age_s: f64,
    /// The process of the newest (OOM victim, hung task, segfaulting process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// The memory cgroup of an OOM kill (`task_memcg=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The newest message.
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct KlogEvent {
    /// Seconds before the end of the window.
    pub age_s: f64,
    pub class: String,
    pub message: String,
}

// ---- build ---------------------------------------------------------------------------------

/// The end of the window on the kernel log's clock (uptime, else the newest record), and the
/// look-back point `lookback_s` before it, in microseconds.
pub fn log_window(r: &Readings, recs: &[kmsg::KmsgRecord], lookback_s: f64) -> (u64, u64) {
    let now_us =
        r.t1.system
            .uptime_s
            .map(|u| (u * 1e6) as u64)
            .or_else(|| recs.last().map(|l| l.ts_us))
            .unwrap_or(0);
    (now_us, now_us.saturating_sub((lookback_s * 1e6) as u64))
}

/// Kernel log events at most `lookback_s` before the end of the window.
pub fn kernel_log(r: &Readings, lookback_s: f64) -> Option<KernelLogSection> {
    let recs = r.end.kmsg.as_ref()?;
    let (now_us, since) = log_window(r, recs, lookback_s);
    let events = kmsg::classify(recs, since);
    let mut counts = BTreeMap::new();
    for e in &events {
        *counts.entry(e.class.label().to_string()).or_insert(0) += 1;
    }
    // pid -> memory cgroup, from the `oom-kill:` summaries.
    let mut memcg: BTreeMap<u32, String> = BTreeMap::new();
    for rec in recs.iter().filter(|x| x.message.starts_with("oom-kill:")) {
        let field = |k: &str| rec.message.split(',').find_map(|kv| kv.strip_prefix(k));
        if let (Some(pid), Some(cg)) = (
            field("pid=").and_then(|p| p.trim().parse().ok()),
            field("task_memcg="),
        ) {
            memcg.insert(pid, cg.to_string());
        }
    }
    let mut groups: Vec<KlogGroup> = Vec::new();
    for e in &events {
        let age = r2(now_us.saturating_sub(e.ts_us) as f64 / 1e6);
        let device = matches!(
            e.class,
            kmsg::KmsgClass::IoError | kmsg::KmsgClass::FsError | kmsg::KmsgClass::NfsNotResponding
        )
        .then(|| e.device.clone())
        .flatten();
        let i = match groups
            .iter()
            .position(|g| g.class == e.class.id() && g.device == device)
        {
            Some(i) => i,
            None => {
                groups.push(KlogGroup {
                    class: e.class.id().to_string(),
                    label: e.class.label().to_string(),
                    device,
                    ..Default::default()
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.count += 1;
        g.recent += u32::from(age <= KLOG_RECENT_S);
        // Plus a second of slack for clock granularity.
        g.in_window += u32::from(age <= r.meta.elapsed_s + 1.0);
        // Events come in log order: the last one is the newest.
        g.newest_age_s = age;
        g.pid = e.pid;
        g.comm = e.comm.clone();
        g.cgroup = e.pid.and_then(|p| memcg.get(&p).cloned());
        g.message = e.message.clone();
    }
    let mut listed: Vec<KlogEvent> = events
        .iter()
        .map(|e| KlogEvent {
            age_s: r2(now_us.saturating_sub(e.ts_us) as f64 / 1e6),
            class: e.class.label().to_string(),
            message: e.message.clone(),
        })
        .collect();
    // The newest matter most; keep the list short.
    if listed.len() > 20 {
        listed.drain(..listed.len() - 20);
    }
    Some(KernelLogSection {
        lookback_s,
        events: listed,
        counts,
        groups,
    })
}

// ---- USE metrics ---------------------------------------------------------------------------

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

/// The kernel log's USE metric (problem messages in the look-back).
pub fn use_resource(k: &KernelLogSection) -> Resource {
    let mut r = Resource::new("kernel_log", None);
    push(
        &mut r,
        Metric::new(
            "kernel_log.error_events",
            E,
            "messages",
            Some(k.counts.values().sum::<u32>() as f64),
            "count",
            "/dev/kmsg",
        ),
    );
    r
}

// ---- rules ---------------------------------------------------------------------------------

pub fn is_oom(class: &str) -> bool {
    class == "oom_kill" || class == "cgroup_oom"
}

/// "in the window", "in the last 5 min", "in the 10 min before the window".
pub fn klog_when(in_window: u32, recent: u32, lookback_s: f64) -> String {
    if in_window > 0 {
        "in the window".into()
    } else if recent > 0 {
        format!("in the last {:.0} min", KLOG_RECENT_S / 60.0)
    } else {
        format!("in the {:.0} min before the window", lookback_s / 60.0)
    }
}

/// One finding per class of kernel-log trouble (and per device for I/O, filesystem and NFS
/// errors), with its count: critical when a serious one is in the window, a warning when
/// recent ([`KLOG_RECENT_S`]), info when older within the look-back. OOM kills are left to
/// the memory rules (`memory::rules`), so one kill is one finding.
pub fn rules(k: Option<&KernelLogSection>, out: &mut Vec<Finding>) {
    let Some(k) = k else { return };
    for g in k.groups.iter().filter(|g| !is_oom(&g.class)) {
        let serious = matches!(
            g.class.as_str(),
            "io_error" | "fs_error" | "hung_task" | "soft_lockup" | "hardware_error" | "rcu_stall"
        );
        let sev = if g.in_window > 0 && serious {
            Severity::Critical
        } else if g.recent > 0 {
            Severity::Warning
        } else {
            Severity::Info
        };
        let n = if g.recent > 0 { g.recent } else { g.count };
        let on = g
            .device
            .as_deref()
            .map(|d| format!(" on {d}"))
            .unwrap_or_default();
        let who = match (&g.comm, g.pid) {
            (Some(c), Some(p)) => format!(" ({c}, pid {p})"),
            _ => String::new(),
        };
        let when = klog_when(g.in_window, g.recent, k.lookback_s);
        let mut next: Vec<String> = match (g.class.as_str(), g.device.as_deref(), g.pid) {
            ("io_error", Some(d), _) => vec![
                format!("dmesg -T | grep -w {d}"),
                format!("smartctl -a /dev/{d}"),
            ],
            ("fs_error", Some(d), _) => vec![format!("dmesg -T | grep -w {d}")],
            ("hung_task", _, Some(p)) => vec![format!("cat /proc/{p}/stack"), "triage disk".into()],
            ("conntrack_full", ..) => vec![
                "conntrack -S".into(),
                "sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max".into(),
            ],
            ("syn_flood", ..) => vec!["ss -ltn".into(), "triage net".into()],
            _ => Vec::new(),
        };
        next.push("dmesg -T | tail -50".into());
        let mut e = vec![ev("kernel_log.error_events", n as f64, ">=", 1.0, "count")];
        if g.recent > 0 {
            e.push(recent_evidence(g));
        }
        out.push(
            finding(
                &format!("kernel_log.errors.{}", g.class),
                sev,
                "kernel_log",
                format!(
                    "Kernel: {n} {}{}{on}{who} {when}, the last {:.0} s before the end of the window: {}",
                    g.label,
                    if n == 1 { "" } else { "s" },
                    g.newest_age_s,
                    g.message
                ),
                e,
                next,
            )
            .with_subject(Subject {
                pid: g.pid.map(|p| p as i32),
                comm: g.comm.clone(),
                device: g.device.clone(),
                cgroup: g.cgroup.clone(),
                class: Some(g.class.clone()),
                ..Default::default()
            }),
        );
    }
}
