//! Storing, loading and selecting snapshots.

use super::Repository;
use crate::backend::{FileKind, WriteMode};
use crate::format::snapshot::{Snapshot, MAX_SNAPSHOT_LEN};
use crate::format::SnapshotId;
use crate::pipeline::crypto::AAD_SNAPSHOT;
use crate::{Error, Result};

impl Repository {
    /// Encrypts and stores a snapshot; this is the commit point of `create`.
    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<SnapshotId> {
        let sealed = self.key.seal(AAD_SNAPSHOT, &snap.to_bytes());
        let id = SnapshotId(*blake3::hash(&sealed).as_bytes());
        self.backend.write(
            FileKind::Snapshot,
            &id.to_hex(),
            &sealed,
            WriteMode::CreateNew,
        )?;
        Ok(id)
    }

    /// Loads and verifies one snapshot.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let what = || format!("snapshot {}", id);
        let sealed = self.read_snapshot_object(id)?;
        if sealed.len() > MAX_SNAPSHOT_LEN {
            return Err(Error::corrupt(what(), "larger than 16 MiB"));
        }
        if blake3::hash(&sealed).as_bytes() != &id.0 {
            return Err(Error::corrupt(what(), "bytes do not match the name"));
        }
        let plain = self
            .key
            .open(AAD_SNAPSHOT, &sealed)
            .map_err(|a| Error::corrupt(what(), a.to_string()))?;
        Snapshot::parse(&plain).map_err(|why| Error::corrupt(what(), why))
    }

    /// A snapshot's stored bytes. Remote repositories keep a local copy
    /// of each (immutable, named by its hash) so that listing snapshots
    /// downloads only new ones.
    fn read_snapshot_object(&self, id: &SnapshotId) -> Result<Vec<u8>> {
        if self.backend.staging_dir().is_some() {
            return Ok(self.backend.read(FileKind::Snapshot, &id.to_hex())?);
        }
        let cached = self.cache_dir.join("snapshots").join(id.to_hex());
        if let Ok(b) = std::fs::read(&cached) {
            if blake3::hash(&b).as_bytes() == &id.0 {
                return Ok(b);
            }
        }
        let b = self.backend.read(FileKind::Snapshot, &id.to_hex())?;
        if blake3::hash(&b).as_bytes() == &id.0 {
            // Best effort: a failed cache write only costs a later download.
            let dir = self.cache_dir.join("snapshots");
            let tmp = dir.join(format!(".tmp-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::write(&tmp, &b))
                .and_then(|_| std::fs::rename(&tmp, &cached));
        }
        Ok(b)
    }

    /// All snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let mut out = Vec::new();
        for (name, _) in self.backend.list(FileKind::Snapshot)? {
            let Some(id) = SnapshotId::from_hex(&name) else {
                continue;
            };
            match self.load_snapshot(&id) {
                Ok(s) => out.push((id, s)),
                // Removed (by a concurrent forget) since it was listed.
                Err(Error::Missing { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.1.time_ns.cmp(&b.1.time_ns).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// Resolves `latest` or a unique id prefix.
    pub fn find_snapshot(&self, selector: &str) -> Result<(SnapshotId, Snapshot)> {
        let sel_err = |why: &str| Error::SnapshotSelector {
            selector: selector.to_string(),
            why: why.to_string(),
        };
        if selector == "latest" {
            return self
                .snapshots()?
                .pop()
                .ok_or_else(|| sel_err("the repository has no snapshots"));
        }
        if selector.is_empty() || !selector.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(sel_err("not `latest` or a hex snapshot id (prefix)"));
        }
        let lower = selector.to_ascii_lowercase();
        let names: Vec<String> = self
            .backend
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with(&lower))
            .collect();
        match names.as_slice() {
            [one] => {
                let id = SnapshotId::from_hex(one)
                    .ok_or_else(|| sel_err("bad snapshot name in storage"))?;
                Ok((id, self.load_snapshot(&id)?))
            }
            [] => Err(sel_err("no snapshot has this id")),
            _ => Err(sel_err(
                "prefix matches several snapshots; give more characters",
            )),
        }
    }

    /// Deletes a snapshot object.
    pub fn delete_snapshot(&self, id: &SnapshotId) -> Result<()> {
        Ok(self.backend.delete(FileKind::Snapshot, &id.to_hex())?)
    }
}
