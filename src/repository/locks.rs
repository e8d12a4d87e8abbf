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
//! Liveness (rules L1-L5 of the spec): a lock records its holder's machine,
//! boot, PID namespace and process start time, so that a process on the
//! same machine can prove the holder dead. Every lock is refreshed by a
//! heartbeat thread (a counter in the object, rewritten every
//! `refresh_secs`); a lock that no one can check locally is judged stale
//! only after a reader has seen it unchanged for [`STALE_FACTOR`] refresh
//! periods, measured on the reader's own monotonic clock. A holder that
//! could not refresh for that long, or whose lock was removed, gives up
//! before committing. No clocks of two machines are ever compared.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::host::{self, ProcessIdentity};
use super::Repository;
use crate::backend::{Backend, BackendError, FileKind, WriteMode};
use crate::format::PackId;
use crate::{Error, Result};

/// Name prefix of create registrations.
pub const CREATE_PREFIX: &str = "create-";
/// Name prefix of prune intents.
pub const PRUNE_PREFIX: &str = "prune-";

/// How often a holder rewrites its lock (the promise written in it).
pub const DEFAULT_REFRESH_SECS: u64 = 120;
/// A lock unchanged for this many of its refresh periods is stale.
pub const STALE_FACTOR: u64 = 5;
/// Staleness period of v0.1 locks, which were never refreshed.
const LEGACY_STALE: Duration = Duration::from_secs(DEFAULT_REFRESH_SECS * STALE_FACTOR);

/// Who holds a lock (stored as JSON in the lock object).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockInfo {
    /// Host name of the process (informational).
    pub host: String,
    /// Process id (in the holder's PID namespace).
    pub pid: u32,
    /// When the lock was taken, ns since the epoch (informational only).
    pub time_ns: i64,
    /// For prune intents: the packs that this prune may delete.
    #[serde(default)]
    pub packs: Vec<String>,
    /// Machine, boot, PID namespace and start time of the holder.
    #[serde(default, flatten)]
    pub identity: ProcessIdentity,
    /// Refresh counter: incremented at every heartbeat.
    #[serde(default)]
    pub refresh: u64,
    /// The holder rewrites the lock at least this often (0: never, v0.1).
    #[serde(default)]
    pub refresh_secs: u64,
    /// Random, so that a retried create-if-absent recognises its own object.
    #[serde(default)]
    pub nonce: String,
}

/// What a reader can tell about a lock's holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Provably running (same machine, boot and PID namespace).
    Alive,
    /// Provably gone, and why.
    Dead(String),
    /// Cannot be checked from here (another machine or namespace): judge
    /// by its refreshes ([`StaleWatch`]).
    Unknown,
}

fn refresh_secs() -> u64 {
    #[cfg(feature = "failpoints")]
    if let Some(s) = std::env::var("SNAP_TEST_LOCK_REFRESH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return s;
    }
    DEFAULT_REFRESH_SECS
}

impl LockInfo {
    fn mine(packs: Vec<String>) -> LockInfo {
        LockInfo {
            host: super::open::hostname(),
            pid: std::process::id(),
            time_ns: time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64,
            packs,
            identity: ProcessIdentity::current(),
            refresh: 0,
            refresh_secs: refresh_secs(),
            nonce: format!("{:016x}", rand::random::<u64>()),
        }
    }

    /// What this process can prove about the holder (rules L1, L2).
    pub fn liveness(&self, me: &ProcessIdentity) -> Liveness {
        if me.pids_comparable(&self.identity) {
            return match host::start_ticks(self.pid) {
                None => Liveness::Dead(format!("process {} has exited", self.pid)),
                Some(t) if self.identity.start_ticks != 0 && t != self.identity.start_ticks => {
                    Liveness::Dead(format!(
                        "process {} has exited (its pid now belongs to another process)",
                        self.pid
                    ))
                }
                Some(_) => Liveness::Alive,
            };
        }
        if me.earlier_boot_of_this_machine(&self.identity) {
            return Liveness::Dead("its machine has rebooted since".into());
        }
        Liveness::Unknown
    }

    /// How long a reader must see this lock unchanged to judge it stale (L3).
    pub fn stale_after(&self) -> Duration {
        if self.refresh_secs == 0 {
            return LEGACY_STALE;
        }
        Duration::from_secs(self.refresh_secs.max(1) * STALE_FACTOR)
    }

    /// A short description of the holder, for messages.
    pub fn describe(&self) -> String {
        format!("pid {} on {}", self.pid, self.host)
    }
}

