//! The process scan through the BPF task iterator against the /proc scan, on the live box
//! (root), and a recording of it replayed without BPF.
//!
//! Agreement is checked within the counters' own movement: /proc is scanned just before and
//! just after the iterator, so a monotonic counter (CPU time, faults, context switches) must
//! lie between the two /proc readings (one tick of slack for CPU time: /proc adds the running
//! task's pending run time, the iterator reads the last accounted one), and what does not
//! move (start time, name, thread count, RSS of an idle process) must be equal.
// Without eBPF only the replay of the committed fixture runs.
#![cfg_attr(not(feature = "bpf"), allow(dead_code, unused_imports))]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use triage::collect::procs::{self, ProcSample, ProcScan};
use triage::host::{LiveSource, Source};

/// A `triage-workload` child; killed and reaped when dropped.
struct Workload(Child);

impl Workload {
    /// Starts `triage-workload --now ARGS`; with `ready`, waits for its `ready` line.
    fn start(args: &[&str], ready: bool) -> Workload {
        let mut c = Command::new(env!("CARGO_BIN_EXE_triage-workload"))
            .arg("--now")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start triage-workload");
        if ready {
            let mut line = String::new();
            BufReader::new(c.stdout.as_mut().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "ready", "{args:?}");
        }
        Workload(c)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `lo <= x <= hi + slack` (and `x + slack >= lo`), with a message naming the field.
fn between(what: &str, pid: i32, lo: u64, x: u64, hi: u64, slack: u64) {
    assert!(
        x.saturating_add(slack) >= lo && x <= hi.saturating_add(slack),
        "pid {pid} {what}: iterator {x} outside /proc's [{lo}, {hi}] (slack {slack})"
    );
}

/// Field-by-field agreement of one process or thread sampled by the iterator (`it`) between
/// two /proc samples of it.
fn agree(b: &ProcSample, it: &ProcSample, a: &ProcSample) {
    let pid = b.pid;
    assert_eq!(it.pid, pid);
    assert_eq!(it.starttime, b.starttime, "pid {pid} start time");
    assert_eq!(it.kernel_thread, b.kernel_thread, "pid {pid} kernel thread");
    if b.comm == a.comm {
        if b.kernel_thread {
            // /proc shows a kernel thread's full name (and a kworker's workqueue); the task's
            // comm is its first 15 bytes.
            assert!(b.comm.starts_with(&it.comm), "pid {pid}: {b:?} vs {it:?}");
        } else {
            assert_eq!(it.comm, b.comm, "pid {pid} comm");
        }
    }
    if b.ppid == a.ppid {
        assert_eq!(it.ppid, b.ppid, "pid {pid} ppid");
    }
    if b.num_threads == a.num_threads {
        assert_eq!(it.num_threads, b.num_threads, "pid {pid} threads");
    }
    assert!(
        "RSDTtXZPI".contains(it.state),
        "pid {pid} state {}",
        it.state
    );
    between("utime", pid, b.utime, it.utime, a.utime, 1);
    between("stime", pid, b.stime, it.stime, a.stime, 1);
    between(
        "utime+stime",
        pid,
        b.utime + b.stime,
        it.utime + it.stime,
        a.utime + a.stime,
        1,
    );
    between("cutime", pid, b.cutime, it.cutime, a.cutime, 0);
    between("cstime", pid, b.cstime, it.cstime, a.cstime, 0);
    between("minflt", pid, b.minflt, it.minflt, a.minflt, 0);
    between("majflt", pid, b.majflt, it.majflt, a.majflt, 0);
}

fn proc_scan(src: &LiveSource) -> ProcScan {
    let mut problems = Vec::new();
    let s = procs::scan(src, &mut problems);
    assert!(s.dump.is_none());
    s
}

/// /proc/PID/task/TID/stat of every thread of `pid`, by tid.
fn proc_threads(pid: i32) -> BTreeMap<i32, ProcSample> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let tid = e.unwrap().file_name().to_string_lossy().into_owned();
        let b = std::fs::read(format!("/proc/{pid}/task/{tid}/stat")).unwrap();
        let s = ProcSample::parse(&b).unwrap();
        out.insert(s.pid, s);
    }
    out
}

