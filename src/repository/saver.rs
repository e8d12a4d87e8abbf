//! Saving blobs in parallel: callers hash and deduplicate, worker threads
//! compress, encrypt and append to packs; a full pack goes to the publisher
//! thread, which finishes it (header, fsync), stores and indexes it, so that
//! the workers compress on while a pack is made durable. Small blobs go to
//! the workers in batches (one wake-up per batch). Memory is bounded by
//! the queue length times the larger of a chunk and a batch, plus the ids
//! of the blobs queued and not yet indexed (at most the open packs' worth),
//! plus 8 bytes per indexed blob once the prefix filter is loaded.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::packer::{FinishedPack, OpenPack};
use super::Repository;
use crate::backend::FileKind;
use crate::format::{BlobId, BlobKind};
use crate::pipeline::compress;
use crate::{Error, Result};

struct Job {
    kind: BlobKind,
    id: BlobId,
    data: Vec<u8>,
}

/// What goes through the queue to the workers: one large blob, or many
/// small ones (a small file each): one wake-up of a worker per message,
/// not per blob (300,000 small files gave 100,000 context switches a
/// second).
type Batch = Vec<Job>;

/// Blobs smaller than this are gathered into batches ...
const BATCH_BLOB_BELOW: usize = 64 << 10;
/// ... of up to this many bytes ...
const BATCH_BYTES: usize = 512 << 10;
/// ... or this many blobs.
const BATCH_BLOBS: usize = 128;

/// Small blobs gathered for the next batch, and their bytes.
#[derive(Default)]
struct Gathering {
    jobs: Batch,
    bytes: usize,
}

/// Counters of what was added.
#[derive(Default, Debug)]
pub struct SaveStats {
    /// New blobs stored.
    pub blobs: AtomicU64,
    /// Bytes stored (encrypted blobs, headers and trailers).
    pub bytes: AtomicU64,
    /// Packs written.
    pub packs: AtomicU64,
}

struct Shared {
    repo: Arc<Repository>,
    staging: PathBuf,
    open: [Mutex<Option<OpenPack>>; 2],
    stats: SaveStats,
    /// The first error of a worker (taken when reported) ...
    error: Mutex<Option<Error>>,
    /// ... and that there was one: the run has failed.
    stopped: std::sync::atomic::AtomicBool,
    /// What this run may reference without asking the index.
    dedup: Mutex<Dedup>,
}

/// The saver's own knowledge for deduplication: the blobs it queued that
/// are not indexed yet, and the prefix filter of absent blobs.
#[derive(Default)]
struct Dedup {
    /// Blobs this run queued whose pack is not indexed yet; a blob leaves
    /// when its pack is indexed (the index answers for it from then on), so
    /// this holds at most the open packs' and the queue's blobs.
    queued: HashSet<BlobId>,
    /// Index look-ups so far, until the filter is loaded.
    lookups: u64,
    /// Loaded after [`FILTER_AFTER_LOOKUPS`]; `Some(None)` when the index
    /// is too large for one.
    filter: Option<Option<PrefixFilter>>,
}

/// The first 8 bytes of every indexed blob id: a prefix not in it is a
/// blob the index does not hold. Packs this run indexes are added to it.
struct PrefixFilter {
    sorted: Vec<u64>,
    /// Added since the last merge into `sorted`.
    recent: HashSet<u64>,
}

/// `recent` is merged into the sorted list when it grows past this.
const FILTER_MERGE_AT: usize = 1 << 16;

impl PrefixFilter {
    fn may_hold(&self, id: &BlobId) -> bool {
        let p = prefix(id);
        self.recent.contains(&p) || self.sorted.binary_search(&p).is_ok()
    }

    fn add(&mut self, id: &BlobId) {
        self.recent.insert(prefix(id));
        if self.recent.len() >= FILTER_MERGE_AT {
            self.sorted.extend(self.recent.drain());
            self.sorted.sort_unstable();
            self.sorted.dedup();
        }
    }
}

