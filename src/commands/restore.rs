//! `snap restore`: write a snapshot (or part of it) into a directory.
//!
//! Ordered restore: every blob needed is located in the index, the reads
//! are grouped by pack and sorted by offset, and each pack is read once,
//! as one sequential range, by one of the worker threads. Every blob is
//! authenticated, decompressed and checked against its id before any of
//! its bytes reach a file; zero-filled chunks are skipped, so holes of
//! sparse files stay holes. Metadata is applied after the data, directory
//! times last. Names come from validated trees (never `..`, `/` or empty),
//! and files are opened with O_NOFOLLOW, so a snapshot cannot make restore
//! write outside the target directory.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use globset::{Glob, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use serde::Serialize;

use crate::backend::FileKind;
use crate::format::pack::PackEntry;
use crate::format::tree::{Node, NodeKind};
use crate::format::{BlobId, PackId};
use crate::index::BlobLocation;
use crate::repository::Repository;
use crate::{Error, Result};

/// Options of `snap restore`.
#[derive(Debug, Default)]
pub struct RestoreOptions {
    /// Target directory (created if missing).
    pub target: PathBuf,
    /// Only paths matching one of these globs (and what is below them).
    pub includes: Vec<String>,
    /// Leave out paths matching one of these globs (and what is below them).
    pub excludes: Vec<String>,
}

/// What `restore` did.
#[derive(Debug, Default, Serialize)]
pub struct RestoreReport {
    /// Files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symlinks and special files created.
    pub others: u64,
    /// Bytes of file content restored.
    pub bytes: u64,
    /// Packs read.
    pub packs_read: u64,
    /// Problems (each names the file affected).
    pub errors: Vec<String>,
    /// Entries left out that lose no data: kinds that cannot be recreated
    /// here (sockets; device nodes when not root).
    pub warnings: Vec<String>,
}

fn globset(patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let anchored = if p.starts_with('/') {
            p.clone()
        } else {
            format!("**/{p}")
        };
        b.add(Glob::new(&anchored).map_err(|e| Error::Invalid(format!("bad pattern {p:?}: {e}")))?);
    }
    Ok(Some(b.build().map_err(|e| {
        Error::Invalid(format!("bad patterns: {e}"))
    })?))
}

struct FilePlan {
    path: PathBuf,
    node: Node,
    link_to: Option<usize>,
}

#[derive(Default)]
struct Plan {
    dirs: Vec<(PathBuf, Node)>,
    files: Vec<FilePlan>,
    others: Vec<(PathBuf, Node)>,
    /// Directories whose listing is lost or damaged: not restored.
    lost: Vec<String>,
}

/// Whether an error means the object is lost or damaged (restore goes on
/// without it) rather than that storage could not be reached.
fn is_damage(e: &Error) -> bool {
    matches!(e, Error::Missing { .. } | Error::Corrupt { .. })
}

struct Walker<'a> {
    repo: &'a Repository,
    includes: Option<GlobSet>,
    excludes: Option<GlobSet>,
    hardlinks: HashMap<(u64, u64), usize>,
}

