//! Pure bytes <-> structs for everything snap stores. No I/O and no crypto
//! here: each submodule is one page of `format-spec/` and parses defensively
//! (every length read from storage is bounded before it is trusted).

pub mod config;
pub mod ids;
pub mod key;
pub mod pack;
pub mod snapshot;
pub mod tree;

pub use ids::{BlobId, BlobKind, PackId, SnapshotId};

/// Version of the repository format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
