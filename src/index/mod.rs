//! The SQLite index: blob id -> (pack, offset, lengths), and the list of
//! packs it was built from. It is a per-user cache (one file per repository
//! in the cache directory): everything in it can be rebuilt from the pack
//! headers (`snap repair index`), and no object is ever referenced here
//! before it is durable in the backend. It is never proof that a blob is
//! still in storage: the repository reconciles it with a listing of the
//! packs before trusting it (see `Repository::sync_index`).
//!
//! Every process using the index holds a shared `flock` on `<file>.lock`;
//! replacing the file (a rebuild) takes it exclusively, so that no process
//! still writes through an open connection (and its WAL) to a file that is
//! being replaced. A query that finds the file damaged leaves a marker
//! (`<file>.damaged`): the next open rebuilds the index from the packs.

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Remedy;
use crate::format::pack::{Compression, PackEntry};
use crate::format::{BlobId, BlobKind, PackId};
use crate::{Error, Result};

/// Index schema version (stored in `PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// How long a rebuild waits for other processes to close the index.
const INSTALL_WAIT: Duration = Duration::from_secs(10);

/// Where a blob lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// Its entry in that pack.
    pub entry: PackEntry,
}

/// A handle on the index database.
pub struct Index {
    conn: Connection,
    path: PathBuf,
    /// The shared lock on `<path>.lock` (none for a file being built).
    _lock: Option<File>,
    /// Whether dedup lookups share one read transaction
    /// ([`Index::share_lookups`]), and how many used the open one (0: none
    /// open).
    share: std::cell::Cell<bool>,
    shared_reads: std::cell::Cell<u32>,
}

/// Lookups one shared read transaction serves before it is renewed (so
/// that a long backup never holds back checkpoints of the WAL for long).
const LOOKUPS_PER_READ: u32 = 4096;

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Index({})", self.path.display())
    }
}

/// The rowid of an indexed pack.
fn pack_rowid(tx: &rusqlite::Transaction<'_>, pack: &PackId) -> rusqlite::Result<Option<i64>> {
    tx.query_row(
        "SELECT rowid FROM packs WHERE id = ?1",
        params![&pack.0[..]],
        |r| r.get(0),
    )
    .optional()
}

/// Empties the temp table `gone`, the blob ids that are about to lose
/// their location.
fn reset_gone(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS gone(id BLOB PRIMARY KEY); DELETE FROM gone;")
}

/// Gives every blob in `gone` that has no location any more one of its
/// remaining copies (from `blob_copies`) as its location.
fn promote_copies_of_gone(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO blobs(id, pack, kind, compression, offset, stored_len, raw_len)
         SELECT id, min(pack), kind, compression, offset, stored_len, raw_len
         FROM blob_copies WHERE id IN (SELECT id FROM gone)
           AND id NOT IN (SELECT id FROM blobs) GROUP BY id",
        [],
    )?;
    tx.execute(
        "DELETE FROM blob_copies WHERE id IN (SELECT id FROM gone)
           AND pack = (SELECT b.pack FROM blobs b WHERE b.id = blob_copies.id)",
        [],
    )?;
    Ok(())
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Whether an SQLite error means that the database file is damaged.
pub fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _) if matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
        )
    )
}

/// Whether the file system holding `path` has less than 1 MiB left for
/// this user: SQLite reports some writes that found it full as a "disk
/// I/O error".
fn nearly_full(path: &Path) -> bool {
    let dir = path.parent().unwrap_or(path);
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statvfs is plain old data; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a NUL-terminated path, st a writable buffer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    (st.f_bavail as u64).saturating_mul(st.f_frsize as u64) < 1 << 20
}

/// Takes `flock(op)` on `file`, retrying a non-blocking request until
/// `wait` has passed. Returns false only when another process holds a
/// conflicting lock all that time; a file system without `flock` support
/// counts as locked (the protection is then lost, as without this lock).
fn flock(file: &File, op: libc::c_int, wait: Duration) -> bool {
    let start = Instant::now();
    loop {
        // SAFETY: flock on a valid, open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) } == 0 {
            return true;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => {}
            _ => return true,
        }
        if start.elapsed() >= wait {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lock_file(path: &Path) -> Result<File> {
    let lp = with_suffix(path, ".lock");
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lp)
        .map_err(|e| Error::io(&lp, e))
}

fn remove_if_present(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
    }
}

