//! Listing a directory that `lstat` described, without following a symlink
//! put in its place since: `std::fs::read_dir` opens by path and follows
//! one, so a local user who swaps a directory for a link to one they may
//! not read (between create's `lstat` and its listing) would have its
//! contents stored under their directory's name. The directory is opened
//! with `O_NOFOLLOW | O_DIRECTORY`, `fstat` must show the same directory
//! (device, inode), and the entries are read from that descriptor.
//!
//! The entries' own paths are still resolved by name: this closes the swap
//! of the directory itself, not of a component above it.

use std::ffi::{CStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Why a directory could not be listed.
#[derive(Debug)]
pub enum ListError {
    /// Opening or reading failed.
    Io(io::Error),
    /// The path names something else than the directory `lstat` saw.
    Replaced(&'static str),
}

/// The names in the directory at `path` (not `.` or `..`, unsorted), which
/// must be the directory with device `dev` and inode `ino`; and the errors
/// met while reading (names read before an error are kept).
pub fn list(path: &Path, dev: u64, ino: u64) -> Result<(Vec<OsString>, Vec<io::Error>), ListError> {
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // Linux says ENOTDIR for a symlink opened with O_DIRECTORY.
            Some(libc::ELOOP | libc::ENOTDIR) => {
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
                    ListError::Replaced("a symlink")
                } else {
                    ListError::Replaced("something that is not a directory")
                }
            }
            _ => ListError::Io(e),
        })?;
    let m = f.metadata().map_err(ListError::Io)?;
    if !m.is_dir() || m.dev() != dev || m.ino() != ino {
        return Err(ListError::Replaced("another directory"));
    }
    let fd = f.into_raw_fd();
    // SAFETY: fd is an open directory descriptor that we own; on success
    // the stream owns it (closed by closedir), on failure we close it.
    let dir = unsafe { libc::fdopendir(fd) };
    if dir.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fd is still ours when fdopendir failed.
        unsafe { libc::close(fd) };
        return Err(ListError::Io(e));
    }
    let mut names = Vec::new();
    let mut errors = Vec::new();
    loop {
        // SAFETY: errno is thread-local; readdir sets it only on error.
        unsafe { *errno() = 0 };
        // SAFETY: dir is a valid stream used by this thread only.
        let ent = unsafe { libc::readdir(dir) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            if e.raw_os_error().is_some_and(|c| c != 0) {
                errors.push(e);
            }
            break;
        }
        // SAFETY: d_name is NUL-terminated within the entry.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name.to_vec()));
        }
    }
    // SAFETY: dir is valid and not used after this.
    unsafe { libc::closedir(dir) };
    Ok((names, errors))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
unsafe fn errno() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno_location() }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
unsafe fn errno() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__error() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_refuses_a_swapped_in_link() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        for n in ["a", "b\nc", "\u{e9}"] {
            std::fs::write(d.join(n), b"").unwrap();
        }
        let m = std::fs::symlink_metadata(&d).unwrap();
        let (mut names, errors) = list(&d, m.dev(), m.ino()).unwrap();
        names.sort();
        assert!(errors.is_empty());
        assert_eq!(names, ["a", "b\nc", "\u{e9}"].map(OsString::from));
        let l = t.path().join("l");
        std::os::unix::fs::symlink(&d, &l).unwrap();
        assert!(matches!(
            list(&l, m.dev(), m.ino()),
            Err(ListError::Replaced("a symlink"))
        ));
        let e = t.path().join("e");
        std::fs::create_dir(&e).unwrap();
        assert!(matches!(
            list(&e, m.dev(), m.ino()),
            Err(ListError::Replaced("another directory"))
        ));
    }
}
