//! The deep-dive sections (`triage cpu|mem|disk|net`): what mpstat/pidstat/vmstat/iostat/sar/
//! ss/free would show about one resource, computed over the measured window from the same
//! readings as the checklist. Each is absent from `sixty-second` reports (and their JSON).
//!
//! Invariants as in `build`: counters that went backwards give `null`; rates divide by the
//! measured elapsed time; lists are sorted deterministically (biggest first, ties by id).

use crate::model::SatSum;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::build::{delta, r2, rate};
use crate::collect::deep::{listener_full, ProcStatus};
use crate::collect::kmsg::{self, KmsgClass};
use crate::collect::procs::ProcSample;
use crate::collect::run::Readings;
pub use crate::resources::disk::{
    detail as disk, io_cgroups, DiskDetail, DiskExtraRow, IoCgroupRow, IoProcRow,
};
use crate::resources::scope::{before, cut, psi_stall_ms};
pub use crate::resources::scope::{in_cgroup, Scope};

/// One process or thread by CPU (pidstat -u -w [-t]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct TaskCpuRow {
    pub pid: i32,
    /// The thread id (thread rows only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    pub comm: String,
    pub cpu_pct: f64,
    pub usr_pct: f64,
    pub sys_pct: f64,
    /// voluntary_ctxt_switches over the window (/proc/PID/status, or the thread's
    /// /proc/PID/task/TID/status; a process row counts its main thread, as pidstat -w does).
    pub voluntary_switches_per_s: Option<f64>,
    pub involuntary_switches_per_s: Option<f64>,
}

/// One softirq type over the window (/proc/softirqs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SoftirqRow {
    pub name: String,
    pub per_s: f64,
    /// The CPU that handled most of them, and its share.
    pub busiest_cpu: u32,
    pub busiest_cpu_share_pct: f64,
    /// That CPU's %soft over the window (mpstat).
    pub busiest_cpu_soft_pct: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CpuDetail {
    /// Rows each `--top` list left out (list name -> rows not shown), when any (since 1.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub left_out: BTreeMap<String, usize>,
    pub online_cpus: u32,
    pub effective_cpus: f64,
    pub effective_cpus_source: String,
    /// PSI cpu `some` stall time in the window, ms (source /proc/pressure/cpu).
    pub psi_some_stall_ms: Option<f64>,
    pub psi_some_avg10_pct: Option<f64>,
    pub psi_some_avg60_pct: Option<f64>,
    pub top_processes: Vec<TaskCpuRow>,
    pub top_threads: Vec<TaskCpuRow>,
    /// Softirq types with activity, busiest first.
    pub softirqs: Vec<SoftirqRow>,
}

/// The MemAvailable picture, bytes (/proc/meminfo).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MemBreakdown {
    pub total_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    pub anon_bytes: Option<u64>,
    pub file_cache_bytes: Option<u64>,
    pub dirty_bytes: Option<u64>,
    pub slab_reclaimable_bytes: Option<u64>,
    pub slab_unreclaimable_bytes: Option<u64>,
    pub shmem_bytes: Option<u64>,
    pub page_tables_bytes: Option<u64>,
    pub kernel_stack_bytes: Option<u64>,
    pub hugepages_total: Option<u64>,
    pub hugepages_free: Option<u64>,
    pub hugepage_size_bytes: Option<u64>,
    pub committed_as_bytes: Option<u64>,
    pub commit_limit_bytes: Option<u64>,
    pub committed_pct_of_limit: Option<f64>,
    pub swap_total_bytes: Option<u64>,
    pub swap_used_bytes: Option<u64>,
}

/// Paging and reclaim over the window (/proc/vmstat), per second.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Reclaim {
    pub swap_in_kb_per_s: Option<f64>,
    pub swap_out_kb_per_s: Option<f64>,
    pub minor_faults_per_s: Option<f64>,
    pub major_faults_per_s: Option<f64>,
    pub kswapd_scan_per_s: Option<f64>,
    pub kswapd_steal_per_s: Option<f64>,
    pub direct_scan_per_s: Option<f64>,
    pub direct_steal_per_s: Option<f64>,
    /// Allocations that had to reclaim directly (allocstall_*), the stall vmstat cannot show.
    pub allocation_stalls_per_s: Option<f64>,
}

