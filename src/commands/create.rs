//! `snap create`: walk the sources, store what is new, commit a snapshot.
//!
//! Directories are walked in parallel (rayon); each file is read, chunked
//! and hashed on the walking thread, and new chunks go to the blob saver's
//! workers for compression, encryption and packing. Trees are saved bottom
//! up; the snapshot object is written last, after every pack is durable and
//! indexed, so an interrupted run leaves no snapshot that points at missing
//! data.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::format::snapshot::{Snapshot, Summary};
use crate::format::tree::{self, Node, NodeKind, Tree, TreeError};
use crate::format::{BlobId, BlobKind, SnapshotId};
use crate::pipeline::chunker::Chunker;
use crate::repository::saver::BlobSaver;
use crate::repository::snapshots::{now_ns, rfc3339, FUTURE_TOLERANCE_NS};
use crate::repository::{Repository, SnapshotFilter, SnapshotList};
use crate::source::dir::ListError;
use crate::source::meta::{self, OwnerNames};
use crate::source::paths::{self, SourcePath};
use crate::source::read_permits::ReadPermits;
use crate::source::{self, Excludes};
use crate::{Error, Result};

pub use super::streams::StreamSource;

/// Stack of each walker thread.
const WALKER_STACK: usize = 128 << 20;

/// Options of `snap create`.
#[derive(Debug, Default)]
pub struct CreateOptions {
    /// Files and directories to back up.
    pub paths: Vec<PathBuf>,
    /// Command outputs to store as files (database dumps).
    pub streams: Vec<StreamSource>,
    /// Tags.
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    pub host: Option<String>,
    /// Exclude rules.
    pub excludes: Excludes,
    /// Snapshot time in ns since the epoch (default: now).
    pub time_ns: Option<i64>,
    /// Parent snapshot selector (default: latest with same host and paths).
    pub parent: Option<String>,
    /// Read every file even when unchanged.
    pub full: bool,
    /// Worker threads for compression and encryption.
    pub threads: usize,
    /// Read and chunk as usual but store nothing, take no lock and save no
    /// snapshot; report what would be read and added.
    pub dry_run: bool,
    /// Save no snapshot when the tree is the parent's (nothing changed).
    pub skip_if_unchanged: bool,
    /// Progress counters and verbose lines (no-op by default).
    pub progress: crate::progress::Progress,
}

/// A file that a run reads (listed by `--dry-run`).
#[derive(Debug, Serialize)]
pub struct WouldRead {
    /// Absolute path, in the escaped form of `crate::name_escape`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// `new` (not in the parent) or `changed`.
    pub why: &'static str,
}

/// What a `--dry-run` found; nothing was written.
#[derive(Debug, Default, Serialize)]
pub struct DryRun {
    /// The files that would be read, in walk order.
    pub files: Vec<WouldRead>,
    /// Their total size.
    pub bytes: u64,
    /// Blobs the repository does not have yet.
    pub new_blobs: u64,
    /// Their plaintext size (before compression).
    pub new_bytes: u64,
}

/// What `create` did.
#[derive(Debug, Serialize)]
pub struct CreateReport {
    /// The new snapshot.
    pub snapshot: String,
    /// The parent used for change detection.
    pub parent: Option<String>,
    /// True when some files could not be read completely.
    pub incomplete: bool,
    /// Statistics.
    pub summary: Summary,
    /// Warnings that do not make the snapshot incomplete: damaged snapshot
    /// objects skipped, a time ahead of this machine's clock, inode flags
    /// that are not stored.
    pub notices: Vec<String>,
    /// `--dry-run`: what would be read and added (`snapshot` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRun>,
    /// `--skip-if-unchanged` found nothing changed: no snapshot was saved,
    /// and `snapshot` is the parent, which still describes the sources.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

#[derive(Default)]
struct Counters {
    files_new: AtomicU64,
    files_changed: AtomicU64,
    files_unchanged: AtomicU64,
    dirs: AtomicU64,
    total_bytes: AtomicU64,
    bytes_read: AtomicU64,
}

/// Shared state of one `create` run.
pub(crate) struct Archiver<'a> {
    pub(crate) saver: &'a BlobSaver,
    excludes: &'a Excludes,
    owners: OwnerNames,
    counters: Counters,
    warnings: Mutex<Vec<String>>,
    /// Warnings that do not make the snapshot incomplete.
    notices: Mutex<Vec<String>>,
    full: bool,
    /// `--dry-run`: the files read.
    read_log: Option<Mutex<Vec<WouldRead>>>,
    /// Progress counters and verbose lines.
    progress: &'a crate::progress::Progress,
    /// A source (or a dump) differs from its node in the parent. The
    /// directories on the way to the sources do not count: their times
    /// change with every sibling created beside a source (`/tmp`, `/srv`).
    source_changed: std::sync::atomic::AtomicBool,
    /// Walkers reading a file larger than [`LARGE_FILE`] at once (each
    /// holds a buffer of up to 8 MiB and chunks on their way to the saver):
    /// as many as before the walk had more walkers than that.
    large_reads: ReadPermits,
}