impl Walker<'_> {
    /// Walks a tree; returns whether anything below was selected.
    fn walk(
        &mut self,
        tree_id: &BlobId,
        snap_path: &Path,
        out_path: &Path,
        selected: bool,
        plan: &mut Plan,
    ) -> Result<bool> {
        let tree = self.repo.load_tree(tree_id)?;
        let mut any = false;
        for node in tree.nodes {
            let name = OsStr::from_bytes(&node.name);
            let sp = snap_path.join(name);
            let op = out_path.join(name);
            if self.excludes.as_ref().is_some_and(|g| g.is_match(&sp)) {
                continue;
            }
            let sel = selected || self.includes.as_ref().is_none_or(|g| g.is_match(&sp));
            match node.kind {
                NodeKind::Dir => {
                    let idx = plan.dirs.len();
                    plan.dirs.push((op.clone(), node.clone()));
                    let sub = node.subtree.expect("validated dir node");
                    let below = match self.walk(&sub, &sp, &op, sel, plan) {
                        Ok(b) => b,
                        Err(e) if is_damage(&e) => {
                            // Its own metadata is here, its entries are
                            // not: it is not created, and named.
                            plan.dirs.truncate(idx);
                            plan.lost.push(format!(
                                "{}: NOT restored (directory listing lost: {e})",
                                op.display()
                            ));
                            any = true;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    if !(sel || below) {
                        plan.dirs.truncate(idx);
                    } else {
                        any = true;
                    }
                }
                _ if !sel => {}
                NodeKind::File => {
                    any = true;
                    let link_to = if node.nlink > 1 {
                        let key = (node.dev, node.inode);
                        match self.hardlinks.get(&key) {
                            Some(&first) => Some(first),
                            None => {
                                self.hardlinks.insert(key, plan.files.len());
                                None
                            }
                        }
                    } else {
                        None
                    };
                    plan.files.push(FilePlan {
                        path: op,
                        node,
                        link_to,
                    });
                }
                _ => {
                    any = true;
                    plan.others.push((op, node));
                }
            }
        }
        Ok(any)
    }
}

/// Makes `dir` (below `root`), refusing to pass through anything that is not a real directory.
fn make_dir(root: &Path, dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "{} exists and is not a directory; refusing to restore through it",
                dir.display()
            )))
        }
        Err(_) => {}
    }
    if dir != root {
        if let Some(parent) = dir.parent() {
            make_dir(root, parent)?;
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => make_dir(root, dir),
        Err(e) => Err(Error::io(dir, e)),
    }
}

fn open_for_write(path: &Path) -> std::io::Result<fs::File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Removes whatever non-directory entry is at `path`, so that nothing is
/// ever written through an existing file: it may be a hard link to a file
/// outside the target, or a symlink.
fn clear_path(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::Invalid(format!(
            "{} is a directory; cannot restore a file there",
            path.display()
        ))),
        Ok(_) => fs::remove_file(path).map_err(|e| Error::io(path, e)),
        Err(_) => Ok(()),
    }
}

/// Creates a new, empty file of `size` bytes (all hole).
fn create_file(path: &Path, size: u64) -> Result<()> {
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(path)
    };
    // Usually nothing is there (one syscall); otherwise clear it and retry.
    let f = match create() {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            clear_path(path)?;
            create().map_err(|e| Error::io(path, e))?
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    f.set_len(size).map_err(|e| Error::io(path, e))
}

/// Writes `data` at `off`, leaving out the file-system blocks (4 KiB,
/// aligned to the file) that are all zero: the file was created at full
/// length as one hole, so they read back as zeros and stay unallocated.
/// Skipping only whole zero chunks would allocate the zeros around the data
/// of a sparse file (a chunk is up to `max` bytes).
fn write_skipping_zeros(f: &fs::File, data: &[u8], off: u64) -> std::io::Result<()> {
    const BLOCK: u64 = 4096;
    let mut pos = 0usize;
    let mut run: Option<usize> = None;
    while pos < data.len() {
        let abs = off + pos as u64;
        let end = (((abs / BLOCK + 1) * BLOCK - off) as usize).min(data.len());
        let zero = data[pos..end].iter().all(|&b| b == 0);
        match (zero, run) {
            (true, Some(start)) => {
                f.write_all_at(&data[start..pos], off + start as u64)?;
                run = None;
            }
            (false, None) => run = Some(pos),
            _ => {}
        }
        pos = end;
    }
    if let Some(start) = run {
        f.write_all_at(&data[start..], off + start as u64)?;
    }
    Ok(())
}

/// Largest span of a pack read at once by restore.
const READ_WINDOW: u64 = 8 << 20;

struct BlobUse {
    entry: PackEntry,
    targets: Vec<(u32, u64)>,
}

