//! `snap check`: structure (snapshots -> trees -> blobs -> index -> packs)
//! and, with `--read-data`, every byte: each pack is read, its hash and
//! header checked and every blob authenticated and verified. Every problem
//! names the snapshots and files it affects.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::Serialize;

use crate::backend::FileKind;
use crate::format::{BlobId, PackId, SnapshotId};
use crate::repository::Repository;
use crate::{Error, Result};

/// Options of `snap check`.
#[derive(Debug, Default, Clone)]
pub struct CheckOptions {
    /// Read and verify every pack.
    pub read_data: bool,
    /// Read this percentage of packs (chosen at random), 0 < pct <= 100.
    pub read_data_subset: Option<f64>,
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
}

struct Structure<'a> {
    repo: &'a Repository,
    visited: HashSet<BlobId>,
    missing: HashSet<BlobId>,
    report: &'a mut CheckReport,
}

impl Structure<'_> {
    fn walk(&mut self, snap: &SnapshotId, tree: &BlobId, at: &Path) {
        if !self.visited.insert(*tree) {
            return;
        }
        self.report.trees += 1;
        let t = match self.repo.load_tree(tree) {
            Ok(t) => t,
            Err(e) => {
                self.report.errors.push(format!(
                    "snapshot {}: directory {}: {e}",
                    snap.short(),
                    at.display()
                ));
                return;
            }
        };
        for n in &t.nodes {
            let p = at.join(OsStr::from_bytes(&n.name));
            for id in &n.content {
                if self.missing.contains(id) {
                    continue;
                }
                match self.repo.index().contains(id) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.missing.insert(*id);
                        self.report.errors.push(format!(
                            "snapshot {}: file {}: data blob {} is missing",
                            snap.short(),
                            p.display(),
                            id.short()
                        ));
                    }
                    Err(e) => self.report.errors.push(e.to_string()),
                }
            }
            if let Some(sub) = n.subtree {
                self.walk(snap, &sub, &p);
            }
        }
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

/// Maps damaged blobs to the snapshot files that use them.
fn affected_files(repo: &Repository, bad: &HashSet<BlobId>, out: &mut Vec<String>) -> Result<()> {
    let mut clean: HashSet<BlobId> = HashSet::new();
    let mut memo: HashMap<BlobId, Vec<PathBuf>> = HashMap::new();
    fn walk(
        repo: &Repository,
        tree: &BlobId,
        bad: &HashSet<BlobId>,
        clean: &mut HashSet<BlobId>,
        memo: &mut HashMap<BlobId, Vec<PathBuf>>,
    ) -> Vec<PathBuf> {
        if clean.contains(tree) {
            return Vec::new();
        }
        if let Some(v) = memo.get(tree) {
            return v.clone();
        }
        let mut hits = Vec::new();
        if bad.contains(tree) {
            hits.push(PathBuf::from("(this directory listing)"));
        } else if let Ok(t) = repo.load_tree(tree) {
            for n in &t.nodes {
                let name = PathBuf::from(OsStr::from_bytes(&n.name));
                if n.content.iter().any(|c| bad.contains(c)) {
                    hits.push(name.clone());
                }
                if let Some(sub) = n.subtree {
                    for h in walk(repo, &sub, bad, clean, memo) {
                        hits.push(name.join(h));
                    }
                }
            }
        }
        if hits.is_empty() {
            clean.insert(*tree);
        } else {
            memo.insert(*tree, hits.clone());
        }
        hits
    }
    // Damaged snapshot objects were reported by the structure pass.
    for (id, s) in repo.list_snapshots()?.snapshots {
        for f in walk(repo, &s.tree, bad, &mut clean, &mut memo) {
            out.push(format!(
                "snapshot {}: file /{} is damaged",
                id.short(),
                f.display()
            ));
        }
    }
    Ok(())
}

