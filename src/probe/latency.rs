//! The cheap latency probes (`bpf/latency.bpf.c`) for sixty-second and the resource views:
//! run-queue latency per CPU, block I/O latency per (device, op), TCP retransmits per flow.
//!
//! `start` loads and attaches the wanted parts (tp_btf, else raw_tp) and returns at once;
//! `Running::finish` reads the maps once and detaches. The skeleton lives on its own thread
//! (it borrows its storage), so a `Running` can be held across the caller's window.

use std::mem::MaybeUninit;
use std::sync::mpsc;
use std::time::Instant;

use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};
use libbpf_rs::{MapCore as _, MapFlags};

use super::offcpu_model::*;
use super::syscalls::AttachFailure;

#[allow(clippy::all, dead_code, unused_imports, non_camel_case_types)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/latency.skel.rs"));
}
use skel::types::{bio_key, flow_key, flow_val, lat_hist};
use skel::*;

use super::decode::{map_types, Decoder};

map_types!(lat_hist, bio_key, flow_key, flow_val);

/// Which parts to run.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub runqueue: bool,
    pub block: bool,
    pub retransmits: bool,
    /// Run-queue latency of this process's threads only (None: every task).
    pub runqueue_pid: Option<u32>,
    /// Count only block requests issued by this process (0/None: all).
    pub block_pid: Option<u32>,
    /// Count only this whole-disk device (`major:minor`).
    pub block_dev: Option<(u32, u32)>,
}

impl Wanted {
    /// Everything sixty-second uses.
    pub fn all() -> Self {
        Wanted {
            runqueue: true,
            block: true,
            retransmits: true,
            ..Default::default()
        }
    }
}

/// Probes attached and counting; `finish` ends them.
pub struct Running {
    stop: mpsc::Sender<()>,
    result: mpsc::Receiver<LatencyReadings>,
    started: Instant,
}

/// The kernel types `bpf/latency.bpf.c` reads fields of (the roots of its CO-RE relocations):
/// the minimal BTF it loads against holds these and what they embed. One missing makes the
/// minimal load fail and the probe load against the whole kernel BTF (`cost.btf` says so);
/// the root test `latency_loads_against_the_minimal_btf` catches that.
pub const CORE_ROOTS: &[&str] = &[
    "task_struct",
    "request",
    "request_queue",
    "gendisk",
    "sock",
    "net",
];

fn load<'obj>(
    kind: &str,
    w: &Wanted,
    btf: &super::btf::OpenOpts,
    storage: &'obj mut MaybeUninit<libbpf_rs::OpenObject>,
) -> Result<LatencySkel<'obj>, String> {
    let mut open = LatencySkelBuilder::default()
        .open_opts(btf.opts, storage)
        .map_err(|e| format!("open: {e}"))?;
    {
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or("rodata is not memory-mapped")?;
        ro.self_tgid = std::process::id();
        ro.rq_tgid = w.runqueue_pid.unwrap_or(0);
        ro.bio_tgid = w.block_pid.unwrap_or(0);
        ro.bio_dev = w.block_dev.map(|(ma, mi)| (ma << 20) | mi).unwrap_or(0);
    }
    let btf = kind == "tp_btf";
    let p = &mut open.progs;
    let progs = [
        (w.runqueue, true, &mut p.rq_wakeup_btf),
        (w.runqueue, true, &mut p.rq_wakeup_new_btf),
        (w.runqueue, true, &mut p.rq_switch_btf),
        (w.block, true, &mut p.bio_issue_btf),
        (
            w.block && w.block_pid.is_some(),
            true,
            &mut p.bio_insert_btf,
        ),
        (w.block, true, &mut p.bio_complete_btf),
        (w.retransmits, true, &mut p.retrans_btf),
        (w.runqueue, false, &mut p.rq_wakeup_raw),
        (w.runqueue, false, &mut p.rq_wakeup_new_raw),
        (w.runqueue, false, &mut p.rq_switch_raw),
        (w.block, false, &mut p.bio_issue_raw),
        (
            w.block && w.block_pid.is_some(),
            false,
            &mut p.bio_insert_raw,
        ),
        (w.block, false, &mut p.bio_complete_raw),
        (w.retransmits, false, &mut p.retrans_raw),
    ];
    for (want, is_btf, prog) in progs {
        prog.set_autoload(want && is_btf == btf);
    }
    size_maps(&mut open.maps, w, btf)?;
    let mut skel = open.load().map_err(|e| format!("load: {e}"))?;
    libbpf_rs::skel::Skel::attach(&mut skel).map_err(|e| format!("attach: {e}"))?;
    Ok(skel)
}

