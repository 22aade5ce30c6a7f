//! The process scan through the BPF task iterator (`bpf/tasks.bpf.c`): one `read()` of an
//! `iter/task` link returns a fixed-size record for every task, instead of an open, read and
//! parse of `/proc/PID/stat` (and a `stat` of `/proc/PID/fd`, a `readlink` of
//! `/proc/PID/ns/net`) per process. The records are decoded in `collect::taskdump`, which
//! needs no BPF, so the dump is recorded into fixtures (`tasks.bin`) and replays anywhere.
//!
//! Used only for the running kernel, as seen from the initial PID namespace (the iterator
//! walks the PIDs of the reader's namespace but reports their global numbers), when eBPF is
//! allowed; everything else reads /proc. The program is loaded once per triage process and its
//! link kept (every window of an `--interval` series reuses it); each dump creates a new
//! iterator from the link. Its cost goes into `report.cost` as probe `tasks` ([`note_cost`]).

use std::io::Read;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd as _, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};

use crate::collect::taskdump;
use crate::host::source::TaskDumper;

#[allow(clippy::all, dead_code, unused_imports, non_camel_case_types)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/tasks.skel.rs"));
}
use skel::*;

/// `collect::taskdump::RawTaskRec`, the type the records are decoded as (without BPF too), is
/// the generated `task_rec` of bpf/tasks.h: same size, every field at the same offset.
macro_rules! same_layout {
    ($($f:ident),+ $(,)?) => {
        const _: () = {
            use std::mem::{offset_of, size_of};
            use taskdump::RawTaskRec as Mirror;
            use types::task_rec as Generated;
            assert!(size_of::<Mirror>() == size_of::<Generated>());
            $(assert!(offset_of!(Mirror, $f) == offset_of!(Generated, $f));)+
        };
    };
}
same_layout!(
    version,
    size,
    tgid,
    pid,
    ppid,
    state,
    exit_state,
    flags,
    cpu,
    nr_threads,
    nr_fds,
    have,
    netns,
    utime,
    stime,
    sum_exec_runtime,
    prev_utime,
    prev_stime,
    min_flt,
    maj_flt,
    nvcsw,
    nivcsw,
    start_boottime,
    rss_file,
    rss_anon,
    rss_swap,
    rss_shmem,
    sig_utime,
    sig_stime,
    sig_sum_sched_runtime,
    sig_prev_utime,
    sig_prev_stime,
    sig_min_flt,
    sig_maj_flt,
    sig_cutime,
    sig_cstime,
    comm,
);

/// The inode of the initial PID namespace (`PROC_PID_INIT_INO`).
const INIT_PID_NS: u64 = 0xEFFF_FFFC;

/// The fix when triage runs in a PID namespace of its own.
pub const PIDNS_FIX: &str = "run in the host PID namespace (docker --pid=host, Kubernetes \
     hostPID: true); meanwhile processes are read from /proc";

/// What the iterator scan needs: the common eBPF preconditions, the kernel floor, then the
/// initial PID namespace. `Err` (why, with the fix) when it cannot run here.
fn precondition() -> Result<(), crate::collect::Problem> {
    use crate::collect::Problem;
    if let Some(b) = super::preflight::bpf_blockers().into_iter().next() {
        return Err(b);
    }
    // An external BTF file (--btf) serves CO-RE only: the kernel resolves an iterator's
    // target (bpf_iter_task) by its own BTF ids, which libbpf reads from sysfs.
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(Problem::new(
            super::checks::BTF_BLOCKER,
            "sys/kernel/btf/vmlinux",
            "sys/kernel/btf/vmlinux absent: the task iterator attaches by the kernel's own BTF \
             ids (like tp_btf), which an external BTF file (--btf) cannot provide",
        )
        .with_fix(
            "inside a container, bind-mount the host's /sys/kernel/btf; otherwise boot a kernel \
             built with CONFIG_DEBUG_INFO_BTF=y (meanwhile processes are read from /proc)",
        ));
    }
    if let Some(why) = super::kernels::running_too_old("tasks", &[]) {
        return Err(
            Problem::new("eBPF: kernel version", "proc/sys/kernel/osrelease", why)
                .with_fix(super::attach_fix(super::kernels::SKIP_ENV)),
        );
    }
    let link = std::fs::read_link("/proc/self/ns/pid").map_err(|e| {
        Problem::new(
            "eBPF: PID namespace",
            "proc/self/ns/pid",
            format!("cannot read /proc/self/ns/pid: {e}"),
        )
    })?;
    let ino = crate::collect::procs::ns_inode(&link.to_string_lossy());
    if ino != Some(INIT_PID_NS) {
        return Err(Problem::new(
            "eBPF: PID namespace",
            "proc/self/ns/pid",
            "triage runs in a PID namespace of its own; the task iterator would show the \
             host's processes with the host's numbers",
        )
        .with_fix(PIDNS_FIX));
    }
    Ok(())
}

/// The kernel types `bpf/tasks.bpf.c` reads fields of (its CO-RE relocation roots), for the
/// minimal BTF it loads against ([`super::minbtf`]); a missing one makes it load against the
/// whole kernel BTF (`cost.btf` says so).
pub const CORE_ROOTS: &[&str] = &[
    "bpf_iter__task",
    "bpf_iter_meta",
    "task_struct",
    "signal_struct",
    "mm_struct",
    "nsproxy",
    "net",
    "files_struct",
    "fdtable",
];

/// Loads of the iterator program in this process (doctor's check included).
static LOADS: AtomicU32 = AtomicU32::new(0);

