//! The disk resource (iostat -x): the per-device row, built from two /proc/diskstats
//! snapshots over the measured elapsed time; the disk view's detail section (merges, request
//! size, per-process and per-cgroup I/O, D-state tasks, kernel I/O errors); its USE metrics;
//! its thresholds and rules (queue, await, cache flushes, await outliers, cgroups at their I/O
//! limit); the columns of its tables. The filesystems are `super::filesystem`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::columns::{f1, o1, s, shorten, Align, Column};
use super::contract::{Finding, Metric, Resource, Severity, Subject, UseKind};
use super::kernel_log::KlogEvent;
use super::rule::{ev, finding, level, threshold, Threshold};
use super::scope::{before, cut, in_cgroup, psi_stall_ms, Scope};
use crate::collect::disk::is_virtual_block;
use crate::collect::run::Readings;
use crate::num::{delta, median, r2, rate};
use UseKind::{Saturation as S, Utilization as U};

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct DiskRow {
    pub device: String,
    pub r_per_s: f64,
    pub w_per_s: f64,
    pub rkb_per_s: f64,
    pub wkb_per_s: f64,
    pub r_await_ms: Option<f64>,
    pub w_await_ms: Option<f64>,
    /// iostat's `aqu-sz` (older sysstat: `avgqu-sz`): average requests in flight.
    pub aqu_sz: f64,
    /// Busy time share. Not clamped: above 100 is flagged, not hidden.
    pub util_pct: f64,
    pub rotational: Option<bool>,
    /// Present for SSD/multi-queue devices, where 100% busy does not mean saturated.
    pub caveat: Option<String>,
    /// Cache flushes completed per second (fsync/fdatasync on a device with a volatile write
    /// cache) and their average time, when the kernel counts them (5.5+) and there were any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flushes_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_await_ms: Option<f64>,
}

// ---- deep level (`triage disk`) -----------------------------------------------------------

/// iostat -x columns the checklist leaves out, per active device.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct DiskExtraRow {
    pub device: String,
    pub rrqm_per_s: f64,
    pub wrqm_per_s: f64,
    /// Average request size, KiB.
    pub areq_sz_kb: Option<f64>,
    /// Requests in flight at the end of the window.
    pub in_flight: u64,
    /// %util above 100 (possible on multi-queue devices, never clamped).
    pub util_over_100: bool,
}

/// One process's storage I/O (pidstat -d, /proc/PID/io).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct IoProcRow {
    pub pid: i32,
    pub comm: String,
    pub read_kb_per_s: f64,
    pub write_kb_per_s: f64,
}

/// A cgroup's block I/O over the window, against its throttling limits (v1 blkio.throttle.*,
/// v2 io.max), and its I/O pressure (v2).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct IoCgroupRow {
    pub path: String,
    /// `v1` (blkio) or `v2` (io).
    pub version: String,
    pub read_kb_per_s: f64,
    pub write_kb_per_s: f64,
    pub read_iops: f64,
    pub write_iops: f64,
    /// `MAJ:MIN kind value` (kind `rbps`, `wbps`, `riops`, `wiops`).
    pub limits: Vec<String>,
    /// The limit closest to being reached, and its use over the window.
    pub busiest_limit: Option<String>,
    pub limit_used_pct: Option<f64>,
    pub psi_some_stall_ms: Option<f64>,
    pub psi_full_stall_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct DiskDetail {
    /// Rows each `--top` list left out (list name -> rows not shown), when any (since 1.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub left_out: BTreeMap<String, usize>,
    pub devices: Vec<DiskExtraRow>,
    pub top_io: Vec<IoProcRow>,
    /// Processes whose /proc/PID/io was not readable.
    pub io_not_readable: u32,
    /// PSI io in the window.
    pub psi_some_stall_ms: Option<f64>,
    pub psi_full_stall_ms: Option<f64>,
    /// Mounts mounted read-only (a filesystem that hit errors is often remounted so).
    pub read_only_mounts: Vec<String>,
    /// I/O and filesystem errors from the kernel log (newest last).
    pub io_errors: Vec<KlogEvent>,
    /// cgroups with block I/O in the window or an I/O limit.
    pub cgroups: Vec<IoCgroupRow>,
    /// Threads in uninterruptible sleep at the end of the window, with their wait channel.
    pub d_state: Vec<super::tasks::DTask>,
}