/// voluntary and involuntary context switches of /proc/PID/task/TID/status.
fn proc_switches(pid: i32, tid: i32) -> (u64, u64) {
    let t = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap();
    let get = |k: &str| -> u64 {
        t.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (
        get("voluntary_ctxt_switches:"),
        get("nonvoluntary_ctxt_switches:"),
    )
}

#[cfg(feature = "bpf")]
#[test]
#[ignore = "needs root: BPF task iterator"]
fn the_iterator_agrees_with_proc_on_a_live_box() {
    common::require_bpf();
    const THREADS: i64 = 8;
    const MIB: u64 = 64;
    let spinner = Workload::start(&["spin", "100000000"], false);
    let threads = Workload::start(&["threads", &THREADS.to_string()], true);
    let touch = Workload::start(&["touch", &MIB.to_string()], true);
    let dumper = triage::probe::taskiter::dumper().expect("the task iterator loads as root");
    // Let the spinner accumulate CPU time.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let page = rustix::param::page_size() as u64;

    let proc_src = LiveSource::new("/");
    let iter_src = LiveSource::new("/").with_task_dumper(dumper);
    let tpid = threads.pid();
    let sw_before: BTreeMap<i32, (u64, u64)> = proc_threads(tpid)
        .keys()
        .map(|&t| (t, proc_switches(tpid, t)))
        .collect();
    let th_before = proc_threads(tpid);
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let before = proc_scan(&proc_src);
    let mut problems = Vec::new();
    let it = procs::scan(&iter_src, &mut problems);
    let after = proc_scan(&proc_src);
    let th_after = proc_threads(tpid);
    let sw_after: BTreeMap<i32, (u64, u64)> = th_after
        .keys()
        .map(|&t| (t, proc_switches(tpid, t)))
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
    let dump = it.dump.as_ref().expect("the scan came from the iterator");

    // Every process alive across the three scans: present, and agreeing.
    let mut compared = 0;
    for (pid, b) in &before.procs {
        let Some(a) = after.procs.get(pid).filter(|a| a.starttime == b.starttime) else {
            continue;
        };
        let i = it
            .procs
            .get(pid)
            .unwrap_or_else(|| panic!("pid {pid} ({}) missing from the iterator", b.comm));
        agree(b, i, a);
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} processes compared");
    // And nothing the iterator saw that /proc never did, unless it started after the first
    // /proc scan began (and was gone by the second).
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    for (pid, i) in &it.procs {
        assert!(
            before.procs.contains_key(pid)
                || after.procs.contains_key(pid)
                || i.starttime as f64 + 1.0 >= uptime * ticks,
            "pid {pid} ({}) seen by the iterator only",
            i.comm
        );
    }

    // What the dump lacked was read from /proc: rare (a sandbox's supervisor hidden from
    // BPF), and never an ordinary process such as the workloads.
    assert!(
        dump.from_proc.len() * 50 <= it.procs.len(),
        "{} of {} processes not in the dump: {:?}",
        dump.from_proc.len(),
        it.procs.len(),
        dump.from_proc
    );

    // The workloads: known answers (and all of them from the dump).
    for w in [&spinner, &threads, &touch] {
        assert!(!dump.from_proc.contains(&w.pid()), "pid {}", w.pid());
    }
    let s = &it.procs[&spinner.pid()];
    assert_eq!(s.state, 'R', "the spinner runs: {s:?}");
    assert!(s.utime >= 10, "300 ms of spinning shows in utime: {s:?}");
    let t = &it.procs[&tpid];
    assert_eq!((t.num_threads, t.state), (THREADS, 'S'), "{t:?}");
    let m = &it.procs[&touch.pid()];
    assert!(
        m.rss_pages * page >= MIB << 20,
        "{} pages of RSS after touching {MIB} MiB",
        m.rss_pages
    );
    assert!(
        m.minflt >= (MIB << 20) / page,
        "{} minor faults after touching {MIB} MiB",
        m.minflt
    );
    for w in [&threads, &touch] {
        let (b, a) = (&before.procs[&w.pid()], &after.procs[&w.pid()]);
        // Asleep: RSS does not move, so it must be equal.
        if b.rss_pages == a.rss_pages {
            assert_eq!(it.procs[&w.pid()].rss_pages, b.rss_pages, "pid {}", w.pid());
        }
        // The RSS split: the mm counters `stat` sums (approximate: without the per-CPU
        // parts `status` adds, at most a batch per CPU).
        let st = triage::collect::deep::parse_status(
            &std::fs::read_to_string(format!("/proc/{}/status", w.pid())).unwrap(),
        );
        let split = dump.rss_split[&w.pid()];
        assert_eq!(
            (split[0] + split[1] + split[2]) / page,
            it.procs[&w.pid()].rss_pages
        );
        let slack = 256 * page * std::thread::available_parallelism().unwrap().get() as u64;
        for (name, exact, approx) in [
            ("RssAnon", st.rss_anon_bytes, split[0]),
            ("RssFile", st.rss_file_bytes, split[1]),
            ("RssShmem", st.rss_shmem_bytes, split[2]),
            ("VmSwap", st.swap_bytes, split[3]),
        ] {
            let exact = exact.unwrap();
            assert!(
                exact.abs_diff(approx) <= slack,
                "{name} of {}: status {exact}, dump {approx}",
                w.pid()
            );
        }
        // Open fds and network namespace: what /proc/PID/fd's size and ns/net say.
        let fds = proc_src.stat_size(&format!("proc/{}/fd", w.pid())).unwrap();
        assert_eq!(
            dump.fds.get(&w.pid()),
            Some(&fds),
            "open fds of {}",
            w.pid()
        );
        let ns = proc_src
            .readlink(&format!("proc/{}/ns/net", w.pid()))
            .unwrap();
        assert_eq!(
            dump.netns.get(&w.pid()).copied(),
            procs::ns_inode(&ns),
            "netns of {}",
            w.pid()
        );
    }

    // Per thread: the same threads, each agreeing with /proc/PID/task/TID/stat and status.
    let its = &dump.threads[&tpid];
    assert_eq!(
        its.iter().map(|t| t.pid).collect::<Vec<_>>(),
        th_before.keys().copied().collect::<Vec<_>>()
    );
    for i in its {
        agree(&th_before[&i.pid], i, &th_after[&i.pid]);
        let (b, a) = (sw_before[&i.pid], sw_after[&i.pid]);
        let x = dump.switches[&i.pid];
        between("voluntary switches", i.pid, b.0, x.0, a.0, 0);
        between("involuntary switches", i.pid, b.1, x.1, a.1, 0);
    }
    drop((spinner, threads, touch));
}

/// `triage capture` as root records the iterator's dumps (`tasks.bin` in t0/ and t1/) instead
/// of a `stat` file per process, and replaying that fixture without BPF gives the processes
/// the live run printed.
#[cfg(feature = "bpf")]
#[test]
#[ignore = "needs root: BPF task iterator"]
fn a_recording_of_the_iterator_replays_the_same_report_without_bpf() {
    common::require_bpf();
    let spinner = Workload::start(&["spin", "100000000"], false);
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    let live = common::triage()
        // `bpf`: the box may run fewer tasks than `auto` takes the iterator for.
        .args([
            "capture",
            "--task-scan",
            "bpf",
            "--duration",
            "0.5",
            "--json",
            "--out",
        ])
        .arg(&fx)
        .output()
        .unwrap();
    assert!(
        live.status.success(),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    drop(spinner);
    for phase in ["t0", "t1"] {
        let dump = std::fs::read(fx.join(phase).join("tasks.bin")).unwrap();
        let d = triage::collect::taskdump::TaskDump::decode(&dump).unwrap();
        assert!(d.tasks.len() > 20, "{phase}: {} tasks", d.tasks.len());
        // The per-process stat files were not read (at most what the dump lacked).
        let stats = std::fs::read_dir(fx.join(phase).join("proc"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().join("stat").is_file())
            .count();
        assert!(
            stats * 10 < d.tasks.len(),
            "{phase}: {stats} stat files recorded"
        );
    }
    let replay = common::triage()
        .args(["sixty-second", "--no-bpf", "--json", "--fixture"])
        .arg(&fx)
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let (mut a, mut b) = (common::json(&live), common::json(&replay));
    for v in [&mut a, &mut b] {
        // What differs by design: our own cost, the command, the latency probes (not replayed
        // with --no-bpf) and what they add.
        let o = v.as_object_mut().unwrap();
        for k in ["cost", "command", "tool"] {
            o.remove(k);
        }
        // A process whose fds were denied live (PID 1 of a sandbox) is not recorded as denied,
        // with the iterator or without: a fixture has no record of refusals.
        if let Some(p) = v["sections"]["processes"].as_object_mut() {
            p.remove("not_inspected");
        }
    }
    assert!(
        a["sections"]["processes"] == b["sections"]["processes"],
        "processes differ:\nlive   {}\nreplay {}",
        a["sections"]["processes"],
        b["sections"]["processes"]
    );
    // The findings about processes (the capture reads more than sixty-second replays, so
    // only these are comparable): the same, with the same numbers.
    let about_processes = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| !f["subject"]["pid"].is_null())
            .cloned()
            .collect()
    };
    assert_eq!(about_processes(&a), about_processes(&b));
}

/// The committed fixture recorded through the iterator (a spinner, a process of 8 threads and
/// one that touched 64 MiB were running) replays anywhere, without BPF, with their numbers.
#[test]
fn the_committed_iterator_fixture_replays_its_workloads() {
    let dir = common::fixture("deep-taskiter");
    let r =
        triage::collect::run::from_fixture_spec(&dir, &triage::collect::deep::Spec::ALL).unwrap();
    for s in [&r.t0, &r.t1] {
        assert!(s.procs.dump.is_some(), "the scan came from tasks.bin");
        assert!(
            s.procs.procs.len() > 50,
            "{} processes",
            s.procs.procs.len()
        );
    }
    let page = r.meta.page_size_bytes;
    let by = |pred: &dyn Fn(&ProcSample) -> bool| -> Vec<ProcSample> {
        r.t1.procs
            .procs
            .values()
            .filter(|p| p.comm == "triage-workload" && pred(p))
            .cloned()
            .collect()
    };
    let spin = by(&|p| p.state == 'R');
    assert_eq!(spin.len(), 1, "one spinner");
    let t0 = &r.t0.procs.procs[&spin[0].pid];
    let busy = (spin[0].utime + spin[0].stime) - (t0.utime + t0.stime);
    let window = r.meta.elapsed_s * r.meta.clock_ticks_per_s as f64;
    // Recorded on a busy shared box: 85 of 200 ticks.
    assert!(
        busy as f64 > 0.25 * window,
        "the spinner ran {busy} of {window} ticks"
    );
    let threaded = by(&|p| p.num_threads == 8);
    assert_eq!(threaded.len(), 1);
    assert_eq!(r.t1.deep.threads[&threaded[0].pid].len(), 8);
    let big = by(&|p| p.rss_pages * page >= 64 << 20);
    assert_eq!(big.len(), 1, "one process holds 64 MiB");
    assert!(big[0].minflt >= (64 << 20) / page);
}

/// `--task-scan auto` (the default) takes the iterator only on a box with at least
/// `TASK_ITER_MIN_TASKS` tasks, where it is cheaper than /proc; `proc` never does.
#[cfg(feature = "bpf")]
#[test]
#[ignore = "needs root: BPF task iterator"]
fn auto_takes_the_iterator_only_on_a_busy_box() {
    common::require_bpf();
    let tasks = || -> u64 {
        let t = std::fs::read_to_string("/proc/loadavg").unwrap();
        t.split_whitespace()
            .nth(3)
            .unwrap()
            .split('/')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    let capture = |how: &str| -> bool {
        let dir = tempfile::tempdir().unwrap();
        let fx = dir.path().join("fx");
        let out = common::triage()
            .args([
                "capture",
                "--task-scan",
                how,
                "--duration",
                "0.2",
                "--json",
                "--out",
            ])
            .arg(&fx)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fx.join("t0/tasks.bin").exists()
    };
    let min = triage::cli::TASK_ITER_MIN_TASKS;
    // Enough sleeping threads to cross the line, whatever else runs.
    let extra = min.saturating_sub(tasks()) + 100;
    let threads = Workload::start(&["threads", &extra.to_string()], true);
    assert!(tasks() >= min, "{} tasks with {extra} more", tasks());
    assert!(
        capture("auto"),
        "auto did not take the iterator at {} tasks",
        tasks()
    );
    assert!(!capture("proc"), "--task-scan proc used the iterator");
    drop(threads);
    // Back below the line (unless the box is that busy on its own).
    if tasks() < min {
        assert!(
            !capture("auto"),
            "auto took the iterator at {} tasks",
            tasks()
        );
    }
}

/// The `tasks` row of `triage doctor --json` (run with `pre` before the binary, e.g. setpriv).
fn doctor_tasks_row(pre: &[&str]) -> serde_json::Value {
    let o = match pre.split_first() {
        Some((cmd, args)) => Command::new(cmd)
            .args(args)
            .arg(env!("CARGO_BIN_EXE_triage"))
            .args(["doctor", "--json"])
            .output()
            .unwrap(),
        None => common::triage()
            .args(["doctor", "--json"])
            .output()
            .unwrap(),
    };
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let d = common::json(&o);
    d["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tasks")
        .unwrap_or_else(|| panic!("no tasks probe in doctor: {}", d["probes"]))
        .clone()
}

/// Like every other probe, doctor loads the task iterator for real: here (root, host PID
/// namespace, BTF) it runs, and the table says so.
#[cfg(feature = "bpf")]
#[test]
#[ignore = "needs root: doctor loads the BPF task iterator"]
fn doctor_reports_the_task_iterator_runnable() {
    common::require_bpf();
    let row = doctor_tasks_row(&[]);
    assert_eq!(row["ok"], true, "{row}");
    assert_eq!(row["attach_type"], "iter", "{row}");
    assert!(row["error"].is_null() && row["fix"].is_null(), "{row}");
    assert!(
        row["tracepoints"][0]
            .as_str()
            .unwrap()
            .starts_with("iter/task"),
        "{row}"
    );
    let o = common::triage().arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with(" ok   tasks "))
        .unwrap_or_else(|| panic!("no ok tasks line:\n{text}"));
    assert!(line.contains("attached via iter"), "{line}");
}

/// Without privileges the row says why and the exact fix (and the rest of doctor still runs).
#[test]
#[ignore = "needs root: drops privileges with setpriv"]
fn doctor_says_why_the_task_iterator_cannot_run_unprivileged() {
    common::require_root();
    let row = doctor_tasks_row(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ]);
    assert_eq!(row["ok"], false, "{row}");
    assert!(row["attach_type"].is_null(), "{row}");
    let err = row["error"].as_str().unwrap();
    if cfg!(feature = "bpf") {
        assert!(err.contains("lack CAP_BPF and CAP_PERFMON"), "{row}");
        assert!(
            row["fix"]
                .as_str()
                .unwrap()
                .contains("sudo setcap cap_bpf,cap_perfmon+ep $(which triage)"),
            "{row}"
        );
    } else {
        assert_eq!(err, triage::probe::NO_BPF, "{row}");
    }
}

