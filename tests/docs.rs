//! Generated documentation stays current: docs/findings.md (the finding catalogue) and
//! docs/schema/*.json (the JSON Schemas). `UPDATE_DOCS=1 cargo test --test docs` rewrites them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use triage::analyze::catalog;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Compare `path` with `want`; with UPDATE_DOCS=1 write it instead.
pub fn check_generated(path: &Path, want: &str) {
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale: regenerate it with `UPDATE_DOCS=1 cargo test --test docs`",
        path.display()
    );
}

#[test]
fn finding_catalogue_is_current() {
    check_generated(&repo().join("docs/findings.md"), &catalog::markdown());
}

/// Every id literal the rules pass to `finding(` (or set as `id:`) in src/analyze.
fn ids_in_source() -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for e in std::fs::read_dir(repo().join("src/analyze")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name == "catalog.rs" || name == "rule_tests.rs" || !name.ends_with(".rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        // Tests at the bottom of a file only compare ids; the rules come before them.
        let text = text.split("#[cfg(test)]").next().unwrap();
        for (i, _) in text.match_indices("finding(") {
            let rest = text[i + "finding(".len()..].trim_start();
            if let Some(lit) = rest.strip_prefix('"') {
                ids.insert(lit[..lit.find('"').unwrap()].to_string());
            }
        }
        for (i, _) in text.match_indices("id: \"") {
            let lit = &text[i + 5..];
            let id = &lit[..lit.find('"').unwrap()];
            // `Threshold { id: ... }` names a threshold, not a finding.
            if !text[..i].ends_with("Threshold { ") {
                ids.insert(id.to_string());
            }
        }
    }
    ids
}

#[test]
fn every_finding_id_is_catalogued_and_follows_the_pattern() {
    let src = ids_in_source();
    assert!(src.len() >= 45, "found only {src:?}");
    let cat: BTreeSet<String> = catalog::RULES.iter().map(|r| r.id.to_string()).collect();
    for id in &src {
        assert!(
            catalog::id_is_valid(id),
            "{id} does not follow {}",
            catalog::ID_PATTERN
        );
    }
    let missing: Vec<_> = src.difference(&cat).collect();
    assert!(missing.is_empty(), "not in the catalogue: {missing:?}");
    let stale: Vec<_> = cat.difference(&src).collect();
    assert!(
        stale.is_empty(),
        "catalogued but no rule produces: {stale:?}"
    );
}
