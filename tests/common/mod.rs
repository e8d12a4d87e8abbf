//! Shared helpers of the integration tests: a repository in a temp dir
//! driven through the real `snap` binary, fixture builders, and a
//! comparison of two directory trees (content and metadata).

#![allow(dead_code)]

pub mod walk;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::Value;

/// The password of every test repository.
pub const PASSWORD: &str = "test password";

/// The binary under test.
pub fn snap_bin() -> &'static str {
    env!("CARGO_BIN_EXE_snap")
}

/// Whether the tests run as root (ownership, devices, unreadable files).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A temp dir holding a repository (`repo/`) and whatever a test puts beside
/// it. Every `snap` run through an `Env` uses this client's own cache
/// directory (`SNAP_CACHE_DIR`, where the index lives) inside the temp dir;
/// [`Env::client`] gives a second client of the same repository with
/// another cache, like a second machine.
pub struct Env {
    pub tmp: Arc<tempfile::TempDir>,
    pub repo: PathBuf,
    /// This client's `SNAP_CACHE_DIR`.
    pub cache: PathBuf,
    /// Extra environment of every run (e.g. an S3 endpoint and credentials).
    pub vars: Vec<(String, String)>,
    /// The repository id, from `init`.
    pub id: String,
}

impl Env {
    /// A fresh repository with small chunks (avg 64 KiB, max 512 KiB) and a
    /// cheap KDF.
    pub fn new() -> Env {
        Env::with_init_args(&["--chunk-avg-kib", "64"])
    }

    /// A fresh repository initialised with extra `init` flags.
    pub fn with_init_args(extra: &[&str]) -> Env {
        Env::init_at(|t| t.join("repo").display().to_string(), Vec::new(), extra)
    }

    /// A fresh repository at `location(temp dir)` (a path or URL), with
    /// extra environment for every run (e.g. an S3 endpoint) and extra
    /// `init` flags.
    pub fn init_at(
        location: impl FnOnce(&Path) -> String,
        vars: Vec<(String, String)>,
        extra: &[&str],
    ) -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("snap-test-")
            .tempdir()
            .unwrap();
        let repo = PathBuf::from(location(tmp.path()));
        let cache = tmp.path().join("cache");
        let mut env = Env {
            tmp: Arc::new(tmp),
            repo,
            cache,
            vars,
            id: String::new(),
        };
        let mut args = vec!["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"];
        args.extend_from_slice(extra);
        let r = env.json(&args);
        env.id = r["id"].as_str().expect("init reports the id").to_string();
        env
    }

    /// A path inside the temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Another client of the same repository, with its own cache directory
    /// (`cache-NAME` in the temp dir): what a second machine sees.
    pub fn client(&self, name: &str) -> Env {
        Env {
            tmp: self.tmp.clone(),
            repo: self.repo.clone(),
            cache: self.tmp.path().join(format!("cache-{name}")),
            vars: self.vars.clone(),
            id: self.id.clone(),
        }
    }

    /// The same client (same cache) on another repository location, e.g. a
    /// `file://` URL or a read-only mount of the same directory.
    pub fn at(&self, repo: impl Into<PathBuf>) -> Env {
        Env {
            tmp: self.tmp.clone(),
            repo: repo.into(),
            cache: self.cache.clone(),
            vars: self.vars.clone(),
            id: self.id.clone(),
        }
    }

    /// This client's cache directory of the repository (holding the index).
    pub fn cache_dir(&self) -> PathBuf {
        self.cache.join(&self.id)
    }

    /// This client's index database file.
    pub fn index_file(&self) -> PathBuf {
        self.cache_dir().join("index.sqlite")
    }

    /// `snap` with this repository and password in its environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(snap_bin());
        c.env_remove("SNAP_PASSWORD_FILE")
            .env_remove("SNAP_PASSWORD_COMMAND")
            .env("SNAP_REPO", &self.repo)
            .env("SNAP_PASSWORD", PASSWORD)
            .env("SNAP_CACHE_DIR", &self.cache)
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs `snap ARGS` and returns its output, whatever the exit code.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd().args(args).output().expect("snap runs")
    }

    /// Runs `snap ARGS`, asserts success, returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(&args);
        assert_success(&out, &format!("snap {args:?}"));
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs `snap --json ARGS`, asserts success, parses stdout.
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<OsString> = vec!["--json".into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON {out:?}: {e}"))
    }

    /// `snap --json create PATHS... EXTRA...`, asserting exit 0; the report.
    pub fn create(&self, paths: &[&Path], extra: &[&str]) -> Value {
        let mut args: Vec<OsString> = vec!["create".into()];
        args.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
        args.extend(extra.iter().map(OsString::from));
        self.json(&args)
    }

    /// `snap restore SNAP --to DIR`, asserting exit 0.
    pub fn restore(&self, snap: &str, to: &Path) {
        self.ok([
            OsStr::new("restore"),
            OsStr::new(snap),
            OsStr::new("--to"),
            to.as_os_str(),
        ]);
    }

    /// Names of the files under `data/`, with sizes, largest first.
    pub fn packs(&self) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        for d in fs::read_dir(self.repo.join("data")).unwrap() {
            let d = d.unwrap().path();
            if !d.is_dir() {
                continue;
            }
            for f in fs::read_dir(&d).unwrap() {
                let f = f.unwrap();
                out.push((f.path(), f.metadata().unwrap().len()));
            }
        }
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Snapshot ids, oldest first.
    pub fn snapshot_ids(&self) -> Vec<String> {
        self.json(["snapshots"])
            .as_array()
            .expect("snapshots array")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_string())
            .collect()
    }
}

