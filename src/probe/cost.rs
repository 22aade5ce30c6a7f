//! triage's own cost for the report's metadata: getrusage for the process, and for every
//! eBPF program a probe ran, its run count and run time from `bpf_prog_info` (non-zero only
//! while `kernel.bpf_stats_enabled` is on: triage reads that sysctl and never changes it).
//! Probes call [`note`] just before they unload; the command takes the list with
//! [`own_cost`].

use std::sync::Mutex;

use crate::model::cost::{OwnCost, ProgramCost};

static PROGRAMS: Mutex<Vec<ProgramCost>> = Mutex::new(Vec::new());

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
        // SAFETY: an all-zero bpf_prog_info is valid; the kernel fills at most `len` bytes.
        let mut info: libbpf_rs::libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of_val(&info) as u32;
        // SAFETY: fd is a loaded program of ours; info and len are valid for writes.
        let r = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
        if r != 0 {
            continue;
        }
        out.push(ProgramCost {
            probe: probe.to_string(),
            program: p.name().to_string_lossy().into_owned(),
            verified_insns: info.verified_insns,
            run_count: stats.then_some(info.run_cnt),
            run_time_ns: stats.then_some(info.run_time_ns),
        });
    }
    if let Ok(mut v) = PROGRAMS.lock() {
        v.extend(out);
    }
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cost_counts_this_process() {
        // Burn a little CPU so the figure cannot be zero.
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let c = own_cost();
        assert!(c.cpu_ms() >= 20.0, "{c:?}");
        assert!(c.max_rss_kb > 1000, "{c:?}");
    }
}