/// Walker threads of a backup. A cold small file is a disk round trip on
/// one walker, so a tree of small files is bound by how many reads are in
/// flight: 300,000 files of 0-4 KiB, cold, took 17.5-18.0 s with 4
/// walkers, 12.8 s with 8 and 11.5-12.4 s with 12 to 32 on 2 cores. Large
/// files are limited separately (`large_reads`), so more walkers cost
/// stack pages and no buffers.
fn walker_count(threads: usize) -> usize {
    (threads * 2).max(16)
}

/// Files larger than this (the average chunk) are read by at most
/// `threads * 2` walkers at once; the others hold at most this much in
/// their buffer and in the chunk they hand to the saver.
const LARGE_FILE: u64 = 256 * 1024;

thread_local! {
    static CHUNKER: RefCell<Option<Chunker>> = const { RefCell::new(None) };
}

const MAX_WARNINGS: usize = 1000;

impl<'a> Archiver<'a> {
    fn repo(&self) -> &Repository {
        self.saver.repo()
    }

    pub(crate) fn warn(&self, msg: String) {
        let mut w = self.warnings.lock().unwrap();
        if w.len() < MAX_WARNINGS {
            w.push(msg);
        }
    }

    fn notice(&self, msg: String) {
        let mut n = self.notices.lock().unwrap();
        if n.len() < MAX_WARNINGS {
            n.push(msg);
        }
    }