/// Runs `snap restore` of the tree `root` into `opts.target`.
pub fn run(repo: &Repository, root: &BlobId, opts: &RestoreOptions) -> Result<RestoreReport> {
    let target = std::path::absolute(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    let mut walker = Walker {
        repo,
        includes: globset(&opts.includes)?,
        excludes: globset(&opts.excludes)?,
        hardlinks: HashMap::new(),
    };
    let mut plan = Plan::default();
    match walker.walk(root, Path::new("/"), &target, false, &mut plan) {
        Ok(_) => {}
        Err(e) if is_damage(&e) => plan.lost.push(format!(
            "{}: NOT restored (the snapshot's root directory listing is lost: {e})",
            target.display()
        )),
        Err(e) => return Err(e),
    }
    make_dir(&target, &target)?;
    for (d, _) in &plan.dirs {
        make_dir(&target, d)?;
    }
    failpoint!("restore.after_dirs");
    let mut report = RestoreReport {
        dirs: plan.dirs.len() as u64,
        errors: std::mem::take(&mut plan.lost),
        ..Default::default()
    };

    // Locate every blob before any file is created: a file whose data is
    // not in the repository is reported and never created, rather than left
    // behind as a hole-filled file of the right size.
    let mut locations: HashMap<BlobId, BlobLocation> = HashMap::new();
    let mut unrestorable = vec![false; plan.files.len()];
    for (i, f) in plan.files.iter().enumerate() {
        if f.link_to.is_some() {
            continue;
        }
        let mut off = 0u64;
        let mut why = None;
        for id in &f.node.content {
            let loc = match locations.get(id) {
                Some(l) => *l,
                None => match repo.locate(id) {
                    Ok(l) => {
                        locations.insert(*id, l);
                        l
                    }
                    Err(Error::Missing { .. }) => {
                        why = Some(format!("data blob {} is missing", id.short()));
                        break;
                    }
                    Err(e) => return Err(e),
                },
            };
            off += loc.entry.raw_len as u64;
        }
        if why.is_none() && off != f.node.size {
            why = Some(format!(
                "chunk sizes add up to {off}, not the recorded size {}",
                f.node.size
            ));
        }
        if let Some(why) = why {
            unrestorable[i] = true;
            report
                .errors
                .push(format!("{}: NOT restored ({why})", f.path.display()));
            // Nothing at this path may pass for the snapshot's file.
            clear_path(&f.path)?;
        }
    }
    // Hard links to a file that cannot be restored cannot be made either.
    for (i, f) in plan.files.iter().enumerate() {
        if let Some(first) = f.link_to {
            if unrestorable[first] {
                unrestorable[i] = true;
                report.errors.push(format!(
                    "{}: NOT restored (hard link to {}, which is damaged)",
                    f.path.display(),
                    plan.files[first].path.display()
                ));
                clear_path(&f.path)?;
            }
        }
    }

    // Files: create at full size (holes), then gather blob uses.
    let mut uses: HashMap<BlobId, Vec<(u32, u64)>> = HashMap::new();
    for (i, f) in plan.files.iter().enumerate() {
        if f.link_to.is_some() || unrestorable[i] {
            continue;
        }
        create_file(&f.path, f.node.size)?;
        report.files += 1;
        report.bytes += f.node.size;
        let mut off = 0u64;
        for id in &f.node.content {
            uses.entry(*id).or_default().push((i as u32, off));
            off += locations[id].entry.raw_len as u64;
        }
    }
    let mut by_pack: BTreeMap<PackId, Vec<BlobUse>> = BTreeMap::new();
    for (id, targets) in uses {
        let loc = locations[&id];
        by_pack.entry(loc.pack).or_default().push(BlobUse {
            entry: loc.entry,
            targets,
        });
    }
    for v in by_pack.values_mut() {
        v.sort_by_key(|u| u.entry.offset);
    }
    report.packs_read = by_pack.len() as u64;

    let errors = Mutex::new(Vec::new());
    let damaged = Mutex::new(Vec::<u32>::new());
    let written = AtomicU64::new(0);
    // Each pack is read front to back once, in windows of at most
    // READ_WINDOW bytes so that memory does not grow with the pack size.
    let mut windows: Vec<(&PackId, &[BlobUse])> = Vec::new();
    for (pack, blobs) in &by_pack {
        let mut i = 0;
        while i < blobs.len() {
            let first = blobs[i].entry.offset;
            let mut j = i + 1;
            while j < blobs.len()
                && blobs[j].entry.offset + blobs[j].entry.stored_len as u64 - first <= READ_WINDOW
            {
                j += 1;
            }
            windows.push((pack, &blobs[i..j]));
            i = j;
        }
    }
    windows.par_iter().for_each(|&(pack, blobs)| {
        let first = blobs.first().expect("non-empty").entry.offset;
        let last = blobs.last().expect("non-empty");
        let end = last.entry.offset + last.entry.stored_len as u64;
        let bytes =
            match repo
                .backend()
                .read_range(FileKind::Pack, &pack.to_hex(), first, end - first)
            {
                Ok(b) => Some(b),
                // The pack is gone (another client's prune moved its blobs):
                // read each blob where the resynced index says it is now.
                Err(e) if e.is_not_found() => None,
                Err(e) => {
                    let e: Error = e.into();
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("pack {}: {e}", pack.short()));
                    damaged
                        .lock()
                        .unwrap()
                        .extend(blobs.iter().flat_map(|b| b.targets.iter().map(|t| t.0)));
                    return;
                }
            };
        for b in blobs {
            let decoded = match &bytes {
                Some(bytes) => {
                    let s = (b.entry.offset - first) as usize;
                    repo.decode_blob(pack, &b.entry, &bytes[s..s + b.entry.stored_len as usize])
                }
                None => repo.read_blob(&b.entry.id),
            };
            let plain = match decoded {
                Ok(p) => p,
                Err(e) => {
                    errors.lock().unwrap().push(e.to_string());
                    damaged
                        .lock()
                        .unwrap()
                        .extend(b.targets.iter().map(|t| t.0));
                    continue;
                }
            };
            if plain.iter().all(|&x| x == 0) {
                continue; // the file was created at full length: a hole reads as zeros
            }
            for &(fi, off) in &b.targets {
                let path = &plan.files[fi as usize].path;
                let res = open_for_write(path).and_then(|f| write_skipping_zeros(&f, &plain, off));
                if let Err(e) = res {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("{}: {e}", path.display()));
                    damaged.lock().unwrap().push(fi);
                } else {
                    written.fetch_add(plain.len() as u64, Ordering::Relaxed);
                }
                let point = || -> Result<()> {
                    failpoint!("restore.after_write");
                    Ok(())
                };
                if let Err(e) = point() {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("{}: {e}", path.display()));
                    damaged.lock().unwrap().push(fi);
                }
            }
        }
    });
    let mut errors = errors.into_inner().unwrap();
    let mut damaged = damaged.into_inner().unwrap();
    damaged.sort_unstable();
    damaged.dedup();
    for fi in &damaged {
        // Never leave a file with wrong content looking restored.
        let p = &plan.files[*fi as usize].path;
        let _ = fs::remove_file(p);
        errors.push(format!(
            "{}: NOT restored (damaged data; removed)",
            p.display()
        ));
    }

    // Hard links, then links and special files, then metadata.
    for (i, f) in plan.files.iter().enumerate() {
        if unrestorable[i] {
            continue;
        }
        if let Some(first) = f.link_to {
            let src = &plan.files[first].path;
            let _ = fs::remove_file(&f.path);
            if let Err(e) = fs::hard_link(src, &f.path) {
                errors.push(format!("{}: cannot hard-link: {e}", f.path.display()));
            } else {
                report.files += 1;
            }
        }
    }
    let mut created = vec![false; plan.others.len()];
    for (i, (p, n)) in plan.others.iter().enumerate() {
        match super::restore_meta::create_special(p, n) {
            Ok(true) => {
                report.others += 1;
                created[i] = true;
            }
            Ok(false) => report.warnings.push(format!(
                "{}: {} not recreated (restore cannot create this kind here)",
                p.display(),
                super::ls::kind_name(n.kind)
            )),
            Err(e) => errors.push(e.to_string()),
        }
    }
    for (i, f) in plan.files.iter().enumerate() {
        if f.link_to.is_none() && !unrestorable[i] && damaged.binary_search(&(i as u32)).is_err() {
            if let Err(e) = super::restore_meta::apply(&f.path, &f.node) {
                errors.push(e.to_string());
            }
        }
    }
    for ((p, n), _) in plan.others.iter().zip(&created).filter(|(_, &c)| c) {
        if let Err(e) = super::restore_meta::apply(p, n) {
            errors.push(e.to_string());
        }
    }
    for (p, n) in plan.dirs.iter().rev() {
        if let Err(e) = super::restore_meta::apply(p, n) {
            errors.push(e.to_string());
        }
    }
    report.errors.extend(errors);
    Ok(report)
}
