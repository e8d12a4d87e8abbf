//! The tar format of `snap dump`: GNU headers (a name or link target too
//! long for the header goes before it in a GNU long-name entry, as raw
//! bytes, so names need not be UTF-8), with a PAX record for what GNU
//! headers cannot say: an mtime with nanoseconds or before 1970, and
//! extended attributes (`SCHILY.xattr.NAME`, as GNU tar writes them;
//! `tar --xattrs` restores them). Mode (set-id and sticky bits included),
//! uid/gid, user and group names, mtime; files, directories, symlinks,
//! hard links, fifos and device nodes. Sockets cannot be archived and are
//! skipped with a warning.
//!
//! A hard-linked file (one recorded with more than one link) is written
//! once, at its first name; its later names in the archive are hard-link
//! entries to that name. What is kept for this, the first name of each
//! inode until all its names are met, is the only memory that grows with
//! the tree (for groups whose other names are outside the dump, to the end).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;

use tar::{Builder, EntryType, Header};

use super::dump::{output_error, Content, Guard, Sink};
use crate::format::tree::{Node, NodeKind};
use crate::name_escape::escape;
use crate::{Error, Result};

/// Longest name or link target a GNU header holds itself.
const HEADER_NAME_LEN: usize = 100;

/// A hard-linked inode: its first name in the archive, and how many of
/// its names are still to come.
struct FirstName {
    path: Vec<u8>,
    left: u64,
}

/// Writes tar entries to a [`Guard`].
pub(crate) struct TarSink<'a> {
    tar: Builder<Guard<'a>>,
    links: HashMap<(u64, u64), FirstName>,
    warnings: Vec<String>,
}

