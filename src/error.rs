//! The library's error type: one enum, with structured context (which file or
//! object, and what to do), converted to a one-line message at the CLI edge.

use std::path::PathBuf;

/// Every failure the snap library reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The password does not open any key of the repository.
    #[error(
        "wrong password: no key in {repo} opens with it (check SNAP_PASSWORD / --password-file)"
    )]
    WrongPassword {
        /// Repository location.
        repo: String,
    },
    /// No repository at the given location.
    #[error("no snap repository at {repo}: run `snap init` first, or check --repo / SNAP_REPO")]
    NoRepository {
        /// Repository location.
        repo: String,
    },
    /// A repository already exists where `init` was asked to create one.
    #[error("a repository already exists at {repo}")]
    AlreadyInitialized {
        /// Repository location.
        repo: String,
    },
    /// The repository was written by a format this build does not understand.
    #[error("repository {repo} has format version {found}, this snap reads version {supported}: upgrade snap")]
    UnsupportedVersion {
        /// Repository location.
        repo: String,
        /// Version found in `config`.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// Stored bytes failed to parse or authenticate.
    #[error("{what} is damaged: {why} (run `snap check --read-data`)")]
    Corrupt {
        /// Which object (e.g. `pack 1a2b…`, `snapshot 3c4d…`).
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// An object the repository refers to is missing.
    #[error("{what} is missing from the repository (run `snap check`; `snap repair index` if the index is stale)")]
    Missing {
        /// Which object.
        what: String,
    },
    /// A storage backend could not be reached or refused a request (I/O
    /// error, timeout, access denied): never proof that an object is missing
    /// or damaged, so nothing is recorded or dropped because of it.
    #[error("storage error on {what}: {source}")]
    Backend {
        /// Which object or operation.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A local file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The SQLite index failed.
    #[error("index {}: {source} (run `snap repair index` to rebuild it)", path.display())]
    Index {
        /// The index database file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// The index file is damaged. It is only a cache: a marker beside it
    /// makes the next command rebuild it from the packs.
    #[error("index {} is damaged ({cause}); it is only a cache of the pack headers: the next snap command rebuilds it from the packs (or run `snap repair index`)", path.display())]
    IndexDamaged {
        /// The index database file.
        path: PathBuf,
        /// What SQLite said.
        cause: rusqlite::Error,
    },
    /// A worker of the run failed (a panic is a bug); nothing was committed.
    #[error("{0} (nothing was committed)")]
    Internal(String),
    /// A snapshot selector matched nothing or more than one snapshot.
    #[error("snapshot {selector:?}: {why}")]
    SnapshotSelector {
        /// What the user typed.
        selector: String,
        /// Why it failed.
        why: String,
    },
    /// A path inside a snapshot does not exist.
    #[error("{path:?} is not in snapshot {snapshot}")]
    NoSuchPath {
        /// The path looked up.
        path: String,
        /// The snapshot id.
        snapshot: String,
    },
    /// Invalid input from the user.
    #[error("{0}")]
    Invalid(String),
    /// `restore --include` patterns that match nothing in the snapshot
    /// (nothing was restored).
    #[error("{} matched nothing in snapshot {snapshot}: nothing restored (`snap ls {snapshot}` lists its paths)", patterns.iter().map(|p| format!("--include {p:?}")).collect::<Vec<_>>().join(", "))]
    NothingMatched {
        /// The patterns that matched nothing.
        patterns: Vec<String>,
        /// The snapshot's short id.
        snapshot: String,
    },
    /// A restore or check found damaged data; details were reported.
    #[error("{0}")]
    Damaged(String),
    /// A dump command failed.
    #[error("{0}")]
    Command(String),
    /// A signal asked the command to stop; it stopped cleanly.
    #[error("interrupted by {}: stopped cleanly, nothing half-done was committed", crate::interrupt::name(*signal))]
    Interrupted {
        /// The signal number.
        signal: i32,
    },
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for an [`Error::Io`] on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for an [`Error::Corrupt`].
    pub fn corrupt(what: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            why: why.into(),
        }
    }
}

impl From<crate::format::tree::TreeError> for Error {
    /// A listing that cannot be stored (a writer's bug, or one entry larger
    /// than a tree blob): never committed.
    fn from(e: crate::format::tree::TreeError) -> Self {
        Error::Invalid(format!("cannot store a directory listing: {e}"))
    }
}
