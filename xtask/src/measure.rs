//! Wall and CPU time of one child process, and of code running in this process.
//!
//! Child CPU comes from `wait4`'s rusage: user + system time of the child *and every descendant
//! it waited for* (so `bash -c 'dmesg | tail'` counts bash, dmesg and tail). On Linux the sum is
//! derived from the scheduler's nanosecond runtime, not from tick sampling, so it is accurate
//! even for millisecond-sized costs. In-process CPU uses `CLOCK_PROCESS_CPUTIME_ID`, the same
//! clock.

use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// What one run cost.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// From just before spawn to reaping: what a user waiting for the command experiences.
    pub wall: Duration,
    /// User + system CPU of the child and its reaped descendants.
    pub cpu: Duration,
    /// The exit code, or `None` if the child was killed by a signal.
    pub code: Option<i32>,
}

/// Spawns `cmd`, waits for it with `wait4` and returns its usage. A watchdog kills it after
/// `timeout`, so a hung tool cannot hang the bench; that is reported as an error.
///
/// The caller must point the child's stdout at a file or /dev/null, not a pipe it reads
/// afterwards: nothing drains a pipe while we block in `wait4`.
pub fn run_child(cmd: &mut Command, timeout: Duration) -> Result<Usage> {
    let shown = crate::util::display(cmd);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let pid = child.id() as libc::pid_t;

    // Dropping `cancel` wakes the watchdog with `Disconnected`; only a real timeout kills.
    let (cancel, wake) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = wake.recv_timeout(timeout) {
            // SAFETY: plain syscall; the child is unreaped until our wait4 returns, so the pid
            // cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            true
        } else {
            false
        }
    });

    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; status and ru are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            bail!("wait4 on `{shown}` failed: {err}");
        }
    }
    let wall = start.elapsed();
    drop(cancel);
    let timed_out = watchdog.join().unwrap_or(false);
    // std never waited for it; dropping the handle just closes our ends of its stdio.
    drop(child);
    if timed_out {
        bail!("`{shown}` did not finish within {timeout:?} and was killed");
    }

    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    Ok(Usage {
        wall,
        cpu: timeval(ru.ru_utime) + timeval(ru.ru_stime),
        code,
    })
}

/// CPU time consumed so far by this whole process (all threads).
pub fn process_cpu() -> Duration {
    // SAFETY: an all-zero timespec is valid; clock_gettime only writes to it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid clock id and pointer; this clock cannot fail on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}
