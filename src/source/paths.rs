//! Source paths as typed (`..`, `.`, `a/../a`, `//x`, `dir/`) -> the
//! absolute, lexically normal paths that `create` walks and records.
//!
//! Normalization is lexical, as restic's `Abs` + `Clean`: a relative path is
//! joined to the working directory (which the kernel reports with symlinks
//! resolved), `.` and empty components go, and `..` removes the component
//! before it (never above `/`). So every component of a normalized path is
//! a plain name that a tree may hold, and `..` can never reach a snapshot.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// One source path of `create`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourcePath {
    /// Absolute and lexically normal.
    pub path: PathBuf,
    /// Given with a trailing `/` (or `/.`): when the path is a symlink to a
    /// directory, back up that directory (as `ls`, `tar` and `rsync` read
    /// `link/`), not the link.
    pub follow: bool,
}

/// Normalizes `given` lexically against the working directory `cwd`.
pub fn normalize(cwd: &Path, given: &Path) -> Result<SourcePath> {
    let bytes = given.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(Error::Usage(
            "an empty source path was given; use `.` for the current directory".into(),
        ));
    }
    let follow = bytes.ends_with(b"/") || bytes.ends_with(b"/.") || bytes == b".";
    let mut path = if given.is_absolute() {
        PathBuf::from("/")
    } else {
        cwd.to_path_buf()
    };
    for c in given.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => path = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                path.pop();
            }
            Component::Normal(n) => path.push(n),
        }
    }
    // `cwd` is absolute and normal already (getcwd), but be sure.
    let mut clean = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => clean.push(n),
            Component::ParentDir => {
                clean.pop();
            }
            _ => {}
        }
    }
    Ok(SourcePath {
        path: clean,
        follow,
    })
}

/// Sorts and removes repeats (one of two equal paths that wants `follow`
/// keeps it).
pub fn dedup(mut paths: Vec<SourcePath>) -> Vec<SourcePath> {
    paths.sort();
    let mut out: Vec<SourcePath> = Vec::with_capacity(paths.len());
    for p in paths {
        match out.last_mut() {
            Some(last) if last.path == p.path => last.follow |= p.follow,
            _ => out.push(p),
        }
    }
    out
}

/// Checks that a source inside another one is reached by the enclosing
/// walk: every component between them must be a real directory (a symlink
/// there is stored as a link, and what the inner path names would be
/// missing from the snapshot).
pub fn check_nesting(paths: &[SourcePath]) -> Result<()> {
    for inner in paths {
        let Some(outer) = paths
            .iter()
            .filter(|o| o.path != inner.path && inner.path.starts_with(&o.path))
            .min_by_key(|o| o.path.components().count())
        else {
            continue;
        };
        let mut between: Vec<&Path> = inner
            .path
            .ancestors()
            .skip(1)
            .take_while(|a| *a != outer.path)
            .collect();
        between.reverse();
        if inner.follow {
            between.push(&inner.path);
        }
        for c in between {
            let m = std::fs::symlink_metadata(c).map_err(|e| Error::io(c, e))?;
            if !m.is_dir() {
                return Err(Error::Invalid(format!(
                    "{} is inside {}, but {} is not a directory (a symlink?): the backup of {} \
                     stores it as it is, not what {} names; give {} without {}, or the \
                     link's target",
                    inner.path.display(),
                    outer.path.display(),
                    c.display(),
                    outer.path.display(),
                    inner.path.display(),
                    inner.path.display(),
                    outer.path.display(),
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(cwd: &str, given: &str) -> (String, bool) {
        let s = normalize(Path::new(cwd), Path::new(given)).unwrap();
        (s.path.display().to_string(), s.follow)
    }

    #[test]
    fn lexical_forms() {
        let cwd = "/srv/app/conf";
        assert_eq!(n(cwd, ".."), ("/srv/app".into(), false));
        assert_eq!(n(cwd, "."), ("/srv/app/conf".into(), true));
        assert_eq!(n(cwd, "./x"), ("/srv/app/conf/x".into(), false));
        assert_eq!(n(cwd, "x/"), ("/srv/app/conf/x".into(), true));
        assert_eq!(n(cwd, "x/."), ("/srv/app/conf/x".into(), true));
        assert_eq!(n(cwd, "a/../a"), ("/srv/app/conf/a".into(), false));
        assert_eq!(n(cwd, "../../.."), ("/".into(), false));
        assert_eq!(n(cwd, "../../../../.."), ("/".into(), false));
        assert_eq!(
            n(cwd, "/srv/app/conf/../data"),
            ("/srv/app/data".into(), false)
        );
        assert_eq!(n(cwd, "//x"), ("/x".into(), false));
        assert_eq!(n(cwd, "/x//y///"), ("/x/y".into(), true));
        assert_eq!(n(cwd, "/"), ("/".into(), true));
        assert_eq!(n(cwd, "/.."), ("/".into(), false));
        assert!(normalize(Path::new(cwd), Path::new("")).is_err());
        for p in ["..", "a/../a", "./x", "x/..", "/a/./b/../../c"] {
            let s = normalize(Path::new(cwd), Path::new(p)).unwrap();
            assert!(
                s.path
                    .components()
                    .skip(1)
                    .all(|c| matches!(c, Component::Normal(_))),
                "{p} -> {}",
                s.path.display()
            );
        }
    }

    #[test]
    fn dedup_merges_follow() {
        let p = |s: &str, f: bool| SourcePath {
            path: s.into(),
            follow: f,
        };
        let got = dedup(vec![p("/b", false), p("/a", false), p("/b", true)]);
        assert_eq!(got, vec![p("/a", false), p("/b", true)]);
    }
}
