//! Rendering one report: a table for people, JSON for machines. Both read the same `Report`, so
//! they cannot disagree.

pub mod cost;
pub mod deep;
pub mod doctor;
pub mod offcpu;
pub mod profile;
mod syscalls;
pub mod table;

use std::borrow::Cow;

use crate::model::report::Report;

/// Make a system-provided string safe for a terminal: control characters (C0, DEL, C1) and
/// Unicode bidi overrides become visible escapes, so a process named `\x1b]0;pwned\x07` cannot
/// move the cursor, retitle the terminal or reorder what is shown.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    let bad =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            let n = c as u32;
            if n <= 0xff {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The report as one JSON document (pretty, with a trailing newline).
pub fn json(report: &Report) -> String {
    // Serializing plain data with string keys cannot fail.
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_and_bidi() {
        assert_eq!(sanitize("nginx"), "nginx");
        assert_eq!(sanitize("a\x1b]0;x\x07b"), "a\\x1b]0;x\\x07b");
        assert_eq!(sanitize("tab\there"), "tab\\x09here");
        assert_eq!(sanitize("c1\u{9b}"), "c1\\x9b");
        assert_eq!(sanitize("rtl\u{202e}cod"), "rtl\\u{202e}cod");
        assert_eq!(sanitize("ünïcode ok"), "ünïcode ok");
    }
}
