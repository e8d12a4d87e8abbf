//! All cryptography of snap, in one room.
//!
//! * Blob and object encryption: XChaCha20-Poly1305 with a fresh random
//!   24-byte nonce per message (from the OS CSPRNG). With 192-bit random
//!   nonces a repeat is negligible (2^-96 after 2^48 messages), so no nonce
//!   state has to be kept or coordinated between concurrent writers.
//! * Blob ids: BLAKE3 keyed with a key derived from the master secret, so
//!   ids do not reveal which known files a repository holds.
//! * Sub-keys are derived from one 32-byte master secret with
//!   `blake3::derive_key` and distinct context strings.
//! * Password wrapping: Argon2id -> 32-byte wrapping key -> XChaCha20-Poly1305.
//!
//! Decryption errors are deliberately coarse: they say "does not
//! authenticate", never why.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::format::key::{KdfParams, KeyFile};
use crate::format::BlobId;

/// Length of a nonce prefix.
pub const NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Bytes an encrypted message adds to its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

const CTX_ENC: &str = "snap 2026-11 blob encryption key v1";
const CTX_ID: &str = "snap 2026-11 blob id key v1";
const CTX_CHUNKER: &str = "snap 2026-11 chunker seed v1";
const CTX_CONFIG_MAC: &str = "snap 2026-11 config mac key v1";

/// AAD of pack headers.
pub const AAD_PACK_HEADER: &[u8] = b"snap-pack-header-v1";
/// AAD of snapshot objects.
pub const AAD_SNAPSHOT: &[u8] = b"snap-snapshot-v1";

/// The decrypted master secret and the keys derived from it; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    secret: [u8; 32],
    enc: [u8; 32],
    id: [u8; 32],
    mac: [u8; 32],
    chunker_seed: u64,
}

/// Decryption failed: wrong key, or the bytes were changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("does not authenticate (tampered, truncated or wrong key)")]
pub struct AuthError;

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> MasterKey {
        let mut s = [0u8; 32];
        rand::rng().fill_bytes(&mut s);
        MasterKey::from_secret(s)
    }

    /// Derives all sub-keys from a 32-byte secret.
    pub fn from_secret(secret: [u8; 32]) -> MasterKey {
        let seed = blake3::derive_key(CTX_CHUNKER, &secret);
        MasterKey {
            enc: blake3::derive_key(CTX_ENC, &secret),
            id: blake3::derive_key(CTX_ID, &secret),
            mac: blake3::derive_key(CTX_CONFIG_MAC, &secret),
            chunker_seed: u64::from_le_bytes(seed[..8].try_into().unwrap()),
            secret,
        }
    }

    /// The keyed id of a plaintext blob.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.id, plaintext).as_bytes())
    }

    /// The FastCDC gear seed.
    pub fn chunker_seed(&self) -> u64 {
        self.chunker_seed
    }

    /// MAC of the config (hex).
    pub fn config_mac(&self, input: &[u8]) -> String {
        blake3::keyed_hash(&self.mac, input).to_hex().to_string()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.enc.into())
    }

    /// Encrypts `plaintext` as `nonce || ciphertext || tag`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.cipher(), aad, plaintext)
    }

    /// [`MasterKey::seal`] with a caller-chosen nonce. Only for the test
    /// vectors of `format-spec/vectors/`: reusing a nonce under one key
    /// breaks the AEAD, so real writers always use [`MasterKey::seal`].
    #[doc(hidden)]
    pub fn seal_with_nonce_for_vectors(
        &self,
        aad: &[u8],
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        seal_with_nonce(&self.cipher(), aad, plaintext, nonce)
    }

    /// Inverse of [`MasterKey::seal`].
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        open_with(&self.cipher(), aad, sealed)
    }

    /// A cipher instance for many blobs (avoids re-keying per blob).
    pub fn blob_cipher(&self) -> BlobCipher {
        BlobCipher(self.cipher())
    }

    /// Wraps this master secret under `password` for the repository `repo_id`.
    pub fn wrap(
        &self,
        password: &[u8],
        repo_id: &str,
        kdf: KdfParams,
        created: String,
        host: String,
    ) -> KeyFile {
        self.wrap_with_nonce_for_vectors(password, repo_id, kdf, created, host, random_nonce())
    }

    /// [`MasterKey::wrap`] with a caller-chosen nonce; only for test vectors.
    #[doc(hidden)]
    pub fn wrap_with_nonce_for_vectors(
        &self,
        password: &[u8],
        repo_id: &str,
        kdf: KdfParams,
        created: String,
        host: String,
        nonce: [u8; NONCE_LEN],
    ) -> KeyFile {
        let wk = derive_wrapping_key(password, &kdf).expect("validated KDF parameters");
        let c = XChaCha20Poly1305::new(&wk.into());
        let sealed = seal_with_nonce(&c, &key_aad(repo_id), &self.secret, nonce);
        KeyFile {
            version: 1,
            created,
            host,
            kdf,
            nonce: hex::encode(&sealed[..NONCE_LEN]),
            wrapped: hex::encode(&sealed[NONCE_LEN..]),
        }
    }

    /// Unwraps a key file with `password`; `Err` means a wrong password (or a damaged key file).
    pub fn unwrap(key: &KeyFile, password: &[u8], repo_id: &str) -> Result<MasterKey, AuthError> {
        let wk = derive_wrapping_key(password, &key.kdf).map_err(|_| AuthError)?;
        let c = XChaCha20Poly1305::new(&wk.into());
        let mut sealed = hex::decode(&key.nonce).map_err(|_| AuthError)?;
        sealed.extend(hex::decode(&key.wrapped).map_err(|_| AuthError)?);
        let mut secret = open_with(&c, &key_aad(repo_id), &sealed)?;
        let arr: [u8; 32] = secret.as_slice().try_into().map_err(|_| AuthError)?;
        secret.zeroize();
        Ok(MasterKey::from_secret(arr))
    }
}