pub fn io_cgroups(r: &Readings, scope: &Scope) -> Vec<IoCgroupRow> {
    let el = r.meta.elapsed_s;
    let mut rows = Vec::new();
    for (path, b) in &r.t1.deep.io_cgroups {
        if scope.cgroup.as_deref().is_some_and(|c| !in_cgroup(path, c)) {
            continue;
        }
        let Some(a) = r.t0.deep.io_cgroups.get(path) else {
            continue;
        };
        let rt = |x: u64, y: u64| rate(x, y, el).unwrap_or(0.0);
        let mut row = IoCgroupRow {
            path: path.clone(),
            version: if b.v1 { "v1" } else { "v2" }.into(),
            read_kb_per_s: r2(rt(a.read_bytes, b.read_bytes) / 1024.0),
            write_kb_per_s: r2(rt(a.write_bytes, b.write_bytes) / 1024.0),
            read_iops: r2(rt(a.read_ios, b.read_ios)),
            write_iops: r2(rt(a.write_ios, b.write_ios)),
            limits: b
                .limits
                .iter()
                .map(|l| format!("{} {} {}", l.device, l.kind, l.value))
                .collect(),
            ..Default::default()
        };
        for l in b.limits.iter().filter(|l| l.value > 0) {
            let dev = |f: fn(&(u64, u64)) -> u64| {
                let x = a.per_device.get(&l.device).map(f)?;
                let y = b.per_device.get(&l.device).map(f)?;
                rate(x, y, el)
            };
            let used = match l.kind.as_str() {
                "rbps" => dev(|d| d.0),
                "wbps" => dev(|d| d.1),
                "riops" => Some(row.read_iops),
                "wiops" => Some(row.write_iops),
                _ => None,
            };
            if let Some(u) = used {
                let pct = r2(u / l.value as f64 * 100.0);
                if row.limit_used_pct.is_none_or(|p| pct > p) {
                    row.limit_used_pct = Some(pct);
                    row.busiest_limit = Some(format!("{} {} {}", l.device, l.kind, l.value));
                }
            }
        }
        if let (Some(pa), Some(pb)) = (a.pressure, b.pressure) {
            row.psi_some_stall_ms =
                delta(pa.some.total_us, pb.some.total_us).map(|d| r2(d as f64 / 1000.0));
            row.psi_full_stall_ms = match (pa.full, pb.full) {
                (Some(x), Some(y)) => delta(x.total_us, y.total_us).map(|d| r2(d as f64 / 1000.0)),
                _ => None,
            };
        }
        let busy = row.read_kb_per_s + row.write_kb_per_s + row.read_iops + row.write_iops > 0.0;
        if !row.limits.is_empty() || (busy && path != "/") {
            rows.push(row);
        }
    }
    rows.sort_by(|a, b| {
        b.limit_used_pct
            .unwrap_or(0.0)
            .total_cmp(&a.limit_used_pct.unwrap_or(0.0))
            .then(
                (b.read_kb_per_s + b.write_kb_per_s)
                    .total_cmp(&(a.read_kb_per_s + a.write_kb_per_s)),
            )
            .then(a.path.cmp(&b.path))
    });
    rows.truncate(scope.top);
    rows
}

