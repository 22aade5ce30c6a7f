//! The process scan from a task dump: the records of the BPF task iterator (`bpf/tasks.bpf.c`,
//! one per thread, raw kernel values), turned into the same [`ProcSample`]s the /proc scan
//! parses, with the arithmetic /proc does (`do_task_stat`: the process's counters are the sum
//! of its threads' and of its exited threads', CPU times split by `cputime_adjust` and shown in
//! clock ticks; RSS is `get_mm_rss`).
//!
//! The dump is bytes, so a fixture records it (`tasks.bin` in each snapshot) and replays it
//! without BPF; the decoder refuses anything malformed instead of guessing. Decoding needs no
//! BPF: the BPF side lives in `probe::taskiter`.
//!
//! Layout (little-endian): a 32-byte header (`TRTASKS1`, version u32, record size u32, clock
//! ticks per second u64, page size u64), then fixed-size records laid out as `struct task_rec` of
//! `bpf/tasks.h`.

use std::collections::BTreeMap;

use super::procs::ProcSample;

/// `struct task_rec` version this decoder reads (`TASKS_VERSION` of `bpf/tasks.h`).
pub const VERSION: u32 = 1;
/// `sizeof(struct task_rec)`.
pub const RECORD_SIZE: usize = 256;
pub const MAGIC: &[u8; 8] = b"TRTASKS1";
pub const HEADER_SIZE: usize = 32;
/// A dump larger than this is refused (a million threads).
pub const MAX_RECORDS: usize = 1 << 20;
/// The fixture file a snapshot records the dump in.
pub const FILE: &str = "tasks.bin";

const PF_KTHREAD: u32 = 0x0020_0000;
const TR_HAVE_MM: u32 = 1;
const TR_HAVE_FDS: u32 = 2;
const TR_HAVE_NETNS: u32 = 4;

/// One task (thread) as the iterator saw it: kernel units (ns, pages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskRec {
    pub tgid: i32,
    pub pid: i32,
    pub ppid: i32,
    pub state: u32,
    pub exit_state: u32,
    pub flags: u32,
    pub cpu: u32,
    pub nr_threads: i32,
    pub nr_fds: Option<u32>,
    pub netns: Option<u64>,
    pub utime: u64,
    pub stime: u64,
    pub sum_exec_runtime: u64,
    pub prev_utime: u64,
    pub prev_stime: u64,
    pub min_flt: u64,
    pub maj_flt: u64,
    pub nvcsw: u64,
    pub nivcsw: u64,
    pub start_boottime: u64,
    /// (file, anon, swap, shmem) pages, when the task has an mm.
    pub rss: Option<[u64; 4]>,
    pub sig_utime: u64,
    pub sig_stime: u64,
    pub sig_sum_sched_runtime: u64,
    pub sig_prev_utime: u64,
    pub sig_prev_stime: u64,
    pub sig_min_flt: u64,
    pub sig_maj_flt: u64,
    pub sig_cutime: u64,
    pub sig_cstime: u64,
    pub comm: String,
}

/// A decoded dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskDump {
    pub ticks_per_s: u64,
    pub page_size: u64,
    pub tasks: Vec<TaskRec>,
}

/// `struct task_rec` of bpf/tasks.h, field for field: the records are read as this type, not
/// by byte offsets. Without BPF there is no generated skeleton type to read them as (a fixture
/// replays anywhere), so this mirror is checked against it at compile time by
/// `probe::taskiter` (size and every field's offset) whenever the eBPF side is built.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawTaskRec {
    pub version: u32,
    pub size: u32,
    pub tgid: u32,
    pub pid: u32,
    pub ppid: u32,
    pub state: u32,
    pub exit_state: u32,
    pub flags: u32,
    pub cpu: u32,
    pub nr_threads: i32,
    pub nr_fds: u32,
    pub have: u32,
    pub netns: u64,
    pub utime: u64,
    pub stime: u64,
    pub sum_exec_runtime: u64,
    pub prev_utime: u64,
    pub prev_stime: u64,
    pub min_flt: u64,
    pub maj_flt: u64,
    pub nvcsw: u64,
    pub nivcsw: u64,
    pub start_boottime: u64,
    pub rss_file: u64,
    pub rss_anon: u64,
    pub rss_swap: u64,
    pub rss_shmem: u64,
    pub sig_utime: u64,
    pub sig_stime: u64,
    pub sig_sum_sched_runtime: u64,
    pub sig_prev_utime: u64,
    pub sig_prev_stime: u64,
    pub sig_min_flt: u64,
    pub sig_maj_flt: u64,
    pub sig_cutime: u64,
    pub sig_cstime: u64,
    pub comm: [u8; 16],
}

