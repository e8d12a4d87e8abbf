//! `snap copy --from-repo OTHER [SNAPSHOT...]`: flags, the source's
//! password and printing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::Args;
use zeroize::Zeroizing;

use super::args::FilterArgs;
use super::output::{human, Printer};
use super::{exit, password, usage};
use crate::backend;
use crate::commands::copy::{self, CopyOptions};
use crate::format::snapshot::Snapshot;
use crate::format::SnapshotId;
use crate::repository::Repository;

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Snapshots to copy: ids (prefixes) or `latest`. Default: every
    /// snapshot of the source that matches the filters.
    pub snapshots: Vec<String>,
    /// The repository to copy from (a directory or an object-store URL).
    #[arg(long, value_name = "REPO", env = "SNAP_FROM_REPO")]
    pub from_repo: Option<String>,
    /// Read the source's password from this file (first line)
    /// [env: SNAP_FROM_PASSWORD_FILE, after SNAP_FROM_PASSWORD].
    #[arg(long, value_name = "FILE", conflicts_with = "from_password_command")]
    pub from_password_file: Option<PathBuf>,
    /// Run this shell command and use its first output line as the
    /// source's password [env: SNAP_FROM_PASSWORD_COMMAND, last].
    #[arg(long, value_name = "CMD")]
    pub from_password_command: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Commit the snapshots copied so far after this many new bytes
    /// (default: the target's pack size; lower only for tests).
    #[arg(long, hide = true, value_name = "BYTES", default_value_t = 0)]
    pub commit_every: u64,
}

/// The source repository cannot be opened: the message names the
/// source's options (not --repo's), and the exit code is the one of the
/// same failure of --repo.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Exit code 12.
    #[error(
        "wrong password for the source repository {0}: no key there opens with it \
         (check SNAP_FROM_PASSWORD / --from-password-file / --from-password-command)"
    )]
    WrongPassword(String),
    /// Exit code 10.
    #[error("no snap repository at {0}: check --from-repo / SNAP_FROM_REPO")]
    NoRepository(String),
}

impl SourceError {
    /// The process exit code.
    pub fn code(&self) -> i32 {
        match self {
            SourceError::WrongPassword(_) => exit::WRONG_PASSWORD,
            SourceError::NoRepository(_) => exit::NO_REPOSITORY,
        }
    }
}

fn env_var(name: &str) -> Option<Zeroizing<String>> {
    std::env::var(name).ok().map(Zeroizing::new)
}

/// The source's password, in the order of the repository's own
/// (`cli::password::get`) with the `FROM` names: `--from-password-file`
/// or `--from-password-command`, then SNAP_FROM_PASSWORD,
/// SNAP_FROM_PASSWORD_FILE, SNAP_FROM_PASSWORD_COMMAND, then a prompt on a
/// terminal. Never taken from argv; an empty password is refused.
fn source_password(a: &CopyArgs) -> Result<Zeroizing<String>> {
    if let Some(f) = &a.from_password_file {
        return password::from_file(f);
    }
    if let Some(cmd) = &a.from_password_command {
        return password::from_command(cmd, "--from-password-command");
    }
    if let Some(p) = env_var("SNAP_FROM_PASSWORD") {
        if p.is_empty() {
            bail!("SNAP_FROM_PASSWORD is set but empty: unset it or give the source's password");
        }
        return Ok(p);
    }
    if let Some(f) = std::env::var_os("SNAP_FROM_PASSWORD_FILE") {
        return password::from_file(Path::new(&f));
    }
    if let Some(cmd) = env_var("SNAP_FROM_PASSWORD_COMMAND") {
        return password::from_command(&cmd, "SNAP_FROM_PASSWORD_COMMAND");
    }
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let p = Zeroizing::new(rpassword::prompt_password("source repository password: ")?);
        if p.is_empty() {
            bail!("refusing an empty password");
        }
        return Ok(p);
    }
    bail!(
        "no password for the source repository: set SNAP_FROM_PASSWORD, \
         SNAP_FROM_PASSWORD_FILE / --from-password-file, or --from-password-command"
    )
}

fn open_source(loc: &str, a: &CopyArgs) -> Result<Repository> {
    let be = backend::open(loc)?;
    let raw = match Repository::check_format_version(be.as_ref()) {
        Err(crate::Error::NoRepository { repo }) => {
            return Err(SourceError::NoRepository(repo).into())
        }
        r => r?,
    };
    let pw = source_password(a)?;
    match Repository::open_with_config(be, &raw, pw.as_bytes()) {
        Err(crate::Error::WrongPassword { repo }) => Err(SourceError::WrongPassword(repo).into()),
        r => Ok(r?),
    }
}

/// The source snapshots to copy, oldest first.
fn chosen(src: &Repository, a: &CopyArgs, p: &Printer) -> Result<Vec<(SnapshotId, Snapshot)>> {
    if a.snapshots.is_empty() {
        let filter = super::run::filter_of(&a.filter)?;
        let list = src.list_snapshots()?;
        for w in list.warnings() {
            p.warn(&w);
        }
        return Ok(list.filtered(&filter).cloned().collect());
    }
    let mut out: Vec<(SnapshotId, Snapshot)> = Vec::new();
    for sel in &a.snapshots {
        let s = super::run::select(src, sel, &a.filter, p, true)?;
        if !out.iter().any(|(id, _)| *id == s.id) {
            out.push((s.id, s.snapshot));
        }
    }
    out.sort_by(|x, y| x.1.time_ns.cmp(&y.1.time_ns).then(x.0.cmp(&y.0)));
    Ok(out)
}

/// Runs `snap copy`; `open_target` opens --repo (the password of the
/// repository itself).
pub fn run(
    a: &CopyArgs,
    open_target: &dyn Fn() -> Result<Arc<Repository>>,
    p: &Printer,
) -> Result<i32> {
    let from = a
        .from_repo
        .as_deref()
        .ok_or_else(|| usage("copy needs --from-repo REPO (or SNAP_FROM_REPO)"))?;
    let target = open_target()?;
    let source = open_source(from, a)?;
    let snaps = chosen(&source, a, p)?;
    let session = p.begin("files");
    let r = copy::run(
        &source,
        target,
        &snaps,
        &CopyOptions {
            threads: a.threads,
            commit_every_bytes: a.commit_every,
            progress: session.progress(),
        },
    )?;
    drop(session);
    if p.json {
        p.emit_json(&r);
        return Ok(exit::OK);
    }
    if !p.quiet {
        for s in &r.snapshots {
            say!(
                "{} {} -> {} ({} {} {})",
                if s.status == "copied" {
                    "copied "
                } else {
                    "present"
                },
                &s.source_id[..8],
                &s.target_id[..8],
                s.time.get(..19).unwrap_or(&s.time).replace('T', " "),
                s.host,
                s.paths.join(" ")
            );
        }
        say!(
            "{} of {} snapshots copied from {} ({} already present); read {} in {} blobs, \
             added {} in {} blobs, {} packs",
            r.copied,
            r.snapshots.len(),
            r.source,
            r.already_present,
            human(r.bytes_read),
            r.data_blobs_read + r.trees_read,
            human(r.bytes_added),
            r.blobs_added,
            r.packs_added
        );
    }
    Ok(exit::OK)
}
