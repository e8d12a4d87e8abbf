//! A repository on an SFTP server: `sftp://[user@]host[:port]/path`, as
//! restic's `sftp:` (one slash after the host: relative to the login
//! directory; two: an absolute path).
//!
//! SSH is russh (pure Rust, crypto by ring), SFTP russh-sftp; both are async,
//! so the backend owns a small tokio runtime and every trait method blocks
//! on it, as the object store does: nothing async leaves this module.
//! [`url`] parses the URL and options, [`connect`] opens the connection,
//! checks the host key and logs in; `transfer` holds the SFTP requests.
//!
//! Objects are files laid out as in a local repository. Writes keep the
//! local backend's guarantees as far as SFTP allows:
//! * an object is written to `tmp/.sftp-w-<pid>-<random>`, flushed to
//!   disk with `fsync@openssh.com` (when the server has it), then moved
//!   into place, so a reader sees the whole object or nothing (the name is
//!   not the local `.w-<pid>-…`: a local snap on the server would take the
//!   remote pid for a dead process of its own and remove the file);
//! * [`WriteMode::CreateNew`] moves it with `hardlink@openssh.com` (link(2)
//!   refuses an existing name) or else a plain SFTP rename, which the
//!   protocol defines as failing when the target exists;
//! * [`WriteMode::Overwrite`] moves it with `posix-rename@openssh.com`
//!   (rename(2)); a server without that extension gets a delete and a
//!   rename, which leaves a moment without the object;
//! * SFTP cannot fsync a directory: a rename is as durable as the server's
//!   file system makes it.
//!
//! Reads and writes are split into requests of the server's largest size
//! (`limits@openssh.com`, else 32 KiB) and pipelined, 16 in flight.
//! The connection is opened once; when it breaks, requests fail (the
//! command ends with a one-line error), there is no reconnecting.

pub mod connect;
mod transfer;
pub mod url;

use std::io;
use std::path::{Path, PathBuf};

use futures::stream::{self, StreamExt, TryStreamExt};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, StatusCode};

use super::{BResult, Backend, BackendError, FileKind, WriteMode};
use connect::{Connection, Extensions};
use url::{SftpOptions, SftpUrl};

/// Requests in flight for one read or write.
const PIPELINE: usize = 16;

/// Objects as files below a directory of an SFTP server.
pub struct SftpBackend {
    url: String,
    root: String,
    ext: Extensions,
    conn: Option<Connection>,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for SftpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SftpBackend({})", self.url)
    }
}

fn failed(what: &str, kind: io::ErrorKind, msg: impl Into<String>) -> BackendError {
    BackendError::Io {
        what: what.to_string(),
        source: io::Error::new(kind, msg.into()),
    }
}

fn is_status(e: &SftpError, code: StatusCode) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == code)
}

fn map_err(what: &str, e: SftpError) -> BackendError {
    let kind = match &e {
        SftpError::Status(s) => match s.status_code {
            StatusCode::NoSuchFile => return BackendError::NotFound(what.to_string()),
            StatusCode::PermissionDenied => io::ErrorKind::PermissionDenied,
            StatusCode::Eof => io::ErrorKind::UnexpectedEof,
            StatusCode::OpUnsupported => io::ErrorKind::Unsupported,
            StatusCode::NoConnection | StatusCode::ConnectionLost => {
                io::ErrorKind::ConnectionAborted
            }
            _ => io::ErrorKind::Other,
        },
        SftpError::Timeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    let text = match &e {
        // The channel is gone (russh-sftp's words for it).
        SftpError::UnexpectedBehavior(m)
            if ["session closed", "sender dropped", "SendError", "RecvError"]
                .iter()
                .any(|w| m.contains(w)) =>
        {
            format!("SFTP connection lost ({m})")
        }
        e => format!("sftp: {e}"),
    };
    failed(what, kind, text)
}

fn truncated(what: &str) -> BackendError {
    failed(
        what,
        io::ErrorKind::UnexpectedEof,
        "file shorter than expected (truncated?)",
    )
}

impl SftpBackend {
    /// Opens `url` with the `--option` pairs given on the command line.
    pub fn open(url: &str) -> BResult<SftpBackend> {
        Self::open_with(url, super::global_options())
    }

    /// Opens `url` with explicit options (`sftp.known_hosts`,
    /// `sftp.identity`; keys of other backends are ignored): connects,
    /// checks the host key, logs in.
    pub fn open_with(url: &str, options: &[(String, String)]) -> BResult<SftpBackend> {
        let shown = url.trim_end_matches('/').to_string();
        let bad = |m: String| failed(&shown, io::ErrorKind::InvalidInput, m);
        let parsed = SftpUrl::parse(url).map_err(bad)?;
        let opts = SftpOptions::from_pairs(options).map_err(bad)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("snap-sftp")
            .enable_all()
            .build()
            .map_err(|e| BackendError::Io {
                what: "tokio runtime".into(),
                source: e,
            })?;
        let conn = rt
            .block_on(connect::connect(&parsed, &opts))
            .map_err(|m| failed(&shown, io::ErrorKind::ConnectionRefused, m))?;
        Ok(SftpBackend {
            url: shown,
            root: parsed.path,
            ext: conn.ext,
            conn: Some(conn),
            rt,
        })
    }

    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("open until dropped")
    }

    fn remote(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root)
    }

    fn what(&self, kind: FileKind, name: &str) -> String {
        format!("{}/{}", self.url, kind.path(name))
    }

    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }
}

