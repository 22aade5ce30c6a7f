//! Packed fixtures: a recording's tree stored as one archive, `fixtures/NAME/tree.tar` (plain
//! tar), beside its `meta.json` (kept a plain file: overlays, humans and tools read it).
//!
//! A fixture directory is read as a [`Layer`]: either the directory itself (through
//! [`safe::Root`]) or, when it holds `tree.tar`, the archive loaded into memory. Both answer
//! the reads a fixture source makes (read, list, readlink, is-a-directory, a snapshot beneath)
//! with the same results and the same errors, so a packed recording replays byte-identically.
//!
//! The archive is untrusted input, like a fixture directory: at most [`MAX_ARCHIVE_BYTES`]
//! bytes and [`MAX_ENTRIES`] entries; absolute paths, `..` components, hard links, devices,
//! FIFOs and duplicate paths are rejected with a message naming the entry. Symlinks are kept as
//! their link text (fixtures record `/proc/PID/ns/net` as one) and resolved as `openat2(...,
//! RESOLVE_BENEATH)` resolves them in a directory layer: inside the snapshot only; an absolute
//! target or a `..` above the snapshot is a refusal ([`safe::is_refusal`]).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::safe::{self, Refused, Root};

/// The archive of a packed fixture, beside its `meta.json`.
pub const TREE_FILE: &str = "tree.tar";
/// Largest archive read (it is held in memory whole; the largest recording is a few MiB).
pub const MAX_ARCHIVE_BYTES: usize = 512 << 20;
/// Most entries in one archive (the largest recording has under 2,000).
pub const MAX_ENTRIES: usize = 200_000;
/// Symlinks followed in one path at most (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// One entry of a packed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File(Vec<u8>),
    /// A symlink's text (never followed out of the tree).
    Link(String),
    Dir,
}

/// A whole archive in memory, by path relative to the fixture (`t1/proc/stat`).
#[derive(Debug)]
pub struct Packed {
    entries: BTreeMap<String, Entry>,
    /// The archive's path, for messages.
    path: PathBuf,
}

fn invalid(path: &Path, msg: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {msg}", path.display()),
    )
}

fn errno(n: i32) -> io::Error {
    io::Error::from_raw_os_error(n)
}

/// The same refusal as [`safe`]'s for a path leaving the tree.
fn escape() -> io::Error {
    io::Error::other(Refused(
        "the path resolves outside the directory (symlink or ..)".into(),
    ))
}

/// An archive member's path as a key (`t1/proc/stat`): relative, no `..`, UTF-8.
fn key_of(p: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(
                s.to_str()
                    .ok_or_else(|| format!("{}: the name is not UTF-8", p.display()))?,
            ),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("{}: a `..` component", p.display())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{}: an absolute path", p.display()))
            }
        }
    }
    Ok(parts.join("/"))
}