/// An OOM kill from the kernel log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct OomEvent {
    pub age_s: f64,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub anon_rss_kb: Option<u64>,
    /// `task_memcg=` of the kill summary, when the log has it.
    pub cgroup: Option<String>,
    pub cgroup_oom: bool,
}

/// One process's memory (pidstat -r, /proc/PID/status).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MemProcRow {
    pub pid: i32,
    pub comm: String,
    pub rss_bytes: u64,
    pub anon_bytes: Option<u64>,
    pub file_bytes: Option<u64>,
    pub shmem_bytes: Option<u64>,
    pub swap_bytes: Option<u64>,
    /// RSS growth over the window (negative when it shrank).
    pub rss_growth_bytes_per_s: Option<f64>,
    pub minor_faults_per_s: f64,
    pub major_faults_per_s: f64,
}

/// A memory cgroup against its limits, and its events in the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MemCgroupRow {
    pub path: String,
    pub usage_bytes: u64,
    /// memory.max (v2) or memory.limit_in_bytes (v1).
    pub limit_bytes: Option<u64>,
    /// memory.high (v2).
    pub high_bytes: Option<u64>,
    pub used_pct: Option<f64>,
    pub swap_bytes: Option<u64>,
    /// memory.events in the window (v2): high, max, oom, oom_kill; v1 failcnt as `max`.
    pub high_events: Option<u64>,
    pub max_events: Option<u64>,
    pub oom_events: Option<u64>,
    pub oom_kill_events: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MemDetail {
    /// Rows each `--top` list left out (list name -> rows not shown), when any (since 1.2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub left_out: BTreeMap<String, usize>,
    pub breakdown: MemBreakdown,
    pub reclaim: Reclaim,
    /// PSI memory in the window.
    pub psi_some_stall_ms: Option<f64>,
    pub psi_full_stall_ms: Option<f64>,
    /// /proc/vmstat oom_kill: in the window and since boot.
    pub oom_kills: Option<u64>,
    pub oom_kills_since_boot: Option<u64>,
    pub oom_events: Vec<OomEvent>,
    pub top_rss: Vec<MemProcRow>,
    pub cgroups: Vec<MemCgroupRow>,
    pub thp_enabled: Option<String>,
    pub thp_defrag: Option<String>,
    pub overcommit_memory: Option<u64>,
    pub overcommit_ratio: Option<u64>,
}

/// Link utilization where the speed is known (sar -n DEV %ifutil).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct LinkRow {
    pub interface: String,
    pub speed_mbps: u64,
    pub rx_util_pct: Option<f64>,
    pub tx_util_pct: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SoftnetCpuRow {
    pub cpu: u32,
    pub processed_per_s: f64,
    pub dropped_per_s: f64,
    pub time_squeeze_per_s: f64,
}

/// A listening socket's accept queue (ss -lnt Recv-Q / Send-Q).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ListenRow {
    pub addr: String,
    pub port: u16,
    pub accept_queue: u32,
    pub backlog: u32,
    pub fill_pct: Option<f64>,
    pub full: bool,
    pub owner_pid: Option<i32>,
    pub owner_comm: Option<String>,
}

