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
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

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

/// The running system, rooted at `base` (normally `/`), optionally recording what it reads.
pub struct LiveSource {
    base: PathBuf,
    kept: Mutex<HashMap<String, File>>,
    /// Files we may keep open at once: stays well under RLIMIT_NOFILE.
    kept_cap: usize,
    recorder: Option<Recorder>,
}

impl LiveSource {
    pub fn new(base: impl Into<PathBuf>) -> Self {
        let kept_cap = raise_nofile_limit().saturating_sub(64) as usize;
        LiveSource {
            base: base.into(),
            kept: Mutex::new(HashMap::new()),
            kept_cap,
            recorder: None,
        }
    }

    /// Record every reading into `dir/<phase>/...` from now on.
    pub fn with_recorder(mut self, dir: impl Into<PathBuf>) -> Self {
        self.recorder = Some(Recorder::new(dir.into()));
        self
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
fn read_all(f: &File) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let n = (&*f).read(&mut buf[len..])?;
        len += n;
        if n == 0 || len < buf.len() {
            break;
        }
        buf.resize(buf.len() * 2, 0);
    }
    buf.truncate(len);
    Ok(buf)
}

/// Re-read a kept file from offset 0. A read that does not fill the buffer has everything:
/// asking again at a non-zero offset would make a seq_file (every /proc file) regenerate the
/// whole text just to skip it, doubling the cost of the re-read.
fn pread_all(f: &File) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let n = f.read_at(&mut buf[len..], len as u64)?;
        len += n;
        if n == 0 || len < buf.len() {
            break;
        }
        buf.resize(buf.len() * 2, 0);
    }
    buf.truncate(len);
    Ok(buf)
}

