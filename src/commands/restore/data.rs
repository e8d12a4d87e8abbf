//! Reading the data of a restore: every chunk the waiting files need is
//! grouped by pack and sorted by offset, and each pack is read front to
//! back once, in windows of at most [`READ_WINDOW`] bytes (memory does not
//! grow with the pack size), by the worker threads. Each blob is
//! authenticated, decompressed and checked against its id before its bytes
//! reach a file; all-zero chunks are not written (the files were created as
//! one hole).

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use super::files::Files;
use super::plan::is_damage;
use crate::backend::FileKind;
use crate::format::pack::PackEntry;
use crate::format::{BlobId, PackId};
use crate::index::BlobLocation;
use crate::repository::Repository;
use crate::{Error, Result};

/// Largest span of a pack read at once by restore.
const READ_WINDOW: u64 = 8 << 20;

struct BlobUse {
    entry: PackEntry,
    /// (file index, offset in the file) of every place the blob goes.
    targets: Vec<(u32, u64)>,
}

/// Writes the chunks of every file waiting for them; returns how many
/// packs were read. Files are completed (and put in place) by
/// [`Files::chunk_done`] as their last chunk is written.
pub fn write(
    repo: &Repository,
    files: &Files<'_>,
    locations: &HashMap<BlobId, BlobLocation>,
) -> Result<u64> {
    let mut uses: HashMap<BlobId, Vec<(u32, u64)>> = HashMap::new();
    for (i, content) in files.waiting() {
        let mut off = 0u64;
        for id in content {
            uses.entry(*id).or_default().push((i as u32, off));
            off += locations[id].entry.raw_len as u64;
        }
    }
    let mut by_pack: BTreeMap<PackId, Vec<BlobUse>> = BTreeMap::new();
    for (id, targets) in uses {
        let loc = locations[&id];
        by_pack.entry(loc.pack).or_default().push(BlobUse {
            entry: loc.entry,
            targets,
        });
    }
    for v in by_pack.values_mut() {
        v.sort_by_key(|u| u.entry.offset);
    }
    let mut windows: Vec<(&PackId, &[BlobUse])> = Vec::new();
    for (pack, blobs) in &by_pack {
        let mut i = 0;
        while i < blobs.len() {
            let first = blobs[i].entry.offset;
            let mut j = i + 1;
            while j < blobs.len()
                && blobs[j].entry.offset + blobs[j].entry.stored_len as u64 - first <= READ_WINDOW
            {
                j += 1;
            }
            windows.push((pack, &blobs[i..j]));
            i = j;
        }
    }
    windows
        .par_iter()
        .for_each(|&(pack, blobs)| read_window(repo, files, pack, blobs));
    // Files left waiting by an interruption are removed with `files`.
    crate::interrupt::check()?;
    Ok(by_pack.len() as u64)
}

/// Reads one window of a pack and writes its blobs where they go.
fn read_window(repo: &Repository, files: &Files<'_>, pack: &PackId, blobs: &[BlobUse]) {
    if crate::interrupt::received().is_some() {
        return;
    }
    let first = blobs.first().expect("non-empty").entry.offset;
    let last = blobs.last().expect("non-empty");
    let end = last.entry.offset + last.entry.stored_len as u64;
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
    for b in blobs {
        let decoded = match &bytes {
            Some(bytes) => {
                let s = (b.entry.offset - first) as usize;
                repo.decode_blob(pack, &b.entry, &bytes[s..s + b.entry.stored_len as usize])
            }
            None => repo.read_blob(&b.entry.id),
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
    }
}
