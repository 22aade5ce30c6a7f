//! Tasks waiting on I/O (PSI io) and what kind of waiting it is. A writer that fsyncs small
//! writes one at a time keeps a disk "busy" (%util 75, aqu-sz ~1) and its threads stalled
//! (PSI io 30%), yet the device is not saturated: each request is served at once (w_await
//! 0.1 ms) and none waits behind another. The fix is fewer or batched syncs (group commit,
//! fdatasync, a write-back cache), not a faster disk or a shallower queue.

use super::{ev, finding};
use crate::model::report::{Finding, Severity, Subject};
use crate::model::sections::{DiskRow, Sections};
pub use crate::resources::disk::{depth_while_busy, one_at_a_time, FAST_AWAIT_MS, SERIAL_DEPTH};

/// PSI io `some`: share of the window in which at least one task stalled on I/O. 10% is
/// where latency-sensitive services notice; a fifth of the time is a finding, half is
/// critical.
pub const PSI_IO_WARN_PCT: f64 = 20.0;
pub const PSI_IO_CRIT_PCT: f64 = 50.0;
/// Writes this small on average are the small synchronous writes of a log or a database.
const SMALL_WRITE_KB: f64 = 64.0;
/// A write served within this (ms) did not wait behind others: no write queue.
pub const UNQUEUED_WRITE_MS: f64 = 1.0;

fn human_kb(kb: f64) -> String {
    if kb >= 1024.0 {
        format!("{:.1} MB", kb / 1024.0)
    } else {
        format!("{kb:.0} KB")
    }
}

/// A device doing small synchronous writes one at a time: flushes (fsync) or small writes at
/// depth < 2 while busy. The busiest such device.
fn sync_writer(s: &Sections) -> Option<&DiskRow> {
    s.disks
        .iter()
        .filter(|d| !d.caveat.as_deref().is_some_and(|c| c.starts_with("memory")))
        .filter(|d| d.w_per_s >= 10.0 && d.wkb_per_s / d.w_per_s <= SMALL_WRITE_KB)
        .filter(|d| {
            let flushing = d
                .flushes_per_s
                .is_some_and(|f| f >= 10.0 && f >= 0.1 * d.w_per_s);
            // Each write served at once: none waited in a queue.
            let unqueued = d.w_await_ms.is_some_and(|w| w <= UNQUEUED_WRITE_MS);
            unqueued && (flushing || d.w_per_s >= d.r_per_s)
        })
        .max_by(|a, b| a.util_pct.total_cmp(&b.util_pct))
}

