//! Column specs: a table declared once per field (its header, alignment and how a row's value
//! is shown), so `render` draws every table from its specs instead of building rows by hand.

use crate::text::sanitize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One column of a table of `R` rows.
pub struct Column<R> {
    pub header: &'static str,
    pub align: Align,
    /// The cell of a row (already escaped: system strings go through [`s`]).
    pub value: fn(&R) -> String,
}

impl<R> Column<R> {
    /// A column: its header, alignment and cell.
    pub const fn new(header: &'static str, align: Align, value: fn(&R) -> String) -> Self {
        Column {
            header,
            align,
            value,
        }
    }

    /// A left-aligned column (names, paths).
    pub const fn left(header: &'static str, value: fn(&R) -> String) -> Self {
        Self::new(header, Align::Left, value)
    }

    /// A right-aligned column (numbers).
    pub const fn right(header: &'static str, value: fn(&R) -> String) -> Self {
        Self::new(header, Align::Right, value)
    }

    /// The headers of `cols`.
    pub fn headers(cols: &[Column<R>]) -> Vec<&'static str> {
        cols.iter().map(|c| c.header).collect()
    }

    /// One row's cells.
    pub fn cells(cols: &[Column<R>], row: &R) -> Vec<String> {
        cols.iter().map(|c| (c.value)(row)).collect()
    }
}

/// One decimal.
pub fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// One decimal, `-` for none.
pub fn o1(v: Option<f64>) -> String {
    v.map(f1).unwrap_or_else(|| "-".into())
}

/// A count, `-` for none.
pub fn ou(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

/// A string from the system, escaped.
pub fn s(x: &str) -> String {
    sanitize(x).into_owned()
}

/// Keep the end of a long name (`…sandbox/v1/python`): the end tells mounts and cgroups apart.
pub fn shorten(x: &str, max: usize) -> String {
    let n = x.chars().count();
    if n <= max {
        return x.to_string();
    }
    let tail: String = x.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}