/// The disk view's detail section (`triage disk`): iostat -x extras, per-process I/O,
/// kernel I/O errors, cgroup I/O against limits, tasks in D state.
pub fn detail(r: &Readings, scope: &Scope, lookback_s: f64, active: &[String]) -> DiskDetail {
    let el = r.meta.elapsed_s;
    let mut devices = Vec::new();
    if let (Some(a), Some(b)) = (&r.t0.disks, &r.t1.disks) {
        let before: BTreeMap<&str, _> = a.iter().map(|d| (d.name.as_str(), d)).collect();
        for name in active {
            let (Some(d0), Some(d1)) = (
                before.get(name.as_str()),
                b.iter().find(|d| &d.name == name),
            ) else {
                continue;
            };
            let ios =
                delta(d0.reads, d1.reads).unwrap_or(0) + delta(d0.writes, d1.writes).unwrap_or(0);
            let sectors = delta(d0.sectors_read, d1.sectors_read).unwrap_or(0)
                + delta(d0.sectors_written, d1.sectors_written).unwrap_or(0);
            let ticks = delta(d0.time_in_progress, d1.time_in_progress).unwrap_or(0);
            devices.push(DiskExtraRow {
                device: name.clone(),
                rrqm_per_s: rate(d0.merged, d1.merged, el).map(r2).unwrap_or(0.0),
                wrqm_per_s: rate(d0.writes_merged, d1.writes_merged, el)
                    .map(r2)
                    .unwrap_or(0.0),
                areq_sz_kb: (ios > 0).then(|| r2(sectors as f64 / 2.0 / ios as f64)),
                in_flight: d1.in_progress,
                util_over_100: ticks as f64 / (el * 1000.0) * 100.0 > 100.0,
            });
        }
    }
    let mut top_io = Vec::new();
    for p in r.t1.procs.procs.values() {
        if !scope.wants(r, p.pid) || before(r, p).is_none() {
            continue;
        }
        let (Some(a), Some(b)) = (r.t0.deep.io.get(&p.pid), r.t1.deep.io.get(&p.pid)) else {
            continue;
        };
        let kb = |x: u64, y: u64| rate(x, y, el).map(|v| r2(v / 1024.0)).unwrap_or(0.0);
        let row = IoProcRow {
            pid: p.pid,
            comm: p.comm.clone(),
            read_kb_per_s: kb(a.read_bytes, b.read_bytes),
            write_kb_per_s: kb(a.write_bytes, b.write_bytes),
        };
        if row.read_kb_per_s + row.write_kb_per_s > 0.0 || scope.pid.is_some() {
            top_io.push(row);
        }
    }
    top_io.sort_by(|a, b| {
        (b.read_kb_per_s + b.write_kb_per_s)
            .total_cmp(&(a.read_kb_per_s + a.write_kb_per_s))
            .then(a.pid.cmp(&b.pid))
    });
    let mut left_out = BTreeMap::new();
    cut(&mut top_io, scope.top, "top_io", &mut left_out);
    let io_errors = super::kernel_log::kernel_log(r, lookback_s)
        .map(|k| {
            k.events
                .into_iter()
                .filter(|e| {
                    let c = e.class.to_ascii_lowercase();
                    c.contains("i/o") || c.contains("filesystem") || c.contains("disk")
                })
                .collect()
        })
        .unwrap_or_default();
    DiskDetail {
        left_out,
        devices,
        top_io,
        io_not_readable: r.t1.deep.io_denied as u32,
        psi_some_stall_ms: psi_stall_ms(r, "io", false),
        psi_full_stall_ms: psi_stall_ms(r, "io", true),
        read_only_mounts: r
            .end
            .mounts
            .iter()
            .filter(|m| m.stat.is_some_and(|s| s.read_only))
            .map(|m| m.mount_point.clone())
            .collect(),
        io_errors,
        cgroups: io_cgroups(r, scope),
        d_state: r
            .end
            .d_threads
            .iter()
            .filter(|(pid, ..)| scope.wants(r, *pid))
            .map(|(pid, tid, comm, wchan)| super::tasks::DTask {
                pid: *pid,
                tid: *tid,
                comm: comm.clone(),
                wchan: wchan.clone(),
            })
            .collect(),
    }
}

// ---- build ---------------------------------------------------------------------------------