/// Size the maps for what runs: a part not wanted keeps one-entry maps (cheap to create; its
/// programs are not loaded), the run-queue start times live in task storage on tp_btf (the
/// tid hash only on raw_tp), one run-queue histogram per possible CPU.
fn size_maps(m: &mut OpenLatencyMaps<'_>, w: &Wanted, btf: bool) -> Result<(), String> {
    let e = |what: &'static str| move |e: libbpf_rs::Error| format!("sizing {what}: {e}");
    let ncpu = libbpf_rs::num_possible_cpus().unwrap_or(1).clamp(1, 1024) as u32;
    let rq_hash = if w.runqueue && !btf { 32768 } else { 1 };
    m.rq_starts
        .set_max_entries(rq_hash)
        .map_err(e("rq_starts"))?;
    if !(w.runqueue && btf) {
        m.rq_task_starts
            .set_autocreate(false)
            .map_err(e("rq_task_starts"))?;
    }
    m.rq_hist
        .set_max_entries(if w.runqueue { ncpu } else { 1 })
        .map_err(e("rq_hist"))?;
    if !w.block {
        for map in [&mut m.bio_starts, &mut m.bio_hist] {
            map.set_max_entries(1).map_err(e("block maps"))?;
        }
    }
    if !w.block || w.block_pid.is_none() {
        m.bio_owned.set_max_entries(1).map_err(e("bio_owned"))?;
    }
    if !w.retransmits {
        m.retrans.set_max_entries(1).map_err(e("retrans"))?;
    }
    Ok(())
}

/// Load and attach the wanted probes. Returns once they count (or every attach type failed).
pub fn start(w: &Wanted) -> Result<Running, AttachFailure> {
    start_with(w, "latency", CORE_ROOTS)
}

/// [`start`] with the minimal BTF cut for `roots` (cached per `cut_key`).
fn start_with(
    w: &Wanted,
    cut_key: &'static str,
    roots: &'static [&'static str],
) -> Result<Running, AttachFailure> {
    let parts: Vec<&str> = [
        (w.runqueue, "runqueue"),
        (w.block, "block"),
        (w.retransmits, "retransmits"),
    ]
    .into_iter()
    .filter_map(|(on, part)| on.then_some(part))
    .collect();
    if let Some(why) = super::kernels::running_too_old("latency", &parts) {
        return Err(AttachFailure {
            attempts: vec![("kernel", why)],
        });
    }
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(String, f64), AttachFailure>>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (res_tx, res_rx) = mpsc::channel::<LatencyReadings>();
    let w = w.clone();
    std::thread::Builder::new()
        .name("triage-latency".into())
        .spawn(move || {
            // Two per attach type: against the minimal BTF, then the kernel's.
            let mut storages: [[MaybeUninit<libbpf_rs::OpenObject>; 2]; 2] =
                std::array::from_fn(|_| std::array::from_fn(|_| MaybeUninit::uninit()));
            let mut attempts = Vec::new();
            let t0 = Instant::now();
            for (kind, storage) in super::btf_attach_types()
                .into_iter()
                .zip(storages.iter_mut())
            {
                let loaded = super::btf::load_minimal_first(cut_key, roots, storage, |btf, st| {
                    load(kind, &w, btf, st)
                });
                match loaded {
                    Ok(skel) => {
                        let startup_ms = t0.elapsed().as_secs_f64() * 1000.0;
                        let attached = Instant::now();
                        let _ = ready_tx.send(Ok((kind.to_string(), startup_ms)));
                        let _ = stop_rx.recv();
                        let mut out = read(&skel, &w);
                        super::cost::note("latency", libbpf_rs::skel::Skel::object(&skel));
                        drop(skel);
                        out.attach_type = kind.to_string();
                        out.startup_ms = startup_ms;
                        out.traced_s = attached.elapsed().as_secs_f64();
                        let _ = res_tx.send(out);
                        return;
                    }
                    Err(e) => attempts.push((kind, e)),
                }
            }
            let _ = ready_tx.send(Err(AttachFailure { attempts }));
        })
        .map_err(|e| AttachFailure {
            attempts: vec![("thread", e.to_string())],
        })?;
    match ready_rx.recv() {
        Ok(Ok(_)) => Ok(Running {
            stop: stop_tx,
            result: res_rx,
            started: Instant::now(),
        }),
        Ok(Err(f)) => Err(f),
        Err(e) => Err(AttachFailure {
            attempts: vec![("thread", e.to_string())],
        }),
    }
}

