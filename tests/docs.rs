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

/// Every id literal the rules pass to `finding(` (or set as `id:`) in src/analyze and
/// src/resources.
fn ids_in_source() -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    // The kernel-log rule makes one id per class (`format!("kernel_log.errors.{class}")`);
    // OOM kills are `memory.errors.oom_kill` instead.
    for c in triage::collect::kmsg::KmsgClass::ALL {
        if !matches!(c.id(), "oom_kill" | "cgroup_oom") {
            ids.insert(format!("kernel_log.errors.{}", c.id()));
        }
    }
    // The modules and their submodules (`resources/cpu/deep.rs`).
    let mut files = Vec::new();
    let mut dirs = vec![repo().join("src/analyze"), repo().join("src/resources")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    for p in files {
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
        // A rule whose id is a constant (`pub const ID: &str = "tasks.saturation.fork_storm"`).
        for (i, _) in text.match_indices("const ID: &str = \"") {
            let lit = &text[i + "const ID: &str = \"".len()..];
            ids.insert(lit[..lit.find('"').unwrap()].to_string());
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

#[test]
fn json_schemas_are_current() {
    for (name, text) in triage::commands::schema::all() {
        check_generated(&repo().join("docs/schema").join(name), &text);
    }
}

fn validator(name: &str) -> jsonschema::Validator {
    let (_, text) = triage::commands::schema::all()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_valid(v: &jsonschema::Validator, doc: &serde_json::Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{what}: {}", errors.join("\n"));
}

fn all_fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("fixtures"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_fixture_validates_against_the_schemas() {
    use triage::commands::pipeline::report;
    use triage::commands::views;
    use triage::model::deep::{Scope, Series};
    let rv = validator("report.schema.json");
    let sv = validator("series.schema.json");
    let a = triage::analyze::Analysis::default();
    for dir in all_fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let r = triage::collect::run::from_fixture(&dir).unwrap();
        let rep = triage::analyze::build_report(&r, "sixty-second", &a);
        let mut doc = serde_json::to_value(&rep).unwrap();
        assert_valid(&rv, &doc, &name);
        // The schema constrains: a wrong status or a string CPU count is rejected.
        doc["summary"]["status"] = "bogus".into();
        assert!(!rv.is_valid(&doc), "{name}: a bogus status passed");
        doc["summary"]["status"] = "ok".into();
        doc["host"]["online_cpus"] = "2".into();
        assert!(!rv.is_valid(&doc), "{name}: a string CPU count passed");
        // The deep dives, and a series of them, on the fixtures recorded with every reading.
        if name.starts_with("deep-") {
            let scope = Scope {
                pid: None,
                cgroup: None,
                top: 10,
            };
            let mut samples = Vec::new();
            for f in [&views::CPU, &views::MEM, &views::DISK, &views::NET] {
                let r = triage::collect::run::from_fixture_spec(
                    &dir,
                    &triage::collect::deep::Spec::ALL,
                )
                .unwrap();
                let d = report(&r, f, &scope, &a);
                assert_valid(
                    &rv,
                    &serde_json::to_value(&d).unwrap(),
                    &format!("{name} {}", f.name),
                );
                if f.name == "cpu" {
                    samples.push(d.clone());
                    samples.push(d);
                }
            }
            let s = Series::new("cpu", 1.0, samples);
            assert_valid(
                &sv,
                &serde_json::to_value(&s).unwrap(),
                &format!("{name} series"),
            );
        }
    }
    // Offcpu and syscalls fixtures (probes only / probes + /proc), replayed by the binary.
    let bin = env!("CARGO_BIN_EXE_triage");
    for (cmd, fx) in [
        ("offcpu", "offcpu-lock-contention"),
        ("syscalls", "syscall-storm"),
    ] {
        let o = std::process::Command::new(bin)
            .args([
                cmd,
                "--fixture",
                repo().join("fixtures").join(fx).to_str().unwrap(),
                "--json",
            ])
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{cmd} {fx}: {e}: {}", String::from_utf8_lossy(&o.stderr)));
        assert_valid(&rv, &doc, &format!("{cmd} {fx}"));
    }
}

#[test]
fn doctor_validates_against_its_schema() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_valid(&validator("doctor.schema.json"), &doc, "doctor");
}