/// A reader's record of when it last saw each lock change (rule L3): the
/// interval is measured on this process's monotonic clock only.
#[derive(Debug, Default)]
pub struct StaleWatch {
    seen: HashMap<String, (Vec<u8>, Instant)>,
}

impl StaleWatch {
    /// Records the current bytes of lock `name`; returns for how long they
    /// have been seen unchanged.
    pub fn observe(&mut self, name: &str, bytes: &[u8]) -> Duration {
        let now = Instant::now();
        let e = self
            .seen
            .entry(name.to_string())
            .or_insert_with(|| (bytes.to_vec(), now));
        if e.0 != bytes {
            *e = (bytes.to_vec(), now);
        }
        now - e.1
    }
}

/// The verdict on one lock, from [`judge`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its holder may be running.
    Live(String),
    /// It may be removed, and why.
    Stale(String),
}

/// Judges lock `name` with content `bytes` (None: does not parse), using
/// and updating `watch` (rules L1-L4).
pub fn judge(name: &str, bytes: &[u8], me: &ProcessIdentity, watch: &mut StaleWatch) -> Verdict {
    let unchanged = watch.observe(name, bytes);
    let info = serde_json::from_slice::<LockInfo>(bytes).ok();
    let stale_after = info
        .as_ref()
        .map(|i| i.stale_after())
        .unwrap_or(LEGACY_STALE);
    if let Some(i) = &info {
        match i.liveness(me) {
            Liveness::Alive => return Verdict::Live(format!("{} is running", i.describe())),
            Liveness::Dead(why) => return Verdict::Stale(format!("{}: {why}", i.describe())),
            Liveness::Unknown => {}
        }
    }
    let who = info
        .as_ref()
        .map(|i| i.describe())
        .unwrap_or_else(|| "an unreadable lock".into());
    if unchanged >= stale_after {
        Verdict::Stale(format!(
            "{who}: not refreshed for {}s (stale after {}s)",
            unchanged.as_secs(),
            stale_after.as_secs()
        ))
    } else {
        Verdict::Live(format!(
            "{who}: cannot be checked from this machine; stale if not refreshed for {}s \
             (seen unchanged for {}s)",
            stale_after.as_secs(),
            unchanged.as_secs()
        ))
    }
}

struct Heartbeat {
    stop: Mutex<bool>,
    wake: Condvar,
    /// Set when the lock was found removed, or could not be refreshed in time.
    lost: AtomicBool,
    /// ms since `started` of the last successful write of the lock.
    last_ok_ms: AtomicU64,
    started: Instant,
    stale_after: Duration,
}

impl Heartbeat {
    fn run(&self, backend: &dyn Backend, name: &str, mut info: LockInfo) {
        let every = Duration::from_secs(info.refresh_secs.max(1));
        loop {
            let mut stop = self.stop.lock().unwrap();
            while !*stop {
                let (g, t) = self.wake.wait_timeout(stop, every).unwrap();
                stop = g;
                if t.timed_out() {
                    break;
                }
            }
            if *stop {
                return;
            }
            drop(stop);
            // A lock someone removed (judged stale) is never recreated: the
            // holder has lost it and must not commit (L5).
            match backend.size(FileKind::Lock, name) {
                Err(e) if e.is_not_found() => {
                    self.lost.store(true, Ordering::SeqCst);
                    return;
                }
                Err(_) => continue,
                Ok(_) => {}
            }
            info.refresh += 1;
            let body = serde_json::to_vec(&info).expect("lock info serializes");
            if backend
                .write(FileKind::Lock, name, &body, WriteMode::Overwrite)
                .is_ok()
            {
                self.last_ok_ms
                    .store(self.started.elapsed().as_millis() as u64, Ordering::SeqCst);
            }
        }
    }
}

/// A lock object this process holds, refreshed in the background; deleted
/// on release or drop.
pub struct LockGuard {
    backend: Arc<dyn Backend>,
    name: String,
    beat: Arc<Heartbeat>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LockGuard(locks/{})", self.name)
    }
}

