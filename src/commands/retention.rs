//! Retention policies: which snapshots to keep. Pure: takes times and tags,
//! returns for each snapshot the rules that keep it (none = remove).
//!
//! Rules, applied to each group separately (newest first):
//! * `last N`: the N newest snapshots.
//! * `hourly/daily/weekly/monthly/yearly N`: the newest snapshot of each
//!   of the N newest periods that have one (UTC calendar periods; weeks
//!   are ISO weeks, Monday to Sunday).
//! * `within D`: every snapshot at most D older than the group's newest
//!   snapshot (relative to the newest, not to now, so a repository that
//!   stopped receiving backups is not emptied by the clock).
//! * `tag T`: every snapshot carrying tag T.
//!
//! A snapshot is kept when any rule keeps it.
//!
//! Clocks: the rules use no "now" of their own. Periods are calendar
//! periods of the snapshots' own times, `within` counts back from the
//! group's newest snapshot, and groups never see each other's snapshots,
//! so one host's clock cannot decide another host's retention (with the
//! default `--group-by host,paths`). The one use of this machine's clock:
//! a snapshot dated more than [`FUTURE_TOLERANCE_NS`] ahead of it (a
//! mistyped `--time`, a host whose clock is wrong) is kept, with the reason
//! `future-dated`, and takes no part in the rules: it neither counts as one
//! of the `last N` nor becomes the group's newest for `within`, so it can
//! never push the real newest backups out. Forget it by id once seen.

use serde::Serialize;

pub use crate::repository::snapshots::FUTURE_TOLERANCE_NS;

/// The reason given for a snapshot dated ahead of the clock.
pub const FUTURE_REASON: &str = "future-dated";

/// A retention policy. Counts of 0 disable a rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Keep the N newest.
    pub last: u32,
    /// Keep the newest of each of N hours.
    pub hourly: u32,
    /// Keep the newest of each of N days.
    pub daily: u32,
    /// Keep the newest of each of N ISO weeks.
    pub weekly: u32,
    /// Keep the newest of each of N months.
    pub monthly: u32,
    /// Keep the newest of each of N years.
    pub yearly: u32,
    /// Keep all within this many ns of the newest snapshot.
    pub within_ns: Option<i64>,
    /// Keep snapshots having any of these tags.
    pub tags: Vec<String>,
}

/// One snapshot as the policy sees it.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    /// Time, ns since the epoch.
    pub time_ns: i64,
    /// Its tags.
    pub tags: &'a [String],
}

/// Which snapshot fields form a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GroupBy {
    /// Group by host name.
    pub host: bool,
    /// Group by the set of source paths.
    pub paths: bool,
    /// Group by the set of tags.
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl GroupBy {
    /// Parses `host,paths,tags` (any subset, comma separated; empty = one group).
    pub fn parse(s: &str) -> Result<GroupBy, String> {
        let mut g = GroupBy {
            host: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "paths" | "path" => g.paths = true,
                "tags" | "tag" => g.tags = true,
                other => {
                    return Err(format!(
                        "unknown group-by field {other:?} (use host, paths, tags)"
                    ))
                }
            }
        }
        Ok(g)
    }

    /// The group key of a snapshot.
    pub fn key(&self, host: &str, paths: &[String], tags: &[String]) -> GroupKey {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v.dedup();
            v
        };
        GroupKey {
            host: self.host.then(|| host.to_string()),
            paths: self.paths.then(|| sorted(paths)),
            tags: self.tags.then(|| sorted(tags)),
        }
    }
}

/// What a group shares.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupKey {
    /// Host, when grouping by host.
    pub host: Option<String>,
    /// Paths, when grouping by paths.
    pub paths: Option<Vec<String>>,
    /// Tags, when grouping by tags.
    pub tags: Option<Vec<String>>,
}

