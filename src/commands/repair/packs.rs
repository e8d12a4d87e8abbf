//! `snap repair packs [PACK...]`: salvages the intact blobs of damaged packs
//! into new packs, then removes the damaged packs from storage and index.
//!
//! The packs repaired are those with blobs recorded damaged (by `check`,
//! `restore` or any read), those whose size differs from the index or whose
//! header does not read, and the packs named on the command line. Every
//! blob of them is read and verified again (authentication and id); an
//! intact blob that has no intact copy outside these packs is copied into a
//! new pack, which is durable and indexed before anything is deleted. The
//! deletion follows the prune protocol (`format-spec/07-prune-protocol.md`):
//! an intent names the packs, running creates are waited for, and creates
//! that start later do not deduplicate against them.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Serialize;

use crate::backend::FileKind;
use crate::commands::prune::{self, CopyPlan, GcReport};
use crate::format::pack::PackEntry;
use crate::format::{BlobId, PackId};
use crate::repository::Repository;
use crate::{Error, Result};

/// Options of `snap repair packs`.
#[derive(Clone, Debug)]
pub struct RepairPacksOptions {
    /// Further packs to repair (id prefixes), intact or not.
    pub packs: Vec<String>,
    /// Only report what would be done.
    pub dry_run: bool,
    /// Give up waiting for running `create`s after this long.
    pub lock_wait: Duration,
}

/// What was (or would be) done with one pack.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PackRepair {
    /// Pack id.
    pub pack: String,
    /// Why it is repaired.
    pub reason: String,
    /// Blobs known in it (header, or index and damage records when the
    /// header does not read).
    pub blobs: u64,
    /// Blobs that verified.
    pub intact: u64,
    /// Blobs that did not verify (or lie beyond the end of the pack).
    pub damaged: u64,
    /// Intact blobs copied into new packs (the others have intact copies
    /// elsewhere).
    pub copied: u64,
    /// Damaged blobs with no intact copy anywhere: lost from the repository.
    pub lost: u64,
    /// When no blob of the pack can be located (its header does not read
    /// and the index knows nothing of it).
    pub note: Option<String>,
}

/// What `repair packs` did.
#[derive(Debug, Default, Serialize)]
pub struct RepairPacksReport {
    /// True when nothing was changed.
    pub dry_run: bool,
    /// One row per pack repaired.
    pub packs: Vec<PackRepair>,
    /// New packs written.
    pub packs_written: u64,
    /// Bytes of new packs written.
    pub bytes_written: u64,
    /// Packs removed from storage.
    pub packs_deleted: u64,
    /// `create` runs waited for.
    pub creates_waited: u64,
}

/// Resolves pack id prefixes against the packs in storage.
fn resolve(stored: &[PackId], prefixes: &[String]) -> Result<Vec<PackId>> {
    let mut out = Vec::new();
    for pre in prefixes {
        let lower = pre.to_ascii_lowercase();
        if lower.is_empty() || !lower.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::Usage(format!(
                "pack {pre:?}: not a hex pack id (prefix)"
            )));
        }
        let hits: Vec<&PackId> = stored
            .iter()
            .filter(|p| p.to_hex().starts_with(&lower))
            .collect();
        match hits.as_slice() {
            [one] => out.push(**one),
            [] => {
                return Err(Error::Invalid(format!(
                    "pack {pre:?}: no pack in storage has this id"
                )))
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "pack {pre:?}: prefix matches several packs; give more characters"
                )))
            }
        }
    }
    Ok(out)
}

