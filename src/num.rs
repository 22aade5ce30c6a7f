//! Arithmetic on numbers from the system, a fixture or a BPF map: saturating, so a hostile or
//! garbled value never overflows. A bottom layer: it imports nothing from the crate.

/// Saturating sums of counters that come from the system, a fixture or a BPF map: a hostile or
/// garbled value (u64::MAX) must not overflow (a panic with overflow checks, a wrapped nonsense
/// value without).
pub trait SatSum {
    fn sat_sum(self) -> u64;
}

impl<I: Iterator<Item = u64>> SatSum for I {
    fn sat_sum(self) -> u64 {
        self.fold(0u64, |a, b| a.saturating_add(b))
    }
}

/// Round for presentation and stable snapshots: 2 decimals (values near zero keep 4).
pub fn r2(v: f64) -> f64 {
    if v.abs() < 0.01 && v != 0.0 {
        (v * 10_000.0).round() / 10_000.0
    } else {
        (v * 100.0).round() / 100.0
    }
}

/// Difference of a monotonic counter; `None` when it went backwards.
pub fn delta(a: u64, b: u64) -> Option<u64> {
    b.checked_sub(a)
}

/// `part` as a percentage of `whole`; none of nothing.
pub fn pct(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole * 100.0)
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 0 {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    })
}

/// Per-second rate of a monotonic counter over `elapsed_s`.
pub fn rate(a: u64, b: u64, elapsed_s: f64) -> Option<f64> {
    if elapsed_s <= 0.0 {
        return None;
    }
    delta(a, b).map(|d| d as f64 / elapsed_s)
}

/// [`rate`] of counters that may be missing.
pub fn opt_rate(a: Option<u64>, b: Option<u64>, el: f64) -> Option<f64> {
    rate(a?, b?, el)
}