impl Drop for SftpBackend {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.sftp.close_session();
            self.rt.block_on(async {
                let bye = c.ssh.disconnect(russh::Disconnect::ByApplication, "", "en");
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), bye).await;
            });
        }
    }
}

impl Backend for SftpBackend {
    fn location(&self) -> String {
        self.url.clone()
    }

    fn exists(&self) -> BResult<bool> {
        let what = format!("{}/config", self.url);
        match self.block(self.conn().sftp.stat(self.remote("config"))) {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => Ok(false),
            Err(e) => Err(map_err(&what, e)),
        }
    }

    fn create_layout(&self) -> BResult<()> {
        self.block(async {
            for d in ["keys", "data", "snapshots", "locks", "tmp"] {
                let dir = self.remote(d);
                self.mkdir_p(&dir)
                    .await
                    .map_err(|e| map_err(&format!("{}/{d}", self.url), e))?;
            }
            Ok(())
        })
    }

    fn read(&self, kind: FileKind, name: &str) -> BResult<Vec<u8>> {
        let what = self.what(kind, name);
        let sftp = &self.conn().sftp;
        self.block(
            self.with_reader(self.remote(&kind.path(name)), &what, async |h| {
                let len = sftp
                    .fstat(h)
                    .await
                    .map_err(|e| map_err(&what, e))?
                    .attrs
                    .size
                    .unwrap_or(0);
                self.read_at(h, 0, len, &what).await
            }),
        )
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> BResult<Vec<u8>> {
        let what = self.what(kind, name);
        self.block(
            self.with_reader(self.remote(&kind.path(name)), &what, async |h| {
                self.read_at(h, offset, len, &what).await
            }),
        )
    }

    fn size(&self, kind: FileKind, name: &str) -> BResult<u64> {
        let what = self.what(kind, name);
        let a = self
            .block(self.conn().sftp.stat(self.remote(&kind.path(name))))
            .map_err(|e| map_err(&what, e))?;
        Ok(a.attrs.size.unwrap_or(0))
    }

    fn list(&self, kind: FileKind) -> BResult<Vec<(String, u64)>> {
        let top = kind.dir();
        let entries = self.block(async {
            let mut all = self.read_dir(top).await?;
            if kind == FileKind::Pack {
                // data/<2 hex>/: one listing per subdirectory, pipelined.
                let subs: Vec<String> = all
                    .iter()
                    .filter(|(_, a)| a.file_type().is_dir())
                    .map(|(n, _)| n.clone())
                    .collect();
                all.retain(|(_, a)| !a.file_type().is_dir());
                let nested: Vec<Vec<(String, FileAttributes)>> = stream::iter(subs)
                    .map(|sub| async move {
                        let inner = self.read_dir(&format!("{top}/{sub}")).await?;
                        Ok::<_, BackendError>(
                            inner
                                .into_iter()
                                .map(|(n, a)| (format!("{sub}/{n}"), a))
                                .collect(),
                        )
                    })
                    .buffer_unordered(PIPELINE)
                    .try_collect()
                    .await?;
                all.extend(nested.into_iter().flatten());
            }
            Ok::<_, BackendError>(all)
        })?;
        let mut out = Vec::new();
        for (rel, attrs) in entries {
            match kind.object_name_of(&rel) {
                Some(n) if attrs.file_type().is_file() => {
                    out.push((n.to_string(), attrs.size.unwrap_or(0)))
                }
                _ => super::note_ignored(format!("{}/{top}/{rel}", self.url)),
            }
        }
        out.sort();
        Ok(out)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8], mode: WriteMode) -> BResult<()> {
        let what = self.what(kind, name);
        let dest = self.remote(&kind.path(name));
        let piece = |off: u64, n: usize| Ok(data[off as usize..off as usize + n].to_vec());
        match self.block(self.upload(data.len() as u64, piece, &dest, mode, &what)) {
            // Our own bytes already there: the write is ours (see the trait).
            Err(BackendError::AlreadyExists(w)) => {
                if self.read(kind, name).is_ok_and(|b| b == data) {
                    Ok(())
                } else {
                    Err(BackendError::AlreadyExists(w))
                }
            }
            r => r,
        }
    }

    fn put_file(&self, kind: FileKind, name: &str, local: &Path) -> BResult<()> {
        use std::os::unix::fs::FileExt;
        let io_err = |e: io::Error| BackendError::Io {
            what: local.display().to_string(),
            source: e,
        };
        let f = std::fs::File::open(local).map_err(io_err)?;
        let len = f.metadata().map_err(io_err)?.len();
        let piece = |off: u64, n: usize| {
            let mut buf = vec![0u8; n];
            f.read_exact_at(&mut buf, off)?;
            Ok(buf)
        };
        let what = self.what(kind, name);
        let dest = self.remote(&kind.path(name));
        match self.block(self.upload(len, piece, &dest, WriteMode::CreateNew, &what)) {
            // Same name means same bytes (content-addressed): keep the first.
            Ok(()) | Err(BackendError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
        drop(f);
        let _ = std::fs::remove_file(local);
        Ok(())
    }

    fn delete(&self, kind: FileKind, name: &str) -> BResult<()> {
        match self.block(self.conn().sftp.remove(self.remote(&kind.path(name)))) {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => Ok(()),
            Err(e) => Err(map_err(&self.what(kind, name), e)),
        }
    }

    fn staging_dir(&self) -> Option<PathBuf> {
        None
    }

    fn read_gap(&self) -> u64 {
        super::REQUEST_READ_GAP
    }
}
