//! A repository in a local directory (the default).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{BResult, Backend, BackendError, FileKind, WriteMode};

/// Objects as files below a root directory.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
}

fn io_err(what: &Path, e: io::Error) -> BackendError {
    if e.kind() == io::ErrorKind::NotFound {
        BackendError::NotFound(what.display().to_string())
    } else {
        BackendError::Io {
            what: what.display().to_string(),
            source: e,
        }
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl LocalBackend {
    /// A backend rooted at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { root: root.into() }
    }

    fn full(&self, kind: FileKind, name: &str) -> PathBuf {
        self.root.join(kind.path(name))
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn publish(&self, tmp: &Path, dest: &Path, mode: WriteMode) -> BResult<()> {
        let parent = dest.parent().expect("object paths have a parent");
        fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        match mode {
            WriteMode::Overwrite => fs::rename(tmp, dest).map_err(|e| io_err(dest, e))?,
            WriteMode::CreateNew => {
                // link() fails if dest exists: an atomic create-if-absent.
                match fs::hard_link(tmp, dest) {
                    Ok(()) => {
                        let _ = fs::remove_file(tmp);
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let _ = fs::remove_file(tmp);
                        return Err(BackendError::AlreadyExists(dest.display().to_string()));
                    }
                    Err(e) => return Err(io_err(dest, e)),
                }
            }
        }
        fsync_dir(parent).map_err(|e| io_err(parent, e))
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn exists(&self) -> BResult<bool> {
        Ok(self.root.join("config").exists())
    }

    fn create_layout(&self) -> BResult<()> {
        for d in ["keys", "data", "snapshots", "locks", "tmp"] {
            let p = self.root.join(d);
            fs::create_dir_all(&p).map_err(|e| io_err(&p, e))?;
        }
        fsync_dir(&self.root).map_err(|e| io_err(&self.root, e))
    }

    fn read(&self, kind: FileKind, name: &str) -> BResult<Vec<u8>> {
        let p = self.full(kind, name);
        let mut f = File::open(&p).map_err(|e| io_err(&p, e))?;
        let mut v = Vec::new();
        f.read_to_end(&mut v).map_err(|e| io_err(&p, e))?;
        Ok(v)
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> BResult<Vec<u8>> {
        let p = self.full(kind, name);
        let f = File::open(&p).map_err(|e| io_err(&p, e))?;
        let mut v = vec![0u8; len as usize];
        f.read_exact_at(&mut v, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                BackendError::Io {
                    what: p.display().to_string(),
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shorter than expected (truncated?)",
                    ),
                }
            } else {
                io_err(&p, e)
            }
        })?;
        Ok(v)
    }

    fn size(&self, kind: FileKind, name: &str) -> BResult<u64> {
        let p = self.full(kind, name);
        Ok(fs::metadata(&p).map_err(|e| io_err(&p, e))?.len())
    }

    fn list(&self, kind: FileKind) -> BResult<Vec<(String, u64)>> {
        let dir = self.root.join(kind.dir());
        let mut out = Vec::new();
        // Packs are one level down (`data/<2 hex>/<id>`); other kinds flat.
        let depth = if kind == FileKind::Pack { 2 } else { 1 };
        let mut stack = vec![(dir.clone(), String::new(), 1)];
        while let Some((d, rel_dir, level)) = stack.pop() {
            let rd = match fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&d, e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| io_err(&d, e))?;
                let path = ent.path();
                let ft = ent.file_type().map_err(|e| io_err(&path, e))?;
                // A name that is not UTF-8 is never an object name.
                let name = ent.file_name();
                let rel = match name.to_str() {
                    Some(n) if rel_dir.is_empty() => n.to_string(),
                    Some(n) => format!("{rel_dir}/{n}"),
                    None => {
                        super::note_ignored(path.display().to_string());
                        continue;
                    }
                };
                if ft.is_dir() && level < depth {
                    stack.push((path, rel, level + 1));
                    continue;
                }
                match kind.object_name_of(&rel) {
                    Some(n) if ft.is_file() => {
                        let len = ent.metadata().map_err(|e| io_err(&path, e))?.len();
                        out.push((n.to_string(), len));
                    }
                    _ => super::note_ignored(path.display().to_string()),
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8], mode: WriteMode) -> BResult<()> {
        let tmpd = self.tmp_dir();
        fs::create_dir_all(&tmpd).map_err(|e| io_err(&tmpd, e))?;
        let tmp = tmpd.join(format!(
            ".w-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        let res = f.write_all(data).and_then(|_| f.sync_all());
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp, e));
        }
        drop(f);
        let dest = self.full(kind, name);
        let r = self.publish(&tmp, &dest, mode);
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        match r {
            // Our own bytes already there: the write is ours (see the trait).
            Err(BackendError::AlreadyExists(_)) if fs::read(&dest).is_ok_and(|b| b == data) => {
                Ok(())
            }
            r => r,
        }
    }

    fn put_file(&self, kind: FileKind, name: &str, local: &Path) -> BResult<()> {
        let f = OpenOptions::new()
            .write(true)
            .open(local)
            .map_err(|e| io_err(local, e))?;
        f.sync_all().map_err(|e| io_err(local, e))?;
        drop(f);
        let dest = self.full(kind, name);
        if dest.exists() {
            // Same name means same bytes (content-addressed): keep the first.
            let _ = fs::remove_file(local);
            return Ok(());
        }
        self.publish(local, &dest, WriteMode::Overwrite)
    }

    fn delete(&self, kind: FileKind, name: &str) -> BResult<()> {
        let p = self.full(kind, name);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&p, e)),
        }
    }

    fn staging_dir(&self) -> Option<PathBuf> {
        Some(self.tmp_dir())
    }
}
