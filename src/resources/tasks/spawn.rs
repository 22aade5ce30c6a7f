//! Who creates the processes of a fork storm. /proc shows the rate (`processes` in
//! /proc/stat) but not the parent: the children live for a millisecond and are gone before any
//! scan. Two traces stay: a parent's `cutime + cstime` (fields 16-17 of /proc/PID/stat) grows
//! by the CPU of every child it reaps, and the children alive at the end of the window carry
//! their parent's pid. Both are read at t0/t1 anyway: no extra cost.

use std::collections::BTreeMap;

use super::SpawnerRow;
use crate::collect::run::Readings;
use crate::num::r2;

/// Below this many forks per second nobody is a spawner worth naming (an idle box forks a
/// few per second, a shell script or a build a few dozen to a few hundred).
pub const MIN_FORKS_PER_S: f64 = 100.0;
const TOP: usize = 3;

/// The processes whose children come and go, most short-lived children's CPU first (the CPU of
/// children that were already running at t0 is subtracted); empty unless the box
/// forks at least [`MIN_FORKS_PER_S`].
pub fn spawners(r: &Readings) -> Vec<SpawnerRow> {
    let el = r.meta.elapsed_s.max(1e-3);
    let forks = match (
        r.t0.system.stat.as_ref().and_then(|s| s.forks),
        r.t1.system.stat.as_ref().and_then(|s| s.forks),
    ) {
        (Some(a), Some(b)) if b >= a => (b - a) as f64 / el,
        _ => return Vec::new(),
    };
    if forks < MIN_FORKS_PER_S {
        return Vec::new();
    }
    let tck = r.meta.clock_ticks_per_s.max(1) as f64;
    let (p0, p1) = (&r.t0.procs.procs, &r.t1.procs.procs);
    // Children born in the window and alive at its end, by parent: count and names.
    let mut born: BTreeMap<i32, (u32, BTreeMap<String, u32>)> = BTreeMap::new();
    for p in p1.values() {
        let old = p0.get(&p.pid).is_some_and(|o| o.starttime == p.starttime);
        if !old && !p.kernel_thread && p.ppid > 0 {
            let e = born.entry(p.ppid).or_default();
            e.0 += 1;
            *e.1.entry(p.comm.clone()).or_default() += 1;
        }
    }
    // Children alive at t0 and gone at t1 were reaped in the window too, and add their whole
    // life's CPU to the parent's cutime at once (a compiler that ran for a minute): that is
    // not the storm. Their CPU up to t0 is known; their CPU within the window is estimated at
    // their lifetime average rate.
    // A child that had lived longer than the window (a build job, a test run) may also bring
    // the CPU of its own children reaped during the window: its parent's growth cannot be
    // told apart from a storm, so such a parent is not credited at all.
    let uptime0 = r.t0.system.uptime_s;
    let mut exited: BTreeMap<i32, f64> = BTreeMap::new();
    let mut long_lived_exits: BTreeMap<i32, u32> = BTreeMap::new();
    for o in p0.values() {
        if p1.get(&o.pid).is_some_and(|p| p.starttime == o.starttime) {
            continue;
        }
        let own = o.utime.saturating_add(o.stime) as f64;
        let age_s = uptime0.map(|up| up - o.starttime as f64 / tck);
        if age_s.is_none_or(|a| a >= el) {
            *long_lived_exits.entry(o.ppid).or_default() += 1;
        }
        let in_window = age_s.map_or(own, |a| own / a.max(el) * el);
        *exited.entry(o.ppid).or_default() +=
            own + o.cutime.saturating_add(o.cstime) as f64 + in_window;
    }
    let mut rows: Vec<SpawnerRow> = p1
        .values()
        .filter(|p| !p.kernel_thread)
        .filter_map(|p| {
            let c1 = p.cutime.saturating_add(p.cstime);
            let c0 = p0
                .get(&p.pid)
                .filter(|o| o.starttime == p.starttime)
                .map(|o| o.cutime.saturating_add(o.cstime))
                .unwrap_or(0);
            let known = exited.get(&p.pid).copied().unwrap_or(0.0);
            let grown = if long_lived_exits.contains_key(&p.pid) {
                0.0
            } else {
                (c1.saturating_sub(c0) as f64 - known).max(0.0)
            };
            let children_cpu = grown / tck / el * 100.0;
            let (n, names) = born.get(&p.pid).cloned().unwrap_or_default();
            if children_cpu < 1.0 && n == 0 {
                return None;
            }
            let child_comm = names
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(c, _)| c);
            Some(SpawnerRow {
                pid: p.pid,
                comm: p.comm.clone(),
                ppid: p.ppid,
                children_cpu_pct: r2(children_cpu),
                new_children: n,
                child_comm,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.children_cpu_pct
            .total_cmp(&a.children_cpu_pct)
            .then(b.new_children.cmp(&a.new_children))
            .then(a.pid.cmp(&b.pid))
    });
    rows.truncate(TOP);
    rows
}
