//! What a restore will make, as a stream: the snapshot's trees walked
//! depth first, one directory listing at a time, filtered by `--include` /
//! `--exclude`, and given out as [`Step`]s: a directory (parents before
//! children, and only once something below it is selected), its files and
//! other entries, and the end of each directory. Nothing but the listings
//! of the directories being walked (the path from the root down) is held:
//! memory grows with the depth of the tree and the size of its largest
//! listings, not with the number of entries. Listings that are lost or
//! damaged are named, and every `--include` pattern that matched nothing.
//!
//! `--strip-components N` drops the first N names of every path: the
//! directories that deep are walked but not made (what is in them lands
//! one level up, the deepest in the target itself) and the other entries
//! that deep are left out. With `--delete`, the end of a directory carries
//! the names its listing has ([`Keep`]), so that what else is in the
//! target's directory can be removed.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::RestoreOptions;
use crate::format::tree::{Node, NodeKind};
use crate::format::BlobId;
use crate::repository::Repository;
use crate::{Error, Result};

/// Directory number of the target itself; the directories below it are
/// numbered from 1 in the order they are given out.
pub const TARGET: u32 = 0;

/// One thing a restore makes, in the order it is to be made.
pub enum Step {
    /// A directory `id` to make in directory `parent` (given before
    /// anything in it). `node` holds its name and metadata.
    Dir { id: u32, parent: u32, node: Node },
    /// A regular file in directory `dir`.
    File { dir: u32, node: Node },
    /// A symlink, FIFO, device node or socket in directory `dir`.
    Other { dir: u32, node: Node },
    /// Everything in directory `id` (and below it) has been given;
    /// `keep` (with `--delete`): the names the snapshot has there.
    Close { id: u32, keep: Option<Keep> },
    /// A listing that is lost or damaged (nothing below it is restored),
    /// said for the user.
    Lost(String),
}

/// The names a snapshot has in one directory of the target (with
/// `--delete`: everything else there that the selection would restore is
/// removed), and the snapshot directories that land there with whether
/// each is selected (several with `--strip-components`).
#[derive(Debug, Default)]
pub struct Keep {
    /// Every name of the listings, selected or not.
    pub names: HashSet<Vec<u8>>,
    /// (path in the snapshot, selected) of each directory landing there.
    pub dirs: Vec<(PathBuf, bool)>,
}

/// `--include` / `--exclude`, to decide what a `--delete` may remove.
#[derive(Clone, Default)]
pub struct Filter {
    includes: Option<GlobSet>,
    excludes: Option<GlobSet>,
}

impl Filter {
    /// Whether `name`, in the target's directory that `keep` describes,
    /// is one the restore would make if the snapshot had it: not excluded,
    /// and selected (in a selected directory, or matching an `--include`).
    pub fn deletable(&self, keep: &Keep, name: &[u8]) -> bool {
        keep.dirs.iter().any(|(dir, selected)| {
            let sp = dir.join(OsStr::from_bytes(name));
            let shown = crate::name_escape::escape(sp.as_os_str().as_bytes());
            !self.excludes.as_ref().is_some_and(|g| g.is_match(&shown))
                && (*selected || self.includes.as_ref().is_none_or(|g| g.is_match(&shown)))
        })
    }
}

/// Whether an error means the object is lost or damaged (restore goes on
/// without it) rather than that storage could not be reached.
pub fn is_damage(e: &Error) -> bool {
    matches!(e, Error::Missing { .. } | Error::Corrupt { .. })
}

/// Patterns match the escaped form of snapshot paths (the one `ls`
/// prints, [`crate::name_escape`]), so a backslash in a pattern only
/// starts an escape (`\\`, `\n`, `\t`, `\xHH`), never a glob quote:
/// `[*]` matches a literal `*`.
fn globset(patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        crate::name_escape::unescape(p).map_err(|why| {
            Error::Usage(format!(
                "bad pattern {p:?}: {why}; quote a glob character with brackets ([*])"
            ))
        })?;
        let anchored = if p.starts_with('/') {
            p.clone()
        } else {
            format!("**/{p}")
        };
        let glob = GlobBuilder::new(&anchored)
            .backslash_escape(false)
            .build()
            .map_err(|e| Error::Usage(format!("bad pattern {p:?}: {e}")))?;
        b.add(glob);
    }
    Ok(Some(
        b.build()
            .map_err(|e| Error::Usage(format!("bad patterns: {e}")))?,
    ))
}

