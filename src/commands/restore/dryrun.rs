//! `restore --dry-run`: the same walk as a restore ([`plan`]), and the
//! same look at what is in the target ([`existing`], [`dirs::extras`]),
//! saying for every entry what a restore would do with it, and changing
//! nothing: the target is only read (opened by directory descriptors,
//! never through a symlink, and not created when it is missing), no
//! metadata is set, nothing is deleted.
//!
//! Hard-linked files: a later name that is the first name's inode already
//! is unchanged. The first names met are held until the end (a dry run
//! of a tree of millions of hard-link groups holds them all).

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::dirfd::{self, Ident};
use super::existing::{self, Verdict, Want};
use super::plan::{Filter, Keep, Step, Walker, TARGET};
use super::{dirs, meta, RestoreOptions, RestoreReport};
use crate::commands::ls::kind_name;
use crate::format::tree::{Node, NodeKind};
use crate::repository::Repository;
use crate::{Error, Result};

/// What a restore would do with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    /// Make it (nothing there), or replace what is there.
    Write,
    /// Leave it: it holds the snapshot's content (its metadata would be
    /// set where it differs).
    Unchanged,
    /// Leave what is there as it is (`--overwrite never` or `if-newer`).
    Keep,
    /// Remove it (`--delete`): the snapshot does not have it.
    Delete,
}

impl Act {
    /// The word for it in the text output.
    pub fn word(self) -> &'static str {
        match self {
            Act::Write => "write",
            Act::Unchanged => "unchanged",
            Act::Keep => "keep",
            Act::Delete => "delete",
        }
    }
}

/// One line of a dry run.
#[derive(Clone, Debug, Serialize)]
pub struct Action {
    pub action: Act,
    /// `file`, `dir`, `symlink`, ... (as `ls` says).
    pub kind: &'static str,
    /// Where it is in the target, escaped as `ls` shows names.
    pub path: String,
}

/// A directory of the target the walk is in: its place, and a descriptor
/// if it is there already.
struct Dir {
    parent: u32,
    name: Vec<u8>,
    fd: Option<OwnedFd>,
}

struct DryRun<'a, 'o> {
    repo: &'a Repository,
    target: PathBuf,
    root: Option<OwnedFd>,
    dirs: HashMap<u32, Dir>,
    /// Hard-link groups: the inode at the first name, if it stays.
    firsts: HashMap<(u64, u64), Option<Ident>>,
    opts: &'a RestoreOptions,
    filter: Filter,
    out: &'o mut dyn FnMut(Action),
    r: RestoreReport,
}

/// Says through `out` what restoring `walk` into `target` would do.
pub fn run(
    repo: &Repository,
    walk: &mut Walker<'_>,
    target: &Path,
    opts: &RestoreOptions,
    out: &mut dyn FnMut(Action),
) -> Result<RestoreReport> {
    let root = dirfd::open_target_if_there(target).map_err(|e| super::target_error(target, e))?;
    let mut d = DryRun {
        repo,
        target: target.to_path_buf(),
        root,
        dirs: HashMap::new(),
        firsts: HashMap::new(),
        opts,
        filter: walk.filter(),
        out,
        r: RestoreReport {
            dry_run: true,
            ..RestoreReport::default()
        },
    };
    while let Some(step) = walk.next()? {
        crate::interrupt::check()?;
        match step {
            Step::Dir { id, parent, node } => d.dir(id, parent, node),
            Step::File { dir, node } => d.file(dir, node)?,
            Step::Other { dir, node } => d.other(dir, &node),
            Step::Close { id, keep } => {
                if let Some(keep) = keep {
                    d.delete(id, &keep);
                }
                d.dirs.remove(&id);
            }
            Step::Lost(msg) => {
                d.r.damaged += 1;
                d.r.errors.push(msg);
            }
        }
    }
    if opts.delete {
        d.delete(TARGET, &walk.take_root_keep());
    }
    d.r.files = d.r.files_written + d.r.files_unchanged;
    Ok(d.r)
}