impl Source for LiveSource {
    fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        let data = std::fs::read(self.path(rel))?;
        self.record(rel, &data);
        Ok(data)
    }

    fn read_kept(&self, rel: &str) -> io::Result<Vec<u8>> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let data = if let Some(f) = kept.get(rel) {
            let r = pread_all(f);
            if r.is_err() {
                kept.remove(rel);
            }
            r?
        } else {
            let f = File::open(self.path(rel))?;
            let data = read_all(&f)?;
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
        list_dir(&self.path(rel))
    }

    fn readlink(&self, rel: &str) -> io::Result<String> {
        let t = std::fs::read_link(self.path(rel))?;
        let t = t.to_string_lossy().into_owned();
        if let Some(r) = &self.recorder {
            r.link(rel, &t);
        }
        Ok(t)
    }

    fn stat_size(&self, rel: &str) -> io::Result<u64> {
        let size = std::fs::metadata(self.path(rel))?.len();
        self.record(rel, format!("{size}\n").as_bytes());
        Ok(size)
    }

    fn statvfs(&self, mount_point: &str) -> io::Result<FsStat> {
        let p = self.base.join(mount_point.trim_start_matches('/'));
        let s = rustix::fs::statvfs(&p).map_err(io::Error::from)?;
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
        let data = read_kmsg_nonblocking(&self.path("dev/kmsg"))?;
        self.record("dev/kmsg", &data);
        Ok(data)
    }

    fn tcp_states(&self) -> io::Result<BTreeMap<String, u64>> {
        if self.base != Path::new("/") {
            // Netlink answers for our own namespace, not for the system under --root.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "sock_diag with --root",
            ));
        }
        let counts: BTreeMap<String, u64> = super::sockdiag::tcp_states()?
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        self.record(
            "sock_diag_tcp.json",
            &serde_json::to_vec_pretty(&counts).unwrap_or_default(),
        );
        Ok(counts)
    }

    fn tcp_listeners(&self) -> io::Result<Vec<super::sockdiag::Listener>> {
        if self.base != Path::new("/") {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "sock_diag with --root",
            ));
        }
        let l = super::sockdiag::tcp_listeners()?;
        self.record(
            "sock_diag_listen.json",
            &serde_json::to_vec_pretty(&l).unwrap_or_default(),
        );
        Ok(l)
    }

    fn tcp_port_use(&self, range: (u16, u16)) -> io::Result<super::sockdiag::PortUseDump> {
        if self.base != Path::new("/") {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "sock_diag with --root",
            ));
        }
        let p = super::sockdiag::tcp_port_use(range)?;
        self.record(
            "sock_diag_ports.json",
            &serde_json::to_vec_pretty(&p).unwrap_or_default(),
        );
        Ok(p)
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
fn read_kmsg_nonblocking(path: &Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    // A regular file (a recorded log) simply ends; the device ends with EAGAIN.
    for _ in 0..1_000_000 {
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
    dir: PathBuf,
    phase: Mutex<String>,
    statvfs: Mutex<BTreeMap<String, FsStat>>,
}

impl Recorder {
    fn new(dir: PathBuf) -> Self {
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

    fn target(&self, rel: &str) -> PathBuf {
        let phase = self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.dir.join(phase).join(rel)
    }

    fn file(&self, rel: &str, data: &[u8]) {
        let mut t = self.target(rel);
        if t.is_dir() {
            // The size of a directory whose entries were recorded too (`/proc/PID/fd`).
            t = t.join(DIR_SIZE);
        }
        if let Some(p) = t.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        // A recording that cannot be written is a capture problem, not a reason to stop the
        // report: the capture command checks the tree afterwards.
        let _ = std::fs::write(t, data);
    }

    fn link(&self, rel: &str, target: &str) {
        let t = self.target(rel);
        if let Some(p) = t.parent().filter(|p| p.is_file()) {
            // A directory recorded first as its size (`stat_size` of /proc/PID/fd), now with a
            // link inside: it becomes a directory holding its size in `DIR_SIZE`.
            let size = std::fs::read(p).unwrap_or_default();
            let _ = std::fs::remove_file(p);
            let _ = std::fs::create_dir_all(p);
            let _ = std::fs::write(p.join(DIR_SIZE), size);
        }
        if let Some(p) = t.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        let _ = std::fs::remove_file(&t);
        let _ = std::os::unix::fs::symlink(OsStr::from_bytes(target.as_bytes()), t);
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
        if let Some(p) = t.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::write(t, serde_json::to_vec_pretty(&*map)?)?;
        map.clear();
        Ok(())
    }
}

/// One recorded snapshot directory (`fixtures/NAME/t1`).
pub struct FixtureSource {
    /// The snapshot directory of each layer, the overlay first (one layer for a plain fixture).
    dirs: Vec<PathBuf>,
    /// Per layer: paths (relative to the snapshot) it removed from the layers below it.
    removed: Vec<Vec<String>>,
    statvfs: BTreeMap<String, FsStat>,
}

impl FixtureSource {
    /// One snapshot directory (`t0/`, `t1/`, `samples/NNN/`) of a plain fixture.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        Self::layered(vec![dir.into()], vec![Vec::new()])
    }

    /// A snapshot seen through overlay layers: `dirs[0]` first, then each base in turn, with
    /// `removed[i]` hiding paths of the layers below layer `i`.
    fn layered(dirs: Vec<PathBuf>, removed: Vec<Vec<String>>) -> io::Result<Self> {
        if !dirs.iter().any(|d| d.is_dir()) {
            let first = dirs.first().map(|d| d.display().to_string());
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: not a snapshot directory", first.unwrap_or_default()),
            ));
        }
        let mut src = FixtureSource {
            dirs,
            removed,
            statvfs: BTreeMap::new(),
        };
        if let Some(p) = src.locate("statvfs.json") {
            let b = std::fs::read(&p)?;
            src.statvfs = serde_json::from_slice(&b).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", p.display()))
            })?;
        }
        Ok(src)
    }

    /// Whether layer `i` removed `rel` or one of its parent directories.
    fn removed_in(&self, i: usize, rel: &str) -> bool {
        self.removed.get(i).is_some_and(|r| hides(r, rel))
    }

    /// The path that answers for `rel`: the topmost layer holding it, unless a layer above
    /// removed it.
    fn locate(&self, rel: &str) -> Option<PathBuf> {
        for (i, d) in self.dirs.iter().enumerate() {
            let p = d.join(rel);
            if p.symlink_metadata().is_ok() {
                return Some(p);
            }
            if self.removed_in(i, rel) {
                return None;
            }
        }
        None
    }

    fn path(&self, rel: &str) -> io::Result<PathBuf> {
        // The same error a plain directory gives, so an overlay replays byte-identically.
        self.locate(rel)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    /// A recorded JSON file, `Unsupported` with `what` when it was not recorded.
    fn json_file<T: serde::de::DeserializeOwned>(&self, rel: &str, what: &str) -> io::Result<T> {
        match self.locate(rel) {
            Some(p) => serde_json::from_slice(&std::fs::read(p)?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            None => Err(io::Error::new(io::ErrorKind::Unsupported, what.to_string())),
        }
    }
}

/// A fixture directory, plain or an overlay. An overlay's `meta.json` names a `base` fixture
/// (a sibling directory) and may list `removed` paths (relative to the fixture, e.g.
/// `t1/proc/pressure`); it holds only the files that differ from its base, and every read falls
/// back to the base (and to the base's base). A derived fixture is then a handful of files,
/// and its replay is byte-identical to the full copy it replaces.
#[derive(Debug, Clone)]
pub struct FixtureTree {
    /// The fixture first, then its bases.
    layers: Vec<PathBuf>,
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
            let meta = cur.join("meta.json");
            let v: serde_json::Value = match std::fs::read(&meta) {
                Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", meta.display()),
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
            layers.push(cur.clone());
            removed.push(gone);
            let Some(base) = v["base"].as_str() else {
                break;
            };
            // A base is a sibling fixture's plain name: never a path out of fixtures/.
            if base.is_empty() || base.contains('/') || base == "." || base == ".." {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: base {base:?} is not a fixture name", meta.display()),
                ));
            }
            cur = cur.parent().unwrap_or(Path::new(".")).join(base);
        }
        Ok(FixtureTree { layers, removed })
    }

    /// Whether this fixture is an overlay of another.
    pub fn is_overlay(&self) -> bool {
        self.layers.len() > 1
    }

    /// The snapshot `phase` (`t0`, `t1`, `samples/003`) through every layer.
    pub fn phase(&self, phase: &str) -> io::Result<FixtureSource> {
        let prefix = format!("{phase}/");
        let dirs = self.layers.iter().map(|l| l.join(phase)).collect();
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
        FixtureSource::layered(dirs, removed)
    }
}

