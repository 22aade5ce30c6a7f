//! The detail tables of the report: what the classic 60-second commands print, computed over the
//! measured window. Field names carry their units; `None` serializes as `null`.
//!
//! `Sections` gathers every resource's sections; the row types of the resources that have a
//! module (`crate::resources`) are defined there and re-exported here.

use serde::{Deserialize, Serialize};

pub use crate::resources::cgroup::CgroupRow;
pub use crate::resources::cpu::{CpuRow, LoadSection};
pub use crate::resources::disk::DiskRow;
pub use crate::resources::filesystem::FsRow;
pub use crate::resources::kernel_log::{KernelLogSection, KlogEvent, KlogGroup, KLOG_RECENT_S};
pub use crate::resources::memory::MemorySection;
pub use crate::resources::netif::IfRow;
pub use crate::resources::pressure::PsiRow;
pub use crate::resources::tasks::{DTask, ProcRow};
pub use crate::resources::tcp::TcpRow;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Sections {
    /// uptime: load averages against effective CPUs.
    pub load: Option<LoadSection>,
    /// vmstat: tasks sampled in the window, swap, paging, CPU split, switches, interrupts.
    pub vmstat: Option<VmstatSection>,
    /// mpstat -P ALL: `all` first, then each CPU.
    pub cpus: Vec<CpuRow>,
    /// pidstat/top: top processes by CPU and by RSS, tasks in D state.
    pub processes: Option<ProcessSection>,
    /// iostat -xz: disks active in the window.
    pub disks: Vec<DiskRow>,
    /// Devices with no I/O in the window, and memory/loop devices: counted, not listed.
    pub disks_idle: u32,
    /// df: space and inodes per filesystem.
    pub filesystems: Vec<FsRow>,
    /// free.
    pub memory: Option<MemorySection>,
    /// sar -n DEV,EDEV: interfaces with traffic or errors, per network namespace.
    pub interfaces: Vec<IfRow>,
    /// sar -n TCP,ETCP and ss -s: one row per network namespace.
    pub tcp: Vec<TcpRow>,
    /// tc -s qdisc: queueing disciplines of our own namespace over the window (root qdiscs
    /// and any that dropped), when the run could ask rtnetlink (absent otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qdiscs: Vec<super::qdisc::QdiscRow>,
    /// PSI over the window.
    pub pressure: Vec<PsiRow>,
    /// cgroups with a CPU or memory limit, or throttled in the window.
    pub cgroups: Vec<CgroupRow>,
    /// dmesg: classified kernel messages since the look-back point.
    pub kernel_log: Option<KernelLogSection>,
    /// System-wide handles: file handles, tasks, conntrack.
    pub limits: Option<LimitsSection>,
    /// cgroups with an I/O limit (io.max, blkio.throttle.*) and how much of it they used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_limited_cgroups: Vec<crate::resources::disk::IoCgroupRow>,
    /// `triage cpu`: per-process/thread CPU with switches, softirqs, PSI stall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_detail: Option<super::deep::CpuDetail>,
    /// `triage mem`: the MemAvailable picture, reclaim, OOM kills, RSS split, cgroup limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_detail: Option<super::deep::MemDetail>,
    /// `triage disk`: merges, request size, in flight, per-process I/O, kernel I/O errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_detail: Option<crate::resources::disk::DiskDetail>,
    /// `triage net`: link use, softnet, UDP, socket states, listeners, conntrack, ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_detail: Option<super::deep::NetDetail>,
    /// `triage offcpu`: off-CPU stacks (absent from other commands' reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offcpu: Option<super::offcpu::OffcpuSection>,
    /// eBPF latency histograms (run queue, block I/O, TCP retransmits), when they ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<super::offcpu::LatencySection>,
    /// `triage syscalls`: what the eBPF syscall counter saw (absent in other commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<super::syscalls::SyscallsSection>,
    /// `triage profile`: on-CPU stack samples (absent in other commands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<super::profile::ProfileSection>,
}

