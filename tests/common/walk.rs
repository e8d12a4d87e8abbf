//! The tests' own walk of a tree (std::fs for the tree, libc for xattrs),
//! sharing no code with snap, and the comparison of a restore with its
//! source: type, mode, owner, size, content hash, symlink target, xattrs
//! (ACLs included), device numbers, mtime with nanoseconds, hard-link
//! groups, and allocated blocks of sparse files.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Char,
    Block,
    Socket,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub hash: Option<String>,
    pub target: Option<Vec<u8>>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub rdev: u64,
    pub mtime: (i64, i64),
}

/// What the walk saw below a root.
#[derive(Default)]
pub struct Walk {
    pub entries: BTreeMap<Vec<u8>, Entry>,
    /// Names of each inode with more than one name in the tree.
    pub hard_links: BTreeSet<Vec<Vec<u8>>>,
    /// Allocated 512-byte blocks of each regular file.
    pub blocks: BTreeMap<Vec<u8>, u64>,
}

pub fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// The xattrs of `p` itself (not following a symlink), sorted.
pub fn xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let c = cpath(p);
    // SAFETY: c is NUL-terminated; a null buffer asks for the size.
    let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if n <= 0 {
        return Vec::new();
    }
    let mut names = vec![0u8; n as usize];
    // SAFETY: the buffer has the size given.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "llistxattr {}", p.display());
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cn = CString::new(name).unwrap();
        // SAFETY: as above.
        let len = unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), std::ptr::null_mut(), 0) };
        assert!(len >= 0, "lgetxattr {}", p.display());
        let mut v = vec![0u8; len as usize];
        // SAFETY: as above.
        let len =
            unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        assert!(len >= 0);
        v.truncate(len as usize);
        out.push((name.to_vec(), v));
    }
    out.sort();
    out
}

pub fn walk(root: &Path) -> Walk {
    let mut w = Walk::default();
    let mut inodes: BTreeMap<(u64, u64), Vec<Vec<u8>>> = BTreeMap::new();
    let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
    while let Some(rel) = stack.pop() {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(OsStr::from_bytes(&rel))
        };
        let m = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_char_device() {
            Kind::Char
        } else if ft.is_block_device() {
            Kind::Block
        } else if ft.is_socket() {
            Kind::Socket
        } else {
            Kind::File
        };
        let hash = (kind == Kind::File).then(|| {
            let bytes = fs::read(&path).unwrap();
            blake3::hash(&bytes).to_hex().to_string()
        });
        if kind == Kind::File {
            w.blocks.insert(rel.clone(), m.blocks());
            if m.nlink() > 1 {
                inodes
                    .entry((m.dev(), m.ino()))
                    .or_default()
                    .push(rel.clone());
            }
        }
        let target = (kind == Kind::Symlink)
            .then(|| fs::read_link(&path).unwrap().into_os_string().into_vec());
        w.entries.insert(
            rel.clone(),
            Entry {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                size: if kind == Kind::File { m.len() } else { 0 },
                hash,
                target,
                xattrs: xattrs(&path),
                rdev: if matches!(kind, Kind::Char | Kind::Block) {
                    m.rdev()
                } else {
                    0
                },
                mtime: (m.mtime(), m.mtime_nsec()),
            },
        );
        if kind == Kind::Dir {
            for e in fs::read_dir(&path).unwrap() {
                let name = e.unwrap().file_name();
                let mut child = rel.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(name.as_bytes());
                stack.push(child);
            }
        }
    }
    for (_, mut names) in inodes {
        if names.len() > 1 {
            names.sort();
            w.hard_links.insert(names);
        }
    }
    w
}

pub fn show(rel: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(rel))
}

/// Compares a restore with its source (sockets are expected to be absent
/// from a restore); returns every difference.
pub fn differences(src: &Walk, got: &Walk) -> Vec<String> {
    compare(src, got, true)
}

pub fn compare(src: &Walk, got: &Walk, restored: bool) -> Vec<String> {
    let mut d = Vec::new();
    for (rel, want) in &src.entries {
        match got.entries.get(rel) {
            None if restored && want.kind == Kind::Socket => {}
            None => d.push(format!("missing: {}", show(rel))),
            Some(_) if restored && want.kind == Kind::Socket => {
                d.push(format!("socket restored?: {}", show(rel)))
            }
            Some(have) if have != want => d.push(format!(
                "differs: {}\n    want {want:?}\n    got  {have:?}",
                show(rel)
            )),
            Some(_) => {}
        }
    }
    for rel in got.entries.keys() {
        if !src.entries.contains_key(rel) {
            d.push(format!("extra: {}", show(rel)));
        }
    }
    if src.hard_links != got.hard_links {
        d.push(format!(
            "hard-link groups differ:\n    want {:?}\n    got  {:?}",
            src.hard_links, got.hard_links
        ));
    }
    for (rel, &b) in &src.blocks {
        if let Some(&g) = got.blocks.get(rel) {
            // Holes stay holes (a little slack for file-system metadata).
            if g > b + 128 {
                d.push(format!(
                    "{}: {g} blocks allocated in the restore, {b} in the source",
                    show(rel)
                ));
            }
        }
    }
    d
}
