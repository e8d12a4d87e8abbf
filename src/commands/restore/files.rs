//! The regular files of a restore, each without a name or under a
//! temporary name in its directory until it is complete.
//!
//! A file of one chunk (most small files) is made without a name
//! (`O_TMPFILE`), written, given its metadata and linked under its name by
//! the worker that brings the chunk: it is never seen incomplete, and a
//! killed restore leaves nothing of it. Other files (and all of them where
//! the file system cannot) are created under a temporary name (`O_CREAT |
//! O_EXCL`, at full length: one hole) by the worker that brings their first
//! chunk; a file stays open while its chunks come (a bounded number stay
//! open; the others are opened again and checked to be the same inode);
//! the worker that brings its last chunk sets its metadata on the
//! descriptor and renames it to its final name. Files are created with
//! their own permission bits when their owner stays, else 0600 until it is
//! set. A file that cannot be completed has its temporary name removed;
//! if its data is damaged or missing, whatever was at its final name is
//! removed too (it must not pass for the snapshot's file). Whatever is left
//! under a temporary name when the restore stops early (an error, an
//! interruption) is removed when this is dropped. Hard links are made
//! last, to the files put in place, and checked to be of that inode
//! ([`hardlinks`]).
//!
//! Before any of that, each file's name in the target is looked at
//! ([`existing`](super::existing)): one that already holds the snapshot's
//! content is left (its metadata set where it differs), one `--overwrite`
//! keeps is left as it is; their chunks are not read.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use super::cache::FdCache;
use super::data::BlobUse;
use super::dirfd::{self, Ident};
use super::dirs::Dirs;
use super::existing::{self, Verdict, Want};
use super::links::Link;
use super::meta::{self, Meta};
use super::{Overwrite, Problems};
use crate::format::tree::Node;
use crate::format::BlobId;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::{Error, Result};

mod hardlinks;

/// Temporary files kept open at once.
const OPEN_FILES: usize = 256;

// Where a file is (`state`): planned, then under its temporary name,
// then in place or gone.
const PLANNED: u8 = 0;
const TEMP: u8 = 1;
const DONE: u8 = 2;
const GONE: u8 = 3;
/// Something else is at its name, and `--overwrite` keeps it.
const KEPT: u8 = 4;

// Why a file failed (`failed`), once set never changed.
const OK: u8 = 0;
const LOCAL: u8 = 1;
const DAMAGE: u8 = 2;

struct Temp {
    name: CString,
    id: Ident,
    /// Its status when made (owner and mode: what need not be set).
    made: rustix::fs::Stat,
}

/// A regular file to write (or hard-link) in directory `dir`.
pub struct FilePlan {
    /// Its directory's number.
    pub dir: u32,
    /// Its name.
    pub name: Vec<u8>,
    /// Its size in bytes.
    pub size: u64,
    /// Its metadata.
    pub meta: Meta,
    /// Its chunks, in order (taken when the window's reads are planned).
    pub content: Vec<BlobId>,
    /// Its part in a hard-link group.
    pub link: Link,
}

impl FilePlan {
    /// What of `node` (in directory `dir`) the restore needs; a later name
    /// of a hard-linked inode needs no content.
    pub fn new(dir: u32, mut node: Node, link: Link) -> FilePlan {
        let content = match link {
            Link::To(_) => Vec::new(),
            _ => std::mem::take(&mut node.content),
        };
        FilePlan {
            dir,
            size: node.size,
            meta: Meta::take(&mut node),
            name: node.name,
            content,
            link,
        }
    }
}

/// What the files of a window came to.
pub struct Counts {
    /// In place (written, linked or unchanged).
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// In place already, not written.
    pub unchanged: u64,
    /// Something else kept at their names.
    pub kept: u64,
}

/// The files of a window, by index.
pub struct Files<'a> {
    plan: Vec<FilePlan>,
    dirs: &'a Dirs<'a>,
    mode: Overwrite,
    problems: &'a Problems,
    /// The inode at its name once it is in place (or kept).
    ids: Vec<OnceLock<Ident>>,
    unchanged: AtomicU64,
    kept: AtomicU64,
    /// The temporary name, once made (the lock also serializes making it).
    temps: Vec<Mutex<Option<Temp>>>,
    /// Chunks still to be written (or skipped) before the file is complete.
    remaining: Vec<AtomicU32>,
    state: Vec<AtomicU8>,
    failed: Vec<AtomicU8>,
    open: FdCache<Arc<File>>,
    files: AtomicU64,
    bytes: AtomicU64,
    progress: &'a Progress,
}

