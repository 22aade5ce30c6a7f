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
    /// beneath it), at most [`MAX_ARCHIVE_BYTES`].
    fn load(root: &Root, f: std::fs::File) -> io::Result<Packed> {
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

    /// The whole tree as a view.
    pub fn view(self) -> View {
        View {
            tree: Arc::new(self),
            base: String::new(),
        }
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
                Ok(Layer::Packed(Packed::load(&root, f)?.view()))
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
