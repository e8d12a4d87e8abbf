//! Hooks: the commands a job runs `before` its backup, `after` it
//! succeeded, when it `failed`, and `finally` in every case.
//!
//! Each hook gets in its environment `SNAP_JOB`, `SNAP_STEP` (the hook's
//! phase), `SNAP_STATUS` (`running` before the backup, then `success` or
//! `failed`), `SNAP_SNAPSHOT` (the snapshot made, if one was kept),
//! `SNAP_ERROR` (the first failure, with the tail of its stderr) and
//! `SNAP_FAILED_STEP`.
//!
//! `before` and `after` hooks stop at the first failure (a later hook may
//! rely on an earlier one). `failed` and `finally` hooks are the way out:
//! every one of them runs, whatever the others do, and a stop signal does
//! not cut them short (their timeout still does).

use serde::Serialize;

use super::config::Cmd;
use super::exec::{self, Input};

/// What hooks are told about the run.
#[derive(Debug, Clone, Default)]
pub struct HookEnv {
    /// The job.
    pub job: String,
    /// `running`, `success`, `failed`.
    pub status: String,
    /// The snapshot made (short id), if one was kept.
    pub snapshot: Option<String>,
    /// The first failure.
    pub error: Option<String>,
    /// The step that failed first.
    pub failed_step: Option<String>,
}

impl HookEnv {
    fn vars(&self, phase: &str) -> Vec<(String, String)> {
        let v = |s: &Option<String>| s.clone().unwrap_or_default();
        vec![
            ("SNAP_JOB".into(), self.job.clone()),
            ("SNAP_STEP".into(), phase.into()),
            ("SNAP_STATUS".into(), self.status.clone()),
            ("SNAP_SNAPSHOT".into(), v(&self.snapshot)),
            ("SNAP_ERROR".into(), v(&self.error)),
            ("SNAP_FAILED_STEP".into(), v(&self.failed_step)),
        ]
    }
}

/// One hook's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct HookResult {
    /// The command (secrets masked).
    pub command: String,
    /// It succeeded.
    pub ok: bool,
    /// How it ended.
    pub how: String,
    /// Seconds it ran.
    pub seconds: f64,
}

/// A phase's outcome.
#[derive(Debug, Default)]
pub struct PhaseResult {
    /// Each hook run.
    pub hooks: Vec<HookResult>,
    /// The first failure.
    pub error: Option<String>,
    /// Its stderr's last lines.
    pub stderr_tail: Option<String>,
    /// A hook was killed because snap is stopping.
    pub interrupted: bool,
}

/// Runs the hooks of `phase` (see the module documentation for which
/// phases stop at the first failure).
pub fn run_phase(phase: &str, cmds: &[Cmd], env: &HookEnv) -> PhaseResult {
    let way_out = matches!(phase, "failed" | "finally");
    let vars = env.vars(phase);
    let mut r = PhaseResult::default();
    for (i, c) in cmds.iter().enumerate() {
        let what = format!("hooks.{phase}[{i}] `{}`", c.label());
        let (ok, how, tail, secs) = match exec::run(c, &vars, Input::Null, !way_out) {
            Ok(o) => {
                r.interrupted |= o.interrupted;
                let msg = (!o.ok).then(|| o.failure(&what));
                (
                    o.ok,
                    msg.unwrap_or(o.how),
                    o.stderr_tail,
                    o.duration.as_secs_f64(),
                )
            }
            Err(e) => (false, format!("{what}: {e}"), String::new(), 0.0),
        };
        r.hooks.push(HookResult {
            command: c.label(),
            ok,
            how: how.clone(),
            seconds: secs,
        });
        if !ok && r.error.is_none() {
            r.error = Some(how);
            r.stderr_tail = (!tail.is_empty()).then_some(tail);
            if !way_out {
                break;
            }
        }
    }
    r
}
