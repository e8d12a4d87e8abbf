//! `snap repair packs` and `snap repair snapshots`: flags, validation and
//! output (`repair index` is in `run.rs`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::output::{human, Printer};
use super::{exit, OrUsage};
use crate::commands::repair::packs::{self, RepairPacksOptions, RepairPacksReport};
use crate::commands::repair::snapshots::{self, RepairSnapshotsOptions, RepairSnapshotsReport};
use crate::repository::Repository;

#[derive(Debug, Args)]
pub struct RepairPacksArgs {
    /// Also repair these packs (id prefixes), damaged or not.
    pub packs: Vec<String>,
    /// Show what would be salvaged and lost; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Give up waiting for running backups after this long.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub lock_wait: String,
}

#[derive(Debug, Args)]
pub struct RepairSnapshotsArgs {
    /// Snapshots to repair (`latest` or id prefixes); default: all.
    pub snapshots: Vec<String>,
    /// Remove each original once its repaired version is saved.
    #[arg(long)]
    pub forget: bool,
    /// Show what would change; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

pub fn run_packs(a: &RepairPacksArgs, repo: &Repository, p: &Printer) -> Result<i32> {
    let lock_wait: Duration = humantime::parse_duration(&a.lock_wait)
        .or_usage(|| format!("--lock-wait {:?} (e.g. 10m, 1h)", a.lock_wait))?;
    let r = packs::run(
        repo,
        &RepairPacksOptions {
            packs: a.packs.clone(),
            dry_run: a.dry_run,
            lock_wait,
        },
    )?;
    print_packs(p, &r);
    Ok(exit::OK)
}

fn print_packs(p: &Printer, r: &RepairPacksReport) {
    if p.json {
        say!("{}", serde_json::to_string(r).expect("report serializes"));
        return;
    }
    if p.quiet {
        return;
    }
    if r.packs.is_empty() {
        say!("no damaged packs: nothing to repair");
        return;
    }
    for k in &r.packs {
        say!(
            "pack {} ({}): {} blob(s), {} intact, {} damaged; {} copied, {} lost",
            &k.pack[..8],
            k.reason,
            k.blobs,
            k.intact,
            k.damaged,
            k.copied,
            k.lost
        );
        if let Some(n) = &k.note {
            say!("  {n}");
        }
    }
    if r.dry_run {
        say!("dry run: nothing changed");
    } else {
        say!(
            "wrote {} new pack(s) ({}), removed {} damaged pack(s)",
            r.packs_written,
            human(r.bytes_written),
            r.packs_deleted
        );
    }
    if r.packs.iter().any(|k| k.lost > 0) {
        say!(
            "snapshots that used lost blobs: rewrite them with `snap repair snapshots`, \
             or run `snap create` again for sources still on disk"
        );
    }
}

pub fn run_snapshots(a: &RepairSnapshotsArgs, repo: Arc<Repository>, p: &Printer) -> Result<i32> {
    let r = snapshots::run(
        repo,
        &RepairSnapshotsOptions {
            snapshots: a.snapshots.clone(),
            forget: a.forget,
            dry_run: a.dry_run,
        },
    )?;
    print_snapshots(p, &r);
    Ok(exit::OK)
}

fn print_snapshots(p: &Printer, r: &RepairSnapshotsReport) {
    if p.json {
        say!("{}", serde_json::to_string(r).expect("report serializes"));
        return;
    }
    if p.quiet {
        return;
    }
    let would = if r.dry_run { "would " } else { "" };
    for s in r.snapshots.iter().filter(|s| !s.changes.is_empty()) {
        say!(
            "snapshot {} of [{}] at {} on {}",
            &s.id[..8],
            s.paths.join(" "),
            s.time,
            s.host
        );
        for c in &s.changes {
            say!("  {c}");
        }
        if let Some(n) = &s.new_id {
            say!("  saved repaired snapshot {}", &n[..8]);
        } else if r.dry_run && !s.unrepairable {
            say!("  would save a repaired snapshot");
        }
        if s.removed {
            say!("  {would}remove snapshot {}", &s.id[..8]);
        } else if s.unrepairable {
            say!("  left as is: add --forget to remove it");
        }
    }
    if r.modified == 0 && r.unrepairable == 0 {
        say!("no snapshot needs repair");
    } else {
        say!(
            "{would}repair {} snapshot(s); {} with nothing left to keep",
            r.modified,
            r.unrepairable
        );
    }
}
