//! Trees: one directory listing per blob. Plaintext = version:u8 (=1) ||
//! postcard(`Tree`). Node names are raw bytes (Unix file names need not be
//! UTF-8); they are validated so a tree can never name `..`, `.`, an empty
//! name or a name with `/` or NUL in it, and names are sorted and unique.

use super::ids::BlobId;
use serde::{Deserialize, Serialize};

/// Tree format version byte.
pub const TREE_VERSION: u8 = 1;

/// What kind of file system object a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// Regular file; `content` lists its chunks.
    File,
    /// Directory; `subtree` points at its listing.
    Dir,
    /// Symbolic link; `link_target` is its target.
    Symlink,
    /// Named pipe (metadata only).
    Fifo,
    /// Character device (metadata only, `rdev`).
    CharDevice,
    /// Block device (metadata only, `rdev`).
    BlockDevice,
    /// Unix socket (metadata only; not recreated on restore).
    Socket,
}

/// What produced a file that did not come from the file system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOrigin {
    /// The command line, as the user gave it (secrets are the user's to keep out of it).
    pub command: String,
    /// The command's exit status (0 for a committed snapshot).
    pub exit_code: i32,
}

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// File name bytes.
    pub name: Vec<u8>,
    /// Object kind.
    pub kind: NodeKind,
    /// Permission and set-id bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Owner user name, when known.
    pub user: Option<String>,
    /// Owner group name, when known.
    pub group: Option<String>,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Status change time, ns since the epoch (change detection only).
    pub ctime_ns: i64,
    /// Inode number (change detection and hardlinks).
    pub inode: u64,
    /// Device number (hardlinks).
    pub dev: u64,
    /// Number of hard links when read.
    pub nlink: u64,
    /// Size in bytes (files).
    pub size: u64,
    /// Device number for device nodes.
    pub rdev: u64,
    /// Content chunks in order (files).
    pub content: Vec<BlobId>,
    /// Listing of a directory.
    pub subtree: Option<BlobId>,
    /// Symlink target bytes.
    pub link_target: Option<Vec<u8>>,
    /// Extended attributes (name, value).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Set for files written from a command's output (database dumps).
    pub origin: Option<StreamOrigin>,
}

impl Node {
    /// A node with every field zero/empty but name and kind.
    pub fn new(name: Vec<u8>, kind: NodeKind) -> Node {
        Node {
            name,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
            dev: 0,
            nlink: 1,
            size: 0,
            rdev: 0,
            content: Vec::new(),
            subtree: None,
            link_target: None,
            xattrs: Vec::new(),
            origin: None,
        }
    }

    /// The name as (lossy) text, for messages.
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A directory listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Entries sorted by name bytes, unique.
    pub nodes: Vec<Node>,
}

/// Whether `name` is safe to create inside a directory.
pub fn is_safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

impl Tree {
    /// Serializes (version byte + postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![TREE_VERSION];
        v.extend(postcard::to_stdvec(self).expect("tree serializes"));
        v
    }

    /// Parses and validates a tree blob's plaintext.
    pub fn parse(bytes: &[u8]) -> Result<Tree, String> {
        match bytes.first() {
            Some(&TREE_VERSION) => {}
            Some(v) => return Err(format!("unknown tree version {v}")),
            None => return Err("empty tree".into()),
        }
        let (t, rest): (Tree, _) = postcard::take_from_bytes(&bytes[1..])
            .map_err(|e| format!("tree does not parse: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("{} stray bytes after the tree", rest.len()));
        }
        for (i, n) in t.nodes.iter().enumerate() {
            if !is_safe_name(&n.name) {
                return Err(format!("unsafe name {:?} in tree", n.name_lossy()));
            }
            if i > 0 && t.nodes[i - 1].name >= n.name {
                return Err("tree names not sorted and unique".into());
            }
            let shape_ok = match n.kind {
                NodeKind::File => n.subtree.is_none() && n.link_target.is_none(),
                NodeKind::Dir => {
                    n.subtree.is_some() && n.content.is_empty() && n.link_target.is_none()
                }
                NodeKind::Symlink => {
                    n.link_target.is_some() && n.content.is_empty() && n.subtree.is_none()
                }
                _ => n.content.is_empty() && n.subtree.is_none() && n.link_target.is_none(),
            };
            if !shape_ok {
                return Err(format!(
                    "node {:?} has fields that do not fit its kind",
                    n.name_lossy()
                ));
            }
        }
        Ok(t)
    }

    /// Finds a node by name (binary search; names are sorted).
    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refuse_unsafe_names() {
        let mut a = Node::new(b"a".to_vec(), NodeKind::File);
        a.content = vec![BlobId([1; 32])];
        let mut d = Node::new(b"d".to_vec(), NodeKind::Dir);
        d.subtree = Some(BlobId([2; 32]));
        let t = Tree {
            nodes: vec![a.clone(), d],
        };
        assert_eq!(Tree::parse(&t.to_bytes()).unwrap(), t);
        for bad in [&b".."[..], b".", b"", b"x/y"] {
            let mut n = a.clone();
            n.name = bad.to_vec();
            assert!(Tree::parse(&Tree { nodes: vec![n] }.to_bytes()).is_err());
        }
        let unsorted = Tree {
            nodes: vec![a.clone(), a.clone()],
        };
        assert!(Tree::parse(&unsorted.to_bytes()).is_err());
        let mut trailing = t.to_bytes();
        trailing.push(0);
        assert!(Tree::parse(&trailing).is_err(), "stray bytes accepted");
        let mut odd = a;
        odd.kind = NodeKind::Fifo;
        odd.content.clear();
        odd.link_target = Some(b"x".to_vec());
        assert!(Tree::parse(&Tree { nodes: vec![odd] }.to_bytes()).is_err());
    }
}
