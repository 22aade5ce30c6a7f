//! Syscall and errno names. The tables come from the `syscalls` crate (generated from the
//! kernel's own syscall tables); a number it does not know is shown as `syscall_N` / `errno N`.

/// The architecture this binary was built for, as recorded in probe output.
pub fn native_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else {
        "x86_64"
    }
}

/// Name of syscall `nr` in `arch`'s table (`x86_64` or `aarch64`).
pub fn syscall_name(arch: &str, nr: u32) -> String {
    let name = match arch {
        "aarch64" => syscalls::aarch64::Sysno::new(nr as usize).map(|s| s.name()),
        _ => syscalls::x86_64::Sysno::new(nr as usize).map(|s| s.name()),
    };
    name.map(str::to_string)
        .unwrap_or_else(|| format!("syscall_{nr}"))
}

/// Number of syscall `name` in `arch`'s table.
pub fn syscall_nr(arch: &str, name: &str) -> Option<u32> {
    (0..1024u32).find(|&nr| {
        let n = match arch {
            "aarch64" => syscalls::aarch64::Sysno::new(nr as usize).map(|s| s.name()),
            _ => syscalls::x86_64::Sysno::new(nr as usize).map(|s| s.name()),
        };
        n == Some(name)
    })
}

/// `ENOENT` for 2; `errno N` when unknown.
pub fn errno_name(e: u32) -> String {
    syscalls::Errno::new(e as i32)
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("errno {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_and_aarch64_tables() {
        assert_eq!(syscall_name("x86_64", 110), "getppid");
        assert_eq!(syscall_name("x86_64", 202), "futex");
        assert_eq!(syscall_name("x86_64", 257), "openat");
        assert_eq!(syscall_name("aarch64", 173), "getppid");
        assert_eq!(syscall_name("aarch64", 98), "futex");
        assert_eq!(syscall_name("x86_64", 999), "syscall_999");
        assert_eq!(syscall_nr("x86_64", "futex"), Some(202));
        assert_eq!(syscall_nr("aarch64", "futex"), Some(98));
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_name(11), "EAGAIN");
        assert_eq!(errno_name(24), "EMFILE");
        assert_eq!(errno_name(111), "ECONNREFUSED");
        assert_eq!(errno_name(4000), "errno 4000");
    }
}
