//! The directories of a restore that are open for work: those on the path
//! of the walk and those with entries in the window being restored. Each
//! is made (or found) when the walk gives it out, below its parent's
//! descriptor, without following a symlink, and remembered by inode.
//! Later a directory's descriptor comes from a bounded cache, or is opened
//! again through its parents and checked to be the inode made; a
//! directory that is not (a symlink now, or another directory) is reported
//! once and nothing more is restored below it. When all its windows are
//! done it gets its metadata on its own descriptor (children before
//! parents, times last) and is forgotten: what is kept per directory is
//! its name, inode and metadata, only while it is open for work. With
//! `--delete`, what the snapshot does not have is removed from it just
//! before its metadata is set (so its times stay the snapshot's).

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::cache::FdCache;
use super::dirfd::{self, Ident};
use super::meta::{self, Meta};
use super::plan::{Filter, Keep, TARGET};
use super::Problems;
use crate::format::tree::Node;
use crate::Result;

/// Descriptors of directories kept open at once.
const OPEN_DIRS: usize = 128;

/// A directory (or one above it) failed, and was reported.
#[derive(Debug)]
pub struct Reported;

struct Dir {
    parent: u32,
    name: CString,
    /// The inode made (None if it could not be made).
    id: Option<Ident>,
    /// This restore made it (it was not there): nothing in it is kept.
    made: bool,
    failed: AtomicBool,
    meta: Meta,
}

/// The directories open for work, by number ([`TARGET`]: the target).
pub struct Dirs<'a> {
    target: PathBuf,
    root: Arc<OwnedFd>,
    /// This restore made the target.
    target_made: bool,
    live: HashMap<u32, Dir>,
    open: FdCache<Arc<OwnedFd>>,
    problems: &'a Problems,
    /// `--delete`: what decides which names not in the snapshot go.
    delete: Option<Filter>,
    deleted: u64,
}

