//! `snap find PATTERN...`: flags, time parsing and printing.

use anyhow::{bail, Context, Result};
use clap::Args;

use super::args::FilterArgs;
use super::exit;
use super::output::Printer;
use crate::commands::find::{self, FindOptions};
use crate::format::snapshot::Snapshot;
use crate::format::SnapshotId;
use crate::repository::Repository;

#[derive(Debug, Args)]
pub struct FindArgs {
    /// Globs matched against each entry's name and its absolute path.
    #[arg(required = true)]
    pub patterns: Vec<String>,
    /// Only this snapshot (`latest` or an id prefix; repeatable). Default:
    /// every snapshot that matches the filters.
    #[arg(short = 's', long = "snapshot", value_name = "SNAP")]
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only entries modified after TIME (RFC 3339, `2026-01-31`,
    /// `2026-01-31 14:00[:00]` in UTC, or an age such as `3d`).
    #[arg(long, alias = "oldest", value_name = "TIME")]
    pub newer: Option<String>,
    /// Only entries modified before TIME (same forms as --newer).
    #[arg(long, alias = "newest", value_name = "TIME")]
    pub older: Option<String>,
    /// Match regardless of case.
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
}

/// Parses a point in time: RFC 3339, a date or a date and time (UTC), or
/// an age before now (`90m`, `3d`, `2weeks`).
pub fn parse_when(s: &str, flag: &str) -> Result<i64> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{Date, PrimitiveDateTime};
    let t = s.trim();
    if let Ok(v) = time::OffsetDateTime::parse(t, &Rfc3339) {
        return Ok(v.unix_timestamp_nanos() as i64);
    }
    let t2 = t.replace('T', " ");
    for f in [
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ] {
        if let Ok(v) = PrimitiveDateTime::parse(&t2, f) {
            return Ok(v.assume_utc().unix_timestamp_nanos() as i64);
        }
    }
    if let Ok(d) = Date::parse(t, format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc().unix_timestamp_nanos() as i64);
    }
    if let Ok(d) = humantime::parse_duration(t) {
        let now = crate::repository::snapshots::now_ns();
        return Ok(now.saturating_sub(d.as_nanos().min(i64::MAX as u128) as i64));
    }
    bail!(
        "{flag} {s:?}: not a time (e.g. 2026-01-31T02:00:00Z, 2026-01-31, \
         \"2026-01-31 14:00\" in UTC, or an age such as 3d)"
    )
}

/// The snapshots to search: those named, or all that match the filters.
fn chosen(repo: &Repository, a: &FindArgs, p: &Printer) -> Result<Vec<(SnapshotId, Snapshot)>> {
    let filter = super::run::filter_of(&a.filter)?;
    if a.snapshots.is_empty() {
        let list = repo.list_snapshots()?;
        for w in list.warnings() {
            p.warn(&w);
        }
        return Ok(list.filtered(&filter).cloned().collect());
    }
    let mut out: Vec<(SnapshotId, Snapshot)> = Vec::new();
    for sel in &a.snapshots {
        let s = super::run::select(repo, sel, &a.filter, p, true)?;
        if !out.iter().any(|(id, _)| *id == s.id) {
            out.push((s.id, s.snapshot));
        }
    }
    out.sort_by(|x, y| x.1.time_ns.cmp(&y.1.time_ns).then(x.0.cmp(&y.0)));
    Ok(out)
}

pub fn run(a: &FindArgs, repo: &Repository, p: &Printer) -> Result<i32> {
    let opts = FindOptions {
        patterns: a.patterns.clone(),
        ignore_case: a.ignore_case,
        newer_ns: a
            .newer
            .as_deref()
            .map(|s| parse_when(s, "--newer"))
            .transpose()?,
        older_ns: a
            .older
            .as_deref()
            .map(|s| parse_when(s, "--older"))
            .transpose()?,
    };
    let snaps = chosen(repo, a, p)?;
    let found = find::run(repo, &snaps, &opts).context("find")?;
    if p.json {
        say!("{}", serde_json::to_string(&found)?);
        return Ok(exit::OK);
    }
    if p.quiet {
        return Ok(exit::OK);
    }
    for s in &found {
        let t = s.time.get(..19).unwrap_or(&s.time).replace('T', " ");
        say!(
            "Found {} matching entries in snapshot {} from {t} (host {})",
            s.hits,
            s.short_id,
            s.host
        );
        for h in &s.matches {
            say!(
                "{:<8} {:04o} {:>12} {}  {}",
                h.kind,
                h.mode,
                h.size,
                h.mtime.get(..19).unwrap_or(&h.mtime),
                h.path
            );
        }
        say!("");
    }
    if found.is_empty() {
        say!("no matching entries in {} snapshots", snaps.len());
    }
    Ok(exit::OK)
}