fn atomics<T>(n: usize, f: impl Fn() -> T) -> Vec<T> {
    (0..n).map(|_| f()).collect()
}

impl<'a> Files<'a> {
    /// The files of a window, nothing made yet.
    pub fn new(
        plan: Vec<FilePlan>,
        dirs: &'a Dirs<'a>,
        mode: Overwrite,
        problems: &'a Problems,
        progress: &'a Progress,
    ) -> Self {
        let n = plan.len();
        Files {
            plan,
            dirs,
            mode,
            problems,
            ids: atomics(n, OnceLock::new),
            unchanged: AtomicU64::new(0),
            kept: AtomicU64::new(0),
            temps: atomics(n, || Mutex::new(None)),
            remaining: atomics(n, || AtomicU32::new(0)),
            state: atomics(n, || AtomicU8::new(PLANNED)),
            failed: atomics(n, || AtomicU8::new(OK)),
            open: FdCache::new(OPEN_FILES),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            progress,
        }
    }

    /// Where problems go.
    pub fn problems(&self) -> &Problems {
        self.problems
    }

    fn path(&self, i: usize) -> PathBuf {
        let f = &self.plan[i];
        self.dirs.path_of(f.dir, &f.name)
    }

    /// What became of the files.
    pub fn counts(&self) -> Counts {
        Counts {
            files: self.files.load(Ordering::SeqCst),
            bytes: self.bytes.load(Ordering::SeqCst),
            unchanged: self.unchanged.load(Ordering::SeqCst),
            kept: self.kept.load(Ordering::SeqCst),
        }
    }

