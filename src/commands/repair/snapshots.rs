//! `snap repair snapshots [--forget] [--dry-run] [SNAP...]`: rewrites
//! snapshots around what the repository no longer holds, so that they
//! restore without errors and `prune` works again.
//!
//! What is lost is what the index does not hold intact (lost packs, blobs
//! recorded damaged): run `check --read-data` first so that every damaged
//! blob is known. Per snapshot, as restic's `repair snapshots` does, with
//! one difference for files:
//!
//! * a file whose chunks are lost is kept: each lost chunk is replaced by
//!   zeros *of the same length* (restic drops the chunk, which shifts the
//!   rest of the file), so every intact byte stays at its offset and the
//!   size is unchanged. A chunk's length is known from the index's damage
//!   record, or, for one run of adjacent lost chunks, from the file's size.
//!   Only when that is not enough (several separate runs of chunks whose
//!   length is unknown) are those chunks dropped, as restic does, and the
//!   change says the file got shorter;
//! * a directory whose listing is lost becomes an empty directory (its own
//!   metadata is in its parent's listing);
//! * a snapshot whose root listing is lost has nothing to keep: it is left
//!   alone, or removed with `--forget`.
//!
//! The rewritten snapshot keeps the original's time, host, user, paths,
//! tags and parent, gains the tag `repaired`, is marked incomplete, and
//! lists each change in its summary's warnings. Unchanged subtrees keep
//! their ids; changed trees and the snapshot get new ids (they are hashes
//! of their bytes). With `--forget` the original is removed after the new
//! snapshot is saved.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;

use crate::backend::FileKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::format::{BlobId, BlobKind, SnapshotId};
use crate::repository::saver::BlobSaver;
use crate::repository::{Repository, SnapshotFilter};
use crate::{Error, Result};

/// The tag every rewritten snapshot gets.
pub const REPAIRED_TAG: &str = "repaired";

/// Summary warnings kept at most (as `create` does).
const MAX_WARNINGS: usize = 1000;

/// Options of `snap repair snapshots`.
#[derive(Clone, Debug, Default)]
pub struct RepairSnapshotsOptions {
    /// Snapshots to repair (`latest` or id prefixes); empty: all.
    pub snapshots: Vec<String>,
    /// Remove each original once its repaired version is saved (and
    /// snapshots that have nothing left to keep).
    pub forget: bool,
    /// Only report what would be done.
    pub dry_run: bool,
}

/// What was (or would be) done with one snapshot.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SnapshotRepair {
    /// The original snapshot.
    pub id: String,
    /// Its time (RFC 3339).
    pub time: String,
    /// Its host.
    pub host: String,
    /// Its paths.
    pub paths: Vec<String>,
    /// Each change, naming the path.
    pub changes: Vec<String>,
    /// The repaired snapshot (`null` when unchanged or unrepairable, and on
    /// a dry run).
    pub new_id: Option<String>,
    /// Nothing can be kept: the root directory listing is lost.
    pub unrepairable: bool,
    /// The original was (or would be) removed.
    pub removed: bool,
}

/// What `repair snapshots` did.
#[derive(Debug, Default, Serialize)]
pub struct RepairSnapshotsReport {
    /// True when nothing was changed.
    pub dry_run: bool,
    /// Every snapshot looked at, oldest first.
    pub snapshots: Vec<SnapshotRepair>,
    /// Snapshots rewritten (or to rewrite).
    pub modified: u64,
    /// Snapshots with nothing to keep.
    pub unrepairable: u64,
}

/// A tree after rewriting: its id, and the changes below it (paths
/// relative to it).
#[derive(Clone)]
struct Rewritten {
    id: BlobId,
    changes: Rc<Vec<(PathBuf, String)>>,
    /// Change of the total file size below it.
    bytes_delta: i64,
}

