//! The syscall counter (`bpf/syscalls.bpf.c`): load with the cheapest attach type this kernel
//! takes (tp_btf, then raw_tp, then the classic tracepoint), run the caller's window, read the
//! maps once, detach.

use std::mem::MaybeUninit;
use std::time::Instant;

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags};

use super::decode::{c_str, map_types, Decoder};
use super::output::*;
use super::syscalls_skel::types::{
    cache_ent, errno_key, proc_id, proc_info, proc_sys_key, proc_sys_val, sys_stat,
};
use super::syscalls_skel::*;

map_types!(
    sys_stat,
    proc_sys_key,
    proc_sys_val,
    cache_ent,
    proc_id,
    proc_info,
    errno_key
);

/// Mirrors `bpf/syscalls.h`.
const MAX_SYSCALLS: u32 = 512;
const MAX_SLOTS: usize = 36;
const _: () = assert!(std::mem::size_of::<sys_stat>() == (3 + MAX_SLOTS) * 8);
const CACHE_SLOTS: u32 = 1024;

/// What to trace.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub pid: Option<u32>,
    /// v2 cgroup: (path as given, cgroup id = inode, depth below the root).
    pub cgroup: Option<(String, u64, u32)>,
    pub comm: Option<String>,
    pub latency: bool,
    /// Capacity of the (process, syscall) map.
    pub max_proc_entries: u32,
    /// Try only this attach type (tests of the fallbacks); `None`: the cheapest that loads.
    pub only_attach: Option<String>,
}

/// Attach types in the order tried.
pub const ATTACH_TYPES: [&str; 3] = ["tp_btf", "raw_tp", "tracepoint"];

/// Every attach type failed: what each one said.
#[derive(Debug, Clone)]
pub struct AttachFailure {
    pub attempts: Vec<(&'static str, String)>,
}

impl std::fmt::Display for AttachFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .attempts
            .iter()
            .map(|(k, e)| format!("{k}: {e}"))
            .collect();
        write!(f, "{}", parts.join("; "))
    }
}

/// The kernel types `bpf/syscalls.bpf.c` reads fields of (its CO-RE relocation roots), for the
/// minimal BTF it loads against ([`super::minbtf`]).
pub const CORE_ROOTS: &[&str] = &["task_struct", "pt_regs", "trace_event_raw_sys_exit"];

fn load<'obj>(
    kind: &str,
    opts: &Options,
    btf: &super::btf::OpenOpts,
    storage: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
) -> Result<SyscallsSkel<'obj>, String> {
    let builder = SyscallsSkelBuilder::default();
    let mut open = builder
        .open_opts(btf.opts, storage)
        .map_err(|e| format!("open: {e}"))?;
    {
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or("rodata is not memory-mapped")?;
        super::decode::set_scope!(ro, opts.pid, &opts.cgroup, comm: &opts.comm);
        ro.measure_latency = opts.latency;
    }
    let p = &mut open.progs;
    let progs = [
        ("tp_btf", false, &mut p.triage_enter_btf),
        ("tp_btf", true, &mut p.triage_exit_btf),
        ("raw_tp", false, &mut p.triage_enter_raw),
        ("raw_tp", true, &mut p.triage_exit_raw),
        ("tracepoint", false, &mut p.triage_enter_tp),
        ("tracepoint", true, &mut p.triage_exit_tp),
    ];
    for (k, is_exit, prog) in progs {
        prog.set_autoload(k == kind && (is_exit || opts.latency));
    }
    // Start times live in task storage for tp_btf, in the tid hash otherwise; the unused
    // one is not created (task storage needs 5.11+, which a fallback kernel may predate).
    if !opts.latency || kind == "tp_btf" {
        let _ = open.maps.starts.set_max_entries(1);
    }
    if !opts.latency || kind != "tp_btf" {
        open.maps
            .task_starts
            .set_autocreate(false)
            .map_err(|e| format!("task_starts: {e}"))?;
    }
    if opts.max_proc_entries > 0 {
        open.maps
            .proc_sys
            .set_max_entries(opts.max_proc_entries)
            .map_err(|e| format!("sizing proc_sys: {e}"))?;
    }
    let mut skel = open.load().map_err(|e| format!("load: {e}"))?;
    libbpf_rs::skel::Skel::attach(&mut skel).map_err(|e| format!("attach: {e}"))?;
    Ok(skel)
}