/// A directory being walked.
struct Frame {
    /// Its entries not walked yet.
    nodes: std::vec::IntoIter<Node>,
    /// Its number, once given out (it is given out when something in it
    /// is selected).
    id: Option<u32>,
    /// Its own node, until it is given out (None for the target).
    node: Option<Node>,
    /// Its name (empty for the target).
    name: Vec<u8>,
    /// Its path in the snapshot.
    snap_path: PathBuf,
    /// Whether it (or a directory above it) is selected.
    selected: bool,
    /// Names below the snapshot's root (0: the root).
    depth: usize,
    /// Its listing's names (with `--delete`).
    names: Option<HashSet<Vec<u8>>>,
}

/// The walk of a snapshot's tree: [`Walker::next`] gives its steps.
pub struct Walker<'a> {
    repo: &'a Repository,
    target: PathBuf,
    includes: Option<GlobSet>,
    excludes: Option<GlobSet>,
    patterns: Vec<String>,
    /// Which include patterns matched a path; how many did not yet.
    matched: Vec<bool>,
    unmatched: usize,
    hits: Vec<usize>,
    /// The directories from the root down to the one being walked.
    stack: Vec<Frame>,
    /// Steps found, not given out yet.
    queue: VecDeque<Step>,
    next_id: u32,
    /// `--strip-components`.
    strip: usize,
    /// `--delete`: the listings of the directories are kept.
    delete: bool,
    /// What the snapshot has in the target itself (with `--delete`).
    root_keep: Keep,
}

/// The names of a listing, when they are to be kept.
fn names_of(nodes: &[Node], keep: bool) -> Option<HashSet<Vec<u8>>> {
    keep.then(|| nodes.iter().map(|n| n.name.clone()).collect())
}

