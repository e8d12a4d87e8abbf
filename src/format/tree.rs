//! Trees: one directory listing per blob. Plaintext = version:u8 (=1) ||
//! postcard(`Tree`); a directory too large for one blob is stored as parts
//! and a part list, version:u8 (=2) || postcard(`Vec<BlobId>`). Node names
//! are raw bytes (Unix file names need not be UTF-8); one rule,
//! [`check_name`], keeps a tree from ever naming `..`, `.`, an empty name or
//! a name with `/` or NUL in it, and names are sorted and unique. Readers
//! ([`Tree::parse`], [`TreeBlob::parse`]) and writers ([`Tree::store`],
//! [`Tree::encode`]) validate with the same [`Tree::validate`], so nothing
//! a reader refuses can be written.

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

/// Largest tree blob plaintext: the pack entry limit of 04 less the 40
/// bytes (nonce and tag) that sealing adds.
pub const MAX_TREE_LEN: usize = super::pack::MAX_BLOB_LEN as usize - 40;

/// Version byte of a part list: a directory too large for one tree blob,
/// stored as several listings (format-spec/05-trees-and-snapshots.md §5.2.1).
pub const PARTS_VERSION: u8 = 2;

/// Most parts a part list may name (a listing of about 4 TiB).
pub const MAX_PARTS: usize = 1 << 16;

/// Why a tree blob is not valid. Readers refuse such a blob as corrupt;
/// writers refuse to store one (every writer encodes through
/// [`Tree::store`] or [`Tree::encode`], which validate first).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// No bytes at all.
    #[error("empty tree")]
    Empty,
    /// A version byte this build does not know.
    #[error("unknown tree version {0}")]
    UnknownVersion(u8),
    /// The postcard encoding is malformed or ends early.
    #[error("tree does not parse: {0}")]
    Malformed(String),
    /// Bytes left over after the value.
    #[error("{0} stray bytes after the tree")]
    StrayBytes(usize),
    /// A name that is not exactly one path component.
    #[error("unsafe name {:?} in tree", String::from_utf8_lossy(.0))]
    UnsafeName(Vec<u8>),
    /// Names out of order or repeated.
    #[error("tree names not sorted and unique (at {:?})", String::from_utf8_lossy(.0))]
    Unsorted(Vec<u8>),
    /// A node whose fields do not fit its kind.
    #[error("node {:?} has fields that do not fit its kind", String::from_utf8_lossy(.0))]
    Shape(Vec<u8>),
    /// One listing larger than a tree blob may be (use [`Tree::store`]).
    #[error("listing of {0} bytes exceeds the tree blob limit of {MAX_TREE_LEN} bytes")]
    TooLarge(usize),
    /// One entry larger than a whole tree blob.
    #[error("entry {:?} alone needs {len} bytes, more than a tree blob holds", String::from_utf8_lossy(.name))]
    NodeTooLarge {
        /// The entry's name.
        name: Vec<u8>,
        /// Its encoded size.
        len: usize,
    },
    /// A part list with fewer than 2 or more than [`MAX_PARTS`] parts.
    #[error("a part list names {0} parts (2 to {MAX_PARTS} allowed)")]
    PartCount(usize),
    /// A part of a split directory that is empty or itself a part list.
    #[error("part {0} of a split directory is empty or not a listing")]
    BadPart(usize),
}

/// Checks that `name` is exactly one path component: not empty, `.` or
/// `..`, no `/` and no NUL. The one rule for readers and writers.
pub fn check_name(name: &[u8]) -> Result<(), TreeError> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(TreeError::UnsafeName(name.to_vec()));
    }
    Ok(())
}

/// Whether `name` is safe to create inside a directory ([`check_name`]).
pub fn is_safe_name(name: &[u8]) -> bool {
    check_name(name).is_ok()
}

