//! External BTF for kernels without `/sys/kernel/btf/vmlinux` (`--btf FILE`, `TRIAGE_BTF`).
//!
//! Every triage probe uses CO-RE (field reads relocated against the running kernel's type
//! layout), so libbpf needs the kernel's BTF to load any of them. Kernels built without
//! `CONFIG_DEBUG_INFO_BTF` have none; a BTF file describing exactly that kernel (BTFHub, or
//! `bpftool btf dump`/`pahole -J` from the distribution's kernel debuginfo) can stand in: it is
//! handed to libbpf as `btf_custom_path`, which it uses for the CO-RE relocations.
//!
//! What an external file cannot do: `tp_btf` programs attach by the kernel's own BTF ids, so on
//! a kernel without BTF they cannot load at all and the probes fall back to `raw_tp` (or the
//! classic tracepoint), whose relocations the external file resolves.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable naming an external BTF file (same as `--btf`).
pub const ENV: &str = "TRIAGE_BTF";

/// Where to get a BTF file for a kernel that lacks one: the fix shown by `doctor` and by
/// every probe that could not load for want of BTF.
pub const WHERE_TO_GET: &str = "hand triage a BTF file for this exact kernel with --btf FILE (or \
     TRIAGE_BTF=FILE): download it from BTFHub (https://github.com/aquasecurity/btfhub-archive: \
     <distro>/<version>/x86_64/$(uname -r).btf.tar.xz, extracted), or generate it from the \
     distribution's kernel debuginfo (kernel-debuginfo, linux-image-$(uname -r)-dbg) with \
     `pahole --btf_encode_detached=vmlinux.btf /usr/lib/debug/.../vmlinux`, or copy \
     /sys/kernel/btf/vmlinux from a box running the same kernel build with BTF; or boot a kernel \
     built with CONFIG_DEBUG_INFO_BTF=y";

static EXTERNAL: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Set the external BTF file from `--btf` (once, at startup). `None` leaves `TRIAGE_BTF` in
/// charge.
pub fn set_external(path: Option<PathBuf>) {
    let _ = EXTERNAL.set(path.or_else(from_env));
}

fn from_env() -> Option<PathBuf> {
    std::env::var_os(ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The external BTF file in use: `--btf`, else `TRIAGE_BTF`, else none.
pub fn external() -> Option<PathBuf> {
    EXTERNAL.get_or_init(from_env).clone()
}

/// Why the external BTF file cannot be used, or `None` when it looks like BTF. Reads only the
/// 8-byte header (magic 0xeB9F, little- or big-endian).
pub fn check_file(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Some(format!("external BTF {}: {e}", path.display())),
    };
    if let Err(e) = f.read_exact(&mut head) {
        return Some(format!("external BTF {}: {e}", path.display()));
    }
    // struct btf_header { __u16 magic = 0xeB9F; __u8 version; ... }
    if head[..2] != [0x9f, 0xeb] && head[..2] != [0xeb, 0x9f] {
        return Some(format!(
            "external BTF {}: not a raw BTF file (no 0xeB9F magic; an ELF vmlinux or a \
             .tar.xz must be extracted/converted first)",
            path.display()
        ));
    }
    None
}

/// libbpf open options carrying the external BTF path. Keep the value alive until the skeleton
/// is opened: the options point into it.
#[cfg(feature = "bpf")]
pub struct OpenOpts {
    _path: Option<std::ffi::CString>,
    pub opts: libbpf_rs::libbpf_sys::bpf_object_open_opts,
    /// Where the CO-RE relocations are resolved: `external`, `minimal` or `kernel`.
    pub source: &'static str,
    /// Types in the minimal BTF.
    pub types: Option<u32>,
}

#[cfg(feature = "bpf")]
fn opts_with(
    path: Option<std::ffi::CString>,
    source: &'static str,
    types: Option<u32>,
) -> OpenOpts {
    let opts = libbpf_rs::libbpf_sys::bpf_object_open_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_object_open_opts>() as _,
        btf_custom_path: path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
        ..Default::default()
    };
    OpenOpts {
        _path: path,
        opts,
        source,
        types,
    }
}

/// The open options for a skeleton: `btf_custom_path` set when an external BTF is in use.
#[cfg(feature = "bpf")]
pub fn open_opts() -> OpenOpts {
    use std::os::unix::ffi::OsStrExt;
    super::tpbtf::register();
    match external().and_then(|p| std::ffi::CString::new(p.as_os_str().as_bytes()).ok()) {
        Some(p) => opts_with(Some(p), "external", None),
        None => opts_with(None, "kernel", None),
    }
}

/// `TRIAGE_MINIMAL_BTF=0` loads every probe against the whole kernel BTF (an escape hatch, and
/// the baseline of the start-up benchmark).
#[cfg(feature = "bpf")]
pub const NO_CUT_ENV: &str = "TRIAGE_MINIMAL_BTF";

