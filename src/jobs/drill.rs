//! The restore drill (`snap verify`, and a job's `drill` step): proof
//! that a snapshot restores.
//!
//! 1. A sample of the snapshot's files (`sample`, a percentage of its
//!    files, at least one) is restored with `restore::run` into a scratch
//!    directory; restore checks every blob against its id before a byte
//!    reaches a file. Each restored file must be there with its recorded
//!    size.
//! 2. `against_source`: each restored file whose live file is unchanged
//!    since the snapshot (same size, mtime and inode) is compared with it
//!    byte for byte. This catches a snapshot that is consistent in itself
//!    but does not hold what the source holds.
//! 3. `dump_command`: every dump of the snapshot (`/.snap-streams/NAME`)
//!    is piped into the command (`SNAP_DUMP=NAME` in its environment);
//!    a non-zero exit fails the drill.
//!
//! What was verified is recorded per snapshot group (host and paths) in
//! the repository's cache (`super::coverage`), so successive drills pick
//! files not verified yet and cover the whole snapshot over time; the
//! report gives the coverage of this snapshot. A file is the same file in
//! a later snapshot when its path and content (chunk ids) are the same.
//!
//! Files whose names are not UTF-8 or hold a backslash cannot be selected
//! for restore by name; they are counted in `not_sampleable` and left out
//! of the coverage.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use serde::Serialize;

use super::config::Cmd;
use super::coverage::{self, FileKey, Record};
use super::exec::{self, Input};
use crate::commands::restore::{self, RestoreOptions};
use crate::commands::streams::STREAMS_DIR;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind};
use crate::format::{BlobId, SnapshotId};
use crate::repository::Repository;
use crate::{Error, Result};

/// How to drill.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Percentage of the snapshot's files to restore, in (0, 100].
    pub sample_pct: f64,
    /// Compare restored files with unchanged live files.
    pub against_source: bool,
    /// Pipe every dump into this command.
    pub dump_command: Option<Cmd>,
    /// Scratch directory (default: in the repository's cache; removed after).
    pub scratch: Option<PathBuf>,
}

/// Coverage of the snapshot by drills so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    /// Files verified (this run or earlier ones, same path and content).
    pub files_verified: u64,
    /// Files of the snapshot that can be sampled.
    pub files: u64,
    /// Bytes of the verified files.
    pub bytes_verified: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// `files_verified` as a percentage of `files`.
    pub files_pct: f64,
    /// `bytes_verified` as a percentage of `bytes`.
    pub bytes_pct: f64,
    /// The previous round had covered everything: this run began a new one.
    pub new_round: bool,
}

/// One dump piped into the dump command.
#[derive(Debug, Clone, Serialize)]
pub struct DumpTest {
    /// Its name.
    pub name: String,
    /// Bytes sent.
    pub bytes: u64,
    /// The command accepted it.
    pub ok: bool,
}

/// What a drill did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrillReport {
    /// The snapshot (short id).
    pub snapshot: String,
    /// Files restored this run.
    pub sampled_files: u64,
    /// Their bytes.
    pub sampled_bytes: u64,
    /// Of those, restored and checked without a problem.
    pub verified_files: u64,
    /// Compared byte for byte with their unchanged live files.
    pub compared_with_source: u64,
    /// Not compared: the live file changed (or is gone) since the snapshot.
    pub source_changed: u64,
    /// Files that cannot be selected by name (see the module docs).
    pub not_sampleable: u64,
    /// Dumps piped into the dump command.
    pub dumps: Vec<DumpTest>,
    /// Coverage after this run.
    pub coverage: Coverage,
    /// What failed, each naming the file or dump; empty when the drill passed.
    pub errors: Vec<String>,
}

/// A regular file of the snapshot.
struct FileRef {
    path: PathBuf,
    key: FileKey,
    size: u64,
    mtime_ns: i64,
    inode: u64,
}

/// Walks every regular file below `tree`; listings that cannot be read
/// are named in `errors` and skipped.
fn walk(
    repo: &Repository,
    tree: &BlobId,
    at: &Path,
    errors: &mut Vec<String>,
    f: &mut dyn FnMut(&Path, &Node),
) -> Result<()> {
    let t = match repo.load_tree(tree) {
        Ok(t) => t,
        Err(e @ (Error::Corrupt { .. } | Error::Missing { .. })) => {
            errors.push(format!(
                "{}: directory listing cannot be read: {e}",
                at.display()
            ));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for n in &t.nodes {
        crate::interrupt::check()?;
        let p = at.join(std::ffi::OsStr::from_bytes(&n.name));
        match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(sub)) => walk(repo, &sub, &p, errors, f)?,
            (NodeKind::File, _) => f(&p, n),
            _ => {}
        }
    }
    Ok(())
}

