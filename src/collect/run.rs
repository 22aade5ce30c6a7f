//! One collection run: readings at t0, task samples inside the window, readings at t1, and the
//! end-of-window facts. The same code reads the live system (optionally recording it) and a
//! fixture, so a fixture replays exactly what a live run saw.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use procfs_core::DiskStat;
use serde::{Deserialize, Serialize};

use super::cgroup::{self, CgroupLayout, CgroupScan};
use super::deep::{self, DeepEnd, DeepSnapshot, Spec};
use super::disk::{self, BlockDevice, Mount};
use super::kmsg::{self, KmsgRecord};
use super::net::{self, NetReading, TcpStates};
use super::procs::{self, FdUse, ProcScan};
use super::system::{self, Limits, SystemReading, TaskSample};
use super::Problem;
use crate::host::{FixtureTree, LiveSource, Source};

/// Upper bound on cgroups walked per snapshot (a Kubernetes node has a few hundred).
pub const MAX_CGROUPS: usize = 2000;
/// D-state threads listed at most.
pub const MAX_D_THREADS: usize = 50;

/// `meta.json` of a fixture: what a snapshot tree cannot tell by itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    pub format_version: u32,
    /// RFC 3339 wall-clock start and end of the window.
    pub start: String,
    pub end: String,
    /// Monotonic seconds between the t0 and t1 readings.
    pub elapsed_s: f64,
    pub clock_ticks_per_s: u64,
    pub page_size_bytes: u64,
    /// Sampling period of runnable/blocked tasks inside the window.
    pub sample_interval_ms: u64,
    pub triage_version: String,
    /// Free text: what was running (`cpu-saturation scenario`), or `hand-made: ...`.
    #[serde(default)]
    pub note: String,
}

pub const META_FORMAT: u32 = 1;

/// Counters read at both ends of the window.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub system: SystemReading,
    pub disks: Option<Vec<DiskStat>>,
    pub procs: ProcScan,
    /// Network namespace inode -> its counters.
    pub net: BTreeMap<u64, NetReading>,
    pub cgroups: Option<CgroupScan>,
    /// Queueing disciplines of our own namespace (rtnetlink), when the source can tell.
    pub qdiscs: Option<Vec<crate::host::qdisc::Qdisc>>,
    /// What only the deep dives read (empty unless the run's `Spec` asked for it).
    pub deep: DeepSnapshot,
}

/// The network namespaces found at t0, and how each one is read.
#[derive(Debug, Clone, Default)]
pub struct Namespaces {
    /// Our own namespace (read through proc/net).
    pub own: Option<u64>,
    /// inode -> member pids at t0.
    pub members: BTreeMap<u64, Vec<i32>>,
    /// Processes whose namespace we could not read (permissions).
    pub denied: usize,
    /// Their pids.
    pub denied_pids: Vec<i32>,
}

impl Namespaces {
    /// The `net` directory that shows namespace `ino`'s counters.
    fn base(&self, ino: u64) -> Option<String> {
        if Some(ino) == self.own {
            return Some("proc/net".into());
        }
        self.members
            .get(&ino)?
            .first()
            .map(|p| format!("proc/{p}/net"))
    }
}

/// Facts read once, at the end of the window.
#[derive(Debug, Clone, Default)]
pub struct EndFacts {
    pub hostname: Option<String>,
    pub kernel: Option<String>,
    pub online_cpus: Option<u32>,
    pub cgroup_layout: Option<CgroupLayout>,
    pub effective_cpus: Option<(f64, String)>,
    pub memory_limit: Option<(u64, String)>,
    pub container: Option<String>,
    pub limits: Limits,
    pub block_devices: Option<Vec<BlockDevice>>,
    pub mounts: Vec<Mount>,
    pub fd_use: BTreeMap<i32, FdUse>,
    pub fd_denied: usize,
    /// Their pids.
    pub fd_denied_pids: Vec<i32>,
    /// Namespace inode -> TCP states.
    pub tcp_states: BTreeMap<u64, TcpStates>,
    pub d_threads: Vec<(i32, i32, String, Option<String>)>,
    pub kmsg: Option<Vec<KmsgRecord>>,
    /// Effective capabilities of the reader (hex CapEff of proc/self/status).
    pub cap_eff: Option<u64>,
    /// Deep-dive facts (empty unless the run's `Spec` asked for them).
    pub deep: DeepEnd,
}

