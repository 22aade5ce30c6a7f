//! Where readings come from: the live system, a live system being recorded into a fixture, or a
//! fixture directory recorded earlier.
//!
//! Every reader in `collect` takes a `&dyn Source` and names files relative to the system root
//! (`"proc/stat"`, `"sys/block/vda/queue/rotational"`): nothing hard-codes `/proc`. Because every
//! byte a reader sees passes through here, recording a fixture is just copying what passed
//! through, so the capture format and the fixture format are the same thing.
//!
//! Facts that are not file contents are stored in the fixture as small files of their own:
//! - `stat_size(p)`: the `st_size` of `p` (Linux >= 6.2 reports the open-fd count as the size
//!   of `/proc/PID/fd`), stored as a file at `p` holding the decimal number.
//! - `statvfs(mount)`: stored in `statvfs.json` at the top of the snapshot.
//! - `readlink(p)`: stored as a symlink with the same target.
//! - `kmsg()`: the kernel log records, stored as `dev/kmsg` (one record per line, as read).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::packed::Layer;

/// Filesystem capacity of one mount, as `statvfs(3)` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsStat {
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_avail: u64,
    pub files: u64,
    pub files_free: u64,
    pub read_only: bool,
}

/// A system root to read from. Paths are relative to the root and use `/`.
pub trait Source: Send + Sync {
    /// The whole content of a file.
    fn read(&self, rel: &str) -> io::Result<Vec<u8>>;
    /// Like `read`, for a file the caller will read again later in the same run (per-process
    /// `stat` at t0 and t1). A live source keeps the file open and re-reads it with `pread`,
    /// which is cheaper than a new path lookup and never confuses a reused PID with the old
    /// process (the old file answers ESRCH).
    fn read_kept(&self, rel: &str) -> io::Result<Vec<u8>> {
        self.read(rel)
    }
    /// Names in a directory (unsorted, without `.` and `..`).
    fn list(&self, rel: &str) -> io::Result<Vec<String>>;
    /// Target of a symbolic link.
    fn readlink(&self, rel: &str) -> io::Result<String>;
    /// `st_size` of a path (used for the open-fd count of `/proc/PID/fd`).
    fn stat_size(&self, rel: &str) -> io::Result<u64>;
    /// Capacity of the filesystem mounted at an absolute mount point (`/`, `/var`).
    fn statvfs(&self, mount_point: &str) -> io::Result<FsStat>;
    /// Kernel log records available now, read without blocking (`/dev/kmsg`).
    fn kmsg(&self) -> io::Result<Vec<u8>>;
    /// TCP sockets of our own network namespace by state, from netlink sock_diag. Recorded as
    /// `sock_diag_tcp.json`; a fixture without it answers `Unsupported` (readers then fall back
    /// to /proc/net/tcp).
    fn tcp_states(&self) -> io::Result<BTreeMap<String, u64>>;
    /// Listening TCP sockets of our own network namespace with their accept queues, from
    /// netlink sock_diag. Recorded as `sock_diag_listen.json`; a fixture without it (or a source
    /// that cannot ask) answers `Unsupported`.
    fn tcp_listeners(&self) -> io::Result<Vec<super::sockdiag::Listener>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no listener dump",
        ))
    }
    /// Client-side TCP sockets of our own network namespace per (local address, remote
    /// address:port), for local ports in `range` ([`super::sockdiag::tcp_port_use`]).
    /// Recorded as `sock_diag_ports.json`; a fixture without it answers `Unsupported`.
    fn tcp_port_use(&self, _range: (u16, u16)) -> io::Result<super::sockdiag::PortUseDump> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no port-use dump",
        ))
    }

    /// Queueing disciplines of our own network namespace with their counters, from an
    /// rtnetlink `RTM_GETQDISC` dump ([`super::qdisc`]). Recorded as `qdisc.json`; a fixture
    /// without it (or a `--root` that is not `/`) answers `Unsupported`.
    fn qdiscs(&self) -> io::Result<Vec<super::qdisc::Qdisc>> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no qdisc dump"))
    }

    /// Every task of the system as the BPF task iterator dumps it (`collect::taskdump`),
    /// recorded as `tasks.bin` in the snapshot. `Unsupported` when this source has no dump (no
    /// dumper installed: unprivileged, `--no-bpf`, `--root`; a fixture without one): the
    /// process scan then reads /proc.
    fn task_dump(&self) -> io::Result<Vec<u8>> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no task dump"))
    }

    /// Paths this source refused to read (outside the tree, not a regular file, too large),
    /// with why: the run lists them in `unavailable`.
    fn refusals(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// `read` as UTF-8 (lossy: system files are text, but a garbled one must not stop the run).
    fn read_string(&self, rel: &str) -> io::Result<String> {
        self.read(rel)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
    /// `read_kept` as UTF-8 (lossy).
    fn read_kept_string(&self, rel: &str) -> io::Result<String> {
        self.read_kept(rel)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

/// How long `statvfs` of one mount may take before it is reported unavailable.
pub const STATVFS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

fn not_a_root(base: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not a directory", base.display()),
    )
}

/// Paths of an untrusted tree that were refused (see [`super::safe`]), kept so that the run
/// can list them in `unavailable` even when the reader treats the file as optional.
#[derive(Default)]
pub struct Refusals(Mutex<BTreeMap<String, String>>);

impl Refusals {
    /// Pass `r` through, noting `rel` when it is a refusal.
    pub fn note<T>(&self, rel: &str, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            if super::safe::is_refusal(e) {
                let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
                if m.len() < 1000 {
                    m.insert(rel.to_string(), e.to_string());
                }
            }
        }
        r
    }

    /// (path, why) of every refusal so far.
    pub fn list(&self) -> Vec<(String, String)> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// The running system, rooted at `base` (normally `/`), optionally recording what it reads.
pub struct LiveSource {
    base: PathBuf,
    /// `--root DIR` (anything but `/`): every read resolves beneath DIR and reads only regular
    /// files (see [`super::safe`]); the real root reads /proc and /sys directly.
    confined: Option<super::safe::Root>,
    /// Paths of a confined tree refused (escapes, special files, too large).
    refusals: Refusals,
    kept: Mutex<HashMap<String, File>>,
    /// Files we may keep open at once: stays well under RLIMIT_NOFILE.
    kept_cap: usize,
    recorder: Option<Recorder>,
    /// Dumps every task (the BPF task iterator, installed by the caller).
    task_dumper: Option<TaskDumper>,
}

/// Produces a task dump (see [`Source::task_dump`]).
pub type TaskDumper = Box<dyn Fn() -> io::Result<Vec<u8>> + Send + Sync>;

/// The fixture file of a snapshot's task dump.
pub const TASK_DUMP_FILE: &str = "tasks.bin";

impl LiveSource {
    /// A netlink dump (`what`: sock_diag, rtnetlink) of our own network namespace, recorded
    /// as `file`. Refused under `--root`: netlink answers for our namespace, not for the
    /// system under the root.
    fn netlink<T: serde::Serialize>(
        &self,
        what: &str,
        file: &str,
        dump: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        if self.base != Path::new("/") {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{what} with --root"),
            ));
        }
        let v = dump()?;
        self.record(file, &serde_json::to_vec_pretty(&v).unwrap_or_default());
        Ok(v)
    }

    pub fn new(base: impl Into<PathBuf>) -> Self {
        let kept_cap = raise_nofile_limit().saturating_sub(64) as usize;
        let base: PathBuf = base.into();
        let confined = if base == Path::new("/") {
            None
        } else {
            // A root that cannot be opened reads nothing: every read then fails as NotFound.
            super::safe::Root::open(&base).ok()
        };
        LiveSource {
            confined,
            refusals: Refusals::default(),
            base,
            kept: Mutex::new(HashMap::new()),
            kept_cap,
            recorder: None,
            task_dumper: None,
        }
    }

    /// Scan processes through `dumper` (the BPF task iterator) instead of /proc/PID/stat.
    /// Only for the real root: a `--root` tree is not the running kernel's.
    pub fn with_task_dumper(mut self, dumper: TaskDumper) -> Self {
        if self.confined.is_none() && self.base == Path::new("/") {
            self.task_dumper = Some(dumper);
        }
        self
    }

    /// Whether a task dumper is installed.
    pub fn has_task_dumper(&self) -> bool {
        self.task_dumper.is_some()
    }

    /// Record every reading into `dir/<phase>/...` from now on (see [`super::outdir`]: no
    /// symlink is followed, files are private).
    pub fn with_recorder(mut self, dir: std::sync::Arc<super::outdir::OutDir>) -> Self {
        self.recorder = Some(Recorder::new(dir));
        self
    }

    /// Write a file at the top of the recording (`meta.json`); nothing without a recorder.
    pub fn record_top(&self, rel: &str, data: &[u8]) -> io::Result<()> {
        match &self.recorder {
            Some(r) => r.dir.write(rel, data),
            None => Ok(()),
        }
    }

    /// Subsequent recordings go to `dir/<phase>/` (`t0`, `samples/003`, `t1`).
    pub fn set_phase(&self, phase: &str) {
        if let Some(r) = &self.recorder {
            r.set_phase(phase);
        }
    }

    /// Write what the recorder holds in memory (statvfs results) for the current phase.
    pub fn flush_recording(&self) -> io::Result<()> {
        match &self.recorder {
            Some(r) => r.flush(),
            None => Ok(()),
        }
    }

    /// Close kept files (end of a run): they hold per-process references.
    pub fn forget_kept(&self) {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    /// Open a file for reading: beneath `--root` (regular files only), or directly.
    fn open(&self, rel: &str) -> io::Result<File> {
        match &self.confined {
            Some(root) => self.refusals.note(rel, root.open_file(rel)),
            None if self.base != Path::new("/") => Err(not_a_root(&self.base)),
            None => File::open(self.path(rel)),
        }
    }

    fn record(&self, rel: &str, data: &[u8]) {
        if let Some(r) = &self.recorder {
            r.file(rel, data);
        }
    }
}

/// Raise RLIMIT_NOFILE's soft limit to the hard limit for this process only (so that per-process
/// files can be kept open between t0 and t1); returns the soft limit now in force.
fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum) {
        if cur < max {
            lim.current = Some(max.min(1 << 20));
            if setrlimit(Resource::Nofile, lim).is_err() {
                return cur;
            }
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(1024)
}

/// Read a freshly opened small /proc file that is produced in one go (`stat`). Not
/// `read_to_end`: that asks for the size and position first (statx + lseek, useless on /proc)
/// and needs one more read to see the end; per process, that is a third of the cost. A read
/// that leaves the buffer unfilled has the whole file for such single-record files; long
/// files (`/proc/net/tcp`) may come in chunks and go through `read`, which reads to the end.
fn read_all(f: &File, cap: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let n = (&*f).read(&mut buf[len..])?;
        len += n;
        if len > cap {
            return Err(io::Error::other(super::safe::Refused(format!(
                "larger than {cap} bytes"
            ))));
        }
        if n == 0 || len < buf.len() {
            break;
        }
        buf.resize(buf.len().saturating_mul(2).min(cap.saturating_add(1)), 0);
    }
    buf.truncate(len);
    Ok(buf)
}

