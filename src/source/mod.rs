//! The file system side of `create`: which paths (normalized sources),
//! what to include (excludes), listing directories safely, and how a
//! file's metadata becomes a tree node.

pub mod dir;
pub mod exclude;
pub mod files_from;
pub mod meta;
pub mod paths;

pub use exclude::Excludes;
