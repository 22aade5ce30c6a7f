//! The view registry: every report subcommand is one entry naming its resources, its level,
//! the readings it adds, the checklist sections it keeps, the findings it owns and the probe
//! that runs during its window. [`super::pipeline`] runs any entry (collect -> build ->
//! analyze; `commands::run` renders), so a new view is one entry here (plus its arguments in
//! `cli.rs` and a `Command` arm that names it).

use crate::analyze::{self, Analysis};
use crate::collect::deep::Spec;
use crate::collect::run::Readings;
use crate::model::deep::{self as mdeep, Scope};
use crate::model::report::{Finding, Report};
use crate::model::sections::Section;

/// How far a view looks: the checklist, or the checklist plus a resource's detail section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Checklist,
    Deep,
}

/// The eBPF probe a view runs during its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Every latency histogram (run queue, block I/O, TCP retransmits).
    AllLatency,
    /// One resource's latency histogram (`probe::latency`: "cpu", "disk", "net").
    Latency(&'static str),
    /// No probe (a /proc-only view).
    None,
    /// The syscall probe around a /proc window (its own pipeline: `commands/syscalls.rs`).
    Syscalls,
    /// Probe views: the probe's output is the reading (`commands::probe_view::run`).
    Offcpu,
    Profile,
}

/// Builds a deep view's detail section and re-runs the rules that the detail informs.
pub type Detail = fn(&Readings, &Scope, &Analysis, &mut Report);

/// One view: what a subcommand shows.
pub struct View {
    /// The subcommand (and the report's `command`).
    pub name: &'static str,
    pub level: Level,
    /// The readings a window of this view takes (`--pid`/`--cgroup` add theirs).
    pub readings: Spec,
    /// The USE resources shown; empty: all.
    pub resources: &'static [&'static str],
    /// The checklist sections kept; at the checklist level all are.
    pub sections: &'static [Section],
    /// The pressure (PSI) rows kept.
    pub psi: &'static [&'static str],
    /// The checklist findings it owns (id prefixes).
    pub findings: &'static [&'static str],
    /// The kernel-log findings it owns (their `subject.class`).
    pub log_classes: &'static [&'static str],
    /// Checklist findings its own measurement replaces (dropped).
    pub replaces: &'static [&'static str],
    pub probe: Probe,
    /// The deep section (and the rules it informs).
    pub detail: Option<Detail>,
}

const fn spec(cpu: bool, mem: bool, disk: bool, net: bool) -> Spec {
    let mut s = Spec::SIXTY_SECOND;
    s.cpu = cpu;
    s.mem = mem;
    s.disk = disk;
    s.net = net;
    s
}

const fn probe_view(name: &'static str, probe: Probe) -> View {
    View {
        name,
        level: Level::Checklist,
        readings: Spec::SIXTY_SECOND,
        resources: &[],
        sections: &[],
        psi: &[],
        findings: &[],
        log_classes: &[],
        replaces: &[],
        probe,
        detail: None,
    }
}

pub static SIXTY_SECOND: View = View {
    name: "sixty-second",
    level: Level::Checklist,
    readings: Spec::SIXTY_SECOND,
    resources: &[],
    sections: &[],
    psi: &[],
    findings: &[],
    log_classes: &[],
    replaces: &[],
    probe: Probe::AllLatency,
    detail: None,
};

pub static CPU: View = View {
    name: "cpu",
    level: Level::Deep,
    readings: spec(true, false, false, false),
    resources: &["cpu", "tasks", "cgroup"],
    sections: &[
        Section::Load,
        Section::Vmstat,
        Section::Cpus,
        Section::Cgroups,
        Section::Pressure,
    ],
    psi: &["cpu"],
    findings: &[
        "cpu.",
        "cgroup.cpu.",
        "tasks.errors.zombies",
        "tasks.saturation.fork_storm",
    ],
    log_classes: &["soft_lockup", "rcu_stall", "hardware_error"],
    replaces: &[],
    probe: Probe::Latency("cpu"),
    detail: Some(cpu_detail),
};

