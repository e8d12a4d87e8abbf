//! `snap dump`: one file's content, or a subtree as a tar or zip stream,
//! to a writer.
//!
//! Every blob is read (and so decrypted and verified) by the repository
//! before any of its bytes reach the writer, one blob at a time; a file
//! whose chunks do not add up to its recorded size is refused. Trees are
//! walked depth first, one directory listing per level held in memory;
//! the archive formats ([`super::dump_tar`], [`super::dump_zip`]) see one
//! entry at a time. When anything fails, nothing more reaches the writer
//! (see `Guard`): no end-of-archive marker, so an archive cut short is
//! never mistaken for a complete one.
//!
//! Paths inside an archive are the snapshot's paths without their leading
//! `/` (as restic's `dump` and `tar -c /etc` write them): dumping `/etc`
//! gives `etc/`, `etc/passwd`, ...; dumping `/` gives every top-level
//! entry.

use std::cell::Cell;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::rc::Rc;

use crate::format::tree::{Node, NodeKind};
use crate::format::BlobId;
use crate::name_escape::escape;
use crate::repository::Repository;
use crate::{Error, Remedy, Result};

/// Archive formats of `dump --archive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// POSIX tar with GNU long names and PAX records.
    Tar,
    /// Zip, deflated, streamed.
    Zip,
}

/// What to dump and how.
#[derive(Clone, Debug, Default)]
pub struct DumpOptions {
    /// Write an archive even of a single file; `None`: tar for a
    /// directory, the raw bytes of a file.
    pub archive: Option<ArchiveFormat>,
}

/// What a dump wrote.
#[derive(Clone, Debug, Default)]
pub struct DumpReport {
    /// The archive format, `None` for a file's raw bytes.
    pub archive: Option<ArchiveFormat>,
    /// Archive entries written (0 for raw bytes).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// What the archive could not hold (skipped entries, lost names).
    pub warnings: Vec<String>,
}

/// Whether `dump` of `path` writes an archive, and which: `None` means
/// the raw bytes of a file. Looks the path up once; the caller can refuse
/// to write an archive to a terminal before anything is written.
pub fn format_of(
    repo: &Repository,
    root: &BlobId,
    path: &Path,
    snapshot: &str,
    opts: &DumpOptions,
) -> Result<Option<ArchiveFormat>> {
    let node = super::ls::find_node(repo, root, path, snapshot)?;
    decide(node.as_ref(), path, opts)
}

fn decide(node: Option<&Node>, path: &Path, opts: &DumpOptions) -> Result<Option<ArchiveFormat>> {
    Ok(match (opts.archive, node) {
        (Some(f), _) => Some(f),
        (None, Some(n)) if n.kind == NodeKind::File => None,
        (None, Some(n)) if n.kind != NodeKind::Dir => {
            return Err(Error::Invalid(format!(
                "{} is a {}, not a file or directory: nothing to dump (`--archive tar` writes it as an archive entry)",
                path.display(),
                super::ls::kind_name(n.kind)
            )))
        }
        (None, _) => Some(ArchiveFormat::Tar),
    })
}

