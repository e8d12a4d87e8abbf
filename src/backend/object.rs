//! A repository on an object store (S3 and compatible, GCS, Azure, or a
//! `file://` directory through `object_store`'s `LocalFileSystem`).
//!
//! The backend owns a small tokio runtime; every trait method blocks on it,
//! so nothing async leaves this file. It must not be called from inside an
//! async context (snap's core is synchronous, so it never is).
//!
//! Requests are bounded: a few retries with exponential backoff inside
//! `object_store` (`RetryConfig`), short connect timeouts, and one more
//! whole-object retry for uploads. A wrong credential, a missing bucket or an
//! unreachable endpoint therefore fails within seconds with one line.
//!
//! Every request made is counted ([`RequestStats`]); with the environment
//! variable `SNAP_REQUEST_LOG=FILE` each backend appends one JSON line of
//! counts to FILE when it is dropped: a documented option (docs/sync.md)
//! for measuring what a command costs on a priced object store; it changes
//! nothing else.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};

use super::{BResult, Backend, BackendError, FileKind, WriteMode};

/// Uploads larger than this use multipart upload.
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
/// Size of one multipart part (S3 requires at least 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

use super::global_options;
pub use super::set_global_options;

/// Counts of requests made by one backend (approximate HTTP requests: one per
/// operation, one per list page, parts of multipart uploads counted
/// separately; retries inside `object_store` are not counted).
#[derive(Debug, Default)]
pub struct RequestStats {
    /// GET (whole and ranged).
    pub get: AtomicU64,
    /// PUT, including multipart create/part/complete.
    pub put: AtomicU64,
    /// HEAD.
    pub head: AtomicU64,
    /// LIST pages.
    pub list: AtomicU64,
    /// DELETE.
    pub delete: AtomicU64,
    /// Payload bytes uploaded.
    pub bytes_up: AtomicU64,
    /// Payload bytes downloaded.
    pub bytes_down: AtomicU64,
}

pub use super::RequestCounts;

impl RequestStats {
    fn snapshot(&self) -> RequestCounts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RequestCounts {
            get: l(&self.get),
            put: l(&self.put),
            head: l(&self.head),
            list: l(&self.list),
            delete: l(&self.delete),
            bytes_up: l(&self.bytes_up),
            bytes_down: l(&self.bytes_down),
        }
    }
}

fn bump(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

/// Snap's own tunables (not passed to `object_store`).
#[derive(Clone, Debug)]
struct Tuning {
    retries: usize,
    retry_timeout: Duration,
    connections: usize,
    multipart_threshold: usize,
}

/// Objects below a prefix of an object store.
pub struct ObjectBackend {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    rt: tokio::runtime::Runtime,
    stats: RequestStats,
    tuning: Tuning,
}

impl std::fmt::Debug for ObjectBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectBackend({})", self.url)
    }
}

/// Whether `location` names an object store (a URL with a scheme snap
/// handles here) rather than a local path.
/// Any `scheme://` counts, so that an unsupported scheme is an error
/// rather than a local directory named `ftp:`.
pub fn is_object_url(location: &str) -> bool {
    location.split_once("://").is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    })
}

/// Flattens an error and its sources into one line, skipping sources whose
/// text the line already contains.
pub(crate) fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !t.is_empty() && !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    shorten_xml(&s)
}

/// Replaces an S3 XML error body with its `Code: Message`.
fn shorten_xml(s: &str) -> String {
    let Some(start) = s.find("<?xml").or_else(|| s.find("<Error>")) else {
        return s.to_string();
    };
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let i = s[start..].find(&open)? + start + open.len();
        let j = s[i..].find('<')? + i;
        Some(s[i..j].to_string())
    };
    let end = s[start..]
        .find("</Error>")
        .map(|i| start + i + "</Error>".len())
        .unwrap_or(s.len());
    let code = tag("Code").unwrap_or_default();
    let msg = tag("Message").unwrap_or_default();
    format!("{}{code}: {msg}{}", &s[..start], &s[end..])
}

