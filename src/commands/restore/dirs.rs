//! The directories of a restore. They are made (or found) parents first,
//! each opened relative to its parent's descriptor without following a
//! symlink and remembered by inode. Later phases get a directory's
//! descriptor from a bounded cache, or open it again through its parents
//! and check it is still the inode made; a directory that is not (a
//! symlink now, or another directory) is reported once and nothing more is
//! restored below it. At the end each directory gets its metadata on its
//! own descriptor, children before parents, times last.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::cache::FdCache;
use super::dirfd::{self, Ident};
use super::plan::DirPlan;
use super::{meta, Problems};
use crate::Result;

/// Descriptors of directories kept open at once.
const OPEN_DIRS: usize = 128;

/// A directory (or one above it) failed, and was reported.
#[derive(Debug)]
pub struct Reported;

/// The directories of a plan, by index (0: the target).
pub struct Dirs<'a> {
    plan: &'a [DirPlan],
    root: Arc<OwnedFd>,
    names: Vec<CString>,
    ids: Vec<Option<Ident>>,
    failed: Vec<AtomicBool>,
    open: FdCache<Arc<OwnedFd>>,
    problems: &'a Problems,
}

impl<'a> Dirs<'a> {
    /// The directories of `plan` below the open target `root`.
    pub fn new(plan: &'a [DirPlan], root: OwnedFd, problems: &'a Problems) -> Self {
        Dirs {
            plan,
            root: Arc::new(root),
            names: Vec::new(),
            ids: vec![None; plan.len()],
            failed: (0..plan.len()).map(|_| AtomicBool::new(false)).collect(),
            open: FdCache::new(OPEN_DIRS),
            problems,
        }
    }

    /// Reports directory `i` as failed (once), with `why`.
    fn fail(&self, i: usize, why: String) {
        if !self.failed[i].swap(true, Ordering::SeqCst) {
            self.problems.fail(why);
        }
    }

    /// Makes (or finds) every directory, parents first; in directories
    /// that were there already (and the target, if `root_existed`),
    /// removes the temporary names an earlier restore left. Returns how
    /// many it removed.
    pub fn make_all(&mut self, root_existed: bool) -> Result<u64> {
        let mut stale = 0;
        if root_existed {
            stale += dirfd::remove_stale_temps(self.root.as_fd())
                .map_err(|e| crate::Error::io(&self.plan[0].path, e))?;
        }
        self.names = Vec::with_capacity(self.plan.len());
        self.names.push(CString::default());
        for i in 1..self.plan.len() {
            crate::interrupt::check()?;
            let d = &self.plan[i];
            let node = d.node.as_ref().expect("a directory below the target");
            let name = match dirfd::cname(&node.name) {
                Ok(n) => n,
                Err(e) => {
                    self.names.push(CString::default());
                    self.fail(i, format!("{}: NOT restored ({e})", d.path.display()));
                    continue;
                }
            };
            self.names.push(name);
            let Ok(parent) = self.get(d.parent) else {
                self.failed[i].store(true, Ordering::SeqCst);
                continue;
            };
            let name = &self.names[i];
            let made = dirfd::make_dir(parent.as_fd(), name)
                .and_then(|created| Ok((created, dirfd::open_dir(parent.as_fd(), name)?)))
                .and_then(|(created, fd)| Ok((created, dirfd::ident_of(fd.as_fd())?, fd)));
            let (created, id, fd) = match made {
                Ok(m) => m,
                Err(e) => {
                    let why = if dirfd::is_symlink_error(&e)
                        || dirfd::is_symlink_at(parent.as_fd(), &self.names[i])
                    {
                        "a symlink is in its place in the target: not followed".to_string()
                    } else if dirfd::is_not_dir_error(&e) {
                        "something that is not a directory is in its place in the target"
                            .to_string()
                    } else {
                        e.to_string()
                    };
                    self.fail(
                        i,
                        format!(
                            "{}: NOT restored, nor anything below it ({why})",
                            d.path.display()
                        ),
                    );
                    continue;
                }
            };
            if !created {
                match dirfd::remove_stale_temps(fd.as_fd()) {
                    Ok(n) => stale += n,
                    Err(e) => self.problems.fail(format!(
                        "{}: cannot remove the temporary names of an earlier restore: {e}",
                        d.path.display()
                    )),
                }
            }
            self.ids[i] = Some(id);
            self.open.put(i as u32, Arc::new(fd));
        }
        Ok(stale)
    }

    /// Closes every directory descriptor but the target's: the next use
    /// of a directory opens it again and checks it.
    pub fn forget_open(&self) {
        self.open.clear();
    }

    /// A descriptor of directory `i`, or [`Reported`] if it (or one above
    /// it) could not be made or is no longer the directory made.
    pub fn get(&self, i: u32) -> std::result::Result<Arc<OwnedFd>, Reported> {
        if i == 0 {
            return Ok(self.root.clone());
        }
        let iu = i as usize;
        if self.failed[iu].load(Ordering::SeqCst) {
            return Err(Reported);
        }
        if let Some(fd) = self.open.get(i) {
            return Ok(fd);
        }
        let parent = self.get(self.plan[iu].parent).inspect_err(|_| {
            self.failed[iu].store(true, Ordering::SeqCst);
        })?;
        let id = self.ids[iu].ok_or(Reported)?;
        let opened = dirfd::open_dir(parent.as_fd(), &self.names[iu]).and_then(|fd| {
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
                    || dirfd::is_symlink_at(parent.as_fd(), &self.names[iu])
                {
                    "replaced by a symlink during the restore: not followed".to_string()
                } else if e.kind() == std::io::ErrorKind::NotFound {
                    "removed during the restore".to_string()
                } else {
                    e.to_string()
                };
                self.fail(
                    iu,
                    format!(
                        "{}: {why}; what was not restored below it yet is left out",
                        self.plan[iu].path.display()
                    ),
                );
                Err(Reported)
            }
        }
    }

    /// Sets every directory's metadata, children first; returns how many
    /// directories were restored.
    pub fn apply_meta(&self) -> Result<u64> {
        let mut n = 0;
        for i in (1..self.plan.len()).rev() {
            crate::interrupt::check()?;
            let Ok(fd) = self.get(i as u32) else {
                continue;
            };
            let node = self.plan[i].node.as_ref().expect("below the target");
            match meta::apply_fd(fd.as_fd(), node, &self.plan[i].path) {
                Ok(()) => n += 1,
                Err(e) => self.problems.fail(e.to_string()),
            }
            // Its descriptor is not needed again; its parent's soon is.
            self.open.remove(i as u32);
        }
        Ok(n)
    }
}