/// A handle to save blobs; `finish` must be called to make them durable.
pub struct BlobSaver {
    shared: Arc<Shared>,
    tx: Option<Sender<Batch>>,
    /// Small blobs waiting to go as one batch (sent by `finish`, dropped
    /// with the saver otherwise).
    gathering: Mutex<Gathering>,
    workers: Vec<JoinHandle<()>>,
    /// Full packs, to the publisher (the last ones at `finish`).
    full_packs: Option<Sender<OpenPack>>,
    publisher: Option<JoinHandle<()>>,
    /// Packs a prune in progress may delete: blobs found only there count
    /// as absent (see `repository::locks`).
    excluded_packs: HashSet<crate::format::PackId>,
    /// Stores nothing (`dry_run`).
    dry: bool,
}

/// The error of every call after the workers' first error was reported.
fn stopped() -> Error {
    Error::Internal("the blob workers stopped after an earlier error".into())
}

/// The error of a worker thread that panicked.
fn panicked(p: Box<dyn std::any::Any + Send>) -> Error {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into());
    Error::Internal(format!(
        "internal error, please report it: a blob worker thread panicked: {msg}"
    ))
}

/// After this many index look-ups in one run, a sorted list of id prefixes
/// of the whole index is loaded, so that new blobs (the common case of a
/// first backup of many small files) are recognised without SQLite. Blobs
/// added by a concurrent writer after the list was loaded may then be
/// stored twice: harmless, and prune removes the copy.
const FILTER_AFTER_LOOKUPS: u64 = 2000;
/// Indexes larger than this keep point look-ups (8 bytes per blob).
const FILTER_MAX_BLOBS: u64 = 32 << 20;

fn prefix(id: &BlobId) -> u64 {
    u64::from_le_bytes(id.0[..8].try_into().unwrap())
}

impl Shared {
    /// What the run knows for deduplication (a panic while it was held
    /// failed the run).
    fn dedup(&self) -> MutexGuard<'_, Dedup> {
        self.dedup.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open pack of a kind. A worker that panicked while holding it
    /// failed the run; the pack is then only ever abandoned.
    fn slot(&self, kind: BlobKind) -> MutexGuard<'_, Option<OpenPack>> {
        self.open[kind.code() as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, e: Error) {
        let mut g = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if !self.stopped.swap(true, Ordering::SeqCst) {
            *g = Some(e);
        }
    }

