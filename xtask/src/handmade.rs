//! `cargo xtask handmade [NAME...]`: derive the hand-made fixtures from `fixtures/idle`.
//!
//! Some situations cannot be recorded on the machine that captured the other fixtures (a pure
//! cgroup v2 host, a 2-CPU quota on a 64-CPU host), and some inputs never occur on a healthy one
//! (garbled /proc files). Each of these fixtures starts as a copy of the idle recording, symlinks
//! included, and is then edited file by file, so everything the situation does not touch stays
//! real. The result is deterministic: the target directory is removed and derived again from
//! the idle fixture and its `meta.json` (window length, clock ticks) alone, and `meta.json`'s
//! `note` says `hand-made: ` and what was changed. Last, the copy is reduced to an overlay of its
//! base (`overlay::reduce`): only the files that differ stay.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::util;

mod deep;

/// The recorded fixture every hand-made one is derived from.
const BASE: &str = "idle";

/// The fixtures this command writes, in order (then the deep dives', from `deep-idle`).
pub const FIXTURES: &[&str] = &[
    "cgroup-v2-only",
    "container-quota-2-of-64",
    "garbled-proc",
    "swap-nearly-full",
    "disk-slow-flush",
];

fn known(name: &str) -> Option<&'static str> {
    FIXTURES
        .iter()
        .chain(deep::DEEP_FIXTURES)
        .find(|f| **f == name)
        .copied()
}

/// The two snapshots of a fixture.
const SNAPSHOTS: [&str; 2] = ["t0", "t1"];

