//! Readings only the deep dives (`triage cpu|mem|disk|net`) need, chosen by a [`Spec`]:
//! /proc/softirqs, /proc/net/softnet_stat, per-process `status` and `io`, per-thread `stat`
//! (at both ends of the window), and end-of-window facts (full meminfo, THP and overcommit
//! settings, link speeds, listening sockets and their owners, processes' cgroups).
//!
//! Like every reader, these go through a [`Source`], so `capture` (which reads everything)
//! records them and a fixture replays them; a fixture recorded without them simply has none.

use std::collections::BTreeMap;

use super::procs::{ProcSample, ProcScan};
use crate::host::sockdiag::Listener;
/// A destination's client sockets (sock_diag), as the net view reports them.
pub use crate::host::sockdiag::PortUse;
use crate::host::Source;

/// What a run reads beyond the sixty-second checklist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spec {
    /// softirqs, per-thread stat, context switches from status.
    pub cpu: bool,
    /// full meminfo, RSS split from status, THP/overcommit settings.
    pub mem: bool,
    /// /proc/PID/io.
    pub disk: bool,
    /// softnet_stat, link speeds, TCP states at t0, listeners.
    pub net: bool,
    /// Each process's cgroup (for `--cgroup`).
    pub proc_cgroups: bool,
    /// `--pid`: that process's listeners are mapped to it even when their queue is not full.
    pub pid: Option<i32>,
    /// cgroup I/O counters and limits (io.stat/io.max, blkio.throttle.*): the checklist tells
    /// "waiting on a cgroup's I/O limit" from "waiting on the disk".
    pub io_cgroups: bool,
}

impl Spec {
    /// What `sixty-second` reads: nothing more.
    pub const SIXTY_SECOND: Spec = Spec {
        cpu: false,
        mem: false,
        disk: false,
        net: false,
        proc_cgroups: false,
        pid: None,
        io_cgroups: true,
    };
    /// Everything (what `capture` records, so any subcommand can replay the fixture).
    pub const ALL: Spec = Spec {
        cpu: true,
        mem: true,
        disk: true,
        net: true,
        proc_cgroups: true,
        pid: None,
        io_cgroups: true,
    };

    pub fn any(&self) -> bool {
        self.cpu || self.mem || self.disk || self.net || self.proc_cgroups || self.io_cgroups
    }
}

/// One CPU's row of /proc/net/softnet_stat (hex counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoftnetRow {
    pub cpu: u32,
    pub processed: u64,
    pub dropped: u64,
    pub time_squeeze: u64,
}

/// The fields of /proc/PID/status the deep dives use (bytes and counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcStatus {
    pub voluntary_switches: Option<u64>,
    pub involuntary_switches: Option<u64>,
    pub rss_anon_bytes: Option<u64>,
    pub rss_file_bytes: Option<u64>,
    pub rss_shmem_bytes: Option<u64>,
    pub swap_bytes: Option<u64>,
}

/// /proc/PID/io: bytes really read from and written to storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcIo {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub cancelled_write_bytes: u64,
}

/// Deep counters of one moment (t0 or t1).
#[derive(Debug, Clone, Default)]
pub struct DeepSnapshot {
    /// Softirq name -> (cpu id, count since boot).
    pub softirqs: BTreeMap<String, Vec<(u32, u64)>>,
    pub softnet: Vec<SoftnetRow>,
    pub status: BTreeMap<i32, ProcStatus>,
    pub io: BTreeMap<i32, ProcIo>,
    /// Processes whose io file was not readable (other users' without privileges).
    pub io_denied: usize,
    /// pid -> its threads' stat (`pid` field holds the thread id), multi-threaded only.
    pub threads: BTreeMap<i32, Vec<ProcSample>>,
    /// tid -> that thread's status (context switches), for the threads above.
    pub thread_status: BTreeMap<i32, ProcStatus>,
    /// TCP states of our own namespace at this moment (CLOSE_WAIT growth).
    pub tcp_states: Option<BTreeMap<String, u64>>,
    /// Client-side TCP sockets per (local address, remote address:port), at the end only.
    pub port_use: Option<crate::host::sockdiag::PortUseDump>,
    /// cgroup path -> block I/O counters, limits and pressure.
    pub io_cgroups: BTreeMap<String, super::iocg::IoCg>,
}