/// Where new blobs go: the saver, or nowhere on a dry run (the id is all
/// that is needed).
enum Sink<'a> {
    Save(&'a BlobSaver),
    DryRun(&'a Repository),
}

impl Sink<'_> {
    fn put(&self, kind: BlobKind, data: &[u8]) -> Result<BlobId> {
        match self {
            Sink::Save(s) => Ok(s.save(kind, data)?.0),
            Sink::DryRun(r) => Ok(r.key().blob_id(data)),
        }
    }
}

struct Rewriter<'a> {
    repo: &'a Repository,
    sink: Sink<'a>,
    /// Trees already rewritten (`None`: listing lost); shared by snapshots.
    memo: HashMap<BlobId, Option<Rewritten>>,
    zero_ids: HashMap<u32, BlobId>,
    empty_tree: Option<BlobId>,
}

/// A chunk of a file as the repository holds it now.
enum Chunk {
    Intact(BlobId, u64),
    /// Lost, with its length if known.
    Lost(Option<u64>),
}

/// `a..b` ranges as text, the first few only.
fn ranges(r: &[(u64, u64)]) -> String {
    let mut s: Vec<String> = r.iter().take(4).map(|(a, b)| format!("{a}..{b}")).collect();
    if r.len() > 4 {
        s.push(format!("and {} more", r.len() - 4));
    }
    s.join(", ")
}

