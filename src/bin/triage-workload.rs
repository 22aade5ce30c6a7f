//! A workload with a known answer, for the eBPF tests: it waits for one line on stdin (so
//! the tracer can attach first), does exactly what it was asked with raw syscalls, then exits.
//!
//! `triage-workload [--now] getppid N` | `read0 N` | `enoent N` | `nanosleep MS COUNT`
//! (`--now`: do not wait for stdin; the overhead bench uses it).

use std::io::BufRead;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let now = args.first().is_some_and(|a| a == "--now");
    if now {
        args.remove(0);
    } else {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }
    let n = |i: usize| -> u64 { args.get(i).and_then(|v| v.parse().ok()).unwrap_or(1) };
    match args.first().map(String::as_str) {
        Some("getppid") => {
            for _ in 0..n(1) {
                // SAFETY: getppid takes no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
        }
        Some("read0") => {
            let mut b = [0u8; 1];
            for _ in 0..n(1) {
                // SAFETY: a zero-length read from stdin-independent fd 0 touches no memory.
                unsafe { libc::syscall(libc::SYS_read, 0, b.as_mut_ptr(), 0usize) };
            }
        }
        Some("enoent") => {
            let path = c"/nonexistent/triage-workload-missing-file";
            for _ in 0..n(1) {
                // SAFETY: a valid NUL-terminated path; the call fails with ENOENT.
                let fd = unsafe {
                    libc::syscall(
                        libc::SYS_openat,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        libc::O_RDONLY,
                    )
                };
                assert!(fd < 0);
            }
        }
        Some("nanosleep") => {
            let ms = n(1) as i64;
            let ts = libc::timespec {
                tv_sec: ms / 1000,
                tv_nsec: (ms % 1000) * 1_000_000,
            };
            for _ in 0..n(2) {
                // SAFETY: valid timespec, null remainder.
                unsafe {
                    libc::syscall(
                        libc::SYS_nanosleep,
                        &ts as *const libc::timespec,
                        std::ptr::null_mut::<libc::timespec>(),
                    )
                };
            }
        }
        _ => {
            eprintln!("usage: triage-workload [--now] getppid N | read0 N | enoent N | nanosleep MS COUNT");
            std::process::exit(2);
        }
    }
}
