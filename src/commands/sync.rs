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
//! A sync never copies a loss. Whenever it has work, it unlocks the source
//! (the password is needed then, and only then) and walks the trees of
//! the snapshots involved ([`super::sync_needs`]): the snapshots it sends,
//! and with `--delete` every source snapshot. Then
//! * a snapshot is sent only if every blob it needs is in a pack that is
//!   on the target once the packs are copied; one whose data is not
//!   complete on the source is not sent (an error, exit 11);
//! * with `--delete`, packs the source lacks are deleted on the target
//!   only if every source snapshot is complete without them; a pack lost
//!   on the source that a snapshot needs stays on the target, and the
//!   report names the lost packs and snapshots and says that the target is
//!   the copy to repair from (`snap sync --from TARGET`, which copies every
//!   pack the source lacks back).
//!
//! What it costs: the snapshot lists of both sides (one request on the
//! remote side) decide whether anything is new. A local record (in the cache
//! directory) remembers that the target was checked to be the same
//! repository and which keys it holds, so a sync with nothing new makes a
//! single LIST request on the remote and needs no password. Pack lists are
//! fetched only when there is something to send, on the first sync of a
//! pair of locations, and after a sync the other way found the source lacking
//! data (so that `sync --from MIRROR` repairs it); they are the source of
//! truth for what the target already holds, which makes an interrupted sync
//! resume where it stopped.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::sync_needs::{Needs, Verdict};
use crate::backend::object::RequestCounts;
use crate::backend::{Backend, BackendError, FileKind, WriteMode};
use crate::format::{PackId, SnapshotId};
use crate::repository::snapshots::rfc3339;
use crate::repository::Repository;
use crate::{Error, Result};

/// Opens the source as a repository, given its backend and its `config`
/// bytes; called only when the sync has work (it asks for the password).
pub type Unlock<'a> = dyn Fn(Box<dyn Backend>, &[u8]) -> Result<Repository> + 'a;

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
    /// Progress counters and verbose lines (no-op by default).
    pub progress: crate::progress::Progress,
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
    /// Snapshots of the source not sent because their data is not complete
    /// (on the source, or on the target after the packs were copied).
    pub snapshots_not_sent: Vec<String>,
    /// Packs the source lacks that a source snapshot needs (short ids);
    /// those on the target were kept there.
    pub lost_packs: Vec<String>,
    /// Packs on the target that the source lacks, not deleted because a
    /// source snapshot may need them (`--delete`).
    pub packs_kept: u64,
    /// What is wrong, one line each (exit code 11 when any).
    pub errors: Vec<String>,
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
    /// The last sync found the source lacking data its snapshots need: a
    /// sync the other way (from this target) compares pack lists to copy
    /// the missing packs back.
    #[serde(default)]
    source_lost: bool,
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

/// The record of a target, and whether one existed.
fn load_record(path: &PathBuf, target: &str) -> (Record, bool) {
    match std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        .filter(|r| r.target == target)
    {
        Some(r) => (r, true),
        None => (
            Record {
                target: target.to_string(),
                ..Default::default()
            },
            false,
        ),
    }
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
    target: &'a dyn Backend,
    verify: bool,
    objects: AtomicU64,
    bytes: AtomicU64,
    verified: AtomicU64,
    damaged: Mutex<Vec<String>>,
    /// Names of objects not sent because their bytes do not match.
    refused: Mutex<HashSet<String>>,
    progress: &'a crate::progress::Progress,
}