/// Re-read a kept file from offset 0. A read that does not fill the buffer has everything:
/// asking again at a non-zero offset would make a seq_file (every /proc file) regenerate the
/// whole text just to skip it, doubling the cost of the re-read.
fn pread_all(f: &File, cap: usize) -> io::Result<Vec<u8>> {
    super::safe::pread_capped(f, cap)
}

impl Source for LiveSource {
    fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        let f = self.open(rel)?;
        let data = self
            .refusals
            .note(rel, super::safe::read_capped(&f, super::safe::cap_for(rel)))?;
        self.record(rel, &data);
        Ok(data)
    }

    fn read_kept(&self, rel: &str) -> io::Result<Vec<u8>> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let data = if let Some(f) = kept.get(rel) {
            let r = pread_all(f, super::safe::cap_for(rel));
            if r.is_err() {
                kept.remove(rel);
            }
            r?
        } else {
            let f = self.open(rel)?;
            let data = self
                .refusals
                .note(rel, read_all(&f, super::safe::cap_for(rel)))?;
            if kept.len() < self.kept_cap {
                kept.insert(rel.to_string(), f);
            }
            data
        };
        drop(kept);
        self.record(rel, &data);
        Ok(data)
    }

    fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        match &self.confined {
            Some(root) => self.refusals.note(rel, root.list(rel)),
            None => list_dir(&self.path(rel)),
        }
    }

    fn readlink(&self, rel: &str) -> io::Result<String> {
        let t = match &self.confined {
            Some(root) => self.refusals.note(rel, root.readlink(rel))?,
            None => std::fs::read_link(self.path(rel))?
                .to_string_lossy()
                .into_owned(),
        };
        if let Some(r) = &self.recorder {
            r.link(rel, &t);
        }
        Ok(t)
    }

    fn stat_size(&self, rel: &str) -> io::Result<u64> {
        let size = match &self.confined {
            Some(root) => self.refusals.note(rel, root.stat(rel))?.st_size.max(0) as u64,
            None => std::fs::metadata(self.path(rel))?.len(),
        };
        self.record(rel, format!("{size}\n").as_bytes());
        Ok(size)
    }

    fn statvfs(&self, mount_point: &str) -> io::Result<FsStat> {
        let rel = mount_point.trim_start_matches('/').to_string();
        let what = format!("statvfs {mount_point}");
        // statvfs of a dead network mount never returns: ask on another thread, with a deadline.
        let s = match &self.confined {
            Some(root) => {
                let fd = root.fd().try_clone_to_owned()?;
                super::safe::with_timeout(STATVFS_TIMEOUT, &what, move || {
                    let fd = super::safe::open_beneath(
                        std::os::fd::AsFd::as_fd(&fd),
                        &rel,
                        rustix::fs::OFlags::PATH,
                    )?;
                    Ok(rustix::fs::fstatvfs(&fd)?)
                })?
            }
            None => {
                let p = self.base.join(&rel);
                super::safe::with_timeout(STATVFS_TIMEOUT, &what, move || {
                    Ok(rustix::fs::statvfs(&p)?)
                })?
            }
        };
        let st = FsStat {
            block_size: s.f_frsize,
            blocks: s.f_blocks,
            blocks_free: s.f_bfree,
            blocks_avail: s.f_bavail,
            files: s.f_files,
            files_free: s.f_ffree,
            read_only: s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
        };
        if let Some(r) = &self.recorder {
            r.statvfs(mount_point, st);
        }
        Ok(st)
    }

    fn kmsg(&self) -> io::Result<Vec<u8>> {
        let f = match &self.confined {
            Some(root) => self.refusals.note("dev/kmsg", root.open_kmsg("dev/kmsg"))?,
            None => {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(self.path("dev/kmsg"))?
            }
        };
        let data = read_kmsg_nonblocking(f)?;
        self.record("dev/kmsg", &data);
        Ok(data)
    }

    fn refusals(&self) -> Vec<(String, String)> {
        self.refusals.list()
    }

    fn tcp_states(&self) -> io::Result<BTreeMap<String, u64>> {
        self.netlink("sock_diag", "sock_diag_tcp.json", || {
            Ok(super::sockdiag::tcp_states()?
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect())
        })
    }

    fn task_dump(&self) -> io::Result<Vec<u8>> {
        let Some(dump) = &self.task_dumper else {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "no task dumper"));
        };
        let data = dump()?;
        self.record(TASK_DUMP_FILE, &data);
        Ok(data)
    }

    fn tcp_listeners(&self) -> io::Result<Vec<super::sockdiag::Listener>> {
        self.netlink("sock_diag", "sock_diag_listen.json", || {
            super::sockdiag::tcp_listeners()
        })
    }

    fn tcp_port_use(&self, range: (u16, u16)) -> io::Result<super::sockdiag::PortUseDump> {
        self.netlink("sock_diag", "sock_diag_ports.json", || {
            super::sockdiag::tcp_port_use(range)
        })
    }

    fn qdiscs(&self) -> io::Result<Vec<super::qdisc::Qdisc>> {
        self.netlink("rtnetlink", "qdisc.json", super::qdisc::qdiscs)
    }
}

fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        out.push(e?.file_name().to_string_lossy().into_owned());
    }
    Ok(out)
}

/// Read every record currently in the kernel's log buffer without blocking. Each `read(2)` on
/// /dev/kmsg returns one record; EAGAIN means we have them all; EPIPE means a record was
/// overwritten while we read (skip it and go on).
/// At most `KMSG_MAX_RECORDS` records and `KMSG_MAX_BYTES` bytes (the oldest ones: the log is
/// read from its start), so a hostile "log" (`/dev/zero`) cannot exhaust memory.
fn read_kmsg_nonblocking(mut f: File) -> io::Result<Vec<u8>> {
    use super::safe::{KMSG_MAX_BYTES, KMSG_MAX_RECORDS};
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    // A regular file (a recorded log) simply ends; the device ends with EAGAIN.
    for _ in 0..KMSG_MAX_RECORDS {
        if out.len() >= KMSG_MAX_BYTES {
            break;
        }
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if !out.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// In a fixture, the recorded `stat_size` of a directory whose entries were recorded too.
const DIR_SIZE: &str = ".size";

/// Copies what a `LiveSource` reads into a fixture directory.
struct Recorder {
    dir: std::sync::Arc<super::outdir::OutDir>,
    phase: Mutex<String>,
    statvfs: Mutex<BTreeMap<String, FsStat>>,
}

impl Recorder {
    fn new(dir: std::sync::Arc<super::outdir::OutDir>) -> Self {
        Recorder {
            dir,
            phase: Mutex::new("t0".into()),
            statvfs: Mutex::new(BTreeMap::new()),
        }
    }

    fn set_phase(&self, phase: &str) {
        let _ = self.flush();
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase.to_string();
    }

    /// `rel` inside the current phase's directory (relative to the recording).
    fn target(&self, rel: &str) -> String {
        let phase = self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone();
        format!("{phase}/{}", rel.trim_start_matches('/'))
    }

    fn file(&self, rel: &str, data: &[u8]) {
        let mut t = self.target(rel);
        if self.dir.file_type(&t) == Some(rustix::fs::FileType::Directory) {
            // The size of a directory whose entries were recorded too (`/proc/PID/fd`).
            t = format!("{t}/{DIR_SIZE}");
        }
        // A recording that cannot be written is a capture problem, not a reason to stop the
        // report: the capture command checks the tree afterwards.
        let _ = self.dir.write(&t, data);
    }

    fn link(&self, rel: &str, target: &str) {
        let t = self.target(rel);
        if let Some((p, _)) = t.rsplit_once('/') {
            if self.dir.file_type(p) == Some(rustix::fs::FileType::RegularFile) {
                // A directory recorded first as its size (`stat_size` of /proc/PID/fd), now
                // with a link inside: it becomes a directory holding its size in `DIR_SIZE`.
                let size = self.dir.read(p).unwrap_or_default();
                let _ = self.dir.remove_file(p);
                let _ = self.dir.write(&format!("{p}/{DIR_SIZE}"), &size);
            }
        }
        let _ = self.dir.symlink(&t, target);
    }

    fn statvfs(&self, mount: &str, st: FsStat) {
        self.statvfs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(mount.to_string(), st);
    }

    fn flush(&self) -> io::Result<()> {
        let mut map = self.statvfs.lock().unwrap_or_else(|e| e.into_inner());
        if map.is_empty() {
            return Ok(());
        }
        let t = self.target("statvfs.json");
        self.dir.write(&t, &serde_json::to_vec_pretty(&*map)?)?;
        map.clear();
        Ok(())
    }
}

/// One recorded snapshot directory (`fixtures/NAME/t1`), read beneath it (`safe::Root`), seen
/// through the layers of an overlay fixture (one layer for a plain fixture).
pub struct FixtureSource {
    /// The snapshot directory of each layer (a directory or a packed tree), the overlay first;
    /// `None` where a layer has no such snapshot (its whiteouts still apply).
    layers: Vec<Option<Layer>>,
    /// Per layer: paths (relative to the snapshot) it removed from the layers below it.
    removed: Vec<Vec<String>>,
    statvfs: BTreeMap<String, FsStat>,
    refusals: Refusals,
}

impl FixtureSource {
    /// One snapshot directory of a plain fixture.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        let root = super::safe::Root::open(&dir).map_err(|_| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: not a snapshot directory", dir.display()),
            )
        })?;
        Self::layered(vec![Some(Layer::Dir(root))], vec![Vec::new()])
    }

    /// The snapshot `rel` (`t0`) beneath a plain fixture directory, resolved without leaving it.
    pub fn open_beneath(top: &super::safe::Root, rel: &str) -> io::Result<Self> {
        let root = top.subdir(rel).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{}: not a snapshot directory ({e})",
                    top.path().join(rel).display()
                ),
            )
        })?;
        Self::layered(vec![Some(Layer::Dir(root))], vec![Vec::new()])
    }

    fn layered(layers: Vec<Option<Layer>>, removed: Vec<Vec<String>>) -> io::Result<Self> {
        if layers.iter().all(Option::is_none) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let mut src = FixtureSource {
            layers,
            removed,
            statvfs: BTreeMap::new(),
            refusals: Refusals::default(),
        };
        if let Ok(b) = src.read_file("statvfs.json") {
            src.statvfs = serde_json::from_slice(&b).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("statvfs.json: {e}"))
            })?;
        }
        Ok(src)
    }

    /// Whether layer `i` removed `rel` or one of its parent directories.
    fn removed_in(&self, i: usize, rel: &str) -> bool {
        self.removed.get(i).is_some_and(|r| hides(r, rel))
    }

    /// `op` on the topmost layer that has `rel`, unless a layer above removed it. A refusal
    /// (outside the tree, a special file, too large) is final: it never falls through to a
    /// base. A path no layer has gives the plain ENOENT, so an overlay replays
    /// byte-identically.
    fn find<T>(&self, rel: &str, op: impl Fn(&Layer) -> io::Result<T>) -> io::Result<T> {
        let mut last = io::Error::from_raw_os_error(libc::ENOENT);
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(root) = layer {
                match op(root) {
                    // A refusal (outside the tree, a special file, too large) is final; any
                    // other failure (absent here, a file where a directory was) falls through.
                    Err(e) if !super::safe::is_refusal(&e) => last = e,
                    other => return other,
                }
            }
            if self.removed_in(i, rel) {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
        }
        Err(last)
    }

    /// The safe-open primitive through the layers: `rel` beneath a snapshot, a regular file,
    /// capped; what was refused is noted.
    fn read_file(&self, rel: &str) -> io::Result<Vec<u8>> {
        self.refusals.note(
            rel,
            self.find(rel, |r| r.read(rel, super::safe::cap_for(rel))),
        )
    }

    /// A recorded JSON file, `Unsupported` with `what` when it was not recorded.
    fn json_file<T: serde::de::DeserializeOwned>(&self, rel: &str, what: &str) -> io::Result<T> {
        match self.read_file(rel) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(io::Error::new(io::ErrorKind::Unsupported, what.to_string()))
            }
            Err(e) => Err(e),
        }
    }
}

