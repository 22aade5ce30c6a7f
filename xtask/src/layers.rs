//! `cargo xtask layers`: the top-level modules of `src/` must import each other one way only.
//!
//! An edge `a -> b` is any `crate::b` path in a file of module `a` (outside `#[cfg(test)]`
//! modules, which may reach anywhere). Two modules that import each other are a cycle, and the
//! check fails naming both and one file on each side, so a new cycle is caught in CI where it
//! is made rather than found later by a reader.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Edges between top-level modules: `from -> to -> a file of `from` that names `to`.
type Edges = BTreeMap<String, BTreeMap<String, String>>;

pub fn run(src: &Path) -> Result<()> {
    let edges = edges(src)?;
    let cycles = cycles(&edges);
    if cycles.is_empty() {
        let n: usize = edges.values().map(|m| m.len()).sum();
        println!(
            "layers: {} top-level modules, {n} import edges, no cycle",
            edges.len()
        );
        return Ok(());
    }
    for (a, b) in &cycles {
        eprintln!(
            "layers: `{a}` and `{b}` import each other ({} uses crate::{b}; {} uses crate::{a})",
            edges[a][b], edges[b][a]
        );
    }
    bail!(
        "{} import cycle(s) between top-level modules of src/",
        cycles.len()
    )
}

/// Every pair `(a, b)`, `a < b`, with edges both ways.
pub fn cycles(edges: &Edges) -> Vec<(String, String)> {
    let mut out = BTreeSet::new();
    for (a, tos) in edges {
        for b in tos.keys() {
            if edges.get(b).is_some_and(|m| m.contains_key(a)) {
                let pair = if a < b {
                    (a.clone(), b.clone())
                } else {
                    (b.clone(), a.clone())
                };
                out.insert(pair);
            }
        }
    }
    out.into_iter().collect()
}

/// Reads every `.rs` file under `src` and collects the edges between top-level modules.
pub fn edges(src: &Path) -> Result<Edges> {
    let mut files = Vec::new();
    walk(src, &mut files)?;
    let mut edges = Edges::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap_or(&f);
        let Some(top) = top_module(rel) else { continue };
        let text = std::fs::read_to_string(&f).with_context(|| format!("{}", f.display()))?;
        for to in crate_paths(&strip_test_modules(&text)) {
            if to != top {
                edges
                    .entry(top.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    Ok(edges)
}

/// `collect/disk.rs` -> `collect`; `cli.rs` -> `cli`; the crate roots and binaries -> none.
fn top_module(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "main" | "lib" | "bin")).then(|| name.to_string())
}

/// Text before the first `#[cfg(test)]` module: test code may import any layer.
fn strip_test_modules(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if l.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|n| n.trim_start().starts_with("mod "))
        {
            break;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The module names after each `crate::` in `text` (comments included: a doc link is a
/// dependency a reader follows too).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        // `triage_crate::x` or `$crate::` are not ours.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cycle_and_ignores_test_modules() {
        let dir = tempfile_dir();
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/mod.rs"), "use crate::b::X;\n").unwrap();
        std::fs::write(
            dir.join("b.rs"),
            "use crate::c::Y;\n#[cfg(test)]\nmod tests { use crate::a::Z; }\n",
        )
        .unwrap();
        std::fs::write(dir.join("c.rs"), "/// see [`crate::a`]\n").unwrap();
        let e = edges(&dir).unwrap();
        assert!(cycles(&e).is_empty(), "{e:?}");
        std::fs::write(dir.join("c.rs"), "use crate::b::W;\n").unwrap();
        let e = edges(&dir).unwrap();
        assert_eq!(cycles(&e), vec![("b".to_string(), "c".to_string())]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-layers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
