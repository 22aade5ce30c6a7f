//! triage's own cost for the report's metadata: getrusage for the process, and for every
//! eBPF program a probe ran, its run count and run time from `bpf_prog_info` (non-zero only
//! while `kernel.bpf_stats_enabled` is on: triage reads that sysctl and never changes it).
//! Probes call [`note`] just before they unload; the command takes the list with
//! [`own_cost`].

use std::sync::Mutex;

use super::cost_model::{BtfUse, OwnCost, ProgramCost};

static PROGRAMS: Mutex<Vec<ProgramCost>> = Mutex::new(Vec::new());
static BTF: Mutex<Vec<BtfUse>> = Mutex::new(Vec::new());

/// Remember which BTF a probe was loaded against (one entry per probe and source).
#[cfg(feature = "bpf")]
pub(crate) fn note_btf(u: BtfUse) {
    if let Ok(mut v) = BTF.lock() {
        if !v.contains(&u) {
            v.push(u);
        }
    }
}

/// Remember the run statistics of every loaded program of `obj` (call before unloading).
#[cfg(feature = "bpf")]
pub(crate) fn note(probe: &str, obj: &libbpf_rs::Object) {
    use std::os::fd::AsFd as _;
    use std::os::fd::AsRawFd as _;
    let stats = stats_enabled() == Some(true);
    let mut out = Vec::new();
    for p in obj.progs() {
        let fd = p.as_fd().as_raw_fd();
        if fd < 0 {
            continue; // not loaded (autoload off)
        }
        let name = p.name().to_string_lossy();
        if let Some((c, _)) = program_cost(probe, &name, fd, stats, (0, 0)) {
            out.push(c);
        }
    }
    if let Ok(mut v) = PROGRAMS.lock() {
        v.extend(out);
    }
}

/// Remember the run statistics of one program that stays loaded across windows (the task
/// iterator): its runs since `since` (the run count and time of the previous note, updated),
/// so each window reports its own.
#[cfg(feature = "bpf")]
pub(crate) fn note_loaded(
    probe: &str,
    program: &str,
    fd: std::os::fd::BorrowedFd<'_>,
    since: &mut (u64, u64),
) {
    use std::os::fd::AsRawFd as _;
    let stats = stats_enabled() == Some(true);
    if let Some((c, now)) = program_cost(probe, program, fd.as_raw_fd(), stats, *since) {
        *since = now;
        if let Ok(mut v) = PROGRAMS.lock() {
            v.push(c);
        }
    }
}

/// A program's cost from `bpf_prog_info`, its run figures minus `since`; with the raw
/// (run count, run time) read.
#[cfg(feature = "bpf")]
fn program_cost(
    probe: &str,
    program: &str,
    fd: i32,
    stats: bool,
    since: (u64, u64),
) -> Option<(ProgramCost, (u64, u64))> {
    // SAFETY: an all-zero bpf_prog_info is valid; the kernel fills at most `len` bytes.
    let mut info: libbpf_rs::libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: fd is a loaded program of ours; info and len are valid for writes.
    let r = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    if r != 0 {
        return None;
    }
    let cost = ProgramCost {
        probe: probe.to_string(),
        program: program.to_string(),
        verified_insns: info.verified_insns,
        run_count: stats.then_some(info.run_cnt.saturating_sub(since.0)),
        run_time_ns: stats.then_some(info.run_time_ns.saturating_sub(since.1)),
    };
    Some((cost, (info.run_cnt, info.run_time_ns)))
}

/// `kernel.bpf_stats_enabled`, if readable.
pub fn stats_enabled() -> Option<bool> {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map(|v| v != 0)
}

