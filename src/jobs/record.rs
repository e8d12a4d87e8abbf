//! The record of a job's runs on this machine (`STATE_DIR/JOB.json`): the
//! last run and the last successful one, for `snap status`. Written after
//! every run that was not skipped, atomically (a temporary file renamed).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::summary::{Status, Summary};
use crate::{Error, Result};

/// One run, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// `success`, `incomplete`, `failed`.
    pub status: String,
    /// Start (RFC 3339).
    pub started: String,
    /// End (RFC 3339).
    pub finished: String,
    /// The snapshot made.
    pub snapshot: Option<String>,
    /// The step that failed.
    pub failed_step: Option<String>,
    /// The first failure.
    pub error: Option<String>,
}

/// What is recorded of a job.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct JobRecord {
    /// The last run.
    pub last: Option<RunRecord>,
    /// The last run that succeeded (or was incomplete).
    pub last_success: Option<RunRecord>,
}

/// The record file of job `job`.
pub fn path(dir: &Path, job: &str) -> PathBuf {
    dir.join(format!("{job}.json"))
}

/// The record of `job` (empty when it never ran here).
pub fn load(dir: &Path, job: &str) -> Result<JobRecord> {
    let p = path(dir, job);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            Error::Invalid(format!(
                "{} is not a job record ({e}); remove it, the next run writes it again",
                p.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(JobRecord::default()),
        Err(e) => Err(Error::io(p, e)),
    }
}

/// Adds the run of `s` to its job's record.
pub fn save(dir: &Path, s: &Summary) -> Result<()> {
    let mut rec = load(dir, &s.job).unwrap_or_default();
    let run = RunRecord {
        status: s.status.as_str().to_string(),
        started: s.started.clone(),
        finished: s.finished.clone(),
        snapshot: s.snapshot.clone(),
        failed_step: s.failed_step.clone(),
        error: s.error.clone(),
    };
    if matches!(s.status, Status::Success | Status::Incomplete) {
        rec.last_success = Some(run.clone());
    }
    rec.last = Some(run);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let p = path(dir, &s.job);
    let tmp = dir.join(format!(".{}.json.{}", s.job, std::process::id()));
    let bytes = serde_json::to_vec_pretty(&rec).expect("record serializes");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))
}