/// `kernel.bpf_stats_enabled=1` while this lives, the previous value restored when dropped
/// (also when the test fails). The sysctl, not BPF_ENABLE_STATS: the sysctl shows only its own
/// value, and triage reports run figures only when it says stats are on.
struct BpfStats(String);

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    fn on() -> BpfStats {
        let was = std::fs::read_to_string(BPF_STATS).unwrap();
        std::fs::write(BPF_STATS, "1\n").unwrap();
        BpfStats(was)
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(BPF_STATS, &self.0);
    }
}

/// The `tasks` entries of a report's `cost.programs`.
fn tasks_costs(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["cost"]["programs"]
        .as_array()
        .unwrap_or_else(|| panic!("no cost.programs: {}", report["cost"]))
        .iter()
        .filter(|p| p["probe"] == "tasks")
        .cloned()
        .collect()
}

/// When the scan used the iterator, `report.cost` lists its program like the latency
/// probes': verified instructions, and with BPF stats on, one run per task per dump (t0 and
/// t1, plus the iterator's closing call of each) and the time they took.
#[cfg(feature = "bpf")]
#[test]
#[ignore = "needs root: BPF task iterator and BPF stats"]
fn the_iterators_cost_is_in_the_report() {
    common::require_bpf();
    let run = || {
        let o = common::triage()
            .args(["sixty-second", "--task-scan", "bpf", "--duration", "0.3"])
            .arg("--json")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        common::json(&o)
    };
    // As the box is: the program is there; run figures only if stats happen to be on.
    let r = run();
    let t = tasks_costs(&r);
    assert_eq!(t.len(), 1, "{}", r["cost"]);
    assert_eq!(t[0]["program"], "dump_task");
    let insns = t[0]["verified_insns"].as_u64().unwrap();
    assert!((100..100_000).contains(&insns), "{}", t[0]);
    // The /proc scan (no iterator) lists no such program.
    let o = common::triage()
        .args(["sixty-second", "--task-scan", "proc", "--duration", "0.2"])
        .arg("--json")
        .output()
        .unwrap();
    assert!(tasks_costs(&common::json(&o)).is_empty());

    // With BPF stats on: one run per task of each dump (the records of t0/ and t1/tasks.bin
    // of a capture) plus the iterator's closing call of each; a record that does not fit the
    // kernel's 32 KiB seq buffer is shown again by the next read (at most one per 128 records).
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    let stats = BpfStats::on();
    let o = common::triage()
        .args([
            "capture",
            "--task-scan",
            "bpf",
            "--duration",
            "0.3",
            "--json",
        ])
        .arg("--out")
        .arg(&fx)
        .output()
        .unwrap();
    drop(stats);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = common::json(&o);
    assert_eq!(r["cost"]["bpf_stats_enabled"], true, "{}", r["cost"]);
    let t = tasks_costs(&r);
    assert_eq!(t.len(), 1, "{}", r["cost"]);
    let records: u64 = ["t0", "t1"]
        .iter()
        .map(|p| {
            let len = std::fs::metadata(fx.join(p).join("tasks.bin"))
                .unwrap()
                .len();
            (len - 32) / 256
        })
        .sum();
    let runs = t[0]["run_count"].as_u64().unwrap();
    assert!(
        (records + 2..=records + 2 + records / 128 + 2).contains(&runs),
        "{runs} runs for {records} records: {}",
        t[0]
    );
    assert!(t[0]["run_time_ns"].as_u64().unwrap() > 0, "{}", t[0]);
    assert_eq!(t[0]["verified_insns"].as_u64().unwrap(), insns);
}

