//! `snap run JOB`: one run of a job, step by step.
//!
//! Order: take the job lock -> ping `URL/start` -> `before` hooks ->
//! create (files and every dump in ONE snapshot, tagged with the job's
//! name) -> prune by `keep` -> sync to each `sync_to` -> drill -> `after`
//! hooks on success, `failed` hooks on any failure -> `finally` hooks
//! always -> notification -> the job's record (for `snap status`).
//!
//! A failing `before` hook, dump or create leaves no snapshot of the run
//! (create commits nothing that failed) and skips the later steps. Once
//! the snapshot is saved it is kept whatever follows: prune, sync and
//! drill each run even when an earlier one failed, and a failure there
//! fails the job with the snapshot named in the summary. A stop signal
//! ends the main steps at the next stop point; the `failed` and `finally`
//! hooks still run.
//!
//! The steps call the same command functions as the CLI (`create::run`,
//! `forget::run`, `prune::run`, `sync::run`, the drill); the commands
//! know nothing of jobs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::config::{Config, Job, On};
use super::hooks::{self, HookEnv};
use super::lock::{self, Acquired};
use super::notify::{self, Ping};
use super::repos::{self, Password};
use super::steps::{self, Outcome};
use super::summary::{Event, Notification, Status, Step, StepStatus, Summary};
use super::{drill, record};
use crate::repository::snapshots::{now_ns, rfc3339};
use crate::repository::Repository;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Wait this long for another run of the job to end (zero: skip at once).
    pub wait: Duration,
    /// Where locks and run records live.
    pub state_dir: PathBuf,
}

/// One run in progress.
struct Run<'a> {
    job: &'a Job,
    events: &'a mut dyn FnMut(&Event<'_>),
    summary: Summary,
    started: Instant,
}

impl Run<'_> {
    fn step(
        &mut self,
        name: &str,
        target: Option<&str>,
        f: impl FnOnce() -> Outcome,
    ) -> StepStatus {
        (self.events)(&Event::StepStarted {
            job: &self.job.name,
            step: name,
            target,
        });
        let t = Instant::now();
        let o = f();
        let step = Step {
            step: name.to_string(),
            target: target.map(str::to_string),
            status: o.status,
            seconds: t.elapsed().as_secs_f64(),
            error: o.error,
            stderr_tail: o.stderr_tail,
            detail: o.detail,
        };
        if step.status == StepStatus::Failed && self.summary.failed_step.is_none() {
            self.summary.failed_step = Some(match &step.target {
                Some(t) => format!("{name} {t}"),
                None => name.to_string(),
            });
            self.summary.error = step.error.clone();
            self.summary.stderr_tail = step.stderr_tail.clone();
        }
        (self.events)(&Event::StepFinished {
            job: &self.job.name,
            step: &step,
        });
        let status = step.status;
        self.summary.steps.push(step);
        status
    }

    fn failed(&self) -> bool {
        self.summary.failed_step.is_some()
    }

    fn hooks(&mut self, phase: &str, cmds: &[super::config::Cmd]) -> StepStatus {
        if cmds.is_empty() {
            return StepStatus::Ok;
        }
        let env = HookEnv {
            job: self.job.name.clone(),
            status: if phase == "before" {
                "running".into()
            } else if self.failed() {
                "failed".into()
            } else {
                "success".into()
            },
            snapshot: self.summary.snapshot.clone(),
            error: self
                .summary
                .error
                .as_ref()
                .map(|e| match &self.summary.stderr_tail {
                    Some(t) => format!("{e}; stderr: {}", super::exec::last_lines(t, 5)),
                    None => e.clone(),
                }),
            failed_step: self.summary.failed_step.clone(),
        };
        self.step(phase, None, || {
            let r = hooks::run_phase(phase, cmds, &env);
            let detail = json!({ "hooks": r.hooks });
            match r.error {
                None => Outcome::ok(detail),
                Some(e) => Outcome {
                    status: StepStatus::Failed,
                    error: Some(e),
                    stderr_tail: r.stderr_tail,
                    detail,
                },
            }
        })
    }
}