/// Deep facts read once, at the end of the window.
#[derive(Debug, Clone, Default)]
pub struct DeepEnd {
    /// /proc/meminfo by key, as written (kB for sizes, counts for HugePages_*).
    pub meminfo: BTreeMap<String, u64>,
    pub thp_enabled: Option<String>,
    pub thp_defrag: Option<String>,
    pub overcommit_memory: Option<u64>,
    pub overcommit_ratio: Option<u64>,
    /// Interface -> link speed in Mbit/s (own namespace, where the driver reports one).
    pub link_speed_mbps: BTreeMap<String, u64>,
    pub listeners: Option<Vec<Listener>>,
    /// Socket inode -> owning (pid, comm), for listeners whose accept queue is full.
    pub listener_owners: BTreeMap<u64, (i32, String)>,
    /// pid -> cgroup path (v2 path, or the first v1 hierarchy's).
    pub proc_cgroups: BTreeMap<i32, String>,
}

/// `/proc/softirqs`: header of CPU names, then `NAME: n n n ...`.
pub fn parse_softirqs(text: &str) -> BTreeMap<String, Vec<(u32, u64)>> {
    let mut lines = text.lines();
    let cpus: Vec<u32> = lines
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .filter_map(|c| c.strip_prefix("CPU")?.parse().ok())
        .collect();
    let mut out = BTreeMap::new();
    for line in lines {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let v: Vec<(u32, u64)> = cpus
            .iter()
            .copied()
            .zip(rest.split_ascii_whitespace().map_while(|x| x.parse().ok()))
            .collect();
        if !v.is_empty() {
            out.insert(name.trim().to_string(), v);
        }
    }
    out
}

/// `/proc/net/softnet_stat`: one line per online CPU, hex. Column 0 processed, 1 dropped,
/// 2 time_squeeze; the CPU id is column 12 on Linux >= 5.10, else the line number.
pub fn parse_softnet(text: &str) -> Vec<SoftnetRow> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let v: Vec<u64> = l
                .split_ascii_whitespace()
                .map(|x| u64::from_str_radix(x, 16))
                .collect::<Result<_, _>>()
                .ok()?;
            Some(SoftnetRow {
                cpu: v.get(12).map(|c| *c as u32).unwrap_or(i as u32),
                processed: *v.first()?,
                dropped: *v.get(1)?,
                time_squeeze: *v.get(2)?,
            })
        })
        .collect()
}

/// Ours, not procfs-core's `Status`: that one needs every one of ~20 mandatory lines (a
/// truncated file gives nothing) and builds a map of ~55 owned strings per process, where the
/// deep dives need six numbers from the candidates they scan.
pub fn parse_status(text: &str) -> ProcStatus {
    let mut s = ProcStatus::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let num = || v.split_ascii_whitespace().next()?.parse::<u64>().ok();
        let kb = || num().map(|n| n.saturating_mul(1024));
        match k {
            "voluntary_ctxt_switches" => s.voluntary_switches = num(),
            "nonvoluntary_ctxt_switches" => s.involuntary_switches = num(),
            "RssAnon" => s.rss_anon_bytes = kb(),
            "RssFile" => s.rss_file_bytes = kb(),
            "RssShmem" => s.rss_shmem_bytes = kb(),
            "VmSwap" => s.swap_bytes = kb(),
            _ => {}
        }
    }
    s
}

