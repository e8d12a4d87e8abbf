//! Source paths read from files (restic's three forms):
//!
//! * `--files-from FILE`: one path or glob per line; surrounding blanks
//!   are trimmed, blank lines and lines starting with `#` are skipped, and
//!   each glob is expanded against the file system (sorted). A line that
//!   matches nothing is skipped with a warning (a plain path that does
//!   not exist is such a line).
//! * `--files-from-verbatim FILE`: one path per line, exactly as written
//!   (no trimming, comments or globs); only empty lines are skipped.
//! * `--files-from-raw FILE`: paths separated by NUL bytes (`find -print0`),
//!   exactly as written: any name, even one holding a newline.
//!
//! Relative paths are relative to the working directory, as on the
//! command line.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use globset::GlobBuilder;

use crate::{Error, Result};

/// Which form a list file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListForm {
    /// Lines of paths and globs, with comments.
    Globs,
    /// Lines of paths, verbatim.
    Verbatim,
    /// NUL-separated paths.
    Raw,
}

impl ListForm {
    fn flag(self) -> &'static str {
        match self {
            ListForm::Globs => "--files-from",
            ListForm::Verbatim => "--files-from-verbatim",
            ListForm::Raw => "--files-from-raw",
        }
    }
}

fn has_glob(b: &[u8]) -> bool {
    b.iter().any(|c| matches!(c, b'*' | b'?' | b'['))
}

/// Expands one glob (components with `*`, `?` or `[...]` are matched
/// against directory listings); only existing paths are returned, sorted.
fn expand(pattern: &Path, flag: &str) -> Result<Vec<PathBuf>> {
    let mut at: Vec<PathBuf> = vec![PathBuf::new()];
    for c in pattern.components() {
        let part = c.as_os_str();
        let next = match c {
            Component::Normal(n) if has_glob(n.as_bytes()) => {
                let text = n.to_string_lossy();
                let m = GlobBuilder::new(&text)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| Error::Usage(format!("{flag}: bad pattern {pattern:?}: {e}")))?
                    .compile_matcher();
                let mut out = Vec::new();
                for dir in &at {
                    let list = if dir.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        dir.as_path()
                    };
                    let Ok(rd) = std::fs::read_dir(list) else {
                        continue;
                    };
                    let mut names: Vec<_> =
                        rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
                    names.sort();
                    for name in names {
                        if m.is_match(&name) {
                            out.push(dir.join(name));
                        }
                    }
                }
                out
            }
            _ => at.iter().map(|d| d.join(part)).collect(),
        };
        at = next;
        if at.is_empty() {
            break;
        }
    }
    at.retain(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_ok());
    Ok(at)
}

/// Reads the source paths listed in `file`; returns them and the warnings
/// about lines that matched nothing.
pub fn read(file: &Path, form: ListForm) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let mut paths = Vec::new();
    let mut warnings = Vec::new();
    match form {
        ListForm::Raw => {
            for p in bytes.split(|b| *b == 0).filter(|p| !p.is_empty()) {
                paths.push(PathBuf::from(OsStr::from_bytes(p)));
            }
        }
        ListForm::Verbatim => {
            for line in bytes.split(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() {
                    paths.push(PathBuf::from(OsStr::from_bytes(line)));
                }
            }
        }
        ListForm::Globs => {
            for line in bytes.split(|b| *b == b'\n') {
                let line = line.trim_ascii();
                if line.is_empty() || line.starts_with(b"#") {
                    continue;
                }
                let pattern = Path::new(OsStr::from_bytes(line));
                let found = expand(pattern, form.flag())?;
                if found.is_empty() {
                    warnings.push(format!(
                        "{} {}: {} matches no file; skipped",
                        form.flag(),
                        file.display(),
                        crate::name_escape::escape(line)
                    ));
                }
                paths.extend(found);
            }
        }
    }
    Ok((paths, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for f in ["a.txt", "b.txt", "c.log", "sub/d.txt"] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let list = root.join("list");
        let r = root.display();
        std::fs::write(
            &list,
            format!("# comment\n\n  {r}/*.txt  \n{r}/s*/d.txt\n{r}/missing\n{r}/c.log\n"),
        )
        .unwrap();
        let (p, w) = read(&list, ListForm::Globs).unwrap();
        let want: Vec<PathBuf> = ["a.txt", "b.txt", "sub/d.txt", "c.log"]
            .iter()
            .map(|f| root.join(f))
            .collect();
        assert_eq!(p, want);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("missing"), "{w:?}");
        std::fs::write(&list, format!(" {r}/a.txt\n\n#x\n")).unwrap();
        let (p, _) = read(&list, ListForm::Verbatim).unwrap();
        assert_eq!(
            p,
            [PathBuf::from(format!(" {r}/a.txt")), PathBuf::from("#x")]
        );
        std::fs::write(&list, b"/a\nb\0/c\0\0").unwrap();
        let (p, _) = read(&list, ListForm::Raw).unwrap();
        assert_eq!(p, [PathBuf::from("/a\nb"), PathBuf::from("/c")]);
    }
}
