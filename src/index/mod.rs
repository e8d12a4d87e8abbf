//! The SQLite index: blob id -> (pack, offset, lengths), and the list of
//! packs it was built from. It is a cache: everything in it can be rebuilt
//! from the pack headers (`snap repair index`), and no object is ever
//! referenced here before it is durable in the backend.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::format::pack::{Compression, PackEntry};
use crate::format::{BlobId, BlobKind, PackId};
use crate::{Error, Result};

/// Index schema version (stored in `PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

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
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Index({})", self.path.display())
    }
}

impl Index {
    /// Opens (creating if needed) the index at `path`.
    pub fn open(path: &Path) -> Result<Index> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let conn = Connection::open(path).map_err(|e| Error::Index {
            path: path.into(),
            source: e,
        })?;
        let idx = Index {
            conn,
            path: path.into(),
        };
        idx.init().map_err(|e| idx.err(e))?;
        Ok(idx)
    }

    /// Opens the index at `path`; a file that is not a valid SQLite
    /// database (truncated, overwritten) is deleted and a new, empty index
    /// created in its place: the index is a cache of the pack headers, so
    /// dropping it loses nothing. Returns the index and whether it is new
    /// (and so must be filled from the packs).
    pub fn open_or_recreate(path: &Path) -> Result<(Index, bool)> {
        let fresh = !path.exists();
        match Index::open(path) {
            Ok(i) => Ok((i, fresh)),
            Err(Error::Index {
                source: rusqlite::Error::SqliteFailure(f, _),
                ..
            }) if matches!(
                f.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
            {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.as_os_str().to_owned();
                    p.push(suffix);
                    match std::fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(PathBuf::from(p), e)),
                    }
                }
                Ok((Index::open(path)?, true))
            }
            Err(e) => Err(e),
        }
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::Index {
            path: self.path.clone(),
            source: e,
        }
    }

    fn init(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(Duration::from_secs(120))?;
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
            Err(Error::corrupt(format!("index {}", self.path.display()), r))
        }
    }

    /// Where a blob is stored, if indexed.
    pub fn lookup(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
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
            let bad = || Error::corrupt(format!("index {}", self.path.display()), "bad row");
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

    /// Whether a blob is indexed.
    pub fn contains(&self, id: &BlobId) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        st.exists(params![&id.0[..]]).map_err(|e| self.err(e))
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
        let path = self.path.clone();
        let err = |e| Error::Index {
            path: path.clone(),
            source: e,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "INSERT OR IGNORE INTO packs(id, kind, size, blobs) VALUES (?1, ?2, ?3, ?4)",
            params![&pack.0[..], kind.code(), size as i64, entries.len() as i64],
        )
        .map_err(err)?;
        let rowid: i64 = tx
            .query_row(
                "SELECT rowid FROM packs WHERE id = ?1",
                params![&pack.0[..]],
                |r| r.get(0),
            )
            .map_err(err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO blobs(id, pack, kind, compression, offset, stored_len, raw_len)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err)?;
            for e in entries {
                st.execute(params![
                    &e.id.0[..],
                    rowid,
                    e.kind.code(),
                    e.compression.code(),
                    e.offset as i64,
                    e.stored_len,
                    e.raw_len
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Removes a pack and every blob location pointing into it.
    pub fn remove_pack(&mut self, pack: &PackId) -> Result<()> {
        let path = self.path.clone();
        let err = |e| Error::Index {
            path: path.clone(),
            source: e,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "DELETE FROM blobs WHERE pack = (SELECT rowid FROM packs WHERE id = ?1)",
            params![&pack.0[..]],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM packs WHERE id = ?1", params![&pack.0[..]])
            .map_err(err)?;
        tx.commit().map_err(err)
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
            let bad = || Error::corrupt(format!("index {}", self.path.display()), "bad pack row");
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
            let bad = || Error::corrupt(format!("index {}", self.path.display()), "bad blob row");
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

    /// Drops every row (before a rebuild).
    pub fn clear(&mut self) -> Result<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE; DELETE FROM blobs; DELETE FROM packs; COMMIT;")
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
