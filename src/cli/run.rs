//! Dispatch: validated options -> command -> printed report -> exit code.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;

use super::args::{CheckArgs, Cli, Command, CreateArgs, FilterArgs, RepairCommand, RestoreArgs};
use super::output::Printer;
use super::password;
use super::{exit, usage, OrUsage};
use crate::backend;
use crate::commands::{self, check, create, restore, streams};
use crate::format::config::ChunkerParams;
use crate::repository::{InitOptions, KdfStrength, Repository, Selected, SnapshotFilter};
use crate::source::Excludes;
use crate::Error;

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    // Repository objects, caches and staging files are private to the user
    // (an existing group-readable repository keeps that: `open_repo`).
    crate::child::set_umask(0o077);
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    match parse_options(&cli.global.options) {
        Ok(o) => backend::object::set_global_options(o),
        Err(e) => {
            eprintln!("snap: {e:#}");
            return exit::USAGE;
        }
    }
    let printer = Printer {
        json: cli.global.json,
        quiet: cli.global.quiet,
        display: super::progress::Display::new(&cli.global),
    };
    if stops_cleanly(&cli.command) {
        if let Err(e) = crate::interrupt::install() {
            printer.warn(&format!("signals will end snap at once: {e}"));
        }
    }
    let result = dispatch(&cli, &printer);
    // Stray files met in the repository's directories, each named once.
    for name in backend::take_ignored() {
        printer.warn(&format!(
            "ignored {name}: not a repository object (move it out of the repository)"
        ));
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return exit::OK;
            }
            eprintln!("snap: {}", message(&e, &cli.command));
            code_for(&e)
        }
    }
}

/// Whether a command stops cleanly at SIGINT, SIGTERM or SIGHUP (exit
/// code 128 + the signal, its locks and staging files removed): the long
/// commands that have stop points (`crate::interrupt`). Every other command
/// is short, and ends at once, as the signal's default action does.
fn stops_cleanly(c: &Command) -> bool {
    matches!(
        c,
        Command::Create(_)
            | Command::Restore(_)
            | Command::Dump(_)
            | Command::Check(_)
            | Command::Prune(_)
            | Command::Sync(_)
            | Command::Copy(_)
            | Command::Run(_)
            | Command::Verify(_)
    )
}

/// Makes a path given to `--path` absolute and lexically normal, as
/// `create` records source paths.
fn normal_path(p: &Path) -> Result<String> {
    let abs = std::path::absolute(p).with_context(|| format!("--path {}", p.display()))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out.display().to_string())
}

/// The validated filter of `--host`, `--tag` and `--path`.
pub(super) fn filter_of(a: &FilterArgs) -> Result<SnapshotFilter> {
    Ok(SnapshotFilter {
        hosts: a.hosts.clone(),
        tags: a
            .tags
            .iter()
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .collect(),
        paths: a
            .paths
            .iter()
            .map(|p| normal_path(p))
            .collect::<Result<_>>()?,
        not_after_ns: None,
    })
}

/// Resolves a selector under the filter flags and says what was picked
/// (`in_json`: the command's JSON report carries the choice).
pub(super) fn select(
    repo: &Repository,
    selector: &str,
    filter: &FilterArgs,
    p: &Printer,
    in_json: bool,
) -> Result<Selected> {
    let sel = repo.find_snapshot(selector, &filter_of(filter)?)?;
    p.selected(&sel, in_json);
    Ok(sel)
}

fn parse_options(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| anyhow!("--option {kv:?}: expected KEY=VALUE"))
        })
        .collect()
}

/// The error and its causes on one line, without repeating a cause whose
/// text an outer message already includes.
fn one_line(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for c in e.chain() {
        let t = c.to_string();
        if !s.contains(&t) {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&t);
        }
    }
    s
}