impl Rewriter<'_> {
    fn empty_tree(&mut self) -> Result<BlobId> {
        if let Some(id) = self.empty_tree {
            return Ok(id);
        }
        let id = Tree::default().store(|b| self.sink.put(BlobKind::Tree, b))?;
        self.empty_tree = Some(id);
        Ok(id)
    }

    /// Zero blobs covering `len` bytes, in pieces no longer than a chunk.
    fn zeros(&mut self, mut len: u64, out: &mut Vec<BlobId>) -> Result<()> {
        let max = self.repo.config().chunker.max.max(1) as u64;
        while len > 0 {
            let n = len.min(max) as u32;
            let id = match self.zero_ids.get(&n) {
                Some(id) => *id,
                None => {
                    let id = self.sink.put(BlobKind::Data, &vec![0u8; n as usize])?;
                    self.zero_ids.insert(n, id);
                    id
                }
            };
            out.push(id);
            len -= n as u64;
        }
        Ok(())
    }

    /// Rewrites a file node whose chunks are not all intact; returns what
    /// changed and the size delta.
    fn file(&mut self, node: &mut Node) -> Result<Option<(String, i64)>> {
        let mut chunks = Vec::with_capacity(node.content.len());
        for id in &node.content {
            let loc = self.repo.index().lookup(id)?;
            chunks.push(match loc {
                Some(l) => Chunk::Intact(*id, l.entry.raw_len as u64),
                None => Chunk::Lost(
                    self.repo
                        .index()
                        .damaged_blob(id)?
                        .map(|(_, e)| e.raw_len as u64),
                ),
            });
        }
        let lost = chunks
            .iter()
            .filter(|c| matches!(c, Chunk::Lost(_)))
            .count();
        if lost == 0 {
            return Ok(None);
        }
        // Unknown lengths: one run of adjacent chunks takes what the size
        // leaves; otherwise they are dropped.
        let known: u64 = chunks
            .iter()
            .map(|c| match c {
                Chunk::Intact(_, n) | Chunk::Lost(Some(n)) => *n,
                Chunk::Lost(None) => 0,
            })
            .sum();
        let unknown: Vec<usize> = (0..chunks.len())
            .filter(|&i| matches!(chunks[i], Chunk::Lost(None)))
            .collect();
        let one_run = unknown.windows(2).all(|w| w[1] == w[0] + 1);
        let run_len = if !unknown.is_empty() && one_run && node.size >= known {
            Some(node.size - known)
        } else {
            None
        };
        let mut content = Vec::with_capacity(chunks.len());
        let mut zeroed: Vec<(u64, u64)> = Vec::new();
        let mut dropped = 0usize;
        let mut off = 0u64;
        let mut pending = 0u64; // bytes of the current run of lost chunks
        let mut i = 0;
        while i <= chunks.len() {
            let lost_len = match chunks.get(i) {
                Some(Chunk::Lost(Some(n))) => Some(*n),
                Some(Chunk::Lost(None)) if run_len.is_some() => {
                    // The whole run's length, counted at its first chunk.
                    Some(if i == unknown[0] { run_len.unwrap() } else { 0 })
                }
                Some(Chunk::Lost(None)) => {
                    dropped += 1;
                    i += 1;
                    continue;
                }
                _ => None,
            };
            if let Some(n) = lost_len {
                pending += n;
                i += 1;
                continue;
            }
            if pending > 0 {
                self.zeros(pending, &mut content)?;
                zeroed.push((off, off + pending));
                off += pending;
                pending = 0;
            }
            if let Some(Chunk::Intact(id, n)) = chunks.get(i) {
                content.push(*id);
                off += n;
            }
            i += 1;
        }
        let delta = off as i64 - node.size as i64;
        let total = chunks.len();
        let mut msg = format!("{lost} of {total} chunk(s) lost");
        if !zeroed.is_empty() {
            msg.push_str(&format!("; bytes {} are zeros", ranges(&zeroed)));
        }
        if dropped > 0 {
            msg.push_str(&format!(
                "; {dropped} chunk(s) of unknown length dropped: the file is {} bytes \
                 shorter and what followed them is shifted",
                -delta
            ));
        }
        node.content = content;
        node.size = off;
        Ok(Some((msg, delta)))
    }

    /// Rewrites a tree; `None` when its listing is lost.
    fn tree(&mut self, id: &BlobId) -> Result<Option<Rewritten>> {
        if let Some(r) = self.memo.get(id) {
            return Ok(r.clone());
        }
        let loaded = if !self.repo.index().contains(id)? {
            None
        } else {
            match self.repo.load_tree(id) {
                Ok(t) => Some(t),
                Err(Error::Missing { .. }) | Err(Error::Corrupt { .. }) => None,
                Err(e) => return Err(e),
            }
        };
        let Some(mut t) = loaded else {
            self.memo.insert(*id, None);
            return Ok(None);
        };
        let mut changes = Vec::new();
        let mut delta = 0i64;
        let mut changed = false;
        for n in &mut t.nodes {
            let name = PathBuf::from(OsStr::from_bytes(&n.name));
            match n.kind {
                NodeKind::File => {
                    if let Some((msg, d)) = self.file(n)? {
                        changes.push((name, format!("file: {msg}")));
                        delta += d;
                        changed = true;
                    }
                }
                NodeKind::Dir => {
                    let sub = n.subtree.expect("validated dir node");
                    match self.tree(&sub)? {
                        None => {
                            n.subtree = Some(self.empty_tree()?);
                            changes.push((
                                name,
                                "directory: its listing is lost; kept as an empty directory"
                                    .to_string(),
                            ));
                            changed = true;
                        }
                        Some(r) if r.id != sub => {
                            n.subtree = Some(r.id);
                            changes
                                .extend(r.changes.iter().map(|(p, m)| (name.join(p), m.clone())));
                            delta += r.bytes_delta;
                            changed = true;
                        }
                        Some(_) => {}
                    }
                }
                _ => {}
            }
        }
        let new_id = if changed {
            t.store(|b| self.sink.put(BlobKind::Tree, b))?
        } else {
            *id
        };
        let r = Rewritten {
            id: new_id,
            changes: Rc::new(changes),
            bytes_delta: delta,
        };
        self.memo.insert(*id, Some(r.clone()));
        Ok(Some(r))
    }
}

