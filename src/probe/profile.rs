//! The on-CPU sampler (`bpf/profile.bpf.c`): open one perf event per online CPU (CPU clock by
//! default, cycles on request), attach the BPF program to each, run the window while
//! remembering each new process's mappings as it shows up (so processes that exit before the
//! end still symbolize), detach, read the maps once, symbolize with the off-CPU probe's
//! symbolizer.
//!
//! Invariants: one map update per sample in the kernel, nothing per sample in user space;
//! what could not be captured (map full, stack collisions) is counted, not hidden.

use std::collections::{BTreeSet, HashMap};
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::time::Instant;

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags};

use super::profile_model::*;
use super::stacks::{
    count_frames, heaviest_first, ips_of, symbolize_addrs, user_addrs, watch, Names, Watcher,
};
use super::syscalls::AttachFailure;

#[allow(clippy::all, dead_code, unused_imports, non_camel_case_types)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/profile.skel.rs"));
}
use skel::types::{profile_key, profile_val};
use skel::*;

use super::decode::{c_str, map_types, set_scope, Decoder};

map_types!(profile_key, profile_val);

/// Mirrors `bpf/profile.h`.
const MAX_DEPTH: usize = 127;
const PS_SAMPLES: u32 = 0;
const PS_IDLE: u32 = 1;
const PS_COUNTED: u32 = 2;
const PS_DROP_AGG: u32 = 3;
const PS_DROP_KSTACK: u32 = 4;
const PS_DROP_USTACK: u32 = 5;
/// bpf_get_stackid's "no stack in that mode" (a user-mode sample has no kernel stack).
const EFAULT: i32 = -14;

/// What to sample.
#[derive(Debug, Clone)]
pub struct Options {
    pub pid: Option<u32>,
    /// v2 cgroup: (path as given, cgroup id = inode, depth below the root).
    pub cgroup: Option<(String, u64, u32)>,
    /// Only threads with this command name (first 15 bytes, as the kernel keeps it).
    pub comm: Option<String>,
    /// Samples per second per CPU.
    pub frequency_hz: u64,
    /// `cpu-clock` or `cycles` (falls back to cpu-clock where there is no PMU).
    pub event: String,
    pub user_stacks: bool,
    /// Capacity of the count map and of the stack map.
    pub max_entries: u32,
    pub stack_entries: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pid: None,
            cgroup: None,
            comm: None,
            frequency_hz: 99,
            event: "cpu-clock".into(),
            user_stacks: true,
            max_entries: 16384,
            stack_entries: 16384,
        }
    }
}

/// `struct perf_event_attr` up to `config1` (PERF_ATTR_SIZE_VER1, 72 bytes): every field
/// this probe sets; the kernel zero-extends the rest.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period_or_freq: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const PERF_TYPE_HARDWARE: u32 = 0;
const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_HW_CPU_CYCLES: u64 = 0;
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
/// `attr.freq`: the period field is a frequency.
const FLAG_FREQ: u64 = 1 << 10;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// Open the sampling event on `cpu`, for every task.
fn perf_open(event: &str, freq: u64, cpu: u32) -> std::io::Result<OwnedFd> {
    let (type_, config) = match event {
        "cycles" => (PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES),
        _ => (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK),
    };
    let attr = PerfEventAttr {
        type_,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config,
        sample_period_or_freq: freq,
        flags: FLAG_FREQ,
        ..Default::default()
    };
    // SAFETY: attr is a valid perf_event_attr prefix whose size field says how long it is;
    // pid -1 with a CPU is "every task on that CPU"; no group.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1 as libc::pid_t,
            cpu as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// CPUs in `/sys/devices/system/cpu/online` (`0-3,8`).
pub fn online_cpus() -> Vec<u32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

fn load<'obj>(
    opts: &Options,
    storage: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
) -> Result<ProfileSkel<'obj>, String> {
    let mut open = ProfileSkelBuilder::default()
        .open(storage)
        .map_err(|e| format!("open: {e}"))?;
    {
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or("rodata is not memory-mapped")?;
        set_scope!(ro, opts.pid, &opts.cgroup, comm: &opts.comm);
        ro.user_stacks = opts.user_stacks;
        ro.kernel_stacks = true;
        ro.idle_stacks = true;
    }
    open.maps
        .profile_counts
        .set_max_entries(opts.max_entries.max(64))
        .map_err(|e| format!("sizing profile_counts: {e}"))?;
    open.maps
        .profile_stacks
        .set_max_entries(opts.stack_entries.max(64))
        .map_err(|e| format!("sizing profile_stacks: {e}"))?;
    open.load().map_err(|e| format!("load: {e}"))
}

