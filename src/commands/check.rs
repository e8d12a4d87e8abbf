//! `snap check`: structure (snapshots -> trees -> blobs -> index -> packs)
//! and, with `--read-data`, every byte: each pack is read, its hash and
//! header checked and every blob authenticated and verified.
//!
//! What is found damaged is recorded in the index (`repository::damage`),
//! so that the next `create` stores those blobs again. Every problem names
//! the snapshots and files it affects, and the report says how to recover
//! (`docs/repair.md`).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Mutex;

use rayon::prelude::*;
use serde::Serialize;

use crate::backend::FileKind;
use crate::format::pack::PackEntry;
use crate::format::{BlobId, PackId, SnapshotId};
use crate::repository::Repository;
use crate::{Error, Remedy, Result};

/// Options of `snap check`.
#[derive(Debug, Default, Clone)]
pub struct CheckOptions {
    /// Read and verify every pack.
    pub read_data: bool,
    /// Read this percentage of packs (chosen at random), 0 < pct <= 100.
    pub read_data_subset: Option<f64>,
    /// Progress counters and verbose lines (no-op by default).
    pub progress: crate::progress::Progress,
}

/// What `check` found.
#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    /// Snapshots checked.
    pub snapshots: u64,
    /// Distinct trees checked.
    pub trees: u64,
    /// Packs in storage.
    pub packs: u64,
    /// Packs read and verified.
    pub packs_read: u64,
    /// Bytes read and verified.
    pub bytes_read: u64,
    /// Problems that mean data is missing or damaged.
    pub errors: Vec<String>,
    /// Things worth knowing that lose no data.
    pub warnings: Vec<String>,
    /// Snapshots that cannot be restored completely (full ids).
    pub affected_snapshots: Vec<String>,
    /// How to recover, in the order to try (empty when nothing is lost).
    pub advice: Vec<String>,
}

/// An error's message without the advice the library adds for other
/// commands (check does not tell its user to run check).
fn describe(e: &Error) -> String {
    e.without_advice()
}

/// Why a blob cannot be used, or `None` when an intact copy is indexed.
struct Usable<'a> {
    repo: &'a Repository,
    /// Blobs indexed in packs that are gone from storage.
    lost: &'a HashMap<BlobId, PackId>,
}

impl Usable<'_> {
    fn problem(&self, kind: &str, id: &BlobId) -> Result<Option<String>> {
        if let Some(p) = self.lost.get(id) {
            return Ok(Some(format!(
                "{kind} blob {} is in lost pack {}",
                id.short(),
                p.short()
            )));
        }
        if self.repo.index().contains(id)? {
            return Ok(None);
        }
        Ok(Some(match self.repo.index().damaged_blob(id)? {
            Some((p, _)) => format!("{kind} blob {} is damaged (pack {})", id.short(), p.short()),
            None => format!("{kind} blob {} is missing", id.short()),
        }))
    }
}

/// One thing a snapshot cannot restore: a path relative to the tree, and why.
type Hits = Rc<Vec<(PathBuf, String)>>;

/// Walks every snapshot's trees once (trees shared by snapshots are
/// remembered), naming each file and directory that cannot be restored.
struct Walk<'a> {
    usable: Usable<'a>,
    clean: HashSet<BlobId>,
    hits: HashMap<BlobId, Hits>,
    trees: u64,
    /// Some data or listing is lost or damaged (not only stored invalid).
    lossy: bool,
}

impl Walk<'_> {
    fn tree(&mut self, id: &BlobId) -> Result<Hits> {
        if self.clean.contains(id) {
            return Ok(Rc::default());
        }
        if let Some(h) = self.hits.get(id) {
            return Ok(h.clone());
        }
        self.trees += 1;
        crate::interrupt::check()?;
        let mut hits = Vec::new();
        match self.usable.repo.load_tree(id) {
            Err(e) => {
                let why = match self.usable.problem("tree", id)? {
                    Some(p) => {
                        self.lossy = true;
                        p
                    }
                    None => {
                        // An invalid listing authenticates: no copy of the
                        // repository holds a better one.
                        self.lossy |= !matches!(
                            e,
                            Error::Corrupt {
                                remedy: Remedy::Invalid,
                                ..
                            }
                        );
                        describe(&e)
                    }
                };
                hits.push((PathBuf::new(), format!("its listing is lost: {why}")));
            }
            Ok(t) => {
                for n in &t.nodes {
                    let name = Path::new(OsStr::from_bytes(&n.name));
                    for c in &n.content {
                        if let Some(why) = self.usable.problem("data", c)? {
                            self.lossy = true;
                            hits.push((name.to_path_buf(), why));
                            break;
                        }
                    }
                    if let Some(sub) = n.subtree {
                        for (p, why) in self.tree(&sub)?.iter() {
                            let at = if p.as_os_str().is_empty() {
                                name.to_path_buf()
                            } else {
                                name.join(p)
                            };
                            hits.push((at, why.clone()));
                        }
                    }
                }
            }
        }
        if hits.is_empty() {
            self.clean.insert(*id);
            return Ok(Rc::default());
        }
        let hits = Rc::new(hits);
        self.hits.insert(*id, hits.clone());
        Ok(hits)
    }
}