    /// Counts a stored stream (dump) as a new file of `n` bytes.
    pub(crate) fn count_stream(&self, n: u64) {
        self.counters.files_new.fetch_add(1, Ordering::Relaxed);
        self.counters.total_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Chunks and stores everything `r` yields (about `size_hint` bytes,
    /// `u64::MAX` when not known); returns the chunk ids and the byte count.
    pub(crate) fn store_stream(
        &self,
        r: &mut dyn std::io::Read,
        size_hint: u64,
    ) -> Result<std::result::Result<(Vec<BlobId>, u64), std::io::Error>> {
        let params = self.repo().config().chunker;
        let seed = self.repo().key().chunker_seed();
        CHUNKER.with(|cell| {
            let mut slot = cell.borrow_mut();
            let ch = slot.get_or_insert_with(|| Chunker::new(params, seed));
            let mut ids = Vec::new();
            let res = ch.chunk_reader(r, size_hint, |chunk| -> Result<()> {
                let (id, _) = self.saver.save(BlobKind::Data, chunk)?;
                self.progress.bytes_done(chunk.len() as u64);
                ids.push(id);
                Ok(())
            });
            match res {
                Err(io) => Ok(Err(io)),
                Ok(Err(e)) => Err(e),
                Ok(Ok(n)) => {
                    self.counters.bytes_read.fetch_add(n, Ordering::Relaxed);
                    Ok(Ok((ids, n)))
                }
            }
        })
    }

    fn archive_file(&self, path: &Path, node: Node, parent: Option<&Node>) -> Result<Option<Node>> {
        let progress = self.progress;
        progress.file_started(path);
        let stored = self.archive_file_inner(path, node, parent);
        progress.file_done();
        stored
    }

    fn archive_file_inner(
        &self,
        path: &Path,
        mut node: Node,
        parent: Option<&Node>,
    ) -> Result<Option<Node>> {
        if let Some(p) = parent {
            // Unchanged files reuse the parent's chunks only if this run may
            // reference every one of them (else the file is read again).
            if !self.full && meta::unchanged(&node, p) && self.saver.usable(&p.content)? {
                self.progress.bytes_done(node.size);
                self.progress
                    .verbose(2, || format!("unchanged {}", path.display()));
                node.content = p.content.clone();
                self.counters
                    .files_unchanged
                    .fetch_add(1, Ordering::Relaxed);
                self.counters
                    .total_bytes
                    .fetch_add(node.size, Ordering::Relaxed);
                return Ok(Some(node));
            }
        }
        self.progress.verbose(1, || match parent {
            Some(p) => format!(
                "changed {} ({})",
                path.display(),
                change_reason(&node, p, self.full)
            ),
            None => format!("new {}", path.display()),
        });
        if let Some(log) = &self.read_log {
            log.lock().unwrap().push(WouldRead {
                path: crate::name_escape::escape(path.as_os_str().as_bytes()),
                size: node.size,
                why: if parent.is_some() { "changed" } else { "new" },
            });
        }
        let mut f = match open_file(path, &node) {
            Ok(f) => f,
            Err(OpenError::Io(e)) => {
                self.warn(format!("{}: cannot read: {e}", path.display()));
                return Ok(None);
            }
            Err(OpenError::Replaced(what)) => {
                self.warn(format!(
                    "{}: replaced by {what} while being backed up; left out",
                    path.display()
                ));
                return Ok(None);
            }
        };
        let _permit = (node.size > LARGE_FILE).then(|| self.large_reads.acquire());
        let (ids, n) = match self.store_stream(&mut f, node.size)? {
            Ok(x) => x,
            Err(e) => {
                self.warn(format!("{}: read failed: {e}", path.display()));
                return Ok(None);
            }
        };
        if let Ok(after) = f.metadata() {
            let mtime = after.mtime() * 1_000_000_000 + after.mtime_nsec();
            if after.len() != n || mtime != node.mtime_ns {
                self.warn(format!(
                    "{}: changed while being read; stored as read",
                    path.display()
                ));
            }
        }
        node.size = n;
        node.content = ids;
        if parent.is_some() {
            self.counters.files_changed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.files_new.fetch_add(1, Ordering::Relaxed);
        }
        self.counters.total_bytes.fetch_add(n, Ordering::Relaxed);
        Ok(Some(node))
    }

    /// Stores a directory listing (in parts when it is large).
    fn store_tree(&self, tree: &Tree) -> std::result::Result<BlobId, StoreTreeError> {
        tree.store(|bytes| {
            self.saver
                .save(BlobKind::Tree, bytes)
                .map(|(id, _)| id)
                .map_err(StoreTreeError::Repo)
        })
    }

    /// Stores the listing of `dir`; a listing that cannot be stored is an
    /// error naming the directory (for the root and the dumps directory).
    pub(crate) fn save_tree(&self, tree: &Tree, dir: &Path) -> Result<BlobId> {
        self.store_tree(tree).map_err(|e| match e {
            StoreTreeError::Repo(e) => e,
            StoreTreeError::Tree(e) => Error::Invalid(format!(
                "{}: cannot store the directory listing: {e}",
                dir.display()
            )),
        })
    }

    /// Stores the listing of `dir`, or warns naming it and returns `None`
    /// (the directory is left out and the snapshot is incomplete).
    fn save_dir_tree(&self, tree: &Tree, dir: &Path) -> Result<Option<BlobId>> {
        match self.store_tree(tree) {
            Ok(id) => Ok(Some(id)),
            Err(StoreTreeError::Repo(e)) => Err(e),
            Err(StoreTreeError::Tree(e)) => {
                self.warn(format!(
                    "{}: cannot store the directory listing ({e}); left out",
                    dir.display()
                ));
                Ok(None)
            }
        }
    }

    /// Archives one file system object (recursing into directories). `at`
    /// is its entry in the tree of source paths when it is a source or on
    /// the way to one (see [`Prefix`]).
    fn archive_path(
        &self,
        path: &Path,
        name: &[u8],
        root_dev: u64,
        parent: Option<&Node>,
        at: Option<&Prefix>,
    ) -> Result<Option<Node>> {
        // A stop point per entry, also where nothing is stored (unchanged
        // files, empty directories).
        crate::interrupt::check()?;
        // (`--full` reads everything again, xattrs too.)
        let before = parent.filter(|_| !self.full);
        let (itself, flags) = match meta::lstat_node(path, name, &self.owners, before) {
            Ok(x) => x,
            Err(e) => {
                self.warn(format!("{}: vanished or unreadable: {e}", path.display()));
                return Ok(None);
            }
        };
        let explicit = at.is_some_and(|p| p.source);
        let follow = explicit
            && at.is_some_and(|p| p.follow)
            && itself.kind == NodeKind::Symlink
            && std::fs::metadata(path).is_ok_and(|t| t.is_dir());
        let mut node = if follow {
            // `link/` given as a source: the directory the link points to.
            match meta::node_resolved(path, name, &self.owners) {
                Ok(n) => n,
                Err(e) => {
                    self.warn(format!("{}: vanished or unreadable: {e}", path.display()));
                    return Ok(None);
                }
            }
        } else {
            itself
        };
        // A source given explicitly is its own root for --one-file-system
        // (`create / /boot --one-file-system` stores /boot too).
        let root_dev = if explicit { node.dev } else { root_dev };
        if matches!(node.kind, NodeKind::File | NodeKind::Dir) {
            if let Some(flags) = flags {
                self.notice(format!(
                    "{}: is {flags}; snap does not store this flag, and restore will not set it",
                    path.display()
                ));
            }
        }
        if node.kind == NodeKind::File && !explicit && self.excludes.too_large(node.size) {
            return Ok(None); // --exclude-larger-than
        }
        let parent = parent.filter(|p| p.kind == node.kind);
        let nested = at.filter(|p| !p.children.is_empty());
        if nested.is_some() && node.kind != NodeKind::Dir {
            self.warn(format!(
                "{}: is no longer a directory; the sources given inside it were not stored",
                path.display()
            ));
        }
        match node.kind {
            NodeKind::File => self.archive_file(path, node, parent),
            NodeKind::Symlink => match parent
                .filter(|p| !self.full && meta::untouched(&node, p))
                .and_then(|p| p.link_target.clone())
            {
                Some(t) => {
                    node.link_target = Some(t);
                    Ok(Some(node))
                }
                None => Ok(self.read_link(path, node)),
            },
            NodeKind::Dir => {
                let parent_tree = match parent.and_then(|p| p.subtree) {
                    Some(id) => self.repo().load_tree(&id).ok(),
                    None => None,
                };
                let cross = self.excludes.one_file_system && node.dev != root_dev;
                let tags = if cross {
                    Vec::new()
                } else {
                    self.excludes.tag_files(path)
                };
                let tree = if cross || !tags.is_empty() {
                    // Keep the directory itself, not its contents (and the
                    // tag files, CACHEDIR.TAG or --exclude-if-present, so
                    // it stays recognisable), but the sources given inside.
                    let mut t = match nested {
                        Some(p) => self.archive_prefix(path, p, parent_tree.as_ref())?,
                        None => Tree::default(),
                    };
                    for name in &tags {
                        if t.find(name).is_some() {
                            continue;
                        }
                        let tag = path.join(OsStr::from_bytes(name));
                        if let Some(n) = self.archive_path(&tag, name, root_dev, None, None)? {
                            t.nodes.push(n);
                            t.nodes.sort_by(|a, b| a.name.cmp(&b.name));
                        }
                    }
                    t
                } else {
                    let id = (node.dev, node.inode);
                    match self.archive_dir(path, id, root_dev, parent_tree.as_ref(), at)? {
                        Some(t) => t,
                        None => return Ok(None),
                    }
                };
                self.counters.dirs.fetch_add(1, Ordering::Relaxed);
                node.subtree = match self.save_dir_tree(&tree, path)? {
                    Some(id) => Some(id),
                    None => return Ok(None),
                };
                Ok(Some(node))
            }
            _ => Ok(Some(node)),
        }
    }

    /// `node`, the symlink at `path`, with its target (`None` after a
    /// warning when it cannot be read).
    fn read_link(&self, path: &Path, mut node: Node) -> Option<Node> {
        match std::fs::read_link(path) {
            Ok(t) => {
                node.link_target = Some(t.as_os_str().as_bytes().to_vec());
                Some(node)
            }
            Err(e) => {
                self.warn(format!("{}: cannot read link: {e}", path.display()));
                None
            }
        }
    }

    /// The listing of `dir`, the directory `(dev, ino)` that `lstat` saw
    /// (`None` after a warning when the path now names something else).
    fn archive_dir(
        &self,
        dir: &Path,
        (dev, ino): (u64, u64),
        root_dev: u64,
        parent: Option<&Tree>,
        at: Option<&Prefix>,
    ) -> Result<Option<Tree>> {
        // A source given as `link/` is listed through the link (the final
        // component `.` is no symlink for O_NOFOLLOW to refuse).
        let through = at.is_some_and(|p| p.source && p.follow);
        let listed = if through {
            dir.join(".")
        } else {
            dir.to_path_buf()
        };
        let mut names = match source::dir::list(&listed, dev, ino) {
            Ok((names, errors)) => {
                for e in errors {
                    self.warn(format!("{}: error while listing: {e}", dir.display()));
                }
                names
            }
            Err(ListError::Io(e)) => {
                self.warn(format!("{}: cannot list directory: {e}", dir.display()));
                return Ok(Some(Tree::default()));
            }
            Err(ListError::Replaced(what)) => {
                self.warn(format!(
                    "{}: replaced by {what} while being backed up; left out",
                    dir.display()
                ));
                return Ok(None);
            }
        };
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for wanted in at.iter().flat_map(|p| p.children.keys()) {
            if names
                .binary_search_by(|n| n.as_bytes().cmp(wanted))
                .is_err()
            {
                self.warn(format!(
                    "{}: vanished; a source given there was not stored",
                    dir.join(OsStr::from_bytes(wanted)).display()
                ));
            }
        }
        let nodes: Vec<Result<Option<Node>>> = names
            .par_iter()
            .map(|name| {
                let path = dir.join(name);
                let name = name.as_bytes();
                if let Err(e) = tree::check_name(name) {
                    self.warn(format!("{}: {e}; left out", path.display()));
                    return Ok(None);
                }
                let before = parent.and_then(|t| t.find(name));
                let inner = at.and_then(|p| p.children.get(name));
                if self.excludes.excluded(&path, OsStr::from_bytes(name)) {
                    // What was given as a source is stored even where an
                    // exclude matches (with the directories leading to it).
                    return match inner {
                        None => Ok(None),
                        Some(p) if p.source => {
                            self.archive_path(&path, name, root_dev, before, inner)
                        }
                        Some(p) => self.archive_intermediate(&path, name, p, before),
                    };
                }
                self.archive_path(&path, name, root_dev, before, inner)
            })
            .collect();
        let mut tree = Tree::default();
        for n in nodes {
            if let Some(n) = n? {
                tree.nodes.push(n);
            }
        }
        Ok(Some(tree))
    }
}

/// The error of storing a listing: invalid (a bug, or a single entry larger
/// than a tree blob) or a repository failure.
enum StoreTreeError {
    Tree(TreeError),
    Repo(Error),
}

impl From<TreeError> for StoreTreeError {
    fn from(e: TreeError) -> Self {
        StoreTreeError::Tree(e)
    }
}

/// Opening a file found by `lstat`.
enum OpenError {
    Io(std::io::Error),
    /// The path now names something else (what, for the message).
    Replaced(&'static str),
}

/// Opens the file that `lstat` described as `node` for reading, without
/// following a symlink or blocking on a FIFO put in its place since
/// (`O_NOFOLLOW | O_NONBLOCK`; reads of a regular file ignore
/// `O_NONBLOCK`), and checks with `fstat` that it is still that regular
/// file (device and inode).
fn open_file(path: &Path, node: &Node) -> std::result::Result<File, OpenError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => OpenError::Replaced("a symlink"),
            _ => OpenError::Io(e),
        })?;
    let m = f.metadata().map_err(OpenError::Io)?;
    let ft = m.file_type();
    if !ft.is_file() {
        return Err(OpenError::Replaced(if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else {
            "a special file"
        }));
    }
    if m.dev() != node.dev || m.ino() != node.inode {
        return Err(OpenError::Replaced("another file"));
    }
    Ok(f)
}

