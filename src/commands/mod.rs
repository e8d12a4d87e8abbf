//! One file per verb. Each takes validated options and a repository and
//! returns a report struct; none of them prints.

pub mod check;
pub mod create;
pub mod dump;
pub mod forget;
pub mod ls;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod retention;
pub mod snapshots;
pub mod streams;
pub mod sync;
mod sync_needs;
pub mod unlock;
