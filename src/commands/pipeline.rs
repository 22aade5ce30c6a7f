//! One pipeline for every window view of the registry ([`super::views`]): collect (with the
//! view's readings and probe) -> build the checklist -> narrow it to the view (its detail
//! section, sections, resources and findings) -> the probe's evidence -> rank; optionally
//! repeated as a time series (`--interval S --count N`). `commands::run` renders.

use std::path::PathBuf;

use super::views::{Level, Probe, View};
use crate::analyze;
use crate::analyze::Analysis;
use crate::cli::{DeepArgs, Global, WindowArgs};
use crate::collect::run::Readings;
use crate::model::deep::{self as mdeep, Scope, Series};
use crate::model::report::Report;

/// A view with its arguments resolved: what one run does (made once from the command line).
pub struct Plan {
    pub view: &'static View,
    pub window: WindowArgs,
    pub scope: Scope,
    /// `--interval`: a time series of windows this long.
    pub interval: Option<f64>,
    /// `--count`: windows in the series.
    pub count: u32,
    /// `capture --out DIR`: record what every view reads into DIR.
    pub record: Option<PathBuf>,
    pub note: String,
    pub verbose: bool,
}

impl Plan {
    /// A checklist view's plan (`sixty-second`, `capture`).
    pub fn checklist(view: &'static View, w: &WindowArgs, verbose: bool) -> Plan {
        Plan {
            view,
            window: w.clone(),
            scope: Scope::default(),
            interval: None,
            count: 1,
            record: None,
            note: String::new(),
            verbose,
        }
    }

    /// A deep view's plan (`cpu`, `mem`, `disk`, `net`).
    pub fn deep(view: &'static View, a: &DeepArgs, g: &Global) -> Plan {
        Plan {
            view,
            window: a.window.clone(),
            scope: scope(a),
            interval: a.interval,
            count: a.count.unwrap_or(5),
            record: None,
            note: String::new(),
            verbose: g.verbose,
        }
    }
}

fn scope(a: &DeepArgs) -> Scope {
    Scope {
        pid: a.pid,
        cgroup: a.cgroup.clone(),
        top: a.top as usize,
    }
}

/// One window's report for `view` from its readings: the checklist narrowed to the view.
pub fn report(r: &Readings, view: &View, scope: &Scope, a: &Analysis) -> Report {
    let mut rep = analyze::build_report(r, view.name, a);
    view.narrow(r, scope, a, &mut rep);
    rep
}

/// `--cgroup` must name a cgroup that exists (in the window's cgroup scan, which lists every
/// directory of every hierarchy unless it was cut short); else the report would silently be
/// system-wide or empty.
fn check_cgroup(r: &Readings, cg: &str) -> Result<(), String> {
    let rel = cg.strip_prefix("/sys/fs/cgroup").unwrap_or(cg);
    if rel.trim_matches('/').is_empty() {
        return Ok(());
    }
    let Some(scan) = r.t1.cgroups.as_ref().or(r.t0.cgroups.as_ref()) else {
        return Ok(()); // cgroups not readable: nothing to check against
    };
    if scan.truncated || scan.groups.is_empty() {
        return Ok(());
    }
    let want = format!("/{}", rel.trim_matches('/'));
    if scan.groups.iter().any(|g| mdeep::in_cgroup(&g.path, &want)) {
        Ok(())
    } else {
        Err(format!("--cgroup {cg}: no such cgroup"))
    }
}

/// What a view prints: one report, or a time series of them.
pub enum Output {
    One(Box<Report>),
    Series(Series),
}

pub fn run(plan: &Plan) -> Result<Output, String> {
    run_streaming(plan, &mut |_, _, _| {})
}

/// [`run`], calling `each(report, index, count)` as each window of a time series ends (so the
/// caller can print it before the next one is measured).
pub fn run_streaming(
    plan: &Plan,
    each: &mut dyn FnMut(&Report, u32, u32),
) -> Result<Output, String> {
    let view = plan.view;
    let sc = &plan.scope;
    // A capture records everything any view reads, so every one can replay it.
    let spec = if plan.record.is_some() {
        crate::collect::deep::Spec::ALL
    } else {
        view.spec(sc)
    };
    let analysis = Analysis {
        log_lookback_s: plan.window.log_lookback,
    };
    let one = |w: &WindowArgs, prev: Option<&Readings>| -> Result<(Report, Readings), String> {
        // The eBPF latency histograms of this view run during the window.
        #[allow(clippy::let_unit_value)] // `Wanted` is `()` without eBPF support
        let wanted = match view.probe {
            Probe::AllLatency => Some(super::latency::all_latency()),
            Probe::Latency(res) => Some(super::latency::latency_for(res, sc.pid.map(|p| p as u32))),
            _ => None,
        };
        let win = super::sixty_second::readings_after(
            w,
            plan.record.as_deref(),
            &plan.note,
            plan.verbose,
            &spec,
            wanted.as_ref(),
            prev,
        )?;
        let r = &win.readings;
        if let Some(pid) = sc.pid {
            if !r.t1.procs.procs.contains_key(&pid) && !r.t0.procs.procs.contains_key(&pid) {
                return Err(format!("--pid {pid}: no such process"));
            }
        }
        if let Some(cg) = &sc.cgroup {
            check_cgroup(r, cg)?;
        }
        let mut rep = report(r, view, sc, &analysis);
        super::latency::add_latency(&mut rep, win.latency.as_ref(), win.latency_missing);
        if view.level == Level::Deep {
            analyze::rank(&mut rep.findings);
        }
        Ok((rep, win.readings))
    };
    let Some(interval) = plan.interval else {
        return one(&plan.window, None).map(|r| Output::One(Box::new(r.0)));
    };
    let count = plan.count;
    let mut w = plan.window.clone();
    w.duration = interval;
    let stop = super::interrupt_flag();
    let mut samples = Vec::new();
    // Each window starts where the previous one ended (back to back).
    let mut prev: Option<Readings> = None;
    let mut cost = None;
    for i in 0..count {
        let (mut rep, r) = one(&w, prev.as_ref())?;
        crate::model::summary::refresh(&mut rep);
        rep.cost = Some(crate::probe::cost::window_cost(&mut cost));
        each(&rep, i, count);
        samples.push(rep);
        prev = Some(r);
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    Ok(Output::Series(Series::new(view.name, interval, samples)))
}
