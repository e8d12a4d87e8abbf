//! `snap restore`: write a snapshot (or part of it) into a directory.
//!
//! Ordered restore: every blob needed is located in the index, the reads
//! are grouped by pack and sorted by offset, and each pack is read once,
//! as one sequential range, by one of the worker threads. Every blob is
//! authenticated, decompressed and checked against its id before any of
//! its bytes reach a file; zero-filled chunks are skipped, so holes of
//! sparse files stay holes.
//!
//! Safe against a hostile local user: the target is walked by directory
//! descriptors ([`dirfd`]): the target is opened once, every directory
//! below it relative to its parent without following a symlink, and every
//! entry is made under a temporary name in its directory
//! (`.NAME.snap-tmp-<16 hex digits>`), given its metadata on a descriptor
//! and renamed into place. Names come from validated trees (never `..`,
//! `/` or empty). So neither a snapshot nor a user who can rename entries
//! in a directory of the target while a root restore runs can make it
//! write, chmod or chown anything outside: a directory found to be (or
//! swapped for) a symlink is named as an error, not followed, and the rest
//! of the restore goes on.
//!
//! Never partial under its final name: a file is renamed to its name only
//! once all its data is written and verified and its owner, mode, xattrs
//! and times are set; on an error or an interruption its temporary name is
//! removed. A restore killed outright (`kill -9`, power loss) leaves a
//! partly restored tree: directories (mode 0700, metadata not yet set),
//! complete files under their final names, and temporary names of the
//! files that were being written. Restoring again into the same target
//! finishes it and removes the temporary names it meets. docs/restore.md
//! says the same for users.
//!
//! Order: directories (parents first), then files (data, then metadata,
//! then rename), hard links, other entries, and last the directories'
//! metadata (children first, times last).

mod cache;
mod data;
mod dirfd;
mod dirs;
mod files;
mod meta;
mod plan;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::format::BlobId;
use crate::repository::Repository;
use crate::{Error, Result};

/// Options of `snap restore`.
#[derive(Debug, Default)]
pub struct RestoreOptions {
    /// Target directory (created if missing).
    pub target: PathBuf,
    /// Only paths matching one of these globs (and what is below them).
    pub includes: Vec<String>,
    /// Leave out paths matching one of these globs (and what is below them).
    pub excludes: Vec<String>,
    /// The snapshot's short id, for messages.
    pub snapshot: String,
}

/// What `restore` did.
#[derive(Debug, Default, Serialize)]
pub struct RestoreReport {
    /// Files (and hard links to them) complete under their final names.
    pub files: u64,
    /// Directories restored.
    pub dirs: u64,
    /// Symlinks and special files created.
    pub others: u64,
    /// Bytes of file content restored (of the files counted in `files`).
    pub bytes: u64,
    /// Packs read.
    pub packs_read: u64,
    /// Problems (each names the file affected).
    pub errors: Vec<String>,
    /// How many of `errors` are missing or damaged data in the repository
    /// (exit 11); the others are failures to write into the target or to
    /// read storage (exit 1).
    pub damaged: u64,
    /// Entries left out that lose no data: kinds that cannot be recreated
    /// here (sockets; device nodes when not root).
    pub warnings: Vec<String>,
    /// Temporary names left by an earlier, killed restore, removed.
    pub stale_temps_removed: u64,
}

/// Problems met, from every phase and worker.
#[derive(Default)]
struct Problems {
    errors: Mutex<Vec<String>>,
    damaged: AtomicU64,
    warnings: Mutex<Vec<String>>,
}

impl Problems {
    /// Missing or damaged data.
    fn damage(&self, msg: String) {
        self.damaged.fetch_add(1, Ordering::Relaxed);
        self.errors.lock().unwrap().push(msg);
    }

    /// Anything else (the target, storage).
    fn fail(&self, msg: String) {
        self.errors.lock().unwrap().push(msg);
    }

    /// `msg`, as damage if `e` is.
    fn report(&self, e: &Error, msg: String) {
        if plan::is_damage(e) {
            self.damage(msg)
        } else {
            self.fail(msg)
        }
    }

    fn warn(&self, msg: String) {
        self.warnings.lock().unwrap().push(msg);
    }
}

/// Why the target cannot be opened, said for the user.
fn target_error(target: &std::path::Path, e: std::io::Error) -> Error {
    let link = std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink());
    if link {
        Error::Invalid(format!(
            "{} is a symlink: give the directory it points to as --to",
            target.display()
        ))
    } else if dirfd::is_not_dir_error(&e) {
        Error::Invalid(format!(
            "{} exists and is not a directory: give another --to",
            target.display()
        ))
    } else {
        Error::io(target, e)
    }
}

/// Runs `snap restore` of the tree `root` into `opts.target`.
pub fn run(repo: &Repository, root: &BlobId, opts: &RestoreOptions) -> Result<RestoreReport> {
    let target = std::path::absolute(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    let plan = plan::plan(repo, root, &target, &opts.includes, &opts.excludes)?;
    // A pattern may match only inside a listing that is lost: then the
    // loss is what is reported.
    if !plan.unmatched.is_empty() && plan.lost.is_empty() {
        return Err(Error::NothingMatched {
            patterns: plan.unmatched.clone(),
            snapshot: opts.snapshot.clone(),
        });
    }
    let problems = Problems::default();
    for l in &plan.lost {
        problems.damage(l.clone());
    }
    let (root_fd, existed) = dirfd::open_target(&target).map_err(|e| target_error(&target, e))?;
    let mut dirs = dirs::Dirs::new(&plan.dirs, root_fd, &problems);
    let stale = dirs.make_all(existed)?;
    failpoint!("restore.after_dirs");
    // From here on each directory is opened again when first needed, and
    // checked to be the one made.
    dirs.forget_open();

    // (Dropped before `dirs`: removes what is left under temporary names.)
    let mut files = files::Files::new(&plan, &dirs, &problems);
    let locations = files.locate(repo)?;
    files.prepare()?;
    let packs_read = data::write(repo, &files, &locations)?;
    files.link_all()?;
    let others = meta::make_others(&plan, &dirs, &problems)?;
    let ndirs = dirs.apply_meta()?;
    let (nfiles, bytes) = files.counts();
    drop(files);
    drop(dirs);
    Ok(RestoreReport {
        files: nfiles,
        dirs: ndirs,
        others,
        bytes,
        packs_read,
        errors: problems.errors.into_inner().unwrap(),
        damaged: problems.damaged.into_inner(),
        warnings: problems.warnings.into_inner().unwrap(),
        stale_temps_removed: stale,
    })
}
