//! `snap restore`: write a snapshot (or part of it) into a directory.
//!
//! Streaming, in windows ([`window`]): the snapshot's trees are walked
//! depth first, one listing at a time ([`plan`]), and what the walk gives
//! out is cut into windows of at most [`window::WINDOW_ENTRIES`] entries
//! (20,000 files, other entries, directories) or
//! [`window::WINDOW_CHUNKS`] chunk references (50,000). Each window is
//! restored on its own, ordered: the blobs its files need are located in
//! the index, grouped by pack and sorted by offset, and each pack it needs
//! is read once, front to back, by the worker threads ([`data`]), skipping
//! runs of blobs it does not need where another read costs less. A pack
//! several windows need is read by each: `create` walks several
//! directories at once, so a pack interleaves distant parts of the tree
//! (300,000 small files: 3.4 times the range requests of one plan on an
//! object store). Every blob is
//! authenticated, decompressed and checked against its id before any of
//! its bytes reach a file; zero-filled blocks are skipped, so holes of
//! sparse files stay holes. With `--include`, a first walk (stopping once
//! every pattern matched) makes sure each matches something before
//! anything is written.
//!
//! Memory does not grow with the number of files or chunks restored: what
//! is held is one window, the listings of the directories on the path of
//! the walk, the directories open for work (that path, and those of the
//! window: name, inode, metadata), and hard-link groups ([`links`]: at most
//! 100,000 in memory, the rest in a temporary table on disk). A file of a
//! window costs about 300 bytes and its name (its plan: name, size,
//! metadata, role in a hard-link group; its state: temporary name, inode,
//! chunks left), a chunk reference 48 bytes while planned and 16 bytes
//! once located (an offset in a file), and a distinct blob about 150 bytes
//! (where it is); so a window of small files holds about 6 MB, one of
//! large files (50,000 chunks) about 10 MB. Measured: 1,000,000 files of
//! 0-2 KB restore in a peak RSS of 112 MB, 300,000 of 0-4 KB in 72 MB
//! (holding the whole plan took 1,085 MB and 375 MB); most of what remains
//! is the index's page cache (up to 64 MiB, so it grows with the
//! repository up to that) and the read buffers (up to 8 MiB a worker).
//! Not bounded: one directory's listing is loaded whole (a directory of a
//! million entries holds them all while it is walked), and one file's
//! chunk list is never split across windows.
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
//! partly restored tree: directories (those not finished yet with mode
//! 0700, metadata not yet set), complete files under their final names,
//! and temporary names of the files that were being written. Restoring
//! again into the same target finishes it and removes the temporary names
//! it meets. docs/restore.md says the same for users.
//!
//! Order: a directory is made when the walk reaches something in it that
//! is restored (parents first); in each window, files (data, then
//! metadata, then rename) and, meanwhile, other entries, then hard links,
//! and last the metadata of the directories the walk has left (children
//! first, times last): a directory gets its metadata once everything below
//! it is restored, and is then forgotten.
//!
//! Fitting the target ([`existing`]): with `--overwrite if-changed` (the
//! default) a file already in the target that holds the snapshot's content
//! is not written again, only its metadata set where it differs, so a
//! restore run again after it was killed writes only what it had not
//! finished; `if-newer` and `never` keep what is there. `--delete` removes
//! what the snapshot does not have from the directories it restores
//! ([`plan::Keep`]), before their metadata is set. `--dry-run` walks the
//! same plan and says what would be done, changing nothing ([`dryrun`]).

mod cache;
mod data;
mod dirfd;
mod dirs;
mod dryrun;
mod existing;
mod files;
mod links;
mod meta;
mod plan;
mod window;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::format::tree::NodeKind;
use crate::format::BlobId;
use crate::repository::Repository;
use crate::{Error, Result};

pub use dryrun::{Act, Action};

/// What to do with a file already in the target (`--overwrite`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Write every file again.
    Always,
    /// Leave a file that holds the snapshot's content (its metadata set).
    #[default]
    IfChanged,
    /// Replace only what is older than the snapshot's entry (then as
    /// `IfChanged`).
    IfNewer,
    /// Never replace anything already there.
    Never,
}

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
    /// Progress counters and verbose lines (no-op by default).
    pub progress: crate::progress::Progress,
    /// What to do with files already in the target.
    pub overwrite: Overwrite,
    /// Remove from the directories restored what the snapshot has not.
    pub delete: bool,
    /// Only say what would be done.
    pub dry_run: bool,
    /// Drop this many leading names of every path.
    pub strip_components: usize,
}

