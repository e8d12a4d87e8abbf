//! `snap unlock`: removes the locks of processes that are provably gone
//! (format-spec/07, rules L1-L2: same machine, boot and PID namespace and
//! the process has exited, or the machine rebooted since), and says which
//! locks it kept and why. `--remove-all` removes every lock: for when the
//! admin knows that no snap process uses the repository.

use serde::Serialize;

use crate::backend::FileKind;
use crate::repository::host::ProcessIdentity;
use crate::repository::locks::{self, Liveness, LockInfo};
use crate::repository::Repository;
use crate::Result;

/// One lock and what was done with it.
#[derive(Debug, Serialize)]
pub struct LockRow {
    /// Object name under `locks/`.
    pub name: String,
    /// Host name recorded in it.
    pub host: String,
    /// Process id recorded in it.
    pub pid: u32,
    /// Whether it was removed.
    pub removed: bool,
    /// Why it was removed or kept.
    pub reason: String,
}

/// What `unlock` did.
#[derive(Debug, Default, Serialize)]
pub struct UnlockReport {
    /// Every lock found.
    pub locks: Vec<LockRow>,
}

/// Runs `snap unlock`.
pub fn run(repo: &Repository, remove_all: bool) -> Result<UnlockReport> {
    let me = ProcessIdentity::current();
    let mut report = UnlockReport::default();
    for (name, bytes) in locks::list_raw(repo, "")? {
        let info = serde_json::from_slice::<LockInfo>(&bytes).ok();
        let (remove, reason) = match (&info, remove_all) {
            (_, true) => (true, "--remove-all".to_string()),
            (None, false) => (
                false,
                "does not parse; remove it with --remove-all if no snap process is running".into(),
            ),
            (Some(i), false) => match i.liveness(&me) {
                Liveness::Dead(why) => (true, why),
                Liveness::Alive => (false, format!("process {} is running", i.pid)),
                Liveness::Unknown => (
                    false,
                    format!(
                        "held by a process on another machine or in another PID namespace; \
                         prune removes it once it has not been refreshed for {}s, or use \
                         --remove-all if you know it is not running",
                        i.stale_after().as_secs()
                    ),
                ),
            },
        };
        if remove {
            repo.backend().delete(FileKind::Lock, &name)?;
        }
        report.locks.push(LockRow {
            host: info.as_ref().map(|i| i.host.clone()).unwrap_or_default(),
            pid: info.as_ref().map(|i| i.pid).unwrap_or(0),
            name,
            removed: remove,
            reason,
        });
    }
    Ok(report)
}