    fn failed(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn store(&self, job: Job, full_packs: &Sender<OpenPack>) -> Result<()> {
        #[cfg(test)]
        if job.data == tests::PANIC_ON {
            panic!("injected panic");
        }
        let level = self.repo.config().compression_level;
        let (comp, stored) = compress::compress(&job.data, level);
        let sealed = self
            .repo
            .cipher
            .seal_blob(job.kind.code(), &job.id, &stored);
        drop(stored);
        let full = {
            let mut slot = self.slot(job.kind);
            if slot.is_none() {
                *slot = Some(OpenPack::create(&self.staging, job.kind)?);
            }
            let p = slot.as_mut().unwrap();
            p.add(job.id, comp, job.data.len() as u32, &sealed)?;
            if p.len() >= self.repo.config().pack_size {
                slot.take()
            } else {
                None
            }
        };
        if let Some(p) = full {
            full_packs.send(p).map_err(|_| stopped())?;
        }
        Ok(())
    }

    /// The publisher thread: finishes and publishes full packs in turn.
    fn publish_all(&self, full_packs: Receiver<OpenPack>) {
        for p in full_packs {
            if self.failed() {
                p.abandon();
                continue;
            }
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                self.publish(p.finish(self.repo.key())?)
            }));
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => self.fail(e),
                Err(p) => self.fail(panicked(p)),
            }
        }
    }

    fn publish(&self, p: FinishedPack) -> Result<()> {
        // Kept before the upload, which may move the file away.
        self.repo.keep_tree_pack(&p.id, p.kind, &p.path);
        self.repo
            .backend()
            .put_file(FileKind::Pack, &p.id.to_hex(), &p.path)?;
        failpoint!("create.pack_uploaded");
        self.repo
            .index()
            .add_pack(&p.id, p.kind, p.size, &p.entries)?;
        failpoint!("create.pack_indexed");
        // The index answers for these blobs now (in the filter first, so
        // that no look-up between the two steps misses them).
        let mut dedup = self.dedup();
        let dedup = &mut *dedup;
        for e in &p.entries {
            if let Some(Some(f)) = dedup.filter.as_mut() {
                f.add(&e.id);
            }
            dedup.queued.remove(&e.id);
        }
        self.stats.bytes.fetch_add(p.size, Ordering::Relaxed);
        self.stats.packs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl BlobSaver {
    /// Starts `threads` workers.
    pub fn new(repo: Arc<Repository>, threads: usize) -> Result<BlobSaver> {
        let staging = match repo.backend().staging_dir() {
            Some(d) => d,
            None => repo.cache_dir().join("staging"),
        };
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        super::tmp::clean_stale(&staging);
        let shared = Arc::new(Shared {
            repo,
            staging,
            open: [Mutex::new(None), Mutex::new(None)],
            stats: SaveStats::default(),
            error: Mutex::new(None),
            stopped: Default::default(),
            dedup: Default::default(),
        });
        let threads = threads.max(1);
        let (tx, rx) = bounded::<Batch>(threads * 2);
        // Two full packs may wait for the publisher (staging space).
        let (full_tx, full_rx) = bounded::<OpenPack>(2);
        let publisher = {
            let sh = shared.clone();
            std::thread::spawn(move || sh.publish_all(full_rx))
        };
        let workers = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                let sh = shared.clone();
                let full_packs = full_tx.clone();
                std::thread::spawn(move || {
                    for job in rx.into_iter().flatten() {
                        if sh.failed() {
                            continue; // drain without work after a failure
                        }
                        // A panic is a failure of the run like any other: a
                        // lost job must never let a snapshot reference a
                        // blob that was not stored.
                        match std::panic::catch_unwind(AssertUnwindSafe(|| {
                            sh.store(job, &full_packs)
                        })) {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => sh.fail(e),
                            Err(p) => sh.fail(panicked(p)),
                        }
                    }
                })
            })
            .collect();
        // One read transaction for the many lookups of a run (see there).
        shared.repo.index().share_lookups(true)?;
        Ok(BlobSaver {
            shared,
            tx: Some(tx),
            gathering: Mutex::default(),
            workers,
            full_packs: Some(full_tx),
            publisher: Some(publisher),
            excluded_packs: HashSet::new(),
            dry: false,
        })
    }

    /// A saver that stores nothing (`create --dry-run`): `save` answers
    /// as if it stored each new blob (counting it, with its plaintext size
    /// in `bytes`), and nothing is written anywhere, not even staging.
    pub fn dry_run(repo: Arc<Repository>) -> BlobSaver {
        BlobSaver {
            shared: Arc::new(Shared {
                staging: PathBuf::new(),
                repo,
                open: [Mutex::new(None), Mutex::new(None)],
                stats: SaveStats::default(),
                error: Mutex::new(None),
                stopped: Default::default(),
                dedup: Default::default(),
            }),
            tx: None,
            gathering: Mutex::default(),
            workers: Vec::new(),
            full_packs: None,
            publisher: None,
            excluded_packs: HashSet::new(),
            dry: true,
        }
    }

    /// Treats blobs stored only in these packs as absent: they are stored
    /// again rather than deduplicated (the prune protocol's exclusion set).
    pub fn exclude_packs(&mut self, packs: HashSet<crate::format::PackId>) {
        self.excluded_packs = packs;
    }

    /// The one answer to "may this run reference these blobs?", for new
    /// chunks, the parent's chunks of unchanged files and trees alike: yes
    /// for a blob this run stores itself (queued), or one the index holds
    /// in a pack outside the prune protocol's exclusion set. The index must
    /// have been reconciled with storage at the start of the run
    /// (`Repository::sync_index`, after the create registration): it is a
    /// cache, never proof on its own. The index is locked once per batch.
    pub fn usable(&self, ids: &[BlobId]) -> Result<bool> {
        let mut dedup = self.shared.dedup();
        let index = self.shared.repo.index();
        for id in ids {
            if dedup.queued.contains(id) {
                continue;
            }
            match &dedup.filter {
                Some(Some(filter)) if !filter.may_hold(id) => return Ok(false),
                Some(_) => {}
                None => {
                    dedup.lookups += 1;
                    if dedup.lookups > FILTER_AFTER_LOOKUPS {
                        let sorted = index.blob_prefixes(FILTER_MAX_BLOBS)?;
                        dedup.filter = Some(sorted.map(|sorted| PrefixFilter {
                            sorted,
                            recent: HashSet::new(),
                        }));
                    }
                }
            }
            if !index.has_copy_outside(id, &self.excluded_packs)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The repository.
    pub fn repo(&self) -> &Repository {
        &self.shared.repo
    }

    /// The workers' first error once, and after it, that they stopped.
    fn check_failed(&self) -> Result<()> {
        if !self.shared.failed() {
            return Ok(());
        }
        let first = self
            .shared
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        Err(first.unwrap_or_else(stopped))
    }

    /// Saves a blob unless the repository (or this run) has it already.
    /// Returns its id and whether it was new.
    pub fn save(&self, kind: BlobKind, data: &[u8]) -> Result<(BlobId, bool)> {
        // A stop point per blob: nothing is committed until the snapshot,
        // so abandoning here loses nothing (format-spec/07).
        crate::interrupt::check()?;
        // Readers refuse header entries above this (format-spec/04-packs.md);
        // only a huge directory listing can get here (chunks are <= 16 MiB).
        let limit = crate::format::pack::MAX_BLOB_LEN as usize - crate::pipeline::crypto::OVERHEAD;
        if data.len() > limit {
            return Err(Error::Invalid(format!(
                "{kind:?} blob of {} bytes exceeds the format's limit of {limit} bytes",
                data.len()
            )));
        }
        let id = self.shared.repo.key().blob_id(data);
        if self.usable(std::slice::from_ref(&id))? {
            return Ok((id, false));
        }
        if !self.shared.dedup().queued.insert(id) {
            return Ok((id, false)); // another thread queued it meanwhile
        }
        self.check_failed()?;
        self.shared.stats.blobs.fetch_add(1, Ordering::Relaxed);
        if self.dry {
            // A dry run: nothing is stored.
            self.shared
                .stats
                .bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            return Ok((id, true));
        }
        let job = Job {
            kind,
            id,
            data: data.to_vec(),
        };
        let batch = if data.len() < BATCH_BLOB_BELOW {
            let mut g = self.gathering.lock().unwrap_or_else(|p| p.into_inner());
            g.bytes += data.len();
            g.jobs.push(job);
            if g.bytes < BATCH_BYTES && g.jobs.len() < BATCH_BLOBS {
                return Ok((id, true));
            }
            g.bytes = 0;
            std::mem::take(&mut g.jobs)
        } else {
            vec![job]
        };
        self.send(batch)?;
        Ok((id, true))
    }

    fn send(&self, batch: Batch) -> Result<()> {
        self.tx
            .as_ref()
            .expect("saver not finished")
            .send(batch)
            .map_err(|_| stopped())
    }

    /// Waits for the workers, publishes the last packs and returns the stats.
    pub fn finish(mut self) -> Result<SaveStats> {
        let last = std::mem::take(
            &mut self
                .gathering
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .jobs,
        );
        if !last.is_empty() && self.tx.is_some() {
            self.send(last)?;
        }
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            if let Err(p) = w.join() {
                self.shared.fail(panicked(p));
            }
        }
        self.check_failed()?;
        if let Some(full_packs) = self.full_packs.take() {
            for kind in [BlobKind::Data, BlobKind::Tree] {
                let open = self.shared.slot(kind).take();
                if let Some(p) = open {
                    if p.is_empty() {
                        p.abandon();
                    } else {
                        full_packs.send(p).map_err(|_| stopped())?;
                    }
                }
            }
        }
        if let Some(publisher) = self.publisher.take() {
            if let Err(p) = publisher.join() {
                self.shared.fail(panicked(p));
            }
        }
        self.check_failed()?;
        self.shared.repo.index().share_lookups(false)?;
        let s = &self.shared.stats;
        Ok(SaveStats {
            blobs: AtomicU64::new(s.blobs.load(Ordering::Relaxed)),
            bytes: AtomicU64::new(s.bytes.load(Ordering::Relaxed)),
            packs: AtomicU64::new(s.packs.load(Ordering::Relaxed)),
        })
    }
}