/// Counters of our own namespace beyond the checklist's TCP row, per second.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct NetCounters {
    pub syn_cookies_sent_per_s: Option<f64>,
    pub tcp_memory_pressures_per_s: Option<f64>,
    pub udp_in_datagrams_per_s: Option<f64>,
    pub udp_out_datagrams_per_s: Option<f64>,
    pub udp_in_errors_per_s: Option<f64>,
    pub udp_rcvbuf_errors_per_s: Option<f64>,
    pub udp_sndbuf_errors_per_s: Option<f64>,
    pub udp_no_ports_per_s: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct NetDetail {
    pub links: Vec<LinkRow>,
    pub softnet: Vec<SoftnetCpuRow>,
    pub counters: NetCounters,
    /// TCP sockets by state at the end of the window (sock_diag, or /proc/net/tcp*).
    pub tcp_states: BTreeMap<String, u64>,
    /// CLOSE_WAIT at the start and end of the window (growth = a peer closed and the
    /// application never did: a connection or fd leak).
    pub close_wait_start: Option<u64>,
    pub close_wait_end: Option<u64>,
    pub listeners: Vec<ListenRow>,
    pub listeners_total: u32,
    pub conntrack: Option<u64>,
    pub conntrack_max: Option<u64>,
    /// ip_local_port_range, and TCP sockets not listening (each holds a local port at most).
    pub ephemeral_ports: Option<u64>,
    pub tcp_sockets_bound: Option<u64>,
    pub ephemeral_used_pct: Option<f64>,
    /// Client-side TCP sockets per (local address, remote address:port), busiest first: how
    /// the kernel hands out ephemeral ports (absent when sock_diag could not be asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ports: Option<Vec<crate::host::sockdiag::PortUse>>,
    /// The busiest destination's sockets against the ephemeral range: what `connect()` to it
    /// runs out of (EADDRNOTAVAIL at 100%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_busiest_pct: Option<f64>,
    /// Local ports holding the most TIME_WAIT sockets, `[port, count]`, most first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_wait_local_ports: Option<Vec<(u16, u64)>>,
}

/// Version of the time-series wrapper (`--interval S --count N --json`).
pub const SERIES_SCHEMA_VERSION: &str = "1.1";

/// A time series: one complete report per window, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Series {
    pub schema_version: String,
    /// Always `series` (a single report has no `kind`).
    pub kind: String,
    pub command: String,
    pub interval_s: f64,
    /// Windows measured (fewer than asked when interrupted).
    pub count: u32,
    /// The verdict over every window: the worst status of any window (`incomplete` if one
    /// was), its top findings (since 1.1).
    #[serde(default)]
    pub summary: super::summary::Summary,
    pub samples: Vec<super::report::Report>,
}

impl Series {
    pub fn new(command: &str, interval_s: f64, samples: Vec<super::report::Report>) -> Self {
        Series {
            schema_version: SERIES_SCHEMA_VERSION.into(),
            kind: "series".into(),
            command: command.into(),
            interval_s,
            count: samples.len() as u32,
            summary: Default::default(),
            samples,
        }
        .with_summary()
    }

    fn with_summary(mut self) -> Self {
        self.refresh_summary();
        self
    }

    /// The series' verdict from its windows' (see [`super::summary::over_windows`]).
    pub fn refresh_summary(&mut self) {
        for r in &mut self.samples {
            super::summary::refresh(r);
        }
        self.summary = super::summary::over_windows(&self.samples);
    }
}

fn ro(v: Option<f64>) -> Option<f64> {
    v.map(r2)
}

fn vm_rate(r: &Readings, keys: &[&str]) -> Option<f64> {
    let (a, b) = (&r.t0.system.vmstat, &r.t1.system.vmstat);
    let mut sum = 0.0;
    let mut any = false;
    for k in keys {
        if let (Some(&x), Some(&y)) = (a.get(*k), b.get(*k)) {
            sum += rate(x, y, r.meta.elapsed_s)?;
            any = true;
        }
    }
    any.then_some(r2(sum))
}

fn cpu_row(r: &Readings, p: &ProcSample, old: Option<&ProcSample>) -> TaskCpuRow {
    let tck = r.meta.clock_ticks_per_s.max(1) as f64;
    let el = r.meta.elapsed_s;
    let (du, ds) = match old {
        Some(o) => (
            delta(o.utime, p.utime).unwrap_or(0),
            delta(o.stime, p.stime).unwrap_or(0),
        ),
        None => (p.utime, p.stime),
    };
    let f = |t: u64| r2(t as f64 / tck / el * 100.0);
    TaskCpuRow {
        pid: p.pid,
        tid: None,
        comm: p.comm.clone(),
        cpu_pct: f(du.saturating_add(ds)),
        usr_pct: f(du),
        sys_pct: f(ds),
        voluntary_switches_per_s: None,
        involuntary_switches_per_s: None,
    }
}