fn choose_packs(all: Vec<(String, u64)>, opts: &CheckOptions) -> Vec<(String, u64)> {
    match (opts.read_data, opts.read_data_subset) {
        (_, Some(pct)) => {
            let want = ((all.len() as f64) * pct / 100.0).ceil() as usize;
            let mut v = all;
            use rand::seq::SliceRandom;
            v.shuffle(&mut rand::rng());
            v.truncate(want.max(1));
            v
        }
        (true, None) => all,
        (false, None) => Vec::new(),
    }
}

/// Runs `snap check`.
pub fn run(repo: &Repository, opts: &CheckOptions) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    if let Err(e) = repo.index().integrity_check() {
        report.errors.push(e.to_string());
        return Ok(report);
    }
    // The index is a cache: bring it in step with storage first, so that a
    // stale one (another client pruned) is not taken for damage.
    // Judge what storage holds, not local copies of tree packs.
    repo.read_trees_from_storage();
    let unindexable: HashSet<String> = repo.sync_index()?.packs_damaged.into_iter().collect();
    for name in &unindexable {
        report.errors.push(format!(
            "pack {name}: the header is damaged; its blobs are not indexed"
        ));
    }
    // Index <-> storage.
    let stored = repo.backend().list(FileKind::Pack)?;
    report.packs = stored.len() as u64;
    let stored_map: HashMap<String, u64> = stored.iter().cloned().collect();
    let indexed = repo.index().packs()?;
    let indexed_set: HashSet<String> = indexed.iter().map(|(p, _, _)| p.to_hex()).collect();
    let mut lost: HashMap<BlobId, PackId> = HashMap::new();
    // Packs with damage, whether found now or recorded before.
    let mut damaged_packs: HashSet<PackId> = unindexable
        .iter()
        .filter_map(|n| PackId::from_hex(n))
        .collect();
    for (pack, _, size) in &indexed {
        match stored_map.get(&pack.to_hex()) {
            None => {
                report.errors.push(format!(
                    "pack {} is in the index but missing from storage (lost)",
                    pack.short()
                ));
                for e in repo.index().pack_entries(pack)? {
                    lost.insert(e.id, *pack);
                }
            }
            Some(s) if s != size => {
                report.errors.push(format!(
                    "pack {} has {s} bytes in storage, {size} in the index (truncated)",
                    pack.short()
                ));
                // Nothing in it counts until `repair packs` re-verifies it.
                repo.record_pack_damaged(pack)?;
                damaged_packs.insert(*pack);
            }
            _ => {}
        }
    }
    // The index was just brought in step with storage: a pack it lacks
    // has a damaged header (reported above; no rebuild can index it) or
    // was written since (a backup running now).
    for (name, _) in &stored {
        if !indexed_set.contains(name) && !unindexable.contains(name) {
            report.warnings.push(format!(
                "pack {} is not in the index: written while check ran (by a backup running \
                 now?); run `snap check` again when that has ended",
                name.get(..8).unwrap_or(name)
            ));
        }
    }

    // Data: every blob that fails is recorded damaged by the read itself.
    let chosen = choose_packs(stored, opts);
    let read: HashSet<PackId> = chosen
        .iter()
        .filter_map(|(n, _)| PackId::from_hex(n))
        .collect();
    let errs = Mutex::new(Vec::<String>::new());
    let found = Mutex::new(Vec::<(PackId, PackEntry, String)>::new());
    let whole = Mutex::new(Vec::<PackId>::new());
    let bytes = std::sync::atomic::AtomicU64::new(0);
    let progress = &opts.progress;
    if !chosen.is_empty() {
        progress.set_total(chosen.len() as u64, chosen.iter().map(|(_, n)| n).sum());
    }
    chosen.par_iter().for_each(|(name, size)| {
        let Some(pack) = PackId::from_hex(name) else {
            return;
        };
        if crate::interrupt::received().is_some() {
            return;
        }
        progress.item_started(|| format!("pack {}", pack.short()));
        let verdict = verify_pack(repo, &pack);
        progress.bytes_done(*size);
        progress.file_done();
        progress.verbose(1, || match &verdict {
            Ok(v) if v.problems.is_empty() && v.damaged.is_empty() => {
                format!("read pack {} ({} bytes): intact", pack.short(), v.bytes)
            }
            Ok(v) => format!(
                "read pack {} ({} bytes): {} damaged blob(s)",
                pack.short(),
                v.bytes,
                v.damaged.len()
            ),
            Err(_) => format!("pack {}: cannot be read", pack.short()),
        });
        match verdict {
            Ok(v) => {
                bytes.fetch_add(v.bytes, std::sync::atomic::Ordering::Relaxed);
                errs.lock().unwrap().extend(v.problems);
                let mut f = found.lock().unwrap();
                f.extend(v.damaged.into_iter().map(|(e, why)| (pack, e, why)));
                if v.unreadable {
                    whole.lock().unwrap().push(pack);
                }
            }
            Err(e) => errs
                .lock()
                .unwrap()
                .push(format!("pack {}: {}", pack.short(), describe(&e))),
        }
    });
    // Stopped: no verdict on packs that were not read.
    crate::interrupt::check()?;
    report.packs_read = chosen.len() as u64;
    report.bytes_read = bytes.into_inner();
    report.errors.extend(errs.into_inner().unwrap());
    for pack in whole.into_inner().unwrap() {
        // Damaged whole: its indexed blobs no longer count.
        repo.record_pack_damaged(&pack)?;
        damaged_packs.insert(pack);
    }
    // Reads record each damaged blob as they find it (best effort); record
    // them again here so that a failure to write the index is reported.
    let mut found = found.into_inner().unwrap();
    found.sort_by_key(|(p, e, _)| (*p, e.offset));
    for (p, e, why) in &found {
        repo.record_damaged(p, std::slice::from_ref(e))?;
        damaged_packs.insert(*p);
        let copy = if repo.index().contains(&e.id)? {
            " (an intact copy exists in another pack)"
        } else {
            ""
        };
        report.errors.push(format!("{why}{copy}"));
    }
    // Damage recorded earlier (by a check or any read) in packs not read now.
    for (p, n) in repo.index().damaged_packs()? {
        if stored_map.contains_key(&p.to_hex()) && !read.contains(&p) && damaged_packs.insert(p) {
            report.errors.push(format!(
                "pack {} holds {n} blob(s) found damaged by an earlier check or read",
                p.short()
            ));
        }
    }

    // Snapshots -> trees -> blobs, naming what cannot be restored.
    let mut walk = Walk {
        usable: Usable { repo, lost: &lost },
        clean: HashSet::new(),
        hits: HashMap::new(),
        trees: 0,
        lossy: false,
    };
    let mut affected: Vec<SnapshotId> = Vec::new();
    for (name, _) in repo.backend().list(FileKind::Snapshot)? {
        let Some(id) = SnapshotId::from_hex(&name) else {
            report
                .warnings
                .push(format!("snapshots/{name}: not a snapshot name"));
            continue;
        };
        let s = match repo.load_snapshot(&id) {
            Ok(s) => s,
            Err(e) => {
                report.errors.push(describe(&e));
                continue;
            }
        };
        report.snapshots += 1;
        opts.progress.verbose(2, || {
            format!("checking the trees of snapshot {}", id.short())
        });
        let hits = walk.tree(&s.tree)?;
        if !hits.is_empty() {
            affected.push(id);
        }
        for (p, why) in hits.iter() {
            let path = crate::name_escape::escape(Path::new("/").join(p).as_os_str().as_bytes());
            let what = if why.starts_with("its listing") {
                "directory"
            } else {
                "file"
            };
            report
                .errors
                .push(format!("snapshot {}: {what} {path}: {why}", id.short()));
        }
    }
    report.trees = walk.trees;
    report.affected_snapshots = affected.iter().map(|s| s.to_hex()).collect();
    report.advice = advice(&affected, &damaged_packs, !lost.is_empty(), walk.lossy);
    Ok(report)
}