/// A clearer message for the common configuration mistakes.
fn diagnose(line: &str) -> Option<(io::ErrorKind, &'static str)> {
    if line.contains("NoSuchBucket") {
        Some((
            io::ErrorKind::NotFound,
            "the bucket does not exist (create it first, or check the URL / AWS_ENDPOINT_URL)",
        ))
    } else if [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "403 Forbidden",
    ]
    .iter()
    .any(|k| line.contains(k))
    {
        Some((
            io::ErrorKind::PermissionDenied,
            "access denied: check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, GOOGLE_* or AZURE_* variables, or --option) and the bucket policy",
        ))
    } else if line.contains("Connection refused")
        || line.contains("dns error")
        || line.contains("timed out")
    {
        Some((
            io::ErrorKind::ConnectionRefused,
            "cannot reach the endpoint (check AWS_ENDPOINT_URL / --option endpoint=, and the network)",
        ))
    } else {
        None
    }
}

fn invalid(what: &str, msg: impl Into<String>) -> BackendError {
    BackendError::Io {
        what: what.to_string(),
        source: io::Error::new(io::ErrorKind::InvalidInput, msg.into()),
    }
}

fn map_err(what: &str, e: object_store::Error) -> BackendError {
    match e {
        object_store::Error::NotFound { .. } => BackendError::NotFound(what.to_string()),
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            BackendError::AlreadyExists(what.to_string())
        }
        other => {
            let kind = match &other {
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
                object_store::Error::NotSupported { .. }
                | object_store::Error::NotImplemented { .. } => io::ErrorKind::Unsupported,
                _ => io::ErrorKind::Other,
            };
            let line = one_line(&other);
            let (kind, text) = match diagnose(&line) {
                Some((k, hint)) => (k, format!("{hint} [{line}]")),
                None => (kind, line),
            };
            BackendError::Io {
                what: what.to_string(),
                source: io::Error::new(kind, text),
            }
        }
    }
}

/// Whether an upload error is worth one more whole-object attempt.
fn transient(e: &BackendError) -> bool {
    match e {
        BackendError::Io { source, .. } => !matches!(
            source.kind(),
            io::ErrorKind::PermissionDenied
                | io::ErrorKind::Unsupported
                | io::ErrorKind::InvalidInput
        ),
        _ => false,
    }
}

impl ObjectBackend {
    /// Opens `url` with the `--option` pairs given on the command line and
    /// the usual environment variables of each store.
    pub fn open(url: &str) -> BResult<ObjectBackend> {
        Self::open_with(url, global_options())
    }

