//! Metadata (owner, xattrs, mode, times, in that order: a change of owner
//! clears set-id bits) set on descriptors, never on paths; and the entries
//! that are neither files nor directories (symlinks, FIFOs, device nodes),
//! each made under a temporary name, given its metadata and renamed into
//! place. Sockets, and device nodes when not root, are not recreated: a
//! warning, not damage. [`Meta`] is what is kept of a node until its
//! metadata is set (the rest of the node is dropped when it is planned).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::FileType;

use super::dirfd;
use super::dirs::Dirs;
use super::{existing, Overwrite, Problems};
use crate::format::tree::{Node, NodeKind};
use crate::{Error, Result};

/// The metadata restore sets on a file or directory.
#[derive(Debug, Default)]
pub struct Meta {
    /// Permission and set-id bits.
    pub mode: u32,
    /// Owner (set as root).
    pub uid: u32,
    /// Group (set as root).
    pub gid: u32,
    /// Modification (and access) time, ns since the epoch.
    pub mtime_ns: i64,
    /// Extended attributes (name, value).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    /// The metadata of `n`, its xattrs taken out of it.
    pub fn take(n: &mut Node) -> Meta {
        Meta {
            mode: n.mode,
            uid: n.uid,
            gid: n.gid,
            mtime_ns: n.mtime_ns,
            xattrs: std::mem::take(&mut n.xattrs),
        }
    }
}

/// A symlink, FIFO, device node or socket to make in directory `dir`.
pub struct OtherPlan {
    /// Its directory's number.
    pub dir: u32,
    /// Name and metadata.
    pub node: Node,
}

/// Whether restore runs as root (and so restores owners and devices).
pub fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| rustix::process::geteuid().is_root())
}

/// The permission bits to create a file with: its own when no change of
/// owner will follow (the file is then never more open than it ends up),
/// else 0600 until its owner is set; always writable by its creator (a
/// file restore opens again), and before the umask.
pub fn creation_mode(m: &Meta) -> u32 {
    static ME: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    let (uid, gid) = *ME.get_or_init(|| {
        let (u, g) = (rustix::process::geteuid(), rustix::process::getegid());
        (u.as_raw(), g.as_raw())
    });
    let mine = |want: u32, have: u32| want == u32::MAX || want == have;
    let unchanged_owner = !is_root() || (mine(m.uid, uid) && mine(m.gid, gid));
    if unchanged_owner {
        (m.mode & 0o777) | 0o600
    } else {
        0o600
    }
}

/// Sets on the open file `fd`, whose status was `st`, what of `m` differs
/// from it: owner (as root), xattrs, mode, times, in the order of
/// [`set_all`]. Extended attributes the file has and the snapshot has not
/// are left. `fresh`: restore just made the file (it has no xattrs, and
/// its writes since `st` changed its times).
#[allow(clippy::unnecessary_cast)] // st_mode is not u32 everywhere
pub fn set_differing(
    fd: BorrowedFd<'_>,
    m: &Meta,
    st: &rustix::fs::Stat,
    fresh: bool,
) -> std::io::Result<()> {
    let mut mode_wrong = (st.st_mode as u32 & 0o7777) != (m.mode & 0o7777);
    let owner = |want: u32, have: u32| want != u32::MAX && want != have;
    if is_root() && (owner(m.uid, st.st_uid) || owner(m.gid, st.st_gid)) {
        dirfd::chown(fd, m.uid, m.gid)?;
        mode_wrong = true; // a change of owner clears set-id bits
    }
    for (k, v) in &m.xattrs {
        if fresh || !dirfd::xattr_is(fd, k, v) {
            // As at backup: an xattr this file system refuses is not fatal.
            let _ = dirfd::set_xattr(fd, k, v);
        }
    }
    if mode_wrong {
        dirfd::chmod(fd, m.mode)?;
    }
    if fresh || dirfd::mtime_ns(st) != m.mtime_ns {
        dirfd::set_times(fd, m.mtime_ns)?;
    }
    Ok(())
}

/// Sets owner (as root), xattrs, mode and times of an open file, as
/// [`apply_fd`], with the bare I/O error.
pub fn set_all(fd: BorrowedFd<'_>, n: &Meta) -> std::io::Result<()> {
    if is_root() {
        dirfd::chown(fd, n.uid, n.gid)?;
    }
    for (k, v) in &n.xattrs {
        // As at backup: an xattr this file system refuses is not fatal.
        let _ = dirfd::set_xattr(fd, k, v);
    }
    dirfd::chmod(fd, n.mode)?;
    dirfd::set_times(fd, n.mtime_ns)
}

/// Sets owner (as root), xattrs, mode and times of an open file,
/// directory or FIFO.
pub fn apply_fd(fd: BorrowedFd<'_>, n: &Meta, path: &Path) -> Result<()> {
    set_all(fd, n).map_err(|e| Error::io(path, e))
}

/// Whether an entry was made.
pub enum Made {
    /// Made and in place.
    Yes,
    /// A kind restore does not recreate here.
    NotHere,
}

