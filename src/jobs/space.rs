//! `keep.min_free`: for a repository on a disk that fills up (a USB disk
//! plugged in once a week). After the policy, the job's oldest snapshots
//! are forgotten and their data pruned, one at a time, until the
//! repository's file system has that much free space. The newest snapshot
//! of the job, and the one this run made, are never removed; when only
//! they are left the step says that the space could not be reached.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::Serialize;

use crate::commands::prune::{self, GcReport};
use crate::commands::{forget, snapshots};
use crate::repository::{Repository, SnapshotFilter};
use crate::{Error, Result};

/// What was removed for space.
#[derive(Debug, Serialize)]
pub struct SpaceReport {
    /// The free space asked for (bytes).
    pub min_free: u64,
    /// Free bytes before.
    pub free_before: u64,
    /// Free bytes after.
    pub free_after: u64,
    /// Snapshots removed for space (short ids), oldest first.
    pub removed: Vec<String>,
    /// Whether `min_free` is free now.
    pub reached: bool,
    /// The last garbage collection.
    pub gc: Option<GcReport>,
}

/// Free bytes (for an unprivileged user) on the file system holding `p`.
pub fn free_bytes(p: &Path) -> Result<u64> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Invalid(format!("{}: NUL in path", p.display())))?;
    // SAFETY: statvfs fills the zeroed struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(Error::io(p, std::io::Error::last_os_error()));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Removes the oldest snapshots of `filter` (never the newest, never
/// `made`) until `min` bytes are free on the repository's file system.
pub fn free_space(
    repo: &Repository,
    min: u64,
    made: &str,
    filter: &SnapshotFilter,
) -> Result<SpaceReport> {
    let dir = repo
        .backend()
        .staging_dir()
        .and_then(|d| d.parent().map(Path::to_path_buf))
        .ok_or_else(|| {
            Error::Invalid(
                "keep.min_free is for a repository on a local file system, not an object store"
                    .into(),
            )
        })?;
    let free_before = free_bytes(&dir)?;
    let mut r = SpaceReport {
        min_free: min,
        free_before,
        free_after: free_before,
        removed: Vec::new(),
        reached: free_before >= min,
        gc: None,
    };
    while !r.reached {
        crate::interrupt::check()?;
        let rows = snapshots::run(repo, filter)?.rows;
        let newest = rows.iter().max_by_key(|s| s.time_ns).map(|s| s.id.clone());
        let Some(oldest) = rows
            .iter()
            .find(|s| s.id != made && Some(&s.id) != newest.as_ref())
        else {
            break;
        };
        forget::run(
            repo,
            std::slice::from_ref(&oldest.id),
            &SnapshotFilter::default(),
        )?;
        r.removed.push(oldest.short_id.clone());
        r.gc = prune::run(repo, &prune::PruneOptions::default())?.gc;
        r.free_after = free_bytes(&dir)?;
        r.reached = r.free_after >= min;
    }
    Ok(r)
}
