//! What the snapshots of a sync need: the safety analysis of `snap sync`.
//!
//! Sync copies raw objects, but deciding which snapshots may be copied and
//! which packs may be deleted on the target needs the repository key: the
//! trees of the snapshots involved are walked, and every blob they need is
//! mapped to the source packs that hold it through the source's index,
//! reconciled with the source's pack list first. A blob with no pack in a
//! given set of packs is "missing" from that set; [`Needs::verdict`] then
//! says, per snapshot, whether it is complete, damaged, unreadable, or
//! lacks data.
//!
//! Cost: every tree of the snapshots is read once (shared subtrees once in
//! all), and the index is read once; nothing else. The walk keeps the
//! directory structure it read, so a per-snapshot verdict costs no I/O.

use std::collections::{HashMap, HashSet};

use crate::format::snapshot::Snapshot;
use crate::format::{BlobId, PackId, SnapshotId};
use crate::repository::Repository;
use crate::{Error, Result};

/// What one tree refers to, as read; or why it could not be read.
type Kids = std::result::Result<(Vec<BlobId>, Vec<BlobId>), String>;

/// The verdict on one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its object verifies, its trees read, and no needed blob is missing.
    Complete,
    /// The snapshot object itself does not verify.
    Damaged(String),
    /// One of its trees cannot be read (why).
    Unreadable(String),
    /// This many of the blobs it needs are missing.
    Lacks(usize),
}

/// The snapshots analysed and what they need.
pub struct Needs {
    snaps: Vec<(SnapshotId, std::result::Result<Snapshot, String>)>,
    needed: HashSet<BlobId>,
    trees: HashMap<BlobId, Kids>,
    /// Source packs holding each needed blob (per the reconciled index).
    packs: HashMap<BlobId, Vec<PackId>>,
    /// Packs the index knew that storage no longer has, with the needed
    /// blobs they held (so a loss can be named by pack).
    gone: HashMap<BlobId, PackId>,
}

fn reason(e: &Error) -> String {
    match e {
        e @ Error::Corrupt { .. } => e.without_advice(),
        Error::Missing { what } => format!("{what} is missing"),
        other => other.to_string(),
    }
}