    /// Records that file `i` fails (reported once, with `why`).
    fn fail(&self, i: usize, kind: u8, why: String) {
        let first = self.failed[i]
            .compare_exchange(OK, kind, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if first {
            let msg = format!("{}: NOT restored ({why})", self.path(i).display());
            match kind {
                DAMAGE => self.problems.damage(msg),
                _ => self.problems.fail(msg),
            }
        }
    }

    /// File `i` cannot be restored because its data is missing: reported,
    /// and whatever is at its name removed.
    /// (What `--overwrite never` or `if-newer` keeps stays.)
    fn unrestorable(&self, i: usize, why: String) {
        self.fail(i, DAMAGE, why);
        self.state[i].store(GONE, Ordering::SeqCst);
        if let Ok(dir) = self.dirs.get(self.plan[i].dir) {
            let f = &self.plan[i];
            let kept = dirfd::cname(&f.name)
                .ok()
                .and_then(|n| dirfd::stat_at(dir.as_fd(), &n).ok().flatten())
                .is_some_and(|st| existing::keeps(self.mode, &st, f.meta.mtime_ns));
            if !kept {
                self.clear_name(i, dir.as_fd());
            }
        }
    }

    /// Removes what is at the final name of file `i` (not a directory):
    /// its data is damaged or missing, and nothing there may pass for it.
    fn clear_name(&self, i: usize, dir: BorrowedFd<'_>) {
        let f = &self.plan[i];
        let removed = dirfd::cname(&f.name).and_then(|n| dirfd::remove(dir, &n));
        match removed {
            Err(e) if !dirfd::is_dir_in_the_way(&e) => self.problems.fail(format!(
                "{}: cannot remove what is there: {e}",
                self.path(i).display()
            )),
            _ => {}
        }
    }

    /// Locates every chunk of every file of the window in the index, and
    /// takes the chunk lists: returns, for every blob needed, where it is
    /// and where it goes. Files with a chunk missing are reported and never
    /// created; files already in place, or kept by `--overwrite`, need
    /// nothing.
    pub fn locate(&mut self, repo: &Repository) -> Result<HashMap<BlobId, BlobUse>> {
        let mut uses: HashMap<BlobId, BlobUse> = HashMap::new();
        // One read transaction of the index for the window's look-ups.
        repo.index().share_lookups(true)?;
        let located = self.locate_chunks(repo, &mut uses);
        repo.index().share_lookups(false)?;
        let located = located?;
        // What is in the target already is read by the workers.
        let write: Vec<bool> = located
            .par_iter()
            .map(|(i, ids, lens)| self.needs_writing(repo, *i, ids, lens))
            .collect();
        crate::interrupt::check()?;
        for ((i, content, lens), write) in located.into_iter().zip(write) {
            if !write {
                continue;
            }
            let mut off = 0;
            for (id, len) in content.iter().zip(lens) {
                let u = uses.get_mut(id).expect("located above");
                u.targets.push((i as u32, off));
                off += len;
            }
            self.remaining[i].store(content.len() as u32, Ordering::SeqCst);
        }
        Ok(uses)
    }

    /// The chunks and their lengths of each file of the window that can be
    /// restored (the others reported), each blob located once in `uses`.
    #[allow(clippy::type_complexity)]
    fn locate_chunks(
        &mut self,
        repo: &Repository,
        uses: &mut HashMap<BlobId, BlobUse>,
    ) -> Result<Vec<(usize, Vec<BlobId>, Vec<u64>)>> {
        // (file, its chunks, their lengths) of the files located.
        let mut located = Vec::new();
        for i in 0..self.plan.len() {
            let f = &mut self.plan[i];
            if matches!(f.link, Link::To(_)) {
                continue;
            }
            let content = std::mem::take(&mut f.content);
            let size = f.size;
            let mut lens = Vec::with_capacity(content.len());
            let mut why = None;
            for id in &content {
                let len = match uses.get(id) {
                    Some(u) => u.loc.entry.raw_len,
                    None => match repo.locate(id) {
                        Ok(loc) => {
                            let len = loc.entry.raw_len;
                            uses.insert(*id, BlobUse::new(loc));
                            len
                        }
                        Err(Error::Missing { .. }) => {
                            why = Some(format!("data blob {} is missing", id.short()));
                            break;
                        }
                        Err(e) => return Err(e),
                    },
                };
                lens.push(len as u64);
            }
            let total: u64 = lens.iter().sum();
            if why.is_none() && total != size {
                why = Some(format!(
                    "chunk sizes add up to {total}, not the recorded size {size}"
                ));
            }
            if let Some(why) = why {
                self.unrestorable(i, why);
                continue;
            }
            located.push((i, content, lens));
        }
        Ok(located)
    }

    /// Whether file `i` is to be written: else it is in place already (its
    /// metadata set here) or kept by `--overwrite`.
    fn needs_writing(&self, repo: &Repository, i: usize, ids: &[BlobId], lens: &[u64]) -> bool {
        let f = &self.plan[i];
        if self.mode == Overwrite::Always || self.dirs.made_here(f.dir) {
            return true; // nothing there to keep, or nothing there
        }
        let (Ok(dir), Ok(name)) = (self.dirs.get(f.dir), dirfd::cname(&f.name)) else {
            return true; // the write reports it
        };
        let want = Want {
            size: f.size,
            mtime_ns: f.meta.mtime_ns,
            ids,
            lens,
            linked: matches!(f.link, Link::First(_)),
        };
        match existing::judge(repo.key(), dir.as_fd(), &name, &want, self.mode) {
            Verdict::Write => true,
            Verdict::Unchanged { file, st } => {
                match existing::fix(file.as_fd(), &f.meta, &st) {
                    Ok(()) => {
                        let _ = self.ids[i].set(dirfd::ident(&st));
                        self.state[i].store(DONE, Ordering::SeqCst);
                        self.files.fetch_add(1, Ordering::SeqCst);
                        self.unchanged.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        self.fail(i, LOCAL, format!("cannot set its metadata: {e}"));
                        self.state[i].store(GONE, Ordering::SeqCst);
                    }
                }
                false
            }
            Verdict::Kept(st) => {
                if dirfd::is_file(&st) {
                    let _ = self.ids[i].set(dirfd::ident(&st));
                }
                self.state[i].store(KEPT, Ordering::SeqCst);
                self.kept.fetch_add(1, Ordering::SeqCst);
                false
            }
        }
    }

    /// Puts in place at once the files without chunks.
    pub fn prepare(&self) -> Result<()> {
        for (i, f) in self.plan.iter().enumerate() {
            if matches!(f.link, Link::To(_))
                || self.state[i].load(Ordering::SeqCst) != PLANNED
                || self.remaining[i].load(Ordering::SeqCst) != 0
            {
                continue;
            }
            crate::interrupt::check()?;
            self.finish(i);
        }
        Ok(())
    }

    /// File `i`, open for writing: made under a temporary name the first
    /// time, else held open or opened again (and checked).
    fn handle(&self, i: usize, dir: BorrowedFd<'_>) -> io::Result<Arc<File>> {
        if let Some(f) = self.open.get(i as u32) {
            return Ok(f);
        }
        let mut slot = self.temps[i].lock().unwrap();
        if let Some(f) = self.open.get(i as u32) {
            return Ok(f); // made by another worker meanwhile
        }
        let file = match &*slot {
            Some(t) => dirfd::reopen_temp(dir, &t.name, t.id)?,
            None => {
                let f = &self.plan[i];
                dirfd::cname(&f.name)?;
                let mode = meta::creation_mode(&f.meta);
                let (file, name, made) = dirfd::create_temp(dir, &f.name, mode)?;
                let id = dirfd::ident(&made);
                *slot = Some(Temp { name, id, made });
                self.state[i].store(TEMP, Ordering::SeqCst);
                // At full length: one hole, where the zero chunks (never
                // written) stay.
                file.set_len(f.size)?;
                file
            }
        };
        let file = Arc::new(file);
        self.open.put(i as u32, file.clone());
        Ok(file)
    }

    /// Writes a verified chunk of file `i` at `off`.
    pub fn write_chunk(&self, i: usize, data: &[u8], off: u64) {
        if self.failed[i].load(Ordering::SeqCst) != OK {
            return;
        }
        let Ok(dir) = self.dirs.get(self.plan[i].dir) else {
            // Reported for the directory.
            let _ = self.failed[i].compare_exchange(OK, LOCAL, Ordering::SeqCst, Ordering::SeqCst);
            return;
        };
        self.progress
            .item_started(|| self.path(i).display().to_string());
        let size = self.plan[i].size;
        if off == 0 && data.len() as u64 == size {
            // Its one chunk: made, written and named here at once.
            if let Some(r) = self.write_whole(i, dir.as_fd(), data) {
                match r {
                    Ok(()) => self.progress.bytes_done(data.len() as u64),
                    Err(why) => self.fail(i, LOCAL, why),
                }
                return;
            }
        }
        let written = self
            .handle(i, dir.as_fd())
            .and_then(|f| write_skipping_zeros(&f, data, off, size))
            .map_err(|e| format!("cannot write it: {e}"))
            .and_then(|()| after_write().map_err(|e| e.to_string()));
        match written {
            Ok(()) => self.progress.bytes_done(data.len() as u64),
            Err(why) => self.fail(i, LOCAL, why),
        }
    }

    /// Restores file `i` of one chunk, `data`: made without a name, written,
    /// given its metadata and only then named, so that nothing is ever
    /// under a temporary name (`None`: the file system cannot; a named
    /// temporary file is made instead).
    fn write_whole(
        &self,
        i: usize,
        dir: BorrowedFd<'_>,
        data: &[u8],
    ) -> Option<Result<(), String>> {
        let f = &self.plan[i];
        let made = dirfd::create_unnamed(dir, meta::creation_mode(&f.meta)).transpose()?;
        let written = made
            .map_err(|e| format!("cannot write it: {e}"))
            .and_then(|(file, st)| {
                write_skipping_zeros(&file, data, 0, f.size)
                    .map_err(|e| format!("cannot write it: {e}"))?;
                after_write().map_err(|e| e.to_string())?;
                meta::set_differing(file.as_fd(), &f.meta, &st, true).map_err(|e| e.to_string())?;
                dirfd::cname(&f.name)
                    .and_then(|name| dirfd::link_unnamed(file.as_fd(), dir, &name, &f.name))
                    .map_err(|e| {
                        if dirfd::is_dir_in_the_way(&e) {
                            "a directory is in its place in the target: move it away".to_string()
                        } else {
                            e.to_string()
                        }
                    })?;
                let _ = self.ids[i].set(dirfd::ident(&st));
                self.state[i].store(DONE, Ordering::SeqCst);
                Ok(())
            });
        Some(written)
    }

    /// A chunk of file `i` cannot be had (damaged data, a storage error).
    pub fn lose_chunk(&self, i: usize, damage: bool, why: &str) {
        self.fail(i, if damage { DAMAGE } else { LOCAL }, why.to_string());
    }

    /// One chunk of file `i` is done with (written, skipped or lost); the
    /// last one completes the file.
    pub fn chunk_done(&self, i: usize) {
        if self.remaining[i].fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish(i);
        }
    }

