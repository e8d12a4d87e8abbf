//! The repository: a backend plus the unlocked keys, the config and the
//! index. Reading and writing blobs, trees and snapshots goes through here.

pub mod blobs;
mod damage;
pub mod host;
pub mod keys;
pub mod locks;
pub mod open;
pub mod pack_cache;
pub mod packer;
pub mod saver;
pub mod snapshots;
pub mod tmp;

use std::path::PathBuf;
use std::sync::Mutex;

use crate::backend::Backend;
use crate::format::config::Config;
use crate::index::Index;
use crate::pipeline::crypto::{BlobCipher, MasterKey};

pub use open::{InitOptions, KdfStrength};
pub use snapshots::{Selected, SnapshotFilter, SnapshotList};

/// An unlocked repository.
pub struct Repository {
    backend: std::sync::Arc<dyn Backend>,
    config: Config,
    key: MasterKey,
    /// The name of the key file that the password opened.
    key_id: String,
    cipher: BlobCipher,
    index: Mutex<Index>,
    cache_dir: PathBuf,
    /// Local copies of tree packs (object stores only).
    packs: pack_cache::PackCache,
    notices: Vec<String>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.backend.location())
    }
}

impl Repository {
    /// The storage backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// A shared handle on the storage backend (for threads that outlive a
    /// borrow, such as a lock's heartbeat).
    pub fn backend_handle(&self) -> std::sync::Arc<dyn Backend> {
        self.backend.clone()
    }

    /// The verified config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The master key (for the pipeline: ids, chunker seed, sealing).
    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    /// The index, locked for the duration of the closure's use.
    pub fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This user's cache directory of this repository (index, snapshots).
    pub fn cache_dir(&self) -> &std::path::Path {
        &self.cache_dir
    }

    /// The index database file (in [`Repository::cache_dir`]).
    pub fn index_path(&self) -> PathBuf {
        self.cache_dir.join(open::INDEX_FILE)
    }

    /// What opening the repository did that the user may want to know
    /// (shown with `-v`): an index rebuilt, a v0.1 index left behind.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }
}