/// Returns the active disks and how many were idle or memory/loop devices (hidden).
pub fn disks(r: &Readings) -> (Vec<DiskRow>, u32) {
    let el = r.meta.elapsed_s;
    let el_ms = el * 1000.0;
    let (Some(a), Some(b)) = (&r.t0.disks, &r.t1.disks) else {
        return (Vec::new(), 0);
    };
    let whole: Option<BTreeMap<&str, &crate::collect::disk::BlockDevice>> = r
        .end
        .block_devices
        .as_ref()
        .map(|v| v.iter().map(|d| (d.name.as_str(), d)).collect());
    let before: BTreeMap<&str, _> = a.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut rows = Vec::new();
    let mut hidden = 0;
    for d1 in b {
        let dev = whole
            .as_ref()
            .and_then(|w| w.get(d1.name.as_str()).copied());
        if whole.is_some() && dev.is_none() {
            continue; // a partition
        }
        let Some(d0) = before.get(d1.name.as_str()) else {
            continue;
        };
        let (Some(dr), Some(dw)) = (delta(d0.reads, d1.reads), delta(d0.writes, d1.writes)) else {
            continue;
        };
        let ticks = delta(d0.time_in_progress, d1.time_in_progress).unwrap_or(0);
        if (dr == 0 && dw == 0 && ticks == 0) || (is_virtual_block(&d1.name) && dr + dw == 0) {
            hidden += 1;
            continue;
        }
        let await_ms =
            |t0: u64, t1: u64, n: u64| (n > 0).then(|| r2(t1.saturating_sub(t0) as f64 / n as f64));
        let flushes = match (d0.flushes, d1.flushes) {
            (Some(a), Some(b)) if b > a => Some((
                b - a,
                d1.time_flushing
                    .unwrap_or(0)
                    .saturating_sub(d0.time_flushing.unwrap_or(0)),
            )),
            _ => None,
        };
        let rotational = dev.and_then(|d| d.rotational);
        let multi_queue = dev.map(|d| d.multi_queue).unwrap_or(false);
        let caveat = if is_virtual_block(&d1.name) {
            Some("memory- or file-backed device: not a disk".to_string())
        } else if rotational == Some(false) || multi_queue {
            Some("non-rotational/multi-queue: 100% busy does not mean saturated; judge by aqu-sz and await".to_string())
        } else {
            None
        };
        rows.push(DiskRow {
            device: d1.name.clone(),
            r_per_s: r2(dr as f64 / el),
            w_per_s: r2(dw as f64 / el),
            rkb_per_s: r2(d1.sectors_read.saturating_sub(d0.sectors_read) as f64 / 2.0 / el),
            wkb_per_s: r2(d1.sectors_written.saturating_sub(d0.sectors_written) as f64 / 2.0 / el),
            r_await_ms: await_ms(d0.time_reading, d1.time_reading, dr),
            w_await_ms: await_ms(d0.time_writing, d1.time_writing, dw),
            aqu_sz: r2(d1
                .weighted_time_in_progress
                .saturating_sub(d0.weighted_time_in_progress) as f64
                / el_ms),
            util_pct: r2(ticks as f64 / el_ms * 100.0),
            rotational,
            caveat,
            flushes_per_s: flushes.map(|(n, _)| r2(n as f64 / el)),
            flush_await_ms: flushes.map(|(n, t)| r2(t as f64 / n as f64)),
        });
    }
    rows.sort_by(|a, b| {
        b.util_pct
            .total_cmp(&a.util_pct)
            .then(a.device.cmp(&b.device))
    });
    (rows, hidden)
}

/// Whole, non-virtual disks with no I/O in the window (their counters valid at both ends):
/// the USE table lists them with zeros, so an idle box still shows its disks.
pub fn idle_disks(r: &Readings) -> Vec<String> {
    let (Some(a), Some(b)) = (&r.t0.disks, &r.t1.disks) else {
        return Vec::new();
    };
    let whole: Option<std::collections::BTreeSet<&str>> = r
        .end
        .block_devices
        .as_ref()
        .map(|v| v.iter().map(|d| d.name.as_str()).collect());
    let before: BTreeMap<&str, _> = a.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut out: Vec<String> = b
        .iter()
        .filter(|d| whole.as_ref().is_none_or(|w| w.contains(d.name.as_str())))
        .filter(|d| !is_virtual_block(&d.name))
        .filter(|d1| {
            before.get(d1.name.as_str()).is_some_and(|d0| {
                d1.reads == d0.reads
                    && d1.writes == d0.writes
                    && d1.time_in_progress == d0.time_in_progress
            })
        })
        .map(|d| d.name.clone())
        .collect();
    out.sort();
    out
}

