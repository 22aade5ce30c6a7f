//! Rules over off-CPU stacks (`triage offcpu`) and over the eBPF latency histograms that
//! enrich sixty-second and the resource views.
//!
//! Stacks are classified by their frames: futex waits are locks, uninterruptible waits in
//! block/filesystem code are I/O, nanosleep is a sleep, socket receives are the network.

use crate::model::SatSum;
use std::collections::BTreeMap;

use super::{ev, finding, rank};
use crate::model::offcpu::{LatencySection, OffcpuProbe, OffcpuStack};
use crate::model::report::{Finding, Report, Severity, Subject};

/// What a stack waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wait {
    Lock,
    Io,
    Sleep,
    Net,
    Poll,
    Other,
}

const LOCK: &[&str] = &[
    "futex_wait",
    "__lll_lock_wait",
    "pthread_mutex_lock",
    "futex_q_lock",
];
const IO: &[&str] = &[
    "io_schedule",
    "blk_mq_",
    "bit_wait_io",
    "folio_wait",
    "wait_on_page",
    "submit_bio_wait",
    "jbd2",
    "ext4_",
    "xfs_",
    "nfs_",
    "blkdev_",
    "iomap_dio",
    "__filemap_get_folio",
];
const SLEEP: &[&str] = &[
    "do_nanosleep",
    "hrtimer_nanosleep",
    "clock_nanosleep",
    "nanosleep",
];
const NET: &[&str] = &[
    "sk_wait_data",
    "tcp_recvmsg",
    "udp_recvmsg",
    "inet_csk_accept",
    "unix_stream_read",
    "__skb_wait_for_more_packets",
    "recvfrom",
    "recvmsg",
];
const POLL: &[&str] = &["ep_poll", "do_select", "do_sys_poll", "do_epoll_wait"];

pub fn classify(s: &OffcpuStack) -> Wait {
    let any = |names: &[&str]| names.iter().any(|n| s.has_frame(n));
    if any(LOCK) {
        Wait::Lock
    } else if s.state == "D" && any(IO) {
        Wait::Io
    } else if any(SLEEP) {
        Wait::Sleep
    } else if any(NET) {
        Wait::Net
    } else if any(POLL) {
        Wait::Poll
    } else {
        Wait::Other
    }
}

/// Where it waits, in a few words: the kernel frame that names the wait (the first one past
/// the scheduler), then the innermost named user frames: `futex_do_wait <- worker <- main`.
pub fn short_stack(s: &OffcpuStack, n: usize) -> String {
    let mut frames: Vec<String> = s
        .kernel
        .iter()
        .find(|f| f.func.as_deref().is_some_and(|n| !n.contains("schedule")))
        .map(|f| f.short())
        .into_iter()
        .collect();
    frames.extend(
        s.user
            .iter()
            .filter(|f| f.resolved())
            .take(n)
            .map(|f| f.short()),
    );
    if frames.is_empty() {
        frames.extend(s.user.iter().take(n).map(|f| f.short()));
    }
    frames.join(" <- ")
}

#[derive(Default)]
struct ProcWaits {
    comm: String,
    total_ns: u64,
    by: BTreeMap<Wait, u64>,
    /// Threads per wait kind.
    threads: BTreeMap<Wait, std::collections::BTreeSet<u32>>,
    top: BTreeMap<Wait, (u64, String)>,
    /// Longest single block per thread.
    longest: BTreeMap<u32, u64>,
    /// Blocks per wait kind.
    blocks: BTreeMap<Wait, u64>,
    /// Of those, the blocks a timer ended (timeouts, sleeps), and their time.
    timer_blocks: BTreeMap<Wait, u64>,
    timer_ns: BTreeMap<Wait, u64>,
    /// Threads with at least one block of that kind ended by another task's wakeup.
    woken_threads: BTreeMap<Wait, std::collections::BTreeSet<u32>>,
}

