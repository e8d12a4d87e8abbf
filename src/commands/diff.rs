//! `snap diff`: what changed between two snapshots, or between a snapshot
//! and the live file system (restic's `diff`, with the same modifiers).
//!
//! Both sides are walked in name order. An entry only on the old side is
//! `-`, only on the new side `+` (a directory with everything below it),
//! one whose kind differs is `T`, one whose content differs is `M` (a
//! file's chunks, a symlink's target, a device's number), and with
//! `--metadata` one whose mode, owner, mtime or extended attributes differ
//! is `U`. Two directories with the same tree id hold the same entries, so
//! a walk of two snapshots only descends where something changed.
//!
//! Against the live file system a file counts as unchanged without being
//! read when its size, mtime, ctime, inode and mode match the snapshot (the
//! rule `create` uses); otherwise it is read, chunked and hashed with the
//! repository's key, and differs only if its chunks do.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ls::kind_name;
use crate::format::tree::{Node, NodeKind};
use crate::format::BlobId;
use crate::name_escape::escape;
use crate::pipeline::chunker::Chunker;
use crate::repository::Repository;
use crate::source::meta::{self, OwnerNames};
use crate::source::Excludes;
use crate::Result;

/// Options of `snap diff`.
#[derive(Debug, Default)]
pub struct DiffOptions {
    /// Also report mode, owner, mtime and xattr changes (`U`).
    pub metadata: bool,
    /// Live entries to leave out (as `create --exclude` did).
    pub excludes: Excludes,
}

/// One changed path.
#[derive(Debug, Serialize)]
pub struct Change {
    /// Absolute path, in the escaped form of `crate::name_escape`.
    pub path: String,
    /// `+` added, `-` removed, `M` content, `T` type, `U` metadata only.
    pub modifier: &'static str,
    /// Kind on the new side (the old side for `-`).
    pub kind: &'static str,
    /// Kind on the old side, for `T`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind_before: Option<&'static str>,
    /// Size on the old side (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_before: Option<u64>,
    /// Size on the new side (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_after: Option<u64>,
    /// What differs, for `M` and `U`: `content`, `target`, `device`,
    /// `mode`, `owner`, `mtime`, `xattrs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub what: Vec<&'static str>,
}

/// Counts of a diff.
#[derive(Debug, Default, Serialize)]
pub struct DiffStats {
    /// Files only on the new side.
    pub files_added: u64,
    /// Files only on the old side.
    pub files_removed: u64,
    /// Files whose content differs.
    pub files_changed: u64,
    /// Directories only on the new side.
    pub dirs_added: u64,
    /// Directories only on the old side.
    pub dirs_removed: u64,
    /// Other entries (symlinks, devices, FIFOs, sockets) only on the new side.
    pub others_added: u64,
    /// Other entries only on the old side.
    pub others_removed: u64,
    /// Symlinks or devices whose target or number differs.
    pub others_changed: u64,
    /// Entries whose kind differs.
    pub type_changed: u64,
    /// Entries whose metadata alone differs (`--metadata`).
    pub metadata_changed: u64,
    /// Total size of the files added.
    pub bytes_added: u64,
    /// Total size of the files removed.
    pub bytes_removed: u64,
    /// Total size of the changed files before ...
    pub bytes_changed_before: u64,
    /// ... and after.
    pub bytes_changed_after: u64,
}

/// What `snap diff` found.
#[derive(Debug, Default, Serialize)]
pub struct DiffReport {
    /// Changed paths, in walk order (by name, parents first).
    pub changes: Vec<Change>,
    /// Counts.
    pub stats: DiffStats,
    /// Live entries that could not be read (left out of the comparison).
    pub warnings: Vec<String>,
}

/// An entry on one side: a snapshot node, or a live one with its path.
struct Item {
    node: Node,
    live: Option<PathBuf>,
}

struct Differ<'a> {
    repo: &'a Repository,
    opts: &'a DiffOptions,
    owners: OwnerNames,
    chunker: Option<Chunker>,
    report: DiffReport,
}

/// A directory node standing for the root of a snapshot.
fn root_node(tree: BlobId) -> Node {
    let mut n = Node::new(Vec::new(), NodeKind::Dir);
    n.subtree = Some(tree);
    n
}

/// Compares the trees of two snapshots.
pub fn snapshots(
    repo: &Repository,
    old: &BlobId,
    new: &BlobId,
    opts: &DiffOptions,
) -> Result<DiffReport> {
    let mut d = Differ::new(repo, opts);
    let (a, b) = (
        Item {
            node: root_node(*old),
            live: None,
        },
        Item {
            node: root_node(*new),
            live: None,
        },
    );
    d.children_of(Path::new("/"), &a, &b)?;
    Ok(d.report)
}

