//! `snap sync`: make another copy of a repository hold every snapshot of
//! this one, by copying raw objects (no decryption, no re-encryption; same
//! repository id and keys).
//!
//! Order, so that the target is a consistent repository at every moment:
//! keys, then `config` (only when the target is new), then missing packs,
//! then missing snapshots; with `--delete`, extra snapshots are removed
//! before extra packs. Each object is checked against its name (BLAKE3 of
//! its bytes) before it is sent, so damage in the source is not copied.
//!
//! What it costs: the snapshot lists of both sides (one request on the
//! remote side) decide whether anything is new. A local record (in the cache
//! directory) remembers that the target was checked to be the same
//! repository and which keys it holds, so a sync with nothing new makes a
//! single LIST request on the remote. Pack lists are fetched only when
//! there is something to send, and are the source of truth for what the
//! target already holds, which makes an interrupted sync resume where it
//! stopped.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::backend::object::RequestCounts;
use crate::backend::{Backend, BackendError, FileKind, WriteMode};
use crate::{Error, Result};

/// Options of `snap sync`.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Re-read every object sent from the target and check its hash.
    pub verify: bool,
    /// Delete snapshots and packs on the target that the source lacks.
    pub delete: bool,
    /// Parallel object copies.
    pub connections: usize,
    /// Where the record of the target is kept (`None`: the cache dir).
    pub state_dir: Option<PathBuf>,
}

/// What a sync did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SyncReport {
    /// Source location.
    pub source: String,
    /// Target location.
    pub target: String,
    /// Repository id.
    pub repository_id: String,
    /// The target was created by this sync.
    pub initialized: bool,
    /// Key objects sent.
    pub keys_sent: u64,
    /// Packs sent.
    pub packs_sent: u64,
    /// Packs the target already had (of the source's packs).
    pub packs_present: u64,
    /// Snapshots sent.
    pub snapshots_sent: u64,
    /// Objects sent in all (config, keys, packs, snapshots).
    pub objects_sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Objects re-read and verified on the target (`--verify`).
    pub verified: u64,
    /// Snapshots deleted on the target (`--delete`).
    pub snapshots_deleted: u64,
    /// Packs deleted on the target (`--delete`).
    pub packs_deleted: u64,
    /// Source objects whose bytes do not match their name: not copied.
    pub damaged: Vec<String>,
    /// Requests made to the source, when it counts them.
    pub source_requests: Option<RequestCounts>,
    /// Requests made to the target, when it counts them.
    pub target_requests: Option<RequestCounts>,
}

/// The local record of a target (JSON in the cache dir).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Record {
    /// Target location this record describes.
    target: String,
    /// The target's config was read and has the source's id.
    checked: bool,
    /// Keys known to be on the target.
    keys: BTreeSet<String>,
    /// The source's `config` (immutable), so that a remote source is not
    /// read again.
    #[serde(default)]
    config: Option<String>,
}

fn names(v: Vec<(String, u64)>) -> BTreeSet<String> {
    v.into_iter().map(|(n, _)| n).collect()
}

fn hash_ok(kind: FileKind, name: &str, bytes: &[u8]) -> bool {
    match kind {
        FileKind::Pack | FileKind::Snapshot | FileKind::Key => {
            blake3::hash(bytes).to_hex().as_str() == name
        }
        _ => true,
    }
}

fn repo_id(config: &[u8], loc: &str) -> Result<String> {
    let v: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| Error::corrupt(format!("{loc}/config"), e.to_string()))?;
    v.get("id")
        .and_then(|x| x.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::corrupt(format!("{loc}/config"), "no repository id"))
}

fn record_path(opts: &SyncOptions, source: &str, target: &str) -> PathBuf {
    let dir = opts
        .state_dir
        .clone()
        .unwrap_or_else(|| crate::repository::open::cache_base().join("sync"));
    let h = blake3::hash(format!("{source}\n{target}").as_bytes()).to_hex();
    dir.join(format!("{}.json", &h[..16]))
}

