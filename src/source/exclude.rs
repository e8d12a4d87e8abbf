//! Exclude rules: globs (`--exclude`, `--exclude-file`, and their
//! case-insensitive `--iexclude`, `--iexclude-file`), directories marked
//! by a tag file (CACHEDIR.TAG with `--exclude-caches`, any file with
//! `--exclude-if-present NAME[:HEADER]`), files larger than a size
//! (`--exclude-larger-than`), and staying on one file system.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::{Error, Result};

/// The signature that marks a cache directory (bford.info/cachedir).
const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// A file whose presence excludes the rest of its directory.
#[derive(Debug, Clone)]
struct TagFile {
    name: OsString,
    /// The bytes the file must start with, if any.
    header: Option<Vec<u8>>,
}

/// Compiled exclude rules.
#[derive(Debug, Default)]
pub struct Excludes {
    by_path: Option<GlobSet>,
    by_name: Option<GlobSet>,
    iby_path: Option<GlobSet>,
    iby_name: Option<GlobSet>,
    caches: bool,
    tags: Vec<TagFile>,
    larger_than: Option<u64>,
    /// Device to stay on, when `--one-file-system` is set (per source path).
    pub one_file_system: bool,
}

/// Patterns given on the command line and read from files (one per line;
/// blank lines and lines starting with `#` are skipped).
fn gather(patterns: &[String], files: &[PathBuf]) -> Result<Vec<String>> {
    let mut all: Vec<String> = patterns.to_vec();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
        all.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    Ok(all)
}

/// Compiles patterns into (by path, by name) sets. A pattern with a `/`
/// matches the absolute path (and everything below it); one without
/// matches any path component (as in restic).
fn compile(all: &[String], case_insensitive: bool) -> Result<(Option<GlobSet>, Option<GlobSet>)> {
    let mut by_path = GlobSetBuilder::new();
    let mut by_name = GlobSetBuilder::new();
    let (mut np, mut nn) = (0, 0);
    for p in all {
        let glob = |s: &str| {
            GlobBuilder::new(s)
                .case_insensitive(case_insensitive)
                .build()
                .map_err(|e| Error::Usage(format!("bad exclude pattern {p:?}: {e}")))
        };
        if p.contains('/') {
            let anchored = if p.starts_with('/') {
                p.clone()
            } else {
                format!("**/{p}")
            };
            by_path.add(glob(&anchored)?);
            by_path.add(glob(&format!("{}/**", anchored.trim_end_matches('/')))?);
            np += 1;
        } else {
            by_name.add(glob(p)?);
            nn += 1;
        }
    }
    let build = |b: GlobSetBuilder, n: usize| -> Result<Option<GlobSet>> {
        if n == 0 {
            return Ok(None);
        }
        b.build()
            .map(Some)
            .map_err(|e| Error::Usage(format!("bad exclude patterns: {e}")))
    };
    Ok((build(by_path, np)?, build(by_name, nn)?))
}

/// Whether the file at `path` starts with `header`.
fn starts_with(path: &Path, header: &[u8]) -> bool {
    use std::io::Read;
    let mut buf = vec![0u8; header.len()];
    match std::fs::File::open(path) {
        Ok(mut f) => f.read_exact(&mut buf).is_ok() && buf == header,
        Err(_) => false,
    }
}

impl Excludes {
    /// Builds rules from patterns and pattern files. A pattern with a `/`
    /// matches the absolute path; one without matches any path component
    /// (as in restic).
    pub fn new(
        patterns: &[String],
        files: &[PathBuf],
        caches: bool,
        one_file_system: bool,
    ) -> Result<Excludes> {
        let (by_path, by_name) = compile(&gather(patterns, files)?, false)?;
        Ok(Excludes {
            by_path,
            by_name,
            caches,
            one_file_system,
            ..Default::default()
        })
    }

    /// Adds patterns that match regardless of case (`--iexclude`,
    /// `--iexclude-file`).
    pub fn with_iexcludes(mut self, patterns: &[String], files: &[PathBuf]) -> Result<Excludes> {
        (self.iby_path, self.iby_name) = compile(&gather(patterns, files)?, true)?;
        Ok(self)
    }

