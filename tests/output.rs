//! The outputs around a report: the verdict (`summary`), markdown, the exit status, the table
//! at 80 columns, streaming time series, completions. On every fixture (a directory with
//! meta.json), and through the real binary where the behaviour is the binary's.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use triage::analyze::{build_report, Analysis};
use triage::collect::run::from_fixture;
use triage::model::report::Report;
use triage::model::summary::Status;
use triage::render;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn fixture(name: &str) -> String {
    fixtures_dir().join(name).display().to_string()
}

fn report(name: &str) -> Report {
    let dir = fixtures_dir().join(name);
    let readings = from_fixture(&dir).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    build_report(&readings, "sixty-second", &Analysis::default())
}

fn all_fixtures() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/ exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn triage() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_triage"));
    c.env("NO_COLOR", "1");
    c
}

fn run(args: &[&str]) -> Output {
    triage().args(args).output().expect("spawn triage")
}

#[test]
fn every_fixture_renders_markdown_verdict_first() {
    for name in all_fixtures() {
        let r = report(&name);
        let md = render::markdown::render(&r);
        let first = md.lines().next().unwrap();
        let word = r.summary.status.name().to_uppercase();
        assert!(
            first.starts_with(&format!("**{word}**: ")),
            "{name}: markdown does not start with the verdict: {first}"
        );
        // Every <details> is closed, and no raw control character or bidi override survives.
        assert_eq!(
            md.matches("<details>").count(),
            md.matches("</details>").count(),
            "{name}"
        );
        assert!(
            !md.chars()
                .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{name}: raw control character in markdown"
        );
        for f in &r.findings {
            assert!(
                md.contains(&format!("`{}`", f.id)),
                "{name}: {} missing",
                f.id
            );
        }
        insta::assert_snapshot!(format!("{name}.md"), md);
    }
}

#[test]
fn summary_is_the_verdict_of_each_fixture() {
    let expect: &[(&str, Status, Option<&str>)] = &[
        ("idle", Status::Ok, None),
        (
            "cpu-saturation",
            Status::Critical,
            Some("cpu.saturation.runqueue"),
        ),
        (
            "cgroup-cpu-throttle",
            Status::Critical,
            Some("cgroup.cpu.throttled"),
        ),
        (
            "memory-pressure-swap",
            Status::Critical,
            Some("memory.saturation.swapping"),
        ),
        (
            "disk-saturation",
            Status::Critical,
            Some("disk.saturation.queue"),
        ),
        (
            "net-retransmits",
            Status::Critical,
            Some("tcp.errors.retransmits"),
        ),
    ];
    for (name, status, top) in expect {
        let r = report(name);
        let s = &r.summary;
        assert_eq!(s.status, *status, "{name}: {}", s.text);
        assert_eq!(s.top.first().map(|t| t.id.as_str()), *top, "{name}");
        assert!(s.top.len() <= 3);
        assert!(s.missing.is_empty(), "{name}: {:?}", s.missing);
        let word = status.name().to_uppercase();
        assert!(
            s.text.starts_with(&format!("{word}: ")),
            "{name}: {}",
            s.text
        );
        // The same line opens the table.
        let table = render::table::render(&r, &render::table::Style { color: false });
        assert!(table.starts_with(&format!("{word}: ")), "{name}: {table}");
    }
    // The top findings' subjects come along.
    for name in all_fixtures() {
        let r = report(&name);
        for t in &r.summary.top {
            let f = r.findings.iter().find(|f| f.id == t.id).unwrap();
            assert_eq!(t.subject, f.subject, "{name}");
        }
    }
    // Counts agree with the findings.
    for name in all_fixtures() {
        let r = report(&name);
        let n = r.summary.critical + r.summary.warning + r.summary.info;
        assert_eq!(n as usize, r.findings.len(), "{name}");
        // Only the fixture with a garbled /proc/meminfo lacks a core reading.
        let incomplete = r.summary.status == Status::Incomplete;
        assert_eq!(
            incomplete,
            name == "garbled-proc",
            "{name}: {:?}",
            r.summary
        );
    }
}

