//! Pressure stall information (PSI): the share of the window in which tasks stalled on CPU,
//! memory or I/O, from two /proc/pressure snapshots; the `io` USE resource; the I/O stall
//! threshold; the PSI table's columns. (The cpu and memory PSI metrics are part of those
//! resources' USE rows, still built in `model::resources`.)

use serde::{Deserialize, Serialize};

use super::columns::{f1, o1, Column};
use super::contract::{Metric, Resource, UseKind};
use super::rule::Threshold;
use crate::collect::run::Readings;
use crate::num::{delta, r2};
use UseKind::Saturation as S;

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct PsiRow {
    pub resource: String,
    /// Share of the window in which some tasks stalled on the resource.
    pub some_pct: Option<f64>,
    /// Share of the window in which all non-idle tasks stalled.
    pub full_pct: Option<f64>,
    pub some_avg10_pct: f64,
    pub some_avg60_pct: f64,
}

// ---- build ---------------------------------------------------------------------------------

pub fn pressure(r: &Readings) -> Vec<PsiRow> {
    let el_us = r.meta.elapsed_s * 1e6;
    let mut rows = Vec::new();
    for (res, b) in &r.t1.system.psi {
        let a = r.t0.system.psi.get(res);
        let window = |x: Option<u64>, y: Option<u64>| -> Option<f64> {
            let d = delta(x?, y?)? as f64;
            Some(r2((d / el_us * 100.0).min(100.0)))
        };
        rows.push(PsiRow {
            resource: res.clone(),
            some_pct: window(a.map(|a| a.some.total_us), Some(b.some.total_us)),
            full_pct: window(
                a.and_then(|a| a.full.map(|f| f.total_us)),
                b.full.map(|f| f.total_us),
            ),
            some_avg10_pct: b.some.avg10,
            some_avg60_pct: b.some.avg60,
        });
    }
    rows
}

// ---- USE metrics ---------------------------------------------------------------------------

fn push(r: &mut Resource, m: Metric) {
    r.metrics.push(m);
}

/// The `io` USE resource (I/O pressure), when the kernel reports it.
pub fn io_resource(pressure: &[PsiRow]) -> Option<Resource> {
    let psi_io = pressure
        .iter()
        .find(|p| p.resource == "io")
        .and_then(|p| p.some_pct);
    psi_io?;
    let mut r = Resource::new("io", None);
    push(
        &mut r,
        Metric::new(
            "io.pressure_some_pct",
            S,
            "PSI",
            psi_io,
            "pct",
            "/proc/pressure/io",
        ),
    );
    Some(r)
}

// ---- thresholds ----------------------------------------------------------------------------

#[rustfmt::skip]
pub const THRESHOLDS: &[Threshold] = &[
    Threshold { id: "io.stall_pct", warn: 10.0, crit: 50.0, unit: "pct", why: "PSI io some: share of the window in which some task stalled on I/O; unlike iowait it is counted while the CPUs are busy; only used with an idle disk and a cgroup at its I/O limit" },
];

// ---- columns -------------------------------------------------------------------------------

/// The PSI table's columns.
pub const COLUMNS: &[Column<PsiRow>] = &[
    Column::left("resource", |p| p.resource.clone()),
    Column::right("some % of window", |p| o1(p.some_pct)),
    Column::right("full % of window", |p| o1(p.full_pct)),
    Column::right("some avg10", |p| f1(p.some_avg10_pct)),
    Column::right("some avg60", |p| f1(p.some_avg60_pct)),
];