/// How to recover, in the order to try (`lossy`: some data or listing is
/// lost or damaged, not only stored invalid).
fn advice(
    affected: &[SnapshotId],
    damaged: &HashSet<PackId>,
    lost: bool,
    lossy: bool,
) -> Vec<String> {
    if affected.is_empty() {
        if damaged.is_empty() {
            return Vec::new();
        }
        return vec![format!(
            "no snapshot needs the damaged data (intact copies exist): \
             `snap repair packs` removes the {} damaged pack(s)",
            damaged.len()
        )];
    }
    let ids: Vec<String> = affected.iter().map(|s| s.short()).collect();
    let mut v = vec![format!(
        "{} snapshot(s) cannot be restored completely: {}",
        affected.len(),
        ids.join(" ")
    )];
    if !lossy && !lost && damaged.is_empty() {
        // Only invalid listings: every copy holds the same bytes.
        v.push(
            "their directory listings were stored invalid (the bytes are intact, so no copy \
             of the repository has better ones): `snap repair snapshots --forget` rewrites \
             them around what cannot be read (docs/repair.md)"
                .to_string(),
        );
        v.push("then run `snap create` again for sources still on disk".to_string());
        return v;
    }
    let replace = if damaged.is_empty() {
        String::new()
    } else {
        " (for a damaged pack, run `snap repair packs` first so that the other copy replaces it)"
            .to_string()
    };
    let what = match (lost, !damaged.is_empty()) {
        (true, true) => "lost and damaged packs",
        (true, false) => "lost packs",
        (false, true) => "damaged packs",
        (false, false) => "missing data",
    };
    v.push(format!(
        "1. if another copy of this repository (made by `snap sync`) holds the {what}, \
         copy them back: `snap sync --from MIRROR`{replace}"
    ));
    v.push(if damaged.is_empty() {
        "2. otherwise keep what is intact: `snap repair snapshots --forget` (rewrites the \
         affected snapshots around what is lost)"
            .to_string()
    } else {
        "2. otherwise keep what is intact: `snap repair packs` (salvages the intact blobs of \
         damaged packs and removes them), then `snap repair snapshots --forget` (rewrites the \
         affected snapshots around what is lost)"
            .to_string()
    });
    v.push(
        "3. then run `snap create` again for sources still on disk: it stores the lost data \
         again, which also heals older snapshots that share it"
            .to_string(),
    );
    v
}