/// A fixture directory, plain or an overlay. An overlay's `meta.json` names a `base` fixture
/// (a sibling directory) and may list `removed` paths (relative to the fixture, e.g.
/// `t1/proc/pressure`); it holds only the files that differ from its base, and every read falls
/// back to the base (and to the base's base). A derived fixture is then a handful of files,
/// and its replay is byte-identical to the full copy it replaces. Every layer is read beneath
/// its own directory (`safe::Root`).
pub struct FixtureTree {
    /// The fixture's directory (its `meta.json`, a plain file even when packed).
    top: super::safe::Root,
    /// The fixture first, then its bases: each a directory or a packed tree
    /// ([`super::packed`]).
    layers: Vec<Layer>,
    /// Per layer: its `removed` paths, relative to the fixture root.
    removed: Vec<Vec<String>>,
}

/// How deep overlays may stack (a loop of bases is an error, not a hang).
const MAX_OVERLAY_DEPTH: usize = 8;

impl FixtureTree {
    pub fn open(dir: &Path) -> io::Result<Self> {
        let mut layers = Vec::new();
        let mut removed = Vec::new();
        let mut cur = dir.to_path_buf();
        loop {
            if layers.len() >= MAX_OVERLAY_DEPTH {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: overlay bases nest deeper than {MAX_OVERLAY_DEPTH}",
                        dir.display()
                    ),
                ));
            }
            let root = super::safe::Root::open(&cur)?;
            let v: serde_json::Value =
                match root.read("meta.json", super::safe::cap_for("meta.json")) {
                    Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: {e}", cur.join("meta.json").display()),
                        )
                    })?,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => serde_json::Value::Null,
                    Err(e) => return Err(e),
                };
            let gone: Vec<String> = v["removed"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            layers.push(Layer::from_root(root)?);
            removed.push(gone);
            let Some(base) = v["base"].as_str() else {
                break;
            };
            // A base is a sibling fixture's plain name (never a path out of fixtures/), and a
            // directory, not a link to one elsewhere.
            let next = cur.parent().unwrap_or(Path::new(".")).join(base);
            let is_dir = next.symlink_metadata().is_ok_and(|m| m.is_dir());
            if base.is_empty() || base.contains('/') || base == "." || base == ".." || !is_dir {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: base {base:?} is not a fixture directory",
                        cur.join("meta.json").display()
                    ),
                ));
            }
            cur = next;
        }
        let top = super::safe::Root::open(dir)?;
        Ok(FixtureTree {
            top,
            layers,
            removed,
        })
    }

    /// Whether this fixture is an overlay of another.
    pub fn is_overlay(&self) -> bool {
        self.layers.len() > 1
    }

    /// The fixture's own `meta.json` (an overlay's is complete: the window is its own).
    pub fn meta(&self) -> io::Result<Vec<u8>> {
        self.top
            .read("meta.json", super::safe::cap_for("meta.json"))
    }

    /// The snapshot `phase` (`t0`, `t1`, `samples/003`) through every layer.
    pub fn phase(&self, phase: &str) -> io::Result<FixtureSource> {
        let prefix = format!("{phase}/");
        let mut layers = Vec::new();
        for l in &self.layers {
            match l.subdir(phase) {
                Ok(root) => layers.push(Some(root)),
                // A snapshot that resolves out of its fixture (a planted symlink) is refused,
                // never quietly replaced by the base's.
                Err(e) if super::safe::is_refusal(&e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "{}: not a snapshot directory ({e})",
                            l.path().join(phase).display()
                        ),
                    ))
                }
                Err(_) => layers.push(None),
            }
        }
        let removed = self
            .removed
            .iter()
            .map(|r| {
                r.iter()
                    .filter_map(|w| {
                        if w == phase {
                            Some(String::new())
                        } else {
                            w.strip_prefix(&prefix).map(String::from)
                        }
                    })
                    .collect()
            })
            .collect();
        FixtureSource::layered(layers, removed)
    }
}

