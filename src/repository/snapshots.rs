//! Storing, loading and selecting snapshots.
//!
//! Selection happens here and nowhere else: every command that picks a
//! snapshot (`ls`, `restore`, `dump`, `forget`, `create --parent`, the
//! `snapshots` list) goes through [`Repository::find_snapshot`] or
//! [`SnapshotList::select_latest`] with a [`SnapshotFilter`]. The rules
//! (documented for users in `docs/snapshots.md`):
//!
//! * Filters work as restic's: a snapshot matches when its host is one of
//!   `hosts`, it carries every tag of at least one of `tags` (each set is
//!   one `--tag a,b`; an empty set matches snapshots without tags), and it
//!   holds every one of `paths`. An empty field matches everything.
//! * `latest` without a host filter means **this host's** latest. When this
//!   host has no matching snapshot, the latest of the one host that has is
//!   taken with a warning; with several such hosts it is an error that
//!   lists them (`--host` chooses). `latest` never silently crosses hosts.
//! * A snapshot dated more than [`FUTURE_TOLERANCE_NS`] ahead of this
//!   machine's clock (a mistyped `--time`, a host with a wrong clock) is
//!   passed over by `latest`, with a warning naming it, unless every
//!   candidate is such; an id still selects it.
//! * An id (prefix) selects exactly that snapshot, and is refused when the
//!   snapshot does not match the filters given.
//! * A snapshot object that does not verify is skipped by listings and by
//!   `latest` with a warning naming it (`snap forget ID` removes it);
//!   selecting it by id is an error.

use std::collections::BTreeMap;

use super::Repository;
use crate::backend::{FileKind, WriteMode};
use crate::format::snapshot::{Snapshot, MAX_SNAPSHOT_LEN};
use crate::format::SnapshotId;
use crate::pipeline::crypto::AAD_SNAPSHOT;
use crate::{Error, Result};

/// How far ahead of this machine's clock a snapshot may be dated before
/// it counts as dated in the future (clocks drift; NTP corrects slowly).
pub const FUTURE_TOLERANCE_NS: i64 = 5 * 60 * 1_000_000_000;

/// This machine's clock, ns since the epoch.
pub fn now_ns() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// Formats ns since the epoch as RFC 3339 (UTC), for messages.
pub fn rfc3339(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ns.to_string())
}

/// Which snapshots a selector may pick (restic's `--host`, `--tag`,
/// `--path`); see the module documentation for the rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    /// Any of these hosts.
    pub hosts: Vec<String>,
    /// Any of these tag sets; a snapshot must carry every tag of the set.
    pub tags: Vec<Vec<String>>,
    /// Every one of these absolute source paths.
    pub paths: Vec<String>,
    /// Only snapshots dated at or before this (the parent of a `create`
    /// is never newer than the snapshot being made).
    pub not_after_ns: Option<i64>,
}

impl SnapshotFilter {
    /// Whether `s` passes the host, tag, path and time conditions.
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.host))
            && (self.tags.is_empty()
                || self.tags.iter().any(|set| {
                    if set.is_empty() {
                        s.tags.is_empty()
                    } else {
                        set.iter().all(|t| s.tags.contains(t))
                    }
                }))
            && self.paths.iter().all(|p| s.paths.contains(p))
            && self.not_after_ns.is_none_or(|t| s.time_ns <= t)
    }

    /// The filter as the flags that give it, for messages (`""` if none).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for h in &self.hosts {
            parts.push(format!("--host {h}"));
        }
        for set in &self.tags {
            parts.push(format!("--tag {:?}", set.join(",")));
        }
        for p in &self.paths {
            parts.push(format!("--path {p}"));
        }
        if let Some(t) = self.not_after_ns {
            parts.push(format!("not after {}", rfc3339(t)));
        }
        parts.join(" ")
    }
}

/// A snapshot object that could not be read or did not verify.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DamagedSnapshot {
    /// Its name.
    pub id: SnapshotId,
    /// What is wrong with it.
    pub why: String,
}