fn by_cpu(a: &TaskCpuRow, b: &TaskCpuRow) -> std::cmp::Ordering {
    b.cpu_pct
        .total_cmp(&a.cpu_pct)
        .then(a.pid.cmp(&b.pid))
        .then(a.tid.cmp(&b.tid))
}

pub fn cpu(r: &Readings, scope: &Scope) -> CpuDetail {
    let el = r.meta.elapsed_s;
    let host = super::host(r);
    let status_rate = |pid: i32, f: fn(&ProcStatus) -> Option<u64>| -> Option<f64> {
        let a = f(r.t0.deep.status.get(&pid)?)?;
        let b = f(r.t1.deep.status.get(&pid)?)?;
        rate(a, b, el).map(r2)
    };
    let mut procs: Vec<TaskCpuRow> = Vec::new();
    for p in r.t1.procs.procs.values() {
        if !scope.wants(r, p.pid) {
            continue;
        }
        let old = before(r, p);
        let mut row = cpu_row(r, p, old);
        if old.is_some() {
            row.voluntary_switches_per_s = status_rate(p.pid, |s| s.voluntary_switches);
            row.involuntary_switches_per_s = status_rate(p.pid, |s| s.involuntary_switches);
        }
        if row.cpu_pct > 0.0 || scope.pid.is_some() {
            procs.push(row);
        }
    }
    procs.sort_by(by_cpu);
    let mut left_out = BTreeMap::new();
    cut(&mut procs, scope.top, "top_processes", &mut left_out);

    let mut threads: Vec<TaskCpuRow> = Vec::new();
    for (pid, ts) in &r.t1.deep.threads {
        if !scope.wants(r, *pid) {
            continue;
        }
        let old: BTreeMap<i32, &ProcSample> =
            r.t0.deep
                .threads
                .get(pid)
                .map(|v| v.iter().map(|t| (t.pid, t)).collect())
                .unwrap_or_default();
        for t in ts {
            let o = old
                .get(&t.pid)
                .copied()
                .filter(|o| o.starttime == t.starttime);
            let mut row = cpu_row(r, t, o);
            row.tid = Some(t.pid);
            row.pid = *pid;
            if o.is_some() {
                let sw = |f: fn(&ProcStatus) -> Option<u64>| -> Option<f64> {
                    let a = f(r.t0.deep.thread_status.get(&t.pid)?)?;
                    let b = f(r.t1.deep.thread_status.get(&t.pid)?)?;
                    rate(a, b, el).map(r2)
                };
                row.voluntary_switches_per_s = sw(|s| s.voluntary_switches);
                row.involuntary_switches_per_s = sw(|s| s.involuntary_switches);
            }
            if row.cpu_pct > 0.0 {
                threads.push(row);
            }
        }
    }
    threads.sort_by(by_cpu);
    cut(&mut threads, scope.top, "top_threads", &mut left_out);

    let soft_pct: BTreeMap<String, f64> = super::build::cpus(r)
        .into_iter()
        .map(|c| (c.cpu, c.soft_pct))
        .collect();
    let mut softirqs = Vec::new();
    for (name, b) in &r.t1.deep.softirqs {
        let Some(a) = r.t0.deep.softirqs.get(name) else {
            continue;
        };
        let a: BTreeMap<u32, u64> = a.iter().copied().collect();
        let per_cpu: Vec<(u32, u64)> = b
            .iter()
            .filter_map(|(c, y)| Some((*c, delta(*a.get(c)?, *y)?)))
            .collect();
        let total: u64 = per_cpu.iter().map(|x| x.1).sat_sum();
        if total == 0 {
            continue;
        }
        let &(cpu, n) = per_cpu
            .iter()
            .max_by(|x, y| x.1.cmp(&y.1).then(y.0.cmp(&x.0)))
            .unwrap_or(&(0, 0));
        softirqs.push(SoftirqRow {
            name: name.clone(),
            per_s: r2(total as f64 / el),
            busiest_cpu: cpu,
            busiest_cpu_share_pct: r2(n as f64 / total as f64 * 100.0),
            busiest_cpu_soft_pct: soft_pct.get(&cpu.to_string()).copied(),
        });
    }
    softirqs.sort_by(|a, b| b.per_s.total_cmp(&a.per_s).then(a.name.cmp(&b.name)));

    let psi = r.t1.system.psi.get("cpu");
    CpuDetail {
        left_out,
        online_cpus: host.online_cpus,
        effective_cpus: host.effective_cpus,
        effective_cpus_source: host.effective_cpus_source,
        psi_some_stall_ms: psi_stall_ms(r, "cpu", false),
        psi_some_avg10_pct: psi.map(|p| p.some.avg10),
        psi_some_avg60_pct: psi.map(|p| p.some.avg60),
        top_processes: procs,
        top_threads: threads,
        softirqs,
    }
}

