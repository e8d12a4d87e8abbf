//! The work of each step of a run, apart from their order (`super::run`):
//! create with the job's dumps, prune by the job's policy and
//! `min_free`, sync to one target. Each calls the command functions the
//! CLI calls and hands back an [`Outcome`] for the summary.

use std::sync::Arc;

use serde_json::json;

use super::config::{Config, Job, Keep, Program};
use super::repos::{self, Password};
use super::space;
use super::summary::StepStatus;
use crate::commands::create::{self, CreateOptions};
use crate::commands::retention::{GroupBy, Item};
use crate::commands::streams::{StreamInput, StreamSource};
use crate::commands::{forget, prune, snapshots, sync};
use crate::repository::snapshots::now_ns;
use crate::repository::{Repository, SnapshotFilter};
use crate::source::Excludes;
use crate::{Error, Result};

/// What `commands::streams` puts between a failed dump's message and
/// the tail of its stderr.
const STREAM_STDERR: &str = "; its stderr (last lines):\n";

/// What a step hands back.
pub(super) struct Outcome {
    pub(super) status: StepStatus,
    pub(super) error: Option<String>,
    pub(super) stderr_tail: Option<String>,
    pub(super) detail: serde_json::Value,
}

impl Outcome {
    pub(super) fn ok(detail: serde_json::Value) -> Outcome {
        Outcome {
            status: StepStatus::Ok,
            error: None,
            stderr_tail: None,
            detail,
        }
    }

    pub(super) fn failed(error: String, detail: serde_json::Value) -> Outcome {
        Outcome {
            status: StepStatus::Failed,
            error: Some(error),
            stderr_tail: None,
            detail,
        }
    }
}

impl From<Error> for Outcome {
    fn from(e: Error) -> Outcome {
        Outcome::failed(e.to_string(), serde_json::Value::Null)
    }
}

/// The snapshots of the job (its tag, its host), oldest first.
pub(super) fn job_filter(job: &Job) -> SnapshotFilter {
    SnapshotFilter {
        hosts: vec![job
            .host
            .clone()
            .unwrap_or_else(crate::repository::open::hostname)],
        tags: vec![vec![job.name.clone()]],
        ..Default::default()
    }
}

pub(super) fn create_step(repo: &Arc<Repository>, job: &Job) -> Result<create::CreateReport> {
    let streams = job
        .dumps
        .iter()
        .map(|d| StreamSource {
            name: d.name.clone(),
            input: StreamInput::Command(d.cmd.argv()),
            label: match &d.cmd.program {
                Program::Shell(_) => format!("sh -c {}", d.cmd.label()),
                Program::Argv(_) => d.cmd.label(),
            },
            timeout: Some(d.cmd.timeout),
        })
        .collect();
    let mut tags = vec![job.name.clone()];
    tags.extend(job.tags.iter().filter(|t| **t != job.name).cloned());
    let opts = CreateOptions {
        paths: job.paths.clone(),
        streams,
        tags,
        host: job.host.clone(),
        excludes: Excludes::new(
            &job.exclude,
            &job.exclude_file,
            job.exclude_caches,
            job.one_file_system,
        )?,
        time_ns: None,
        parent: None,
        full: false,
        threads: 0,
        dry_run: false,
        skip_if_unchanged: false,
        progress: Default::default(),
    };
    create::run(repo.clone(), opts)
}

/// Applies the job's policy to the job's snapshots only (grouped by host
/// and paths, as `snap prune` does), never removing `made`; frees what no
/// snapshot needs; then makes room for `min_free`.
pub(super) fn prune_step(repo: &Repository, job: &Job, keep: &Keep, made: &str) -> Outcome {
    match prune_policy(repo, job, keep, made) {
        Err(e) => e.into(),
        Ok(mut detail) => {
            let Some(min) = keep.min_free else {
                return Outcome::ok(detail);
            };
            match space::free_space(repo, min, made, &job_filter(job)) {
                Err(e) => Outcome::failed(e.to_string(), detail),
                Ok(r) => {
                    let error = (!r.reached).then(|| {
                        format!(
                            "keep.min_free: only {} free on the repository's file system, {} asked \
                             for; only the newest snapshot of the job is left{}",
                            human(r.free_after),
                            human(r.min_free),
                            if r.removed.is_empty() {
                                String::new()
                            } else {
                                format!(" (removed for space: {})", r.removed.join(", "))
                            }
                        )
                    });
                    detail["min_free"] = serde_json::to_value(&r).unwrap_or_default();
                    match error {
                        None => Outcome::ok(detail),
                        Some(e) => Outcome::failed(e, detail),
                    }
                }
            }
        }
    }
}

fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn prune_policy(
    repo: &Repository,
    job: &Job,
    keep: &Keep,
    made: &str,
) -> Result<serde_json::Value> {
    let rows = snapshots::run(repo, &job_filter(job))?.rows;
    let group_by = GroupBy::default();
    let mut groups: std::collections::BTreeMap<_, Vec<usize>> = Default::default();
    for (i, r) in rows.iter().enumerate() {
        groups
            .entry(group_by.key(&r.host, &r.paths, &r.tags))
            .or_default()
            .push(i);
    }
    let mut remove = Vec::new();
    if !keep.policy.is_empty() {
        for members in groups.values() {
            let items: Vec<Item> = members
                .iter()
                .map(|&i| Item {
                    time_ns: rows[i].time_ns,
                    tags: &rows[i].tags,
                })
                .collect();
            let reasons = keep.policy.apply(&items, now_ns());
            for (&i, r) in members.iter().zip(reasons) {
                if r.is_empty() && rows[i].id != made {
                    remove.push(rows[i].id.clone());
                }
            }
        }
    }
    let mut detail = json!({
        "snapshots": rows.len(),
        "removed": remove.iter().map(|id| id[..8].to_string()).collect::<Vec<_>>(),
    });
    if !remove.is_empty() {
        forget::run(repo, &remove, &SnapshotFilter::default())?;
        let gc = prune::run(repo, &prune::PruneOptions::default())?.gc;
        detail["gc"] = serde_json::to_value(gc).unwrap_or_default();
    }
    Ok(detail)
}

pub(super) fn sync_step(
    cfg: &Config,
    job: &Job,
    target: &str,
    delete: bool,
    password: &Password<'_>,
) -> Result<sync::SyncReport> {
    let src_cfg = cfg.repository(&job.repository).expect("validated");
    let dst_cfg = cfg.repository(target).expect("validated");
    let src = repos::backend(src_cfg)?;
    let dst = repos::backend(dst_cfg)?;
    let opts = sync::SyncOptions {
        verify: false,
        delete,
        connections: 4,
        state_dir: None,
        progress: Default::default(),
    };
    let unlock = |be: Box<dyn crate::backend::Backend>, config: &[u8]| -> Result<Repository> {
        let pw = password(src_cfg)?;
        Repository::open_with_config(be, config, pw.as_bytes())
    };
    sync::run(src, dst.as_ref(), &opts, &unlock)
}

/// The outcome of a failed create. A dump's error ends with the tail of
/// its stderr (`commands::streams`): that goes to its own field.
pub(super) fn create_failed(e: Error) -> Outcome {
    let text = e.to_string();
    let (msg, tail) = match text.split_once(STREAM_STDERR) {
        Some((m, t)) => (m.to_string(), Some(t.trim().to_string())),
        None => (text, None),
    };
    Outcome {
        stderr_tail: tail,
        ..Outcome::failed(msg, json!({ "snapshot_kept": false }))
    }
}
