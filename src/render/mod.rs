//! Rendering one report: a table for people, JSON for machines. Both read the same `Report`, so
//! they cannot disagree.

pub mod cost;
pub mod deep;
pub mod markdown;
pub mod offcpu;
pub mod openmetrics;
pub mod profile;
mod qdisc;
mod syscalls;
pub mod table;

use crate::model::report::Report;
pub use crate::text::{is_invisible, sanitize, MAX_SHOWN};

/// The report as one JSON document (pretty, with a trailing newline).
pub fn json(report: &Report) -> String {
    let mut s = to_json_pretty(report);
    s.push('\n');
    s
}

/// A pretty formatter that also escapes [`is_invisible`] characters as `\uXXXX`.
struct SafeFormatter(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_invisible(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    write!(w, "\\u{:04x}", u)?;
                }
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Any value as pretty JSON (no trailing newline), with invisible characters escaped (see
/// [`is_invisible`]). Every JSON document triage prints goes through here.
pub fn to_json_pretty<T: serde::Serialize + ?Sized>(v: &T) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        SafeFormatter(serde_json::ser::PrettyFormatter::new()),
    );
    // Serializing plain data with string keys cannot fail.
    if let Err(e) = v.serialize(&mut ser) {
        return format!("{{\"error\":{:?}}}", e.to_string());
    }
    // The formatter writes only valid UTF-8 (the input's, and ASCII escapes).
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_bidi_and_invisible_characters() {
        let v = serde_json::json!({
            "name\u{202e}": "a\u{202e}b\u{200b}c\u{85}d\u{7f}e\u{e0041}f\u{2066}g\nh\u{1b}",
            "ok": "ünïcode 日本"
        });
        let s = to_json_pretty(&v);
        assert!(s.contains(r#""name\u202e""#), "{s}");
        assert!(
            s.contains(r#""a\u202eb\u200bc\u0085d\u007fe\udb40\udc41f\u2066g\nh\u001b""#),
            "{s}"
        );
        assert!(s.contains("ünïcode 日本"), "{s}");
        assert!(!s
            .chars()
            .any(|c| is_invisible(c) || (c.is_control() && c != '\n')));
        // Same value back, same layout as serde_json's pretty printer otherwise.
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
        let plain = serde_json::json!({"a": [1, {"b": "c"}], "d": {}});
        assert_eq!(
            to_json_pretty(&plain),
            serde_json::to_string_pretty(&plain).unwrap()
        );
    }

    #[test]
    fn escapes_control_and_bidi() {
        assert_eq!(sanitize("nginx"), "nginx");
        assert_eq!(sanitize("a\x1b]0;x\x07b"), "a\\x1b]0;x\\x07b");
        assert_eq!(sanitize("tab\there"), "tab\\x09here");
        assert_eq!(sanitize("c1\u{9b}"), "c1\\x9b");
        assert_eq!(sanitize("rtl\u{202e}cod"), "rtl\\u{202e}cod");
        assert_eq!(sanitize("ünïcode ok"), "ünïcode ok");
        assert_eq!(sanitize("zero\u{200b}width"), "zero\\u{200b}width");
        let huge = "(".repeat(100_000);
        let s = sanitize(&huge);
        assert!(s.starts_with(&"(".repeat(MAX_SHOWN)));
        assert!(
            s.ends_with("...(100000 bytes in all)"),
            "{}",
            &s[s.len() - 40..]
        );
    }
}
