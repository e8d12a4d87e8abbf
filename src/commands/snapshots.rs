//! `snap snapshots`: the list of snapshots, filtered like every selector.

use serde::Serialize;

use crate::format::snapshot::{Snapshot, Summary};
use crate::format::SnapshotId;
use crate::repository::snapshots::{now_ns, FUTURE_TOLERANCE_NS};
use crate::repository::{Repository, SnapshotFilter};
use crate::Result;

/// One row of `snap snapshots`.
#[derive(Debug, Serialize)]
pub struct SnapshotRow {
    /// Full id.
    pub id: String,
    /// Short id (8 hex).
    pub short_id: String,
    /// Time, RFC 3339 UTC.
    pub time: String,
    /// Time, ns since the epoch.
    pub time_ns: i64,
    /// Dated ahead of this machine's clock (`latest` passes it over).
    pub future: bool,
    /// Host.
    pub host: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Source paths.
    pub paths: Vec<String>,
    /// Parent id.
    pub parent: Option<String>,
    /// Whether some files could not be read.
    pub incomplete: bool,
    /// What it stored.
    pub summary: Summary,
}

/// What `snap snapshots` found.
#[derive(Debug, Default)]
pub struct SnapshotsReport {
    /// Matching snapshots, oldest first.
    pub rows: Vec<SnapshotRow>,
    /// Damaged snapshot objects that were skipped, one warning each.
    pub warnings: Vec<String>,
}

/// Formats ns since the epoch as RFC 3339.
pub fn format_time(ns: i64) -> String {
    crate::repository::snapshots::rfc3339(ns)
}

/// A row for one snapshot.
pub fn row(id: &SnapshotId, s: &Snapshot) -> SnapshotRow {
    SnapshotRow {
        id: id.to_hex(),
        short_id: id.short(),
        time: format_time(s.time_ns),
        time_ns: s.time_ns,
        future: s.time_ns > now_ns().saturating_add(FUTURE_TOLERANCE_NS),
        host: s.host.clone(),
        tags: s.tags.clone(),
        paths: s.paths.clone(),
        parent: s.parent.map(|p| p.to_hex()),
        incomplete: s.incomplete,
        summary: s.summary.clone(),
    }
}

/// Lists the snapshots matching `filter`, oldest first.
pub fn run(repo: &Repository, filter: &SnapshotFilter) -> Result<SnapshotsReport> {
    let list = repo.list_snapshots()?;
    Ok(SnapshotsReport {
        rows: list.filtered(filter).map(|(id, s)| row(id, s)).collect(),
        warnings: list.warnings(),
    })
}
