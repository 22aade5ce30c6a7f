//! What the two stack probes (`offcpu`, `profile`) share: remembering each process's
//! mappings while the window runs (so processes that exit before the end still symbolize),
//! symbolizing every address once after the window (blazesym), and how their stacks are
//! gathered, counted and sorted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use blazesym::symbolize::source::{Elf, Kernel, Process, Source};
use blazesym::symbolize::{cache, Input, Symbolized, Symbolizer};
use blazesym::MaybeDefault;

use super::offcpu_model::Frame;

/// A process's mappings and name, kept from when it was first seen.
#[derive(Debug, Clone, Default)]
struct ProcInfo {
    comm: Option<String>,
    /// (start, end, file offset, path) of file-backed executable mappings.
    maps: Vec<(u64, u64, u64, String)>,
}

fn read_proc(tgid: u32) -> ProcInfo {
    let comm = crate::host::safe::read_live_string(&format!("/proc/{tgid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string());
    let maps = crate::host::safe::read_live_string(&format!("/proc/{tgid}/maps"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let range = it.next()?;
            let perms = it.next()?;
            let off = u64::from_str_radix(it.next()?, 16).ok()?;
            let _dev = it.next()?;
            let _ino = it.next()?;
            let path = it.collect::<Vec<_>>().join(" ");
            if !perms.contains('x') || path.is_empty() {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
                off,
                path,
            ))
        })
        .collect();
    ProcInfo { comm, maps }
}

/// Tracks processes seen during the window and caches their mappings at once.
pub(crate) struct Watcher {
    symbolizer: Symbolizer,
    procs: HashMap<u32, ProcInfo>,
}

impl Watcher {
    pub(crate) fn new() -> Self {
        Watcher {
            symbolizer: Symbolizer::builder()
                .enable_code_info(false)
                .enable_inlined_fns(false)
                .build(),
            procs: HashMap::new(),
        }
    }

    pub(crate) fn see(&mut self, tgid: u32) {
        if tgid == 0 || self.procs.contains_key(&tgid) {
            return;
        }
        let info = read_proc(tgid);
        let _ = self
            .symbolizer
            .cache(&cache::Cache::Process(cache::Process::new(tgid.into())));
        self.procs.insert(tgid, info);
    }

    /// The process's name (its main thread's) when it was first seen.
    pub(crate) fn comm(&self, tgid: u32) -> Option<String> {
        self.procs.get(&tgid).and_then(|p| p.comm.clone())
    }
}

/// The addresses of a stack, up to the first empty slot.
pub(crate) fn ips_of(ips: &[u64]) -> Vec<u64> {
    ips.iter().copied().take_while(|&a| a != 0).collect()
}

fn frame_of(s: &Symbolized<'_>, addr: u64, fallback: impl Fn(u64) -> Frame) -> Frame {
    match s {
        Symbolized::Sym(sym) => Frame {
            func: Some(sym.name.to_string()),
            offset: sym.offset as u64,
            module: sym
                .module
                .as_ref()
                .map(|m| m.to_string_lossy().into_owned()),
        },
        Symbolized::Unknown(_) => fallback(addr),
    }
}

/// Names of kernel addresses, and of user addresses per process.
pub(crate) struct Names {
    pub kernel: HashMap<u64, Frame>,
    pub user: HashMap<(u32, u64), Frame>,
}

/// Larger than any kernel's symbol list (about 5 MB, 120,000 lines on 6.18).
const KALLSYMS_CAP: usize = 64 << 20;

/// One read of `/proc/kallsyms` (formatting it costs the kernel tens of milliseconds), kept in
/// a memory file so that the symbolizer reads this copy instead of asking the kernel again.
pub(crate) struct Kallsyms {
    bytes: Vec<u8>,
    file: Option<std::fs::File>,
}

impl Kallsyms {
    pub(crate) fn read() -> std::io::Result<Self> {
        use std::io::Write as _;
        let bytes =
            crate::host::safe::read_capped(&std::fs::File::open("/proc/kallsyms")?, KALLSYMS_CAP)?;
        let file = rustix::fs::memfd_create("triage-kallsyms", rustix::fs::MemfdFlags::CLOEXEC)
            .ok()
            .map(std::fs::File::from)
            .filter(|mut f| f.write_all(&bytes).is_ok());
        Ok(Kallsyms { bytes, file })
    }

    /// The path the symbolizer reads the copy from.
    fn path(&self) -> Option<std::path::PathBuf> {
        use std::os::fd::AsRawFd as _;
        let f = self.file.as_ref()?;
        Some(format!("/proc/self/fd/{}", f.as_raw_fd()).into())
    }

    /// The scheduler's text, `[__sched_text_start, __sched_text_end)`: the functions the
    /// kernel itself leaves out of a blocked task's stack. `None` when the listing hides
    /// addresses (kptr_restrict) or lacks the markers.
    pub(crate) fn sched_text(&self) -> Option<(u64, u64)> {
        sched_text(&self.bytes)
    }
}

fn sched_text(kallsyms: &[u8]) -> Option<(u64, u64)> {
    let (mut start, mut end) = (None, None);
    for line in kallsyms.split(|&c| c == b'\n') {
        // "ffffffff8226e862 T __sched_text_end"
        let mut f = line.split(|&c| c == b' ');
        let (Some(addr), Some(_), Some(name)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let slot = match name {
            b"__sched_text_start" => &mut start,
            b"__sched_text_end" => &mut end,
            _ => continue,
        };
        *slot = std::str::from_utf8(addr)
            .ok()
            .and_then(|a| u64::from_str_radix(a, 16).ok());
        if start.is_some() && end.is_some() {
            break;
        }
    }
    match (start?, end?) {
        (s, e) if s != 0 && s < e => Some((s, e)),
        _ => None,
    }
}

/// A kernel stack taken in the scheduler's tracepoint (at switch-out) as the same task's stack
/// taken once it is off CPU would read (`bpf_get_task_stack`): the frames before the first
/// scheduler function (the BPF program and the tracepoint's call into it) and every scheduler
/// function (`__schedule`, `schedule`, `schedule_timeout`...) dropped. A stack without a
/// scheduler frame is returned as it is (it was taken off CPU already).
pub(crate) fn as_off_cpu(frames: &[u64], sched: (u64, u64)) -> Vec<u64> {
    let inside = |a: &u64| (sched.0..sched.1).contains(a);
    match frames.iter().position(inside) {
        Some(i) => frames[i..].iter().filter(|a| !inside(a)).copied().collect(),
        None => frames.to_vec(),
    }
}

/// Symbolize every kernel address in one batch and each process's user addresses in one
/// batch per process; frames still unnamed but inside a known file (the process exited) are
/// symbolized from the file by offset. Shared by the off-CPU and the on-CPU probes. Kernel
/// symbols come from `kallsyms` when given (a copy already read), else from the kernel's.
pub(crate) fn symbolize_addrs(
    w: &mut Watcher,
    mut kaddrs: Vec<u64>,
    per_proc: &BTreeMap<u32, BTreeSet<u64>>,
    kallsyms: Option<&Kallsyms>,
) -> Names {
    // Kernel: one batch of every kernel address.
    kaddrs.sort_unstable();
    kaddrs.dedup();
    let ksrc = Source::Kernel(Kernel {
        vmlinux: MaybeDefault::None,
        kallsyms: match kallsyms.and_then(Kallsyms::path) {
            Some(p) => MaybeDefault::Some(p),
            None => MaybeDefault::Default,
        },
        ..Default::default()
    });
    let kframes: HashMap<u64, Frame> = match w.symbolizer.symbolize(&ksrc, Input::AbsAddr(&kaddrs))
    {
        Ok(syms) => kaddrs
            .iter()
            .zip(syms.iter())
            .map(|(&a, s)| {
                (
                    a,
                    frame_of(s, a, |a| Frame {
                        func: None,
                        offset: a,
                        module: None,
                    }),
                )
            })
            .collect(),
        Err(_) => HashMap::new(),
    };
    // User: one batch per process.
    let mut uframes: HashMap<(u32, u64), Frame> = HashMap::new();
    for (tgid, addrs) in per_proc {
        w.see(*tgid);
        let addrs: Vec<u64> = addrs.iter().copied().collect();
        let info = w.procs.get(tgid).cloned().unwrap_or_default();
        let fallback = |a: u64| match info.maps.iter().find(|m| m.0 <= a && a < m.1) {
            Some(m) => Frame {
                func: None,
                offset: a - m.0 + m.2,
                module: Some(m.3.clone()),
            },
            None => Frame {
                func: None,
                offset: a,
                module: None,
            },
        };
        let mut p = Process::new((*tgid).into());
        p.debug_syms = true;
        let syms = w
            .symbolizer
            .symbolize(&Source::Process(p), Input::AbsAddr(&addrs))
            .unwrap_or_default();
        for (i, &a) in addrs.iter().enumerate() {
            let f = match syms.get(i) {
                Some(s) => frame_of(s, a, fallback),
                None => fallback(a),
            };
            uframes.insert((*tgid, a), f);
        }
    }
    // Frames still unnamed but inside a known file (the process exited): symbolize them
    // from the file itself, by file offset.
    let mut by_module: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for f in uframes.values() {
        if let (None, Some(m)) = (&f.func, &f.module) {
            by_module.entry(m.clone()).or_default().insert(f.offset);
        }
    }
    for (module, offs) in by_module {
        let offs: Vec<u64> = offs.into_iter().collect();
        let src = Source::Elf(Elf::new(&module));
        let Ok(syms) = w.symbolizer.symbolize(&src, Input::FileOffset(&offs)) else {
            continue;
        };
        let named: HashMap<u64, (String, u64)> = offs
            .iter()
            .zip(syms.iter())
            .filter_map(|(&o, s)| match s {
                Symbolized::Sym(sym) => Some((o, (sym.name.to_string(), sym.offset as u64))),
                Symbolized::Unknown(_) => None,
            })
            .collect();
        for f in uframes.values_mut() {
            if f.func.is_none() && f.module.as_deref() == Some(module.as_str()) {
                if let Some((name, off)) = named.get(&f.offset) {
                    f.func = Some(name.clone());
                    f.offset = *off;
                }
            }
        }
    }
    Names {
        kernel: kframes,
        user: uframes,
    }
}

/// Until `stop()` says the window is over: every 100 ms, remember the processes that
/// `tgids()` (the probe's aggregation map) names for the first time.
pub(crate) fn watch(
    w: &mut Watcher,
    mut stop: impl FnMut() -> bool,
    mut tgids: impl FnMut() -> BTreeSet<u32>,
) {
    while !stop() {
        std::thread::sleep(Duration::from_millis(100));
        for t in tgids() {
            w.see(t);
        }
    }
}

/// The user addresses of every row's user stack (`ustack` >= 0: its id in `stacks`), per
/// process: what [`symbolize_addrs`] names in one batch per process.
pub(crate) fn user_addrs(
    rows: impl Iterator<Item = (u32, i32)>,
    stacks: &HashMap<i32, Vec<u64>>,
) -> BTreeMap<u32, BTreeSet<u64>> {
    let mut per_proc: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    for (tgid, ustack) in rows {
        if let Some(ips) = stacks.get(&ustack).filter(|_| ustack >= 0) {
            per_proc
                .entry(tgid)
                .or_default()
                .extend(ips.iter().copied());
        }
    }
    per_proc
}

/// Count a stack's frames into `total`, and those without a name into `unresolved`.
pub(crate) fn count_frames(
    kernel: &[Frame],
    user: &[Frame],
    total: &mut u64,
    unresolved: &mut u64,
) {
    for f in kernel.iter().chain(user.iter()) {
        *total += 1;
        if !f.resolved() {
            *unresolved += 1;
        }
    }
}

/// Heaviest first by `key`'s weight; ties by the rest of the key (ids), so output is
/// deterministic.
pub fn heaviest_first<T, K: Ord>(s: &mut [T], key: impl Fn(&T) -> (u64, K)) {
    s.sort_by_cached_key(|x| {
        let (weight, ids) = key(x);
        (std::cmp::Reverse(weight), ids)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_text_is_read_from_kallsyms_and_hidden_addresses_give_none() {
        let k = b"ffffffff81000000 T _text\n\
ffffffff82266000 T __sched_text_start\n\
ffffffff82266010 T __schedule\n\
ffffffff8226e862 T __sched_text_end\n\
ffffffffc0000000 t x [mod]\n";
        assert_eq!(
            sched_text(k),
            Some((0xffffffff82266000, 0xffffffff8226e862))
        );
        let hidden =
            b"0000000000000000 T __sched_text_start\n0000000000000000 T __sched_text_end\n";
        assert_eq!(sched_text(hidden), None);
        assert_eq!(sched_text(b"ffffffff82266000 T __sched_text_start\n"), None);
        assert_eq!(
            sched_text(b"zz T __sched_text_start\n1 T __sched_text_end\n"),
            None
        );
        assert_eq!(sched_text(b""), None);
    }

    #[test]
    fn switch_out_stacks_lose_the_tracing_and_scheduler_frames() {
        let sched = (100, 200);
        // BPF program, bpf_trace_run4, __schedule, schedule, then the caller's frames.
        let out = [9_000, 50, 150, 120, 300, 400];
        assert_eq!(as_off_cpu(&out, sched), vec![300, 400]);
        // A scheduler function further out (a mutex slow path) goes too, as the kernel drops it.
        assert_eq!(as_off_cpu(&[7, 150, 310, 180, 320], sched), vec![310, 320]);
        // Taken off CPU already: unchanged.
        assert_eq!(as_off_cpu(&[300, 400], sched), vec![300, 400]);
        // The end of the range is outside it.
        assert_eq!(as_off_cpu(&[150, 200], sched), vec![200]);
    }

    /// Heaviest first; equal weights in id order, whatever order they came in.
    #[test]
    fn heaviest_first_breaks_ties_by_ids() {
        let mut v = vec![(5u64, 2u32, "S"), (9, 7, "S"), (5, 1, "D"), (5, 1, "S")];
        heaviest_first(&mut v, |x| (x.0, (x.1, x.2)));
        assert_eq!(v, [(9, 7, "S"), (5, 1, "D"), (5, 1, "S"), (5, 2, "S")]);
    }

    /// A row's user stack counts when its id is valid and known; per process, deduplicated.
    #[test]
    fn user_addrs_gathers_each_process_s_addresses_once() {
        let stacks = HashMap::from([(0, vec![0x10, 0x20]), (1, vec![0x20, 0x30]), (-14, vec![1])]);
        let rows = [(7u32, 0i32), (7, 1), (8, -14), (9, 5)];
        let got = user_addrs(rows.into_iter(), &stacks);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            got[&7].iter().copied().collect::<Vec<_>>(),
            [0x10, 0x20, 0x30]
        );
    }

    #[test]
    fn count_frames_counts_the_unnamed() {
        let named = Frame {
            func: Some("f".into()),
            offset: 0,
            module: None,
        };
        let unnamed = Frame {
            func: None,
            offset: 4,
            module: Some("/bin/x".into()),
        };
        let (mut total, mut unresolved) = (1, 0);
        count_frames(
            &[named.clone(), unnamed.clone()],
            &[unnamed],
            &mut total,
            &mut unresolved,
        );
        assert_eq!((total, unresolved), (4, 2));
    }
}
