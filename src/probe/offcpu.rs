//! The off-CPU probe (`bpf/offcpu.bpf.c`): load (tp_btf, else raw_tp), run the window while
//! remembering each new process's mappings as soon as it shows up (so processes that exit
//! before the end still symbolize), read the maps once, symbolize with blazesym, detach.
//!
//! Invariants: stacks are read and symbolized after the window, never per event; what could
//! not be captured or named is counted, not hidden.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::mem::MaybeUninit;
use std::time::Instant;

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags};

use super::offcpu_model::*;
use super::stacks::{
    count_frames, heaviest_first, ips_of, symbolize_addrs, user_addrs, watch, Names, Watcher,
};
use super::syscalls::AttachFailure;

#[allow(clippy::all, dead_code, unused_imports, non_camel_case_types)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/offcpu.skel.rs"));
}
use skel::types::{offcpu_key, offcpu_kstack, offcpu_start, offcpu_val};
use skel::*;

use super::decode::{c_str, map_types, set_scope, Decoder};

map_types!(offcpu_key, offcpu_kstack, offcpu_start, offcpu_val);

/// Mirrors `bpf/offcpu.h`.
const MAX_DEPTH: usize = 127;
// offcpu_stacks (a stack-trace map of `__u64[MAX_DEPTH]`) is read as an offcpu_kstack.
const _: () = assert!(std::mem::size_of::<offcpu_kstack>() == MAX_DEPTH * 8);

/// What to trace.
#[derive(Debug, Clone)]
pub struct Options {
    pub pid: Option<u32>,
    /// v2 cgroup: (path as given, cgroup id = inode, depth below the root).
    pub cgroup: Option<(String, u64, u32)>,
    /// Blocks shorter than this are not counted (filtered in the kernel)...
    pub min_block_us: u64,
    /// ...unless `sample_every` >= 2: then one in `sample_every` of the blocks between
    /// `sample_floor_us` and `min_block_us` is recorded, weighted by `sample_every`.
    pub sample_every: u32,
    pub sample_floor_us: u64,
    pub user_stacks: bool,
    pub kernel_threads: bool,
    /// Also count preemption (state R), which is run-queue wait rather than blocking.
    pub include_runnable: bool,
    /// Capacity of the aggregation map and of the stack map.
    pub max_entries: u32,
    pub stack_entries: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pid: None,
            cgroup: None,
            min_block_us: 1,
            sample_every: 0,
            sample_floor_us: 0,
            user_stacks: true,
            kernel_threads: false,
            include_runnable: false,
            max_entries: 16384,
            stack_entries: 16384,
        }
    }
}

/// The kernel types `bpf/offcpu.bpf.c` reads fields of (its CO-RE relocation roots), for the
/// minimal BTF it loads against ([`super::minbtf`]).
pub const CORE_ROOTS: &[&str] = &["task_struct"];

