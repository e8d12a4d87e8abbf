//! `snap status [JOB]`: for each job, its last run and last success on
//! this machine (from `super::record`), whether a run is going on now (its
//! lock is held), and whether it is overdue: no success within one and a
//! half periods of its `schedule`.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::config::Job;
use super::lock::{self, Acquired};
use super::record::{self, RunRecord};
use crate::Result;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Its last run succeeded, and in time.
    Ok,
    /// Its last run failed.
    Failed,
    /// No success within one and a half periods of its schedule.
    Overdue,
    /// It never ran here.
    NeverRan,
}

/// The status of one job.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// The job.
    pub job: String,
    /// Its schedule (systemd calendar expression), if it has one.
    pub schedule: Option<String>,
    /// Where it stands.
    pub state: State,
    /// A run holds the job's lock now (pid, since when).
    pub running: Option<String>,
    /// The last run.
    pub last_run: Option<RunRecord>,
    /// The last successful run.
    pub last_success: Option<RunRecord>,
}

fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as i64)
}

/// The status of `job` at `now_ns`.
pub fn of(job: &Job, state_dir: &Path, now_ns: i64) -> Result<JobStatus> {
    let rec = record::load(state_dir, &job.name)?;
    let running = if lock::path(state_dir, &job.name).exists() {
        match lock::acquire(state_dir, &job.name, Duration::ZERO)? {
            Acquired::Held(_) => None,
            Acquired::Busy(h) => Some(h.describe()),
        }
    } else {
        None
    };
    let period = job.schedule.as_ref().and_then(|s| s.period());
    let success_at = rec
        .last_success
        .as_ref()
        .and_then(|r| parse_time(&r.started));
    let overdue = match (period, success_at) {
        (Some(p), Some(t)) => {
            now_ns.saturating_sub(t) > (p.as_nanos() as i64).saturating_mul(3) / 2
        }
        _ => false,
    };
    let state = match &rec.last {
        None => State::NeverRan,
        Some(_) if overdue => State::Overdue,
        Some(r) if r.status == "failed" => State::Failed,
        Some(_) => State::Ok,
    };
    Ok(JobStatus {
        job: job.name.clone(),
        schedule: job.schedule.as_ref().map(|s| s.on_calendar()),
        state,
        running,
        last_run: rec.last,
        last_success: rec.last_success,
    })
}
