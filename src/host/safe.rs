//! Reading an untrusted tree (a fixture, a `--root` directory) safely, as root.
//!
//! A fixture or a `--root` tree may be writable by someone hostile: a file can be a symlink to
//! `/etc/shadow` or `/dev/zero`, a FIFO that never answers, or gigabytes long. Everything read
//! from such a tree goes through [`Root`]:
//! - every path resolves beneath the directory: `openat2` with `RESOLVE_BENEATH |
//!   RESOLVE_NO_MAGICLINKS` (symlinks inside the tree still work, `..` and absolute links that
//!   leave it are refused), or, on kernels without `openat2` (< 5.6), a component-by-component
//!   walk that opens each component with `O_NOFOLLOW` and resolves symlinks itself under the
//!   same rules;
//! - only regular files are read (a FIFO, socket or device is refused), opened `O_NONBLOCK` so
//!   that opening a FIFO cannot block;
//! - every read has a size cap fit for its file ([`cap_for`]).
//!
//! Refusals are errors of their own ([`is_refusal`]), so a source can list them in the report's
//! `unavailable`. [`Root::open_file`] is the one primitive: a source that falls back to another
//! tree (an overlay fixture) calls it once per tree.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};

/// Symlinks followed in one path at most (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Default read cap for files not listed in [`cap_for`].
pub const DEFAULT_CAP: usize = 16 << 20;
/// The kernel log: at most this many bytes and records (a 32 MiB log buffer is the largest the
/// kernel allows; records are at least ~30 bytes).
pub const KMSG_MAX_BYTES: usize = 32 << 20;
pub const KMSG_MAX_RECORDS: usize = 1_000_000;

/// Size cap for a file named relative to the system root: generous for what a large, healthy
/// machine produces, small enough that a hostile file cannot exhaust memory.
pub fn cap_for(rel: &str) -> usize {
    const MIB: usize = 1 << 20;
    let rel = rel.trim_start_matches('/');
    if rel.ends_with(".json") {
        return 64 * MIB;
    }
    // The BPF task dump: 256 bytes per thread, a million threads at most.
    if rel == super::source::TASK_DUMP_FILE {
        return 256 * MIB;
    }
    // Socket tables grow with the number of sockets (~150 bytes each).
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if rel.contains("net/")
        && matches!(
            name,
            "tcp" | "tcp6" | "udp" | "udp6" | "unix" | "raw" | "raw6" | "nf_conntrack"
        )
    {
        return 256 * MIB;
    }
    if let Some(rest) = rel.strip_prefix("proc/") {
        let first = rest.split('/').next().unwrap_or("");
        let per_process = first == "self"
            || first == "thread-self"
            || (!first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()));
        if per_process && !rest.contains("/net/") {
            return match name {
                // Bounded by ARG_MAX-like limits, which a large stack rlimit raises.
                "environ" | "cmdline" => 8 * MIB,
                "mountinfo" | "mounts" | "maps" | "smaps" => 64 * MIB,
                _ => MIB,
            };
        }
    }
    if rel.starts_with("sys/fs/cgroup/") {
        // cgroup.procs/tasks list every pid.
        return 32 * MIB;
    }
    DEFAULT_CAP
}

/// Why a path of an untrusted tree was not read.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

fn refused(why: impl Into<String>) -> io::Error {
    io::Error::other(Refused(why.into()))
}

/// Whether `e` is a refusal (escape, special file, too large) rather than an ordinary error.
pub fn is_refusal(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<Refused>())
}

fn escape() -> io::Error {
    refused("the path resolves outside the directory (symlink or ..)")
}

/// Test hook: pretend the kernel has no `openat2`, to exercise the fallback walk.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

#[doc(hidden)]
pub fn force_fallback(on: bool) {
    NO_OPENAT2.store(on, Ordering::Relaxed);
}