// SAFETY: `#[repr(C)]`, integers and a byte array only, no padding (the size assertion below:
// 12 x 4 + 24 x 8 + 16 = 256): every bit pattern is a valid value.
unsafe impl bytemuck::Zeroable for RawTaskRec {}
// SAFETY: as above.
unsafe impl bytemuck::AnyBitPattern for RawTaskRec {}
const _: () = assert!(std::mem::size_of::<RawTaskRec>() == RECORD_SIZE);

/// The dump's header fields (little-endian, as written by [`header`]).
fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The header for a dump of records taken with `ticks_per_s` and `page_size` (what user space
/// writes first).
pub fn header(ticks_per_s: u64, page_size: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_SIZE);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&(RECORD_SIZE as u32).to_le_bytes());
    h.extend_from_slice(&ticks_per_s.to_le_bytes());
    h.extend_from_slice(&page_size.to_le_bytes());
    h
}

impl TaskRec {
    /// One record (exactly [`RECORD_SIZE`] bytes).
    pub fn decode(b: &[u8]) -> Result<TaskRec, String> {
        if b.len() != RECORD_SIZE {
            return Err(format!("record of {} bytes, not {RECORD_SIZE}", b.len()));
        }
        let raw: RawTaskRec =
            bytemuck::try_pod_read_unaligned(b).map_err(|e| format!("record: {e:?}"))?;
        let (version, size) = (raw.version, raw.size);
        if version != VERSION || size as usize != RECORD_SIZE {
            return Err(format!(
                "record version {version} size {size}, expected {VERSION} and {RECORD_SIZE}"
            ));
        }
        let have = raw.have;
        let end = raw.comm.iter().position(|&c| c == 0).unwrap_or(16);
        let r = TaskRec {
            tgid: raw.tgid as i32,
            pid: raw.pid as i32,
            ppid: raw.ppid as i32,
            state: raw.state,
            exit_state: raw.exit_state,
            flags: raw.flags,
            cpu: raw.cpu,
            nr_threads: raw.nr_threads,
            nr_fds: (have & TR_HAVE_FDS != 0).then_some(raw.nr_fds),
            netns: (have & TR_HAVE_NETNS != 0).then_some(raw.netns),
            utime: raw.utime,
            stime: raw.stime,
            sum_exec_runtime: raw.sum_exec_runtime,
            prev_utime: raw.prev_utime,
            prev_stime: raw.prev_stime,
            min_flt: raw.min_flt,
            maj_flt: raw.maj_flt,
            nvcsw: raw.nvcsw,
            nivcsw: raw.nivcsw,
            start_boottime: raw.start_boottime,
            rss: (have & TR_HAVE_MM != 0).then_some([
                raw.rss_file,
                raw.rss_anon,
                raw.rss_swap,
                raw.rss_shmem,
            ]),
            sig_utime: raw.sig_utime,
            sig_stime: raw.sig_stime,
            sig_sum_sched_runtime: raw.sig_sum_sched_runtime,
            sig_prev_utime: raw.sig_prev_utime,
            sig_prev_stime: raw.sig_prev_stime,
            sig_min_flt: raw.sig_min_flt,
            sig_maj_flt: raw.sig_maj_flt,
            sig_cutime: raw.sig_cutime,
            sig_cstime: raw.sig_cstime,
            comm: String::from_utf8_lossy(&raw.comm[..end]).into_owned(),
        };
        if r.pid <= 0 || r.tgid <= 0 {
            return Err(format!("record with pid {} tgid {}", r.pid, r.tgid));
        }
        Ok(r)
    }
}