/// Makes the symlink, FIFO or device node `n` in `dir`.
fn make_other(dir: BorrowedFd<'_>, n: &mut Node) -> std::io::Result<Made> {
    let name = dirfd::cname(&n.name)?;
    let (kind, tmp) = match n.kind {
        NodeKind::Symlink => {
            let target = n.link_target.as_deref().unwrap_or_default();
            (
                FileType::Symlink,
                dirfd::symlink_temp(dir, target, &n.name)?,
            )
        }
        NodeKind::Fifo => (
            FileType::Fifo,
            dirfd::node_temp(dir, &n.name, FileType::Fifo, 0)?,
        ),
        NodeKind::CharDevice | NodeKind::BlockDevice if is_root() => {
            let kind = if n.kind == NodeKind::CharDevice {
                FileType::CharacterDevice
            } else {
                FileType::BlockDevice
            };
            (kind, dirfd::node_temp(dir, &n.name, kind, n.rdev)?)
        }
        _ => return Ok(Made::NotHere),
    };
    let done = (|| {
        let fd = dirfd::open_made(dir, &tmp, kind, n.rdev)?;
        let fd = fd.as_fd();
        match kind {
            FileType::Fifo => set_all(fd, &Meta::take(n))?,
            _ => {
                if is_root() {
                    dirfd::chown_path_fd(fd, n.uid, n.gid)?;
                }
                if kind != FileType::Symlink {
                    for (k, v) in &n.xattrs {
                        let _ = dirfd::set_xattr_path_fd(fd, k, v);
                    }
                    dirfd::chmod_path_fd(fd, n.mode)?;
                }
                dirfd::set_times_path_fd(fd, dir, &tmp, n.mtime_ns)?;
            }
        }
        dirfd::rename(dir, &tmp, &name)
    })();
    if let Err(e) = done {
        let _ = dirfd::remove(dir, &tmp);
        return Err(e);
    }
    Ok(Made::Yes)
}

/// Whether `--overwrite` keeps what is at the name of `n` in `dir`.
pub fn kept(dir: BorrowedFd<'_>, n: &Node, mode: Overwrite) -> bool {
    let Ok(name) = dirfd::cname(&n.name) else {
        return false;
    };
    matches!(dirfd::stat_at(dir, &name), Ok(Some(st)) if existing::keeps(mode, &st, n.mtime_ns))
}

/// Whether the symlink, FIFO or device node `n` is in place at its name
/// in `dir` already, metadata and all (so it is not made again): same
/// kind, link target, mode, device, mtime, and owner as root.
#[allow(clippy::unnecessary_cast)] // stat fields are not u32/u64 everywhere
pub fn in_place(dir: BorrowedFd<'_>, n: &Node, mode: Overwrite) -> bool {
    let Ok(name) = dirfd::cname(&n.name) else {
        return false;
    };
    let Ok(Some(st)) = dirfd::stat_at(dir, &name) else {
        return false;
    };
    let kind = match n.kind {
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Fifo => FileType::Fifo,
        NodeKind::CharDevice => FileType::CharacterDevice,
        NodeKind::BlockDevice => FileType::BlockDevice,
        _ => return false,
    };
    let same = FileType::from_raw_mode(st.st_mode) == kind
        && dirfd::mtime_ns(&st) == n.mtime_ns
        && (!is_root() || (st.st_uid == n.uid && st.st_gid == n.gid));
    mode != Overwrite::Always
        && same
        && match kind {
            FileType::Symlink => {
                dirfd::read_link_at(dir, &name).ok().as_deref() == n.link_target.as_deref()
            }
            _ => {
                (st.st_mode as u32 & 0o7777) == (n.mode & 0o7777)
                    && (kind == FileType::Fifo || st.st_rdev as u64 == n.rdev)
            }
        }
}

/// Makes the symlinks, FIFOs and device nodes of a window; returns how
/// many were made, and how many names `--overwrite` kept as they were.
pub fn make_others(
    others: Vec<OtherPlan>,
    dirs: &Dirs<'_>,
    mode: Overwrite,
    problems: &Problems,
) -> Result<(u64, u64)> {
    let (mut n, mut kept_n) = (0, 0);
    for mut o in others {
        crate::interrupt::check()?;
        let Ok(dir) = dirs.get(o.dir) else {
            continue;
        };
        if kept(dir.as_fd(), &o.node, mode) {
            kept_n += 1;
            continue;
        }
        if in_place(dir.as_fd(), &o.node, mode) {
            n += 1;
            continue;
        }
        let path = dirs.path_of(o.dir, &o.node.name);
        match make_other(dir.as_fd(), &mut o.node) {
            Ok(Made::Yes) => n += 1,
            Ok(Made::NotHere) => problems.warn(format!(
                "{}: {} not recreated (restore cannot create this kind here)",
                path.display(),
                crate::commands::ls::kind_name(o.node.kind)
            )),
            Err(e) if dirfd::is_dir_in_the_way(&e) => problems.fail(format!(
                "{}: NOT restored (a directory is in its place in the target: move it away)",
                path.display()
            )),
            Err(e) => problems.fail(format!("{}: NOT restored ({e})", path.display())),
        }
    }
    Ok((n, kept_n))
}
