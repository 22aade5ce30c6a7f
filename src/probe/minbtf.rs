//! A minimal BTF for one probe object, cut from the kernel's own BTF at load time.
//!
//! libbpf resolves every CO-RE relocation of an object against the kernel BTF: it parses all of
//! `/sys/kernel/btf/vmlinux` (5.5 MB, ~150,000 types on 6.18) and, for each distinct root type
//! a relocation starts from (`task_struct`, `request`, `sock`, ...), scans every type for
//! candidates with the same name. Measured on the checklist's latency probe, that is about half
//! of its load CPU. Handed a BTF with only the types the object needs (`btf_custom_path`),
//! libbpf searches a few hundred types instead.
//!
//! [`minimal`] keeps the named root structs and unions and everything they embed by value
//! (members, arrays, typedefs, modifiers, enums), with unchanged sizes, member offsets and
//! bitfields, so every field relocation resolves exactly as against the full BTF. It stops at
//! pointers: a pointer member becomes `void *`, which CO-RE accepts for a pointer field (it
//! compares pointer fields by kind only); a type read through that pointer is a relocation
//! root of its own and must be in the root list. What is not kept cannot be resolved: libbpf
//! then fails the load, and the probe loads again against the full BTF (never a wrong offset).
//!
//! The input is untrusted like any file: every offset and count is bounds-checked, and any
//! surprise (unknown kind, bad header, a root missing) is an error, never a panic.

use std::collections::HashMap;

const MAGIC: u16 = 0xeb9f;
const HDR_LEN: usize = 24;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// The cut BTF and what went into it.
#[derive(Debug, Clone)]
pub struct Minimal {
    /// A raw BTF blob (header, types, strings), native byte order.
    pub bytes: Vec<u8>,
    /// Types kept, of `source_types`.
    pub types: usize,
    pub source_types: usize,
    /// Kernel type ids of the `btf_trace_<tracepoint>` typedefs, by tracepoint name (what a
    /// `tp_btf` program attaches by; see [`super::tpbtf`]), found in the same pass.
    pub trace_ids: Vec<(String, u32)>,
}

/// The prefix of the typedef the kernel declares for each tracepoint's BPF arguments.
const TRACE_PREFIX: &[u8] = b"btf_trace_";

/// A parsed BTF: the type and string sections and where each type starts.
struct Parsed<'a> {
    types: &'a [u8],
    strs: &'a [u8],
    /// Byte offset in `types` of type id `i + 1` (id 0 is `void`).
    offs: Vec<u32>,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("BTF truncated at byte {at}"))
}

fn kind_of(info: u32) -> u32 {
    (info >> 24) & 0x1f
}

fn vlen_of(info: u32) -> usize {
    (info & 0xffff) as usize
}

/// Bytes after the 12-byte common header for a type of `kind` with `vlen` entries.
fn extra_len(kind: u32, vlen: usize) -> Result<usize, String> {
    Ok(match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
        KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
        k => return Err(format!("BTF kind {k} unknown to triage")),
    })
}

