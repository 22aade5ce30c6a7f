//! Thousands of idle `sleep` processes, to measure how triage's cost grows with the process
//! count — and a guarantee that none outlives the bench.
//!
//! Every sleeper joins one process group led by the first, so a single `kill(-pgid)` ends them
//! all. That kill runs on every way out: normal return and panic (the guard's `Drop`),
//! Ctrl-C/TERM/HUP (a signal handler), and even SIGKILL of xtask (each sleeper asks the kernel
//! for `PR_SET_PDEATHSIG`).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The live sleeper process group, for the signal handler (0: none).
static PGID: AtomicI32 = AtomicI32::new(0);

/// Owns the sleepers; dropping it kills and reaps them all.
pub struct Sleepers {
    pgid: libc::pid_t,
    children: Vec<Child>,
}

impl Sleepers {
    /// Starts `n` sleepers and returns once every one of them is a running `sleep` in /proc.
    pub fn spawn(n: usize) -> Result<Self> {
        install_signal_handlers();
        let mut guard = Sleepers {
            pgid: 0,
            children: Vec::with_capacity(n),
        };
        let started = Instant::now();
        for i in 0..n {
            let mut cmd = Command::new("sleep");
            cmd.arg("3600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // The first becomes the group leader (pgid 0 = own pid); the rest join it.
                .process_group(guard.pgid);
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("cannot start sleeper {} of {n}", i + 1))?;
            if i == 0 {
                guard.pgid = child.id() as libc::pid_t;
                PGID.store(guard.pgid, Ordering::SeqCst);
            }
            guard.children.push(child);
        }
        guard.wait_all_present(Duration::from_secs(30))?;
        eprintln!(
            "xtask: {n} sleepers up in {:.1}s (process group {})",
            started.elapsed().as_secs_f64(),
            guard.pgid
        );
        Ok(guard)
    }

    /// The process group every sleeper belongs to.
    pub fn pgid(&self) -> libc::pid_t {
        self.pgid
    }

    /// `spawn` returns after exec, but wait until /proc really shows every sleeper as `sleep`,
    /// so the measurement sees all N of them.
    fn wait_all_present(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let absent = self
                .children
                .iter()
                .filter(|c| !is_sleeping_sleep(c.id()))
                .count();
            if absent == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{absent} sleepers still not visible in /proc after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the group and reaps every child (an unreaped zombie still shows up in /proc).
    fn kill_and_reap(&mut self) {
        if self.pgid > 0 {
            // SAFETY: plain syscall on a group we created.
            unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        }
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        PGID.store(0, Ordering::SeqCst);
    }

    /// Kills and reaps everything, then proves nothing of the group is left.
    pub fn finish(mut self) -> Result<()> {
        let pgid = self.pgid;
        self.kill_and_reap();
        drop(self);
        let left = processes_in_group(pgid);
        if left > 0 {
            bail!("{left} processes of sleeper group {pgid} are still alive");
        }
        Ok(())
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// Whether /proc/PID/stat exists, names `sleep` and is not a zombie.
fn is_sleeping_sleep(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((comm, rest)) = stat.split_once(") ") else {
        return false;
    };
    comm.ends_with("(sleep") && !rest.starts_with('Z')
}

/// How many processes in /proc belong to process group `pgid` (field 5 of /proc/PID/stat).
pub fn processes_in_group(pgid: libc::pid_t) -> usize {
    if pgid <= 0 {
        return 0;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // After "comm) ": state ppid pgrp ...
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<i32>().ok())
                == Some(pgid)
        })
        .count()
}

/// On Ctrl-C, TERM or HUP: kill the sleepers, then exit as the signal would have.
fn install_signal_handlers() {
    extern "C" fn on_signal(sig: libc::c_int) {
        let pgid = PGID.load(Ordering::SeqCst);
        // SAFETY: kill and _exit are async-signal-safe.
        unsafe {
            if pgid > 0 {
                libc::kill(-pgid, libc::SIGKILL);
            }
            libc::_exit(128 + sig);
        }
    }
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only calls async-signal-safe functions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}
