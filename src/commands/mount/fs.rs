//! The read-only FUSE file system (`fuser::Filesystem`): lookups, attributes,
//! directory listings, symlinks, extended attributes and reads.
//!
//! Directory listings are loaded when a directory is first looked into and
//! kept in a bounded cache; file data is read chunk by chunk through the
//! repository's verified blob read and kept in a bounded LRU cache. A blob
//! that fails to verify (or cannot be fetched) fails the read with EIO:
//! the reader never gets wrong bytes, and the other files read on.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyXattr, Request,
};

use super::attr::{self, entry_type, file_type};
use super::cache::Cache;
use super::file::OpenFile;
use super::inodes::{self, Inodes, What};
use super::layout::{Entry, Layout};
use super::{Stats, Warn};
use crate::format::tree::{Node, NodeKind, Tree};
use crate::format::BlobId;
use crate::repository::Repository;

/// How long the kernel may keep names and attributes: snapshots never change.
const TTL: Duration = Duration::from_secs(60);

/// The file system of one mount.
pub struct SnapFs {
    repo: Arc<Repository>,
    layout: Layout,
    inodes: Mutex<Inodes>,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    next_fh: AtomicU64,
    blobs: Cache<BlobId, Vec<u8>>,
    trees: Cache<BlobId, Tree>,
    /// Owner of the layout directories: who mounted.
    owner: (u32, u32),
    warn: Warn,
    warned: Mutex<HashSet<BlobId>>,
    stats: Arc<Stats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A guess of a parsed listing's size in memory, for the cache budget.
fn tree_weight(t: &Tree) -> u64 {
    t.nodes
        .iter()
        .map(|n| {
            let x: usize = n.xattrs.iter().map(|(k, v)| k.len() + v.len()).sum();
            (std::mem::size_of::<Node>() + n.name.len() + n.content.len() * 32 + x) as u64
        })
        .sum::<u64>()
        + 64
}

impl SnapFs {
    /// The file system of `layout`'s snapshots; `cache_size` bytes of file
    /// data are kept, and a quarter of that (at least 4 MiB) of listings.
    pub fn new(
        repo: Arc<Repository>,
        layout: Layout,
        cache_size: u64,
        warn: Warn,
        stats: Arc<Stats>,
    ) -> SnapFs {
        SnapFs {
            repo,
            layout,
            inodes: Mutex::new(Inodes::new(What::Layout(Entry::Dir(
                super::layout::Dir::Root,
            )))),
            files: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            blobs: Cache::new(cache_size),
            trees: Cache::new((cache_size / 4).max(4 << 20)),
            owner: (
                rustix::process::getuid().as_raw(),
                rustix::process::getgid().as_raw(),
            ),
            warn,
            warned: Mutex::new(HashSet::new()),
            stats,
        }
    }

    /// Says once per blob why it could not be read.
    fn warn_once(&self, id: &BlobId, msg: String) {
        if lock(&self.warned).insert(*id) {
            (self.warn)(&msg);
        }
    }

    fn tree(&self, id: &BlobId) -> Result<Arc<Tree>, Errno> {
        if let Some(t) = self.trees.get(id) {
            return Ok(t);
        }
        match self.repo.load_tree(id) {
            Ok(t) => {
                let w = tree_weight(&t);
                Ok(self.trees.put(*id, t, w))
            }
            Err(e) => {
                self.warn_once(id, format!("cannot list a directory: {e}"));
                Err(Errno::EIO)
            }
        }
    }

    /// The listing of a directory of a snapshot (`None`: not one).
    fn listing(&self, what: &What) -> Result<Option<Arc<Tree>>, Errno> {
        let id = match what {
            What::Layout(Entry::Snapshot(i)) => self.layout.snaps[*i].snapshot.tree,
            What::Node(n) if n.kind == NodeKind::Dir => match &n.subtree {
                Some(id) => *id,
                None => return Ok(Some(Arc::new(Tree::default()))),
            },
            _ => return Ok(None),
        };
        self.tree(&id).map(Some)
    }

    fn blob(&self, id: &BlobId, len: u64, path: &str) -> crate::Result<Arc<Vec<u8>>> {
        if let Some(b) = self.blobs.get(id) {
            return Ok(b);
        }
        let data = self.repo.read_blob(id).and_then(|d| {
            if d.len() as u64 == len {
                Ok(d)
            } else {
                Err(crate::Error::corrupt(
                    format!("blob {}", id.short()),
                    format!("{} bytes, the index says {len}", d.len()),
                ))
            }
        });
        match data {
            Ok(d) => {
                self.stats.blobs_read.fetch_add(1, Ordering::Relaxed);
                Ok(self.blobs.put(*id, d, len))
            }
            Err(e) => {
                self.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                self.warn_once(id, format!("cannot read {path}: {e}"));
                Err(e)
            }
        }
    }

    fn attr(&self, ino: u64, what: &What) -> FileAttr {
        attr::of(ino, what, &self.layout, self.owner)
    }

