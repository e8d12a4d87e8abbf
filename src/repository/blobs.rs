//! Reading blobs, trees and pack headers, and keeping the index in step
//! with the packs.
//!
//! The index is a cache and may be stale (another client pruned, a pack was
//! lost, the cache was restored from an old copy): a read that finds a pack
//! gone resyncs the index with storage and tries once more, and a sync
//! tells "not found" and "damaged" apart from "could not reach": a storage
//! error aborts it and never makes the index forget a pack.

use std::collections::HashSet;
use std::sync::Mutex;

use super::Repository;
use crate::backend::FileKind;
use crate::error::Remedy;
use crate::format::pack::{self, PackEntry, TRAILER_LEN};
use crate::format::tree::{Tree, TreeBlob, TreeError};
use crate::format::{BlobId, BlobKind, PackId};
use crate::index::{BlobLocation, Index};
use crate::pipeline::compress;
use crate::pipeline::crypto::AAD_PACK_HEADER;
use crate::{Error, Result};

/// What [`Repository::sync_index`] changed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct IndexSync {
    /// Packs found in storage and added to the index.
    pub packs_added: u64,
    /// Index entries of packs no longer in storage, removed.
    pub packs_removed: u64,
    /// Packs whose header is damaged (it does not authenticate or parse);
    /// left out. A pack that could not be read at all stops the sync.
    pub packs_damaged: Vec<String>,
    /// Indexed packs whose size in storage differs from the index
    /// (truncated): recorded damaged whole (`snap repair packs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packs_truncated: Vec<String>,
}

impl Repository {
    /// Decrypts, decompresses and verifies one stored blob. A blob that
    /// fails is recorded damaged in the index (`repository::damage`).
    pub fn decode_blob(&self, pack: &PackId, e: &PackEntry, sealed: &[u8]) -> Result<Vec<u8>> {
        let r = self.decode_blob_only(pack, e, sealed);
        if r.is_err() {
            self.note_damaged(pack, e);
        }
        r
    }

    fn decode_blob_only(&self, pack: &PackId, e: &PackEntry, sealed: &[u8]) -> Result<Vec<u8>> {
        let what = || format!("blob {} in pack {}", e.id.short(), pack.short());
        let stored = self
            .cipher
            .open_blob(e.kind.code(), &e.id, sealed)
            .map_err(|a| Error::corrupt(what(), a.to_string()))?;
        let plain = compress::decompress(e.compression, stored, e.raw_len as usize)
            .map_err(|why| Error::corrupt(what(), why))?;
        if self.key.blob_id(&plain) != e.id {
            return Err(Error::corrupt(what(), "content does not match its id"));
        }
        Ok(plain)
    }

    /// Where a blob is, syncing the index with storage once if it is unknown
    /// (another writer may have added it).
    pub fn locate(&self, id: &BlobId) -> Result<BlobLocation> {
        if let Some(l) = self.index().lookup(id)? {
            return Ok(l);
        }
        self.sync_index()?;
        self.index().lookup(id)?.ok_or_else(|| Error::Missing {
            what: format!("blob {}", id),
        })
    }

