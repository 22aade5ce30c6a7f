//! Text helpers every layer may use: escaping system strings, human-readable sizes. The
//! bottom layer: it imports nothing from the crate.

use std::borrow::Cow;

/// Characters of one system string shown in a table at most.
pub const MAX_SHOWN: usize = 1024;

/// Make a system-provided string safe for a terminal: control characters (C0, DEL, C1),
/// Unicode bidi controls and invisible characters become visible escapes, so a process named `\x1b]0;pwned\x07` cannot
/// move the cursor, retitle the terminal or reorder what is shown.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    // Bidi overrides/isolates and the other invisible characters of `is_invisible` too.
    let bad = |c: char| c.is_control() || is_invisible(c);
    // A hostile name of 100,000 characters would make table layout quadratic: show the start.
    let long = s.len() > MAX_SHOWN;
    if !long && !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(MAX_SHOWN) + 8);
    for (i, c) in s.chars().enumerate() {
        if i >= MAX_SHOWN {
            out.push_str(&format!("...({} bytes in all)", s.len()));
            break;
        }
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

/// Characters that are invisible or reorder text: C1 controls and DEL, bidi controls, zero-width
/// and other format characters, line/paragraph separators, tag characters. JSON output writes
/// them as `\uXXXX` (serde_json escapes only C0 controls), so a viewer of the JSON sees them.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{7f}'..='\u{9f}'
        | '\u{ad}'
        | '\u{34f}'
        | '\u{61c}'
        | '\u{115f}'..='\u{1160}'
        | '\u{17b4}'..='\u{17b5}'
        | '\u{180b}'..='\u{180f}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}'
        | '\u{3164}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{feff}'
        | '\u{ffa0}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e0fff}')
}

/// `1.5 GiB`.
pub fn human_bytes(b: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}
