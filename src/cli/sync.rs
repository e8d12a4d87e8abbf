//! `snap sync --to URL | --from URL`: options and printing.

use anyhow::Result;
use zeroize::Zeroizing;

use super::args::SyncArgs;
use super::exit;
use super::output::{human, Printer};
use crate::backend::{self, Backend};
use crate::commands::sync::{self, SyncOptions};
use crate::repository::Repository;

/// Runs `snap sync` for the repository at `repo`. The password (from
/// `password`) is asked for only when there is something to send or to
/// delete: deciding what is safe to copy needs the key.
pub fn run(
    repo: &str,
    a: &SyncArgs,
    p: &Printer,
    password: &dyn Fn() -> Result<Zeroizing<String>>,
) -> Result<i32> {
    let here = backend::open(repo)?;
    let (source, target) = match (&a.to, &a.from) {
        (Some(to), None) => (here, backend::open(to)?),
        (None, Some(from)) => (backend::open(from)?, here),
        _ => return Err(super::usage("give exactly one of --to URL or --from URL")),
    };
    let opts = SyncOptions {
        verify: a.verify,
        delete: a.delete,
        connections: a.connections.max(1),
        state_dir: None,
        progress: Default::default(),
    };
    let session = p.begin("objects");
    // Asked at most once, however many sides are unlocked.
    let pw_once: std::cell::OnceCell<Zeroizing<String>> = std::cell::OnceCell::new();
    let unlock = |be: Box<dyn Backend>, config: &[u8]| -> crate::Result<Repository> {
        let pw = match pw_once.get() {
            Some(pw) => pw,
            None => {
                // The bar is hidden while a prompt may wait on the terminal.
                let pw = session
                    .suspend(password)
                    .map_err(|e| crate::Error::Invalid(format!("{e:#}")))?;
                pw_once.get_or_init(|| pw)
            }
        };
        Repository::open_with_config(be, config, pw.as_bytes())
    };
    let opts = SyncOptions {
        progress: session.progress(),
        ..opts
    };
    let r = sync::run(source, target.as_ref(), &opts, &unlock)?;
    drop(session);
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
        if r.packs_kept > 0 {
            text.push_str(&format!(
                " ({} packs kept: a source snapshot may need them)",
                r.packs_kept
            ));
        }
    }
    for (side, c) in [("source", r.source_requests), ("target", r.target_requests)] {
        if let Some(c) = c {
            text.push_str(&format!("\n{side} requests: {}", c.total()));
        }
    }
    for d in &r.damaged {
        text.push_str(&format!("\ndamaged in the source, not copied: {d}"));
    }
    if !r.snapshots_not_sent.is_empty() {
        text.push_str(&format!(
            "\n{} snapshot(s) not sent: their data is not complete",
            r.snapshots_not_sent.len()
        ));
    }
    p.line(&text, &serde_json::to_value(&r)?);
    for e in &r.errors {
        eprintln!("error: {e}");
    }
    Ok(if r.damaged.is_empty() && r.errors.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