fn breakdown(r: &Readings) -> MemBreakdown {
    let m = &r.end.deep.meminfo;
    let kb = |k: &str| m.get(k).map(|v| v.saturating_mul(1024));
    let sum = |ks: &[&str]| -> Option<u64> {
        ks.iter()
            .map(|k| kb(k))
            .try_fold(0u64, |acc, v| Some(acc.saturating_add(v?)))
    };
    let committed = kb("Committed_AS");
    let limit = kb("CommitLimit");
    MemBreakdown {
        total_bytes: kb("MemTotal"),
        available_bytes: kb("MemAvailable"),
        free_bytes: kb("MemFree"),
        anon_bytes: kb("AnonPages"),
        // Page cache as free(1) counts it, shared memory (which lives there) excluded.
        file_cache_bytes: sum(&["Cached", "Buffers"])
            .map(|c| c.saturating_sub(kb("Shmem").unwrap_or(0))),
        dirty_bytes: kb("Dirty"),
        slab_reclaimable_bytes: kb("SReclaimable"),
        slab_unreclaimable_bytes: kb("SUnreclaim"),
        shmem_bytes: kb("Shmem"),
        page_tables_bytes: kb("PageTables"),
        kernel_stack_bytes: kb("KernelStack"),
        hugepages_total: m.get("HugePages_Total").copied(),
        hugepages_free: m.get("HugePages_Free").copied(),
        hugepage_size_bytes: kb("Hugepagesize"),
        committed_as_bytes: committed,
        commit_limit_bytes: limit,
        committed_pct_of_limit: committed
            .zip(limit)
            .filter(|(_, l)| *l > 0)
            .map(|(c, l)| r2(c as f64 / l as f64 * 100.0)),
        swap_total_bytes: kb("SwapTotal"),
        swap_used_bytes: kb("SwapTotal")
            .zip(kb("SwapFree"))
            .map(|(t, f)| t.saturating_sub(f)),
    }
}

/// OOM kills in the kernel log, with the cgroup from the `oom-kill:` summary when present.
fn oom_events(r: &Readings, lookback_s: f64) -> Vec<OomEvent> {
    let Some(recs) = r.end.kmsg.as_ref() else {
        return Vec::new();
    };
    let (now_us, since) = super::build::log_window(r, recs, lookback_s);
    // pid -> memcg from the summaries.
    let mut memcg: BTreeMap<String, String> = BTreeMap::new();
    for rec in recs.iter().filter(|x| x.message.starts_with("oom-kill:")) {
        let field = |k: &str| {
            rec.message
                .split(',')
                .find_map(|kv| kv.strip_prefix(k))
                .map(str::to_string)
        };
        if let (Some(pid), Some(cg)) = (field("pid="), field("task_memcg=")) {
            memcg.insert(pid, cg);
        }
    }
    kmsg::classify(recs, since)
        .into_iter()
        .filter(|e| matches!(e.class, KmsgClass::OomKill | KmsgClass::CgroupOom))
        .map(|e| OomEvent {
            age_s: r2(now_us.saturating_sub(e.ts_us) as f64 / 1e6),
            pid: e.pid,
            comm: e.comm.clone(),
            anon_rss_kb: e.anon_rss_kb,
            cgroup: e.pid.and_then(|p| memcg.get(&p.to_string()).cloned()),
            cgroup_oom: e.class == KmsgClass::CgroupOom,
        })
        .collect()
}