/// Load, open and attach one event per online CPU, poll until `stop()` says the window is
/// over (every 100 ms, remembering new processes), detach, read and symbolize. On failure
/// nothing ran.
pub fn trace(
    opts: &Options,
    mut stop: impl FnMut() -> bool,
) -> Result<ProfileProbe, AttachFailure> {
    let fail = |e: String| AttachFailure {
        attempts: vec![("perf_event", e)],
    };
    let t0 = Instant::now();
    let mut storage = MaybeUninit::uninit();
    let skel = load(opts, &mut storage).map_err(fail)?;
    let cpus = online_cpus();
    if cpus.is_empty() {
        return Err(fail(
            "no online CPU listed in /sys/devices/system/cpu/online".into(),
        ));
    }
    let mut event = opts.event.clone();
    let mut links = Vec::new();
    for &cpu in &cpus {
        let fd = match perf_open(&event, opts.frequency_hz, cpu) {
            Ok(fd) => fd,
            // No PMU (most VMs): the CPU clock samples the same places, by time.
            Err(e) if event == "cycles" && links.is_empty() && is_no_pmu(&e) => {
                event = "cpu-clock".into();
                perf_open(&event, opts.frequency_hz, cpu).map_err(|e| fail(open_err(&e, opts)))?
            }
            Err(e) => return Err(fail(open_err(&e, opts))),
        };
        use std::os::fd::{AsRawFd as _, IntoRawFd as _};
        let link = skel
            .progs
            .profile_sample
            .attach_perf_event(fd.as_raw_fd())
            .map_err(|e| fail(format!("attach on CPU {cpu}: {e}")))?;
        // The link owns the event now: libbpf closes it when the link is destroyed.
        let _ = fd.into_raw_fd();
        links.push(link);
    }
    let startup = t0.elapsed();
    let attached = Instant::now();
    let mut w = Watcher::new();
    if let Some(p) = opts.pid {
        w.see(p);
    }
    watch(&mut w, &mut stop, || {
        skel.maps
            .profile_counts
            .keys()
            .filter_map(|k| super::decode::decode::<profile_key>(&k).ok())
            .map(|k| k.tgid)
            .collect()
    });
    drop(links);
    let traced = attached.elapsed();
    let raw = read(&skel, &cpus);
    super::cost::note("profile", libbpf_rs::skel::Skel::object(&skel));
    drop(skel);
    let mut out = symbolize(&mut w, raw, opts);
    out.event = event;
    out.traced_s = traced.as_secs_f64();
    out.startup_ms = startup.as_secs_f64() * 1000.0;
    Ok(out)
}

fn is_no_pmu(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) | Some(libc::ENODEV)
    )
}

fn open_err(e: &std::io::Error, opts: &Options) -> String {
    let max = std::fs::read_to_string("/proc/sys/kernel/perf_event_max_sample_rate")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    match (e.raw_os_error(), max) {
        (Some(libc::EINVAL), Some(m)) if opts.frequency_hz > m => format!(
            "perf_event_open: {e}: -F {} is above kernel.perf_event_max_sample_rate ({m})",
            opts.frequency_hz
        ),
        _ => format!("perf_event_open: {e}"),
    }
}

struct RawRow {
    tgid: u32,
    pid: u32,
    cpu: u32,
    kstack: i32,
    ustack: i32,
    count: u64,
    comm: String,
}

struct Raw {
    rows: Vec<RawRow>,
    stacks: HashMap<i32, Vec<u64>>,
    per_cpu: Vec<CpuSamples>,
    counted: u64,
    dropped: ProfileDropped,
}