impl LockGuard {
    /// The lock's object name under `locks/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Fails unless the lock is still ours: not removed by another process,
    /// and refreshed recently enough that no reader can have judged it
    /// stale (rule L5). Call right before a commit point.
    pub fn ensure_held(&self) -> Result<()> {
        let last_ok = Duration::from_millis(self.beat.last_ok_ms.load(Ordering::SeqCst));
        let since = self.beat.started.elapsed().saturating_sub(last_ok);
        // Keep a margin of one refresh period below the staleness bound.
        let margin = self.beat.stale_after / STALE_FACTOR as u32;
        let removed = self.beat.lost.load(Ordering::SeqCst)
            || matches!(
                self.backend.size(FileKind::Lock, &self.name),
                Err(ref e) if e.is_not_found()
            );
        if removed || since + margin >= self.beat.stale_after {
            return Err(Error::Invalid(format!(
                "lost the repository lock locks/{} ({}); another process may have judged this \
                 run dead and removed data it relied on: nothing was committed, run it again",
                self.name,
                if removed {
                    "it was removed".to_string()
                } else {
                    format!("not refreshed for {}s", since.as_secs())
                }
            )));
        }
        Ok(())
    }

    fn stop(&mut self) {
        *self.beat.stop.lock().unwrap() = true;
        self.beat.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Deletes the lock now, reporting failure.
    pub fn release(mut self) -> Result<()> {
        self.stop();
        let r = self.backend.delete(FileKind::Lock, &self.name);
        self.name.clear();
        Ok(r?)
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop();
        if !self.name.is_empty() {
            let _ = self.backend.delete(FileKind::Lock, &self.name);
        }
    }
}

/// Creates a new lock object; a retried write that finds an object holding
/// exactly our bytes (its first attempt landed) counts as ours.
fn write_new(repo: &Repository, prefix: &str, info: &LockInfo) -> Result<LockGuard> {
    let body = serde_json::to_vec(info).expect("lock info serializes");
    let backend = repo.backend_handle();
    let name = loop {
        let name = format!("{prefix}{:016x}", rand::random::<u64>());
        match backend.write(FileKind::Lock, &name, &body, WriteMode::CreateNew) {
            Ok(()) => break name,
            Err(BackendError::AlreadyExists(_)) => {
                if backend.read(FileKind::Lock, &name).ok().as_deref() == Some(&body[..]) {
                    break name;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let beat = Arc::new(Heartbeat {
        stop: Mutex::new(false),
        wake: Condvar::new(),
        lost: AtomicBool::new(false),
        last_ok_ms: AtomicU64::new(0),
        started: Instant::now(),
        stale_after: info.stale_after(),
    });
    let thread = {
        let (beat, backend, name, info) =
            (beat.clone(), backend.clone(), name.clone(), info.clone());
        std::thread::Builder::new()
            .name("snap-lock-refresh".into())
            .spawn(move || beat.run(backend.as_ref(), &name, info))
            .map_err(|e| Error::Invalid(format!("cannot start the lock refresh thread: {e}")))?
    };
    Ok(LockGuard {
        backend,
        name,
        beat,
        thread: Some(thread),
    })
}

/// Lists locks whose name starts with `prefix`, with their raw content. A
/// lock deleted while listing is skipped.
pub fn list_raw(repo: &Repository, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (name, _) in repo.backend().list(FileKind::Lock)? {
        if !name.starts_with(prefix) {
            continue;
        }
        match repo.backend().read(FileKind::Lock, &name) {
            Ok(b) => out.push((name, b)),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Lists locks whose name starts with `prefix`, with their content. One
/// that does not parse is returned with `None` (treated as live).
pub fn list(repo: &Repository, prefix: &str) -> Result<Vec<(String, Option<LockInfo>)>> {
    Ok(list_raw(repo, prefix)?
        .into_iter()
        .map(|(n, b)| (n, serde_json::from_slice(&b).ok()))
        .collect())
}

/// The current bytes of a lock, or `None` when it is gone.
pub fn read(repo: &Repository, name: &str) -> Result<Option<Vec<u8>>> {
    match repo.backend().read(FileKind::Lock, name) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
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
pub fn register_create(repo: &Repository) -> Result<(LockGuard, HashSet<PackId>)> {
    let guard = write_new(repo, CREATE_PREFIX, &LockInfo::mine(Vec::new()))?;
    failpoint!("create.after_register");
    // Read the intents only after our registration is durable.
    let mut excluded = HashSet::new();
    for (name, info) in list(repo, PRUNE_PREFIX)? {
        let info = info.ok_or_else(|| {
            Error::corrupt_with(
                format!("locks/{name}"),
                "prune intent does not parse; remove it with `snap unlock` if no prune is running",
                crate::error::Remedy::None,
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
pub fn write_prune_intent(repo: &Repository, packs: &[PackId]) -> Result<LockGuard> {
    let info = LockInfo::mine(packs.iter().map(|p| p.to_hex()).collect());
    write_new(repo, PRUNE_PREFIX, &info)
}
