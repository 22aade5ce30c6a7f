//! The kernel log (`/dev/kmsg`): parse its records and pick out the ones that explain a slow or
//! failing box (OOM kills, I/O and filesystem errors, hung tasks, full tables, lockups, ...).
//!
//! Invariants:
//! - Parsing never fails as a whole: a line that is not a record is skipped and counted.
//!   Continuation lines (` SUBSYSTEM=block`, the record's dictionary) belong to the record before
//!   them and are dropped without being counted as garbled.
//! - Message text is kept exactly as the kernel wrote it, including its `\xNN` escapes.
//! - Classification is plain substring matching on known kernel message shapes; details (pid,
//!   command, device, anon-rss) are filled in only when they parse, never guessed.

use serde::{Deserialize, Serialize};

/// One kernel log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsgRecord {
    /// Syslog level, 0 (emerg) to 7 (debug).
    pub priority: u8,
    /// Syslog facility; 0 is the kernel itself, others were written by user space.
    pub facility: u8,
    pub seq: u64,
    /// Monotonic microseconds since boot.
    pub ts_us: u64,
    pub message: String,
}

/// Parse the bytes returned by `Source::kmsg()`: records `PRI,SEQ,TS_US,FLAGS[,...];MESSAGE`, one
/// per line, each possibly followed by continuation lines that start with a space.
///
/// Returns the records in log order and the number of garbled lines skipped.
pub fn parse(bytes: &[u8]) -> (Vec<KmsgRecord>, usize) {
    let mut records = Vec::new();
    let mut garbled = 0;
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() || line.first() == Some(&b' ') {
            continue;
        }
        match parse_record(line) {
            Some(r) => records.push(r),
            None => garbled += 1,
        }
    }
    (records, garbled)
}

fn parse_record(line: &[u8]) -> Option<KmsgRecord> {
    let semi = line.iter().position(|b| *b == b';')?;
    let header = std::str::from_utf8(line.get(..semi)?).ok()?;
    let message = line.get(semi + 1..).unwrap_or_default();
    let mut fields = header.split(',');
    let pri: u32 = fields.next()?.trim().parse().ok()?;
    let seq: u64 = fields.next()?.trim().parse().ok()?;
    let ts_us: u64 = fields.next()?.trim().parse().ok()?;
    Some(KmsgRecord {
        priority: (pri & 7) as u8,
        facility: u8::try_from(pri >> 3).ok()?,
        seq,
        ts_us,
        message: String::from_utf8_lossy(message)
            .trim_end_matches('\r')
            .to_string(),
    })
}

/// What kind of trouble a kernel message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KmsgClass {
    OomKill,
    CgroupOom,
    IoError,
    FsError,
    HungTask,
    ConntrackFull,
    SynFlood,
    FileMaxReached,
    TcpMemory,
    Segfault,
    SoftLockup,
    RcuStall,
    HardwareError,
    NfsNotResponding,
    /// A kernel message at level crit or worse that matches none of the above.
    Other,
}

impl KmsgClass {
    /// Every class, for the finding catalogue (`kernel_log.errors.<id>`).
    pub const ALL: [KmsgClass; 15] = [
        KmsgClass::OomKill,
        KmsgClass::CgroupOom,
        KmsgClass::IoError,
        KmsgClass::FsError,
        KmsgClass::HungTask,
        KmsgClass::ConntrackFull,
        KmsgClass::SynFlood,
        KmsgClass::FileMaxReached,
        KmsgClass::TcpMemory,
        KmsgClass::Segfault,
        KmsgClass::SoftLockup,
        KmsgClass::RcuStall,
        KmsgClass::HardwareError,
        KmsgClass::NfsNotResponding,
        KmsgClass::Other,
    ];