impl<'a> Walker<'a> {
    /// The walk of the tree `root`, to be restored into `target` as
    /// `opts` say (selection, `--strip-components`, `--delete`).
    pub fn new(
        repo: &'a Repository,
        root: &BlobId,
        target: &Path,
        opts: &RestoreOptions,
    ) -> Result<Walker<'a>> {
        let includes = &opts.includes;
        let mut w = Walker {
            repo,
            target: target.to_path_buf(),
            includes: globset(includes)?,
            excludes: globset(&opts.excludes)?,
            patterns: includes.to_vec(),
            matched: vec![false; includes.len()],
            unmatched: includes.len(),
            hits: Vec::new(),
            stack: Vec::new(),
            queue: VecDeque::new(),
            next_id: TARGET + 1,
            strip: opts.strip_components,
            delete: opts.delete,
            root_keep: Keep::default(),
        };
        match repo.load_tree(root) {
            Ok(tree) => w.stack.push(Frame {
                names: names_of(&tree.nodes, w.delete && w.strip == 0),
                nodes: tree.nodes.into_iter(),
                id: Some(TARGET),
                node: None,
                name: Vec::new(),
                snap_path: PathBuf::from("/"),
                selected: false,
                depth: 0,
            }),
            Err(e) if is_damage(&e) => w.queue.push_back(Step::Lost(format!(
                "{}: NOT restored (the snapshot's root directory listing is lost: {e})",
                target.display()
            ))),
            Err(e) => return Err(e),
        }
        Ok(w)
    }

    /// What `--delete` goes by.
    pub fn filter(&self) -> Filter {
        Filter {
            includes: self.includes.clone(),
            excludes: self.excludes.clone(),
        }
    }

    /// Once the walk is done: the names the snapshot has in the target
    /// itself, and the snapshot directories that land there (none
    /// without `--delete`).
    pub fn take_root_keep(&mut self) -> Keep {
        std::mem::take(&mut self.root_keep)
    }

    /// `--include` patterns that matched nothing walked so far.
    pub fn unmatched(&self) -> Vec<String> {
        self.patterns
            .iter()
            .zip(&self.matched)
            .filter(|(_, &m)| !m)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Whether every `--include` pattern matched something already.
    pub fn all_matched(&self) -> bool {
        self.unmatched == 0
    }

    /// The next step, or None when the whole tree is walked.
    pub fn next(&mut self) -> Result<Option<Step>> {
        loop {
            if let Some(s) = self.queue.pop_front() {
                return Ok(Some(s));
            }
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            match top.nodes.next() {
                Some(node) => self.entry(node)?,
                None => {
                    let done = self.stack.pop().expect("a frame");
                    let keep = done.names.map(|names| Keep {
                        names,
                        dirs: vec![(done.snap_path, done.selected)],
                    });
                    match done.id {
                        Some(TARGET) => {
                            if let Some(k) = keep {
                                self.root_keep.names.extend(k.names);
                                self.root_keep.dirs.extend(k.dirs);
                            }
                        }
                        Some(id) => self.queue.push_back(Step::Close { id, keep }),
                        None => {}
                    }
                }
            }
        }
    }

    /// Whether `sp` is selected (`selected`: a directory above it is),
    /// noting which include patterns match it.
    fn selects(&mut self, sp: &str, selected: bool) -> bool {
        let Some(g) = &self.includes else {
            return true;
        };
        if selected && self.unmatched == 0 {
            return true;
        }
        g.matches_into(sp, &mut self.hits);
        for &i in &self.hits {
            if !self.matched[i] {
                self.matched[i] = true;
                self.unmatched -= 1;
            }
        }
        selected || !self.hits.is_empty()
    }

    /// Gives out every directory being walked that was not yet (something
    /// in the innermost one is selected), parents first.
    fn materialize(&mut self) {
        let first = self.stack.iter().rposition(|f| f.id.is_some()).unwrap_or(0);
        for i in first + 1..self.stack.len() {
            let parent = self.stack[i - 1].id.expect("given out above");
            let id = self.next_id;
            self.next_id += 1;
            let f = &mut self.stack[i];
            f.id = Some(id);
            let node = f.node.take().expect("a directory below the target");
            self.queue.push_back(Step::Dir { id, parent, node });
        }
    }

    /// Where `name`, in the directory being walked, lands.
    fn path_of(&self, name: &[u8]) -> PathBuf {
        let mut p = self.target.clone();
        for f in self.stack.iter().filter(|f| f.depth > self.strip) {
            p.push(OsStr::from_bytes(&f.name));
        }
        p.join(OsStr::from_bytes(name))
    }

    /// Walks one entry of the directory on top of the stack.
    fn entry(&mut self, mut node: Node) -> Result<()> {
        let top = self.stack.last().expect("a frame");
        let sp = top.snap_path.join(OsStr::from_bytes(&node.name));
        let above = top.selected;
        // Its path has this many names: with fewer than `--strip-components`
        // + 1 it is not restored itself (a directory is walked).
        let depth = top.depth + 1;
        if depth <= self.strip && node.kind != NodeKind::Dir {
            return Ok(());
        }
        // Patterns see the escaped form `ls` shows.
        let shown = crate::name_escape::escape(sp.as_os_str().as_bytes());
        if self.excludes.as_ref().is_some_and(|g| g.is_match(&shown)) {
            return Ok(());
        }
        let sel = self.selects(&shown, above);
        match node.kind {
            NodeKind::Dir => {
                let sub = node.subtree.take().expect("validated dir node");
                match self.repo.load_tree(&sub) {
                    Ok(tree) => {
                        let stripped = depth <= self.strip;
                        self.stack.push(Frame {
                            names: names_of(&tree.nodes, self.delete && depth >= self.strip),
                            nodes: tree.nodes.into_iter(),
                            // Stripped: what is in it lands in the target.
                            id: stripped.then_some(TARGET),
                            name: node.name.clone(),
                            node: Some(node),
                            snap_path: sp,
                            selected: sel,
                            depth,
                        });
                        if sel && !stripped {
                            self.materialize();
                        }
                    }
                    Err(e) if is_damage(&e) => {
                        // Its own metadata is here, its entries are not:
                        // it is not created, and named; the directories
                        // above it are.
                        self.materialize();
                        let path = self.path_of(&node.name);
                        self.queue.push_back(Step::Lost(format!(
                            "{}: NOT restored (directory listing lost: {e})",
                            path.display()
                        )));
                    }
                    Err(e) => return Err(e),
                }
            }
            _ if !sel => {}
            kind => {
                self.materialize();
                let dir = self.stack.last().and_then(|f| f.id).expect("given out");
                self.queue.push_back(match kind {
                    NodeKind::File => Step::File { dir, node },
                    _ => Step::Other { dir, node },
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(dir: &str, selected: bool) -> Keep {
        Keep {
            names: HashSet::new(),
            dirs: vec![(PathBuf::from(dir), selected)],
        }
    }

    #[test]
    fn delete_goes_by_the_selection() {
        let all = Filter::default();
        assert!(all.deletable(&keep("/a", false), b"x"));
        let f = Filter {
            includes: globset(&["/a/**".to_string()]).unwrap(),
            excludes: globset(&["*.log".to_string()]).unwrap(),
        };
        assert!(f.deletable(&keep("/a", false), b"x"));
        assert!(!f.deletable(&keep("/b", false), b"x"), "not selected");
        assert!(f.deletable(&keep("/b", true), b"x"), "in a selected dir");
        assert!(!f.deletable(&keep("/a", true), b"x.log"), "excluded");
        // Several directories landing in one (--strip-components): any.
        let mut k = keep("/b", false);
        k.dirs.push((PathBuf::from("/a"), false));
        assert!(f.deletable(&k, b"x"));
    }
}
