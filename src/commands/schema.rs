//! JSON Schemas of the documents triage prints, generated from the types (schemars), so they
//! cannot drift from what is serialized. Committed as docs/schema/*.json; a test fails when the
//! committed files are stale (`UPDATE_DOCS=1 cargo test --test docs` rewrites them).

/// (file name under docs/schema/, schema as pretty JSON with a trailing newline).
pub fn all() -> Vec<(&'static str, String)> {
    let pretty = |s: schemars::Schema| {
        let mut t = serde_json::to_string_pretty(&s).unwrap_or_default();
        t.push('\n');
        t
    };
    vec![
        (
            "report.schema.json",
            pretty(schemars::schema_for!(crate::model::report::Report)),
        ),
        (
            "series.schema.json",
            pretty(schemars::schema_for!(crate::model::deep::Series)),
        ),
        (
            "doctor.schema.json",
            pretty(schemars::schema_for!(crate::commands::doctor::Doctor)),
        ),
    ]
}