/// Ours, not procfs-core's `Io`: that one slices each key one byte short of its end, which
/// panics on a key ending in a multi-byte character (a hostile `--root` or fixture; see the
/// test `io_with_a_non_ascii_key_does_not_panic`), and fails whole on one missing line.
pub fn parse_io(text: &str) -> Option<ProcIo> {
    let mut io = ProcIo::default();
    let mut seen = 0;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let Ok(n) = v.trim().parse::<u64>() else {
            continue;
        };
        match k {
            "read_bytes" => io.read_bytes = n,
            "write_bytes" => io.write_bytes = n,
            "cancelled_write_bytes" => io.cancelled_write_bytes = n,
            _ => continue,
        }
        seen += 1;
    }
    (seen >= 2).then_some(io)
}

/// `/proc/meminfo` as key -> number (the unit, `kB`, dropped).
pub fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((
                k.trim().to_string(),
                v.split_ascii_whitespace().next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// The bracketed choice of a sysfs setting: `always [madvise] never` -> `madvise`.
pub fn bracketed(text: &str) -> Option<String> {
    let s = text.split_once('[')?.1;
    Some(s.split_once(']')?.0.to_string())
}

fn user_procs(scan: &ProcScan) -> impl Iterator<Item = &ProcSample> {
    scan.procs
        .values()
        .filter(|p| !p.kernel_thread && p.state != 'Z')
}

/// Read the deep counters of one moment.
/// At t1, only the processes the views can list need their `status`: the busiest by CPU over
/// the window (cpu: switch rates) and the largest by RSS (mem: the anon/file/shmem split).
pub const STATUS_CANDIDATES: usize = 200;

/// The pids whose t1 `status` is read, or None for all (t0, or `--cgroup`, whose members may
/// be anywhere in the ranking).
fn status_candidates(
    spec: &Spec,
    scan: &ProcScan,
    before: Option<&ProcScan>,
) -> Option<std::collections::BTreeSet<i32>> {
    let before = before?;
    if spec.proc_cgroups {
        return None;
    }
    let mut out = std::collections::BTreeSet::new();
    let mut pick = |mut v: Vec<(u64, i32)>| {
        v.sort_unstable_by(|a, b| b.cmp(a));
        out.extend(v.iter().take(STATUS_CANDIDATES).map(|x| x.1));
    };
    if spec.cpu {
        pick(
            user_procs(scan)
                .map(|p| {
                    let t0 = before
                        .procs
                        .get(&p.pid)
                        .filter(|o| o.starttime == p.starttime)
                        .map_or(0, |o| o.utime.saturating_add(o.stime));
                    (p.utime.saturating_add(p.stime).saturating_sub(t0), p.pid)
                })
                .collect(),
        );
    }
    if spec.mem {
        pick(user_procs(scan).map(|p| (p.rss_pages, p.pid)).collect());
    }
    out.extend(spec.pid);
    Some(out)
}

/// The threads whose t1 `status` is read: the busiest over the window (None at t0: all).
fn thread_candidates(
    threads: &BTreeMap<i32, Vec<ProcSample>>,
    before: Option<&DeepSnapshot>,
) -> Option<std::collections::BTreeSet<i32>> {
    let before = before?;
    let old: BTreeMap<i32, &ProcSample> = before
        .threads
        .values()
        .flatten()
        .map(|t| (t.pid, t))
        .collect();
    let mut v: Vec<(u64, i32)> = threads
        .values()
        .flatten()
        .map(|t| {
            let t0 = old
                .get(&t.pid)
                .filter(|o| o.starttime == t.starttime)
                .map_or(0, |o| o.utime.saturating_add(o.stime));
            (t.utime.saturating_add(t.stime).saturating_sub(t0), t.pid)
        })
        .collect();
    v.sort_unstable_by(|a, b| b.cmp(a));
    Some(v.iter().take(STATUS_CANDIDATES).map(|x| x.1).collect())
}

/// The context switches of `/proc/PID/task/TID/status` (what the CPU view uses of a
/// thread's or a process's status), from the scan's task dump when it has the task. The RSS
/// split is left out: `status` shows the exact (per-CPU summed) counters, the dump the
/// approximate ones of `stat`.
fn dump_status(scan: &ProcScan, tid: i32) -> Option<ProcStatus> {
    let (vol, invol) = *scan.dump.as_ref()?.switches.get(&tid)?;
    Some(ProcStatus {
        voluntary_switches: Some(vol),
        involuntary_switches: Some(invol),
        ..ProcStatus::default()
    })
}

pub fn snapshot(
    src: &dyn Source,
    spec: &Spec,
    scan: &ProcScan,
    before: Option<(&ProcScan, &DeepSnapshot)>,
    layout: Option<&super::cgroup::CgroupLayout>,
) -> DeepSnapshot {
    let before_deep = before.map(|b| b.1);
    let before = before.map(|b| b.0);
    let mut d = DeepSnapshot::default();
    if spec.cpu {
        if let Ok(t) = src.read_string("proc/softirqs") {
            d.softirqs = parse_softirqs(&t);
        }
        for p in user_procs(scan).filter(|p| p.num_threads > 1) {
            // The task iterator already saw every thread.
            if let Some(ts) = scan.dump.as_ref().and_then(|d| d.threads.get(&p.pid)) {
                d.threads.insert(p.pid, ts.clone());
                continue;
            }
            let Ok(list) = src.list(&format!("proc/{}/task", p.pid)) else {
                continue;
            };
            let mut tids: Vec<i32> = list.iter().filter_map(|t| t.parse().ok()).collect();
            tids.sort_unstable();
            let threads: Vec<ProcSample> = tids
                .iter()
                .filter_map(|tid| {
                    src.read_kept(&format!("proc/{}/task/{tid}/stat", p.pid))
                        .ok()
                        .and_then(|b| ProcSample::parse(&b))
                })
                .collect();
            d.threads.insert(p.pid, threads);
        }
        let only = thread_candidates(&d.threads, before_deep);
        for (pid, ts) in &d.threads {
            for t in ts
                .iter()
                .filter(|t| only.as_ref().is_none_or(|o| o.contains(&t.pid)))
            {
                if let Some(st) = dump_status(scan, t.pid) {
                    d.thread_status.insert(t.pid, st);
                    continue;
                }
                if let Ok(text) = src.read_kept_string(&format!("proc/{pid}/task/{}/status", t.pid))
                {
                    d.thread_status.insert(t.pid, parse_status(&text));
                }
            }
        }
    }
    // Memory alone needs the split at t1 only; context switches need both ends.
    if spec.cpu || (spec.mem && before.is_some()) {
        let only = status_candidates(spec, scan, before);
        for p in user_procs(scan).filter(|p| only.as_ref().is_none_or(|o| o.contains(&p.pid))) {
            // The dump's RSS counters are the approximate ones of `stat`; `status` sums the
            // per-CPU parts, so the memory view reads it.
            if !spec.mem {
                if let Some(st) = dump_status(scan, p.pid) {
                    d.status.insert(p.pid, st);
                    continue;
                }
            }
            if let Ok(t) = src.read_kept_string(&format!("proc/{}/status", p.pid)) {
                d.status.insert(p.pid, parse_status(&t));
            }
        }
    }
    if spec.disk {
        for p in user_procs(scan) {
            match src.read_kept_string(&format!("proc/{}/io", p.pid)) {
                Ok(t) => {
                    if let Some(io) = parse_io(&t) {
                        d.io.insert(p.pid, io);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => d.io_denied += 1,
                Err(_) => {}
            }
        }
    }
    if spec.disk || spec.io_cgroups {
        if let Some(l) = layout {
            d.io_cgroups = super::iocg::scan(src, l);
        }
    }
    if spec.net {
        if let Ok(t) = src.read_string("proc/net/softnet_stat") {
            d.softnet = parse_softnet(&t);
        }
        d.tcp_states = src.tcp_states().ok();
        // Client-side port use matters at the end of the window only.
        if before.is_some() {
            let range = src
                .read_string("proc/sys/net/ipv4/ip_local_port_range")
                .ok()
                .and_then(|t| {
                    let mut w = t.split_whitespace().map(|x| x.parse::<u16>().ok());
                    Some((w.next()??, w.next()??))
                });
            if let Some(r) = range {
                d.port_use = src.tcp_port_use(r).ok();
            }
        }
    }
    d
}

/// Is this listener's accept queue full (the kernel drops the next SYN/ACK)?
pub fn listener_full(l: &Listener) -> bool {
    l.backlog > 0 && l.accept_queue >= l.backlog
}

/// Find the processes holding the given socket inodes (`/proc/PID/fd/N -> socket:[INODE]`),
/// among all processes or only `only`. Stops as soon as every inode has an owner.
fn socket_owners(
    src: &dyn Source,
    scan: &ProcScan,
    inodes: &[u64],
    only: Option<i32>,
) -> BTreeMap<u64, (i32, String)> {
    let mut out = BTreeMap::new();
    if inodes.is_empty() {
        return out;
    }
    for p in user_procs(scan).filter(|p| only.is_none_or(|o| o == p.pid)) {
        let dir = format!("proc/{}/fd", p.pid);
        let Ok(fds) = src.list(&dir) else { continue };
        for fd in fds {
            let Ok(link) = src.readlink(&format!("{dir}/{fd}")) else {
                continue;
            };
            let ino = link
                .strip_prefix("socket:[")
                .and_then(|x| x.strip_suffix(']'))
                .and_then(|x| x.parse::<u64>().ok());
            if let Some(ino) = ino.filter(|i| inodes.contains(i)) {
                out.entry(ino).or_insert((p.pid, p.comm.clone()));
            }
        }
        if out.len() == inodes.len() {
            break;
        }
    }
    out
}

/// `0::/a/b` (v2) or the first v1 line's path.
pub fn parse_proc_cgroup(text: &str) -> Option<String> {
    let mut first = None;
    for l in text.lines() {
        let mut it = l.splitn(3, ':');
        let (id, ctrl, path) = (it.next()?, it.next()?, it.next()?);
        if id == "0" && ctrl.is_empty() {
            return Some(path.to_string());
        }
        if first.is_none() && (ctrl.contains("cpu") || ctrl.contains("memory")) {
            first = Some(path.to_string());
        }
    }
    first
}

fn read_num(src: &dyn Source, rel: &str) -> Option<u64> {
    src.read_string(rel).ok()?.trim().parse().ok()
}

/// Read the deep end-of-window facts. `interfaces` are our namespace's interface names.
pub fn end(src: &dyn Source, spec: &Spec, scan: &ProcScan, interfaces: &[String]) -> DeepEnd {
    let mut e = DeepEnd::default();
    if spec.mem {
        if let Ok(t) = src.read_string("proc/meminfo") {
            e.meminfo = parse_meminfo(&t);
        }
        let thp = "sys/kernel/mm/transparent_hugepage";
        e.thp_enabled = src
            .read_string(&format!("{thp}/enabled"))
            .ok()
            .and_then(|t| bracketed(&t));
        e.thp_defrag = src
            .read_string(&format!("{thp}/defrag"))
            .ok()
            .and_then(|t| bracketed(&t));
        e.overcommit_memory = read_num(src, "proc/sys/vm/overcommit_memory");
        e.overcommit_ratio = read_num(src, "proc/sys/vm/overcommit_ratio");
    }
    if spec.net {
        for i in interfaces.iter().filter(|i| *i != "lo") {
            // Virtual interfaces answer EINVAL or -1: no speed.
            if let Some(v) = src
                .read_string(&format!("sys/class/net/{i}/speed"))
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .filter(|v| *v > 0)
            {
                e.link_speed_mbps.insert(i.clone(), v as u64);
            }
        }
        e.listeners = src.tcp_listeners().ok();
        let full: Vec<u64> = e
            .listeners
            .iter()
            .flatten()
            .filter(|l| listener_full(l))
            .map(|l| l.inode)
            .collect();
        e.listener_owners = socket_owners(src, scan, &full, None);
        if let Some(pid) = spec.pid {
            // Which listeners are this process's: one fd table, cheap.
            let all: Vec<u64> = e.listeners.iter().flatten().map(|l| l.inode).collect();
            let mine = socket_owners(src, scan, &all, Some(pid));
            e.listener_owners.extend(mine);
        }
    }
    if spec.proc_cgroups {
        for p in user_procs(scan) {
            if let Some(cg) = src
                .read_string(&format!("proc/{}/cgroup", p.pid))
                .ok()
                .and_then(|t| parse_proc_cgroup(&t))
            {
                e.proc_cgroups.insert(p.pid, cg);
            }
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softirqs_per_cpu() {
        let t = "                    CPU0       CPU1\n          HI:          1          2\n      NET_RX:     900000         12\n";
        let s = parse_softirqs(t);
        assert_eq!(s["NET_RX"], vec![(0, 900000), (1, 12)]);
        assert_eq!(s["HI"], vec![(0, 1), (1, 2)]);
    }

    #[test]
    fn softnet_hex_and_cpu_column() {
        let t = "0000a000 00000002 00000010 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000003 00000000\n";
        let r = parse_softnet(t);
        assert_eq!(
            r,
            vec![SoftnetRow {
                cpu: 3,
                processed: 0xa000,
                dropped: 2,
                time_squeeze: 16
            }]
        );
        // Old kernels: no CPU column, the line number is the CPU.
        assert_eq!(parse_softnet("1 2 3\n5 6 7\n")[1].cpu, 1);
    }

    #[test]
    fn status_fields_in_bytes() {
        let t = "Name:\tx\nVmSwap:\t      8 kB\nRssAnon:\t  1024 kB\nRssFile:\t  2 kB\nRssShmem:\t 0 kB\nvoluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n";
        let s = parse_status(t);
        assert_eq!(s.rss_anon_bytes, Some(1024 * 1024));
        assert_eq!(s.swap_bytes, Some(8192));
        assert_eq!(
            (s.voluntary_switches, s.involuntary_switches),
            (Some(150), Some(7))
        );
    }

    #[test]
    fn io_with_a_non_ascii_key_does_not_panic() {
        // procfs-core 0.18's `Io` panics here ("not a char boundary").
        let io =
            parse_io("rchar: 1\n\u{e9} 5\n\u{e9}: 5\nread_bytes: 7\nwrite_bytes: 9\n").unwrap();
        assert_eq!((io.read_bytes, io.write_bytes), (7, 9));
    }

    #[test]
    fn status_of_a_partial_file_keeps_what_it_has() {
        // A truncated status (no Name, Uid, Gid, ... lines) still gives its switches.
        let s = parse_status("voluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n");
        assert_eq!(
            (s.voluntary_switches, s.involuntary_switches),
            (Some(12), Some(3))
        );
        assert_eq!(s.rss_anon_bytes, None);
    }

    #[test]
    fn io_and_meminfo_and_settings() {
        let io = parse_io(
            "rchar: 5\nwchar: 6\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n",
        )
        .unwrap();
        assert_eq!((io.read_bytes, io.write_bytes), (4096, 8192));
        assert!(parse_io("garbage").is_none());
        // Two of the three lines are enough (older kernels lack cancelled_write_bytes).
        let io = parse_io("read_bytes: 1\nwrite_bytes: 2\n").unwrap();
        assert_eq!((io.read_bytes, io.write_bytes), (1, 2));
        let m = parse_meminfo("MemTotal:       1000 kB\nHugePages_Total:       4\n");
        assert_eq!((m["MemTotal"], m["HugePages_Total"]), (1000, 4));
        assert_eq!(
            bracketed("always [madvise] never\n").as_deref(),
            Some("madvise")
        );
        assert_eq!(
            parse_proc_cgroup("0::/system.slice/x.service\n").as_deref(),
            Some("/system.slice/x.service")
        );
        assert_eq!(
            parse_proc_cgroup("12:pids:/a\n4:cpu,cpuacct:/docker/1\n0::/\n").as_deref(),
            Some("/")
        );
        assert_eq!(
            parse_proc_cgroup("4:cpu,cpuacct:/docker/1\n").as_deref(),
            Some("/docker/1")
        );
    }
}