/// Writes the file at `path` of the snapshot to `out`; returns bytes
/// written. Anything but a regular file is refused.
pub fn run(
    repo: &Repository,
    root: &BlobId,
    path: &Path,
    snapshot: &str,
    out: &mut dyn Write,
) -> Result<u64> {
    let node = super::ls::find_node(repo, root, path, snapshot)?
        .ok_or_else(|| Error::Usage("dump needs a file path, not the root".into()))?;
    if node.kind != NodeKind::File {
        return Err(Error::Invalid(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mut report = DumpReport::default();
    raw(repo, &node, path, out, &mut report)?;
    Ok(report.bytes)
}

/// Writes the file at `path` of the snapshot (its raw bytes), or the
/// subtree at `path` as an archive, to `out` (see [`format_of`]).
pub fn write(
    repo: &Repository,
    root: &BlobId,
    path: &Path,
    snapshot: &str,
    opts: &DumpOptions,
    out: &mut dyn Write,
) -> Result<DumpReport> {
    let node = super::ls::find_node(repo, root, path, snapshot)?;
    let format = decide(node.as_ref(), path, opts)?;
    let mut report = DumpReport {
        archive: format,
        ..DumpReport::default()
    };
    let result = match (format, node) {
        (None, Some(node)) => raw(repo, &node, path, out, &mut report),
        (None, None) => unreachable!("the root is a directory"),
        (Some(f), node) => archive(repo, root, path, node, f, Guard::new(out), &mut report),
    };
    result?;
    Ok(report)
}

fn raw(
    repo: &Repository,
    node: &Node,
    path: &Path,
    out: &mut dyn Write,
    report: &mut DumpReport,
) -> Result<()> {
    let mut content = Content::new(repo, node, path.as_os_str().as_bytes());
    while let Some(data) = content.next_chunk()? {
        out.write_all(&data).map_err(output_error)?;
    }
    report.bytes = content.done;
    out.flush().map_err(output_error)
}

/// One archive format: gets every entry in walk order (a directory before
/// what it holds), then `finish`.
pub(crate) trait Sink {
    /// Adds `node` as `path` (relative, `/`-separated raw bytes, no
    /// trailing `/`); a file's bytes come from `content`. `false`: the
    /// format cannot hold it and it was left out (with a warning).
    fn add(&mut self, path: &[u8], node: &Node, content: &mut Content<'_>) -> Result<bool>;
    /// Writes the end of the archive and flushes it.
    fn finish(&mut self) -> Result<()>;
    /// What the format could not hold, said as it happened.
    fn warnings(&mut self) -> Vec<String>;
}

fn archive(
    repo: &Repository,
    root: &BlobId,
    path: &Path,
    node: Option<Node>,
    format: ArchiveFormat,
    out: Guard<'_>,
    report: &mut DumpReport,
) -> Result<()> {
    let poisoned = out.poisoned.clone();
    let mut sink: Box<dyn Sink + '_> = match format {
        ArchiveFormat::Tar => Box::new(super::dump_tar::TarSink::new(out)),
        ArchiveFormat::Zip => Box::new(super::dump_zip::ZipSink::new(out)),
    };
    let result = walk(repo, root, path, node, sink.as_mut(), report).and_then(|()| sink.finish());
    report.warnings.extend(sink.warnings());
    if result.is_err() {
        // Before the sink is dropped (and its writer ends the archive).
        poisoned.set(true);
    }
    result
}

/// The archive path of a snapshot path: its names joined by `/`, without
/// the leading `/`.
fn relative(path: &Path) -> Vec<u8> {
    let mut rel = Vec::new();
    for c in path.components() {
        if let Component::Normal(n) = c {
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(n.as_bytes());
        }
    }
    rel
}

fn walk(
    repo: &Repository,
    root: &BlobId,
    path: &Path,
    node: Option<Node>,
    sink: &mut dyn Sink,
    report: &mut DumpReport,
) -> Result<()> {
    let mut add = |rel: &[u8], n: &Node, report: &mut DumpReport| -> Result<()> {
        crate::interrupt::check()?;
        let mut content = Content::new(repo, n, rel);
        if sink.add(rel, n, &mut content)? {
            report.entries += 1;
        }
        report.bytes += content.done;
        Ok(())
    };
    // One listing per level: the path of the directory, and what is left
    // of its entries.
    let mut stack: Vec<(Vec<u8>, std::vec::IntoIter<Node>)> = Vec::new();
    match node {
        None => stack.push((Vec::new(), repo.load_tree(root)?.nodes.into_iter())),
        Some(n) => {
            let rel = relative(path);
            add(&rel, &n, report)?;
            if let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree) {
                stack.push((rel, repo.load_tree(&sub)?.nodes.into_iter()));
            }
        }
    }
    while let Some((dir, entries)) = stack.last_mut() {
        let Some(n) = entries.next() else {
            stack.pop();
            continue;
        };
        let mut rel = dir.clone();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(&n.name);
        add(&rel, &n, report)?;
        if let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree) {
            let listing = repo.load_tree(&sub)?.nodes.into_iter();
            stack.push((rel, listing));
        }
    }
    Ok(())
}

/// The content of one file, blob by blob, each verified before it is
/// handed out; exactly the file's recorded size, or an error.
pub(crate) struct Content<'a> {
    repo: &'a Repository,
    ids: std::slice::Iter<'a, BlobId>,
    path: &'a [u8],
    /// The file's recorded size.
    pub size: u64,
    /// Bytes handed out so far.
    pub done: u64,
}

impl<'a> Content<'a> {
    fn new(repo: &'a Repository, node: &'a Node, path: &'a [u8]) -> Content<'a> {
        let (ids, size) = match node.kind {
            NodeKind::File => (node.content.iter(), node.size),
            _ => ([].iter(), 0),
        };
        Content {
            repo,
            ids,
            path,
            size,
            done: 0,
        }
    }

    /// The next chunk's bytes, or `None` after the last.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        crate::interrupt::check()?;
        let Some(id) = self.ids.next() else {
            if self.done != self.size {
                return Err(self.size_error(self.done));
            }
            return Ok(None);
        };
        let data = self.repo.read_blob(id).map_err(|e| self.name_file(e))?;
        let done = self.done + data.len() as u64;
        if done > self.size {
            return Err(self.size_error(done));
        }
        self.done = done;
        Ok(Some(data))
    }

    /// The file's path in the snapshot, for messages.
    fn shown(&self) -> String {
        let slash = if self.path.starts_with(b"/") { "" } else { "/" };
        format!("{slash}{}", escape(self.path))
    }

    fn size_error(&self, got: u64) -> Error {
        Error::corrupt_with(
            format!("file {} of the snapshot", self.shown()),
            format!(
                "its chunks hold {}{got} bytes, its recorded size is {}",
                if got > self.size { "at least " } else { "" },
                self.size
            ),
            Remedy::Invalid,
        )
    }

    /// Says which file a damaged or missing blob belongs to.
    fn name_file(&self, e: Error) -> Error {
        let of = format!(" (of file {})", self.shown());
        match e {
            Error::Corrupt { what, why, remedy } => Error::Corrupt {
                what: what + &of,
                why,
                remedy,
            },
            Error::Missing { what } => Error::Missing { what: what + &of },
            e => e,
        }
    }
}

pub(crate) fn output_error(e: std::io::Error) -> Error {
    Error::io("<output>", e)
}

/// The writer of an archive. Once poisoned (after an error), it swallows
/// every byte: the formats' writers end their archive when dropped, and an
/// end marker after a failure would make a truncated archive look whole.
pub(crate) struct Guard<'a> {
    out: &'a mut dyn Write,
    poisoned: Rc<Cell<bool>>,
}

impl<'a> Guard<'a> {
    fn new(out: &'a mut dyn Write) -> Guard<'a> {
        Guard {
            out,
            poisoned: Rc::new(Cell::new(false)),
        }
    }
}

impl Write for Guard<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.poisoned.get() {
            return Ok(buf.len());
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.poisoned.get() {
            return Ok(());
        }
        self.out.flush()
    }
}
