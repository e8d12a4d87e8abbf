//! Packs under construction: blobs are appended to a staging file, and a
//! full pack gets its encrypted header and trailer, is fsynced, named by the
//! hash of its bytes and handed to the backend. Only then is it indexed.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::format::pack::{self, Compression, PackEntry};
use crate::format::{BlobId, BlobKind, PackId};
use crate::pipeline::crypto::{MasterKey, AAD_PACK_HEADER};
use crate::{Error, Result};

/// A pack being filled.
pub struct OpenPack {
    kind: BlobKind,
    path: PathBuf,
    file: BufWriter<File>,
    hasher: blake3::Hasher,
    entries: Vec<PackEntry>,
    len: u64,
}

/// A pack whose bytes are complete and durable in a staging file.
#[derive(Debug)]
pub struct FinishedPack {
    /// Hash of the pack bytes: its name.
    pub id: PackId,
    /// Kind of every blob in it.
    pub kind: BlobKind,
    /// Staging file.
    pub path: PathBuf,
    /// Header entries.
    pub entries: Vec<PackEntry>,
    /// Size in bytes.
    pub size: u64,
}

impl OpenPack {
    /// Starts a pack in `staging_dir`; the file name carries our pid so a
    /// later run can tell leftovers of dead processes from live ones.
    pub fn create(staging_dir: &Path, kind: BlobKind) -> Result<OpenPack> {
        std::fs::create_dir_all(staging_dir).map_err(|e| Error::io(staging_dir, e))?;
        let path = staging_dir.join(format!(
            "pack-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(OpenPack {
            kind,
            path,
            file: BufWriter::with_capacity(1 << 20, f),
            hasher: blake3::Hasher::new(),
            entries: Vec::new(),
            len: 0,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.file
            .write_all(b)
            .map_err(|e| Error::io(&self.path, e))?;
        self.hasher.update(b);
        self.len += b.len() as u64;
        Ok(())
    }

    /// Appends one encrypted blob.
    pub fn add(
        &mut self,
        id: BlobId,
        compression: Compression,
        raw_len: u32,
        sealed: &[u8],
    ) -> Result<()> {
        let offset = self.len;
        self.write(sealed)?;
        self.entries.push(PackEntry {
            kind: self.kind,
            compression,
            id,
            offset,
            stored_len: sealed.len() as u32,
            raw_len,
        });
        Ok(())
    }

    /// Writes header and trailer, fsyncs, and returns the finished pack.
    pub fn finish(mut self, key: &MasterKey) -> Result<FinishedPack> {
        let header = key.seal(AAD_PACK_HEADER, &pack::encode_header(&self.entries));
        self.write(&header)?;
        self.write(&pack::encode_trailer(header.len() as u32))?;
        let f = self
            .file
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&self.path, e))?;
        Ok(FinishedPack {
            id: PackId(*self.hasher.finalize().as_bytes()),
            kind: self.kind,
            path: self.path,
            entries: self.entries,
            size: self.len,
        })
    }

    /// Throws the staging file away.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
