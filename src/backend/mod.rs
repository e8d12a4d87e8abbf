//! Storage backends: a small synchronous trait that the repository layer
//! uses, with one implementation per kind of storage. Async code (the
//! object store) stays inside its own backend.
//!
//! Obligations of every backend (MUST):
//! * `write` and `put_file` are atomic: a reader sees the whole object or
//!   nothing, never a prefix, also after a crash.
//! * `write` with [`WriteMode::CreateNew`] fails with
//!   [`BackendError::AlreadyExists`] when the object exists, unless it holds
//!   exactly the bytes being written (a retried request whose first attempt
//!   landed): that is the writer's own object, and the write succeeds.
//! * Once `write`/`put_file` returned, the object is durable.
//! * `read_range` returns exactly the requested bytes or an error.

pub mod local;
#[cfg(feature = "object-store")]
pub mod object;
#[cfg(feature = "sftp")]
pub mod sftp;

/// Stand-in when snap is built without the `object-store` feature: URLs are
/// recognised, and refused with a clear message.
#[cfg(not(feature = "object-store"))]
pub mod object {
    pub use super::RequestCounts;

    /// Whether `location` is a URL rather than a path.
    pub fn is_object_url(location: &str) -> bool {
        location.contains("://")
    }

    pub use super::set_global_options;
}

/// Options given with `--option key=value`, applied to every backend
/// opened in this process (set once by the CLI; each backend takes its
/// keys: `sftp.*` for SFTP, the others for object stores).
static GLOBAL_OPTIONS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// Sets the `--option key=value` pairs for backends opened later.
pub fn set_global_options(opts: Vec<(String, String)>) {
    let _ = GLOBAL_OPTIONS.set(opts);
}

/// The `--option` pairs set by the CLI (none in library use).
pub fn global_options() -> &'static [(String, String)] {
    GLOBAL_OPTIONS.get().map(|v| v.as_slice()).unwrap_or(&[])
}

/// Requests an object-store backend made (approximate HTTP requests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// GET requests.
    pub get: u64,
    /// PUT requests.
    pub put: u64,
    /// HEAD requests.
    pub head: u64,
    /// LIST pages.
    pub list: u64,
    /// DELETE requests.
    pub delete: u64,
    /// Bytes uploaded.
    pub bytes_up: u64,
    /// Bytes downloaded.
    pub bytes_down: u64,
}

impl RequestCounts {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.get + self.put + self.head + self.list + self.delete
    }
}

use std::fmt;
use std::io;
use std::path::Path;

/// The kinds of object a repository holds, each in its own namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// The `config` object (name is ignored).
    Config,
    /// `keys/<id>`.
    Key,
    /// `data/<2 hex>/<id>`: packs.
    Pack,
    /// `snapshots/<id>`.
    Snapshot,
    /// `locks/<id>`: writer registrations and prune fences.
    Lock,
}

impl FileKind {
    /// The directory (or key prefix) of this kind.
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Config => "",
            FileKind::Key => "keys",
            FileKind::Pack => "data",
            FileKind::Snapshot => "snapshots",
            FileKind::Lock => "locks",
        }
    }

    /// Relative path of an object of this kind. Never panics: a name that
    /// is not an object name (see [`FileKind::is_object_name`]) gives a
    /// path that holds no object.
    pub fn path(self, name: &str) -> String {
        match self {
            FileKind::Config => "config".to_string(),
            FileKind::Pack => format!("data/{}/{}", name.get(..2).unwrap_or("__"), name),
            k => format!("{}/{}", k.dir(), name),
        }
    }

    /// Whether `name` is the name of an object of this kind. This is the
    /// one place that decides it; backends list only such names.
    ///
    /// * packs, snapshots and keys: 64 lower-case hex digits (the BLAKE3
    ///   hash of the object's bytes);
    /// * locks: a lower-case ASCII word, `-`, and lower-case hex
    ///   (`create-<hex>`, `prune-<hex>`), at most 128 characters.
    pub fn is_object_name(self, name: &str) -> bool {
        let hex =
            |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match self {
            FileKind::Config => name == "config",
            FileKind::Pack | FileKind::Snapshot | FileKind::Key => name.len() == 64 && hex(name),
            FileKind::Lock => {
                name.len() <= 128
                    && name.split_once('-').is_some_and(|(word, rest)| {
                        !word.is_empty()
                            && word.bytes().all(|b| b.is_ascii_lowercase())
                            && hex(rest)
                    })
            }
        }
    }

    /// Judges one listed entry: `rel` is its path below [`FileKind::dir`]
    /// (`/`-separated; packs live in `<first two hex digits>/<name>`).
    /// Returns the object name, or `None` for anything else, which the
    /// caller reports with [`note_ignored`] unless [`is_upload_in_progress`]
    /// says it is a store's own temporary file.
    pub fn object_name_of(self, rel: &str) -> Option<&str> {
        let name = match self {
            FileKind::Pack => {
                let (sub, name) = rel.split_once('/')?;
                if name.get(..2) != Some(sub) {
                    return None;
                }
                name
            }
            _ => rel,
        };
        self.is_object_name(name).then_some(name)
    }
}