impl DryRun<'_, '_> {
    fn fd(&self, dir: u32) -> Option<BorrowedFd<'_>> {
        if dir == TARGET {
            return self.root.as_ref().map(|f| f.as_fd());
        }
        self.dirs.get(&dir)?.fd.as_ref().map(|f| f.as_fd())
    }

    fn path(&self, mut dir: u32, name: &[u8]) -> PathBuf {
        let mut names = vec![name];
        while let Some(d) = (dir != TARGET).then(|| self.dirs.get(&dir)).flatten() {
            names.push(&d.name);
            dir = d.parent;
        }
        let mut p = self.target.clone();
        for n in names.iter().rev().filter(|n| !n.is_empty()) {
            p.push(OsStr::from_bytes(n));
        }
        p
    }

    fn say(&mut self, action: Act, kind: &'static str, dir: u32, name: &[u8]) {
        let path = self.path(dir, name);
        (self.out)(Action {
            action,
            kind,
            path: crate::name_escape::escape(path.as_os_str().as_bytes()),
        });
    }

    /// What is at `name` in `dir`, if anything (and `dir` is there).
    fn there(&self, dir: u32, name: &[u8]) -> Option<rustix::fs::Stat> {
        let fd = self.fd(dir)?;
        dirfd::stat_at(fd, &dirfd::cname(name).ok()?).ok().flatten()
    }

    fn dir(&mut self, id: u32, parent: u32, node: Node) {
        self.r.dirs += 1;
        let found = self.fd(parent).and_then(|p| {
            let name = dirfd::cname(&node.name).ok()?;
            match dirfd::stat_at(p, &name) {
                Ok(Some(st)) if dirfd::is_dir(&st) => dirfd::open_dir(p, &name).ok().map(Some),
                Ok(Some(_)) => Some(None), // in the way: the restore reports it
                _ => None,
            }
        });
        let fd = match found {
            Some(fd) => fd,
            None => {
                self.dirs.insert(id, dir_entry(parent, &node, None));
                return self.say(Act::Write, "dir", id, &[]);
            }
        };
        self.dirs.insert(id, dir_entry(parent, &node, fd));
    }

    fn file(&mut self, dir: u32, node: Node) -> Result<()> {
        let key = (node.nlink >= 2).then_some((node.dev, node.inode));
        if let Some(first) = key.and_then(|k| self.firsts.get(&k)).copied() {
            let act = match self.there(dir, &node.name) {
                Some(st)
                    if self.opts.overwrite != super::Overwrite::Always
                        && Some(dirfd::ident(&st)) == first =>
                {
                    Act::Unchanged
                }
                Some(st) if existing::keeps(self.opts.overwrite, &st, node.mtime_ns) => Act::Keep,
                _ => Act::Write,
            };
            self.count_file(act, dir, &node, 0);
            return Ok(());
        }
        let mut lens = Vec::with_capacity(node.content.len());
        for id in &node.content {
            match self.repo.locate(id) {
                Ok(loc) => lens.push(loc.entry.raw_len as u64),
                Err(Error::Missing { .. }) => {
                    let path = self.path(dir, &node.name);
                    self.r.damaged += 1;
                    self.r.errors.push(format!(
                        "{}: NOT restored (data blob {} is missing)",
                        path.display(),
                        id.short()
                    ));
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        let want = Want {
            size: node.size,
            mtime_ns: node.mtime_ns,
            ids: &node.content,
            lens: &lens,
            linked: key.is_some(),
        };
        let verdict = match (self.fd(dir), CString::new(node.name.clone())) {
            (Some(fd), Ok(name)) => {
                existing::judge(self.repo.key(), fd, &name, &want, self.opts.overwrite)
            }
            _ => Verdict::Write,
        };
        let (act, ident) = match verdict {
            Verdict::Write => (Act::Write, None),
            Verdict::Unchanged { st, .. } => (Act::Unchanged, Some(dirfd::ident(&st))),
            Verdict::Kept(st) => (Act::Keep, Some(dirfd::ident(&st))),
        };
        if let Some(k) = key {
            self.firsts.insert(k, ident);
        }
        self.count_file(act, dir, &node, node.size);
        Ok(())
    }

    fn count_file(&mut self, act: Act, dir: u32, node: &Node, bytes: u64) {
        match act {
            Act::Write => {
                self.r.files_written += 1;
                self.r.bytes += bytes;
            }
            Act::Unchanged => self.r.files_unchanged += 1,
            _ => self.r.files_kept += 1,
        }
        self.say(act, "file", dir, &node.name);
    }

    fn other(&mut self, dir: u32, node: &Node) {
        let kept = self
            .there(dir, &node.name)
            .is_some_and(|st| existing::keeps(self.opts.overwrite, &st, node.mtime_ns));
        let in_place = self
            .fd(dir)
            .is_some_and(|fd| meta::in_place(fd, node, self.opts.overwrite));
        let act = if kept {
            self.r.files_kept += 1;
            Act::Keep
        } else if in_place {
            self.r.others += 1;
            Act::Unchanged
        } else {
            self.r.others += 1;
            Act::Write
        };
        self.say(act, kind_name(node.kind), dir, &node.name);
    }

    /// What `--delete` would remove from directory `id`.
    fn delete(&mut self, id: u32, keep: &Keep) {
        let Some(fd) = self.fd(id) else {
            return; // not there yet: nothing to remove
        };
        match dirs::extras(fd, keep, &self.filter) {
            Ok(names) => {
                for (name, t) in names {
                    self.r.deleted += 1;
                    let kind = kind_name(node_kind(t));
                    self.say(Act::Delete, kind, id, name.to_bytes());
                }
            }
            Err(e) => {
                let path = self.path(id, &[]);
                self.r.errors.push(format!(
                    "{}: cannot list it for --delete: {e}",
                    path.display()
                ));
            }
        }
    }
}

fn dir_entry(parent: u32, node: &Node, fd: Option<OwnedFd>) -> Dir {
    Dir {
        parent,
        name: node.name.clone(),
        fd,
    }
}

/// The kind of node a directory entry of type `t` would be.
fn node_kind(t: rustix::fs::FileType) -> NodeKind {
    use rustix::fs::FileType as T;
    match t {
        T::Directory => NodeKind::Dir,
        T::Symlink => NodeKind::Symlink,
        T::Fifo => NodeKind::Fifo,
        T::CharacterDevice => NodeKind::CharDevice,
        T::BlockDevice => NodeKind::BlockDevice,
        T::Socket => NodeKind::Socket,
        _ => NodeKind::File,
    }
}