/// What `restore` did.
#[derive(Debug, Default, Serialize)]
pub struct RestoreReport {
    /// Nothing was changed: the counts say what would have been done.
    pub dry_run: bool,
    /// Files (and hard links to them) complete under their final names:
    /// `files_written` + `files_unchanged`.
    pub files: u64,
    /// Files written (or hard-linked) anew.
    pub files_written: u64,
    /// Files already in the target with the snapshot's content, not
    /// written (their metadata set where it differed).
    pub files_unchanged: u64,
    /// Entries already in the target left as they are by `--overwrite
    /// never` or `if-newer` (not counted in `files`).
    pub files_kept: u64,
    /// Entries removed by `--delete` (a directory counts once, with all
    /// that was in it).
    pub deleted: u64,
    /// Directories restored.
    pub dirs: u64,
    /// Symlinks and special files in place (made, or found as the
    /// snapshot has them).
    pub others: u64,
    /// Bytes of file content written (of the files in `files_written`).
    pub bytes: u64,
    /// Packs read, each once per window that needs it.
    pub packs_read: u64,
    /// Windows the restore was cut into (see the module doc).
    pub windows: u64,
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

/// Whether some `--include` pattern matches nothing (and no listing is
/// lost, which could hold its match): the patterns that do not. A walk of
/// the trees that stops once every pattern matched, before anything is
/// written: a typo in a pattern restores nothing.
fn unmatched(
    repo: &Repository,
    root: &BlobId,
    target: &Path,
    opts: &RestoreOptions,
) -> Result<Vec<String>> {
    if opts.includes.is_empty() {
        return Ok(Vec::new());
    }
    let mut w = plan::Walker::new(repo, root, target, opts)?;
    while !w.all_matched() {
        match w.next()? {
            Some(plan::Step::Lost(_)) => return Ok(Vec::new()),
            Some(_) => {}
            None => return Ok(w.unmatched()),
        }
    }
    Ok(Vec::new())
}

/// The tree of directory `path` of the snapshot `root` (`SNAP:SUBPATH`),
/// to restore its contents without the directories above it.
pub fn subtree(repo: &Repository, root: &BlobId, path: &Path, snapshot: &str) -> Result<BlobId> {
    match crate::commands::ls::find_node(repo, root, path, snapshot)? {
        None => Ok(*root),
        Some(n) if n.kind == NodeKind::Dir => Ok(n.subtree.expect("validated dir node")),
        Some(_) => Err(Error::Usage(format!(
            "{} in snapshot {snapshot} is not a directory: give a directory after the colon, \
             or restore the file with --include",
            path.display()
        ))),
    }
}

/// Runs `snap restore` of the tree `root` into `opts.target` (with
/// `opts.dry_run`, says what it would do through `out`, changing nothing).
pub fn run(
    repo: &Repository,
    root: &BlobId,
    opts: &RestoreOptions,
    out: &mut dyn FnMut(Action),
) -> Result<RestoreReport> {
    let target = std::path::absolute(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    let patterns = unmatched(repo, root, &target, opts)?;
    if !patterns.is_empty() {
        return Err(Error::NothingMatched {
            patterns,
            snapshot: opts.snapshot.clone(),
        });
    }
    let mut walk = plan::Walker::new(repo, root, &target, opts)?;
    if opts.dry_run {
        return dryrun::run(repo, &mut walk, &target, opts, out);
    }
    let problems = Problems::default();
    let limits = window::Limits::get();
    let (root_fd, existed) = dirfd::open_target(&target).map_err(|e| target_error(&target, e))?;
    let mut dirs = dirs::Dirs::new(target.clone(), root_fd, !existed, &problems);
    if opts.delete {
        dirs.delete_extras(walk.filter());
    }
    let mut stale = if existed {
        dirs.remove_stale_in_target()?
    } else {
        0
    };
    let mut links = links::Links::new(limits.links_in_memory);
    let mut w = window::Window::default();
    let mut totals = window::Totals::default();
    while let Some(step) = walk.next()? {
        crate::interrupt::check()?;
        match step {
            plan::Step::Dir { id, parent, node } => {
                stale += dirs.make(id, parent, node);
                w.entries += 1;
            }
            plan::Step::File { dir, node } => {
                let link = links.classify(&node)?;
                let f = files::FilePlan::new(dir, node, link);
                w.chunks += f.content.len();
                w.entries += 1;
                w.files.push(f);
            }
            plan::Step::Other { dir, node } => {
                w.others.push(meta::OtherPlan { dir, node });
                w.entries += 1;
            }
            plan::Step::Close { id, keep } => {
                w.closing.push((id, keep));
                w.entries += 1;
            }
            plan::Step::Lost(msg) => problems.damage(msg),
        }
        if w.full(&limits) {
            window::restore(
                repo,
                &mut w,
                &mut dirs,
                &mut links,
                opts,
                &problems,
                &mut totals,
            )?;
        }
    }
    if w.entries > 0 {
        window::restore(
            repo,
            &mut w,
            &mut dirs,
            &mut links,
            opts,
            &problems,
            &mut totals,
        )?;
    }
    if opts.delete {
        dirs.delete_in_target(&walk.take_root_keep());
    }
    let deleted = dirs.deleted();
    drop(dirs);
    failpoint!("restore.done");
    Ok(RestoreReport {
        dry_run: false,
        files: totals.files,
        files_written: totals.files - totals.unchanged,
        files_unchanged: totals.unchanged,
        files_kept: totals.kept,
        deleted,
        dirs: totals.dirs,
        others: totals.others,
        bytes: totals.bytes,
        packs_read: totals.packs_read,
        windows: totals.windows,
        errors: problems.errors.into_inner().unwrap(),
        damaged: problems.damaged.into_inner(),
        warnings: problems.warnings.into_inner().unwrap(),
        stale_temps_removed: stale,
    })
}
