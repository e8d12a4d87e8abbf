//! The SFTP requests behind the backend's methods: pipelined reads and
//! writes, the temp-file-then-move upload, `mkdir -p`, directory listing.

use std::io;

use futures::stream::{self, StreamExt, TryStreamExt};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use super::{is_status, map_err, truncated, SftpBackend, PIPELINE};
use crate::backend::{BResult, BackendError, WriteMode};

/// Checks an `SSH_FXP_EXTENDED` answer that carries only a status.
fn status_ok(p: Packet) -> Result<(), SftpError> {
    match p {
        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
        Packet::Status(s) => Err(SftpError::Status(s)),
        _ => Err(SftpError::UnexpectedPacket),
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

impl SftpBackend {
    /// `mkdir -p` (a directory that exists already is fine).
    pub(super) async fn mkdir_p(&self, dir: &str) -> Result<(), SftpError> {
        let sftp = &self.conn().sftp;
        let mut cur = String::new();
        for (i, part) in dir.split('/').enumerate() {
            if i > 0 {
                cur.push('/');
            }
            cur.push_str(part);
            if part.is_empty() || part == "." || part == ".." {
                continue;
            }
            let attrs = FileAttributes {
                permissions: Some(0o700),
                ..FileAttributes::empty()
            };
            if let Err(e) = sftp.mkdir(cur.clone(), attrs).await {
                match sftp.stat(cur.clone()).await {
                    Ok(a) if a.attrs.file_type().is_dir() => {}
                    _ => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Reads exactly `len` bytes at `offset` of an open file.
    pub(super) async fn read_at(
        &self,
        handle: &str,
        offset: u64,
        len: u64,
        what: &str,
    ) -> BResult<Vec<u8>> {
        let sftp = &self.conn().sftp;
        let step = self.ext.read_len as u64;
        let pieces = (0..len.div_ceil(step)).map(|i| {
            let start = i * step;
            (offset + start, (len - start).min(step) as u32)
        });
        let mut reads = stream::iter(pieces)
            .map(|(off, n)| async move { (off, n, sftp.read(handle, off, n).await) })
            .buffered(PIPELINE);
        let mut out = Vec::with_capacity(len as usize);
        while let Some((off, n, r)) = reads.next().await {
            let mut got = match r {
                Ok(d) => d.data,
                Err(e) if is_status(&e, StatusCode::Eof) => return Err(truncated(what)),
                Err(e) => return Err(map_err(what, e)),
            };
            // A server may answer with less than asked: ask for the rest.
            while got.len() < n as usize {
                let more = got.len() as u64;
                match sftp.read(handle, off + more, n - more as u32).await {
                    Ok(d) if !d.data.is_empty() => got.extend_from_slice(&d.data),
                    Ok(_) => return Err(truncated(what)),
                    Err(e) if is_status(&e, StatusCode::Eof) => return Err(truncated(what)),
                    Err(e) => return Err(map_err(what, e)),
                }
            }
            got.truncate(n as usize);
            out.extend_from_slice(&got);
        }
        Ok(out)
    }

    /// Opens `path` for reading, runs `f` on the handle, closes it.
    pub(super) async fn with_reader<T>(
        &self,
        path: String,
        what: &str,
        f: impl AsyncFnOnce(&str) -> BResult<T>,
    ) -> BResult<T> {
        let sftp = &self.conn().sftp;
        let h = sftp
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| map_err(what, e))?
            .handle;
        let r = f(&h).await;
        let _ = sftp.close(h).await;
        r
    }

    /// Writes a new temp file (pieces from `piece(offset, len)`), flushes it
    /// to disk, and moves it to `dest`. The temp file never outlives this.
    pub(super) async fn upload(
        &self,
        len: u64,
        piece: impl Fn(u64, usize) -> io::Result<Vec<u8>>,
        dest: &str,
        mode: WriteMode,
        what: &str,
    ) -> BResult<()> {
        let sftp = &self.conn().sftp;
        let tmp = self.remote(&format!(
            "tmp/.sftp-w-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let attrs = || FileAttributes {
            permissions: Some(0o600),
            ..FileAttributes::empty()
        };
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
        let h = match sftp.open(tmp.clone(), flags, attrs()).await {
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => {
                self.mkdir_p(parent(&tmp))
                    .await
                    .map_err(|e| map_err(&tmp, e))?;
                sftp.open(tmp.clone(), flags, attrs()).await
            }
            r => r,
        }
        .map_err(|e| map_err(&tmp, e))?
        .handle;
        let step = self.ext.write_len as u64;
        let written = stream::iter((0..len.div_ceil(step)).map(|i| i * step))
            .map(|off| {
                let (h, piece, tmp) = (&h, &piece, &tmp);
                async move {
                    let n = (len - off).min(step) as usize;
                    let data = piece(off, n).map_err(|e| BackendError::Io {
                        what: what.to_string(),
                        source: e,
                    })?;
                    sftp.write(h.as_str(), off, data)
                        .await
                        .map(|_| ())
                        .map_err(|e| map_err(tmp, e))
                }
            })
            .buffer_unordered(PIPELINE)
            .try_collect::<Vec<()>>()
            .await;
        let synced = match written {
            Ok(_) if self.ext.fsync => sftp.fsync(h.as_str()).await.map(|_| ()),
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = sftp.close(h).await;
                let _ = sftp.remove(tmp.clone()).await;
                return Err(e);
            }
        };
        let closed = sftp.close(h).await.map(|_| ());
        let r = match synced.and(closed) {
            Ok(()) => self.publish(&tmp, dest, mode, what).await,
            Err(e) => Err(map_err(&tmp, e)),
        };
        if r.is_err() {
            let _ = sftp.remove(tmp).await;
        }
        r
    }

    /// Moves the finished temp file `tmp` to `dest` (see the module doc),
    /// making `dest`'s directory when it is missing.
    pub(super) async fn publish(
        &self,
        tmp: &str,
        dest: &str,
        mode: WriteMode,
        what: &str,
    ) -> BResult<()> {
        let sftp = &self.conn().sftp;
        let mut made_parent = false;
        loop {
            let r = match mode {
                WriteMode::Overwrite if self.ext.posix_rename => {
                    let arg = russh_sftp::extensions::HardlinkExtension {
                        oldpath: tmp.to_string(),
                        newpath: dest.to_string(),
                    };
                    match arg.try_into() {
                        Ok(bytes) => sftp
                            .extended("posix-rename@openssh.com", bytes)
                            .await
                            .and_then(status_ok),
                        Err(e) => Err(SftpError::from(e)),
                    }
                }
                WriteMode::Overwrite => {
                    let _ = sftp.remove(dest.to_string()).await;
                    sftp.rename(tmp, dest).await.map(|_| ())
                }
                WriteMode::CreateNew if self.ext.hardlink => {
                    let r = sftp.hardlink(tmp, dest).await.map(|_| ());
                    if r.is_ok() {
                        let _ = sftp.remove(tmp.to_string()).await;
                    }
                    r
                }
                WriteMode::CreateNew => sftp.rename(tmp, dest).await.map(|_| ()),
            };
            let e = match r {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // OpenSSH answers a refused link or rename over an existing
            // name with a generic failure: look.
            let dest_exists = sftp.lstat(dest.to_string()).await.is_ok();
            if mode == WriteMode::CreateNew && dest_exists {
                return Err(BackendError::AlreadyExists(what.to_string()));
            }
            if !dest_exists && !made_parent && is_status(&e, StatusCode::NoSuchFile) {
                made_parent = true;
                self.mkdir_p(parent(dest))
                    .await
                    .map_err(|e| map_err(what, e))?;
                continue;
            }
            return Err(map_err(what, e));
        }
    }

    /// Entries of `root/rel` (without `.` and `..`); a missing directory
    /// has none.
    pub(super) async fn read_dir(&self, rel: &str) -> BResult<Vec<(String, FileAttributes)>> {
        let sftp = &self.conn().sftp;
        let what = format!("{}/{rel}", self.url);
        let h = match sftp.opendir(self.remote(rel)).await {
            Ok(h) => h.handle,
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => return Ok(Vec::new()),
            Err(e) => return Err(map_err(&what, e)),
        };
        let mut out = Vec::new();
        let r = loop {
            match sftp.readdir(h.as_str()).await {
                Ok(name) => out.extend(
                    name.files
                        .into_iter()
                        .filter(|f| f.filename != "." && f.filename != "..")
                        .map(|f| (f.filename, f.attrs)),
                ),
                Err(e) if is_status(&e, StatusCode::Eof) => break Ok(out),
                Err(e) => break Err(map_err(&what, e)),
            }
        };
        let _ = sftp.close(h).await;
        r
    }
}