    /// Puts file `i` in place (metadata on the descriptor, then rename), or
    /// removes its temporary name if it failed.
    fn finish(&self, i: usize) {
        let f = &self.plan[i];
        if self.state[i].load(Ordering::SeqCst) == DONE {
            return self.placed(i); // written whole (`write_whole`)
        }
        let Ok(dir) = self.dirs.get(f.dir) else {
            self.open.remove(i as u32);
            return;
        };
        let dir = dir.as_fd();
        if self.failed[i].load(Ordering::SeqCst) == OK {
            let placed = self.handle(i, dir).and_then(|file| {
                let slot = self.temps[i].lock().unwrap();
                let t = slot.as_ref().expect("made by handle");
                meta::set_differing(file.as_fd(), &f.meta, &t.made, true)?;
                self.open.remove(i as u32);
                drop(file);
                dirfd::rename(dir, &t.name, &dirfd::cname(&f.name)?)
            });
            match placed {
                Ok(()) => {
                    if let Some(t) = self.temps[i].lock().unwrap().as_ref() {
                        let _ = self.ids[i].set(t.id);
                    }
                    self.state[i].store(DONE, Ordering::SeqCst);
                    return self.placed(i);
                }
                Err(e) if dirfd::is_dir_in_the_way(&e) => self.fail(
                    i,
                    LOCAL,
                    "a directory is in its place in the target: move it away".into(),
                ),
                Err(e) => self.fail(i, LOCAL, e.to_string()),
            }
        }
        self.open.remove(i as u32);
        if let Some(t) = self.temps[i].lock().unwrap().as_ref() {
            let _ = dirfd::remove(dir, &t.name);
        }
        self.state[i].store(GONE, Ordering::SeqCst);
        self.progress.file_done();
        self.progress
            .verbose(1, || format!("not restored {}", self.path(i).display()));
        if self.failed[i].load(Ordering::SeqCst) == DAMAGE {
            self.clear_name(i, dir);
        }
    }
}

