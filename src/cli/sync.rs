//! `snap sync --to URL | --from URL`: options and printing.

use anyhow::Result;

use super::args::SyncArgs;
use super::exit;
use super::output::{human, Printer};
use crate::backend;
use crate::commands::sync::{self, SyncOptions};

/// Runs `snap sync` for the repository at `repo` (no password is needed:
/// objects are copied as stored).
pub fn run(repo: &str, a: &SyncArgs, p: &Printer) -> Result<i32> {
    let here = backend::open(repo)?;
    let (source, target) = match (&a.to, &a.from) {
        (Some(to), None) => (here, backend::open(to)?),
        (None, Some(from)) => (backend::open(from)?, here),
        _ => anyhow::bail!("give exactly one of --to URL or --from URL"),
    };
    let opts = SyncOptions {
        verify: a.verify,
        delete: a.delete,
        connections: a.connections.max(1),
        state_dir: None,
    };
    let r = sync::run(source.as_ref(), target.as_ref(), &opts)?;
    let mut text = format!(
        "synced {} -> {}: {} objects sent ({}): {} packs, {} snapshots, {} keys{}; {} packs already there",
        r.source,
        r.target,
        r.objects_sent,
        human(r.bytes_sent),
        r.packs_sent,
        r.snapshots_sent,
        r.keys_sent,
        if r.initialized { ", target initialized" } else { "" },
        r.packs_present,
    );
    if a.verify {
        text.push_str(&format!("\nverified {} objects on the target", r.verified));
    }
    if a.delete {
        text.push_str(&format!(
            "\ndeleted on the target: {} snapshots, {} packs",
            r.snapshots_deleted, r.packs_deleted
        ));
    }
    for (side, c) in [("source", r.source_requests), ("target", r.target_requests)] {
        if let Some(c) = c {
            text.push_str(&format!("\n{side} requests: {}", c.total()));
        }
    }
    for d in &r.damaged {
        text.push_str(&format!("\ndamaged in the source, not copied: {d}"));
    }
    p.line(&text, &serde_json::to_value(&r)?);
    Ok(if r.damaged.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
