//! Control groups: where the hierarchies are mounted, which cgroup we run in, and what every
//! cgroup's counters and limits read right now.
//!
//! Three layouts exist in the wild and all are handled the same way, by asking
//! `proc/self/mountinfo` where things are instead of assuming:
//! - **v2** (unified): one `cgroup2` mount, normally at `/sys/fs/cgroup`, controllers listed in
//!   its `cgroup.controllers`;
//! - **v1** (legacy): one `cgroup` mount per controller set (`rw,cpu,cpuacct` in the super
//!   options), no `cgroup2` mount;
//! - **hybrid**: v1 controller mounts plus a `cgroup2` mount (often `/sys/fs/cgroup/unified`)
//!   that usually has no controllers of its own.
//!
//! Invariants:
//! - Every file is read through a [`Source`] with a path relative to the system root; mount points
//!   are stored relative (`sys/fs/cgroup/unified`), cgroup paths absolute within their hierarchy
//!   (`/`, `/system.slice/foo.service`).
//! - A file that does not exist is normal (not every cgroup has every controller) and is skipped
//!   silently; permission errors and garbled content become [`Problem`]s, once per kind.
//! - Nothing here panics on odd input: numbers that do not parse are "unknown", not zero.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use procfs_core::process::MountInfo;
use procfs_core::{FromRead, ProcessCGroups};
use serde::{Deserialize, Serialize};

use crate::collect::Problem;
use crate::host::Source;

/// Which cgroup layout the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    V1,
    V2,
    Hybrid,
    None,
}

impl CgroupMode {
    /// The name used in reports (`v1`, `v2`, `hybrid`, `none`).
    pub fn as_str(&self) -> &'static str {
        match self {
            CgroupMode::V1 => "v1",
            CgroupMode::V2 => "v2",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::None => "none",
        }
    }
}

/// Where the cgroup hierarchies are mounted and where we sit in them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupLayout {
    pub mode: CgroupMode,
    /// The `cgroup2` mount point, relative to the root (`sys/fs/cgroup/unified`).
    pub v2_mount: Option<String>,
    /// Controllers available in the v2 hierarchy (`<v2_mount>/cgroup.controllers`).
    pub v2_controllers: Vec<String>,
    /// v1 controller (`cpu`, `memory`, ...) -> its relative mount directory.
    pub v1_mounts: BTreeMap<String, String>,
    /// Our own cgroup in the v2 hierarchy (the `0::/path` line of `proc/self/cgroup`).
    pub own_v2: Option<String>,
    /// v1 controller -> our own cgroup path in that hierarchy.
    pub own_v1: BTreeMap<String, String>,
}

/// v1 controller names we map to mounts. Other super options (`rw`, `name=systemd`,
/// `clone_children`, ...) are not controllers.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "blkio",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
];

/// Find the cgroup hierarchies and our place in them.
///
/// Fails only when `proc/self/mountinfo` cannot be read (without it we cannot know where anything
/// is). Garbled mountinfo lines are skipped; an unreadable `proc/self/cgroup` leaves the `own_*`
/// fields empty.
pub fn layout(src: &dyn Source) -> Result<CgroupLayout, Problem> {
    let path = "proc/self/mountinfo";
    let text = src
        .read_string(path)
        .map_err(|e| Problem::io("cgroup mounts", path, &e))?;

    let mut v2_mount: Option<String> = None;
    let mut v1_mounts: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let Ok(mi) = MountInfo::from_line(line) else {
            continue;
        };
        let mp = unescape_mount(&mi.mount_point.to_string_lossy());
        let rel = mp.trim_start_matches('/').to_string();
        match mi.fs_type.as_str() {
            "cgroup2" if prefer_mount(v2_mount.as_deref(), &rel) => v2_mount = Some(rel),
            "cgroup" => {
                for ctl in V1_CONTROLLERS {
                    if mi.super_options.contains_key(*ctl)
                        && prefer_mount(v1_mounts.get(*ctl).map(|s| s.as_str()), &rel)
                    {
                        v1_mounts.insert((*ctl).to_string(), rel.clone());
                    }
                }
            }
            _ => {}
        }
    }

    let v2_controllers = match &v2_mount {
        Some(m) => src
            .read_string(&join(m, "cgroup.controllers"))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };

    let mut own_v2 = None;
    let mut own_v1 = BTreeMap::new();
    if let Ok(text) = src.read_string("proc/self/cgroup") {
        for line in text.lines() {
            // One line at a time so that a garbled line does not cost us the others.
            let Ok(groups) = ProcessCGroups::from_read(line.as_bytes()) else {
                continue;
            };
            for g in groups.0 {
                if g.hierarchy == 0 && g.controllers.is_empty() {
                    own_v2 = Some(g.pathname.clone());
                } else {
                    for c in g.controllers {
                        own_v1.insert(c, g.pathname.clone());
                    }
                }
            }
        }
    }

    let mode = match (v2_mount.is_some(), !v1_mounts.is_empty()) {
        (true, true) => CgroupMode::Hybrid,
        (true, false) => CgroupMode::V2,
        (false, true) => CgroupMode::V1,
        (false, false) => CgroupMode::None,
    };
    Ok(CgroupLayout {
        mode,
        v2_mount,
        v2_controllers,
        v1_mounts,
        own_v2,
        own_v1,
    })
}

/// Whether a newly seen mount point should replace the one we have: the first one wins, except
/// that the conventional place (under `sys/fs/cgroup`) beats a bind mount elsewhere.
fn prefer_mount(have: Option<&str>, new: &str) -> bool {
    match have {
        None => true,
        Some(h) => !h.starts_with("sys/fs/cgroup") && new.starts_with("sys/fs/cgroup"),
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space) in a mount point.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let (b'\\', Some(oct)) = (b[i], b.get(i + 1..i + 4)) {
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (u32::from(oct[0] - b'0') << 6)
                    | (u32::from(oct[1] - b'0') << 3)
                    | u32::from(oct[2] - b'0');
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Join a relative directory and a cgroup path (or file name) with exactly one `/`.
fn join(base: &str, rest: &str) -> String {
    let base = base.trim_end_matches('/');
    let rest = rest.trim_start_matches('/');
    match (base.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => base.to_string(),
        _ => format!("{base}/{rest}"),
    }
}

/// One cgroup's readings (counters and limits) at one moment. Paths are cgroup paths
/// (`/`, `/scn-throttle`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupSample {
    pub path: String,
    pub cpu: Option<CpuCg>,
    pub memory: Option<MemCg>,
    pub pids: Option<PidsCg>,
}

/// CPU usage and CFS bandwidth throttling of one cgroup. Times in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuCg {
    pub usage_us: Option<u64>,
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_us: u64,
    /// CPU time allowed per period; None = no limit.
    pub quota_us: Option<u64>,
    pub period_us: Option<u64>,
}