impl Needs {
    /// Reconciles the source's index with `present` (its packs in
    /// storage), then loads the snapshots `ids` and walks their trees.
    /// Damage is recorded, not returned; a storage error that is not
    /// damage (an unreachable store) fails.
    pub fn analyse(
        repo: &Repository,
        present: &HashSet<PackId>,
        ids: &[SnapshotId],
    ) -> Result<Needs> {
        // Remember what the packs that vanished held before the index
        // forgets them, to name a loss by its pack.
        let mut gone_entries: Vec<(PackId, Vec<BlobId>)> = Vec::new();
        // (The index guard must not live across the loop.)
        let indexed = repo.index().packs()?;
        for (p, _, _) in indexed {
            if !present.contains(&p) {
                let ids = repo.index().pack_entries(&p)?.into_iter().map(|e| e.id);
                gone_entries.push((p, ids.collect()));
            }
        }
        repo.sync_index()?;
        let mut n = Needs {
            snaps: Vec::with_capacity(ids.len()),
            needed: HashSet::new(),
            trees: HashMap::new(),
            packs: HashMap::new(),
            gone: HashMap::new(),
        };
        for id in ids {
            match repo.load_snapshot(id) {
                Ok(s) => {
                    n.walk(repo, s.tree)?;
                    n.snaps.push((*id, Ok(s)));
                }
                Err(Error::Corrupt { why, .. }) => n.snaps.push((*id, Err(why))),
                // Forgotten since it was listed: nothing to copy or keep.
                Err(Error::Missing { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let indexed = repo.index().packs()?;
        for (p, _, _) in indexed {
            let entries = repo.index().pack_entries(&p)?.into_iter().map(|e| e.id);
            let copies = repo.index().pack_copies(&p)?.into_iter().map(|(b, _)| b);
            for b in entries.chain(copies) {
                if n.needed.contains(&b) {
                    n.packs.entry(b).or_default().push(p);
                }
            }
        }
        for (p, blobs) in gone_entries {
            for b in blobs {
                if n.needed.contains(&b) {
                    n.gone.insert(b, p);
                }
            }
        }
        Ok(n)
    }

    fn walk(&mut self, repo: &Repository, root: BlobId) -> Result<()> {
        let mut stack = vec![root];
        while let Some(t) = stack.pop() {
            if !self.needed.insert(t) {
                continue;
            }
            let kids = match repo.load_tree(&t) {
                Ok(tree) => {
                    let mut content = Vec::new();
                    let mut subs = Vec::new();
                    for node in tree.nodes {
                        content.extend(node.content);
                        subs.extend(node.subtree);
                    }
                    Ok((content, subs))
                }
                // A lost tree is a missing blob like any other (it has no
                // pack); what it held is unknown.
                Err(Error::Missing { .. }) => Ok((Vec::new(), Vec::new())),
                Err(e @ Error::Corrupt { .. }) => Err(reason(&e)),
                Err(e) => return Err(e),
            };
            if let Ok((content, subs)) = &kids {
                self.needed.extend(content.iter().copied());
                stack.extend(subs.iter().copied());
            }
            self.trees.insert(t, kids);
        }
        Ok(())
    }

    /// The snapshots analysed (damaged objects included).
    pub fn snapshot_ids(&self) -> impl Iterator<Item = &SnapshotId> {
        self.snaps.iter().map(|(id, _)| id)
    }

    /// The snapshot, when its object verified.
    pub fn snapshot(&self, id: &SnapshotId) -> Option<&Snapshot> {
        self.snaps
            .iter()
            .find(|(i, _)| i == id)
            .and_then(|(_, s)| s.as_ref().ok())
    }

    /// Needed blobs with no pack for which `has(pack)` holds.
    pub fn missing(&self, has: impl Fn(&PackId) -> bool) -> HashSet<BlobId> {
        self.needed
            .iter()
            .filter(|b| {
                // A tree that did not read is judged by its verdict instead.
                !matches!(self.trees.get(b), Some(Err(_)))
                    && !self.packs.get(b).is_some_and(|ps| ps.iter().any(&has))
            })
            .copied()
            .collect()
    }

    /// The vanished packs (known to the index before) holding `blobs`.
    pub fn gone_packs(&self, blobs: &HashSet<BlobId>) -> Vec<PackId> {
        let mut v: Vec<PackId> = blobs
            .iter()
            .filter_map(|b| self.gone.get(b))
            .copied()
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Whether every snapshot is complete with `missing` as the missing
    /// blobs (no damaged object, no unreadable tree, no missing blob).
    pub fn all_complete(&self, missing: &HashSet<BlobId>) -> bool {
        missing.is_empty()
            && self.snaps.iter().all(|(_, s)| s.is_ok())
            && self.trees.values().all(|k| k.is_ok())
    }

    /// The verdict on snapshot `id` when `missing` are the missing blobs.
    pub fn verdict(&self, id: &SnapshotId, missing: &HashSet<BlobId>) -> Verdict {
        let root = match self.snaps.iter().find(|(i, _)| i == id) {
            None => return Verdict::Complete,
            Some((_, Err(why))) => return Verdict::Damaged(why.clone()),
            Some((_, Ok(s))) => s.tree,
        };
        if self.all_complete(missing) {
            return Verdict::Complete;
        }
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        let mut lacks = HashSet::new();
        while let Some(t) = stack.pop() {
            if !seen.insert(t) {
                continue;
            }
            if missing.contains(&t) {
                lacks.insert(t);
            }
            match self.trees.get(&t) {
                Some(Ok((content, subs))) => {
                    lacks.extend(content.iter().filter(|c| missing.contains(c)).copied());
                    stack.extend(subs.iter().copied());
                }
                Some(Err(why)) => return Verdict::Unreadable(why.clone()),
                None => {}
            }
        }
        if lacks.is_empty() {
            Verdict::Complete
        } else {
            Verdict::Lacks(lacks.len())
        }
    }
}