impl Node {
    /// Checks the name and that the fields fit the kind.
    pub fn validate(&self) -> Result<(), TreeError> {
        check_name(&self.name)?;
        let n = self;
        let shape_ok = match n.kind {
            NodeKind::File => n.subtree.is_none() && n.link_target.is_none(),
            NodeKind::Dir => n.subtree.is_some() && n.content.is_empty() && n.link_target.is_none(),
            NodeKind::Symlink => {
                n.link_target.is_some() && n.content.is_empty() && n.subtree.is_none()
            }
            _ => n.content.is_empty() && n.subtree.is_none() && n.link_target.is_none(),
        };
        if !shape_ok {
            return Err(TreeError::Shape(n.name.clone()));
        }
        Ok(())
    }
}

/// What a tree blob holds: a listing, or the part list of a directory too
/// large for one blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeBlob {
    /// Version 1: the whole listing.
    Listing(Tree),
    /// Version 2: the tree blobs holding consecutive runs of the listing.
    Parts(Vec<BlobId>),
}

impl TreeBlob {
    /// Validates and serializes: a listing as [`Tree::encode`] does, a part
    /// list as version 2 (2 to [`MAX_PARTS`] part ids).
    pub fn encode(&self) -> Result<Vec<u8>, TreeError> {
        match self {
            TreeBlob::Listing(t) => t.encode(),
            TreeBlob::Parts(ids) => {
                if !(2..=MAX_PARTS).contains(&ids.len()) {
                    return Err(TreeError::PartCount(ids.len()));
                }
                let mut v = vec![PARTS_VERSION];
                v.extend(postcard::to_stdvec(ids).expect("ids serialize"));
                Ok(v)
            }
        }
    }

    /// Parses and validates a tree blob's plaintext (either version).
    pub fn parse(bytes: &[u8]) -> Result<TreeBlob, TreeError> {
        match bytes.first() {
            Some(&PARTS_VERSION) => {
                let (parts, rest): (Vec<BlobId>, _) = postcard::take_from_bytes(&bytes[1..])
                    .map_err(|e| TreeError::Malformed(e.to_string()))?;
                if !rest.is_empty() {
                    return Err(TreeError::StrayBytes(rest.len()));
                }
                if !(2..=MAX_PARTS).contains(&parts.len()) {
                    return Err(TreeError::PartCount(parts.len()));
                }
                Ok(TreeBlob::Parts(parts))
            }
            _ => Tree::parse(bytes).map(TreeBlob::Listing),
        }
    }
}

impl Tree {
    /// Checks every node and that names are strictly increasing.
    pub fn validate(&self) -> Result<(), TreeError> {
        for (i, n) in self.nodes.iter().enumerate() {
            n.validate()?;
            if i > 0 && self.nodes[i - 1].name >= n.name {
                return Err(TreeError::Unsorted(n.name.clone()));
            }
        }
        Ok(())
    }

    fn encode_unchecked(&self) -> Vec<u8> {
        let mut v = vec![TREE_VERSION];
        v.extend(postcard::to_stdvec(self).expect("tree serializes"));
        v
    }

    /// Validates and serializes as one tree blob (version byte + postcard).
    /// Fails for a listing larger than [`MAX_TREE_LEN`]: writers of
    /// directories use [`Tree::store`], which splits.
    pub fn encode(&self) -> Result<Vec<u8>, TreeError> {
        self.validate()?;
        let v = self.encode_unchecked();
        if v.len() > MAX_TREE_LEN {
            return Err(TreeError::TooLarge(v.len()));
        }
        Ok(v)
    }

    /// Validates and stores the tree through `put` (which saves one tree
    /// blob's plaintext and returns its id); returns the id to record in
    /// the directory's node. A listing larger than one blob is stored as
    /// parts of at most [`MAX_TREE_LEN`] bytes and a part list naming them.
    pub fn store<E: From<TreeError>>(
        &self,
        put: impl FnMut(&[u8]) -> Result<BlobId, E>,
    ) -> Result<BlobId, E> {
        self.store_limited(MAX_TREE_LEN, put)
    }

