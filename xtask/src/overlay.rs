//! `cargo xtask overlay NAME BASE`: turn `fixtures/NAME`, a full copy of `fixtures/BASE` with a
//! few files changed, into an overlay: its `meta.json` names the base, paths the base has and
//! NAME does not are listed as `removed`, and every file identical to the base's is deleted.
//! triage's fixture reader (`host::FixtureTree`) falls back to the base, so the replay is
//! byte-identical (the snapshot tests prove it) with a fraction of the files.
//!
//! `cargo xtask handmade` derives its fixtures as full copies, then reduces them with this.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::util;

/// Parses `NAME BASE` and reduces `fixtures/NAME` against `fixtures/BASE`.
pub fn run(args: &[String]) -> Result<()> {
    let [name, base] = args else {
        return crate::usage_err("overlay: expected NAME BASE (fixture directory names)");
    };
    let fixtures = util::root().join("fixtures");
    let (files, removed) = reduce(&fixtures.join(name), base)?;
    println!(
        "xtask: fixtures/{name} is an overlay of fixtures/{base}: {files} file(s) of its own, \
         {removed} path(s) removed"
    );
    Ok(())
}

/// Reduces `dir` to an overlay of its sibling fixture `base`. Returns the files it keeps and
/// the number of removed paths recorded.
pub fn reduce(dir: &Path, base: &str) -> Result<(usize, usize)> {
    // A packed base is compared through a scratch copy of its tree.
    let base_dir = crate::fixtures::unpacked(
        &dir.parent()
            .context("fixture directory has no parent")?
            .join(base),
    )?;
    let meta_path = dir.join("meta.json");
    let mut meta: Value = serde_json::from_slice(
        &fs::read(&meta_path).with_context(|| format!("{}", meta_path.display()))?,
    )
    .with_context(|| format!("{}", meta_path.display()))?;
    let base_meta: Value = serde_json::from_slice(&fs::read(base_dir.join("meta.json"))?)?;
    if base_meta.get("base").is_some() {
        bail!("fixtures/{base} is itself an overlay: reduce against a plain recording");
    }
    if meta.get("base").is_some() {
        bail!("{} is already an overlay", dir.display());
    }
    // What the base has and this fixture does not: recorded before anything is deleted.
    let mut removed = Vec::new();
    missing(&base_dir, dir, "", &mut removed)?;
    prune(dir, &base_dir, "")?;
    let obj = meta.as_object_mut().context("meta.json is not an object")?;
    obj.insert("base".into(), Value::String(base.to_string()));
    if !removed.is_empty() {
        obj.insert(
            "removed".into(),
            Value::Array(removed.iter().cloned().map(Value::String).collect()),
        );
    }
    let mut text = serde_json::to_string_pretty(&meta)?;
    text.push('\n');
    fs::write(&meta_path, text)?;
    Ok((util::count_files(dir)?, removed.len()))
}

/// Paths under `base/rel` with no counterpart under `dir/rel` (a missing directory is one path).
fn missing(base: &Path, dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(base.join(rel))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for n in names {
        let child = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        if rel.is_empty() && n == "meta.json" {
            continue;
        }
        let b = base.join(&child);
        let d = dir.join(&child);
        match d.symlink_metadata() {
            Err(_) => out.push(child),
            Ok(m) if m.is_dir() && b.symlink_metadata()?.is_dir() => {
                missing(base, dir, &child, out)?
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Deletes every file and link under `dir/rel` identical to the base's, then directories left
/// empty that the base has too.
fn prune(dir: &Path, base: &Path, rel: &str) -> Result<()> {
    for e in fs::read_dir(dir.join(rel))? {
        let n = e?.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        if rel.is_empty() && n == "meta.json" {
            continue;
        }
        let d = dir.join(&child);
        let b = base.join(&child);
        let (Ok(dm), Ok(bm)) = (d.symlink_metadata(), b.symlink_metadata()) else {
            continue;
        };
        if dm.is_symlink() {
            if bm.is_symlink() && fs::read_link(&d)? == fs::read_link(&b)? {
                fs::remove_file(&d)?;
            }
        } else if dm.is_dir() {
            if bm.is_dir() {
                prune(dir, base, &child)?;
                if fs::read_dir(&d)?.next().is_none() {
                    fs::remove_dir(&d)?;
                }
            }
        } else if bm.is_file() && !bm.is_symlink() && fs::read(&d)? == fs::read(&b)? {
            fs::remove_file(&d)?;
        }
    }
    Ok(())
}