fn load<'obj>(
    kind: &str,
    opts: &Options,
    btf: &super::btf::OpenOpts,
    storage: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
) -> Result<OffcpuSkel<'obj>, String> {
    let mut open = OffcpuSkelBuilder::default()
        .open_opts(btf.opts, storage)
        .map_err(|e| format!("open: {e}"))?;
    {
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or("rodata is not memory-mapped")?;
        set_scope!(ro, opts.pid, &opts.cgroup);
        ro.min_block_ns = opts.min_block_us.saturating_mul(1000);
        ro.sample_every = opts.sample_every;
        ro.sample_floor_ns = opts.sample_floor_us.saturating_mul(1000);
        ro.user_stacks = opts.user_stacks;
        ro.kernel_threads = opts.kernel_threads;
        ro.include_runnable = opts.include_runnable;
        ro.kstack_at_switch_out = kstack_at_switch_out(opts);
    }
    let btf = kind == "tp_btf";
    open.progs.offcpu_switch_btf.set_autoload(btf);
    open.progs.offcpu_switch_raw.set_autoload(!btf);
    // Which wakeups are timeouts: sched_waking inside a timer's expiry.
    for (p, is_btf) in [
        (&mut open.progs.offcpu_waking_btf, true),
        (&mut open.progs.offcpu_hrt_in_btf, true),
        (&mut open.progs.offcpu_hrt_out_btf, true),
        (&mut open.progs.offcpu_tl_in_btf, true),
        (&mut open.progs.offcpu_tl_out_btf, true),
        (&mut open.progs.offcpu_waking_raw, false),
        (&mut open.progs.offcpu_hrt_in_raw, false),
        (&mut open.progs.offcpu_hrt_out_raw, false),
        (&mut open.progs.offcpu_tl_in_raw, false),
        (&mut open.progs.offcpu_tl_out_raw, false),
    ] {
        p.set_autoload(is_btf == btf);
    }
    open.maps
        .offcpu_agg
        .set_max_entries(opts.max_entries.max(64))
        .map_err(|e| format!("sizing offcpu_agg: {e}"))?;
    open.maps
        .offcpu_stacks
        .set_max_entries(opts.stack_entries.max(64))
        .map_err(|e| format!("sizing offcpu_stacks: {e}"))?;
    let mut skel = open.load().map_err(|e| format!("load: {e}"))?;
    libbpf_rs::skel::Skel::attach(&mut skel).map_err(|e| format!("attach: {e}"))?;
    Ok(skel)
}

/// Load, attach, poll until `stop()` says the window is over (every 100 ms, remembering new
/// processes), read and symbolize. On failure nothing ran.
pub fn trace(opts: &Options, mut stop: impl FnMut() -> bool) -> Result<OffcpuProbe, AttachFailure> {
    let parts: &[&str] = if opts.cgroup.is_some() {
        &["cgroup filter"]
    } else {
        &[]
    };
    if let Some(why) = super::kernels::running_too_old("offcpu", parts) {
        return Err(AttachFailure {
            attempts: vec![("kernel", why)],
        });
    }
    // Two per attach type: against the minimal BTF, then the kernel's.
    let mut storages: [[MaybeUninit<libbpf_rs::OpenObject>; 2]; 2] =
        std::array::from_fn(|_| std::array::from_fn(|_| MaybeUninit::uninit()));
    let mut attempts = Vec::new();
    let t0 = Instant::now();
    for (kind, storage) in super::btf_attach_types()
        .into_iter()
        .zip(storages.iter_mut())
    {
        let loaded = super::btf::load_minimal_first("offcpu", CORE_ROOTS, storage, |btf, st| {
            load(kind, opts, btf, st)
        });
        match loaded {
            Ok(skel) => {
                let startup = t0.elapsed();
                let attached = Instant::now();
                let mut w = Watcher::new();
                let before = opts.pid.map(thread_runtimes);
                if let Some(p) = opts.pid {
                    w.see(p);
                }
                watch(&mut w, &mut stop, || {
                    skel.maps
                        .offcpu_agg
                        .keys()
                        .filter_map(|k| super::decode::decode::<offcpu_key>(&k).ok())
                        .map(|k| k.tgid)
                        .collect()
                });
                let traced = attached.elapsed();
                let mut raw = read(&skel, opts.min_block_us.saturating_mul(1000));
                super::cost::note("offcpu", libbpf_rs::skel::Skel::object(&skel));
                drop(skel);
                if let (Some(pid), Some(before)) = (opts.pid, before) {
                    add_never_ran(&mut raw, pid, &before, traced.as_nanos() as u64);
                }
                // Stacks taken at switch-out read as those taken off CPU (one kallsyms read
                // serves this and the symbolizer).
                let ksyms = (!raw.kstacks.is_empty())
                    .then(super::stacks::Kallsyms::read)
                    .and_then(Result::ok);
                if let Some(sched) = ksyms.as_ref().and_then(|k| k.sched_text()) {
                    as_off_cpu(&mut raw, sched);
                }
                let mut out = symbolize(&mut w, raw, opts, ksyms.as_ref());
                out.attach_type = kind.to_string();
                out.traced_s = traced.as_secs_f64();
                out.startup_ms = startup.as_secs_f64() * 1000.0;
                return Ok(out);
            }
            Err(e) => attempts.push((kind, e)),
        }
    }
    Err(AttachFailure { attempts })
}

