//! The file system side of `create`: which paths (normalized sources),
//! what to include (excludes), listing directories safely, how a
//! file's metadata becomes a tree node, and how many walkers read large
//! files at once.

pub mod dir;
pub mod exclude;
pub mod files_from;
pub mod meta;
pub mod paths;
pub mod read_permits;

pub use exclude::Excludes;