impl Running {
    /// Read the maps once and detach.
    pub fn finish(self) -> LatencyReadings {
        let _ = self.stop.send(());
        self.result.recv().unwrap_or_else(|_| LatencyReadings {
            format_version: LATENCY_FORMAT,
            traced_s: self.started.elapsed().as_secs_f64(),
            ..Default::default()
        })
    }
}

/// A `struct lat_hist` (count, sum, max, slots), trailing empty slots cut.
pub fn hist_of(v: &lat_hist) -> LatHist {
    let mut slots = v.slots.to_vec();
    while slots.last() == Some(&0) {
        slots.pop();
    }
    LatHist {
        count: v.count,
        sum_ns: v.sum_ns,
        max_ns: v.max_ns,
        slots,
    }
}

fn read(skel: &LatencySkel<'_>, w: &Wanted) -> LatencyReadings {
    let m = &skel.maps;
    let mut dec = Decoder::default();
    let mut out = LatencyReadings {
        format_version: LATENCY_FORMAT,
        ..Default::default()
    };
    if w.runqueue {
        let ncpu = libbpf_rs::num_possible_cpus().unwrap_or(1).min(1024) as u32;
        let mut per = Vec::new();
        for cpu in 0..ncpu {
            let h = m
                .rq_hist
                .lookup(&cpu.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .and_then(|v| dec.get::<lat_hist>(&v))
                .map(|v| hist_of(&v))
                .unwrap_or_default();
            per.push(h);
        }
        while per.last().is_some_and(|h| h.count == 0) && per.len() > 1 {
            per.pop();
        }
        out.runqueue = Some(per);
    }
    if w.block {
        let mut rows = Vec::new();
        for k in m.bio_hist.keys() {
            let Some(key) = dec.get::<bio_key>(&k) else {
                continue;
            };
            let Ok(Some(vals)) = m.bio_hist.lookup_percpu(&k, MapFlags::ANY) else {
                continue;
            };
            let mut h = LatHist::default();
            for v in dec.percpu::<lat_hist>(&vals) {
                h.merge(&hist_of(&v));
            }
            let dev = key.dev;
            let (ma, mi) = (dev >> 20, dev & 0xfffff);
            rows.push(BlockLat {
                dev: format!("{ma}:{mi}"),
                name: disk_name(ma, mi),
                op: op_name(key.op),
                hist: h,
            });
        }
        rows.sort_by(|a, b| (&a.dev, &a.op).cmp(&(&b.dev, &b.op)));
        out.block = Some(rows);
    }
    if w.retransmits {
        let mut rows = Vec::new();
        for k in m.retrans.keys() {
            let Some(key) = dec.get::<flow_key>(&k) else {
                continue;
            };
            let Some(v) = m
                .retrans
                .lookup(&k, MapFlags::ANY)
                .ok()
                .flatten()
                .and_then(|v| dec.get::<flow_val>(&v))
            else {
                continue;
            };
            let (family, sport, dport) = (key.family, key.sport, key.dport);
            let addr = |b: &[u8; 16]| -> String {
                if family == 10 {
                    std::net::Ipv6Addr::from(*b).to_string()
                } else {
                    std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
                }
            };
            let fmt = |a: String, p: u16| {
                if family == 10 {
                    format!("[{a}]:{p}")
                } else {
                    format!("{a}:{p}")
                }
            };
            rows.push(Retransmit {
                netns: key.netns,
                local: fmt(addr(&key.saddr), sport),
                remote: fmt(addr(&key.daddr), dport),
                state: tcp_state(v.state),
                count: v.count,
            });
        }
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.local, &a.remote).cmp(&(&b.local, &b.remote)))
        });
        out.retransmits = Some(rows);
    }
    for (i, d) in out.dropped.iter_mut().enumerate() {
        *d = m
            .lat_dropped
            .lookup_percpu(&(i as u32).to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .map(|v| dec.percpu_sum(&v))
            .unwrap_or(0);
    }
    out.decode_errors = dec.errors;
    out
}

