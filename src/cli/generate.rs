//! `snap completion SHELL` and `snap man`: generated from the clap
//! definition, so they never fall behind the flags.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, ValueEnum};

use super::args::Cli;
use super::exit;

/// Shells `snap completion` writes for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    /// `source <(snap completion bash)`, or save as
    /// /etc/bash_completion.d/snap
    Bash,
    /// Save as `_snap` in a directory of `$fpath`.
    Zsh,
    /// Save as ~/.config/fish/completions/snap.fish
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write a page per command (snap.1, snap-create.1, ...) into DIR
    /// instead of snap(1) to standard output.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completion(a: &CompletionArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "snap", &mut buf);
    write_out(&buf)
}

pub fn man(a: &ManArgs) -> Result<i32> {
    let cmd = Cli::command();
    if let Some(dir) = &a.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        clap_mangen::generate_to(cmd, dir).with_context(|| format!("{}", dir.display()))?;
        return Ok(exit::OK);
    }
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    write_out(&buf)
}

/// Writes to stdout; a closed pipe is reported as such (and ends quietly).
fn write_out(bytes: &[u8]) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(exit::OK)
}
