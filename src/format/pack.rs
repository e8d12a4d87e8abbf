//! Pack files: `blob_0 || … || blob_n-1 || encrypted header || trailer`.
//!
//! This module encodes and decodes the *plaintext* header and the trailer;
//! encryption is the pipeline's job. Layout (all integers little-endian):
//!
//! ```text
//! header plaintext = version:u8 (=1) || count:u32 || entry * count
//! entry            = kind:u8 || compression:u8 || id:[32] || offset:u64
//!                    || stored_len:u32 || raw_len:u32          (50 bytes)
//! trailer          = header_len:u32 || magic "SNAPPK01"        (12 bytes)
//! ```

use super::ids::{BlobId, BlobKind};

/// Magic bytes at the very end of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"SNAPPK01";
/// Size of the trailer.
pub const TRAILER_LEN: usize = 12;
/// Size of one header entry.
pub const ENTRY_LEN: usize = 50;
/// Largest encrypted header accepted (about 335k entries).
pub const MAX_HEADER_LEN: usize = 16 * 1024 * 1024;
/// Largest stored blob accepted.
pub const MAX_BLOB_LEN: u32 = 64 * 1024 * 1024;
/// Header format version.
pub const HEADER_VERSION: u8 = 1;

/// How a blob's plaintext was stored before encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as is.
    None,
    /// A zstd frame.
    Zstd,
}

impl Compression {
    /// The byte stored in the header.
    pub fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
        }
    }
    /// Inverse of [`Compression::code`].
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Compression::None),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// One blob's place in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    /// Data or tree.
    pub kind: BlobKind,
    /// How the plaintext was stored.
    pub compression: Compression,
    /// Keyed hash of the plaintext.
    pub id: BlobId,
    /// Byte offset of the encrypted blob in the pack.
    pub offset: u64,
    /// Length of the encrypted blob (nonce + ciphertext + tag).
    pub stored_len: u32,
    /// Length of the plaintext.
    pub raw_len: u32,
}

/// Encodes the plaintext header.
pub fn encode_header(entries: &[PackEntry]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + entries.len() * ENTRY_LEN);
    v.push(HEADER_VERSION);
    v.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        v.push(e.kind.code());
        v.push(e.compression.code());
        v.extend_from_slice(&e.id.0);
        v.extend_from_slice(&e.offset.to_le_bytes());
        v.extend_from_slice(&e.stored_len.to_le_bytes());
        v.extend_from_slice(&e.raw_len.to_le_bytes());
    }
    v
}

/// Decodes a plaintext header; `blobs_end` is where the encrypted header
/// starts, so every entry must lie before it, in order and without overlap.
pub fn decode_header(bytes: &[u8], blobs_end: u64) -> Result<Vec<PackEntry>, String> {
    if bytes.len() < 5 {
        return Err("pack header shorter than 5 bytes".into());
    }
    if bytes[0] != HEADER_VERSION {
        return Err(format!("unknown pack header version {}", bytes[0]));
    }
    let count = u32::from_le_bytes(bytes[1..5].try_into().unwrap()) as u64;
    if bytes.len() as u64 != 5 + count * ENTRY_LEN as u64 {
        return Err(format!(
            "pack header length {} does not match {count} entries",
            bytes.len()
        ));
    }
    // `count` is bounded by the length just checked.
    let mut out = Vec::with_capacity(count as usize);
    let mut next_offset = 0u64;
    for raw in bytes[5..].chunks_exact(ENTRY_LEN) {
        let kind =
            BlobKind::from_code(raw[0]).ok_or_else(|| format!("unknown blob kind {}", raw[0]))?;
        let compression = Compression::from_code(raw[1])
            .ok_or_else(|| format!("unknown compression {}", raw[1]))?;
        let id = BlobId::from_slice(&raw[2..34]).expect("32 bytes");
        let offset = u64::from_le_bytes(raw[34..42].try_into().unwrap());
        let stored_len = u32::from_le_bytes(raw[42..46].try_into().unwrap());
        let raw_len = u32::from_le_bytes(raw[46..50].try_into().unwrap());
        if !(40..=MAX_BLOB_LEN).contains(&stored_len) || raw_len > MAX_BLOB_LEN {
            return Err(format!("blob {} has implausible length", id.short()));
        }
        // Checked: a hostile offset near 2^64 must not wrap past the bound.
        let end = offset.checked_add(stored_len as u64);
        if offset < next_offset || end.is_none_or(|end| end > blobs_end) {
            return Err(format!(
                "blob {} lies outside the pack or overlaps another",
                id.short()
            ));
        }
        next_offset = offset + stored_len as u64;
        out.push(PackEntry {
            kind,
            compression,
            id,
            offset,
            stored_len,
            raw_len,
        });
    }
    Ok(out)
}

/// Encodes the trailer for an encrypted header of `header_len` bytes.
pub fn encode_trailer(header_len: u32) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..4].copy_from_slice(&header_len.to_le_bytes());
    t[4..].copy_from_slice(PACK_MAGIC);
    t
}

/// Decodes a trailer of a pack of `pack_len` bytes; returns the offset and
/// length of the encrypted header.
pub fn decode_trailer(trailer: &[u8], pack_len: u64) -> Result<(u64, usize), String> {
    if trailer.len() != TRAILER_LEN || pack_len < TRAILER_LEN as u64 {
        return Err("pack shorter than its trailer".into());
    }
    if &trailer[4..] != PACK_MAGIC {
        return Err("pack trailer magic missing (truncated or not a pack)".into());
    }
    let header_len = u32::from_le_bytes(trailer[..4].try_into().unwrap()) as usize;
    if header_len > MAX_HEADER_LEN || header_len as u64 + TRAILER_LEN as u64 > pack_len {
        return Err(format!("pack header length {header_len} out of range"));
    }
    Ok((
        pack_len - TRAILER_LEN as u64 - header_len as u64,
        header_len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_bounds() {
        let e = PackEntry {
            kind: BlobKind::Tree,
            compression: Compression::Zstd,
            id: BlobId([7; 32]),
            offset: 0,
            stored_len: 100,
            raw_len: 300,
        };
        let f = PackEntry {
            offset: 100,
            kind: BlobKind::Data,
            ..e
        };
        let bytes = encode_header(&[e, f]);
        assert_eq!(decode_header(&bytes, 200).unwrap(), vec![e, f]);
        assert!(
            decode_header(&bytes, 199).is_err(),
            "entry past the end must be refused"
        );
        assert!(decode_header(&bytes[..bytes.len() - 1], 200).is_err());
        let wrap = PackEntry {
            offset: u64::MAX - 7,
            stored_len: 40,
            ..e
        };
        assert!(
            decode_header(&encode_header(&[wrap]), 200).is_err(),
            "an offset that wraps must be refused"
        );
        let t = encode_trailer(77);
        assert_eq!(decode_trailer(&t, 1000).unwrap(), (1000 - 12 - 77, 77));
        assert!(decode_trailer(&t, 50).is_err());
    }
}
