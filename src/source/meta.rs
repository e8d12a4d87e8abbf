//! Turning `lstat` results into tree nodes, and owner names.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Mutex;

use crate::format::tree::{Node, NodeKind};

/// Caches uid/gid -> name look-ups (they are slow and repeat a lot).
#[derive(Default, Debug)]
pub struct OwnerNames {
    users: Mutex<HashMap<u32, Option<String>>>,
    groups: Mutex<HashMap<u32, Option<String>>>,
}

impl OwnerNames {
    fn user(&self, uid: u32) -> Option<String> {
        self.users
            .lock()
            .unwrap()
            .entry(uid)
            .or_insert_with(|| {
                uzers::get_user_by_uid(uid).map(|u| u.name().to_string_lossy().into_owned())
            })
            .clone()
    }

    fn group(&self, gid: u32) -> Option<String> {
        self.groups
            .lock()
            .unwrap()
            .entry(gid)
            .or_insert_with(|| {
                uzers::get_group_by_gid(gid).map(|g| g.name().to_string_lossy().into_owned())
            })
            .clone()
    }
}

/// What a node keeps of an inode's status (`lstat` or `stat`).
struct Status {
    kind: NodeKind,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
    nlink: u64,
    size: u64,
    rdev: u64,
}

impl From<&Metadata> for Status {
    fn from(m: &Metadata) -> Status {
        Status {
            kind: kind_of(m),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            ino: m.ino(),
            dev: m.dev(),
            nlink: m.nlink(),
            size: m.len(),
            rdev: m.rdev(),
        }
    }
}

/// The node kind of a file type.
pub fn kind_of(m: &Metadata) -> NodeKind {
    let ft = m.file_type();
    if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else if ft.is_socket() {
        NodeKind::Socket
    } else {
        NodeKind::File
    }
}

/// A node carrying `m`'s metadata (content, subtree, target left empty);
/// `m` is the `lstat` of `path` and xattrs are those of `path` itself.
pub fn node_from_metadata(path: &Path, name: &[u8], m: &Metadata, owners: &OwnerNames) -> Node {
    let mut n = node_of(name, &Status::from(m), owners);
    n.xattrs = read_xattrs(path, false);
    n
}

/// The node of `path` itself (its `lstat` and xattrs, as
/// [`node_from_metadata`]), and the inode flags it has that snap does not
/// store (immutable, append-only): one `statx` for both, no open (also
/// for files taken over unread from the parent). The xattrs are those of
/// `before` (the parent snapshot's node of this name) when that is this
/// very inode, [`untouched`] since (setting or removing an xattr, an ACL
/// or a label changes the ctime); else they are read (two syscalls per
/// entry: a third of an unchanged re-backup's syscalls).
pub fn lstat_node(
    path: &Path,
    name: &[u8],
    owners: &OwnerNames,
    before: Option<&Node>,
) -> std::io::Result<(Node, Option<&'static str>)> {
    let (st, flags) = match statx(path) {
        Ok(x) => x,
        // A kernel (or sandbox) without statx.
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            (Status::from(&std::fs::symlink_metadata(path)?), None)
        }
        Err(e) => return Err(e),
    };
    let mut n = node_of(name, &st, owners);
    n.xattrs = match before {
        Some(b) if untouched(&n, b) => b.xattrs.clone(),
        _ => read_xattrs(path, false),
    };
    Ok((n, flags))
}

