//! `snap repair ...`: putting a damaged repository back into a state where
//! every snapshot restores and `prune` works (`docs/repair.md`). `repair
//! index` lives in the repository layer (`Repository::rebuild_index`).

pub mod packs;
pub mod snapshots;