    /// The stable id of the class, as in JSON (`oom_kill`, `io_error`): a finding's
    /// `subject.class` and the tail of its id.
    pub fn id(&self) -> &'static str {
        match self {
            KmsgClass::OomKill => "oom_kill",
            KmsgClass::CgroupOom => "cgroup_oom",
            KmsgClass::IoError => "io_error",
            KmsgClass::FsError => "fs_error",
            KmsgClass::HungTask => "hung_task",
            KmsgClass::ConntrackFull => "conntrack_full",
            KmsgClass::SynFlood => "syn_flood",
            KmsgClass::FileMaxReached => "file_max_reached",
            KmsgClass::TcpMemory => "tcp_memory",
            KmsgClass::Segfault => "segfault",
            KmsgClass::SoftLockup => "soft_lockup",
            KmsgClass::RcuStall => "rcu_stall",
            KmsgClass::HardwareError => "hardware_error",
            KmsgClass::NfsNotResponding => "nfs_not_responding",
            KmsgClass::Other => "other",
        }
    }

    /// Short human words for the class.
    pub fn label(&self) -> &'static str {
        match self {
            KmsgClass::OomKill => "OOM kill",
            KmsgClass::CgroupOom => "cgroup OOM kill",
            KmsgClass::IoError => "I/O error",
            KmsgClass::FsError => "filesystem error",
            KmsgClass::HungTask => "hung task",
            KmsgClass::ConntrackFull => "conntrack table full",
            KmsgClass::SynFlood => "SYN flood",
            KmsgClass::FileMaxReached => "file-max reached",
            KmsgClass::TcpMemory => "TCP memory exhausted",
            KmsgClass::Segfault => "segfault",
            KmsgClass::SoftLockup => "CPU lockup",
            KmsgClass::RcuStall => "RCU stall",
            KmsgClass::HardwareError => "hardware error",
            KmsgClass::NfsNotResponding => "NFS server not responding",
            KmsgClass::Other => "kernel error",
        }
    }
}

/// A kernel log record worth reporting, with what could be parsed out of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsgEvent {
    pub class: KmsgClass,
    pub ts_us: u64,
    pub priority: u8,
    pub message: String,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// Block device, filesystem device, or NFS server name.
    pub device: Option<String>,
    /// Anonymous memory of an OOM-killed process.
    pub anon_rss_kb: Option<u64>,
}

/// How far ahead an `oom-kill:` summary looks for its `Killed process` line (they are printed
/// back to back; a few records of slack for interleaved messages from other CPUs).
const OOM_LOOKAHEAD: usize = 16;

/// Pick out the records worth reporting with `ts_us >= since_us`, in log order.
///
/// One OOM kill prints both an `oom-kill:constraint=...` summary and a `Killed process` line;
/// the summary becomes an event only when its `Killed process` line is missing, so each kill is
/// counted once.
pub fn classify(records: &[KmsgRecord], since_us: u64) -> Vec<KmsgEvent> {
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if r.ts_us < since_us {
            continue;
        }
        let prev = i.checked_sub(1).and_then(|j| records.get(j));
        let Some(mut ev) = classify_one(r, prev) else {
            continue;
        };
        if r.message.starts_with("oom-kill:") {
            if let Some(pid) = ev.pid {
                let followed = records
                    .iter()
                    .skip(i + 1)
                    .take(OOM_LOOKAHEAD)
                    .any(|n| killed_process(&n.message).is_some_and(|(p, _, _)| p == pid));
                if followed {
                    continue;
                }
            }
        }
        ev.ts_us = r.ts_us;
        out.push(ev);
    }
    out
}

