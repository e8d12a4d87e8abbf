//! `snap copy --from-repo OTHER`: copies snapshots from another snap
//! repository, one with its own keys, into this one (restic's `copy`).
//!
//! Blob ids are keyed hashes, so the same chunk has another id in each
//! repository: a chunk's id in the target is known only from its
//! plaintext. Every chunk of a copied snapshot is therefore read and
//! verified from the source, hashed with the target's key and stored
//! through the target's [`BlobSaver`] (which stores only what the target
//! lacks); trees are rebuilt bottom-up with the new ids, and a snapshot
//! with the source's time, host, user, paths, tags and summary is written
//! once its batch is durable. The source's chunk boundaries are kept (no re-chunking), as
//! restic does: see docs/copy.md for what that means for dedup.
//!
//! Invariants:
//! * The target is written only as `create` writes it: under a create
//!   registration (so a prune of the target waits for us or we avoid its
//!   packs), blobs before the trees naming them, and snapshot objects only
//!   after [`BlobSaver::finish`] made every pack of their batch (about a
//!   pack of new data) durable and indexed. A copy killed at any point
//!   leaves no snapshot naming missing data; committed batches stay, and
//!   published packs are reused by the next run.
//! * A subtree is translated once per run (memo by source tree id); it is
//!   never taken as present in the target just because a tree blob with
//!   its new id exists there, since that blob may be left over from an
//!   interrupted run whose data packs were never published.
//! * "Already copied" is decided without reading data: a target snapshot
//!   with the same time (to the nanosecond), host, user, paths, tags,
//!   completeness and create summary is the same snapshot (see
//!   [`same_origin`]); the stored format has no field for the original id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::Serialize;

use super::snapshots::format_time;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::format::{BlobId, BlobKind, SnapshotId};
use crate::repository::saver::BlobSaver;
use crate::repository::Repository;
use crate::{Error, Result};

/// At most this many chunk translations are remembered within a run
/// (64 bytes each, ~6 MiB): repeated chunks (zeros, copies of a file) are
/// read once; beyond it they are read again, never held without bound.
const CHUNK_MEMO_MAX: usize = 100_000;

/// Options of `snap copy`.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Commit the snapshots translated so far once this many new bytes
    /// were stored (0: the target's pack size).
    pub commit_every_bytes: u64,
    /// Progress counters (files and bytes read from the source) and
    /// verbose lines (each snapshot copied); no-op by default.
    pub progress: crate::progress::Progress,
}

/// One source snapshot and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct CopiedSnapshot {
    /// Its id in the source repository.
    pub source_id: String,
    /// Its id in the target: the new copy, or the copy already there.
    pub target_id: String,
    /// `copied` or `already present`.
    pub status: &'static str,
    /// Snapshot time, RFC 3339.
    pub time: String,
    /// Host.
    pub host: String,
    /// Source paths.
    pub paths: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
}

/// What a copy did.
#[derive(Debug, Default, Serialize)]
pub struct CopyReport {
    /// The source repository's location.
    pub source: String,
    /// The target repository's location.
    pub target: String,
    /// The selected snapshots, in the order given (oldest first).
    pub snapshots: Vec<CopiedSnapshot>,
    /// Snapshots written to the target.
    pub copied: u64,
    /// Snapshots the target already held.
    pub already_present: u64,
    /// Data blobs read from the source.
    pub data_blobs_read: u64,
    /// Tree blobs read from the source (parts of large directories counted once).
    pub trees_read: u64,
    /// Plaintext bytes of the data blobs read.
    pub bytes_read: u64,
    /// New blobs stored in the target (data and trees).
    pub blobs_added: u64,
    /// Bytes added to the target (packs: encrypted blobs and headers).
    pub bytes_added: u64,
    /// Packs written to the target.
    pub packs_added: u64,
}

/// Whether `a` (in one repository) and `b` (in another) are the same
/// snapshot: everything `create` recorded about the run except the tree
/// id (keyed: it differs between repositories) and the parent (a
/// repository's own snapshot id). Two runs of `create` never agree on all
/// of it (the time is in nanoseconds and the summary counts what the run
/// read and stored); `tag` and `repair snapshots` change the tags, so a
/// retagged or repaired snapshot is copied again, as restic does.
pub fn same_origin(a: &Snapshot, b: &Snapshot) -> bool {
    let sorted = |t: &[String]| {
        let mut v = t.to_vec();
        v.sort();
        v
    };
    a.time_ns == b.time_ns
        && a.host == b.host
        && a.user == b.user
        && a.paths == b.paths
        && sorted(&a.tags) == sorted(&b.tags)
        && a.incomplete == b.incomplete
        && a.summary == b.summary
}

#[derive(Default)]
struct Counters {
    data_read: AtomicU64,
    trees_read: AtomicU64,
    bytes_read: AtomicU64,
    /// Plaintext bytes of the blobs that were new to the target.
    new_bytes: AtomicU64,
}

