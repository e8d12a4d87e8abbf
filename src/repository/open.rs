//! `init` and unlocking: config, key files, and the index location.
//!
//! The index is a per-user cache, one directory per repository id below
//! [`cache_base`], for every kind of repository: a local repository is only
//! read (so it works on a read-only mount), and storage holds no plaintext
//! blob ids or lengths. snap 0.1 kept a local repository's index inside it
//! (`<repo>/index/`); that copy is never read, and is removed when the
//! repository is writable.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rand::RngCore;

use super::Repository;
use crate::backend::{Backend, FileKind, WriteMode};
use crate::format::config::{ChunkerParams, Config};
use crate::format::key::KeyFile;
use crate::format::FORMAT_VERSION;
use crate::index::Index;
use crate::pipeline::crypto::{new_kdf_params, MasterKey};
use crate::{Error, Result};

/// How expensive password derivation is.
#[derive(Clone, Copy, Debug)]
pub struct KdfStrength {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfStrength {
    fn default() -> Self {
        // ~0.3 s on the reference machine; OWASP's minimum is 19 MiB / t=2.
        KdfStrength {
            m_kib: 64 * 1024,
            t: 3,
            p: 2,
        }
    }
}

/// Options of `snap init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Chunker parameters.
    pub chunker: ChunkerParams,
    /// zstd level for new blobs.
    pub compression_level: i32,
    /// Target pack size.
    pub pack_size: u64,
    /// Password KDF cost.
    pub kdf: KdfStrength,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            chunker: ChunkerParams::DEFAULT,
            compression_level: 3,
            pack_size: 32 * 1024 * 1024,
            kdf: KdfStrength::default(),
        }
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// This machine's host name.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The index file's name in a repository's cache directory.
pub const INDEX_FILE: &str = "index.sqlite";

/// Removes the index snap 0.1 kept inside a local repository, which must
/// never be trusted (it is not kept in step with storage); says what it did.
fn retire_legacy_index(backend: &dyn Backend, cache_dir: &Path) -> Option<String> {
    let dir = backend.staging_dir()?.parent()?.join("index");
    std::fs::symlink_metadata(&dir).ok()?;
    let inside = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if inside(cache_dir).starts_with(inside(&dir)) {
        return None; // SNAP_CACHE_DIR points there: it is the cache itself
    }
    Some(match std::fs::remove_dir_all(&dir) {
        Ok(()) => format!(
            "removed {}, the index snap 0.1 kept inside the repository (unused: the index is now a per-user cache)",
            dir.display()
        ),
        Err(e) => format!(
            "ignoring {}, the index snap 0.1 kept inside the repository (unused: the index is now a per-user cache); it could not be removed ({e}): remove it when the repository is writable",
            dir.display()
        ),
    })
}

