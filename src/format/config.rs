//! The `config` object: plaintext JSON, so that a reader can refuse an
//! unknown format version before asking for a password. Its integrity is
//! checked after unlocking by a keyed MAC over [`Config::mac_input`].

use serde::{Deserialize, Serialize};

/// Largest `config` object accepted when reading.
pub const MAX_CONFIG_LEN: usize = 64 * 1024;

/// Content-defined chunking parameters (FastCDC v2020).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Smallest chunk, bytes.
    pub min: u32,
    /// Target average chunk, bytes.
    pub avg: u32,
    /// Largest chunk, bytes.
    pub max: u32,
    /// FastCDC normalization level, 0..=3.
    pub normalization: u8,
}

impl ChunkerParams {
    /// The defaults chosen by measurement (see `format-spec/03-content.md`):
    /// smaller than restic's 1 MiB because database dumps change in many
    /// scattered places, and a chunk is the unit of what a change costs.
    pub const DEFAULT: ChunkerParams = ChunkerParams {
        min: 64 * 1024,
        avg: 256 * 1024,
        max: 2 * 1024 * 1024,
        normalization: 1,
    };

    /// Checks the bounds FastCDC needs (it checks them only in debug builds).
    pub fn validate(&self) -> Result<(), String> {
        let ok = (64..=1 << 20).contains(&self.min)
            && (256..=4 << 20).contains(&self.avg)
            && (1024..=16 << 20).contains(&self.max)
            && self.min <= self.avg
            && self.avg <= self.max
            && self.min % 2 == 0
            && self.avg % 2 == 0
            && self.max % 2 == 0
            && self.normalization <= 3;
        if ok {
            Ok(())
        } else {
            Err(format!("invalid chunker parameters {self:?}"))
        }
    }
}

/// The repository `config` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Format version; readers refuse versions they do not know.
    pub version: u32,
    /// Random repository id, 64 hex characters.
    pub id: String,
    /// Chunker parameters.
    pub chunker: ChunkerParams,
    /// zstd level used for new blobs (readers do not need it).
    pub compression_level: i32,
    /// Target pack size in bytes for new packs.
    pub pack_size: u64,
    /// Feature flags a reader must understand (none in version 1).
    #[serde(default)]
    pub features: Vec<String>,
    /// Keyed BLAKE3 (config-MAC key) over [`Config::mac_input`], hex.
    pub mac: String,
}

impl Config {
    /// Parses and bounds-checks a `config` object.
    pub fn parse(bytes: &[u8]) -> Result<Config, String> {
        if bytes.len() > MAX_CONFIG_LEN {
            return Err("config larger than 64 KiB".into());
        }
        let c: Config = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Ok(c)
    }

    /// Checks every field except the MAC; call after the version check.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.len() != 64 || hex::decode(&self.id).is_err() {
            return Err("repository id is not 64 hex characters".into());
        }
        self.chunker.validate()?;
        if !(1..=22).contains(&self.compression_level) {
            return Err("compression level out of range 1..=22".into());
        }
        if !(1 << 20..=1 << 30).contains(&self.pack_size) {
            return Err("pack size out of range 1 MiB..=1 GiB".into());
        }
        if !self.features.is_empty() {
            return Err(format!("unknown feature flags {:?}", self.features));
        }
        Ok(())
    }

    /// Serializes for storage (pretty JSON, newline-terminated).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("config serializes");
        v.push(b'\n');
        v
    }

    /// The exact bytes the MAC covers: every field but `mac`, in a fixed
    /// binary layout (see `format-spec/02-config-and-keys.md`).
    pub fn mac_input(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(128);
        v.extend_from_slice(b"snap-config-v1");
        v.extend_from_slice(&self.version.to_le_bytes());
        v.extend_from_slice(self.id.as_bytes());
        v.extend_from_slice(&self.chunker.min.to_le_bytes());
        v.extend_from_slice(&self.chunker.avg.to_le_bytes());
        v.extend_from_slice(&self.chunker.max.to_le_bytes());
        v.push(self.chunker.normalization);
        v.extend_from_slice(&self.compression_level.to_le_bytes());
        v.extend_from_slice(&self.pack_size.to_le_bytes());
        v.extend_from_slice(&(self.features.len() as u32).to_le_bytes());
        for f in &self.features {
            v.extend_from_slice(&(f.len() as u32).to_le_bytes());
            v.extend_from_slice(f.as_bytes());
        }
        v
    }
}