/// Rewrites source trees into the target.
struct Translator<'a> {
    src: &'a Repository,
    /// Source tree id -> target tree id, for subtrees stored in this run.
    trees: Mutex<HashMap<BlobId, BlobId>>,
    /// Source chunk id -> target chunk id (bounded, see [`CHUNK_MEMO_MAX`]).
    chunks: Mutex<HashMap<BlobId, BlobId>>,
    counters: Counters,
    progress: &'a crate::progress::Progress,
}

impl Translator<'_> {
    fn tree(&self, sv: &BlobSaver, id: &BlobId) -> Result<BlobId> {
        if let Some(d) = self.trees.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(*d);
        }
        let tree = self.src.load_tree(id)?;
        self.counters.trees_read.fetch_add(1, Ordering::Relaxed);
        let nodes = tree
            .nodes
            .into_par_iter()
            .map(|n| self.node(sv, n))
            .collect::<Result<Vec<Node>>>()?;
        // The source's listing was valid; only ids changed, so it stays
        // valid (`store` validates again) and splits into the same parts.
        let new = Tree { nodes }.store(|bytes| self.save(sv, BlobKind::Tree, bytes))?;
        self.trees
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*id, new);
        Ok(new)
    }

    fn node(&self, sv: &BlobSaver, mut n: Node) -> Result<Node> {
        match n.kind {
            NodeKind::File => {
                self.progress.item_started(|| n.name_lossy());
                n.content = n
                    .content
                    .iter()
                    .map(|c| self.chunk(sv, c))
                    .collect::<Result<_>>()?;
                self.progress.file_done();
            }
            NodeKind::Dir => {
                if let Some(sub) = &n.subtree {
                    n.subtree = Some(self.tree(sv, sub)?);
                }
            }
            _ => {}
        }
        Ok(n)
    }

    fn save(&self, sv: &BlobSaver, kind: BlobKind, plain: &[u8]) -> Result<BlobId> {
        let (id, new) = sv.save(kind, plain)?;
        if new {
            self.counters
                .new_bytes
                .fetch_add(plain.len() as u64, Ordering::Relaxed);
        }
        Ok(id)
    }

    fn chunk(&self, sv: &BlobSaver, id: &BlobId) -> Result<BlobId> {
        if let Some(d) = self
            .chunks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Ok(*d);
        }
        // Verified against the source's key as it is decoded.
        let plain = self.src.read_blob(id)?;
        self.progress.bytes_done(plain.len() as u64);
        self.counters.data_read.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_read
            .fetch_add(plain.len() as u64, Ordering::Relaxed);
        let new = self.save(sv, BlobKind::Data, &plain)?;
        let mut memo = self.chunks.lock().unwrap_or_else(|p| p.into_inner());
        if memo.len() < CHUNK_MEMO_MAX {
            memo.insert(*id, new);
        }
        Ok(new)
    }
}

fn row(
    src_id: &SnapshotId,
    target_id: &SnapshotId,
    s: &Snapshot,
    status: &'static str,
) -> CopiedSnapshot {
    CopiedSnapshot {
        source_id: src_id.to_hex(),
        target_id: target_id.to_hex(),
        status,
        time: format_time(s.time_ns),
        host: s.host.clone(),
        paths: s.paths.clone(),
        tags: s.tags.clone(),
    }
}

