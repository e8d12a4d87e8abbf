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
    /// Stored bytes failed to parse or authenticate, or an authentic
    /// object breaks a rule of the format.
    #[error("{}", corrupt_message(what, why, *remedy, true))]
    Corrupt {
        /// Which object (e.g. `pack 1a2b…`, `snapshot 3c4d…`).
        what: String,
        /// What is wrong with it.
        why: String,
        /// What happened to it, and so what helps.
        remedy: Remedy,
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
    #[error("storage error on {}", io_message(what, source))]
    Backend {
        /// Which object or operation.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A local file-system operation failed.
    #[error("{}", io_message(&path.display().to_string(), source))]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The SQLite index failed (not because the file is damaged: that is
    /// [`Error::IndexDamaged`]).
    #[error("{}", index_message(path, cause, *disk_full))]
    Index {
        /// The index database file.
        path: PathBuf,
        /// What SQLite said.
        cause: rusqlite::Error,
        /// The file system holding it is full (SQLite may say "disk I/O
        /// error" for that).
        disk_full: bool,
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
    /// A flag or argument that cannot be used as given (exit code 2, as a
    /// command-line error clap finds): nothing was read or written.
    #[error("{0}")]
    Usage(String),
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

    /// Shorthand for an [`Error::Corrupt`] of stored bytes that changed
    /// ([`Remedy::CheckData`]).
    pub fn corrupt(what: impl Into<String>, why: impl Into<String>) -> Self {
        Self::corrupt_with(what, why, Remedy::CheckData)
    }

    /// An [`Error::Corrupt`] with the advice that fits the object.
    pub fn corrupt_with(what: impl Into<String>, why: impl Into<String>, remedy: Remedy) -> Self {
        Error::Corrupt {
            what: what.into(),
            why: why.into(),
            remedy,
        }
    }

    /// The message without the generic advice it ends with: for a command
    /// that gives its own advice (`check` does not tell its user to run
    /// `check`).
    pub fn without_advice(&self) -> String {
        match self {
            Error::Corrupt { what, why, remedy } => corrupt_message(what, why, *remedy, false),
            Error::Missing { what } => format!("{what} is missing from the repository"),
            e => e.to_string(),
        }
    }
}

/// What happened to a damaged or invalid object, which decides what helps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// Stored bytes changed (they fail their hash or authentication):
    /// `check --read-data` finds all such damage, `docs/repair.md` says how
    /// to recover.
    CheckData,
    /// It authenticates, so its bytes are as they were written (by an old
    /// or faulty writer): reading it again, or from a copy, gives the same;
    /// `repair snapshots` rewrites the snapshots that hold it.
    Invalid,
    /// A row of the local index (a cache): `repair index` rebuilds it.
    RebuildIndex,
    /// `config` or the key files: only another copy of the repository has
    /// them.
    FromCopy,
    /// The message already says what to do.
    None,
}

fn corrupt_message(what: &str, why: &str, remedy: Remedy, advice: bool) -> String {
    let state = if remedy == Remedy::Invalid {
        "invalid"
    } else {
        "damaged"
    };
    let hint = match remedy {
        _ if !advice => "",
        Remedy::CheckData => " (run `snap check --read-data`)",
        Remedy::Invalid => {
            " (it was stored like this and its bytes are intact, so reading it again \
             cannot help: `snap repair snapshots` rewrites the snapshots that hold it)"
        }
        Remedy::RebuildIndex => " (the index is only a cache: `snap repair index` rebuilds it)",
        Remedy::FromCopy => {
            " (copy it back from another copy of this repository, e.g. one `snap sync` keeps)"
        }
        Remedy::None => "",
    };
    format!("{what} is {state}: {why}{hint}")
}

/// Whether an I/O error means that the file system (or the user's quota)
/// is full.
pub fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// `WHAT: ERROR`; a full disk says so and what to do, never that data
/// is damaged.
fn io_message(what: &str, e: &std::io::Error) -> String {
    if is_full(e) {
        format!(
            "{what}: no space left on the file system that holds it ({e}): free space there \
             (or raise the quota), then run the command again"
        )
    } else {
        format!("{what}: {e}")
    }
}

/// An SQLite failure of the index, with the advice that fits it: only a
/// damaged file needs rebuilding.
fn index_message(path: &std::path::Path, e: &rusqlite::Error, disk_full: bool) -> String {
    use rusqlite::ErrorCode as C;
    let code = match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    let dir = path.parent().unwrap_or(path).display();
    let hint = match code {
        _ if disk_full => format!(
            "the disk that holds {dir} is full: free space there, or set SNAP_CACHE_DIR to a \
             disk with room (the index is only a cache, and it is not damaged)"
        ),
        Some(C::SystemIoFailure) => {
            format!("reading or writing {dir} failed: check that disk; the index is only a cache")
        }
        Some(C::ReadOnly | C::CannotOpen | C::PermissionDenied) => format!(
            "cannot write in {dir}: check its permissions and free space, or set \
             SNAP_CACHE_DIR to a writable directory"
        ),
        Some(C::DatabaseBusy | C::DatabaseLocked) => {
            "another snap process holds it: run the command again when that one ends".into()
        }
        _ => "run `snap repair index` to rebuild it".into(),
    };
    format!("index {}: {e} ({hint})", path.display())
}

impl From<crate::format::tree::TreeError> for Error {
    /// A listing that cannot be stored (a writer's bug, or one entry larger
    /// than a tree blob): never committed.
    fn from(e: crate::format::tree::TreeError) -> Self {
        Error::Invalid(format!("cannot store a directory listing: {e}"))
    }
}
