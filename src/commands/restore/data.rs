//! Reading the data of a window of a restore: every chunk its files need
//! is grouped by pack and sorted by offset, and each pack is read front to
//! back once, by the worker threads, in spans of at most [`READ_WINDOW`]
//! bytes (memory does not grow with the pack size) that skip the runs of
//! blobs not needed longer than the backend's
//! [`read_gap`](crate::backend::Backend::read_gap). Each blob is
//! authenticated, decompressed and checked against its id before its bytes
//! reach a file; all-zero blocks are not written (they stay holes: see
//! `files`).

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use super::files::Files;
use super::plan::is_damage;
use crate::backend::FileKind;
use crate::format::{BlobId, PackId};
use crate::index::BlobLocation;
use crate::repository::Repository;
use crate::{Error, Result};

/// Largest span of a pack read at once by restore.
const READ_WINDOW: u64 = 8 << 20;

/// A blob a window needs: where it is, and where it goes.
pub struct BlobUse {
    /// Its pack and entry.
    pub loc: BlobLocation,
    /// (file index, offset in the file) of every place the blob goes.
    pub targets: Vec<(u32, u64)>,
}

impl BlobUse {
    /// The blob at `loc`, going nowhere yet.
    pub fn new(loc: BlobLocation) -> BlobUse {
        BlobUse {
            loc,
            targets: Vec::new(),
        }
    }
}

/// Writes the blobs `uses` into the files of a window; returns how many
/// packs were read. Files are completed (and put in place) by
/// [`Files::chunk_done`] as their last chunk is written.
pub fn write(repo: &Repository, files: &Files<'_>, uses: HashMap<BlobId, BlobUse>) -> Result<u64> {
    let mut by_pack: BTreeMap<PackId, Vec<BlobUse>> = BTreeMap::new();
    for u in uses.into_values().filter(|u| !u.targets.is_empty()) {
        by_pack.entry(u.loc.pack).or_default().push(u);
    }
    for v in by_pack.values_mut() {
        v.sort_by_key(|u| u.loc.entry.offset);
    }
    // The blobs of a window are seldom all of a pack: `create` walks
    // several directories at once, so a pack holds bands of blobs of
    // distant parts of the tree, interleaved. A read goes through a gap of
    // blobs not needed only where that is cheaper than another read.
    let gap = repo.backend().read_gap();
    let mut spans: Vec<(&PackId, &[BlobUse])> = Vec::new();
    for (pack, blobs) in &by_pack {
        let mut i = 0;
        while i < blobs.len() {
            let first = blobs[i].loc.entry.offset;
            let mut end = first + blobs[i].loc.entry.stored_len as u64;
            let mut j = i + 1;
            while j < blobs.len() {
                let e = &blobs[j].loc.entry;
                let e_end = e.offset + e.stored_len as u64;
                if e_end - first > READ_WINDOW || e.offset.saturating_sub(end) > gap {
                    break;
                }
                end = end.max(e_end);
                j += 1;
            }
            spans.push((pack, &blobs[i..j]));
            i = j;
        }
    }
    spans
        .par_iter()
        .for_each(|&(pack, blobs)| read_span(repo, files, pack, blobs));
    // Files left waiting by an interruption are removed with `files`.
    crate::interrupt::check()?;
    Ok(by_pack.len() as u64)
}

/// Reads one span of a pack and writes its blobs where they go.
fn read_span(repo: &Repository, files: &Files<'_>, pack: &PackId, blobs: &[BlobUse]) {
    if crate::interrupt::received().is_some() {
        return;
    }
    let first = blobs.first().expect("non-empty").loc.entry.offset;
    let last = &blobs.last().expect("non-empty").loc.entry;
    let end = last.offset + last.stored_len as u64;
    let bytes = match repo
        .backend()
        .read_range(FileKind::Pack, &pack.to_hex(), first, end - first)
    {
        Ok(b) => Some(b),
        // The pack is gone (another client's prune moved its blobs):
        // read each blob where the resynced index says it is now.
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            let e: Error = e.into();
            files
                .problems()
                .report(&e, format!("pack {}: {e}", pack.short()));
            let why = format!("pack {} could not be read", pack.short());
            for b in blobs {
                for &(fi, _) in &b.targets {
                    files.lose_chunk(fi as usize, is_damage(&e), &why);
                    files.chunk_done(fi as usize);
                }
            }
            return;
        }
    };
    // The blobs of one span are decoded and written by whichever workers
    // are free: a span of a highly compressible file (a database dump:
    // 8 MiB stored can be 800 MB to write) would else keep one worker busy
    // while the others wait at the window's end.
    blobs.par_iter().for_each(|b| {
        let e = &b.loc.entry;
        let decoded = match &bytes {
            Some(bytes) => {
                let s = (e.offset - first) as usize;
                repo.decode_blob(pack, e, &bytes[s..s + e.stored_len as usize])
            }
            None => repo.read_blob(&e.id),
        };
        match decoded {
            Ok(plain) => {
                // A zero chunk is a hole already: nothing to write.
                let zero = plain.iter().all(|&x| x == 0);
                for &(fi, off) in &b.targets {
                    if !zero {
                        files.write_chunk(fi as usize, &plain, off);
                    }
                    files.chunk_done(fi as usize);
                }
            }
            Err(e) => {
                files.problems().report(&e, e.to_string());
                let why = if is_damage(&e) {
                    "damaged data"
                } else {
                    "its data could not be read"
                };
                for &(fi, _) in &b.targets {
                    files.lose_chunk(fi as usize, is_damage(&e), why);
                    files.chunk_done(fi as usize);
                }
            }
        }
    });
}