    fn store_limited<E: From<TreeError>>(
        &self,
        limit: usize,
        mut put: impl FnMut(&[u8]) -> Result<BlobId, E>,
    ) -> Result<BlobId, E> {
        self.validate()?;
        let whole = self.encode_unchecked();
        if whole.len() <= limit {
            return put(&whole);
        }
        drop(whole);
        // Greedy runs: version byte + count (varint, at most 5 bytes) + nodes.
        let mut parts = Vec::new();
        let mut start = 0;
        while start < self.nodes.len() {
            let mut used = 1 + 5;
            let mut end = start;
            while end < self.nodes.len() {
                let len = postcard::to_stdvec(&self.nodes[end])
                    .expect("node serializes")
                    .len();
                if used + len > limit {
                    break;
                }
                used += len;
                end += 1;
            }
            if end == start {
                let n = &self.nodes[start];
                let len = postcard::to_stdvec(n).expect("node serializes").len();
                return Err(TreeError::NodeTooLarge {
                    name: n.name.clone(),
                    len,
                }
                .into());
            }
            let part = Tree {
                nodes: self.nodes[start..end].to_vec(),
            };
            parts.push(put(&part.encode_unchecked())?);
            start = end;
        }
        put(&TreeBlob::Parts(parts).encode()?)
    }

    /// Parses and validates a version-1 tree blob (one whole listing).
    pub fn parse(bytes: &[u8]) -> Result<Tree, TreeError> {
        match bytes.first() {
            Some(&TREE_VERSION) => {}
            Some(v) => return Err(TreeError::UnknownVersion(*v)),
            None => return Err(TreeError::Empty),
        }
        let (t, rest): (Tree, _) = postcard::take_from_bytes(&bytes[1..])
            .map_err(|e| TreeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(TreeError::StrayBytes(rest.len()));
        }
        t.validate()?;
        Ok(t)
    }