impl Files<'_> {
    /// File `i` is in place: counted and reported.
    fn placed(&self, i: usize) {
        self.files.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(self.plan[i].size, Ordering::SeqCst);
        self.progress.file_done();
        self.progress
            .verbose(1, || format!("restored {}", self.path(i).display()));
    }
}

impl Drop for Files<'_> {
    /// Removes the temporary names of files not completed (the restore
    /// stopped early).
    fn drop(&mut self) {
        for (i, t) in self.temps.iter_mut().enumerate() {
            let t = t.get_mut().unwrap_or_else(|p| p.into_inner());
            if let (Some(t), TEMP) = (t, self.state[i].load(Ordering::SeqCst)) {
                self.open.remove(i as u32);
                if let Ok(dir) = self.dirs.get(self.plan[i].dir) {
                    let _ = dirfd::remove(dir.as_fd(), &t.name);
                }
            }
        }
    }
}

fn after_write() -> Result<()> {
    failpoint!("restore.after_write");
    Ok(())
}

/// Writes `data` at `off` of a file of `size` bytes, leaving out the
/// file-system blocks (4 KiB, aligned to the file) that are all zero: they
/// stay holes, unallocated, and read back as zeros. A file written whole
/// (`write_whole`) was made empty: the write extends it, or, if its end is
/// left out, sets its length. Skipping only whole zero chunks would
/// allocate the zeros around the data of a sparse file (a chunk is up to
/// `max` bytes).
fn write_skipping_zeros(f: &File, data: &[u8], off: u64, size: u64) -> io::Result<()> {
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
    match run {
        Some(start) => f.write_all_at(&data[start..], off + start as u64),
        None if off + data.len() as u64 == size => f.set_len(size),
        None => Ok(()),
    }
}