    /// Reads and verifies one blob. When its pack is gone (a prune by
    /// another client may have moved the blob), the index is resynced with
    /// storage and the blob read from where it is now, once.
    pub fn read_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let loc = self.locate(id)?;
        match self.read_at(&loc) {
            Err(Error::Missing { .. }) => {
                self.sync_index()?;
                let again = self.index().lookup(id)?.ok_or_else(|| Error::Missing {
                    what: format!("blob {id}"),
                })?;
                self.read_at(&again)
            }
            r => r,
        }
    }

    fn read_at(&self, loc: &BlobLocation) -> Result<Vec<u8>> {
        if loc.entry.kind == BlobKind::Tree && self.packs.enabled() {
            let cached = self.packs.read_range(
                self.backend(),
                &loc.pack,
                loc.entry.offset,
                loc.entry.stored_len as u64,
            )?;
            if let Some(sealed) = cached {
                match self.decode_blob_only(&loc.pack, &loc.entry, &sealed) {
                    Ok(plain) => return Ok(plain),
                    // Judge storage, not the copy: read it from there.
                    Err(_) => self.packs.evict(&loc.pack),
                }
            }
        }
        let sealed = self.backend.read_range(
            FileKind::Pack,
            &loc.pack.to_hex(),
            loc.entry.offset,
            loc.entry.stored_len as u64,
        )?;
        self.decode_blob(&loc.pack, &loc.entry, &sealed)
    }

    /// Reads and parses a directory listing (joining the parts of a split
    /// directory).
    pub fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        Ok(self.load_tree_parts(id)?.0)
    }

    /// Like [`Repository::load_tree`], and also returns the ids of the part
    /// blobs of a split directory (empty for a one-blob listing): whoever
    /// decides which blobs are still needed (prune) must keep them too.
    pub fn load_tree_parts(&self, id: &BlobId) -> Result<(Tree, Vec<BlobId>)> {
        let corrupt = |id: &BlobId, why: TreeError| {
            // It authenticated: the writer stored it like this.
            Error::corrupt_with(
                format!("tree {}", id.short()),
                why.to_string(),
                Remedy::Invalid,
            )
        };
        match TreeBlob::parse(&self.read_blob(id)?).map_err(|why| corrupt(id, why))? {
            TreeBlob::Listing(t) => Ok((t, Vec::new())),
            TreeBlob::Parts(ids) => {
                let mut parts = Vec::with_capacity(ids.len());
                for (i, p) in ids.iter().enumerate() {
                    match TreeBlob::parse(&self.read_blob(p)?).map_err(|why| corrupt(p, why))? {
                        TreeBlob::Listing(t) => parts.push(t),
                        TreeBlob::Parts(_) => return Err(corrupt(id, TreeError::BadPart(i))),
                    }
                }
                let t = Tree::join(parts).map_err(|why| corrupt(id, why))?;
                Ok((t, ids))
            }
        }
    }

    /// Parses the encrypted header of a pack from its last `tail` bytes
    /// (`tail` must cover header and trailer) for a pack of `pack_len` bytes.
    pub fn parse_pack_header(
        &self,
        pack: &PackId,
        tail: &[u8],
        pack_len: u64,
    ) -> Result<Vec<PackEntry>> {
        let what = || format!("pack {}", pack);
        if tail.len() < TRAILER_LEN {
            return Err(Error::corrupt(what(), "shorter than a trailer"));
        }
        let (hoff, hlen) = pack::decode_trailer(&tail[tail.len() - TRAILER_LEN..], pack_len)
            .map_err(|why| Error::corrupt(what(), why))?;
        let start_in_tail = (hoff + tail.len() as u64)
            .checked_sub(pack_len)
            .ok_or_else(|| Error::corrupt(what(), "header outside the bytes read"))?
            as usize;
        let sealed = &tail[start_in_tail..start_in_tail + hlen];
        let plain = self
            .key
            .open(AAD_PACK_HEADER, sealed)
            .map_err(|a| Error::corrupt(what(), format!("header {a}")))?;
        pack::decode_header(&plain, hoff).map_err(|why| Error::corrupt(what(), why))
    }

    /// Reads a pack's header from storage.
    pub fn read_pack_header(&self, pack: &PackId) -> Result<(u64, Vec<PackEntry>)> {
        self.read_pack_header_in(self.backend.as_ref(), pack)
    }

    /// Reads the header of a pack of this repository kept in `backend`
    /// (another copy of the repository: same keys), e.g. a sync target.
    pub fn read_pack_header_in(
        &self,
        backend: &dyn crate::backend::Backend,
        pack: &PackId,
    ) -> Result<(u64, Vec<PackEntry>)> {
        let name = pack.to_hex();
        let len = backend.size(FileKind::Pack, &name)?;
        if len < TRAILER_LEN as u64 {
            return Err(Error::corrupt(
                format!("pack {pack}"),
                "shorter than a trailer",
            ));
        }
        // One read usually covers header and trailer of a pack of small
        // packs; read again when the header is larger.
        let guess = len.min(64 * 1024);
        let tail = backend.read_range(FileKind::Pack, &name, len - guess, guess)?;
        let (hoff, hlen) = pack::decode_trailer(&tail[tail.len() - TRAILER_LEN..], len)
            .map_err(|why| Error::corrupt(format!("pack {pack}"), why))?;
        let need = (hlen + TRAILER_LEN) as u64;
        let tail = if need > guess {
            backend.read_range(FileKind::Pack, &name, hoff, need)?
        } else {
            tail
        };
        Ok((len, self.parse_pack_header(pack, &tail, len)?))
    }

    /// Brings the index in step with the packs in storage (one listing):
    /// headers of packs the index does not know are read and added; entries
    /// of packs that are gone are dropped. Damaged packs are reported, not
    /// indexed. A pack that could not be read (a storage error) stops the
    /// sync with that error, before anything is dropped. A damaged index
    /// file is rebuilt from the packs.
    pub fn sync_index(&self) -> Result<IndexSync> {
        match self.sync_into(&self.index) {
            Err(Error::IndexDamaged { .. }) => self.replace_index(false),
            r => r,
        }
    }

    fn sync_into(&self, index: &Mutex<Index>) -> Result<IndexSync> {
        let index = || index.lock().unwrap_or_else(|p| p.into_inner());
        // Read what the index knows before listing: a pack indexed by then
        // was durable before the listing began, so if the listing lacks it,
        // it is gone. (One indexed later is not in `known`: never dropped.)
        let known: std::collections::HashMap<PackId, u64> = index()
            .packs()?
            .into_iter()
            .map(|(p, _, size)| (p, size))
            .collect();
        let stored = self.backend.list(FileKind::Pack)?;
        let mut report = IndexSync::default();
        let mut present = HashSet::with_capacity(stored.len());
        for (name, size) in &stored {
            let Some(id) = PackId::from_hex(name) else {
                continue;
            };
            present.insert(id);
            if let Some(&indexed) = known.get(&id) {
                if indexed != *size {
                    // Truncated: nothing in it counts until re-verified.
                    index().mark_pack_damaged(&id)?;
                    report.packs_truncated.push(name.clone());
                }
                continue;
            }
            match self.read_pack_header(&id) {
                Ok((len, entries)) => {
                    let kind = entries.first().map(|e| e.kind).unwrap_or(BlobKind::Data);
                    index().add_pack(&id, kind, len, &entries)?;
                    // A prune may have deleted it since we listed it (it
                    // removes packs from the index after deleting them; we
                    // check after adding, so one of us sees the other).
                    match self.backend.size(FileKind::Pack, name) {
                        Ok(_) => report.packs_added += 1,
                        Err(e) if e.is_not_found() => index().remove_pack(&id)?,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(Error::Corrupt { .. }) => report.packs_damaged.push(name.clone()),
                // Deleted since the listing (a prune): nothing to index.
                Err(Error::Missing { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for gone in known.keys().filter(|p| !present.contains(p)) {
            index().remove_pack(gone)?;
            report.packs_removed += 1;
        }
        index().retain_damaged(&present)?;
        self.packs.retain(&present);
        Ok(report)
    }

    /// Tree blobs are read from storage again (each tree pack fetched once
    /// by this process), not from copies cached before: `check` judges
    /// storage.
    pub fn read_trees_from_storage(&self) {
        self.packs.refetch();
    }

    /// Called with a finished pack's local file before it is uploaded: a
    /// tree pack is kept in the cache of tree packs (object stores), so
    /// this machine never downloads its own listings. (A copy of a pack
    /// whose upload then fails is never read: no index entry points at it,
    /// and the next reconciliation deletes it.)
    pub fn keep_tree_pack(&self, pack: &PackId, kind: BlobKind, local: &std::path::Path) {
        if kind == BlobKind::Tree {
            self.packs.insert_file(pack, local);
        }
    }

    /// Rebuilds the index from every pack header into a new file that then
    /// replaces the old one, which is never read (it may be damaged). If a
    /// pack cannot be read, the old index stays as it was.
    pub fn rebuild_index(&self) -> Result<IndexSync> {
        self.replace_index(true)
    }

    /// Builds a new index from the packs and installs it (see
    /// [`Index::install`] for `replace`).
    pub(crate) fn replace_index(&self, replace: bool) -> Result<IndexSync> {
        let path = self.index_path();
        // Damage records survive: a pack header still lists a damaged
        // blob, and the new index must not take it for a good one.
        let damaged = match self.index().damaged_records() {
            Ok(d) if !d.is_empty() => d,
            _ => Index::damaged_records_at(&path).unwrap_or_default(),
        };
        let mut fresh = Index::create_beside(&path)?;
        for (pack, entries) in &damaged {
            if let Err(e) = fresh.mark_damaged(pack, entries) {
                fresh.discard();
                return Err(e);
            }
        }
        let fresh = Mutex::new(fresh);
        let report = match self.sync_into(&fresh) {
            Ok(r) => r,
            Err(e) => {
                fresh
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .discard();
                return Err(e);
            }
        };
        let fresh = fresh.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut current = self.index();
        // Close this process's handle (and its shared lock) for the swap.
        drop(std::mem::replace(&mut *current, Index::placeholder()?));
        match fresh.install(&path, replace) {
            Ok(i) => *current = i,
            Err(e) => {
                if let Ok(old) = Index::open(&path) {
                    *current = old;
                }
                return Err(e);
            }
        }
        Ok(report)
    }
}