/// How many times this process loaded the iterator program: once per run, however many
/// windows an `--interval` series has (plus doctor's own check).
pub fn loads() -> u32 {
    LOADS.load(Ordering::Relaxed)
}

/// Load the iterator program and attach it, against the minimal BTF first. Returns the link
/// (it keeps the program loaded) and a duplicate of the program's fd (for its
/// `bpf_prog_info`: run count and time).
fn attach() -> Result<(libbpf_rs::Link, OwnedFd), String> {
    let mut storages = [MaybeUninit::uninit(), MaybeUninit::uninit()];
    super::btf::load_minimal_first("tasks", CORE_ROOTS, &mut storages, attach_with)
}

fn attach_with(
    btf: &super::btf::OpenOpts,
    storage: &mut MaybeUninit<libbpf_rs::OpenObject>,
) -> Result<(libbpf_rs::Link, OwnedFd), String> {
    let open = TasksSkelBuilder::default()
        .open_opts(btf.opts, storage)
        .map_err(|e| format!("open: {e}"))?;
    let skel = open.load().map_err(|e| format!("load: {e}"))?;
    LOADS.fetch_add(1, Ordering::Relaxed);
    let prog = skel
        .progs
        .dump_task
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("dup the program fd: {e}"))?;
    let link = skel
        .progs
        .dump_task
        .attach()
        .map_err(|e| format!("attach iter/task: {e}"))?;
    Ok((link, prog))
}

/// The iterator, loaded and attached once per process and kept: every window of a series
/// (each with its own `LiveSource`) dumps through the same link.
struct Loaded {
    link: libbpf_rs::Link,
    prog: OwnedFd,
    /// The size of the last dump, to size the next one's buffer.
    hint: AtomicUsize,
    /// Dumped since the cost was last noted.
    used: AtomicBool,
    /// (run count, run time) already reported in `report.cost`.
    noted: Mutex<(u64, u64)>,
}

/// The loaded iterator, or why it cannot run (also kept: a series does not retry each window).
static LOADED: Mutex<Option<Result<Arc<Loaded>, String>>> = Mutex::new(None);

fn loaded() -> Result<Arc<Loaded>, String> {
    let mut slot = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = slot.as_ref() {
        return r.clone();
    }
    let r = precondition()
        .map_err(|p| p.reason)
        .and_then(|()| attach())
        .map(|(link, prog)| {
            Arc::new(Loaded {
                link,
                prog,
                hint: AtomicUsize::new(1 << 20),
                used: AtomicBool::new(false),
                noted: Mutex::new((0, 0)),
            })
        });
    *slot = Some(r.clone());
    r
}

/// Put the iterator's program into `report.cost` (probe `tasks`) if it dumped since the last
/// note: verified instructions, and the runs (one per task per dump) since then when BPF stats
/// are on. Called when a window's scans are done.
pub fn note_cost() {
    let Some(Ok(l)) = LOADED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .cloned()
    else {
        return;
    };
    if l.used.swap(false, Ordering::Relaxed) {
        let mut since = l.noted.lock().unwrap_or_else(|e| e.into_inner());
        super::cost::note_loaded("tasks", "dump_task", l.prog.as_fd(), &mut since);
    }
}

/// Read one dump through `link`: the header, then every task's record.
fn dump(link: &libbpf_rs::Link, hint: usize) -> std::io::Result<Vec<u8>> {
    let mut it = libbpf_rs::Iter::new(link).map_err(std::io::Error::other)?;
    let mut out = taskdump::header(
        rustix::param::clock_ticks_per_second(),
        rustix::param::page_size() as u64,
    );
    // Whole records per read: a seq_file hands out what fits and keeps the rest.
    let mut buf = vec![0u8; (hint.max(taskdump::RECORD_SIZE) + (64 << 10)).min(16 << 20)];
    out.reserve(hint);
    loop {
        let n = it.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

/// A dumper for `LiveSource::with_task_dumper`, through the iterator loaded once per process,
/// or why the iterator cannot be used here (the caller says so and scans /proc). A dump that
/// fails later is a problem of that snapshot, whose scan then reads /proc.
pub fn dumper() -> Result<TaskDumper, String> {
    let l = loaded()?;
    Ok(Box::new(move || {
        l.used.store(true, Ordering::Relaxed);
        let d = dump(&l.link, l.hint.load(Ordering::Relaxed))?;
        l.hint.store(d.len(), Ordering::Relaxed);
        Ok(d)
    }))
}

/// What `triage doctor` tries: the preconditions, then load, attach and one dump read and
/// decoded for real (then everything is dropped). `Ok(attach type)`, or why not and the fix.
pub fn check() -> Result<String, (String, Option<String>)> {
    precondition().map_err(|p| (p.reason, p.fix))?;
    let (link, _) = attach().map_err(|e| {
        let fix = super::attach_fix(&e);
        (e, Some(fix))
    })?;
    let bytes = dump(&link, 1 << 20).map_err(|e| (format!("read iter/task: {e}"), None))?;
    let d =
        taskdump::TaskDump::decode(&bytes).map_err(|e| (format!("decode the dump: {e}"), None))?;
    // The dump must show this very process (its global pid: initial PID namespace).
    let me = std::process::id() as i32;
    if !d.tasks.iter().any(|t| t.tgid == me && t.pid == me) {
        return Err((
            format!(
                "the task iterator's dump ({} tasks) lacks triage itself (pid {me})",
                d.tasks.len()
            ),
            None,
        ));
    }
    Ok("iter".into())
}