struct RawRow {
    tgid: u32,
    pid: u32,
    /// Hash key in offcpu_kstacks; 0: none.
    kstack: u64,
    /// Still blocked at the end, no kernel stack captured: /proc's view of it.
    proc_kstack: Option<Vec<Frame>>,
    ustack: i32,
    state: u32,
    total_ns: u64,
    count: u64,
    max_ns: u64,
    comm: String,
    /// Blocks ended by a timer's expiry (timeouts, sleeps), and their time.
    timer_count: u64,
    timer_ns: u64,
}

struct Raw {
    rows: Vec<RawRow>,
    /// User stacks by id, kernel stacks by hash.
    stacks: HashMap<i32, Vec<u64>>,
    kstacks: HashMap<u64, Vec<u64>>,
    dropped: OffcpuDropped,
}

fn read(skel: &OffcpuSkel<'_>, min_block_ns: u64) -> Raw {
    let m = &skel.maps;
    let mut dec = Decoder::default();
    let mut rows: Vec<RawRow> = dec
        .entries::<offcpu_key, offcpu_val>(&m.offcpu_agg)
        .into_iter()
        .map(|(key, v)| RawRow {
            tgid: key.tgid,
            pid: key.pid,
            kstack: key.kstack,
            proc_kstack: None,
            ustack: key.ustack,
            state: key.state,
            total_ns: v.total_ns,
            count: v.count,
            max_ns: v.max_ns,
            comm: c_str(&v.comm),
            timer_count: v.timer_count,
            timer_ns: v.timer_ns,
        })
        .collect();
    // Threads still off CPU at the end: their block so far counts (a thread stuck for the
    // whole window would otherwise never show up).
    let now = monotonic_ns();
    for (pid, v) in dec.entries::<u32, offcpu_start>(&m.offcpu_starts) {
        let (ts, tgid) = (v.ts, v.tgid);
        if ts == 0 {
            continue; // a closed record, kept for the thread's next block
        }
        let delta = now.saturating_sub(ts);
        if delta < min_block_ns {
            continue;
        }
        let kstack = v.kstack;
        let row = RawRow {
            tgid,
            pid,
            kstack,
            proc_kstack: if kstack == 0 {
                proc_stack(tgid, pid)
            } else {
                None
            },
            ustack: v.ustack,
            state: v.state,
            total_ns: delta,
            count: 1,
            max_ns: delta,
            comm: thread_comm(tgid, pid),
            timer_count: 0,
            timer_ns: 0,
        };
        match rows.iter_mut().find(|r| {
            (r.tgid, r.pid, r.kstack, r.ustack, r.state)
                == (row.tgid, row.pid, row.kstack, row.ustack, row.state)
        }) {
            Some(r) => {
                r.total_ns += row.total_ns;
                r.count += 1;
                r.max_ns = r.max_ns.max(row.max_ns);
            }
            None => rows.push(row),
        }
    }
    let mut stacks = HashMap::new();
    let ids: BTreeSet<i32> = rows.iter().map(|r| r.ustack).filter(|&i| i >= 0).collect();
    for id in ids {
        // A stack-trace map's value is `__u64[OFFCPU_MAX_DEPTH]`, the same as offcpu_kstack.
        if let Some(v) = dec.lookup::<offcpu_kstack>(&m.offcpu_stacks, &id.to_ne_bytes()) {
            stacks.insert(id, ips_of(&v.ips));
        }
    }
    let mut kstacks = HashMap::new();
    let kids: BTreeSet<u64> = rows.iter().map(|r| r.kstack).filter(|&h| h != 0).collect();
    for h in kids {
        if let Some(v) = dec.lookup::<offcpu_kstack>(&m.offcpu_kstacks, &h.to_ne_bytes()) {
            kstacks.insert(h, ips_of(&v.ips));
        }
    }
    let mut d = |i: u32| {
        m.offcpu_dropped
            .lookup_percpu(&i.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .map(|v| dec.percpu_sum(&v))
            .unwrap_or(0)
    };
    let mut dropped = OffcpuDropped {
        start_records: d(0),
        aggregations: d(1),
        kernel_stacks: d(2),
        user_stacks: d(3),
        decode_errors: 0,
    };
    dropped.decode_errors = dec.errors;
    Raw {
        rows,
        stacks,
        kstacks,
        dropped,
    }
}

/// Whether the tp_btf program takes kernel stacks at switch-out: when every block is wanted
/// (`--min-block 1us`: no block is that short, every one needs its stack, and the walk from
/// the tracepoint's context is the cheaper one) and kallsyms shows the addresses needed to
/// drop the scheduler's frames afterwards ([`as_off_cpu`]).
pub fn kstack_at_switch_out(opts: &Options) -> bool {
    let visible = match std::fs::read_to_string("/proc/sys/kernel/kptr_restrict") {
        Ok(v) => match v.trim() {
            "0" => true,
            "1" => rustix::process::geteuid().is_root(),
            _ => false,
        },
        Err(_) => false,
    };
    opts.min_block_us <= 1 && visible
}

/// Rewrite stacks taken at switch-out (raw_tp, or tp_btf with [`kstack_at_switch_out`]) as
/// taken off CPU ([`super::stacks::as_off_cpu`]), and merge the rows that then share a stack
/// (`schedule` and `schedule_timeout` callers of one function become one row, as the kernel
/// makes them at switch-in). The kept hash of a stack is the smallest of those it merges.
fn as_off_cpu(raw: &mut Raw, sched: (u64, u64)) {
    let mut by_frames: HashMap<Vec<u64>, u64> = HashMap::new();
    let mut renamed: HashMap<u64, u64> = HashMap::new();
    let mut old: Vec<(u64, Vec<u64>)> = raw.kstacks.drain().collect();
    old.sort_unstable_by_key(|(h, _)| *h);
    for (h, frames) in old {
        let trimmed = super::stacks::as_off_cpu(&frames, sched);
        let keep = *by_frames.entry(trimmed.clone()).or_insert(h);
        if keep == h {
            raw.kstacks.insert(h, trimmed);
        }
        renamed.insert(h, keep);
    }
    let mut rows: Vec<RawRow> = Vec::with_capacity(raw.rows.len());
    let mut at: HashMap<(u32, u32, u64, i32, u32), usize> = HashMap::new();
    for mut r in raw.rows.drain(..) {
        if let Some(&k) = renamed.get(&r.kstack) {
            r.kstack = k;
        }
        let key = (r.tgid, r.pid, r.kstack, r.ustack, r.state);
        match at.get(&key) {
            Some(&i) if r.proc_kstack.is_none() && rows[i].proc_kstack.is_none() => {
                let m = &mut rows[i];
                m.total_ns += r.total_ns;
                m.count += r.count;
                m.max_ns = m.max_ns.max(r.max_ns);
                m.timer_count += r.timer_count;
                m.timer_ns += r.timer_ns;
            }
            _ => {
                at.entry(key).or_insert(rows.len());
                rows.push(r);
            }
        }
    }
    raw.rows = rows;
}

fn symbolize(
    w: &mut Watcher,
    raw: Raw,
    opts: &Options,
    kallsyms: Option<&super::stacks::Kallsyms>,
) -> OffcpuProbe {
    let kaddrs: Vec<u64> = raw.kstacks.values().flatten().copied().collect();
    let per_proc = user_addrs(raw.rows.iter().map(|r| (r.tgid, r.ustack)), &raw.stacks);
    let Names {
        kernel: kframes,
        user: uframes,
    } = symbolize_addrs(w, kaddrs, &per_proc, kallsyms);
    let mut out = OffcpuProbe {
        format_version: OFFCPU_FORMAT,
        scope: super::scope_label(opts.pid, opts.cgroup.as_ref().map(|c| c.0.as_str()), None),
        min_block_us: opts.min_block_us,
        sample_every: if opts.sample_every >= 2 {
            opts.sample_every
        } else {
            0
        },
        sample_floor_us: if opts.sample_every >= 2 {
            opts.sample_floor_us
        } else {
            0
        },
        user_stacks: opts.user_stacks,
        dropped: raw.dropped,
        ..Default::default()
    };
    for r in raw.rows {
        let mut kernel: Vec<Frame> = match (&r.proc_kstack, raw.kstacks.get(&r.kstack)) {
            (Some(frames), _) => frames.clone(),
            (None, Some(ips)) => ips
                .iter()
                .map(|a| {
                    kframes.get(a).cloned().unwrap_or(Frame {
                        func: None,
                        offset: *a,
                        module: None,
                    })
                })
                .collect(),
            (None, None) => Vec::new(),
        };
        // The probe's own frames (the BPF program and the tracepoint trampoline) come first.
        let own = kernel
            .iter()
            .take_while(|f| {
                f.func.as_deref().is_some_and(|n| {
                    n.starts_with("bpf_prog_")
                        || n.starts_with("bpf_trace_run")
                        || n.starts_with("__bpf_trace")
                })
            })
            .count();
        kernel.drain(..own);
        let user: Vec<Frame> = raw
            .stacks
            .get(&r.ustack)
            .filter(|_| r.ustack >= 0)
            .map(|ips| {
                ips.iter()
                    .filter_map(|a| uframes.get(&(r.tgid, *a)).cloned())
                    .collect()
            })
            .unwrap_or_default();
        if opts.user_stacks && r.ustack >= 0 && user.len() <= 1 {
            out.user_stacks_truncated += 1;
        }
        count_frames(
            &kernel,
            &user,
            &mut out.frames_total,
            &mut out.frames_unresolved,
        );
        let process = w.comm(r.tgid).unwrap_or_else(|| r.comm.clone());
        out.stacks.push(OffcpuStack {
            pid: r.tgid,
            process,
            tid: r.pid,
            thread: r.comm,
            state: state_letter(r.state),
            total_ns: r.total_ns,
            count: r.count,
            max_ns: r.max_ns,
            timer_count: r.timer_count,
            timer_ns: r.timer_ns,
            kernel_missing: kernel.is_empty(),
            user_missing: opts.user_stacks && r.ustack < 0,
            kernel,
            user,
        });
    }
    // Largest off-CPU time first.
    heaviest_first(&mut out.stacks, |s| {
        (s.total_ns, (s.pid, s.tid, s.state.clone()))
    });
    out
}

/// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn thread_comm(tgid: u32, pid: u32) -> String {
    crate::host::safe::read_live_string(&format!("/proc/{tgid}/task/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

/// `/proc/PID/task/TID/stack` (root only) as frames: `[<0>] futex_wait_queue+0x60/0x90`.
fn proc_stack(tgid: u32, pid: u32) -> Option<Vec<Frame>> {
    let text =
        crate::host::safe::read_live_string(&format!("/proc/{tgid}/task/{pid}/stack")).ok()?;
    let frames: Vec<Frame> = text
        .lines()
        .filter_map(|l| {
            let sym = l.split_once("] ")?.1.trim();
            let (name, rest) = sym.split_once('+').unwrap_or((sym, "0x0/0"));
            let off = rest.split('/').next().unwrap_or("0x0");
            let offset = u64::from_str_radix(off.trim_start_matches("0x"), 16).unwrap_or(0);
            Some(Frame {
                func: Some(name.to_string()),
                offset,
                module: None,
            })
        })
        .collect();
    (!frames.is_empty()).then_some(frames)
}

/// Per thread of `tgid`: (run time ns, switches) from `/proc/TGID/task/TID/schedstat`.
fn thread_runtimes(tgid: u32) -> BTreeMap<u32, (u64, u64)> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{tgid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(t) =
            crate::host::safe::read_live_string(&format!("/proc/{tgid}/task/{tid}/schedstat"))
        {
            let v: Vec<u64> = t
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if v.len() >= 3 {
                out.insert(tid, (v[0], v[2]));
            }
        }
    }
    out
}

/// Threads of the traced process that did not run at all in the window were blocked since
/// before it: the switch tracepoint never sees them. Add them (whole window, their state and
/// kernel stack from /proc), so a deadlock older than the window still shows.
fn add_never_ran(raw: &mut Raw, tgid: u32, before: &BTreeMap<u32, (u64, u64)>, window_ns: u64) {
    let after = thread_runtimes(tgid);
    for (tid, t1) in &after {
        if before.get(tid) != Some(t1) || raw.rows.iter().any(|r| r.pid == *tid) {
            continue;
        }
        let stat = crate::host::safe::read_live_string(&format!("/proc/{tgid}/task/{tid}/stat"))
            .unwrap_or_default();
        let state = match stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next()) {
            Some('D') => 2,
            Some('S') => 1,
            _ => continue, // running, stopped or gone: not a blocked thread
        };
        raw.rows.push(RawRow {
            tgid,
            pid: *tid,
            kstack: 0,
            proc_kstack: proc_stack(tgid, *tid),
            ustack: -1,
            state,
            total_ns: window_ns,
            count: 1,
            max_ns: window_ns,
            comm: thread_comm(tgid, *tid),
            timer_count: 0,
            timer_ns: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kstack: u64, total_ns: u64, max_ns: u64) -> RawRow {
        RawRow {
            tgid: 7,
            pid: 8,
            kstack,
            proc_kstack: None,
            ustack: 3,
            state: 1,
            total_ns,
            count: 1,
            max_ns,
            comm: "w".into(),
            timer_count: 1,
            timer_ns: total_ns,
        }
    }

    #[test]
    fn switch_out_stacks_merge_as_the_kernel_would_at_switch_in() {
        let sched = (100, 200);
        let mut raw = Raw {
            // Two callers of the same function, through `schedule` and `schedule_timeout`:
            // one stack off CPU. A third stack differs in a caller's frame.
            rows: vec![row(11, 5, 5), row(22, 7, 7), row(33, 1, 1), {
                let mut r = row(0, 4, 4);
                r.proc_kstack = Some(vec![]);
                r
            }],
            stacks: HashMap::new(),
            kstacks: HashMap::from([
                (22, vec![9_000, 50, 150, 130, 300, 400]),
                (11, vec![9_000, 50, 150, 120, 300, 400]),
                (33, vec![9_000, 50, 150, 120, 301, 400]),
            ]),
            dropped: OffcpuDropped::default(),
        };
        as_off_cpu(&mut raw, sched);
        assert_eq!(
            raw.kstacks,
            HashMap::from([(11, vec![300, 400]), (33, vec![301, 400])]),
            "the smallest hash of a merged group is kept"
        );
        let got: Vec<(u64, u64, u64, u64, u64)> = raw
            .rows
            .iter()
            .map(|r| (r.kstack, r.total_ns, r.count, r.max_ns, r.timer_count))
            .collect();
        assert_eq!(
            got,
            vec![(11, 12, 2, 7, 2), (33, 1, 1, 1, 1), (0, 4, 1, 4, 1)]
        );
        assert!(
            raw.rows[2].proc_kstack.is_some(),
            "a /proc row stays as it is"
        );
    }
}