/// Memory use, limits and limit events of one cgroup. `None` = unknown or no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemCg {
    pub current_bytes: u64,
    pub max_bytes: Option<u64>,
    pub high_bytes: Option<u64>,
    pub swap_bytes: Option<u64>,
    pub oom_events: Option<u64>,
    pub oom_kill_events: Option<u64>,
    pub max_events: Option<u64>,
    pub high_events: Option<u64>,
    pub anon_bytes: Option<u64>,
    pub file_bytes: Option<u64>,
    pub inactive_file_bytes: Option<u64>,
    /// v1 only: times usage hit the limit.
    pub failcnt: Option<u64>,
}

/// Task count and limit of one cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsCg {
    pub current: u64,
    /// None = no limit (`max`).
    pub max: Option<u64>,
}

/// Every cgroup we could read, and what we could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupScan {
    /// Sorted by path.
    pub groups: Vec<CgroupSample>,
    pub problems: Vec<Problem>,
    /// More cgroups exist than `max_groups` allowed us to read.
    pub truncated: bool,
}

/// v1 memory limits at or above this mean "no limit" (the kernel reports PAGE_COUNTER_MAX
/// rounded to the page size, 9223372036854771712 on 4 KiB pages).
const V1_NO_LIMIT: u64 = 1 << 62;

/// What a hierarchy directory is walked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    V2,
    V1Cpu,
    V1Memory,
    V1Pids,
}

/// Readings for one cgroup path, per hierarchy, before merging.
#[derive(Default)]
struct Acc {
    v2_cpu: Option<CpuCg>,
    v1_cpu: Option<CpuCg>,
    v2_mem: Option<MemCg>,
    v1_mem: Option<MemCg>,
    v2_pids: Option<PidsCg>,
    v1_pids: Option<PidsCg>,
}

/// File reads with the scan's error policy: missing is silent, anything else is reported once per
/// kind (file name and error), so a thousand cgroups with the same unreadable file make one line.
struct Reader<'a> {
    src: &'a dyn Source,
    problems: Vec<Problem>,
    seen: BTreeSet<String>,
}

/// Errors that mean "this cgroup has no such file here", not a problem worth reporting.
fn is_absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || matches!(
            e.raw_os_error(),
            Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENOTDIR) | Some(libc::EOPNOTSUPP)
        )
}

impl<'a> Reader<'a> {
    fn new(src: &'a dyn Source) -> Self {
        Reader {
            src,
            problems: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    fn once(&mut self, key: String, p: Problem) {
        if self.seen.insert(key) {
            self.problems.push(p);
        }
    }

    /// The text of `dir/file`, or None (reporting the error unless the file simply is not there).
    fn text(&mut self, dir: &str, file: &str, cg: &str) -> Option<String> {
        let rel = join(dir, file);
        match self.src.read_string(&rel) {
            Ok(s) => Some(s),
            Err(e) if is_absent(&e) => None,
            Err(e) => {
                let key = format!("io {file} {:?}", e.kind());
                self.once(key, Problem::io(format!("cgroup {file} of {cg}"), &rel, &e));
                None
            }
        }
    }

    fn garbled(&mut self, dir: &str, file: &str, cg: &str, what: &str) {
        let rel = join(dir, file);
        let key = format!("garbled {file}");
        let p = Problem::new(
            format!("cgroup {file} of {cg}"),
            rel,
            format!("unexpected content: {}", clip(what)),
        );
        self.once(key, p);
    }

    /// A file holding one number.
    fn num(&mut self, dir: &str, file: &str, cg: &str) -> Option<u64> {
        let t = self.text(dir, file, cg)?;
        match t.trim().parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.garbled(dir, file, cg, t.trim());
                None
            }
        }
    }

    /// A file holding a number or `max`: Some(None) for `max`.
    fn limit(&mut self, dir: &str, file: &str, cg: &str) -> Option<Option<u64>> {
        let t = self.text(dir, file, cg)?;
        match parse_limit(&t) {
            Some(v) => Some(v),
            None => {
                self.garbled(dir, file, cg, t.trim());
                None
            }
        }
    }

    /// A flat-keyed file (`key value` per line). Unknown keys are kept (the caller picks);
    /// lines that do not parse are reported once.
    fn keyed(&mut self, dir: &str, file: &str, cg: &str) -> Option<BTreeMap<String, u64>> {
        let t = self.text(dir, file, cg)?;
        let (map, bad) = parse_keyed(&t);
        if let Some(line) = bad {
            self.garbled(dir, file, cg, &line);
        }
        Some(map)
    }
}

/// At most 60 characters of a bad value, for a problem message.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// `key value` lines into a map; returns also the first line that did not parse.
fn parse_keyed(text: &str) -> (BTreeMap<String, u64>, Option<String>) {
    let mut map = BTreeMap::new();
    let mut bad = None;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            if !line.trim().is_empty() && bad.is_none() {
                bad = Some(line.to_string());
            }
            continue;
        };
        match v.parse::<u64>() {
            Ok(n) => {
                map.insert(k.to_string(), n);
            }
            Err(_) => {
                if bad.is_none() {
                    bad = Some(line.to_string());
                }
            }
        }
    }
    (map, bad)
}

/// `max` -> Some(None), a number -> Some(Some(n)), anything else -> None.
fn parse_limit(text: &str) -> Option<Option<u64>> {
    let t = text.trim();
    if t == "max" {
        return Some(None);
    }
    t.parse::<u64>().ok().map(Some)
}

/// v2 `cpu.max` (`200000 100000` or `max 100000`) into (quota, period).
fn parse_cpu_max(text: &str) -> Option<(Option<u64>, Option<u64>)> {
    let mut it = text.split_whitespace();
    let quota = parse_limit(it.next()?)?;
    let period = match it.next() {
        Some(p) => Some(p.parse::<u64>().ok()?),
        None => None,
    };
    Some((quota, period))
}

/// v1 `cpu.cfs_quota_us`: `-1` is no limit.
fn parse_v1_quota(text: &str) -> Option<Option<u64>> {
    let t = text.trim();
    if t.starts_with('-') {
        return t.parse::<i64>().ok().map(|_| None);
    }
    t.parse::<u64>().ok().map(Some)
}

/// A v1 memory limit, with the "no limit" sentinel turned into None.
fn v1_limit(v: u64) -> Option<u64> {
    (v < V1_NO_LIMIT).then_some(v)
}