/// Everything a report is computed from.
#[derive(Debug, Clone)]
pub struct Readings {
    pub meta: Meta,
    pub t0: Snapshot,
    pub samples: Vec<TaskSample>,
    pub t1: Snapshot,
    pub namespaces: Namespaces,
    pub end: EndFacts,
    pub problems: Vec<Problem>,
    /// When the t1 snapshot was taken (live readings only): the next window of a series
    /// starts there, back to back.
    pub t1_at: Option<Instant>,
}

/// Read the counters of one moment. At t0 (`known` is None) the network namespaces are
/// discovered from this snapshot's process scan; at t1 the same namespaces are read again.
fn snapshot(
    src: &dyn Source,
    spec: &Spec,
    layout: Option<&CgroupLayout>,
    known: Option<&Namespaces>,
    before: Option<&Snapshot>,
    problems: &mut Vec<Problem>,
) -> (Snapshot, Namespaces) {
    let system = system::read_system(src, problems);
    let disks = disk::read_diskstats(src, problems);
    let procs = procs::scan_with(
        src,
        problems,
        system.load.map(|l| l.threads),
        before.map(|b| &b.procs),
    );
    let ns = match known {
        Some(ns) => ns.clone(),
        None => discover_namespaces(src, &procs),
    };
    let mut netr = BTreeMap::new();
    let mut ns_inos: Vec<u64> = ns.members.keys().copied().collect();
    if let Some(own) = ns.own {
        if !ns_inos.contains(&own) {
            ns_inos.push(own);
        }
    }
    if ns.own.is_none() {
        // Our own namespace is unknown (link unreadable): its counters still count, as ns 0.
        netr.insert(0, net::read_net(src, "proc/net", problems));
    }
    for ino in ns_inos {
        if let Some(base) = ns.base(ino) {
            // Other namespaces' read problems (a member exited) only mean no delta for them.
            let mut p = Vec::new();
            let r = net::read_net(src, &base, &mut p);
            if Some(ino) == ns.own {
                problems.extend(p);
            }
            netr.insert(ino, r);
        }
    }
    let cgroups = layout.map(|l| cgroup::scan(src, l, MAX_CGROUPS));
    // One netlink dump, cheap: every run reads it (a qdisc dropping explains retransmits).
    let qdiscs = src.qdiscs().ok();
    let deep = if spec.any() {
        deep::snapshot(
            src,
            spec,
            &procs,
            before.map(|b| (&b.procs, &b.deep)),
            layout,
        )
    } else {
        DeepSnapshot::default()
    };
    (
        Snapshot {
            system,
            disks,
            procs,
            net: netr,
            cgroups,
            qdiscs,
            deep,
        },
        ns,
    )
}

fn discover_namespaces(src: &dyn Source, scan: &ProcScan) -> Namespaces {
    let own = src
        .readlink("proc/self/ns/net")
        .ok()
        .and_then(|l| procs::ns_inode(&l));
    let (members, denied_pids) = procs::net_namespaces(src, scan);
    Namespaces {
        own,
        members,
        denied: denied_pids.len(),
        denied_pids,
    }
}