/// Classify one record; `prev` is the record before it (old kernels split an OOM report in two).
fn classify_one(r: &KmsgRecord, prev: Option<&KmsgRecord>) -> Option<KmsgEvent> {
    let m = r.message.as_str();
    let mut ev = KmsgEvent {
        class: KmsgClass::Other,
        ts_us: r.ts_us,
        priority: r.priority,
        message: r.message.clone(),
        pid: None,
        comm: None,
        device: None,
        anon_rss_kb: None,
    };

    if let Some((pid, comm, anon)) = killed_process(m) {
        let memcg = m.contains("Memory cgroup out of memory")
            || (!m.contains("out of memory")
                && !m.contains("Out of memory")
                && prev.is_some_and(|p| p.message.contains("Memory cgroup out of memory")));
        ev.class = if memcg {
            KmsgClass::CgroupOom
        } else {
            KmsgClass::OomKill
        };
        ev.pid = Some(pid);
        ev.comm = comm;
        ev.anon_rss_kb = anon;
    } else if let Some(rest) = m.strip_prefix("oom-kill:") {
        ev.class = KmsgClass::OomKill;
        for kv in rest.split(',') {
            match kv.split_once('=') {
                Some(("task", v)) => ev.comm = Some(v.to_string()),
                Some(("pid", v)) => ev.pid = v.trim().parse().ok(),
                _ => {}
            }
        }
    } else if m.contains("I/O error, dev ")
        || m.contains("I/O error on dev ")
        // The block layer's other request errors: `critical space allocation error, dev
        // loop0, sector ...`, `critical medium error`, `timeout error`, `critical target error`.
        || (m.contains(" error, dev ") && m.contains(", sector "))
    {
        ev.class = KmsgClass::IoError;
        ev.device = word_after(m, "dev ");
    } else if let Some(dev) = fs_error_device(m) {
        ev.class = KmsgClass::FsError;
        ev.device = dev;
    } else if let Some(task) = between(m, "INFO: task ", " blocked for more than") {
        ev.class = KmsgClass::HungTask;
        (ev.comm, ev.pid) = comm_colon_pid(task);
    } else if m.contains("conntrack: table full") {
        ev.class = KmsgClass::ConntrackFull;
    } else if m.contains("Possible SYN flooding on port") {
        ev.class = KmsgClass::SynFlood;
    } else if m.contains("VFS: file-max limit") && m.contains("reached") {
        ev.class = KmsgClass::FileMaxReached;
    } else if m.contains("out of memory -- consider tuning tcp_mem")
        || m.contains("too many orphaned sockets")
        || m.contains("too many of orphaned sockets")
    {
        ev.class = KmsgClass::TcpMemory;
    } else if let Some(who) = segfault_task(m) {
        ev.class = KmsgClass::Segfault;
        (ev.comm, ev.pid) = comm_bracket_pid(who);
    } else if m.contains("BUG: soft lockup") || m.contains("hard LOCKUP") {
        ev.class = KmsgClass::SoftLockup;
        if let (Some(open), Some(close)) = (m.rfind('['), m.rfind(']')) {
            if let Some(inner) = m.get(open + 1..close) {
                (ev.comm, ev.pid) = comm_colon_pid(inner);
            }
        }
    } else if (m.starts_with("rcu: INFO:") || m.starts_with("INFO: rcu_")) && m.contains("stall") {
        ev.class = KmsgClass::RcuStall;
    } else if m.contains("[Hardware Error]")
        || m.contains("Machine check events logged")
        || (m.starts_with("EDAC ") && m.contains(" error"))
    {
        ev.class = KmsgClass::HardwareError;
    } else if let Some(server) = between(m, "nfs: server ", " not responding") {
        ev.class = KmsgClass::NfsNotResponding;
        ev.device = Some(server.to_string());
    } else if r.facility == 0 && r.priority <= 2 {
        ev.class = KmsgClass::Other;
    } else {
        return None;
    }
    Some(ev)
}

/// `... Killed process 12345 (myapp) total-vm:..kB, anon-rss:1234kB, ...` ->
/// (pid, comm, anon-rss kB).
fn killed_process(m: &str) -> Option<(u32, Option<String>, Option<u64>)> {
    let at = m.find("Killed process ")?;
    let rest = m.get(at + "Killed process ".len()..)?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let pid: u32 = rest.get(..digits)?.parse().ok()?;
    let after = rest.get(digits..).unwrap_or_default();
    // The command may itself contain `)`: it ends at the `)` before ` total-vm:` when present.
    let comm = after.strip_prefix(" (").and_then(|c| {
        let end = match c.find(") total-vm:") {
            Some(e) => e,
            None => c.rfind(')')?,
        };
        c.get(..end).map(str::to_string)
    });
    let anon = m
        .find("anon-rss:")
        .and_then(|i| m.get(i + "anon-rss:".len()..))
        .and_then(|s| {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            s.get(..end)?.parse().ok()
        });
    Some((pid, comm, anon))
}

/// The word after `marker` (up to a comma, space or colon).
fn word_after(m: &str, marker: &str) -> Option<String> {
    let i = m.find(marker)?;
    let rest = m.get(i + marker.len()..)?;
    let end = rest.find([',', ' ', ':']).unwrap_or(rest.len());
    let w = rest.get(..end)?;
    (!w.is_empty()).then(|| w.to_string())
}

/// The text between the first `start` and the following `end`.
fn between<'a>(m: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = m.find(start)? + start.len();
    let rest = m.get(i..)?;
    rest.get(..rest.find(end)?)
}

/// Filesystem error messages: Some(device if known).
fn fs_error_device(m: &str) -> Option<Option<String>> {
    let paren = || between(m, "(", ")").map(|d| d.trim_start_matches("device ").to_string());
    let ext_error = [
        "EXT4-fs error",
        "EXT3-fs error",
        "EXT2-fs error",
        "BTRFS error",
        "BTRFS critical",
    ]
    .iter()
    .any(|p| m.starts_with(p));
    if ext_error || m.contains("Remounting filesystem read-only") {
        return Some(paren());
    }
    if m.starts_with("XFS (") {
        let lower = m.to_ascii_lowercase();
        if lower.contains("error") || lower.contains("corruption") || lower.contains("shut down") {
            return Some(paren());
        }
    }
    if let Some(dev) = between(m, "Aborting journal on device ", ".") {
        return Some(Some(dev.to_string()));
    }
    None
}

