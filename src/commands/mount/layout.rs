//! The directories above the snapshots' own trees, as restic lays them
//! out: `ids/ID`, `snapshots/TIME`, `hosts/HOST/TIME` and `tags/TAG/TIME`,
//! each a snapshot's root, and a `latest` symlink beside the TIME
//! directories to the newest of them.
//!
//! TIME is the snapshot's time in UTC, `2026-03-01T02:00:00Z`; two
//! snapshots of the same second are `...Z` and `...Z-1` (oldest first),
//! the same name wherever the snapshot appears. Host and tag names are
//! shown with `/` and NUL replaced by `_` (a name must be one path
//! component), and `.`/`..`/empty ones with a leading `_`.

use std::collections::BTreeMap;

use crate::format::snapshot::Snapshot;
use crate::format::SnapshotId;

/// A snapshot as mounted.
pub struct Mounted {
    /// Its id.
    pub id: SnapshotId,
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Its TIME name, unique among the mounted snapshots.
    pub time_name: String,
}

/// A directory of the layout (not of a snapshot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dir {
    /// The mount point: `ids`, `snapshots`, `hosts`, `tags`.
    Root,
    /// `ids/`: one directory per snapshot, by short id.
    Ids,
    /// `snapshots/`: one per snapshot by TIME, and `latest`.
    Snapshots,
    /// `hosts/`: one directory per host.
    Hosts,
    /// `tags/`: one directory per tag.
    Tags,
    /// `hosts/HOST/`: that host's snapshots by TIME, and `latest`.
    Host(String),
    /// `tags/TAG/`: the snapshots with that tag by TIME, and `latest`.
    Tag(String),
}

/// An entry of a layout directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A layout directory.
    Dir(Dir),
    /// The root of the snapshot at this position of [`Layout::snaps`].
    Snapshot(usize),
    /// A symlink to this TIME name.
    Latest(String),
}

/// The mounted snapshots, oldest first, and their groups.
pub struct Layout {
    /// The snapshots, oldest first.
    pub snaps: Vec<Mounted>,
    hosts: BTreeMap<String, Vec<usize>>,
    tags: BTreeMap<String, Vec<usize>>,
}

/// `name` as one path component.
fn component(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if s.is_empty() || s == "." || s == ".." {
        format!("_{s}")
    } else {
        s
    }
}

/// `2026-03-01T02:00:00Z` (UTC, whole seconds).
pub fn time_name(ns: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ns.to_string())
}

impl Layout {
    /// The layout of `snaps` (any order).
    pub fn new(mut snaps: Vec<(SnapshotId, Snapshot)>) -> Layout {
        snaps.sort_by(|a, b| a.1.time_ns.cmp(&b.1.time_ns).then(a.0.cmp(&b.0)));
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut l = Layout {
            snaps: Vec::with_capacity(snaps.len()),
            hosts: BTreeMap::new(),
            tags: BTreeMap::new(),
        };
        for (i, (id, snapshot)) in snaps.into_iter().enumerate() {
            let base = time_name(snapshot.time_ns);
            let n = seen.entry(base.clone()).or_insert(0);
            let time_name = if *n == 0 { base } else { format!("{base}-{n}") };
            *n += 1;
            l.hosts
                .entry(component(&snapshot.host))
                .or_default()
                .push(i);
            for t in &snapshot.tags {
                let v = l.tags.entry(component(t)).or_default();
                if v.last() != Some(&i) {
                    v.push(i);
                }
            }
            l.snaps.push(Mounted {
                id,
                snapshot,
                time_name,
            });
        }
        l
    }

    /// The time of the newest snapshot (the layout directories' mtime).
    pub fn newest_ns(&self) -> i64 {
        self.snaps.last().map_or(0, |m| m.snapshot.time_ns)
    }

    /// The entries of `dir`, in the order `readdir` shows them.
    pub fn children(&self, dir: &Dir) -> Vec<(String, Entry)> {
        let by_time = |list: &[usize]| {
            let mut v: Vec<(String, Entry)> = list
                .iter()
                .map(|&i| (self.snaps[i].time_name.clone(), Entry::Snapshot(i)))
                .collect();
            if let Some(&last) = list.last() {
                v.push((
                    "latest".to_string(),
                    Entry::Latest(self.snaps[last].time_name.clone()),
                ));
            }
            v
        };
        match dir {
            Dir::Root => vec![
                ("ids".into(), Entry::Dir(Dir::Ids)),
                ("snapshots".into(), Entry::Dir(Dir::Snapshots)),
                ("hosts".into(), Entry::Dir(Dir::Hosts)),
                ("tags".into(), Entry::Dir(Dir::Tags)),
            ],
            Dir::Ids => self
                .snaps
                .iter()
                .enumerate()
                .map(|(i, m)| (m.id.short(), Entry::Snapshot(i)))
                .collect(),
            Dir::Snapshots => by_time(&(0..self.snaps.len()).collect::<Vec<_>>()),
            Dir::Hosts => self
                .hosts
                .keys()
                .map(|h| (h.clone(), Entry::Dir(Dir::Host(h.clone()))))
                .collect(),
            Dir::Tags => self
                .tags
                .keys()
                .map(|t| (t.clone(), Entry::Dir(Dir::Tag(t.clone()))))
                .collect(),
            Dir::Host(h) => by_time(self.hosts.get(h).map_or(&[][..], |v| v)),
            Dir::Tag(t) => by_time(self.tags.get(t).map_or(&[][..], |v| v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::BlobId;

    fn snap(host: &str, tags: &[&str], secs: i64) -> Snapshot {
        Snapshot {
            time_ns: secs * 1_000_000_000,
            host: host.into(),
            user: "u".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            paths: vec!["/src".into()],
            tree: BlobId([0; 32]),
            parent: None,
            incomplete: false,
            summary: Default::default(),
        }
    }

    #[test]
    fn same_second_snapshots_get_distinct_names_and_latest_is_the_newest() {
        let l = Layout::new(vec![
            (SnapshotId([2; 32]), snap("b", &[], 1_000)),
            (SnapshotId([1; 32]), snap("a/x", &["t"], 1_000)),
            (SnapshotId([3; 32]), snap("a/x", &["t"], 2_000)),
        ]);
        let names: Vec<String> = l
            .children(&Dir::Snapshots)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "1970-01-01T00:16:40Z",
                "1970-01-01T00:16:40Z-1",
                "1970-01-01T00:33:20Z",
                "latest"
            ]
        );
        let hosts = l.children(&Dir::Hosts);
        assert_eq!(hosts[0].0, "a_x");
        let in_a = l.children(&Dir::Host("a_x".into()));
        assert_eq!(
            in_a.last().unwrap().1,
            Entry::Latest("1970-01-01T00:33:20Z".into())
        );
        assert_eq!(l.children(&Dir::Tag("t".into())).len(), 3);
        assert!(l.children(&Dir::Tag("none".into())).is_empty());
    }
}