    /// Opens `url` with explicit options (`key=value` pairs; keys are those
    /// of `object_store`'s builders, e.g. `endpoint`, `region`,
    /// `allow_http`, `timeout`, plus snap's `retries`, `retry_timeout` and
    /// `connections`).
    pub fn open_with(url: &str, options: &[(String, String)]) -> BResult<ObjectBackend> {
        // TLS by rustls with ring (see Cargo.toml); installed once per
        // process, before the first client is built.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let parsed = url::Url::parse(url).map_err(|e| invalid(url, format!("bad URL: {e}")))?;
        let mut tuning = Tuning {
            retries: 3,
            retry_timeout: Duration::from_secs(30),
            connections: 4,
            multipart_threshold: MULTIPART_THRESHOLD,
        };
        // Sensible client defaults; the user's options come after and win.
        let mut client: Vec<(String, String)> = vec![
            ("connect_timeout".into(), "5s".into()),
            ("timeout".into(), "300s".into()),
        ];
        for (k, v) in options {
            match k.as_str() {
                "retries" => {
                    tuning.retries = v
                        .parse()
                        .map_err(|_| invalid(url, format!("--option retries={v}: not a number")))?
                }
                "retry_timeout" => {
                    tuning.retry_timeout = humantime::parse_duration(v)
                        .map_err(|e| invalid(url, format!("--option retry_timeout={v}: {e}")))?
                }
                "multipart_threshold" => {
                    tuning.multipart_threshold = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n >= PART_SIZE)
                        .ok_or_else(|| {
                            invalid(
                                url,
                                format!(
                                    "--option multipart_threshold={v}: bytes, at least {PART_SIZE}"
                                ),
                            )
                        })?
                }
                "connections" => {
                    tuning.connections =
                        v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                            invalid(
                                url,
                                format!("--option connections={v}: not a positive number"),
                            )
                        })?
                }
                // For the SFTP backend (e.g. the other side of a sync).
                k if k.starts_with("sftp.") => {}
                _ => client.push((k.clone(), v.clone())),
            }
        }
        let retry = RetryConfig {
            max_retries: tuning.retries,
            retry_timeout: tuning.retry_timeout,
            ..Default::default()
        };
        let bad_key = |k: &str| {
            invalid(
                url,
                format!("unknown --option key {k:?} for a {} URL", parsed.scheme()),
            )
        };
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match parsed.scheme() {
            "s3" | "s3a" => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut b = AmazonS3Builder::from_env();
                // AWS_REGION is the common spelling; from_env reads it too,
                // but fall back to the default region.
                if std::env::var_os("AWS_REGION").is_none()
                    && std::env::var_os("AWS_DEFAULT_REGION").is_none()
                {
                    b = b.with_region("us-east-1");
                }
                // The store checks a SHA-256 of every upload (and part)
                // unless told otherwise (`--option checksum_algorithm=none`
                // for servers that reject x-amz-checksum headers).
                let user_ck = client
                    .iter()
                    .rev()
                    .find(|(k, _)| k == "checksum_algorithm" || k == "aws_checksum_algorithm")
                    .map(|(_, v)| v.to_ascii_lowercase())
                    .or_else(|| std::env::var("AWS_CHECKSUM_ALGORITHM").ok());
                if user_ck.is_none() {
                    b = b.with_config(AmazonS3ConfigKey::Checksum, "sha256");
                }
                for (k, v) in &client {
                    if matches!(v.to_ascii_lowercase().as_str(), "none" | "off")
                        && (k == "checksum_algorithm" || k == "aws_checksum_algorithm")
                    {
                        continue;
                    }
                    let key: AmazonS3ConfigKey =
                        k.to_ascii_lowercase().parse().map_err(|_| bad_key(k))?;
                    b = b.with_config(key, v.clone());
                }
                let b = b.with_url(url).with_retry(retry);
                let s = b.build().map_err(|e| map_err(url, e))?;
                (Arc::new(s), parsed.path().to_string())
            }
            "gs" => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut b = GoogleCloudStorageBuilder::from_env();
                for (k, v) in &client {
                    let key: GoogleConfigKey =
                        k.to_ascii_lowercase().parse().map_err(|_| bad_key(k))?;
                    b = b.with_config(key, v.clone());
                }
                let s = b
                    .with_url(url)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| map_err(url, e))?;
                (Arc::new(s), parsed.path().to_string())
            }
            "az" | "abfs" | "abfss" => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = MicrosoftAzureBuilder::from_env();
                for (k, v) in &client {
                    let key: AzureConfigKey =
                        k.to_ascii_lowercase().parse().map_err(|_| bad_key(k))?;
                    b = b.with_config(key, v.clone());
                }
                let s = b
                    .with_url(url)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| map_err(url, e))?;
                (Arc::new(s), parsed.path().to_string())
            }
            "file" => {
                if let Some((k, _)) = client
                    .iter()
                    .find(|(k, _)| !matches!(k.as_str(), "connect_timeout" | "timeout"))
                {
                    return Err(bad_key(k));
                }
                let dir = parsed
                    .to_file_path()
                    .map_err(|_| invalid(url, "not a local file:// path"))?;
                std::fs::create_dir_all(&dir).map_err(|e| BackendError::Io {
                    what: dir.display().to_string(),
                    source: e,
                })?;
                let s = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| map_err(url, e))?
                    .with_fsync(true)
                    .with_automatic_cleanup(true);
                (Arc::new(s), String::new())
            }
            other => return Err(invalid(url, format!("unsupported URL scheme {other:?}"))),
        };
        let prefix = ObjPath::parse(prefix.trim_matches('/'))
            .map_err(|e| invalid(url, format!("bad prefix: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("snap-objstore")
            .enable_all()
            .build()
            .map_err(|e| BackendError::Io {
                what: "tokio runtime".into(),
                source: e,
            })?;
        Ok(ObjectBackend {
            url: url.trim_end_matches('/').to_string(),
            store,
            prefix,
            rt,
            stats: RequestStats::default(),
            tuning,
        })
    }

    fn key(&self, rel: &str) -> ObjPath {
        let mut p = self.prefix.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.join(part);
        }
        p
    }

    fn what(&self, kind: FileKind, name: &str) -> String {
        format!("{}/{}", self.url, kind.path(name))
    }

    /// Requests made so far.
    pub fn counts(&self) -> RequestCounts {
        self.stats.snapshot()
    }

    /// Uploads `data` (multipart when large), bounded in parallel parts.
    async fn upload(
        &self,
        key: &ObjPath,
        data: bytes::Bytes,
        mode: PutMode,
    ) -> Result<(), object_store::Error> {
        let len = data.len() as u64;
        if data.len() <= self.tuning.multipart_threshold || mode != PutMode::Overwrite {
            bump(&self.stats.put, 1);
            let opts = PutOptions {
                mode,
                ..Default::default()
            };
            self.store
                .put_opts(key, PutPayload::from(data), opts)
                .await?;
            bump(&self.stats.bytes_up, len);
            return Ok(());
        }
        bump(&self.stats.put, 1); // create
        let upload = self.store.put_multipart(key).await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut rest = data;
        while !rest.is_empty() {
            let n = rest.len().min(PART_SIZE);
            let part = rest.split_to(n);
            if let Err(e) = w.wait_for_capacity(self.tuning.connections).await {
                let _ = w.abort().await;
                return Err(e);
            }
            bump(&self.stats.put, 1);
            w.put(part);
        }
        bump(&self.stats.put, 1); // complete
        w.finish().await?;
        bump(&self.stats.bytes_up, len);
        Ok(())
    }

    /// Uploads with one more whole-object attempt (after a backoff) on a
    /// transient failure, then checks the stored size with a HEAD.
    fn put_verified(
        &self,
        kind: FileKind,
        name: &str,
        data: bytes::Bytes,
        mode: WriteMode,
    ) -> BResult<()> {
        let key = self.key(&kind.path(name));
        let what = self.what(kind, name);
        let pmode = match mode {
            WriteMode::CreateNew => PutMode::Create,
            WriteMode::Overwrite => PutMode::Overwrite,
        };
        let len = data.len() as u64;
        let mut delay = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = self
                .rt
                .block_on(self.upload(&key, data.clone(), pmode.clone()))
                .map_err(|e| map_err(&what, e));
            match r {
                Ok(()) => break,
                Err(e) if attempt < 3 && transient(&e) => {
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                // A create-if-absent whose first attempt landed but whose
                // answer was lost is retried (here or inside object_store)
                // and finds the object: when it holds exactly our bytes, the
                // write is ours.
                Err(BackendError::AlreadyExists(w)) => {
                    if mode == WriteMode::CreateNew
                        && self.read(kind, name).ok().as_deref() == Some(&data[..])
                    {
                        return Ok(());
                    }
                    return Err(BackendError::AlreadyExists(w));
                }
                Err(e) => return Err(e),
            }
        }
        if len > self.tuning.multipart_threshold as u64 {
            // Large uploads are checked: the store must report all bytes.
            let got = self.head_size(&key, &what)?;
            if got != len {
                return Err(BackendError::Io {
                    what,
                    source: io::Error::other(format!(
                        "upload incomplete: store reports {got} bytes, sent {len}"
                    )),
                });
            }
        }
        Ok(())
    }

    fn head_size(&self, key: &ObjPath, what: &str) -> BResult<u64> {
        bump(&self.stats.head, 1);
        let meta = self
            .rt
            .block_on(self.store.head(key))
            .map_err(|e| map_err(what, e))?;
        Ok(meta.size)
    }

    /// Checks that the bucket (container) answers, for a clear error when
    /// it is missing or the credentials are refused.
    fn probe(&self) -> BResult<()> {
        bump(&self.stats.list, 1);
        let prefix = if self.prefix.as_ref().is_empty() {
            None
        } else {
            Some(&self.prefix)
        };
        match self.rt.block_on(self.store.list_with_delimiter(prefix)) {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Err(BackendError::Io {
                what: self.url.clone(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "the bucket (container) does not exist; create it first",
                ),
            }),
            Err(e) => Err(map_err(&self.url, e)),
        }
    }
}

