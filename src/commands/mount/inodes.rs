//! The inode table: what each inode number the kernel holds stands for.
//!
//! Inode 1 is the mount point. Every other entry's number is a hash of
//! its parent's number and its name, so `readdir` can give the number an
//! entry will have without storing anything; an entry is stored when the
//! kernel looks it up and dropped when the kernel forgets it (its lookup
//! count falls to zero), so the table holds what the kernel holds, not
//! everything ever listed. The same snapshot directory under `ids/` and
//! `snapshots/` has two numbers: a directory has one parent.
//! Two names whose hashes collide get the next free number (that one
//! entry's `readdir` number then differs from its `stat` number).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use super::layout::Entry;
use crate::format::tree::Node;

/// The mount point's inode.
pub const ROOT: u64 = 1;

/// What an inode stands for.
#[derive(Clone, Debug)]
pub enum What {
    /// A layout directory, a snapshot's root or a `latest` symlink.
    Layout(Entry),
    /// An entry of a snapshot's tree.
    Node(Arc<Node>),
}

struct Inode {
    parent: u64,
    name: Vec<u8>,
    what: What,
    lookups: u64,
}

/// Inode numbers -> what they stand for.
pub struct Inodes {
    map: HashMap<u64, Inode>,
}

/// The number `readdir` gives the entry `name` of directory `parent`:
/// never 0 or one of the first 16 (kept for fixed inodes).
pub fn number(parent: u64, name: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    parent.hash(&mut h);
    name.hash(&mut h);
    h.finish() % (u64::MAX - 16) + 16
}

impl Inodes {
    /// A table holding the mount point, `root`.
    pub fn new(root: What) -> Inodes {
        let mut map = HashMap::new();
        map.insert(
            ROOT,
            Inode {
                parent: ROOT,
                name: Vec::new(),
                what: root,
                lookups: 1,
            },
        );
        Inodes { map }
    }

    /// What `ino` stands for, and its parent's number.
    pub fn get(&self, ino: u64) -> Option<(What, u64)> {
        self.map.get(&ino).map(|i| (i.what.clone(), i.parent))
    }

    /// Counts one lookup of entry `name` of `parent` (stored as `what`
    /// when new); returns its number.
    pub fn looked_up(&mut self, parent: u64, name: &[u8], what: What) -> u64 {
        let mut ino = number(parent, name);
        loop {
            match self.map.get_mut(&ino) {
                None => {
                    self.map.insert(
                        ino,
                        Inode {
                            parent,
                            name: name.to_vec(),
                            what,
                            lookups: 1,
                        },
                    );
                    return ino;
                }
                Some(i) if i.parent == parent && i.name == name => {
                    i.lookups += 1;
                    return ino;
                }
                Some(_) => ino = ino.checked_add(1).unwrap_or(16),
            }
        }
    }

    /// The path of `ino` below the mount point (names in the escaped form
    /// of `snap ls`), for messages.
    pub fn path(&self, mut ino: u64) -> String {
        let mut names: Vec<String> = Vec::new();
        while let Some(i) = self.map.get(&ino).filter(|_| ino != ROOT) {
            names.push(crate::name_escape::escape(&i.name));
            ino = i.parent;
        }
        names.reverse();
        names.join("/")
    }

    /// The kernel forgets `n` lookups of `ino`; at zero it is dropped.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        if let Some(i) = self.map.get_mut(&ino) {
            i.lookups = i.lookups.saturating_sub(n);
            if i.lookups == 0 {
                self.map.remove(&ino);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::mount::layout::Dir;

    #[test]
    fn entries_live_while_looked_up() {
        let mut t = Inodes::new(What::Layout(Entry::Dir(Dir::Root)));
        let w = What::Layout(Entry::Dir(Dir::Ids));
        let a = t.looked_up(ROOT, b"ids", w.clone());
        assert_eq!(a, number(ROOT, b"ids"));
        assert_eq!(t.looked_up(ROOT, b"ids", w), a);
        t.forget(a, 1);
        assert!(t.get(a).is_some());
        t.forget(a, 1);
        assert!(t.get(a).is_none());
        t.forget(ROOT, 5);
        assert!(t.get(ROOT).is_some());
    }
}
