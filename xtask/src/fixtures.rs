//! `cargo xtask fixtures pack NAME...|--min-files N` and `cargo xtask fixtures unpack NAME`:
//! a recording stored as one archive, `fixtures/NAME/tree.tar`, beside its `meta.json`.
//!
//! A recording is hundreds to thousands of small files (every /proc file read, per process);
//! packed, it is one file in git, and triage reads the archive in memory (`host::packed`) with
//! the same answers as the directory, so the replay is byte-identical. The archive is
//! deterministic: entries sorted by path, directories included (an empty one is a fact of the
//! recording), mode 0644/0755/0777, uid and gid 0, no owner names, mtime 0. Packing the same
//! tree again gives the same bytes. `unpack` turns it back into a directory, for review or to
//! re-record.
//!
//! The other commands that read fixture files (`handmade`, `overlay`) read a packed base
//! through [`unpacked`]: a scratch copy under `target/xtask/unpacked/`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::util;

/// The archive of a packed fixture.
pub const TREE_FILE: &str = "tree.tar";

/// One entry of a fixture tree, as packed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// Plain fixtures of at least this many files are packed (`tests/fixtures.rs` checks it).
pub const PACK_MIN_FILES: usize = 300;

/// Pack a fresh recording when it has [`PACK_MIN_FILES`] files or more (`capture`).
pub fn pack_if_large(dir: &Path) -> Result<()> {
    if util::count_files(dir)? >= PACK_MIN_FILES {
        pack_one(dir)?;
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let fixtures = util::root().join("fixtures");
    match args {
        [cmd, min, n] if cmd == "pack" && min == "--min-files" => {
            let Ok(min) = n.parse::<usize>() else {
                return crate::usage_err(format!("fixtures pack --min-files: not a number `{n}`"));
            };
            let mut names: Vec<String> = fs::read_dir(&fixtures)?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<std::io::Result<_>>()?;
            names.sort();
            let mut packed = 0;
            for name in names {
                let dir = fixtures.join(&name);
                if !dir.is_dir() || dir.join(TREE_FILE).exists() || is_overlay(&dir)? {
                    continue;
                }
                if util::count_files(&dir)? >= min {
                    pack_one(&dir)?;
                    packed += 1;
                }
            }
            println!("xtask: packed {packed} fixture(s) with at least {min} files");
            Ok(ExitCode::SUCCESS)
        }
        [cmd, names @ ..] if cmd == "pack" && !names.is_empty() => {
            for name in names {
                pack_one(&fixture_dir(&fixtures, name)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        [cmd, name] if cmd == "unpack" => {
            let dir = fixture_dir(&fixtures, name)?;
            let tar = dir.join(TREE_FILE);
            if !tar.is_file() {
                bail!("{} is not packed (no {TREE_FILE})", dir.display());
            }
            let n = unpack_into(&tar, &dir)?;
            fs::remove_file(&tar).with_context(|| format!("cannot remove {}", tar.display()))?;
            println!("xtask: unpacked fixtures/{name}: {n} entries");
            Ok(ExitCode::SUCCESS)
        }
        _ => crate::usage_err(
            "fixtures: expected `pack NAME...`, `pack --min-files N` or `unpack NAME`",
        ),
    }
}

fn fixture_dir(fixtures: &Path, name: &str) -> Result<PathBuf> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return crate::usage_err(format!("fixtures: `{name}` is not a fixture name"));
    }
    let dir = fixtures.join(name);
    if !dir.is_dir() {
        bail!("{} is not a fixture directory", dir.display());
    }
    Ok(dir)
}

fn is_overlay(dir: &Path) -> Result<bool> {
    let p = dir.join("meta.json");
    let Ok(text) = fs::read(&p) else {
        return Ok(false);
    };
    let v: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{}: invalid JSON", p.display()))?;
    Ok(v.get("base").is_some())
}

/// Every entry under `dir/rel` by path, `meta.json` and `tree.tar` at the top left out.
fn collect(dir: &Path, rel: &str, out: &mut BTreeMap<String, Node>) -> Result<()> {
    let here = dir.join(rel);
    for e in fs::read_dir(&here).with_context(|| format!("cannot list {}", here.display()))? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            bail!("{}: a name that is not UTF-8", e.path().display());
        };
        if rel.is_empty() && (name == "meta.json" || name == TREE_FILE) {
            continue;
        }
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let t = e.file_type()?;
        if t.is_symlink() {
            out.insert(child, Node::Link(fs::read_link(e.path())?));
        } else if t.is_dir() {
            out.insert(child.clone(), Node::Dir);
            collect(dir, &child, out)?;
        } else if t.is_file() {
            out.insert(child, Node::File(fs::read(e.path())?));
        } else {
            bail!("{}: not a file, directory or symlink", e.path().display());
        }
    }
    Ok(())
}

/// The deterministic archive of `entries`.
fn build(entries: &BTreeMap<String, Node>) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, node) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match node {
            Node::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Node::File(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())?;
            }
            Node::Link(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)?;
            }
        }
    }
    Ok(b.into_inner()?)
}

