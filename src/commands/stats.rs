//! `snap stats [SNAP...]`: how large the chosen snapshots are, restored
//! and stored (restic's three counting modes, all computed in one walk).
//!
//! * restore-size: what restoring each snapshot writes: the sizes of its
//!   files, a hard-linked inode counted once per snapshot, summed over the
//!   snapshots.
//! * files-by-contents: files with distinct contents (the same chunk list)
//!   across the snapshots, each counted once.
//! * raw-data: the distinct blobs (data and trees) the snapshots reference:
//!   their plaintext size, their stored (compressed, encrypted) size, and
//!   the packs that hold them.
//!
//! A directory listing shared by several snapshots is read once: its
//! totals are kept by tree id.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde::Serialize;

use crate::format::snapshot::Snapshot;
use crate::format::tree::NodeKind;
use crate::format::{BlobId, PackId, SnapshotId};
use crate::repository::Repository;
use crate::Result;

/// What the headline figures count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StatsMode {
    /// The bytes a restore of each snapshot writes.
    #[default]
    RestoreSize,
    /// Files with distinct contents, once each.
    FilesByContents,
    /// The distinct blobs referenced, as stored.
    RawData,
}

impl StatsMode {
    /// The mode's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            StatsMode::RestoreSize => "restore-size",
            StatsMode::FilesByContents => "files-by-contents",
            StatsMode::RawData => "raw-data",
        }
    }
}

/// What `snap stats` found.
#[derive(Debug, Default, Serialize)]
pub struct StatsReport {
    /// The counting mode of `total_size` and `total_file_count`.
    pub mode: &'static str,
    /// Snapshots counted.
    pub snapshots_count: u64,
    /// The mode's size: restore size, size of distinct files, or stored size.
    pub total_size: u64,
    /// The mode's file count (files, distinct files; not in raw-data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_file_count: Option<u64>,
    /// raw-data: distinct blobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_blob_count: Option<u64>,
    /// raw-data: their plaintext size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_uncompressed_size: Option<u64>,
    /// Sum over the snapshots of the bytes a restore writes.
    pub restore_size: u64,
    /// Sum over the snapshots of their files.
    pub restore_files: u64,
    /// Sum over the snapshots of their directories.
    pub restore_dirs: u64,
    /// Files with distinct contents.
    pub unique_files: u64,
    /// Their total size.
    pub unique_files_size: u64,
    /// Distinct data blobs referenced.
    pub data_blobs: u64,
    /// Distinct tree blobs referenced.
    pub tree_blobs: u64,
    /// Plaintext size of the distinct blobs.
    pub raw_size: u64,
    /// Plaintext size of the distinct data blobs alone.
    pub data_size: u64,
    /// Stored size of the distinct blobs (compressed and encrypted).
    pub stored_size: u64,
    /// Packs holding them.
    pub packs: u64,
    /// Total size of those packs.
    pub packs_size: u64,
    /// Referenced blobs the index does not know (`snap check`).
    pub missing_blobs: u64,
    /// restore_size / plaintext size of the distinct data blobs.
    pub dedup_ratio: f64,
    /// Plaintext / stored size of the distinct blobs.
    pub compression_ratio: f64,
    /// Percent of the plaintext size that compression saved.
    pub compression_space_saving: f64,
    /// Every pack of the repository, and their total size.
    pub repository_packs: u64,
    /// Total size of every pack of the repository.
    pub repository_size: u64,
}

/// Totals below one directory listing (for restore-size).
#[derive(Default)]
struct Totals {
    files: u64,
    dirs: u64,
    bytes: u64,
    /// Hard-linked files, counted per snapshot by (dev, inode).
    linked: Vec<(u64, u64, u64)>,
}

struct Walker<'a> {
    repo: &'a Repository,
    memo: HashMap<BlobId, Rc<Totals>>,
    data: HashSet<BlobId>,
    trees: HashSet<BlobId>,
    contents: HashMap<[u8; 32], u64>,
}

