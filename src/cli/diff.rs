//! `snap diff A B` and `snap diff SNAP PATH`: flags and printing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::args::FilterArgs;
use super::exit;
use super::output::{human, Printer};
use crate::commands::diff::{self, DiffOptions, DiffReport};
use crate::repository::Repository;
use crate::source::Excludes;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old snapshot: `latest` or an id prefix.
    pub from: String,
    /// The new snapshot, or a path on this machine to compare with the
    /// same path in the snapshot (a path has a `/`, or is `.` or `..`).
    pub to: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Also report changes of mode, owner, mtime and extended attributes (`U`).
    #[arg(long)]
    pub metadata: bool,
    /// Leave out live entries matching this glob (repeatable), as the
    /// backup's `--exclude` did.
    #[arg(short = 'e', long = "exclude")]
    pub excludes: Vec<String>,
}

/// Whether the second operand names a path rather than a snapshot.
fn is_path(s: &str) -> bool {
    s.contains('/') || s == "." || s == ".."
}

/// Makes a path absolute and lexically normal, as `create` records it.
fn absolute(p: &str) -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("current directory")?;
    Ok(crate::source::paths::normalize(&cwd, Path::new(p))?.path)
}

pub fn run(a: &DiffArgs, repo: &Repository, p: &Printer) -> Result<i32> {
    let from = super::run::select(repo, &a.from, &a.filter, p, true)?;
    let (report, to_json, to_text) = if is_path(&a.to) {
        let path = absolute(&a.to)?;
        let opts = DiffOptions {
            metadata: a.metadata,
            excludes: Excludes::new(&a.excludes, &[], false, false)?,
        };
        let r = diff::live(repo, &from.snapshot.tree, &path, &from.id.short(), &opts)?;
        let text = format!("{} on this machine", path.display());
        (
            r,
            serde_json::json!({"path": path.display().to_string()}),
            text,
        )
    } else {
        let to = match super::run::select(repo, &a.to, &a.filter, p, true) {
            Ok(s) => s,
            Err(e) if Path::new(&a.to).exists() => {
                return Err(e.context(format!(
                    "to compare with the directory {0:?}, write it as ./{0}",
                    a.to
                )))
            }
            Err(e) => return Err(e),
        };
        let opts = DiffOptions {
            metadata: a.metadata,
            ..Default::default()
        };
        let r = diff::snapshots(repo, &from.snapshot.tree, &to.snapshot.tree, &opts)?;
        let text = format!("snapshot {}", to.id.short());
        (r, Printer::selected_json(&to), text)
    };
    for w in &report.warnings {
        p.warn(w);
    }
    if p.json {
        let v = serde_json::json!({
            "from": Printer::selected_json(&from),
            "to": to_json,
            "changes": report.changes,
            "stats": report.stats,
            "warnings": report.warnings,
        });
        say!("{v}");
    } else if !p.quiet {
        print_text(&from.id.short(), &to_text, &report);
    }
    Ok(exit::OK)
}

fn print_text(from: &str, to: &str, r: &DiffReport) {
    say!("comparing snapshot {from} to {to}:");
    say!("");
    for c in &r.changes {
        let slash = if c.kind == "dir" && c.path != "/" {
            "/"
        } else {
            ""
        };
        say!("{:<5}{}{slash}", c.modifier, c.path);
    }
    if !r.changes.is_empty() {
        say!("");
    }
    let s = &r.stats;
    say!(
        "Files:     {:>5} new, {:>5} removed, {:>5} changed",
        s.files_added,
        s.files_removed,
        s.files_changed
    );
    say!(
        "Dirs:      {:>5} new, {:>5} removed",
        s.dirs_added,
        s.dirs_removed
    );
    say!(
        "Others:    {:>5} new, {:>5} removed, {:>5} changed",
        s.others_added,
        s.others_removed,
        s.others_changed
    );
    if s.type_changed > 0 || s.metadata_changed > 0 {
        say!(
            "Type changed: {}, metadata changed: {}",
            s.type_changed,
            s.metadata_changed
        );
    }
    say!("  Added:   {} in new files", human(s.bytes_added));
    say!("  Removed: {} in removed files", human(s.bytes_removed));
    if s.files_changed > 0 {
        say!(
            "  Changed: {} -> {} in changed files",
            human(s.bytes_changed_before),
            human(s.bytes_changed_after)
        );
    }
}