/// `vda` for 254:0, from /sys/dev/block/M:m/uevent.
pub fn disk_name(major: u32, minor: u32) -> Option<String> {
    let u = crate::host::safe::read_live_string(&format!("/sys/dev/block/{major}:{minor}/uevent"))
        .ok()?;
    u.lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(str::to_string)
}

pub fn op_name(op: u32) -> String {
    match op {
        0 => "read".into(),
        1 => "write".into(),
        2 => "flush".into(),
        3 => "discard".into(),
        5 => "secure_erase".into(),
        9 => "write_zeroes".into(),
        o => format!("op {o}"),
    }
}

pub fn tcp_state(s: u32) -> String {
    u8::try_from(s)
        .ok()
        .and_then(crate::host::sockdiag::state_name)
        .map(str::to_string)
        .unwrap_or_else(|| format!("state {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root missing from the cut (here all but `task_struct`): the block and retransmit
    /// reads cannot be relocated against it, the load fails, and the probe loads against the
    /// whole kernel BTF instead, saying why.
    #[test]
    #[ignore = "needs root: loads eBPF programs"]
    fn a_cut_missing_a_root_falls_back_to_the_kernel_btf() {
        let _ = crate::probe::cost::own_cost(); // forget earlier notes
        let r = start_with(&Wanted::all(), "latency-test-short", &["task_struct"])
            .expect("loads against the kernel BTF");
        let out = r.finish();
        assert_eq!(out.attach_type, "tp_btf");
        let btf = crate::probe::cost::own_cost().btf;
        assert_eq!(btf.len(), 1, "{btf:?}");
        assert_eq!(btf[0].source, "kernel", "{btf:?}");
        let why = btf[0].fallback.as_deref().unwrap_or_default();
        assert!(why.starts_with("with the minimal BTF: load"), "{why}");
    }

    #[test]
    fn decodes_a_histogram_and_names() {
        // Laid out as the C side writes it: count, sum_ns, max_ns, slots[LAT_SLOTS].
        let mut v = vec![0u8; 24 + LAT_SLOTS * 8];
        v[0..8].copy_from_slice(&3u64.to_ne_bytes());
        v[8..16].copy_from_slice(&3000u64.to_ne_bytes());
        v[16..24].copy_from_slice(&1500u64.to_ne_bytes());
        v[24 + 10 * 8..24 + 11 * 8].copy_from_slice(&3u64.to_ne_bytes());
        let mut dec = Decoder::default();
        let h = hist_of(&dec.get::<lat_hist>(&v).unwrap());
        assert_eq!(dec.get::<lat_hist>(&v[..v.len() - 1]).map(|_| ()), None);
        assert_eq!(dec.errors, 1);
        assert_eq!(
            (h.count, h.sum_ns, h.max_ns, h.slots.len()),
            (3, 3000, 1500, 11)
        );
        assert_eq!(op_name(0), "read");
        assert_eq!(op_name(1), "write");
        assert_eq!(tcp_state(1), "ESTABLISHED");
        assert_eq!(tcp_state(99), "state 99");
    }
}
