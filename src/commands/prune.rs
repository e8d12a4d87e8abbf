//! `snap prune`: apply a retention policy (forget), then collect garbage:
//! delete packs no remaining snapshot needs and repack packs that are
//! mostly garbage. Runs beside `create` without blocking it, following the
//! protocol in `format-spec/07-prune-protocol.md`:
//!
//! 1. analyse: walk every snapshot's trees into a set of needed blobs;
//!    choose candidate packs (only garbage, or too much garbage);
//! 2. write a prune intent listing the candidates (`locks/prune-*`);
//! 3. wait until every `create` registered at that moment has ended;
//! 4. walk the snapshots that appeared meanwhile (they may use blobs of
//!    candidates: such blobs are kept);
//! 5. copy every needed blob of a candidate that has no copy elsewhere
//!    into new packs; these are durable and indexed before step 6;
//! 6. verify each needed blob has a copy outside the candidates, then
//!    remove the candidates from the index and from storage;
//! 7. remove the intent.
//!
//! A crash anywhere leaves only extra objects (packs, an intent) that a
//! later prune removes; nothing referenced is deleted before its copy is
//! durable and indexed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::retention::{GroupBy, GroupKey, Item, Policy};
use crate::backend::FileKind;
use crate::format::pack::PackEntry;
use crate::format::{BlobId, BlobKind, PackId, SnapshotId};
use crate::progress::Progress;
use crate::repository::host::ProcessIdentity;
use crate::repository::locks::{
    self, Liveness, LockGuard, StaleWatch, Verdict, CREATE_PREFIX, PRUNE_PREFIX,
};
use crate::repository::packer::OpenPack;
use crate::repository::snapshots::now_ns;
use crate::repository::{Repository, SnapshotList};
use crate::{Error, Result};

/// Options of `snap prune`.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Retention policy; empty = keep every snapshot (garbage collection only).
    pub policy: Policy,
    /// How snapshots are grouped for the policy.
    pub group_by: GroupBy,
    /// Only report what would be done.
    pub dry_run: bool,
    /// Allow a policy to remove every snapshot of a group.
    pub allow_empty: bool,
    /// Collect garbage after forgetting.
    pub gc: bool,
    /// Repack a pack when more than this percentage of it is unused.
    pub max_unused_pct: f64,
    /// Read at most this many bytes of packs to repack per run.
    pub max_repack_bytes: Option<u64>,
    /// Give up waiting for running `create`s after this long.
    pub lock_wait: Duration,
    /// Progress counters and verbose lines (no-op by default).
    pub progress: crate::progress::Progress,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            policy: Policy::default(),
            group_by: GroupBy::default(),
            dry_run: false,
            allow_empty: false,
            gc: true,
            max_unused_pct: 10.0,
            max_repack_bytes: None,
            lock_wait: Duration::from_secs(3600),
            progress: Default::default(),
        }
    }
}

/// The decision about one snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    /// Snapshot id.
    pub id: String,
    /// Time (RFC 3339).
    pub time: String,
    /// Host.
    pub host: String,
    /// Paths.
    pub paths: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Kept or removed.
    pub keep: bool,
    /// Rules that keep it (empty when removed).
    pub reasons: Vec<String>,
    /// Its group.
    pub group: GroupKey,
}

/// What garbage collection did (or would do, on a dry run).
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    /// Packs in the index before.
    pub packs_before: u64,
    /// Bytes of packs before.
    pub bytes_before: u64,
    /// Bytes of needed blobs (what the packs must keep).
    pub bytes_needed: u64,
    /// Packs holding only garbage, deleted.
    pub packs_deleted: u64,
    /// Packs repacked (needed blobs copied, then deleted).
    pub packs_repacked: u64,
    /// Blobs copied into new packs.
    pub blobs_copied: u64,
    /// New packs written.
    pub packs_written: u64,
    /// Bytes of new packs written.
    pub bytes_written: u64,
    /// Bytes of packs deleted.
    pub bytes_deleted: u64,
    /// Net space freed (deleted minus written).
    pub bytes_freed: i64,
    /// `create` runs waited for.
    pub creates_waited: u64,
    /// Stale locks of dead processes removed.
    pub stale_locks_removed: u64,
    /// Packs with blobs recorded damaged, left for `snap repair packs`
    /// (which salvages what is intact) rather than collected.
    pub packs_damaged_kept: u64,
}

