//! Per-process readings: /proc/PID/stat at both ends of the window (kept open in between, so the
//! second read is a cheap `pread` and a reused PID can never be mistaken for the old process),
//! plus end-of-window facts for the few processes the rules look at (open fds, fd limit,
//! network namespace).
//!
//! A process that vanishes mid-scan is skipped: that is normal, not an error.

use std::collections::BTreeMap;

use super::Problem;
use crate::host::Source;

/// Kernel threads carry PF_KTHREAD in the stat flags.
const PF_KTHREAD: u32 = 0x0020_0000;

#[derive(Debug, Clone, PartialEq)]
pub struct ProcSample {
    pub pid: i32,
    pub ppid: i32,
    pub comm: String,
    pub state: char,
    pub utime: u64,
    pub stime: u64,
    /// CPU of the children it reaped (waited for), cumulative; in clock ticks.
    pub cutime: u64,
    pub cstime: u64,
    pub minflt: u64,
    pub majflt: u64,
    pub num_threads: i64,
    pub starttime: u64,
    pub rss_pages: u64,
    pub kernel_thread: bool,
    /// The CPU it last ran on (field 39), when the line is that long.
    pub processor: Option<u32>,
}

impl ProcSample {
    /// Parse /proc/PID/stat. This runs for every process twice per report, so it reads only
    /// the fields used, without allocating beyond the name. The name may contain spaces and
    /// parentheses: it ends at the LAST `)`.
    pub fn parse(text: &[u8]) -> Option<Self> {
        let open = text.iter().position(|&b| b == b'(')?;
        let close = text.iter().rposition(|&b| b == b')')?;
        if close < open {
            return None;
        }
        let pid = std::str::from_utf8(&text[..open])
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let comm = String::from_utf8_lossy(&text[open + 1..close]).into_owned();
        let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
        // rest[i] is field i + 3 of proc(5).
        let mut f = rest.split_ascii_whitespace();
        let state = f.next()?.chars().next()?;
        let mut num = [0u64; 21];
        for slot in num.iter_mut() {
            *slot = f.next()?.parse::<i64>().ok()? as u64;
        }
        let at = |field: usize| num[field - 4];
        // Field 25 is next; `processor` is field 39.
        let processor = f.nth(39 - 25).and_then(|x| x.parse().ok());
        Some(ProcSample {
            pid,
            ppid: at(4) as i32,
            comm,
            state,
            utime: at(14),
            stime: at(15),
            cutime: at(16),
            cstime: at(17),
            minflt: at(10),
            majflt: at(12),
            num_threads: at(20) as i64,
            starttime: at(22),
            rss_pages: at(24),
            kernel_thread: (at(9) as u32) & PF_KTHREAD != 0,
            processor,
        })
    }
}

impl ProcSample {
    #[cfg(test)]
    fn from_stat(s: &procfs_core::process::Stat) -> Self {
        ProcSample {
            pid: s.pid,
            ppid: s.ppid,
            comm: s.comm.clone(),
            state: s.state,
            utime: s.utime,
            stime: s.stime,
            cutime: s.cutime as u64,
            cstime: s.cstime as u64,
            minflt: s.minflt,
            majflt: s.majflt,
            num_threads: s.num_threads,
            starttime: s.starttime,
            rss_pages: s.rss,
            kernel_thread: s.flags & PF_KTHREAD != 0,
            processor: s.processor.map(|p| p as u32),
        }
    }
}

/// Every process at one moment, by PID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcScan {
    pub procs: BTreeMap<i32, ProcSample>,
    /// Entries whose stat could not be parsed (garbled, not vanished).
    pub garbled: usize,
    /// Set when the scan came from a task dump (the BPF task iterator, live or recorded):
    /// what it told beyond `stat`, so the per-process files need not be opened.
    pub dump: Option<super::taskdump::DumpExtras>,
}