/// Copies the `chosen` snapshots of `source` (oldest first) that `target`
/// does not hold yet.
pub fn run(
    source: &Repository,
    target: Arc<Repository>,
    chosen: &[(SnapshotId, Snapshot)],
    opts: &CopyOptions,
) -> Result<CopyReport> {
    if source.config().id == target.config().id {
        return Err(Error::Invalid(format!(
            "{} and {} are the same repository (id {}): copy is for repositories with \
             their own keys; use `snap sync` between copies of one repository",
            source.backend().location(),
            target.backend().location(),
            target.config().id
        )));
    }
    let mut report = CopyReport {
        source: source.backend().location(),
        target: target.backend().location(),
        ..Default::default()
    };
    // Register before reading anything, as create does
    // (format-spec/07-prune-protocol.md).
    let (lock, excluded) = crate::repository::locks::register_create(&target)?;
    target.sync_index()?;
    let present = target.list_snapshots()?.snapshots;
    let mut by_time: HashMap<i64, Vec<(SnapshotId, Snapshot)>> = HashMap::new();
    for (id, s) in present {
        by_time.entry(s.time_ns).or_default().push((id, s));
    }
    // Source id -> target id, of copies already there or made now.
    let mut copy_of: HashMap<SnapshotId, SnapshotId> = HashMap::new();
    let mut todo = Vec::new();
    let mut rows = Vec::new();
    for (at, (sid, s)) in chosen.iter().enumerate() {
        let there = by_time
            .get(&s.time_ns)
            .and_then(|v| v.iter().find(|(_, t)| same_origin(s, t)));
        match there {
            Some((tid, _)) => {
                copy_of.insert(*sid, *tid);
                rows.push((at, row(sid, tid, s, "already present")));
                report.already_present += 1;
            }
            // Two selected snapshots that are one (the source holds a copy
            // of its own snapshot): copied once.
            None if todo.iter().any(|(_, _, t)| same_origin(s, t)) => {}
            None => todo.push((at, *sid, s.clone())),
        }
    }
    if todo.is_empty() {
        lock.release()?;
        report.snapshots = rows.into_iter().map(|(_, r)| r).collect();
        return Ok(report);
    }
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        opts.threads
    };
    let new_saver = || -> Result<BlobSaver> {
        let mut s = BlobSaver::new(target.clone(), threads)?;
        s.exclude_packs(excluded.clone());
        Ok(s)
    };
    let commit_every = match opts.commit_every_bytes {
        0 => target.config().pack_size,
        n => n,
    };
    let tr = Translator {
        src: source,
        trees: Mutex::new(HashMap::new()),
        chunks: Mutex::new(HashMap::new()),
        counters: Counters::default(),
        progress: &opts.progress,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("snap-copy-{i}"))
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start copy threads: {e}")))?;
    let mut saver = Some(new_saver()?);
    // Translated, not yet committed: (position, source id, source snapshot, new root).
    let mut pending: Vec<(usize, SnapshotId, &Snapshot, BlobId)> = Vec::new();
    let mut added_at_commit = 0;
    for (i, (at, sid, s)) in todo.iter().enumerate() {
        let sv = saver.as_ref().expect("a saver until the last batch");
        let root = pool.install(|| tr.tree(sv, &s.tree))?;
        pending.push((*at, *sid, s, root));
        let last = i + 1 == todo.len();
        let added = tr.counters.new_bytes.load(Ordering::Relaxed);
        if !last && added - added_at_commit < commit_every {
            continue;
        }
        // A batch holds about a pack's worth of new data: a long copy
        // commits as it goes (a kill loses at most one batch), and packs
        // stay nearly full.
        added_at_commit = added;
        let full = match saver.as_mut() {
            Some(sv) if !last => std::mem::replace(sv, new_saver()?),
            _ => saver.take().expect("a saver until the last batch"),
        };
        let stats = full.finish()?;
        report.blobs_added += stats.blobs.load(Ordering::Relaxed);
        report.bytes_added += stats.bytes.load(Ordering::Relaxed);
        report.packs_added += stats.packs.load(Ordering::Relaxed);
        // Every pack of the batch is durable and indexed: now its
        // snapshots, oldest first, each a commit point of its own.
        for (at, sid, s, root) in pending.drain(..) {
            let snap = Snapshot {
                tree: root,
                // The copy of the source's parent, when the target holds one.
                parent: s.parent.and_then(|p| copy_of.get(&p).copied()),
                ..s.clone()
            };
            crate::interrupt::check()?;
            lock.ensure_held()?;
            let tid = target.save_snapshot(&snap)?;
            failpoint!("copy.after_snapshot");
            copy_of.insert(sid, tid);
            opts.progress.verbose(1, || {
                format!("copied snapshot {} as {}", sid.short(), tid.short())
            });
            rows.push((at, row(&sid, &tid, s, "copied")));
            report.copied += 1;
        }
    }
    let c = tr.counters;
    report.data_blobs_read = c.data_read.into_inner();
    report.trees_read = c.trees_read.into_inner();
    report.bytes_read = c.bytes_read.into_inner();
    lock.release()?;
    rows.sort_by_key(|(at, _)| *at);
    report.snapshots = rows.into_iter().map(|(_, r)| r).collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot::Summary;

    fn snap() -> Snapshot {
        Snapshot {
            time_ns: 1_700_000_000_123_456_789,
            host: "h".into(),
            user: "u".into(),
            tags: vec!["a".into(), "b".into()],
            paths: vec!["/x".into()],
            tree: BlobId([1; 32]),
            parent: Some(SnapshotId([2; 32])),
            incomplete: false,
            summary: Summary {
                files_new: 3,
                duration_ms: 17,
                ..Default::default()
            },
        }
    }

    #[test]
    fn same_origin_ignores_ids_and_tag_order_only() {
        let a = snap();
        let mut b = snap();
        // Another repository: other tree id and parent; tags reordered.
        b.tree = BlobId([9; 32]);
        b.parent = None;
        b.tags.reverse();
        assert!(same_origin(&a, &b));
        let changes: [fn(&mut Snapshot); 7] = [
            |s| s.time_ns += 1,
            |s| s.host.push('2'),
            |s| s.user.push('2'),
            |s| s.paths.push("/y".into()),
            |s| s.tags.push("repaired".into()),
            |s| s.incomplete = true,
            |s| s.summary.duration_ms += 1,
        ];
        for (i, f) in changes.iter().enumerate() {
            let mut c = snap();
            f(&mut c);
            assert!(!same_origin(&a, &c), "change {i} went unnoticed");
        }
    }
}
