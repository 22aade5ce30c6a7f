//! Writing an output directory (`capture --out`, `syscalls --record`, `offcpu --record`) safely
//! as root, in a place other users may reach.
//!
//! - The directory is created by triage (mode 0700), or it already exists and is empty, owned
//!   by the caller and not a symlink (it is then set to 0700).
//! - Everything inside is created relative to the directory's file descriptor, one component
//!   at a time, with `O_NOFOLLOW` (directories, mode 0700) and `O_CREAT | O_EXCL | O_NOFOLLOW`
//!   (files, mode 0600): a symlink planted anywhere in the tree is never followed, and a
//!   replaced path cannot redirect a write outside it.
//!
//! Captured data can be sensitive (the kernel log, `/proc/1/environ`, command names): the modes
//! keep it readable by the caller only.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// An output directory opened safely (see the module documentation).
#[derive(Debug)]
pub struct OutDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn err(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {why}", path.display()))
}

/// Split a relative path into its components, refusing `..`, empty and absolute paths.
fn components(rel: &str) -> io::Result<Vec<&str>> {
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if rel.starts_with('/') || parts.is_empty() || parts.contains(&"..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{rel}: not a path inside the output directory"),
        ));
    }
    Ok(parts)
}

impl OutDir {
    /// Create `path` (its missing parents too), or take it when it is an existing empty
    /// directory owned by us and not a symlink.
    pub fn create(path: &Path) -> io::Result<OutDir> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
        }
        let created = match rfs::mkdir(path, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) => true,
            Err(rustix::io::Errno::EXIST) => false,
            Err(e) => return Err(err(path, io::Error::from(e))),
        };
        let out = Self::open_owned(path)?;
        if !created && !out.list("")?.is_empty() {
            return Err(err(path, "exists and is not empty; choose a new directory"));
        }
        rfs::fchmod(&out.fd, Mode::from_raw_mode(DIR_MODE)).map_err(|e| err(path, e))?;
        Ok(out)
    }

    /// Open an existing directory: not a symlink, owned by the caller.
    fn open_owned(path: &Path) -> io::Result<OutDir> {
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
                err(path, "is a symlink or not a directory: refused")
            }
            e => err(path, io::Error::from(e)),
        })?;
        let st = rfs::fstat(&fd).map_err(|e| err(path, e))?;
        if st.st_uid != rustix::process::geteuid().as_raw() {
            return Err(err(
                path,
                format!(
                    "is owned by uid {}, not by us: refused (choose a new directory)",
                    st.st_uid
                ),
            ));
        }
        Ok(OutDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding `rel`'s last component, created as needed (0700, no symlinks
    /// followed), and that component.
    fn parent<'a>(&self, rel: &'a str, create: bool) -> io::Result<(OwnedFd, &'a str)> {
        let parts = components(rel)?;
        let (last, dirs) = parts.split_last().expect("components are never empty");
        let mut cur = self.fd.try_clone()?;
        for d in dirs {
            if create {
                match rfs::mkdirat(&cur, *d, Mode::from_raw_mode(DIR_MODE)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(err(&self.path.join(rel), io::Error::from(e))),
                }
            }
            cur = rfs::openat(
                &cur,
                *d,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| err(&self.path.join(rel), io::Error::from(e)))?;
        }
        Ok((cur, last))
    }

    /// Write `data` to `rel` (0600), replacing a file already there; never through a symlink.
    pub fn write(&self, rel: &str, data: &[u8]) -> io::Result<()> {
        let mut f = self.create_file(rel)?;
        f.write_all(data)
            .and_then(|_| f.flush())
            .map_err(|e| err(&self.path.join(rel), e))
    }

    /// A new file at `rel` (0600) to write to, replacing a file already there.
    pub fn create_file(&self, rel: &str) -> io::Result<File> {
        let (dir, name) = self.parent(rel, true)?;
        let open = || {
            rfs::openat(
                &dir,
                name,
                OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC
                    | OFlags::NOCTTY,
                Mode::from_raw_mode(FILE_MODE),
            )
        };
        let fd = match open() {
            Err(rustix::io::Errno::EXIST) => {
                // Rewritten in the same phase: remove the old entry (a file or a symlink, never
                // followed) and create it afresh.
                rfs::unlinkat(&dir, name, AtFlags::empty())
                    .map_err(|e| err(&self.path.join(rel), io::Error::from(e)))?;
                open()
            }
            r => r,
        }
        .map_err(|e| err(&self.path.join(rel), io::Error::from(e)))?;
        Ok(File::from(fd))
    }

    /// A symlink at `rel` pointing to `target` (the recording of a `readlink`).
    pub fn symlink(&self, rel: &str, target: &str) -> io::Result<()> {
        let (dir, name) = self.parent(rel, true)?;
        match rfs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(err(&self.path.join(rel), io::Error::from(e))),
        }
        rfs::symlinkat(target, &dir, name)
            .map_err(|e| err(&self.path.join(rel), io::Error::from(e)))
    }

    /// The type of what is at `rel`, without following symlinks (None: nothing there).
    pub fn file_type(&self, rel: &str) -> Option<FileType> {
        let (dir, name) = self.parent(rel, false).ok()?;
        let st = rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        Some(FileType::from_raw_mode(st.st_mode))
    }

    /// Read a file of the tree (never through a symlink).
    pub fn read(&self, rel: &str) -> io::Result<Vec<u8>> {
        let (dir, name) = self.parent(rel, false)?;
        let fd = rfs::openat(
            &dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        super::safe::read_capped(&File::from(fd), super::safe::DEFAULT_CAP)
    }

    /// Remove a file (not a directory) of the tree.
    pub fn remove_file(&self, rel: &str) -> io::Result<()> {
        let (dir, name) = self.parent(rel, false)?;
        Ok(rfs::unlinkat(&dir, name, AtFlags::empty())?)
    }

    /// Create a directory (and its parents) in the tree.
    pub fn create_dir_all(&self, rel: &str) -> io::Result<()> {
        self.parent(&format!("{}/x", rel.trim_end_matches('/')), true)
            .map(|_| ())
    }

    /// Names in a directory of the tree (`""`: the top).
    pub fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let fd = if rel.is_empty() {
            rfs::openat(
                &self.fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?
        } else {
            let (dir, name) = self.parent(rel, false)?;
            rfs::openat(
                &dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?
        };
        let mut out = Vec::new();
        for e in rfs::Dir::new(fd)? {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                out.push(String::from_utf8_lossy(n).into_owned());
            }
        }
        Ok(out)
    }

    /// The directory's descriptor (for tests and callers that open relative to it).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A single output file chosen by the user (`offcpu --svg FILE`): created 0600, never through
/// a symlink (`O_NOFOLLOW`), and an existing file is only overwritten when it is a regular file
/// of ours.
pub fn create_output_file(path: &Path) -> io::Result<File> {
    let fd = rfs::open(
        path,
        OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NOCTTY
            | OFlags::NONBLOCK,
        Mode::from_raw_mode(FILE_MODE),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP => err(path, "is a symlink: refused"),
        e => err(path, io::Error::from(e)),
    })?;
    let st = rfs::fstat(&fd).map_err(|e| err(path, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(err(path, "is not a regular file: refused"));
    }
    if st.st_uid != rustix::process::geteuid().as_raw() {
        return Err(err(
            path,
            format!("is owned by uid {}, not by us: refused", st.st_uid),
        ));
    }
    rfs::ftruncate(&fd, 0).map_err(|e| err(path, e))?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    #[test]
    fn a_single_output_file_is_never_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        symlink(&victim, d.path().join("out.svg")).unwrap();
        let e = create_output_file(&d.path().join("out.svg")).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let mut f = create_output_file(&d.path().join("new.svg")).unwrap();
        f.write_all(b"<svg/>").unwrap();
        let m = std::fs::metadata(d.path().join("new.svg")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
    }

    #[test]
    fn creates_private_dirs_and_files() {
        let d = tempfile::tempdir().unwrap();
        let out = OutDir::create(&d.path().join("a/b")).unwrap();
        out.write("t0/proc/42/stat", b"x").unwrap();
        out.write("t0/proc/42/stat", b"yy").unwrap();
        let p = d.path().join("a/b");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(p.join("t0/proc")).unwrap().mode() & 0o777,
            0o700
        );
        let m = std::fs::metadata(p.join("t0/proc/42/stat")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(p.join("t0/proc/42/stat")).unwrap(), b"yy");
        out.symlink("t0/proc/42/ns/net", "net:[1]").unwrap();
        assert_eq!(
            std::fs::read_link(p.join("t0/proc/42/ns/net")).unwrap(),
            Path::new("net:[1]")
        );
        assert!(out.write("../escape", b"x").is_err());
        assert!(out.write("/etc/x", b"x").is_err());
    }

    #[test]
    fn refuses_a_symlink_a_non_empty_or_foreign_directory() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        symlink(&real, d.path().join("link")).unwrap();
        let e = OutDir::create(&d.path().join("link")).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        std::fs::write(real.join("f"), "x").unwrap();
        let e = OutDir::create(&real).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        // An existing empty directory of ours is taken, and made private.
        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o777)).unwrap();
        OutDir::create(&empty).unwrap();
        assert_eq!(std::fs::metadata(&empty).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn never_writes_through_a_planted_symlink() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let out = OutDir::create(&d.path().join("out")).unwrap();
        // Planted after the directory was taken (as a race would): a file link and a
        // directory link.
        symlink(&victim, d.path().join("out/meta.json")).unwrap();
        std::fs::create_dir(d.path().join("elsewhere")).unwrap();
        symlink(d.path().join("elsewhere"), d.path().join("out/t0")).unwrap();
        out.write("meta.json", b"{}").unwrap();
        assert!(out.write("t0/proc/stat", b"cpu").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::read_dir(d.path().join("elsewhere"))
            .unwrap()
            .next()
            .is_none());
        // meta.json is now our own file, not the link.
        assert!(!std::fs::symlink_metadata(d.path().join("out/meta.json"))
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