impl Packed {
    /// Parse an archive held in memory, at most `max_entries` entries.
    pub fn parse(bytes: &[u8], path: &Path, max_entries: usize) -> io::Result<Packed> {
        use tar::EntryType as T;
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        let mut ar = tar::Archive::new(bytes);
        let mut n = 0usize;
        for e in ar.entries().map_err(|e| invalid(path, e))? {
            let mut e = e.map_err(|e| invalid(path, format!("not a tar archive ({e})")))?;
            n += 1;
            if n > max_entries {
                return Err(invalid(path, format!("more than {max_entries} entries")));
            }
            let raw = e.path().map_err(|e| invalid(path, e))?.into_owned();
            let key = key_of(&raw).map_err(|m| invalid(path, m))?;
            let kind = e.header().entry_type();
            let entry = match kind {
                T::Regular | T::Continuous => {
                    let mut b = Vec::new();
                    io::Read::read_to_end(&mut e, &mut b).map_err(|e| invalid(path, e))?;
                    Entry::File(b)
                }
                T::Directory => Entry::Dir,
                T::Symlink => {
                    let t = e
                        .link_name()
                        .map_err(|e| invalid(path, e))?
                        .ok_or_else(|| {
                            invalid(path, format!("{key}: a symlink without a target"))
                        })?;
                    let t = t
                        .to_str()
                        .ok_or_else(|| invalid(path, format!("{key}: a link target not UTF-8")))?;
                    Entry::Link(t.to_string())
                }
                T::Link => {
                    return Err(invalid(path, format!("{key}: a hard link is not accepted")))
                }
                T::Char | T::Block => {
                    return Err(invalid(path, format!("{key}: a device is not accepted")))
                }
                T::Fifo => return Err(invalid(path, format!("{key}: a FIFO is not accepted"))),
                other => {
                    return Err(invalid(
                        path,
                        format!("{key}: entry type {other:?} is not accepted"),
                    ))
                }
            };
            if key.is_empty() {
                if entry == Entry::Dir {
                    continue;
                }
                return Err(invalid(path, "an entry with an empty path"));
            }
            // Every parent is a directory (created when the archive does not list it).
            let mut at = 0;
            while let Some(i) = key[at..].find('/') {
                let parent = &key[..at + i];
                match entries.get(parent) {
                    None => {
                        entries.insert(parent.to_string(), Entry::Dir);
                    }
                    Some(Entry::Dir) => {}
                    Some(_) => {
                        return Err(invalid(
                            path,
                            format!("{key}: its parent {parent} is not a directory"),
                        ))
                    }
                }
                at += i + 1;
            }
            match entries.get(&key) {
                None => {
                    entries.insert(key, entry);
                }
                Some(Entry::Dir) if entry == Entry::Dir => {}
                Some(_) => return Err(invalid(path, format!("{key}: a duplicate entry"))),
            }
        }
        Ok(Packed {
            entries,
            path: path.to_path_buf(),
        })
    }

    /// The archive `dir/tree.tar` opened through the safe reader of `dir` (a regular file
    /// beneath it), at most [`MAX_ARCHIVE_BYTES`]. The last archive parsed is kept, by the
    /// identity of its file (device, inode, size, mtime): a replay that reads the fixture, then
    /// its probe output (`read_in`), parses it once.
    fn load(root: &Root, f: std::fs::File) -> io::Result<Arc<Packed>> {
        type Key = (u64, u64, i64, i64, u64);
        static LAST: std::sync::Mutex<Option<(Key, Arc<Packed>)>> = std::sync::Mutex::new(None);
        let st = rustix::fs::fstat(&f)?;
        let key: Key = (
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime,
            st.st_mtime_nsec as u64,
        );
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, p)) = &*last {
            if *k == key {
                return Ok(p.clone());
            }
        }
        let p = Arc::new(Packed::read(root, f)?);
        *last = Some((key, p.clone()));
        Ok(p)
    }

    fn read(root: &Root, f: std::fs::File) -> io::Result<Packed> {
        let path = root.path().join(TREE_FILE);
        let bytes = safe::read_capped(&f, MAX_ARCHIVE_BYTES).map_err(|e| {
            if safe::is_refusal(&e) {
                invalid(&path, format!("larger than {MAX_ARCHIVE_BYTES} bytes"))
            } else {
                io::Error::new(e.kind(), format!("{}: {e}", path.display()))
            }
        })?;
        Packed::parse(&bytes, &path, MAX_ENTRIES)
    }

    /// Every entry, by path relative to the fixture.
    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }
}

/// A directory of a packed tree (the fixture, or one snapshot of it: `t1`), read as a
/// [`safe::Root`] reads a directory: nothing resolves above it.
#[derive(Debug, Clone)]
pub struct View {
    tree: Arc<Packed>,
    /// The directory's key (`""` for the fixture, `t1`, `samples/003`).
    base: String,
}