/// Whether a whiteout list hides `rel` (itself or a parent directory).
fn hides(removed: &[String], rel: &str) -> bool {
    removed.iter().any(|w| {
        w.is_empty()
            || rel == w
            || (rel.starts_with(w.as_str()) && rel.as_bytes().get(w.len()) == Some(&b'/'))
    })
}

impl Source for FixtureSource {
    fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        self.read_file(rel)
    }

    fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let mut out = std::collections::BTreeSet::new();
        let mut found: Option<io::Error> = None;
        let mut any = false;
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(root) = layer {
                match root.list(rel) {
                    Ok(names) => {
                        any = true;
                        for n in names {
                            let child = if rel.is_empty() {
                                n.clone()
                            } else {
                                format!("{rel}/{n}")
                            };
                            if !(0..i).any(|j| self.removed_in(j, &child)) {
                                out.insert(n);
                            }
                        }
                    }
                    Err(e) if !super::safe::is_refusal(&e) => {}
                    Err(e) => {
                        found = Some(e);
                        break;
                    }
                }
            }
            if self.removed_in(i, rel) {
                break;
            }
        }
        let r = match (any, found) {
            (_, Some(e)) => Err(e),
            (true, None) => Ok(out.into_iter().collect()),
            (false, None) => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        };
        self.refusals.note(rel, r)
    }

    fn readlink(&self, rel: &str) -> io::Result<String> {
        self.refusals.note(rel, self.find(rel, |r| r.readlink(rel)))
    }

    fn stat_size(&self, rel: &str) -> io::Result<u64> {
        let is_dir = self.refusals.note(rel, self.find(rel, |r| r.is_dir(rel)))?;
        let s = if is_dir {
            // Recorded as a directory because links inside it were read too (see `Recorder`).
            self.read_file(&format!("{}/{DIR_SIZE}", rel.trim_end_matches('/')))?
        } else {
            self.read_file(rel)?
        };
        String::from_utf8_lossy(&s)
            .trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{rel}: not a size")))
    }

    fn statvfs(&self, mount_point: &str) -> io::Result<FsStat> {
        self.statvfs.get(mount_point).copied().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{mount_point}: no statvfs recorded"),
            )
        })
    }

    fn kmsg(&self) -> io::Result<Vec<u8>> {
        self.refusals.note(
            "dev/kmsg",
            self.find("dev/kmsg", |r| {
                r.read("dev/kmsg", super::safe::KMSG_MAX_BYTES)
            }),
        )
    }

    fn refusals(&self) -> Vec<(String, String)> {
        self.refusals.list()
    }

    fn tcp_states(&self) -> io::Result<BTreeMap<String, u64>> {
        self.json_file("sock_diag_tcp.json", "no sock_diag recording")
    }

    fn task_dump(&self) -> io::Result<Vec<u8>> {
        match self.read_file(TASK_DUMP_FILE) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no task dump recorded",
            )),
            r => r,
        }
    }

    fn tcp_listeners(&self) -> io::Result<Vec<super::sockdiag::Listener>> {
        self.json_file("sock_diag_listen.json", "no sock_diag listener recording")
    }

    fn tcp_port_use(&self, _range: (u16, u16)) -> io::Result<super::sockdiag::PortUseDump> {
        self.json_file("sock_diag_ports.json", "no sock_diag port-use recording")
    }

    fn qdiscs(&self) -> io::Result<Vec<super::qdisc::Qdisc>> {
        self.json_file("qdisc.json", "no qdisc recording")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn recorded_reads_replay_identically() {
        let sys = tempfile::tempdir().unwrap();
        let rec = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(sys.path().join("proc/42")).unwrap();
        std::fs::write(sys.path().join("proc/loadavg"), "0.5 0.4 0.3 1/80 99\n").unwrap();
        std::fs::write(sys.path().join("proc/42/stat"), "42 (x) S 1").unwrap();
        std::os::unix::fs::symlink("net:[4026531840]", sys.path().join("proc/42/net")).unwrap();

        let out = std::sync::Arc::new(super::super::outdir::OutDir::create(rec.path()).unwrap());
        let live = LiveSource::new(sys.path()).with_recorder(out);
        live.set_phase("t1");
        let a = live.read_string("proc/loadavg").unwrap();
        let b = live.read_kept_string("proc/42/stat").unwrap();
        let l = live.readlink("proc/42/net").unwrap();
        let vfs = live.statvfs("/").unwrap();
        live.flush_recording().unwrap();

        let fx = FixtureSource::open(rec.path().join("t1")).unwrap();
        assert_eq!(fx.read_string("proc/loadavg").unwrap(), a);
        assert_eq!(fx.read_string("proc/42/stat").unwrap(), b);
        assert_eq!(fx.readlink("proc/42/net").unwrap(), l);
        assert_eq!(fx.statvfs("/").unwrap(), vfs);
        assert!(fx.read("proc/missing").is_err());
    }

    /// `/proc/PID/fd` read both as a size (fd count) and as links (a listener's owner).
    #[test]
    fn a_directory_recorded_as_size_and_links_replays_both() {
        let sys = tempfile::tempdir().unwrap();
        let rec = tempfile::tempdir().unwrap();
        let fd = sys.path().join("proc/42/fd");
        std::fs::create_dir_all(&fd).unwrap();
        std::os::unix::fs::symlink("socket:[777]", fd.join("3")).unwrap();
        let out = std::sync::Arc::new(super::super::outdir::OutDir::create(rec.path()).unwrap());
        let live = LiveSource::new(sys.path()).with_recorder(out);
        live.set_phase("t1");
        let size = live.stat_size("proc/42/fd").unwrap();
        let link = live.readlink("proc/42/fd/3").unwrap();
        // And a size recorded after the links.
        let size2 = live.stat_size("proc/42/fd").unwrap();
        let fx = FixtureSource::open(rec.path().join("t1")).unwrap();
        assert_eq!(fx.stat_size("proc/42/fd").unwrap(), size);
        assert_eq!(size, size2);
        assert_eq!(fx.readlink("proc/42/fd/3").unwrap(), link);
        assert_eq!(link, "socket:[777]");
    }

    /// Qdiscs come from rtnetlink (our own namespace): a `--root` that is not `/` cannot ask
    /// for them; a recording replays them; a fixture without one answers `Unsupported`.
    #[test]
    fn qdiscs_live_under_root_recorded_and_replayed() {
        let sys = tempfile::tempdir().unwrap();
        let e = LiveSource::new(sys.path()).qdiscs().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        let rec = tempfile::tempdir().unwrap();
        let out = std::sync::Arc::new(super::super::outdir::OutDir::create(rec.path()).unwrap());
        let live = LiveSource::new("/").with_recorder(out);
        live.set_phase("t1");
        let q = live.qdiscs().unwrap();
        assert!(q.iter().any(|q| q.interface == "lo"), "{q:?}");
        let fx = FixtureSource::open(rec.path().join("t1")).unwrap();
        assert_eq!(fx.qdiscs().unwrap(), q);
        let empty = tempfile::tempdir().unwrap();
        let none = FixtureSource::open(empty.path())
            .unwrap()
            .qdiscs()
            .unwrap_err();
        assert_eq!(none.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn kept_file_rereads_new_content() {
        let sys = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(sys.path().join("proc")).unwrap();
        let p = sys.path().join("proc/counter");
        std::fs::write(&p, "1").unwrap();
        let live = LiveSource::new(sys.path());
        assert_eq!(live.read_kept_string("proc/counter").unwrap(), "1");
        // Rewriting in place keeps the inode, as a proc file does.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .write_all_at(b"22", 0)
            .unwrap();
        assert_eq!(live.read_kept_string("proc/counter").unwrap(), "22");
    }

    /// An overlay answers with its own files, falls back to its base, hides what it removed,
    /// and refuses a base that is a path.
    #[test]
    fn overlay_falls_back_to_its_base_and_hides_removed_paths() {
        let fx = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| crate::host::write_test_file(fx.path(), rel, text);
        w("base/meta.json", "{}");
        w("base/t1/proc/loadavg", "base");
        w("base/t1/proc/stat", "base stat");
        w("base/t1/proc/pressure/cpu", "psi");
        w("base/t1/proc/7/stat", "7");
        w("base/samples/000/proc/stat", "s0");
        w(
            "over/meta.json",
            r#"{"base": "base", "removed": ["t1/proc/pressure", "t1/proc/7"]}"#,
        );
        w("over/t1/proc/loadavg", "over");
        w("over/t1/proc/8/stat", "8");
        let tree = FixtureTree::open(&fx.path().join("over")).unwrap();
        assert!(tree.is_overlay());
        let t1 = tree.phase("t1").unwrap();
        assert_eq!(t1.read_string("proc/loadavg").unwrap(), "over");
        assert_eq!(t1.read_string("proc/stat").unwrap(), "base stat");
        let gone = t1.read("proc/pressure/cpu").unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(libc::ENOENT));
        let mut procs = t1.list("proc").unwrap();
        procs.sort();
        assert_eq!(procs, ["8", "loadavg", "stat"]);
        // A phase only the base has.
        let s0 = tree.phase("samples/000").unwrap();
        assert_eq!(s0.read_string("proc/stat").unwrap(), "s0");
        assert_eq!(tree.phase("samples").unwrap().list("").unwrap(), ["000"]);
        // A base must be a sibling's name.
        w("evil/meta.json", r#"{"base": "../../etc"}"#);
        assert!(FixtureTree::open(&fx.path().join("evil")).is_err());
        // A loop of bases ends in an error.
        w("a/meta.json", r#"{"base": "b"}"#);
        w("b/meta.json", r#"{"base": "a"}"#);
        assert!(FixtureTree::open(&fx.path().join("a")).is_err());
    }

    /// An overlay whose base is packed (`tree.tar` beside `meta.json`) replays as with the base
    /// unpacked: every snapshot file, listing, link and size the same.
    #[test]
    fn an_overlay_of_a_packed_base_reads_as_of_its_directory() {
        let fx = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| crate::host::write_test_file(fx.path(), rel, text);
        w("base/meta.json", "{}");
        w("base/t1/proc/loadavg", "base");
        w("base/t1/proc/stat", "base stat");
        w("base/t1/proc/pressure/cpu", "psi");
        w("base/t1/proc/7/fd/.size", "3\n");
        w(
            "base/t1/statvfs.json",
            r#"{"/": {"block_size": 4096, "blocks": 10, "blocks_free": 5, "blocks_avail": 4, "files": 9, "files_free": 8, "read_only": false}}"#,
        );
        std::os::unix::fs::symlink("net:[1]", fx.path().join("base/t1/proc/7/net")).unwrap();
        std::os::unix::fs::symlink("socket:[9]", fx.path().join("base/t1/proc/7/fd/3")).unwrap();
        w("base/samples/000/proc/stat", "s0");
        let tar = super::super::packed::tests::tar_dir(&fx.path().join("base"));
        w("packed/meta.json", "{}");
        std::fs::write(fx.path().join("packed/tree.tar"), tar).unwrap();
        for (over, base) in [("over", "base"), ("over-p", "packed")] {
            w(
                &format!("{over}/meta.json"),
                &format!(r#"{{"base": "{base}", "removed": ["t1/proc/pressure"]}}"#),
            );
            w(&format!("{over}/t1/proc/loadavg"), "over");
        }
        let a = FixtureTree::open(&fx.path().join("over")).unwrap();
        let b = FixtureTree::open(&fx.path().join("over-p")).unwrap();
        assert!(b.meta().unwrap().starts_with(br#"{"base": "packed""#));
        let (a1, b1) = (a.phase("t1").unwrap(), b.phase("t1").unwrap());
        for p in [
            "proc/loadavg",
            "proc/stat",
            "proc/pressure/cpu",
            "proc/nope",
        ] {
            assert_eq!(
                format!("{:?}", a1.read(p)),
                format!("{:?}", b1.read(p)),
                "{p}"
            );
        }
        assert_eq!(b1.read_string("proc/stat").unwrap(), "base stat");
        assert_eq!(b1.read_string("proc/loadavg").unwrap(), "over");
        assert_eq!(a1.list("proc").unwrap(), b1.list("proc").unwrap());
        assert_eq!(b1.list("proc").unwrap(), ["7", "loadavg", "stat"]);
        assert_eq!(b1.readlink("proc/7/net").unwrap(), "net:[1]");
        assert_eq!(b1.stat_size("proc/7/fd").unwrap(), 3);
        assert_eq!(a1.statvfs("/").unwrap(), b1.statvfs("/").unwrap());
        let (a0, b0) = (
            a.phase("samples/000").unwrap(),
            b.phase("samples/000").unwrap(),
        );
        assert_eq!(b0.read_string("proc/stat").unwrap(), "s0");
        assert_eq!(a0.read("proc/stat").unwrap(), b0.read("proc/stat").unwrap());
        assert_eq!(
            a.phase("samples").unwrap().list("").unwrap(),
            b.phase("samples").unwrap().list("").unwrap()
        );
    }
}