/// Control files (not child cgroups) in a cgroup directory, known by name so that we need not
/// probe each of them as a directory.
fn is_control_file(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "cgroup.",
        "cpu.",
        "cpuacct.",
        "cpuset.",
        "memory.",
        "io.",
        "blkio.",
        "pids.",
        "hugetlb.",
        "rdma.",
        "misc.",
        "net_cls.",
        "net_prio.",
        "devices.",
        "freezer.",
        "perf_event.",
        "irq.",
    ];
    matches!(name, "tasks" | "notify_on_release" | "release_agent")
        || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Walk every cgroup under the hierarchies in `layout` (v2 mount; for v1 the cpu, memory and pids
/// controller mounts), depth-first, at most `max_groups` directories in total (`truncated` past
/// that), reading the counters and limits of each.
///
/// Readings of the same cgroup path from different hierarchies are merged into one sample (on a
/// hybrid host the v1 cpu/memory/pids data plus whatever the v2 tree has for that path). Missing
/// files are skipped silently; permission errors and garbled content are reported once per kind.
pub fn scan(src: &dyn Source, layout: &CgroupLayout, max_groups: usize) -> CgroupScan {
    // Which directories to walk, and for what. Hierarchies with controllers first, so that the
    // budget is spent where the numbers are (the hybrid v2 tree usually has none).
    let mut plan: Vec<(String, Vec<Kind>)> = Vec::new();
    let mut add = |dir: &str, kind: Kind| match plan.iter_mut().find(|(d, _)| d == dir) {
        Some((_, kinds)) => kinds.push(kind),
        None => plan.push((dir.to_string(), vec![kind])),
    };
    for (ctl, kind) in [
        ("cpu", Kind::V1Cpu),
        ("memory", Kind::V1Memory),
        ("pids", Kind::V1Pids),
    ] {
        if let Some(m) = layout.v1_mounts.get(ctl) {
            add(m, kind);
        }
    }
    if let Some(m) = &layout.v2_mount {
        add(m, Kind::V2);
    }
    let cpuacct_mount = layout.v1_mounts.get("cpuacct").cloned();

    let mut rd = Reader::new(src);
    let mut accs: BTreeMap<String, Acc> = BTreeMap::new();
    let mut budget = max_groups;
    let mut truncated = false;

    'hierarchies: for (mount, kinds) in &plan {
        let mut stack = vec!["/".to_string()];
        while let Some(cg) = stack.pop() {
            let dir = join(mount, &cg);
            let names = match src.list(&dir) {
                Ok(n) => n,
                Err(e) if cg == "/" => {
                    rd.once(
                        format!("list {mount}"),
                        Problem::io("cgroup hierarchy", &dir, &e),
                    );
                    continue;
                }
                // A plain file we probed, or a cgroup removed while we walked.
                Err(e) if is_absent(&e) => continue,
                Err(e) => {
                    rd.once(
                        format!("list {:?}", e.kind()),
                        Problem::io(format!("cgroup directory {cg}"), &dir, &e),
                    );
                    continue;
                }
            };
            if budget == 0 {
                truncated = true;
                break 'hierarchies;
            }
            budget -= 1;

            let acc = accs.entry(cg.clone()).or_default();
            for kind in kinds {
                match kind {
                    Kind::V2 => read_v2(&mut rd, &dir, &cg, acc),
                    Kind::V1Cpu => {
                        let acct_dir = cpuacct_mount.as_deref().map(|m| join(m, &cg));
                        acc.v1_cpu = read_v1_cpu(&mut rd, &dir, acct_dir.as_deref(), &cg);
                    }
                    Kind::V1Memory => acc.v1_mem = read_v1_mem(&mut rd, &dir, &cg),
                    Kind::V1Pids => acc.v1_pids = read_pids(&mut rd, &dir, &cg),
                }
            }

            let mut children: Vec<String> = names
                .into_iter()
                .filter(|n| !is_control_file(n) && !n.starts_with('.'))
                .collect();
            // Reverse order on the stack so that children are visited in name order.
            children.sort_unstable_by(|a, b| b.cmp(a));
            for c in children {
                stack.push(child_cg(&cg, &c));
            }
        }
    }

    let groups = accs
        .into_iter()
        .map(|(path, a)| CgroupSample {
            path,
            cpu: merge_cpu(a.v1_cpu, a.v2_cpu),
            memory: a.v1_mem.or(a.v2_mem),
            pids: a.v1_pids.or(a.v2_pids),
        })
        .collect();
    CgroupScan {
        groups,
        problems: rd.problems,
        truncated,
    }
}

/// The cgroup path of child `name` of `parent` (`/` + `a` -> `/a`, `/a` + `b` -> `/a/b`).
fn child_cg(parent: &str, name: &str) -> String {
    format!("{}/{name}", parent.trim_end_matches('/'))
}