fn pids(src: &dyn Source) -> std::io::Result<Vec<i32>> {
    let mut v: Vec<i32> = src
        .list("proc")?
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

pub fn scan(src: &dyn Source, problems: &mut Vec<Problem>) -> ProcScan {
    scan_with(src, problems, None, None)
}

/// [`scan`], knowing the system's thread count of this moment (`/proc/loadavg`) and the scan
/// before it: with a task dump, /proc is listed (for processes the iterator did not show) only
/// when the dump's tasks and the processes the previous scan had to read from /proc do not
/// account for every thread.
pub fn scan_with(
    src: &dyn Source,
    problems: &mut Vec<Problem>,
    threads_total: Option<u32>,
    before: Option<&ProcScan>,
) -> ProcScan {
    if let Some(s) = scan_dump(src, problems, threads_total, before) {
        return s;
    }
    let mut out = ProcScan::default();
    let list = match pids(src) {
        Ok(l) => l,
        Err(e) => {
            problems.push(Problem::io("processes", "proc", &e));
            return out;
        }
    };
    for pid in list {
        let path = format!("proc/{pid}/stat");
        // ENOENT/ESRCH: the process exited between the listing and the read.
        let Ok(bytes) = src.read_kept(&path) else {
            continue;
        };
        match ProcSample::parse(&bytes) {
            Some(s) => {
                out.procs.insert(pid, s);
            }
            None => out.garbled += 1,
        }
    }
    if out.garbled > 0 {
        problems.push(Problem::new(
            "some processes",
            "proc/PID/stat",
            format!("{} unparseable stat file(s) skipped", out.garbled),
        ));
    }
    out
}

/// The scan from the source's task dump (`tasks.bin`), when it has one. A dump that cannot be
/// decoded is a problem, and the scan reads /proc instead.
fn scan_dump(
    src: &dyn Source,
    problems: &mut Vec<Problem>,
    threads_total: Option<u32>,
    before: Option<&ProcScan>,
) -> Option<ProcScan> {
    let what = "process scan through the BPF task iterator";
    let path = crate::host::source::TASK_DUMP_FILE;
    let bytes = match src.task_dump() {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => return None,
        Err(e) => {
            let mut p = Problem::io(what, path, &e);
            p.reason.push_str("; processes read from /proc instead");
            problems.push(p);
            return None;
        }
    };
    match super::taskdump::TaskDump::decode(&bytes) {
        Ok(d) => {
            let (mut procs, mut extras) = super::taskdump::to_samples(&d);
            // A process /proc lists that the iterator did not show (some sandboxes hide their
            // supervisor from BPF) is read from /proc, so the scan misses nothing /proc has.
            // Listing /proc costs as much as the dump itself with thousands of processes, so it
            // is skipped when the thread count says nothing else is missing.
            let known: Vec<i32> = before
                .and_then(|b| b.dump.as_ref())
                .map(|x| x.from_proc.clone())
                .unwrap_or_default();
            let known_threads: u64 = known
                .iter()
                .filter_map(|p| before?.procs.get(p))
                .map(|p| p.num_threads.max(0) as u64)
                .sum();
            let candidates = match threads_total {
                Some(n) if u64::from(n) == (d.tasks.len() as u64).saturating_add(known_threads) => {
                    known
                }
                _ => pids(src).unwrap_or_default(),
            };
            let mut garbled = 0;
            for pid in candidates {
                if procs.contains_key(&pid) {
                    continue;
                }
                let Ok(bytes) = src.read_kept(&format!("proc/{pid}/stat")) else {
                    continue;
                };
                match ProcSample::parse(&bytes) {
                    Some(s) => {
                        extras.from_proc.push(pid);
                        procs.insert(pid, s);
                    }
                    None => garbled += 1,
                }
            }
            if garbled > 0 {
                problems.push(Problem::new(
                    "some processes",
                    "proc/PID/stat",
                    format!("{garbled} unparseable stat file(s) skipped"),
                ));
            }
            Some(ProcScan {
                procs,
                garbled,
                dump: Some(extras),
            })
        }
        Err(why) => {
            problems.push(Problem::new(
                what,
                path,
                format!("{why}; processes read from /proc instead"),
            ));
            None
        }
    }
}

/// Open fd count and the soft RLIMIT_NOFILE of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FdUse {
    pub open: u64,
    pub soft_limit: Option<u64>,
}

