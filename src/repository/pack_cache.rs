//! Local copies of tree packs, for repositories on object stores.
//!
//! Every command that walks snapshots reads every tree it meets: an
//! unchanged re-backup reads its parent's listings, `restore`, `ls`,
//! `check` and `prune` read all of a snapshot's. On an object store one
//! ranged GET per tree makes the number of requests (and the time) grow
//! with the number of directories. Tree packs hold listings only, not file
//! data, so they are small: a tree pack is fetched whole, once, into the
//! per-user cache (`CACHE/ID/packs/`), and every tree blob in it is read
//! from there. Packs this machine writes are put in the cache as they are
//! uploaded, so its own backups never download their listings again.
//!
//! The cache is never trusted: a blob read from a copy is authenticated
//! and checked against its id like any other (by the caller, which on a
//! failure deletes the copy with [`PackCache::evict`] and reads the blob
//! from storage, so damage in the cache is never taken for damage of the
//! repository). Copies of packs that storage no longer lists are removed
//! when the index is reconciled ([`PackCache::retain`]). Repositories on a
//! local path have no such cache: reading a range of a local file is what
//! the cache would do.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::backend::{Backend, FileKind};
use crate::format::PackId;
use crate::Result;

/// The cache directory of tree packs (or none, for local repositories).
#[derive(Debug)]
pub struct PackCache {
    dir: Option<PathBuf>,
    /// Copies made before this process are not used ([`PackCache::refetch`]).
    refetch: AtomicBool,
    /// Packs fetched by this process.
    fetched: Mutex<HashSet<PackId>>,
}

impl PackCache {
    /// A cache in `dir`, or a disabled one.
    pub fn new(dir: Option<PathBuf>) -> PackCache {
        PackCache {
            dir,
            refetch: AtomicBool::new(false),
            fetched: Mutex::new(HashSet::new()),
        }
    }

    /// From now on, a copy made before this process is fetched again
    /// before it is used (once per pack): for `check`, which must judge
    /// what storage holds, not what was once copied from it.
    pub fn refetch(&self) {
        self.refetch.store(true, Ordering::Relaxed);
    }

    fn must_fetch(&self, pack: &PackId) -> bool {
        self.refetch.load(Ordering::Relaxed)
            && !self
                .fetched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(pack)
    }

    /// Whether tree blobs are read through the cache.
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    fn path(&self, pack: &PackId) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(pack.to_hex()))
    }

    /// `len` bytes at `offset` of `pack`, from the local copy, which is
    /// fetched whole first if there is none. `Ok(None)`: the cache cannot
    /// serve it (no space, a short copy); read from storage instead. An
    /// error is storage's, from fetching the pack (a lost pack: NotFound).
    pub fn read_range(
        &self,
        backend: &dyn Backend,
        pack: &PackId,
        offset: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>> {
        let Some(path) = self.path(pack) else {
            return Ok(None);
        };
        let cached = match self.must_fetch(pack) {
            true => None,
            false => File::open(&path).ok(),
        };
        let file = match cached {
            Some(f) => f,
            None => {
                let bytes = backend.read(FileKind::Pack, &pack.to_hex())?;
                self.fetched
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(*pack);
                let range = usize::try_from(offset)
                    .ok()
                    .and_then(|s| Some(s..s.checked_add(usize::try_from(len).ok()?)?))
                    .and_then(|r| bytes.get(r).map(<[u8]>::to_vec));
                // Best effort: without a copy the next read fetches again.
                let _ = self.store(&path, &bytes);
                return Ok(range);
            }
        };
        let mut buf = vec![0u8; len as usize];
        match file.read_exact_at(&mut buf, offset) {
            Ok(()) => Ok(Some(buf)),
            Err(_) => {
                self.evict(pack);
                Ok(None)
            }
        }
    }

    /// Writes a copy under a temporary name, then renames it into place,
    /// so that a copy is never seen half written.
    fn store(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().expect("a cache file has a directory");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let written = File::create(&tmp).and_then(|mut f| f.write_all(bytes));
        match written.and_then(|_| std::fs::rename(&tmp, path)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Keeps a copy of a pack just uploaded from the local file `local`.
    pub fn insert_file(&self, pack: &PackId, local: &Path) {
        let Some(path) = self.path(pack) else {
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // The staging file lives in the same cache: a hard link costs no
        // copy. Else copy; a failure only costs a download later.
        if std::fs::hard_link(local, &path).is_err() && !path.exists() {
            if let Ok(bytes) = std::fs::read(local) {
                let _ = self.store(&path, &bytes);
            }
        }
    }

    /// Deletes the copy of `pack` (one that failed verification).
    pub fn evict(&self, pack: &PackId) {
        if let Some(p) = self.path(pack) {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Removes every copy of a pack not in `present` (storage's listing),
    /// and temporary files left by a killed process.
    pub fn retain(&self, present: &HashSet<PackId>) {
        let Some(dir) = &self.dir else {
            return;
        };
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let keep = name
                .to_str()
                .and_then(PackId::from_hex)
                .is_some_and(|id| present.contains(&id));
            let fresh_tmp = name.to_string_lossy().starts_with(".tmp-")
                && e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() < 3600);
            if !keep && !fresh_tmp {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