impl View {
    fn full(&self, parts: &[String]) -> String {
        let mut k = self.base.clone();
        for p in parts {
            if !k.is_empty() {
                k.push('/');
            }
            k.push_str(p);
        }
        k
    }

    /// The key `rel` resolves to beneath this view, and its entry (`None`: the view itself).
    /// Symlinks are followed inside the view.
    fn resolve(&self, rel: &str) -> io::Result<(String, Option<&Entry>)> {
        let mut stack: Vec<String> = Vec::new();
        let mut pending: VecDeque<String> = rel.split('/').map(str::to_string).collect();
        let mut links = 0;
        let mut found: Option<&Entry> = None;
        while let Some(c) = pending.pop_front() {
            if c.is_empty() || c == "." {
                continue;
            }
            if c == ".." {
                if stack.pop().is_none() {
                    return Err(escape());
                }
                found = Some(&Entry::Dir);
                continue;
            }
            let last = pending.iter().all(|p| p.is_empty() || p == ".");
            // `a/file/` and `a/file/.` name a directory.
            let need_dir = !last || !pending.is_empty();
            let mut parts = stack.clone();
            parts.push(c.clone());
            let key = self.full(&parts);
            match self.tree.entries.get(&key) {
                None => return Err(errno(libc::ENOENT)),
                Some(Entry::Link(t)) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(errno(libc::ELOOP));
                    }
                    if t.starts_with('/') {
                        return Err(escape());
                    }
                    for (i, part) in t.split('/').enumerate() {
                        pending.insert(i, part.to_string());
                    }
                    continue;
                }
                Some(e @ Entry::Dir) => found = Some(e),
                Some(_) if need_dir => return Err(errno(libc::ENOTDIR)),
                Some(e) => found = Some(e),
            }
            stack.push(c);
        }
        if stack.is_empty() {
            found = None;
        }
        Ok((self.full(&stack), found))
    }

    fn dir_key(&self, rel: &str) -> io::Result<String> {
        match self.resolve(rel)? {
            (k, None | Some(Entry::Dir)) => Ok(k),
            _ => Err(errno(libc::ENOTDIR)),
        }
    }

    /// The content of a regular file, at most `cap` bytes (a longer one is refused).
    pub fn read(&self, rel: &str, cap: usize) -> io::Result<Vec<u8>> {
        match self.resolve(rel)? {
            (_, Some(Entry::File(b))) if b.len() > cap => Err(io::Error::other(Refused(format!(
                "larger than {cap} bytes"
            )))),
            (_, Some(Entry::File(b))) => Ok(b.clone()),
            (_, None | Some(Entry::Dir)) => Err(errno(libc::EISDIR)),
            (_, Some(Entry::Link(_))) => Err(errno(libc::ELOOP)),
        }
    }

    /// Names in a directory (sorted).
    pub fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let key = self.dir_key(rel)?;
        let prefix = if key.is_empty() {
            String::new()
        } else {
            format!("{key}/")
        };
        let mut out = Vec::new();
        for k in self.tree.entries.range(prefix.clone()..).map(|(k, _)| k) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            if !rest.is_empty() && !rest.contains('/') {
                out.push(rest.to_string());
            }
        }
        Ok(out)
    }

    /// The text of a symlink (not followed).
    pub fn readlink(&self, rel: &str) -> io::Result<String> {
        let rel = rel.trim_matches('/');
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        if name.is_empty() || name == "." || name == ".." {
            return Err(errno(libc::EINVAL));
        }
        let dir = self.dir_key(parent)?;
        let key = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        match self.tree.entries.get(&key) {
            Some(Entry::Link(t)) => Ok(t.clone()),
            Some(_) => Err(errno(libc::EINVAL)),
            None => Err(errno(libc::ENOENT)),
        }
    }

    /// Whether `rel` resolves to a directory.
    pub fn is_dir(&self, rel: &str) -> io::Result<bool> {
        Ok(matches!(self.resolve(rel)?, (_, None | Some(Entry::Dir))))
    }

    /// A directory beneath this one, as a view of its own (`t1`).
    pub fn subdir(&self, rel: &str) -> io::Result<View> {
        Ok(View {
            tree: self.tree.clone(),
            base: self.dir_key(rel)?,
        })
    }

    /// The directory's path for messages (`fixtures/NAME/tree.tar/t1`).
    pub fn path(&self) -> PathBuf {
        self.tree.path.join(&self.base)
    }
}

