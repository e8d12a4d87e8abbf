//! Saving blobs in parallel: callers hash and deduplicate, worker threads
//! compress, encrypt and append to packs; finished packs are published and
//! indexed. Memory is bounded by the queue length times the chunk size.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};

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
    error: Mutex<Option<Error>>,
}

/// A handle to save blobs; `finish` must be called to make them durable.
pub struct BlobSaver {
    shared: Arc<Shared>,
    tx: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    pending: Mutex<HashSet<BlobId>>,
    lookups: AtomicU64,
    absent_filter: OnceLock<Option<Vec<u64>>>,
    /// Packs a prune in progress may delete: blobs found only there count
    /// as absent (see `repository::locks`).
    excluded_packs: HashSet<crate::format::PackId>,
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
    fn slot(&self, kind: BlobKind) -> &Mutex<Option<OpenPack>> {
        &self.open[kind.code() as usize]
    }

    fn fail(&self, e: Error) {
        let mut g = self.error.lock().unwrap();
        if g.is_none() {
            *g = Some(e);
        }
    }

    fn store(&self, job: Job) -> Result<()> {
        let level = self.repo.config().compression_level;
        let (comp, stored) = compress::compress(&job.data, level);
        let sealed = self
            .repo
            .cipher
            .seal_blob(job.kind.code(), &job.id, &stored);
        drop(stored);
        let full = {
            let mut slot = self.slot(job.kind).lock().unwrap();
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
            self.publish(p.finish(self.repo.key())?)?;
        }
        Ok(())
    }

    fn publish(&self, p: FinishedPack) -> Result<()> {
        self.repo
            .backend()
            .put_file(FileKind::Pack, &p.id.to_hex(), &p.path)?;
        failpoint!("create.pack_uploaded");
        self.repo
            .index()
            .add_pack(&p.id, p.kind, p.size, &p.entries)?;
        failpoint!("create.pack_indexed");
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
        });
        let threads = threads.max(1);
        let (tx, rx) = bounded::<Job>(threads * 2);
        let workers = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                let sh = shared.clone();
                std::thread::spawn(move || {
                    for job in rx {
                        if sh.error.lock().unwrap().is_some() {
                            continue; // drain without work after a failure
                        }
                        if let Err(e) = sh.store(job) {
                            sh.fail(e);
                        }
                    }
                })
            })
            .collect();
        Ok(BlobSaver {
            shared,
            tx: Some(tx),
            workers,
            pending: Mutex::new(HashSet::new()),
            lookups: AtomicU64::new(0),
            absent_filter: OnceLock::new(),
            excluded_packs: HashSet::new(),
        })
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
        let pending = self.pending.lock().unwrap();
        let index = self.shared.repo.index();
        for id in ids {
            if pending.contains(id) {
                continue;
            }
            if let Some(Some(prefixes)) = self.absent_filter.get() {
                if prefixes.binary_search(&prefix(id)).is_err() {
                    return Ok(false);
                }
            } else if self.lookups.fetch_add(1, Ordering::Relaxed) == FILTER_AFTER_LOOKUPS {
                let _ = self
                    .absent_filter
                    .set(index.blob_prefixes(FILTER_MAX_BLOBS)?);
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

    fn check_failed(&self) -> Result<()> {
        if let Some(e) = self.shared.error.lock().unwrap().take() {
            return Err(e);
        }
        Ok(())
    }

    /// Saves a blob unless the repository (or this run) has it already.
    /// Returns its id and whether it was new.
    pub fn save(&self, kind: BlobKind, data: &[u8]) -> Result<(BlobId, bool)> {
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
        if !self.pending.lock().unwrap().insert(id) {
            return Ok((id, false)); // another thread queued it meanwhile
        }
        self.check_failed()?;
        self.shared.stats.blobs.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            kind,
            id,
            data: data.to_vec(),
        };
        self.tx
            .as_ref()
            .expect("saver not finished")
            .send(job)
            .map_err(|_| Error::Invalid("blob workers stopped".into()))?;
        Ok((id, true))
    }

    /// Waits for the workers, publishes the last packs and returns the stats.
    pub fn finish(mut self) -> Result<SaveStats> {
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.check_failed()?;
        for kind in [BlobKind::Data, BlobKind::Tree] {
            let open = self.shared.slot(kind).lock().unwrap().take();
            if let Some(p) = open {
                if p.is_empty() {
                    p.abandon();
                } else {
                    self.shared.publish(p.finish(self.shared.repo.key())?)?;
                }
            }
        }
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
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        for kind in [BlobKind::Data, BlobKind::Tree] {
            if let Some(p) = self.shared.slot(kind).lock().unwrap().take() {
                p.abandon();
            }
        }
    }
}