impl Drop for BlobSaver {
    fn drop(&mut self) {
        // Not finished: the run failed or was interrupted, and nothing it
        // stored will be referenced. Queued work is dropped, not done.
        if self.publisher.is_some() {
            self.shared.stopped.store(true, Ordering::SeqCst);
        }
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        for kind in [BlobKind::Data, BlobKind::Tree] {
            if let Some(p) = self.shared.slot(kind).take() {
                p.abandon();
            }
        }
        drop(self.full_packs.take());
        if let Some(publisher) = self.publisher.take() {
            let _ = publisher.join();
        }
        let _ = self.shared.repo.index().share_lookups(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::repository::{InitOptions, KdfStrength};

    /// A worker that gets a blob with this content panics.
    pub(super) const PANIC_ON: &[u8] = b"test: a blob worker panics on this blob";

    fn repo(dir: &std::path::Path) -> Arc<Repository> {
        repo_with_packs_of(dir, InitOptions::default().pack_size)
    }

    fn repo_with_packs_of(dir: &std::path::Path, pack_size: u64) -> Arc<Repository> {
        let opts = InitOptions {
            kdf: KdfStrength {
                m_kib: 1024,
                t: 1,
                p: 1,
            },
            pack_size,
            ..Default::default()
        };
        let be = Box::new(LocalBackend::new(dir.join("repo")));
        Arc::new(Repository::init_in(be, b"pw", &opts, &dir.join("cache")).unwrap())
    }

    #[test]
    fn a_worker_panic_fails_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let saver = BlobSaver::new(repo(dir.path()), 2).unwrap();
        saver
            .save(BlobKind::Data, b"a blob that is stored")
            .unwrap();
        saver.save(BlobKind::Data, PANIC_ON).unwrap();
        // Whether a later save or only `finish` notices: the run fails.
        let later = (0..100u32).try_for_each(|i| {
            saver
                .save(BlobKind::Data, format!("blob {i}").as_bytes())
                .map(|_| ())
        });
        let first = match (later, saver.finish()) {
            (_, Ok(_)) => panic!("a run whose worker panicked must fail"),
            (Err(e), Err(_)) | (Ok(()), Err(e)) => e,
        };
        assert!(first.to_string().contains("panicked"), "{first}");
    }

    // The saver kept the id of every blob it queued until the end of the
    // run (about 70 MB for a first backup of 1,000,000 small files).
    #[test]
    fn indexed_blobs_leave_the_queue_and_still_deduplicate() {
        let dir = tempfile::tempdir().unwrap();
        // Packs of the smallest size, of incompressible blobs of 4 KiB.
        let saver = BlobSaver::new(repo_with_packs_of(dir.path(), 1 << 20), 2).unwrap();
        let shared = saver.shared.clone();
        let blob = |i: u32| {
            let mut b = vec![0u8; 4096];
            let mut h = blake3::Hasher::new();
            h.update(&i.to_le_bytes());
            h.finalize_xof().fill(&mut b);
            b
        };
        // Past the look-ups that load the prefix filter.
        let n = FILTER_AFTER_LOOKUPS as u32 + 1000;
        for i in 0..n {
            assert!(saver.save(BlobKind::Data, &blob(i)).unwrap().1);
        }
        assert!(matches!(shared.dedup().filter, Some(Some(_))));
        let first = shared.repo.key().blob_id(&blob(0));
        let t0 = std::time::Instant::now();
        while shared.dedup().queued.contains(&first) {
            assert!(
                t0.elapsed().as_secs() < 30,
                "the first pack was never indexed"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Indexed (no longer queued): the index and the filter answer.
        for i in (0..n).step_by(97) {
            assert!(!saver.save(BlobKind::Data, &blob(i)).unwrap().1, "blob {i}");
        }
        let stats = saver.finish().unwrap();
        assert_eq!(stats.blobs.load(Ordering::Relaxed), n as u64);
        assert!(shared.dedup().queued.is_empty());
    }
}