impl<'a> TarSink<'a> {
    pub(crate) fn new(out: Guard<'a>) -> TarSink<'a> {
        TarSink {
            tar: Builder::new(out),
            links: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    /// The first name of the inode of `node` if one was written already
    /// (this name is then a hard link to it); notes this name otherwise.
    fn link_to(&mut self, path: &[u8], node: &Node) -> Option<Vec<u8>> {
        if node.kind != NodeKind::File || node.nlink < 2 {
            return None;
        }
        let key = (node.dev, node.inode);
        match self.links.get_mut(&key) {
            Some(first) => {
                let to = first.path.clone();
                first.left = first.left.saturating_sub(1);
                if first.left == 0 {
                    self.links.remove(&key);
                }
                Some(to)
            }
            None => {
                self.links.insert(
                    key,
                    FirstName {
                        path: path.to_vec(),
                        left: node.nlink - 1,
                    },
                );
                None
            }
        }
    }

    /// PAX records of `node`: a precise mtime, the xattrs.
    fn pax(&mut self, path: &[u8], node: &Node) -> Vec<(String, Vec<u8>)> {
        let mut records = Vec::new();
        if node.mtime_ns < 0 || node.mtime_ns % 1_000_000_000 != 0 {
            records.push(("mtime".to_string(), pax_time(node.mtime_ns).into_bytes()));
        }
        for (name, value) in &node.xattrs {
            match std::str::from_utf8(name) {
                Ok(n) => records.push((format!("SCHILY.xattr.{n}"), value.clone())),
                Err(_) => self.warnings.push(format!(
                    "{}: extended attribute {} is not UTF-8, which tar cannot name: left out",
                    escape(path),
                    escape(name)
                )),
            }
        }
        records
    }

    /// A GNU long-link entry, for a link target the header cannot hold.
    fn long_link(&mut self, target: &[u8]) -> io::Result<()> {
        let mut h = Header::new_gnu();
        h.as_gnu_mut().expect("a GNU header").name[..13].copy_from_slice(b"././@LongLink");
        h.set_mode(0o644);
        h.set_entry_type(EntryType::GNULongLink);
        // With the NUL GNU tar writes after it.
        h.set_size(target.len() as u64 + 1);
        h.set_cksum();
        self.tar.append(&h, target.chain(&[0u8][..]))
    }

    fn write(&mut self, path: &[u8], node: &Node, content: &mut Content<'_>) -> Result<bool> {
        let mut h = Header::new_gnu();
        h.set_mode(node.mode & 0o7777);
        h.set_uid(node.uid.into());
        h.set_gid(node.gid.into());
        // Names too long for the header are left out: tar uses the ids.
        if let Some(u) = &node.user {
            let _ = h.set_username(u);
        }
        if let Some(g) = &node.group {
            let _ = h.set_groupname(g);
        }
        h.set_mtime(node.mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
        h.set_size(0);
        let mut name = path.to_vec();
        let mut target: Option<Vec<u8>> = None;
        match node.kind {
            NodeKind::File => match self.link_to(path, node) {
                Some(first) => {
                    h.set_entry_type(EntryType::Link);
                    target = Some(first);
                }
                None => {
                    h.set_entry_type(EntryType::Regular);
                    h.set_size(node.size);
                }
            },
            NodeKind::Dir => {
                h.set_entry_type(EntryType::Directory);
                name.push(b'/');
            }
            NodeKind::Symlink => {
                h.set_entry_type(EntryType::Symlink);
                target = Some(node.link_target.clone().unwrap_or_default());
            }
            NodeKind::Fifo => h.set_entry_type(EntryType::Fifo),
            NodeKind::CharDevice | NodeKind::BlockDevice => {
                h.set_entry_type(if node.kind == NodeKind::CharDevice {
                    EntryType::Char
                } else {
                    EntryType::Block
                });
                let (major, minor) = (libc::major(node.rdev), libc::minor(node.rdev));
                h.set_device_major(major).map_err(output_error)?;
                h.set_device_minor(minor).map_err(output_error)?;
            }
            NodeKind::Socket => {
                self.warnings.push(format!(
                    "{}: a socket, which tar cannot hold: left out",
                    escape(path)
                ));
                return Ok(false);
            }
        }
        let pax = self.pax(path, node);
        if !pax.is_empty() {
            self.tar
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(output_error)?;
        }
        if let Some(t) = &target {
            if t.len() > HEADER_NAME_LEN || h.set_link_name_literal(t).is_err() {
                self.long_link(t).map_err(output_error)?;
            }
        }
        let name = OsStr::from_bytes(&name);
        if h.entry_type() != EntryType::Regular {
            self.tar
                .append_data(&mut h, name, io::empty())
                .map_err(output_error)?;
            return Ok(true);
        }
        let mut data = ContentReader {
            content,
            chunk: Vec::new(),
            at: 0,
            error: None,
        };
        if let Err(e) = self.tar.append_data(&mut h, name, &mut data) {
            return Err(data.error.take().unwrap_or_else(|| output_error(e)));
        }
        Ok(true)
    }
}

impl Sink for TarSink<'_> {
    fn add(&mut self, path: &[u8], node: &Node, content: &mut Content<'_>) -> Result<bool> {
        self.write(path, node, content)
    }

    fn finish(&mut self) -> Result<()> {
        self.tar.finish().map_err(output_error)?;
        io::Write::flush(self.tar.get_mut()).map_err(output_error)
    }

    fn warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// A PAX time: seconds since the epoch, exactly, with the nanoseconds as a
/// fraction (`-1.5` is half a second before -1).
fn pax_time(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    format!("{sign}{}.{:09}", a / 1_000_000_000, a % 1_000_000_000)
}

/// A file's content as a [`Read`] for the tar writer; an error of the
/// repository is kept, typed, for the caller.
struct ContentReader<'c, 'a> {
    content: &'c mut Content<'a>,
    chunk: Vec<u8>,
    at: usize,
    error: Option<Error>,
}

impl Read for ContentReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.content.next_chunk() {
                Ok(Some(c)) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Ok(None) => return Ok(0),
                Err(e) => {
                    let msg = e.to_string();
                    self.error = Some(e);
                    return Err(io::Error::other(msg));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::pax_time;

    #[test]
    fn pax_times_are_exact() {
        assert_eq!(pax_time(1_700_000_000_123_456_789), "1700000000.123456789");
        assert_eq!(pax_time(0), "0.000000000");
        assert_eq!(pax_time(-1_500_000_000), "-1.500000000");
        assert_eq!(pax_time(-1), "-0.000000001");
    }
}
