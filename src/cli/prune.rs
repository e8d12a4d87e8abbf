//! `snap forget` and `snap prune`: flags, validation and output.

use anyhow::Result;
use clap::Args;

use super::output::{human, Printer};
use super::{exit, usage, OrUsage};
use crate::commands::prune::{PruneOptions, PruneReport};
use crate::commands::retention::{GroupBy, Policy};
use crate::commands::{forget, prune};
use crate::repository::Repository;

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Snapshots to remove (id prefixes, or `latest`); or none, and a
    /// --keep-* policy.
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: super::args::FilterArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Show what would be removed; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Allow the policy to remove every snapshot of a group.
    #[arg(long)]
    pub allow_empty: bool,
}

/// The retention policy of `forget` and `prune`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest snapshot of each of the last N hours (that have one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,
    /// Keep the newest snapshot of each of the last N days (UTC).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest snapshot of each of the last N ISO weeks.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep the newest snapshot of each of the last N months.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// Keep the newest snapshot of each of the last N years.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep every snapshot within this duration of the group's newest (e.g. 30days, 2w).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Keep every snapshot with this tag (repeatable).
    #[arg(long = "keep-tag", value_name = "TAG")]
    pub keep_tags: Vec<String>,
    /// Group snapshots by these fields before applying the policy.
    #[arg(
        short = 'g',
        long,
        value_name = "host,paths,tags",
        default_value = "host,paths"
    )]
    pub group_by: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Show what would be removed; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Allow the policy to remove every snapshot of a group.
    #[arg(long)]
    pub allow_empty: bool,
    /// Only forget snapshots; do not free space.
    #[arg(long)]
    pub no_gc: bool,
    /// Repack packs with more than this percentage unused.
    #[arg(long, value_name = "PCT", default_value = "10")]
    pub max_unused: String,
    /// Read at most this much of packs to repack per run (e.g. 2G).
    #[arg(long, value_name = "SIZE")]
    pub max_repack_size: Option<String>,
    /// Give up waiting for running backups after this long.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub lock_wait: String,
}

/// Parses `123`, `10K`, `500M`, `2G`, `1T` (binary units, optional `iB`/`B`).
pub(super) fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c @ ('k' | 'K' | 'm' | 'M' | 'g' | 'G' | 't' | 'T')) => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => 1 << 40,
            };
            (&t[..t.len() - 1], m)
        }
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .or_usage(|| format!("size {s:?} (e.g. 500M, 2G)"))?;
    if n < 0.0 {
        return Err(usage(format!("size {s:?} is negative")));
    }
    Ok((n * mult as f64) as u64)
}

impl PolicyArgs {
    /// The policy and its grouping.
    fn parse(&self) -> Result<(Policy, GroupBy)> {
        let within = match &self.keep_within {
            Some(s) => Some(
                humantime::parse_duration(s)
                    .or_usage(|| format!("--keep-within {s:?} (e.g. 30days, 2w, 1y)"))?
                    .as_nanos()
                    .min(i64::MAX as u128) as i64,
            ),
            None => None,
        };
        let policy = Policy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within_ns: within,
            tags: self.keep_tags.clone(),
        };
        let group_by =
            GroupBy::parse(&self.group_by).map_err(|e| usage(format!("--group-by: {e}")))?;
        Ok((policy, group_by))
    }
}

impl PruneArgs {
    fn options(&self) -> Result<PruneOptions> {
        let (policy, group_by) = self.policy.parse()?;
        let max_unused: f64 = self
            .max_unused
            .trim_end_matches('%')
            .parse()
            .or_usage(|| format!("--max-unused {:?}", self.max_unused))?;
        if !(0.0..=100.0).contains(&max_unused) {
            return Err(usage("--max-unused must be between 0 and 100"));
        }
        Ok(PruneOptions {
            policy,
            group_by,
            dry_run: self.dry_run,
            allow_empty: self.allow_empty,
            gc: !self.no_gc,
            max_unused_pct: max_unused,
            max_repack_bytes: self
                .max_repack_size
                .as_deref()
                .map(parse_size)
                .transpose()?,
            lock_wait: humantime::parse_duration(&self.lock_wait)
                .or_usage(|| format!("--lock-wait {:?} (e.g. 10m, 1h)", self.lock_wait))?,
            progress: Default::default(),
        })
    }
}