/// The entries of an archive, as [`collect`] gives them (rejecting what a fixture never holds).
fn read_archive(bytes: &[u8], what: &Path) -> Result<BTreeMap<String, Node>> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(bytes);
    for e in ar
        .entries()
        .with_context(|| format!("{}", what.display()))?
    {
        let mut e = e.with_context(|| format!("{}", what.display()))?;
        let path = e.path()?.into_owned();
        let mut parts = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(s) => parts.push(
                    s.to_str()
                        .with_context(|| format!("{}: a name not UTF-8", what.display()))?
                        .to_string(),
                ),
                Component::CurDir => {}
                _ => bail!("{}: {} leaves the fixture", what.display(), path.display()),
            }
        }
        let key = parts.join("/");
        let node = match e.header().entry_type() {
            tar::EntryType::Directory => Node::Dir,
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data)?;
                Node::File(data)
            }
            tar::EntryType::Symlink => Node::Link(
                e.link_name()?
                    .with_context(|| format!("{}: {key}: no link target", what.display()))?
                    .into_owned(),
            ),
            t => bail!(
                "{}: {key}: entry type {t:?} is not accepted",
                what.display()
            ),
        };
        if key.is_empty() || out.insert(key.clone(), node).is_some() {
            bail!("{}: `{key}`: empty or duplicate path", what.display());
        }
    }
    Ok(out)
}

/// Pack `dir` into `dir/tree.tar`: built, read back and compared with the tree, then the tree
/// is removed (`meta.json` stays beside the archive).
fn pack_one(dir: &Path) -> Result<()> {
    let tar = dir.join(TREE_FILE);
    if tar.exists() {
        bail!("{} is already packed", dir.display());
    }
    let mut entries = BTreeMap::new();
    collect(dir, "", &mut entries)?;
    let files = entries.values().filter(|n| **n != Node::Dir).count();
    let bytes = build(&entries)?;
    if read_archive(&bytes, &tar)? != entries {
        bail!(
            "{}: the archive does not read back as the tree",
            dir.display()
        );
    }
    if build(&entries)? != bytes {
        bail!("{}: packing is not deterministic", dir.display());
    }
    let tmp = dir.join(format!(".{TREE_FILE}.tmp"));
    fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    for e in fs::read_dir(dir)? {
        let e = e?;
        let n = e.file_name();
        if n == "meta.json" || n == tmp.file_name().unwrap_or_default() {
            continue;
        }
        if e.file_type()?.is_dir() {
            fs::remove_dir_all(e.path())?;
        } else {
            fs::remove_file(e.path())?;
        }
    }
    fs::rename(&tmp, &tar)?;
    println!(
        "xtask: packed {}: {files} files into {TREE_FILE} ({} bytes)",
        dir.display(),
        bytes.len()
    );
    Ok(())
}

/// Write the archive's tree into `dir` (which must not hold it yet). Returns the entries.
fn unpack_into(tar: &Path, dir: &Path) -> Result<usize> {
    let bytes = fs::read(tar).with_context(|| format!("cannot read {}", tar.display()))?;
    let entries = read_archive(&bytes, tar)?;
    for (key, node) in &entries {
        let p = dir.join(key);
        if p.symlink_metadata().is_ok() {
            bail!("{} exists already", p.display());
        }
        // Parents come first (sorted) and were created by this loop: no link is written through.
        match node {
            Node::Dir => fs::create_dir(&p)?,
            Node::File(data) => {
                if let Some(parent) = p.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::write(&p, data)?
            }
            Node::Link(t) => {
                if let Some(parent) = p.parent() {
                    fs::create_dir_all(parent)?;
                }
                std::os::unix::fs::symlink(t, &p)?
            }
        }
    }
    Ok(entries.len())
}

/// `dir` as a plain directory tree: itself, or, when packed, a scratch copy unpacked under
/// `target/xtask/unpacked/NAME` (with its `meta.json`), for commands that read files directly.
pub fn unpacked(dir: &Path) -> Result<PathBuf> {
    let tar = dir.join(TREE_FILE);
    if !tar.is_file() {
        return Ok(dir.to_path_buf());
    }
    let name = dir.file_name().context("a fixture directory has a name")?;
    let out = util::root().join("target/xtask/unpacked").join(name);
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("cannot remove {}", out.display()))?;
    }
    fs::create_dir_all(&out)?;
    fs::copy(dir.join("meta.json"), out.join("meta.json"))
        .with_context(|| format!("{}: no meta.json", dir.display()))?;
    unpack_into(&tar, &out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> BTreeMap<String, Node> {
        let mut m = BTreeMap::new();
        m.insert("t0".into(), Node::Dir);
        m.insert("t0/empty".into(), Node::Dir);
        m.insert("t0/proc".into(), Node::Dir);
        m.insert("t0/proc/stat".into(), Node::File(b"cpu 1 2 3\n".to_vec()));
        m.insert("t0/proc/ns".into(), Node::Link("net:[4026531833]".into()));
        m.insert(
            format!("t0/{}", "long/".repeat(40) + "x"),
            Node::File(b"deep".to_vec()),
        );
        m
    }

    /// Packing is deterministic and reads back as the tree (long names and empty directories
    /// included); unpacking writes it out as it was.
    #[test]
    fn pack_reads_back_and_is_deterministic() {
        let mut t = tree();
        // The parents of the long path.
        let long = "long/".repeat(40);
        let mut p = String::from("t0");
        for c in long.trim_end_matches('/').split('/') {
            p = format!("{p}/{c}");
            t.insert(p.clone(), Node::Dir);
        }
        let a = build(&t).unwrap();
        assert_eq!(a, build(&t).unwrap());
        assert_eq!(read_archive(&a, Path::new("x")).unwrap(), t);
        let d = std::env::temp_dir().join(format!("xtask-unpack-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let tar = d.join("in.tar");
        fs::write(&tar, &a).unwrap();
        let out = d.join("out");
        fs::create_dir(&out).unwrap();
        assert_eq!(unpack_into(&tar, &out).unwrap(), t.len());
        let mut back = BTreeMap::new();
        collect(&out, "", &mut back).unwrap();
        fs::remove_dir_all(&d).unwrap();
        assert_eq!(back, t);
    }
}
