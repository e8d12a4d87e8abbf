//! Reading blobs, trees and pack headers, and keeping the index in step
//! with the packs.

use std::collections::HashSet;

use super::Repository;
use crate::backend::FileKind;
use crate::format::pack::{self, PackEntry, TRAILER_LEN};
use crate::format::tree::Tree;
use crate::format::{BlobId, BlobKind, PackId};
use crate::index::BlobLocation;
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
    /// Packs whose header could not be read (damaged); left out.
    pub packs_damaged: Vec<String>,
}

impl Repository {
    /// Decrypts, decompresses and verifies one stored blob.
    pub fn decode_blob(&self, pack: &PackId, e: &PackEntry, sealed: &[u8]) -> Result<Vec<u8>> {
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

    /// Reads and verifies one blob.
    pub fn read_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let loc = self.locate(id)?;
        let sealed = self.backend.read_range(
            FileKind::Pack,
            &loc.pack.to_hex(),
            loc.entry.offset,
            loc.entry.stored_len as u64,
        )?;
        self.decode_blob(&loc.pack, &loc.entry, &sealed)
    }

    /// Reads and parses a tree.
    pub fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        let bytes = self.read_blob(id)?;
        Tree::parse(&bytes).map_err(|why| Error::corrupt(format!("tree {}", id.short()), why))
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

    /// Brings the index in step with the packs in storage: headers of packs
    /// the index does not know are read and added; entries of packs that
    /// are gone are dropped. Damaged packs are reported, not indexed.
    pub fn sync_index(&self) -> Result<IndexSync> {
        let stored = self.backend.list(FileKind::Pack)?;
        let known: HashSet<PackId> = self
            .index()
            .packs()?
            .into_iter()
            .map(|(p, _, _)| p)
            .collect();
        let mut report = IndexSync::default();
        let mut present = HashSet::with_capacity(stored.len());
        for (name, _) in &stored {
            let Some(id) = PackId::from_hex(name) else {
                continue;
            };
            present.insert(id);
            if known.contains(&id) {
                continue;
            }
            match self.read_pack_header(&id) {
                Ok((len, entries)) => {
                    let kind = entries.first().map(|e| e.kind).unwrap_or(BlobKind::Data);
                    self.index().add_pack(&id, kind, len, &entries)?;
                    // A prune may have deleted it since we listed it (it
                    // removes packs from the index after deleting them; we
                    // check after adding, so one of us sees the other).
                    if self.backend.size(FileKind::Pack, name).is_err() {
                        self.index().remove_pack(&id)?;
                        continue;
                    }
                    report.packs_added += 1;
                }
                Err(Error::Corrupt { .. }) | Err(Error::Backend { .. }) => {
                    report.packs_damaged.push(name.clone())
                }
                Err(e) => return Err(e),
            }
        }
        for gone in known.difference(&present) {
            self.index().remove_pack(gone)?;
            report.packs_removed += 1;
        }
        Ok(report)
    }

    /// Drops the index and rebuilds it from every pack header.
    pub fn rebuild_index(&self) -> Result<IndexSync> {
        self.index().clear()?;
        self.sync_index()
    }
}
