//! `snap snapshots`: the list of snapshots, filtered like every selector,
//! optionally grouped (`--group-by host,paths,tags`, the groups of
//! [`super::retention`]) and cut to the newest N of each group
//! (`--latest N`), as restic does.

use serde::Serialize;

use std::collections::BTreeMap;

use super::retention::{GroupBy, GroupKey};
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

/// Snapshots sharing a group key (`snap snapshots --group-by`).
#[derive(Debug, Serialize)]
pub struct SnapshotGroup {
    /// What the group's snapshots share (`null` for a field not grouped by).
    pub group_key: GroupKey,
    /// Its snapshots, oldest first.
    pub snapshots: Vec<SnapshotRow>,
}

/// How `snap snapshots` groups and cuts the list.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotsOptions {
    /// Group by these fields (`None`: no grouping asked for).
    pub group_by: Option<GroupBy>,
    /// Keep only the N newest of each group (of host and paths without
    /// `group_by`).
    pub latest: Option<usize>,
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

/// Groups the rows of `report` (ordered by group key; each group oldest
/// first) and keeps the `latest` newest of each. Without `group_by`, one
/// group with an empty key, except that `latest` counts per host and paths.
pub fn group(report: SnapshotsReport, opts: &SnapshotsOptions) -> Vec<SnapshotGroup> {
    let by = opts.group_by.unwrap_or(GroupBy {
        host: false,
        paths: false,
        tags: false,
    });
    let latest_by = if opts.group_by.is_none() && opts.latest.is_some() {
        GroupBy::default()
    } else {
        by
    };
    let mut groups: BTreeMap<GroupKey, Vec<SnapshotRow>> = BTreeMap::new();
    for r in report.rows {
        groups
            .entry(latest_by.key(&r.host, &r.paths, &r.tags))
            .or_default()
            .push(r);
    }
    if let Some(n) = opts.latest {
        for rows in groups.values_mut() {
            // Oldest first by time (ties: listing order): drop the oldest.
            rows.sort_by_key(|r| r.time_ns);
            let cut = rows.len().saturating_sub(n);
            rows.drain(..cut);
        }
    }
    if latest_by == by {
        return groups
            .into_iter()
            .map(|(group_key, snapshots)| SnapshotGroup {
                group_key,
                snapshots,
            })
            .collect();
    }
    // `--latest` alone: counted per host and paths, listed as one list.
    let mut rows: Vec<SnapshotRow> = groups.into_values().flatten().collect();
    rows.sort_by_key(|r| r.time_ns);
    vec![SnapshotGroup {
        group_key: by.key("", &[], &[]),
        snapshots: rows,
    }]
}
