//! What a job run reports: one [`Summary`] at the end (text, or one JSON
//! object), and [`Event`]s as the run goes (`--json-lines`), so that
//! another program can follow it step by step. The notification command
//! and URL get the same summary as JSON.

use serde::Serialize;

/// How a job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every step succeeded.
    Success,
    /// Every step succeeded, but the snapshot misses files that could not
    /// be read completely.
    Incomplete,
    /// A step failed.
    Failed,
    /// Not run: another run of the job holds its lock.
    Skipped,
}

impl Status {
    /// The word given to hooks (`SNAP_STATUS`) and in texts.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Incomplete => "incomplete",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It did its work.
    Ok,
    /// It did its work with warnings (files not read completely).
    Warning,
    /// It failed.
    Failed,
}

/// One step of a run: `before`, `create`, `prune`, `sync`, `drill`,
/// `after`, `failed`, `finally`.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The step.
    pub step: String,
    /// What it worked on: the sync target's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Its outcome.
    pub status: StepStatus,
    /// Seconds it took.
    pub seconds: f64,
    /// What went wrong (one line, naming the command or object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last lines of a failed command's stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// Its figures (the command's report).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// A notification sent (or not) at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// `command` or `url`.
    pub kind: String,
    /// Whether it was delivered.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The summary of one run of a job.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The job.
    pub job: String,
    /// Its outcome.
    pub status: Status,
    /// Start (RFC 3339).
    pub started: String,
    /// End (RFC 3339).
    pub finished: String,
    /// Seconds the run took.
    pub seconds: f64,
    /// The repository (its name in the configuration).
    pub repository: String,
    /// The snapshot this run made, when one was kept.
    pub snapshot: Option<String>,
    /// The step that failed first.
    pub failed_step: Option<String>,
    /// The first failure, one line.
    pub error: Option<String>,
    /// The last lines of the failed command's stderr, when a command failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// Notifications (filled after they were sent; absent from what the
    /// notifications themselves receive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Notification>,
}

/// What happens during a run, as it happens.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The run began (its lock is held).
    JobStarted {
        /// The job.
        job: &'a str,
        /// When (RFC 3339).
        time: &'a str,
    },
    /// A step began.
    StepStarted {
        /// The job.
        job: &'a str,
        /// The step.
        step: &'a str,
        /// The sync target, for `sync`.
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<&'a str>,
    },
    /// A step ended.
    StepFinished {
        /// The job.
        job: &'a str,
        /// The step and its outcome.
        #[serde(flatten)]
        step: &'a Step,
    },
    /// The run ended.
    JobFinished {
        /// The whole summary.
        #[serde(flatten)]
        summary: &'a Summary,
    },
}
