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

/// Stand-in when snap is built without the `object-store` feature: URLs are
/// recognised, and refused with a clear message.
#[cfg(not(feature = "object-store"))]
pub mod object {
    pub use super::RequestCounts;

    /// Whether `location` is a URL rather than a path.
    pub fn is_object_url(location: &str) -> bool {
        location.contains("://")
    }

    /// Ignored: there is no object store to configure.
    pub fn set_global_options(_opts: Vec<(String, String)>) {}
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

    /// Relative path of an object of this kind.
    pub fn path(self, name: &str) -> String {
        match self {
            FileKind::Config => "config".to_string(),
            FileKind::Pack => format!("data/{}/{}", &name[..2.min(name.len())], name),
            k => format!("{}/{}", k.dir(), name),
        }
    }
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
    /// Names and sizes of all objects of a kind.
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
}

/// Opens a backend for a repository location (a path, or a URL).
///
/// `s3://`, `gs://`, `az://` and `file://` URLs open an object store
/// ([`object::ObjectBackend`], with the `--option` pairs set by the CLI);
/// anything else is a local directory.
pub fn open(location: &str) -> crate::Result<Box<dyn Backend>> {
    if object::is_object_url(location) {
        #[cfg(feature = "object-store")]
        return Ok(Box::new(object::ObjectBackend::open(location)?));
        #[cfg(not(feature = "object-store"))]
        return Err(crate::Error::Invalid(format!(
            "{location}: this snap was built without object-store support (feature `object-store`)"
        )));
    }
    Ok(Box::new(local::LocalBackend::new(location)))
}