/// A node of the tree of source paths: `/srv` and `/etc/x` give a root
/// with `srv` (a source) and `etc` (on the way) with `x` (a source). A
/// source inside another (`/` and `/etc`) is stored once, by the walk of
/// the enclosing one, where its entry only makes that path count as given:
/// never excluded, and its own device for `--one-file-system`.
#[derive(Default, Debug)]
struct Prefix {
    children: BTreeMap<Vec<u8>, Prefix>,
    source: bool,
    /// Given with a trailing slash: a symlink here stands for its directory.
    follow: bool,
}

fn build_prefixes(sources: &[SourcePath]) -> Prefix {
    let mut root = Prefix::default();
    for s in sources {
        let mut at = &mut root;
        // Normalized: `/`, then plain names only.
        for c in s.path.components().skip(1) {
            at = at
                .children
                .entry(c.as_os_str().as_bytes().to_vec())
                .or_default();
        }
        at.source = true;
        at.follow |= s.follow;
    }
    root
}

impl Archiver<'_> {
    /// The root listing: all of `/` when it is a source, else the
    /// directories on the way to the sources.
    fn archive_root(&self, prefixes: &Prefix, parent: Option<&Tree>) -> Result<Tree> {
        let root = Path::new("/");
        if !prefixes.source {
            return self.archive_prefix(root, prefixes, parent);
        }
        let m = std::fs::symlink_metadata(root).map_err(|e| Error::io(root, e))?;
        let tree = self.archive_dir(root, (m.dev(), m.ino()), m.dev(), parent, Some(prefixes))?;
        tree.ok_or_else(|| Error::Invalid("/ changed while being listed".into()))
    }

    /// The listing of `dir`, a directory on the way to sources: only the
    /// children that are sources or lead to them.
    fn archive_prefix(&self, dir: &Path, prefix: &Prefix, parent: Option<&Tree>) -> Result<Tree> {
        let mut tree = Tree::default();
        for (name, child) in &prefix.children {
            let path = dir.join(OsStr::from_bytes(name));
            let before = parent.and_then(|t| t.find(name));
            let node = if child.source {
                let node = self.archive_path(&path, name, 0, before, Some(child))?;
                if node.as_ref() != before {
                    self.source_changed.store(true, Ordering::Relaxed);
                }
                node
            } else {
                self.archive_intermediate(&path, name, child, before)?
            };
            if let Some(n) = node {
                tree.nodes.push(n);
            }
        }
        Ok(tree)
    }

    /// A directory on the way to sources: the metadata of the directory it
    /// resolves to (a symlinked component, `/srv/link/data`, stands for its
    /// target, not the link's 0777) and only the chosen children.
    fn archive_intermediate(
        &self,
        path: &Path,
        name: &[u8],
        prefix: &Prefix,
        before: Option<&Node>,
    ) -> Result<Option<Node>> {
        let mut node = match meta::node_resolved(path, name, &self.owners) {
            Ok(n) if n.kind == NodeKind::Dir => n,
            Ok(_) => {
                self.warn(format!(
                    "{}: not a directory; the sources given inside it were not stored",
                    path.display()
                ));
                return Ok(None);
            }
            Err(e) => {
                self.warn(format!("{}: vanished or unreadable: {e}", path.display()));
                return Ok(None);
            }
        };
        let parent_tree = match before
            .filter(|b| b.kind == NodeKind::Dir)
            .and_then(|b| b.subtree)
        {
            Some(id) => self.repo().load_tree(&id).ok(),
            None => None,
        };
        let sub = self.archive_prefix(path, prefix, parent_tree.as_ref())?;
        node.subtree = match self.save_dir_tree(&sub, path)? {
            Some(id) => Some(id),
            None => return Ok(None),
        };
        Ok(Some(node))
    }
}

