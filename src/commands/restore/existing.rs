//! What to do with an entry already in the target where the snapshot has
//! one (`--overwrite`), decided before anything is written there.
//!
//! A file is left as it is when it already holds the snapshot's content:
//! a regular file of the snapshot's size, read chunk by chunk (the
//! lengths of the snapshot's chunks, from the index) and each piece's
//! keyed BLAKE3 compared with the snapshot's chunk id, as `create` and
//! the blob check compute it (stopping at the first that differs). Such a
//! file is not opened for writing: its inode, data and mtime stay; only
//! its metadata is set where it differs ([`fix`]). Size and mtime alone
//! would pass a file edited within the same second at the same size, so
//! the content is always read (reading the target costs less than
//! fetching and writing the snapshot's data).

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;

use rustix::fs::Stat;

use super::dirfd;
use super::meta::{self, Meta};
use super::Overwrite;
use crate::format::BlobId;
use crate::pipeline::crypto::MasterKey;

/// What to do with the name a file of the snapshot goes to.
pub enum Verdict {
    /// Write the snapshot's file there (nothing there, or it differs).
    Write,
    /// It is the snapshot's file already (content checked): open to set
    /// its metadata, described by `st`.
    Unchanged { file: File, st: Stat },
    /// Something is there, and `--overwrite` keeps it as it is.
    Kept(Stat),
}

/// The snapshot's side of a file.
pub struct Want<'a> {
    pub size: u64,
    pub mtime_ns: i64,
    /// Its chunk ids and their lengths.
    pub ids: &'a [BlobId],
    pub lens: &'a [u64],
    /// Whether it is hard-linked in the snapshot: only then may a file
    /// with other names be left in place (its metadata is set on the
    /// inode, which those names share; one not linked is replaced, so
    /// that a hard link in the target never carries the restore out).
    pub linked: bool,
}

/// Whether what `st` describes is to be kept as it is by `mode` without
/// looking at its content: always with `never`, with `if-newer` unless
/// the snapshot's entry is newer.
pub fn keeps(mode: Overwrite, st: &Stat, snapshot_mtime_ns: i64) -> bool {
    match mode {
        Overwrite::Never => true,
        Overwrite::IfNewer => snapshot_mtime_ns <= dirfd::mtime_ns(st),
        Overwrite::Always | Overwrite::IfChanged => false,
    }
}

/// What `--overwrite mode` does with `name` in `dir` for the file `want`.
/// Anything that cannot be looked at or read is written (and the write
/// reports what is wrong).
pub fn judge(
    key: &MasterKey,
    dir: BorrowedFd<'_>,
    name: &CStr,
    want: &Want<'_>,
    mode: Overwrite,
) -> Verdict {
    if mode == Overwrite::Always {
        return Verdict::Write;
    }
    let st = match dirfd::stat_at(dir, name) {
        Ok(Some(st)) => st,
        _ => return Verdict::Write,
    };
    if keeps(mode, &st, want.mtime_ns) {
        return Verdict::Kept(st);
    }
    if !dirfd::is_file(&st) || st.st_size as u64 != want.size || (st.st_nlink > 1 && !want.linked) {
        return Verdict::Write;
    }
    let Ok(file) = dirfd::open_read(dir, name, dirfd::ident(&st)) else {
        return Verdict::Write;
    };
    match same_content(key, &file, want) {
        Ok(true) => Verdict::Unchanged { file, st },
        _ => Verdict::Write,
    }
}

/// Whether `file` reads as exactly the chunks `want.ids`.
fn same_content(key: &MasterKey, file: &File, want: &Want<'_>) -> io::Result<bool> {
    let mut buf = Vec::new();
    let mut off = 0u64;
    for (id, &len) in want.ids.iter().zip(want.lens) {
        if crate::interrupt::received().is_some() {
            return Ok(false);
        }
        buf.resize(len as usize, 0);
        file.read_exact_at(&mut buf, off)?;
        if key.blob_id(&buf) != *id {
            return Ok(false);
        }
        off += len;
    }
    // Nothing past the snapshot's end (it grew since it was looked at).
    let mut one = [0u8; 1];
    Ok(off == want.size && file.read_at(&mut one, off)? == 0)
}

/// Sets on the open file `fd` (described by `st`) what of `m` differs
/// ([`meta::set_differing`]): nothing is changed (not even the ctime) when
/// everything is right already.
pub fn fix(fd: BorrowedFd<'_>, m: &Meta, st: &Stat) -> io::Result<()> {
    meta::set_differing(fd, m, st, false)
}