impl Policy {
    /// Whether no rule is set (such a policy keeps nothing).
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within_ns.is_none()
            && self.tags.is_empty()
    }

    /// For each item (in input order), the rules that keep it; an empty
    /// list means the snapshot is removed. Items are one group; `now_ns`
    /// is this machine's clock, used only to set aside items dated in the
    /// future (see the module documentation).
    pub fn apply(&self, items: &[Item<'_>], now_ns: i64) -> Vec<Vec<String>> {
        let mut reasons = vec![Vec::new(); items.len()];
        let future_after = now_ns.saturating_add(FUTURE_TOLERANCE_NS);
        // Newest first; ties keep input order. Future-dated items are kept
        // and left out of every rule.
        let mut order: Vec<usize> = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            if it.time_ns > future_after {
                reasons[i].push(FUTURE_REASON.to_string());
            } else {
                order.push(i);
            }
        }
        order.sort_by(|&a, &b| items[b].time_ns.cmp(&items[a].time_ns).then(a.cmp(&b)));
        let rules: [Rule; 6] = [
            ("last", self.last, |_| 0),
            ("hourly", self.hourly, hour_key),
            ("daily", self.daily, day_key),
            ("weekly", self.weekly, week_key),
            ("monthly", self.monthly, month_key),
            ("yearly", self.yearly, year_key),
        ];
        for (name, count, key_of) in rules {
            let mut left = count;
            let mut last_key = None;
            for (pos, &i) in order.iter().enumerate() {
                if left == 0 {
                    break;
                }
                // `last` keeps every snapshot; the others one per period.
                let key = if name == "last" {
                    pos as i64
                } else {
                    key_of(items[i].time_ns)
                };
                if last_key != Some(key) {
                    last_key = Some(key);
                    reasons[i].push(name.to_string());
                    left -= 1;
                }
            }
        }
        if let (Some(within), Some(&newest)) = (self.within_ns, order.first()) {
            let cutoff = items[newest].time_ns.saturating_sub(within);
            for &i in &order {
                if items[i].time_ns >= cutoff {
                    reasons[i].push("within".to_string());
                }
            }
        }
        for &i in &order {
            let it = &items[i];
            for t in &self.tags {
                if it.tags.contains(t) {
                    reasons[i].push(format!("tag {t}"));
                }
            }
        }
        reasons
    }
}