/// v1 cpu (authoritative for throttling and quota where it exists) merged with v2 `cpu.stat`
/// (which on a hybrid host still counts usage).
fn merge_cpu(v1: Option<CpuCg>, v2: Option<CpuCg>) -> Option<CpuCg> {
    match (v1, v2) {
        (Some(mut a), Some(b)) => {
            a.usage_us = a.usage_us.or(b.usage_us);
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

fn read_v2(rd: &mut Reader, dir: &str, cg: &str, acc: &mut Acc) {
    if let Some(st) = rd.keyed(dir, "cpu.stat", cg) {
        let mut cpu = CpuCg {
            usage_us: st.get("usage_usec").copied(),
            nr_periods: st.get("nr_periods").copied().unwrap_or(0),
            nr_throttled: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_us: st.get("throttled_usec").copied().unwrap_or(0),
            quota_us: None,
            period_us: None,
        };
        if let Some(t) = rd.text(dir, "cpu.max", cg) {
            match parse_cpu_max(&t) {
                Some((q, p)) => {
                    cpu.quota_us = q;
                    cpu.period_us = p;
                }
                None => rd.garbled(dir, "cpu.max", cg, t.trim()),
            }
        }
        acc.v2_cpu = Some(cpu);
    }

    if let Some(current) = rd.num(dir, "memory.current", cg) {
        let mut m = MemCg {
            current_bytes: current,
            max_bytes: rd.limit(dir, "memory.max", cg).flatten(),
            high_bytes: rd.limit(dir, "memory.high", cg).flatten(),
            swap_bytes: rd.num(dir, "memory.swap.current", cg),
            ..MemCg::default()
        };
        if let Some(ev) = rd.keyed(dir, "memory.events", cg) {
            m.oom_events = ev.get("oom").copied();
            m.oom_kill_events = ev.get("oom_kill").copied();
            m.max_events = ev.get("max").copied();
            m.high_events = ev.get("high").copied();
        }
        if let Some(st) = rd.keyed(dir, "memory.stat", cg) {
            m.anon_bytes = st.get("anon").copied();
            m.file_bytes = st.get("file").copied();
            m.inactive_file_bytes = st.get("inactive_file").copied();
        }
        acc.v2_mem = Some(m);
    }

    acc.v2_pids = read_pids(rd, dir, cg);
}

fn read_pids(rd: &mut Reader, dir: &str, cg: &str) -> Option<PidsCg> {
    let current = rd.num(dir, "pids.current", cg)?;
    Some(PidsCg {
        current,
        max: rd.limit(dir, "pids.max", cg).flatten(),
    })
}

/// v1 `cpu` controller, with usage from `cpuacct.usage` (nanoseconds) in `acct_dir`.
fn read_v1_cpu(rd: &mut Reader, dir: &str, acct_dir: Option<&str>, cg: &str) -> Option<CpuCg> {
    let st = rd.keyed(dir, "cpu.stat", cg)?;
    let quota_us = match rd.text(dir, "cpu.cfs_quota_us", cg) {
        Some(t) => match parse_v1_quota(&t) {
            Some(q) => q,
            None => {
                rd.garbled(dir, "cpu.cfs_quota_us", cg, t.trim());
                None
            }
        },
        None => None,
    };
    let usage_ns = acct_dir.and_then(|d| rd.num(d, "cpuacct.usage", cg));
    Some(CpuCg {
        usage_us: usage_ns.map(|ns| ns / 1000),
        nr_periods: st.get("nr_periods").copied().unwrap_or(0),
        nr_throttled: st.get("nr_throttled").copied().unwrap_or(0),
        // v1 reports nanoseconds; newer kernels may add throttled_usec too.
        throttled_us: st
            .get("throttled_usec")
            .copied()
            .or_else(|| st.get("throttled_time").map(|ns| ns / 1000))
            .unwrap_or(0),
        quota_us,
        period_us: rd.num(dir, "cpu.cfs_period_us", cg),
    })
}

/// v1 `memory` controller. `swap_bytes` is `memsw.usage - usage` (memsw counts both).
fn read_v1_mem(rd: &mut Reader, dir: &str, cg: &str) -> Option<MemCg> {
    let current = rd.num(dir, "memory.usage_in_bytes", cg)?;
    let mut m = MemCg {
        current_bytes: current,
        max_bytes: rd.num(dir, "memory.limit_in_bytes", cg).and_then(v1_limit),
        swap_bytes: rd
            .num(dir, "memory.memsw.usage_in_bytes", cg)
            .map(|sw| sw.saturating_sub(current)),
        failcnt: rd.num(dir, "memory.failcnt", cg),
        ..MemCg::default()
    };
    if let Some(oc) = rd.keyed(dir, "memory.oom_control", cg) {
        m.oom_kill_events = oc.get("oom_kill").copied();
    }
    if let Some(st) = rd.keyed(dir, "memory.stat", cg) {
        let pick = |total: &str, local: &str| st.get(total).or_else(|| st.get(local)).copied();
        m.anon_bytes = pick("total_rss", "rss");
        m.file_bytes = pick("total_cache", "cache");
        m.inactive_file_bytes = pick("total_inactive_file", "inactive_file");
    }
    Some(m)
}

/// The directories of our own cgroup and its ancestors in one hierarchy, own first, each with its
/// cgroup path as the kernel reports it.
///
/// Inside a container the hierarchy may be mounted from our own cgroup (mountinfo root
/// `/docker/abc`), so `/docker/abc` is not below the mount point: leading components are dropped
/// until the directory exists, and the mount point itself is the last resort.
fn own_chain(src: &dyn Source, mount: &str, own: &str) -> Vec<(String, String)> {
    let comps: Vec<&str> = own.split('/').filter(|c| !c.is_empty()).collect();
    let mut skip = 0;
    while skip < comps.len() {
        let dir = join(mount, &comps[skip..].join("/"));
        if src.list(&dir).is_ok() {
            break;
        }
        skip += 1;
    }
    let mut out = Vec::new();
    let visible = comps.len().saturating_sub(skip);
    for depth in (0..=visible).rev() {
        let rel = comps.get(skip..skip + depth).unwrap_or(&[]).join("/");
        let full = comps.get(..skip + depth).unwrap_or(&[]).join("/");
        out.push((join(mount, &rel), format!("/{full}")));
    }
    out
}

/// CPU capacity available to our own cgroup: min(online CPUs, cpuset size, `Cpus_allowed_list`
/// size, smallest quota/period over our cgroup and its ancestors), with a description of what
/// binds (`online 2`, `cpuset 0-3`, `cpu.max 200000 100000 at /kubepods/pod1`).
///
/// Why: "CPU saturated" must be judged against what we may use, not what the host has.
pub fn effective_cpus(src: &dyn Source, layout: &CgroupLayout, online_cpus: u32) -> (f64, String) {
    let mut best: Option<(f64, String)> = None;
    let mut consider = |v: f64, why: String| {
        if v > 0.0 && v.is_finite() && best.as_ref().is_none_or(|(have, _)| v < *have) {
            best = Some((v, why));
        }
    };
    if online_cpus > 0 {
        consider(f64::from(online_cpus), format!("online {online_cpus}"));
    }

    // cpuset of our cgroup (the nearest ancestor that has the file, if ours lacks it).
    if let (Some(m), Some(own)) = (&layout.v2_mount, &layout.own_v2) {
        if let Some((list, _)) = first_in_chain(src, m, own, &["cpuset.cpus.effective"]) {
            if let Some(n) = cpu_list_count(&list) {
                consider(f64::from(n), format!("cpuset {}", list.trim()));
            }
        }
    }
    if let (Some(m), Some(own)) = (layout.v1_mounts.get("cpuset"), layout.own_v1.get("cpuset")) {
        let files = [
            "cpuset.effective_cpus",
            "effective_cpus",
            "cpuset.cpus",
            "cpus",
        ];
        if let Some((list, _)) = first_in_chain(src, m, own, &files) {
            if let Some(n) = cpu_list_count(&list) {
                consider(f64::from(n), format!("cpuset {}", list.trim()));
            }
        }
    }

    if let Ok(status) = src.read_string("proc/self/status") {
        if let Some(list) = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        {
            if let Some(n) = cpu_list_count(list) {
                consider(f64::from(n), format!("Cpus_allowed_list {}", list.trim()));
            }
        }
    }

    // CFS bandwidth limits over the whole chain: the tightest one binds.
    if let (Some(m), Some(own)) = (&layout.v2_mount, &layout.own_v2) {
        for (dir, cg) in own_chain(src, m, own) {
            let Ok(t) = src.read_string(&join(&dir, "cpu.max")) else {
                continue;
            };
            if let Some((Some(q), Some(p))) = parse_cpu_max(&t) {
                if p > 0 {
                    consider(q as f64 / p as f64, format!("cpu.max {q} {p} at {cg}"));
                }
            }
        }
    }
    if let (Some(m), Some(own)) = (layout.v1_mounts.get("cpu"), layout.own_v1.get("cpu")) {
        for (dir, cg) in own_chain(src, m, own) {
            let quota = src
                .read_string(&join(&dir, "cpu.cfs_quota_us"))
                .ok()
                .and_then(|t| parse_v1_quota(&t))
                .flatten();
            let period = src
                .read_string(&join(&dir, "cpu.cfs_period_us"))
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok());
            if let (Some(q), Some(p)) = (quota, period) {
                if p > 0 {
                    consider(
                        q as f64 / p as f64,
                        format!("cpu.cfs_quota_us {q} cpu.cfs_period_us {p} at {cg}"),
                    );
                }
            }
        }
    }

    best.unwrap_or_else(|| (1.0, "unknown (assumed 1)".to_string()))
}

/// The first of `files` found in our cgroup or, failing that, the nearest ancestor that has one:
/// (content, cgroup path).
fn first_in_chain(
    src: &dyn Source,
    mount: &str,
    own: &str,
    files: &[&str],
) -> Option<(String, String)> {
    for (dir, cg) in own_chain(src, mount, own) {
        for f in files {
            if let Ok(t) = src.read_string(&join(&dir, f)) {
                if !t.trim().is_empty() {
                    return Some((t, cg));
                }
            }
        }
    }
    None
}

/// The tightest memory limit over our cgroup and its ancestors (v2 `memory.max`, v1
/// `memory.limit_in_bytes`): (bytes, `memory.max at /docker/abc`), or None when unlimited.
///
/// Why: memory pressure inside a container starts at its limit, not at the host's RAM.
pub fn memory_limit(src: &dyn Source, layout: &CgroupLayout) -> Option<(u64, String)> {
    let mut best: Option<(u64, String)> = None;
    let mut consider = |v: u64, why: String| {
        if best.as_ref().is_none_or(|(have, _)| v < *have) {
            best = Some((v, why));
        }
    };
    if let (Some(m), Some(own)) = (&layout.v2_mount, &layout.own_v2) {
        for (dir, cg) in own_chain(src, m, own) {
            if let Ok(t) = src.read_string(&join(&dir, "memory.max")) {
                if let Some(Some(v)) = parse_limit(&t) {
                    consider(v, format!("memory.max at {cg}"));
                }
            }
        }
    }
    if let (Some(m), Some(own)) = (layout.v1_mounts.get("memory"), layout.own_v1.get("memory")) {
        for (dir, cg) in own_chain(src, m, own) {
            if let Ok(t) = src.read_string(&join(&dir, "memory.limit_in_bytes")) {
                if let Some(v) = t.trim().parse::<u64>().ok().and_then(v1_limit) {
                    consider(v, format!("memory.limit_in_bytes at {cg}"));
                }
            }
        }
    }
    best
}

/// Whether we run in a container, with the evidence (several pieces joined by `; `), or None.
///
/// Why: inside a container, host-wide numbers (load, memory) describe neighbours too, and the
/// limits that matter are the cgroup's.
pub fn container_evidence(src: &dyn Source, layout: &CgroupLayout) -> Option<String> {
    let mut ev: Vec<String> = Vec::new();
    if src.read(".dockerenv").is_ok() {
        ev.push("/.dockerenv exists".to_string());
    }
    if src.read("run/.containerenv").is_ok() {
        ev.push("/run/.containerenv exists".to_string());
    }
    // Often unreadable without privileges; then it simply is no evidence.
    if let Ok(env) = src.read("proc/1/environ") {
        for var in env.split(|b| *b == 0) {
            if let Some(v) = var.strip_prefix(b"container=") {
                ev.push(format!(
                    "container={} in PID 1's environment",
                    String::from_utf8_lossy(v)
                ));
                break;
            }
        }
    }
    const MARKERS: &[&str] = &[
        "docker/",
        "/docker-",
        "kubepods",
        "libpod",
        "lxc",
        "containerd",
    ];
    let mut paths: Vec<&String> = layout.own_v2.iter().collect();
    paths.extend(layout.own_v1.values());
    if let Some(p) = paths
        .into_iter()
        .find(|p| MARKERS.iter().any(|m| p.contains(m)))
    {
        ev.push(format!("cgroup path {p}"));
    }
    (!ev.is_empty()).then(|| ev.join("; "))
}

/// Count the CPUs in a kernel CPU list such as `0-3,8,10-11` (7). An empty list counts 0;
/// anything that is not a list gives None.
pub fn cpu_list_count(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    let mut n: u32 = 0;
    for part in s.split(',') {
        let part = part.trim();
        let count = match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.trim().parse().ok()?;
                let b: u32 = b.trim().parse().ok()?;
                if b < a {
                    return None;
                }
                (b - a).checked_add(1)?
            }
            None => {
                part.parse::<u32>().ok()?;
                1
            }
        };
        n = n.checked_add(count)?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::FixtureSource;

    /// A fixture tree from (relative path, content) pairs; a path ending in `/` is an empty dir.
    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, FixtureSource) {
        let dir = tempfile::tempdir().expect("tempdir");
        for (rel, content) in files {
            let p = dir.path().join(rel);
            if rel.ends_with('/') {
                std::fs::create_dir_all(&p).expect("mkdir");
                continue;
            }
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, content).expect("write");
        }
        let src = FixtureSource::open(dir.path()).expect("fixture");
        (dir, src)
    }

    /// This machine's mountinfo: v1 controllers under /sys/fs/cgroup plus cgroup2 at .../unified.
    const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
