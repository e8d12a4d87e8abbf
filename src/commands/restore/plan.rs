//! What a restore will make: the snapshot's trees walked once, filtered by
//! `--include` / `--exclude`, into lists of directories (parents before
//! children), files and other entries, each placed by the index of its
//! directory. Directory listings that are lost or damaged are noted, and
//! every `--include` pattern that matched nothing is named.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::format::tree::{Node, NodeKind};
use crate::format::BlobId;
use crate::repository::Repository;
use crate::{Error, Result};

/// A directory to make. Index 0 is the target itself (no node).
pub struct DirPlan {
    /// Index of the parent directory (0 for the target's own entries).
    pub parent: u32,
    /// Where it lands, for messages.
    pub path: PathBuf,
    /// Its metadata (None for the target).
    pub node: Option<Node>,
}

/// A regular file to write (or hard-link).
pub struct FilePlan {
    /// Index of its directory.
    pub dir: u32,
    /// Name, metadata and content.
    pub node: Node,
    /// For the second and later names of a hard-linked inode: the first.
    pub link_to: Option<usize>,
}

/// A symlink, FIFO, device node or socket.
pub struct OtherPlan {
    /// Index of its directory.
    pub dir: u32,
    /// Name and metadata.
    pub node: Node,
}

/// Everything a restore makes.
pub struct Plan {
    /// Directories, parents before children; `dirs[0]` is the target.
    pub dirs: Vec<DirPlan>,
    /// Regular files.
    pub files: Vec<FilePlan>,
    /// Other entries.
    pub others: Vec<OtherPlan>,
    /// Directories whose listing is lost or damaged: not restored.
    pub lost: Vec<String>,
    /// `--include` patterns that matched nothing.
    pub unmatched: Vec<String>,
}

impl Plan {
    /// Where entry `name` of directory `dir` lands, for messages.
    pub fn path_of(&self, dir: u32, name: &[u8]) -> PathBuf {
        self.dirs[dir as usize].path.join(OsStr::from_bytes(name))
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

struct Walker<'a> {
    repo: &'a Repository,
    includes: Option<GlobSet>,
    excludes: Option<GlobSet>,
    /// Which include patterns matched a path; how many did not yet.
    matched: Vec<bool>,
    unmatched: usize,
    hits: Vec<usize>,
    hardlinks: HashMap<(u64, u64), usize>,
}

impl Walker<'_> {
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

    /// Walks a tree; returns whether anything below was selected.
    fn walk(
        &mut self,
        tree_id: &BlobId,
        snap_path: &Path,
        dir: u32,
        selected: bool,
        plan: &mut Plan,
    ) -> Result<bool> {
        let tree = self.repo.load_tree(tree_id)?;
        let mut any = false;
        for node in tree.nodes {
            let name = OsStr::from_bytes(&node.name);
            let sp = snap_path.join(name);
            // Patterns see the escaped form `ls` shows.
            let shown = crate::name_escape::escape(sp.as_os_str().as_bytes());
            if self.excludes.as_ref().is_some_and(|g| g.is_match(&shown)) {
                continue;
            }
            let sel = self.selects(&shown, selected);
            match node.kind {
                NodeKind::Dir => {
                    let idx = plan.dirs.len();
                    let sub = node.subtree.expect("validated dir node");
                    plan.dirs.push(DirPlan {
                        parent: dir,
                        path: plan.path_of(dir, &node.name),
                        node: Some(node),
                    });
                    let below = match self.walk(&sub, &sp, idx as u32, sel, plan) {
                        Ok(b) => b,
                        Err(e) if is_damage(&e) => {
                            // Its own metadata is here, its entries are
                            // not: it is not created, and named.
                            // (Its listing failed to load: nothing below
                            // it was planned.)
                            let d = plan.dirs.pop().expect("pushed above");
                            debug_assert_eq!(plan.dirs.len(), idx);
                            plan.lost.push(format!(
                                "{}: NOT restored (directory listing lost: {e})",
                                d.path.display()
                            ));
                            any = true;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    if !(sel || below) {
                        plan.dirs.truncate(idx);
                    } else {
                        any = true;
                    }
                }
                _ if !sel => {}
                NodeKind::File => {
                    any = true;
                    let link_to = if node.nlink > 1 {
                        let key = (node.dev, node.inode);
                        match self.hardlinks.get(&key) {
                            Some(&first) => Some(first),
                            None => {
                                self.hardlinks.insert(key, plan.files.len());
                                None
                            }
                        }
                    } else {
                        None
                    };
                    plan.files.push(FilePlan { dir, node, link_to });
                }
                _ => {
                    any = true;
                    plan.others.push(OtherPlan { dir, node });
                }
            }
        }
        Ok(any)
    }
}

/// Walks the tree `root`, to be restored into `target`.
pub fn plan(
    repo: &Repository,
    root: &BlobId,
    target: &Path,
    includes: &[String],
    excludes: &[String],
) -> Result<Plan> {
    let mut w = Walker {
        repo,
        includes: globset(includes)?,
        excludes: globset(excludes)?,
        matched: vec![false; includes.len()],
        unmatched: includes.len(),
        hits: Vec::new(),
        hardlinks: HashMap::new(),
    };
    let mut plan = Plan {
        dirs: vec![DirPlan {
            parent: 0,
            path: target.to_path_buf(),
            node: None,
        }],
        files: Vec::new(),
        others: Vec::new(),
        lost: Vec::new(),
        unmatched: Vec::new(),
    };
    match w.walk(root, Path::new("/"), 0, false, &mut plan) {
        Ok(_) => {}
        Err(e) if is_damage(&e) => plan.lost.push(format!(
            "{}: NOT restored (the snapshot's root directory listing is lost: {e})",
            target.display()
        )),
        Err(e) => return Err(e),
    }
    plan.unmatched = includes
        .iter()
        .zip(&w.matched)
        .filter(|(_, &m)| !m)
        .map(|(p, _)| p.clone())
        .collect();
    Ok(plan)
}
