//! Snapshots: plaintext = version:u8 (=1) || postcard(`Snapshot`); stored
//! encrypted as `snapshots/<id>` (see `format-spec/05-trees-and-snapshots.md`).

use super::ids::{BlobId, SnapshotId};
use serde::{Deserialize, Serialize};

/// Snapshot format version byte.
pub const SNAPSHOT_VERSION: u8 = 1;
/// Largest snapshot object accepted when reading.
pub const MAX_SNAPSHOT_LEN: usize = 16 * 1024 * 1024;

/// What a `create` did, stored with the snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Files not in the parent snapshot.
    pub files_new: u64,
    /// Files whose metadata differed from the parent, so were read again.
    pub files_changed: u64,
    /// Files taken over from the parent without reading.
    pub files_unchanged: u64,
    /// Directories.
    pub dirs: u64,
    /// Total size of all files in the snapshot.
    pub total_bytes: u64,
    /// Bytes read from files and commands.
    pub bytes_read: u64,
    /// Bytes added to the repository (stored size of new blobs and headers).
    pub bytes_added: u64,
    /// New blobs stored.
    pub blobs_added: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Problems that made the snapshot incomplete (capped at 1000).
    pub warnings: Vec<String>,
    /// Command outputs and stdin stored under `/.snap-streams`, in the
    /// order they ran.
    pub streams: Vec<StreamSummary>,
}

/// One stream (database dump) of a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// File name under `/.snap-streams`.
    pub name: String,
    /// The command that produced it (`<stdin>` for standard input).
    pub command: String,
    /// Bytes of output stored.
    pub bytes: u64,
    /// The command's exit status (always 0: a failing command saves no snapshot).
    pub exit_code: i32,
}

/// A snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Time of the snapshot, ns since the epoch (UTC).
    pub time_ns: i64,
    /// Host name.
    pub host: String,
    /// User who ran `create`.
    pub user: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Absolute source paths (and `/.snap-streams` for dumps).
    pub paths: Vec<String>,
    /// Root tree.
    pub tree: BlobId,
    /// Parent snapshot used for change detection.
    pub parent: Option<SnapshotId>,
    /// True when some files could not be read completely.
    pub incomplete: bool,
    /// Statistics.
    pub summary: Summary,
}

impl Snapshot {
    /// Serializes (version byte + postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![SNAPSHOT_VERSION];
        v.extend(postcard::to_stdvec(self).expect("snapshot serializes"));
        v
    }

    /// Parses a snapshot's plaintext.
    pub fn parse(bytes: &[u8]) -> Result<Snapshot, String> {
        match bytes.first() {
            Some(&SNAPSHOT_VERSION) => {}
            Some(v) => return Err(format!("unknown snapshot version {v}")),
            None => return Err("empty snapshot".into()),
        }
        let (s, rest): (Snapshot, _) = postcard::take_from_bytes(&bytes[1..])
            .map_err(|e| format!("snapshot does not parse: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("{} stray bytes after the snapshot", rest.len()));
        }
        Ok(s)
    }
}
