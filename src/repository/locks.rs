//! Writer registrations and prune intents in the `locks/` namespace: the
//! protocol that lets `create` and `prune` run at the same time (see
//! `format-spec/07-prune-protocol.md`).
//!
//! * Every `create` writes `locks/create-<random>` (create-if-absent) before
//!   it reads anything, then reads every `locks/prune-<random>` intent and
//!   never deduplicates against the packs listed there; it deletes its lock
//!   when it ends.
//! * `prune` writes its intent (the packs it may delete) first, then lists
//!   the create locks and waits until every one it saw is gone before it
//!   deletes anything. A create that registered later has read the intent.
//!
//! The protocol needs only create-if-absent writes, deletes and a list that
//! shows every object whose write has returned, so it works on an object
//! store with conditional writes. Wall-clock time is used only to report.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::Repository;
use crate::backend::{FileKind, WriteMode};
use crate::format::PackId;
use crate::{Error, Result};

/// Name prefix of create registrations.
pub const CREATE_PREFIX: &str = "create-";
/// Name prefix of prune intents.
pub const PRUNE_PREFIX: &str = "prune-";

/// Who holds a lock (stored as JSON in the lock object).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockInfo {
    /// Host name of the process.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// When the lock was taken, ns since the epoch (informational only).
    pub time_ns: i64,
    /// For prune intents: the packs that this prune may delete.
    #[serde(default)]
    pub packs: Vec<String>,
}

impl LockInfo {
    fn mine(packs: Vec<String>) -> LockInfo {
        LockInfo {
            host: super::open::hostname(),
            pid: std::process::id(),
            time_ns: time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64,
            packs,
        }
    }

    /// Whether the holder is known to be gone: a process of this host that
    /// no longer exists. Locks of other hosts are never judged stale here.
    pub fn is_stale(&self) -> bool {
        self.host == super::open::hostname() && !super::tmp::process_alive(self.pid as i32)
    }
}

/// A lock object this process holds; deleted on drop.
#[derive(Debug)]
pub struct LockGuard<'a> {
    repo: &'a Repository,
    name: String,
}

impl LockGuard<'_> {
    /// The lock's object name under `locks/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the lock now, reporting failure.
    pub fn release(self) -> Result<()> {
        let r = self.repo.backend().delete(FileKind::Lock, &self.name);
        std::mem::forget(self);
        Ok(r?)
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.repo.backend().delete(FileKind::Lock, &self.name);
    }
}

fn write_new<'a>(repo: &'a Repository, prefix: &str, info: &LockInfo) -> Result<LockGuard<'a>> {
    let body = serde_json::to_vec(info).expect("lock info serializes");
    loop {
        let name = format!("{prefix}{:016x}", rand::random::<u64>());
        match repo
            .backend()
            .write(FileKind::Lock, &name, &body, WriteMode::CreateNew)
        {
            Ok(()) => return Ok(LockGuard { repo, name }),
            Err(crate::backend::BackendError::AlreadyExists(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Lists locks whose name starts with `prefix`, with their content. A lock
/// deleted while listing is skipped; one that does not parse is returned
/// with `None` (treated as live).
pub fn list(repo: &Repository, prefix: &str) -> Result<Vec<(String, Option<LockInfo>)>> {
    let mut out = Vec::new();
    for (name, _) in repo.backend().list(FileKind::Lock)? {
        if !name.starts_with(prefix) {
            continue;
        }
        match repo.backend().read(FileKind::Lock, &name) {
            Ok(b) => out.push((name, serde_json::from_slice(&b).ok())),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Whether a lock still exists.
pub fn exists(repo: &Repository, name: &str) -> Result<bool> {
    match repo.backend().size(FileKind::Lock, name) {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Registers a running `create`, then returns the packs that prunes in
/// progress may delete: the caller must not deduplicate against them.
/// The registration is removed when the guard drops.
pub fn register_create(repo: &Repository) -> Result<(LockGuard<'_>, HashSet<PackId>)> {
    let guard = write_new(repo, CREATE_PREFIX, &LockInfo::mine(Vec::new()))?;
    failpoint!("create.after_register");
    // Read the intents only after our registration is durable.
    let mut excluded = HashSet::new();
    for (name, info) in list(repo, PRUNE_PREFIX)? {
        let info = info.ok_or_else(|| {
            Error::corrupt(
                format!("locks/{name}"),
                "prune intent does not parse; remove it if no prune is running",
            )
        })?;
        for p in &info.packs {
            if let Some(id) = PackId::from_hex(p) {
                excluded.insert(id);
            }
        }
    }
    Ok((guard, excluded))
}

/// Writes a prune intent naming the packs this prune may delete.
pub fn write_prune_intent<'a>(repo: &'a Repository, packs: &[PackId]) -> Result<LockGuard<'a>> {
    let info = LockInfo::mine(packs.iter().map(|p| p.to_hex()).collect());
    write_new(repo, PRUNE_PREFIX, &info)
}