/// "3 days", "2 hours", "7 minutes": how far ahead a time is.
fn ahead_by(ns: i64) -> String {
    let mins = ns / 60_000_000_000;
    match mins {
        m if m >= 2 * 1440 => format!("{} days", m / 1440),
        m if m >= 120 => format!("{} hours", m / 60),
        m => format!("{m} minutes"),
    }
}

/// Warns about times ahead of this machine's clock: the new snapshot's
/// (a mistyped `--time`), and those of existing snapshots of the same host
/// and paths (a clock that was wrong), which `latest` and parent selection
/// pass over and prune keeps without counting.
fn future_notices(
    list: &SnapshotList,
    host: &str,
    paths: &[String],
    time_ns: i64,
    now: i64,
    notices: &mut Vec<String>,
) {
    let limit = now.saturating_add(FUTURE_TOLERANCE_NS);
    let newest = list.snapshots.last().map(|(_, s)| s.time_ns);
    if time_ns > limit && newest.is_none_or(|n| time_ns > n.saturating_add(FUTURE_TOLERANCE_NS)) {
        notices.push(format!(
            "the snapshot's time {} is in the future: {} ahead of this machine's clock ({}); \
             `latest` passes over it and prune keeps it without counting it \
             (`snap forget` it if the time was a mistake)",
            rfc3339(time_ns),
            ahead_by(time_ns - now),
            rfc3339(now)
        ));
    }
    if time_ns > limit {
        // Dated in the future itself: the others are no news.
        return;
    }
    for (id, s) in &list.snapshots {
        if s.time_ns > limit && s.host == host && s.paths == paths {
            notices.push(format!(
                "snapshot {} of this host and paths is dated {}, {} ahead of this machine's \
                 clock: it is not used as parent nor as `latest` (a wrong clock or --time?)",
                id.short(),
                rfc3339(s.time_ns),
                ahead_by(s.time_ns - now)
            ));
        }
    }
}