5:devices:/
4:memory:/process_api/1ad271907c79b1e44993e19cadb2ff2b
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";
    const OWN_MEM: &str = "/process_api/1ad271907c79b1e44993e19cadb2ff2b";
    const NO_LIMIT: &str = "9223372036854771712\n";

    fn hybrid_files() -> Vec<(&'static str, &'static str)> {
        vec![
            ("proc/self/mountinfo", HYBRID_MOUNTINFO),
            ("proc/self/cgroup", HYBRID_CGROUP),
            ("proc/self/status", "Name:\tcat\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n"),
            ("sys/fs/cgroup/unified/cgroup.controllers", "\n"),
            ("sys/fs/cgroup/unified/cgroup.procs", "1\n2\n3\n"),
            (
                "sys/fs/cgroup/unified/cpu.stat",
                "usage_usec 35084739\nuser_usec 17413807\nsystem_usec 17670932\nnice_usec 0\n",
            ),
            (
                "sys/fs/cgroup/cpu/cpu.stat",
                "nr_periods 10\nnr_throttled 2\nthrottled_time 5000000\nnr_bursts 0\nburst_time 0\n",
            ),
            ("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n"),
            ("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"),
            ("sys/fs/cgroup/cpu/cgroup.procs", "1\n2\n3\n"),
            ("sys/fs/cgroup/cpu/tasks", "1\n2\n3\n"),
            ("sys/fs/cgroup/cpuacct/cpuacct.usage", "36411221842\n"),
            ("sys/fs/cgroup/cpuset/cpuset.effective_cpus", "0-1\n"),
            ("sys/fs/cgroup/cpuset/cpuset.cpus", "0-1\n"),
            ("sys/fs/cgroup/memory/memory.usage_in_bytes", "22261760\n"),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", NO_LIMIT),
            ("sys/fs/cgroup/memory/memory.memsw.usage_in_bytes", "22261760\n"),
            ("sys/fs/cgroup/memory/memory.failcnt", "0\n"),
            ("sys/fs/cgroup/memory/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"),
            (
                "sys/fs/cgroup/memory/memory.stat",
                "cache 9297920\nrss 4001792\ninactive_file 4096\nhierarchical_memory_limit 9223372036854771712\ntotal_cache 15441920\ntotal_rss 6819840\ntotal_inactive_file 589824\n",
            ),
            ("sys/fs/cgroup/memory/process_api/memory.usage_in_bytes", "8000000\n"),
            ("sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", NO_LIMIT),
            (
                "sys/fs/cgroup/memory/process_api/1ad271907c79b1e44993e19cadb2ff2b/memory.usage_in_bytes",
                "4000000\n",
            ),
            (
                "sys/fs/cgroup/memory/process_api/1ad271907c79b1e44993e19cadb2ff2b/memory.limit_in_bytes",
                NO_LIMIT,
            ),
            (
                "sys/fs/cgroup/memory/process_api/1ad271907c79b1e44993e19cadb2ff2b/memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
            (
                "sys/fs/cgroup/memory/process_api/1ad271907c79b1e44993e19cadb2ff2b/memory.failcnt",
                "17\n",
            ),
            (
                "sys/fs/cgroup/memory/process_api/1ad271907c79b1e44993e19cadb2ff2b/cgroup.procs",
                "42\n43\n",
            ),
            ("sys/fs/cgroup/pids/cgroup.procs", "1\n"),
        ]
    }

    const V2_MOUNTINFO: &str = "\
25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 25 0:26 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 30 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    fn v2_files() -> Vec<(&'static str, &'static str)> {
        vec![
            ("proc/self/mountinfo", V2_MOUNTINFO),
            ("proc/self/cgroup", "0::/kubepods/pod1/ctr\n"),
            ("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n"),
            ("sys/fs/cgroup/cgroup.procs", "1\n"),
            ("sys/fs/cgroup/cpu.stat", "usage_usec 900\nuser_usec 600\nsystem_usec 300\n"),
            ("sys/fs/cgroup/cpuset.cpus.effective", "0-63\n"),
            ("sys/fs/cgroup/memory.stat", "anon 1\nfile 2\n"),
            ("sys/fs/cgroup/kubepods/cpu.stat", "usage_usec 500\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n"),
            ("sys/fs/cgroup/kubepods/cpu.max", "max 100000\n"),
            ("sys/fs/cgroup/kubepods/memory.current", "3000000000\n"),
            ("sys/fs/cgroup/kubepods/memory.max", "8000000000\n"),
            ("sys/fs/cgroup/kubepods/memory.high", "max\n"),
            ("sys/fs/cgroup/kubepods/pods.note", "not a cgroup, just a file\n"),
            ("sys/fs/cgroup/kubepods/pod1/cpu.stat", "usage_usec 400\nnr_periods 120\nnr_throttled 30\nthrottled_usec 2500000\nnr_bursts 0\nburst_usec 0\n"),
            ("sys/fs/cgroup/kubepods/pod1/cpu.max", "200000 100000\n"),
            ("sys/fs/cgroup/kubepods/pod1/memory.current", "1073741824\n"),
            ("sys/fs/cgroup/kubepods/pod1/memory.max", "2147483648\n"),
            ("sys/fs/cgroup/kubepods/pod1/memory.high", "max\n"),
            ("sys/fs/cgroup/kubepods/pod1/memory.swap.current", "0\n"),
            ("sys/fs/cgroup/kubepods/pod1/memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n"),
            ("sys/fs/cgroup/kubepods/pod1/memory.stat", "anon 900000000\nfile 100000000\nkernel 5\ninactive_file 60000000\nsome_future_key 7\n"),
            ("sys/fs/cgroup/kubepods/pod1/pids.current", "57\n"),
            ("sys/fs/cgroup/kubepods/pod1/pids.max", "max\n"),
            ("sys/fs/cgroup/kubepods/pod1/ctr/cpu.stat", "usage_usec 300\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n"),
            ("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n"),
            ("sys/fs/cgroup/kubepods/pod1/ctr/memory.current", "1000\n"),
            ("sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "max\n"),
            ("sys/fs/cgroup/kubepods/pod1/ctr/pids.current", "5\n"),
            ("sys/fs/cgroup/kubepods/pod1/ctr/pids.max", "100\n"),
            ("sys/fs/cgroup/kubepods/pod1/ctr/cgroup.procs", "7\n8\n9\n"),
        ]
    }

    const V1_MOUNTINFO: &str = "\
18 24 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
27 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpuset
33 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
this line is garbled
";

    fn v1_files() -> Vec<(&'static str, &'static str)> {
        vec![
            ("proc/self/mountinfo", V1_MOUNTINFO),
            (
                "proc/self/cgroup",
                "11:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n2:cpuset:/docker/abc\n1:name=systemd:/docker/abc\ngarbage\n",
            ),
            ("sys/fs/cgroup/cpu,cpuacct/cpu.stat", "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"),
            ("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n"),
            ("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
            ("sys/fs/cgroup/cpu,cpuacct/cpuacct.usage", "1000000000\n"),
            ("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.stat", "nr_periods 40\nnr_throttled 10\nthrottled_time 3000000000\n"),
            ("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "50000\n"),
            ("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n"),
            ("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpuacct.usage", "250000000\n"),
            ("sys/fs/cgroup/memory/memory.usage_in_bytes", "500000000\n"),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "100000000\n"),
            ("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "268435456\n"),
            ("sys/fs/cgroup/memory/docker/abc/memory.memsw.usage_in_bytes", "100004096\n"),
            ("sys/fs/cgroup/memory/docker/abc/memory.stat", "cache 30\nrss 70\ninactive_file 10\n"),
            ("sys/fs/cgroup/cpuset/docker/abc/cpuset.cpus", "0-3\n"),
            ("sys/fs/cgroup/pids/docker/abc/pids.current", "12\n"),
            ("sys/fs/cgroup/pids/docker/abc/pids.max", "4096\n"),
            ("proc/self/status", "Cpus_allowed_list:\t0-7\n"),
        ]
    }

    #[test]
    fn layout_hybrid_like_this_machine() {
        let (_d, src) = tree(&hybrid_files());
        let l = layout(&src).expect("layout");
        assert_eq!(l.mode, CgroupMode::Hybrid);
        assert_eq!(l.v2_mount.as_deref(), Some("sys/fs/cgroup/unified"));
        assert!(l.v2_controllers.is_empty());
        assert_eq!(
            l.v1_mounts.get("memory").map(String::as_str),
            Some("sys/fs/cgroup/memory")
        );
        assert_eq!(
            l.v1_mounts.get("cpu").map(String::as_str),
            Some("sys/fs/cgroup/cpu")
        );
        assert_eq!(
            l.v1_mounts.get("cpuacct").map(String::as_str),
            Some("sys/fs/cgroup/cpuacct")
        );
        assert!(
            !l.v1_mounts.contains_key("name"),
            "name=systemd is not a controller"
        );
        assert_eq!(l.own_v2.as_deref(), Some("/"));
        assert_eq!(l.own_v1.get("memory").map(String::as_str), Some(OWN_MEM));
        assert_eq!(l.own_v1.get("cpu").map(String::as_str), Some("/"));
        assert_eq!(serde_json::to_string(&l.mode).expect("json"), "\"hybrid\"");
    }

    #[test]
    fn layout_v2_only() {
        let (_d, src) = tree(&v2_files());
        let l = layout(&src).expect("layout");
        assert_eq!(l.mode, CgroupMode::V2);
        assert_eq!(l.v2_mount.as_deref(), Some("sys/fs/cgroup"));
        assert_eq!(
            l.v2_controllers,
            ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"]
        );
        assert!(l.v1_mounts.is_empty());
        assert_eq!(l.own_v2.as_deref(), Some("/kubepods/pod1/ctr"));
        assert!(l.own_v1.is_empty());
    }

    #[test]
    fn layout_v1_only_with_comounted_controllers_and_garbage() {
        let (_d, src) = tree(&v1_files());
        let l = layout(&src).expect("layout");
        assert_eq!(l.mode, CgroupMode::V1);
        assert_eq!(l.v2_mount, None);
        assert_eq!(
            l.v1_mounts.get("cpu").map(String::as_str),
            Some("sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            l.v1_mounts.get("cpuacct").map(String::as_str),
            Some("sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(l.v1_mounts.len(), 5);
        assert_eq!(
            l.own_v1.get("cpuacct").map(String::as_str),
            Some("/docker/abc")
        );
        assert_eq!(
            l.own_v1.get("name=systemd").map(String::as_str),
            Some("/docker/abc")
        );
    }

    #[test]
    fn layout_without_cgroups_and_without_mountinfo() {
        let (_d, src) = tree(&[(
            "proc/self/mountinfo",
            "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
        )]);
        let l = layout(&src).expect("layout");
        assert_eq!(l.mode, CgroupMode::None);
        assert_eq!(l.own_v2, None);

        let (_d2, empty) = tree(&[("proc/", "")]);
        let p = layout(&empty).expect_err("no mountinfo");
        assert_eq!(p.path, "proc/self/mountinfo");
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount("/mnt/my\\040cgroup"), "/mnt/my cgroup");
        assert_eq!(unescape_mount("/odd\\04"), "/odd\\04");
        assert_eq!(unescape_mount("/x\\"), "/x\\");
    }

    #[test]
    fn scan_hybrid_merges_v1_and_v2() {
        let (_d, src) = tree(&hybrid_files());
        let l = layout(&src).expect("layout");
        let s = scan(&src, &l, 100);
        assert!(!s.truncated);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let paths: Vec<&str> = s.groups.iter().map(|g| g.path.as_str()).collect();
        assert_eq!(paths, ["/", "/process_api", OWN_MEM]);

        let root = &s.groups[0];
        let cpu = root.cpu.as_ref().expect("root cpu");
        assert_eq!(
            cpu.usage_us,
            Some(36_411_221),
            "usage from cpuacct.usage, in µs"
        );
        assert_eq!(
            (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_us),
            (10, 2, 5000)
        );
        assert_eq!(cpu.quota_us, None);
        assert_eq!(cpu.period_us, Some(100_000));
        let mem = root.memory.as_ref().expect("root memory");
        assert_eq!(mem.current_bytes, 22_261_760);
        assert_eq!(mem.max_bytes, None, "PAGE_COUNTER_MAX means no limit");
        assert_eq!(mem.swap_bytes, Some(0));
        assert_eq!(mem.anon_bytes, Some(6_819_840), "total_rss preferred");
        assert_eq!(mem.file_bytes, Some(15_441_920));
        assert_eq!(mem.inactive_file_bytes, Some(589_824));

        let own = &s.groups[2];
        let mem = own.memory.as_ref().expect("own memory");
        assert_eq!(mem.current_bytes, 4_000_000);
        assert_eq!(mem.oom_kill_events, Some(3));
        assert_eq!(mem.failcnt, Some(17));
        assert_eq!(own.cpu, None);
    }

    #[test]
    fn scan_v2_reads_throttling_limits_and_events() {
        let (_d, src) = tree(&v2_files());
        let l = layout(&src).expect("layout");
        let s = scan(&src, &l, 100);
        let paths: Vec<&str> = s.groups.iter().map(|g| g.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/", "/kubepods", "/kubepods/pod1", "/kubepods/pod1/ctr"]
        );
        assert!(s.problems.is_empty(), "{:?}", s.problems);

        let pod = &s.groups[2];
        let cpu = pod.cpu.as_ref().expect("cpu");
        assert_eq!(cpu.usage_us, Some(400));
        assert_eq!(
            (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_us),
            (120, 30, 2_500_000)
        );
        assert_eq!(
            (cpu.quota_us, cpu.period_us),
            (Some(200_000), Some(100_000))
        );
        let mem = pod.memory.as_ref().expect("memory");
        assert_eq!(mem.current_bytes, 1 << 30);
        assert_eq!(mem.max_bytes, Some(2 << 30));
        assert_eq!(mem.high_bytes, None);
        assert_eq!(mem.swap_bytes, Some(0));
        assert_eq!((mem.oom_events, mem.oom_kill_events), (Some(2), Some(1)));
        assert_eq!((mem.max_events, mem.high_events), (Some(12), Some(0)));
        assert_eq!(mem.anon_bytes, Some(900_000_000));
        assert_eq!(mem.inactive_file_bytes, Some(60_000_000));
        assert_eq!(
            pod.pids,
            Some(PidsCg {
                current: 57,
                max: None
            })
        );

        let ctr = &s.groups[3];
        assert_eq!(
            ctr.pids,
            Some(PidsCg {
                current: 5,
                max: Some(100)
            })
        );
        assert_eq!(ctr.cpu.as_ref().and_then(|c| c.quota_us), None);
        // The root has no memory.current: no memory sample rather than a zero one.
        assert_eq!(s.groups[0].memory, None);
        assert_eq!(s.groups[0].cpu.as_ref().and_then(|c| c.usage_us), Some(900));
    }

    #[test]
    fn scan_v1_co_mounted_cpu_cpuacct() {
        let (_d, src) = tree(&v1_files());
        let l = layout(&src).expect("layout");
        let s = scan(&src, &l, 100);
        let g = s
            .groups
            .iter()
            .find(|g| g.path == "/docker/abc")
            .expect("container group");
        let cpu = g.cpu.as_ref().expect("cpu");
        assert_eq!(cpu.usage_us, Some(250_000));
        assert_eq!(
            (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_us),
            (40, 10, 3_000_000)
        );
        assert_eq!(cpu.quota_us, Some(50_000));
        let mem = g.memory.as_ref().expect("memory");
        assert_eq!(mem.max_bytes, Some(268_435_456));
        assert_eq!(mem.swap_bytes, Some(4096));
        assert_eq!((mem.anon_bytes, mem.file_bytes), (Some(70), Some(30)));
        assert_eq!(
            g.pids,
            Some(PidsCg {
                current: 12,
                max: Some(4096)
            })
        );
    }

    #[test]
    fn scan_stops_at_max_groups() {
        let (_d, src) = tree(&v2_files());
        let l = layout(&src).expect("layout");
        let s = scan(&src, &l, 2);
        assert!(s.truncated);
        let paths: Vec<&str> = s.groups.iter().map(|g| g.path.as_str()).collect();
        assert_eq!(paths, ["/", "/kubepods"]);
        let all = scan(&src, &l, 4);
        assert!(!all.truncated, "exactly enough budget is not truncation");
    }

    #[test]
    fn garbled_files_make_one_problem_per_kind() {
        let mut files = v2_files();
        files.push(("sys/fs/cgroup/kubepods/pod1/memory.max", "lots\n"));
        files.push(("sys/fs/cgroup/kubepods/memory.max", "plenty\n"));
        files.retain(|(p, c)| !(p.ends_with("pod1/memory.max") && c.starts_with('2')));
        files.retain(|(p, c)| !(p.ends_with("kubepods/memory.max") && c.starts_with('8')));
        let (_d, src) = tree(&files);
        let l = layout(&src).expect("layout");
        let s = scan(&src, &l, 100);
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert_eq!(s.problems[0].path, "sys/fs/cgroup/kubepods/memory.max");
        assert!(s.problems[0].reason.contains("plenty"));
        // The rest of the sample is still there.
        let pod = s
            .groups
            .iter()
            .find(|g| g.path == "/kubepods/pod1")
            .expect("pod");
        assert_eq!(
            pod.memory.as_ref().map(|m| (m.current_bytes, m.max_bytes)),
            Some((1 << 30, None))
        );
    }

    #[test]
    fn effective_cpus_takes_quota_from_an_ancestor() {
        let (_d, src) = tree(&v2_files());
        let l = layout(&src).expect("layout");
        let (n, why) = effective_cpus(&src, &l, 64);
        assert_eq!(n, 2.0);
        assert_eq!(why, "cpu.max 200000 100000 at /kubepods/pod1");
    }

    #[test]
    fn effective_cpus_on_this_machine_shape_is_online() {
        let (_d, src) = tree(&hybrid_files());
        let l = layout(&src).expect("layout");
        assert_eq!(effective_cpus(&src, &l, 2), (2.0, "online 2".to_string()));
        // Fewer CPUs in the cpuset than online: the cpuset binds.
        assert_eq!(effective_cpus(&src, &l, 8), (2.0, "cpuset 0-1".to_string()));
    }

    #[test]
    fn effective_cpus_v1_quota_and_cpuset() {
        let (_d, src) = tree(&v1_files());
        let l = layout(&src).expect("layout");
        let (n, why) = effective_cpus(&src, &l, 16);
        assert_eq!(n, 0.5);
        assert_eq!(
            why,
            "cpu.cfs_quota_us 50000 cpu.cfs_period_us 100000 at /docker/abc"
        );

        let mut files = v1_files();
        files.retain(|(p, _)| !p.ends_with("abc/cpu.cfs_quota_us"));
        let (_d2, src2) = tree(&files);
        assert_eq!(
            effective_cpus(&src2, &l, 16),
            (4.0, "cpuset 0-3".to_string())
        );
    }

    #[test]
    fn effective_cpus_with_nothing_known() {
        let (_d, src) = tree(&[("proc/", "")]);
        let l = CgroupLayout {
            mode: CgroupMode::None,
            v2_mount: None,
            v2_controllers: vec![],
            v1_mounts: BTreeMap::new(),
            own_v2: None,
            own_v1: BTreeMap::new(),
        };
        assert_eq!(effective_cpus(&src, &l, 4), (4.0, "online 4".to_string()));
        assert_eq!(effective_cpus(&src, &l, 0).0, 1.0);
    }

    #[test]
    fn cgroup_mounted_from_our_own_group_is_found() {
        // docker on v1 without a cgroup namespace: the mount shows /docker/abc at its top.
        let (_d, src) = tree(&[
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "536870912\n"),
            ("sys/fs/cgroup/memory/memory.usage_in_bytes", "1\n"),
        ]);
        let chain = own_chain(&src, "sys/fs/cgroup/memory", "/docker/abc");
        assert_eq!(
            chain,
            [(
                "sys/fs/cgroup/memory".to_string(),
                "/docker/abc".to_string()
            )]
        );
        let mut l = layout_for_v1_memory();
        l.own_v1.insert("memory".into(), "/docker/abc".into());
        assert_eq!(
            memory_limit(&src, &l),
            Some((
                536_870_912,
                "memory.limit_in_bytes at /docker/abc".to_string()
            ))
        );
    }

    fn layout_for_v1_memory() -> CgroupLayout {
        CgroupLayout {
            mode: CgroupMode::V1,
            v2_mount: None,
            v2_controllers: vec![],
            v1_mounts: [("memory".to_string(), "sys/fs/cgroup/memory".to_string())].into(),
            own_v2: None,
            own_v1: BTreeMap::new(),
        }
    }

    #[test]
    fn memory_limit_is_the_tightest_in_the_chain() {
        let (_d, src) = tree(&v2_files());
        let l = layout(&src).expect("layout");
        assert_eq!(
            memory_limit(&src, &l),
            Some((2_147_483_648, "memory.max at /kubepods/pod1".to_string()))
        );

        let (_d, src) = tree(&hybrid_files());
        let l = layout(&src).expect("layout");
        assert_eq!(memory_limit(&src, &l), None, "PAGE_COUNTER_MAX everywhere");

        let (_d, src) = tree(&v1_files());
        let l = layout(&src).expect("layout");
        assert_eq!(
            memory_limit(&src, &l),
            Some((
                268_435_456,
                "memory.limit_in_bytes at /docker/abc".to_string()
            ))
        );
    }

    #[test]
    fn container_evidence_sources() {
        let (_d, src) = tree(&hybrid_files());
        let l = layout(&src).expect("layout");
        assert_eq!(container_evidence(&src, &l), None);

        let mut files = hybrid_files();
        files.push((".dockerenv", ""));
        files.push(("proc/1/environ", "PATH=/bin\0container=podman\0HOME=/\0"));
        let (_d, src) = tree(&files);
        assert_eq!(
            container_evidence(&src, &l).as_deref(),
            Some("/.dockerenv exists; container=podman in PID 1's environment")
        );

        let (_d, src) = tree(&v2_files());
        let l = layout(&src).expect("layout");
        assert_eq!(
            container_evidence(&src, &l).as_deref(),
            Some("cgroup path /kubepods/pod1/ctr")
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list_count("0-3,8,10-11"), Some(7));
        assert_eq!(cpu_list_count("0-1\n"), Some(2));
        assert_eq!(cpu_list_count("5"), Some(1));
        assert_eq!(cpu_list_count(""), Some(0));
        assert_eq!(cpu_list_count("3-1"), None);
        assert_eq!(cpu_list_count("0-3:2/4"), None);
        assert_eq!(cpu_list_count("x"), None);
        assert_eq!(cpu_list_count("0,,1"), None);
        assert_eq!(cpu_list_count("0-4294967295,0-4294967295"), None);
    }

    #[test]
    fn value_parsers() {
        assert_eq!(parse_cpu_max("max 100000\n"), Some((None, Some(100_000))));
        assert_eq!(
            parse_cpu_max("150000 100000"),
            Some((Some(150_000), Some(100_000)))
        );
        assert_eq!(parse_cpu_max("fast"), None);
        assert_eq!(parse_v1_quota("-1\n"), Some(None));
        assert_eq!(parse_v1_quota("x"), None);
        assert_eq!(v1_limit(9_223_372_036_854_771_712), None);
        assert_eq!(v1_limit(1 << 30), Some(1 << 30));
        let (m, bad) = parse_keyed("a 1\nb x\n\nc 3 extra\n");
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.get("c"), Some(&3));
        assert_eq!(bad.as_deref(), Some("b x"));
    }
}
