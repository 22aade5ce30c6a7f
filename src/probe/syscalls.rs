//! The syscall counter (`bpf/syscalls.bpf.c`): load with the cheapest attach type this kernel
//! takes (tp_btf, then raw_tp, then the classic tracepoint), run the caller's window, read the
//! maps once, detach.

use super::{u32_at, u64_at};
use std::mem::MaybeUninit;
use std::time::Instant;

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags};

use super::output::*;
use super::syscalls_skel::*;

/// Mirrors `bpf/syscalls.h`.
const MAX_SYSCALLS: u32 = 512;
const MAX_SLOTS: usize = 36;
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

fn load<'obj>(
    kind: &str,
    opts: &Options,
    storage: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
) -> Result<SyscallsSkel<'obj>, String> {
    let builder = SyscallsSkelBuilder::default();
    let btf = super::btf::open_opts();
    let mut open = builder
        .open_opts(btf.opts, storage)
        .map_err(|e| format!("open: {e}"))?;
    {
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or("rodata is not memory-mapped")?;
        ro.targ_tgid = opts.pid.unwrap_or(0);
        ro.self_tgid = std::process::id();
        if let Some((_, id, level)) = &opts.cgroup {
            ro.targ_cgid = *id;
            ro.targ_cg_level = *level as i32;
        }
        if let Some(c) = &opts.comm {
            ro.filter_comm = true;
            for (i, b) in c.bytes().take(15).enumerate() {
                ro.targ_comm[i] = b as i8;
            }
        }
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
    let mut storages: [MaybeUninit<libbpf_rs::OpenObject>; 3] = [
        MaybeUninit::uninit(),
        MaybeUninit::uninit(),
        MaybeUninit::uninit(),
    ];
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
        match load(kind, opts, storage) {
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

/// Sum the per-CPU copies of a value made of u64 fields.
fn sum_percpu(vals: &[Vec<u8>], fields: usize) -> Vec<u64> {
    let mut out = vec![0u64; fields];
    for v in vals {
        for (i, o) in out.iter_mut().enumerate() {
            *o += u64_at(v, i * 8);
        }
    }
    out
}

fn comm_of(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
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
    let mut add = |key: &[u8], v: [u64; 4]| {
        let (tgid, nr, start) = (u32_at(key, 0), u32_at(key, 4), u64_at(key, 8));
        if tgid == 0 || v[0] == 0 {
            return;
        }
        let e = per.entry((tgid, start)).or_default().entry(nr).or_default();
        for i in 0..4 {
            e[i] += v[i];
        }
    };
    for key in m.proc_sys.keys() {
        if let Ok(Some(vals)) = m.proc_sys.lookup_percpu(&key, MapFlags::ANY) {
            let s = sum_percpu(&vals, 4);
            add(&key, [s[0], s[1], s[2], s[3]]);
        }
    }
    for idx in 0..CACHE_SLOTS {
        if let Ok(Some(vals)) = m
            .proc_cache
            .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
        {
            // struct cache_ent: 16-byte key, then count, errors, time_ns, fail_ns.
            for v in &vals {
                add(
                    &v[..16],
                    [u64_at(v, 16), u64_at(v, 24), u64_at(v, 32), u64_at(v, 40)],
                );
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
    for key in m.proc_infos.keys() {
        let (tgid, start) = (u32_at(&key, 0), u64_at(&key, 8));
        if let (Some(p), Ok(Some(v))) = (
            procs.get_mut(&(tgid, start)),
            m.proc_infos.lookup(&key, MapFlags::ANY),
        ) {
            p.comm = Some(comm_of(&v[..16]));
            names.insert(tgid, comm_of(&v[..16]));
            if v.len() >= 20 {
                parents.insert((tgid, start), u32_at(&v, 16));
            }
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
    for key in m.child_sys.keys() {
        if let Ok(Some(vals)) = m.child_sys.lookup_percpu(&key, MapFlags::ANY) {
            let s = sum_percpu(&vals, 4);
            let e = kids
                .entry(u32_at(&key, 0))
                .or_default()
                .entry(u32_at(&key, 4))
                .or_default();
            for i in 0..4 {
                e[i] += s[i];
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
    for key in m.errnos.keys() {
        let Ok(Some(vals)) = m.errnos.lookup_percpu(&key, MapFlags::ANY) else {
            continue;
        };
        out.errnos.push(ErrnoCount {
            nr: u32_at(&key, 0),
            errno: u32_at(&key, 4),
            count: sum_percpu(&vals, 1)[0],
        });
    }
    out.errnos.sort_by_key(|e| (e.nr, e.errno));
    // The totals last: the probe still counts while the maps are read, so reading them after
    // the per-process tables keeps every row within its total.
    for nr in 0..MAX_SYSCALLS {
        let Ok(Some(vals)) = m.sys_stats.lookup_percpu(&nr.to_ne_bytes(), MapFlags::ANY) else {
            continue;
        };
        let s = sum_percpu(&vals, 3 + MAX_SLOTS);
        if s[0] == 0 {
            continue;
        }
        let mut slots = s[3..].to_vec();
        while slots.last() == Some(&0) {
            slots.pop();
        }
        out.syscalls.push(SyscallTotal {
            nr,
            count: s[0],
            errors: s[1],
            time_ns: s[2],
            slots,
        });
    }
    let d = |i: u32| {
        m.dropped
            .lookup_percpu(&i.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .map(|v| sum_percpu(&v, 1)[0])
            .unwrap_or(0)
    };
    out.dropped = Dropped {
        process_syscalls: d(0),
        process_names: d(1),
        errnos: d(2),
        start_times: d(3),
        bad_numbers: d(4),
    };
    out
}