pub static MEM: View = View {
    name: "mem",
    level: Level::Deep,
    readings: spec(false, true, false, false),
    resources: &["memory", "swap", "cgroup"],
    sections: &[Section::Vmstat, Section::Memory, Section::Pressure],
    psi: &["memory"],
    findings: &["memory.", "cgroup.memory.", "swap."],
    log_classes: &["oom_kill", "cgroup_oom"],
    // The mem view measures growth per process itself (scoped): its rule replaces the
    // checklist's.
    replaces: &["memory.errors.rss_growth"],
    probe: Probe::None,
    detail: Some(mem_detail),
};

pub static DISK: View = View {
    name: "disk",
    level: Level::Deep,
    readings: spec(false, false, true, false),
    resources: &["disk", "io", "filesystem"],
    sections: &[
        Section::Vmstat,
        Section::Disks,
        Section::Filesystems,
        Section::Pressure,
    ],
    psi: &["io"],
    findings: &["disk.", "filesystem.", "io."],
    log_classes: &["io_error", "fs_error", "hung_task", "nfs_not_responding"],
    replaces: &[],
    probe: Probe::Latency("disk"),
    detail: Some(disk_detail),
};

pub static NET: View = View {
    name: "net",
    level: Level::Deep,
    readings: spec(false, false, false, true),
    resources: &["network", "tcp", "conntrack"],
    sections: &[Section::Interfaces, Section::Tcp, Section::Qdiscs],
    psi: &[],
    findings: &["network.", "tcp.", "udp.", "conntrack."],
    log_classes: &["conntrack_full", "syn_flood", "tcp_memory"],
    replaces: &[],
    probe: Probe::Latency("net"),
    detail: Some(net_detail),
};

pub static SYSCALLS: View = probe_view("syscalls", Probe::Syscalls);
pub static OFFCPU: View = probe_view("offcpu", Probe::Offcpu);
pub static PROFILE: View = probe_view("profile", Probe::Profile);

/// Every view, by subcommand name.
pub static VIEWS: &[&View] = &[
    &SIXTY_SECOND,
    &CPU,
    &MEM,
    &DISK,
    &NET,
    &SYSCALLS,
    &OFFCPU,
    &PROFILE,
];

/// The view named `name`.
pub fn get(name: &str) -> Option<&'static View> {
    VIEWS.iter().copied().find(|v| v.name == name)
}

/// The deep views (`triage cpu|mem|disk|net`), in that order.
pub static DEEP: [&View; 4] = [&CPU, &MEM, &DISK, &NET];

impl View {
    /// The readings of a window of this view, with what the scope adds.
    pub fn spec(&self, scope: &Scope) -> Spec {
        let mut s = self.readings;
        if self.level == Level::Deep {
            s.proc_cgroups = scope.cgroup.is_some();
            s.pid = scope.pid;
        }
        s
    }

    /// Does a checklist finding belong to this view?
    pub fn owns(&self, f: &Finding) -> bool {
        let id = f.id.as_str();
        if self.findings.iter().any(|p| id.starts_with(p)) {
            return true;
        }
        if f.resource == "kernel_log" {
            // One finding per kernel-log class: the class says which resource it is about.
            return f
                .subject
                .class
                .as_deref()
                .is_some_and(|c| self.log_classes.contains(&c));
        }
        false
    }

    /// Narrow a checklist report to this view: its detail section (and the rules it informs),
    /// its sections, resources and findings, plus the deep rules. A checklist view keeps all.
    pub fn narrow(&self, r: &Readings, scope: &Scope, a: &Analysis, rep: &mut Report) {
        if self.level == Level::Checklist {
            return;
        }
        rep.sections
            .pressure
            .retain(|p| self.psi.contains(&p.resource.as_str()));
        if let Some(detail) = self.detail {
            detail(r, scope, a, rep);
        }
        rep.sections.keep(self.sections);
        rep.resources
            .retain(|res| self.resources.contains(&res.name.as_str()));
        rep.findings.retain(|f| self.owns(f));
        rep.findings
            .retain(|f| !self.replaces.contains(&f.id.as_str()));
        rep.findings
            .extend(analyze::deep::findings(&rep.sections, &rep.host));
        analyze::rank(&mut rep.findings);
        crate::model::summary::refresh(rep);
    }
}