/// Parses `[NAME...]` (default: all) and derives each fixture in turn.
pub fn run(args: &[String]) -> Result<ExitCode> {
    let mut names: Vec<&str> = Vec::new();
    for a in args {
        match known(a) {
            Some(f) if !names.contains(&f) => names.push(f),
            Some(_) => {}
            None => {
                return crate::usage_err(format!(
                    "handmade: unknown fixture `{a}` (known: {} {})",
                    FIXTURES.join(" "),
                    deep::DEEP_FIXTURES.join(" ")
                ))
            }
        }
    }
    if names.is_empty() {
        names = FIXTURES
            .iter()
            .chain(deep::DEEP_FIXTURES)
            .copied()
            .collect();
    }
    let fixtures = util::root().join("fixtures");
    // A packed base (`fixtures pack`) is copied from a scratch copy of its tree.
    let idle = Base::open(&crate::fixtures::unpacked(&fixtures.join(BASE))?)?;
    let deep_idle = Base::open(&crate::fixtures::unpacked(&fixtures.join(deep::DEEP_BASE))?)?;
    for name in names {
        let base = if deep::DEEP_FIXTURES.contains(&name) {
            &deep_idle
        } else {
            &idle
        };
        let dir = fixtures.join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove old {}", dir.display()))?;
        }
        copy_tree(&base.dir, &dir)?;
        let what = match name {
            "cgroup-v2-only" => cgroup_v2_only(&dir, base),
            "container-quota-2-of-64" => container_quota(&dir, base),
            "garbled-proc" => garbled_proc(&dir),
            "swap-nearly-full" => swap_nearly_full(&dir),
            "disk-slow-flush" => disk_slow_flush(&dir, base),
            deep_name => deep::build(deep_name, &dir, base),
        }
        .with_context(|| format!("deriving fixtures/{name}"))?;
        let note = format!("hand-made: {what}");
        write(&dir.join("meta.json"), base.meta_with_note(&note)?)?;
        let base_name = base.dir.file_name().unwrap_or_default().to_string_lossy();
        let (files, removed) = crate::overlay::reduce(&dir, &base_name)?;
        println!(
            "xtask: wrote fixtures/{name}, an overlay of fixtures/{base_name} with {files} \
             file(s), {removed} removed ({note})"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The idle fixture and the window facts its `meta.json` gives.
struct Base {
    dir: PathBuf,
    meta: serde_json::Map<String, Value>,
    elapsed_s: f64,
    ticks_per_s: f64,
    sample_interval_s: f64,
}

impl Base {
    fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("meta.json");
        let meta: Value = serde_json::from_str(&read(&path)?)
            .with_context(|| format!("{}: invalid JSON", path.display()))?;
        let Value::Object(meta) = meta else {
            bail!("{}: not a JSON object", path.display());
        };
        let num = |key: &str| {
            meta.get(key)
                .and_then(Value::as_f64)
                .filter(|v| *v > 0.0)
                .with_context(|| format!("{}: no positive `{key}`", path.display()))
        };
        Ok(Base {
            dir: dir.to_path_buf(),
            elapsed_s: num("elapsed_s")?,
            ticks_per_s: num("clock_ticks_per_s")?,
            sample_interval_s: num("sample_interval_ms")? / 1000.0,
            meta,
        })
    }

    /// The base `meta.json` with another note, keys in the order triage writes them (serde_json
    /// here sorts object keys, so the known ones are laid out by hand).
    fn meta_with_note(&self, note: &str) -> Result<String> {
        const ORDER: &[&str] = &[
            "format_version",
            "start",
            "end",
            "elapsed_s",
            "clock_ticks_per_s",
            "page_size_bytes",
            "sample_interval_ms",
            "triage_version",
            "note",
        ];
        let mut meta = self.meta.clone();
        meta.insert("note".into(), Value::String(note.into()));
        let mut keys: Vec<&String> = ORDER
            .iter()
            .filter_map(|k| meta.get_key_value(*k).map(|(k, _)| k))
            .collect();
        keys.extend(meta.keys().filter(|k| !ORDER.contains(&k.as_str())));
        let mut out = String::from("{\n");
        for (i, k) in keys.iter().enumerate() {
            let sep = if i + 1 < keys.len() { "," } else { "" };
            out.push_str(&format!(
                "  {}: {}{sep}\n",
                serde_json::to_string(k)?,
                serde_json::to_string(&meta[k.as_str()])?
            ));
        }
        out.push('}');
        Ok(out)
    }

    /// `v0` advanced by `per_s` over the fraction `f` of the window, rounded to an integer.
    fn at(&self, v0: f64, per_s: f64, f: f64) -> u64 {
        (v0 + per_s * self.elapsed_s * f).round() as u64
    }
}

// --- 1. cgroup-v2-only --------------------------------------------------------------------

/// A pure cgroup v2 host: one web service near its memory limit, one batch job throttled by its
/// CPU quota, and triage itself in its own service.
fn cgroup_v2_only(dir: &Path, b: &Base) -> Result<String> {
    for (f, snap) in SNAPSHOTS.iter().enumerate() {
        let f = f as f64;
        let root = dir.join(snap);
        make_v2_host(&root, "/system.slice/triage.service")?;
        let cg = root.join("sys/fs/cgroup");

        // web.service: no CPU limit, memory at ~92% of a 1 GiB limit, hitting it (max events).
        let web_cur = [975_000_000u64, 990_000_000][f as usize];
        let web_anon = [866_000_000u64, 880_000_000][f as usize];
        let web_file = web_cur - web_anon - 11_000_000;
        let web_inactive = web_file * 2 / 5;
        let web_usage = b.at(52_000_000.0, 200_000.0, f);
        let web = [
            ("cpu.max", "max 100000\n".to_string()),
            ("cpu.stat", cpu_stat(web_usage, 0.7, 0, 0, 0)),
            ("memory.current", format!("{web_cur}\n")),
            ("memory.max", "1073741824\n".into()),
            ("memory.high", "max\n".into()),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 12\noom 0\noom_kill 0\noom_group_kill 0\n".into(),
            ),
            (
                "memory.stat",
                format!(
                    "anon {web_anon}\nfile {web_file}\nkernel 11000000\nshmem 0\n\
                     active_file {}\ninactive_file {web_inactive}\n",
                    web_file - web_inactive
                ),
            ),
            ("memory.swap.current", "0\n".into()),
            ("pids.current", "40\n".into()),
            ("pids.max", "4096\n".into()),
        ];
        write_cgroup(&cg, "system.slice/web.service", &web)?;

        // batch.service: a 0.5-CPU quota it uses fully, throttled in ~60% of its periods.
        let periods = b.at(1000.0, 10.0, f);
        let new_periods = periods - 1000;
        let throttled = 100 + (new_periods as f64 * 0.6).round() as u64;
        let batch_usage = b.at(1_000_000.0, 500_000.0, f);
        let batch = [
            ("cpu.max", "50000 100000\n".to_string()),
            (
                "cpu.stat",
                cpu_stat(
                    batch_usage,
                    0.8,
                    periods,
                    throttled,
                    b.at(2_000_000.0, 300_000.0, f),
                ),
            ),
        ];
        write_cgroup(&cg, "system.slice/batch.service", &batch)?;

        // triage.service: where the reader runs; no limits.
        let triage_usage = b.at(150_000.0, 10_000.0, f);
        let triage_mem = [3_900_000u64, 4_100_000][f as usize];
        let triage = [
            ("cpu.stat", cpu_stat(triage_usage, 0.5, 0, 0, 0)),
            ("memory.current", format!("{triage_mem}\n")),
            ("memory.max", "max\n".into()),
        ];
        write_cgroup(&cg, "system.slice/triage.service", &triage)?;

        let slice = [
            (
                "cpu.stat",
                cpu_stat(web_usage + batch_usage + triage_usage, 0.7, 0, 0, 0),
            ),
            ("memory.current", format!("{}\n", web_cur + triage_mem)),
        ];
        write_cgroup(&cg, "system.slice", &slice)?;
    }
    Ok(format!(
        "pure cgroup v2 host derived from fixtures/{BASE}: proc/self/mountinfo's cgroup mounts \
         replaced by one cgroup2 at /sys/fs/cgroup, proc/self/cgroup 0::/system.slice/triage.service, \
         v2 tree with /system.slice/web.service at 975000000 -> 990000000 bytes of a \
         1073741824 memory.max (~92%, memory.events max 12) and /system.slice/batch.service \
         with cpu.max 50000 100000 throttled in 60% of its periods (300 ms/s); everything else \
         is the idle recording"
    ))
}