fn load_record(path: &PathBuf, target: &str) -> Record {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        .filter(|r| r.target == target)
        .unwrap_or_else(|| Record {
            target: target.to_string(),
            ..Default::default()
        })
}

fn save_record(path: &PathBuf, r: &Record) -> Result<()> {
    let dir = path.parent().expect("record has a parent");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let bytes = serde_json::to_vec(r).expect("record serializes");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

struct Copier<'a> {
    source: &'a dyn Backend,
    target: &'a dyn Backend,
    verify: bool,
    objects: AtomicU64,
    bytes: AtomicU64,
    verified: AtomicU64,
    damaged: Mutex<Vec<String>>,
}

impl Copier<'_> {
    /// Copies one object; returns whether it was sent.
    fn copy(&self, kind: FileKind, name: &str, mode: WriteMode) -> Result<bool> {
        let data = self.source.read(kind, name)?;
        if !hash_ok(kind, name, &data) {
            self.damaged.lock().unwrap().push(format!(
                "{}/{}",
                self.source.location(),
                kind.path(name)
            ));
            return Ok(false);
        }
        failpoint!("sync.before_object");
        match self.target.write(kind, name, &data, mode) {
            Ok(()) => {}
            // Someone (an earlier, interrupted run) got there first; the
            // name is the hash, so it holds the same bytes.
            Err(BackendError::AlreadyExists(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        failpoint!("sync.after_snapshot", if kind == FileKind::Snapshot);
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        if self.verify {
            let back = self.target.read(kind, name)?;
            if back != data || !hash_ok(kind, name, &back) {
                return Err(Error::corrupt(
                    format!("{}/{}", self.target.location(), kind.path(name)),
                    "read back after sync, the bytes differ from what was sent",
                ));
            }
            self.verified.fetch_add(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    /// Copies many objects with `n` threads; stops at the first error.
    fn copy_all(&self, kind: FileKind, list: &[String], n: usize, mode: WriteMode) -> Result<u64> {
        let next = AtomicUsize::new(0);
        let sent = AtomicU64::new(0);
        let err: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..n.clamp(1, 64).min(list.len().max(1)) {
                s.spawn(|| loop {
                    if err.lock().unwrap().is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = list.get(i) else { return };
                    match self.copy(kind, name, mode) {
                        Ok(true) => {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {}
                        Err(e) => {
                            err.lock().unwrap().get_or_insert(e);
                            return;
                        }
                    }
                });
            }
        });
        match err.into_inner().unwrap() {
            Some(e) => Err(e),
            None => Ok(sent.into_inner()),
        }
    }
}

/// Makes `target` hold every snapshot of `source`.
pub fn run(source: &dyn Backend, target: &dyn Backend, opts: &SyncOptions) -> Result<SyncReport> {
    let (sloc, tloc) = (source.location(), target.location());
    let rpath = record_path(opts, &sloc, &tloc);
    let mut record = load_record(&rpath, &tloc);
    let remote_source = source.request_counts().is_some();
    let src_config = match record.config.as_ref().filter(|_| remote_source) {
        Some(c) => c.clone().into_bytes(),
        None => match source.read(FileKind::Config, "config") {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Err(Error::NoRepository { repo: sloc }),
            Err(e) => return Err(e.into()),
        },
    };
    let id = repo_id(&src_config, &sloc)?;
    record.config = String::from_utf8(src_config.clone()).ok();
    let mut report = SyncReport {
        source: sloc.clone(),
        target: tloc.clone(),
        repository_id: id.clone(),
        ..Default::default()
    };
    let cp = Copier {
        source,
        target,
        verify: opts.verify,
        objects: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        verified: AtomicU64::new(0),
        damaged: Mutex::new(Vec::new()),
    };

    // The one request of a sync with nothing new (on the remote side).
    let src_snaps = names(source.list(FileKind::Snapshot)?);
    let tgt_snaps = names(target.list(FileKind::Snapshot)?);

    // A target known from the record is not read again, unless it looks
    // empty (wiped?) or is local (free to check).
    if !record.checked || tgt_snaps.is_empty() || target.request_counts().is_none() {
        match target.read(FileKind::Config, "config") {
            Ok(tc) => {
                let tid = repo_id(&tc, &tloc)?;
                if tid != id {
                    return Err(Error::Invalid(format!(
                        "{tloc} is another repository (id {}), not a copy of {sloc} (id {}): \
                         sync needs an empty target or a copy of the same repository",
                        &tid[..8.min(tid.len())],
                        &id[..8]
                    )));
                }
            }
            Err(e) if e.is_not_found() => {
                // New target: keys first, then config (the commit point).
                target.create_layout()?;
                let keys: Vec<String> = names(source.list(FileKind::Key)?).into_iter().collect();
                report.keys_sent += cp.copy_all(FileKind::Key, &keys, 1, WriteMode::CreateNew)?;
                match target.write(
                    FileKind::Config,
                    "config",
                    &src_config,
                    WriteMode::CreateNew,
                ) {
                    Ok(()) => {
                        cp.objects.fetch_add(1, Ordering::Relaxed);
                        cp.bytes
                            .fetch_add(src_config.len() as u64, Ordering::Relaxed);
                        report.initialized = true;
                    }
                    Err(BackendError::AlreadyExists(_)) => {
                        let tc = target.read(FileKind::Config, "config")?;
                        if repo_id(&tc, &tloc)? != id {
                            return Err(Error::Invalid(format!(
                                "{tloc} was initialized as another repository meanwhile"
                            )));
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
                record.keys.extend(keys);
            }
            Err(e) => return Err(e.into()),
        }
        record.checked = true;
    }

    let missing_snaps: Vec<String> = src_snaps.difference(&tgt_snaps).cloned().collect();
    let extra_snaps: Vec<String> = tgt_snaps.difference(&src_snaps).cloned().collect();
    let has_work = !missing_snaps.is_empty() || opts.delete;

    // Keys: a local side is listed for free; a remote target's keys are
    // known from the record.
    if !remote_source || has_work {
        let src_keys = names(source.list(FileKind::Key)?);
        if target.request_counts().is_none() {
            record.keys = names(target.list(FileKind::Key)?);
        }
        let missing: Vec<String> = src_keys.difference(&record.keys).cloned().collect();
        if !missing.is_empty() {
            report.keys_sent += cp.copy_all(FileKind::Key, &missing, 1, WriteMode::CreateNew)?;
            record.keys.extend(missing);
        }
    }

    if has_work {
        let src_packs = names(source.list(FileKind::Pack)?);
        let tgt_packs = names(target.list(FileKind::Pack)?);
        let missing: Vec<String> = src_packs.difference(&tgt_packs).cloned().collect();
        report.packs_present = (src_packs.len() - missing.len()) as u64;
        report.packs_sent = cp.copy_all(
            FileKind::Pack,
            &missing,
            opts.connections,
            WriteMode::Overwrite,
        )?;
        failpoint!("sync.after_packs");
        // Snapshots last: each one is published only after all packs.
        report.snapshots_sent = cp.copy_all(
            FileKind::Snapshot,
            &missing_snaps,
            opts.connections,
            WriteMode::CreateNew,
        )?;
        if opts.delete {
            failpoint!("sync.before_deletes");
            for s in &extra_snaps {
                target.delete(FileKind::Snapshot, s)?;
                report.snapshots_deleted += 1;
            }
            failpoint!("sync.between_deletes");
            for p in tgt_packs.difference(&src_packs) {
                target.delete(FileKind::Pack, p)?;
                report.packs_deleted += 1;
            }
        }
    }

    save_record(&rpath, &record)?;
    report.objects_sent = cp.objects.load(Ordering::Relaxed);
    report.bytes_sent = cp.bytes.load(Ordering::Relaxed);
    report.verified = cp.verified.load(Ordering::Relaxed);
    report.damaged = cp.damaged.into_inner().unwrap();
    report.source_requests = source.request_counts();
    report.target_requests = target.request_counts();
    Ok(report)
}
