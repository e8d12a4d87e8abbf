//! The drill's record of what was verified (`CACHE/drill/GROUP.json`, one
//! per snapshot group: host and source paths), so that successive drills
//! pick files not verified yet. A file is named by a hash of its path and
//! its content (chunk ids): a file unchanged in a later snapshot stays
//! verified, a changed one does not. The record is a cache like the
//! index: losing it only means the next drills start over.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::format::tree::Node;
use crate::{Error, Result};

/// A file's identity for the record.
pub type FileKey = [u8; 16];

/// The key of the file at `path` with `node`'s content.
pub fn key(path: &Path, node: &Node) -> FileKey {
    let mut h = blake3::Hasher::new();
    h.update(path.as_os_str().as_bytes());
    h.update(&[0]);
    h.update(&node.size.to_le_bytes());
    for id in &node.content {
        h.update(&id.0);
    }
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize().as_bytes()[..16]);
    k
}

/// The record file of the group of snapshots of `host` with `paths`.
pub fn path(cache_dir: &Path, host: &str, paths: &[String]) -> PathBuf {
    let mut sorted = paths.to_vec();
    sorted.sort();
    let mut h = blake3::Hasher::new();
    h.update(host.as_bytes());
    for p in &sorted {
        h.update(&[0]);
        h.update(p.as_bytes());
    }
    let name = hex::encode(&h.finalize().as_bytes()[..8]);
    cache_dir.join("drill").join(format!("{name}.json"))
}

#[derive(Default, Serialize, Deserialize)]
struct OnDisk {
    /// Rounds completed (every file verified once).
    rounds: u64,
    /// Keys of verified files, hex.
    verified: Vec<String>,
}

/// What was verified so far.
#[derive(Debug, Default)]
pub struct Record {
    rounds: u64,
    verified: HashSet<FileKey>,
}

impl Record {
    /// Reads the record (empty when absent or unreadable: it is a cache).
    pub fn load(p: &Path) -> Record {
        let Ok(bytes) = std::fs::read(p) else {
            return Record::default();
        };
        let Ok(d) = serde_json::from_slice::<OnDisk>(&bytes) else {
            return Record::default();
        };
        let verified = d
            .verified
            .iter()
            .filter_map(|h| hex::decode(h).ok()?.try_into().ok())
            .collect();
        Record {
            rounds: d.rounds,
            verified,
        }
    }

    /// Writes the record (atomically).
    pub fn save(&self, p: &Path) -> Result<()> {
        let dir = p.parent().expect("record in a directory");
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut verified: Vec<String> = self.verified.iter().map(hex::encode).collect();
        verified.sort();
        let d = OnDisk {
            rounds: self.rounds,
            verified,
        };
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(&d).expect("record serializes"))
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, p).map_err(|e| Error::io(p, e))
    }

    /// Whether `k` was verified.
    pub fn contains(&self, k: &FileKey) -> bool {
        self.verified.contains(k)
    }

    /// Records `k` as verified.
    pub fn insert(&mut self, k: FileKey) {
        self.verified.insert(k);
    }

    /// Everything was verified: start again.
    pub fn new_round(&mut self) {
        self.rounds += 1;
        self.verified.clear();
    }

    /// Forgets keys not in `live` (files no longer in the snapshot).
    pub fn retain(&mut self, live: &[FileKey]) {
        let live: HashSet<&FileKey> = live.iter().collect();
        self.verified.retain(|k| live.contains(k));
    }
}