/// Findings over one off-CPU trace.
pub fn findings(p: &OffcpuProbe) -> Vec<Finding> {
    let window_ns = (p.traced_s * 1e9) as u64;
    let mut procs: BTreeMap<u32, ProcWaits> = BTreeMap::new();
    for s in &p.stacks {
        let w = classify(s);
        let e = procs.entry(s.pid).or_default();
        if e.comm.is_empty() {
            e.comm = s.process.clone();
        }
        e.total_ns = e.total_ns.saturating_add(s.total_ns);
        let by = e.by.entry(w).or_default();
        *by = by.saturating_add(s.total_ns);
        e.threads.entry(w).or_default().insert(s.tid);
        let blocks = e.blocks.entry(w).or_default();
        *blocks = blocks.saturating_add(s.count);
        let timer_blocks = e.timer_blocks.entry(w).or_default();
        *timer_blocks = timer_blocks.saturating_add(s.timer_count.min(s.count));
        let timer_ns = e.timer_ns.entry(w).or_default();
        *timer_ns = timer_ns.saturating_add(s.timer_ns.min(s.total_ns));
        if s.count > s.timer_count {
            e.woken_threads.entry(w).or_default().insert(s.tid);
        }
        let t = e.top.entry(w).or_default();
        if s.total_ns > t.0 {
            *t = (s.total_ns, short_stack(s, 3));
        }
        let l = e.longest.entry(s.tid).or_default();
        *l = (*l).max(s.max_ns);
    }
    let mut out = Vec::new();
    for (pid, w) in &procs {
        let share = |k: Wait| w.by.get(&k).copied().unwrap_or(0) as f64 / w.total_ns.max(1) as f64;
        let threads = |k: Wait| w.threads.get(&k).map_or(0, |t| t.len());
        let top = |k: Wait| w.top.get(&k).map(|t| t.1.clone()).unwrap_or_default();
        // Average number of threads blocked on this kind of wait over the window.
        let avg = |k: Wait| w.by.get(&k).copied().unwrap_or(0) as f64 / window_ns.max(1) as f64;

        // Contention is threads woken by the lock's holder: waits a timer ended (an idle pool
        // whose timed wait ran out) say nothing about a lock and are left out. Of the rest,
        // contention is many short waits; a few long ones are idle workers parked on a
        // condition variable (same futex in the kernel, not a contended lock).
        let lock_ns = w.by.get(&Wait::Lock).copied().unwrap_or(0);
        let timer_ns = w.timer_ns.get(&Wait::Lock).copied().unwrap_or(0);
        let woken_ns = lock_ns.saturating_sub(timer_ns);
        let lock_avg = woken_ns as f64 / window_ns.max(1) as f64;
        let lock_share = woken_ns as f64 / w.total_ns.max(1) as f64;
        let lock_blocks = w.blocks.get(&Wait::Lock).copied().unwrap_or(0);
        let timer_blocks = w.timer_blocks.get(&Wait::Lock).copied().unwrap_or(0);
        let woken_blocks = lock_blocks.saturating_sub(timer_blocks);
        let woken_threads = w.woken_threads.get(&Wait::Lock).map_or(0, |t| t.len());
        let blocks_per_s = woken_blocks as f64 / (window_ns.max(1) as f64 / 1e9);
        let avg_block_ms = woken_ns as f64 / woken_blocks.max(1) as f64 / 1e6;
        let timed_out_pct = 100.0 * timer_ns as f64 / lock_ns.max(1) as f64;
        if lock_share >= 0.5
            && woken_threads >= 2
            && lock_avg >= 0.5
            && blocks_per_s >= 10.0
            && avg_block_ms <= 100.0
        {
            let sev = if lock_avg >= 2.0 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(
                finding(
                    "locks.saturation.contention",
                    sev,
                    "offcpu",
                    format!(
                    "Lock contention in {} (pid {pid}): {lock_avg:.1} threads blocked on a futex \
                     until another thread woke them, on average ({woken_threads} threads, \
                     {blocks_per_s:.0} waits/s of {avg_block_ms:.1} ms, {:.0}% of its off-CPU \
                     time{}); top: {}",
                    w.comm,
                    lock_share * 100.0,
                    if timer_ns > 0 {
                        format!("; {timed_out_pct:.0}% of its futex time ended in a timeout")
                    } else {
                        String::new()
                    },
                    top(Wait::Lock)
                ),
                    vec![
                        ev(
                            "offcpu.futex_share_pct",
                            lock_share * 100.0,
                            ">=",
                            50.0,
                            "pct",
                        ),
                        ev(
                            "offcpu.futex_threads_blocked_avg",
                            lock_avg,
                            ">=",
                            0.5,
                            "count",
                        ),
                        ev(
                            "offcpu.futex_waits_per_s",
                            blocks_per_s,
                            ">=",
                            10.0,
                            "per_s",
                        ),
                        ev("offcpu.futex_wait_avg_ms", avg_block_ms, "<=", 100.0, "ms"),
                    ],
                    vec![
                        format!("perf lock record -p {pid} -- sleep 5 && perf lock report"),
                        format!("triage offcpu -p {pid} --svg offcpu.svg"),
                    ],
                )
                .with_subject(Subject::process(*pid as i32, &w.comm)),
            );
        }
        let io_avg = avg(Wait::Io);
        if share(Wait::Io) >= 0.3 && io_avg >= 0.2 {
            out.push(finding(
                "io.saturation.blocked_threads",
                if io_avg >= 1.0 { Severity::Critical } else { Severity::Warning },
                "offcpu",
                format!(
                    "{} (pid {pid}) waits on I/O: {io_avg:.1} threads in D state in block/filesystem \
                     code on average ({:.0}% of its off-CPU time); top: {}",
                    w.comm,
                    share(Wait::Io) * 100.0,
                    top(Wait::Io)
                ),
                vec![ev("offcpu.io_threads_blocked_avg", io_avg, ">=", 0.2, "count")],
                vec!["triage disk".into(), format!("pidstat -d -p {pid} 1")],
            )
            .with_subject(Subject::process(*pid as i32, &w.comm)));
        }
        let net_threads = threads(Wait::Net);
        if net_threads >= 4 && share(Wait::Net) >= 0.5 {
            out.push(
                finding(
                    "threads.utilization.pool_parked",
                    Severity::Info,
                    "offcpu",
                    format!(
                    "{net_threads} threads of {} (pid {pid}) are parked on the same kind of call \
                     (socket receive); top: {} — a pool waiting on one peer or simply idle",
                    w.comm,
                    top(Wait::Net)
                ),
                    vec![ev(
                        "offcpu.threads_in_receive",
                        net_threads as f64,
                        ">=",
                        4.0,
                        "count",
                    )],
                    vec![format!("ss -tip | grep pid={pid}")],
                )
                .with_subject(Subject::process(*pid as i32, &w.comm)),
            );
        }
        // Deadlock suspect: at least two threads of the process each blocked on a lock for
        // (nearly) the whole window in one block, and no thread of it seen doing anything
        // else (an idle pool has some thread that wakes up now and then).
        let all_stuck = w
            .longest
            .values()
            .all(|l| window_ns > 0 && *l as f64 >= 0.9 * window_ns as f64);
        let stuck = w
            .longest
            .iter()
            .filter(|(tid, l)| {
                window_ns > 0
                    && **l as f64 >= 0.9 * window_ns as f64
                    && w.threads.get(&Wait::Lock).is_some_and(|t| t.contains(tid))
            })
            .count();
        if stuck >= 2 && all_stuck {
            out.push(finding(
                "locks.errors.deadlock_suspect",
                Severity::Warning,
                "offcpu",
                format!(
                    "Deadlock suspect: {stuck} threads of {} (pid {pid}) blocked on a futex for the \
                     whole window and none of its threads ran; top: {}",
                    w.comm,
                    top(Wait::Lock)
                ),
                vec![ev("offcpu.threads_blocked_whole_window", stuck as f64, ">=", 2.0, "count")],
                vec![format!("gdb -p {pid} -batch -ex 'thread apply all bt'")],
            )
            .with_subject(Subject::process(*pid as i32, &w.comm)));
        }
    }
    rank(&mut out);
    out
}

