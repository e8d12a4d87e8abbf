//! `snap snapshots`: the list of snapshots.

use serde::Serialize;

use crate::format::snapshot::Summary;
use crate::repository::Repository;
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

/// Formats ns since the epoch as RFC 3339.
pub fn format_time(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ns.to_string())
}

/// Lists snapshots, oldest first.
pub fn run(repo: &Repository) -> Result<Vec<SnapshotRow>> {
    Ok(repo
        .snapshots()?
        .into_iter()
        .map(|(id, s)| SnapshotRow {
            id: id.to_hex(),
            short_id: id.short(),
            time: format_time(s.time_ns),
            time_ns: s.time_ns,
            host: s.host,
            tags: s.tags,
            paths: s.paths,
            parent: s.parent.map(|p| p.to_hex()),
            incomplete: s.incomplete,
            summary: s.summary,
        })
        .collect())
}
