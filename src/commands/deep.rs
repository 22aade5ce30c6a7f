//! The deep dives (`triage cpu|mem|disk|net`): the sixty-second pipeline with more readings
//! (a [`Spec`]), one resource's sections and findings, scoped by `--pid`/`--cgroup`/`--top`,
//! and optionally repeated as a time series (`--interval S --count N`).

use crate::analyze;
use crate::analyze::Analysis;
use crate::cli::{Global, WindowArgs};
use crate::collect::deep::Spec;
use crate::collect::run::Readings;
use crate::model::deep::{self as mdeep, Scope, Series};
use crate::model::report::{Finding, Report};

pub use crate::cli::DeepArgs;

/// The resource a deep dive is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Cpu,
    Mem,
    Disk,
    Net,
}

impl Focus {
    /// The deep dive a command is, if it is one.
    pub fn of(c: &crate::cli::Command) -> Option<Focus> {
        use crate::cli::Command;
        match c {
            Command::Cpu(_) => Some(Focus::Cpu),
            Command::Mem(_) => Some(Focus::Mem),
            Command::Disk(_) => Some(Focus::Disk),
            Command::Net(_) => Some(Focus::Net),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Focus::Cpu => "cpu",
            Focus::Mem => "mem",
            Focus::Disk => "disk",
            Focus::Net => "net",
        }
    }

    fn spec(self, a: &DeepArgs) -> Spec {
        let mut s = Spec::SIXTY_SECOND;
        match self {
            Focus::Cpu => s.cpu = true,
            Focus::Mem => s.mem = true,
            Focus::Disk => s.disk = true,
            Focus::Net => s.net = true,
        }
        s.proc_cgroups = a.cgroup.is_some();
        s.pid = a.pid;
        s
    }

    /// USE resources shown in this view.
    fn resources(self) -> &'static [&'static str] {
        match self {
            Focus::Cpu => &["cpu", "tasks", "cgroup"],
            Focus::Mem => &["memory", "swap", "cgroup"],
            Focus::Disk => &["disk", "io", "filesystem"],
            Focus::Net => &["network", "tcp", "conntrack"],
        }
    }

    /// Does a checklist finding belong to this view?
    pub fn owns(self, f: &Finding) -> bool {
        let id = f.id.as_str();
        let prefixes: &[&str] = match self {
            Focus::Cpu => &[
                "cpu.",
                "cgroup.cpu.",
                "tasks.errors.zombies",
                "tasks.saturation.fork_storm",
            ],
            Focus::Mem => &["memory.", "cgroup.memory.", "swap."],
            Focus::Disk => &["disk.", "filesystem.", "io."],
            Focus::Net => &["network.", "tcp.", "udp.", "conntrack."],
        };
        if prefixes.iter().any(|p| id.starts_with(p)) {
            return true;
        }
        if f.resource == "kernel_log" {
            // One finding per kernel-log class: the class says which resource it is about.
            let classes: &[&str] = match self {
                Focus::Cpu => &["soft_lockup", "rcu_stall", "hardware_error"],
                Focus::Mem => &["oom_kill", "cgroup_oom"],
                Focus::Disk => &["io_error", "fs_error", "hung_task", "nfs_not_responding"],
                Focus::Net => &["conntrack_full", "syn_flood", "tcp_memory"],
            };
            return f
                .subject
                .class
                .as_deref()
                .is_some_and(|c| classes.contains(&c));
        }
        false
    }
}

fn scope(a: &DeepArgs) -> Scope {
    Scope {
        pid: a.pid,
        cgroup: a.cgroup.clone(),
        top: a.top as usize,
    }
}