    /// Joins the parts of a split directory (in the order of its part
    /// list) into one listing; each part must be non-empty and the names
    /// strictly increasing across parts.
    pub fn join(parts: Vec<Tree>) -> Result<Tree, TreeError> {
        let mut all = Tree::default();
        for (i, p) in parts.into_iter().enumerate() {
            let (Some(first), Some(prev)) = (p.nodes.first(), all.nodes.last()) else {
                if p.nodes.is_empty() {
                    return Err(TreeError::BadPart(i));
                }
                all.nodes.extend(p.nodes);
                continue;
            };
            if prev.name >= first.name {
                return Err(TreeError::Unsorted(first.name.clone()));
            }
            all.nodes.extend(p.nodes);
        }
        Ok(all)
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

    fn file(name: &[u8]) -> Node {
        let mut a = Node::new(name.to_vec(), NodeKind::File);
        a.content = vec![BlobId([1; 32])];
        a
    }

    #[test]
    fn round_trip_and_refuse_unsafe_names() {
        let a = file(b"a");
        let mut d = Node::new(b"d".to_vec(), NodeKind::Dir);
        d.subtree = Some(BlobId([2; 32]));
        let t = Tree {
            nodes: vec![a.clone(), d],
        };
        assert_eq!(Tree::parse(&t.encode().unwrap()).unwrap(), t);
        for bad in [&b".."[..], b".", b"", b"x/y", b"a\0b"] {
            let mut n = a.clone();
            n.name = bad.to_vec();
            let bad_tree = Tree { nodes: vec![n] };
            assert!(Tree::parse(&bad_tree.encode_unchecked()).is_err());
            // The writer refuses exactly what the reader refuses.
            assert!(matches!(bad_tree.encode(), Err(TreeError::UnsafeName(_))));
            let stored = bad_tree.store(|_| -> Result<BlobId, TreeError> {
                panic!("an invalid tree reached storage")
            });
            assert!(stored.is_err());
        }
        let unsorted = Tree {
            nodes: vec![a.clone(), a.clone()],
        };
        assert!(Tree::parse(&unsorted.encode_unchecked()).is_err());
        assert!(unsorted.encode().is_err());
        let mut trailing = t.encode().unwrap();
        trailing.push(0);
        assert!(Tree::parse(&trailing).is_err(), "stray bytes accepted");
        let mut odd = a;
        odd.kind = NodeKind::Fifo;
        odd.content.clear();
        odd.link_target = Some(b"x".to_vec());
        let odd = Tree { nodes: vec![odd] };
        assert!(Tree::parse(&odd.encode_unchecked()).is_err());
        assert!(odd.encode().is_err());
    }

    /// Stores into a map; returns the id and the map.
    fn store_in_map(
        t: &Tree,
        limit: usize,
    ) -> (BlobId, std::collections::HashMap<BlobId, Vec<u8>>) {
        let mut blobs = std::collections::HashMap::new();
        let id = t
            .store_limited(limit, |b: &[u8]| -> Result<BlobId, TreeError> {
                assert!(b.len() <= limit, "blob of {} bytes over {limit}", b.len());
                let id = BlobId(*blake3::hash(b).as_bytes());
                blobs.insert(id, b.to_vec());
                Ok(id)
            })
            .unwrap();
        (id, blobs)
    }

    fn load(id: &BlobId, blobs: &std::collections::HashMap<BlobId, Vec<u8>>) -> Tree {
        match TreeBlob::parse(&blobs[id]).unwrap() {
            TreeBlob::Listing(t) => t,
            TreeBlob::Parts(ids) => Tree::join(
                ids.iter()
                    .map(|p| match TreeBlob::parse(&blobs[p]).unwrap() {
                        TreeBlob::Listing(t) => t,
                        TreeBlob::Parts(_) => panic!("nested part list"),
                    })
                    .collect(),
            )
            .unwrap(),
        }
    }

    #[test]
    fn large_listings_split_into_parts_and_join_back() {
        let t = Tree {
            nodes: (0..500u32)
                .map(|i| file(format!("name-{i:05}").as_bytes()))
                .collect(),
        };
        // Small enough: one version-1 blob, exactly as encode() makes it.
        let (id, blobs) = store_in_map(&t, MAX_TREE_LEN);
        assert_eq!(blobs.len(), 1);
        assert_eq!(blobs[&id], t.encode().unwrap());
        // A limit of ~1/7 of the listing: parts, each within the limit.
        let limit = t.encode().unwrap().len() / 7;
        let (id, blobs) = store_in_map(&t, limit);
        assert_eq!(blobs[&id][0], PARTS_VERSION);
        assert!(blobs.len() >= 8, "{} blobs", blobs.len());
        assert_eq!(load(&id, &blobs), t);
        // Deterministic: the same listing gives the same blobs (dedup).
        assert_eq!(store_in_map(&t, limit).0, id);
        // An entry larger than the limit is refused, naming it.
        let err = t.store_limited(40, |_| -> Result<BlobId, TreeError> { unreachable!() });
        assert!(matches!(err, Err(TreeError::NodeTooLarge { .. })));
    }

    #[test]
    fn bad_part_lists_are_refused() {
        let one = [
            vec![PARTS_VERSION],
            postcard::to_stdvec(&vec![BlobId([1; 32])]).unwrap(),
        ]
        .concat();
        assert_eq!(TreeBlob::parse(&one), Err(TreeError::PartCount(1)));
        let mut two = [
            vec![PARTS_VERSION],
            postcard::to_stdvec(&vec![BlobId([1; 32]), BlobId([2; 32])]).unwrap(),
        ]
        .concat();
        assert!(matches!(TreeBlob::parse(&two), Ok(TreeBlob::Parts(p)) if p.len() == 2));
        let ids = vec![BlobId([1; 32]), BlobId([2; 32])];
        assert_eq!(TreeBlob::Parts(ids).encode().unwrap(), two);
        assert!(TreeBlob::Parts(vec![BlobId([1; 32])]).encode().is_err());
        two.push(0);
        assert_eq!(TreeBlob::parse(&two), Err(TreeError::StrayBytes(1)));
        assert!(Tree::parse(&two).is_err(), "a part list is not a listing");
        let (a, b) = (file(b"a"), file(b"b"));
        let join = |x: &[&Node], y: &[&Node]| {
            Tree::join(vec![
                Tree {
                    nodes: x.iter().map(|n| (*n).clone()).collect(),
                },
                Tree {
                    nodes: y.iter().map(|n| (*n).clone()).collect(),
                },
            ])
        };
        assert!(join(&[&a], &[&b]).is_ok());
        assert!(join(&[&b], &[&a]).is_err(), "parts out of order");
        assert!(join(&[&a], &[&a]).is_err(), "name repeated across parts");
        assert_eq!(join(&[&a], &[]), Err(TreeError::BadPart(1)));
    }
}