/// Parse `b`; the ids of the structs and unions named in `roots` are pushed on `found` (with
/// the root's index), and the `btf_trace_*` typedefs on `traces` (name offset, id), in the
/// same single pass over the types.
fn parse<'a>(
    b: &'a [u8],
    roots: &[&str],
    found: &mut Vec<(usize, u32)>,
    traces: &mut Vec<(u32, u32)>,
) -> Result<Parsed<'a>, String> {
    if b.len() < HDR_LEN {
        return Err("BTF shorter than its header".into());
    }
    let magic = u16::from_ne_bytes([b[0], b[1]]);
    if magic != MAGIC {
        return Err("BTF magic not 0xeB9F in this machine's byte order".into());
    }
    if b[2] != 1 {
        return Err(format!("BTF version {} (triage reads version 1)", b[2]));
    }
    let hdr_len = u32_at(b, 4)? as usize;
    let body = b
        .get(hdr_len.max(HDR_LEN)..)
        .ok_or("BTF header longer than the file")?;
    let section = |off: usize, len: usize| -> Result<&[u8], String> {
        off.checked_add(len)
            .and_then(|end| body.get(off..end))
            .ok_or_else(|| "BTF section out of bounds".to_string())
    };
    let types = section(u32_at(b, 8)? as usize, u32_at(b, 12)? as usize)?;
    let strs = section(u32_at(b, 16)? as usize, u32_at(b, 20)? as usize)?;
    let mut offs = Vec::with_capacity(types.len() / 20);
    let mut pos = 0usize;
    let name_of = |off: u32| {
        let rest = strs.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        &rest[..end]
    };
    while pos + 12 <= types.len() {
        let h = &types[pos..pos + 12];
        let word = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let info = word(4);
        let kind = kind_of(info);
        let next = pos + 12 + extra_len(kind, vlen_of(info))?;
        if next > types.len() {
            return Err(format!("BTF type at byte {pos} runs past its section"));
        }
        offs.push(pos as u32);
        if (kind == KIND_STRUCT || kind == KIND_UNION) && !roots.is_empty() {
            let name = name_of(word(0));
            // Cheap first-byte test before comparing whole names.
            if let Some(i) = roots
                .iter()
                .position(|r| name.first() == r.as_bytes().first() && r.as_bytes() == name)
            {
                found.push((i, offs.len() as u32));
            }
        } else if kind == KIND_TYPEDEF {
            let off = word(0) as usize;
            if strs.get(off..off + TRACE_PREFIX.len()) == Some(TRACE_PREFIX) {
                traces.push((off as u32, offs.len() as u32));
            }
        }
        pos = next;
    }
    if pos != types.len() {
        return Err(format!("BTF type section ends inside a type at byte {pos}"));
    }
    Ok(Parsed { types, strs, offs })
}

impl Parsed<'_> {
    /// (tracepoint name, typedef id) for each `btf_trace_` typedef found; names that are not
    /// plain identifiers are skipped (a tracepoint name never needs escaping).
    fn trace_names(&self, traces: &[(u32, u32)]) -> Vec<(String, u32)> {
        traces
            .iter()
            .filter_map(|&(off, id)| {
                let tp = self.name(off).strip_prefix(TRACE_PREFIX)?;
                let ok =
                    !tp.is_empty() && tp.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
                ok.then(|| (String::from_utf8_lossy(tp).into_owned(), id))
            })
            .collect()
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strs.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// (offset, info, size-or-type) of type `id`; `None` for void or an id out of range.
    fn head(&self, id: u32) -> Option<(usize, u32, u32)> {
        let off = *self.offs.get((id as usize).checked_sub(1)?)? as usize;
        Some((
            off,
            u32_at(self.types, off + 4).ok()?,
            u32_at(self.types, off + 8).ok()?,
        ))
    }

    /// The types `id` needs in the cut: what it embeds by value (pointers are cut).
    fn refs(&self, id: u32, out: &mut Vec<u32>) -> Result<(), String> {
        let (off, info, st) = self.head(id).ok_or(format!("BTF type id {id} missing"))?;
        let at = off + 12;
        match kind_of(info) {
            KIND_INT | KIND_FLOAT | KIND_FWD | KIND_ENUM | KIND_ENUM64 | KIND_PTR => {}
            KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                out.push(st)
            }
            KIND_ARRAY => {
                out.push(u32_at(self.types, at)?);
                out.push(u32_at(self.types, at + 4)?);
            }
            KIND_STRUCT | KIND_UNION => {
                for i in 0..vlen_of(info) {
                    out.push(u32_at(self.types, at + 12 * i + 4)?);
                }
            }
            KIND_FUNC_PROTO => {
                out.push(st);
                for i in 0..vlen_of(info) {
                    out.push(u32_at(self.types, at + 8 * i + 4)?);
                }
            }
            k => return Err(format!("BTF kind {k} embedded by value in type {id}")),
        }
        Ok(())
    }
}