#[test]
fn nonexistent_root_is_incomplete_and_exits_1() {
    let o = run(&[
        "sixty-second",
        "--root",
        "/nonexistent",
        "-d",
        "0.2",
        "--no-bpf",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("INCOMPLETE: "), "{text}");
    assert!(!text.contains("No resource is saturated"), "{text}");
    assert!(
        !text.contains("CONFIG_PSI"),
        "wrong PSI fix on a missing root: {text}"
    );
    let o = run(&[
        "sixty-second",
        "--root",
        "/nonexistent",
        "-d",
        "0.2",
        "--no-bpf",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["summary"]["status"], "incomplete");
    assert_eq!(j["schema_version"], "1.4");
    let missing = j["summary"]["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 3, "{missing:?}");
    assert!(j["host"]["cgroup_mode"].is_null());
    assert!(j["host"]["in_container"].is_null());
    let o = run(&[
        "sixty-second",
        "--root",
        "/nonexistent",
        "-d",
        "0.2",
        "--no-bpf",
        "--format",
        "markdown",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("**INCOMPLETE**: "));
}

#[test]
fn fail_on_turns_the_worst_severity_into_the_exit_status() {
    let cpu = fixture("cpu-saturation");
    let idle = fixture("idle");
    let code = |args: &[&str]| run(args).status.code();
    // Without the flag a report exits 0 whatever it found.
    assert_eq!(code(&["sixty-second", "--fixture", &cpu]), Some(0));
    assert_eq!(
        code(&["sixty-second", "--fixture", &cpu, "--fail-on", "warning"]),
        Some(4)
    );
    assert_eq!(
        code(&["sixty-second", "--fixture", &cpu, "--fail-on", "critical"]),
        Some(4)
    );
    assert_eq!(
        code(&["sixty-second", "--fixture", &idle, "--fail-on", "warning"]),
        Some(0)
    );
    assert_eq!(
        code(&["--fail-on", "warning", "cpu", "--fixture", &idle, "--json"]),
        Some(0)
    );
    // A warning at worst (`mem` on memory-leak: the RSS growth): 3 at --fail-on warning, 0 at
    // --fail-on critical.
    let w = fixture("memory-leak");
    assert_eq!(code(&["mem", "--fixture", &w]), Some(0));
    assert_eq!(
        code(&["mem", "--fixture", &w, "--fail-on", "warning"]),
        Some(3)
    );
    assert_eq!(
        code(&["mem", "--fixture", &w, "--fail-on", "critical"]),
        Some(0)
    );
    assert_eq!(
        code(&["sixty-second", "--fixture", &idle, "--fail-on", "bogus"]),
        Some(2)
    );
}

#[test]
fn conflicting_flags_are_usage_errors() {
    let idle = fixture("idle");
    for args in [
        vec![
            "--json",
            "--format",
            "table",
            "sixty-second",
            "--fixture",
            &idle,
        ],
        vec![
            "sixty-second",
            "--fixture",
            &idle,
            "--json",
            "--format",
            "markdown",
        ],
        vec!["sixty-second", "--fixture", &idle, "--format", "ndjson"],
        vec!["doctor", "--format", "markdown"],
    ] {
        let o = run(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(o.stdout.is_empty(), "{args:?} printed a report");
        assert!(String::from_utf8_lossy(&o.stderr).contains("triage:"));
    }
    // Agreeing flags are fine.
    assert_eq!(
        run(&[
            "sixty-second",
            "--fixture",
            &idle,
            "--json",
            "--format",
            "json"
        ])
        .status
        .code(),
        Some(0)
    );
}

/// Tokens of a rendering: whitespace-separated words.
fn tokens(text: &str) -> BTreeSet<&str> {
    text.split_whitespace().collect()
}

#[test]
fn every_fixture_fits_80_columns_without_splitting_a_token() {
    let st = render::table::Style { color: false };
    let mut bad = Vec::new();
    for name in all_fixtures() {
        let r = report(&name);
        let narrow = render::table::render_width(&r, &st, 80);
        let wide = render::table::render_width(&r, &st, 1000);
        let whole = tokens(&wide);
        for line in narrow.lines() {
            if line.chars().count() > 80 {
                bad.push(format!("{name}: {} columns: {line}", line.chars().count()));
            }
        }
        for t in tokens(&narrow) {
            // Rules under table headers are as wide as the table.
            if !t.chars().all(|c| c == '-') && !whole.contains(t) {
                bad.push(format!(
                    "{name}: `{t}` is not a token of the unwrapped report"
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} problems:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn width_flag_sets_the_table_width() {
    let cpu = fixture("deep-cpu-saturation");
    for w in ["80", "120"] {
        let o = run(&["sixty-second", "--fixture", &cpu, "--width", w]);
        assert!(o.status.success());
        let text = String::from_utf8_lossy(&o.stdout);
        let max = text.lines().map(|l| l.chars().count()).max().unwrap();
        let w: usize = w.parse().unwrap();
        assert!(max <= w, "--width {w}: a line of {max}");
        assert!(max > w - 20, "--width {w}: the widest line is only {max}");
    }
    // Not a terminal and no flag: 100.
    let o = run(&["sixty-second", "--fixture", &cpu]);
    let max = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!((90..=100).contains(&max), "default width: {max}");
}

/// Read lines from the child's stdout until `want` lines matched or the deadline.
fn read_rows(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    is_row: impl Fn(&str) -> bool,
) -> (String, Instant) {
    for line in lines {
        let line = line.expect("read stdout");
        if is_row(&line) {
            return (line, Instant::now());
        }
    }
    panic!("stdout ended before a row");
}

#[test]
fn series_streams_a_row_per_window() {
    // Live, unprivileged-friendly (--no-bpf): three windows of 1 s.
    let start = Instant::now();
    let mut child = triage()
        .args(["cpu", "--interval", "1", "--count", "3", "--no-bpf"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let is_row = |l: &str| {
        let b = l.as_bytes();
        b.len() > 9 && b[0] == b' ' && b[1].is_ascii_digit() && b[3] == b':'
    };
    let (row, first_at) = read_rows(&mut lines, is_row);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    let end = Instant::now();
    assert!(status.success());
    // The first row came about one window in, well before the last window ended.
    assert!(
        end.duration_since(first_at) >= Duration::from_millis(1500),
        "first row {row:?} at {:?}, exit at {:?}",
        first_at - start,
        end - start
    );
    assert_eq!(rest.iter().filter(|l| is_row(l)).count(), 2, "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("FINDINGS (in any window)")));
    let last = rest.iter().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(
        ["OK:", "WARNING:", "CRITICAL:", "INCOMPLETE:"]
            .iter()
            .any(|w| last.starts_with(w))
            || rest.iter().any(|l| ["OK:", "WARNING:", "CRITICAL:"]
                .iter()
                .any(|w| l.starts_with(w))),
        "no verdict after the series: {rest:?}"
    );
}

#[test]
fn ndjson_streams_one_document_per_window() {
    let mut child = triage()
        .args([
            "mem",
            "--interval",
            "0.5",
            "--count",
            "3",
            "--format",
            "ndjson",
            "--no-bpf",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (first, first_at) = read_rows(&mut lines, |l| l.starts_with('{'));
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(child.wait().unwrap().success());
    assert!(first_at.elapsed() >= Duration::from_millis(700));
    let docs: Vec<serde_json::Value> = std::iter::once(first)
        .chain(rest)
        .map(|l| serde_json::from_str(&l).expect("each line is one JSON document"))
        .collect();
    assert_eq!(docs.len(), 3);
    for d in &docs {
        assert_eq!(d["command"], "mem");
        assert_eq!(d["schema_version"], "1.4");
        assert!(d["summary"]["status"].is_string());
    }
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_triage()"),
        ("zsh", "#compdef triage"),
        ("fish", "complete -c triage"),
    ] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(marker), "{shell}: no {marker}");
        assert!(
            text.contains("sixty-second") && text.contains("fail-on"),
            "{shell}"
        );
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn verbose_says_what_was_read_and_skipped() {
    // garbled-proc has no readable /proc/meminfo: an incomplete report, exit 1.
    let o = run(&["sixty-second", "--fixture", &fixture("garbled-proc"), "-v"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("read: CPU counters (/proc/stat)"), "{err}");
    assert!(err.contains("skipped "), "{err}");
    assert!(err.contains("verdict "), "{err}");
    let o = run(&["sixty-second", "--fixture", &fixture("idle"), "-v"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("-v: sixty-second over"), "{err}");
}

fn json_of(args: &[&str]) -> serde_json::Value {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn json_says_how_many_rows_top_left_out() {
    let fx = fixture("deep-cpu-saturation");
    let all = json_of(&["cpu", "--fixture", &fx, "--top", "1000", "--json"]);
    let cut = json_of(&["cpu", "--fixture", &fx, "--top", "2", "--json"]);
    let n = all["sections"]["cpu_detail"]["top_processes"]
        .as_array()
        .unwrap()
        .len();
    assert!(n > 2, "the fixture has {n} processes");
    let d = &cut["sections"]["cpu_detail"];
    assert_eq!(d["top_processes"].as_array().unwrap().len(), 2);
    assert_eq!(d["left_out"]["top_processes"].as_u64(), Some(n as u64 - 2));
    assert!(all["sections"]["cpu_detail"].get("left_out").is_none());
    // offcpu: the per-process list is cut too, and says so.
    let off = fixture("offcpu-lock-contention");
    let all = json_of(&["offcpu", "--fixture", &off, "--top", "1000", "--json"]);
    let cut = json_of(&["offcpu", "--fixture", &off, "--top", "1", "--json"]);
    let total = all["sections"]["offcpu"]["processes"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        cut["sections"]["offcpu"]["processes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        cut["sections"]["offcpu"]["processes_total"].as_u64(),
        Some(total as u64)
    );
}

#[test]
fn offcpu_fixture_host_facts_are_null_not_made_up() {
    let off = fixture("offcpu-lock-contention");
    let j = json_of(&["offcpu", "--fixture", &off, "--json"]);
    let h = &j["host"];
    for k in [
        "cgroup_mode",
        "clock_ticks_per_s",
        "page_size_bytes",
        "in_container",
    ] {
        assert!(h[k].is_null(), "host.{k} = {}", h[k]);
    }
    let t = String::from_utf8_lossy(&run(&["offcpu", "--fixture", &off]).stdout).into_owned();
    assert!(!t.contains("? RAM") && !t.contains("cgroup -"), "{t}");
}

#[test]
fn progress_on_a_terminal_only() {
    let bin = env!("CARGO_BIN_EXE_triage");
    // Not a terminal: nothing extra on stderr.
    let o = run(&["sixty-second", "-d", "0.6", "--no-bpf"]);
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("measuring"));
    // A terminal (util-linux `script` gives the child a pty): what is measured and the time left.
    let o = Command::new("script")
        .args([
            "-qec",
            &format!("{bin} sixty-second -d 0.6 --no-bpf"),
            "/dev/null",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("util-linux script (bsdutils, essential on Debian)");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("measuring the 60-second checklist (0.6 s window):")
            && text.contains("s left"),
        "{text}"
    );
}

#[test]
fn hostile_names_cannot_break_the_markdown() {
    let mut r = report("cpu-saturation");
    let evil = "a|b`c<img src=x onerror=alert(1)>*d*_e_[f](g)\x1b[31m\u{202e}h";
    if let Some(p) = r.sections.processes.as_mut() {
        p.top_cpu[0].comm = evil.to_string();
    }
    r.findings[0].summary = format!("CPU saturated by {evil}");
    r.findings[0].next = vec![format!("pidstat -p 1 | grep '{evil}'")];
    r.unavailable.push(triage::model::report::Unavailable {
        what: evil.into(),
        reason: "</details><script>x</script>".into(),
        fix: None,
    });
    triage::model::summary::refresh(&mut r);
    let md = render::markdown::render(&r);
    // Outside code (spans and fenced blocks, where markdown shows text literally) no raw HTML.
    let prose = outside_code(&md);
    let raw = |tag: &str| {
        prose
            .match_indices(tag)
            .any(|(i, _)| !prose[..i].ends_with('\\'))
    };
    assert!(
        !raw("<img") && !raw("<script") && !raw("</details><"),
        "{prose}"
    );
    assert!(
        md.contains("| `` a\\|b`c<img src=x"),
        "the name shown literally in a code span: {md}"
    );
    assert!(!md.contains('\x1b') && !md.contains('\u{202e}'), "{md}");
    assert!(
        prose.contains("\\<img src=x"),
        "escaped, still readable: {prose}"
    );
    // Exactly one closing tag per folded section: the hostile one is escaped.
    let opened = md.lines().filter(|l| l.starts_with("<details>")).count();
    let closed = md.lines().filter(|l| *l == "</details>").count();
    assert_eq!((opened, closed), (2, 2), "{md}");
    // The top-processes row still has its 7 cells (the pipe in the name is escaped).
    let row = md
        .lines()
        .find(|l| l.starts_with("| 23510 |"))
        .expect("the evil process row");
    let cells = row.replace("\\|", "").matches('|').count();
    assert_eq!(cells, 8, "{row}");
    // Code spans survive backticks: the next step is delimited by a longer backtick run.
    assert!(md.contains("`` pidstat -p 1"), "{md}");
}

/// `md` without its fenced blocks and inline code spans (CommonMark: a span closes at the next
/// backtick run of the same length).
fn outside_code(md: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in md.lines() {
        let ticks: String = line.chars().take_while(|&c| c == '`').collect();
        match &fence {
            Some(f) if ticks.len() >= f.len() && line.trim() == ticks => fence = None,
            Some(_) => {}
            None if ticks.len() >= 3 => fence = Some(ticks),
            None => {
                let chars: Vec<char> = line.chars().collect();
                let mut i = 0;
                while i < chars.len() {
                    if chars[i] == '`' && (i == 0 || chars[i - 1] != '\\') {
                        let n = chars[i..].iter().take_while(|&&c| c == '`').count();
                        let mut j = i + n;
                        let mut closed = None;
                        while j < chars.len() {
                            let m = chars[j..].iter().take_while(|&&c| c == '`').count();
                            if m == n {
                                closed = Some(j + m);
                                break;
                            }
                            j += m.max(1);
                        }
                        match closed {
                            Some(end) => i = end,
                            None => {
                                out.extend(&chars[i..i + n]);
                                i += n;
                            }
                        }
                    } else {
                        out.push(chars[i]);
                        i += 1;
                    }
                }
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn tables_fit_the_terminal_down_to_80_columns() {
    let bin = env!("CARGO_BIN_EXE_triage");
    let fx = fixture("deep-cpu-saturation");
    let widest = |cols: u16| {
        let o = Command::new("script")
            .args([
                "-qec",
                &format!("stty rows 40 cols {cols}; {bin} sixty-second --fixture {fx}"),
                "/dev/null",
            ])
            .env("NO_COLOR", "1")
            .output()
            .expect("util-linux script");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.trim_end_matches('\r').chars().count())
            .max()
            .unwrap()
    };
    let w80 = widest(80);
    assert!((70..=80).contains(&w80), "80-column terminal: {w80}");
    let w132 = widest(132);
    assert!((100..=132).contains(&w132), "132-column terminal: {w132}");
    // Narrower than 80: laid out for 80 (the terminal wraps; we never go below).
    assert!(widest(60) <= 80);
}

#[test]
fn every_subcommand_fits_80_columns_on_its_fixture() {
    let runs: &[&[&str]] = &[
        &["cpu", "--fixture", "deep-cpu-saturation"],
        &["mem", "--fixture", "deep-memory-pressure-swap"],
        &["disk", "--fixture", "deep-disk-saturation"],
        &["net", "--fixture", "listen-overflow"],
        &["syscalls", "--fixture", "syscall-storm"],
        &["syscalls", "--fixture", "futex-lock-contention"],
        &["offcpu", "--fixture", "offcpu-lock-contention"],
        &["doctor"],
    ];
    for args in runs {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if a.len() == 3 {
            a[2] = fixture(&a[2]);
        }
        a.extend(["--width".into(), "80".into()]);
        let o = triage().args(&a).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(!text.is_empty(), "{args:?}");
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{args:?}: {line}");
        }
    }
}