/// The one-line message of a failed command: `check` does not tell its
/// user to run `check`.
fn message(e: &anyhow::Error, cmd: &Command) -> String {
    let s = one_line(e);
    match (cmd, e.downcast_ref::<Error>()) {
        (Command::Check(_), Some(inner @ (Error::Corrupt { .. } | Error::Missing { .. }))) => {
            s.replace(&inner.to_string(), &inner.without_advice())
        }
        _ => s,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn code_for(e: &anyhow::Error) -> i32 {
    if e.downcast_ref::<crate::jobs::config::ConfigError>()
        .is_some()
    {
        return exit::USAGE;
    }
    if let Some(s) = e.downcast_ref::<super::copy::SourceError>() {
        return s.code();
    }
    match e.downcast_ref::<Error>() {
        Some(Error::Usage(_)) => exit::USAGE,
        Some(Error::Interrupted { signal }) => 128 + signal,
        Some(Error::WrongPassword { .. }) => exit::WRONG_PASSWORD,
        Some(Error::NoRepository { .. }) => exit::NO_REPOSITORY,
        Some(Error::NothingMatched { .. }) => exit::USAGE,
        Some(Error::Damaged(_)) | Some(Error::Corrupt { .. }) | Some(Error::Missing { .. }) => {
            exit::DAMAGED
        }
        _ => exit::FAILURE,
    }
}

fn repo_location(cli: &Cli) -> Result<String> {
    cli.global
        .repo
        .clone()
        .ok_or_else(|| usage("no repository given: use --repo PATH or set SNAP_REPO"))
}

pub(super) fn get_password(cli: &Cli, confirm: bool) -> Result<zeroize::Zeroizing<String>> {
    password::get(
        cli.global.password_file.as_deref(),
        cli.global.password_command.as_deref(),
        confirm,
    )
}

pub(super) fn open_repo(cli: &Cli) -> Result<Arc<Repository>> {
    let loc = repo_location(cli)?;
    let be = backend::open(&loc)?;
    // A missing repository or an unknown format version is reported before
    // a password is asked for; the config is read once.
    let raw = Repository::check_format_version(be.as_ref())?;
    keep_repository_mode(&loc);
    let pw = get_password(cli, false)?;
    let repo = Repository::open_with_config(be, &raw, pw.as_bytes())?;
    if cli.global.verbose > 0 {
        for n in repo.notices() {
            eprintln!("snap: {n}");
        }
    }
    Ok(Arc::new(repo))
}

/// New objects of a local repository whose `config` is group-readable are
/// group-readable too (as an admin set it up); others stay 0600/0700.
fn keep_repository_mode(loc: &str) {
    use std::os::unix::fs::PermissionsExt;
    if backend::object::is_object_url(loc) {
        return;
    }
    if let Ok(m) = std::fs::metadata(Path::new(loc).join("config")) {
        if m.permissions().mode() & 0o040 != 0 {
            crate::child::set_umask(0o027);
        }
    }
}

fn parse_time(s: &str) -> Result<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .or_usage(|| format!("--time {s:?} is not RFC 3339 (e.g. 2026-01-31T02:00:00Z)"))?;
    Ok(t.unix_timestamp_nanos() as i64)
}

fn dispatch(cli: &Cli, p: &Printer) -> Result<i32> {
    match &cli.command {
        Command::Init(a) => {
            let loc = repo_location(cli)?;
            let be = backend::open(&loc)?;
            let pw = get_password(cli, true)?;
            if pw.is_empty() {
                bail!("refusing an empty password");
            }
            let mut opts = InitOptions {
                compression_level: a.compression,
                ..Default::default()
            };
            if let Some(avg) = a.chunk_avg_kib {
                let avg = avg * 1024;
                opts.chunker = ChunkerParams {
                    min: avg / 4,
                    avg,
                    max: avg * 8,
                    normalization: 1,
                };
            }
            let mut kdf = KdfStrength::default();
            if let Some(m) = a.kdf_memory_kib {
                kdf.m_kib = m;
            }
            if let Some(t) = a.kdf_iterations {
                kdf.t = t;
            }
            opts.kdf = kdf;
            let repo = Repository::init(be, pw.as_bytes(), &opts)?;
            p.init(&loc, &repo.config().id);
            Ok(exit::OK)
        }
        Command::Create(a) => run_create(cli, a, p),
        Command::Snapshots(a) => {
            let filter = filter_of(&a.filter)?;
            let opts = commands::snapshots::SnapshotsOptions {
                group_by: a
                    .group_by
                    .as_deref()
                    .map(commands::retention::GroupBy::parse)
                    .transpose()
                    .map_err(|e| usage(format!("--group-by: {e}")))?,
                latest: a.latest,
            };
            let repo = open_repo(cli)?;
            p.snapshots(commands::snapshots::run(&repo, &filter)?, &opts);
            Ok(exit::OK)
        }
        Command::Ls(a) => {
            let repo = open_repo(cli)?;
            let sel = select(&repo, &a.snapshot, &a.filter, p, false)?;
            let (id, s) = (sel.id, sel.snapshot);
            let mut out = p.ls_stream();
            commands::ls::run(&repo, &s.tree, a.path.as_deref(), &id.short(), &mut |e| {
                out.entry(&e)
            })?;
            out.finish();
            Ok(exit::OK)
        }
        Command::Restore(a) => run_restore(cli, a, p),
        Command::Dump(a) => super::dump::run(cli, a, p),
        Command::Check(a) => run_check(cli, a, p),
        Command::Sync(a) => {
            super::sync::run(&repo_location(cli)?, a, p, &|| get_password(cli, false))
        }
        Command::Copy(a) => super::copy::run(a, &|| open_repo(cli), p),
        Command::Run(a) => super::jobs::run(cli, a, p),
        Command::Verify(a) => super::verify::run(cli, a, p),
        Command::Schedule(a) => super::schedule::schedule(a, p),
        Command::Status(a) => super::schedule::status(a, p),
        Command::Unlock { remove_all } => {
            let repo = open_repo(cli)?;
            let r = commands::unlock::run(&repo, *remove_all)?;
            let text: Vec<String> = r
                .locks
                .iter()
                .map(|l| {
                    format!(
                        "{} locks/{} (pid {} on {}): {}",
                        if l.removed { "removed" } else { "kept" },
                        l.name,
                        l.pid,
                        l.host,
                        l.reason
                    )
                })
                .collect();
            let text = if text.is_empty() {
                "no locks".to_string()
            } else {
                text.join("\n")
            };
            p.line(&text, &serde_json::to_value(&r)?);
            Ok(exit::OK)
        }
        Command::Diff(a) => super::diff::run(a, &*open_repo(cli)?, p),
        Command::Find(a) => super::find::run(a, &*open_repo(cli)?, p),
        Command::Stats(a) => super::stats::run(a, &*open_repo(cli)?, p),
        Command::Mount(a) => super::mount::run(a, open_repo(cli)?, p),
        Command::Tag(a) => super::tag::run(a, &*open_repo(cli)?, p),
        Command::Completion(a) => super::generate::completion(a),
        Command::Man(a) => super::generate::man(a),
        Command::Forget(a) => super::prune::run_forget(a, &*open_repo(cli)?, p),
        Command::Prune(a) => super::prune::run_prune(a, &*open_repo(cli)?, p),
        Command::Repair(RepairCommand::Index) => {
            let repo = open_repo(cli)?;
            let r = repo.rebuild_index()?;
            p.repair(&r);
            Ok(
                if r.packs_damaged.is_empty() && r.packs_truncated.is_empty() {
                    exit::OK
                } else {
                    exit::DAMAGED
                },
            )
        }
        Command::Repair(RepairCommand::Packs(a)) => {
            super::repair::run_packs(a, &*open_repo(cli)?, p)
        }
        Command::Repair(RepairCommand::Snapshots(a)) => {
            super::repair::run_snapshots(a, open_repo(cli)?, p)
        }
        Command::Key(k) => super::keys::run(k, &|| open_repo(cli), p),
    }
}

/// A dump given by bare NAME lives under `/.snap-streams`.
pub(super) fn stream_path(
    repo: &Repository,
    root: &crate::format::BlobId,
    given: &Path,
    snap: &str,
) -> Result<PathBuf> {
    if given.is_absolute() || given.components().count() > 1 {
        return Ok(Path::new("/").join(given));
    }
    let in_streams = Path::new("/").join(streams::STREAMS_DIR).join(given);
    if commands::ls::find_node(repo, root, &in_streams, snap).is_ok() {
        return Ok(in_streams);
    }
    Ok(Path::new("/").join(given))
}

fn run_create(cli: &Cli, a: &CreateArgs, p: &Printer) -> Result<i32> {
    let timeout = match &a.command_timeout {
        Some(s) => {
            Some(humantime::parse_duration(s).or_usage(|| format!("--command-timeout {s:?}"))?)
        }
        None => None,
    };
    let mut streams_v = Vec::new();
    let paths = super::create_extra::source_paths(a, p)?;
    if paths.is_empty()
        && a.from_command.is_empty()
        && a.from_shell.is_empty()
        && a.stdin_name.is_none()
    {
        return Err(usage(
            "nothing to back up: give paths, --files-from, --from-command, --from-shell or --stdin-name",
        ));
    }
    for spec in &a.from_command {
        streams_v.push(streams::StreamSource::parse_command(spec, timeout)?);
    }
    for spec in &a.from_shell {
        streams_v.push(streams::StreamSource::parse_shell(spec, timeout)?);
    }
    if let Some(name) = &a.stdin_name {
        streams_v.push(streams::StreamSource::stdin(name)?);
    }
    let opts = create::CreateOptions {
        paths,
        streams: streams_v,
        tags: a.tags.clone(),
        host: a.host.clone(),
        excludes: Excludes::new(
            &a.excludes,
            &a.exclude_files,
            a.exclude_caches,
            a.one_file_system,
        )?
        .with_iexcludes(&a.iexcludes, &a.iexclude_files)?
        .with_if_present(&a.exclude_if_present)?
        .with_larger_than(
            a.exclude_larger_than
                .as_deref()
                .map(super::prune::parse_size)
                .transpose()?,
        ),
        time_ns: a.time.as_deref().map(parse_time).transpose()?,
        parent: a.parent.clone(),
        full: a.full,
        threads: a.threads,
        dry_run: a.dry_run,
        skip_if_unchanged: a.skip_if_unchanged,
        progress: Default::default(),
    };
    let repo = open_repo(cli)?;
    let report = {
        let session = p.begin("files");
        let opts = create::CreateOptions {
            progress: session.progress(),
            ..opts
        };
        create::run(repo, opts)?
    };
    if report.dry_run.is_some() || report.skipped {
        super::create_extra::print(p, &report);
    } else {
        p.create(&report);
    }
    Ok(if report.incomplete {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

fn run_restore(cli: &Cli, a: &RestoreArgs, p: &Printer) -> Result<i32> {
    let repo = open_repo(cli)?;
    let (selector, subpath) = super::restore::split_snapshot(&a.snapshot);
    let sel = select(&repo, selector, &a.filter, p, true)?;
    let (id, s) = (&sel.id, &sel.snapshot);
    if let Some(cmd) = &a.to_command {
        a.fit.check_to_command(subpath.as_deref())?;
        let [name] = a.includes.as_slice() else {
            return Err(usage(
                "--to-command needs exactly one --include naming the file to send",
            ));
        };
        let raw = crate::name_escape::unescape(name)
            .map_err(|why| usage(format!("--include {name:?}: {why}")))?;
        let path = stream_path(
            &repo,
            &s.tree,
            Path::new(std::ffi::OsStr::from_bytes(&raw)),
            &id.short(),
        )?;
        let n = streams::to_command(&repo, &s.tree, &path, &id.short(), cmd)?;
        p.line(
            &format!("sent {n} bytes of {} to the command", path.display()),
            &serde_json::json!({"bytes": n, "snapshot": Printer::selected_json(&sel)}),
        );
        return Ok(exit::OK);
    }
    let target =
        a.to.clone()
            .ok_or_else(|| usage("restore needs --to DIR (or --to-command CMD)"))?;
    let root = match &subpath {
        Some(sub) => restore::subtree(&repo, &s.tree, sub, &id.short())?,
        None => s.tree,
    };
    let opts = restore::RestoreOptions {
        target,
        includes: a.includes.clone(),
        excludes: a.excludes.clone(),
        snapshot: id.short(),
        progress: Default::default(),
        overwrite: a.fit.overwrite.into(),
        delete: a.fit.delete,
        dry_run: a.fit.dry_run,
        strip_components: a.fit.strip_components,
    };
    let mut actions = Vec::new();
    let report = {
        let session = p.begin("files");
        let progress = session.progress();
        if a.includes.is_empty() && a.excludes.is_empty() && subpath.is_none() && !a.fit.dry_run {
            // The whole snapshot: its summary says how much there is.
            let sum = &s.summary;
            progress.set_total(
                sum.files_new + sum.files_changed + sum.files_unchanged,
                sum.total_bytes,
            );
        }
        let opts = restore::RestoreOptions { progress, ..opts };
        restore::run(&repo, &root, &opts, &mut |act| {
            if p.json {
                actions.push(act);
            } else if !p.quiet {
                super::restore::print_action(&act);
            }
        })?
    };
    super::restore::print(p, &sel, &report, actions);
    Ok(if report.damaged > 0 {
        exit::DAMAGED
    } else if !report.errors.is_empty() {
        exit::FAILURE
    } else {
        exit::OK
    })
}

fn run_check(cli: &Cli, a: &CheckArgs, p: &Printer) -> Result<i32> {
    let subset = match &a.read_data_subset {
        Some(s) => {
            let v: f64 = s
                .trim_end_matches('%')
                .parse()
                .or_usage(|| format!("--read-data-subset {s:?} is not a percentage (e.g. 10%)"))?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(usage(format!(
                    "--read-data-subset {s:?}: must be more than 0% and at most 100%"
                )));
            }
            Some(v)
        }
        None => None,
    };
    let repo = open_repo(cli)?;
    let report = {
        let session = p.begin("packs");
        check::run(
            &repo,
            &check::CheckOptions {
                read_data: a.read_data,
                read_data_subset: subset,
                progress: session.progress(),
            },
        )?
    };
    p.check(&report);
    Ok(if report.errors.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