// --- 2. container-quota-2-of-64 -----------------------------------------------------------

const CPUS: usize = 64;
const BUSY_CPUS: usize = 8;
const WORKERS: [u32; 6] = [40001, 40002, 40003, 40004, 40005, 40006];
/// The idle recording's `sleep`: a plain user process in our own network namespace.
const WORKER_TEMPLATE: u32 = 21568;

/// A container limited to 2 CPUs by `cpu.max` on a 64-CPU host: six busy workers keep its run
/// queue at 6 while the host is nearly idle.
fn container_quota(dir: &Path, b: &Base) -> Result<String> {
    let own = "/kubepods/burstable/pod1234/ctr";
    for (f, snap) in SNAPSHOTS.iter().enumerate() {
        let f = f as f64;
        let root = dir.join(snap);
        make_v2_host(&root, own)?;
        let cg = root.join("sys/fs/cgroup");

        // The container: 2 CPUs used of a 2-CPU quota, throttled in 15% of its periods.
        let periods = b.at(36_000.0, 10.0, f);
        let throttled = 5_400 + ((periods - 36_000) as f64 * 0.15).round() as u64;
        let usage = b.at(3_600_000_000.0, 1_980_000.0, f);
        let ctr = [
            ("cpu.max", "200000 100000\n".to_string()),
            (
                "cpu.stat",
                cpu_stat(
                    usage,
                    0.9,
                    periods,
                    throttled,
                    b.at(270_000_000.0, 30_000.0, f),
                ),
            ),
            ("memory.current", "600000000\n".into()),
            ("memory.max", "2147483648\n".into()),
            ("memory.high", "max\n".into()),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n".into(),
            ),
            (
                "memory.stat",
                "anon 540000000\nfile 50000000\nkernel 10000000\nshmem 0\n\
                 active_file 30000000\ninactive_file 20000000\n"
                    .into(),
            ),
            ("memory.swap.current", "0\n".into()),
            ("pids.current", "8\n".into()),
            ("pids.max", "4096\n".into()),
        ];
        write_cgroup(&cg, "kubepods/burstable/pod1234/ctr", &ctr)?;
        for (i, parent) in [
            "kubepods",
            "kubepods/burstable",
            "kubepods/burstable/pod1234",
        ]
        .iter()
        .enumerate()
        {
            let extra = 1_000_000 * (3 - i as u64);
            let files = [
                ("cpu.max", "max 100000\n".to_string()),
                ("cpu.stat", cpu_stat(usage + extra, 0.9, 0, 0, 0)),
                ("memory.current", format!("{}\n", 600_000_000 + extra)),
                ("memory.max", "max\n".into()),
            ];
            write_cgroup(&cg, parent, &files)?;
        }

        let stat = root.join("proc/stat");
        edit(&stat, |t| stat_64(t, b, f))?;
        write(&root.join("proc/loadavg"), "6.10 5.80 4.20 7/400 12345\n")?;
        write(&root.join("sys/devices/system/cpu/online"), "0-63\n")?;
        write(&root.join(".dockerenv"), "")?;

        // Six workers, copies of an idle user process, each using ~33% of a CPU.
        let template = root.join(format!("proc/{WORKER_TEMPLATE}"));
        for (i, pid) in WORKERS.iter().enumerate() {
            let to = root.join(format!("proc/{pid}"));
            copy_tree(&template, &to)?;
            let utime = b.at(500.0 + 10.0 * i as f64, b.ticks_per_s * 0.33, f);
            edit(&to.join("stat"), |t| {
                edit_stat(t, *pid, "worker", 'R', 1, utime)
            })?;
        }
    }
    // The reader's CPU affinity: every CPU of the host (only t1 records proc/self/status).
    edit(&dir.join("t1/proc/self/status"), |t| {
        let mut out = String::new();
        let mut seen = false;
        for line in t.lines() {
            if line.starts_with("Cpus_allowed_list:") {
                out.push_str("Cpus_allowed_list:\t0-63\n");
                seen = true;
            } else if line.starts_with("Cpus_allowed:") {
                out.push_str("Cpus_allowed:\tffffffff,ffffffff\n");
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        if !seen {
            bail!("no Cpus_allowed_list line");
        }
        Ok(out)
    })?;
    for sample in samples(dir)? {
        let f = (sample_index(&sample)? + 1) as f64 * b.sample_interval_s / b.elapsed_s;
        edit(&sample.join("proc/stat"), |t| stat_64(t, b, f.min(1.0)))?;
    }
    Ok(format!(
        "container with a 2-CPU quota on a 64-CPU host, derived from fixtures/{BASE}: proc/stat \
         with 64 CPUs (0-7 at 25% user, the rest idle) and procs_running 7 (6 runnable + the \
         reader) in every sample, sys/devices/system/cpu/online 0-63, Cpus_allowed_list 0-63, \
         loadavg 6.10 5.80 4.20, /.dockerenv, pure cgroup v2 with proc/self/cgroup \
         0::{own} whose cpu.max is 200000 100000 (throttled in 15% of periods) and memory.max \
         2147483648 (600000000 used), and six `worker` processes (pids 40001-40006, copies of \
         pid {WORKER_TEMPLATE}) in state R at ~33% CPU each"
    ))
}

/// `/proc/stat` with 64 CPUs at fraction `f` of the window: CPUs 0-7 busy at 25% user, the
/// others idle; the `cpu` line is their sum. Lines other than the CPU and task lines are kept.
fn stat_64(text: &str, b: &Base, f: f64) -> Result<String> {
    let window = b.elapsed_s * b.ticks_per_s;
    let cpus: Vec<[u64; 10]> = (0..CPUS as u64)
        .map(|n| {
            let base = [
                20_000 + 37 * n,
                0,
                6_000 + 11 * n,
                90_000 + 53 * n,
                300 + n,
                0,
                30 + n,
                0,
                0,
                0,
            ];
            let all = (window * f).round() as u64;
            let user = if (n as usize) < BUSY_CPUS {
                (window * 0.25 * f).round() as u64
            } else {
                0
            };
            let mut v = base;
            v[0] += user;
            v[3] += all - user;
            v
        })
        .collect();
    let mut total = [0u64; 10];
    for c in &cpus {
        for (t, v) in total.iter_mut().zip(c) {
            *t += v;
        }
    }
    let row = |name: String, v: &[u64; 10]| {
        let nums: Vec<String> = v.iter().map(u64::to_string).collect();
        format!("{name} {}\n", nums.join(" "))
    };
    let mut out = row("cpu ".to_string(), &total);
    for (n, c) in cpus.iter().enumerate() {
        out.push_str(&row(format!("cpu{n}"), c));
    }
    let mut tasks = 0;
    for line in text.lines() {
        if line.starts_with("cpu") {
            continue;
        }
        if line.starts_with("procs_running ") {
            out.push_str("procs_running 7\n");
            tasks += 1;
        } else if line.starts_with("procs_blocked ") {
            out.push_str("procs_blocked 0\n");
            tasks += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if tasks != 2 {
        bail!("no procs_running/procs_blocked lines");
    }
    Ok(out)
}

/// A `/proc/PID/stat` line with another pid, name, state, parent and user time.
fn edit_stat(
    text: &str,
    pid: u32,
    comm: &str,
    state: char,
    ppid: u32,
    utime: u64,
) -> Result<String> {
    let close = text.rfind(')').context("stat without `)`")?;
    let mut fields: Vec<String> = text[close + 1..]
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    // fields[i] is field i + 3 of proc(5): 3 state, 4 ppid, 14 utime.
    if fields.len() < 22 {
        bail!("stat with {} fields after the name", fields.len());
    }
    fields[0] = state.to_string();
    fields[1] = ppid.to_string();
    fields[11] = utime.to_string();
    Ok(format!("{pid} ({comm}) {}\n", fields.join(" ")))
}

// --- 3. garbled-proc ----------------------------------------------------------------------

/// A process whose t1 stat is garbled, and one that vanished before t1.
const GARBLED_PID: u32 = 21323;
const VANISHED_PID: u32 = 21566;

/// A 2 GiB swap 97% used at both ends (no swap-in/out in the window: the idle recording's
/// vmstat), the rest idle with RAM to spare: `swap.utilization.space` as info, nothing warns.
fn swap_nearly_full(dir: &Path) -> Result<String> {
    const TOTAL_KB: u64 = 2 * 1024 * 1024;
    const FREE_KB: u64 = TOTAL_KB * 3 / 100;
    for snap in SNAPSHOTS {
        edit(&dir.join(snap).join("proc/meminfo"), |t| {
            let mut seen = 0;
            let out: String = t
                .lines()
                .map(|l| {
                    let v = if l.starts_with("SwapTotal:") {
                        Some(TOTAL_KB)
                    } else if l.starts_with("SwapFree:") {
                        Some(FREE_KB)
                    } else {
                        None
                    };
                    match v {
                        Some(kb) => {
                            seen += 1;
                            let key = &l[..l.find(':').unwrap_or(0) + 1];
                            format!("{key:<16}{kb:>8} kB\n")
                        }
                        None => format!("{l}\n"),
                    }
                })
                .collect();
            if seen != 2 {
                bail!("no SwapTotal/SwapFree lines");
            }
            Ok(out)
        })?;
    }
    Ok(format!(
        "derived from fixtures/idle: SwapTotal {TOTAL_KB} kB and SwapFree {FREE_KB} kB (97% used) \
         in t0 and t1 proc/meminfo; no swap-in/out in the window"
    ))
}

/// vda commits small writes, each followed by a cache flush (fsync): the writes take 0.5 ms,
/// the flushes 45 ms each. No queue (one flush at a time) and a healthy w_await: only the
/// flush time (diskstats fields 16-17) shows it.
fn disk_slow_flush(dir: &Path, b: &Base) -> Result<String> {
    const FLUSH_MS: u64 = 45;
    let writes = b.at(0.0, 15.0, 1.0);
    edit(&dir.join("t1/proc/diskstats"), |t| {
        let mut out = String::new();
        let mut seen = false;
        for line in t.lines() {
            let mut v: Vec<String> = line.split_ascii_whitespace().map(str::to_string).collect();
            if v.get(2).map(String::as_str) != Some("vda") || v.len() < 20 {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            seen = true;
            let add = |x: &str, n: u64| (x.parse::<u64>().unwrap_or(0) + n).to_string();
            let (write_ms, flush_ms) = (writes / 2, writes * FLUSH_MS);
            v[7] = add(&v[7], writes); // writes completed
            v[9] = add(&v[9], writes * 8); // sectors written (4 KiB each)
            v[10] = add(&v[10], write_ms); // ms writing
            v[12] = add(&v[12], write_ms + flush_ms); // ms doing I/O
            v[13] = add(&v[13], write_ms + flush_ms); // weighted ms (one at a time)
            v[18] = add(&v[18], writes); // flushes completed
            v[19] = add(&v[19], flush_ms); // ms flushing
            out.push_str(&format!("{:>4} {:>7} {}\n", v[0], v[1], v[2..].join(" ")));
        }
        if !seen {
            bail!("no vda line with flush fields");
        }
        Ok(out)
    })?;
    Ok(format!(
        "derived from fixtures/idle: t1 proc/diskstats vda +{writes} writes of 4 KiB at 0.5 ms \
         each, each followed by a cache flush of {FLUSH_MS} ms"
    ))
}

/// Bad input at t1: truncated, garbled, binary and missing files. t0 is the idle recording.
fn garbled_proc(dir: &Path) -> Result<String> {
    let t1 = dir.join("t1");
    edit(&t1.join("proc/meminfo"), |t| {
        Ok(t.lines().take(3).map(|l| format!("{l}\n")).collect())
    })?;
    edit(&t1.join("proc/diskstats"), |t| {
        let mut lines: Vec<&str> = t.lines().collect();
        if lines.len() < 2 {
            bail!("fewer than 2 lines");
        }
        lines[1] = "   8 garbage";
        Ok(lines.iter().map(|l| format!("{l}\n")).collect())
    })?;
    write(&t1.join("proc/net/snmp"), (0..=255u8).collect::<Vec<u8>>())?;
    let psi = t1.join("proc/pressure");
    fs::remove_dir_all(&psi).with_context(|| format!("cannot remove {}", psi.display()))?;
    let stat = t1.join(format!("proc/{GARBLED_PID}/stat"));
    read(&stat)?;
    write(&stat, format!("{GARBLED_PID} (unterminated"))?;
    let gone = t1.join(format!("proc/{VANISHED_PID}"));
    fs::remove_dir_all(&gone).with_context(|| format!("cannot remove {}", gone.display()))?;
    write(&t1.join("proc/loadavg"), "0.0\n")?;
    edit(&t1.join("dev/kmsg"), |t| {
        let lines: Vec<&str> = t.lines().collect();
        let mid = lines.len() / 2;
        let mut out = String::from("garbage without separator\n");
        for (i, l) in lines.iter().enumerate() {
            if i == mid {
                out.push_str("garbage without separator\n\u{1}\u{2}binary;\n");
            }
            out.push_str(l);
            out.push('\n');
        }
        out.push_str("garbage without separator\n");
        Ok(out)
    })?;
    Ok(format!(
        "bad input derived from fixtures/{BASE}; t0 untouched, in t1: proc/meminfo truncated \
         after 3 lines, proc/diskstats line 2 replaced by `   8 garbage`, proc/net/snmp is \
         the bytes 0x00..0xff, proc/pressure removed, proc/{GARBLED_PID}/stat garbled \
         (`{GARBLED_PID} (unterminated`), proc/{VANISHED_PID} removed (vanished mid-scan), \
         proc/loadavg `0.0`, and non-record lines in dev/kmsg"
    ))
}

// --- shared pieces --------------------------------------------------------------------------

/// Turns a snapshot of the hybrid idle host into a pure cgroup v2 one: mountinfo's cgroup
/// mounts become one `cgroup2` at /sys/fs/cgroup, we sit in `own`, and the v1 tree is replaced
/// by an empty v2 root (controllers, and the idle host's root `cpu.stat`).
fn make_v2_host(root: &Path, own: &str) -> Result<()> {
    edit(&root.join("proc/self/mountinfo"), v2_mountinfo)?;
    write(&root.join("proc/self/cgroup"), format!("0::{own}\n"))?;
    let cg = root.join("sys/fs/cgroup");
    let root_stat = read(&cg.join("unified/cpu.stat"))?;
    fs::remove_dir_all(&cg).with_context(|| format!("cannot remove {}", cg.display()))?;
    write(
        &cg.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )?;
    write(&cg.join("cpu.stat"), root_stat)?;
    Ok(())
}

/// mountinfo with every `cgroup`/`cgroup2` mount and the tmpfs at /sys/fs/cgroup replaced by
/// one `cgroup2` mount there (taking the place, ids and device of the first line removed).
fn v2_mountinfo(text: &str) -> Result<String> {
    let mut out = String::new();
    let mut replaced = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let fs_type = line
            .split_once(" - ")
            .and_then(|(_, r)| r.split_ascii_whitespace().next());
        let cgroup = match fs_type {
            Some("cgroup" | "cgroup2") => true,
            Some("tmpfs") => fields.get(4) == Some(&"/sys/fs/cgroup"),
            _ => false,
        };
        if !cgroup {
            out.push_str(line);
            out.push('\n');
        } else if !replaced {
            let [id, parent, dev, ..] = fields[..] else {
                bail!("short mountinfo line `{line}`");
            };
            out.push_str(&format!(
                "{id} {parent} {dev} / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - \
                 cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
            ));
            replaced = true;
        }
    }
    if !replaced {
        bail!("no cgroup mounts to replace");
    }
    Ok(out)
}

/// A v2 `cpu.stat`: usage split into user (`user_share`) and system, and CFS bandwidth counters.
fn cpu_stat(
    usage: u64,
    user_share: f64,
    periods: u64,
    throttled: u64,
    throttled_us: u64,
) -> String {
    let user = (usage as f64 * user_share).round() as u64;
    format!(
        "usage_usec {usage}\nuser_usec {user}\nsystem_usec {}\nnice_usec 0\n\
         nr_periods {periods}\nnr_throttled {throttled}\nthrottled_usec {throttled_us}\n\
         nr_bursts 0\nburst_usec 0\n",
        usage - user
    )
}

/// Writes control files into the cgroup directory `rel` under the v2 mount `cg`.
fn write_cgroup(cg: &Path, rel: &str, files: &[(&str, String)]) -> Result<()> {
    for (name, content) in files {
        write(&cg.join(rel).join(name), content)?;
    }
    Ok(())
}

/// The `samples/NNN` directories of a fixture, in order.
fn samples(dir: &Path) -> Result<Vec<PathBuf>> {
    let sd = dir.join("samples");
    let mut out: Vec<PathBuf> = fs::read_dir(&sd)
        .with_context(|| format!("cannot list {}", sd.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    out.sort();
    Ok(out)
}

/// `samples/007` -> 7.
fn sample_index(dir: &Path) -> Result<u32> {
    dir.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("{}: not a samples/NNN directory", dir.display()))
}

/// Copies a directory tree, recreating symlinks as symlinks (never following them).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let mut entries = fs::read_dir(from)
        .with_context(|| format!("cannot list {}", from.display()))?
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let kind = e.file_type()?;
        if kind.is_symlink() {
            let target = fs::read_link(&src)?;
            std::os::unix::fs::symlink(&target, &dst)
                .with_context(|| format!("cannot link {}", dst.display()))?;
        } else if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            fs::copy(&src, &dst)
                .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes a file, creating its directory.
fn write(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, data).with_context(|| format!("cannot write {}", path.display()))
}

/// Rewrites a text file through `f`.
fn edit(path: &Path, f: impl FnOnce(&str) -> Result<String>) -> Result<()> {
    let new = f(&read(path)?).with_context(|| format!("editing {}", path.display()))?;
    write(path, new)
}