fn mem_cgroups(r: &Readings, scope: &Scope) -> Vec<MemCgroupRow> {
    let Some(s1) = &r.t1.cgroups else {
        return Vec::new();
    };
    let before: BTreeMap<&str, _> =
        r.t0.cgroups
            .as_ref()
            .map(|s| s.groups.iter().map(|g| (g.path.as_str(), g)).collect())
            .unwrap_or_default();
    let mut rows: Vec<MemCgroupRow> = s1
        .groups
        .iter()
        .filter(|g| {
            scope
                .cgroup
                .as_deref()
                .is_none_or(|c| in_cgroup(&g.path, c))
        })
        .filter_map(|g| {
            let m1 = g.memory.as_ref()?;
            let m0 = before.get(g.path.as_str()).and_then(|g| g.memory.as_ref());
            let ev = |f: fn(&crate::collect::cgroup::MemCg) -> Option<u64>| delta(f(m0?)?, f(m1)?);
            let row = MemCgroupRow {
                path: g.path.clone(),
                usage_bytes: m1.current_bytes,
                limit_bytes: m1.max_bytes,
                high_bytes: m1.high_bytes,
                used_pct: m1
                    .max_bytes
                    .filter(|m| *m > 0)
                    .map(|m| r2(m1.current_bytes as f64 / m as f64 * 100.0)),
                swap_bytes: m1.swap_bytes,
                high_events: ev(|m| m.high_events),
                max_events: ev(|m| m.max_events.or(m.failcnt)),
                oom_events: ev(|m| m.oom_events),
                oom_kill_events: ev(|m| m.oom_kill_events),
            };
            let eventful = [row.high_events, row.max_events, row.oom_kill_events]
                .iter()
                .any(|e| e.unwrap_or(0) > 0);
            (row.limit_bytes.is_some() || row.high_bytes.is_some() || eventful).then_some(row)
        })
        .collect();
    rows.sort_by(|a, b| {
        b.used_pct
            .unwrap_or(0.0)
            .total_cmp(&a.used_pct.unwrap_or(0.0))
            .then(a.path.cmp(&b.path))
    });
    rows.truncate(scope.top.max(1) * 4);
    rows
}

