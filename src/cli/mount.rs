//! `snap mount MOUNTPOINT`: flags, and what is said while serving.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use super::args::FilterArgs;
use super::exit;
use super::output::{human, Printer};
use crate::commands::mount::{self, MountOptions};
use crate::repository::Repository;

#[derive(Debug, Args)]
pub struct MountArgs {
    /// An existing directory to mount the snapshots at.
    pub mountpoint: PathBuf,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Memory for file data read from the repository (e.g. 64M, 1G);
    /// directory listings get a quarter of it besides.
    #[arg(long, value_name = "SIZE", default_value = "64M")]
    pub cache_size: String,
    /// Let other users access the mount (needs user_allow_other in
    /// /etc/fuse.conf when not root).
    #[arg(long)]
    pub allow_other: bool,
    /// With --allow-other: do not check the stored modes and owners (every
    /// user may read every file).
    #[arg(long, requires = "allow_other")]
    pub no_default_permissions: bool,
}

pub fn run(a: &MountArgs, repo: Arc<Repository>, p: &Printer) -> Result<i32> {
    let cache_size = super::prune::parse_size(&a.cache_size)
        .with_context(|| format!("--cache-size {:?}", a.cache_size))?;
    let filter = super::run::filter_of(&a.filter)?;
    let list = repo.list_snapshots()?;
    for w in list.warnings() {
        p.warn(&w);
    }
    let snaps: Vec<_> = list.filtered(&filter).cloned().collect();
    let warn_p = Printer {
        json: p.json,
        quiet: p.quiet,
        display: p.display,
    };
    let server = mount::mount(
        repo,
        snaps,
        MountOptions {
            mountpoint: a.mountpoint.clone(),
            cache_size,
            allow_other: a.allow_other,
            default_permissions: !a.no_default_permissions,
            warn: Arc::new(move |m| warn_p.warn(m)),
        },
    )?;
    if !p.json && !p.quiet {
        say!(
            "Now serving the repository at {}\n\
             When finished, quit with Ctrl-c here or unmount it (fusermount3 -u {0}).",
            server.mountpoint().display()
        );
    }
    let r = server.serve()?;
    let text = format!(
        "unmounted {}: {} blobs read, {} served, {} failed reads",
        r.mountpoint,
        r.blobs_read,
        human(r.bytes_read),
        r.read_errors
    );
    p.line(&text, &serde_json::to_value(&r)?);
    Ok(exit::OK)
}