/// A cut of the kernel BTF per probe, made once per process and kept in a memory file
/// (`memfd`, nothing written to disk); `Err` says why there is none.
#[cfg(feature = "bpf")]
type Cut = Result<(std::os::fd::OwnedFd, u32), String>;

#[cfg(feature = "bpf")]
static CUTS: std::sync::Mutex<Vec<(&'static str, Cut)>> = std::sync::Mutex::new(Vec::new());

#[cfg(feature = "bpf")]
fn cut(roots: &[&str]) -> Cut {
    use std::io::Write as _;
    let m = super::minbtf::from_kernel(roots)?;
    super::tpbtf::offer(&m.trace_ids);
    let fd = rustix::fs::memfd_create("triage-btf", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| format!("memfd_create: {e}"))?;
    std::fs::File::from(fd.try_clone().map_err(|e| format!("memfd: {e}"))?)
        .write_all(&m.bytes)
        .map_err(|e| format!("memfd: {e}"))?;
    Ok((fd, m.types as u32))
}

/// The open options for a probe whose CO-RE relocations start from the types `roots`: an
/// external BTF when one is given; else a minimal BTF cut from the kernel's
/// ([`super::minbtf`]), which spares libbpf the search of every kernel type; else (no cut
/// possible, the reason is returned) the kernel BTF as libbpf finds it.
#[cfg(feature = "bpf")]
fn open_opts_minimal(probe: &'static str, roots: &[&str]) -> (OpenOpts, Option<String>) {
    use std::os::fd::AsRawFd as _;
    super::tpbtf::register();
    if external().is_some() {
        return (open_opts(), None);
    }
    if std::env::var_os(NO_CUT_ENV).is_some_and(|v| v == "0") {
        return (open_opts(), Some(format!("{NO_CUT_ENV}=0")));
    }
    let Ok(mut cuts) = CUTS.lock() else {
        return (open_opts(), Some("lock poisoned".into()));
    };
    if !cuts.iter().any(|(p, _)| *p == probe) {
        let c = cut(roots);
        cuts.push((probe, c));
    }
    match cuts.iter().find(|(p, _)| *p == probe).map(|(_, c)| c) {
        Some(Ok((fd, types))) => {
            let path = std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .expect("no NUL in a number");
            (opts_with(Some(path), "minimal", Some(*types)), None)
        }
        Some(Err(why)) => (open_opts(), Some(why.clone())),
        None => (open_opts(), None),
    }
}

/// Load a probe with `load`, against the minimal BTF cut for `roots` first and, when that
/// fails, against the kernel's (or the external file); `cost.btf` records which and why.
/// `storages` gives each attempt its own libbpf object storage (a skeleton borrows it).
#[cfg(feature = "bpf")]
pub fn load_minimal_first<'obj, T>(
    probe: &'static str,
    roots: &[&str],
    storages: &'obj mut [std::mem::MaybeUninit<libbpf_rs::OpenObject>; 2],
    mut load: impl FnMut(
        &OpenOpts,
        &'obj mut std::mem::MaybeUninit<libbpf_rs::OpenObject>,
    ) -> Result<T, String>,
) -> Result<T, String> {
    let [first, second] = storages;
    let (minimal, why_not) = open_opts_minimal(probe, roots);
    let mut fallback = why_not;
    if minimal.source == "minimal" {
        match load(&minimal, first) {
            Ok(t) => {
                note(probe, &minimal, None);
                return Ok(t);
            }
            Err(e) => fallback = Some(format!("with the minimal BTF: {}", with_hook_error(e))),
        }
    }
    let whole = open_opts();
    let t = load(&whole, second).map_err(with_hook_error)?;
    note(probe, &whole, fallback);
    Ok(t)
}

/// A load error, with why triage's `tp_btf` hook refused when it did (libbpf only says
/// "No such process").
#[cfg(feature = "bpf")]
fn with_hook_error(e: String) -> String {
    match super::tpbtf::take_error() {
        Some(why) => format!("{e} ({why})"),
        None => e,
    }
}

#[cfg(feature = "bpf")]
fn note(probe: &str, btf: &OpenOpts, fallback: Option<String>) {
    super::cost::note_btf(super::cost_model::BtfUse {
        probe: probe.into(),
        source: btf.source.into(),
        types: btf.types,
        fallback,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_file_accepts_btf_magic_and_rejects_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.btf");
        std::fs::write(&good, [0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(check_file(&good), None);
        let elf = dir.path().join("vmlinux");
        std::fs::write(&elf, b"\x7fELF\x02\x01\x01\x00rest").unwrap();
        assert!(check_file(&elf).unwrap().contains("not a raw BTF file"));
        let short = dir.path().join("short");
        std::fs::write(&short, [0x9f]).unwrap();
        assert!(check_file(&short).is_some());
        let missing = dir.path().join("missing");
        assert!(check_file(&missing).unwrap().contains("missing"));
    }
}