/// Load and attach, run `during` (the window), read the maps, detach. Returns the probe's
/// output and `during`'s result. On failure `during` is not run.
pub fn trace<R>(
    opts: &Options,
    during: impl FnOnce() -> R,
) -> Result<(SyscallsProbe, R), AttachFailure> {
    // Two per attach type: against the minimal BTF, then the kernel's.
    let mut storages: [[MaybeUninit<libbpf_rs::OpenObject>; 2]; 3] =
        std::array::from_fn(|_| std::array::from_fn(|_| MaybeUninit::uninit()));
    let parts: &[&str] = if opts.cgroup.is_some() {
        &["cgroup filter"]
    } else {
        &[]
    };
    if let Some(why) = super::kernels::running_too_old("syscalls", parts) {
        return Err(AttachFailure {
            attempts: vec![("kernel", why)],
        });
    }
    let mut attempts = Vec::new();
    let t0 = Instant::now();
    for (kind, storage) in ATTACH_TYPES.iter().zip(storages.iter_mut()) {
        if opts.only_attach.as_deref().is_some_and(|o| o != *kind) {
            continue;
        }
        let loaded = super::btf::load_minimal_first("syscalls", CORE_ROOTS, storage, |btf, st| {
            load(kind, opts, btf, st)
        });
        match loaded {
            Ok(skel) => {
                let startup = t0.elapsed();
                let attached = Instant::now();
                let r = during();
                let traced = attached.elapsed();
                let mut out = read(&skel, opts);
                super::cost::note("syscalls", libbpf_rs::skel::Skel::object(&skel));
                drop(skel);
                out.attach_type = kind.to_string();
                out.traced_s = traced.as_secs_f64();
                out.startup_ms = startup.as_secs_f64() * 1000.0;
                return Ok((out, r));
            }
            Err(e) => attempts.push((*kind, e)),
        }
    }
    Err(AttachFailure { attempts })
}

/// The four counters of a `proc_sys_val`, in the order the tables keep them.
fn counters(v: &proc_sys_val) -> [u64; 4] {
    [v.count, v.errors, v.time_ns, v.fail_ns]
}

/// Sum per-CPU counter arrays.
fn add4(a: &mut [u64; 4], b: [u64; 4]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.saturating_add(y);
    }
}

