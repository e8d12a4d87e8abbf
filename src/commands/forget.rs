//! `snap forget ID...`: removes the given snapshots; `snap forget --keep-*`
//! removes what a retention policy does not keep, among the snapshots that
//! match the filter, per group (the policy and groups of `snap prune`:
//! [`super::prune::decide`]). Their data stays until `snap prune` collects
//! what no remaining snapshot needs.
//!
//! An id names the object to delete without loading it, so a damaged
//! snapshot object (one that no longer verifies) can always be forgotten.

use serde::Serialize;

use super::prune::{self, Decision, PruneOptions};
use super::retention::{GroupBy, Policy};
use super::snapshots::{row, SnapshotRow};
use crate::format::SnapshotId;
use crate::repository::snapshots::now_ns;
use crate::repository::{Repository, SnapshotFilter};
use crate::{Error, Result};

/// A retention policy for `snap forget` (as for `snap prune`).
#[derive(Clone, Debug, Default)]
pub struct ForgetPolicy {
    /// The rules; applied to each group separately.
    pub policy: Policy,
    /// How the matching snapshots are grouped.
    pub group_by: GroupBy,
    /// Allow the policy to remove every snapshot of a group.
    pub allow_empty: bool,
}

/// What `forget` removed (or, with `dry_run`, would remove).
#[derive(Debug, Default, Serialize)]
pub struct ForgetReport {
    /// Nothing was removed: `removed` lists what would be.
    pub dry_run: bool,
    /// Removed snapshot ids.
    pub removed: Vec<String>,
    /// What each removed snapshot was (absent for a damaged object).
    pub snapshots: Vec<SnapshotRow>,
    /// Removed snapshot objects that were damaged (id: what was wrong).
    pub damaged: Vec<String>,
    /// How `latest` was resolved (another host's taken, ...).
    pub warnings: Vec<String>,
    /// With a policy: every matching snapshot with its decision, oldest
    /// first (as `snap prune --json` reports them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

/// Resolves every selector first (so a typo removes nothing), then deletes.
/// `latest` follows `filter` as every selector does, except that without
/// `--host` it is strictly this host's latest: forget never takes another
/// host's snapshot on a guess. An id must match the filter.
pub fn run(
    repo: &Repository,
    selectors: &[String],
    filter: &SnapshotFilter,
) -> Result<ForgetReport> {
    run_ids(repo, selectors, filter, false)
}

/// [`run`], or with `dry_run` only the report of what it would remove.
pub fn run_ids(
    repo: &Repository,
    selectors: &[String],
    filter: &SnapshotFilter,
    dry_run: bool,
) -> Result<ForgetReport> {
    let mut report = ForgetReport {
        dry_run,
        ..Default::default()
    };
    let mut ids: Vec<SnapshotId> = Vec::new();
    let mut rows = Vec::new();
    for sel in selectors {
        let (id, found) = if sel == "latest" {
            let mut mine = filter.clone();
            if mine.hosts.is_empty() {
                mine.hosts.push(crate::repository::open::hostname());
            }
            let s = repo.find_snapshot(sel, &mine)?;
            report.warnings.extend(s.warnings);
            (s.id, Ok(s.snapshot))
        } else {
            let id = repo.resolve_snapshot_id(sel)?;
            (id, repo.load_snapshot(&id))
        };
        if ids.contains(&id) {
            continue;
        }
        match found {
            Ok(s) => {
                if !filter.matches(&s) {
                    return Err(Error::SnapshotSelector {
                        selector: sel.clone(),
                        why: format!(
                            "snapshot {} (host {}) does not match {}",
                            id.short(),
                            s.host,
                            filter.describe()
                        ),
                    });
                }
                rows.push(row(&id, &s));
            }
            Err(Error::Corrupt { why, .. }) => {
                report.damaged.push(format!("{}: {why}", id.to_hex()))
            }
            Err(e) => return Err(e),
        }
        ids.push(id);
    }
    for id in ids {
        if !dry_run {
            repo.delete_snapshot(&id)?;
        }
        report.removed.push(id.to_hex());
    }
    report.snapshots = rows;
    Ok(report)
}

/// Applies `policy` to the snapshots matching `filter`, group by group, and
/// removes (unless `dry_run`) those no rule keeps. Refuses, changing
/// nothing, while a snapshot object is damaged (its group is unknown) or
/// when a group would be emptied without `allow_empty`.
pub fn run_policy(
    repo: &Repository,
    filter: &SnapshotFilter,
    policy: &ForgetPolicy,
    dry_run: bool,
) -> Result<ForgetReport> {
    let list = repo.list_snapshots()?;
    prune::refuse_damaged(&list)?;
    let snaps: Vec<_> = list.filtered(filter).cloned().collect();
    let opts = PruneOptions {
        policy: policy.policy.clone(),
        group_by: policy.group_by,
        allow_empty: policy.allow_empty,
        dry_run,
        gc: false,
        ..Default::default()
    };
    let decisions = prune::decide(&snaps, &opts, now_ns())?;
    let mut report = ForgetReport {
        dry_run,
        warnings: list.warnings(),
        ..Default::default()
    };
    for ((id, s), d) in snaps.iter().zip(&decisions) {
        if d.keep {
            continue;
        }
        if !dry_run {
            crate::interrupt::check()?;
            repo.delete_snapshot(id)?;
        }
        report.removed.push(id.to_hex());
        report.snapshots.push(row(id, s));
    }
    report.decisions = decisions;
    Ok(report)
}