/// `myapp[1234]: segfault at ...` or `traps: myapp[1234] general protection fault ...` ->
/// `myapp[1234]`.
fn segfault_task(m: &str) -> Option<&str> {
    if let Some(i) = m.find(": segfault at ") {
        return m.get(..i);
    }
    if let Some(i) = m.find(" general protection fault") {
        let who = m.get(..i)?;
        return Some(who.strip_prefix("traps: ").unwrap_or(who));
    }
    None
}

/// `comm[pid]` -> (comm, pid).
fn comm_bracket_pid(s: &str) -> (Option<String>, Option<u32>) {
    let s = s.trim();
    let Some(open) = s.rfind('[') else {
        return (None, None);
    };
    let comm = s.get(..open).filter(|c| !c.is_empty()).map(str::to_string);
    let pid = s
        .get(open + 1..)
        .and_then(|p| p.strip_suffix(']'))
        .and_then(|p| p.parse().ok());
    (comm, pid)
}

/// `comm:pid` (the command may contain `:` itself) -> (comm, pid).
fn comm_colon_pid(s: &str) -> (Option<String>, Option<u32>) {
    match s.rsplit_once(':') {
        Some((c, p)) => (
            (!c.is_empty()).then(|| c.to_string()),
            p.trim().parse().ok(),
        ),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts_us: u64, message: &str) -> KmsgRecord {
        KmsgRecord {
            priority: 3,
            facility: 0,
            seq: ts_us,
            ts_us,
            message: message.to_string(),
        }
    }

    /// Classify one kernel message on its own.
    fn one(message: &str) -> KmsgEvent {
        let evs = classify(&[rec(1, message)], 0);
        assert_eq!(evs.len(), 1, "{message}: {evs:?}");
        evs.into_iter().next().expect("one event")
    }

    #[test]
    fn parse_records_continuations_and_garbage() {
        let raw = b"6,1,0,-;Linux version 6.18.44\n\
            3,2,1500000,-,caller=T1;sd 0:0:0:0: [sda] tag#0 FAILED \\x1b[31m\n \
            SUBSYSTEM=scsi\n \
            DEVICE=+scsi:0:0:0:0\n\
            no header here\n\
            x,3,4,-;bad priority\n\
            \n\
            12,4,2000000,-;user message\n\
            14,5,2500000,c;partial";
        let (recs, garbled) = parse(raw);
        assert_eq!(garbled, 2);
        assert_eq!(recs.len(), 4);
        assert_eq!(
            (
                recs[0].priority,
                recs[0].facility,
                recs[0].seq,
                recs[0].ts_us
            ),
            (6, 0, 1, 0)
        );
        assert_eq!(recs[0].message, "Linux version 6.18.44");
        assert_eq!((recs[1].priority, recs[1].ts_us), (3, 1_500_000));
        assert_eq!(
            recs[1].message, "sd 0:0:0:0: [sda] tag#0 FAILED \\x1b[31m",
            "escapes kept"
        );
        assert_eq!((recs[2].priority, recs[2].facility), (4, 1));
        assert_eq!(recs[3].message, "partial");
    }

    #[test]
    fn message_may_contain_semicolons_and_be_empty() {
        let (recs, garbled) = parse(b"4,9,10,-;a;b\n4,10,11,-;\n");
        assert_eq!(garbled, 0);
        assert_eq!(recs[0].message, "a;b");
        assert_eq!(recs[1].message, "");
    }

    #[test]
    fn oom_kill_global() {
        let e = one("Out of memory: Killed process 12345 (myapp) total-vm:1048576kB, anon-rss:524288kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1100kB oom_score_adj:0");
        assert_eq!(e.class, KmsgClass::OomKill);
        assert_eq!(e.pid, Some(12345));
        assert_eq!(e.comm.as_deref(), Some("myapp"));
        assert_eq!(e.anon_rss_kb, Some(524_288));
    }

    #[test]
    fn oom_kill_summary_line_alone() {
        let e = one("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/scn-oom,task_memcg=/scn-oom,task=myapp,pid=12345,uid=0");
        assert_eq!(e.class, KmsgClass::OomKill);
        assert_eq!(e.pid, Some(12345));
        assert_eq!(e.comm.as_deref(), Some("myapp"));
        assert_eq!(e.anon_rss_kb, None);
    }

    #[test]
    fn cgroup_oom_counts_each_kill_once() {
        let recs = [
            rec(10, "memtouch invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"),
            rec(11, "memory: usage 307200kB, limit 307200kB, failcnt 45"),
            rec(12, "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/scn-oom,task_memcg=/scn-oom,task=memtouch,pid=4321,uid=0"),
            rec(13, "Memory cgroup out of memory: Killed process 4321 (memtouch) total-vm:312000kB, anon-rss:307200kB, file-rss:1024kB, shmem-rss:0kB, UID:0 pgtables:660kB oom_score_adj:0"),
        ];
        let evs = classify(&recs, 0);
        assert_eq!(evs.len(), 1, "{evs:?}");
        let e = &evs[0];
        assert_eq!(e.class, KmsgClass::CgroupOom);
        assert_eq!(
            (e.pid, e.comm.as_deref(), e.anon_rss_kb),
            (Some(4321), Some("memtouch"), Some(307_200))
        );
        assert_eq!(e.ts_us, 13);
    }

    #[test]
    fn old_kernel_two_line_cgroup_oom() {
        let recs = [
            rec(1, "Memory cgroup out of memory: Kill process 777 (java) score 998 or sacrifice child"),
            rec(2, "Killed process 777 (java) total-vm:4000000kB, anon-rss:2000000kB, file-rss:0kB, shmem-rss:0kB"),
        ];
        let evs = classify(&recs, 0);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].class, KmsgClass::CgroupOom);
        assert_eq!(evs[0].anon_rss_kb, Some(2_000_000));
    }

    #[test]
    fn io_errors() {
        let e =
            one("I/O error, dev vda, sector 1234 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0");
        assert_eq!(
            (e.class, e.device.as_deref()),
            (KmsgClass::IoError, Some("vda"))
        );
        let e = one("blk_update_request: I/O error, dev sdb, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0");
        assert_eq!(
            (e.class, e.device.as_deref()),
            (KmsgClass::IoError, Some("sdb"))
        );
        let e = one("Buffer I/O error on dev sdb1, logical block 0, async page read");
        assert_eq!(
            (e.class, e.device.as_deref()),
            (KmsgClass::IoError, Some("sdb1"))
        );
    }

    #[test]
    fn fs_errors() {
        let e = one("EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0");
        assert_eq!(
            (e.class, e.device.as_deref()),
            (KmsgClass::FsError, Some("sda1"))
        );
        let e = one("XFS (sdb1): metadata I/O error in \"xfs_da_read_buf+0x58/0x120 [xfs]\" at daddr 0x78 len 8 error 117");
        assert_eq!(
            (e.class, e.device.as_deref()),
            (KmsgClass::FsError, Some("sdb1"))
        );
        let e = one("EXT4-fs (sda1): Remounting filesystem read-only");
        assert_eq!(
            (e.class, e.device.as_deref()),
            (KmsgClass::FsError, Some("sda1"))
        );
        let e = one("Aborting journal on device sda1-8.");
        assert_eq!(
            (e.class, e.device.as_deref()),
            (KmsgClass::FsError, Some("sda1-8"))
        );
        let e = one("critical space allocation error, dev loop0, sector 2048 op 0x1:(WRITE) flags 0xc800 phys_seg 128 prio class 2");
        assert_eq!(
            (e.class, e.device.as_deref()),
            (KmsgClass::IoError, Some("loop0"))
        );
        assert!(classify(&[rec(1, "XFS (sdb1): Ending clean mount")], 0).is_empty());
        assert!(classify(
            &[rec(
                1,
                "EXT4-fs (vda): mounted filesystem with ordered data mode."
            )],
            0
        )
        .is_empty());
    }

    #[test]
    fn hung_task() {
        let e = one("INFO: task jbd2/sda1-8:123 blocked for more than 120 seconds.");
        assert_eq!(e.class, KmsgClass::HungTask);
        assert_eq!((e.comm.as_deref(), e.pid), (Some("jbd2/sda1-8"), Some(123)));
    }

    #[test]
    fn conntrack_full() {
        assert_eq!(
            one("nf_conntrack: nf_conntrack: table full, dropping packet").class,
            KmsgClass::ConntrackFull
        );
        assert_eq!(
            one("nf_conntrack: table full, dropping packet").class,
            KmsgClass::ConntrackFull
        );
    }

    #[test]
    fn syn_flood() {
        let e = one("TCP: request_sock_TCP: Possible SYN flooding on port 0.0.0.0:8080. Sending cookies.  Check SNMP counters.");
        assert_eq!(e.class, KmsgClass::SynFlood);
    }

    #[test]
    fn file_max() {
        assert_eq!(
            one("VFS: file-max limit 1000 reached").class,
            KmsgClass::FileMaxReached
        );
    }

    #[test]
    fn tcp_memory() {
        assert_eq!(
            one("TCP: out of memory -- consider tuning tcp_mem").class,
            KmsgClass::TcpMemory
        );
        assert_eq!(
            one("TCP: too many orphaned sockets").class,
            KmsgClass::TcpMemory
        );
    }

    #[test]
    fn segfault() {
        let e = one("myapp[1234]: segfault at 0 ip 000055d5c3b5e1a9 sp 00007ffd4c3b1e80 error 4 in myapp[55d5c3b5e000+1000] likely on CPU 1 (core 1, socket 0)");
        assert_eq!(e.class, KmsgClass::Segfault);
        assert_eq!((e.comm.as_deref(), e.pid), (Some("myapp"), Some(1234)));
        let e = one("traps: node[999] general protection fault ip:7f0 sp:7ff error:0 in libc.so.6[7f0+1000]");
        assert_eq!(
            (e.class, e.comm.as_deref(), e.pid),
            (KmsgClass::Segfault, Some("node"), Some(999))
        );
    }

    #[test]
    fn soft_lockup() {
        let e = one("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:999]");
        assert_eq!(e.class, KmsgClass::SoftLockup);
        assert_eq!((e.comm.as_deref(), e.pid), (Some("spin"), Some(999)));
    }

    #[test]
    fn rcu_stall() {
        assert_eq!(
            one("rcu: INFO: rcu_sched self-detected stall on CPU").class,
            KmsgClass::RcuStall
        );
        assert_eq!(
            one("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:").class,
            KmsgClass::RcuStall
        );
    }

    #[test]
    fn hardware_error() {
        let e = one("mce: [Hardware Error]: CPU 0: Machine Check: 0 Bank 5: be00000000800400");
        assert_eq!(e.class, KmsgClass::HardwareError);
    }

    #[test]
    fn nfs_not_responding() {
        let e = one("nfs: server nfs1 not responding, still trying");
        assert_eq!(
            (e.class, e.device.as_deref()),
            (KmsgClass::NfsNotResponding, Some("nfs1"))
        );
        assert!(classify(&[rec(1, "nfs: server nfs1 OK")], 0).is_empty());
    }

    #[test]
    fn other_only_for_severe_kernel_messages() {
        let mut r = rec(5, "BUG: unable to handle page fault for address: ffff8880");
        r.priority = 1;
        assert_eq!(
            classify(std::slice::from_ref(&r), 0)[0].class,
            KmsgClass::Other
        );
        r.facility = 1; // written by user space
        assert!(classify(std::slice::from_ref(&r), 0).is_empty());
        assert!(classify(
            &[rec(
                5,
                "[Firmware Bug]: TSC doesn't count with P0 frequency!"
            )],
            0
        )
        .is_empty());
        assert!(classify(
            &[rec(
                5,
                "myapp invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL)"
            )],
            0
        )
        .is_empty());
    }

    #[test]
    fn since_filters_and_order_is_kept() {
        let recs = [
            rec(100, "VFS: file-max limit 1000 reached"),
            rec(200, "nfs: server a not responding, still trying"),
            rec(
                300,
                "INFO: task kworker/0:1:55 blocked for more than 120 seconds.",
            ),
        ];
        let evs = classify(&recs, 200);
        let classes: Vec<KmsgClass> = evs.iter().map(|e| e.class).collect();
        assert_eq!(classes, [KmsgClass::NfsNotResponding, KmsgClass::HungTask]);
        assert_eq!(evs[1].comm.as_deref(), Some("kworker/0:1"));
        assert_eq!(evs[1].pid, Some(55));
    }

    #[test]
    fn labels_and_serde_names() {
        assert_eq!(KmsgClass::OomKill.label(), "OOM kill");
        assert_eq!(KmsgClass::IoError.label(), "I/O error");
        assert_eq!(
            serde_json::to_string(&KmsgClass::NfsNotResponding).expect("json"),
            "\"nfs_not_responding\""
        );
        assert_eq!(
            serde_json::to_string(&KmsgClass::CgroupOom).expect("json"),
            "\"cgroup_oom\""
        );
    }
}