fn sampleable(p: &Path) -> Option<&str> {
    p.to_str().filter(|s| !s.contains('\\'))
}

fn is_dump(p: &Path) -> bool {
    p.starts_with(Path::new("/").join(STREAMS_DIR))
}

/// Byte-for-byte comparison of two files.
fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Removes a scratch tree, making read-only directories writable first.
fn remove_scratch(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
        return;
    }
    fn open_up(d: &Path) {
        let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700));
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    open_up(&e.path());
                }
            }
        }
    }
    open_up(dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// Drills snapshot `id` (`snap` is its object).
pub fn run(
    repo: &Repository,
    id: &SnapshotId,
    snap: &Snapshot,
    opts: &DrillOptions,
) -> Result<DrillReport> {
    let short = id.short();
    let mut report = DrillReport {
        snapshot: short.clone(),
        ..Default::default()
    };
    let record_path = coverage::path(repo.cache_dir(), &snap.host, &snap.paths);
    let mut record = Record::load(&record_path);
    let root = Path::new("/");

    // Pass 1: totals and coverage so far.
    let (mut files, mut bytes, mut unverified) = (0u64, 0u64, 0u64);
    let mut walk_errors = Vec::new();
    walk(repo, &snap.tree, root, &mut walk_errors, &mut |p, n| {
        if sampleable(p).is_none() {
            report.not_sampleable += 1;
            return;
        }
        files += 1;
        bytes += n.size;
        if !record.contains(&coverage::key(p, n)) {
            unverified += 1;
        }
    })?;
    report.errors.extend(walk_errors);
    report.coverage.files = files;
    report.coverage.bytes = bytes;
    if unverified == 0 && files > 0 {
        record.new_round();
        report.coverage.new_round = true;
        unverified = files;
    }
    let want = ((files as f64 * opts.sample_pct / 100.0).ceil() as u64)
        .clamp(u64::from(files > 0), files)
        .min(unverified);

    // Pass 2: a uniform sample of the unverified files (reservoir), and
    // the dumps.
    let mut sample: Vec<FileRef> = Vec::new();
    let mut dumps: Vec<(PathBuf, FileKey)> = Vec::new();
    let mut seen = 0u64;
    let mut rng = rand::rng();
    let mut ignored = Vec::new();
    walk(repo, &snap.tree, root, &mut ignored, &mut |p, n| {
        if sampleable(p).is_none() {
            return;
        }
        let key = coverage::key(p, n);
        if is_dump(p) && opts.dump_command.is_some() {
            dumps.push((p.to_path_buf(), key));
        }
        if record.contains(&key) {
            return;
        }
        let f = FileRef {
            path: p.to_path_buf(),
            key,
            size: n.size,
            mtime_ns: n.mtime_ns,
            inode: n.inode,
        };
        seen += 1;
        if (sample.len() as u64) < want {
            sample.push(f);
        } else {
            let j = rand::Rng::random_range(&mut rng, 0..seen);
            if j < want {
                sample[j as usize] = f;
            }
        }
    })?;
    sample.shuffle(&mut rng);
    report.sampled_files = sample.len() as u64;
    report.sampled_bytes = sample.iter().map(|f| f.size).sum();

    if !sample.is_empty() {
        restore_sample(repo, snap, &sample, opts, &mut record, &mut report)?;
    }
    if let Some(cmd) = &opts.dump_command {
        for (p, key) in &dumps {
            crate::interrupt::check()?;
            test_dump(repo, snap, &short, p, cmd, &mut report).map(|ok| {
                if ok {
                    record.insert(*key);
                }
            })?;
        }
    }

    // Coverage after this run.
    let (mut fv, mut bv) = (0u64, 0u64);
    let mut live = Vec::new();
    let mut ignored = Vec::new();
    walk(repo, &snap.tree, root, &mut ignored, &mut |p, n| {
        if sampleable(p).is_none() {
            return;
        }
        let k = coverage::key(p, n);
        live.push(k);
        if record.contains(&k) {
            fv += 1;
            bv += n.size;
        }
    })?;
    let c = &mut report.coverage;
    c.files_verified = fv;
    c.bytes_verified = bv;
    c.files_pct = pct(fv, c.files);
    c.bytes_pct = pct(bv, c.bytes);
    // The record keeps only what this snapshot holds: it stays the size
    // of one snapshot's file list.
    record.retain(&live);
    record.save(&record_path)?;
    Ok(report)
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        100.0
    } else {
        (a as f64 * 100.0 / b as f64 * 10.0).floor() / 10.0
    }
}