/// A counting rule: name, count, period key of a time.
type Rule = (&'static str, u32, fn(i64) -> i64);

fn datetime(ns: i64) -> time::OffsetDateTime {
    let secs = ns.div_euclid(1_000_000_000);
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn hour_key(ns: i64) -> i64 {
    ns.div_euclid(3_600 * 1_000_000_000)
}

fn day_key(ns: i64) -> i64 {
    ns.div_euclid(86_400 * 1_000_000_000)
}

fn week_key(ns: i64) -> i64 {
    let (y, w, _) = datetime(ns).to_iso_week_date();
    y as i64 * 100 + w as i64
}

fn month_key(ns: i64) -> i64 {
    let d = datetime(ns);
    d.year() as i64 * 100 + u8::from(d.month()) as i64
}

fn year_key(ns: i64) -> i64 {
    datetime(ns).year() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400 * 1_000_000_000;
    const HOUR: i64 = 3_600 * 1_000_000_000;
    /// A clock later than every test time.
    const NOW: i64 = 100_000 * DAY;

    fn at(date: time::Date, hour: u8) -> i64 {
        date.with_hms(hour, 0, 0)
            .unwrap()
            .assume_utc()
            .unix_timestamp_nanos() as i64
    }

    fn kept(p: &Policy, times: &[i64]) -> Vec<usize> {
        let tags: Vec<String> = Vec::new();
        let items: Vec<Item> = times
            .iter()
            .map(|&t| Item {
                time_ns: t,
                tags: &tags,
            })
            .collect();
        p.apply(&items, i64::MAX / 2)
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn last_keeps_newest_regardless_of_input_order() {
        let p = Policy {
            last: 2,
            ..Default::default()
        };
        assert_eq!(kept(&p, &[30, 10, 50, 20]), vec![0, 2]);
    }

    #[test]
    fn daily_keeps_newest_of_each_day() {
        let d = time::macros::date!(2026 - 03 - 10);
        // Three snapshots a day for 4 days.
        let mut times = Vec::new();
        for day in 0..4 {
            for h in [1, 12, 23] {
                times.push(at(d, h) + day * DAY);
            }
        }
        let p = Policy {
            daily: 2,
            ..Default::default()
        };
        // Newest of the two newest days: day 3 23h (index 11), day 2 23h (8).
        assert_eq!(kept(&p, &times), vec![8, 11]);
    }

    #[test]
    fn weekly_uses_iso_weeks_and_yearly_calendar_years() {
        // 2026-01-04 is a Sunday, 2026-01-05 a Monday (new ISO week).
        let sun = at(time::macros::date!(2026 - 01 - 04), 10);
        let mon = at(time::macros::date!(2026 - 01 - 05), 10);
        let tue = at(time::macros::date!(2026 - 01 - 06), 10);
        let p = Policy {
            weekly: 5,
            ..Default::default()
        };
        assert_eq!(kept(&p, &[sun, mon, tue]), vec![0, 2]);
        let dec31 = at(time::macros::date!(2025 - 12 - 31), 10);
        let p = Policy {
            yearly: 5,
            ..Default::default()
        };
        assert_eq!(kept(&p, &[dec31, sun, mon]), vec![0, 2]);
    }

    #[test]
    fn within_is_relative_to_newest_and_tags_keep() {
        let base = 1_000 * DAY;
        let times = [base - 3 * DAY, base - HOUR, base];
        let p = Policy {
            within_ns: Some(2 * DAY),
            ..Default::default()
        };
        assert_eq!(kept(&p, &times), vec![1, 2]);
        let tags = [vec![], vec!["keep".to_string()]];
        let items = [
            Item {
                time_ns: 1,
                tags: &tags[0],
            },
            Item {
                time_ns: 2,
                tags: &tags[1],
            },
        ];
        let p = Policy {
            tags: vec!["keep".into()],
            ..Default::default()
        };
        assert_eq!(
            p.apply(&items, NOW),
            vec![vec![], vec!["tag keep".to_string()]]
        );
    }

    #[test]
    fn reasons_accumulate_and_empty_policy_keeps_nothing() {
        let p = Policy {
            last: 1,
            daily: 1,
            ..Default::default()
        };
        let tags = Vec::new();
        let r = p.apply(
            &[Item {
                time_ns: 5,
                tags: &tags,
            }],
            NOW,
        );
        assert_eq!(r, vec![vec!["last".to_string(), "daily".to_string()]]);
        assert!(Policy::default().is_empty());
        assert_eq!(kept(&Policy::default(), &[1, 2]), Vec::<usize>::new());
    }

    #[test]
    fn future_dated_items_are_kept_and_count_for_nothing() {
        let now = 1_000 * DAY;
        let tags: Vec<String> = Vec::new();
        let item = |t| Item {
            time_ns: t,
            tags: &tags,
        };
        let items = [
            item(now - 2 * DAY),
            item(now - DAY),
            item(now + 4 * 365 * DAY),
            item(now + 60 * 1_000_000_000),
        ];
        let p = Policy {
            last: 1,
            ..Default::default()
        };
        let r = p.apply(&items, now);
        // A minute ahead is clock drift, not the future: it is the newest.
        assert_eq!(r[3], vec!["last".to_string()]);
        assert_eq!(r[2], vec![FUTURE_REASON.to_string()]);
        assert!(r[0].is_empty() && r[1].is_empty());
        // `within` counts from the newest real snapshot, not from 4 years on.
        let p = Policy {
            within_ns: Some(3 * DAY),
            ..Default::default()
        };
        let r = p.apply(&items, now);
        assert!(r.iter().all(|x| !x.is_empty()), "{r:?}");
    }

    #[test]
    fn group_by_parses_and_keys() {
        let g = GroupBy::parse("host,tags").unwrap();
        assert!(g.host && g.tags && !g.paths);
        assert!(GroupBy::parse("nope").is_err());
        let a = g.key("h", &["/a".into()], &["x".into(), "y".into()]);
        let b = g.key("h", &["/b".into()], &["y".into(), "x".into()]);
        assert_eq!(a, b);
    }
}
