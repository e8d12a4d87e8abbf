//! `snap tag --add/--remove/--set TAG SNAP...`: flags and printing.

use anyhow::{bail, Result};
use clap::Args;

use super::args::FilterArgs;
use super::exit;
use super::output::Printer;
use crate::commands::tag::{self, TagOptions};

#[derive(Debug, Args)]
pub struct TagArgs {
    /// Snapshots to change (`latest` or id prefixes).
    #[arg(required = true)]
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Add these tags (`a,b`; repeatable).
    #[arg(long, value_name = "TAG[,TAG...]")]
    pub add: Vec<String>,
    /// Remove these tags (`a,b`; repeatable).
    #[arg(long, value_name = "TAG[,TAG...]")]
    pub remove: Vec<String>,
    /// Replace all tags with these (`a,b`; repeatable; `--set ""` removes every tag).
    #[arg(long, value_name = "TAG[,TAG...]", conflicts_with_all = ["add", "remove"])]
    pub set: Vec<String>,
}

/// `a,b` values as single tags.
fn split(v: &[String]) -> Vec<String> {
    v.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn run(a: &TagArgs, repo: &crate::repository::Repository, p: &Printer) -> Result<i32> {
    if a.add.is_empty() && a.remove.is_empty() && a.set.is_empty() {
        bail!("nothing to do: give --add, --remove or --set");
    }
    let opts = TagOptions {
        add: split(&a.add),
        remove: split(&a.remove),
        set: (!a.set.is_empty()).then(|| split(&a.set)),
    };
    let mut ids = Vec::new();
    for sel in &a.snapshots {
        let s = super::run::select(repo, sel, &a.filter, p, true)?;
        if !ids.contains(&s.id) {
            ids.push(s.id);
        }
    }
    let r = tag::run(repo, &ids, &opts)?;
    let mut lines: Vec<String> = r
        .snapshots
        .iter()
        .map(|s| {
            if s.changed {
                format!(
                    "snapshot {} is now {} (tags: {})",
                    &s.old[..8],
                    &s.new[..8],
                    s.tags.join(",")
                )
            } else {
                format!(
                    "snapshot {} unchanged (tags: {})",
                    &s.old[..8],
                    s.tags.join(",")
                )
            }
        })
        .collect();
    lines.push(format!("modified tags on {} snapshots", r.changed));
    p.line(&lines.join("\n"), &serde_json::to_value(&r)?);
    Ok(exit::OK)
}