/// What reading one pack found.
#[derive(Debug, Default)]
pub struct PackVerdict {
    /// Bytes read.
    pub bytes: u64,
    /// Blobs that failed authentication or their id, with a message each.
    pub damaged: Vec<(PackEntry, String)>,
    /// Problems of the pack as a whole.
    pub problems: Vec<String>,
    /// The header does not read: the pack is damaged whole.
    pub unreadable: bool,
}

/// Reads one pack whole and verifies its name, header and every blob.
pub fn verify_pack(repo: &Repository, pack: &PackId) -> Result<PackVerdict> {
    let bytes = repo.backend().read(FileKind::Pack, &pack.to_hex())?;
    let n = bytes.len() as u64;
    let mut v = PackVerdict {
        bytes: n,
        ..Default::default()
    };
    let entries = match repo.parse_pack_header(pack, &bytes, n) {
        Ok(e) => e,
        Err(e) => {
            v.problems.push(describe(&e));
            v.unreadable = true;
            return Ok(v);
        }
    };
    for e in &entries {
        let s = e.offset as usize;
        if let Err(err) = repo.decode_blob(pack, e, &bytes[s..s + e.stored_len as usize]) {
            v.damaged.push((*e, describe(&err)));
        }
    }
    if v.damaged.is_empty() && blake3::hash(&bytes).as_bytes() != &pack.0 {
        v.problems.push(format!(
            "pack {}: content does not match its name (every blob is intact; \
             `snap repair packs {}` rewrites it)",
            pack.short(),
            pack.short()
        ));
    }
    let indexed = repo.index().pack_entries(pack)?;
    let in_header: HashSet<_> = entries
        .iter()
        .map(|e| (e.id, e.offset, e.stored_len))
        .collect();
    if indexed
        .iter()
        .any(|i| !in_header.contains(&(i.id, i.offset, i.stored_len)))
    {
        v.problems.push(format!(
            "pack {}: index entries differ from the pack header (run `snap repair index`)",
            pack.short()
        ));
    }
    Ok(v)
}

/// Turns a report with errors into the error `check` exits with.
pub fn into_result(report: CheckReport) -> Result<CheckReport> {
    if report.errors.is_empty() {
        Ok(report)
    } else {
        Err(Error::Damaged(format!(
            "check found {} problem(s)",
            report.errors.len()
        )))
    }
}