pub fn run_forget(a: &ForgetArgs, repo: &Repository, p: &Printer) -> Result<i32> {
    let filter = super::run::filter_of(&a.filter)?;
    let (policy, group_by) = a.policy.parse()?;
    let r = match (a.snapshots.is_empty(), policy.is_empty()) {
        (false, true) => forget::run_ids(repo, &a.snapshots, &filter, a.dry_run)?,
        (true, false) => {
            let fp = forget::ForgetPolicy {
                policy,
                group_by,
                allow_empty: a.allow_empty,
            };
            forget::run_policy(repo, &filter, &fp, a.dry_run)?
        }
        (false, false) => {
            return Err(usage(
                "give snapshot ids or a --keep-* policy, not both (forget by id, then apply the policy)",
            ))
        }
        (true, true) => {
            return Err(usage(
                "nothing to forget: give snapshot ids, or a policy (--keep-last N, --keep-daily N, ...)",
            ))
        }
    };
    for w in &r.warnings {
        p.warn(w);
    }
    if p.json {
        say!("{}", serde_json::to_string(&r)?);
    } else if !p.quiet {
        let mut by_group: Vec<_> = r.decisions.iter().collect();
        by_group.sort_by(|a, b| a.group.cmp(&b.group));
        let mut group = None;
        for d in by_group {
            if group != Some(&d.group) {
                group = Some(&d.group);
                match super::output::describe_group(&d.group) {
                    Some(g) => say!("group ({g}):"),
                    None => say!("all snapshots (one group):"),
                }
            }
            say!(
                "  {} {}  {}  {}  {}  [{}]",
                if d.keep { "keep  " } else { "remove" },
                d.id.get(..8).unwrap_or(&d.id),
                d.time,
                d.host,
                d.paths.join(" "),
                if d.keep {
                    d.reasons.join(", ")
                } else {
                    "no rule".to_string()
                }
            );
        }
        let verb = if r.dry_run { "would remove" } else { "removed" };
        if r.decisions.is_empty() {
            for s in &r.snapshots {
                say!(
                    "{verb} snapshot {} ({}, host {}, paths {})",
                    s.short_id,
                    s.time,
                    s.host,
                    s.paths.join(" ")
                );
            }
        } else {
            say!(
                "{verb} {} of {} snapshot(s)",
                r.removed.len(),
                r.decisions.len()
            );
        }
        for d in &r.damaged {
            say!("{verb} damaged snapshot {}", d.get(..8).unwrap_or(d));
        }
        if !r.dry_run {
            say!("run `snap prune` to free the space they used");
        }
    }
    Ok(exit::OK)
}

pub fn run_prune(a: &PruneArgs, repo: &Repository, p: &Printer) -> Result<i32> {
    let mut opts = a.options()?;
    let r = {
        let session = p.begin("packs");
        opts.progress = session.progress();
        prune::run(repo, &opts)?
    };
    for d in r.snapshots.iter().filter(|d| {
        d.reasons
            .iter()
            .any(|r| r == crate::commands::retention::FUTURE_REASON)
    }) {
        p.warn(&format!(
            "snapshot {} ({}, host {}) is dated ahead of this machine's clock: kept, and not \
             counted by the policy; forget it by id if its time is wrong",
            d.id.get(..8).unwrap_or(&d.id),
            d.time,
            d.host
        ));
    }
    print_prune(p, &r);
    Ok(exit::OK)
}

fn print_prune(p: &Printer, r: &PruneReport) {
    if p.json {
        p.emit_json(r);
        return;
    }
    if p.quiet {
        return;
    }
    for d in &r.snapshots {
        let verdict = if d.keep { "keep  " } else { "remove" };
        let why = if d.keep {
            d.reasons.join(", ")
        } else {
            "no rule".to_string()
        };
        say!(
            "{verdict} {}  {}  {}  {}  [{why}]",
            d.id.get(..8).unwrap_or(&d.id),
            d.time,
            d.host,
            d.paths.join(" ")
        );
    }
    let verb = if r.dry_run { "would remove" } else { "removed" };
    say!("{verb} {} of {} snapshot(s)", r.removed, r.snapshots.len());
    if let Some(g) = &r.gc {
        let verb = if r.dry_run { "would free" } else { "freed" };
        say!(
            "packs: {} before ({}), {} deleted, {} repacked ({} blobs copied into {} new packs, {})",
            g.packs_before,
            human(g.bytes_before),
            g.packs_deleted,
            g.packs_repacked,
            g.blobs_copied,
            g.packs_written,
            human(g.bytes_written)
        );
        say!(
            "{verb} {} (needed data: {})",
            human(g.bytes_freed.max(0) as u64),
            human(g.bytes_needed)
        );
        if g.packs_damaged_kept > 0 {
            say!(
                "left {} damaged pack(s) for `snap repair packs`, which salvages what is intact",
                g.packs_damaged_kept
            );
        }
        if g.creates_waited > 0 || g.stale_locks_removed > 0 {
            say!(
                "waited for {} running backup(s); removed {} stale lock(s)",
                g.creates_waited,
                g.stale_locks_removed
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10").unwrap(), 10);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert!(parse_size("x").is_err());
    }
}