fn read_cap_eff(src: &dyn Source) -> Option<u64> {
    let status = src.read_string("proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

fn end_facts(
    src: &dyn Source,
    spec: &Spec,
    layout: Option<CgroupLayout>,
    t1: &Snapshot,
    ns: &Namespaces,
    samples: &[TaskSample],
    problems: &mut Vec<Problem>,
) -> EndFacts {
    let mut e = EndFacts {
        hostname: src
            .read_string("proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string()),
        kernel: src
            .read_string("proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string()),
        ..Default::default()
    };
    e.online_cpus = src
        .read_string("sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| cgroup::cpu_list_count(s.trim()))
        .or_else(|| t1.system.stat.as_ref().map(|s| s.cpus.len() as u32));
    if let Some(l) = &layout {
        e.effective_cpus = Some(cgroup::effective_cpus(src, l, e.online_cpus.unwrap_or(1)));
        e.memory_limit = cgroup::memory_limit(src, l);
        e.container = cgroup::container_evidence(src, l);
    }
    e.cgroup_layout = layout;
    e.limits = system::read_limits(src);
    e.block_devices = disk::read_block_devices(src);
    e.mounts = disk::read_mounts(src, problems);
    let (fd_use, fd_denied) = procs::fd_use(src, &t1.procs);
    e.fd_use = fd_use;
    e.fd_denied = fd_denied.len();
    e.fd_denied_pids = fd_denied;
    for &ino in t1.net.keys() {
        let base = if ino == 0 {
            Some("proc/net".to_string())
        } else {
            ns.base(ino)
        };
        if let Some(states) = base.and_then(|b| net::read_tcp_states(src, &b)) {
            e.tcp_states.insert(ino, states);
        }
    }
    let any_blocked =
        samples.iter().any(|s| s.blocked > 0) || t1.procs.procs.values().any(|p| p.state == 'D');
    if any_blocked {
        e.d_threads = procs::d_state_threads(src, &t1.procs, MAX_D_THREADS);
    }
    match src.kmsg() {
        Ok(b) => {
            let (recs, garbled) = kmsg::parse(&b);
            e.kmsg = Some(recs);
            if garbled > 0 {
                problems.push(Problem::new(
                    "some kernel log lines",
                    "dev/kmsg",
                    format!("{garbled} line(s) not in the kmsg record format, skipped"),
                ));
            }
        }
        Err(err) => {
            let fix = if err.kind() == std::io::ErrorKind::PermissionDenied {
                "run as root, or grant CAP_SYSLOG (kernel.dmesg_restrict=1 hides the log from others)"
            } else {
                "the kernel log device /dev/kmsg is missing here (container without /dev/kmsg?)"
            };
            problems.push(Problem::io("kernel log", "dev/kmsg", &err).with_fix(fix));
        }
    }
    e.cap_eff = read_cap_eff(src);
    if spec.any() {
        let own = ns.own.unwrap_or(0);
        let ifaces: Vec<String> = t1
            .net
            .get(&own)
            .map(|n| n.interfaces.keys().cloned().collect())
            .unwrap_or_default();
        e.deep = deep::end(src, spec, &t1.procs, &ifaces);
    }
    e
}

/// Options of one live run.
pub struct LiveOptions {
    pub duration: Duration,
    pub sample_interval: Duration,
    pub note: String,
    /// When set (SIGINT), the window ends at the next sample and the report covers what was
    /// measured.
    pub interrupted: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// What to read beyond the sixty-second checklist.
    pub spec: Spec,
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Read the live system over a window. When `src` records, the recording is a fixture.
pub fn live(src: &LiveSource, opts: &LiveOptions, record_to: Option<&Path>) -> Readings {
    live_after(src, opts, record_to, None)
}

/// [`live`], continuing from `prev` when given: its t1 snapshot is this window's t0 and the
/// window starts when it was taken, so the windows of a series are back to back (no gap, no
/// drift), whatever the time spent reporting in between.
pub fn live_after(
    src: &LiveSource,
    opts: &LiveOptions,
    record_to: Option<&Path>,
    prev: Option<&Readings>,
) -> Readings {
    let mut problems = Vec::new();
    src.set_phase("t0");
    let layout = match cgroup::layout(src) {
        Ok(l) => Some(l),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let (start, t_start, t0, ns) = match prev.and_then(|p| Some((p, p.t1_at?))) {
        Some((p, at)) => (p.meta.end.clone(), at, p.t1.clone(), p.namespaces.clone()),
        None => {
            let start = now_rfc3339();
            let t_start = Instant::now();
            let (t0, ns) = snapshot(src, &opts.spec, layout.as_ref(), None, None, &mut problems);
            (start, t_start, t0, ns)
        }
    };
    let deadline = t_start + opts.duration;
    let stop = || {
        opts.interrupted
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
    };
    let mut samples = Vec::new();
    let mut i = 0;
    loop {
        let next = t_start + opts.sample_interval * (i + 1);
        if next >= deadline || stop() {
            break;
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        if stop() {
            break;
        }
        src.set_phase(&format!("samples/{i:03}"));
        if let Some(s) = system::read_task_sample(src) {
            samples.push(s);
        }
        i += 1;
    }
    if !stop() {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    }
    src.set_phase("t1");
    let t_end = Instant::now();
    let (t1, _) = snapshot(
        src,
        &opts.spec,
        layout.as_ref(),
        Some(&ns),
        Some(&t0),
        &mut problems,
    );
    let end_ts = now_rfc3339();
    let end = end_facts(src, &opts.spec, layout, &t1, &ns, &samples, &mut problems);
    let _ = src.flush_recording();
    src.forget_kept();
    problems.extend(refusal_problems(src));
    let meta = Meta {
        format_version: META_FORMAT,
        start,
        end: end_ts,
        elapsed_s: (t_end - t_start).as_secs_f64(),
        clock_ticks_per_s: rustix::param::clock_ticks_per_second(),
        page_size_bytes: rustix::param::page_size() as u64,
        sample_interval_ms: opts.sample_interval.as_millis() as u64,
        triage_version: env!("CARGO_PKG_VERSION").to_string(),
        note: opts.note.clone(),
    };
    if let Some(dir) = record_to {
        if let Err(e) = src.record_top(
            "meta.json",
            &serde_json::to_vec_pretty(&meta).unwrap_or_default(),
        ) {
            problems.push(Problem::io(
                "fixture meta.json",
                &dir.join("meta.json").display().to_string(),
                &e,
            ));
        }
    }
    problems.sort();
    problems.dedup();
    Readings {
        meta,
        t0,
        samples,
        t1,
        namespaces: ns,
        end,
        problems,
        t1_at: Some(t_end),
    }
}

/// Errors that stop a fixture from being read at all.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid meta.json: {source}")]
    Meta {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Replay a recorded fixture directory (`t0/`, `samples/NNN/`, `t1/`, `meta.json`) as
/// `sixty-second` reads it.
pub fn from_fixture(dir: &Path) -> Result<Readings, FixtureError> {
    from_fixture_spec(dir, &Spec::SIXTY_SECOND)
}

/// Replay a fixture, reading what `spec` asks for (what the fixture lacks is simply absent).
/// Every file is read beneath `dir` (see [`crate::host::safe`]).
pub fn from_fixture_spec(dir: &Path, spec: &Spec) -> Result<Readings, FixtureError> {
    let io = |p: &Path, e| FixtureError::Io {
        path: p.display().to_string(),
        source: e,
    };
    let meta_path = dir.join("meta.json");
    // A plain fixture or an overlay of a base fixture (`host::FixtureTree`).
    let tree = FixtureTree::open(dir).map_err(|e| io(&meta_path, e))?;
    let meta_bytes = tree.meta().map_err(|e| io(&meta_path, e))?;
    let s0 = tree.phase("t0").map_err(|e| io(&dir.join("t0"), e))?;
    let s1 = tree.phase("t1").map_err(|e| io(&dir.join("t1"), e))?;
    let mut samples = Vec::new();
    // Sorted by the source: samples/000, 001, ... in order.
    if let Ok(names) = tree.phase("samples").and_then(|s| s.list("")) {
        for n in names {
            if let Ok(s) = tree.phase(&format!("samples/{n}")) {
                samples.push(s);
            }
        }
    }
    let samples: Vec<&dyn Source> = samples.iter().map(|s| s as &dyn Source).collect();
    from_sources(&meta_bytes, &s0, &samples, &s1, spec).map_err(|e| FixtureError::Meta {
        path: meta_path.display().to_string(),
        source: e,
    })
}

/// Replay a fixture given as sources: `meta.json`'s bytes, the t0 and t1 snapshots and the
/// task samples in order. What the sources refused to read is listed in `problems`.
pub fn from_sources(
    meta_bytes: &[u8],
    s0: &dyn Source,
    samples_src: &[&dyn Source],
    s1: &dyn Source,
    spec: &Spec,
) -> Result<Readings, serde_json::Error> {
    let meta: Meta = serde_json::from_slice(meta_bytes)?;
    let mut problems = Vec::new();
    let layout = match cgroup::layout(s0) {
        Ok(l) => Some(l),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let (t0, ns) = snapshot(s0, spec, layout.as_ref(), None, None, &mut problems);
    let mut samples = Vec::new();
    for s in samples_src {
        if let Some(t) = system::read_task_sample(*s) {
            samples.push(t);
        }
    }
    let (t1, _) = snapshot(
        s1,
        spec,
        layout.as_ref(),
        Some(&ns),
        Some(&t0),
        &mut problems,
    );
    // As in a live run, the layout is the one read at t0 (t1 holds no proc/self/cgroup).
    let end = end_facts(s1, spec, layout, &t1, &ns, &samples, &mut problems);
    for s in std::iter::once(s0)
        .chain(samples_src.iter().copied())
        .chain([s1])
    {
        problems.extend(refusal_problems(s));
    }
    problems.sort();
    problems.dedup();
    Ok(Readings {
        meta,
        t0,
        samples,
        t1,
        namespaces: ns,
        end,
        problems,
        t1_at: None,
    })
}

/// What a source refused to read (outside the tree, a special file, too large), as problems.
fn refusal_problems(src: &dyn Source) -> Vec<Problem> {
    src.refusals()
        .into_iter()
        .map(|(path, why)| Problem::new("a file of the tree (not read)", path, why))
        .collect()
}