/// One window's report for `focus`: the checklist pruned to this resource, its deep section,
/// and the checklist's findings about it plus the deep rules'.
pub fn report(r: &Readings, focus: Focus, scope: &Scope, a: &Analysis) -> Report {
    let mut rep = analyze::build_report(r, focus.name(), a);
    let s = &mut rep.sections;
    let lookback = a.log_lookback_s;
    let keep_psi = |res: &str| match focus {
        Focus::Cpu => res == "cpu",
        Focus::Mem => res == "memory",
        Focus::Disk => res == "io",
        Focus::Net => false,
    };
    s.pressure.retain(|p| keep_psi(&p.resource));
    s.kernel_log = None;
    // The disk view lists the cgroups' I/O in its own section.
    s.io_limited_cgroups = Vec::new();
    match focus {
        Focus::Cpu => {
            s.cpu_detail = Some(mdeep::cpu(r, scope));
            s.cgroups.retain(|c| {
                (c.cpu_limit_cpus.is_some() || c.throttled_periods_pct.unwrap_or(0.0) > 0.0)
                    && scope
                        .cgroup
                        .as_deref()
                        .is_none_or(|p| mdeep::in_cgroup(&c.path, p))
            });
            s.processes = None;
            (s.disks, s.disks_idle, s.filesystems) = (Vec::new(), 0, Vec::new());
            (s.memory, s.interfaces, s.tcp, s.limits) = (None, Vec::new(), Vec::new(), None);
        }
        Focus::Mem => {
            s.mem_detail = Some(mdeep::mem(r, scope, lookback));
            (s.load, s.cpus, s.processes, s.cgroups) = (None, Vec::new(), None, Vec::new());
            (s.disks, s.disks_idle, s.filesystems) = (Vec::new(), 0, Vec::new());
            (s.interfaces, s.tcp, s.limits) = (Vec::new(), Vec::new(), None);
        }
        Focus::Disk => {
            let active: Vec<String> = s.disks.iter().map(|d| d.device.clone()).collect();
            s.disk_detail = Some(mdeep::disk(r, scope, lookback, &active));
            // The I/O consumers are known now: the disk rules run again to name them.
            rep.findings
                .retain(|f| !f.id.starts_with("disk.") && !f.id.starts_with("filesystem."));
            analyze::disk_rules(s, &mut rep.findings);
            (s.load, s.cpus, s.processes, s.cgroups) = (None, Vec::new(), None, Vec::new());
            (s.memory, s.interfaces, s.tcp, s.limits) = (None, Vec::new(), Vec::new(), None);
        }
        Focus::Net => {
            s.net_detail = Some(mdeep::net(r, scope));
            // The socket dump tells server-side TIME_WAIT from client-side: the rule runs again.
            rep.findings.retain(|f| f.id != "tcp.saturation.time_wait");
            analyze::time_wait_rule(s, &mut rep.findings);
            (s.load, s.vmstat, s.cpus, s.processes) = (None, None, Vec::new(), None);
            (s.cgroups, s.disks, s.disks_idle) = (Vec::new(), Vec::new(), 0);
            (s.filesystems, s.memory, s.limits) = (Vec::new(), None, None);
        }
    }
    if focus != Focus::Net {
        rep.sections.qdiscs.clear();
    }
    rep.resources
        .retain(|res| focus.resources().contains(&res.name.as_str()));
    rep.findings.retain(|f| focus.owns(f));
    if focus == Focus::Mem {
        // The mem view measures growth per process itself (scoped): its rule replaces the
        // checklist's.
        rep.findings.retain(|f| f.id != "memory.errors.rss_growth");
    }
    rep.findings
        .extend(analyze::deep::findings(&rep.sections, &rep.host));
    analyze::rank(&mut rep.findings);
    crate::model::summary::refresh(&mut rep);
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

/// What a deep dive prints: one report, or a time series of them.
pub enum Output {
    One(Box<Report>),
    Series(Series),
}

pub fn run(focus: Focus, a: &DeepArgs, g: &Global) -> Result<Output, String> {
    run_streaming(focus, a, g, &mut |_, _, _| {})
}

/// [`run`], calling `each(report, index, count)` as each window of a time series ends (so the
/// caller can print it before the next one is measured).
pub fn run_streaming(
    focus: Focus,
    a: &DeepArgs,
    g: &Global,
    each: &mut dyn FnMut(&Report, u32, u32),
) -> Result<Output, String> {
    let spec = focus.spec(a);
    let sc = scope(a);
    let analysis = Analysis {
        log_lookback_s: a.window.log_lookback,
    };
    let one = |w: &WindowArgs, prev: Option<&Readings>| -> Result<(Report, Readings), String> {
        // The eBPF latency histogram of this resource runs during the window (mem has none).
        let wanted = (focus.name() != "mem")
            .then(|| super::offcpu::latency_for(focus.name(), a.pid.map(|p| p as u32)));
        let win = super::sixty_second::readings_after(
            w,
            None,
            "",
            g.verbose,
            &spec,
            wanted.as_ref(),
            prev,
        )?;
        let r = &win.readings;
        if let Some(pid) = a.pid {
            if !r.t1.procs.procs.contains_key(&pid) && !r.t0.procs.procs.contains_key(&pid) {
                return Err(format!("--pid {pid}: no such process"));
            }
        }
        if let Some(cg) = &a.cgroup {
            check_cgroup(r, cg)?;
        }
        let mut rep = report(r, focus, &sc, &analysis);
        super::offcpu::add_latency(&mut rep, win.latency.as_ref(), win.latency_missing);
        analyze::rank(&mut rep.findings);
        Ok((rep, win.readings))
    };
    let Some(interval) = a.interval else {
        return one(&a.window, None).map(|r| Output::One(Box::new(r.0)));
    };
    let count = a.count.unwrap_or(5);
    let mut w = a.window.clone();
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
    Ok(Output::Series(Series::new(focus.name(), interval, samples)))
}