/// The parent for change detection: `--parent` if given (an id as is;
/// `latest` like the default), else the latest snapshot of the same host
/// and paths dated no later than this one. Damaged snapshot objects are
/// skipped with a notice.
fn find_parent(
    repo: &Repository,
    opts: &CreateOptions,
    host: &str,
    paths: &[String],
    time_ns: i64,
    notices: &mut Vec<String>,
) -> Result<Option<(SnapshotId, Snapshot)>> {
    let list = repo.list_snapshots()?;
    notices.extend(list.warnings());
    let now = now_ns();
    future_notices(&list, host, paths, time_ns, now, notices);
    if opts.full {
        return Ok(None);
    }
    let filter = SnapshotFilter {
        hosts: vec![host.to_string()],
        paths: paths.to_vec(),
        not_after_ns: Some(time_ns),
        ..Default::default()
    };
    match opts.parent.as_deref() {
        None => Ok(list
            .select_latest(&filter, host, now)?
            .map(|s| (s.id, s.snapshot))),
        Some("latest") => {
            let s =
                list.select_latest(&filter, host, now)?
                    .ok_or_else(|| Error::SnapshotSelector {
                        selector: "latest".into(),
                        why: format!(
                            "no snapshot matching {} to be the parent",
                            filter.describe()
                        ),
                    })?;
            Ok(Some((s.id, s.snapshot)))
        }
        Some(sel) => {
            let s = repo.find_snapshot(sel, &SnapshotFilter::default())?;
            Ok(Some((s.id, s.snapshot)))
        }
    }
}