impl Drop for ObjectBackend {
    fn drop(&mut self) {
        if let Some(path) = std::env::var_os("SNAP_REQUEST_LOG") {
            let c = self.counts();
            let line = serde_json::json!({
                "location": self.url,
                "pid": std::process::id(),
                "requests": c.total(),
                "counts": c,
            });
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(PathBuf::from(path))
            {
                use std::io::Write;
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

impl Backend for ObjectBackend {
    fn location(&self) -> String {
        self.url.clone()
    }

    fn exists(&self) -> BResult<bool> {
        let key = self.key("config");
        match self.head_size(&key, &format!("{}/config", self.url)) {
            Ok(_) => Ok(true),
            Err(BackendError::NotFound(_)) => {
                // Tell "no repository here" from "no such bucket".
                self.probe()?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn create_layout(&self) -> BResult<()> {
        // Object stores have no directories; make sure the bucket answers.
        self.probe()
    }

    fn read(&self, kind: FileKind, name: &str) -> BResult<Vec<u8>> {
        let key = self.key(&kind.path(name));
        let what = self.what(kind, name);
        bump(&self.stats.get, 1);
        let b = self
            .rt
            .block_on(async { self.store.get(&key).await?.bytes().await })
            .map_err(|e| map_err(&what, e))?;
        bump(&self.stats.bytes_down, b.len() as u64);
        Ok(b.to_vec())
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> BResult<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let key = self.key(&kind.path(name));
        let what = self.what(kind, name);
        bump(&self.stats.get, 1);
        let b = self
            .rt
            .block_on(self.store.get_range(&key, offset..offset + len))
            .map_err(|e| map_err(&what, e))?;
        bump(&self.stats.bytes_down, b.len() as u64);
        if b.len() as u64 != len {
            return Err(BackendError::Io {
                what,
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "object shorter than expected (truncated?)",
                ),
            });
        }
        Ok(b.to_vec())
    }

    fn size(&self, kind: FileKind, name: &str) -> BResult<u64> {
        let key = self.key(&kind.path(name));
        self.head_size(&key, &self.what(kind, name))
    }

    fn list(&self, kind: FileKind) -> BResult<Vec<(String, u64)>> {
        let dir = self.key(kind.dir());
        let what = format!("{}/{}", self.url, kind.dir());
        let mut skipped = Vec::new();
        let metas = self
            .rt
            .block_on(async {
                let mut s = self.store.list(Some(&dir));
                let mut out = Vec::new();
                while let Some(m) = s.next().await {
                    match m {
                        Ok(m) => out.push(m),
                        // A file the store cannot name (the `file://`
                        // store and a name that is not UTF-8): not ours.
                        Err(object_store::Error::InvalidPath { source }) => {
                            skipped.push(source.to_string())
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok::<_, object_store::Error>(out)
            })
            .map_err(|e| map_err(&what, e));
        let metas = match metas {
            Ok(m) => m,
            Err(BackendError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        bump(&self.stats.list, (metas.len() as u64).div_ceil(1000).max(1));
        for s in skipped {
            super::note_ignored(format!("{what}: {s}"));
        }
        let base = format!("{}/", dir.as_ref());
        let mut out = Vec::new();
        for m in metas {
            let key = m.location.as_ref();
            let rel = key.strip_prefix(base.as_str()).unwrap_or(key);
            match kind.object_name_of(rel) {
                Some(name) => out.push((name.to_string(), m.size)),
                None if super::is_upload_in_progress(rel) => {}
                None => super::note_ignored(format!("{what}/{rel}")),
            }
        }
        out.sort();
        Ok(out)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8], mode: WriteMode) -> BResult<()> {
        self.put_verified(kind, name, bytes::Bytes::copy_from_slice(data), mode)
    }

    fn put_file(&self, kind: FileKind, name: &str, local: &Path) -> BResult<()> {
        let io_err = |e: io::Error| BackendError::Io {
            what: local.display().to_string(),
            source: e,
        };
        let mut f = std::fs::File::open(local).map_err(io_err)?;
        let mut buf = Vec::with_capacity(f.metadata().map(|m| m.len() as usize).unwrap_or(0));
        f.read_to_end(&mut buf).map_err(io_err)?;
        drop(f);
        // Content-addressed: overwriting an existing pack writes the same bytes.
        self.put_verified(kind, name, bytes::Bytes::from(buf), WriteMode::Overwrite)?;
        let _ = std::fs::remove_file(local);
        Ok(())
    }

    fn delete(&self, kind: FileKind, name: &str) -> BResult<()> {
        let key = self.key(&kind.path(name));
        bump(&self.stats.delete, 1);
        match self.rt.block_on(self.store.delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err(&self.what(kind, name), e)),
        }
    }

    fn staging_dir(&self) -> Option<PathBuf> {
        None
    }

    fn read_gap(&self) -> u64 {
        super::REQUEST_READ_GAP
    }

    fn request_counts(&self) -> Option<RequestCounts> {
        Some(self.counts())
    }
}
