//! `snap tag`: change the tags of snapshots.
//!
//! A snapshot's id is the hash of its encrypted object, so new tags make a
//! new object with a new id; everything else (time, host, paths, tree,
//! parent, summary) is kept, so no data is written or read. The new object
//! is written before the old one is deleted: a crash in between leaves both
//! (the same tree twice; `snap forget` the old id). A snapshot whose tags
//! would not change is left alone and keeps its id.
//!
//! The rewrite takes a writer's registration (`locks/create-*`,
//! format-spec/07 C1) before it reads the snapshots, so a prune either
//! waits for it and then sees the new objects, or is already deleting, in
//! which case the run stops before writing anything (as `repair
//! snapshots` does): the new object must never refer to a tree that a
//! running prune did not count as needed.

use serde::Serialize;

use crate::format::SnapshotId;
use crate::repository::locks;
use crate::repository::Repository;
use crate::{Error, Result};

/// How to change the tags.
#[derive(Clone, Debug, Default)]
pub struct TagOptions {
    /// Tags to add (kept in order, no duplicates).
    pub add: Vec<String>,
    /// Tags to remove.
    pub remove: Vec<String>,
    /// Replace every tag with these (applied before add and remove).
    pub set: Option<Vec<String>>,
}

impl TagOptions {
    /// The tags `old` becomes.
    pub fn apply(&self, old: &[String]) -> Vec<String> {
        let mut tags: Vec<String> = match &self.set {
            Some(s) => s.clone(),
            None => old.to_vec(),
        };
        for t in &self.add {
            tags.push(t.clone());
        }
        tags.retain(|t| !self.remove.contains(t));
        let mut seen = std::collections::HashSet::new();
        tags.retain(|t| seen.insert(t.clone()));
        tags
    }
}

/// What happened to one snapshot.
#[derive(Debug, Serialize)]
pub struct Retagged {
    /// Its id before.
    pub old: String,
    /// Its id now (the same when the tags did not change).
    pub new: String,
    /// Its tags now.
    pub tags: Vec<String>,
    /// Whether it was rewritten.
    pub changed: bool,
}

/// What `snap tag` did.
#[derive(Debug, Default, Serialize)]
pub struct TagReport {
    /// One row per snapshot, in the order given.
    pub snapshots: Vec<Retagged>,
    /// How many were rewritten.
    pub changed: u64,
}

/// Changes the tags of the snapshots `ids`.
pub fn run(repo: &Repository, ids: &[SnapshotId], opts: &TagOptions) -> Result<TagReport> {
    let (guard, excluded) = locks::register_create(repo)?;
    if !excluded.is_empty() {
        return Err(Error::Invalid(
            "a prune (or `repair packs`) is deleting packs right now (locks/prune-*); \
             run `snap tag` again when it has finished"
                .into(),
        ));
    }
    let mut report = TagReport::default();
    for id in ids {
        // Read again under the registration: what was selected may be gone.
        let mut snap = match repo.load_snapshot(id) {
            Err(Error::Missing { .. }) => {
                return Err(Error::Invalid(format!(
                    "snapshot {} was removed (by a forget or prune) after it was selected; \
                     {} snapshot(s) were rewritten before it",
                    id.short(),
                    report.changed
                )))
            }
            r => r?,
        };
        let tags = opts.apply(&snap.tags);
        if tags == snap.tags {
            report.snapshots.push(Retagged {
                old: id.to_hex(),
                new: id.to_hex(),
                tags,
                changed: false,
            });
            continue;
        }
        snap.tags = tags.clone();
        crate::interrupt::check()?;
        guard.ensure_held()?;
        let new = repo.save_snapshot(&snap)?;
        failpoint!("tag.after_new_snapshot");
        repo.delete_snapshot(id)?;
        report.changed += 1;
        report.snapshots.push(Retagged {
            old: id.to_hex(),
            new: new.to_hex(),
            tags,
            changed: true,
        });
    }
    guard.release()?;
    Ok(report)
}