/// One layer of a fixture: its directory, or its packed tree.
pub enum Layer {
    Dir(Root),
    Packed(View),
}

impl Layer {
    /// The fixture directory `dir` as a layer: packed when it holds `tree.tar` (then nothing
    /// but `meta.json` may be beside it), else the directory.
    pub fn open(dir: &Path) -> io::Result<Layer> {
        Layer::from_root(Root::open(dir)?)
    }

    /// [`Layer::open`] of a directory already opened.
    pub fn from_root(root: Root) -> io::Result<Layer> {
        match root.open_file(TREE_FILE) {
            Ok(f) => {
                let stray: Vec<String> = root
                    .list(".")?
                    .into_iter()
                    .filter(|n| n != TREE_FILE && n != "meta.json")
                    .collect();
                if !stray.is_empty() {
                    return Err(invalid(
                        root.path(),
                        format!(
                            "holds {TREE_FILE} and also {} (unpack it, or pack it again)",
                            stray.join(", ")
                        ),
                    ));
                }
                Ok(Layer::Packed(View {
                    tree: Packed::load(&root, f)?,
                    base: String::new(),
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Layer::Dir(root)),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("{}: {e}", root.path().join(TREE_FILE).display()),
            )),
        }
    }

    pub fn read(&self, rel: &str, cap: usize) -> io::Result<Vec<u8>> {
        match self {
            Layer::Dir(r) => r.read(rel, cap),
            Layer::Packed(v) => v.read(rel, cap),
        }
    }

    pub fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        match self {
            Layer::Dir(r) => r.list(rel),
            Layer::Packed(v) => v.list(rel),
        }
    }

    pub fn readlink(&self, rel: &str) -> io::Result<String> {
        match self {
            Layer::Dir(r) => r.readlink(rel),
            Layer::Packed(v) => v.readlink(rel),
        }
    }

    /// Whether `rel` resolves (following links beneath the layer) to a directory.
    pub fn is_dir(&self, rel: &str) -> io::Result<bool> {
        match self {
            Layer::Dir(r) => Ok(rustix::fs::FileType::from_raw_mode(r.stat(rel)?.st_mode)
                == rustix::fs::FileType::Directory),
            Layer::Packed(v) => v.is_dir(rel),
        }
    }

    pub fn subdir(&self, rel: &str) -> io::Result<Layer> {
        Ok(match self {
            Layer::Dir(r) => Layer::Dir(r.subdir(rel)?),
            Layer::Packed(v) => Layer::Packed(v.subdir(rel)?),
        })
    }

    pub fn path(&self) -> PathBuf {
        match self {
            Layer::Dir(r) => r.path().to_path_buf(),
            Layer::Packed(v) => v.path(),
        }
    }
}

/// Read one file of a fixture directory (`probes/offcpu.json`), packed or not, beneath it and
/// capped; `meta.json` is always the plain file beside the archive.
pub fn read_in(dir: &Path, rel: &str) -> io::Result<Vec<u8>> {
    let root = Root::open(dir)?;
    if rel.trim_start_matches('/') == "meta.json" {
        return root.read(rel, safe::cap_for(rel));
    }
    Layer::from_root(root)?.read(rel, safe::cap_for(rel))
}