// ---- USE metrics ---------------------------------------------------------------------------

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

/// The device's USE metrics (`disk` resource of the report).
pub fn use_resource(d: &DiskRow) -> Resource {
    let mut r = Resource::new("disk", Some(d.device.clone()));
    push(
        &mut r,
        Metric::new(
            "disk.util_pct",
            U,
            "busy",
            Some(d.util_pct),
            "pct",
            "/proc/diskstats",
        ),
    );
    push(
        &mut r,
        Metric::new(
            "disk.aqu_sz",
            S,
            "aqu-sz",
            Some(d.aqu_sz),
            "requests",
            "/proc/diskstats",
        ),
    );
    let awaits: Vec<f64> = [d.r_await_ms, d.w_await_ms].into_iter().flatten().collect();
    let worst = awaits.iter().copied().reduce(f64::max);
    push(
        &mut r,
        Metric::maybe(
            "disk.await_ms",
            S,
            "await",
            worst,
            "ms",
            "/proc/diskstats",
            "no completed I/O",
        ),
    );
    // Only when the device completed cache flushes (kernel 5.5+): like the row's field.
    if let Some(ms) = d.flush_await_ms {
        push(
            &mut r,
            Metric::new(
                "disk.flush_await_ms",
                S,
                "flush await",
                Some(ms),
                "ms",
                "/proc/diskstats",
            ),
        );
    }
    r
}

/// A device with no I/O in the window: zeros, and no await.
pub fn idle_resource(d: &str) -> Resource {
    let mut r = Resource::new("disk", Some(d.to_string()));
    r.metrics = vec![
        Metric::new(
            "disk.util_pct",
            U,
            "busy",
            Some(0.0),
            "pct",
            "/proc/diskstats",
        ),
        Metric::new(
            "disk.aqu_sz",
            S,
            "aqu-sz",
            Some(0.0),
            "requests",
            "/proc/diskstats",
        ),
        Metric::missing(
            "disk.await_ms",
            S,
            "await",
            "ms",
            "/proc/diskstats",
            "no completed I/O",
        ),
    ];
    r
}

// ---- thresholds and rules ------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "disk.flush_await_ms", warn: 20.0, crit: 100.0, unit: "ms", why: "not in the seeds: every fsync/fdatasync/O_SYNC commit waits for a cache flush, timed apart from w_await (diskstats, kernel 5.5+); a device with power-loss protection completes one in well under 1 ms, a consumer SSD in a few ms, a rotating disk in 5-15 ms; 20 ms caps a single committer at 50 commits/s, 100 ms is a write-back cache gone write-through (a failed RAID battery) or a device in trouble" },
    Threshold { id: "disk.util_pct_idle", warn: 20.0, crit: 20.0, unit: "pct", why: "companion of the I/O-wait rule: a disk under 20% busy is not what the tasks wait for" },
    Threshold { id: "disk.aqu_sz", warn: 1.0, crit: 4.0, unit: "requests", why: "avgqu-sz > 1 means requests are queuing (S0:436); needs the device busy too; 4 and more queued is critical" },
    Threshold { id: "disk.util_pct", warn: 60.0, crit: 90.0, unit: "pct", why: "%util near 100% = saturated (S0:847); only with the queue above 1 (busy alone means little on SSDs)" },
    Threshold { id: "disk.await_ms", warn: 10.0, crit: 50.0, unit: "ms", why: "SSD await > 5 ms worth a look, > 10 ms wrong (S0:436, S0:847); warn at 10 ms so rotating disks (5-15 ms) are not flagged, critical at 50 ms" },
    Threshold { id: "disk.await_outlier_ratio", warn: 5.0, crit: 20.0, unit: "ratio", why: "not in the seeds: devices of one box usually answer within 2-3x of each other; 5x the peers' median (and above disk.await_ms) points at the device or its path" },
];

