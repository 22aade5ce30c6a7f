//! Reading many reports as a stream: files, directories (recursively) and stdin, each holding
//! one report or several (NDJSON, or pretty documents one after the other). One document is in
//! memory at a time; what is kept from it is a [`Doc`], the slim part of a report the fleet and
//! diff views need (`sections` is skipped without being built).
//!
//! A document that cannot be used is a [`Skipped`] naming its source and why (truncated, not
//! JSON, not a triage report, a schema this triage cannot read); the others are still read.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::report::{Finding, Report, Resource, Tool, Window};

/// The major schema version this triage reads (docs/json.md: fields are only added within it).
pub const READABLE_MAJOR: u32 = 1;

/// The part of a report that fleet and diff use.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub schema_version: String,
    pub tool: Tool,
    pub command: String,
    pub hostname: String,
    pub window: Window,
    pub resources: Vec<Resource>,
    pub findings: Vec<Finding>,
}

impl Doc {
    pub fn from_report(r: Report) -> Doc {
        Doc {
            schema_version: r.schema_version,
            tool: r.tool,
            command: r.command,
            hostname: r.host.hostname,
            window: r.window,
            resources: r.resources,
            findings: r.findings,
        }
    }
}

/// A document that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub source: String,
    pub reason: String,
}

/// One document read from an input.
#[derive(Debug)]
pub enum Item {
    Report { source: String, doc: Box<Doc> },
    Skipped(Skipped),
}

/// Lenient shape: every field optional, so a foreign document is recognised as such rather
/// than failing on its first missing field. Unknown fields (newer minor versions) are ignored.
#[derive(Deserialize)]
struct RawDoc {
    #[serde(default)]
    schema_version: Option<String>,
    #[serde(default)]
    tool: Option<Tool>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    host: Option<RawHost>,
    #[serde(default)]
    window: Option<Window>,
    #[serde(default)]
    resources: Vec<Resource>,
    #[serde(default)]
    findings: Vec<Finding>,
}

#[derive(Deserialize)]
struct RawHost {
    #[serde(default)]
    hostname: String,
}

/// Only the version: asked when the full shape did not parse, to say "schema 2.0" rather than
/// "invalid type" for a report from a newer triage.
#[derive(Deserialize)]
struct VersionOnly {
    #[serde(default)]
    schema_version: Option<serde_json::Value>,
    #[serde(default)]
    tool: Option<serde_json::Value>,
}

/// `MAJOR.MINOR` -> MAJOR.
fn major(v: &str) -> Option<u32> {
    v.split('.').next()?.trim().parse().ok()
}

fn incompatible(v: &str) -> String {
    format!(
        "schema_version {v}: this triage reads {READABLE_MAJOR}.x (a report from another major \
         version; read it with a matching triage)"
    )
}

/// Turns one parsed document into a report or the reason it is not one.
fn check(raw: RawDoc) -> Result<Doc, String> {
    let is_triage = raw.tool.as_ref().is_some_and(|t| t.name == "triage");
    let Some(version) = raw.schema_version else {
        return Err(if is_triage {
            "a triage document without schema_version".into()
        } else {
            "not a triage report (no schema_version or tool)".into()
        });
    };
    if !is_triage {
        return Err("not a triage report (tool.name is not \"triage\")".into());
    }
    match major(&version) {
        Some(READABLE_MAJOR) => {}
        _ => return Err(incompatible(&version)),
    }
    if raw.kind.as_deref() == Some("series") {
        return Err("a time series (--interval): give single-window reports".into());
    }
    let (Some(host), Some(window)) = (raw.host, raw.window) else {
        return Err(format!(
            "a triage `{}` document, not a window report (no host/window)",
            raw.command.unwrap_or_default()
        ));
    };
    Ok(Doc {
        schema_version: version,
        tool: raw.tool.unwrap_or(Tool {
            name: "triage".into(),
            version: String::new(),
        }),
        command: raw.command.unwrap_or_default(),
        hostname: host.hostname,
        window,
        resources: raw.resources,
        findings: raw.findings,
    })
}