/// This process's cost so far, with the programs noted since the last call.
pub fn own_cost() -> OwnCost {
    // SAFETY: an all-zero rusage is valid; getrusage only writes to it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ms =
        |t: libc::timeval| ((t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3) * 10.0).round() / 10.0;
    let programs = PROGRAMS
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default();
    OwnCost {
        cpu_user_ms: ms(ru.ru_utime),
        cpu_system_ms: ms(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss.max(0) as u64,
        bpf_stats_enabled: stats_enabled(),
        programs,
        btf: BTF
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default(),
    }
}

/// One window's cost in an `--interval` series: the CPU since the previous window ended
/// (`prev`, updated; the first window's includes start-up), the peak memory so far, and the
/// programs noted since.
pub fn window_cost(prev: &mut Option<OwnCost>) -> OwnCost {
    let now = own_cost();
    let mut w = now.clone();
    if let Some(p) = prev.as_ref() {
        let d = |a: f64, b: f64| (((a - b) * 10.0).round() / 10.0).max(0.0);
        w.cpu_user_ms = d(now.cpu_user_ms, p.cpu_user_ms);
        w.cpu_system_ms = d(now.cpu_system_ms, p.cpu_system_ms);
    }
    *prev = Some(now);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_cost_is_the_cpu_since_the_previous_window() {
        let mut prev = None;
        let first = window_cost(&mut prev);
        let cumulative = prev.clone().unwrap();
        assert_eq!(first.cpu_ms(), cumulative.cpu_ms());
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let second = window_cost(&mut prev);
        let total = prev.unwrap();
        // The window's CPU is the growth of the cumulative figure (to the 0.1 ms rounding),
        // not the cumulative figure itself.
        let growth = total.cpu_ms() - cumulative.cpu_ms();
        assert!(
            (second.cpu_ms() - growth).abs() < 0.25,
            "{second:?} vs {growth}"
        );
        assert!(second.cpu_ms() < total.cpu_ms(), "{second:?} {total:?}");
        assert!(second.max_rss_kb >= first.max_rss_kb);
    }

    #[test]
    fn own_cost_counts_this_process() {
        // Burn 30 ms of this thread's CPU, by its own clock (not wall time: on a busy machine
        // 30 ms of wall time can be 10 ms of CPU), so getrusage must show at least that.
        let thread_cpu = || {
            let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
            t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
        };
        let start = thread_cpu();
        let mut x = 0u64;
        while thread_cpu() - start < 30.0 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let c = own_cost();
        assert!(c.cpu_ms() >= 20.0, "{c:?}");
        assert!(c.max_rss_kb > 1000, "{c:?}");
    }
}

/// Where the latency probes' start-up goes, program by program (`cargo test --lib
/// probe::cost::load_cost -- --ignored --nocapture`, as root): each program loaded alone
/// (maps included), the maps alone, and each view's set, with the verifier's own figures
/// (log level 4: instructions processed, verification time). Prints a table; asserts only
/// that every program loads.
#[cfg(all(test, feature = "bpf"))]
mod load_cost {
    use std::mem::MaybeUninit;
    use std::time::Instant;

    use libbpf_rs::skel::{OpenSkel as _, SkelBuilder as _};

    #[allow(clippy::all, dead_code, unused_imports, non_camel_case_types)]
    mod skel {
        include!(concat!(env!("OUT_DIR"), "/latency.skel.rs"));
    }

    static LOG: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

    fn capture(_: libbpf_rs::PrintLevel, msg: String) {
        if let Ok(mut l) = LOG.lock() {
            l.push_str(&msg);
        }
    }

    /// Load the latency object with only `progs` (by name); (ms, verified insns, verifier
    /// usec) for the load.
    fn load(progs: &[&str]) -> (f64, u64, u64) {
        LOG.lock().unwrap().clear();
        let mut storage = MaybeUninit::uninit();
        let t0 = Instant::now();
        let mut open = skel::LatencySkelBuilder::default()
            .open(&mut storage)
            .unwrap();
        for mut p in open.open_object_mut().progs_mut() {
            let on = progs.iter().any(|n| p.name() == *n);
            p.set_autoload(on);
            if on {
                p.set_log_level(4);
            }
        }
        let skel = open.load().unwrap();
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        drop(skel);
        let log = LOG.lock().unwrap().clone();
        let num = |key: &str, unit: &str| -> u64 {
            log.match_indices(key)
                .filter_map(|(i, _)| {
                    log[i + key.len()..]
                        .split(unit)
                        .next()
                        .and_then(|n| n.trim().parse::<u64>().ok())
                })
                .sum()
        };
        (
            ms,
            num("processed", "insns"),
            num("verification time", "usec"),
        )
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    #[test]
    #[ignore = "needs root: loads BPF programs; a measurement, run with --nocapture"]
    fn load_cost() {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, capture)));
        let sets: &[(&str, &[&str])] = &[
            ("maps only", &[]),
            ("rq_wakeup_btf", &["rq_wakeup_btf"]),
            ("rq_wakeup_new_btf", &["rq_wakeup_new_btf"]),
            ("rq_switch_btf", &["rq_switch_btf"]),
            ("bio_issue_btf", &["bio_issue_btf"]),
            ("bio_insert_btf", &["bio_insert_btf"]),
            ("bio_complete_btf", &["bio_complete_btf"]),
            ("retrans_btf", &["retrans_btf"]),
            (
                "cpu view (run queue)",
                &["rq_wakeup_btf", "rq_wakeup_new_btf", "rq_switch_btf"],
            ),
            ("disk view (block)", &["bio_issue_btf", "bio_complete_btf"]),
            ("net view (retransmits)", &["retrans_btf"]),
            (
                "sixty-second (all)",
                &[
                    "rq_wakeup_btf",
                    "rq_wakeup_new_btf",
                    "rq_switch_btf",
                    "bio_issue_btf",
                    "bio_complete_btf",
                    "retrans_btf",
                ],
            ),
        ];
        eprintln!(
            "{:<26} {:>9} {:>8} {:>12}",
            "loaded", "load ms", "insns", "verifier us"
        );
        // The parts every load shares: parsing the object, and parsing the kernel's BTF
        // (CO-RE relocations and tp_btf attach targets need it).
        let open_ms = median(
            (0..5)
                .map(|_| {
                    let mut storage = MaybeUninit::uninit();
                    let t0 = Instant::now();
                    let open = skel::LatencySkelBuilder::default()
                        .open(&mut storage)
                        .unwrap();
                    let ms = t0.elapsed().as_secs_f64() * 1e3;
                    drop(open);
                    ms
                })
                .collect(),
        );
        eprintln!("{:<26} {open_ms:>9.2}", "open (ELF, no load)");
        let btf_ms = median(
            (0..5)
                .map(|_| {
                    let t0 = Instant::now();
                    // SAFETY: returns an owned BTF object (or an error pointer) we free.
                    let btf = unsafe { libbpf_rs::libbpf_sys::btf__load_vmlinux_btf() };
                    let ms = t0.elapsed().as_secs_f64() * 1e3;
                    // SAFETY: btf__free accepts what btf__load_vmlinux_btf returned.
                    unsafe { libbpf_rs::libbpf_sys::btf__free(btf) };
                    ms
                })
                .collect(),
        );
        eprintln!("{:<26} {btf_ms:>9.2}", "parse vmlinux BTF");
        for (label, progs) in sets {
            let runs: Vec<(f64, u64, u64)> = (0..5).map(|_| load(progs)).collect();
            eprintln!(
                "{label:<26} {:>9.2} {:>8} {:>12.0}",
                median(runs.iter().map(|r| r.0).collect()),
                runs[0].1,
                median(runs.iter().map(|r| r.2 as f64).collect())
            );
        }
        libbpf_rs::set_print(None);
    }
}