fn read(skel: &ProfileSkel<'_>, cpus: &[u32]) -> Raw {
    let m = &skel.maps;
    let mut dec = Decoder::default();
    let rows: Vec<RawRow> = dec
        .entries::<profile_key, profile_val>(&m.profile_counts)
        .into_iter()
        .map(|(key, v)| RawRow {
            tgid: key.tgid,
            pid: key.pid,
            cpu: key.cpu,
            kstack: key.kstack,
            ustack: key.ustack,
            count: v.count,
            comm: c_str(&v.comm),
        })
        .collect();
    let ids: BTreeSet<i32> = rows
        .iter()
        .flat_map(|r| [r.kstack, r.ustack])
        .filter(|&i| i >= 0)
        .collect();
    let mut stacks = HashMap::new();
    for id in ids {
        if let Some(v) = dec.lookup::<[u64; MAX_DEPTH]>(&m.profile_stacks, &id.to_ne_bytes()) {
            stacks.insert(id, ips_of(&v));
        }
    }
    // Per slot, per possible CPU.
    let mut slot = |i: u32| -> Vec<u64> {
        m.profile_stats
            .lookup_percpu(&i.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .map(|v| dec.percpu::<u64>(&v))
            .unwrap_or_default()
    };
    let (samples, idle) = (slot(PS_SAMPLES), slot(PS_IDLE));
    let mut sum = |i: u32| slot(i).iter().sum::<u64>();
    let per_cpu = cpus
        .iter()
        .map(|&c| CpuSamples {
            cpu: c,
            samples: samples.get(c as usize).copied().unwrap_or(0),
            idle: idle.get(c as usize).copied().unwrap_or(0),
        })
        .collect();
    let counted = sum(PS_COUNTED);
    let mut dropped = ProfileDropped {
        aggregations: sum(PS_DROP_AGG),
        kernel_stacks: sum(PS_DROP_KSTACK),
        user_stacks: sum(PS_DROP_USTACK),
        decode_errors: 0,
    };
    dropped.decode_errors = dec.errors;
    Raw {
        rows,
        stacks,
        per_cpu,
        counted,
        dropped,
    }
}

fn symbolize(w: &mut Watcher, raw: Raw, opts: &Options) -> ProfileProbe {
    let kaddrs: Vec<u64> = raw
        .rows
        .iter()
        .filter_map(|r| raw.stacks.get(&r.kstack).filter(|_| r.kstack >= 0))
        .flatten()
        .copied()
        .collect();
    let per_proc = user_addrs(raw.rows.iter().map(|r| (r.tgid, r.ustack)), &raw.stacks);
    let Names { kernel, user } = symbolize_addrs(w, kaddrs, &per_proc, None);
    let unknown = |a: u64| Frame {
        func: None,
        offset: a,
        module: None,
    };
    let mut out = ProfileProbe {
        format_version: PROFILE_FORMAT,
        attach_type: "perf_event".into(),
        frequency_hz: opts.frequency_hz,
        scope: super::scope_label(
            opts.pid,
            opts.cgroup.as_ref().map(|c| c.0.as_str()),
            opts.comm.as_deref(),
        ),
        user_stacks: opts.user_stacks,
        kernel_stacks: true,
        per_cpu: raw.per_cpu,
        counted: raw.counted,
        dropped: raw.dropped,
        ..Default::default()
    };
    for r in raw.rows {
        let kernel: Vec<Frame> = if r.kstack >= 0 {
            raw.stacks
                .get(&r.kstack)
                .map(|ips| {
                    ips.iter()
                        .map(|a| kernel.get(a).cloned().unwrap_or_else(|| unknown(*a)))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let user: Vec<Frame> = if r.ustack >= 0 {
            raw.stacks
                .get(&r.ustack)
                .map(|ips| {
                    ips.iter()
                        .map(|a| {
                            user.get(&(r.tgid, *a))
                                .cloned()
                                .unwrap_or_else(|| unknown(*a))
                        })
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        count_frames(
            &kernel,
            &user,
            &mut out.frames_total,
            &mut out.frames_unresolved,
        );
        // The main thread's own comm, as the kernel had it at this sample, names the process:
        // the watcher may have seen it between fork and exec (with its parent's name).
        let process = if r.tgid == 0 || r.pid == r.tgid {
            r.comm.clone()
        } else {
            w.comm(r.tgid).unwrap_or_else(|| r.comm.clone())
        };
        out.stacks.push(ProfileStack {
            pid: r.tgid,
            process,
            tid: r.pid,
            thread: r.comm,
            cpu: r.cpu,
            samples: r.count,
            kernel,
            user,
            // Lost (map full or collision), as opposed to "not in that mode" (EFAULT).
            kernel_missing: r.kstack < 0 && r.kstack != EFAULT,
            user_missing: opts.user_stacks && r.ustack < 0 && r.ustack != EFAULT,
        });
    }
    // Most samples first.
    heaviest_first(&mut out.stacks, |s| (s.samples, (s.pid, s.tid, s.cpu)));
    out
}