/// Why a chunk did not parse, in words: truncated, not JSON, or another schema.
fn explain(chunk: &[u8], e: &serde_json::Error) -> String {
    let first = chunk.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return "a JSON array: give the reports themselves (e.g. `jq -c '.[]'`)".into();
    }
    if e.is_eof() {
        return format!("truncated (the document ends early: {e})");
    }
    if e.is_syntax() {
        return format!("not JSON ({e})");
    }
    // Valid JSON of the wrong shape: a newer/older schema, or something else entirely.
    let first_value = serde_json::Deserializer::from_slice(chunk)
        .into_iter::<VersionOnly>()
        .next();
    if let Some(Ok(v)) = first_value {
        let is_triage = v
            .tool
            .as_ref()
            .and_then(|t| t.get("name"))
            .is_some_and(|n| n == "triage");
        match v.schema_version {
            Some(serde_json::Value::String(s)) if major(&s) != Some(READABLE_MAJOR) => {
                return incompatible(&s)
            }
            Some(_) if is_triage => {
                return format!("a triage report this version cannot read ({e})")
            }
            _ => {}
        }
    }
    format!("not a triage report ({e})")
}

/// Reads documents from `input` (one or many) and hands each to `sink`. `name` names the
/// source in messages (`path`, `path#2` for the second document, `path:LINE` in errors).
///
/// Documents are split at lines that start with `{` in the first column (NDJSON lines, or the
/// first line of a pretty document), so a broken one costs only itself: the next still reads.
pub fn read_stream(name: &str, input: impl BufRead, sink: &mut dyn FnMut(Item)) {
    let mut input = input;
    let mut chunk: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut chunk_line = 1usize; // line number where `chunk` starts
    let mut line_no = 0usize;
    let mut docs = 0usize;
    let mut any_bytes = false;
    loop {
        line.clear();
        let n = match input.read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(e) => {
                sink(Item::Skipped(Skipped {
                    source: name.to_string(),
                    reason: format!("read error: {e}"),
                }));
                return;
            }
        };
        if n > 0 {
            any_bytes = true;
            line_no += 1;
        }
        let starts_doc = n > 0 && line[0] == b'{';
        if (n == 0 || starts_doc) && !chunk.is_empty() {
            parse_chunk(name, &chunk, chunk_line, &mut docs, sink);
            chunk.clear();
        }
        if n == 0 {
            break;
        }
        if chunk.is_empty() {
            chunk_line = line_no;
        }
        chunk.extend_from_slice(&line);
    }
    if !any_bytes {
        sink(Item::Skipped(Skipped {
            source: name.to_string(),
            reason: "empty".into(),
        }));
    }
}

/// One chunk may still hold several documents (`}{` on a line): parse them in turn.
fn parse_chunk(
    name: &str,
    chunk: &[u8],
    first_line: usize,
    docs: &mut usize,
    sink: &mut dyn FnMut(Item),
) {
    if chunk.iter().all(|b| b.is_ascii_whitespace()) {
        return;
    }
    let mut stream = serde_json::Deserializer::from_slice(chunk).into_iter::<RawDoc>();
    loop {
        let start = stream.byte_offset();
        let Some(next) = stream.next() else { break };
        *docs += 1;
        let source = if *docs == 1 {
            name.to_string()
        } else {
            format!("{name}#{}", *docs)
        };
        match next {
            Ok(raw) => match check(raw) {
                Ok(doc) => sink(Item::Report {
                    source,
                    doc: Box::new(doc),
                }),
                Err(reason) => sink(Item::Skipped(Skipped { source, reason })),
            },
            Err(e) => {
                let line = first_line + chunk[..start].iter().filter(|b| **b == b'\n').count();
                let reason = explain(&chunk[start..], &e);
                sink(Item::Skipped(Skipped {
                    source: format!("{source} (line {line})"),
                    reason,
                }));
                // The rest of this chunk cannot be located reliably: the next chunk starts
                // at the next document boundary.
                break;
            }
        }
    }
}

/// Every regular file under `dir`, recursively, sorted by path (hidden ones left out).
fn files_under(dir: &Path, out: &mut Vec<PathBuf>, sink: &mut dyn FnMut(Item)) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            sink(Item::Skipped(Skipped {
                source: dir.display().to_string(),
                reason: format!("cannot list: {e}"),
            }));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            files_under(&p, out, sink);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