/// How many of the processes with the most open fds get their limits read.
pub const FD_LIMIT_CANDIDATES: usize = 20;

/// Open-fd counts (the size of /proc/PID/fd, Linux >= 6.2) of user processes, and the fd limit
/// of the ones with the most open: a process near its limit is one of those. Returns fd use by
/// pid and the processes that could not be inspected (permissions).
pub fn fd_use(src: &dyn Source, scan: &ProcScan) -> (BTreeMap<i32, FdUse>, Vec<i32>) {
    let mut counts: Vec<(i32, u64)> = Vec::new();
    let mut denied = Vec::new();
    for p in scan
        .procs
        .values()
        .filter(|p| !p.kernel_thread && p.state != 'Z')
    {
        if let Some(n) = scan.dump.as_ref().and_then(|d| d.fds.get(&p.pid)) {
            counts.push((p.pid, *n));
            continue;
        }
        match src.stat_size(&format!("proc/{}/fd", p.pid)) {
            Ok(n) => counts.push((p.pid, n)),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => denied.push(p.pid),
            Err(_) => {}
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out = BTreeMap::new();
    for (i, (pid, open)) in counts.into_iter().enumerate() {
        let soft_limit = if i < FD_LIMIT_CANDIDATES {
            src.read_string(&format!("proc/{pid}/limits"))
                .ok()
                .and_then(|t| max_open_files_soft(&t))
        } else {
            None
        };
        out.insert(pid, FdUse { open, soft_limit });
    }
    (out, denied)
}

/// The soft `Max open files` limit of a `/proc/PID/limits` text: `Some(None)` when unlimited,
/// `None` when the line is missing or garbled. (Not procfs-core's `Limits`: its parser
/// underflows on a truncated line, a panic with overflow checks.)
pub fn max_open_files_soft(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    soft.parse().ok()
}

/// Network namespaces seen among processes: inode -> member pids (sorted), and the processes
/// whose namespace could not be read (permissions).
pub fn net_namespaces(src: &dyn Source, scan: &ProcScan) -> (BTreeMap<u64, Vec<i32>>, Vec<i32>) {
    let mut out: BTreeMap<u64, Vec<i32>> = BTreeMap::new();
    let mut denied = Vec::new();
    for p in scan
        .procs
        .values()
        .filter(|p| !p.kernel_thread && p.state != 'Z')
    {
        if let Some(ino) = scan.dump.as_ref().and_then(|d| d.netns.get(&p.pid)) {
            out.entry(*ino).or_default().push(p.pid);
            continue;
        }
        match src.readlink(&format!("proc/{}/ns/net", p.pid)) {
            Ok(t) => {
                if let Some(ino) = ns_inode(&t) {
                    out.entry(ino).or_default().push(p.pid);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => denied.push(p.pid),
            Err(_) => {}
        }
    }
    (out, denied)
}

/// `net:[4026531840]` -> 4026531840.
pub fn ns_inode(link: &str) -> Option<u64> {
    link.split_once('[')?.1.strip_suffix(']')?.parse().ok()
}

/// Threads in uninterruptible sleep (D), as (pid, tid, comm, wchan).
pub fn d_state_threads(
    src: &dyn Source,
    scan: &ProcScan,
    limit: usize,
) -> Vec<(i32, i32, String, Option<String>)> {
    let mut out = Vec::new();
    for p in scan.procs.values() {
        if out.len() >= limit {
            break;
        }
        let tids: Vec<i32> = if p.num_threads > 1 {
            match src.list(&format!("proc/{}/task", p.pid)) {
                Ok(l) => {
                    let mut v: Vec<i32> = l.iter().filter_map(|t| t.parse().ok()).collect();
                    v.sort_unstable();
                    v
                }
                Err(_) => continue,
            }
        } else if p.state == 'D' {
            vec![p.pid]
        } else {
            continue;
        };
        for tid in tids {
            let st = if tid == p.pid && p.num_threads <= 1 {
                Some((p.state, p.comm.clone()))
            } else {
                // Our own parser: procfs-core's panics on some invalid UTF-8 names (fuzzing).
                src.read(&format!("proc/{}/task/{tid}/stat", p.pid))
                    .ok()
                    .and_then(|b| ProcSample::parse(&b))
                    .map(|s| (s.state, s.comm))
            };
            if let Some(('D', comm)) = st {
                let wchan = src
                    .read_string(&format!("proc/{}/task/{tid}/wchan", p.pid))
                    .ok()
                    .map(|w| w.trim().to_string())
                    .filter(|w| !w.is_empty() && w != "0");
                out.push((p.pid, tid, comm, wchan));
                if out.len() >= limit {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs_core::process::Stat;
    use procfs_core::FromRead;

    #[test]
    fn stat_parse_agrees_with_procfs() {
        let line = b"812 (my (odd) name) R 1 812 812 0 -1 4194560 1500 0 7 0 950 30 0 0 20 0 3 0 123456 1000000 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let fast = ProcSample::parse(line).unwrap();
        let slow = ProcSample::from_stat(&Stat::from_read(&line[..]).unwrap());
        assert_eq!(fast, slow);
        assert_eq!(fast.comm, "my (odd) name");
        assert_eq!((fast.utime, fast.stime, fast.majflt), (950, 30, 7));
        assert_eq!(
            (fast.num_threads, fast.starttime, fast.rss_pages),
            (3, 123456, 2560)
        );
        assert!(!fast.kernel_thread);
    }

    #[test]
    fn stat_parse_rejects_garbage() {
        assert!(ProcSample::parse(b"").is_none());
        assert!(ProcSample::parse(b"12 (x) S 1 2").is_none());
        assert!(ProcSample::parse(b"12 )x( S").is_none());
        assert!(ProcSample::parse(b"\xff\xfe (x) S").is_none());
    }

    #[test]
    fn a_dump_is_completed_from_proc_listing_only_when_threads_are_missing() {
        use crate::collect::taskdump::{tests::dump, TaskRec};
        use crate::host::memsource::{MemSource, Node};
        let rec = TaskRec {
            tgid: 10,
            pid: 10,
            ppid: 1,
            nr_threads: 1,
            comm: "seen".into(),
            ..Default::default()
        };
        let mut m = MemSource::default();
        m.nodes.insert("tasks.bin".into(), Node::File(dump(&[rec])));
        m.nodes.insert("proc".into(), Node::Dir);
        let hide = |m: &mut MemSource, pid: i32| {
            m.nodes.insert(format!("proc/{pid}"), Node::Dir);
            let stat = format!("{pid} (hidden) S 0 0 0 0 -1 4194560 5 0 0 0 7 3 0 0 20 0 1 0 50 1000 9 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0");
            m.nodes
                .insert(format!("proc/{pid}/stat"), Node::File(stat.into_bytes()));
        };
        hide(&mut m, 20);
        let mut problems = Vec::new();
        // t0: one thread more than the dump holds: /proc is listed and pid 20 read from it.
        let t0 = scan_with(&m, &mut problems, Some(2), None);
        assert_eq!(t0.procs.keys().copied().collect::<Vec<_>>(), [10, 20]);
        assert_eq!(t0.dump.as_ref().unwrap().from_proc, [20]);
        assert_eq!(
            (t0.procs[&20].utime, t0.procs[&20].comm.as_str()),
            (7, "hidden")
        );
        // t1: the count is accounted for by the dump and pid 20: no listing (pid 30 unseen).
        hide(&mut m, 30);
        let t1 = scan_with(&m, &mut problems, Some(2), Some(&t0));
        assert_eq!(t1.procs.keys().copied().collect::<Vec<_>>(), [10, 20]);
        // A thread count the known ones do not explain: listed again, pid 30 found.
        let t1 = scan_with(&m, &mut problems, Some(3), Some(&t0));
        assert_eq!(t1.procs.keys().copied().collect::<Vec<_>>(), [10, 20, 30]);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn ns_inode_parses_link() {
        assert_eq!(ns_inode("net:[4026531840]"), Some(4026531840));
        assert_eq!(ns_inode("net:4026531840"), None);
    }
}