impl TaskDump {
    /// A whole dump: header, then records. Refused (never a partial result) when the header
    /// or any record is wrong.
    pub fn decode(b: &[u8]) -> Result<TaskDump, String> {
        if b.len() < HEADER_SIZE || &b[..8] != MAGIC {
            return Err("not a task dump (no TRTASKS1 header)".into());
        }
        let (version, size) = (u32_at(b, 8), u32_at(b, 12) as usize);
        if version != VERSION || size != RECORD_SIZE {
            return Err(format!(
                "task dump version {version} with {size}-byte records; this triage reads \
                 version {VERSION} with {RECORD_SIZE}-byte records"
            ));
        }
        let ticks_per_s = u64_at(b, 16);
        if ticks_per_s == 0 || ticks_per_s > 1_000_000_000 {
            return Err(format!(
                "task dump with {ticks_per_s} clock ticks per second"
            ));
        }
        let page_size = u64_at(b, 24);
        if !page_size.is_power_of_two() || !(512..=(1 << 30)).contains(&page_size) {
            return Err(format!("task dump with a page size of {page_size} bytes"));
        }
        let body = &b[HEADER_SIZE..];
        if body.len() % RECORD_SIZE != 0 {
            return Err(format!(
                "task dump of {} bytes is not whole {RECORD_SIZE}-byte records",
                body.len()
            ));
        }
        if body.len() / RECORD_SIZE > MAX_RECORDS {
            return Err(format!("task dump of more than {MAX_RECORDS} tasks"));
        }
        let tasks = body
            .chunks_exact(RECORD_SIZE)
            .map(TaskRec::decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TaskDump {
            ticks_per_s,
            page_size,
            tasks,
        })
    }
}

/// `task_state_index()` then `task_index_to_char()` of the kernel: the letter of /proc.
pub fn state_char(state: u32, exit_state: u32) -> char {
    const TASK_REPORT: u32 = 0x7f;
    const TASK_IDLE: u32 = 0x0402; // TASK_UNINTERRUPTIBLE | TASK_NOLOAD
    const TASK_RTLOCK_WAIT: u32 = 0x1000;
    let mut s = (state | exit_state) & TASK_REPORT;
    if state & TASK_IDLE == TASK_IDLE {
        s = TASK_REPORT + 1;
    }
    if state & TASK_RTLOCK_WAIT != 0 {
        s = 2;
    }
    let index = (u32::BITS - s.leading_zeros()) as usize; // fls()
    b"RSDTtXZPI".get(index).map(|&c| c as char).unwrap_or('?')
}

/// The kernel's `cputime_adjust()`: utime and stime are tick-sampled; the precise run time
/// (`rtime`) is split between them in their proportion, never below what was last reported
/// (`prev`). Returns (utime, stime) in ns.
pub fn cputime_adjust(utime: u64, stime: u64, rtime: u64, prev: (u64, u64)) -> (u64, u64) {
    let (pu, ps) = prev;
    if pu.saturating_add(ps) >= rtime {
        return prev;
    }
    let mut st = if stime == 0 {
        0
    } else if utime == 0 {
        rtime
    } else {
        ((stime as u128 * rtime as u128) / (stime as u128 + utime as u128)) as u64
    };
    st = st.max(ps);
    let mut ut = rtime - st.min(rtime);
    if ut < pu {
        ut = pu;
        st = rtime.saturating_sub(ut);
    }
    (ut, st)
}

/// ns -> clock ticks as `nsec_to_clock_t()`.
fn ticks(ns: u64, ticks_per_s: u64) -> u64 {
    ns / (1_000_000_000 / ticks_per_s.max(1)).max(1)
}

