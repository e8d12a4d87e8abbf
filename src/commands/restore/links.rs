//! Hard links across windows. The first name of a hard-linked inode met
//! by the walk is restored as a file; every later name is linked to it,
//! in its own window, so what is kept of the first name (its directory,
//! path from the target, name and inode: about 100 bytes and the path) must
//! outlive the window that made it. It is kept until the inode's last name
//! (of the `nlink` it had at backup) is met, which is soon for most
//! groups; groups whose other names are outside the snapshot or the
//! selection stay to the end.
//!
//! At most [`IN_MEMORY`] groups are held in memory; past that, the groups
//! of windows already restored move to a temporary SQLite table (a private
//! file SQLite makes in the system's temporary directory and deletes
//! itself, even when the process is killed) and come back when another of
//! their names is met. So a snapshot of millions of hard-linked files (a
//! tree of rotated hard-link backups) restores every link, in bounded
//! memory.
//!
//! A later name in a later window reaches the first through its
//! directory, opened again below the target one name at a time (never
//! through a symlink), and the link made is checked to be of the inode
//! restored. That directory has its final mode by then: restoring as a
//! user who may not search it (a mode without `x` for the owner), the link
//! fails and is reported, naming the first file.

use std::collections::HashMap;
use std::ffi::CString;

use rusqlite::{params, Connection, OptionalExtension};

use super::dirfd::Ident;
use crate::format::tree::Node;
use crate::{Error, Result};

/// Hard-linked inodes whose first name is kept in memory.
const IN_MEMORY: usize = 100_000;

/// A hard-linked inode: device and inode number at backup.
pub type Key = (u64, u64);

/// What became of the first name of an inode.
#[derive(Clone, Debug)]
pub enum First {
    /// In the window being restored, not done yet.
    Pending,
    /// In place: its directory (by number, and by path from the target,
    /// for when that directory is no longer open), name and inode.
    Done {
        dir: u32,
        rel: Vec<u8>,
        name: CString,
        id: Ident,
    },
    /// Not restored; `damage`: its data is missing or damaged.
    Failed {
        rel: Vec<u8>,
        name: CString,
        damage: bool,
    },
}

struct Group {
    /// Names of the inode not met yet.
    left: u64,
    first: First,
}

/// The role of a file in its hard-link group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Not hard-linked (or the only name met).
    None,
    /// The first name met: restored as a file.
    First(Key),
    /// A later name: linked to the first.
    To(Key),
}

/// The hard-link groups met so far.
pub struct Links {
    mem: HashMap<Key, Group>,
    cap: usize,
    spill: Option<Connection>,
    spilled: u64,
}

fn db_error(e: rusqlite::Error) -> Error {
    Error::io(
        "restore's temporary table of hard links",
        std::io::Error::other(e.to_string()),
    )
}

impl Links {
    /// No group yet; at most `cap` (default [`IN_MEMORY`]) in memory.
    pub fn new(cap: Option<usize>) -> Links {
        Links {
            mem: HashMap::new(),
            cap: cap.unwrap_or(IN_MEMORY).max(1),
            spill: None,
            spilled: 0,
        }
    }

    /// The role of the file `node` about to be planned, noting it.
    pub fn classify(&mut self, node: &Node) -> Result<Link> {
        if node.nlink < 2 {
            return Ok(Link::None);
        }
        let key = (node.dev, node.inode);
        if !self.mem.contains_key(&key) {
            if let Some(g) = self.unspill(key)? {
                self.mem.insert(key, g);
            }
        }
        if let Some(g) = self.mem.get_mut(&key) {
            g.left = g.left.saturating_sub(1);
            return Ok(Link::To(key));
        }
        self.mem.insert(
            key,
            Group {
                left: node.nlink - 1,
                first: First::Pending,
            },
        );
        Ok(Link::First(key))
    }

    /// What became of the first name of `key`.
    pub fn first(&self, key: &Key) -> &First {
        &self.mem.get(key).expect("met by classify").first
    }

    /// Records what became of the first name of `key`.
    pub fn resolve(&mut self, key: &Key, first: First) {
        self.mem.get_mut(key).expect("met by classify").first = first;
    }