fn read(skel: &SyscallsSkel<'_>, opts: &Options) -> SyscallsProbe {
    let m = &skel.maps;
    let mut out = SyscallsProbe {
        format_version: SYSCALLS_FORMAT,
        arch: super::names::native_arch().into(),
        latency: opts.latency,
        scope: Scope {
            pid: opts.pid,
            cgroup: opts.cgroup.as_ref().map(|c| c.0.clone()),
            comm: opts.comm.clone(),
        },
        max_proc_entries: m.proc_sys.max_entries(),
        ..Default::default()
    };
    // (tgid, start) -> nr -> [count, errors, time, time failing]: the hash plus every CPU's
    // cache slots.
    type Counts = std::collections::BTreeMap<u32, [u64; 4]>;
    let mut per: std::collections::BTreeMap<(u32, u64), Counts> = Default::default();
    let mut dec = Decoder::default();
    let mut add = |key: &proc_sys_key, v: [u64; 4]| {
        if key.tgid == 0 || v[0] == 0 {
            return;
        }
        let e = per
            .entry((key.tgid, key.start_ns))
            .or_default()
            .entry(key.nr)
            .or_default();
        add4(e, v);
    };
    for k in m.proc_sys.keys() {
        let Some(key) = dec.get::<proc_sys_key>(&k) else {
            continue;
        };
        if let Ok(Some(vals)) = m.proc_sys.lookup_percpu(&k, MapFlags::ANY) {
            let mut s = [0u64; 4];
            for v in dec.percpu::<proc_sys_val>(&vals) {
                add4(&mut s, counters(&v));
            }
            add(&key, s);
        }
    }
    for idx in 0..CACHE_SLOTS {
        if let Ok(Some(vals)) = m
            .proc_cache
            .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
        {
            for e in dec.percpu::<cache_ent>(&vals) {
                add(&e.key, counters(&e.val));
            }
        }
    }
    let mut procs: std::collections::BTreeMap<(u32, u64), ProcessTotal> = per
        .into_iter()
        .map(|((tgid, start), counts)| {
            let syscalls = counts
                .into_iter()
                .map(|(nr, c)| ProcessSyscall {
                    nr,
                    count: c[0],
                    errors: c[1],
                    time_ns: c[2],
                    fail_ns: c[3],
                })
                .collect();
            let p = ProcessTotal {
                pid: tgid,
                start_ns: start,
                comm: None,
                syscalls,
                children: false,
                exited: 0,
            };
            ((tgid, start), p)
        })
        .collect();
    let mut parents: std::collections::BTreeMap<(u32, u64), u32> = Default::default();
    let mut names: std::collections::BTreeMap<u32, String> = Default::default();
    for k in m.proc_infos.keys() {
        let Some(key) = dec.get::<proc_id>(&k) else {
            continue;
        };
        let Some(p) = procs.get_mut(&(key.tgid, key.start_ns)) else {
            continue;
        };
        let Ok(Some(v)) = m.proc_infos.lookup(&k, MapFlags::ANY) else {
            continue;
        };
        if let Some(info) = dec.get::<proc_info>(&v) {
            p.comm = Some(c_str(&info.comm));
            names.insert(key.tgid, c_str(&info.comm));
            parents.insert((key.tgid, key.start_ns), info.ppid);
        }
    }
    // Processes that exited before the end (a storm of short-lived children): folded into
    // their parent's "children of" row, so the table shows who spawns them, not 10k pids.
    // Only parents with at least FOLD_MIN exited children: a process that simply exited
    // before the end keeps its own row.
    const FOLD_MIN: u64 = 10;
    let gone: std::collections::BTreeSet<(u32, u64)> = procs
        .keys()
        .filter(|(tgid, _)| !std::path::Path::new(&format!("/proc/{tgid}")).exists())
        .copied()
        .collect();
    let mut per_parent: std::collections::BTreeMap<u32, u64> = Default::default();
    for k in &gone {
        if let Some(&ppid) = parents.get(k) {
            *per_parent.entry(ppid).or_default() += 1;
        }
    }
    let mut folded: std::collections::BTreeMap<u32, (u64, Counts)> = Default::default();
    procs.retain(|&(tgid, start), p| {
        let Some(&ppid) = parents.get(&(tgid, start)) else {
            return true;
        };
        if ppid == 0
            || !gone.contains(&(tgid, start))
            || per_parent.get(&ppid).copied().unwrap_or(0) < FOLD_MIN
        {
            return true;
        }
        let e = folded.entry(ppid).or_default();
        e.0 += 1;
        for s in &p.syscalls {
            let c = e.1.entry(s.nr).or_default();
            for (i, v) in [s.count, s.errors, s.time_ns, s.fail_ns]
                .into_iter()
                .enumerate()
            {
                c[i] += v;
            }
        }
        false
    });
    out.processes = procs.into_values().collect();
    // Calls of processes that did not fit in proc_sys, by parent.
    let mut kids: std::collections::BTreeMap<u32, Counts> = Default::default();
    let mut exited: std::collections::BTreeMap<u32, u64> = Default::default();
    for k in m.child_sys.keys() {
        // Key: (parent's tgid, syscall number); start_ns unused.
        let Some(key) = dec.get::<proc_sys_key>(&k) else {
            continue;
        };
        if let Ok(Some(vals)) = m.child_sys.lookup_percpu(&k, MapFlags::ANY) {
            let e = kids.entry(key.tgid).or_default().entry(key.nr).or_default();
            for v in dec.percpu::<proc_sys_val>(&vals) {
                add4(e, counters(&v));
            }
        }
    }
    for (ppid, (n, counts)) in folded {
        let e = kids.entry(ppid).or_default();
        for (nr, c) in counts {
            let t = e.entry(nr).or_default();
            for i in 0..4 {
                t[i] += c[i];
            }
        }
        *exited.entry(ppid).or_default() += n;
    }
    for (ppid, counts) in kids {
        let comm = out
            .processes
            .iter()
            .find(|p| p.pid == ppid)
            .and_then(|p| p.comm.clone())
            .or_else(|| names.get(&ppid).cloned())
            .or_else(|| {
                std::fs::read_to_string(format!("/proc/{ppid}/comm"))
                    .ok()
                    .map(|c| c.trim_end().to_string())
            });
        out.processes.push(ProcessTotal {
            pid: ppid,
            start_ns: 0,
            comm,
            syscalls: counts
                .into_iter()
                .map(|(nr, c)| ProcessSyscall {
                    nr,
                    count: c[0],
                    errors: c[1],
                    time_ns: c[2],
                    fail_ns: c[3],
                })
                .collect(),
            children: true,
            exited: exited.get(&ppid).copied().unwrap_or(0),
        });
    }
    for p in &mut out.processes {
        p.syscalls.sort_by_key(|s| s.nr);
    }
    for k in m.errnos.keys() {
        let Some(key) = dec.get::<errno_key>(&k) else {
            continue;
        };
        let Ok(Some(vals)) = m.errnos.lookup_percpu(&k, MapFlags::ANY) else {
            continue;
        };
        out.errnos.push(ErrnoCount {
            nr: key.nr,
            errno: key.err,
            count: dec.percpu_sum(&vals),
        });
    }
    out.errnos.sort_by_key(|e| (e.nr, e.errno));
    // The totals last: the probe still counts while the maps are read, so reading them after
    // the per-process tables keeps every row within its total.
    for nr in 0..MAX_SYSCALLS {
        let Ok(Some(vals)) = m.sys_stats.lookup_percpu(&nr.to_ne_bytes(), MapFlags::ANY) else {
            continue;
        };
        let mut total = sys_stat::default();
        for v in dec.percpu::<sys_stat>(&vals) {
            total.count = total.count.saturating_add(v.count);
            total.errors = total.errors.saturating_add(v.errors);
            total.time_ns = total.time_ns.saturating_add(v.time_ns);
            for (t, x) in total.slots.iter_mut().zip(v.slots) {
                *t = t.saturating_add(x);
            }
        }
        if total.count == 0 {
            continue;
        }
        let mut slots = total.slots.to_vec();
        while slots.last() == Some(&0) {
            slots.pop();
        }
        out.syscalls.push(SyscallTotal {
            nr,
            count: total.count,
            errors: total.errors,
            time_ns: total.time_ns,
            slots,
        });
    }
    let mut d = |i: u32| {
        m.dropped
            .lookup_percpu(&i.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .map(|v| dec.percpu_sum(&v))
            .unwrap_or(0)
    };
    out.dropped = Dropped {
        process_syscalls: d(0),
        process_names: d(1),
        errnos: d(2),
        start_times: d(3),
        bad_numbers: d(4),
        decode_errors: 0,
    };
    out.dropped.decode_errors = dec.errors;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `struct cache_ent` as bpf/syscalls.h lays it out, field by field in native order.
    fn cache_ent_bytes(f: [u64; 8]) -> Vec<u8> {
        let (tgid, nr, start, ppid) = (f[0] as u32, f[1] as u32, f[2], f[7] as u32);
        let mut b = Vec::new();
        b.extend(tgid.to_ne_bytes());
        b.extend(nr.to_ne_bytes());
        b.extend(start.to_ne_bytes());
        for v in &f[3..7] {
            b.extend(v.to_ne_bytes());
        }
        b.extend(ppid.to_ne_bytes());
        b.extend(0u32.to_ne_bytes());
        b
    }

    #[test]
    fn cache_entry_round_trips_through_the_generated_type() {
        let f = [4242, 110, 1 << 40, 7, 2, 900, 300, 1];
        let bytes = cache_ent_bytes(f);
        let mut dec = Decoder::default();
        let e: cache_ent = dec.get(&bytes).expect("exact size decodes");
        assert_eq!(
            (e.key.tgid, e.key.nr, e.key.start_ns, e.ppid),
            (4242, 110, 1 << 40, 1)
        );
        assert_eq!(counters(&e.val), [7, 2, 900, 300]);
        // And back: the fields re-encoded as the C side would give the same bytes.
        let again = cache_ent_bytes([
            e.key.tgid.into(),
            e.key.nr.into(),
            e.key.start_ns,
            e.val.count,
            e.val.errors,
            e.val.time_ns,
            e.val.fail_ns,
            e.ppid.into(),
        ]);
        assert_eq!(again, bytes);
        assert_eq!(dec.errors, 0);
    }

    #[test]
    fn short_or_long_values_are_refused_and_counted() {
        let bytes = cache_ent_bytes([1; 8]);
        let mut dec = Decoder::default();
        assert!(dec.get::<cache_ent>(&bytes[..bytes.len() - 4]).is_none());
        assert!(dec.get::<proc_sys_val>(&bytes).is_none());
        let mut long = bytes.clone();
        long.push(0);
        assert!(dec.get::<cache_ent>(&long).is_none());
        assert_eq!(dec.errors, 3);
        // A per-CPU read with one bad copy: counted, and the good copies still add up.
        let stat = vec![0u8; std::mem::size_of::<sys_stat>()];
        let mut one = stat.clone();
        one[..8].copy_from_slice(&5u64.to_ne_bytes());
        let vals = vec![one, stat[..8].to_vec()];
        let got = dec.percpu::<sys_stat>(&vals);
        assert_eq!((got[0].count, got[1].count), (5, 0));
        assert_eq!(dec.errors, 4);
    }
}
