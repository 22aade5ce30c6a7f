//! `triage doctor` for people: one screen, 100 columns, every system string sanitized.

use std::fmt::Write as _;

use super::Doctor;
use crate::render::sanitize;

/// Where values start: ` ok   name<pad> value`.
const NAME_W: usize = 26;
const INDENT: usize = 1 + 4 + 1 + NAME_W + 1;

fn s(x: &str) -> String {
    sanitize(x).into_owned()
}

fn mark(ok: bool, color: bool) -> String {
    let (text, code) = if ok { ("ok", "32") } else { ("NO", "31;1") };
    // Pad before painting so escapes do not upset the alignment.
    let padded = format!("{text:<4}");
    if color {
        format!("\x1b[{code}m{padded}\x1b[0m")
    } else {
        padded
    }
}

fn head(title: &str, color: bool) -> String {
    if color {
        format!("\x1b[1m{title}\x1b[0m")
    } else {
        title.to_string()
    }
}

pub fn render(d: &Doctor, color: bool) -> String {
    let mut out = String::new();
    let host = d.hostname.as_deref().map(s).unwrap_or_else(|| "?".into());
    let kernel = d
        .preflight
        .kernel
        .as_deref()
        .map(s)
        .unwrap_or_else(|| "unknown".into());
    let root = if d.root == "/" {
        String::new()
    } else {
        format!(" (root {})", s(&d.root))
    };
    wrap(
        &mut out,
        "",
        "  ",
        &format!("triage doctor on {host}{root}: kernel {kernel}; what this box allows"),
    );
    if d.can_bpf {
        wrap(
            &mut out,
            "",
            "  ",
            "eBPF probes: allowed here (capabilities, BTF and lockdown permit them)",
        );
    } else {
        let _ = writeln!(out, "eBPF probes: NOT allowed here:");
        for b in &d.bpf_blockers {
            let what = b.what.trim_start_matches("eBPF: ");
            wrap(
                &mut out,
                "  -",
                "    ",
                &s(&format!("{what}: {}", b.reason)),
            );
            if let Some(f) = &b.fix {
                fix(&mut out, "    fix:", "         ", &s(f));
            }
        }
    }

    let _ = writeln!(out, "\n{}", head("CHECKS", color));
    let rest = " ".repeat(INDENT);
    let fix_first = format!("{rest}fix:");
    let fix_rest = " ".repeat(INDENT + 5);
    for c in &d.checks {
        let name = s(&c.name);
        let first = format!(" {} {name:<NAME_W$}", mark(c.ok, color));
        wrap_painted(&mut out, &first, &rest, &s(&c.value));
        if let Some(f) = &c.fix {
            fix(&mut out, &fix_first, &fix_rest, &s(f));
        }
    }

    let _ = writeln!(
        out,
        "\n{}",
        head("PROBES (loaded and attached for real)", color)
    );
    if d.probes.is_empty() {
        let _ = writeln!(out, " none in this build");
    }
    for p in &d.probes {
        let name = s(&p.name);
        let first = format!(" {} {name:<NAME_W$}", mark(p.ok, color));
        let mut value = if p.ok {
            format!(
                "attached via {}",
                p.attach_type
                    .as_deref()
                    .map(s)
                    .unwrap_or_else(|| "?".into())
            )
        } else {
            s(p.error.as_deref().unwrap_or("failed"))
        };
        value.push_str(&format!(" ({})", s(&p.what)));
        wrap_painted(&mut out, &first, &rest, &value);
        if let Some(f) = &p.fix {
            fix(&mut out, &fix_first, &fix_rest, &s(f));
        }
    }
    out
}

/// Word-wrap `text` to WIDTH columns: the first line starts with `first` and a space, the
/// others with `rest`. A shell substitution (`$(which triage)`) is never split, so a command
/// copied from the screen works.
fn wrap(out: &mut String, first: &str, rest: &str, text: &str) {
    let width = crate::render::table::width() as usize;
    let mut units: Vec<String> = Vec::new();
    let mut depth = 0i32;
    for word in text.split(' ') {
        match units.last_mut() {
            Some(u) if depth > 0 => {
                u.push(' ');
                u.push_str(word);
            }
            _ => units.push(word.to_string()),
        }
        // Only a shell substitution is kept whole: prose in parentheses may wrap.
        if depth > 0 || word.starts_with("$(") {
            depth += word.matches('(').count() as i32 - word.matches(')').count() as i32;
            depth = depth.max(0);
        }
    }
    let mut line = first.to_string();
    let mut empty = first.is_empty();
    for u in units {
        let ulen = u.chars().count();
        if !empty && line.chars().count() + 1 + ulen > width {
            let _ = writeln!(out, "{}", line.trim_end());
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(&u);
        empty = false;
    }
    let _ = writeln!(out, "{}", line.trim_end());
}

/// A fix line. A `...: sudo COMMAND` fix puts the command on a line of its own so that it can
/// be copied whole.
fn fix(out: &mut String, first: &str, rest: &str, text: &str) {
    match text.split_once(": sudo ") {
        Some((why, cmd)) => {
            wrap(out, first, rest, &format!("{why}:"));
            // `wrap` puts a space after a non-empty first prefix.
            let lead = &rest[..rest.len().saturating_sub(1)];
            wrap(out, lead, rest, &format!("sudo {cmd}"));
        }
        None => wrap(out, first, rest, text),
    }
}

/// `wrap` with a first-line prefix that may hold color escapes: the line is wrapped as if the
/// prefix were plain, then the plain prefix is swapped for the painted one.
fn wrap_painted(out: &mut String, first: &str, rest: &str, text: &str) {
    let plain = strip_escapes(first);
    let mut tmp = String::new();
    wrap(&mut tmp, &plain, rest, text);
    if let Some(tail) = tmp.strip_prefix(plain.trim_end()) {
        out.push_str(first.trim_end());
        out.push_str(tail);
    } else {
        out.push_str(&tmp);
    }
}

fn strip_escapes(x: &str) -> String {
    let mut out = String::new();
    let mut in_esc = false;
    for c in x.chars() {
        match (in_esc, c) {
            (false, '\x1b') => in_esc = true,
            (true, 'm') => in_esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::doctor::{Check, Doctor};
    use crate::model::report::Tool;
    use crate::probe::checks::Preflight;

    #[test]
    fn fits_100_columns_and_escapes_system_strings() {
        let d = Doctor {
            schema_version: "1.0".into(),
            tool: Tool {
                name: "triage".into(),
                version: "0".into(),
            },
            command: "doctor".into(),
            hostname: Some("evil\x1b]0;x\x07".into()),
            root: "/".into(),
            preflight: Preflight::default(),
            can_bpf: false,
            bpf_blockers: crate::probe::checks::bpf_blockers(&Preflight::default()),
            checks: vec![Check {
                name: "container".into(),
                ok: true,
                value: "cgroup path /kubepods/burstable/pod1234/".repeat(5),
                fix: Some("x ".repeat(80)),
            }],
            probes: vec![],
        };
        for color in [false, true] {
            let t = render(&d, color);
            assert!(t.contains("evil\\x1b]0;x\\x07"));
            for line in strip_escapes(&t).lines() {
                assert!(line.chars().count() <= 100, "too wide: {line}");
            }
            assert!(strip_escapes(&t).contains(" ok   container"));
        }
    }
}