/// Open `rel` beneath `dir` (never leaving it) with `flags` (`O_CLOEXEC` and `O_NOCTTY` are
/// added). The final component is followed when it is a symlink that stays beneath.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = rel.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    // openat2 rejects O_PATH with any flag but O_DIRECTORY/O_NOFOLLOW/O_CLOEXEC.
    let flags = if flags.contains(OFlags::PATH) {
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY
    };
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match rfs::openat2(
            dir,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => return Ok(fd),
            Err(rustix::io::Errno::NOSYS) => {}
            // EXDEV: the path left the directory; ELOOP may also mean a magic link.
            Err(rustix::io::Errno::XDEV) => return Err(escape()),
            Err(e) => return Err(e.into()),
        }
    }
    walk(dir, rel, flags)
}

/// The fallback for kernels without `openat2`: resolve `rel` one component at a time, each
/// opened with `O_NOFOLLOW` relative to the directory before it; a symlink is read and its
/// target's components are walked in its place (absolute targets and `..` above the top are
/// escapes).
fn walk(dir: BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut pending: std::collections::VecDeque<String> =
        rel.split('/').map(str::to_string).collect();
    let mut links = 0;
    let path_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    while let Some(c) = pending.pop_front() {
        // Skip empty and `.` components, but keep one to open when the path ends with it.
        let last = pending.iter().all(|p| p.is_empty() || p == ".");
        if (c.is_empty() || c == ".") && !last {
            continue;
        }
        if c == ".." {
            if stack.pop().is_none() {
                return Err(escape());
            }
            if !last {
                continue;
            }
        }
        let cur = stack.last().map(|f| f.as_fd()).unwrap_or(dir);
        if c == ".." || c.is_empty() || c == "." {
            return Ok(rfs::openat(cur, ".", flags, Mode::empty())?);
        }
        let st = rfs::statat(cur, c.as_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = rfs::readlinkat(cur, c.as_str(), Vec::new())?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                return Err(escape());
            }
            for (i, t) in target.split('/').enumerate() {
                pending.insert(i, t.to_string());
            }
            continue;
        }
        // O_NOFOLLOW: if the entry became a symlink since we looked, the open fails.
        if last {
            return Ok(rfs::openat(
                cur,
                c.as_str(),
                flags | OFlags::NOFOLLOW,
                Mode::empty(),
            )?);
        }
        let next = rfs::openat(cur, c.as_str(), path_flags, Mode::empty())?;
        stack.push(next);
    }
    Ok(rfs::openat(
        stack.last().map(|f| f.as_fd()).unwrap_or(dir),
        ".",
        flags,
        Mode::empty(),
    )?)
}

/// Read at most `cap` bytes of `f`; a longer file is refused rather than truncated (a
/// truncated file would parse as something else).
pub fn read_capped(f: &File, cap: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let n = Read::take(f, cap as u64 + 1).read_to_end(&mut buf)?;
    if n > cap {
        return Err(refused(format!("larger than {} bytes", cap)));
    }
    Ok(buf)
}

/// Like [`read_capped`] from offset 0 with `pread` (a kept /proc file).
pub fn pread_capped(f: &File, cap: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let n = loop {
            match f.read_at(&mut buf[len..], len as u64) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        len += n;
        if len > cap {
            return Err(refused(format!("larger than {} bytes", cap)));
        }
        if n == 0 || len < buf.len() {
            break;
        }
        buf.resize(buf.len().saturating_mul(2).min(cap.saturating_add(1)), 0);
    }
    buf.truncate(len);
    Ok(buf)
}

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        _ => "not a regular file",
    }
}

/// The kernel log device's number (`/dev/kmsg` is char 1:11).
fn is_kmsg_device(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
        && rfs::major(st.st_rdev) == 1
        && rfs::minor(st.st_rdev) == 11
}