/// What `prune` did.
#[derive(Debug, Default, Serialize)]
pub struct PruneReport {
    /// True when nothing was changed.
    pub dry_run: bool,
    /// Every snapshot with its decision, oldest first.
    pub snapshots: Vec<Decision>,
    /// Snapshots removed (or to remove).
    pub removed: u64,
    /// Garbage collection, unless `--no-gc`.
    pub gc: Option<GcReport>,
}

fn rfc3339(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Applies the policy to every group (`now_ns`: this machine's clock, which
/// only sets aside snapshots dated in the future); returns decisions,
/// oldest first. Shared with `snap forget --keep-*`.
pub(crate) fn decide(
    snaps: &[(SnapshotId, crate::format::snapshot::Snapshot)],
    opts: &PruneOptions,
    now_ns: i64,
) -> Result<Vec<Decision>> {
    let mut groups: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
    for (i, (_, s)) in snaps.iter().enumerate() {
        groups
            .entry(opts.group_by.key(&s.host, &s.paths, &s.tags))
            .or_default()
            .push(i);
    }
    let mut out: Vec<Option<Decision>> = vec![None; snaps.len()];
    for (key, members) in groups {
        let reasons = if opts.policy.is_empty() {
            vec![vec!["no policy".to_string()]; members.len()]
        } else {
            let items: Vec<Item> = members
                .iter()
                .map(|&i| Item {
                    time_ns: snaps[i].1.time_ns,
                    tags: &snaps[i].1.tags,
                })
                .collect();
            opts.policy.apply(&items, now_ns)
        };
        if !opts.allow_empty && reasons.iter().all(|r| r.is_empty()) {
            return Err(Error::Invalid(format!(
                "the policy would remove all {} snapshot(s) of group {}; \
                 add --allow-empty to do that",
                members.len(),
                serde_json::to_string(&key).unwrap_or_default()
            )));
        }
        for (&i, r) in members.iter().zip(reasons) {
            let (id, s) = &snaps[i];
            out[i] = Some(Decision {
                id: id.to_hex(),
                time: rfc3339(s.time_ns),
                host: s.host.clone(),
                paths: s.paths.clone(),
                tags: s.tags.clone(),
                keep: !r.is_empty(),
                reasons: r,
                group: key.clone(),
            });
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// Refuses to prune while a snapshot object does not verify: its group,
/// time and data are unknown, so no decision and no garbage collection
/// would be safe.
pub(crate) fn refuse_damaged(list: &SnapshotList) -> Result<()> {
    if list.damaged.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = list
        .damaged
        .iter()
        .map(|d| format!("{} ({})", d.id.short(), d.why))
        .collect();
    let ids: Vec<String> = list.damaged.iter().map(|d| d.id.short()).collect();
    let (noun, verb, it) = if ids.len() == 1 {
        ("snapshot", "is", "it")
    } else {
        ("snapshots", "are", "them")
    };
    Err(Error::Damaged(format!(
        "{noun} {} {verb} damaged: prune cannot tell which data {it} needs, so it changed \
         nothing. Forget {it} (`snap forget {}`), or run `snap repair snapshots`, then prune again",
        names.join(", "),
        ids.join(" ")
    )))
}

/// A failure to read a snapshot's trees, without the generic advice of
/// the error's own message.
fn reason(e: &Error) -> String {
    match e {
        e @ Error::Corrupt { .. } => e.without_advice(),
        Error::Missing { what } => format!("{what} is missing"),
        other => other.to_string(),
    }
}

/// Walks the trees of `snaps` into `needed`, adding their ids to `seen`.
/// Every snapshot whose trees cannot be read is named in one error; a
/// storage error that is not damage (an unreachable store) is returned as
/// it is.
fn walk_snapshots<'a>(
    repo: &Repository,
    snaps: impl Iterator<Item = &'a (SnapshotId, crate::format::snapshot::Snapshot)>,
    needed: &mut HashSet<BlobId>,
    seen: &mut HashSet<SnapshotId>,
) -> Result<()> {
    let mut bad = Vec::new();
    for (id, s) in snaps {
        seen.insert(*id);
        match walk(repo, &s.tree, needed) {
            Ok(()) => {}
            Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => bad.push((id, s, e)),
            Err(e) => return Err(e),
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = bad
        .iter()
        .map(|(id, s, e)| {
            format!(
                "snapshot {} ({}, host {}, paths {}) cannot be read: {}",
                id.short(),
                rfc3339(s.time_ns),
                s.host,
                s.paths.join(" "),
                reason(e)
            )
        })
        .collect();
    let ids: Vec<String> = bad.iter().map(|(id, _, _)| id.short()).collect();
    Err(Error::Damaged(format!(
        "{}; prune needs every kept snapshot's trees to know which data is in use, \
         so it changed nothing. Forget {} (`snap forget {}`), or run \
         `snap repair snapshots --forget` (docs/repair.md), then prune again",
        names.join("; "),
        if ids.len() == 1 { "it" } else { "them" },
        ids.join(" ")
    )))
}

/// Runs `snap prune`.
pub fn run(repo: &Repository, opts: &PruneOptions) -> Result<PruneReport> {
    if opts.gc {
        repo.sync_index()?;
    }
    let list = repo.list_snapshots()?;
    refuse_damaged(&list)?;
    let snaps = &list.snapshots;
    let decisions = decide(snaps, opts, now_ns())?;
    // Before anything is removed: every kept snapshot must be readable,
    // or garbage collection could delete what it needs.
    let mut needed = HashSet::new();
    let mut seen = HashSet::new();
    if opts.gc {
        let kept = snaps.iter().zip(&decisions).filter(|(_, d)| d.keep);
        walk_snapshots(repo, kept.map(|(s, _)| s), &mut needed, &mut seen)?;
    }
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        removed: decisions.iter().filter(|d| !d.keep).count() as u64,
        ..Default::default()
    };
    if !opts.dry_run {
        for (d, (id, _)) in decisions.iter().zip(snaps) {
            if !d.keep {
                crate::interrupt::check()?;
                opts.progress.verbose(1, || {
                    format!(
                        "removing snapshot {} ({}, host {})",
                        id.short(),
                        d.time,
                        d.host
                    )
                });
                repo.delete_snapshot(id)?;
                seen.insert(*id);
                failpoint!("prune.after_forget");
            }
        }
    }
    report.snapshots = decisions;
    if opts.gc {
        report.gc = Some(collect_garbage(repo, opts, needed, seen)?);
    }
    Ok(report)
}

/// Adds every blob reachable from `root` to `needed` (trees included); a
/// tree already in the set was walked before, with all it reaches. A tree
/// that cannot be read is left out of the set (so every snapshot reaching
/// it fails too) and the rest is still walked; the first such error is
/// returned.
fn walk(repo: &Repository, root: &BlobId, needed: &mut HashSet<BlobId>) -> Result<()> {
    let mut stack = vec![*root];
    let mut first_err = None;
    while let Some(t) = stack.pop() {
        if !needed.insert(t) {
            continue;
        }
        crate::interrupt::check()?;
        let tree = match repo.load_tree_parts(&t) {
            Ok((tree, parts)) => {
                needed.extend(parts);
                tree
            }
            Err(e) => {
                needed.remove(&t);
                first_err.get_or_insert(e);
                continue;
            }
        };
        for n in tree.nodes {
            needed.extend(n.content);
            if let Some(sub) = n.subtree {
                stack.push(sub);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

struct Candidate {
    id: PackId,
    size: u64,
    unused: u64,
}

/// Chooses packs to delete or repack: packs whose indexed blobs are all
/// unneeded, then the packs with the most unused bytes above the
/// threshold, up to the repack budget.
fn choose(
    repo: &Repository,
    needed: &HashSet<BlobId>,
    opts: &PruneOptions,
    gc: &mut GcReport,
) -> Result<Vec<PackId>> {
    let packs = repo.index().packs()?;
    gc.packs_before = packs.len() as u64;
    let damaged: HashSet<PackId> = repo
        .index()
        .damaged_packs()?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let mut garbage = Vec::new();
    let mut partial = Vec::new();
    for (id, _, size) in packs {
        gc.bytes_before += size;
        if damaged.contains(&id) {
            gc.packs_damaged_kept += 1;
            continue;
        }
        let entries = repo.index().pack_entries(&id)?;
        let live: u64 = entries
            .iter()
            .filter(|e| needed.contains(&e.id))
            .map(|e| e.stored_len as u64)
            .sum();
        // Extra copies of blobs indexed elsewhere are unused here.
        let copies: u64 = repo
            .index()
            .pack_copies(&id)?
            .iter()
            .map(|(_, len)| *len as u64)
            .sum();
        let blobs: u64 = entries.iter().map(|e| e.stored_len as u64).sum::<u64>() + copies;
        gc.bytes_needed += live;
        if live == 0 {
            garbage.push(id);
            gc.packs_deleted += 1;
            gc.bytes_deleted += size;
        } else {
            // Header and trailer are overhead of live blobs, not waste.
            let unused = blobs.saturating_sub(live);
            if unused as f64 > size as f64 * opts.max_unused_pct / 100.0 {
                partial.push(Candidate { id, size, unused });
            }
        }
    }
    partial.sort_by(|a, b| b.unused.cmp(&a.unused).then(a.id.cmp(&b.id)));
    let mut budget = opts.max_repack_bytes.unwrap_or(u64::MAX);
    for c in partial {
        if c.size > budget {
            continue;
        }
        budget -= c.size;
        gc.packs_repacked += 1;
        gc.bytes_deleted += c.size;
        garbage.push(c.id);
    }
    Ok(garbage)
}

/// How long to sleep between two looks at the locks we wait for: often at
/// first (a create about to finish), then at most once a second.
fn poll_interval(waited: Duration) -> Duration {
    if waited < Duration::from_secs(2) {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(1)
    }
}

/// Waits until every create registered now has ended, removing the
/// registrations judged stale (format-spec/07, rules L1-L4).
fn wait_for_creates(repo: &Repository, lock_wait: Duration, gc: &mut GcReport) -> Result<()> {
    let me = ProcessIdentity::current();
    let mut watch = StaleWatch::default();
    let started = Instant::now();
    let mut waiting: Vec<String> = locks::list_raw(repo, CREATE_PREFIX)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut first = true;
    loop {
        let mut still = Vec::new();
        let mut why = Vec::new();
        for name in waiting {
            let Some(bytes) = locks::read(repo, &name)? else {
                continue;
            };
            match locks::judge(&name, &bytes, &me, &mut watch) {
                Verdict::Stale(_) => {
                    repo.backend().delete(FileKind::Lock, &name)?;
                    gc.stale_locks_removed += 1;
                }
                Verdict::Live(w) => {
                    why.push(format!("locks/{name}: {w}"));
                    still.push(name);
                }
            }
        }
        if first {
            gc.creates_waited = still.len() as u64;
            first = false;
            if !still.is_empty() {
                failpoint!("prune.waiting_for_creates");
            }
        }
        waiting = still;
        if waiting.is_empty() {
            return Ok(());
        }
        if started.elapsed() > lock_wait {
            return Err(Error::Invalid(format!(
                "gave up after {:?} waiting for running backups ({}); nothing was deleted. \
                 If none of them is running, `snap unlock` removes their locks",
                lock_wait,
                why.join("; ")
            )));
        }
        crate::interrupt::sleep(poll_interval(started.elapsed()))?;
    }
}

/// Removes prune intents whose process is provably gone (a stale intent
/// only makes creates store data again, but it should not outlive the next
/// prune). Intents that cannot be judged from here are left alone.
fn remove_dead_intents(repo: &Repository, gc: &mut GcReport) -> Result<()> {
    let me = ProcessIdentity::current();
    for (name, info) in locks::list(repo, PRUNE_PREFIX)? {
        if let Some(i) = info {
            if matches!(i.liveness(&me), Liveness::Dead(_)) {
                repo.backend().delete(FileKind::Lock, &name)?;
                gc.stale_locks_removed += 1;
            }
        }
    }
    Ok(())
}

/// Claims the right to prune: our intent is written; another live prune's
/// intent makes us back off, a stale one is removed. An intent that cannot
/// be judged from here is watched until it is refreshed (a running prune:
/// back off), removed, or stale.
fn claim(repo: &Repository, mine: &str, lock_wait: Duration, gc: &mut GcReport) -> Result<()> {
    let me = ProcessIdentity::current();
    let mut watch = StaleWatch::default();
    let mut first_seen: HashMap<String, Vec<u8>> = HashMap::new();
    let started = Instant::now();
    loop {
        let mut undecided = Vec::new();
        for (name, bytes) in locks::list_raw(repo, PRUNE_PREFIX)? {
            if name == mine {
                continue;
            }
            let info = serde_json::from_slice::<locks::LockInfo>(&bytes).ok();
            if let Some(Liveness::Alive) = info.as_ref().map(|i| i.liveness(&me)) {
                return Err(Error::Invalid(format!(
                    "another prune is running (locks/{name}, {}); try again later",
                    info.map(|i| i.describe()).unwrap_or_default()
                )));
            }
            // Refreshed while we watch: its prune is running.
            let first = first_seen
                .entry(name.clone())
                .or_insert_with(|| bytes.clone());
            if *first != bytes {
                return Err(Error::Invalid(format!(
                    "another prune is running (locks/{name} is being refreshed); try again later"
                )));
            }
            match locks::judge(&name, &bytes, &me, &mut watch) {
                Verdict::Stale(_) => {
                    // Its candidates were excluded by creates since it was
                    // written; ours are listed in our own intent from now on.
                    repo.backend().delete(FileKind::Lock, &name)?;
                    gc.stale_locks_removed += 1;
                }
                Verdict::Live(w) => {
                    undecided.push(format!("locks/{name}: {w}"));
                }
            }
        }
        if undecided.is_empty() {
            return Ok(());
        }
        if started.elapsed() > lock_wait {
            return Err(Error::Invalid(format!(
                "another prune may be running ({}); try again later, or `snap unlock` if it is not",
                undecided.join("; ")
            )));
        }
        crate::interrupt::sleep(poll_interval(started.elapsed()))?;
    }
}

/// Blobs to copy into new packs: by source pack, their header entries.
pub(crate) type CopyPlan = BTreeMap<PackId, Vec<PackEntry>>;

/// Copies blobs into new packs (verifying each one first), publishes and
/// indexes them. Strict (prune): a blob that does not verify stops the
/// copy with its error, before anything is deleted. With `salvage`
/// (`repair packs`): such blobs, and those of a pack that is gone, are
/// skipped and returned.
pub(crate) fn copy_blobs(
    repo: &Repository,
    plan: &CopyPlan,
    salvage: bool,
    gc: &mut GcReport,
    progress: &Progress,
) -> Result<Vec<(PackId, PackEntry)>> {
    let staging = match repo.backend().staging_dir() {
        Some(d) => d,
        None => repo.cache_dir().join("staging"),
    };
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let mut open: HashMap<BlobKind, OpenPack> = HashMap::new();
    let res = copy_into(repo, plan, salvage, gc, &staging, &mut open, progress);
    // On failure (e.g. a full disk) give the staging space back at once:
    // every staging file of this process is ours.
    for (_, p) in open.drain() {
        p.abandon();
    }
    if res.is_err() {
        let mine = format!("pack-{}-", std::process::id());
        if let Ok(rd) = std::fs::read_dir(&staging) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&mine) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    res
}

fn copy_into(
    repo: &Repository,
    plan: &CopyPlan,
    salvage: bool,
    gc: &mut GcReport,
    staging: &std::path::Path,
    open: &mut HashMap<BlobKind, OpenPack>,
    progress: &Progress,
) -> Result<Vec<(PackId, PackEntry)>> {
    let mut skipped = Vec::new();
    let publish = |p: OpenPack, gc: &mut GcReport| -> Result<()> {
        let f = p.finish(repo.key())?;
        // Kept before the upload, which may move the file away.
        repo.keep_tree_pack(&f.id, f.kind, &f.path);
        repo.backend()
            .put_file(FileKind::Pack, &f.id.to_hex(), &f.path)?;
        failpoint!("prune.repack_uploaded");
        repo.index().add_pack(&f.id, f.kind, f.size, &f.entries)?;
        gc.packs_written += 1;
        gc.bytes_written += f.size;
        failpoint!("prune.repack_indexed");
        Ok(())
    };
    for (pack, entries) in plan {
        crate::interrupt::check()?;
        progress.item_started(|| format!("repacking pack {}", pack.short()));
        progress.verbose(1, || {
            format!(
                "repacking pack {}: copying its {} needed blob(s)",
                pack.short(),
                entries.len()
            )
        });
        let bytes = match repo.backend().read(FileKind::Pack, &pack.to_hex()) {
            Ok(b) => b,
            Err(e) if salvage && e.is_not_found() => {
                skipped.extend(entries.iter().map(|e| (*pack, *e)));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        progress.bytes_done(bytes.len() as u64);
        progress.file_done();
        for e in entries {
            let s = e.offset as usize;
            let verified = match bytes.get(s..s + e.stored_len as usize) {
                None => Err(Error::corrupt(
                    format!("pack {pack}"),
                    "blob outside the pack (truncated?)",
                )),
                // Never carry damaged data forward: check before copying.
                Some(sealed) => repo.decode_blob(pack, e, sealed).map(|_| sealed),
            };
            let sealed = match verified {
                Ok(sealed) => sealed,
                Err(_) if salvage => {
                    skipped.push((*pack, *e));
                    continue;
                }
                Err(err) => return Err(err),
            };
            let slot = match open.entry(e.kind) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(OpenPack::create(staging, e.kind)?)
                }
            };
            slot.add(e.id, e.compression, e.raw_len, sealed)?;
            gc.blobs_copied += 1;
            if slot.len() >= repo.config().pack_size {
                let p = open.remove(&e.kind).expect("just used");
                publish(p, gc)?;
            }
        }
    }
    for (_, p) in open.drain() {
        if p.is_empty() {
            p.abandon();
        } else {
            publish(p, gc)?;
        }
    }
    Ok(skipped)
}

/// Steps 2 and 3 of the protocol, for every command that deletes packs
/// (prune, `repair packs`): writes the intent naming `packs`, backs off if
/// another prune is running, and waits until every create registered now
/// has ended. Creates that start later never deduplicate against `packs`.
/// The intent is removed when the guard is released or dropped.
pub(crate) fn announce_deletion(
    repo: &Repository,
    packs: &[PackId],
    lock_wait: Duration,
    gc: &mut GcReport,
) -> Result<LockGuard> {
    let intent = locks::write_prune_intent(repo, packs)?;
    failpoint!("prune.after_intent");
    let name = intent.name().to_string();
    claim(repo, &name, lock_wait, gc)?;
    wait_for_creates(repo, lock_wait, gc)?;
    failpoint!("prune.after_wait");
    Ok(intent)
}

/// Step 7: removes each pack from the index, from storage, and from the
/// index again (a concurrent index sync may have re-added it meanwhile).
pub(crate) fn delete_packs(repo: &Repository, packs: &[PackId], progress: &Progress) -> Result<()> {
    for pack in packs {
        crate::interrupt::check()?;
        progress.item_started(|| format!("deleting pack {}", pack.short()));
        progress.verbose(1, || format!("deleting pack {}", pack.short()));
        repo.index().remove_pack(pack)?;
        repo.backend().delete(FileKind::Pack, &pack.to_hex())?;
        repo.index().remove_pack(pack)?;
        failpoint!("prune.after_pack_delete");
        progress.file_done();
    }
    Ok(())
}

/// Frees what no snapshot needs; `needed` holds the blobs of the kept
/// snapshots, `seen` every snapshot already decided about.
fn collect_garbage(
    repo: &Repository,
    opts: &PruneOptions,
    mut needed: HashSet<BlobId>,
    seen: HashSet<SnapshotId>,
) -> Result<GcReport> {
    let mut gc = GcReport::default();
    let candidates = choose(repo, &needed, opts, &mut gc)?;
    if opts.dry_run || candidates.is_empty() {
        if !opts.dry_run {
            remove_dead_intents(repo, &mut gc)?;
        }
        gc.bytes_freed = gc.bytes_deleted as i64;
        return Ok(gc);
    }
    let cand_set: HashSet<PackId> = candidates.iter().copied().collect();
    // From here on, creates that start do not use the candidates.
    let intent = announce_deletion(repo, &candidates, opts.lock_wait, &mut gc)?;
    // Snapshots committed meanwhile may use blobs of candidates.
    repo.sync_index()?;
    let list = repo.list_snapshots()?;
    refuse_damaged(&list)?;
    let new = list.snapshots.iter().filter(|(id, _)| !seen.contains(id));
    walk_snapshots(repo, new, &mut needed, &mut HashSet::new())?;
    // Needed blobs indexed in a candidate with no copy outside: copy them.
    let mut plan: BTreeMap<PackId, Vec<BlobId>> = BTreeMap::new();
    for pack in &candidates {
        let entries = repo.index().pack_entries(pack)?;
        for e in entries {
            if !needed.contains(&e.id) {
                continue;
            }
            let copies = repo.index().blob_packs(&e.id)?;
            if let Some(src) = copies.iter().find(|p| cand_set.contains(p)) {
                if copies.iter().all(|p| cand_set.contains(p)) {
                    plan.entry(*src).or_default().push(e.id);
                }
            }
        }
    }
    let copied: Vec<BlobId> = plan.values().flatten().copied().collect();
    let mut entries = CopyPlan::new();
    for (pack, blobs) in &plan {
        let want: HashSet<&BlobId> = blobs.iter().collect();
        let (_, header) = repo.read_pack_header(pack)?;
        entries.insert(
            *pack,
            header
                .into_iter()
                .filter(|e| want.contains(&e.id))
                .collect(),
        );
    }
    // Items: the packs read to repack, then every pack deleted.
    opts.progress
        .set_total_files((entries.len() + candidates.len()) as u64);
    copy_blobs(repo, &entries, false, &mut gc, &opts.progress)?;
    // Every needed blob must now live outside the candidates.
    for id in &copied {
        let copies = repo.index().blob_packs(id)?;
        if copies.iter().all(|p| cand_set.contains(p)) {
            return Err(Error::Invalid(format!(
                "internal check failed: blob {} has no copy outside the packs to delete; \
                 nothing was deleted",
                id.short()
            )));
        }
    }
    failpoint!("prune.before_delete");
    delete_packs(repo, &candidates, &opts.progress)?;
    intent.release()?;
    gc.bytes_freed = gc.bytes_deleted as i64 - gc.bytes_written as i64;
    Ok(gc)
}
