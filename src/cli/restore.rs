//! `snap restore`'s flags that fit a restore to what is in the target
//! (`--overwrite`, `--delete`, `--dry-run`, `--strip-components`), the
//! `SNAP:SUBPATH` form of its snapshot argument, and its summary.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::output::{human, Printer};
use super::usage;
use crate::commands::restore::{Action, Overwrite, RestoreReport};
use crate::repository::Selected;

/// `--overwrite` (as restic's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OverwriteArg {
    /// Write every file again.
    Always,
    /// Leave a file that already holds the snapshot's content (checked
    /// chunk by chunk); set its metadata where it differs.
    IfChanged,
    /// Replace only what is older than the snapshot's entry.
    IfNewer,
    /// Never replace anything already in the target.
    Never,
}

impl From<OverwriteArg> for Overwrite {
    fn from(a: OverwriteArg) -> Overwrite {
        match a {
            OverwriteArg::Always => Overwrite::Always,
            OverwriteArg::IfChanged => Overwrite::IfChanged,
            OverwriteArg::IfNewer => Overwrite::IfNewer,
            OverwriteArg::Never => Overwrite::Never,
        }
    }
}

/// How a restore fits what is in the target already.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// What to do with a file already in the target (see docs/restore.md).
    #[arg(long, value_enum, value_name = "WHEN", default_value = "if-changed")]
    pub overwrite: OverwriteArg,
    /// Remove from the directories restored what the snapshot does not
    /// have (only what the selection would restore; never above the
    /// restored tree).
    #[arg(long)]
    pub delete: bool,
    /// Say what would be written, left unchanged, kept and deleted;
    /// change nothing (not even make the target).
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Drop the first N names of every restored path (entries with no
    /// more than N names are left out).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub strip_components: usize,
}

impl FitArgs {
    /// Refuses what `--to-command` cannot do.
    pub fn check_to_command(&self, subpath: Option<&Path>) -> Result<()> {
        if self.delete || self.dry_run || self.strip_components > 0 || subpath.is_some() {
            return Err(usage(
                "--to-command sends one file: --delete, --dry-run, --strip-components \
                 and SNAP:SUBPATH are for --to",
            ));
        }
        Ok(())
    }
}

/// `SNAP:SUBPATH` (restic's `snapshotID:subfolder`): the selector, and
/// the directory of the snapshot whose contents to restore.
pub fn split_snapshot(arg: &str) -> (&str, Option<PathBuf>) {
    match arg.split_once(':') {
        Some((snap, sub)) => (snap, Some(PathBuf::from(sub))),
        None => (arg, None),
    }
}

/// Prints one line of a dry run (text; with --json they go in the report).
pub fn print_action(a: &Action) {
    let kind = if a.kind == "file" {
        String::new()
    } else {
        format!(" ({})", a.kind)
    };
    say!("{:<9} {}{kind}", a.action.word(), a.path);
}

/// The summary of a restore or dry run; `actions` (--json only) are the
/// dry run's.
pub fn print(p: &Printer, sel: &Selected, r: &RestoreReport, actions: Vec<Action>) {
    if !r.dry_run {
        return p.restore(sel, r);
    }
    if p.json {
        let mut v = serde_json::to_value(r).expect("reports serialize");
        v["snapshot"] = Printer::selected_json(sel);
        v["actions"] = serde_json::to_value(actions).expect("actions serialize");
        say!("{v}");
        return;
    }
    for e in &r.errors {
        eprintln!("error: {e}");
    }
    if !p.quiet {
        say!(
            "dry run of snapshot {}: would write {} files ({}), leave {} unchanged, keep {}, \
             delete {}; nothing was changed",
            sel.id.short(),
            r.files_written,
            human(r.bytes),
            r.files_unchanged,
            r.files_kept,
            r.deleted
        );
    }
}