fn cpu_detail(r: &Readings, scope: &Scope, _: &Analysis, rep: &mut Report) {
    let s = &mut rep.sections;
    s.cpu_detail = Some(mdeep::cpu(r, scope));
    s.cgroups.retain(|c| {
        (c.cpu_limit_cpus.is_some() || c.throttled_periods_pct.unwrap_or(0.0) > 0.0)
            && scope
                .cgroup
                .as_deref()
                .is_none_or(|p| mdeep::in_cgroup(&c.path, p))
    });
}

fn mem_detail(r: &Readings, scope: &Scope, a: &Analysis, rep: &mut Report) {
    rep.sections.mem_detail = Some(mdeep::mem(r, scope, a.log_lookback_s));
}

fn disk_detail(r: &Readings, scope: &Scope, a: &Analysis, rep: &mut Report) {
    let s = &mut rep.sections;
    let active: Vec<String> = s.disks.iter().map(|d| d.device.clone()).collect();
    s.disk_detail = Some(mdeep::disk(r, scope, a.log_lookback_s, &active));
    // The I/O consumers are known now: the disk rules run again to name them.
    rep.findings
        .retain(|f| !f.id.starts_with("disk.") && !f.id.starts_with("filesystem."));
    analyze::disk_rules(s, &mut rep.findings);
}

fn net_detail(r: &Readings, scope: &Scope, _: &Analysis, rep: &mut Report) {
    rep.sections.net_detail = Some(mdeep::net(r, scope));
    // The socket dump tells server-side TIME_WAIT from client-side: the rule runs again.
    rep.findings.retain(|f| f.id != "tcp.saturation.time_wait");
    analyze::time_wait_rule(&rep.sections, &mut rep.findings);
}

/// The view a command runs, if it is a window view of the registry.
pub fn of(c: &crate::cli::Command) -> Option<&'static View> {
    use crate::cli::Command;
    Some(match c {
        Command::SixtySecond(_) | Command::Capture { .. } => &SIXTY_SECOND,
        Command::Cpu(_) => &CPU,
        Command::Mem(_) => &MEM,
        Command::Disk(_) => &DISK,
        Command::Net(_) => &NET,
        Command::Syscalls(_) => &SYSCALLS,
        Command::Offcpu(_) => &OFFCPU,
        Command::Profile(_) => &PROFILE,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Every view is a subcommand of that name, and the command resolves to that entry.
    #[test]
    fn every_view_is_the_subcommand_of_its_name() {
        let mut names: Vec<&str> = VIEWS.iter().map(|v| v.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), VIEWS.len(), "two views share a name");
        for v in VIEWS {
            let cli = crate::cli::Cli::try_parse_from(["triage", v.name])
                .unwrap_or_else(|e| panic!("`triage {}` does not parse: {e}", v.name));
            let got = of(&cli.command).unwrap_or_else(|| panic!("{}: no view", v.name));
            assert_eq!(got.name, v.name);
            assert!(
                std::ptr::eq(got, *v),
                "{}: resolves to another entry",
                v.name
            );
            assert_eq!(get(v.name).map(|g| g.name), Some(v.name));
        }
        assert!(get("fleet").is_none());
    }

    /// A deep view owns the findings of its resources and the kernel-log classes about them.
    #[test]
    fn a_deep_view_owns_its_findings_and_kernel_log_classes() {
        use crate::model::report::{Finding, Severity, Subject};
        let f = |id: &str, resource: &str, class: Option<&str>| Finding {
            id: id.into(),
            severity: Severity::Warning,
            resource: resource.into(),
            subject: Subject {
                class: class.map(str::to_string),
                ..Default::default()
            },
            summary: String::new(),
            evidence: Vec::new(),
            next: Vec::new(),
            score: 1.0,
        };
        assert!(DISK.owns(&f("disk.saturation.flush", "disk", None)));
        assert!(!DISK.owns(&f("cpu.saturation.runqueue", "cpu", None)));
        let io_error = f("kernel_log.errors.io_error", "kernel_log", Some("io_error"));
        assert!(DISK.owns(&io_error) && !NET.owns(&io_error) && !CPU.owns(&io_error));
        assert!(MEM.owns(&f("memory.errors.oom_kill", "memory", Some("oom_kill"))));
        assert!(CPU.owns(&f("tasks.errors.zombies", "tasks", None)));
        assert!(!CPU.owns(&f("tasks.utilization.pids", "tasks", None)));
    }
}