impl DamagedSnapshot {
    /// The warning that a listing skipped it.
    pub fn warning(&self) -> String {
        format!(
            "snapshot {} is damaged ({}) and was skipped: `snap forget {}` removes it, \
             `snap repair snapshots` rewrites what can be saved",
            self.id.short(),
            self.why,
            self.id.short()
        )
    }
}

/// Every snapshot that could be read (oldest first), and those that could
/// not.
#[derive(Debug, Default)]
pub struct SnapshotList {
    /// Readable snapshots, oldest first (ties by id).
    pub snapshots: Vec<(SnapshotId, Snapshot)>,
    /// Snapshot objects that do not verify.
    pub damaged: Vec<DamagedSnapshot>,
}

/// The outcome of a selector.
#[derive(Clone, Debug)]
pub struct Selected {
    /// The snapshot's id.
    pub id: SnapshotId,
    /// The snapshot.
    pub snapshot: Snapshot,
    /// What the user should know about the choice (damaged snapshots
    /// skipped, future-dated ones passed over, another host's taken).
    pub warnings: Vec<String>,
}

fn selector_error(selector: &str, why: impl Into<String>) -> Error {
    Error::SnapshotSelector {
        selector: selector.to_string(),
        why: why.into(),
    }
}

/// `" matching --host a"`, or nothing.
fn matching(filter: &SnapshotFilter) -> String {
    let d = filter.describe();
    if d.is_empty() {
        d
    } else {
        format!(" matching {d}")
    }
}

fn one_line(id: &SnapshotId, s: &Snapshot) -> String {
    format!("{} ({}, host {})", id.short(), rfc3339(s.time_ns), s.host)
}

impl SnapshotList {
    /// The warnings about damaged snapshot objects, one each.
    pub fn warnings(&self) -> Vec<String> {
        self.damaged.iter().map(DamagedSnapshot::warning).collect()
    }

    /// The snapshots matching `filter`, oldest first.
    pub fn filtered<'a>(
        &'a self,
        filter: &'a SnapshotFilter,
    ) -> impl Iterator<Item = &'a (SnapshotId, Snapshot)> + 'a {
        self.snapshots.iter().filter(|(_, s)| filter.matches(s))
    }

    /// Resolves `latest` under `filter`, as seen from host `this_host`
    /// with the clock at `now_ns`. `Ok(None)`: no snapshot matches.
    /// Warnings about damaged objects are not included (see
    /// [`SnapshotList::warnings`]).
    pub fn select_latest(
        &self,
        filter: &SnapshotFilter,
        this_host: &str,
        now_ns: i64,
    ) -> Result<Option<Selected>> {
        let mut warnings = Vec::new();
        let matched: Vec<&(SnapshotId, Snapshot)> = self.filtered(filter).collect();
        let mut candidates: Vec<&(SnapshotId, Snapshot)> = if filter.hosts.is_empty() {
            matched
                .iter()
                .copied()
                .filter(|(_, s)| s.host == this_host)
                .collect()
        } else {
            matched.clone()
        };
        if candidates.is_empty() && filter.hosts.is_empty() {
            let mut hosts: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, s) in &matched {
                *hosts.entry(s.host.as_str()).or_default() += 1;
            }
            match hosts.len() {
                0 => return Ok(None),
                1 => {
                    let other = *hosts.keys().next().expect("one host");
                    warnings.push(format!(
                        "this host ({this_host}) has no snapshot{}; taking the latest of \
                         host {other}, the only host that has (`--host {other}` says so)",
                        matching(filter)
                    ));
                    candidates = matched;
                }
                _ => {
                    let list: Vec<String> =
                        hosts.iter().map(|(h, n)| format!("{h} ({n})")).collect();
                    return Err(selector_error(
                        "latest",
                        format!(
                            "this host ({this_host}) has no snapshot{}, and several hosts have: \
                             {}; choose one with --host",
                            matching(filter),
                            list.join(", ")
                        ),
                    ));
                }
            }
        }
        // Oldest first: the newest is last. A snapshot from the future is
        // passed over unless nothing else is left.
        let limit = now_ns.saturating_add(FUTURE_TOLERANCE_NS);
        let (future, present): (Vec<_>, Vec<_>) = candidates
            .into_iter()
            .partition(|(_, s)| filter.not_after_ns.is_none() && s.time_ns > limit);
        let pick = match present.last() {
            Some(p) => {
                if !future.is_empty() {
                    let names: Vec<String> = future.iter().map(|(id, s)| one_line(id, s)).collect();
                    warnings.push(format!(
                        "passed over {} snapshot(s) dated ahead of this machine's clock ({}): {}; \
                         give its id to select one",
                        names.len(),
                        rfc3339(now_ns),
                        names.join(", ")
                    ));
                }
                *p
            }
            None => match future.last() {
                Some(f) => {
                    let mut hosts: Vec<&str> =
                        future.iter().map(|(_, s)| s.host.as_str()).collect();
                    hosts.sort();
                    hosts.dedup();
                    warnings.push(format!(
                        "every snapshot of host {}{} is dated ahead of this machine's clock \
                         ({}); taking the newest",
                        hosts.join(", "),
                        matching(filter),
                        rfc3339(now_ns)
                    ));
                    *f
                }
                None => return Ok(None),
            },
        };
        Ok(Some(Selected {
            id: pick.0,
            snapshot: pick.1.clone(),
            warnings,
        }))
    }
}

