//! Restoring metadata (owner, mode, xattrs, times) and special files.

use std::ffi::CString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use filetime::FileTime;

use crate::format::tree::{Node, NodeKind};
use crate::{Error, Result};

fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: geteuid cannot fail.
    *ROOT.get_or_init(|| unsafe { libc::geteuid() == 0 })
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Invalid(format!("{} contains NUL", p.display())))
}

/// Creates a symlink, FIFO or device node; returns false for kinds that are
/// not recreated (sockets, and devices when not root).
pub fn create_special(path: &Path, n: &Node) -> Result<bool> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.is_dir() {
            return Err(Error::Invalid(format!(
                "{} is a directory; cannot restore {:?} there",
                path.display(),
                n.kind
            )));
        }
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    }
    match n.kind {
        NodeKind::Symlink => {
            let target = std::ffi::OsString::from_vec(n.link_target.clone().unwrap_or_default());
            std::os::unix::fs::symlink(&target, path).map_err(|e| Error::io(path, e))?;
            Ok(true)
        }
        NodeKind::Fifo => {
            let c = cpath(path)?;
            // SAFETY: c is a valid NUL-terminated path.
            if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
                return Err(Error::io(path, std::io::Error::last_os_error()));
            }
            Ok(true)
        }
        NodeKind::CharDevice | NodeKind::BlockDevice if is_root() => {
            let c = cpath(path)?;
            let t = if n.kind == NodeKind::CharDevice {
                libc::S_IFCHR
            } else {
                libc::S_IFBLK
            };
            // SAFETY: c is a valid NUL-terminated path.
            if unsafe { libc::mknod(c.as_ptr(), t | 0o600, n.rdev as libc::dev_t) } != 0 {
                return Err(Error::io(path, std::io::Error::last_os_error()));
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Applies owner (as root), mode, xattrs and modification time.
pub fn apply(path: &Path, n: &Node) -> Result<()> {
    let c = cpath(path)?;
    if is_root() {
        // SAFETY: c is a valid NUL-terminated path; lchown does not follow links.
        if unsafe { libc::lchown(c.as_ptr(), n.uid, n.gid) } != 0 {
            return Err(Error::io(path, std::io::Error::last_os_error()));
        }
    }
    if n.kind != NodeKind::Symlink {
        for (k, v) in &n.xattrs {
            let _ = xattr::set(path, std::ffi::OsStr::from_bytes(k), v);
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(n.mode))
            .map_err(|e| Error::io(path, e))?;
    }
    let mt = FileTime::from_unix_time(
        n.mtime_ns.div_euclid(1_000_000_000),
        n.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    filetime::set_symlink_file_times(path, mt, mt).map_err(|e| Error::io(path, e))
}