/// A series loads the iterator once and scans every window through it: the load count does not
/// grow with the windows, and every window's cost lists the program (its own runs).
#[cfg(feature = "bpf")]
#[test]
#[ignore = "needs root: BPF task iterator"]
fn a_series_loads_the_iterator_once() {
    use clap::Parser as _;
    use triage::commands::pipeline::{self, Output, Plan};
    common::require_bpf();
    const WINDOWS: usize = 4;
    let cli = triage::cli::Cli::try_parse_from([
        "triage",
        "mem",
        "--task-scan",
        "bpf",
        "--interval",
        "0.2",
        "--count",
        &WINDOWS.to_string(),
    ])
    .unwrap();
    let triage::cli::Command::Mem(args) = &cli.command else {
        unreachable!()
    };
    let plan = Plan::deep(&triage::commands::views::MEM, args, &cli.global);
    let loads = triage::probe::taskiter::loads();
    let Output::Series(series) = pipeline::run(&plan).unwrap() else {
        panic!("not a series")
    };
    // Another test of this binary may load it for the first time meanwhile (it is kept per
    // process, so at most once); a load per window would add WINDOWS.
    let added = triage::probe::taskiter::loads() - loads;
    assert!(added <= 1, "{added} loads for {WINDOWS} windows");
    assert_eq!(series.samples.len(), WINDOWS);
    for (i, s) in series.samples.iter().enumerate() {
        let v = serde_json::to_value(s).unwrap();
        let t = tasks_costs(&v);
        assert_eq!(t.len(), 1, "window {i}: {}", v["cost"]);
        assert_eq!(t[0]["program"], "dump_task");
        // Every window's processes came from the dump, none from a fallback.
        assert!(
            !v["unavailable"].to_string().contains("BPF task iterator"),
            "window {i}: {}",
            v["unavailable"]
        );
    }
}