/// The per-user cache directory (`SNAP_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/snap`, else `~/.cache/snap`), holding one directory per
/// repository id.
pub fn cache_base() -> PathBuf {
    std::env::var_os("SNAP_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|p| PathBuf::from(p).join("snap")))
        .or_else(|| std::env::var_os("HOME").map(|p| PathBuf::from(p).join(".cache/snap")))
        .unwrap_or_else(|| std::env::temp_dir().join("snap-cache"))
}

impl Repository {
    /// Creates a new repository in an empty location.
    pub fn init(
        backend: Box<dyn Backend>,
        password: &[u8],
        opts: &InitOptions,
    ) -> Result<Repository> {
        Self::init_in(backend, password, opts, &cache_base())
    }

    /// [`Repository::init`] with the cache in `cache_base` instead of the
    /// user's cache directory.
    pub fn init_in(
        backend: Box<dyn Backend>,
        password: &[u8],
        opts: &InitOptions,
        cache_base: &Path,
    ) -> Result<Repository> {
        let loc = backend.location();
        if backend.exists()? {
            return Err(Error::AlreadyInitialized { repo: loc });
        }
        opts.chunker.validate().map_err(Error::Invalid)?;
        backend.create_layout()?;
        let key = MasterKey::generate();
        let mut idb = [0u8; 32];
        rand::rng().fill_bytes(&mut idb);
        let mut config = Config {
            version: FORMAT_VERSION,
            id: hex::encode(idb),
            chunker: opts.chunker,
            compression_level: opts.compression_level,
            pack_size: opts.pack_size,
            features: vec![],
            mac: String::new(),
        };
        config.validate().map_err(Error::Invalid)?;
        config.mac = key.config_mac(&config.mac_input());
        let kdf = new_kdf_params(opts.kdf.m_kib, opts.kdf.t, opts.kdf.p);
        let kf = key.wrap(password, &config.id, kdf, now_rfc3339(), hostname());
        let kbytes = kf.to_bytes();
        let kid = blake3::hash(&kbytes).to_hex().to_string();
        // Key first, config last: a repository "exists" only once it can be opened.
        backend.write(FileKind::Key, &kid, &kbytes, WriteMode::CreateNew)?;
        match backend.write(
            FileKind::Config,
            "config",
            &config.to_bytes(),
            WriteMode::CreateNew,
        ) {
            Err(crate::backend::BackendError::AlreadyExists(_)) => {
                return Err(Error::AlreadyInitialized { repo: loc })
            }
            r => r?,
        }
        Self::assemble(backend, config, key, kid, cache_base)
    }

    /// Reads `config` and refuses a format version this build does not
    /// know, naming it. Needs no password, so callers can run it before
    /// asking for one; returns the raw config.
    pub fn check_format_version(backend: &dyn Backend) -> Result<Vec<u8>> {
        let loc = backend.location();
        let raw = match backend.read(FileKind::Config, "config") {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Err(Error::NoRepository { repo: loc }),
            Err(e) => return Err(e.into()),
        };
        // Peek at the version before anything else so that a newer format is
        // refused with its version named, even if the rest would not parse.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&raw) {
            if let Some(found) = v.get("version").and_then(|x| x.as_u64()) {
                if found != FORMAT_VERSION as u64 {
                    return Err(Error::UnsupportedVersion {
                        repo: loc,
                        found: found.min(u32::MAX as u64) as u32,
                        supported: FORMAT_VERSION,
                    });
                }
            }
        }
        Ok(raw)
    }

    /// Opens an existing repository with a password.
    pub fn open(backend: Box<dyn Backend>, password: &[u8]) -> Result<Repository> {
        let raw = Self::check_format_version(backend.as_ref())?;
        Self::open_with_config(backend, &raw, password)
    }

    /// Opens a repository whose `config` bytes were already read (and
    /// version-checked by [`Repository::check_format_version`]).
    pub fn open_with_config(
        backend: Box<dyn Backend>,
        raw: &[u8],
        password: &[u8],
    ) -> Result<Repository> {
        let loc = backend.location();
        let config = Config::parse(raw).map_err(|why| from_copy(format!("{loc}/config"), why))?;
        config
            .validate()
            .map_err(|why| from_copy(format!("{loc}/config"), why))?;
        let keys = backend.list(FileKind::Key)?;
        if keys.is_empty() {
            return Err(from_copy(format!("{loc}/keys"), "no key files"));
        }
        let mut unlocked = None;
        for (name, _) in &keys {
            let Ok(bytes) = backend.read(FileKind::Key, name) else {
                continue;
            };
            let Ok(kf) = KeyFile::parse(&bytes) else {
                continue;
            };
            if let Ok(k) = MasterKey::unwrap(&kf, password, &config.id) {
                unlocked = Some((k, name.clone()));
                break;
            }
        }
        let (key, key_id) = unlocked.ok_or(Error::WrongPassword { repo: loc.clone() })?;
        if key.config_mac(&config.mac_input()) != config.mac {
            return Err(from_copy(
                format!("{loc}/config"),
                "MAC does not match (config was modified)",
            ));
        }
        Self::assemble(backend, config, key, key_id, &cache_base())
    }

    fn assemble(
        backend: Box<dyn Backend>,
        config: Config,
        key: MasterKey,
        key_id: String,
        cache_base: &Path,
    ) -> Result<Repository> {
        let cache_dir = cache_base.join(&config.id);
        let mut notices: Vec<String> = retire_legacy_index(backend.as_ref(), &cache_dir)
            .into_iter()
            .collect();
        let index_path = cache_dir.join(INDEX_FILE);
        let index = if !index_path.exists() {
            None
        } else if Index::marked_damaged(&index_path) {
            notices.push(format!(
                "the index {} was found damaged; rebuilding it from the packs",
                index_path.display()
            ));
            None
        } else {
            match Index::open(&index_path) {
                Ok(i) => Some(i),
                Err(Error::IndexDamaged { path, cause }) => {
                    notices.push(format!(
                        "the index {} is damaged ({cause}); rebuilding it from the packs",
                        path.display()
                    ));
                    None
                }
                Err(e) => return Err(e),
            }
        };
        let rebuild = index.is_none();
        // Ranged reads of a local file need no copy; an object store's do.
        let packs = super::pack_cache::PackCache::new(
            backend
                .staging_dir()
                .is_none()
                .then(|| cache_dir.join("packs")),
        );
        let repo = Repository {
            cipher: key.blob_cipher(),
            backend: backend.into(),
            config,
            key,
            key_id,
            index: Mutex::new(match index {
                Some(i) => i,
                None => Index::placeholder()?,
            }),
            cache_dir,
            packs,
            notices,
        };
        if rebuild {
            // A lost or damaged index is rebuilt from the packs, the source
            // of truth; only a complete one is ever put in place.
            repo.replace_index(false)?;
        }
        Ok(repo)
    }

    /// Adds a key (password) to the repository.
    pub fn add_key(&self, password: &[u8], kdf: KdfStrength) -> Result<String> {
        let kf = self.key.wrap(
            password,
            &self.config.id,
            new_kdf_params(kdf.m_kib, kdf.t, kdf.p),
            now_rfc3339(),
            hostname(),
        );
        let bytes = kf.to_bytes();
        let kid = blake3::hash(&bytes).to_hex().to_string();
        self.backend
            .write(FileKind::Key, &kid, &bytes, WriteMode::CreateNew)?;
        Ok(kid)
    }
}

/// `config` or the key files are damaged: only another copy of the
/// repository has them.
fn from_copy(what: String, why: impl Into<String>) -> Error {
    Error::corrupt_with(what, why, crate::error::Remedy::FromCopy)
}