/// Average requests in flight while the device was busy.
pub fn depth_while_busy(d: &DiskRow) -> Option<f64> {
    (d.util_pct > 0.0).then(|| d.aqu_sz / (d.util_pct / 100.0))
}

/// Requests neither overlapped (about one in flight while the device was busy) nor waited
/// (every average await within [`FAST_AWAIT_MS`]): the device was busy serving one request
/// at a time, each at once. Not a queue, whatever %util says (and whether or not the device
/// reports itself rotational: virtio disks often do).
pub fn one_at_a_time(d: &DiskRow) -> bool {
    let fast = [d.r_await_ms, d.w_await_ms]
        .into_iter()
        .flatten()
        .all(|a| a <= FAST_AWAIT_MS);
    fast && depth_while_busy(d).is_some_and(|q| q < SERIAL_DEPTH)
}

/// Requests in flight while the device is busy (aqu-sz / utilization) below which requests
/// do not overlap: one at a time.
pub const SERIAL_DEPTH: f64 = 2.0;
/// An average await within this (ms): requests were served at once, none waited long.
pub const FAST_AWAIT_MS: f64 = 2.0;

/// The disk findings: a saturated queue, slow I/O. `consumer_subject` and `consumer` name the
/// process behind the I/O (the caller knows the processes and the deep view's I/O consumers).
pub fn rules(
    disks: &[DiskRow],
    consumer_subject: impl Fn() -> Subject,
    consumer: impl Fn() -> Option<String>,
    out: &mut Vec<Finding>,
) {
    for d in disks {
        if d.caveat.as_deref().is_some_and(|c| c.starts_with("memory")) {
            continue;
        }
        let (ta, tu) = (threshold("disk.aqu_sz"), threshold("disk.util_pct"));
        // A device that serves requests in parallel is saturated when they overlap: at queue
        // depth ~1 (one fsync'd write after another) it is busy but waited on one request at
        // a time, which is latency, not a queue (see io_sync).
        if d.aqu_sz > ta.warn && d.util_pct >= tu.warn && !one_at_a_time(d) {
            // A deep queue is the signal (on SSDs busy time saturates long before the device).
            let sev = if d.aqu_sz >= ta.crit {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let awaits = match (d.r_await_ms, d.w_await_ms) {
                (Some(r), Some(w)) => format!(", r_await {r:.1} ms, w_await {w:.1} ms"),
                (Some(r), None) => format!(", r_await {r:.1} ms"),
                (None, Some(w)) => format!(", w_await {w:.1} ms"),
                _ => String::new(),
            };
            out.push(finding(
                "disk.saturation.queue",
                sev,
                "disk",
                format!(
                    "Disk {} saturated: {:.0}% busy with {:.1} requests queued (aqu-sz){awaits}, {:.0} IOPS{}",
                    d.device,
                    d.util_pct,
                    d.aqu_sz,
                    d.r_per_s + d.w_per_s,
                    consumer().unwrap_or_default()
                ),
                vec![
                    ev("disk.aqu_sz", d.aqu_sz, ">", ta.warn, "requests"),
                    ev("disk.util_pct", d.util_pct, ">=", tu.warn, "pct"),
                ],
                vec![format!("triage disk"), "iotop -o".into(), format!("iostat -xz {} 1", d.device)],
            ).with_subject(Subject {
                device: Some(d.device.clone()),
                ..consumer_subject()
            }));
        }
        let worst = [d.r_await_ms, d.w_await_ms]
            .into_iter()
            .flatten()
            .reduce(f64::max);
        if let Some(w) = worst {
            if let Some((sev, t)) = level("disk.await_ms", w) {
                let ios = d.r_per_s + d.w_per_s;
                if ios >= 1.0 {
                    out.push(finding(
                        "disk.saturation.await",
                        sev,
                        "disk",
                        format!("Disk {} slow: I/O takes {w:.1} ms on average ({ios:.0} IOPS, {:.0}% busy)", d.device, d.util_pct),
                        vec![ev("disk.await_ms", w, ">=", t.warn, "ms")],
                        vec!["triage disk".into(), "biolatency (bcc/libbpf-tools)".into()],
                    ).with_subject(Subject::device(&d.device)));
                }
            }
        }
        // A cache flush is timed apart from r_await/w_await (diskstats fields 16-17), so the
        // await rule cannot see a device whose flushes are slow while its writes are fast.
        if let (Some(n), Some(ms)) = (d.flushes_per_s, d.flush_await_ms) {
            if let Some((sev, t)) =
                level("disk.flush_await_ms", ms).filter(|_| n >= MIN_FLUSHES_PER_S)
            {
                out.push(finding(
                    "disk.saturation.flush",
                    sev,
                    "disk",
                    format!(
                        "Disk {} flushes its write cache slowly: each flush takes {ms:.1} ms ({n:.0} flushes/s), so every fsync/fdatasync commit waits that long while w_await ({}) looks healthy",
                        d.device,
                        d.w_await_ms.map(|w| format!("{w:.1} ms")).unwrap_or_else(|| "-".into())
                    ),
                    vec![
                        ev("disk.flush_await_ms", ms, ">=", t.warn, "ms"),
                        ev("disk.flushes_per_s", n, ">=", MIN_FLUSHES_PER_S, "per_s"),
                    ],
                    vec![
                        "triage disk".into(),
                        format!("cat /sys/block/{}/queue/write_cache", d.device),
                        "biolatency -F (bcc/libbpf-tools)".into(),
                    ],
                ).with_subject(Subject::device(&d.device)));
            }
        }
    }
}

/// A cgroup doing I/O at its blkio/io.max limit: the throttle, not the disk, is the cap. Run
/// by the disk view (`analyze::deep`), which measures the cgroups' I/O.
pub fn io_cgroup_rule(cgroups: &[IoCgroupRow], out: &mut Vec<Finding>) {
    for c in cgroups {
        let (Some(pct), Some(limit)) = (c.limit_used_pct, &c.busiest_limit) else {
            continue;
        };
        if let Some((sev, t)) = level("cgroup.io_limit_used_pct", pct) {
            out.push(finding(
                "cgroup.io.at_limit",
                sev,
                "cgroup",
                format!(
                    "{} does I/O at {pct:.0}% of its limit `{}` ({:.0} kB/s read, {:.0} kB/s written): the cgroup's I/O throttle, not the disk, is the cap",
                    s(&c.path),
                    s(limit),
                    c.read_kb_per_s,
                    c.write_kb_per_s
                ),
                vec![ev("cgroup.io_limit_used_pct", pct, ">=", t.warn, "pct")],
                vec![
                    if c.version == "v1" {
                        format!("grep . /sys/fs/cgroup/blkio{}/blkio.throttle.*_device", s(&c.path))
                    } else {
                        format!("cat /sys/fs/cgroup{}/io.max", s(&c.path))
                    },
                    format!("triage disk --cgroup {}", s(&c.path)),
                ],
            ).with_subject(Subject {
                cgroup: Some(c.path.clone()),
                ..Default::default()
            }));
        }
    }
}

/// A device whose await stands far above its peers' (a failing disk, a hot volume, a bad
/// path). Run by the disk view (`analyze::deep`).
pub fn await_outlier_rule(disks: &[DiskRow], out: &mut Vec<Finding>) {
    let awaits: Vec<(&str, f64)> = disks
        .iter()
        .filter(|d| {
            d.caveat
                .as_deref()
                .is_none_or(|c| !c.starts_with("memory-"))
        })
        .filter_map(|d| {
            let a = d.r_await_ms.unwrap_or(0.0).max(d.w_await_ms.unwrap_or(0.0));
            (a > 0.0).then_some((d.device.as_str(), a))
        })
        .collect();
    if awaits.len() < 2 {
        return;
    }
    let floor = threshold("disk.await_ms").warn;
    for (dev, a) in &awaits {
        let peers = median(awaits.iter().filter(|x| x.0 != *dev).map(|x| x.1).collect());
        let Some(peers) = peers.filter(|p| *p > 0.0) else {
            continue;
        };
        let ratio = a / peers;
        if *a < floor {
            continue;
        }
        if let Some((sev, t)) = level("disk.await_outlier_ratio", ratio) {
            out.push(finding(
                "disk.errors.await_outlier",
                sev,
                "disk",
                format!(
                    "{} answers in {a:.1} ms, {ratio:.0}x its peers' median of {peers:.1} ms: a slow or failing device or path, not load",
                    s(dev)
                ),
                vec![
                    ev("disk.await_outlier_ratio", ratio, ">=", t.warn, "ratio"),
                    ev("disk.await_ms", *a, ">=", floor, "ms"),
                ],
                vec![
                    format!("iostat -x {} 1", s(dev)),
                    format!("smartctl -a /dev/{}", s(dev)),
                    "dmesg -T | grep -iE 'error|reset|timeout'".into(),
                ],
            ).with_subject(Subject::device(dev)));
        }
    }
}

/// Flushes per second below which a slow flush is left alone (a rare sync, not a workload).
pub const MIN_FLUSHES_PER_S: f64 = 1.0;

// ---- columns -------------------------------------------------------------------------------

/// iostat -xz's columns.
pub const COLUMNS: &[Column<DiskRow>] = &[
    Column::left("device", |d| s(&d.device)),
    Column::right("r/s", |d| f1(d.r_per_s)),
    Column::right("w/s", |d| f1(d.w_per_s)),
    Column::right("rkB/s", |d| f1(d.rkb_per_s)),
    Column::right("wkB/s", |d| f1(d.wkb_per_s)),
    Column::right("r_await", |d| o1(d.r_await_ms)),
    Column::right("w_await", |d| o1(d.w_await_ms)),
    Column::right("aqu-sz", |d| format!("{:.2}", d.aqu_sz)),
    Column {
        header: "%util",
        align: Align::Right,
        value: |d| {
            if d.util_pct > 100.0 {
                format!("{:.1}!", d.util_pct)
            } else {
                f1(d.util_pct)
            }
        },
    },
];

/// iostat -x's extra columns (the disk view).
pub const EXTRA_COLUMNS: &[Column<DiskExtraRow>] = &[
    Column::left("device", |x| s(&x.device)),
    Column::right("rrqm/s", |x| f1(x.rrqm_per_s)),
    Column::right("wrqm/s", |x| f1(x.wrqm_per_s)),
    Column::right("areq-sz kB", |x| o1(x.areq_sz_kb)),
    Column::right("in flight", |x| x.in_flight.to_string()),
    Column {
        header: "%util > 100",
        align: Align::Right,
        value: |x| {
            if x.util_over_100 {
                "yes (multi-queue)".into()
            } else {
                "no".into()
            }
        },
    },
];

/// pidstat -d's columns (the disk view).
pub const IO_PROC_COLUMNS: &[Column<IoProcRow>] = &[
    Column::left("PID", |p| p.pid.to_string()),
    Column::left("command", |p| s(&p.comm)),
    Column::right("read kB/s", |p| f1(p.read_kb_per_s)),
    Column::right("write kB/s", |p| f1(p.write_kb_per_s)),
];

/// The cgroups' block I/O against their limits (the disk view).
pub const IO_CGROUP_COLUMNS: &[Column<IoCgroupRow>] = &[
    Column::left("cgroup", |c| shorten(&s(&c.path), 28)),
    Column::right("v", |c| c.version.clone()),
    Column::right("rkB/s", |c| f1(c.read_kb_per_s)),
    Column::right("wkB/s", |c| f1(c.write_kb_per_s)),
    Column::right("r/s", |c| f1(c.read_iops)),
    Column::right("w/s", |c| f1(c.write_iops)),
    Column::left("limit", |c| s(c.busiest_limit.as_deref().unwrap_or("-"))),
    Column::right("used%", |c| o1(c.limit_used_pct)),
    Column::right("PSI ms", |c| o1(c.psi_some_stall_ms)),
];