pub fn mem(r: &Readings, scope: &Scope, lookback_s: f64) -> MemDetail {
    let el = r.meta.elapsed_s;
    let page = r.meta.page_size_bytes;
    let page_kb = page as f64 / 1024.0;
    let mut top: Vec<MemProcRow> = Vec::new();
    for p in r.t1.procs.procs.values() {
        if p.kernel_thread || !scope.wants(r, p.pid) {
            continue;
        }
        let st = r.t1.deep.status.get(&p.pid);
        let old = before(r, p);
        let growth = old.map(|o| r2((p.rss_pages as f64 - o.rss_pages as f64) * page as f64 / el));
        let fault = |a: Option<u64>, b: u64| match a {
            Some(a) => rate(a, b, el).map(r2).unwrap_or(0.0),
            None => r2(b as f64 / el),
        };
        top.push(MemProcRow {
            pid: p.pid,
            comm: p.comm.clone(),
            rss_bytes: p.rss_pages.saturating_mul(page),
            anon_bytes: st.and_then(|s| s.rss_anon_bytes),
            file_bytes: st.and_then(|s| s.rss_file_bytes),
            shmem_bytes: st.and_then(|s| s.rss_shmem_bytes),
            swap_bytes: st.and_then(|s| s.swap_bytes),
            rss_growth_bytes_per_s: growth,
            minor_faults_per_s: fault(old.map(|o| o.minflt), p.minflt),
            major_faults_per_s: fault(old.map(|o| o.majflt), p.majflt),
        });
    }
    top.retain(|p| p.rss_bytes > 0);
    top.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    let mut left_out = BTreeMap::new();
    cut(&mut top, scope.top, "top_rss", &mut left_out);
    let (a, b) = (&r.t0.system.vmstat, &r.t1.system.vmstat);
    let minor = vm_rate(r, &["pgfault"])
        .zip(vm_rate(r, &["pgmajfault"]))
        .map(|(f, m)| r2((f - m).max(0.0)));
    let reclaim = Reclaim {
        swap_in_kb_per_s: ro(vm_rate(r, &["pswpin"]).map(|v| v * page_kb)),
        swap_out_kb_per_s: ro(vm_rate(r, &["pswpout"]).map(|v| v * page_kb)),
        minor_faults_per_s: minor,
        major_faults_per_s: vm_rate(r, &["pgmajfault"]),
        kswapd_scan_per_s: vm_rate(r, &["pgscan_kswapd"]),
        kswapd_steal_per_s: vm_rate(r, &["pgsteal_kswapd"]),
        direct_scan_per_s: vm_rate(r, &["pgscan_direct"]),
        direct_steal_per_s: vm_rate(r, &["pgsteal_direct"]),
        allocation_stalls_per_s: vm_rate(
            r,
            &[
                "allocstall_dma",
                "allocstall_dma32",
                "allocstall_normal",
                "allocstall_movable",
                "allocstall_device",
            ],
        ),
    };
    let d = &r.end.deep;
    MemDetail {
        left_out,
        breakdown: breakdown(r),
        reclaim,
        psi_some_stall_ms: psi_stall_ms(r, "memory", false),
        psi_full_stall_ms: psi_stall_ms(r, "memory", true),
        oom_kills: match (a.get("oom_kill"), b.get("oom_kill")) {
            (Some(&x), Some(&y)) => delta(x, y),
            _ => None,
        },
        oom_kills_since_boot: b.get("oom_kill").copied(),
        oom_events: oom_events(r, lookback_s),
        top_rss: top,
        cgroups: mem_cgroups(r, scope),
        thp_enabled: d.thp_enabled.clone(),
        thp_defrag: d.thp_defrag.clone(),
        overcommit_memory: d.overcommit_memory,
        overcommit_ratio: d.overcommit_ratio,
    }
}