/// Run-queue latency p99 at or above this is evidence of CPU saturation (µs); the seeds:
/// 50 µs fine, 500 µs investigate.
pub const RUNQ_P99_WARN_US: f64 = 500.0;

/// Add the latency section's evidence to the report's findings: run-queue p99 to the CPU
/// saturation finding, the top retransmitting flow to the retransmit finding (or a finding
/// of its own when the counters missed it), then re-rank.
pub fn enrich(r: &mut Report, lat: &LatencySection) {
    let elapsed = r.window.elapsed_s.max(0.001);
    if let Some(all) = lat
        .runqueue
        .iter()
        .find(|q| q.cpu == "all")
        .map(|q| &q.latency)
    {
        let p99 = all.p99_hi_us.unwrap_or(all.max_us);
        if let Some(f) = r
            .findings
            .iter_mut()
            .find(|f| f.id == "cpu.saturation.runqueue")
        {
            f.evidence.push(ev(
                "cpu.runqueue_latency_p99_us",
                p99,
                ">=",
                RUNQ_P99_WARN_US,
                "us",
            ));
        }
    }
    if let Some(top) = lat.retransmits.first() {
        let total: u64 = lat.retransmits.iter().map(|x| x.count).sat_sum();
        let flow = format!("{} -> {}", top.local, top.remote);
        let flow_subject = |s: &mut crate::model::report::Subject| {
            if s.local.is_none() && s.remote.is_none() {
                s.local = Some(top.local.clone());
                s.remote = Some(top.remote.clone());
            }
        };
        match r
            .findings
            .iter_mut()
            .find(|f| f.id == "tcp.errors.retransmits")
        {
            // The /proc finding gets the flow as its subject and its count as evidence.
            Some(f) => {
                flow_subject(&mut f.subject);
                f.evidence.push(ev(
                    "tcp.top_flow_retransmits",
                    top.count as f64,
                    ">=",
                    1.0,
                    "count",
                ));
            }
            None if total as f64 / elapsed >= 10.0 => r.findings.push(
                finding(
                    "tcp.errors.retransmits",
                    Severity::Warning,
                    "tcp",
                    format!(
                    "TCP retransmits: {:.0}/s (tracepoint, all namespaces); top flow {flow} ({} \
                     retransmits, {})",
                    total as f64 / elapsed,
                    top.count,
                    top.state
                ),
                    vec![ev(
                        "tcp.retransmits_per_s",
                        total as f64 / elapsed,
                        ">=",
                        10.0,
                        "per_s",
                    )],
                    vec!["triage net".into(), "ss -tin".into()],
                )
                .with_subject(crate::model::report::Subject {
                    local: Some(top.local.clone()),
                    remote: Some(top.remote.clone()),
                    ..Default::default()
                }),
            ),
            None => {}
        }
    }
    rank(&mut r.findings);
}

