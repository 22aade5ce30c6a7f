//! Map keys and values decoded as the types the BPF side declares (`bpf/*.h`, generated into
//! each skeleton's `types` module by libbpf-cargo), never by byte offsets.
//!
//! A buffer whose length is not exactly the type's size is refused and counted: the count
//! ends up in the probe's `dropped.decode_errors`, so a layout mismatch between the two sides
//! shows in the report instead of turning into zeros.

use bytemuck::AnyBitPattern;

/// Declare generated skeleton types as readable from any bytes of their size.
///
/// Only for `#[repr(C)]` structs whose fields are integers, arrays of integers or other types
/// declared here (what `bpf/*.h` holds: no pointers, no bools, no enums), so every bit
/// pattern is a valid value; padding, if any, is fine for reading.
#[allow(unused_macros)] // only used with the `bpf` feature (and in tests)
macro_rules! map_types {
    ($($t:ty),+ $(,)?) => {
        $(
            // SAFETY: see the macro's contract above; the generated type is `#[repr(C)]`,
            // `Copy` and made only of integers.
            unsafe impl ::bytemuck::Zeroable for $t {}
            // SAFETY: as above, any bit pattern is a valid value.
            unsafe impl ::bytemuck::AnyBitPattern for $t {}
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use map_types;

/// Set a probe's scope in its read-only data before load, as every probe's BPF side declares
/// it: the traced process (`targ_tgid`, 0: all), triage itself (`self_tgid`, never traced),
/// the v2 cgroup (`targ_cgid`, `targ_cg_level`) and, for probes that filter by name, the
/// command name (`filter_comm`, `targ_comm`: its first 15 bytes, NUL-terminated).
#[allow(unused_macros)] // only used with the `bpf` feature
macro_rules! set_scope {
    ($ro:expr, $pid:expr, $cgroup:expr) => {{
        let ro = &mut *$ro;
        ro.targ_tgid = $pid.unwrap_or(0);
        ro.self_tgid = std::process::id();
        if let Some((_, id, level)) = $cgroup {
            ro.targ_cgid = *id;
            ro.targ_cg_level = *level as i32;
        }
    }};
    ($ro:expr, $pid:expr, $cgroup:expr, comm: $comm:expr) => {{
        let ro = &mut *$ro;
        $crate::probe::decode::set_scope!(ro, $pid, $cgroup);
        if let Some(c) = $comm {
            ro.filter_comm = true;
            let n = ro.targ_comm.len() - 1;
            for (d, s) in ro.targ_comm.iter_mut().zip(c.bytes().take(n)) {
                *d = s as _;
            }
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use set_scope;

/// Reads map buffers as typed values, counting those of the wrong size.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Buffers refused: their length was not the type's size.
    pub errors: u64,
}

impl Decoder {
    /// `b` as a `T`, or `None` (counted) when its length is not `size_of::<T>()`.
    pub fn get<T: AnyBitPattern>(&mut self, b: &[u8]) -> Option<T> {
        match decode(b) {
            Ok(v) => Some(v),
            Err(_) => {
                self.errors += 1;
                None
            }
        }
    }

    /// Every per-CPU copy of a value as a `T`, index = CPU; a copy of the wrong size is
    /// counted and stands as all zeros, so the indexes stay the CPUs'.
    pub fn percpu<T: AnyBitPattern>(&mut self, vals: &[Vec<u8>]) -> Vec<T> {
        vals.iter()
            .map(|v| self.get(v).unwrap_or_else(T::zeroed))
            .collect()
    }

    /// Every entry of a hash map as a (`K`, `V`); entries refused (counted) or gone between
    /// listing and lookup are left out.
    #[cfg(feature = "bpf")]
    pub fn entries<K: AnyBitPattern, V: AnyBitPattern>(
        &mut self,
        map: &impl libbpf_rs::MapCore,
    ) -> Vec<(K, V)> {
        let mut out = Vec::new();
        for k in map.keys() {
            let Some(key) = self.get::<K>(&k) else {
                continue;
            };
            if let Some(v) = self.lookup::<V>(map, &k) {
                out.push((key, v));
            }
        }
        out
    }

    /// The value under `key` as a `V`: `None` when there is none, or (counted) when it is
    /// not a `V`.
    #[cfg(feature = "bpf")]
    pub fn lookup<V: AnyBitPattern>(
        &mut self,
        map: &impl libbpf_rs::MapCore,
        key: &[u8],
    ) -> Option<V> {
        map.lookup(key, libbpf_rs::MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| self.get::<V>(&v))
    }

    /// The sum over CPUs of a per-CPU `u64` counter.
    pub fn percpu_sum(&mut self, vals: &[Vec<u8>]) -> u64 {
        self.percpu::<u64>(vals)
            .into_iter()
            .fold(0, u64::saturating_add)
    }
}

/// A buffer whose length is not the size of the type it should hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("map buffer of {got} bytes for a {want}-byte {ty}")]
pub struct DecodeError {
    pub ty: &'static str,
    pub want: usize,
    pub got: usize,
}

/// `b` as a `T`: exactly `size_of::<T>()` bytes, any alignment.
pub fn decode<T: AnyBitPattern>(b: &[u8]) -> Result<T, DecodeError> {
    bytemuck::try_pod_read_unaligned(b).map_err(|_| DecodeError {
        ty: std::any::type_name::<T>(),
        want: std::mem::size_of::<T>(),
        got: b.len(),
    })
}

/// For a report's `unavailable` list when entries were refused: (what, reason, fix).
pub fn refused_note(probe: &str, n: u64) -> Option<(String, String, String)> {
    (n > 0).then(|| {
        (
            format!("{n} {probe} map entr{}", if n == 1 { "y" } else { "ies" }),
            "their size was not the BPF program's type (triage and its BPF object disagree on              a layout): left out of every table"
                .to_string(),
            "report a bug, with `triage --version` and `uname -r`".to_string(),
        )
    })
}

/// A NUL-terminated C string from a `char[N]` field.
pub fn c_str(b: &[i8]) -> String {
    let bytes: Vec<u8> = b
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[repr(C)]
    struct Pair {
        a: u32,
        b: u32,
        c: u64,
    }
    map_types!(Pair);

    #[test]
    fn decodes_exact_length_at_any_alignment() {
        let mut buf = [0u8; 17];
        buf[1..5].copy_from_slice(&7u32.to_ne_bytes());
        buf[5..9].copy_from_slice(&9u32.to_ne_bytes());
        buf[9..17].copy_from_slice(&u64::MAX.to_ne_bytes());
        // Offset 1: not aligned for u64.
        let p: Pair = decode(&buf[1..]).unwrap();
        assert_eq!(
            p,
            Pair {
                a: 7,
                b: 9,
                c: u64::MAX
            }
        );
    }

    #[test]
    fn refuses_short_and_long_buffers_and_counts_them() {
        let mut d = Decoder::default();
        assert_eq!(d.get::<Pair>(&[0u8; 15]), None);
        assert_eq!(d.get::<Pair>(&[0u8; 17]), None);
        assert_eq!(d.get::<Pair>(&[]), None);
        assert_eq!(d.errors, 3);
        assert_eq!(
            decode::<Pair>(&[0u8; 8]).unwrap_err(),
            DecodeError {
                ty: std::any::type_name::<Pair>(),
                want: 16,
                got: 8
            }
        );
        let ok = d.get::<Pair>(&[0u8; 16]);
        assert_eq!(ok, Some(Pair { a: 0, b: 0, c: 0 }));
        assert_eq!(d.errors, 3);
    }

    #[test]
    fn percpu_sums_and_counts_bad_copies() {
        let mut d = Decoder::default();
        let vals = vec![
            5u64.to_ne_bytes().to_vec(),
            vec![1, 2, 3],
            u64::MAX.to_ne_bytes().to_vec(),
        ];
        assert_eq!(d.percpu_sum(&vals), u64::MAX);
        assert_eq!(d.errors, 1);
        assert_eq!(d.percpu::<u64>(&vals), vec![5, 0, u64::MAX]);
        assert_eq!(d.errors, 2);
    }

    #[test]
    fn refused_entries_make_a_note_only_when_there_are_some() {
        assert_eq!(refused_note("syscalls", 0), None);
        let (what, reason, _) = refused_note("offcpu", 2).unwrap();
        assert_eq!(what, "2 offcpu map entries");
        assert!(reason.contains("left out"), "{reason}");
        assert_eq!(refused_note("x", 1).unwrap().0, "1 x map entry");
    }

    #[test]
    fn c_strings_stop_at_nul() {
        let mut comm = [0i8; 16];
        for (i, b) in b"getppid".iter().enumerate() {
            comm[i] = *b as i8;
        }
        assert_eq!(c_str(&comm), "getppid");
        assert_eq!(c_str(&[b'a' as i8; 4]), "aaaa");
    }
}