/// Write a packed fixture `dir` out as a plain directory `out` (created; it must not exist):
/// `meta.json` and the archive's tree (for tests and tools that edit fixture files). A fixture
/// that is not packed is an error. Returns the entries written.
pub fn unpack(dir: &Path, out: &Path) -> io::Result<usize> {
    let root = Root::open(dir)?;
    let Layer::Packed(view) = Layer::from_root(Root::open(dir)?)? else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a packed fixture", dir.display()),
        ));
    };
    std::fs::create_dir(out)?;
    if let Ok(meta) = root.read("meta.json", safe::cap_for("meta.json")) {
        std::fs::write(out.join("meta.json"), meta)?;
    }
    // Sorted: a directory comes before what it holds, and every path was checked (no `..`,
    // nothing absolute), so nothing is written through a link.
    for (key, e) in &view.tree.entries {
        let p = out.join(key);
        match e {
            Entry::Dir => std::fs::create_dir(&p)?,
            Entry::File(b) => std::fs::write(&p, b)?,
            Entry::Link(t) => std::os::unix::fs::symlink(t, &p)?,
        }
    }
    Ok(view.tree.entries.len())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// `dir`'s tree as a tar archive, entries sorted (as `cargo xtask fixtures pack` writes).
    pub(crate) fn tar_dir(dir: &Path) -> Vec<u8> {
        fn walk(dir: &Path, rel: &str, b: &mut tar::Builder<Vec<u8>>) {
            let mut names: Vec<_> = std::fs::read_dir(dir.join(rel))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            for n in names {
                if rel.is_empty() && (n == "meta.json" || n == TREE_FILE) {
                    continue;
                }
                let child = if rel.is_empty() {
                    n
                } else {
                    format!("{rel}/{n}")
                };
                let p = dir.join(&child);
                let m = p.symlink_metadata().unwrap();
                let mut h = tar::Header::new_gnu();
                h.set_mtime(0);
                if m.is_symlink() {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, &child, std::fs::read_link(&p).unwrap())
                        .unwrap();
                } else if m.is_dir() {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{child}/"), io::empty())
                        .unwrap();
                    walk(dir, &child, b);
                } else {
                    let data = std::fs::read(&p).unwrap();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, &child, data.as_slice()).unwrap();
                }
            }
        }
        let mut b = tar::Builder::new(Vec::new());
        walk(dir, "", &mut b);
        b.into_inner().unwrap()
    }

    /// An archive of one raw entry: `name` written as is (the builder refuses `..` and absolute
    /// paths, which is what a hostile archive holds).
    fn raw(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o644);
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, io::empty()).unwrap();
        b.into_inner().unwrap()
    }

    fn parse_err(bytes: &[u8]) -> String {
        Packed::parse(bytes, Path::new("fx/tree.tar"), 100)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn hostile_archives_are_rejected_with_a_message() {
        use tar::EntryType as T;
        for (bytes, want) in [
            (raw("/etc/passwd", T::Regular, None), "an absolute path"),
            (raw("t1/../../etc", T::Regular, None), "a `..` component"),
            (raw("t1/hard", T::Link, Some("t1/x")), "a hard link"),
            (raw("t1/dev", T::Char, None), "a device"),
            (raw("t1/blk", T::Block, None), "a device"),
            (raw("t1/fifo", T::Fifo, None), "a FIFO"),
            (
                raw("t1/link", T::Symlink, None),
                "a symlink without a target",
            ),
        ] {
            let e = parse_err(&bytes);
            assert!(e.starts_with("fx/tree.tar: "), "{e}");
            assert!(e.contains(want), "{want}: {e}");
        }
        // Garbage is not an archive.
        let e = parse_err(&[7u8; 1024]);
        assert!(e.contains("not a tar archive"), "{e}");
        // A duplicate path; a path beneath a file.
        let mut dup = raw("t1/a", T::Regular, None);
        dup.truncate(512);
        dup.extend(raw("t1/a", T::Regular, None));
        assert!(parse_err(&dup).contains("t1/a: a duplicate entry"));
        let mut under = raw("t1/a", T::Regular, None);
        under.truncate(512);
        under.extend(raw("t1/a/b", T::Regular, None));
        assert!(parse_err(&under).contains("its parent t1/a is not a directory"));
        // More entries than the cap.
        let mut many = Vec::new();
        for i in 0..5 {
            let mut one = raw(&format!("f{i}"), T::Regular, None);
            one.truncate(512);
            many.extend(one);
        }
        many.extend([0u8; 1024]);
        assert!(Packed::parse(&many, Path::new("x"), 5).is_ok());
        let e = Packed::parse(&many, Path::new("x"), 4).unwrap_err();
        assert!(e.to_string().contains("more than 4 entries"), "{e}");
    }

    /// A fixture whose archive is hostile does not open, and says why; an archive that is a
    /// link out of the fixture is refused like any such file.
    #[test]
    fn a_fixture_with_a_hostile_archive_does_not_open() {
        let d = tempfile::tempdir().unwrap();
        let fx = d.path().join("fx");
        std::fs::create_dir(&fx).unwrap();
        std::fs::write(fx.join("meta.json"), "{}").unwrap();
        std::fs::write(
            fx.join(TREE_FILE),
            raw("t1/../../../etc/shadow", tar::EntryType::Regular, None),
        )
        .unwrap();
        let e = crate::host::FixtureTree::open(&fx)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("tree.tar: t1/../../../etc/shadow: a `..` component"),
            "{e}"
        );
        std::fs::remove_file(fx.join(TREE_FILE)).unwrap();
        std::fs::write(d.path().join("elsewhere.tar"), tar_dir(d.path())).unwrap();
        symlink(d.path().join("elsewhere.tar"), fx.join(TREE_FILE)).unwrap();
        let e = crate::host::FixtureTree::open(&fx).err().unwrap();
        assert!(e.to_string().contains("tree.tar: refused"), "{e}");
        assert!(read_in(&fx, "t1/x").is_err());
    }

    /// Every answer of a layer, errors included, as a comparable string.
    fn answer<T: std::fmt::Debug>(r: io::Result<T>) -> String {
        match r {
            Ok(v) => format!("ok {v:?}"),
            Err(e) => format!(
                "err {:?} {:?} refusal={} {e}",
                e.kind(),
                e.raw_os_error(),
                safe::is_refusal(&e)
            ),
        }
    }

    fn sorted(r: io::Result<Vec<String>>) -> io::Result<Vec<String>> {
        r.map(|mut v| {
            v.sort();
            v
        })
    }

    /// The same tree as a directory and packed answers every read the same, through links
    /// (inside, absolute, `..` out of the snapshot, dangling, a directory link in the middle of
    /// a path), in the whole fixture and in a snapshot beneath it.
    #[test]
    fn a_packed_tree_reads_as_its_directory() {
        let d = tempfile::tempdir().unwrap();
        let fx = d.path().join("dir");
        let w = |rel: &str, text: &str| crate::host::write_test_file(&fx, rel, text);
        // (No meta.json in the directory: a packed fixture keeps it beside the archive.)
        w("t1/proc/stat", "cpu 1 2 3\n");
        w("t1/proc/42/stat", "42 (x) S");
        w("t1/sys/devices/vda/size", "42\n");
        w("t0/proc/stat", "t0");
        std::fs::create_dir_all(fx.join("t1/proc/42/fd")).unwrap();
        std::fs::create_dir_all(fx.join("t1/empty")).unwrap();
        let l = |target: &str, rel: &str| symlink(target, fx.join(rel)).unwrap();
        l("net:[4026531833]", "t1/proc/42/net");
        l("devices/vda", "t1/sys/block");
        l("/dev/null", "t1/proc/42/fd/0");
        l("../../t0/proc/stat", "t1/proc/old");
        l("42", "t1/proc/self");
        l("loop", "t1/proc/loop");
        l("stat", "t1/proc/alias");
        let packed_dir = d.path().join("packed");
        std::fs::create_dir(&packed_dir).unwrap();
        std::fs::write(packed_dir.join(TREE_FILE), tar_dir(&fx)).unwrap();
        std::fs::write(packed_dir.join("meta.json"), "{}").unwrap();
        let dir = Layer::open(&fx).unwrap();
        let packed = Layer::open(&packed_dir).unwrap();
        assert!(matches!(dir, Layer::Dir(_)) && matches!(packed, Layer::Packed(_)));
        let paths = [
            "",
            ".",
            "t1",
            "t1/proc",
            "t1/proc/stat",
            "t1/proc/stat/",
            "t1/proc/stat/x",
            "t1/proc/42/net",
            "t1/proc/42/fd",
            "t1/proc/42/fd/0",
            "t1/proc/self/stat",
            "t1/proc/self",
            "t1/proc/old",
            "t1/proc/loop",
            "t1/proc/alias",
            "t1/proc/missing",
            "t1/sys/block/size",
            "t1/sys/block",
            "t1/sys/block/../devices/vda/size",
            "t1/empty",
            "../etc/passwd",
            "t1/../../x",
            "/t1/proc/stat",
        ];
        for (a, b, at) in [
            (&dir, &packed, "fixture"),
            (
                &dir.subdir("t1").unwrap(),
                &packed.subdir("t1").unwrap(),
                "t1",
            ),
        ] {
            for p in paths {
                let p = if at == "t1" {
                    p.strip_prefix("t1/").unwrap_or(p)
                } else {
                    p
                };
                let what = format!("{at}: {p:?}");
                assert_eq!(
                    answer(a.read(p, 1 << 20)),
                    answer(b.read(p, 1 << 20)),
                    "{what}"
                );
                assert_eq!(answer(a.read(p, 3)), answer(b.read(p, 3)), "{what}");
                assert_eq!(
                    answer(sorted(a.list(p))),
                    answer(sorted(b.list(p))),
                    "{what}"
                );
                assert_eq!(answer(a.readlink(p)), answer(b.readlink(p)), "{what}");
                assert_eq!(answer(a.is_dir(p)), answer(b.is_dir(p)), "{what}");
                assert_eq!(
                    answer(a.subdir(p).map(|_| ())),
                    answer(b.subdir(p).map(|_| ())),
                    "{what}"
                );
            }
        }
        // The cases above are the interesting ones, not all failures.
        let t1 = packed.subdir("t1").unwrap();
        assert_eq!(t1.read("sys/block/size", 10).unwrap(), b"42\n");
        assert_eq!(t1.readlink("proc/42/net").unwrap(), "net:[4026531833]");
        assert!(safe::is_refusal(&t1.read("proc/old", 10).unwrap_err()));
        assert!(safe::is_refusal(&t1.read("proc/42/fd/0", 10).unwrap_err()));
        // Reading a file in a fixture directory: the archive's, meta.json beside it.
        assert_eq!(read_in(&packed_dir, "t0/proc/stat").unwrap(), b"t0");
        assert_eq!(read_in(&packed_dir, "meta.json").unwrap(), b"{}");
        // Unpacked, it is the directory again.
        let back = d.path().join("back");
        unpack(&packed_dir, &back).unwrap();
        assert_eq!(tar_dir(&back), tar_dir(&fx));
        assert_eq!(std::fs::read(back.join("meta.json")).unwrap(), b"{}");
        assert!(unpack(&fx, &d.path().join("no")).is_err());
        // A packed fixture with its tree also loose beside it is ambiguous.
        std::fs::create_dir(packed_dir.join("t1")).unwrap();
        let e = Layer::open(&packed_dir).err().unwrap().to_string();
        assert!(e.contains("holds tree.tar and also t1"), "{e}");
    }
}