pub fn rules(s: &Sections, out: &mut Vec<Finding>) {
    let Some(io) = s.pressure.iter().find(|p| p.resource == "io") else {
        return;
    };
    let Some(some) = io.some_pct else {
        return;
    };
    if some < PSI_IO_WARN_PCT {
        return;
    }
    let sev = if some >= PSI_IO_CRIT_PCT {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let full = io
        .full_pct
        .map(|f| format!(", all tasks {f:.0}%"))
        .unwrap_or_default();
    let waiter = s.processes.as_ref().and_then(|p| p.d_state.first());
    let who = waiter
        .map(|w| format!("; in D state: {} (pid {})", w.comm, w.pid))
        .unwrap_or_default();
    let psi = ev("io.pressure_some_pct", some, ">=", PSI_IO_WARN_PCT, "pct");
    if let Some(d) = sync_writer(s) {
        let flushes = match (d.flushes_per_s, d.flush_await_ms) {
            (Some(f), Some(t)) => format!("{f:.0} cache flushes/s (fsync) of {t:.2} ms each and "),
            (Some(f), None) => format!("{f:.0} cache flushes/s (fsync) and "),
            _ => String::new(),
        };
        let w_await = d.w_await_ms.unwrap_or(0.0);
        let depth = depth_while_busy(d)
            .filter(|q| *q < SERIAL_DEPTH)
            .map(|q| format!(", {q:.1} in flight while busy"))
            .unwrap_or_default();
        let mut e = vec![
            psi,
            ev("disk.w_await_ms", w_await, "<=", UNQUEUED_WRITE_MS, "ms"),
            ev(
                "disk.write_kb_avg",
                d.wkb_per_s / d.w_per_s,
                "<=",
                SMALL_WRITE_KB,
                "kb",
            ),
        ];
        if let Some(f) = d.flushes_per_s {
            e.push(ev("disk.flushes_per_s", f, ">=", 10.0, "per_s"));
        }
        let mut subject = Subject::device(&d.device);
        if let Some(w) = waiter {
            subject.pid = Some(w.pid);
            subject.comm = Some(w.comm.clone());
        }
        let pid = waiter.map(|w| w.pid);
        out.push(
            finding(
                "io.saturation.sync_writes",
                sev,
                "io",
                format!(
                    "Tasks wait on synchronous writes, not on a saturated disk: stalled on I/O \
                     {some:.0}% of the time (PSI{full}); {} does {flushes}{:.0} writes/s of {}, \
                     each served at once (w_await {w_await:.2} ms; aqu-sz {:.1} at {:.0}% \
                     busy{depth}){who}: every sync waits for the device, none waits in a queue",
                    d.device,
                    d.w_per_s,
                    human_kb(d.wkb_per_s / d.w_per_s),
                    d.aqu_sz,
                    d.util_pct
                ),
                e,
                vec![
                    match pid {
                        Some(p) => format!("triage offcpu -p {p}"),
                        None => "triage offcpu".into(),
                    },
                    match pid {
                        Some(p) => {
                            format!("triage syscalls --pid {p} (fsync/fdatasync per second)")
                        }
                        None => "triage syscalls (fsync/fdatasync per second)".into(),
                    },
                    format!("iostat -xz {} 1", d.device),
                ],
            )
            .with_subject(subject),
        );
        return;
    }
    // Stalled tasks without a sync-write pattern: say so; when a disk or cgroup finding
    // already explains it, as context.
    let explained = out.iter().any(|f| {
        f.severity >= Severity::Warning
            && (f.id.starts_with("disk.")
                || f.id.starts_with("cgroup.io")
                || f.id.starts_with("io."))
    });
    let subject = waiter
        .map(|w| Subject::process(w.pid, &w.comm))
        .unwrap_or_default();
    out.push(
        finding(
            "io.saturation.pressure",
            if explained { Severity::Info } else { sev },
            "io",
            format!("Tasks stalled on I/O {some:.0}% of the time (PSI io some{full}){who}"),
            vec![psi],
            vec![
                "triage disk".into(),
                "triage offcpu".into(),
                "iotop -o".into(),
            ],
        )
        .with_subject(subject),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{findings, Context};
    use crate::model::report::Host;
    use crate::model::sections::*;

    /// The numbers: small writes + fsync at queue depth ~1 on a virtio disk.
    fn sync_box(aqu: f64, util: f64, psi: f64) -> Sections {
        Sections {
            disks: vec![DiskRow {
                device: "vda".into(),
                w_per_s: 2600.0,
                wkb_per_s: 2600.0 * 4.0,
                w_await_ms: Some(0.1),
                aqu_sz: aqu,
                util_pct: util,

                flushes_per_s: Some(1300.0),
                flush_await_ms: Some(0.45),
                ..Default::default()
            }],
            pressure: vec![PsiRow {
                resource: "io".into(),
                some_pct: Some(psi),
                full_pct: Some(psi - 2.0),
                ..Default::default()
            }],
            processes: Some(ProcessSection {
                d_state: vec![DTask {
                    pid: 77,
                    tid: 77,
                    comm: "pgbench".into(),
                    wchan: None,
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn run(s: &Sections) -> Vec<Finding> {
        let h = Host::default();
        findings(
            s,
            &Context {
                host: &h,
                elapsed_s: 2.0,
                runnable_samples: &[],
            },
        )
    }

    #[test]
    fn fsync_at_queue_depth_one_is_not_saturation() {
        let f = run(&sync_box(1.1, 75.0, 30.0));
        assert!(f.iter().all(|f| f.id != "disk.saturation.queue"), "{f:#?}");
        assert_eq!(f[0].id, "io.saturation.sync_writes", "{f:#?}");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].subject.device.as_deref(), Some("vda"));
        assert_eq!(f[0].subject.pid, Some(77));
        assert_eq!(f[0].subject.comm.as_deref(), Some("pgbench"));
        let w = f[0]
            .evidence
            .iter()
            .find(|e| e.metric == "disk.w_await_ms")
            .unwrap();
        assert_eq!(w.value, 0.1);
        assert!(
            f[0].summary.contains("1.5 in flight while busy"),
            "{}",
            f[0].summary
        );
    }

    #[test]
    fn overlapping_requests_are_still_a_saturated_queue() {
        // 8 in flight at 100% busy, writes waiting 12 ms: a queue, whatever the writes are.
        let mut s = sync_box(8.0, 100.0, 60.0);
        s.disks[0].w_await_ms = Some(12.0);
        let f = run(&s);
        assert_eq!(f[0].id, "disk.saturation.queue", "{f:#?}");
        // The stall is explained by the queue: the pressure finding is context.
        let psi = f.iter().find(|f| f.id == "io.saturation.pressure").unwrap();
        assert_eq!(psi.severity, Severity::Info);
    }

    #[test]
    fn io_pressure_alone_is_a_finding_and_quiet_below_the_threshold() {
        let mut s = sync_box(0.1, 5.0, 35.0);
        s.disks.clear();
        let f = run(&s);
        assert_eq!(f[0].id, "io.saturation.pressure");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].subject.pid, Some(77));
        let s = sync_box(1.1, 75.0, 15.0);
        assert!(run(&s).iter().all(|f| !f.id.starts_with("io.")));
    }
}
