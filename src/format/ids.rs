//! Typed 32-byte identifiers, one type per kind of object, so a pack id can
//! never be used where a blob id is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Lower-case hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The first 8 hex characters, as shown to users.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            /// Parses 64 hex characters.
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }
            /// Builds an id from a slice of exactly 32 bytes.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                Some(Self(b.try_into().ok()?))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

id_type!(
    /// Keyed BLAKE3 of a blob's plaintext (see `format-spec/03-content.md`).
    BlobId
);
id_type!(
    /// Unkeyed BLAKE3 of a pack file's bytes.
    PackId
);
id_type!(
    /// Unkeyed BLAKE3 of a snapshot file's bytes.
    SnapshotId
);

/// What a blob holds; data and tree blobs live in separate packs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum BlobKind {
    /// File content (a chunk).
    Data,
    /// A serialized directory listing.
    Tree,
}

impl BlobKind {
    /// The byte stored in pack headers.
    pub fn code(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }
    /// Inverse of [`BlobKind::code`].
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}