/// The names in `dir` that `--delete` removes: not in `keep`, not one of
/// restore's temporary names, and selected by `filter`; with their types.
pub fn extras(
    dir: BorrowedFd<'_>,
    keep: &Keep,
    filter: &Filter,
) -> std::io::Result<Vec<(CString, rustix::fs::FileType)>> {
    let mut out = dirfd::entries(dir)?;
    out.retain(|(n, _)| {
        let n = n.to_bytes();
        !keep.names.contains(n) && !dirfd::is_temp_name(n) && filter.deletable(keep, n)
    });
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

impl<'a> Dirs<'a> {
    /// The directories below the open target `root` (at `target`).
    pub fn new(target: PathBuf, root: OwnedFd, target_made: bool, problems: &'a Problems) -> Self {
        Dirs {
            target,
            root: Arc::new(root),
            target_made,
            live: HashMap::new(),
            open: FdCache::new(OPEN_DIRS),
            problems,
            delete: None,
            deleted: 0,
        }
    }

    /// Turns on `--delete`, going by `filter`.
    pub fn delete_extras(&mut self, filter: Filter) {
        self.delete = Some(filter);
    }

    /// Entries `--delete` removed so far.
    pub fn deleted(&self) -> u64 {
        self.deleted
    }

    /// Removes from `dir` (at `path`) what `keep` does not name.
    fn delete_in(&mut self, dir: BorrowedFd<'_>, path: &std::path::Path, keep: &Keep) {
        let Some(filter) = &self.delete else {
            return;
        };
        let names = match extras(dir, keep, filter) {
            Ok(n) => n,
            Err(e) => {
                let why = format!("{}: cannot list it for --delete: {e}", path.display());
                return self.problems.fail(why);
            }
        };
        for (name, _) in names {
            match dirfd::remove_tree(dir, &name) {
                Ok(()) => self.deleted += 1,
                Err(e) => self.problems.fail(format!(
                    "{}: cannot delete it (--delete): {e}",
                    path.join(OsStr::from_bytes(name.to_bytes())).display()
                )),
            }
        }
    }

    /// `--delete` in the target itself, once everything is restored.
    pub fn delete_in_target(&mut self, keep: &Keep) {
        let root = self.root.clone();
        let target = self.target.clone();
        self.delete_in(root.as_fd(), &target, keep);
    }

    /// The target's descriptor.
    pub fn root(&self) -> &Arc<OwnedFd> {
        &self.root
    }

    /// Removes the temporary names an earlier restore left in the target
    /// itself; returns how many.
    pub fn remove_stale_in_target(&self) -> Result<u64> {
        dirfd::remove_stale_temps(self.root.as_fd()).map_err(|e| crate::Error::io(&self.target, e))
    }

    /// Reports directory `i` as failed (once), with `why`.
    fn fail(&self, d: &Dir, why: String) {
        if !d.failed.swap(true, Ordering::SeqCst) {
            self.problems.fail(why);
        }
    }

    /// Whether directory `i` is still open for work.
    pub fn is_live(&self, i: u32) -> bool {
        i == TARGET || self.live.contains_key(&i)
    }

    /// Where directory `i` is, relative to the target (names joined by
    /// `/`; empty for the target).
    pub fn rel_path(&self, mut i: u32) -> Vec<u8> {
        let mut names = Vec::new();
        while let Some(d) = (i != TARGET).then(|| self.live.get(&i)).flatten() {
            names.push(d.name.as_bytes());
            i = d.parent;
        }
        names.reverse();
        names.join(&b'/')
    }

    /// Where directory `i` lands, for messages.
    pub fn path(&self, i: u32) -> PathBuf {
        let rel = self.rel_path(i);
        if rel.is_empty() {
            self.target.clone()
        } else {
            self.target.join(OsStr::from_bytes(&rel))
        }
    }

    /// Where entry `name` of directory `dir` lands, for messages.
    pub fn path_of(&self, dir: u32, name: &[u8]) -> PathBuf {
        self.path(dir).join(OsStr::from_bytes(name))
    }

    /// Where `rel` (a path relative to the target) lands, for messages.
    pub fn target_path(&self, rel: &[u8]) -> PathBuf {
        self.target.join(OsStr::from_bytes(rel))
    }

    /// Makes (or finds) directory `id` in `parent`, which is open for
    /// work; in one that was there already, removes the temporary names
    /// an earlier restore left, and returns how many.
    pub fn make(&mut self, id: u32, parent: u32, mut node: Node) -> u64 {
        let name = dirfd::cname(&node.name);
        let d = Dir {
            parent,
            name: name.as_ref().cloned().unwrap_or_default(),
            id: None,
            made: false,
            failed: AtomicBool::new(false),
            meta: Meta::take(&mut node),
        };
        self.live.insert(id, d);
        let d = &self.live[&id];
        if let Err(e) = name {
            self.fail(
                d,
                format!("{}: NOT restored ({e})", self.path(id).display()),
            );
            return 0;
        }
        let Ok(parent) = self.get(parent) else {
            d.failed.store(true, Ordering::SeqCst);
            return 0;
        };
        let made = dirfd::make_dir(parent.as_fd(), &d.name)
            .and_then(|created| Ok((created, dirfd::open_dir(parent.as_fd(), &d.name)?)))
            .and_then(|(created, fd)| Ok((created, dirfd::ident_of(fd.as_fd())?, fd)));
        let (created, ident, fd) = match made {
            Ok(m) => m,
            Err(e) => {
                let why = if dirfd::is_symlink_error(&e)
                    || dirfd::is_symlink_at(parent.as_fd(), &d.name)
                {
                    "a symlink is in its place in the target: not followed".to_string()
                } else if dirfd::is_not_dir_error(&e) {
                    "something that is not a directory is in its place in the target".to_string()
                } else {
                    e.to_string()
                };
                let path = self.path(id);
                self.fail(
                    d,
                    format!(
                        "{}: NOT restored, nor anything below it ({why})",
                        path.display()
                    ),
                );
                return 0;
            }
        };
        let mut stale = 0;
        if !created {
            match dirfd::remove_stale_temps(fd.as_fd()) {
                Ok(n) => stale = n,
                Err(e) => self.problems.fail(format!(
                    "{}: cannot remove the temporary names of an earlier restore: {e}",
                    self.path(id).display()
                )),
            }
        }
        let d = self.live.get_mut(&id).expect("inserted above");
        d.id = Some(ident);
        d.made = created;
        self.open.put(id, Arc::new(fd));
        stale
    }

    /// Closes every directory descriptor but the target's: the next use
    /// of a directory opens it again and checks it.
    pub fn forget_open(&self) {
        self.open.clear();
    }

    /// Whether this restore made directory `i` (empty then, and private to
    /// the user restoring until its metadata is set): no name in it needs
    /// looking at before it is written.
    pub fn made_here(&self, i: u32) -> bool {
        if i == TARGET {
            return self.target_made;
        }
        self.live.get(&i).is_some_and(|d| d.made)
    }

    /// A descriptor of directory `i`, or [`Reported`] if it (or one above
    /// it) could not be made or is no longer the directory made.
    pub fn get(&self, i: u32) -> std::result::Result<Arc<OwnedFd>, Reported> {
        if i == TARGET {
            return Ok(self.root.clone());
        }
        let d = self.live.get(&i).expect("a directory open for work");
        if d.failed.load(Ordering::SeqCst) {
            return Err(Reported);
        }
        if let Some(fd) = self.open.get(i) {
            return Ok(fd);
        }
        let parent = self.get(d.parent).inspect_err(|_| {
            d.failed.store(true, Ordering::SeqCst);
        })?;
        let id = d.id.ok_or(Reported)?;
        let opened = dirfd::open_dir(parent.as_fd(), &d.name).and_then(|fd| {
            if dirfd::ident_of(fd.as_fd())? == id {
                Ok(fd)
            } else {
                Err(dirfd::replaced())
            }
        });
        match opened {
            Ok(fd) => {
                let fd = Arc::new(fd);
                self.open.put(i, fd.clone());
                Ok(fd)
            }
            Err(e) => {
                let why = if dirfd::is_symlink_error(&e)
                    || dirfd::is_symlink_at(parent.as_fd(), &d.name)
                {
                    "replaced by a symlink during the restore: not followed".to_string()
                } else if e.kind() == std::io::ErrorKind::NotFound {
                    "removed during the restore".to_string()
                } else {
                    e.to_string()
                };
                self.fail(
                    d,
                    format!(
                        "{}: {why}; what was not restored below it yet is left out",
                        self.path(i).display()
                    ),
                );
                Err(Reported)
            }
        }
    }

    /// Sets the metadata of the directories `done` (all their windows
    /// restored; children before parents), after `--delete` removed what
    /// their `keep` does not name, and forgets them; returns how many
    /// directories were restored.
    pub fn close(&mut self, done: &[(u32, Option<Keep>)]) -> Result<u64> {
        let mut n = 0;
        for (i, keep) in done {
            let i = *i;
            crate::interrupt::check()?;
            if let Ok(fd) = self.get(i) {
                if let Some(keep) = keep {
                    let path = self.path(i);
                    self.delete_in(fd.as_fd(), &path, keep);
                }
                let d = &self.live[&i];
                match meta::apply_fd(fd.as_fd(), &d.meta, &self.path(i)) {
                    Ok(()) => n += 1,
                    Err(e) => self.problems.fail(e.to_string()),
                }
            }
            // Its descriptor is not needed again; its parent's soon is.
            self.open.remove(i);
            self.live.remove(&i);
        }
        Ok(n)
    }
}
