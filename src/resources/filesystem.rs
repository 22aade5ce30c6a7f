//! The filesystem resource (df): space and inodes per mounted filesystem, read at the end of
//! the window (statvfs); its USE metrics; its thresholds and rules; df's columns.

use serde::{Deserialize, Serialize};

use super::columns::{o1, s, Align, Column};
use super::contract::{Finding, Metric, Resource, Subject, UseKind};
use super::rule::{ev, finding, level, Threshold};
use crate::collect::run::Readings;
use crate::num::{pct, r2};
use crate::text::human_bytes;
use UseKind::Utilization as U;

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct FsRow {
    pub mount_point: String,
    pub fs_type: String,
    pub device: String,
    pub size_bytes: u64,
    pub avail_bytes: u64,
    /// Used share of what non-root users can use (as df computes Use%).
    pub used_pct: Option<f64>,
    pub inodes_used_pct: Option<f64>,
    pub read_only: bool,
}

// ---- build ---------------------------------------------------------------------------------

pub fn filesystems(r: &Readings) -> Vec<FsRow> {
    r.end
        .mounts
        .iter()
        .filter_map(|m| {
            let s = m.stat?;
            if s.blocks == 0 {
                return None; // nothing to fill (e.g. an empty pseudo mount)
            }
            let bs = s.block_size;
            let used = s.blocks.saturating_sub(s.blocks_free);
            // df's Use%: used / (used + available to non-root).
            let used_pct =
                pct(used as f64, used.saturating_add(s.blocks_avail) as f64).map(|v| r2(v.ceil()));
            let inodes_used_pct = (s.files > 0)
                .then(|| pct(s.files.saturating_sub(s.files_free) as f64, s.files as f64))
                .flatten()
                .map(r2);
            Some(FsRow {
                mount_point: m.mount_point.clone(),
                fs_type: m.fs_type.clone(),
                device: m.device.clone(),
                size_bytes: s.blocks.saturating_mul(bs),
                avail_bytes: s.blocks_avail.saturating_mul(bs),
                used_pct,
                inodes_used_pct,
                read_only: s.read_only,
            })
        })
        .collect()
}

// ---- USE metrics ---------------------------------------------------------------------------

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

/// The filesystem's USE metrics (`filesystem` resource of the report).
pub fn use_resource(f: &FsRow) -> Resource {
    let mut r = Resource::new("filesystem", Some(f.mount_point.clone()));
    push(
        &mut r,
        Metric::maybe(
            "filesystem.used_pct",
            U,
            "space",
            f.used_pct,
            "pct",
            "statvfs",
            "no block count",
        ),
    );
    push(
        &mut r,
        Metric::maybe(
            "filesystem.inodes_used_pct",
            U,
            "inodes",
            f.inodes_used_pct,
            "pct",
            "statvfs",
            "no inode count (filesystem has none)",
        ),
    );
    r
}

// ---- thresholds and rules ------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "filesystem.used_pct", warn: 90.0, crit: 95.0, unit: "pct", why: "not in the seeds; df-based alerting commonly uses 90/95%" },
    Threshold { id: "filesystem.inodes_used_pct", warn: 90.0, crit: 95.0, unit: "pct", why: "inodes exhausted = ENOSPC with free space (S3:303)" },
];

/// Space and inodes running out (read-only filesystems are left alone).
pub fn rules(filesystems: &[FsRow], out: &mut Vec<Finding>) {
    for f in filesystems {
        if f.read_only {
            continue;
        }
        if let Some((sev, t)) = f.used_pct.and_then(|p| level("filesystem.used_pct", p)) {
            out.push(
                finding(
                    "filesystem.utilization.space",
                    sev,
                    "filesystem",
                    format!(
                        "Filesystem {} {:.0}% full ({} free of {})",
                        f.mount_point,
                        f.used_pct.unwrap_or(0.0),
                        human_bytes(f.avail_bytes),
                        human_bytes(f.size_bytes)
                    ),
                    vec![ev(
                        "filesystem.used_pct",
                        f.used_pct.unwrap_or(0.0),
                        ">=",
                        t.warn,
                        "pct",
                    )],
                    vec![format!(
                        "du -xh --max-depth=2 {} | sort -h | tail",
                        f.mount_point
                    )],
                )
                .with_subject(fs_subject(f)),
            );
        }
        if let Some((sev, t)) = f
            .inodes_used_pct
            .and_then(|p| level("filesystem.inodes_used_pct", p))
        {
            out.push(
                finding(
                    "filesystem.utilization.inodes",
                    sev,
                    "filesystem",
                    format!(
                        "Filesystem {} out of inodes: {:.0}% used (ENOSPC even with free space)",
                        f.mount_point,
                        f.inodes_used_pct.unwrap_or(0.0)
                    ),
                    vec![ev(
                        "filesystem.inodes_used_pct",
                        f.inodes_used_pct.unwrap_or(0.0),
                        ">=",
                        t.warn,
                        "pct",
                    )],
                    vec![format!("df -i {}", f.mount_point)],
                )
                .with_subject(fs_subject(f)),
            );
        }
    }
}

fn fs_subject(f: &FsRow) -> Subject {
    Subject {
        mount: Some(f.mount_point.clone()),
        device: Some(f.device.clone()),
        ..Default::default()
    }
}

// ---- columns -------------------------------------------------------------------------------

/// df's columns.
pub const COLUMNS: &[Column<FsRow>] = &[
    Column {
        header: "mount",
        align: Align::Left,
        value: |f| {
            format!(
                "{}{}",
                s(&f.mount_point),
                if f.read_only { " (ro)" } else { "" }
            )
        },
    },
    Column::left("type", |f| s(&f.fs_type)),
    Column::right("size", |f| human_bytes(f.size_bytes)),
    Column::right("avail", |f| human_bytes(f.avail_bytes)),
    Column::right("use%", |f| o1(f.used_pct)),
    Column::right("inodes%", |f| o1(f.inodes_used_pct)),
];