/// Whether a whiteout list hides `rel` (itself or a parent directory).
fn hides(removed: &[String], rel: &str) -> bool {
    removed.iter().any(|w| {
        rel == w || (rel.starts_with(w.as_str()) && rel.as_bytes().get(w.len()) == Some(&b'/'))
    })
}

impl Source for FixtureSource {
    fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(rel)?)
    }

    fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let mut out = std::collections::BTreeSet::new();
        let mut found = false;
        for (i, d) in self.dirs.iter().enumerate() {
            if let Ok(names) = list_dir(&d.join(rel)) {
                found = true;
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
            if self.removed_in(i, rel) {
                break;
            }
        }
        if !found {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(out.into_iter().collect())
    }

    fn readlink(&self, rel: &str) -> io::Result<String> {
        Ok(std::fs::read_link(self.path(rel)?)?
            .to_string_lossy()
            .into_owned())
    }

    fn stat_size(&self, rel: &str) -> io::Result<u64> {
        let mut p = self.path(rel)?;
        if p.is_dir() {
            // Recorded as a directory because links inside it were read too (see `Recorder`).
            p = self.path(&format!("{rel}/{DIR_SIZE}"))?;
        }
        let s = std::fs::read_to_string(p)?;
        s.trim()
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
        std::fs::read(self.path("dev/kmsg")?)
    }

    fn tcp_states(&self) -> io::Result<BTreeMap<String, u64>> {
        self.json_file("sock_diag_tcp.json", "no sock_diag recording")
    }

    fn tcp_listeners(&self) -> io::Result<Vec<super::sockdiag::Listener>> {
        self.json_file("sock_diag_listen.json", "no sock_diag listener recording")
    }

    fn tcp_port_use(&self, _range: (u16, u16)) -> io::Result<super::sockdiag::PortUseDump> {
        self.json_file("sock_diag_ports.json", "no sock_diag port-use recording")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_reads_replay_identically() {
        let sys = tempfile::tempdir().unwrap();
        let rec = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(sys.path().join("proc/42")).unwrap();
        std::fs::write(sys.path().join("proc/loadavg"), "0.5 0.4 0.3 1/80 99\n").unwrap();
        std::fs::write(sys.path().join("proc/42/stat"), "42 (x) S 1").unwrap();
        std::os::unix::fs::symlink("net:[4026531840]", sys.path().join("proc/42/net")).unwrap();

        let live = LiveSource::new(sys.path()).with_recorder(rec.path());
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
        let live = LiveSource::new(sys.path()).with_recorder(rec.path());
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
        let w = |rel: &str, text: &str| {
            let p = fx.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
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
}
