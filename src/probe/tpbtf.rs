//! `tp_btf` programs attach by the kernel BTF id of their tracepoint's `btf_trace_<name>`
//! typedef; triage supplies that id itself instead of letting libbpf find it.
//!
//! To find one id, libbpf parses the whole kernel BTF (about 150,000 types on 6.18) into its
//! own index: measured by `perf record -g` on `sixty-second`, 3-4 ms of the latency probe's
//! start-up, the largest single part left once CO-RE relocations read a minimal BTF
//! ([`super::minbtf`]). The cut already walks every kernel type, so it picks up the
//! `btf_trace_*` typedefs in the same pass ([`super::minbtf::Minimal::trace_ids`]); without a
//! cut, one pass over the mapped BTF finds them ([`super::minbtf::kernel_trace_ids`]).
//!
//! How: a libbpf section handler for `tp_btf/` replaces libbpf's own (custom handlers are
//! matched first), with the same program type, attach type and attach call. At open it marks
//! the program as having an attach target to come (`bpf_program__set_attach_target(prog, fd,
//! NULL)`, which libbpf documents as "resolved later during load"), so libbpf does not load
//! the kernel BTF for it; at load it sets the kernel's id in the load attributes and clears
//! the placeholder. A tracepoint the kernel BTF does not have fails the load with the reason
//! kept for the report ([`take_error`]), and the probe falls back as before (raw_tp).
//!
//! `TRIAGE_MINIMAL_BTF=0` leaves libbpf's own handler in place (the benchmark's baseline).

use std::collections::HashMap;
use std::ffi::{c_int, c_long, CStr};
use std::sync::{Mutex, Once, OnceLock};

use libbpf_rs::libbpf_sys as sys;

/// Stands in for "an attach target comes at load" between open and load; never reaches the
/// kernel (the load hook clears it), and is no descriptor a process can hold.
const PLACEHOLDER_FD: c_int = c_int::MAX;

type Ids = Result<HashMap<String, u32>, String>;

static IDS: OnceLock<Ids> = OnceLock::new();
static LAST_ERROR: Mutex<Option<String>> = Mutex::new(None);
static REGISTER: Once = Once::new();

/// Keep the ids a BTF cut found (the first cut of the process wins; they are the kernel's).
pub fn offer(ids: &[(String, u32)]) {
    let _ = IDS.set(Ok(ids.iter().cloned().collect()));
}

fn ids() -> &'static Ids {
    IDS.get_or_init(|| {
        super::minbtf::kernel_trace_ids().map(|v| v.into_iter().collect::<HashMap<_, _>>())
    })
}

/// The kernel BTF id `tp_btf/<tp>` attaches by.
pub fn id_of(tp: &str) -> Result<u32, String> {
    match ids() {
        Ok(m) => m
            .get(tp)
            .copied()
            .ok_or_else(|| format!("no btf_trace_{tp} in the kernel BTF")),
        Err(e) => Err(format!("kernel BTF: {e}")),
    }
}

/// Why the last `tp_btf` load hook failed, once.
pub fn take_error() -> Option<String> {
    LAST_ERROR.lock().ok()?.take()
}

/// Register the handler once per process, before any object is opened. libbpf's handler
/// table is not thread-safe: every open goes through [`super::btf`]'s options, which call
/// this first, and `Once` makes a second thread wait until registration is done.
pub fn register() {
    REGISTER.call_once(|| {
        if std::env::var_os(super::btf::NO_CUT_ENV).is_some_and(|v| v == "0") {
            return;
        }
        let opts = sys::libbpf_prog_handler_opts {
            sz: std::mem::size_of::<sys::libbpf_prog_handler_opts>() as _,
            cookie: 0,
            prog_setup_fn: Some(setup),
            prog_prepare_load_fn: Some(prepare),
            prog_attach_fn: Some(attach),
        };
        // SAFETY: a static NUL-terminated section name and a fully initialised options
        // struct that libbpf copies; the callbacks are `extern "C"` and live forever.
        let id = unsafe {
            sys::libbpf_register_prog_handler(
                c"tp_btf+".as_ptr(),
                sys::BPF_PROG_TYPE_TRACING,
                sys::BPF_TRACE_RAW_TP,
                &opts,
            )
        };
        // A refusal (a libbpf without custom handlers) leaves libbpf's own: slower, same
        // result.
        let _ = id;
    });
}

fn fail(why: String) -> c_int {
    if let Ok(mut e) = LAST_ERROR.lock() {
        *e = Some(why);
    }
    -libc_esrch()
}

fn libc_esrch() -> c_int {
    rustix::io::Errno::SRCH.raw_os_error()
}

/// The tracepoint a `tp_btf/<name>` program names.
///
/// # Safety
/// `prog` is a live libbpf program.
unsafe fn tracepoint(prog: *const sys::bpf_program) -> Option<String> {
    // SAFETY: libbpf returns the program's own NUL-terminated section name.
    let sec = unsafe { sys::bpf_program__section_name(prog) };
    if sec.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated, owned by the program.
    let sec = unsafe { CStr::from_ptr(sec) }.to_str().ok()?;
    sec.strip_prefix("tp_btf/").map(str::to_string)
}

/// At open: an attach target comes at load, so libbpf need not parse the kernel BTF for it.
unsafe extern "C" fn setup(prog: *mut sys::bpf_program, _cookie: c_long) -> c_int {
    // SAFETY: libbpf calls this with a program of the object being opened.
    unsafe { sys::bpf_program__set_attach_target(prog, PLACEHOLDER_FD, std::ptr::null()) }
}

/// At load: the kernel's id of `btf_trace_<name>`, in vmlinux (object fd 0).
unsafe extern "C" fn prepare(
    prog: *mut sys::bpf_program,
    opts: *mut sys::bpf_prog_load_opts,
    _cookie: c_long,
) -> c_int {
    // SAFETY: libbpf passes its program and its own load attributes for it.
    let (Some(tp), Some(opts)) = (unsafe { tracepoint(prog) }, unsafe { opts.as_mut() }) else {
        return fail("tp_btf program without a tracepoint name".into());
    };
    match id_of(&tp) {
        Ok(id) => {
            opts.attach_prog_fd = 0;
            opts.attach_btf_obj_fd = 0;
            opts.attach_btf_id = id;
            0
        }
        Err(e) => fail(e),
    }
}

/// Attach as libbpf's own `tp_btf` handler does.
unsafe extern "C" fn attach(
    prog: *const sys::bpf_program,
    _cookie: c_long,
    link: *mut *mut sys::bpf_link,
) -> c_int {
    // SAFETY: a loaded program; libbpf returns a link or NULL with errno set.
    let l = unsafe { sys::bpf_program__attach_trace(prog) };
    if l.is_null() {
        return -std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc_esrch());
    }
    // SAFETY: libbpf hands a valid slot for the link.
    unsafe { *link = l };
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_kernel_btf_and_unknown_names_say_so() {
        // The running kernel (every machine triage's probes run on has its BTF).
        let id = id_of("sched_switch").expect("sched_switch in the kernel BTF");
        assert!(id > 0);
        let e = id_of("no_such_tracepoint").unwrap_err();
        assert_eq!(e, "no btf_trace_no_such_tracepoint in the kernel BTF");
    }

    #[test]
    fn a_refusal_is_kept_once() {
        assert_eq!(fail("why".into()), -rustix::io::Errno::SRCH.raw_os_error());
        assert_eq!(take_error().as_deref(), Some("why"));
        assert_eq!(take_error(), None);
    }
}