/// The checklist's sections, named: a view keeps the ones it lists ([`Sections::keep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Load,
    Vmstat,
    Cpus,
    Processes,
    /// The active disks and the count of idle ones.
    Disks,
    Filesystems,
    Memory,
    Interfaces,
    Tcp,
    Pressure,
    Cgroups,
    KernelLog,
    Limits,
    IoLimitedCgroups,
    /// tc -s qdisc (the `net` view's).
    Qdiscs,
}

impl Sections {
    /// Empty every checklist section not in `keep` (the detail sections, latency and probe
    /// sections are a view's own and stay).
    pub fn keep(&mut self, keep: &[Section]) {
        let drop = |s: Section| !keep.contains(&s);
        if drop(Section::Load) {
            self.load = None;
        }
        if drop(Section::Vmstat) {
            self.vmstat = None;
        }
        if drop(Section::Cpus) {
            self.cpus = Vec::new();
        }
        if drop(Section::Processes) {
            self.processes = None;
        }
        if drop(Section::Disks) {
            (self.disks, self.disks_idle) = (Vec::new(), 0);
        }
        if drop(Section::Filesystems) {
            self.filesystems = Vec::new();
        }
        if drop(Section::Memory) {
            self.memory = None;
        }
        if drop(Section::Interfaces) {
            self.interfaces = Vec::new();
        }
        if drop(Section::Tcp) {
            self.tcp = Vec::new();
        }
        if drop(Section::Pressure) {
            self.pressure = Vec::new();
        }
        if drop(Section::Cgroups) {
            self.cgroups = Vec::new();
        }
        if drop(Section::KernelLog) {
            self.kernel_log = None;
        }
        if drop(Section::Limits) {
            self.limits = None;
        }
        if drop(Section::IoLimitedCgroups) {
            self.io_limited_cgroups = Vec::new();
        }
        if drop(Section::Qdiscs) {
            self.qdiscs = Vec::new();
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct VmstatSection {
    pub samples: u32,
    /// vmstat `r`: runnable tasks (running + waiting), sampled in the window.
    pub runnable_min: Option<u32>,
    pub runnable_avg: Option<f64>,
    pub runnable_max: Option<u32>,
    /// vmstat `b`: tasks blocked in uninterruptible sleep.
    pub blocked_min: Option<u32>,
    pub blocked_avg: Option<f64>,
    pub blocked_max: Option<u32>,
    pub swap_in_kb_per_s: Option<f64>,
    pub swap_out_kb_per_s: Option<f64>,
    pub page_in_kb_per_s: Option<f64>,
    pub page_out_kb_per_s: Option<f64>,
    pub major_faults_per_s: Option<f64>,
    pub context_switches_per_s: Option<f64>,
    pub interrupts_per_s: Option<f64>,
    pub forks_per_s: Option<f64>,
    /// OOM kills in the window (/proc/vmstat oom_kill, Linux >= 4.13).
    pub oom_kills: Option<u64>,
    pub user_pct: Option<f64>,
    pub system_pct: Option<f64>,
    pub idle_pct: Option<f64>,
    pub iowait_pct: Option<f64>,
    pub steal_pct: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProcessSection {
    pub count: u32,
    pub threads: i64,
    pub zombies: u32,
    /// Parent of the most zombies, when there are any.
    pub zombie_parent: Option<ProcRef>,
    pub top_cpu: Vec<ProcRow>,
    pub top_rss: Vec<ProcRow>,
    pub d_state: Vec<DTask>,
    /// Processes whose open file descriptors approach their limit (most used first).
    pub fd_top: Vec<FdRow>,
    /// Processes whose fds or namespaces could not be inspected (permissions).
    pub not_inspected: u32,
    /// The process whose resident memory grew fastest over the window (only when one grew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_grower: Option<RssGrowth>,
    /// When the box forks at least 100 processes/s: the parents whose children come and go
    /// (most reaped children's CPU first). Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spawners: Vec<SpawnerRow>,
}

/// A process that spawns many short-lived children.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SpawnerRow {
    pub pid: i32,
    pub comm: String,
    pub ppid: i32,
    /// CPU of the short-lived children it reaped in the window, % of one CPU: the growth of
    /// its cutime + cstime, less what children already running at t0 brought (short-lived
    /// children leave no other trace in /proc).
    pub children_cpu_pct: f64,
    /// Its children born in the window and still alive at the end.
    pub new_children: u32,
    /// The most common name among those children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_comm: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct RssGrowth {
    pub pid: i32,
    pub comm: String,
    pub rss_bytes: u64,
    pub growth_bytes_per_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProcRef {
    pub pid: i32,
    pub comm: String,
    pub count: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct FdRow {
    pub pid: i32,
    pub comm: String,
    pub open_fds: u64,
    pub soft_limit: Option<u64>,
    pub used_pct: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct LimitsSection {
    pub file_handles: Option<u64>,
    pub file_handles_max: Option<u64>,
    pub file_handles_pct: Option<f64>,
    pub threads: Option<u64>,
    pub threads_max: Option<u64>,
    pub pid_max: Option<u64>,
    pub tasks_pct: Option<f64>,
    pub conntrack: Option<u64>,
    pub conntrack_max: Option<u64>,
    pub conntrack_pct: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `keep` empties every checklist section it is not given, and only those.
    #[test]
    fn keep_empties_the_sections_not_named() {
        let full = Sections {
            load: Some(LoadSection::default()),
            vmstat: Some(VmstatSection::default()),
            cpus: vec![CpuRow::default()],
            processes: Some(ProcessSection::default()),
            disks: vec![DiskRow::default()],
            disks_idle: 3,
            filesystems: vec![FsRow::default()],
            memory: Some(MemorySection::default()),
            interfaces: vec![IfRow::default()],
            tcp: vec![TcpRow::default()],
            pressure: vec![PsiRow::default()],
            cgroups: vec![CgroupRow::default()],
            kernel_log: Some(KernelLogSection::default()),
            limits: Some(LimitsSection::default()),
            io_limited_cgroups: vec![Default::default()],
            ..Default::default()
        };
        let mut s = full.clone();
        s.keep(&[Section::Disks, Section::Filesystems, Section::Pressure]);
        assert_eq!(
            s,
            Sections {
                disks: full.disks.clone(),
                disks_idle: 3,
                filesystems: full.filesystems.clone(),
                pressure: full.pressure.clone(),
                ..Default::default()
            }
        );
        let mut all = full.clone();
        all.keep(&[
            Section::Load,
            Section::Vmstat,
            Section::Cpus,
            Section::Processes,
            Section::Disks,
            Section::Filesystems,
            Section::Memory,
            Section::Interfaces,
            Section::Tcp,
            Section::Pressure,
            Section::Cgroups,
            Section::KernelLog,
            Section::Limits,
            Section::IoLimitedCgroups,
        ]);
        assert_eq!(all, full);
    }

    /// Every field of `Sections` is either a checklist section that `keep` knows (so a view
    /// can leave it out) or a section of one view's own. A new checklist field needs a
    /// `Section` variant and a line in `keep`, or every deep view would show it.
    #[test]
    fn every_section_field_is_known_to_keep_or_a_views_own() {
        const CHECKLIST: &[&str] = &[
            "load",
            "vmstat",
            "cpus",
            "processes",
            "disks",
            "disks_idle",
            "filesystems",
            "memory",
            "interfaces",
            "tcp",
            "pressure",
            "cgroups",
            "kernel_log",
            "limits",
            "io_limited_cgroups",
            "qdiscs",
        ];
        const OWN: &[&str] = &[
            "cpu_detail",
            "mem_detail",
            "disk_detail",
            "net_detail",
            "offcpu",
            "latency",
            "syscalls",
            "profile",
        ];
        let schema = serde_json::to_value(schemars::schema_for!(Sections)).unwrap();
        let props = schema["properties"]
            .as_object()
            .expect("Sections has properties");
        for name in props.keys() {
            assert!(
                CHECKLIST.contains(&name.as_str()) || OWN.contains(&name.as_str()),
                "Sections.{name}: add a `Section` variant and a line in `Sections::keep` (and \
                 list it in the views that show it, commands/views.rs), or list it here as a \
                 view's own section"
            );
        }
        assert_eq!(props.len(), CHECKLIST.len() + OWN.len());
    }
}
