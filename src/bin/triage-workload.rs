//! A workload with a known answer, for the eBPF tests: it waits for one line on stdin (so
//! the tracer can attach first), does exactly what it was asked with raw syscalls, then exits.
//!
//! `triage-workload [--now] getppid N` | `read0 N` | `enoent N` | `nanosleep MS COUNT` |
//! `spin N` (N x 10,000 xorshift rounds in one non-inlined function) |
//! `tcp-sink ADDR:PORT` (accept and discard, until killed) |
//! `tcp-send ADDR:PORT SECS FLOWS` (FLOWS bulk TCP connections for SECS seconds: the qdisc
//! tests send it across a shaped link) |
//! `threads N` (N threads in all, asleep) | `touch MB` (MB MiB of anonymous memory, small
//! pages, each page written once: MB x 256 minor faults at 4 KiB pages): these two print
//! `ready` once set up and hold until stdin closes (the task iterator's agreement test).
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
        Some("spin") => {
            // CPU-bound, no syscalls: N steps of hashing (the profiler's overhead bench).
            let mut h = 1u64;
            for _ in 0..n(1) {
                h = spin_step(h);
            }
            std::hint::black_box(h);
        }
        Some("tcp-sink") => tcp_sink(args.get(1).map(String::as_str).unwrap_or("")),
        Some("tcp-send") => tcp_send(args.get(1).map(String::as_str).unwrap_or(""), n(2), n(3)),
        Some("threads") => {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
            let handles: Vec<_> = (1..n(1))
                .map(|_| {
                    let rx = rx.clone();
                    // Each blocks until the sender is dropped (stdin closed).
                    std::thread::spawn(move || {
                        while rx.lock().map(|r| r.recv().is_ok()).unwrap_or(false) {}
                    })
                })
                .collect();
            hold();
            drop(tx);
            for h in handles {
                let _ = h.join();
            }
        }
        Some("touch") => {
            let len = (n(1) as usize) << 20;
            // SAFETY: a fresh private anonymous mapping; only written within its length.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert!(p != libc::MAP_FAILED, "mmap failed");
                // Small pages, so every page is one fault and one page of RSS.
                libc::madvise(p, len, libc::MADV_NOHUGEPAGE);
                let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
                let b = p as *mut u8;
                for off in (0..len).step_by(page) {
                    std::ptr::write_volatile(b.add(off), 1);
                }
            }
            hold();
        }
        _ => {
            eprintln!("usage: triage-workload [--now] getppid N | read0 N | enoent N | nanosleep MS COUNT | spin N | tcp-sink ADDR:PORT | tcp-send ADDR:PORT SECS FLOWS | threads N | touch MB");
            std::process::exit(2);
        }
    }
}

/// 10,000 xorshift-multiply rounds: a fixed amount of pure CPU work.
#[inline(never)]
fn spin_step(mut h: u64) -> u64 {
    for _ in 0..10_000 {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Accept connections on `addr` and read each to its end, until killed.
fn tcp_sink(addr: &str) {
    use std::io::Read;
    let l = std::net::TcpListener::bind(addr).unwrap_or_else(|e| {
        eprintln!("tcp-sink: bind {addr}: {e}");
        std::process::exit(1)
    });
    for c in l.incoming().flatten() {
        std::thread::spawn(move || {
            let mut c = c;
            let mut buf = vec![0u8; 1 << 16];
            while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
}

/// `flows` connections to `addr`, each writing as fast as it may for `secs` seconds
/// (reconnecting when one fails).
fn tcp_send(addr: &str, secs: u64, flows: u64) {
    use std::io::Write;
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let threads: Vec<_> = (0..flows)
        .map(|_| {
            let addr = addr.to_string();
            std::thread::spawn(move || {
                let buf = vec![b'x'; 1 << 16];
                while std::time::Instant::now() < end {
                    let Ok(mut c) = std::net::TcpStream::connect(&addr) else {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        continue;
                    };
                    let _ = c.set_write_timeout(Some(std::time::Duration::from_secs(1)));
                    while std::time::Instant::now() < end && c.write_all(&buf).is_ok() {}
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// Say `ready` on stdout, then wait until stdin closes.
fn hold() {
    use std::io::{Read, Write};
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut sink);
}