/// A directory tree read without leaving it (see the module documentation).
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// The tree at `path` (`path` itself may be a symlink: it is the caller's choice).
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rfs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("{}: not a directory ({e})", path.display()),
            )
        })?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// A directory beneath this one, as a tree of its own (`t0` of a fixture).
    pub fn subdir(&self, rel: &str) -> io::Result<Root> {
        let fd = open_beneath(self.fd.as_fd(), rel, OFlags::PATH | OFlags::DIRECTORY)?;
        Ok(Root {
            fd,
            path: self.path.join(rel),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Open a regular file beneath the tree for reading (non-blocking; anything else is
    /// refused). The safe-open primitive every read of the tree goes through.
    pub fn open_file(&self, rel: &str) -> io::Result<File> {
        let fd = open_beneath(
            self.fd.as_fd(),
            rel,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOATIME,
        )
        .or_else(|e| {
            // O_NOATIME needs ownership; retry without it.
            if e.raw_os_error() == Some(libc::EPERM) {
                open_beneath(self.fd.as_fd(), rel, OFlags::RDONLY | OFlags::NONBLOCK)
            } else {
                Err(e)
            }
        })?;
        let st = rfs::fstat(&fd)?;
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile {
            if t == FileType::Directory {
                return Err(io::Error::from_raw_os_error(libc::EISDIR));
            }
            return Err(refused(format!("{} is not read", kind_name(t))));
        }
        Ok(File::from(fd))
    }

    /// The whole content of a regular file, at most `cap` bytes.
    pub fn read(&self, rel: &str, cap: usize) -> io::Result<Vec<u8>> {
        read_capped(&self.open_file(rel)?, cap)
    }

    /// The kernel log beneath the tree: a recorded log (a regular file), or the real
    /// `/dev/kmsg` device of a host mounted at `--root` (char 1:11), opened non-blocking.
    pub fn open_kmsg(&self, rel: &str) -> io::Result<File> {
        let fd = open_beneath(self.fd.as_fd(), rel, OFlags::RDONLY | OFlags::NONBLOCK)?;
        let st = rfs::fstat(&fd)?;
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile && !is_kmsg_device(&st) {
            return Err(refused(format!(
                "{} is not the kernel log device",
                kind_name(t)
            )));
        }
        Ok(File::from(fd))
    }

    /// Names in a directory beneath the tree (without `.` and `..`).
    pub fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let fd = open_beneath(
            self.fd.as_fd(),
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK,
        )?;
        let mut out = Vec::new();
        for e in rfs::Dir::new(fd)? {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                out.push(String::from_utf8_lossy(n).into_owned());
            }
        }
        Ok(out)
    }

    /// Target of a symlink beneath the tree (the link itself is not followed).
    pub fn readlink(&self, rel: &str) -> io::Result<String> {
        let rel = rel.trim_matches('/');
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        if name.is_empty() || name == "." || name == ".." {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let dir = open_beneath(self.fd.as_fd(), parent, OFlags::PATH | OFlags::DIRECTORY)?;
        let t = rfs::readlinkat(&dir, name, Vec::new())?;
        Ok(t.to_string_lossy().into_owned())
    }

    /// `fstat` of what `rel` resolves to beneath the tree (any file type).
    pub fn stat(&self, rel: &str) -> io::Result<rfs::Stat> {
        let fd = open_beneath(self.fd.as_fd(), rel, OFlags::PATH)?;
        Ok(rfs::fstat(&fd)?)
    }

    /// `fstatvfs` of a directory beneath the tree.
    pub fn statvfs(&self, rel: &str) -> io::Result<rfs::StatVfs> {
        let fd = open_beneath(self.fd.as_fd(), rel, OFlags::PATH)?;
        Ok(rfs::fstatvfs(&fd)?)
    }
}

/// Read one file of a fixture directory (`probes/offcpu.json`), beneath it and capped; a packed
/// fixture's from its archive ([`super::packed::read_in`]).
pub fn read_in(dir: &Path, rel: &str) -> io::Result<Vec<u8>> {
    super::packed::read_in(dir, rel)
}

/// A file of the live system (`/proc/PID/maps`) as UTF-8 (lossy), with the cap of
/// [`cap_for`] for its path: trusted paths, bounded reads all the same.
pub fn read_live_string(path: &str) -> io::Result<String> {
    let f = File::open(path)?;
    let b = read_capped(&f, cap_for(path))?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Run `f` on another thread and give up after `timeout` (the thread is left to finish on its
/// own): for calls that can hang forever on a dead mount (`statvfs` of a hung NFS server).
pub fn with_timeout<T: Send + 'static>(
    timeout: std::time::Duration,
    what: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("triage-timeout".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    spawned?;
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what} did not answer within {:.1} s (a hung network mount?)",
                timeout.as_secs_f64()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("proc/sys/kernel")).unwrap();
        std::fs::create_dir_all(p.join("sys/devices/x")).unwrap();
        std::fs::create_dir_all(p.join("sys/block")).unwrap();
        std::fs::write(p.join("proc/loadavg"), "1 2 3\n").unwrap();
        std::fs::write(p.join("sys/devices/x/size"), "42\n").unwrap();
        symlink("../devices/x", p.join("sys/block/vda")).unwrap();
        symlink("/etc/passwd", p.join("proc/sys/kernel/hostname")).unwrap();
        symlink(
            "../../../../etc/passwd",
            p.join("proc/sys/kernel/osrelease"),
        )
        .unwrap();
        symlink("/dev/zero", p.join("proc/zero")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p.join("proc/fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        d
    }

    fn check(root: &Root) {
        assert_eq!(root.read("proc/loadavg", 100).unwrap(), b"1 2 3\n");
        // A symlink that stays inside the tree works.
        assert_eq!(root.read("sys/block/vda/size", 100).unwrap(), b"42\n");
        // Absolute and `..` escapes are refused.
        for p in [
            "proc/sys/kernel/hostname",
            "proc/sys/kernel/osrelease",
            "../etc/passwd",
            "proc/../../etc/passwd",
            "proc/zero",
        ] {
            let e = root.read(p, 1 << 20).unwrap_err();
            assert!(is_refusal(&e), "{p}: {e}");
        }
        // A FIFO is refused without blocking.
        let e = root.read("proc/fifo", 100).unwrap_err();
        assert!(is_refusal(&e), "{e}");
        assert!(e.to_string().contains("FIFO"), "{e}");
        // Too large.
        let e = root.read("proc/loadavg", 3).unwrap_err();
        assert!(is_refusal(&e), "{e}");
        // Missing is an ordinary NotFound.
        let e = root.read("proc/missing", 100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let mut names = root.list("sys/block").unwrap();
        names.sort();
        assert_eq!(names, ["vda"]);
        assert_eq!(
            root.readlink("proc/sys/kernel/hostname").unwrap(),
            "/etc/passwd"
        );
        assert!(is_refusal(
            &root.list("proc/sys/kernel/hostname/..").unwrap_err()
        ));
    }

    #[test]
    fn reads_stay_beneath_the_root_with_openat2() {
        let d = tree();
        check(&Root::open(d.path()).unwrap());
    }

    #[test]
    fn reads_stay_beneath_the_root_without_openat2() {
        let d = tree();
        let root = Root::open(d.path()).unwrap();
        // Only this test uses the fallback switch; the walk is also called directly.
        let e = walk(root.fd(), "proc/sys/kernel/hostname", OFlags::RDONLY).unwrap_err();
        assert!(is_refusal(&e), "{e}");
        let f = walk(root.fd(), "sys/block/vda/size", OFlags::RDONLY).unwrap();
        assert_eq!(read_capped(&File::from(f), 10).unwrap(), b"42\n");
        force_fallback(true);
        let r = std::panic::catch_unwind(|| check(&root));
        force_fallback(false);
        r.unwrap();
    }

    #[test]
    fn caps_fit_the_file() {
        assert_eq!(cap_for("proc/42/stat"), 1 << 20);
        assert_eq!(cap_for("proc/net/tcp"), 256 << 20);
        assert_eq!(cap_for("proc/42/net/tcp6"), 256 << 20);
        assert_eq!(cap_for("proc/1/environ"), 8 << 20);
        assert_eq!(cap_for("statvfs.json"), 64 << 20);
        assert_eq!(cap_for("proc/stat"), DEFAULT_CAP);
    }

    #[test]
    fn a_hanging_call_times_out() {
        let e = with_timeout(std::time::Duration::from_millis(50), "statvfs /x", || {
            std::thread::sleep(std::time::Duration::from_secs(5));
            Ok(())
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            with_timeout(std::time::Duration::from_secs(5), "x", || Ok(7)).unwrap(),
            7
        );
    }
}