    /// After a window: forgets the groups whose every name was met, and
    /// moves groups out of memory when there are too many.
    pub fn end_window(&mut self) -> Result<()> {
        self.mem.retain(|_, g| g.left > 0);
        if self.mem.len() <= self.cap {
            return Ok(());
        }
        let keep = self.cap / 2;
        let out: Vec<Key> = self.mem.keys().skip(keep).copied().collect();
        self.spill_db()?;
        let conn = self.spill.as_ref().expect("made above");
        let tx = conn.unchecked_transaction().map_err(db_error)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO links (dev, ino, left_, state, dir, rel, name, idev, iino)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(db_error)?;
            for key in &out {
                let g = &self.mem[key];
                let (state, dir, rel, name, (idev, iino)) = match &g.first {
                    First::Pending => unreachable!("a window is resolved before it ends"),
                    First::Done { dir, rel, name, id } => (0, *dir, rel, name, id.raw()),
                    First::Failed { rel, name, damage } => {
                        (1 + *damage as i64, 0, rel, name, (0, 0))
                    }
                };
                put.execute(params![
                    key.0 as i64,
                    key.1 as i64,
                    g.left as i64,
                    state,
                    dir,
                    rel,
                    name.as_bytes(),
                    idev as i64,
                    iino as i64
                ])
                .map_err(db_error)?;
            }
        }
        tx.commit().map_err(db_error)?;
        for key in &out {
            self.mem.remove(key);
        }
        self.spilled += out.len() as u64;
        Ok(())
    }

    /// Makes the table of groups out of memory, the first time.
    fn spill_db(&mut self) -> Result<()> {
        if self.spill.is_none() {
            // "": a private temporary database, deleted by SQLite.
            let conn = Connection::open("").map_err(db_error)?;
            conn.execute_batch(
                "PRAGMA journal_mode = OFF;
                 PRAGMA synchronous = OFF;
                 PRAGMA cache_size = -2048;
                 CREATE TABLE links (
                     dev INTEGER NOT NULL, ino INTEGER NOT NULL,
                     left_ INTEGER NOT NULL, state INTEGER NOT NULL,
                     dir INTEGER NOT NULL, rel BLOB NOT NULL, name BLOB NOT NULL,
                     idev INTEGER NOT NULL, iino INTEGER NOT NULL,
                     PRIMARY KEY (dev, ino)
                 ) WITHOUT ROWID;",
            )
            .map_err(db_error)?;
            self.spill = Some(conn);
        }
        Ok(())
    }

    /// Takes the group `key` out of the table, if it is there.
    fn unspill(&mut self, key: Key) -> Result<Option<Group>> {
        let Some(conn) = self.spill.as_ref().filter(|_| self.spilled > 0) else {
            return Ok(None);
        };
        type Row = (i64, i64, u32, Vec<u8>, Vec<u8>, i64, i64);
        let row: Option<Row> = conn
            .prepare_cached(
                "SELECT left_, state, dir, rel, name, idev, iino FROM links WHERE dev = ?1 AND ino = ?2",
            )
            .and_then(|mut q| {
                q.query_row(params![key.0 as i64, key.1 as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
                })
                .optional()
            })
            .map_err(db_error)?;
        let Some((left, state, dir, rel, name, idev, iino)) = row else {
            return Ok(None);
        };
        conn.prepare_cached("DELETE FROM links WHERE dev = ?1 AND ino = ?2")
            .and_then(|mut q| q.execute(params![key.0 as i64, key.1 as i64]))
            .map_err(db_error)?;
        self.spilled -= 1;
        let name = CString::new(name).map_err(|e| db_error(rusqlite::Error::NulError(e)))?;
        let first = match state {
            0 => First::Done {
                dir,
                rel,
                name,
                id: Ident::from_raw((idev as u64, iino as u64)),
            },
            s => First::Failed {
                rel,
                name,
                damage: s == 2,
            },
        };
        Ok(Some(Group {
            left: left as u64,
            first,
        }))
    }
}
