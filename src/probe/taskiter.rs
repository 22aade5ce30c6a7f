//! The process scan through the BPF task iterator (`bpf/tasks.bpf.c`): one `read()` of an
//! `iter/task` link returns a fixed-size record for every task, instead of an open, read and
//! parse of `/proc/PID/stat` (and a `stat` of `/proc/PID/fd`, a `readlink` of
//! `/proc/PID/ns/net`) per process. The records are decoded in `collect::taskdump`, which
//! needs no BPF, so the dump is recorded into fixtures (`tasks.bin`) and replays anywhere.
//!
//! Used only for the running kernel, as seen from the initial PID namespace (the iterator
//! walks the PIDs of the reader's namespace but reports their global numbers), when eBPF is
//! allowed; everything else reads /proc. The program is loaded once per triage run and its
//! link kept; each dump creates a new iterator from the link.

use std::io::Read;
use std::mem::MaybeUninit;

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

/// What the iterator scan needs: the initial PID namespace, then the common eBPF
/// preconditions. `Err(why)` when it cannot run here.
fn precondition() -> Result<(), String> {
    let link = std::fs::read_link("/proc/self/ns/pid")
        .map_err(|e| format!("cannot read /proc/self/ns/pid: {e}"))?;
    let ino = crate::collect::procs::ns_inode(&link.to_string_lossy());
    if ino != Some(INIT_PID_NS) {
        return Err(
            "triage runs in a PID namespace of its own; the task iterator would show the \
             host's processes with the host's numbers"
                .into(),
        );
    }
    if let Some(b) = super::preflight::bpf_blockers().first() {
        return Err(b.reason.clone());
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

/// Load the iterator program and attach it. Returns the link (it keeps the program loaded).
fn attach() -> Result<libbpf_rs::Link, String> {
    let (minimal, why_not) = super::btf::open_opts_minimal("tasks", CORE_ROOTS);
    let mut fallback = why_not;
    if minimal.source == "minimal" {
        match attach_with(&minimal) {
            Ok(link) => {
                note_btf(&minimal, None);
                return Ok(link);
            }
            Err(e) => fallback = Some(format!("iter with the minimal BTF: {e}")),
        }
    }
    let btf = super::btf::open_opts();
    let link = attach_with(&btf)?;
    note_btf(&btf, fallback);
    Ok(link)
}

fn note_btf(btf: &super::btf::OpenOpts, fallback: Option<String>) {
    super::cost::note_btf(super::cost_model::BtfUse {
        probe: "tasks".into(),
        source: btf.source.into(),
        types: btf.types,
        fallback,
    });
}

fn attach_with(btf: &super::btf::OpenOpts) -> Result<libbpf_rs::Link, String> {
    let mut storage = MaybeUninit::uninit();
    let open = TasksSkelBuilder::default()
        .open_opts(btf.opts, &mut storage)
        .map_err(|e| format!("open: {e}"))?;
    let skel = open.load().map_err(|e| format!("load: {e}"))?;
    let link = skel
        .progs
        .dump_task
        .attach()
        .map_err(|e| format!("attach iter/task: {e}"))?;
    Ok(link)
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

/// A dumper for `LiveSource::with_task_dumper`, with the program loaded and attached, or why
/// the iterator cannot be used here (the caller says so and scans /proc). A dump that fails
/// later is a problem of that snapshot, whose scan then reads /proc.
pub fn dumper() -> Result<TaskDumper, String> {
    precondition()?;
    let link = attach()?;
    let hint = std::sync::atomic::AtomicUsize::new(1 << 20);
    Ok(Box::new(move || {
        let d = dump(&link, hint.load(std::sync::atomic::Ordering::Relaxed))?;
        hint.store(d.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(d)
    }))
}