/// Whether a listed name is an upload in progress of `object_store`'s
/// `file://` store (`<object>#<digits>`): not junk, and not an object yet.
pub fn is_upload_in_progress(rel: &str) -> bool {
    rel.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Names found in repository directories that are not objects (a
/// `Thumbs.db`, a `.DS_Store`, a file with a non-hex name), collected by
/// every backend's `list` for the CLI to warn about once per run.
static IGNORED: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Records a listed entry that is not an object (`what` names it fully,
/// e.g. `/backup/repo/data/Thumbs.db`).
pub fn note_ignored(what: String) {
    IGNORED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(what);
}

/// The non-object entries listed so far (each once).
pub fn ignored() -> Vec<String> {
    IGNORED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// The non-object entries listed so far (each once), emptying the record.
pub fn take_ignored() -> Vec<String> {
    std::mem::take(&mut *IGNORED.lock().unwrap_or_else(|p| p.into_inner()))
        .into_iter()
        .collect()
}

/// How `write` treats an existing object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Fail with `AlreadyExists` if the object exists.
    CreateNew,
    /// Replace an existing object.
    Overwrite,
}

/// Error classes a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// `CreateNew` found an existing object.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Any other failure, with the object it concerns.
    #[error("{what}: {source}")]
    Io {
        /// Object or operation.
        what: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

impl BackendError {
    /// Whether this error means "no such object".
    pub fn is_not_found(&self) -> bool {
        matches!(self, BackendError::NotFound(_))
    }
}

impl From<BackendError> for crate::Error {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NotFound(what) => crate::Error::Missing { what },
            BackendError::AlreadyExists(what) => crate::Error::Backend {
                what: what.clone(),
                source: io::Error::new(io::ErrorKind::AlreadyExists, "already exists"),
            },
            // A read that returned fewer bytes than the object should have:
            // the object is truncated (damage), not out of reach.
            BackendError::Io { what, source } if source.kind() == io::ErrorKind::UnexpectedEof => {
                crate::Error::Corrupt {
                    what,
                    why: source.to_string(),
                    remedy: crate::error::Remedy::CheckData,
                }
            }
            BackendError::Io { what, source } => crate::Error::Backend { what, source },
        }
    }
}

/// Result alias for backends.
pub type BResult<T> = Result<T, BackendError>;

/// A place to keep repository objects.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Human-readable location (path or URL), for messages.
    fn location(&self) -> String;
    /// Whether the repository's `config` exists.
    fn exists(&self) -> BResult<bool>;
    /// Prepares an empty repository's namespaces.
    fn create_layout(&self) -> BResult<()>;
    /// Reads a whole object.
    fn read(&self, kind: FileKind, name: &str) -> BResult<Vec<u8>>;
    /// Reads `len` bytes at `offset`.
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> BResult<Vec<u8>>;
    /// Size of an object in bytes.
    fn size(&self, kind: FileKind, name: &str) -> BResult<u64>;
    /// Names and sizes of all objects of a kind, sorted by name. Only
    /// object names ([`FileKind::object_name_of`]) are returned; anything
    /// else found there is reported with [`note_ignored`] and skipped.
    fn list(&self, kind: FileKind) -> BResult<Vec<(String, u64)>>;
    /// Writes a small object atomically and durably.
    fn write(&self, kind: FileKind, name: &str, data: &[u8], mode: WriteMode) -> BResult<()>;
    /// Moves a finished local file (a pack) into the repository, atomically
    /// and durably; the local file is consumed.
    fn put_file(&self, kind: FileKind, name: &str, local: &Path) -> BResult<()>;
    /// Deletes an object; deleting a missing object is not an error.
    fn delete(&self, kind: FileKind, name: &str) -> BResult<()>;
    /// A local directory on the same file system as the repository when it
    /// is local, where packs are staged before `put_file`.
    fn staging_dir(&self) -> Option<std::path::PathBuf>;
    /// Requests made so far, for backends that count them (object stores).
    fn request_counts(&self) -> Option<RequestCounts> {
        None
    }
    /// How many bytes that are not needed a reader of several parts of an
    /// object should read through rather than start another read: a read
    /// of a local file is a system call (worth a copy of about
    /// [`LOCAL_READ_GAP`]), one of an object store a request (worth its
    /// latency times the bandwidth, about [`REQUEST_READ_GAP`]).
    fn read_gap(&self) -> u64 {
        LOCAL_READ_GAP
    }
}

/// [`Backend::read_gap`] of local files.
pub const LOCAL_READ_GAP: u64 = 16 << 10;
/// [`Backend::read_gap`] of object stores (30 ms at 70 MB/s).
pub const REQUEST_READ_GAP: u64 = 2 << 20;

/// Opens a backend for a repository location (a path, or a URL).
///
/// `sftp://` URLs open an SFTP server ([`sftp::SftpBackend`]); `s3://`,
/// `gs://`, `az://` and `file://` URLs an object store
/// ([`object::ObjectBackend`]), each with the `--option` pairs set by the
/// CLI; anything else is a local directory.
pub fn open(location: &str) -> crate::Result<Box<dyn Backend>> {
    open_with(location, global_options())
}

/// Whether `location` is an `sftp://` URL.
pub fn is_sftp_url(location: &str) -> bool {
    location
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("sftp://"))
}