impl Walker<'_> {
    fn tree(&mut self, id: &BlobId) -> Result<Rc<Totals>> {
        if let Some(t) = self.memo.get(id) {
            return Ok(t.clone());
        }
        let (tree, parts) = self.repo.load_tree_parts(id)?;
        self.trees.insert(*id);
        self.trees.extend(parts);
        let mut t = Totals::default();
        for n in &tree.nodes {
            match n.kind {
                NodeKind::File => {
                    t.files += 1;
                    if n.nlink > 1 {
                        t.linked.push((n.dev, n.inode, n.size));
                    } else {
                        t.bytes += n.size;
                    }
                    let mut h = blake3::Hasher::new();
                    for c in &n.content {
                        h.update(&c.0);
                        self.data.insert(*c);
                    }
                    self.contents.insert(*h.finalize().as_bytes(), n.size);
                }
                NodeKind::Dir => {
                    t.dirs += 1;
                    if let Some(sub) = &n.subtree {
                        let s = self.tree(sub)?;
                        t.files += s.files;
                        t.dirs += s.dirs;
                        t.bytes += s.bytes;
                        t.linked.extend_from_slice(&s.linked);
                    }
                }
                _ => {}
            }
        }
        let t = Rc::new(t);
        self.memo.insert(*id, t.clone());
        Ok(t)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Counts `snapshots` in every mode; `mode` picks the headline figures.
pub fn run(
    repo: &Repository,
    snapshots: &[(SnapshotId, Snapshot)],
    mode: StatsMode,
) -> Result<StatsReport> {
    // Pack sizes and blob locations as storage has them now.
    repo.sync_index()?;
    let mut w = Walker {
        repo,
        memo: HashMap::new(),
        data: HashSet::new(),
        trees: HashSet::new(),
        contents: HashMap::new(),
    };
    let mut r = StatsReport {
        mode: mode.name(),
        snapshots_count: snapshots.len() as u64,
        ..Default::default()
    };
    for (_, s) in snapshots {
        let t = w.tree(&s.tree)?;
        r.restore_files += t.files;
        r.restore_dirs += t.dirs;
        let mut seen = HashSet::new();
        let linked: u64 = t
            .linked
            .iter()
            .filter(|(dev, ino, _)| seen.insert((*dev, *ino)))
            .map(|(_, _, size)| size)
            .sum();
        r.restore_size += t.bytes + linked;
    }
    r.unique_files = w.contents.len() as u64;
    r.unique_files_size = w.contents.values().sum();
    r.data_blobs = w.data.len() as u64;
    r.tree_blobs = w.trees.len() as u64;
    let index = repo.index();
    let sizes: HashMap<PackId, u64> = index
        .packs()?
        .into_iter()
        .map(|(p, _, size)| (p, size))
        .collect();
    r.repository_packs = sizes.len() as u64;
    r.repository_size = sizes.values().sum();
    let mut packs = HashSet::new();
    for (id, is_data) in w
        .data
        .iter()
        .map(|id| (id, true))
        .chain(w.trees.iter().map(|id| (id, false)))
    {
        match index.lookup(id)? {
            Some(loc) => {
                r.raw_size += loc.entry.raw_len as u64;
                r.stored_size += loc.entry.stored_len as u64;
                if is_data {
                    r.data_size += loc.entry.raw_len as u64;
                }
                packs.insert(loc.pack);
            }
            None => r.missing_blobs += 1,
        }
    }
    r.packs = packs.len() as u64;
    r.packs_size = packs.iter().filter_map(|p| sizes.get(p)).sum();
    r.dedup_ratio = ratio(r.restore_size, r.data_size);
    r.compression_ratio = ratio(r.raw_size, r.stored_size);
    r.compression_space_saving = if r.raw_size == 0 {
        0.0
    } else {
        (1.0 - r.stored_size as f64 / r.raw_size as f64) * 100.0
    };
    match mode {
        StatsMode::RestoreSize => {
            r.total_size = r.restore_size;
            r.total_file_count = Some(r.restore_files);
        }
        StatsMode::FilesByContents => {
            r.total_size = r.unique_files_size;
            r.total_file_count = Some(r.unique_files);
        }
        StatsMode::RawData => {
            r.total_size = r.stored_size;
            r.total_blob_count = Some(r.data_blobs + r.tree_blobs);
            r.total_uncompressed_size = Some(r.raw_size);
        }
    }
    Ok(r)
}
