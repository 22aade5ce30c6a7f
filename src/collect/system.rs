//! System-wide counters and gauges: /proc/stat, loadavg, uptime, meminfo, vmstat, PSI, and the
//! kernel limits (sysctls) the rules compare against.

use std::collections::BTreeMap;

use procfs_core::{FromRead, LoadAverage, Meminfo};
use serde::{Deserialize, Serialize};

use super::Problem;
use crate::host::Source;

/// CPU time of one CPU (or of all, `id == None`), in clock ticks since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTicks {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    /// Already included in `user` by the kernel.
    pub guest: u64,
    /// Already included in `nice` by the kernel.
    pub guest_nice: u64,
}

impl CpuTicks {
    /// Every tick counted once (guest time is inside user/nice already).
    pub fn total(&self) -> u64 {
        // Saturating: a garbled or hostile /proc/stat may hold u64::MAX.
        [
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
        .iter()
        .fold(self.user, |a, &b| a.saturating_add(b))
    }
}

/// `/proc/stat`. Written here rather than with procfs's `KernelStats`, which drops the CPU ids
/// (offline CPUs leave gaps) and the interrupt total.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcStat {
    pub total: CpuTicks,
    /// (cpu id, ticks), in file order.
    pub cpus: Vec<(u32, CpuTicks)>,
    pub ctxt: Option<u64>,
    pub intr: Option<u64>,
    pub forks: Option<u64>,
    pub procs_running: Option<u32>,
    pub procs_blocked: Option<u32>,
    pub btime: Option<u64>,
}

pub fn parse_stat(text: &str) -> Result<ProcStat, String> {
    let mut st = ProcStat::default();
    let mut saw_total = false;
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let Some(key) = it.next() else { continue };
        if let Some(id) = key.strip_prefix("cpu") {
            let nums: Vec<u64> = it.map_while(|v| v.parse().ok()).collect();
            if nums.len() < 4 {
                return Err(format!("line `{key}`: expected at least 4 numbers"));
            }
            let g = |i: usize| nums.get(i).copied().unwrap_or(0);
            let t = CpuTicks {
                user: g(0),
                nice: g(1),
                system: g(2),
                idle: g(3),
                iowait: g(4),
                irq: g(5),
                softirq: g(6),
                steal: g(7),
                guest: g(8),
                guest_nice: g(9),
            };
            if id.is_empty() {
                st.total = t;
                saw_total = true;
            } else if let Ok(n) = id.parse::<u32>() {
                st.cpus.push((n, t));
            }
            continue;
        }
        let first = || it.clone().next().and_then(|v| v.parse::<u64>().ok());
        match key {
            "ctxt" => st.ctxt = first(),
            "intr" => st.intr = first(),
            "processes" => st.forks = first(),
            "procs_running" => st.procs_running = first().map(|v| v as u32),
            "procs_blocked" => st.procs_blocked = first().map(|v| v as u32),
            "btime" => st.btime = first(),
            _ => {}
        }
    }
    if !saw_total {
        return Err("no `cpu` total line".into());
    }
    Ok(st)
}

/// Runnable and blocked tasks at one instant (the vmstat `r` and `b` columns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskSample {
    pub running: u32,
    pub blocked: u32,
}

/// Only what the in-window sampler needs from /proc/stat, parsed without touching the CPU lines.
pub fn read_task_sample(src: &dyn Source) -> Option<TaskSample> {
    let text = src.read_string("proc/stat").ok()?;
    let mut s = TaskSample::default();
    let mut seen = 0;
    for line in text.lines().rev() {
        if let Some(v) = line.strip_prefix("procs_running ") {
            s.running = v.trim().parse().ok()?;
            seen += 1;
        } else if let Some(v) = line.strip_prefix("procs_blocked ") {
            s.blocked = v.trim().parse().ok()?;
            seen += 1;
        }
        if seen == 2 {
            return Some(s);
        }
    }
    None
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    pub runnable: u32,
    pub threads: u32,
}

/// One PSI line: `some` or `full` stall shares and the total stall time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PsiLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total_us: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Psi {
    pub some: PsiLine,
    pub full: Option<PsiLine>,
}

pub fn parse_psi(text: &str) -> Result<Psi, String> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let kind = it.next();
        let mut l = PsiLine::default();
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match k {
                "avg10" => l.avg10 = v.parse().map_err(|_| format!("bad avg10 `{v}`"))?,
                "avg60" => l.avg60 = v.parse().map_err(|_| format!("bad avg60 `{v}`"))?,
                "avg300" => l.avg300 = v.parse().map_err(|_| format!("bad avg300 `{v}`"))?,
                "total" => l.total_us = v.parse().map_err(|_| format!("bad total `{v}`"))?,
                _ => {}
            }
        }
        match kind {
            Some("some") => some = Some(l),
            Some("full") => full = Some(l),
            _ => {}
        }
    }
    Ok(Psi {
        some: some.ok_or("no `some` line")?,
        full,
    })
}