/// Cut `btf` (a raw kernel BTF) down to the structs and unions named in `roots` and what they
/// embed. Every root must be found.
pub fn minimal(btf: &[u8], roots: &[&str]) -> Result<Minimal, String> {
    let mut hits = Vec::new();
    let mut traces = Vec::new();
    let p = parse(btf, roots, &mut hits, &mut traces)?;
    let trace_ids = p.trace_names(&traces);
    let n = p.offs.len();
    if let Some(i) = (0..roots.len()).find(|i| !hits.iter().any(|(r, _)| r == i)) {
        return Err(format!(
            "no struct or union `{}` in the kernel BTF",
            roots[i]
        ));
    }
    // new_id[old] = id in the cut (0: not kept).
    let mut new_id = vec![0u32; n + 1];
    let mut order: Vec<u32> = Vec::new();
    for &(_, id) in &hits {
        new_id[id as usize] = 1; // mark; numbered below
        order.push(id);
    }
    // Breadth-first over what the roots embed.
    let mut refs = Vec::new();
    let mut next = 0;
    while next < order.len() {
        refs.clear();
        p.refs(order[next], &mut refs)?;
        for &r in &refs {
            if r != 0 && (r as usize) <= n && new_id[r as usize] == 0 {
                new_id[r as usize] = 1;
                order.push(r);
            } else if r as usize > n {
                return Err(format!("BTF type id {r} out of range"));
            }
        }
        next += 1;
    }
    for (i, &old) in order.iter().enumerate() {
        new_id[old as usize] = i as u32 + 1;
    }
    emit(&p, &order, &new_id).map(|bytes| Minimal {
        bytes,
        types: order.len(),
        source_types: n,
        trace_ids,
    })
}

/// The `btf_trace_*` typedef ids of a raw kernel BTF, by tracepoint name (no cut).
pub fn trace_ids(btf: &[u8]) -> Result<Vec<(String, u32)>, String> {
    let mut traces = Vec::new();
    let p = parse(btf, &[], &mut Vec::new(), &mut traces)?;
    Ok(p.trace_names(&traces))
}

/// Write the kept types, renumbered, with their own string section.
fn emit(p: &Parsed<'_>, order: &[u32], new_id: &[u32]) -> Result<Vec<u8>, String> {
    let mut types: Vec<u8> = Vec::new();
    let mut strs: Vec<u8> = vec![0];
    let mut interned: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut string = |off: u32| -> u32 {
        let name = p.name(off);
        if name.is_empty() {
            return 0;
        }
        *interned.entry(name.to_vec()).or_insert_with(|| {
            let at = strs.len() as u32;
            strs.extend_from_slice(name);
            strs.push(0);
            at
        })
    };
    let remap = |id: u32| -> u32 { new_id.get(id as usize).copied().unwrap_or(0) };
    let put = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_ne_bytes());
    for &id in order {
        let (off, info, st) = p.head(id).ok_or("BTF type vanished")?;
        let at = off + 12;
        let kind = kind_of(info);
        let vlen = vlen_of(info);
        put(&mut types, string(u32_at(p.types, off)?));
        put(&mut types, info);
        put(
            &mut types,
            match kind {
                KIND_PTR => 0, // cut: every pointer is `void *`
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                | KIND_FUNC_PROTO => remap(st),
                _ => st,
            },
        );
        match kind {
            KIND_INT => put(&mut types, u32_at(p.types, at)?),
            KIND_ARRAY => {
                put(&mut types, remap(u32_at(p.types, at)?));
                put(&mut types, remap(u32_at(p.types, at + 4)?));
                put(&mut types, u32_at(p.types, at + 8)?);
            }
            KIND_STRUCT | KIND_UNION => {
                for i in 0..vlen {
                    let m = at + 12 * i;
                    put(&mut types, string(u32_at(p.types, m)?));
                    put(&mut types, remap(u32_at(p.types, m + 4)?));
                    put(&mut types, u32_at(p.types, m + 8)?);
                }
            }
            KIND_ENUM => {
                for i in 0..vlen {
                    let m = at + 8 * i;
                    put(&mut types, string(u32_at(p.types, m)?));
                    put(&mut types, u32_at(p.types, m + 4)?);
                }
            }
            KIND_ENUM64 => {
                for i in 0..vlen {
                    let m = at + 12 * i;
                    put(&mut types, string(u32_at(p.types, m)?));
                    put(&mut types, u32_at(p.types, m + 4)?);
                    put(&mut types, u32_at(p.types, m + 8)?);
                }
            }
            KIND_FUNC_PROTO => {
                for i in 0..vlen {
                    let m = at + 8 * i;
                    put(&mut types, string(u32_at(p.types, m)?));
                    put(&mut types, remap(u32_at(p.types, m + 4)?));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(HDR_LEN + types.len() + strs.len());
    out.extend_from_slice(&MAGIC.to_ne_bytes());
    out.extend_from_slice(&[1, 0]); // version 1, no flags
    for x in [
        HDR_LEN as u32,
        0,
        types.len() as u32,
        types.len() as u32,
        strs.len() as u32,
    ] {
        out.extend_from_slice(&x.to_ne_bytes());
    }
    out.extend_from_slice(&types);
    out.extend_from_slice(&strs);
    Ok(out)
}

/// The kernel's BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
/// Larger than any kernel's BTF (about 5 MB on 6.18): a guard against a hostile file.
const VMLINUX_MAX: u64 = 256 << 20;

/// The kernel BTF mapped read-only (kernels from 6.16 map it without a copy), else read whole
/// (older kernels: 4 KiB per read, about 4 ms of CPU for 5 MB).
enum KernelBtf {
    Mapped(*mut std::ffi::c_void, usize),
    Read(Vec<u8>),
}

impl KernelBtf {
    fn open() -> Result<Self, String> {
        use std::io::Read;
        let f = std::fs::File::open(VMLINUX).map_err(|e| format!("{VMLINUX}: {e}"))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len > 0 && len <= VMLINUX_MAX {
            // SAFETY: a fresh private read-only mapping of a file nobody writes (the kernel's
            // own BTF); it is unmapped once, on drop, and only read through `bytes`.
            let m = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    len as usize,
                    rustix::mm::ProtFlags::READ,
                    rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::POPULATE,
                    &f,
                    0,
                )
            };
            if let Ok(p) = m {
                return Ok(KernelBtf::Mapped(p, len as usize));
            }
        }
        let mut buf = Vec::with_capacity(len.min(VMLINUX_MAX) as usize);
        f.take(VMLINUX_MAX)
            .read_to_end(&mut buf)
            .map_err(|e| format!("{VMLINUX}: {e}"))?;
        Ok(KernelBtf::Read(buf))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: the mapping is `len` readable bytes for as long as `self` lives.
            KernelBtf::Mapped(p, len) => unsafe {
                std::slice::from_raw_parts(*p as *const u8, *len)
            },
            KernelBtf::Read(v) => v,
        }
    }
}

