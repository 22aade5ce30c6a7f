//! Rendering one report: a table for people, JSON for machines. Both read the same `Report`, so
//! they cannot disagree.

pub mod cost;
pub mod deep;
pub mod markdown;
pub mod offcpu;
pub mod openmetrics;
pub mod profile;
mod syscalls;
pub mod table;

use crate::model::report::Report;
pub use crate::text::sanitize;

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
