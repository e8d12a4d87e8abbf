//! `snap stats [SNAP...]`: flags and printing.

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::args::FilterArgs;
use super::exit;
use super::output::{human, Printer};
use crate::commands::stats::{self, StatsMode, StatsReport};
use crate::format::snapshot::Snapshot;
use crate::format::SnapshotId;
use crate::repository::Repository;

/// `--mode` of `snap stats` (restic's names).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    /// What restoring each snapshot writes (the default).
    RestoreSize,
    /// Files with distinct contents, once each.
    FilesByContents,
    /// The distinct blobs referenced, as stored.
    RawData,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Snapshots to count (`latest` or id prefixes); default: every
    /// snapshot that matches the filters.
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// What the totals count.
    #[arg(long, value_enum, default_value = "restore-size")]
    pub mode: ModeArg,
}

fn chosen(repo: &Repository, a: &StatsArgs, p: &Printer) -> Result<Vec<(SnapshotId, Snapshot)>> {
    if a.snapshots.is_empty() {
        let filter = super::run::filter_of(&a.filter)?;
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
    Ok(out)
}

pub fn run(a: &StatsArgs, repo: &Repository, p: &Printer) -> Result<i32> {
    let mode = match a.mode {
        ModeArg::RestoreSize => StatsMode::RestoreSize,
        ModeArg::FilesByContents => StatsMode::FilesByContents,
        ModeArg::RawData => StatsMode::RawData,
    };
    let snaps = chosen(repo, a, p)?;
    let r = stats::run(repo, &snaps, mode)?;
    if r.missing_blobs > 0 {
        p.warn(&format!(
            "{} referenced blobs are not in the index: run `snap check`",
            r.missing_blobs
        ));
    }
    if p.json {
        say!("{}", serde_json::to_string(&r)?);
    } else if !p.quiet {
        print_text(&r, mode);
    }
    Ok(exit::OK)
}

fn print_text(r: &StatsReport, mode: StatsMode) {
    let row = |k: &str, v: String| say!("{k:>26}:  {v}");
    say!("Stats in {} mode:", r.mode);
    row("Snapshots processed", r.snapshots_count.to_string());
    match mode {
        StatsMode::RestoreSize | StatsMode::FilesByContents => {
            row(
                "Total File Count",
                r.total_file_count.unwrap_or_default().to_string(),
            );
            row("Total Size", human(r.total_size));
        }
        StatsMode::RawData => {
            row(
                "Total Blob Count",
                format!(
                    "{} ({} data, {} tree)",
                    r.data_blobs + r.tree_blobs,
                    r.data_blobs,
                    r.tree_blobs
                ),
            );
            row("Total Uncompressed Size", human(r.raw_size));
            row("Total Size", human(r.stored_size));
            row("Compression Ratio", format!("{:.2}x", r.compression_ratio));
            row(
                "Compression Space Saving",
                format!("{:.2} %", r.compression_space_saving),
            );
            row("Packs", format!("{} ({})", r.packs, human(r.packs_size)));
        }
    }
    say!("");
    row(
        "Restore size",
        format!("{} in {} files", human(r.restore_size), r.restore_files),
    );
    row(
        "Stored size",
        format!(
            "{} in {} blobs",
            human(r.stored_size),
            r.data_blobs + r.tree_blobs
        ),
    );
    row("Deduplication ratio", format!("{:.2}x", r.dedup_ratio));
    row(
        "Repository",
        format!(
            "{} in {} packs",
            human(r.repository_size),
            r.repository_packs
        ),
    );
}
