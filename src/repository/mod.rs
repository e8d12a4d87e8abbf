//! The repository: a backend plus the unlocked keys, the config and the
//! index. Reading and writing blobs, trees and snapshots goes through here.

pub mod blobs;
pub mod locks;
pub mod open;
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
    backend: Box<dyn Backend>,
    config: Config,
    key: MasterKey,
    cipher: BlobCipher,
    index: Mutex<Index>,
    cache_dir: PathBuf,
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

    /// Local directory for caches and the index of this repository.
    pub fn cache_dir(&self) -> &std::path::Path {
        &self.cache_dir
    }
}