/// Random KDF parameters for a new key file.
pub fn new_kdf_params(m_kib: u32, t: u32, p: u32) -> KdfParams {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    KdfParams {
        algorithm: "argon2id".into(),
        m_kib,
        t,
        p,
        salt: hex::encode(salt),
    }
}

fn key_aad(repo_id: &str) -> Vec<u8> {
    let mut v = b"snap-key-v1".to_vec();
    v.extend_from_slice(repo_id.as_bytes());
    v
}

fn derive_wrapping_key(password: &[u8], kdf: &KdfParams) -> Result<[u8; 32], argon2::Error> {
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = hex::decode(&kdf.salt).map_err(|_| argon2::Error::SaltTooShort)?;
    let mut out = [0u8; 32];
    a.hash_password_into(password, &salt, &mut out)?;
    Ok(out)
}

fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    nonce
}

fn seal_with(c: &XChaCha20Poly1305, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    seal_with_nonce(c, aad, plaintext, random_nonce())
}

fn seal_with_nonce(
    c: &XChaCha20Poly1305,
    aad: &[u8],
    plaintext: &[u8],
    nonce: [u8; NONCE_LEN],
) -> Vec<u8> {
    // One copy: the plaintext goes straight to its place in the output and
    // is encrypted there.
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = c
        .encrypt_inout_detached(&XNonce::from(nonce), aad, (&mut out[NONCE_LEN..]).into())
        .expect("plaintext below the AEAD limit");
    out.extend_from_slice(&tag);
    out
}

fn open_with(c: &XChaCha20Poly1305, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
    if sealed.len() < OVERHEAD {
        return Err(AuthError);
    }
    let nonce: [u8; NONCE_LEN] = sealed[..NONCE_LEN].try_into().unwrap();
    let (body, tag) = sealed[NONCE_LEN..].split_at(sealed.len() - OVERHEAD);
    let mut out = body.to_vec();
    let tag = chacha20poly1305::Tag::try_from(tag).map_err(|_| AuthError)?;
    c.decrypt_inout_detached(&XNonce::from(nonce), aad, (&mut out[..]).into(), &tag)
        .map_err(|_| AuthError)?;
    Ok(out)
}

/// A keyed cipher for blobs; the AAD binds each blob to its kind and id.
#[derive(Clone)]
pub struct BlobCipher(XChaCha20Poly1305);

impl BlobCipher {
    fn aad(kind_code: u8, id: &BlobId) -> [u8; 33] {
        let mut a = [0u8; 33];
        a[0] = kind_code;
        a[1..].copy_from_slice(&id.0);
        a
    }

    /// Encrypts a stored (maybe compressed) blob.
    pub fn seal_blob(&self, kind_code: u8, id: &BlobId, stored: &[u8]) -> Vec<u8> {
        seal_with(&self.0, &Self::aad(kind_code, id), stored)
    }

    /// [`BlobCipher::seal_blob`] with a caller-chosen nonce; only for the
    /// test vectors (a repeated nonce under one key breaks the AEAD).
    #[doc(hidden)]
    pub fn seal_blob_with_nonce_for_vectors(
        &self,
        kind_code: u8,
        id: &BlobId,
        stored: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        seal_with_nonce(&self.0, &Self::aad(kind_code, id), stored, nonce)
    }

    /// Decrypts a blob; the caller still checks the plaintext's id.
    pub fn open_blob(
        &self,
        kind_code: u8,
        id: &BlobId,
        sealed: &[u8],
    ) -> Result<Vec<u8>, AuthError> {
        open_with(&self.0, &Self::aad(kind_code, id), sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let k = MasterKey::generate();
        let s = k.seal(b"aad", b"hello");
        assert_eq!(k.open(b"aad", &s).unwrap(), b"hello");
        assert!(k.open(b"other", &s).is_err());
        let mut t = s.clone();
        t[30] ^= 1;
        assert!(k.open(b"aad", &t).is_err());
        assert!(k.open(b"aad", &s[..s.len() - 1]).is_err());
        let other = MasterKey::generate();
        assert!(other.open(b"aad", &s).is_err());
    }

    #[test]
    fn wrap_unwrap() {
        let k = MasterKey::generate();
        let kf = k.wrap(
            b"pw",
            "id",
            new_kdf_params(64, 1, 1),
            "t".into(),
            "h".into(),
        );
        let k2 = MasterKey::unwrap(&kf, b"pw", "id").unwrap();
        assert_eq!(k.blob_id(b"x"), k2.blob_id(b"x"));
        assert!(MasterKey::unwrap(&kf, b"wrong", "id").is_err());
        assert!(MasterKey::unwrap(&kf, b"pw", "other-repo").is_err());
    }
}
