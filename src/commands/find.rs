//! `snap find PATTERN...`: which snapshots hold matching paths, with each
//! match's size and mtime there.
//!
//! A pattern is a glob matched against the entry's base name and against
//! its absolute path in the snapshot; `*` and `?` do not cross a `/`, `**`
//! does, and a pattern that does not start with `/` may match at any depth
//! (as `create --exclude` and restic's `find`). Names and patterns are in
//! the escaped form of `crate::name_escape`, as `restore --include`'s. Snapshots share most of
//! their directories: the matches below a directory are computed once per
//! (listing, path) and reused for every snapshot that holds it there.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use super::ls::kind_name;
use super::snapshots::format_time;
use crate::format::snapshot::Snapshot;
use crate::format::tree::Node;
use crate::format::{BlobId, SnapshotId};
use crate::name_escape::escape;
use crate::repository::Repository;
use crate::{Error, Result};

/// Options of `snap find`.
#[derive(Debug, Default)]
pub struct FindOptions {
    /// Globs; an entry matches if any matches.
    pub patterns: Vec<String>,
    /// Match regardless of case.
    pub ignore_case: bool,
    /// Only entries modified after this (ns since the epoch).
    pub newer_ns: Option<i64>,
    /// Only entries modified before this.
    pub older_ns: Option<i64>,
}

/// One matching entry.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    /// Absolute path in the snapshot (escaped form).
    pub path: String,
    /// `file`, `dir`, `symlink`, ...
    pub kind: &'static str,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time, RFC 3339.
    pub mtime: String,
}

/// The matches in one snapshot.
#[derive(Debug, Serialize)]
pub struct SnapshotHits {
    /// Snapshot id.
    pub snapshot: String,
    /// Short id.
    pub short_id: String,
    /// Snapshot time, RFC 3339.
    pub time: String,
    /// Host.
    pub host: String,
    /// Source paths.
    pub paths: Vec<String>,
    /// Number of matches.
    pub hits: usize,
    /// The matches, in walk order.
    pub matches: Vec<Hit>,
}

struct Matcher {
    by_path: GlobSet,
    by_name: GlobSet,
    newer: Option<i64>,
    older: Option<i64>,
}

impl Matcher {
    fn new(o: &FindOptions) -> Result<Matcher> {
        if o.patterns.is_empty() {
            return Err(Error::Usage("find needs at least one PATTERN".into()));
        }
        // A backslash only starts an escape of the escaped form, never a
        // glob quote (as in `restore --include`): `[*]` is a literal `*`.
        let glob = |p: &str, orig: &str| {
            GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(false)
                .case_insensitive(o.ignore_case)
                .build()
                .map_err(|e| Error::Usage(format!("bad pattern {orig:?}: {e}")))
        };
        let (mut by_path, mut by_name) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for p in &o.patterns {
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
            by_path.add(glob(&anchored, p)?);
            by_name.add(glob(p, p)?);
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::Usage(format!("bad patterns: {e}")))
        };
        Ok(Matcher {
            by_path: build(by_path)?,
            by_name: build(by_name)?,
            newer: o.newer_ns,
            older: o.older_ns,
        })
    }

    /// Whether node `n` at `path` (escaped) matches.
    fn matches(&self, path: &str, n: &Node) -> bool {
        self.newer.is_none_or(|t| n.mtime_ns > t)
            && self.older.is_none_or(|t| n.mtime_ns < t)
            && (self.by_name.is_match(escape(&n.name)) || self.by_path.is_match(path))
    }
}

struct Finder<'a> {
    repo: &'a Repository,
    m: Matcher,
    memo: HashMap<(BlobId, PathBuf), Rc<Vec<Hit>>>,
}

impl Finder<'_> {
    fn tree(&mut self, id: &BlobId, at: &Path) -> Result<Rc<Vec<Hit>>> {
        let key = (*id, at.to_path_buf());
        if let Some(h) = self.memo.get(&key) {
            return Ok(h.clone());
        }
        let mut hits = Vec::new();
        for n in self.repo.load_tree(id)?.nodes {
            let p = at.join(OsStr::from_bytes(&n.name));
            let shown = escape(p.as_os_str().as_bytes());
            if self.m.matches(&shown, &n) {
                hits.push(Hit {
                    path: shown,
                    kind: kind_name(n.kind),
                    mode: n.mode,
                    size: n.size,
                    mtime: format_time(n.mtime_ns),
                });
            }
            if let Some(sub) = &n.subtree {
                hits.extend(self.tree(sub, &p)?.iter().cloned());
            }
        }
        let hits = Rc::new(hits);
        self.memo.insert(key, hits.clone());
        Ok(hits)
    }
}

/// Searches `snapshots` (in the order given); only snapshots with matches
/// are returned.
pub fn run(
    repo: &Repository,
    snapshots: &[(SnapshotId, Snapshot)],
    opts: &FindOptions,
) -> Result<Vec<SnapshotHits>> {
    let mut f = Finder {
        repo,
        m: Matcher::new(opts)?,
        memo: HashMap::new(),
    };
    let mut out = Vec::new();
    for (id, s) in snapshots {
        let hits = f.tree(&s.tree, Path::new("/"))?;
        if hits.is_empty() {
            continue;
        }
        out.push(SnapshotHits {
            snapshot: id.to_hex(),
            short_id: id.short(),
            time: format_time(s.time_ns),
            host: s.host.clone(),
            paths: s.paths.clone(),
            hits: hits.len(),
            matches: hits.to_vec(),
        });
    }
    Ok(out)
}