/// `lstat` by `statx`, with the flags of [`flag_words`].
fn statx(path: &Path) -> std::io::Result<(Status, Option<&'static str>)> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: statx is plain old data; all-zero is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: c is a NUL-terminated path, st a writable statx buffer.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_BASIC_STATS,
            &mut st,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mode = st.stx_mode as u32;
    let kind = match mode & libc::S_IFMT {
        libc::S_IFDIR => NodeKind::Dir,
        libc::S_IFLNK => NodeKind::Symlink,
        libc::S_IFIFO => NodeKind::Fifo,
        libc::S_IFCHR => NodeKind::CharDevice,
        libc::S_IFBLK => NodeKind::BlockDevice,
        libc::S_IFSOCK => NodeKind::Socket,
        _ => NodeKind::File,
    };
    let ns = |t: libc::statx_timestamp| t.tv_sec * 1_000_000_000 + t.tv_nsec as i64;
    let status = Status {
        kind,
        mode,
        uid: st.stx_uid,
        gid: st.stx_gid,
        mtime_ns: ns(st.stx_mtime),
        ctime_ns: ns(st.stx_ctime),
        ino: st.stx_ino,
        dev: libc::makedev(st.stx_dev_major, st.stx_dev_minor),
        nlink: st.stx_nlink as u64,
        size: st.stx_size,
        rdev: libc::makedev(st.stx_rdev_major, st.stx_rdev_minor),
    };
    Ok((status, flag_words(&st)))
}

/// A node for what `path` resolves to (its `stat`, and the xattrs of the
/// directory a symlink points to): for a symlinked component of a source
/// path (`/srv/link/data`), whose node must be the directory, not the link.
pub fn node_resolved(path: &Path, name: &[u8], owners: &OwnerNames) -> std::io::Result<Node> {
    let m = std::fs::metadata(path)?;
    let mut n = node_of(name, &Status::from(&m), owners);
    n.xattrs = read_xattrs(path, true);
    Ok(n)
}

fn node_of(name: &[u8], m: &Status, owners: &OwnerNames) -> Node {
    let kind = m.kind;
    let mut n = Node::new(name.to_vec(), kind);
    n.mode = m.mode & 0o7777;
    n.uid = m.uid;
    n.gid = m.gid;
    n.user = owners.user(n.uid);
    n.group = owners.group(n.gid);
    n.mtime_ns = m.mtime_ns;
    n.ctime_ns = m.ctime_ns;
    n.inode = m.ino;
    n.dev = m.dev;
    n.nlink = m.nlink;
    n.size = if kind == NodeKind::File { m.size } else { 0 };
    n.rdev = if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        m.rdev
    } else {
        0
    };
    n
}

fn read_xattrs(path: &Path, follow: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let names = if follow {
        xattr::list_deref(path)
    } else {
        xattr::list(path)
    };
    let Ok(names) = names else {
        return Vec::new();
    };
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = names
        .filter_map(|n| {
            let v = if follow {
                xattr::get_deref(path, &n)
            } else {
                xattr::get(path, &n)
            };
            let v = v.ok().flatten()?;
            Some((n.as_bytes().to_vec(), v))
        })
        .collect();
    out.sort();
    out
}

/// Whether `now` is the inode `before` describes, untouched since: same
/// kind, inode and ctime. Its xattrs are then `before`'s (setting or
/// removing one changes the ctime), and so is a symlink's target (a
/// symlink's target never changes; a new one is a new inode and ctime).
pub fn untouched(now: &Node, before: &Node) -> bool {
    now.kind == before.kind && now.inode == before.inode && now.ctime_ns == before.ctime_ns
}

/// Whether a file can be taken over from the parent snapshot unread.
pub fn unchanged(now: &Node, before: &Node) -> bool {
    before.kind == NodeKind::File
        && now.kind == NodeKind::File
        && now.size == before.size
        && now.mtime_ns == before.mtime_ns
        && now.ctime_ns == before.ctime_ns
        && now.inode == before.inode
        && now.mode == before.mode
        && before.origin.is_none()
}

/// The inode flags in a `statx` result that snap does not store, as words
/// for a notice: immutable (`chattr +i`) and append-only (`chattr +a`).
/// `None` when it has neither, or the file system cannot tell.
fn flag_words(st: &libc::statx) -> Option<&'static str> {
    let has = |attr: libc::c_int| st.stx_attributes & st.stx_attributes_mask & attr as u64 != 0;
    match (
        has(libc::STATX_ATTR_IMMUTABLE),
        has(libc::STATX_ATTR_APPEND),
    ) {
        (true, true) => Some("immutable and append-only (chattr +i +a)"),
        (true, false) => Some("immutable (chattr +i)"),
        (false, true) => Some("append-only (chattr +a)"),
        (false, false) => None,
    }
}
