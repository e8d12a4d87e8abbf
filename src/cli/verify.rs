//! `snap verify`: the restore drill on a repository given by --repo.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::args::{Cli, FilterArgs};
use super::exit;
use super::output::Printer;
use crate::jobs::config::{self, Cmd};
use crate::jobs::drill::{self, DrillOptions, DrillReport};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Snapshot: `latest` or an id prefix.
    #[arg(default_value = "latest")]
    pub snapshot: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Percentage of the snapshot's files to restore and verify (files not
    /// verified by earlier runs first).
    #[arg(long, value_name = "PCT", default_value = "5%")]
    pub sample: String,
    /// Also compare each restored file that is unchanged on disk (same
    /// size, mtime, inode) with the live file, byte for byte.
    #[arg(long)]
    pub against_source: bool,
    /// Pipe every dump of the snapshot into this shell command (SNAP_DUMP
    /// names the dump); a non-zero exit fails the drill.
    #[arg(long, value_name = "CMD")]
    pub dump_command: Option<String>,
    /// Kill the dump command (its process group) after this long.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub command_timeout: String,
    /// Scratch directory to restore into (default: in the cache; removed after).
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

pub fn run(cli: &Cli, a: &VerifyArgs, p: &Printer) -> Result<i32> {
    let sample_pct = config::parse_pct(&a.sample)
        .with_context(|| format!("--sample {:?}: a percentage in (0, 100], e.g. 5%", a.sample))?;
    let timeout = humantime::parse_duration(&a.command_timeout)
        .with_context(|| format!("--command-timeout {:?}", a.command_timeout))?;
    let dump_command = a.dump_command.as_deref().map(|c| Cmd {
        timeout,
        ..Cmd::shell(c)
    });
    let repo = super::run::open_repo(cli)?;
    let sel = repo.find_snapshot(&a.snapshot, &super::run::filter_of(&a.filter)?)?;
    p.selected(&sel, true);
    let opts = DrillOptions {
        sample_pct,
        against_source: a.against_source,
        dump_command,
        scratch: a.scratch.clone(),
    };
    let r = drill::run(&repo, &sel.id, &sel.snapshot, &opts)?;
    print_drill(p, &r);
    if let Some(s) = crate::interrupt::received() {
        return Ok(128 + s);
    }
    Ok(if r.errors.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}

fn print_drill(p: &Printer, r: &DrillReport) {
    if p.json {
        say!("{}", serde_json::to_string(r).expect("report serializes"));
        return;
    }
    for e in &r.errors {
        eprintln!("error: {e}");
    }
    if p.quiet {
        return;
    }
    let d = serde_json::to_value(r).expect("report serializes");
    say!("snapshot {}: {}", r.snapshot, super::jobs::drill_line(&d));
    if !r.errors.is_empty() {
        say!(
            "the drill FAILED: {} problem(s), listed above",
            r.errors.len()
        );
    }
}
