//! snap: a content-addressed, deduplicating, encrypted snapshot store.
//!
//! Layers, top to bottom (arrows point down only):
//! `cli` -> `jobs` -> `commands` -> `repository` -> {`format`, `pipeline`, `index`} -> `backend`.
//! `source` reads the file system for `create`; `name_escape` is the printable
//! form of file names in output and patterns.

// First, so that `failpoint!` is in scope in every module below.
#[macro_use]
pub mod failpoint;

pub mod backend;
pub mod child;
pub mod cli;
pub mod commands;
pub mod error;
pub mod format;
pub mod index;
pub mod interrupt;
pub mod jobs;
pub mod name_escape;
pub mod pipeline;
pub mod progress;
pub mod repository;
pub mod source;

pub use error::{Error, Remedy, Result};
pub use repository::Repository;