/// Compares `path` (absolute, lexically normal) in the snapshot with root
/// tree `tree` to the same path on the live file system.
pub fn live(
    repo: &Repository,
    tree: &BlobId,
    path: &Path,
    snapshot: &str,
    opts: &DiffOptions,
) -> Result<DiffReport> {
    let old = match super::ls::find_node(repo, tree, path, snapshot)? {
        Some(n) => n,
        None => root_node(*tree),
    };
    let mut d = Differ::new(repo, opts);
    let a = Item {
        node: old,
        live: None,
    };
    let b = match std::fs::symlink_metadata(path) {
        Ok(m) => Some(d.live_item(path, &m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(crate::Error::io(path, e)),
    };
    if path == Path::new("/") {
        let b = b.expect("/ exists");
        d.children_of(path, &a, &b)?;
    } else {
        d.pair(path, Some(&a), b.as_ref())?;
    }
    Ok(d.report)
}

impl<'a> Differ<'a> {
    fn new(repo: &'a Repository, opts: &'a DiffOptions) -> Differ<'a> {
        Differ {
            repo,
            opts,
            owners: OwnerNames::default(),
            chunker: None,
            report: DiffReport::default(),
        }
    }

    fn warn(&mut self, msg: String) {
        self.report.warnings.push(msg);
    }

    fn live_item(&mut self, path: &Path, m: &std::fs::Metadata) -> Item {
        let name = path.file_name().map(|n| n.as_bytes()).unwrap_or(b"");
        let mut node = meta::node_from_metadata(path, name, m, &self.owners);
        if node.kind == NodeKind::Symlink {
            match std::fs::read_link(path) {
                Ok(t) => node.link_target = Some(t.as_os_str().as_bytes().to_vec()),
                Err(e) => self.warn(format!("{}: cannot read link: {e}", path.display())),
            }
        }
        Item {
            node,
            live: Some(path.to_path_buf()),
        }
    }

    /// The entries of a directory item, sorted by name.
    fn children(&mut self, it: &Item) -> Result<Vec<Item>> {
        if let Some(dir) = &it.live {
            return Ok(self.list_live(dir));
        }
        Ok(match it.node.subtree {
            Some(t) => self
                .repo
                .load_tree(&t)?
                .nodes
                .into_iter()
                .map(|node| Item { node, live: None })
                .collect(),
            None => Vec::new(),
        })
    }

    fn list_live(&mut self, dir: &Path) -> Vec<Item> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                self.warn(format!("{}: cannot list directory: {e}", dir.display()));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for e in rd {
            let e = match e {
                Ok(e) => e,
                Err(e) => {
                    self.warn(format!("{}: error while listing: {e}", dir.display()));
                    continue;
                }
            };
            let path = e.path();
            if self.opts.excludes.excluded(&path, &e.file_name()) {
                continue;
            }
            match std::fs::symlink_metadata(&path) {
                Ok(m) => out.push(self.live_item(&path, &m)),
                Err(e) => self.warn(format!("{}: vanished or unreadable: {e}", path.display())),
            }
        }
        out.sort_by(|a, b| a.node.name.cmp(&b.node.name));
        out
    }

    fn record(
        &mut self,
        path: &Path,
        modifier: &'static str,
        a: Option<&Node>,
        b: Option<&Node>,
        what: Vec<&'static str>,
    ) {
        let is_file = |n: &Node| n.kind == NodeKind::File;
        let shown = b.or(a).expect("one side");
        self.report.changes.push(Change {
            path: escape(path.as_os_str().as_bytes()),
            modifier,
            kind: kind_name(shown.kind),
            kind_before: (modifier == "T").then(|| kind_name(a.expect("old side").kind)),
            size_before: a.filter(|n| is_file(n)).map(|n| n.size),
            size_after: b.filter(|n| is_file(n)).map(|n| n.size),
            what,
        });
    }

    /// Reports `it` and everything below it as added (`+`) or removed (`-`).
    fn whole(&mut self, added: bool, path: &Path, it: &Item) -> Result<()> {
        let n = &it.node;
        let s = &mut self.report.stats;
        match (n.kind, added) {
            (NodeKind::File, true) => {
                s.files_added += 1;
                s.bytes_added += n.size;
            }
            (NodeKind::File, false) => {
                s.files_removed += 1;
                s.bytes_removed += n.size;
            }
            (NodeKind::Dir, true) => s.dirs_added += 1,
            (NodeKind::Dir, false) => s.dirs_removed += 1,
            (_, true) => s.others_added += 1,
            (_, false) => s.others_removed += 1,
        }
        if added {
            self.record(path, "+", None, Some(n), Vec::new());
        } else {
            self.record(path, "-", Some(n), None, Vec::new());
        }
        if n.kind == NodeKind::Dir {
            for c in self.children(it)? {
                let p = path.join(OsStr::from_bytes(&c.node.name));
                self.whole(added, &p, &c)?;
            }
        }
        Ok(())
    }

    fn pair(&mut self, path: &Path, a: Option<&Item>, b: Option<&Item>) -> Result<()> {
        match (a, b) {
            (Some(a), None) => self.whole(false, path, a),
            (None, Some(b)) => self.whole(true, path, b),
            (Some(a), Some(b)) => self.compare(path, a, b),
            (None, None) => Ok(()),
        }
    }

    fn compare(&mut self, path: &Path, a: &Item, b: &Item) -> Result<()> {
        let (na, nb) = (&a.node, &b.node);
        if na.kind != nb.kind {
            self.report.stats.type_changed += 1;
            self.record(path, "T", Some(na), Some(nb), vec!["type"]);
            // What a directory held, or holds now, is removed or added.
            if na.kind == NodeKind::Dir {
                for c in self.children(a)? {
                    self.whole(false, &path.join(OsStr::from_bytes(&c.node.name)), &c)?;
                }
            }
            if nb.kind == NodeKind::Dir {
                for c in self.children(b)? {
                    self.whole(true, &path.join(OsStr::from_bytes(&c.node.name)), &c)?;
                }
            }
            return Ok(());
        }
        let mut what = Vec::new();
        match na.kind {
            NodeKind::File if self.content_differs(a, b)? => what.push("content"),
            NodeKind::Symlink if na.link_target != nb.link_target => what.push("target"),
            NodeKind::CharDevice | NodeKind::BlockDevice if na.rdev != nb.rdev => {
                what.push("device")
            }
            _ => {}
        }
        let content = !what.is_empty();
        if self.opts.metadata {
            if na.mode != nb.mode {
                what.push("mode");
            }
            if na.uid != nb.uid || na.gid != nb.gid {
                what.push("owner");
            }
            if na.mtime_ns != nb.mtime_ns {
                what.push("mtime");
            }
            if na.xattrs != nb.xattrs {
                what.push("xattrs");
            }
        }
        if !what.is_empty() {
            let s = &mut self.report.stats;
            if !content {
                s.metadata_changed += 1;
            } else if na.kind == NodeKind::File {
                s.files_changed += 1;
                s.bytes_changed_before += na.size;
                s.bytes_changed_after += nb.size;
            } else {
                s.others_changed += 1;
            }
            let m = if content { "M" } else { "U" };
            self.record(path, m, Some(na), Some(nb), what);
        }
        if na.kind == NodeKind::Dir {
            // The same listing holds the same entries, metadata included.
            if b.live.is_none() && na.subtree == nb.subtree {
                return Ok(());
            }
            self.children_of(path, a, b)?;
        }
        Ok(())
    }

    /// Compares the entries of two directories.
    fn children_of(&mut self, path: &Path, a: &Item, b: &Item) -> Result<()> {
        let old = self.children(a)?;
        let new = self.children(b)?;
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let ord = match (old.get(i), new.get(j)) {
                (Some(x), Some(y)) => x.node.name.cmp(&y.node.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            let (x, y) = match ord {
                std::cmp::Ordering::Less => {
                    i += 1;
                    (Some(&old[i - 1]), None)
                }
                std::cmp::Ordering::Greater => {
                    j += 1;
                    (None, Some(&new[j - 1]))
                }
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                    (Some(&old[i - 1]), Some(&new[j - 1]))
                }
            };
            let name = &x.or(y).expect("one side").node.name;
            self.pair(&path.join(OsStr::from_bytes(name)), x, y)?;
        }
        Ok(())
    }

    /// Whether a file's content differs: by chunk ids between snapshots;
    /// against a live file by size, then by create's change detection,
    /// then by reading and hashing it.
    fn content_differs(&mut self, a: &Item, b: &Item) -> Result<bool> {
        let Some(p) = &b.live else {
            return Ok(a.node.content != b.node.content);
        };
        if a.node.size != b.node.size {
            return Ok(true);
        }
        if meta::unchanged(&b.node, &a.node) {
            return Ok(false);
        }
        match self.same_chunks(p, &a.node.content) {
            Ok(same) => Ok(!same),
            Err(e) => {
                self.warn(format!("{}: cannot read: {e}; not compared", p.display()));
                Ok(false)
            }
        }
    }

    /// Whether the file at `p` chunks into exactly `ids` (stops at the
    /// first chunk that differs).
    fn same_chunks(&mut self, p: &Path, ids: &[BlobId]) -> std::io::Result<bool> {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(p)?;
        let repo = self.repo;
        let ch = self
            .chunker
            .get_or_insert_with(|| Chunker::new(repo.config().chunker, repo.key().chunker_seed()));
        let mut i = 0usize;
        let size = f.metadata().map_or(u64::MAX, |m| m.len());
        let r = ch.chunk_reader(&mut f as &mut dyn Read, size, |chunk| {
            if ids.get(i) != Some(&repo.key().blob_id(chunk)) {
                return Err(());
            }
            i += 1;
            Ok(())
        })?;
        Ok(r.is_ok() && i == ids.len())
    }
}