impl Index {
    /// Opens (creating if needed) the index at `path`.
    pub fn open(path: &Path) -> Result<Index> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let lock = lock_file(path)?;
        // Held only for the instant of a file swap by a rebuild.
        if !flock(&lock, libc::LOCK_SH, INSTALL_WAIT * 6) {
            return Err(Error::io(
                with_suffix(path, ".lock"),
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "another snap process holds the index lock",
                ),
            ));
        }
        Self::open_file(path, Some(lock))
    }

    fn open_file(path: &Path, lock: Option<File>) -> Result<Index> {
        let conn = Connection::open(path).map_err(|e| Self::error(path, e))?;
        let idx = Index {
            conn,
            path: path.into(),
            _lock: lock,
            share: Default::default(),
            shared_reads: Default::default(),
        };
        idx.init().map_err(|e| idx.err(e))?;
        Ok(idx)
    }

    /// An empty index in memory, holding the place of one being rebuilt.
    pub fn placeholder() -> Result<Index> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| Self::error(&path, e))?;
        let idx = Index {
            conn,
            path,
            _lock: None,
            share: Default::default(),
            shared_reads: Default::default(),
        };
        idx.init().map_err(|e| idx.err(e))?;
        Ok(idx)
    }

    /// A new, empty index file beside `path`, to be filled and then put in
    /// its place with [`Index::install`]. Leftovers of builds by processes
    /// that are gone are removed.
    pub fn create_beside(path: &Path) -> Result<Index> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!("{base}.new-");
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix(&prefix)
                    .and_then(|r| r.split('-').next())
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| !crate::repository::tmp::process_alive(p)) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let tmp = dir.join(format!(
            "{prefix}{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        Self::open_file(&tmp, None)
    }

    /// Removes a file made by [`Index::create_beside`] that will not be
    /// installed.
    pub fn discard(self) {
        let path = self.path.clone();
        drop(self);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(with_suffix(&path, suffix));
        }
    }

    /// Puts this freshly built index (from [`Index::create_beside`]) at
    /// `path`, replacing whatever is there (a damaged or stale file, which
    /// is never read), and opens it. The caller must have closed its own
    /// handle on `path`. With `replace` false, an intact index that another
    /// process installed meanwhile is kept and this one discarded.
    pub fn install(self, path: &Path, replace: bool) -> Result<Index> {
        // Leave one self-contained file: no WAL beside it.
        if let Err(e) = self.conn.pragma_update(None, "journal_mode", "DELETE") {
            let e = self.err(e);
            self.discard();
            return Err(e);
        }
        let built = self.path.clone();
        drop(self);
        let lock = lock_file(path)?;
        let usable_now = || path.exists() && !Self::marked_damaged(path);
        if !flock(&lock, libc::LOCK_EX, INSTALL_WAIT) {
            if !replace && usable_now() {
                let _ = std::fs::remove_file(&built);
                return Self::open(path);
            }
            let _ = std::fs::remove_file(&built);
            return Err(Error::io(
                with_suffix(path, ".lock"),
                std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "the index is in use by another snap process; run this again when it has finished",
                ),
            ));
        }
        if !replace && usable_now() {
            let _ = std::fs::remove_file(&built);
        } else {
            for suffix in ["-wal", "-shm", "-journal"] {
                remove_if_present(&with_suffix(path, suffix))?;
            }
            std::fs::rename(&built, path).map_err(|e| Error::io(path, e))?;
            remove_if_present(&with_suffix(path, ".damaged"))?;
        }
        drop(lock); // releases the exclusive lock
        Self::open(path)
    }

    /// Whether a query found the file at `path` damaged (see
    /// [`Index::install`]).
    pub fn marked_damaged(path: &Path) -> bool {
        with_suffix(path, ".damaged").exists()
    }

    fn error(path: &Path, e: rusqlite::Error) -> Error {
        if is_damage(&e) {
            if path.exists() {
                // The next open rebuilds it (see the module doc).
                let _ = std::fs::write(with_suffix(path, ".damaged"), e.to_string());
            }
            return Error::IndexDamaged {
                path: path.into(),
                cause: e,
            };
        }
        let disk_full = match &e {
            rusqlite::Error::SqliteFailure(f, _) => {
                f.code == rusqlite::ErrorCode::DiskFull
                    || (f.code == rusqlite::ErrorCode::SystemIoFailure && nearly_full(path))
            }
            _ => false,
        };
        Error::Index {
            path: path.into(),
            cause: e,
            disk_full,
        }
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Self::error(&self.path, e)
    }

    fn init(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(Duration::from_secs(120))?;
        // A fixed query plan per statement: without it, SQLite may re-prepare
        // a cached statement whenever a new blob id is bound (seen as a
        // re-parse of the SQL on every dedup lookup).
        self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "cache_size", -65536)?; // 64 MiB
        let v: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if v == 0 {
            self.conn.execute_batch(
                "BEGIN IMMEDIATE;
                 CREATE TABLE IF NOT EXISTS packs(
                    rowid INTEGER PRIMARY KEY,
                    id BLOB NOT NULL UNIQUE,
                    kind INTEGER NOT NULL,
                    size INTEGER NOT NULL,
                    blobs INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS blobs(
                    id BLOB PRIMARY KEY,
                    pack INTEGER NOT NULL,
                    kind INTEGER NOT NULL,
                    compression INTEGER NOT NULL,
                    offset INTEGER NOT NULL,
                    stored_len INTEGER NOT NULL,
                    raw_len INTEGER NOT NULL) WITHOUT ROWID;
                 CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs(pack);
                 PRAGMA user_version = 1;
                 COMMIT;",
            )?;
        } else if v != SCHEMA_VERSION {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "index schema version {v}"
            )));
        }
        // Further copies of a blob that is already indexed in another pack
        // (written by concurrent creates, or by a prune's repack). `blobs`
        // keeps one location per blob; when that pack is removed, a copy
        // from here takes its place (see `remove_pack`).
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS blob_copies(
                id BLOB NOT NULL,
                pack INTEGER NOT NULL,
                kind INTEGER NOT NULL,
                compression INTEGER NOT NULL,
                offset INTEGER NOT NULL,
                stored_len INTEGER NOT NULL,
                raw_len INTEGER NOT NULL,
                PRIMARY KEY(id, pack)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS blob_copies_by_pack ON blob_copies(pack);",
        )?;
        // Blobs found damaged (failed authentication or their id) in a
        // pack still in storage, keyed by pack *id* (not rowid) so that the
        // record survives `clear()` and a rebuild from the pack headers.
        // Such a location is never in `blobs`/`blob_copies`: the index
        // treats the blob as absent there (see `mark_damaged`).
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS damaged(
                pack BLOB NOT NULL,
                id BLOB NOT NULL,
                kind INTEGER NOT NULL,
                compression INTEGER NOT NULL,
                offset INTEGER NOT NULL,
                stored_len INTEGER NOT NULL,
                raw_len INTEGER NOT NULL,
                PRIMARY KEY(pack, id)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS damaged_by_id ON damaged(id);",
        )?;
        Ok(())
    }

    /// Checks SQLite's own consistency of the file.
    pub fn integrity_check(&self) -> Result<()> {
        let r: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if r == "ok" {
            Ok(())
        } else {
            let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT);
            Err(self.err(rusqlite::Error::SqliteFailure(code, Some(r))))
        }
    }

    /// Where a blob is stored, if indexed.
    pub fn lookup(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        self.shared_read()?;
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT p.id, b.kind, b.compression, b.offset, b.stored_len, b.raw_len
                 FROM blobs b JOIN packs p ON p.rowid = b.pack WHERE b.id = ?1",
            )
            .map_err(|e| self.err(e))?;
        st.query_row(params![&id.0[..]], |r| {
            let pack: Vec<u8> = r.get(0)?;
            Ok((
                pack,
                r.get::<_, u8>(1)?,
                r.get::<_, u8>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, u32>(5)?,
            ))
        })
        .optional()
        .map_err(|e| self.err(e))?
        .map(|(pack, kind, comp, offset, stored_len, raw_len)| {
            let bad = || {
                Error::corrupt_with(
                    format!("index {}", self.path.display()),
                    "bad row",
                    Remedy::RebuildIndex,
                )
            };
            Ok(BlobLocation {
                pack: PackId::from_slice(&pack).ok_or_else(bad)?,
                entry: PackEntry {
                    kind: BlobKind::from_code(kind).ok_or_else(bad)?,
                    compression: Compression::from_code(comp).ok_or_else(bad)?,
                    id: *id,
                    offset: offset as u64,
                    stored_len,
                    raw_len,
                },
            })
        })
        .transpose()
    }

    /// While `on`, [`Index::contains`], [`Index::blob_packs`] and
    /// [`Index::lookup`] (the look-ups of deduplication and of a restore's
    /// planning, one or more per file) share one read
    /// transaction instead of each opening its own, which costs file locks
    /// and a stat per lookup. The shared transaction ends at the next write
    /// (every `&mut self` method), after [`LOOKUPS_PER_READ`] lookups, and
    /// when sharing is turned off. It sees the index as of its start; a
    /// pack another process indexes meanwhile is seen at its renewal (a
    /// missed dedup stores a blob again, it never references a lost one:
    /// removals are seen by `create`'s reconciliation and its exclusion set).
    pub fn share_lookups(&self, on: bool) -> Result<()> {
        self.share.set(on);
        if !on {
            self.end_shared_read()?;
        }
        Ok(())
    }

    fn shared_read(&self) -> Result<()> {
        if !self.share.get() {
            return Ok(());
        }
        let n = self.shared_reads.get();
        if n >= LOOKUPS_PER_READ {
            self.end_shared_read()?;
        } else if n > 0 {
            self.shared_reads.set(n + 1);
            return Ok(());
        }
        if self.conn.is_autocommit() {
            self.conn.execute_batch("BEGIN").map_err(|e| self.err(e))?;
            self.shared_reads.set(1);
        }
        Ok(())
    }

    fn end_shared_read(&self) -> Result<()> {
        if self.shared_reads.replace(0) > 0 && !self.conn.is_autocommit() {
            self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Whether a blob is indexed.
    pub fn contains(&self, id: &BlobId) -> Result<bool> {
        self.shared_read()?;
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        st.exists(params![&id.0[..]]).map_err(|e| self.err(e))
    }

    /// Whether the index holds a copy of `id` in a pack outside `excluded`
    /// (the prune protocol's exclusion set): the index's part of the answer
    /// to "may this run reference the blob?" (`repository::saver`).
    pub fn has_copy_outside(
        &self,
        id: &BlobId,
        excluded: &std::collections::HashSet<PackId>,
    ) -> Result<bool> {
        if excluded.is_empty() {
            return self.contains(id);
        }
        Ok(self.blob_packs(id)?.iter().any(|p| !excluded.contains(p)))
    }

    /// Records a durable pack and its blobs in one transaction. A blob
    /// already indexed in another pack keeps its first location.
    pub fn add_pack(
        &mut self,
        pack: &PackId,
        kind: BlobKind,
        size: u64,
        entries: &[PackEntry],
    ) -> Result<()> {
        self.end_shared_read()?;
        let path = self.path.clone();
        let err = |e| Self::error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "INSERT OR IGNORE INTO packs(id, kind, size, blobs) VALUES (?1, ?2, ?3, ?4)",
            params![&pack.0[..], kind.code(), size as i64, entries.len() as i64],
        )
        .map_err(err)?;
        let rowid: i64 = pack_rowid(&tx, pack)
            .map_err(err)?
            .expect("the pack was just inserted");
        // Blobs recorded damaged in this pack stay out (a header re-read
        // must not bring them back).
        let bad: std::collections::HashSet<Vec<u8>> = {
            let mut st = tx
                .prepare_cached("SELECT id FROM damaged WHERE pack = ?1")
                .map_err(err)?;
            let rows = st
                .query_map(params![&pack.0[..]], |r| r.get::<_, Vec<u8>>(0))
                .map_err(err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(err)?
        };
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO blobs(id, pack, kind, compression, offset, stored_len, raw_len)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err)?;
            let mut copy = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO blob_copies(id, pack, kind, compression, offset, stored_len, raw_len)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
                     WHERE EXISTS (SELECT 1 FROM blobs WHERE id = ?1 AND pack != ?2)",
                )
                .map_err(err)?;
            for e in entries.iter().filter(|e| !bad.contains(&e.id.0[..])) {
                let row = params![
                    &e.id.0[..],
                    rowid,
                    e.kind.code(),
                    e.compression.code(),
                    e.offset as i64,
                    e.stored_len,
                    e.raw_len
                ];
                if st.execute(row).map_err(err)? == 0 {
                    copy.execute(row).map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }

    /// Removes a pack and every blob location pointing into it. A blob that
    /// has a copy in another indexed pack is re-pointed at that copy.
    pub fn remove_pack(&mut self, pack: &PackId) -> Result<()> {
        self.end_shared_read()?;
        let path = self.path.clone();
        let err = |e| Self::error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let rowid = pack_rowid(&tx, pack).map_err(err)?;
        // A pack that left storage takes its damage records with it.
        tx.execute("DELETE FROM damaged WHERE pack = ?1", params![&pack.0[..]])
            .map_err(err)?;
        let Some(rowid) = rowid else {
            return tx.commit().map_err(err);
        };
        reset_gone(&tx).map_err(err)?;
        tx.execute("DELETE FROM blob_copies WHERE pack = ?1", params![rowid])
            .map_err(err)?;
        tx.execute(
            "INSERT INTO gone SELECT id FROM blobs WHERE pack = ?1",
            params![rowid],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM blobs WHERE pack = ?1", params![rowid])
            .map_err(err)?;
        promote_copies_of_gone(&tx).map_err(err)?;
        tx.execute("DELETE FROM packs WHERE id = ?1", params![&pack.0[..]])
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Records blobs of `pack` found damaged (they failed authentication or
    /// their id, or the pack is truncated): each leaves `blobs` and
    /// `blob_copies` for that pack (a copy in another pack takes over its
    /// location, as in [`Index::remove_pack`]) and is kept in `damaged`,
    /// which `add_pack` consults and `clear` keeps. From then on lookups
    /// treat the blob as absent unless another copy exists, so the next
    /// `create` stores it again. Returns how many records are new.
    pub fn mark_damaged(&mut self, pack: &PackId, entries: &[PackEntry]) -> Result<u64> {
        self.end_shared_read()?;
        let path = self.path.clone();
        let err = |e| Self::error(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let rowid = pack_rowid(&tx, pack).map_err(err)?;
        reset_gone(&tx).map_err(err)?;
        let mut added = 0;
        for e in entries {
            added += tx
                .execute(
                    "INSERT OR IGNORE INTO damaged(pack, id, kind, compression, offset, stored_len, raw_len)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        &pack.0[..],
                        &e.id.0[..],
                        e.kind.code(),
                        e.compression.code(),
                        e.offset as i64,
                        e.stored_len,
                        e.raw_len
                    ],
                )
                .map_err(err)? as u64;
            let Some(rowid) = rowid else { continue };
            tx.execute(
                "DELETE FROM blob_copies WHERE id = ?1 AND pack = ?2",
                params![&e.id.0[..], rowid],
            )
            .map_err(err)?;
            let moved = tx
                .execute(
                    "DELETE FROM blobs WHERE id = ?1 AND pack = ?2",
                    params![&e.id.0[..], rowid],
                )
                .map_err(err)?;
            if moved > 0 {
                tx.execute(
                    "INSERT OR IGNORE INTO gone(id) VALUES (?1)",
                    params![&e.id.0[..]],
                )
                .map_err(err)?;
            }
        }
        promote_copies_of_gone(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(added)
    }

    /// Records every blob of `pack` the index knows (its locations and its
    /// extra copies) as damaged: for a pack that is truncated or whose
    /// header no longer reads. Returns how many records are new.
    pub fn mark_pack_damaged(&mut self, pack: &PackId) -> Result<u64> {
        self.end_shared_read()?;
        let all = self.pack_all_entries(pack)?;
        self.mark_damaged(pack, &all)
    }

    /// Every entry of one pack the index knows: its blob locations and its
    /// extra copies (not the entries recorded damaged).
    pub fn pack_all_entries(&self, pack: &PackId) -> Result<Vec<PackEntry>> {
        let mut all = self.pack_entries(pack)?;
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT c.id, c.kind, c.compression, c.offset, c.stored_len, c.raw_len
                 FROM blob_copies c JOIN packs p ON p.rowid = c.pack WHERE p.id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![&pack.0[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, u32>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (id, kind, comp, offset, stored_len, raw_len) = row.map_err(|e| self.err(e))?;
            let bad = || {
                Error::corrupt_with(
                    format!("index {}", self.path.display()),
                    "bad copy row",
                    Remedy::RebuildIndex,
                )
            };
            all.push(PackEntry {
                id: BlobId::from_slice(&id).ok_or_else(bad)?,
                kind: BlobKind::from_code(kind).ok_or_else(bad)?,
                compression: Compression::from_code(comp).ok_or_else(bad)?,
                offset: offset as u64,
                stored_len,
                raw_len,
            });
        }
        all.sort_by_key(|e| e.offset);
        Ok(all)
    }

    /// Packs with blobs recorded damaged, with how many.
    pub fn damaged_packs(&self) -> Result<Vec<(PackId, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT pack, count(*) FROM damaged GROUP BY pack ORDER BY pack")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (p, n) = row.map_err(|e| self.err(e))?;
            let bad = || {
                Error::corrupt_with(
                    format!("index {}", self.path.display()),
                    "bad damage row",
                    Remedy::RebuildIndex,
                )
            };
            out.push((PackId::from_slice(&p).ok_or_else(bad)?, n as u64));
        }
        Ok(out)
    }

    fn damaged_rows(&self, sql: &str, key: &[u8]) -> Result<Vec<(PackId, PackEntry)>> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![key], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, u8>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, u32>(6)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (pack, id, kind, comp, offset, stored_len, raw_len) =
                row.map_err(|e| self.err(e))?;
            let bad = || {
                Error::corrupt_with(
                    format!("index {}", self.path.display()),
                    "bad damage row",
                    Remedy::RebuildIndex,
                )
            };
            out.push((
                PackId::from_slice(&pack).ok_or_else(bad)?,
                PackEntry {
                    id: BlobId::from_slice(&id).ok_or_else(bad)?,
                    kind: BlobKind::from_code(kind).ok_or_else(bad)?,
                    compression: Compression::from_code(comp).ok_or_else(bad)?,
                    offset: offset as u64,
                    stored_len,
                    raw_len,
                },
            ));
        }
        Ok(out)
    }

    /// The entries recorded damaged in one pack, by offset.
    pub fn damaged_entries(&self, pack: &PackId) -> Result<Vec<PackEntry>> {
        Ok(self
            .damaged_rows(
                "SELECT pack, id, kind, compression, offset, stored_len, raw_len
                 FROM damaged WHERE pack = ?1 ORDER BY offset",
                &pack.0,
            )?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    /// Every damage record, by pack: what a rebuilt index carries over.
    pub fn damaged_records(&self) -> Result<Vec<(PackId, Vec<PackEntry>)>> {
        let mut out = Vec::new();
        for (pack, _) in self.damaged_packs()? {
            out.push((pack, self.damaged_entries(&pack)?));
        }
        Ok(out)
    }

    /// The damage records of the index file at `path`, read-only and
    /// without taking part in its use: for a rebuild that replaces a file
    /// this process could not open (best effort: the file may be damaged).
    pub fn damaged_records_at(path: &Path) -> Result<Vec<(PackId, Vec<PackEntry>)>> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| Self::error(path, e))?;
        let idx = Index {
            conn,
            path: path.into(),
            _lock: None,
            share: Default::default(),
            shared_reads: Default::default(),
        };
        idx.damaged_records()
    }

    /// Where a blob was recorded damaged (any pack), if it was.
    pub fn damaged_blob(&self, id: &BlobId) -> Result<Option<(PackId, PackEntry)>> {
        Ok(self
            .damaged_rows(
                "SELECT pack, id, kind, compression, offset, stored_len, raw_len
                 FROM damaged WHERE id = ?1 ORDER BY pack LIMIT 1",
                &id.0,
            )?
            .into_iter()
            .next())
    }

    /// Drops the damage records of packs that are no longer in storage.
    pub fn retain_damaged(&mut self, present: &std::collections::HashSet<PackId>) -> Result<()> {
        self.end_shared_read()?;
        for (p, _) in self.damaged_packs()? {
            if !present.contains(&p) {
                self.conn
                    .execute("DELETE FROM damaged WHERE pack = ?1", params![&p.0[..]])
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// Every indexed pack holding a copy of this blob (its location first).
    pub fn blob_packs(&self, id: &BlobId) -> Result<Vec<PackId>> {
        self.shared_read()?;
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT p.id FROM blobs b JOIN packs p ON p.rowid = b.pack WHERE b.id = ?1
                 UNION ALL
                 SELECT p.id FROM blob_copies c JOIN packs p ON p.rowid = c.pack WHERE c.id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![&id.0[..]], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let b = r.map_err(|e| self.err(e))?;
            out.push(PackId::from_slice(&b).ok_or_else(|| {
                Error::corrupt_with(
                    format!("index {}", self.path.display()),
                    "bad pack row",
                    Remedy::RebuildIndex,
                )
            })?);
        }
        Ok(out)
    }

    /// Ids of the extra copies (not the indexed location) a pack holds,
    /// with their stored length.
    pub fn pack_copies(&self, pack: &PackId) -> Result<Vec<(BlobId, u32)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT c.id, c.stored_len FROM blob_copies c JOIN packs p ON p.rowid = c.pack
                 WHERE p.id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![&pack.0[..]], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u32>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (b, len) = r.map_err(|e| self.err(e))?;
            out.push((
                BlobId::from_slice(&b).ok_or_else(|| {
                    Error::corrupt_with(
                        format!("index {}", self.path.display()),
                        "bad blob row",
                        Remedy::RebuildIndex,
                    )
                })?,
                len,
            ));
        }
        Ok(out)
    }

    /// Every indexed pack with its kind and size.
    pub fn packs(&self) -> Result<Vec<(PackId, BlobKind, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, kind, size FROM packs ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, size) = row.map_err(|e| self.err(e))?;
            let bad = || {
                Error::corrupt_with(
                    format!("index {}", self.path.display()),
                    "bad pack row",
                    Remedy::RebuildIndex,
                )
            };
            out.push((
                PackId::from_slice(&id).ok_or_else(bad)?,
                BlobKind::from_code(kind).ok_or_else(bad)?,
                size as u64,
            ));
        }
        Ok(out)
    }

    /// Every blob entry of one pack, by offset.
    pub fn pack_entries(&self, pack: &PackId) -> Result<Vec<PackEntry>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT b.id, b.kind, b.compression, b.offset, b.stored_len, b.raw_len
                 FROM blobs b JOIN packs p ON p.rowid = b.pack WHERE p.id = ?1 ORDER BY b.offset",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![&pack.0[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, u32>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, comp, offset, stored_len, raw_len) = row.map_err(|e| self.err(e))?;
            let bad = || {
                Error::corrupt_with(
                    format!("index {}", self.path.display()),
                    "bad blob row",
                    Remedy::RebuildIndex,
                )
            };
            out.push(PackEntry {
                id: BlobId::from_slice(&id).ok_or_else(bad)?,
                kind: BlobKind::from_code(kind).ok_or_else(bad)?,
                compression: Compression::from_code(comp).ok_or_else(bad)?,
                offset: offset as u64,
                stored_len,
                raw_len,
            });
        }
        Ok(out)
    }

    /// The first 8 bytes of every indexed blob id, sorted; `None` when the
    /// index holds more than `limit` blobs (the caller then keeps using
    /// point look-ups).
    pub fn blob_prefixes(&self, limit: u64) -> Result<Option<Vec<u64>>> {
        let (n, _) = self.counts()?;
        if n > limit {
            return Ok(None);
        }
        let mut st = self
            .conn
            .prepare("SELECT id FROM blobs")
            .map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(n as usize);
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let id: Vec<u8> = r.get(0).map_err(|e| self.err(e))?;
            if id.len() >= 8 {
                out.push(u64::from_le_bytes(id[..8].try_into().unwrap()));
            }
        }
        out.sort_unstable();
        Ok(Some(out))
    }

    /// Drops every row (before a rebuild) except the damage records: a
    /// pack header still lists a damaged blob, and the rebuild must not
    /// index it again.
    pub fn clear(&mut self) -> Result<()> {
        self.end_shared_read()?;
        self.conn
            .execute_batch(
                "BEGIN IMMEDIATE; DELETE FROM blobs; DELETE FROM blob_copies;
                 DELETE FROM packs; COMMIT;",
            )
            .map_err(|e| self.err(e))
    }

    /// Number of indexed blobs and packs.
    pub fn counts(&self) -> Result<(u64, u64)> {
        let b: i64 = self
            .conn
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let p: i64 = self
            .conn
            .query_row("SELECT count(*) FROM packs", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok((b as u64, p as u64))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u8, offset: u64) -> PackEntry {
        PackEntry {
            kind: BlobKind::Data,
            compression: Compression::None,
            id: BlobId([id; 32]),
            offset,
            stored_len: 10,
            raw_len: 10,
        }
    }

    #[test]
    fn removing_a_pack_repoints_blobs_with_copies() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let (p1, p2) = (PackId([1; 32]), PackId([2; 32]));
        idx.add_pack(&p1, BlobKind::Data, 100, &[entry(7, 0), entry(8, 10)])
            .unwrap();
        idx.add_pack(&p2, BlobKind::Data, 100, &[entry(7, 50)])
            .unwrap();
        assert_eq!(idx.lookup(&BlobId([7; 32])).unwrap().unwrap().pack, p1);
        assert_eq!(idx.blob_packs(&BlobId([7; 32])).unwrap(), vec![p1, p2]);
        assert_eq!(idx.pack_copies(&p2).unwrap().len(), 1);
        idx.remove_pack(&p1).unwrap();
        let l = idx.lookup(&BlobId([7; 32])).unwrap().unwrap();
        assert_eq!((l.pack, l.entry.offset), (p2, 50));
        assert!(!idx.contains(&BlobId([8; 32])).unwrap());
        assert_eq!(idx.blob_packs(&BlobId([7; 32])).unwrap(), vec![p2]);
        assert!(idx.pack_copies(&p2).unwrap().is_empty());
        idx.remove_pack(&p2).unwrap();
        assert!(!idx.contains(&BlobId([7; 32])).unwrap());
        assert_eq!(idx.counts().unwrap(), (0, 0));
    }

    #[test]
    fn damaged_blobs_are_absent_and_stay_out_across_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = Index::open(&dir.path().join("i.sqlite")).unwrap();
        let (p1, p2) = (PackId([1; 32]), PackId([2; 32]));
        let (a, b) = (BlobId([7; 32]), BlobId([8; 32]));
        idx.add_pack(&p1, BlobKind::Data, 100, &[entry(7, 0), entry(8, 10)])
            .unwrap();
        idx.add_pack(&p2, BlobKind::Data, 100, &[entry(7, 50)])
            .unwrap();
        // 7 has a copy in p2, which takes over; 8 has none: absent.
        assert_eq!(
            idx.mark_damaged(&p1, &[entry(7, 0), entry(8, 10)]).unwrap(),
            2
        );
        assert_eq!(idx.lookup(&a).unwrap().unwrap().pack, p2);
        assert_eq!(idx.blob_packs(&a).unwrap(), vec![p2]);
        assert!(!idx.contains(&b).unwrap());
        assert_eq!(idx.damaged_blob(&b).unwrap().unwrap().0, p1);
        assert_eq!(idx.damaged_packs().unwrap(), vec![(p1, 2)]);
        // A rebuild from the headers keeps them out.
        idx.clear().unwrap();
        idx.add_pack(&p1, BlobKind::Data, 100, &[entry(7, 0), entry(8, 10)])
            .unwrap();
        idx.add_pack(&p2, BlobKind::Data, 100, &[entry(7, 50)])
            .unwrap();
        assert!(!idx.contains(&b).unwrap());
        assert_eq!(idx.blob_packs(&a).unwrap(), vec![p2]);
        assert_eq!(idx.damaged_entries(&p1).unwrap().len(), 2);
        // When the pack leaves storage, its records go.
        idx.remove_pack(&p1).unwrap();
        assert!(idx.damaged_packs().unwrap().is_empty());
        idx.mark_damaged(&p2, &[entry(7, 50)]).unwrap();
        assert!(!idx.contains(&a).unwrap());
        idx.retain_damaged(&std::collections::HashSet::new())
            .unwrap();
        assert!(idx.damaged_packs().unwrap().is_empty());
    }
}