/// Panics with the command's output unless it exited 0.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Exit code (panics when killed by a signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

/// Where `src` (absolute) lands inside a restore target.
pub fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").expect("absolute source"))
}

/// Deterministic pseudo-random bytes (xorshift; incompressible enough
/// for zstd and distinct per seed).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Writes a file with `len` pseudo-random bytes.
pub fn write_random(path: &Path, seed: u64, len: usize) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    let mut f = fs::File::create(path).unwrap();
    // In pieces, so large files do not need one large buffer.
    let mut left = len;
    let mut piece = 0u64;
    while left > 0 {
        let n = left.min(1 << 20);
        f.write_all(&random_bytes(seed ^ (piece << 32), n)).unwrap();
        left -= n;
        piece += 1;
    }
}

/// Sets a file's (or symlink's own) mtime, with nanoseconds.
pub fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    let t = filetime::FileTime::from_unix_time(secs, nanos);
    filetime::set_symlink_file_times(path, t, t).unwrap();
}

/// Creates a FIFO.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o640) };
    assert_eq!(r, 0, "mkfifo {}", path.display());
}

/// Sets permission bits exactly.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// What the comparison looks at for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    pub size: u64,
    pub content: Option<String>,
    pub link: Option<OsString>,
    pub xattrs: Vec<(OsString, Vec<u8>)>,
    pub rdev: u64,
    pub nlink: u64,
    /// For the second and later names of a hard-linked inode: the first name.
    pub hardlink_of: Option<PathBuf>,
}

fn kind(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "chardev"
    } else if ft.is_block_device() {
        "blockdev"
    } else if ft.is_socket() {
        "socket"
    } else {
        "file"
    }
}

/// Every entry below `root` (root itself as ""), by relative path.
pub fn scan(root: &Path) -> BTreeMap<PathBuf, Meta> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    scan_into(root, Path::new(""), &mut out, &mut inodes);
    out
}

