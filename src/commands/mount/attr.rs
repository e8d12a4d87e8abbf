//! File attributes (`stat`) of the mount's inodes: a snapshot's entries
//! as stored (mode, owner, size, times, device number), the layout's
//! directories and `latest` symlinks as read-only entries of whoever
//! mounted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};

use super::inodes::What;
use super::layout::{Entry, Layout};
use crate::format::tree::NodeKind;

fn time_of(ns: i64) -> SystemTime {
    let d = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// The FUSE type of a node kind.
pub fn file_type(k: NodeKind) -> FileType {
    match k {
        NodeKind::File => FileType::RegularFile,
        NodeKind::Dir => FileType::Directory,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::CharDevice => FileType::CharDevice,
        NodeKind::BlockDevice => FileType::BlockDevice,
        NodeKind::Socket => FileType::Socket,
    }
}

/// The FUSE type of a layout entry.
pub fn entry_type(e: &Entry) -> FileType {
    match e {
        Entry::Latest(_) => FileType::Symlink,
        Entry::Dir(_) | Entry::Snapshot(_) => FileType::Directory,
    }
}

/// The attributes of inode `ino`; layout entries belong to `owner`
/// (uid, gid), with the snapshot's time or the newest snapshot's.
pub fn of(ino: u64, what: &What, layout: &Layout, owner: (u32, u32)) -> FileAttr {
    let mut a = FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: FileType::Directory,
        perm: 0o555,
        nlink: 1,
        uid: owner.0,
        gid: owner.1,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    };
    let t = |a: &mut FileAttr, m: i64, c: i64| {
        a.mtime = time_of(m);
        a.atime = a.mtime;
        a.ctime = time_of(c);
        a.crtime = a.mtime;
    };
    match what {
        What::Layout(e) => {
            let when = match e {
                Entry::Snapshot(i) => layout.snaps[*i].snapshot.time_ns,
                _ => layout.newest_ns(),
            };
            t(&mut a, when, when);
            if let Entry::Latest(target) = e {
                a.kind = FileType::Symlink;
                a.perm = 0o777;
                a.size = target.len() as u64;
            }
        }
        What::Node(n) => {
            t(&mut a, n.mtime_ns, n.ctime_ns);
            a.kind = file_type(n.kind);
            a.perm = (n.mode & 0o7777) as u16;
            a.uid = n.uid;
            a.gid = n.gid;
            a.rdev = n.rdev as u32;
            a.size = match n.kind {
                NodeKind::File => n.size,
                NodeKind::Symlink => n.link_target.as_ref().map_or(0, |t| t.len() as u64),
                _ => 0,
            };
            a.blocks = a.size.div_ceil(512);
            if n.kind == NodeKind::File {
                a.nlink = n.nlink.clamp(1, u64::from(u32::MAX)) as u32;
            }
        }
    }
    a
}