    fn child(&self, parent: &What, name: &[u8]) -> Result<What, Errno> {
        if let What::Layout(Entry::Dir(d)) = parent {
            return self
                .layout
                .children(d)
                .into_iter()
                .find(|(n, _)| n.as_bytes() == name)
                .map(|(_, e)| What::Layout(e))
                .ok_or(Errno::ENOENT);
        }
        let tree = self.listing(parent)?.ok_or(Errno::ENOTDIR)?;
        tree.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .map(|i| What::Node(Arc::new(tree.nodes[i].clone())))
            .map_err(|_| Errno::ENOENT)
    }

    fn get(&self, ino: INodeNo) -> Result<(What, u64), Errno> {
        lock(&self.inodes).get(ino.0).ok_or(Errno::ENOENT)
    }
}

impl Filesystem for SnapFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self
            .get(parent)
            .and_then(|(p, _)| self.child(&p, name.as_bytes()));
        match r {
            Ok(what) => {
                let ino = lock(&self.inodes).looked_up(parent.0, name.as_bytes(), what.clone());
                reply.entry(&TTL, &self.attr(ino, &what), Generation(0));
            }
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        lock(&self.inodes).forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.get(ino) {
            Ok((what, _)) => reply.attr(&TTL, &self.attr(ino.0, &what)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.get(ino) {
            Ok((What::Layout(Entry::Latest(t)), _)) => reply.data(t.as_bytes()),
            Ok((What::Node(n), _)) if n.kind == NodeKind::Symlink => {
                reply.data(n.link_target.as_deref().unwrap_or_default())
            }
            Ok(_) => reply.error(Errno::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let node = match self.get(ino) {
            Ok((What::Node(n), _)) if n.kind == NodeKind::File => n,
            Ok(_) => return reply.error(Errno::EACCES),
            Err(e) => return reply.error(e),
        };
        let path = lock(&self.inodes).path(ino.0);
        match OpenFile::open(&self.repo, node, path) {
            Ok(f) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                lock(&self.files).insert(fh, Arc::new(f));
                // The content of a snapshot's file never changes.
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Err(e) => {
                (self.warn)(&format!("cannot open: {e}"));
                reply.error(Errno::EIO)
            }
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(f) = lock(&self.files).get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        match f.read(offset, size, &|id, len| self.blob(id, len, &f.path)) {
            Ok(data) => {
                self.stats
                    .bytes_read
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                reply.data(&data)
            }
            Err(_) => reply.error(Errno::EIO),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.files).remove(&fh.0);
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let (what, parent) = match self.get(ino) {
            Ok(x) => x,
            Err(e) => return reply.error(e),
        };
        // Positions: 0 ".", 1 "..", 2 + k the k-th entry; an entry's
        // offset is the position of the next one.
        let mut pos = offset;
        let mut full = false;
        while pos < 2 && !full {
            let (n, name) = if pos == 0 {
                (ino.0, ".")
            } else {
                (parent, "..")
            };
            full = reply.add(INodeNo(n), pos + 1, FileType::Directory, name);
            pos += 1;
        }
        let skip = pos.saturating_sub(2) as usize;
        if let What::Layout(Entry::Dir(d)) = &what {
            for (name, e) in self.layout.children(d).into_iter().skip(skip) {
                if full {
                    break;
                }
                let n = inodes::number(ino.0, name.as_bytes());
                full = reply.add(INodeNo(n), pos + 1, entry_type(&e), &name);
                pos += 1;
            }
            return reply.ok();
        }
        let tree = match self.listing(&what) {
            Ok(Some(t)) => t,
            Ok(None) => return reply.error(Errno::ENOTDIR),
            Err(e) => return reply.error(e),
        };
        for node in tree.nodes.iter().skip(skip) {
            if full {
                break;
            }
            let n = inodes::number(ino.0, &node.name);
            let name = OsStr::from_bytes(&node.name);
            full = reply.add(INodeNo(n), pos + 1, file_type(node.kind), name);
            pos += 1;
        }
        reply.ok();
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let value = match self.get(ino) {
            Ok((What::Node(n), _)) => n
                .xattrs
                .iter()
                .find(|(k, _)| k.as_slice() == name.as_bytes())
                .map(|(_, v)| v.clone()),
            Ok(_) => None,
            Err(e) => return reply.error(e),
        };
        match value {
            None => reply.error(Errno::ENODATA),
            Some(v) => xattr_reply(reply, &v, size),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let mut names = Vec::new();
        match self.get(ino) {
            Ok((What::Node(n), _)) => {
                for (k, _) in &n.xattrs {
                    names.extend_from_slice(k);
                    names.push(0);
                }
            }
            Ok(_) => {}
            Err(e) => return reply.error(e),
        }
        xattr_reply(reply, &names, size)
    }
}

/// The size asked for (`size` 0), the value, or ERANGE if it does not fit.
fn xattr_reply(reply: ReplyXattr, v: &[u8], size: u32) {
    if size == 0 {
        reply.size(v.len() as u32)
    } else if v.len() > size as usize {
        reply.error(Errno::ERANGE)
    } else {
        reply.data(v)
    }
}