/// Reads every input in order: `-` is stdin; a directory is every file under it.
pub fn read_inputs(inputs: &[PathBuf], sink: &mut dyn FnMut(Item)) {
    for input in inputs {
        if input.as_os_str() == "-" {
            let stdin = std::io::stdin();
            read_stream("stdin", stdin.lock(), sink);
            continue;
        }
        let mut files = Vec::new();
        if input.is_dir() {
            files_under(input, &mut files, sink);
            if files.is_empty() {
                sink(Item::Skipped(Skipped {
                    source: input.display().to_string(),
                    reason: "a directory with no files".into(),
                }));
            }
        } else {
            files.push(input.clone());
        }
        for f in files {
            let name = f.display().to_string();
            match std::fs::File::open(&f) {
                Ok(file) => read_stream(
                    &name,
                    std::io::BufReader::with_capacity(1 << 16, file),
                    sink,
                ),
                Err(e) => sink(Item::Skipped(Skipped {
                    source: name,
                    reason: format!("cannot open: {e}"),
                })),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_json(host: &str, version: &str) -> String {
        format!(
            r#"{{"schema_version":"{version}","tool":{{"name":"triage","version":"0.1.0"}},
"command":"sixty-second","host":{{"hostname":"{host}","online_cpus":2}},
"window":{{"start":"s","end":"e","elapsed_s":2.0,"samples":19}},
"resources":[],"findings":[{{"id":"cpu.saturation.runqueue","severity":"critical",
"resource":"cpu","summary":"x","evidence":[],"next":[],"score":3.0}}],
"sections":{{"ignored":[1,2,3]}},"unavailable":[],"added_in_1_9":true}}"#
        )
    }

    fn collect(name: &str, text: &str) -> (Vec<(String, Doc)>, Vec<Skipped>) {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        read_stream(name, text.as_bytes(), &mut |i| match i {
            Item::Report { source, doc } => ok.push((source, *doc)),
            Item::Skipped(s) => bad.push(s),
        });
        (ok, bad)
    }

    #[test]
    fn ndjson_and_pretty_documents_are_split() {
        let one = report_json("a", "1.0").replace('\n', "");
        let two = report_json("b", "1.1").replace('\n', "");
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&report_json("c", "1.7")).unwrap(),
        )
        .unwrap();
        let text = format!("{one}\n{two}\n{pretty}\n");
        let (ok, bad) = collect("in", &text);
        assert!(bad.is_empty(), "{bad:?}");
        let hosts: Vec<_> = ok
            .iter()
            .map(|(s, d)| (s.as_str(), d.hostname.as_str()))
            .collect();
        assert_eq!(hosts, [("in", "a"), ("in#2", "b"), ("in#3", "c")]);
        // A 1.0 report has no `subject`: it defaults to empty.
        assert!(ok[0].1.findings[0].subject.is_empty());
        assert_eq!(ok[2].1.schema_version, "1.7");
    }

    #[test]
    fn truncated_foreign_and_newer_major_are_named_and_the_rest_read() {
        let good = report_json("a", "1.1").replace('\n', "");
        let cut = &good[..good.len() / 2];
        let v2 = report_json("z", "2.0").replace('\n', "");
        let v2_changed = r#"{"schema_version":"2.0","tool":{"name":"triage"},"findings":"gone"}"#;
        let foreign = r#"{"name":"not triage","items":[1,2]}"#;
        let text = format!("{cut}\n{foreign}\n{v2}\n{v2_changed}\nplain text\n{good}\n");
        let (ok, bad) = collect("f", &text);
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].1.hostname, "a");
        let reasons: Vec<_> = bad.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(reasons[0].starts_with("truncated") || reasons[0].starts_with("not JSON"));
        assert!(bad[0].source.ends_with("(line 1)"), "{}", bad[0].source);
        assert!(
            reasons[1].starts_with("not a triage report"),
            "{}",
            reasons[1]
        );
        assert!(
            reasons[2].starts_with("schema_version 2.0"),
            "{}",
            reasons[2]
        );
        // The changed shape fails to parse first, and is still named by its version (the
        // trailing `plain text` line belongs to its chunk).
        assert!(reasons[3].contains("schema_version 2.0"), "{}", reasons[3]);
    }

    #[test]
    fn empty_input_and_arrays_are_named() {
        let (ok, bad) = collect("e", "");
        assert!(ok.is_empty());
        assert_eq!(bad[0].reason, "empty");
        let (_, bad) = collect("arr", &format!("[\n{}\n]\n", report_json("a", "1.1")));
        assert!(!bad.is_empty());
    }
}
