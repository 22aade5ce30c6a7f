//! log2 histograms as the BPF side fills them: slot `i` counts values in `[2^i, 2^(i+1))`
//! (slot 0 also holds 0 and 1), the last slot is open-ended. Percentiles are estimated to the
//! bucket: the true value lies between the bounds given, never more precisely.

use serde::{Deserialize, Serialize};

/// Lower bound of slot `i` (inclusive).
pub fn slot_lo(i: usize) -> u64 {
    if i == 0 {
        0
    } else {
        // A map (or a recorded one) with more than 64 slots: the bound saturates.
        u32::try_from(i)
            .ok()
            .and_then(|i| 1u64.checked_shl(i))
            .unwrap_or(u64::MAX)
    }
}

/// Upper bound of slot `i` (exclusive); `None` for the last, open slot of `n`.
pub fn slot_hi(i: usize, n: usize) -> Option<u64> {
    if i.saturating_add(1) >= n {
        None
    } else {
        Some(slot_lo(i.saturating_add(1)))
    }
}

/// The slot a value falls in (what the BPF side computes), clamped to `n` slots.
pub fn slot_of(v: u64, n: usize) -> usize {
    let s = if v == 0 {
        0
    } else {
        63 - v.leading_zeros() as usize
    };
    s.min(n.saturating_sub(1))
}

/// A percentile known only to a bucket: `lo_ns <= value < hi_ns` (`hi_ns` null = open).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Percentile {
    pub p: f64,
    pub lo_ns: u64,
    pub hi_ns: Option<u64>,
}

/// The bucket holding the `p`-th percentile (0 < p <= 100) of `slots`; `None` when empty.
/// `total_slots` is how many slots the BPF side has (to know which one is open-ended).
pub fn percentile(slots: &[u64], p: f64, total_slots: usize) -> Option<Percentile> {
    let total: u64 = slots.iter().fold(0u64, |a, &c| a.saturating_add(c));
    if total == 0 {
        return None;
    }
    // The rank of the p-th percentile, 1-based: the smallest value with at least p% at or below.
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, &c) in slots.iter().enumerate() {
        seen = c.saturating_add(seen);
        if seen >= rank {
            return Some(Percentile {
                p,
                lo_ns: slot_lo(i),
                hi_ns: slot_hi(i, total_slots),
            });
        }
    }
    None
}

/// `[lo, hi)` in short human units: `1-2 ms`, `512 ns-1 µs`.
pub fn human_range(lo: u64, hi: Option<u64>) -> String {
    match hi {
        Some(h) => format!("{}-{}", human_ns(lo), human_ns(h)),
        None => format!(">={}", human_ns(lo)),
    }
}

/// Nanoseconds in the largest unit that keeps a short number (`512ns`, `4.1us`, `33ms`, `2.1s`).
pub fn human_ns(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        trim(v / 1e3, "us")
    } else if ns < 1_000_000_000 {
        trim(v / 1e6, "ms")
    } else {
        trim(v / 1e9, "s")
    }
}

fn trim(v: f64, unit: &str) -> String {
    if v >= 100.0 || (v - v.round()).abs() < 0.05 {
        format!("{:.0}{unit}", v)
    } else {
        format!("{v:.1}{unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_are_powers_of_two() {
        assert_eq!((slot_lo(0), slot_hi(0, 36)), (0, Some(2)));
        assert_eq!((slot_lo(1), slot_hi(1, 36)), (2, Some(4)));
        assert_eq!((slot_lo(10), slot_hi(10, 36)), (1024, Some(2048)));
        assert_eq!(slot_hi(35, 36), None);
        for v in [0u64, 1, 2, 3, 4, 1023, 1024, 1025, 50_000_000, u64::MAX] {
            let s = slot_of(v, 64);
            assert!(slot_lo(s) <= v, "{v} below slot {s}");
            if let Some(h) = slot_hi(s, 64) {
                assert!(v < h, "{v} above slot {s}");
            }
        }
        assert_eq!(slot_of(50_000_000, 36), 25); // 2^25 = 33.5 ms <= 50 ms < 67.1 ms
        assert_eq!(slot_of(u64::MAX, 36), 35);
    }

    #[test]
    fn percentiles_name_the_bucket() {
        // 90 calls in [1024, 2048), 10 in [1 Mi, 2 Mi).
        let mut slots = vec![0u64; 21];
        slots[10] = 90;
        slots[20] = 10;
        let p50 = percentile(&slots, 50.0, 36).unwrap();
        assert_eq!((p50.lo_ns, p50.hi_ns), (1024, Some(2048)));
        let p90 = percentile(&slots, 90.0, 36).unwrap();
        assert_eq!(p90.lo_ns, 1024);
        let p99 = percentile(&slots, 99.0, 36).unwrap();
        assert_eq!((p99.lo_ns, p99.hi_ns), (1 << 20, Some(1 << 21)));
        assert_eq!(percentile(&[0, 0], 50.0, 36), None);
        // A single value: every percentile is its bucket.
        let one = [0, 0, 0, 1];
        assert_eq!(percentile(&one, 1.0, 36).unwrap().lo_ns, 8);
        assert_eq!(percentile(&one, 100.0, 36).unwrap().lo_ns, 8);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_ns(512), "512ns");
        assert_eq!(human_ns(2048), "2us");
        assert_eq!(human_ns(33_554_432), "33.6ms");
        assert_eq!(human_range(1024, Some(2048)), "1us-2us");
        assert_eq!(human_range(1 << 35, None), ">=34.4s");
    }

    /// A recorded or hostile histogram with more than 64 slots and u64::MAX counts: bounds
    /// saturate instead of overflowing the shift, totals saturate instead of wrapping.
    #[test]
    fn more_than_64_slots_and_huge_counts_saturate() {
        assert_eq!(slot_lo(63), 1 << 63);
        assert_eq!(slot_lo(64), u64::MAX);
        assert_eq!(slot_lo(1000), u64::MAX);
        assert_eq!(slot_hi(70, 80), Some(u64::MAX));
        assert_eq!(slot_of(5, 0), 0);
        let slots = vec![u64::MAX; 80];
        let p = percentile(&slots, 99.0, 80).unwrap();
        assert_eq!((p.lo_ns, p.hi_ns), (0, Some(2)));
    }
}
