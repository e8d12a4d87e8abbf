//! One file per verb. Each takes validated options and a repository and
//! returns a report struct; none of them prints.

pub mod check;
pub mod copy;
pub mod create;
pub mod diff;
pub mod dump;
mod dump_tar;
mod dump_zip;
pub mod find;
pub mod forget;
pub mod ls;
pub mod mount;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod retention;
pub mod snapshots;
pub mod stats;
pub mod streams;
pub mod sync;
mod sync_needs;
pub mod tag;
pub mod unlock;