/// What the dump tells beyond `/proc/PID/stat`, for the readers that would otherwise open a
/// file per process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DumpExtras {
    /// pid -> open fds (what `stat` of `/proc/PID/fd` reports), user processes.
    pub fds: BTreeMap<i32, u64>,
    /// pid -> network namespace inode.
    pub netns: BTreeMap<i32, u64>,
    /// pid -> its threads as `/proc/PID/task/TID/stat` shows them (`pid` holds the tid),
    /// multi-threaded processes only, by tid.
    pub threads: BTreeMap<i32, Vec<ProcSample>>,
    /// tid -> (voluntary, involuntary) context switches, every thread (`status`).
    pub switches: BTreeMap<i32, (u64, u64)>,
    /// pid -> (anon, file, shmem, swap) bytes (`status`: RssAnon, RssFile, RssShmem, VmSwap).
    pub rss_split: BTreeMap<i32, [u64; 4]>,
    /// Processes /proc listed that the dump did not hold, read from /proc instead (by pid).
    pub from_proc: Vec<i32>,
}

fn sample(r: &TaskRec, ut: u64, st: u64, tps: u64) -> ProcSample {
    let rss = r
        .rss
        .map_or(0, |m| m[0].saturating_add(m[1]).saturating_add(m[3]));
    ProcSample {
        pid: r.pid,
        ppid: r.ppid,
        comm: r.comm.clone(),
        state: state_char(r.state, r.exit_state),
        utime: ticks(ut, tps),
        stime: ticks(st, tps),
        cutime: ticks(r.sig_cutime, tps),
        cstime: ticks(r.sig_cstime, tps),
        minflt: r.min_flt,
        majflt: r.maj_flt,
        num_threads: r.nr_threads as i64,
        starttime: ticks(r.start_boottime, tps),
        rss_pages: rss,
        kernel_thread: r.flags & PF_KTHREAD != 0,
        processor: Some(r.cpu),
    }
}

