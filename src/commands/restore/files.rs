//! The regular files of a restore, each under a temporary name in its
//! directory until it is complete.
//!
//! A file is created (`O_CREAT | O_EXCL`, 0600, at full length: one hole)
//! by the worker that brings its first chunk, and stays open while its
//! chunks come (a bounded number stay open; the others are opened again
//! and checked to be the same inode); the worker that brings its last
//! chunk sets its metadata on the descriptor and renames it to its final
//! name. A file that cannot be completed has its temporary name removed;
//! if its data is damaged or missing, whatever was at its final name is
//! removed too (it must not pass for the snapshot's file). Whatever is left
//! under a temporary name when the restore stops early (an error, an
//! interruption) is removed when this is dropped. Hard links are made
//! last, to the files put in place, and checked to be of that inode.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use super::cache::FdCache;
use super::dirfd::{self, Ident};
use super::dirs::Dirs;
use super::plan::Plan;
use super::{meta, Problems};
use crate::format::BlobId;
use crate::index::BlobLocation;
use crate::repository::Repository;
use crate::{Error, Result};

/// Temporary files kept open at once.
const OPEN_FILES: usize = 256;

// Where a file is (`state`): planned, then under its temporary name,
// then in place or gone.
const PLANNED: u8 = 0;
const TEMP: u8 = 1;
const DONE: u8 = 2;
const GONE: u8 = 3;

// Why a file failed (`failed`), once set never changed.
const OK: u8 = 0;
const LOCAL: u8 = 1;
const DAMAGE: u8 = 2;

struct Temp {
    name: CString,
    id: Ident,
}

/// The files of a plan, by index.
pub struct Files<'a> {
    plan: &'a Plan,
    dirs: &'a Dirs<'a>,
    problems: &'a Problems,
    /// The temporary name, once made (the lock also serializes making it).
    temps: Vec<Mutex<Option<Temp>>>,
    /// Chunks still to be written (or skipped) before the file is complete.
    remaining: Vec<AtomicU32>,
    state: Vec<AtomicU8>,
    failed: Vec<AtomicU8>,
    open: FdCache<Arc<File>>,
    files: AtomicU64,
    bytes: AtomicU64,
}

fn atomics<T>(n: usize, f: impl Fn() -> T) -> Vec<T> {
    (0..n).map(|_| f()).collect()
}

impl<'a> Files<'a> {
    /// The files of `plan`, nothing made yet.
    pub fn new(plan: &'a Plan, dirs: &'a Dirs<'a>, problems: &'a Problems) -> Self {
        let n = plan.files.len();
        Files {
            plan,
            dirs,
            problems,
            temps: atomics(n, || Mutex::new(None)),
            remaining: atomics(n, || AtomicU32::new(0)),
            state: atomics(n, || AtomicU8::new(PLANNED)),
            failed: atomics(n, || AtomicU8::new(OK)),
            open: FdCache::new(OPEN_FILES),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Where problems go.
    pub fn problems(&self) -> &Problems {
        self.problems
    }

    fn path(&self, i: usize) -> PathBuf {
        let f = &self.plan.files[i];
        self.plan.path_of(f.dir, &f.node.name)
    }

    /// Files put in place (hard links included) and their bytes.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.files.load(Ordering::SeqCst),
            self.bytes.load(Ordering::SeqCst),
        )
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
    fn unrestorable(&self, i: usize, why: String) {
        self.fail(i, DAMAGE, why);
        self.state[i].store(GONE, Ordering::SeqCst);
        if let Ok(dir) = self.dirs.get(self.plan.files[i].dir) {
            self.clear_name(i, dir.as_fd());
        }
    }

    /// Removes what is at the final name of file `i` (not a directory):
    /// its data is damaged or missing, and nothing there may pass for it.
    fn clear_name(&self, i: usize, dir: BorrowedFd<'_>) {
        let f = &self.plan.files[i];
        let removed = dirfd::cname(&f.node.name).and_then(|n| dirfd::remove(dir, &n));
        match removed {
            Err(e) if !dirfd::is_dir_in_the_way(&e) => self.problems.fail(format!(
                "{}: cannot remove what is there: {e}",
                self.path(i).display()
            )),
            _ => {}
        }
    }

    /// Locates every chunk of every file in the index; files with a chunk
    /// missing (and hard links to them) are reported and never created.
    pub fn locate(&mut self, repo: &Repository) -> Result<HashMap<BlobId, BlobLocation>> {
        let mut locations: HashMap<BlobId, BlobLocation> = HashMap::new();
        for (i, f) in self.plan.files.iter().enumerate() {
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
                self.unrestorable(i, why);
            }
        }
        for (i, f) in self.plan.files.iter().enumerate() {
            if let Some(first) = f.link_to {
                if self.failed[first].load(Ordering::SeqCst) == DAMAGE {
                    let why = format!(
                        "hard link to {}, which is damaged",
                        self.path(first).display()
                    );
                    self.unrestorable(i, why);
                }
            }
        }
        Ok(locations)
    }

    /// Counts the chunks each file waits for; files without chunks are
    /// made and put in place at once.
    pub fn prepare(&self) -> Result<()> {
        for (i, f) in self.plan.files.iter().enumerate() {
            if f.link_to.is_some() || self.state[i].load(Ordering::SeqCst) != PLANNED {
                continue;
            }
            let chunks = f.node.content.len() as u32;
            self.remaining[i].store(chunks, Ordering::SeqCst);
            if chunks == 0 {
                crate::interrupt::check()?;
                self.finish(i);
            }
        }
        Ok(())
    }