    /// Adds tag files (`--exclude-if-present NAME[:HEADER]`): a directory
    /// holding NAME (starting with HEADER, if given) keeps only its tag
    /// files.
    pub fn with_if_present(mut self, specs: &[String]) -> Result<Excludes> {
        for spec in specs {
            let (name, header) = match spec.split_once(':') {
                Some((n, h)) => (n, Some(h.as_bytes().to_vec())),
                None => (spec.as_str(), None),
            };
            if name.is_empty() || name.contains('/') {
                return Err(Error::Usage(format!(
                    "--exclude-if-present {spec:?}: give a file name (no `/`), optionally \
                     followed by :HEADER"
                )));
            }
            self.tags.push(TagFile {
                name: name.into(),
                header,
            });
        }
        Ok(self)
    }

    /// Leaves out files larger than `limit` bytes (`--exclude-larger-than`).
    pub fn with_larger_than(mut self, limit: Option<u64>) -> Excludes {
        self.larger_than = limit;
        self
    }

    /// Whether a file of `size` bytes is left out for its size.
    pub fn too_large(&self, size: u64) -> bool {
        self.larger_than.is_some_and(|l| size > l)
    }

    /// Whether `path` (with file name `name`) is excluded.
    pub fn excluded(&self, path: &Path, name: &std::ffi::OsStr) -> bool {
        [&self.by_name, &self.iby_name]
            .into_iter()
            .flatten()
            .any(|g| g.is_match(name))
            || [&self.by_path, &self.iby_path]
                .into_iter()
                .flatten()
                .any(|g| g.is_match(path))
    }

    /// The tag files that mark `dir` as one whose contents are left out
    /// (CACHEDIR.TAG with its signature for `--exclude-caches`, and the
    /// `--exclude-if-present` files); empty when none does. The tag files
    /// themselves are kept.
    pub fn tag_files(&self, dir: &Path) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        if self.caches && starts_with(&dir.join("CACHEDIR.TAG"), CACHEDIR_SIGNATURE) {
            out.push(b"CACHEDIR.TAG".to_vec());
        }
        for t in &self.tags {
            let p = dir.join(&t.name);
            let present = match &t.header {
                Some(h) => starts_with(&p, h),
                None => std::fs::symlink_metadata(&p).is_ok(),
            };
            let name = t.name.as_bytes().to_vec();
            if present && !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_sizes_and_tag_files() {
        let e = Excludes::new(&["*.tmp".into()], &[], false, false)
            .unwrap()
            .with_iexcludes(&["*.JPG".into(), "/srv/Cache".into()], &[])
            .unwrap()
            .with_larger_than(Some(10));
        assert!(e.excluded(Path::new("/a/x.jpg"), "x.jpg".as_ref()));
        assert!(e.excluded(Path::new("/a/x.JpG"), "x.JpG".as_ref()));
        assert!(!e.excluded(Path::new("/a/x.TMP"), "x.TMP".as_ref()));
        assert!(e.excluded(Path::new("/SRV/cache/f"), "f".as_ref()));
        assert!(e.too_large(11) && !e.too_large(10));
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".nobackup"), "").unwrap();
        std::fs::write(d.path().join(".marked"), "KEEP-OUT and more").unwrap();
        let e = Excludes::default()
            .with_if_present(&[".nobackup".into(), ".marked:KEEP-OUT".into(), ".x:y".into()])
            .unwrap();
        assert_eq!(
            e.tag_files(d.path()),
            [b".nobackup".to_vec(), b".marked".to_vec()]
        );
        let e = Excludes::default()
            .with_if_present(&[".marked:OTHER".into()])
            .unwrap();
        assert!(e.tag_files(d.path()).is_empty());
        assert!(Excludes::default()
            .with_if_present(&["a/b".into()])
            .is_err());
    }

    #[test]
    fn name_and_path_patterns() {
        let e = Excludes::new(
            &["*.tmp".into(), "/srv/cache".into(), "logs/old".into()],
            &[],
            false,
            false,
        )
        .unwrap();
        assert!(e.excluded(Path::new("/a/b.tmp"), "b.tmp".as_ref()));
        assert!(!e.excluded(Path::new("/a/b.txt"), "b.txt".as_ref()));
        assert!(e.excluded(Path::new("/srv/cache"), "cache".as_ref()));
        assert!(e.excluded(Path::new("/srv/cache/x"), "x".as_ref()));
        assert!(e.excluded(Path::new("/var/logs/old"), "old".as_ref()));
        assert!(!e.excluded(Path::new("/srv/cachex"), "cachex".as_ref()));
    }
}