fn scan_into(
    root: &Path,
    rel: &Path,
    out: &mut BTreeMap<PathBuf, Meta>,
    inodes: &mut BTreeMap<(u64, u64), PathBuf>,
) {
    let path = root.join(rel);
    let m = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let k = kind(m.file_type());
    let content = (k == "file").then(|| {
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        blake3::hash(&bytes).to_hex().to_string()
    });
    let link = (k == "symlink").then(|| fs::read_link(&path).unwrap().into_os_string());
    let mut xattrs = Vec::new();
    if k != "symlink" {
        if let Ok(names) = xattr::list(&path) {
            for n in names {
                if let Ok(Some(v)) = xattr::get(&path, &n) {
                    xattrs.push((n, v));
                }
            }
        }
        xattrs.sort();
    }
    let hardlink_of = if k == "file" && m.nlink() > 1 {
        match inodes.get(&(m.dev(), m.ino())) {
            Some(first) => Some(first.clone()),
            None => {
                inodes.insert((m.dev(), m.ino()), rel.to_path_buf());
                None
            }
        }
    } else {
        None
    };
    out.insert(
        rel.to_path_buf(),
        Meta {
            kind: k,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            mtime: (m.mtime(), m.mtime_nsec()),
            size: if k == "file" { m.len() } else { 0 },
            content,
            link,
            xattrs,
            rdev: m.rdev(),
            nlink: if k == "file" { m.nlink() } else { 0 },
            hardlink_of,
        },
    );
    if k == "dir" {
        let mut names: Vec<OsString> = fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            scan_into(root, &rel.join(n), out, inodes);
        }
    }
}

/// Asserts that two trees hold the same entries with the same content and
/// metadata; the message lists every difference.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let a = scan(expected);
    let b = scan(actual);
    let mut diffs = Vec::new();
    for (p, ma) in &a {
        match b.get(p) {
            None => diffs.push(format!("missing: {}", p.display())),
            Some(mb) if mb != ma => diffs.push(format!(
                "differs: {}\n  want {ma:?}\n  got  {mb:?}",
                p.display()
            )),
            _ => {}
        }
    }
    for p in b.keys() {
        if !a.contains_key(p) {
            diffs.push(format!("extra: {}", p.display()));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differs from {}:\n{}",
        actual.display(),
        expected.display(),
        diffs.join("\n")
    );
}

/// Every file below `root` as (relative path, size, mtime, content hash): to
/// show that a command changed nothing in a repository.
pub fn fingerprint(root: &Path) -> BTreeMap<PathBuf, (u64, i64, i64, String)> {
    scan(root)
        .into_iter()
        .map(|(p, m)| {
            (
                p,
                (m.size, m.mtime.0, m.mtime.1, m.content.unwrap_or_default()),
            )
        })
        .collect()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a u64 field of a JSON object, or panics naming it.
pub fn num(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric {field:?} in {v}"))
}

/// Files of a directory whose names start with `prefix` (e.g. leftovers in `tmp/`).
pub fn files_starting(dir: &Path, prefix: &str) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The names a snapshot `ls --json` lists, as paths.
pub fn ls_paths(env: &Env, snap: &str) -> Vec<String> {
    env.json(["ls", snap])
        .as_array()
        .expect("ls array")
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

/// Bytes of a name as OsStr (for non-UTF-8 names).
pub fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// A name in the escaped form `ls` shows (docs/names.md), written here from
/// that description: printable UTF-8 as it is, `\\`, `\n`, `\t`, and
/// `\xHH` for each byte of invalid UTF-8, of a control character or of a
/// character that reorders or breaks lines.
pub fn escaped(name: &[u8]) -> String {
    let mut out = String::new();
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            let hidden = c.is_control()
                || matches!(
                    c as u32,
                    0x200e | 0x200f | 0x202a..=0x202e | 0x2028 | 0x2029
                )
                || matches!(c as u32, 0x2066..=0x2069 | 0xfeff);
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if hidden => {
                    for b in c.to_string().bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Flips one byte (XOR 0x5a) of a stored object at `at`, as a failing disk
/// or a tamperer would.
pub fn flip_byte(path: &Path, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, at).unwrap();
}
