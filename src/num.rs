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
