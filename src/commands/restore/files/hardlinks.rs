//! The hard links of a window's files ([`Files`]): what became of the
//! first name of each hard-linked inode is recorded for its later names,
//! and each later name is made as a link to it (or left, when it is a name
//! of that inode already or `--overwrite` keeps what is there).

use std::ffi::CString;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::super::dirfd;
use super::super::existing;
use super::super::links::{First, Link, Links};
use super::super::Overwrite;
use super::{Files, DAMAGE, DONE, GONE, KEPT, LOCAL};
use crate::Result;

impl Files<'_> {
    /// Records what became of the first names of hard-linked inodes met in
    /// this window, for their later names (in this window or later ones).
    pub fn resolve_links(&self, links: &mut Links) {
        for (i, f) in self.plan.iter().enumerate() {
            let Link::First(key) = f.link else {
                continue;
            };
            let rel = self.dirs.rel_path(f.dir);
            let name = dirfd::cname(&f.name).unwrap_or_default();
            // A file kept by `--overwrite` is linked to as it is.
            let state = self.state[i].load(Ordering::SeqCst);
            let first = match self.ids[i].get() {
                Some(&id) if state == DONE || state == KEPT => First::Done {
                    dir: f.dir,
                    rel,
                    name,
                    id,
                },
                _ => First::Failed {
                    rel,
                    name,
                    damage: self.failed[i].load(Ordering::SeqCst) == DAMAGE,
                },
            };
            links.resolve(&key, first);
        }
    }

    /// Makes every later name of a hard-linked inode in this window, as a
    /// link to its first name (restored in this window or an earlier one).
    pub fn link_all(&self, links: &Links) -> Result<()> {
        for (i, f) in self.plan.iter().enumerate() {
            let Link::To(key) = f.link else {
                continue;
            };
            crate::interrupt::check()?;
            let Ok(dir) = self.dirs.get(f.dir) else {
                continue; // reported for its directory
            };
            let dir = dir.as_fd();
            let (from_dir, rel, from, id) = match links.first(&key) {
                First::Pending => unreachable!("resolved before links are made"),
                First::Failed { rel, name, damage } => {
                    let first = self.dirs.target_path(&join(rel, name));
                    if *damage {
                        let why = format!("hard link to {}, which is damaged", first.display());
                        self.fail(i, DAMAGE, why);
                        self.clear_name(i, dir);
                    } else {
                        let why =
                            format!("hard link to {}, which was not restored", first.display());
                        self.fail(i, LOCAL, why);
                    }
                    self.state[i].store(GONE, Ordering::SeqCst);
                    continue;
                }
                First::Done {
                    dir: d,
                    rel,
                    name,
                    id,
                } => (*d, rel, name, *id),
            };
            let first = || self.dirs.target_path(&join(rel, from));
            // A name that is that inode already is in place; one that
            // `--overwrite` keeps is left.
            let there = (self.mode != Overwrite::Always)
                .then(|| dirfd::cname(&f.name).ok())
                .flatten()
                .and_then(|n| dirfd::stat_at(dir, &n).ok().flatten());
            if let Some(st) = there {
                if dirfd::ident(&st) == id {
                    self.state[i].store(DONE, Ordering::SeqCst);
                    self.files.fetch_add(1, Ordering::SeqCst);
                    self.unchanged.fetch_add(1, Ordering::SeqCst);
                    self.progress.file_done();
                    continue;
                }
                if existing::keeps(self.mode, &st, f.meta.mtime_ns) {
                    self.state[i].store(KEPT, Ordering::SeqCst);
                    self.kept.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
            }
            // Its directory is open for work still, or opened again below
            // the target (never through a symlink).
            let opened = if self.dirs.is_live(from_dir) {
                self.dirs.get(from_dir).map_err(|_| None)
            } else {
                dirfd::open_beneath(self.dirs.root().as_fd(), rel)
                    .map(Arc::new)
                    .map_err(Some)
            };
            let from_fd = match opened {
                Ok(fd) => fd,
                Err(e) => {
                    let why = match e {
                        None => format!(
                            "hard link to {}, whose directory was replaced",
                            first().display()
                        ),
                        Some(e) => format!(
                            "hard link to {}, whose directory cannot be opened: {e}",
                            first().display()
                        ),
                    };
                    self.fail(i, LOCAL, why);
                    continue;
                }
            };
            let linked =
                dirfd::link_temp(from_fd.as_fd(), from, dir, &f.name, id).and_then(|tmp| {
                    let r = dirfd::cname(&f.name).and_then(|n| dirfd::rename(dir, &tmp, &n));
                    if r.is_err() {
                        let _ = dirfd::remove(dir, &tmp);
                    }
                    r
                });
            match linked {
                Ok(()) => {
                    self.state[i].store(DONE, Ordering::SeqCst);
                    self.files.fetch_add(1, Ordering::SeqCst);
                    self.progress.file_done();
                    self.progress.verbose(1, || {
                        format!("restored {} (hard link)", self.path(i).display())
                    });
                }
                Err(e) => self.fail(
                    i,
                    LOCAL,
                    format!("cannot hard-link it to {}: {e}", first().display()),
                ),
            }
        }
        Ok(())
    }
}

/// `rel/name` (just `name` when `rel` is empty).
fn join(rel: &[u8], name: &CString) -> Vec<u8> {
    let mut p = rel.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name.as_bytes());
    p
}