impl Copier<'_> {
    /// Copies one object; returns whether it was sent.
    fn copy(
        &self,
        source: &dyn Backend,
        kind: FileKind,
        name: &str,
        mode: WriteMode,
    ) -> Result<bool> {
        crate::interrupt::check()?;
        self.progress.item_started(|| kind.path(name));
        let data = source.read(kind, name)?;
        self.progress.bytes_done(data.len() as u64);
        // The items counted: the packs and snapshots to send (keys and
        // the config of a new target are not).
        if matches!(kind, FileKind::Pack | FileKind::Snapshot) {
            self.progress.file_done();
        }
        if !hash_ok(kind, name, &data) {
            self.damaged
                .lock()
                .unwrap()
                .push(format!("{}/{}", source.location(), kind.path(name)));
            self.refused.lock().unwrap().insert(name.to_string());
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
        self.progress.verbose(1, || {
            format!("sent {} ({} bytes)", kind.path(name), data.len())
        });
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
    fn copy_all(
        &self,
        source: &dyn Backend,
        kind: FileKind,
        list: &[String],
        n: usize,
        mode: WriteMode,
    ) -> Result<u64> {
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
                    match self.copy(source, kind, name, mode) {
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

/// Makes `target` hold every snapshot of `source`. `unlock` opens the
/// source when there is work (see the module documentation).
pub fn run(
    source: Box<dyn Backend>,
    target: &dyn Backend,
    opts: &SyncOptions,
    unlock: &Unlock<'_>,
) -> Result<SyncReport> {
    let (sloc, tloc) = (source.location(), target.location());
    let rpath = record_path(opts, &sloc, &tloc);
    let (mut record, known_pair) = load_record(&rpath, &tloc);
    // The record of the other direction: did a sync from here to the
    // source find the source lacking data?
    let rev_path = record_path(opts, &tloc, &sloc);
    let (mut reverse, _) = load_record(&rev_path, &sloc);
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
        target,
        verify: opts.verify,
        objects: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        verified: AtomicU64::new(0),
        damaged: Mutex::new(Vec::new()),
        refused: Mutex::new(HashSet::new()),
        progress: &opts.progress,
    };

    // The one request of a sync with nothing new (on the remote side).
    let src_snaps = names(source.list(FileKind::Snapshot)?);
    let tgt_snaps = names(target.list(FileKind::Snapshot)?);

    check_or_init_target(
        source.as_ref(),
        target,
        &src_config,
        &id,
        &mut record,
        &tgt_snaps,
        &cp,
        &mut report,
    )?;

    let missing_snaps: Vec<String> = src_snaps.difference(&tgt_snaps).cloned().collect();
    let extra_snaps: Vec<String> = tgt_snaps.difference(&src_snaps).cloned().collect();
    // Pack lists are compared when snapshots are to be sent or deleted, on
    // the first sync of this pair, and to repair a source found lacking.
    let compare_packs = !known_pair || reverse.source_lost;
    let has_work = !missing_snaps.is_empty() || opts.delete || compare_packs;

    // Keys: a local side is listed for free; a remote target's keys are
    // known from the record.
    if !remote_source || has_work {
        let src_keys = names(source.list(FileKind::Key)?);
        if target.request_counts().is_none() {
            record.keys = names(target.list(FileKind::Key)?);
        }
        let missing: Vec<String> = src_keys.difference(&record.keys).cloned().collect();
        if !missing.is_empty() {
            report.keys_sent += cp.copy_all(
                source.as_ref(),
                FileKind::Key,
                &missing,
                1,
                WriteMode::CreateNew,
            )?;
            record.keys.extend(missing);
        }
    }

    let mut source_requests = source.request_counts();
    if has_work {
        let src_packs = names(source.list(FileKind::Pack)?);
        let tgt_packs = names(target.list(FileKind::Pack)?);
        // Only now is the key needed (and the password asked for).
        let repo = unlock(source, &src_config)?;
        let plan = Plan {
            repo: &repo,
            target,
            opts,
            src_snaps: &src_snaps,
            missing_snaps: &missing_snaps,
            extra_snaps: &extra_snaps,
            src_packs: &src_packs,
            tgt_packs: &tgt_packs,
        };
        record.source_lost = plan.execute(&cp, &mut report)?;
        source_requests = repo.backend().request_counts();
        if reverse.source_lost {
            // A repair: the target had lost packs, and every pack of this
            // source it lacked was sent. Its index learns them (it may have
            // dropped their entries when they went missing), and the other
            // direction may stop comparing.
            if report.packs_sent > 0 {
                let tbe = crate::backend::open(&tloc)?;
                let traw = Repository::check_format_version(tbe.as_ref())?;
                unlock(tbe, &traw)?.sync_index()?;
            }
            reverse.source_lost = false;
            save_record(&rev_path, &reverse)?;
        }
    }

    save_record(&rpath, &record)?;
    report.objects_sent = cp.objects.load(Ordering::Relaxed);
    report.bytes_sent = cp.bytes.load(Ordering::Relaxed);
    report.verified = cp.verified.load(Ordering::Relaxed);
    report.damaged = cp.damaged.into_inner().unwrap();
    report.source_requests = source_requests;
    report.target_requests = target.request_counts();
    Ok(report)
}

/// Checks that the target is a copy of this repository, or initializes
/// it. A target known from the record is not read again, unless it looks
/// empty (wiped?) or is local (free to check).
#[allow(clippy::too_many_arguments)]
fn check_or_init_target(
    source: &dyn Backend,
    target: &dyn Backend,
    src_config: &[u8],
    id: &str,
    record: &mut Record,
    tgt_snaps: &BTreeSet<String>,
    cp: &Copier<'_>,
    report: &mut SyncReport,
) -> Result<()> {
    if record.checked && !tgt_snaps.is_empty() && target.request_counts().is_some() {
        return Ok(());
    }
    let (sloc, tloc) = (source.location(), target.location());
    let short = |s: &str| s.get(..8).unwrap_or(s).to_string();
    match target.read(FileKind::Config, "config") {
        Ok(tc) => {
            let tid = repo_id(&tc, &tloc)?;
            if tid != id {
                return Err(Error::Invalid(format!(
                    "{tloc} is another repository (id {}), not a copy of {sloc} (id {}): \
                     sync needs an empty target or a copy of the same repository",
                    short(&tid),
                    short(id)
                )));
            }
        }
        Err(e) if e.is_not_found() => {
            // New target: keys first, then config (the commit point).
            target.create_layout()?;
            let keys: Vec<String> = names(source.list(FileKind::Key)?).into_iter().collect();
            report.keys_sent +=
                cp.copy_all(source, FileKind::Key, &keys, 1, WriteMode::CreateNew)?;
            match target.write(FileKind::Config, "config", src_config, WriteMode::CreateNew) {
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
    Ok(())
}

/// The part of a sync that needs the key: what to send and delete.
struct Plan<'a> {
    repo: &'a Repository,
    target: &'a dyn Backend,
    opts: &'a SyncOptions,
    src_snaps: &'a BTreeSet<String>,
    missing_snaps: &'a [String],
    extra_snaps: &'a [String],
    src_packs: &'a BTreeSet<String>,
    tgt_packs: &'a BTreeSet<String>,
}

fn snapshot_ids(names: &[String]) -> Vec<SnapshotId> {
    names
        .iter()
        .filter_map(|n| SnapshotId::from_hex(n))
        .collect()
}

fn pack_ids(names: &BTreeSet<String>) -> HashSet<PackId> {
    names.iter().filter_map(|n| PackId::from_hex(n)).collect()
}

impl Plan<'_> {
    /// Copies packs, then the snapshots whose data is complete on the
    /// target; with `--delete` removes what the source no longer has, as
    /// far as that is safe. Returns whether the source lacks data one of
    /// the snapshots analysed needs.
    fn execute(&self, cp: &Copier<'_>, report: &mut SyncReport) -> Result<bool> {
        let source = self.repo.backend();
        let present = pack_ids(self.src_packs);
        let on_target_before = pack_ids(self.tgt_packs);
        // What the snapshots to send need; with --delete, what every
        // snapshot needs (the target must keep all of it).
        let check: Vec<String> = if self.opts.delete {
            self.src_snaps.iter().cloned().collect()
        } else {
            self.missing_snaps.to_vec()
        };
        let needs = Needs::analyse(self.repo, &present, &snapshot_ids(&check))?;
        let lost = needs.missing(|p| present.contains(p));

        let missing: Vec<String> = self.src_packs.difference(self.tgt_packs).cloned().collect();
        report.packs_present = (self.src_packs.len() - missing.len()) as u64;
        cp.progress
            .set_total_files((missing.len() + self.missing_snaps.len()) as u64);
        report.packs_sent = cp.copy_all(
            source,
            FileKind::Pack,
            &missing,
            self.opts.connections,
            WriteMode::Overwrite,
        )?;
        failpoint!("sync.after_packs");
        let refused = cp.refused.lock().unwrap().clone();
        let on_target = |p: &PackId| {
            on_target_before.contains(p) || (present.contains(p) && !refused.contains(&p.to_hex()))
        };
        let unplaced = needs.missing(|p| present.contains(p) && on_target(p));

        // Snapshots last, each only when all it needs is on the target.
        let mut send = Vec::new();
        for name in self.missing_snaps {
            let Some(id) = SnapshotId::from_hex(name) else {
                continue;
            };
            match needs.verdict(&id, &unplaced) {
                Verdict::Complete => send.push(name.clone()),
                v => {
                    report.snapshots_not_sent.push(id.to_hex());
                    report.errors.push(format!(
                        "{}: not sent to the target",
                        self.describe(&needs, &id, &v, &lost)
                    ));
                }
            }
        }
        report.snapshots_sent = cp.copy_all(
            source,
            FileKind::Snapshot,
            &send,
            self.opts.connections,
            WriteMode::CreateNew,
        )?;

        if self.opts.delete {
            failpoint!("sync.before_deletes");
            for s in self.extra_snaps {
                self.target.delete(FileKind::Snapshot, s)?;
                report.snapshots_deleted += 1;
            }
            failpoint!("sync.between_deletes");
            let extra: Vec<&String> = self.tgt_packs.difference(self.src_packs).collect();
            if needs.all_complete(&unplaced) {
                for p in &extra {
                    self.target.delete(FileKind::Pack, p)?;
                    report.packs_deleted += 1;
                }
            } else if !extra.is_empty() {
                report.packs_kept = extra.len() as u64;
                // Name the snapshots already on the target that block it.
                for id in needs.snapshot_ids() {
                    let v = needs.verdict(id, &unplaced);
                    if v != Verdict::Complete && !self.missing_snaps.contains(&id.to_hex()) {
                        report.errors.push(format!(
                            "{}: kept on the target",
                            self.describe(&needs, id, &v, &lost)
                        ));
                    }
                }
                report.errors.push(format!(
                    "kept the {} pack(s) of the target that the source lacks: a snapshot of \
                     the source may need them",
                    extra.len()
                ));
            }
        }
        if !lost.is_empty() {
            self.explain_loss(&needs, &lost, report)?;
        }
        Ok(!lost.is_empty())
    }

    /// One line about a snapshot that is not complete.
    fn describe(
        &self,
        needs: &Needs,
        id: &SnapshotId,
        v: &Verdict,
        lost: &HashSet<crate::format::BlobId>,
    ) -> String {
        let what = match needs.snapshot(id) {
            Some(s) => format!(
                "snapshot {} ({}, host {}, paths {})",
                id.short(),
                rfc3339(s.time_ns),
                s.host,
                s.paths.join(" ")
            ),
            None => format!("snapshot {}", id.short()),
        };
        match v {
            Verdict::Complete => what,
            Verdict::Damaged(why) => format!("{what} is damaged in the source ({why})"),
            Verdict::Unreadable(why) => format!("{what} cannot be read in the source ({why})"),
            Verdict::Lacks(n) => {
                if needs.verdict(id, lost) == Verdict::Complete {
                    format!("{what} needs {n} blob(s) of packs that are damaged in the source")
                } else {
                    format!("{what} needs {n} blob(s) that are in no pack of the source")
                }
            }
        }
    }

    /// Names the lost packs and where a copy is: the target's packs that
    /// the source lacks are searched for the lost blobs.
    fn explain_loss(
        &self,
        needs: &Needs,
        lost: &HashSet<crate::format::BlobId>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut packs: BTreeSet<PackId> = needs.gone_packs(lost).into_iter().collect();
        let tgt_only: Vec<PackId> = pack_ids(self.tgt_packs)
            .into_iter()
            .filter(|p| !self.src_packs.contains(&p.to_hex()))
            .collect();
        let mut found = HashSet::new();
        for p in &tgt_only {
            match self.repo.read_pack_header_in(self.target, p) {
                Ok((_, entries)) => {
                    let holds: Vec<_> = entries.iter().filter(|e| lost.contains(&e.id)).collect();
                    if !holds.is_empty() {
                        packs.insert(*p);
                        found.extend(holds.iter().map(|e| e.id));
                    }
                }
                // A damaged pack on the target is the target's check's to report.
                Err(Error::Corrupt { .. }) | Err(Error::Missing { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let on_target: Vec<String> = packs
            .iter()
            .filter(|p| self.tgt_packs.contains(&p.to_hex()))
            .map(|p| p.short())
            .collect();
        report.lost_packs = packs.iter().map(|p| p.short()).collect();
        let (sloc, tloc) = (self.repo.backend().location(), self.target.location());
        let mut line = format!(
            "the source {sloc} lacks {} blob(s) its snapshots need{}",
            lost.len(),
            if packs.is_empty() {
                String::new()
            } else {
                format!(" (lost pack(s): {})", report.lost_packs.join(", "))
            }
        );
        if found.len() == lost.len() || (!on_target.is_empty() && found.is_empty()) {
            line.push_str(&format!(
                "; the target holds {}: it is the copy to repair from: \
                 `snap --repo {sloc} sync --from {tloc}` copies them back",
                if on_target.is_empty() {
                    "them".to_string()
                } else {
                    format!("pack(s) {}", on_target.join(", "))
                }
            ));
        } else if !found.is_empty() {
            line.push_str(&format!(
                "; the target holds {} of them: `snap --repo {sloc} sync --from {tloc}` copies \
                 those back, `snap check` on the source names the files still lost",
                found.len()
            ));
        } else {
            line.push_str(
                "; the target does not hold them either: `snap check` on the source names \
                 the files affected, `snap repair snapshots` saves the rest",
            );
        }
        report.errors.push(line);
        Ok(())
    }
}