/// Memory figures from /proc/meminfo, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Mem {
    pub total: u64,
    pub free: u64,
    pub available: Option<u64>,
    pub buffers: u64,
    pub cached: u64,
    pub sreclaimable: Option<u64>,
    pub sunreclaim: Option<u64>,
    pub shmem: Option<u64>,
    pub swap_total: u64,
    pub swap_free: u64,
    pub dirty: u64,
    pub committed_as: Option<u64>,
    pub commit_limit: Option<u64>,
}

fn mem_from(m: &Meminfo) -> Mem {
    Mem {
        total: m.mem_total,
        free: m.mem_free,
        available: m.mem_available,
        buffers: m.buffers,
        cached: m.cached,
        sreclaimable: m.s_reclaimable,
        sunreclaim: m.s_unreclaim,
        shmem: m.shmem,
        swap_total: m.swap_total,
        swap_free: m.swap_free,
        dirty: m.dirty,
        committed_as: Some(m.committed_as),
        commit_limit: m.commit_limit,
    }
}

/// Kernel limits that the rules compare usage against (read at the end of the window only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// `/proc/sys/fs/file-nr`: allocated, unused (always 0 since 2.6), max.
    pub file_nr: Option<(u64, u64)>,
    pub pid_max: Option<u64>,
    pub threads_max: Option<u64>,
    pub conntrack_count: Option<u64>,
    pub conntrack_max: Option<u64>,
    pub ip_local_port_range: Option<(u32, u32)>,
    pub tcp_tw_reuse: Option<u32>,
    pub swappiness: Option<u32>,
}

/// The system-wide readings of one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemReading {
    pub stat: Option<ProcStat>,
    pub load: Option<Load>,
    pub uptime_s: Option<f64>,
    pub mem: Option<Mem>,
    /// All of /proc/vmstat (counters and gauges by name).
    pub vmstat: BTreeMap<String, u64>,
    /// `cpu`, `memory`, `io` -> pressure.
    pub psi: BTreeMap<String, Psi>,
}

pub fn read_system(src: &dyn Source, problems: &mut Vec<Problem>) -> SystemReading {
    let mut r = SystemReading::default();
    match src.read_string("proc/stat") {
        Ok(t) => match parse_stat(&t) {
            Ok(s) => r.stat = Some(s),
            Err(e) => problems.push(Problem::new("CPU and task counters", "proc/stat", e)),
        },
        Err(e) => problems.push(Problem::io("CPU and task counters", "proc/stat", &e)),
    }
    match src.read("proc/loadavg") {
        Ok(b) => match LoadAverage::from_read(&b[..]) {
            Ok(l) => {
                r.load = Some(Load {
                    one: l.one as f64,
                    five: l.five as f64,
                    fifteen: l.fifteen as f64,
                    runnable: l.cur,
                    threads: l.max,
                })
            }
            Err(e) => problems.push(Problem::parse("load averages", "proc/loadavg", &e)),
        },
        Err(e) => problems.push(Problem::io("load averages", "proc/loadavg", &e)),
    }
    if let Ok(t) = src.read_string("proc/uptime") {
        r.uptime_s = t
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse().ok());
    }
    match src.read("proc/meminfo") {
        // procfs-core multiplies kB by 1024 unchecked: refuse what would overflow.
        Ok(b) if meminfo_out_of_range(&b) => problems.push(Problem::new(
            "memory",
            "proc/meminfo",
            "a value is out of range (more than 2^54 kB)",
        )),
        // procfs-core also slices each key one byte short of its end, which panics on a key
        // ending in a multi-byte character: the kernel writes ASCII, so only ASCII lines go in.
        Ok(b) => match Meminfo::from_read(&ascii_lines(&b)[..]) {
            Ok(m) => r.mem = Some(mem_from(&m)),
            Err(e) => problems.push(Problem::parse("memory", "proc/meminfo", &e)),
        },
        Err(e) => problems.push(Problem::io("memory", "proc/meminfo", &e)),
    }
    match src.read_string("proc/vmstat") {
        Ok(t) => {
            for line in t.lines() {
                if let Some((k, v)) = line.split_once(' ') {
                    if let Ok(v) = v.trim().parse::<u64>() {
                        r.vmstat.insert(k.to_string(), v);
                    }
                }
            }
            if r.vmstat.is_empty() {
                problems.push(Problem::new(
                    "paging and swap counters",
                    "proc/vmstat",
                    "no counters in file",
                ));
            }
        }
        Err(e) => problems.push(Problem::io("paging and swap counters", "proc/vmstat", &e)),
    }
    for res in ["cpu", "memory", "io"] {
        let path = format!("proc/pressure/{res}");
        match src.read_string(&path) {
            Ok(t) => match parse_psi(&t) {
                Ok(p) => {
                    r.psi.insert(res.to_string(), p);
                }
                Err(e) => problems.push(Problem::new(format!("{res} pressure (PSI)"), path, e)),
            },
            Err(e) => {
                let mut p = Problem::io(format!("{res} pressure (PSI)"), &path, &e);
                // Only a missing file on a readable /proc means the kernel lacks PSI; an
                // unreadable /proc (a wrong --root) or a permission error has another fix.
                if e.kind() == std::io::ErrorKind::NotFound && r.stat.is_some() {
                    p = p.with_fix(
                        "boot a kernel with CONFIG_PSI=y (and psi=1 if CONFIG_PSI_DEFAULT_DISABLED)",
                    );
                }
                problems.push(p)
            }
        }
    }
    r
}

