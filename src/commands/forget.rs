//! `snap forget ID...`: removes the given snapshots. Their data stays until
//! `snap prune` collects what no remaining snapshot needs.

use serde::Serialize;

use crate::format::SnapshotId;
use crate::repository::Repository;
use crate::Result;

/// What `forget` removed.
#[derive(Debug, Default, Serialize)]
pub struct ForgetReport {
    /// Removed snapshot ids.
    pub removed: Vec<String>,
}

/// Resolves every selector first (so a typo removes nothing), then deletes.
pub fn run(repo: &Repository, selectors: &[String]) -> Result<ForgetReport> {
    let mut ids: Vec<SnapshotId> = Vec::new();
    for sel in selectors {
        let (id, _) = repo.find_snapshot(sel)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut report = ForgetReport::default();
    for id in ids {
        repo.delete_snapshot(&id)?;
        report.removed.push(id.to_hex());
    }
    Ok(report)
}