/// Runs `snap check`.
pub fn run(repo: &Repository, opts: &CheckOptions) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    if let Err(e) = repo.index().integrity_check() {
        report.errors.push(e.to_string());
        return Ok(report);
    }
    // Index <-> storage.
    let stored = repo.backend().list(FileKind::Pack)?;
    report.packs = stored.len() as u64;
    let stored_map: HashMap<String, u64> = stored.iter().cloned().collect();
    let indexed = repo.index().packs()?;
    let indexed_set: HashSet<String> = indexed.iter().map(|(p, _, _)| p.to_hex()).collect();
    let mut lost: HashSet<BlobId> = HashSet::new();
    for (pack, _, size) in &indexed {
        match stored_map.get(&pack.to_hex()) {
            None => {
                report.errors.push(format!(
                    "pack {} is in the index but missing from storage",
                    pack.short()
                ));
                lost.extend(repo.index().pack_entries(pack)?.iter().map(|e| e.id));
            }
            Some(s) if s != size => {
                report.errors.push(format!(
                    "pack {} has {s} bytes in storage, {size} in the index (truncated?)",
                    pack.short()
                ));
                // Name the files that use it, as for a missing pack.
                lost.extend(repo.index().pack_entries(pack)?.iter().map(|e| e.id));
            }
            _ => {}
        }
    }
    for (name, _) in &stored {
        if !indexed_set.contains(name) {
            report.warnings.push(format!(
                "pack {} is not in the index (run `snap repair index`)",
                &name[..8.min(name.len())]
            ));
        }
    }
    // Snapshots -> trees -> blobs.
    let snaps = repo.backend().list(FileKind::Snapshot)?;
    let mut st = Structure {
        repo,
        visited: HashSet::new(),
        missing: HashSet::new(),
        report: &mut report,
    };
    for (name, _) in &snaps {
        let Some(id) = SnapshotId::from_hex(name) else {
            st.report
                .warnings
                .push(format!("snapshots/{name}: not a snapshot name"));
            continue;
        };
        match repo.load_snapshot(&id) {
            Ok(s) => {
                st.report.snapshots += 1;
                st.walk(&id, &s.tree, Path::new("/"));
            }
            Err(e) => st.report.errors.push(e.to_string()),
        }
    }
    // Data.
    let chosen = choose_packs(stored, opts);
    let bad = Mutex::new(HashSet::<BlobId>::new());
    let errs = Mutex::new(Vec::<String>::new());
    let bytes = std::sync::atomic::AtomicU64::new(0);
    chosen.par_iter().for_each(|(name, _)| {
        let Some(pack) = PackId::from_hex(name) else {
            return;
        };
        match verify_pack(repo, &pack) {
            Ok((n, damaged)) => {
                bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                for (id, e) in damaged {
                    errs.lock().unwrap().push(e);
                    bad.lock().unwrap().insert(id);
                }
            }
            Err(e) => {
                errs.lock().unwrap().push(e.to_string());
                if let Ok(entries) = repo.index().pack_entries(&pack) {
                    bad.lock().unwrap().extend(entries.iter().map(|e| e.id));
                }
            }
        }
    });
    report.packs_read = chosen.len() as u64;
    report.bytes_read = bytes.into_inner();
    report.errors.extend(errs.into_inner().unwrap());
    let mut bad = bad.into_inner().unwrap();
    bad.extend(lost);
    if !bad.is_empty() {
        affected_files(repo, &bad, &mut report.errors)?;
    }
    Ok(report)
}

/// Reads one pack whole and verifies its name, header and every blob.
/// Returns bytes read and the damaged blobs with a message each.
pub fn verify_pack(repo: &Repository, pack: &PackId) -> Result<(u64, Vec<(BlobId, String)>)> {
    let bytes = repo.backend().read(FileKind::Pack, &pack.to_hex())?;
    let n = bytes.len() as u64;
    if blake3::hash(&bytes).as_bytes() != &pack.0 {
        let mut damaged = Vec::new();
        // The header may still be readable: check blob by blob to say which are hit.
        let entries = repo.parse_pack_header(pack, &bytes, n)?;
        for e in &entries {
            let s = e.offset as usize;
            if let Err(err) = repo.decode_blob(pack, e, &bytes[s..s + e.stored_len as usize]) {
                damaged.push((e.id, err.to_string()));
            }
        }
        if damaged.is_empty() {
            damaged.push((
                BlobId([0; 32]),
                format!("pack {}: content does not match its name", pack.short()),
            ));
        }
        return Ok((n, damaged));
    }
    let entries = repo.parse_pack_header(pack, &bytes, n)?;
    let indexed = repo.index().pack_entries(pack)?;
    let mut damaged = Vec::new();
    for e in &entries {
        let s = e.offset as usize;
        if let Err(err) = repo.decode_blob(pack, e, &bytes[s..s + e.stored_len as usize]) {
            damaged.push((e.id, err.to_string()));
        }
    }
    let in_header: HashSet<_> = entries
        .iter()
        .map(|e| (e.id, e.offset, e.stored_len))
        .collect();
    if indexed
        .iter()
        .any(|i| !in_header.contains(&(i.id, i.offset, i.stored_len)))
    {
        damaged.push((
            BlobId([0; 32]),
            format!(
                "pack {}: index entries differ from the pack header (run `snap repair index`)",
                pack.short()
            ),
        ));
    }
    Ok((n, damaged))
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
