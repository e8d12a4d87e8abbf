//! `snap forget ID...`: removes the given snapshots. Their data stays until
//! `snap prune` collects what no remaining snapshot needs.
//!
//! An id names the object to delete without loading it, so a damaged
//! snapshot object (one that no longer verifies) can always be forgotten.

use serde::Serialize;

use super::snapshots::{row, SnapshotRow};
use crate::format::SnapshotId;
use crate::repository::{Repository, SnapshotFilter};
use crate::{Error, Result};

/// What `forget` removed.
#[derive(Debug, Default, Serialize)]
pub struct ForgetReport {
    /// Removed snapshot ids.
    pub removed: Vec<String>,
    /// What each removed snapshot was (absent for a damaged object).
    pub snapshots: Vec<SnapshotRow>,
    /// Removed snapshot objects that were damaged (id: what was wrong).
    pub damaged: Vec<String>,
    /// How `latest` was resolved (another host's taken, ...).
    pub warnings: Vec<String>,
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
    let mut report = ForgetReport::default();
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
        repo.delete_snapshot(&id)?;
        report.removed.push(id.to_hex());
    }
    report.snapshots = rows;
    Ok(report)
}
