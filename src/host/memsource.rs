//! A snapshot held in memory: the same answers as a [`FixtureSource`](super::FixtureSource)
//! over the same tree, without touching the disk. The fuzz harness loads each fixture once and
//! mutates it in memory (fast enough for tens of thousands of replays per minute).

use std::collections::BTreeMap;
use std::io;

use super::packed::Layer;
use super::safe::{Refused, Root};

/// What loading a tree reads: a directory or a fixture layer.
trait Tree {
    fn list(&self, rel: &str) -> io::Result<Vec<String>>;
    fn readlink(&self, rel: &str) -> io::Result<String>;
    fn read(&self, rel: &str, cap: usize) -> io::Result<Vec<u8>>;
}

impl Tree for Root {
    fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        Root::list(self, rel)
    }
    fn readlink(&self, rel: &str) -> io::Result<String> {
        Root::readlink(self, rel)
    }
    fn read(&self, rel: &str, cap: usize) -> io::Result<Vec<u8>> {
        Root::read(self, rel, cap)
    }
}

impl Tree for Layer {
    fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        Layer::list(self, rel)
    }
    fn readlink(&self, rel: &str) -> io::Result<String> {
        Layer::readlink(self, rel)
    }
    fn read(&self, rel: &str, cap: usize) -> io::Result<Vec<u8>> {
        Layer::read(self, rel, cap)
    }
}
use super::source::{FsStat, Source};

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File(Vec<u8>),
    /// A symlink (a recorded `readlink`); reading through it follows it inside the tree.
    Link(String),
    Dir,
    /// What the safe reader refuses (a FIFO, a device, a file over its cap): reading it gives
    /// this refusal.
    Refused(String),
}

/// A snapshot directory in memory, by path relative to the snapshot (`proc/stat`).
#[derive(Debug, Clone, Default)]
pub struct MemSource {
    pub nodes: BTreeMap<String, Node>,
}

fn refused(why: &str) -> io::Error {
    io::Error::other(Refused(why.to_string()))
}

fn not_found(rel: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{rel}: not found"))
}