/// Runs job `job` of `cfg` once. Never fails: every failure is in the
/// summary (`status`, `failed_step`, `error`). `events` sees each step as
/// it starts and ends.
pub fn run_job(
    cfg: &Config,
    job: &Job,
    opts: &RunOptions,
    password: &Password<'_>,
    events: &mut dyn FnMut(&Event<'_>),
) -> Summary {
    let started_ns = now_ns();
    let mut run = Run {
        job,
        events,
        summary: Summary {
            job: job.name.clone(),
            status: Status::Success,
            started: rfc3339(started_ns),
            finished: String::new(),
            seconds: 0.0,
            repository: job.repository.clone(),
            snapshot: None,
            failed_step: None,
            error: None,
            stderr_tail: None,
            steps: Vec::new(),
            notifications: Vec::new(),
        },
        started: Instant::now(),
    };
    let _lock = match lock::acquire(&opts.state_dir, &job.name, opts.wait) {
        Ok(Acquired::Held(l)) => l,
        Ok(Acquired::Busy(holder)) => {
            run.summary.status = Status::Skipped;
            run.summary.error = Some(format!(
                "job {} is already running ({}; lock {}): this run was skipped \
                 (use --wait DURATION to wait for it)",
                job.name,
                holder.describe(),
                lock::path(&opts.state_dir, &job.name).display()
            ));
            return finish(run, &mut Vec::new(), opts);
        }
        Err(e) => {
            run.summary.status = Status::Failed;
            run.summary.failed_step = Some("lock".into());
            run.summary.error = Some(format!("cannot take the job's lock: {e}"));
            return finish(run, &mut Vec::new(), opts);
        }
    };
    (run.events)(&Event::JobStarted {
        job: &job.name,
        time: &run.summary.started.clone(),
    });
    let mut sent = Vec::new();
    if let Some(url) = &job.notify.url {
        let body = serde_json::to_vec(&json!({"job": job.name, "started": run.summary.started}))
            .unwrap_or_default();
        sent.push(notify::ping(url, Ping::Start, &body));
    }
    let mut incomplete = false;
    if run.hooks("before", &job.hooks.before) != StepStatus::Failed
        && crate::interrupt::received().is_none()
    {
        let repo_cfg = cfg.repository(&job.repository).expect("validated");
        let mut repo = None;
        let mut made = None;
        run.step("create", None, || {
            let r = match repos::open(repo_cfg, password) {
                Ok(r) => r,
                Err(e) => return e.into(),
            };
            match steps::create_step(&r, job) {
                Ok(rep) => {
                    made = Some(rep.snapshot.clone());
                    repo = Some(r);
                    let mut o = Outcome::ok(serde_json::to_value(&rep).unwrap_or_default());
                    if rep.incomplete {
                        o.status = StepStatus::Warning;
                        incomplete = true;
                    }
                    o
                }
                Err(e) => steps::create_failed(e),
            }
        });
        if let (Some(repo), Some(made)) = (repo, made) {
            run.summary.snapshot = Some(made[..8.min(made.len())].to_string());
            after_snapshot(&mut run, cfg, job, &repo, &made, password);
        }
    }
    if let Some(s) = crate::interrupt::received() {
        if !run.failed() {
            let name = crate::interrupt::name(s);
            run.summary.failed_step = Some("interrupted".into());
            run.summary.error = Some(format!("stopped by {name}"));
        }
    }
    if !run.failed() {
        run.hooks("after", &job.hooks.after);
    }
    if run.failed() {
        run.hooks("failed", &job.hooks.failed);
    }
    run.hooks("finally", &job.hooks.finally);
    run.summary.status = if run.failed() {
        Status::Failed
    } else if incomplete {
        Status::Incomplete
    } else {
        Status::Success
    };
    finish(run, &mut sent, opts)
}

/// Prune, sync and drill: each runs even if an earlier one failed.
fn after_snapshot(
    run: &mut Run<'_>,
    cfg: &Config,
    job: &Job,
    repo: &Arc<Repository>,
    made: &str,
    password: &Password<'_>,
) {
    let kept = |mut o: Outcome| {
        if let Some(e) = o.error.take() {
            o.error = Some(format!(
                "{e} (the snapshot {} of this run is saved and kept)",
                &made[..8]
            ));
        }
        o
    };
    if let Some(keep) = &job.keep {
        if crate::interrupt::received().is_none() {
            run.step("prune", None, || {
                kept(steps::prune_step(repo, job, keep, made))
            });
        }
    }
    for target in &job.sync_to {
        if crate::interrupt::received().is_some() {
            break;
        }
        run.step("sync", Some(target), || {
            match steps::sync_step(cfg, job, target, job.sync_delete, password) {
                Ok(r) => {
                    let detail = serde_json::to_value(&r).unwrap_or_default();
                    let mut errs: Vec<String> = r.errors.clone();
                    errs.extend(
                        r.damaged
                            .iter()
                            .map(|d| format!("damaged, not copied: {d}")),
                    );
                    if errs.is_empty() {
                        Outcome::ok(detail)
                    } else {
                        kept(Outcome::failed(errs.join("; "), detail))
                    }
                }
                Err(e) => kept(e.into()),
            }
        });
    }
    if let Some(d) = &job.drill {
        if crate::interrupt::received().is_none() {
            run.step("drill", None, || {
                let opts = drill::DrillOptions {
                    sample_pct: d.sample_pct,
                    against_source: d.against_source,
                    dump_command: d.dump_command.clone(),
                    scratch: d.scratch.clone(),
                };
                let found = repo
                    .resolve_snapshot_id(made)
                    .and_then(|id| Ok((id, repo.load_snapshot(&id)?)));
                let (id, snap) = match found {
                    Ok(x) => x,
                    Err(e) => return kept(e.into()),
                };
                match drill::run(repo, &id, &snap, &opts) {
                    Ok(r) => {
                        let detail = serde_json::to_value(&r).unwrap_or_default();
                        if r.errors.is_empty() {
                            Outcome::ok(detail)
                        } else {
                            kept(Outcome::failed(
                                format!("the drill failed: {}", r.errors.join("; ")),
                                detail,
                            ))
                        }
                    }
                    Err(e) => kept(e.into()),
                }
            });
        }
    }
}

/// Ends the run: figures, notifications, the job's record.
fn finish(mut run: Run<'_>, sent: &mut Vec<Notification>, opts: &RunOptions) -> Summary {
    let job = run.job;
    run.summary.finished = rfc3339(now_ns());
    run.summary.seconds = run.started.elapsed().as_secs_f64();
    let status = run.summary.status;
    let body = serde_json::to_vec_pretty(&run.summary).unwrap_or_default();
    let wanted = match status {
        Status::Success | Status::Incomplete => On::Success,
        Status::Failed => On::Failure,
        Status::Skipped => On::Skipped,
    };
    if let Some(cmd) = &job.notify.command {
        if job.notify.on.contains(&wanted) {
            sent.push(notify::command(cmd, &body, &job.name, status.as_str()));
        }
    }
    if let Some(url) = &job.notify.url {
        match status {
            Status::Success | Status::Incomplete => {
                sent.push(notify::ping(url, Ping::Success, &body))
            }
            Status::Failed => sent.push(notify::ping(url, Ping::Fail, &body)),
            // The run holding the lock pings when it ends.
            Status::Skipped => {}
        }
    }
    run.summary.notifications = std::mem::take(sent);
    if status != Status::Skipped {
        if let Err(e) = record::save(&opts.state_dir, &run.summary) {
            run.summary.notifications.push(Notification {
                kind: "record".into(),
                ok: false,
                error: Some(format!("cannot record the run for `snap status`: {e}")),
            });
        }
    }
    (run.events)(&Event::JobFinished {
        summary: &run.summary,
    });
    run.summary
}