fn read_u64(src: &dyn Source, rel: &str) -> Option<u64> {
    src.read_string(rel)
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn read_limits(src: &dyn Source) -> Limits {
    let mut l = Limits::default();
    if let Ok(t) = src.read_string("proc/sys/fs/file-nr") {
        let v: Vec<u64> = t
            .split_ascii_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() == 3 {
            l.file_nr = Some((v[0], v[2]));
        }
    }
    l.pid_max = read_u64(src, "proc/sys/kernel/pid_max");
    l.threads_max = read_u64(src, "proc/sys/kernel/threads-max");
    l.conntrack_count = read_u64(src, "proc/sys/net/netfilter/nf_conntrack_count");
    l.conntrack_max = read_u64(src, "proc/sys/net/netfilter/nf_conntrack_max");
    if let Ok(t) = src.read_string("proc/sys/net/ipv4/ip_local_port_range") {
        let v: Vec<u32> = t
            .split_ascii_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() == 2 {
            l.ip_local_port_range = Some((v[0], v[1]));
        }
    }
    l.tcp_tw_reuse = read_u64(src, "proc/sys/net/ipv4/tcp_tw_reuse").map(|v| v as u32);
    l.swappiness = read_u64(src, "proc/sys/vm/swappiness").map(|v| v as u32);
    l
}

/// A `/proc/meminfo` line whose kB value times 1024 overflows u64.
/// The lines of `b` that are ASCII (with their newlines).
fn ascii_lines(b: &[u8]) -> Vec<u8> {
    b.split_inclusive(|c| *c == b'\n')
        .filter(|l| l.is_ascii())
        .flatten()
        .copied()
        .collect()
}

fn meminfo_out_of_range(b: &[u8]) -> bool {
    String::from_utf8_lossy(b).lines().any(|l| {
        l.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|v| v > u64::MAX / 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 5 50 1000 20 1 2 3 0 0\n\
cpu0 60 5 30 400 10 1 1 3 0 0\n\
cpu2 40 0 20 600 10 0 1 0 0 0\n\
intr 12345 0 1 2\nctxt 999\nbtime 1700000000\nprocesses 4242\nprocs_running 3\nprocs_blocked 1\n\
softirq 1 2 3\n";

    #[test]
    fn stat_keeps_cpu_ids_and_totals() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(s.total.user, 100);
        assert_eq!(s.total.total(), 100 + 5 + 50 + 1000 + 20 + 1 + 2 + 3);
        assert_eq!(s.cpus.iter().map(|c| c.0).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(s.cpus[1].1.idle, 600);
        assert_eq!(
            (s.intr, s.ctxt, s.forks),
            (Some(12345), Some(999), Some(4242))
        );
        assert_eq!((s.procs_running, s.procs_blocked), (Some(3), Some(1)));
    }

    #[test]
    fn stat_from_old_kernel_without_steal() {
        let s = parse_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!(s.total.steal, 0);
        assert_eq!(s.cpus.len(), 1);
    }

    #[test]
    fn stat_garbled_is_an_error_not_a_panic() {
        assert!(parse_stat("cpu x y\n").is_err());
        assert!(parse_stat("").is_err());
        assert!(parse_stat("\u{0}\u{1}garbage").is_err());
    }

    #[test]
    fn psi_some_and_full() {
        let p = parse_psi(
            "some avg10=1.10 avg60=2.20 avg300=0.76 total=2837384\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n",
        )
        .unwrap();
        assert_eq!(p.some.avg10, 1.10);
        assert_eq!(p.some.total_us, 2837384);
        assert_eq!(p.full.unwrap().total_us, 7);
        assert!(parse_psi("full avg10=0 avg60=0 avg300=0 total=1\n").is_err());
    }
}