/// The snapshots to look at, oldest first.
fn select(repo: &Repository, selectors: &[String]) -> Result<Vec<(SnapshotId, Snapshot)>> {
    if selectors.is_empty() {
        return repo.snapshots();
    }
    let mut out: Vec<(SnapshotId, Snapshot)> = Vec::new();
    for sel in selectors {
        let found = repo.find_snapshot(sel, &SnapshotFilter::default())?;
        let (id, s) = (found.id, found.snapshot);
        if !out.iter().any(|(i, _)| *i == id) {
            out.push((id, s));
        }
    }
    out.sort_by(|a, b| a.1.time_ns.cmp(&b.1.time_ns).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// The repaired version of `s`.
fn repaired(s: &Snapshot, orig: &SnapshotId, root: &Rewritten) -> Snapshot {
    let mut n = s.clone();
    n.tree = root.id;
    if !n.tags.iter().any(|t| t == REPAIRED_TAG) {
        n.tags.push(REPAIRED_TAG.to_string());
    }
    n.incomplete = true;
    n.summary.total_bytes = (n.summary.total_bytes as i64 + root.bytes_delta).max(0) as u64;
    for (p, msg) in root.changes.iter() {
        if n.summary.warnings.len() >= MAX_WARNINGS {
            break;
        }
        n.summary.warnings.push(format!(
            "repaired from snapshot {}: {}: {msg}",
            orig.short(),
            Path::new("/").join(p).display()
        ));
    }
    n
}

/// Runs `snap repair snapshots`.
pub fn run(repo: Arc<Repository>, opts: &RepairSnapshotsOptions) -> Result<RepairSnapshotsReport> {
    // What is lost is what the index does not hold: bring it in step with
    // storage first (packs gone, packs truncated).
    repo.sync_index()?;
    // A writer registers before it reads what it reuses (prune protocol C1).
    let registration = if opts.dry_run {
        None
    } else {
        let (guard, excluded) = crate::repository::locks::register_create(&repo)?;
        if !excluded.is_empty() {
            return Err(Error::Invalid(
                "a prune (or `repair packs`) is deleting packs right now (locks/prune-*); \
                 run `snap repair snapshots` again when it has finished"
                    .into(),
            ));
        }
        Some(guard)
    };
    let snaps = select(&repo, &opts.snapshots)?;
    let saver = if opts.dry_run {
        None
    } else {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Some(BlobSaver::new(repo.clone(), threads)?)
    };
    let mut rw = Rewriter {
        repo: &repo,
        sink: match &saver {
            Some(s) => Sink::Save(s),
            None => Sink::DryRun(&repo),
        },
        memo: HashMap::new(),
        zero_ids: HashMap::new(),
        empty_tree: None,
    };
    let mut report = RepairSnapshotsReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let mut pending: Vec<(usize, SnapshotId, Snapshot)> = Vec::new();
    for (id, s) in &snaps {
        let mut row = SnapshotRepair {
            id: id.to_hex(),
            time: super::super::snapshots::format_time(s.time_ns),
            host: s.host.clone(),
            paths: s.paths.clone(),
            ..Default::default()
        };
        match rw.tree(&s.tree)? {
            None => {
                row.unrepairable = true;
                row.changes
                    .push("/: the root directory listing is lost: nothing to keep".into());
                row.removed = opts.forget;
                report.unrepairable += 1;
            }
            Some(r) if r.id == s.tree => {}
            Some(r) => {
                row.changes = r
                    .changes
                    .iter()
                    .map(|(p, m)| format!("{}: {m}", Path::new("/").join(p).display()))
                    .collect();
                row.removed = opts.forget;
                report.modified += 1;
                pending.push((report.snapshots.len(), *id, repaired(s, id, &r)));
            }
        }
        report.snapshots.push(row);
    }
    drop(rw);
    let Some(saver) = saver else {
        return Ok(report);
    };
    // Every new tree and zero blob is durable and indexed before a
    // snapshot refers to it (format-spec 06 §6.2).
    saver.finish()?;
    for (row, orig, snap) in pending {
        let new_id = repo.save_snapshot(&snap)?;
        report.snapshots[row].new_id = Some(new_id.to_hex());
        if opts.forget {
            repo.delete_snapshot(&orig)?;
        }
    }
    if opts.forget {
        for row in report.snapshots.iter().filter(|r| r.unrepairable) {
            repo.backend().delete(FileKind::Snapshot, &row.id)?;
        }
    }
    if let Some(g) = registration {
        g.release()?;
    }
    Ok(report)
}