    /// Files waiting for chunks, with their chunk ids.
    pub fn waiting(&self) -> impl Iterator<Item = (usize, &[BlobId])> {
        self.plan.files.iter().enumerate().filter_map(|(i, f)| {
            (f.link_to.is_none()
                && self.state[i].load(Ordering::SeqCst) == PLANNED
                && !f.node.content.is_empty())
            .then_some((i, f.node.content.as_slice()))
        })
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
                let node = &self.plan.files[i].node;
                dirfd::cname(&node.name)?;
                let (file, name, id) = dirfd::create_temp(dir, &node.name)?;
                *slot = Some(Temp { name, id });
                self.state[i].store(TEMP, Ordering::SeqCst);
                file.set_len(node.size)?;
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
        let Ok(dir) = self.dirs.get(self.plan.files[i].dir) else {
            // Reported for the directory.
            let _ = self.failed[i].compare_exchange(OK, LOCAL, Ordering::SeqCst, Ordering::SeqCst);
            return;
        };
        let written = self
            .handle(i, dir.as_fd())
            .and_then(|f| write_skipping_zeros(&f, data, off))
            .map_err(|e| format!("cannot write it: {e}"))
            .and_then(|()| after_write().map_err(|e| e.to_string()));
        if let Err(why) = written {
            self.fail(i, LOCAL, why);
        }
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
        let f = &self.plan.files[i];
        let Ok(dir) = self.dirs.get(f.dir) else {
            self.open.remove(i as u32);
            return;
        };
        let dir = dir.as_fd();
        if self.failed[i].load(Ordering::SeqCst) == OK {
            let placed = self.handle(i, dir).and_then(|file| {
                meta::set_all(file.as_fd(), &f.node)?;
                self.open.remove(i as u32);
                drop(file);
                let slot = self.temps[i].lock().unwrap();
                let tmp = &slot.as_ref().expect("made by handle").name;
                dirfd::rename(dir, tmp, &dirfd::cname(&f.node.name)?)
            });
            match placed {
                Ok(()) => {
                    self.state[i].store(DONE, Ordering::SeqCst);
                    self.files.fetch_add(1, Ordering::SeqCst);
                    self.bytes.fetch_add(f.node.size, Ordering::SeqCst);
                    return;
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
        if self.failed[i].load(Ordering::SeqCst) == DAMAGE {
            self.clear_name(i, dir);
        }
    }

    /// Makes every hard link to a file put in place.
    pub fn link_all(&self) -> Result<()> {
        for (i, f) in self.plan.files.iter().enumerate() {
            let Some(first) = f.link_to else {
                continue;
            };
            if self.state[i].load(Ordering::SeqCst) == GONE {
                continue;
            }
            crate::interrupt::check()?;
            if self.state[first].load(Ordering::SeqCst) != DONE {
                let kind = match self.failed[first].load(Ordering::SeqCst) {
                    DAMAGE => DAMAGE,
                    _ => LOCAL,
                };
                let why = format!(
                    "hard link to {}, which was not restored",
                    self.path(first).display()
                );
                self.fail(i, kind, why);
                self.state[i].store(GONE, Ordering::SeqCst);
                if kind == DAMAGE {
                    if let Ok(dir) = self.dirs.get(f.dir) {
                        self.clear_name(i, dir.as_fd());
                    }
                }
                continue;
            }
            let from = &self.plan.files[first];
            let Ok(dir) = self.dirs.get(f.dir) else {
                continue; // reported for its directory
            };
            let Ok(from_dir) = self.dirs.get(from.dir) else {
                let why = format!(
                    "hard link to {}, whose directory was replaced",
                    self.path(first).display()
                );
                self.fail(i, LOCAL, why);
                continue;
            };
            let id = self.temps[first].lock().unwrap().as_ref().expect("made").id;
            let dir = dir.as_fd();
            let linked = dirfd::cname(&from.node.name)
                .and_then(|from| dirfd::link_temp(from_dir.as_fd(), &from, dir, &f.node.name, id))
                .and_then(|tmp| {
                    let r = dirfd::cname(&f.node.name).and_then(|n| dirfd::rename(dir, &tmp, &n));
                    if r.is_err() {
                        let _ = dirfd::remove(dir, &tmp);
                    }
                    r
                });
            match linked {
                Ok(()) => {
                    self.state[i].store(DONE, Ordering::SeqCst);
                    self.files.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => self.fail(
                    i,
                    LOCAL,
                    format!("cannot hard-link it to {}: {e}", self.path(first).display()),
                ),
            }
        }
        Ok(())
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
                if let Ok(dir) = self.dirs.get(self.plan.files[i].dir) {
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

/// Writes `data` at `off`, leaving out the file-system blocks (4 KiB,
/// aligned to the file) that are all zero: the file was created at full
/// length as one hole, so they read back as zeros and stay unallocated.
/// Skipping only whole zero chunks would allocate the zeros around the data
/// of a sparse file (a chunk is up to `max` bytes).
fn write_skipping_zeros(f: &File, data: &[u8], off: u64) -> io::Result<()> {
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