/// Reads a pack whole and verifies every blob of it that can be located:
/// the entries of its header if that reads, and whatever the index and
/// the damage records know besides (all a truncated pack has). Returns each
/// entry with whether it verified. A pack that is gone has nothing intact;
/// any other error reaching storage stops the repair, so that nothing is
/// deleted on the strength of a failed read.
fn verify(repo: &Repository, pack: &PackId) -> Result<Vec<(PackEntry, bool)>> {
    let bytes = match repo.backend().read(FileKind::Pack, &pack.to_hex()) {
        Ok(b) => Some(b),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let mut by_id: BTreeMap<BlobId, PackEntry> = BTreeMap::new();
    if let Some(b) = &bytes {
        if let Ok(header) = repo.parse_pack_header(pack, b, b.len() as u64) {
            by_id.extend(header.into_iter().map(|e| (e.id, e)));
        }
    }
    {
        let index = repo.index();
        for e in index
            .pack_all_entries(pack)?
            .into_iter()
            .chain(index.damaged_entries(pack)?)
        {
            by_id.entry(e.id).or_insert(e);
        }
    }
    let mut entries: Vec<PackEntry> = by_id.into_values().collect();
    entries.sort_by_key(|e| e.offset);
    Ok(entries
        .into_iter()
        .map(|e| {
            let s = e.offset as usize;
            let ok = bytes.as_ref().is_some_and(|b| {
                b.get(s..s + e.stored_len as usize)
                    .is_some_and(|sealed| repo.decode_blob(pack, &e, sealed).is_ok())
            });
            (e, ok)
        })
        .collect())
}

/// Whether `id` has an intact indexed copy outside `targets`.
fn copy_elsewhere(repo: &Repository, id: &BlobId, targets: &HashSet<PackId>) -> Result<bool> {
    Ok(repo
        .index()
        .blob_packs(id)?
        .iter()
        .any(|p| !targets.contains(p)))
}

struct Assessed {
    row: PackRepair,
    to_copy: Vec<PackEntry>,
}

/// Verifies every blob of the targets and decides what must be copied.
fn assess(
    repo: &Repository,
    targets: &[(PackId, String)],
    set: &HashSet<PackId>,
) -> Result<Vec<(PackId, Assessed)>> {
    let mut out: Vec<(PackId, Assessed)> = Vec::new();
    let mut planned: HashSet<BlobId> = HashSet::new();
    let mut damaged_ids: Vec<(usize, BlobId)> = Vec::new();
    for (pack, reason) in targets {
        let checked = verify(repo, pack)?;
        let mut a = Assessed {
            row: PackRepair {
                pack: pack.to_hex(),
                reason: reason.clone(),
                blobs: checked.len() as u64,
                ..Default::default()
            },
            to_copy: Vec::new(),
        };
        if checked.is_empty() {
            a.row.note = Some(
                "its header does not read and the index knows none of its blobs: \
                 nothing can be salvaged"
                    .into(),
            );
        }
        for (e, ok) in &checked {
            if !ok {
                a.row.damaged += 1;
                damaged_ids.push((out.len(), e.id));
                continue;
            }
            a.row.intact += 1;
            if !planned.contains(&e.id) && !copy_elsewhere(repo, &e.id, set)? {
                planned.insert(e.id);
                a.to_copy.push(*e);
                a.row.copied += 1;
            }
        }
        out.push((*pack, a));
    }
    // A damaged blob is lost unless an intact copy survives: outside the
    // targets, or copied out of another target.
    for (i, id) in damaged_ids {
        if !planned.contains(&id) && !copy_elsewhere(repo, &id, set)? {
            out[i].1.row.lost += 1;
        }
    }
    Ok(out)
}

/// Runs `snap repair packs`.
pub fn run(repo: &Repository, opts: &RepairPacksOptions) -> Result<RepairPacksReport> {
    let sync = repo.sync_index()?;
    let stored: Vec<PackId> = repo
        .backend()
        .list(FileKind::Pack)?
        .iter()
        .filter_map(|(n, _)| PackId::from_hex(n))
        .collect();
    let mut targets: Vec<(PackId, String)> = Vec::new();
    let mut add = |p: PackId, why: String| {
        if !targets.iter().any(|(t, _)| *t == p) {
            targets.push((p, why));
        }
    };
    for name in &sync.packs_damaged {
        if let Some(p) = PackId::from_hex(name) {
            add(p, "its header does not read".into());
        }
    }
    for name in &sync.packs_truncated {
        if let Some(p) = PackId::from_hex(name) {
            add(p, "its size differs from the index (truncated)".into());
        }
    }
    for (p, n) in repo.index().damaged_packs()? {
        if stored.contains(&p) {
            add(p, format!("{n} blob(s) recorded damaged"));
        }
    }
    for p in resolve(&stored, &opts.packs)? {
        add(p, "named on the command line".into());
    }
    let mut report = RepairPacksReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    if targets.is_empty() {
        return Ok(report);
    }
    let set: HashSet<PackId> = targets.iter().map(|(p, _)| *p).collect();
    if opts.dry_run {
        report.packs = assess(repo, &targets, &set)?
            .into_iter()
            .map(|(_, a)| a.row)
            .collect();
        return Ok(report);
    }
    let ids: Vec<PackId> = targets.iter().map(|(p, _)| *p).collect();
    let mut gc = GcReport::default();
    let intent = prune::announce_deletion(repo, &ids, opts.lock_wait, &mut gc)?;
    // Assessed after the wait: no create can have added a copy that
    // matters since (they avoid the packs named in the intent).
    let assessed = assess(repo, &targets, &set)?;
    let mut plan = CopyPlan::new();
    for (p, a) in &assessed {
        if !a.to_copy.is_empty() {
            plan.insert(*p, a.to_copy.clone());
        }
    }
    let skipped = prune::copy_blobs(repo, &plan, true, &mut gc, &Default::default())?;
    let mut rows: Vec<PackRepair> = assessed.into_iter().map(|(_, a)| a.row).collect();
    // A blob that verified a moment ago and not now: count it as lost.
    for (p, _) in &skipped {
        if let Some(r) = rows.iter_mut().find(|r| r.pack == p.to_hex()) {
            r.copied -= 1;
            r.intact -= 1;
            r.damaged += 1;
            r.lost += 1;
        }
    }
    prune::delete_packs(repo, &ids, &Default::default())?;
    intent.release()?;
    report.packs = rows;
    report.packs_written = gc.packs_written;
    report.bytes_written = gc.bytes_written;
    report.packs_deleted = ids.len() as u64;
    report.creates_waited = gc.creates_waited;
    Ok(report)
}
