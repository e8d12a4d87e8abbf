//! Exclude rules: globs (`--exclude`, `--exclude-file`), caches marked with
//! CACHEDIR.TAG (`--exclude-caches`), and staying on one file system.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::{Error, Result};

/// The signature that marks a cache directory (bford.info/cachedir).
const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// Compiled exclude rules.
#[derive(Debug, Default)]
pub struct Excludes {
    by_path: Option<GlobSet>,
    by_name: Option<GlobSet>,
    caches: bool,
    /// Device to stay on, when `--one-file-system` is set (per source path).
    pub one_file_system: bool,
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
        let mut by_path = GlobSetBuilder::new();
        let mut by_name = GlobSetBuilder::new();
        let (mut np, mut nn) = (0, 0);
        for p in &all {
            let glob = |s: &str| {
                Glob::new(s).map_err(|e| Error::Usage(format!("bad exclude pattern {p:?}: {e}")))
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
        Ok(Excludes {
            by_path: build(by_path, np)?,
            by_name: build(by_name, nn)?,
            caches,
            one_file_system,
        })
    }

    /// Whether `path` (with file name `name`) is excluded.
    pub fn excluded(&self, path: &Path, name: &std::ffi::OsStr) -> bool {
        if let Some(g) = &self.by_name {
            if g.is_match(name) {
                return true;
            }
        }
        if let Some(g) = &self.by_path {
            if g.is_match(path) {
                return true;
            }
        }
        false
    }

    /// Whether a directory is a tagged cache to skip (its tag file is kept).
    pub fn is_cache_dir(&self, dir: &Path) -> bool {
        if !self.caches {
            return false;
        }
        let mut buf = [0u8; 43];
        match std::fs::File::open(dir.join("CACHEDIR.TAG")) {
            Ok(mut f) => {
                use std::io::Read;
                f.read_exact(&mut buf).is_ok() && buf[..] == CACHEDIR_SIGNATURE[..]
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
