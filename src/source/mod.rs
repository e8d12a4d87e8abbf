//! The file system side of `create`: what to include (excludes), and how a
//! file's metadata becomes a tree node.

pub mod exclude;
pub mod meta;

pub use exclude::Excludes;