impl Repository {
    /// Encrypts and stores a snapshot; this is the commit point of `create`.
    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<SnapshotId> {
        let sealed = self.key.seal(AAD_SNAPSHOT, &snap.to_bytes());
        let id = SnapshotId(*blake3::hash(&sealed).as_bytes());
        self.backend.write(
            FileKind::Snapshot,
            &id.to_hex(),
            &sealed,
            WriteMode::CreateNew,
        )?;
        Ok(id)
    }

    /// Loads and verifies one snapshot.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let what = || format!("snapshot {}", id);
        let sealed = self.read_snapshot_object(id)?;
        if sealed.len() > MAX_SNAPSHOT_LEN {
            return Err(Error::corrupt(what(), "larger than 16 MiB"));
        }
        if blake3::hash(&sealed).as_bytes() != &id.0 {
            return Err(Error::corrupt(what(), "bytes do not match the name"));
        }
        let plain = self
            .key
            .open(AAD_SNAPSHOT, &sealed)
            .map_err(|a| Error::corrupt(what(), a.to_string()))?;
        Snapshot::parse(&plain).map_err(|why| Error::corrupt(what(), why))
    }

    /// A snapshot's stored bytes. Remote repositories keep a local copy
    /// of each (immutable, named by its hash) so that listing snapshots
    /// downloads only new ones.
    fn read_snapshot_object(&self, id: &SnapshotId) -> Result<Vec<u8>> {
        if self.backend.staging_dir().is_some() {
            return Ok(self.backend.read(FileKind::Snapshot, &id.to_hex())?);
        }
        let cached = self.cache_dir.join("snapshots").join(id.to_hex());
        if let Ok(b) = std::fs::read(&cached) {
            if blake3::hash(&b).as_bytes() == &id.0 {
                return Ok(b);
            }
        }
        let b = self.backend.read(FileKind::Snapshot, &id.to_hex())?;
        if blake3::hash(&b).as_bytes() == &id.0 {
            // Best effort: a failed cache write only costs a later download.
            let dir = self.cache_dir.join("snapshots");
            let tmp = dir.join(format!(".tmp-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::write(&tmp, &b))
                .and_then(|_| std::fs::rename(&tmp, &cached));
        }
        Ok(b)
    }

    /// Every snapshot: those that verify, oldest first, and those that do
    /// not (damaged). Storage errors (an unreachable store) still fail:
    /// only objects that were read and found wrong are "damaged".
    pub fn list_snapshots(&self) -> Result<SnapshotList> {
        let mut list = SnapshotList::default();
        for (name, _) in self.backend.list(FileKind::Snapshot)? {
            let Some(id) = SnapshotId::from_hex(&name) else {
                continue;
            };
            match self.load_snapshot(&id) {
                Ok(s) => list.snapshots.push((id, s)),
                // Removed (by a concurrent forget) since it was listed.
                Err(Error::Missing { .. }) => {}
                Err(Error::Corrupt { why, .. }) => list.damaged.push(DamagedSnapshot { id, why }),
                Err(e) => return Err(e),
            }
        }
        list.snapshots
            .sort_by(|a, b| a.1.time_ns.cmp(&b.1.time_ns).then(a.0.cmp(&b.0)));
        Ok(list)
    }

    /// All snapshots, oldest first; fails on the first damaged one. Use
    /// [`Repository::list_snapshots`] to skip and report damaged ones.
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let list = self.list_snapshots()?;
        if let Some(d) = list.damaged.first() {
            return Err(Error::corrupt(format!("snapshot {}", d.id), d.why.clone()));
        }
        Ok(list.snapshots)
    }

    /// The id a hex prefix names, without loading the snapshot (so that a
    /// damaged one can still be named, e.g. by `forget`).
    pub fn resolve_snapshot_id(&self, selector: &str) -> Result<SnapshotId> {
        if selector.is_empty() || !selector.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(selector_error(
                selector,
                "not `latest` or a hex snapshot id (prefix)",
            ));
        }
        let lower = selector.to_ascii_lowercase();
        let names: Vec<String> = self
            .backend
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with(&lower))
            .collect();
        match names.as_slice() {
            [one] => SnapshotId::from_hex(one)
                .ok_or_else(|| selector_error(selector, "bad snapshot name in storage")),
            [] => Err(selector_error(selector, "no snapshot has this id")),
            _ => Err(selector_error(
                selector,
                "prefix matches several snapshots; give more characters",
            )),
        }
    }

    /// Resolves `latest` or a unique id prefix under `filter` (see the
    /// module documentation for the rules).
    pub fn find_snapshot(&self, selector: &str, filter: &SnapshotFilter) -> Result<Selected> {
        if selector == "latest" {
            let list = self.list_snapshots()?;
            let host = super::open::hostname();
            let mut sel = list
                .select_latest(filter, &host, now_ns())?
                .ok_or_else(|| {
                    selector_error(
                        selector,
                        if list.snapshots.is_empty() && list.damaged.is_empty() {
                            "the repository has no snapshots".to_string()
                        } else {
                            format!("no snapshot{}", matching(filter))
                        },
                    )
                })?;
            let mut warnings = list.warnings();
            warnings.append(&mut sel.warnings);
            sel.warnings = warnings;
            return Ok(sel);
        }
        let id = self.resolve_snapshot_id(selector)?;
        let snapshot = self.load_snapshot(&id)?;
        if !filter.matches(&snapshot) {
            return Err(selector_error(
                selector,
                format!(
                    "snapshot {} (host {}, tags [{}], paths {}) does not match {}",
                    id.short(),
                    snapshot.host,
                    snapshot.tags.join(","),
                    snapshot.paths.join(" "),
                    filter.describe()
                ),
            ));
        }
        Ok(Selected {
            id,
            snapshot,
            warnings: Vec::new(),
        })
    }

    /// Deletes a snapshot object.
    pub fn delete_snapshot(&self, id: &SnapshotId) -> Result<()> {
        Ok(self.backend.delete(FileKind::Snapshot, &id.to_hex())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot::Summary;
    use crate::format::BlobId;

    const DAY: i64 = 86_400 * 1_000_000_000;

    fn snap(host: &str, time_ns: i64, tags: &[&str], paths: &[&str]) -> Snapshot {
        Snapshot {
            time_ns,
            host: host.into(),
            user: "u".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            tree: BlobId([0; 32]),
            parent: None,
            incomplete: false,
            summary: Summary::default(),
        }
    }

    fn list(snaps: Vec<Snapshot>) -> SnapshotList {
        let mut l = SnapshotList::default();
        for (i, s) in snaps.into_iter().enumerate() {
            l.snapshots.push((SnapshotId([i as u8; 32]), s));
        }
        l.snapshots
            .sort_by(|a, b| a.1.time_ns.cmp(&b.1.time_ns).then(a.0.cmp(&b.0)));
        l
    }

    fn pick(l: &SnapshotList, f: &SnapshotFilter, host: &str, now: i64) -> Option<u8> {
        l.select_latest(f, host, now).unwrap().map(|s| s.id.0[0])
    }

    #[test]
    fn filters_follow_restic() {
        let s = snap("h", 1, &["a", "b"], &["/x", "/y"]);
        let f = |hosts: &[&str], tags: &[&[&str]], paths: &[&str]| SnapshotFilter {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            tags: tags
                .iter()
                .map(|set| set.iter().map(|t| t.to_string()).collect())
                .collect(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            not_after_ns: None,
        };
        assert!(f(&[], &[], &[]).matches(&s));
        assert!(f(&["x", "h"], &[], &[]).matches(&s));
        assert!(!f(&["x"], &[], &[]).matches(&s));
        assert!(f(&[], &[&["a", "b"]], &[]).matches(&s));
        assert!(!f(&[], &[&["a", "c"]], &[]).matches(&s));
        assert!(f(&[], &[&["c"], &["b"]], &[]).matches(&s));
        assert!(!f(&[], &[&[]], &[]).matches(&s));
        assert!(f(&[], &[&[]], &[]).matches(&snap("h", 1, &[], &[])));
        assert!(f(&[], &[], &["/y"]).matches(&s));
        assert!(!f(&[], &[], &["/y", "/z"]).matches(&s));
        let mut g = f(&[], &[], &[]);
        g.not_after_ns = Some(0);
        assert!(!g.matches(&s));
    }

    #[test]
    fn latest_is_this_hosts_then_the_only_host_then_an_error() {
        let now = 100 * DAY;
        let l = list(vec![snap("me", 10, &[], &[]), snap("other", 20, &[], &[])]);
        let none = SnapshotFilter::default();
        assert_eq!(pick(&l, &none, "me", now), Some(0));
        // Only one other host: taken, with a warning.
        let s = l.select_latest(&none, "new", now);
        assert!(s.is_err(), "two other hosts must be an error");
        let l1 = list(vec![snap("old", 10, &[], &[])]);
        let s = l1.select_latest(&none, "new", now).unwrap().unwrap();
        assert_eq!(s.snapshot.host, "old");
        assert!(s.warnings[0].contains("old"), "{:?}", s.warnings);
        let by_host = SnapshotFilter {
            hosts: vec!["other".into()],
            ..Default::default()
        };
        assert_eq!(pick(&l, &by_host, "me", now), Some(1));
        assert_eq!(pick(&list(vec![]), &none, "me", now), None);
    }

    #[test]
    fn future_dated_snapshots_are_passed_over() {
        let now = 100 * DAY;
        let l = list(vec![
            snap("me", now - DAY, &[], &[]),
            snap("me", now + 365 * DAY, &[], &[]),
            snap("me", now + 60 * 1_000_000_000, &[], &[]),
        ]);
        let none = SnapshotFilter::default();
        let s = l.select_latest(&none, "me", now).unwrap().unwrap();
        // A minute ahead is within the tolerance; a year is not.
        assert_eq!(s.id.0[0], 2);
        assert!(s.warnings[0].contains(&SnapshotId([1; 32]).short()));
        // All in the future: the newest, with a warning.
        let l = list(vec![
            snap("me", now + DAY, &[], &[]),
            snap("me", now + 2 * DAY, &[], &[]),
        ]);
        let s = l.select_latest(&none, "me", now).unwrap().unwrap();
        assert_eq!(s.id.0[0], 1);
        assert_eq!(s.warnings.len(), 1);
        // A time limit (create's parent) excludes what is after it.
        let lim = SnapshotFilter {
            not_after_ns: Some(now + DAY),
            ..Default::default()
        };
        assert_eq!(pick(&l, &lim, "me", now), Some(0));
    }
}
