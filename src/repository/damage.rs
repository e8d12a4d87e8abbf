//! Damage records. Any read that finds a blob failing authentication or
//! its id, a `check` that reads a pack, and an index sync that finds a pack
//! of another size than indexed record the damage in the index
//! (`Index::mark_damaged`): the blob no longer counts as stored in that
//! pack, so deduplication treats it as absent and the next `create` stores
//! it again; a rebuild of the index keeps the record. `snap repair packs`
//! removes damaged packs after salvaging what is intact.

use super::Repository;
use crate::format::pack::PackEntry;
use crate::format::PackId;
use crate::Result;

impl Repository {
    /// Records blobs of `pack` found damaged. Returns how many records are
    /// new.
    pub fn record_damaged(&self, pack: &PackId, entries: &[PackEntry]) -> Result<u64> {
        self.index().mark_damaged(pack, entries)
    }

    /// Records every blob the index knows in `pack` as damaged (a pack that
    /// is truncated or whose header no longer reads).
    pub fn record_pack_damaged(&self, pack: &PackId) -> Result<u64> {
        self.index().mark_pack_damaged(pack)
    }

    /// Best-effort record of one damaged blob found by a read: the read
    /// fails with its own error either way, and an index that cannot be
    /// written only means the damage is found again by the next read.
    pub(crate) fn note_damaged(&self, pack: &PackId, entry: &PackEntry) {
        let _ = self.record_damaged(pack, std::slice::from_ref(entry));
    }
}
