//! `snap ls`: the entries of a snapshot, and path look-ups in snapshots.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use serde::Serialize;

use crate::format::tree::{Node, NodeKind};
use crate::format::BlobId;
use crate::name_escape::escape;
use crate::repository::Repository;
use crate::{Error, Result};

/// One entry listed; names in the escaped form of [`crate::name_escape`].
#[derive(Debug, Serialize)]
pub struct LsEntry {
    /// Absolute path inside the snapshot.
    pub path: String,
    /// `file`, `dir`, `symlink`, ...
    pub kind: String,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, RFC 3339.
    pub mtime: String,
    /// Symlink target.
    pub link_target: Option<String>,
    /// Command that produced it (dumps).
    pub command: Option<String>,
    /// Exit status of that command.
    pub exit_code: Option<i32>,
}

/// Short lower-case name of a node kind.
pub fn kind_name(k: NodeKind) -> &'static str {
    match k {
        NodeKind::File => "file",
        NodeKind::Dir => "dir",
        NodeKind::Symlink => "symlink",
        NodeKind::Fifo => "fifo",
        NodeKind::CharDevice => "chardev",
        NodeKind::BlockDevice => "blockdev",
        NodeKind::Socket => "socket",
    }
}

fn entry(path: &Path, n: &Node) -> LsEntry {
    LsEntry {
        path: escape(path.as_os_str().as_bytes()),
        kind: kind_name(n.kind).into(),
        mode: n.mode,
        size: n.size,
        mtime: super::snapshots::format_time(n.mtime_ns),
        link_target: n.link_target.as_deref().map(escape),
        command: n.origin.as_ref().map(|o| o.command.clone()),
        exit_code: n.origin.as_ref().map(|o| o.exit_code),
    }
}

/// Finds the node at `path` below the root tree; `None` means the root itself.
pub fn find_node(
    repo: &Repository,
    root: &BlobId,
    path: &Path,
    snapshot: &str,
) -> Result<Option<Node>> {
    let mut tree_id = *root;
    let mut found: Option<Node> = None;
    for c in path.components() {
        let name = match c {
            Component::RootDir | Component::CurDir => continue,
            Component::Normal(n) => n.as_bytes(),
            _ => {
                return Err(Error::Usage(format!(
                    "path {} must not contain ..",
                    path.display()
                )))
            }
        };
        if let Some(n) = &found {
            tree_id = n.subtree.ok_or_else(|| Error::NoSuchPath {
                path: path.display().to_string(),
                snapshot: snapshot.into(),
            })?;
        }
        let tree = repo.load_tree(&tree_id)?;
        found = Some(tree.find(name).cloned().ok_or_else(|| Error::NoSuchPath {
            path: path.display().to_string(),
            snapshot: snapshot.into(),
        })?);
    }
    Ok(found)
}

/// Lists everything below `path` (recursively).
pub fn run(
    repo: &Repository,
    root: &BlobId,
    path: Option<&Path>,
    snapshot: &str,
    out: &mut dyn FnMut(LsEntry),
) -> Result<()> {
    let start = path.unwrap_or(Path::new("/"));
    let base = if start.as_os_str().as_bytes().starts_with(b"/") {
        start.to_path_buf()
    } else {
        Path::new("/").join(start)
    };
    let tree = match find_node(repo, root, &base, snapshot)? {
        None => *root,
        Some(n) => {
            out(entry(&base, &n));
            match n.subtree {
                Some(t) => t,
                None => return Ok(()),
            }
        }
    };
    walk(repo, &tree, &base, out)
}

fn walk(repo: &Repository, tree: &BlobId, at: &Path, out: &mut dyn FnMut(LsEntry)) -> Result<()> {
    for n in repo.load_tree(tree)?.nodes {
        let p = at.join(std::ffi::OsStr::from_bytes(&n.name));
        out(entry(&p, &n));
        if let Some(sub) = n.subtree {
            walk(repo, &sub, &p, out)?;
        }
    }
    Ok(())
}