/// Off-CPU thread-time per process by kind of wait, largest first (top `n`).
pub fn per_process(p: &OffcpuProbe, n: usize) -> Vec<crate::model::offcpu::OffcpuProc> {
    use crate::model::offcpu::OffcpuProc;
    let mut m: BTreeMap<u32, (OffcpuProc, std::collections::BTreeSet<u32>)> = BTreeMap::new();
    for s in &p.stacks {
        let (e, tids) = m.entry(s.pid).or_insert_with(|| {
            (
                OffcpuProc {
                    pid: s.pid,
                    process: s.process.clone(),
                    ..Default::default()
                },
                Default::default(),
            )
        });
        tids.insert(s.tid);
        let ms = s.total_ms();
        e.total_ms += ms;
        *match classify(s) {
            Wait::Lock => &mut e.lock_ms,
            Wait::Io => &mut e.io_ms,
            Wait::Sleep => &mut e.sleep_ms,
            Wait::Net => &mut e.net_ms,
            Wait::Poll => &mut e.poll_ms,
            Wait::Other => &mut e.other_ms,
        } += ms;
    }
    let r1 = |v: f64| (v * 10.0).round() / 10.0;
    let mut v: Vec<OffcpuProc> = m
        .into_values()
        .map(|(mut e, t)| {
            e.threads = t.len() as u32;
            for x in [
                &mut e.total_ms,
                &mut e.lock_ms,
                &mut e.io_ms,
                &mut e.sleep_ms,
                &mut e.net_ms,
                &mut e.poll_ms,
                &mut e.other_ms,
            ] {
                *x = r1(*x);
            }
            e
        })
        .collect();
    v.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms).then(a.pid.cmp(&b.pid)));
    v.truncate(n);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::offcpu::Frame;

    fn stack(
        pid: u32,
        tid: u32,
        kernel: &[&str],
        state: &str,
        total_ms: u64,
        count: u64,
    ) -> OffcpuStack {
        OffcpuStack {
            pid,
            process: format!("p{pid}"),
            tid,
            thread: format!("t{tid}"),
            state: state.into(),
            total_ns: total_ms * 1_000_000,
            count,
            max_ns: total_ms * 1_000_000 / count.max(1),
            kernel: kernel
                .iter()
                .map(|n| Frame {
                    func: Some(n.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn probe(stacks: Vec<OffcpuStack>) -> OffcpuProbe {
        OffcpuProbe {
            traced_s: 2.0,
            stacks,
            ..Default::default()
        }
    }

    #[test]
    fn classifies_by_frames_and_state() {
        assert_eq!(
            classify(&stack(1, 1, &["futex_wait"], "S", 1, 1)),
            Wait::Lock
        );
        assert_eq!(
            classify(&stack(1, 1, &["io_schedule", "blk_mq_get_tag"], "D", 1, 1)),
            Wait::Io
        );
        // The same code path outside D state is not an I/O wait.
        assert_eq!(
            classify(&stack(1, 1, &["io_schedule"], "S", 1, 1)),
            Wait::Other
        );
        assert_eq!(
            classify(&stack(1, 1, &["do_nanosleep"], "S", 1, 1)),
            Wait::Sleep
        );
        assert_eq!(
            classify(&stack(1, 1, &["sk_wait_data", "tcp_recvmsg"], "S", 1, 1)),
            Wait::Net
        );
        assert_eq!(classify(&stack(1, 1, &["ep_poll"], "S", 1, 1)), Wait::Poll);
    }

    #[test]
    fn many_short_futex_waits_are_contention_long_ones_are_not() {
        // 4 threads, each 1.5 s blocked in 200 waits: contention.
        let hot = probe(
            (1..=4)
                .map(|t| stack(10, t, &["futex_wait"], "S", 1500, 200))
                .collect(),
        );
        let f = findings(&hot);
        assert_eq!(f[0].id, "locks.saturation.contention", "{f:#?}");
        // 4 idle workers parked on a condition variable: 2 long waits each.
        let idle = probe(
            (1..=4)
                .map(|t| stack(10, t, &["futex_wait"], "S", 1500, 2))
                .collect(),
        );
        assert!(findings(&idle)
            .iter()
            .all(|f| f.id != "locks.saturation.contention"));
    }

    #[test]
    fn futex_waits_ended_by_a_timer_are_not_contention() {
        // 16 threads, each 1.9 s blocked in 38 waits of 50 ms that all timed out.
        let mut stacks: Vec<OffcpuStack> = (1..=16)
            .map(|t| {
                let mut s = stack(10, t, &["futex_wait"], "S", 1900, 38);
                s.timer_count = 38;
                s.timer_ns = s.total_ns;
                s
            })
            .collect();
        assert!(findings(&probe(stacks.clone()))
            .iter()
            .all(|f| f.id != "locks.saturation.contention"));
        // The same waits ended by another thread's wakeup: contention, naming the process.
        for s in &mut stacks {
            (s.timer_count, s.timer_ns) = (0, 0);
        }
        let f = findings(&probe(stacks));
        assert_eq!(f[0].id, "locks.saturation.contention");
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].subject.pid, Some(10));
        assert_eq!(f[0].subject.comm.as_deref(), Some("p10"));
    }

    #[test]
    fn whole_window_futex_blocks_are_a_deadlock_suspect_only_if_nothing_ran() {
        let stuck = probe(
            (1..=2)
                .map(|t| stack(10, t, &["futex_wait"], "S", 2000, 1))
                .collect(),
        );
        assert!(findings(&stuck)
            .iter()
            .any(|f| f.id == "locks.errors.deadlock_suspect"));
        let mut alive = stuck.stacks.clone();
        alive.push(stack(10, 3, &["do_nanosleep"], "S", 100, 10));
        assert!(findings(&probe(alive))
            .iter()
            .all(|f| f.id != "locks.errors.deadlock_suspect"));
    }

    #[test]
    fn io_waits_and_per_process_split() {
        let p = probe(vec![
            stack(20, 1, &["io_schedule", "blk_mq_get_tag"], "D", 1800, 300),
            stack(20, 2, &["do_nanosleep"], "S", 200, 2),
        ]);
        assert!(findings(&p)
            .iter()
            .any(|f| f.id == "io.saturation.blocked_threads"));
        let pp = per_process(&p, 5);
        assert_eq!(pp.len(), 1);
        assert_eq!(
            (pp[0].threads, pp[0].io_ms, pp[0].sleep_ms),
            (2, 1800.0, 200.0)
        );
    }
}