/// [`open`] with explicit `--option` pairs (a backup job's `options`).
pub fn open_with(location: &str, options: &[(String, String)]) -> crate::Result<Box<dyn Backend>> {
    if is_sftp_url(location) {
        #[cfg(feature = "sftp")]
        return Ok(Box::new(sftp::SftpBackend::open_with(location, options)?));
        #[cfg(not(feature = "sftp"))]
        return Err(crate::Error::Invalid(format!(
            "{location}: this snap was built without SFTP support (feature `sftp`)"
        )));
    }
    if object::is_object_url(location) {
        #[cfg(feature = "object-store")]
        return Ok(Box::new(object::ObjectBackend::open_with(
            location, options,
        )?));
        #[cfg(not(feature = "object-store"))]
        return Err(crate::Error::Invalid(format!(
            "{location}: this snap was built without object-store support (feature `object-store`)"
        )));
    }
    Ok(Box::new(local::LocalBackend::new(location)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn object_names_are_decided_here() {
        for k in [FileKind::Snapshot, FileKind::Key] {
            assert_eq!(k.object_name_of(HEX), Some(HEX));
            for bad in ["Thumbs.db", ".DS_Store", "", "ab", &HEX.to_uppercase(), "é"] {
                assert_eq!(k.object_name_of(bad), None, "{bad:?}");
            }
            assert_eq!(k.object_name_of(&format!("sub/{HEX}")), None);
        }
        let pack = format!("01/{HEX}");
        assert_eq!(FileKind::Pack.object_name_of(&pack), Some(HEX));
        for bad in [
            HEX.to_string(),
            format!("02/{HEX}"),
            "aé/aébc".into(),
            "Thumbs.db".into(),
        ] {
            assert_eq!(FileKind::Pack.object_name_of(&bad), None, "{bad:?}");
        }
        assert!(FileKind::Lock.is_object_name("create-00c0ffee"));
        assert!(FileKind::Lock.is_object_name("prune-1234"));
        for bad in ["Thumbs.db", "create-", "-12", "create-xyz", ".lock"] {
            assert!(!FileKind::Lock.is_object_name(bad), "{bad:?}");
        }
        assert!(is_upload_in_progress(&format!("{HEX}#12")));
        assert!(!is_upload_in_progress("Thumbs.db"));
    }

    #[test]
    fn paths_never_panic() {
        for name in ["", "a", "é", "aé", "ab", HEX] {
            let _ = FileKind::Pack.path(name);
        }
        assert_eq!(FileKind::Pack.path(HEX), format!("data/01/{HEX}"));
    }
}
