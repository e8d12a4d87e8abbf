//! Key files (`keys/<id>`): the repository master secret wrapped by a key
//! derived from a password with Argon2id. Several key files may exist; any
//! one of them opens the repository.

use serde::{Deserialize, Serialize};

/// Largest key file accepted when reading.
pub const MAX_KEY_LEN: usize = 16 * 1024;

/// Argon2id parameters, stored so that they can be raised later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Always `"argon2id"` in version 1.
    pub algorithm: String,
    /// Memory cost in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
    /// 16 random bytes, hex.
    pub salt: String,
}

/// A key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    /// Key file format version (1).
    pub version: u32,
    /// When the key was added (RFC 3339).
    pub created: String,
    /// Host that added it (informational).
    pub host: String,
    /// How the wrapping key is derived from the password.
    pub kdf: KdfParams,
    /// XChaCha20-Poly1305 nonce, 24 bytes hex.
    pub nonce: String,
    /// The 32-byte master secret encrypted with the wrapping key, plus the
    /// 16-byte tag, hex (AAD: `snap-key-v1` || repository id hex).
    pub wrapped: String,
}

impl KeyFile {
    /// Parses and bounds-checks a key file.
    pub fn parse(bytes: &[u8]) -> Result<KeyFile, String> {
        if bytes.len() > MAX_KEY_LEN {
            return Err("key file larger than 16 KiB".into());
        }
        let k: KeyFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if k.version != 1 {
            return Err(format!("unknown key file version {}", k.version));
        }
        if k.kdf.algorithm != "argon2id" {
            return Err(format!("unknown KDF {:?}", k.kdf.algorithm));
        }
        // Bounded so a hostile key file cannot make us allocate 4 TiB.
        if !(8..=4 * 1024 * 1024).contains(&k.kdf.m_kib)
            || !(1..=64).contains(&k.kdf.t)
            || !(1..=16).contains(&k.kdf.p)
        {
            return Err("KDF parameters out of range".into());
        }
        if k.kdf.salt.len() != 32 || k.nonce.len() != 48 || k.wrapped.len() != 96 {
            return Err("salt, nonce or wrapped key has the wrong length".into());
        }
        for s in [&k.kdf.salt, &k.nonce, &k.wrapped] {
            if hex::decode(s).is_err() {
                return Err("salt, nonce or wrapped key is not hex".into());
            }
        }
        Ok(k)
    }

    /// Serializes for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("key file serializes");
        v.push(b'\n');
        v
    }
}