/// Why a file that has a node in the parent is read again (`-v`).
fn change_reason(now: &Node, before: &Node, full: bool) -> &'static str {
    if before.kind != NodeKind::File {
        "was not a file"
    } else if now.size != before.size {
        "size changed"
    } else if now.mtime_ns != before.mtime_ns {
        "mtime changed"
    } else if now.ctime_ns != before.ctime_ns {
        "ctime changed"
    } else if now.inode != before.inode {
        "inode changed"
    } else if now.mode != before.mode {
        "mode changed"
    } else if before.origin.is_some() {
        "was a dump"
    } else if full {
        "--full"
    } else {
        "its data in the repository is not usable"
    }
}

/// Runs `snap create`.
pub fn run(repo: Arc<Repository>, opts: CreateOptions) -> Result<CreateReport> {
    let started = Instant::now();
    if opts.paths.is_empty() && opts.streams.is_empty() {
        return Err(Error::Invalid(
            "nothing to back up: give paths, --from-command or --stdin-name".into(),
        ));
    }
    // Lexically normal absolute paths: no `..` can reach a tree, and the
    // snapshot records what was walked.
    let cwd = if opts.paths.iter().any(|p| p.is_relative()) {
        std::env::current_dir().map_err(|e| Error::io(".", e))?
    } else {
        PathBuf::from("/")
    };
    let mut sources = Vec::new();
    for p in &opts.paths {
        // As typed, the path must exist too: `cnof/../data` with a typo
        // must not quietly back up `data`.
        if !p.as_os_str().is_empty() {
            std::fs::symlink_metadata(p).map_err(|e| Error::io(p, e))?;
        }
        sources.push(paths::normalize(&cwd, p)?);
    }
    let sources = paths::dedup(sources);
    for s in &sources {
        // Fail early and clearly for a mistyped source path.
        std::fs::symlink_metadata(&s.path).map_err(|e| Error::io(&s.path, e))?;
    }
    paths::check_nesting(&sources)?;
    let mut paths: Vec<String> = sources
        .iter()
        .map(|s| s.path.display().to_string())
        .collect();
    if !opts.streams.is_empty() {
        paths.push(format!("/{}", super::streams::STREAMS_DIR));
    }
    let host = opts
        .host
        .clone()
        .unwrap_or_else(crate::repository::open::hostname);
    // Register before reading anything, so a prune either waits for us or
    // we see its intent (format-spec/07-prune-protocol.md).
    // A dry run writes nothing, so it takes no lock either.
    let (create_lock, excluded_packs) = if opts.dry_run {
        (None, Default::default())
    } else {
        let (l, x) = crate::repository::locks::register_create(&repo)?;
        (Some(l), x)
    };
    failpoint!("create.after_intents");
    // The index is only a cache: bring it in step with storage (one listing
    // of the packs) before it may say which blobs exist.
    repo.sync_index()?;
    let mut notices = Vec::new();
    let started_ns = opts.time_ns.unwrap_or_else(now_ns);
    let mut parent = find_parent(&repo, &opts, &host, &paths, started_ns, &mut notices)?;
    let parent_root = match &parent {
        // A parent that a concurrent prune removed is no parent at all.
        Some((_, s)) if opts.parent.is_none() => match repo.load_tree(&s.tree) {
            Ok(t) => Some(t),
            Err(Error::Missing { .. }) => {
                parent = None;
                None
            }
            Err(e) => return Err(e),
        },
        Some((_, s)) => Some(repo.load_tree(&s.tree)?),
        None => None,
    };
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        opts.threads
    };
    let mut saver = if opts.dry_run {
        BlobSaver::dry_run(repo.clone())
    } else {
        BlobSaver::new(repo.clone(), threads)?
    };
    saver.exclude_packs(excluded_packs);
    let arch = Archiver {
        saver: &saver,
        excludes: &opts.excludes,
        owners: OwnerNames::default(),
        counters: Counters::default(),
        warnings: Mutex::new(Vec::new()),
        notices: Mutex::new(Vec::new()),
        full: opts.full,
        read_log: opts.dry_run.then(Default::default),
        progress: &opts.progress,
        source_changed: Default::default(),
        large_reads: ReadPermits::new(threads * 2),
    };
    // Streams first: a failing dump aborts before anything is committed.
    let mut extra = Vec::new();
    let mut stream_summaries = Vec::new();
    if !opts.streams.is_empty() {
        let (dir, sums) = super::streams::archive_streams(&arch, &opts.streams)?;
        extra.push(dir);
        stream_summaries = sums;
    }
    let prefixes = build_prefixes(&sources);
    // The walk reads files: many walkers keep many cold reads in flight
    // (see `walker_count`); compression and encryption stay on the
    // saver's `threads` workers.
    let walkers = rayon::ThreadPoolBuilder::new()
        .num_threads(walker_count(threads))
        .thread_name(|i| format!("snap-walk-{i}"))
        // The walk recurses once per directory level (plus rayon's frames):
        // room for trees thousands of levels deep. Only the pages touched
        // are ever backed by memory.
        .stack_size(WALKER_STACK)
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start walker threads: {e}")))?;
    let mut root = walkers.install(|| arch.archive_root(&prefixes, parent_root.as_ref()))?;
    // Virtual entries (streams) at the root; the name is reserved for them.
    for n in extra {
        let before = parent_root.as_ref().and_then(|t| t.find(&n.name));
        if before.map(|b| b.subtree) != Some(n.subtree) {
            arch.source_changed.store(true, Ordering::Relaxed);
        }
        match root.nodes.binary_search_by(|r| r.name.cmp(&n.name)) {
            Ok(i) => {
                arch.warn(format!(
                    "/{}: replaced by this run's dumps (the name is reserved for them)",
                    n.name_lossy()
                ));
                root.nodes[i] = n;
            }
            Err(i) => root.nodes.insert(i, n),
        }
    }
    let root_id = arch.save_tree(&root, Path::new("/"))?;
    let warnings = std::mem::take(&mut *arch.warnings.lock().unwrap());
    notices.append(&mut arch.notices.lock().unwrap());
    let c = arch.counters;
    let read_log = arch.read_log;
    let source_changed = arch.source_changed.into_inner();
    drop(arch.owners);
    let stats = saver.finish()?;
    let dry = read_log.map(|log| {
        let files = log.into_inner().unwrap_or_else(|p| p.into_inner());
        DryRun {
            bytes: files.iter().map(|f| f.size).sum(),
            files,
            new_blobs: stats.blobs.load(Ordering::Relaxed),
            new_bytes: stats.bytes.load(Ordering::Relaxed),
        }
    });
    let stored = |n: &AtomicU64| {
        if dry.is_some() {
            0
        } else {
            n.load(Ordering::Relaxed)
        }
    };
    let summary = Summary {
        files_new: c.files_new.load(Ordering::Relaxed),
        files_changed: c.files_changed.load(Ordering::Relaxed),
        files_unchanged: c.files_unchanged.load(Ordering::Relaxed),
        dirs: c.dirs.load(Ordering::Relaxed),
        total_bytes: c.total_bytes.load(Ordering::Relaxed),
        bytes_read: c.bytes_read.load(Ordering::Relaxed),
        bytes_added: stored(&stats.bytes),
        blobs_added: stored(&stats.blobs),
        duration_ms: started.elapsed().as_millis() as u64,
        warnings,
        streams: stream_summaries,
    };
    let time_ns = opts
        .time_ns
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64);
    let snap = Snapshot {
        time_ns,
        host,
        user: std::env::var("USER").unwrap_or_else(|_| {
            uzers::get_current_username()
                .map(|u| u.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        tags: opts.tags.clone(),
        paths,
        tree: root_id,
        parent: parent.as_ref().map(|(id, _)| *id),
        incomplete: !summary.warnings.is_empty(),
        summary,
    };
    let parent_id = parent.as_ref().map(|(id, _)| id.to_hex());
    if dry.is_some() {
        return Ok(CreateReport {
            snapshot: String::new(),
            parent: parent_id,
            incomplete: snap.incomplete,
            summary: snap.summary,
            notices,
            dry_run: dry,
            skipped: false,
        });
    }
    let create_lock = create_lock.expect("a run that stores takes the registration");
    let unchanged = parent.as_ref().is_some_and(|(_, p)| {
        p.tree == root_id || (!prefixes.source && !source_changed && p.paths == snap.paths)
    });
    if opts.skip_if_unchanged && unchanged && !snap.incomplete {
        // Nothing changed since the parent: it still describes the sources.
        create_lock.release()?;
        return Ok(CreateReport {
            snapshot: parent_id.clone().unwrap_or_default(),
            parent: parent_id,
            incomplete: false,
            summary: snap.summary,
            notices,
            dry_run: None,
            skipped: true,
        });
    }
    failpoint!("create.before_snapshot");
    // The commit point: only while our registration is provably still ours
    // (format-spec/07, L5), and not after a stop was asked for (the last
    // stop point: once the snapshot is written, the run has succeeded).
    crate::interrupt::check()?;
    create_lock.ensure_held()?;
    let id = repo.save_snapshot(&snap)?;
    failpoint!("create.after_snapshot");
    create_lock.release()?;
    Ok(CreateReport {
        snapshot: id.to_hex(),
        parent: parent_id,
        incomplete: snap.incomplete,
        summary: snap.summary,
        notices,
        dry_run: None,
        skipped: false,
    })
}