pub fn net(r: &Readings, scope: &Scope) -> NetDetail {
    let el = r.meta.elapsed_s;
    let own = r.namespaces.own.unwrap_or(0);
    let (n0, n1) = (r.t0.net.get(&own), r.t1.net.get(&own));
    let mut links = Vec::new();
    if let (Some(a), Some(b)) = (n0, n1) {
        for (name, speed) in &r.end.deep.link_speed_mbps {
            let (Some(i0), Some(i1)) = (a.interfaces.get(name), b.interfaces.get(name)) else {
                continue;
            };
            let util = |x: u64, y: u64| {
                rate(x, y, el).map(|bps| r2(bps * 8.0 / (*speed as f64 * 1e6) * 100.0))
            };
            links.push(LinkRow {
                interface: name.clone(),
                speed_mbps: *speed,
                rx_util_pct: util(i0.rx_bytes, i1.rx_bytes),
                tx_util_pct: util(i0.tx_bytes, i1.tx_bytes),
            });
        }
    }
    let before: BTreeMap<u32, _> = r.t0.deep.softnet.iter().map(|s| (s.cpu, s)).collect();
    let softnet =
        r.t1.deep
            .softnet
            .iter()
            .filter_map(|s1| {
                let s0 = before.get(&s1.cpu)?;
                let f = |x: u64, y: u64| rate(x, y, el).map(r2).unwrap_or(0.0);
                Some(SoftnetCpuRow {
                    cpu: s1.cpu,
                    processed_per_s: f(s0.processed, s1.processed),
                    dropped_per_s: f(s0.dropped, s1.dropped),
                    time_squeeze_per_s: f(s0.time_squeeze, s1.time_squeeze),
                })
            })
            .collect();
    let cr = |k: &str| -> Option<f64> {
        let (x, y) = (*n0?.counters.get(k)?, *n1?.counters.get(k)?);
        (x >= 0 && y >= x).then(|| r2((y - x) as f64 / el))
    };
    let counters = NetCounters {
        syn_cookies_sent_per_s: cr("TcpExt.SyncookiesSent"),
        tcp_memory_pressures_per_s: cr("TcpExt.TCPMemoryPressures"),
        udp_in_datagrams_per_s: cr("Udp.InDatagrams"),
        udp_out_datagrams_per_s: cr("Udp.OutDatagrams"),
        udp_in_errors_per_s: cr("Udp.InErrors"),
        udp_rcvbuf_errors_per_s: cr("Udp.RcvbufErrors"),
        udp_sndbuf_errors_per_s: cr("Udp.SndbufErrors"),
        udp_no_ports_per_s: cr("Udp.NoPorts"),
    };
    let tcp_states: BTreeMap<String, u64> = r
        .end
        .tcp_states
        .get(&own)
        .map(|s| s.iter().map(|(k, v)| (k.to_string(), *v)).collect())
        .unwrap_or_default();
    let cw = |m: &BTreeMap<String, u64>| m.get("CLOSE_WAIT").copied().unwrap_or(0);
    let d = &r.end.deep;
    let mut listeners: Vec<ListenRow> = d
        .listeners
        .iter()
        .flatten()
        .map(|l| {
            let owner = d.listener_owners.get(&l.inode);
            ListenRow {
                addr: l.addr.clone(),
                port: l.port,
                accept_queue: l.accept_queue,
                backlog: l.backlog,
                fill_pct: (l.backlog > 0)
                    .then(|| r2(l.accept_queue as f64 / l.backlog as f64 * 100.0)),
                full: listener_full(l),
                owner_pid: owner.map(|o| o.0),
                owner_comm: owner.map(|o| o.1.clone()),
            }
        })
        .filter(|l| scope.pid.is_none() || l.owner_pid == scope.pid)
        .collect();
    let listeners_total = listeners.len() as u32;
    listeners.sort_by(|a, b| {
        b.fill_pct
            .unwrap_or(0.0)
            .total_cmp(&a.fill_pct.unwrap_or(0.0))
            .then(a.port.cmp(&b.port))
            .then(a.addr.cmp(&b.addr))
    });
    listeners.truncate(scope.top);
    let l = &r.end.limits;
    let ports = l
        .ip_local_port_range
        .map(|(lo, hi)| u64::from(hi.saturating_sub(lo)) + 1);
    let bound = (!tcp_states.is_empty()).then(|| {
        tcp_states
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "LISTEN" | "CLOSE" | "NEW_SYN_RECV"))
            .map(|(_, v)| *v)
            .sat_sum()
    });
    NetDetail {
        links,
        softnet,
        counters,
        close_wait_start: r.t0.deep.tcp_states.as_ref().map(cw),
        close_wait_end: (!tcp_states.is_empty()).then(|| cw(&tcp_states)),
        tcp_states,
        listeners,
        listeners_total,
        conntrack: l.conntrack_count,
        conntrack_max: l.conntrack_max,
        ephemeral_ports: ports,
        tcp_sockets_bound: bound,
        ephemeral_used_pct: ports
            .zip(bound)
            .filter(|(p, _)| *p > 0)
            .map(|(p, b)| r2(b as f64 / p as f64 * 100.0)),
        ephemeral_busiest_pct: ports.filter(|p| *p > 0).and_then(|p| {
            let top =
                r.t1.deep
                    .port_use
                    .as_ref()?
                    .destinations
                    .first()
                    .map(|u| u.sockets)
                    .unwrap_or(0);
            Some(r2(top as f64 / p as f64 * 100.0))
        }),
        client_ports: r.t1.deep.port_use.as_ref().map(|u| u.destinations.clone()),
        time_wait_local_ports: r
            .t1
            .deep
            .port_use
            .as_ref()
            .map(|u| u.time_wait_local_ports.clone()),
    }
}
