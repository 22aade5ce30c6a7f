//! The eBPF latency histograms a window view runs during its window (`views::Probe::
//! AllLatency` / `Latency`: run queue, block I/O, TCP retransmits): which ones a view wants,
//! starting them (or saying why not), and putting their readings into the report.

use crate::model::offcpu::{LatencyReadings, LatencySection};
use crate::model::report::{Report, Unavailable};

/// How the latency probes are named in `unavailable`.
pub const LATENCY_WHAT: &str = "eBPF latency histograms (run queue, block I/O, TCP retransmits)";

#[cfg(feature = "bpf")]
pub fn start_latency(
    wanted: &crate::probe::latency::Wanted,
    verbose: bool,
) -> (Option<crate::probe::latency::Running>, Option<Unavailable>) {
    crate::probe::set_verbose(verbose);
    if let Some(b) = crate::probe::preflight::bpf_blockers().into_iter().next() {
        let u = Unavailable {
            what: LATENCY_WHAT.into(),
            reason: b.reason,
            fix: b.fix,
        };
        return (None, Some(u));
    }
    match crate::probe::latency::start(wanted) {
        Ok(r) => (Some(r), None),
        Err(e) => {
            let u = Unavailable {
                what: LATENCY_WHAT.into(),
                reason: format!("did not attach: {e}"),
                fix: Some(crate::probe::attach_fix(&e.to_string())),
            };
            (None, Some(u))
        }
    }
}

/// The probes a caller wants (a unit in builds without eBPF).
#[cfg(feature = "bpf")]
pub type Wanted = crate::probe::latency::Wanted;
#[cfg(not(feature = "bpf"))]
pub type Wanted = ();

/// Every latency probe (what sixty-second runs).
#[cfg(feature = "bpf")]
pub fn all_latency() -> crate::probe::latency::Wanted {
    crate::probe::latency::Wanted::all()
}

/// What `triage cpu` / `disk` / `net` run: run-queue latency (of one process's threads with
/// `pid`), block I/O latency (of requests one process issued with `pid`), TCP retransmits.
#[cfg(feature = "bpf")]
pub fn latency_for(resource: &str, pid: Option<u32>) -> crate::probe::latency::Wanted {
    let mut w = crate::probe::latency::Wanted::default();
    match resource {
        "cpu" => {
            w.runqueue = true;
            w.runqueue_pid = pid;
        }
        "disk" => {
            w.block = true;
            w.block_pid = pid;
        }
        "net" => w.retransmits = true,
        _ => w = crate::probe::latency::Wanted::all(),
    }
    w
}

#[cfg(not(feature = "bpf"))]
pub fn latency_for(_resource: &str, _pid: Option<u32>) {}

/// Without eBPF support nothing starts, and the report says why.
#[cfg(not(feature = "bpf"))]
pub fn start_latency(_wanted: &(), _verbose: bool) -> (Option<NoProbe>, Option<Unavailable>) {
    let u = Unavailable {
        what: LATENCY_WHAT.into(),
        reason: crate::probe::NO_BPF.into(),
        fix: None,
    };
    (None, Some(u))
}

#[cfg(not(feature = "bpf"))]
pub fn all_latency() {}

/// Stands in for `probe::latency::Running` in builds without eBPF.
#[cfg(not(feature = "bpf"))]
pub struct NoProbe;
#[cfg(not(feature = "bpf"))]
impl NoProbe {
    pub fn finish(self) -> LatencyReadings {
        LatencyReadings::default()
    }
}

/// Put the latency readings into `report` (section, evidence on findings, re-ranked) and say
/// why they are missing, if they are.
pub fn add_latency(
    report: &mut Report,
    latency: Option<&LatencyReadings>,
    not_run: Option<Unavailable>,
) {
    if let Some(l) = latency {
        let sec = LatencySection::from_readings(l);
        crate::analyze::offcpu::enrich(report, &sec);
        report.sections.latency = Some(sec);
    }
    if let Some(u) = not_run {
        report.unavailable.push(u);
        report.unavailable.sort();
    }
}

/// `offcpu --bench-probe runqlat` (for `cargo xtask bench --offcpu`): only the run-queue
/// latency probe for `duration_s` (or until Ctrl-C); its start-up time and what it saw on
/// stderr.
#[cfg(not(feature = "bpf"))]
pub fn bench_probe(_probe: &str, _duration_s: f64) -> Result<(), String> {
    Err(crate::probe::NO_BPF.into())
}

/// `offcpu --bench-probe runqlat` (for `cargo xtask bench --offcpu`): only the run-queue
/// latency probe for `duration_s` (or until Ctrl-C); its start-up time and what it saw on
/// stderr.
#[cfg(feature = "bpf")]
pub fn bench_probe(probe: &str, duration_s: f64) -> Result<(), String> {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    if probe != "runqlat" {
        return Err("--bench-probe: only `runqlat`".into());
    }
    let flag = super::interrupt_flag();
    let t0 = Instant::now();
    let run = crate::probe::latency::start(&crate::probe::latency::Wanted {
        runqueue: true,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    eprintln!(
        "runqlat probe attached in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let dur = Duration::from_secs_f64(duration_s);
    while t0.elapsed() < dur && !flag.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = run.finish();
    if let Some(s) = r.runqueue_total().and_then(|t| t.summary()) {
        eprintln!(
            "run-queue latency: {} wakeups, p99 < {:?} us",
            s.count, s.p99_hi_us
        );
    }
    Ok(())
}