impl Drop for KernelBtf {
    fn drop(&mut self) {
        if let KernelBtf::Mapped(p, len) = *self {
            // SAFETY: our own mapping, unmapped once.
            let _ = unsafe { rustix::mm::munmap(p, len) };
        }
    }
}

/// Read the kernel BTF and cut it for `roots`.
pub fn from_kernel(roots: &[&str]) -> Result<Minimal, String> {
    minimal(KernelBtf::open()?.bytes(), roots)
}

/// The running kernel's `btf_trace_*` typedef ids ([`trace_ids`] of its BTF).
pub fn kernel_trace_ids() -> Result<Vec<(String, u32)>, String> {
    trace_ids(KernelBtf::open()?.bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF builder for tests: types as (name, info, size/type, trailing words).
    struct B {
        types: Vec<u8>,
        strs: Vec<u8>,
    }

    impl B {
        fn new() -> Self {
            B {
                types: vec![],
                strs: vec![0],
            }
        }
        fn s(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let at = self.strs.len() as u32;
            self.strs.extend_from_slice(name.as_bytes());
            self.strs.push(0);
            at
        }
        fn ty(&mut self, name: &str, kind: u32, vlen: u32, st: u32, words: &[u32]) {
            let n = self.s(name);
            for x in [n, (kind << 24) | vlen, st] {
                self.types.extend_from_slice(&x.to_ne_bytes());
            }
            for w in words {
                self.types.extend_from_slice(&w.to_ne_bytes());
            }
        }
        fn member(&mut self, name: &str, ty: u32, bit_off: u32) -> [u32; 3] {
            [self.s(name), ty, bit_off]
        }
        fn bytes(&self) -> Vec<u8> {
            let mut out = MAGIC.to_ne_bytes().to_vec();
            out.extend_from_slice(&[1, 0]);
            for x in [
                24u32,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strs.len() as u32,
            ] {
                out.extend_from_slice(&x.to_ne_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strs);
            out
        }
    }

    /// 1 int, 2 task (pid:int@32, next:ptr@64, inner:embedded@128), 3 ptr->2,
    /// 4 inner {x:int}, 5 unrelated {y:int}, 6 typedef pid_t -> 1.
    fn sample() -> Vec<u8> {
        let mut b = B::new();
        b.ty("int", KIND_INT, 0, 4, &[32]);
        let m1 = b.member("pid", 6, 32);
        let m2 = b.member("next", 3, 64);
        let m3 = b.member("inner", 4, 128);
        let words: Vec<u32> = [m1, m2, m3].concat();
        b.ty("task", KIND_STRUCT, 3, 24, &words);
        b.ty("", KIND_PTR, 0, 2, &[]);
        let x = b.member("x", 1, 0);
        b.ty("inner", KIND_STRUCT, 1, 4, &x);
        let y = b.member("y", 1, 0);
        b.ty("unrelated", KIND_STRUCT, 1, 4, &y);
        b.ty("pid_t", KIND_TYPEDEF, 0, 1, &[]);
        b.bytes()
    }

    /// (kind, name, size-or-type, members as (name, type, offset)) of every type of a cut.
    type Member = (String, u32, u32);
    type Dumped = (u32, String, u32, Vec<Member>);

    fn dump(b: &[u8]) -> Vec<Dumped> {
        let p = parse(b, &[], &mut vec![], &mut vec![]).unwrap();
        (1..=p.offs.len() as u32)
            .map(|id| {
                let (off, info, st) = p.head(id).unwrap();
                let name = String::from_utf8_lossy(p.name(u32_at(p.types, off).unwrap()));
                let mut members = vec![];
                if matches!(kind_of(info), KIND_STRUCT | KIND_UNION) {
                    for i in 0..vlen_of(info) {
                        let m = off + 12 + 12 * i;
                        members.push((
                            String::from_utf8_lossy(p.name(u32_at(p.types, m).unwrap()))
                                .into_owned(),
                            u32_at(p.types, m + 4).unwrap(),
                            u32_at(p.types, m + 8).unwrap(),
                        ));
                    }
                }
                (kind_of(info), name.into_owned(), st, members)
            })
            .collect()
    }

    #[test]
    fn keeps_roots_and_what_they_embed_and_cuts_pointers() {
        let m = minimal(&sample(), &["task"]).unwrap();
        assert_eq!((m.types, m.source_types), (5, 6));
        let d = dump(&m.bytes);
        // task first, then what it embeds in member order: pid_t, ptr (cut), inner, then int.
        assert_eq!(d[0].1, "task");
        assert_eq!(
            d[0].3,
            vec![
                ("pid".into(), 2, 32),
                ("next".into(), 3, 64),
                ("inner".into(), 4, 128)
            ]
        );
        assert_eq!(
            (d[1].0, d[1].1.as_str(), d[1].2),
            (KIND_TYPEDEF, "pid_t", 5)
        );
        assert_eq!((d[2].0, d[2].2), (KIND_PTR, 0), "pointers become void *");
        assert_eq!(d[3].3, vec![("x".into(), 5, 0)]);
        assert_eq!((d[4].0, d[4].1.as_str(), d[4].2), (KIND_INT, "int", 4));
        assert!(d.iter().all(|t| t.1 != "unrelated"));
    }

    #[cfg(feature = "bpf")]
    #[test]
    fn libbpf_accepts_the_cut() {
        use libbpf_rs::libbpf_sys as sys;
        let m = minimal(&sample(), &["task", "unrelated"]).unwrap();
        // SAFETY: btf__new copies the bytes; the pointer it returns is checked and freed once.
        unsafe {
            let btf = sys::btf__new(m.bytes.as_ptr() as *const _, m.bytes.len() as u32);
            assert_eq!(sys::libbpf_get_error(btf as *const _), 0);
            assert_eq!(sys::btf__type_cnt(btf), 7, "void + the 6 kept types");
            sys::btf__free(btf);
        }
    }

    #[test]
    fn missing_root_and_bad_input_are_errors() {
        let e = minimal(&sample(), &["task", "nope"]).unwrap_err();
        assert!(e.contains("`nope`"), "{e}");
        assert!(minimal(&[0x9f], &["task"]).is_err());
        let mut b = sample();
        b[0] ^= 0xff;
        assert!(minimal(&b, &["task"]).unwrap_err().contains("magic"));
        // Every truncation of a valid BTF is an error or a shorter valid parse, never a panic.
        let full = sample();
        for cut in 0..full.len() {
            let _ = minimal(&full[..cut], &["task"]);
        }
        // An unknown kind.
        let mut b = B::new();
        b.ty("x", 31, 0, 0, &[]);
        assert!(minimal(&b.bytes(), &["x"]).unwrap_err().contains("kind 31"));
    }

    #[test]
    fn finds_tracepoint_typedefs_in_the_same_pass() {
        let mut b = B::new();
        b.ty("int", KIND_INT, 0, 4, &[32]);
        b.ty("btf_trace_sched_switch", KIND_TYPEDEF, 0, 1, &[]);
        b.ty("btf_trace_", KIND_TYPEDEF, 0, 1, &[]);
        b.ty("btf_trace_bad\x1b[2J", KIND_TYPEDEF, 0, 1, &[]);
        b.ty("btf_trace_not_a_typedef", KIND_STRUCT, 0, 0, &[]);
        b.ty("trace_other", KIND_TYPEDEF, 0, 1, &[]);
        b.ty("btf_trace_block_rq_issue", KIND_TYPEDEF, 0, 1, &[]);
        let want = vec![
            ("sched_switch".to_string(), 2),
            ("block_rq_issue".to_string(), 7),
        ];
        assert_eq!(trace_ids(&b.bytes()).unwrap(), want);
        assert_eq!(
            minimal(&b.bytes(), &["btf_trace_not_a_typedef"])
                .unwrap()
                .trace_ids,
            want
        );
        assert!(trace_ids(&b.bytes()[..40]).is_err());
    }

    /// Our ids are the ones libbpf's own lookup finds (what `tp_btf` programs attach by).
    #[cfg(feature = "bpf")]
    #[test]
    fn kernel_trace_ids_match_libbpf() {
        use libbpf_rs::libbpf_sys as sys;
        let ids = kernel_trace_ids().expect("this test reads the kernel's BTF");
        assert!(ids.len() > 100, "{} tracepoints", ids.len());
        for tp in [
            "sched_switch",
            "sched_wakeup",
            "sys_enter",
            "block_rq_complete",
        ] {
            let ours = ids.iter().find(|(n, _)| n == tp).map(|p| p.1);
            let name = std::ffi::CString::new(tp).unwrap();
            // SAFETY: a NUL-terminated name; libbpf parses the kernel BTF and frees it.
            let theirs =
                unsafe { sys::libbpf_find_vmlinux_btf_id(name.as_ptr(), sys::BPF_TRACE_RAW_TP) };
            assert!(theirs > 0, "{tp}: {theirs}");
            assert_eq!(ours, Some(theirs as u32), "{tp}");
        }
    }

    #[test]
    fn cuts_the_running_kernels_btf_keeping_offsets() {
        // Every machine triage's probes run on has it (a kernel without BTF cannot load them).
        let full = std::fs::read(VMLINUX).expect("this test reads the kernel's BTF");
        let roots = ["task_struct", "sock"];
        let m = minimal(&full, &roots).unwrap();
        assert!(
            m.types < m.source_types / 10,
            "{} of {}",
            m.types,
            m.source_types
        );
        let offset_of = |b: &[u8], s: &str, f: &str| {
            dump(b)
                .into_iter()
                .find(|t| t.1 == s && t.0 == KIND_STRUCT)
                .and_then(|t| t.3.into_iter().find(|m| m.0 == f).map(|m| m.2))
        };
        for (s, f) in [
            ("task_struct", "pid"),
            ("task_struct", "tgid"),
            ("sock", "__sk_common"),
        ] {
            let want = offset_of(&full, s, f);
            assert!(want.is_some(), "{s}.{f} in the kernel BTF");
            assert_eq!(offset_of(&m.bytes, s, f), want, "{s}.{f}");
        }
    }
}