/// The processes of a dump as the /proc scan sees them (by pid), and what else it tells.
/// A thread group whose leader record is missing is left out (it exited mid-iteration).
pub fn to_samples(d: &TaskDump) -> (BTreeMap<i32, ProcSample>, DumpExtras) {
    let tps = d.ticks_per_s;
    let mut groups: BTreeMap<i32, Vec<&TaskRec>> = BTreeMap::new();
    for t in &d.tasks {
        groups.entry(t.tgid).or_default().push(t);
    }
    let mut procs = BTreeMap::new();
    let mut ex = DumpExtras::default();
    for (tgid, ts) in groups {
        let Some(lead) = ts.iter().find(|t| t.pid == tgid) else {
            continue;
        };
        // Live threads plus the threads that already exited (signal_struct).
        let (mut u, mut s, mut rt) = (lead.sig_utime, lead.sig_stime, lead.sig_sum_sched_runtime);
        let (mut minf, mut majf) = (lead.sig_min_flt, lead.sig_maj_flt);
        for t in &ts {
            u = u.saturating_add(t.utime);
            s = s.saturating_add(t.stime);
            rt = rt.saturating_add(t.sum_exec_runtime);
            minf = minf.saturating_add(t.min_flt);
            majf = majf.saturating_add(t.maj_flt);
        }
        let (ut, st) = cputime_adjust(u, s, rt, (lead.sig_prev_utime, lead.sig_prev_stime));
        let mut p = sample(lead, ut, st, tps);
        p.minflt = minf;
        p.majflt = majf;
        let user = !p.kernel_thread;
        if user {
            if let Some(n) = lead.nr_fds {
                ex.fds.insert(tgid, n as u64);
            }
            if let Some(ns) = lead.netns {
                ex.netns.insert(tgid, ns);
            }
            if let Some(m) = lead.rss {
                let b = |pages: u64| pages.saturating_mul(d.page_size);
                ex.rss_split
                    .insert(tgid, [b(m[1]), b(m[0]), b(m[3]), b(m[2])]);
            }
        }
        for t in &ts {
            ex.switches.insert(t.pid, (t.nvcsw, t.nivcsw));
        }
        if p.num_threads > 1 {
            let mut threads: Vec<ProcSample> = ts
                .iter()
                .map(|t| {
                    let (ut, st) = cputime_adjust(
                        t.utime,
                        t.stime,
                        t.sum_exec_runtime,
                        (t.prev_utime, t.prev_stime),
                    );
                    sample(t, ut, st, tps)
                })
                .collect();
            threads.sort_by_key(|t| t.pid);
            ex.threads.insert(tgid, threads);
        }
        procs.insert(tgid, p);
    }
    (procs, ex)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encode a record as the BPF program lays it out (for tests and the fuzzer's seeds).
    pub(crate) fn encode(r: &TaskRec) -> Vec<u8> {
        let mut b = vec![0u8; RECORD_SIZE];
        let mut put32 = |off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        put32(0, VERSION);
        put32(4, RECORD_SIZE as u32);
        put32(8, r.tgid as u32);
        put32(12, r.pid as u32);
        put32(16, r.ppid as u32);
        put32(20, r.state);
        put32(24, r.exit_state);
        put32(28, r.flags);
        put32(32, r.cpu);
        put32(36, r.nr_threads as u32);
        put32(40, r.nr_fds.unwrap_or(0));
        let have = if r.rss.is_some() { TR_HAVE_MM } else { 0 }
            | if r.nr_fds.is_some() { TR_HAVE_FDS } else { 0 }
            | if r.netns.is_some() { TR_HAVE_NETNS } else { 0 };
        put32(44, have);
        let rss = r.rss.unwrap_or_default();
        let q = [
            r.netns.unwrap_or(0),
            r.utime,
            r.stime,
            r.sum_exec_runtime,
            r.prev_utime,
            r.prev_stime,
            r.min_flt,
            r.maj_flt,
            r.nvcsw,
            r.nivcsw,
            r.start_boottime,
            rss[0],
            rss[1],
            rss[2],
            rss[3],
            r.sig_utime,
            r.sig_stime,
            r.sig_sum_sched_runtime,
            r.sig_prev_utime,
            r.sig_prev_stime,
            r.sig_min_flt,
            r.sig_maj_flt,
            r.sig_cutime,
            r.sig_cstime,
        ];
        for (i, v) in q.iter().enumerate() {
            b[48 + 8 * i..56 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        let c = r.comm.as_bytes();
        let n = c.len().min(15);
        b[240..240 + n].copy_from_slice(&c[..n]);
        b
    }

    pub(crate) fn dump(recs: &[TaskRec]) -> Vec<u8> {
        let mut b = header(100, 4096);
        for r in recs {
            b.extend(encode(r));
        }
        b
    }

    fn rec(tgid: i32, pid: i32) -> TaskRec {
        TaskRec {
            tgid,
            pid,
            ppid: 1,
            state: 1,
            nr_threads: 1,
            comm: "worker".into(),
            rss: Some([10, 20, 0, 3]),
            ..Default::default()
        }
    }

    #[test]
    fn records_round_trip() {
        let mut r = rec(40, 41);
        r.nr_fds = Some(7);
        r.netns = Some(4026531840);
        r.utime = 123;
        r.sig_cstime = 9;
        let d = TaskDump::decode(&dump(&[r.clone()])).unwrap();
        assert_eq!(d.ticks_per_s, 100);
        assert_eq!(d.tasks, vec![r]);
    }

    #[test]
    fn short_or_garbage_dumps_are_refused() {
        let good = dump(&[rec(5, 5)]);
        assert!(TaskDump::decode(&good).is_ok());
        for cut in [0, 8, HEADER_SIZE - 1, HEADER_SIZE + 1, good.len() - 1] {
            assert!(TaskDump::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert!(TaskDump::decode(&bad_magic).is_err());
        let mut bad_version = good.clone();
        bad_version[HEADER_SIZE] = 9;
        assert!(TaskDump::decode(&bad_version).is_err());
        let mut zero_ticks = good.clone();
        zero_ticks[16..24].fill(0);
        assert!(TaskDump::decode(&zero_ticks).is_err());
        let mut odd_page = good.clone();
        odd_page[24] = 1;
        assert!(TaskDump::decode(&odd_page).is_err());
        let mut bad_pid = good.clone();
        bad_pid[HEADER_SIZE + 12..HEADER_SIZE + 16].fill(0xff);
        assert!(TaskDump::decode(&bad_pid).is_err());
        // Only a header: an empty (valid) dump.
        assert_eq!(TaskDump::decode(&header(100, 4096)).unwrap().tasks.len(), 0);
        // Random bytes after a valid header never panic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..600 {
            let mut b = header(100, 4096);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push(x as u8);
            }
            let _ = TaskDump::decode(&b);
        }
    }

    #[test]
    fn state_letters_follow_the_kernel() {
        assert_eq!(state_char(0, 0), 'R');
        assert_eq!(state_char(1, 0), 'S');
        assert_eq!(state_char(2, 0), 'D');
        assert_eq!(state_char(4, 0), 'T');
        assert_eq!(state_char(8, 0), 't');
        assert_eq!(state_char(0, 0x20), 'Z');
        assert_eq!(state_char(0, 0x10), 'X');
        assert_eq!(state_char(0x40, 0), 'P');
        assert_eq!(state_char(0x402, 0), 'I');
        assert_eq!(state_char(0x1000 | 1, 0), 'D');
    }

    #[test]
    fn cputime_is_split_like_the_kernel() {
        // 3:1 tick samples over 4 s of run time.
        assert_eq!(
            cputime_adjust(300, 100, 4_000_000_000, (0, 0)),
            (3_000_000_000, 1_000_000_000)
        );
        assert_eq!(cputime_adjust(0, 0, 50, (0, 0)), (50, 0));
        assert_eq!(cputime_adjust(0, 5, 50, (0, 0)), (0, 50));
        // Never below what was reported before: the 50/50 split would take utime back from
        // 80 to 50, so utime stays and stime gets the rest; nothing new when rtime did not grow.
        assert_eq!(cputime_adjust(1, 1, 100, (80, 10)), (80, 20));
        assert_eq!(cputime_adjust(9, 1, 200, (20, 30)), (170, 30));
        assert_eq!(cputime_adjust(1, 1, 90, (80, 10)), (80, 10));
    }

    #[test]
    fn a_process_sums_its_threads_and_its_dead_threads() {
        let mut lead = rec(100, 100);
        lead.nr_threads = 2;
        lead.utime = 1_000_000_000;
        lead.sum_exec_runtime = 1_000_000_000;
        lead.min_flt = 5;
        lead.sig_min_flt = 100;
        lead.sig_utime = 2_000_000_000;
        lead.sig_sum_sched_runtime = 2_000_000_000;
        lead.start_boottime = 12_340_000_000;
        lead.nr_fds = Some(3);
        lead.nvcsw = 4;
        let mut t = rec(100, 101);
        t.nr_threads = 2;
        t.utime = 500_000_000;
        t.sum_exec_runtime = 500_000_000;
        t.min_flt = 7;
        t.comm = "helper".into();
        // An orphaned thread record (its leader missing) is left out.
        let stray = rec(200, 201);
        let d = TaskDump::decode(&dump(&[lead, t, stray])).unwrap();
        let (procs, ex) = to_samples(&d);
        assert_eq!(procs.keys().copied().collect::<Vec<_>>(), vec![100]);
        let p = &procs[&100];
        assert_eq!((p.utime, p.stime), (350, 0));
        assert_eq!((p.minflt, p.starttime, p.rss_pages), (112, 1234, 33));
        assert_eq!((p.state, p.comm.as_str()), ('S', "worker"));
        assert_eq!(ex.fds[&100], 3);
        assert_eq!(ex.switches[&100], (4, 0));
        assert_eq!(ex.rss_split[&100], [20 * 4096, 10 * 4096, 3 * 4096, 0]);
        let th = &ex.threads[&100];
        assert_eq!(th.len(), 2);
        assert_eq!((th[1].pid, th[1].utime, th[1].minflt), (101, 50, 7));
        assert_eq!(th[1].comm, "helper");
    }
}