fn restore_sample(
    repo: &Repository,
    snap: &Snapshot,
    sample: &[FileRef],
    opts: &DrillOptions,
    record: &mut Record,
    report: &mut DrillReport,
) -> Result<()> {
    let scratch = match &opts.scratch {
        Some(s) => s.clone(),
        None => repo
            .cache_dir()
            .join(format!("drill-scratch-{}", std::process::id())),
    };
    remove_scratch(&scratch);
    let includes = sample
        .iter()
        .map(|f| globset::escape(sampleable(&f.path).expect("filtered")))
        .collect();
    let ropts = RestoreOptions {
        target: scratch.clone(),
        includes,
        excludes: Vec::new(),
        snapshot: report.snapshot.clone(),
        ..RestoreOptions::default()
    };
    let result = restore::run(repo, &snap.tree, &ropts, &mut |_| {});
    let scratch_text = scratch.display().to_string();
    let outcome = (|| -> Result<()> {
        let r = result?;
        // Restore names the files it could not restore by their place in
        // the scratch directory: name them by their path in the snapshot.
        report
            .errors
            .extend(r.errors.iter().map(|e| e.replace(&scratch_text, "")));
        for f in sample {
            crate::interrupt::check()?;
            let restored = scratch.join(f.path.strip_prefix("/").unwrap_or(&f.path));
            let p = f.path.display();
            let m = match std::fs::symlink_metadata(&restored) {
                Ok(m) if m.is_file() => m,
                Ok(_) => {
                    report
                        .errors
                        .push(format!("{p}: not restored as a regular file"));
                    continue;
                }
                Err(_) => {
                    if !r
                        .errors
                        .iter()
                        .any(|e| e.contains(&*restored.to_string_lossy()))
                    {
                        report.errors.push(format!("{p}: not restored"));
                    }
                    continue;
                }
            };
            if m.len() != f.size {
                report.errors.push(format!(
                    "{p}: restored {} bytes, the snapshot records {}",
                    m.len(),
                    f.size
                ));
                continue;
            }
            if opts.against_source && !is_dump(&f.path) {
                match std::fs::symlink_metadata(&f.path) {
                    Ok(live)
                        if live.is_file()
                            && live.len() == f.size
                            && live.ino() == f.inode
                            && live.mtime() * 1_000_000_000 + live.mtime_nsec() == f.mtime_ns =>
                    {
                        match same_bytes(&restored, &f.path) {
                            Ok(true) => report.compared_with_source += 1,
                            Ok(false) => {
                                report.errors.push(format!(
                                    "{p}: the restored file differs from the live file, which is \
                                     unchanged since the snapshot (same size, mtime and inode): \
                                     the snapshot does not hold what the source holds"
                                ));
                                continue;
                            }
                            Err(e) => {
                                report
                                    .errors
                                    .push(format!("{p}: cannot compare with the live file: {e}"));
                                continue;
                            }
                        }
                    }
                    _ => report.source_changed += 1,
                }
            }
            report.verified_files += 1;
            record.insert(f.key);
        }
        Ok(())
    })();
    remove_scratch(&scratch);
    outcome
}

/// Pipes one dump into the dump command; returns whether it passed.
fn test_dump(
    repo: &Repository,
    snap: &Snapshot,
    short: &str,
    path: &Path,
    cmd: &Cmd,
    report: &mut DrillReport,
) -> Result<bool> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let env = [
        ("SNAP_DUMP".to_string(), name.clone()),
        ("SNAP_SNAPSHOT".to_string(), short.to_string()),
    ];
    let mut feed =
        |w: &mut dyn std::io::Write| crate::commands::dump::run(repo, &snap.tree, path, short, w);
    let o = exec::run(cmd, &env, Input::Feed(&mut feed), true)?;
    let what = format!("dump {name}: drill.dump_command `{}`", cmd.label());
    let fed = o.fed.as_ref().expect("fed");
    let bytes = *fed.as_ref().unwrap_or(&0);
    let err = match (fed, o.ok) {
        (Ok(_), true) => None,
        (_, false) => Some(o.failure(&what)),
        // Damage while reading the dump, with a command that did not mind.
        (Err(e), true) => Some(format!(
            "dump {name}: cannot be read from the repository: {e}"
        )),
    };
    // The command stopped reading: the read error was a broken pipe,
    // explained by the command's own failure above.
    report.dumps.push(DumpTest {
        name,
        bytes,
        ok: err.is_none(),
    });
    if o.interrupted {
        crate::interrupt::check()?;
    }
    match err {
        None => Ok(true),
        Some(e) => {
            report.errors.push(e);
            Ok(false)
        }
    }
}