/// `rel`'s parent joined with a relative link target, `..` resolved; None when it leaves the
/// tree.
fn join_link(rel: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = rel.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl MemSource {
    /// Everything under `root` (files, links, directories), read through the safe reader.
    pub fn load(root: &Root) -> io::Result<MemSource> {
        let mut m = MemSource::default();
        m.load_dir(root, "")?;
        Ok(m)
    }

    /// Everything in a fixture layer: a directory, or a packed tree ([`super::packed`]),
    /// read through the same calls as [`MemSource::load`].
    pub fn load_layer(layer: &Layer) -> io::Result<MemSource> {
        let mut m = MemSource::default();
        m.load_dir(layer, "")?;
        Ok(m)
    }

    fn load_dir(&mut self, root: &dyn Tree, dir: &str) -> io::Result<()> {
        for name in root.list(if dir.is_empty() { "." } else { dir })? {
            let rel = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            if let Ok(t) = root.readlink(&rel) {
                self.nodes.insert(rel, Node::Link(t));
                continue;
            }
            match root.read(&rel, super::safe::cap_for(&rel)) {
                Ok(b) => {
                    self.nodes.insert(rel, Node::File(b));
                }
                Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                    self.nodes.insert(rel.clone(), Node::Dir);
                    self.load_dir(root, &rel)?;
                }
                Err(e) => {
                    self.nodes.insert(rel, Node::Refused(e.to_string()));
                }
            }
        }
        Ok(())
    }

    /// The node at `rel`, following links inside the tree.
    fn resolve(&self, rel: &str) -> io::Result<(String, &Node)> {
        let mut rel = rel.trim_matches('/').to_string();
        for _ in 0..8 {
            match self.nodes.get(&rel) {
                Some(Node::Link(t)) => {
                    if t.starts_with('/') {
                        return Err(refused("the path resolves outside the directory"));
                    }
                    rel = join_link(&rel, t)
                        .ok_or_else(|| refused("the path resolves outside the directory"))?;
                }
                Some(n) => return Ok((rel, n)),
                None => return Err(not_found(&rel)),
            }
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    fn file(&self, rel: &str) -> io::Result<&[u8]> {
        match self.resolve(rel)? {
            (_, Node::File(b)) => Ok(b),
            (_, Node::Dir) => Err(io::Error::from_raw_os_error(libc::EISDIR)),
            (_, Node::Refused(why)) => Err(refused(why)),
            (_, Node::Link(_)) => Err(io::Error::from_raw_os_error(libc::ELOOP)),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(&self, rel: &str, what: &str) -> io::Result<T> {
        match self.file(rel) {
            Ok(b) => {
                serde_json::from_slice(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(io::Error::new(io::ErrorKind::Unsupported, what.to_string()))
            }
            Err(e) => Err(e),
        }
    }
}

impl Source for MemSource {
    fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        self.file(rel).map(|b| b.to_vec())
    }

    fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let (dir, node) = self.resolve(rel)?;
        if *node != Node::Dir {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        let prefix = format!("{dir}/");
        let mut out: Vec<String> = Vec::new();
        for k in self.nodes.range(prefix.clone()..).map(|(k, _)| k) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            if !rest.contains('/') {
                out.push(rest.to_string());
            }
        }
        Ok(out)
    }

    fn readlink(&self, rel: &str) -> io::Result<String> {
        match self.nodes.get(rel.trim_matches('/')) {
            Some(Node::Link(t)) => Ok(t.clone()),
            Some(_) => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            None => Err(not_found(rel)),
        }
    }

    fn stat_size(&self, rel: &str) -> io::Result<u64> {
        let (p, node) = self.resolve(rel)?;
        let b = match node {
            Node::Dir => self.file(&format!("{p}/.size"))?,
            _ => self.file(&p)?,
        };
        String::from_utf8_lossy(b)
            .trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{rel}: not a size")))
    }

    fn statvfs(&self, mount_point: &str) -> io::Result<FsStat> {
        let all: BTreeMap<String, FsStat> = self.json("statvfs.json", "no statvfs recorded")?;
        all.get(mount_point)
            .copied()
            .ok_or_else(|| not_found(mount_point))
    }

    fn kmsg(&self) -> io::Result<Vec<u8>> {
        self.read("dev/kmsg")
    }

    fn tcp_states(&self) -> io::Result<BTreeMap<String, u64>> {
        self.json("sock_diag_tcp.json", "no sock_diag recording")
    }

    fn tcp_listeners(&self) -> io::Result<Vec<super::sockdiag::Listener>> {
        self.json("sock_diag_listen.json", "no sock_diag listener recording")
    }

    fn qdiscs(&self) -> io::Result<Vec<super::qdisc::Qdisc>> {
        self.json("qdisc.json", "no qdisc recording")
    }

    fn task_dump(&self) -> io::Result<Vec<u8>> {
        match self.file(super::source::TASK_DUMP_FILE) {
            Ok(b) => Ok(b.to_vec()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no task dump recorded",
            )),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture snapshot answers the same from memory as from disk: a packed recording
    /// (`fixtures/idle` is one) through its fixture reader, and unpacked into a directory.
    #[test]
    fn memory_and_disk_agree_on_a_fixture() {
        use crate::host::packed::{self, Layer};
        use crate::host::FixtureTree;
        let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idle");
        let tree = FixtureTree::open(&fx).unwrap();
        let layer = Layer::open(&fx).unwrap();
        assert!(matches!(layer, Layer::Packed(_)), "fixtures/idle is packed");
        let mem = MemSource::load_layer(&layer.subdir("t0").unwrap()).unwrap();
        let disk = tree.phase("t0").unwrap();
        // The same tree unpacked, loaded through the directory reader: every node equal.
        let tmp = tempfile::tempdir().unwrap();
        packed::unpack(&fx, &tmp.path().join("idle")).unwrap();
        for phase in ["t0", "t1", "samples/000"] {
            let from_dir =
                MemSource::load(&Root::open(&tmp.path().join("idle").join(phase)).unwrap())
                    .unwrap();
            let from_tar = MemSource::load_layer(&layer.subdir(phase).unwrap()).unwrap();
            assert!(!from_tar.nodes.is_empty(), "{phase}");
            assert_eq!(from_dir.nodes, from_tar.nodes, "{phase}");
        }
        let mut a = mem.list("proc").unwrap();
        let mut b = disk.list("proc").unwrap();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        for p in ["proc/stat", "proc/meminfo", "proc/self/cgroup"] {
            assert_eq!(mem.read(p).unwrap(), disk.read(p).unwrap(), "{p}");
        }
        assert_eq!(
            mem.readlink("proc/self/ns/net").unwrap(),
            disk.readlink("proc/self/ns/net").unwrap()
        );
        let (mem1, disk1) = (
            MemSource::load_layer(&layer.subdir("t1").unwrap()).unwrap(),
            tree.phase("t1").unwrap(),
        );
        assert_eq!(mem1.statvfs("/").unwrap(), disk1.statvfs("/").unwrap());
        assert_eq!(mem1.kmsg().unwrap(), disk1.kmsg().unwrap());
        assert!(mem.read("proc/nope").is_err());
        // No qdisc recording in `idle`; the qdisc fixture's replays the same from memory.
        assert_eq!(mem.qdiscs().unwrap_err().kind(), io::ErrorKind::Unsupported);
        let q = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/qdisc-drops-retransmits");
        let (mq, dq) = (
            MemSource::load_layer(&Layer::open(&q).unwrap().subdir("t1").unwrap()).unwrap(),
            FixtureTree::open(&q).unwrap().phase("t1").unwrap(),
        );
        assert_eq!(mq.qdiscs().unwrap(), dq.qdiscs().unwrap());
        assert!(mq.qdiscs().unwrap().iter().any(|x| x.kind == "tbf"));
    }
}
