//! Backup jobs: a configuration file of named jobs, and `snap run JOB`,
//! which does what people otherwise script around a backup tool: hooks,
//! database dumps, the backup, retention, off-site sync, a restore drill
//! and notifications, with a job lock that a crash never leaves stuck.
//!
//! This room sits above the verbs (`cli -> jobs -> commands ->
//! repository`): a run calls the same command functions the CLI calls
//! (`create::run`, `forget::run`, `prune::run`, `sync::run`,
//! `restore::run`, `dump::run`); the commands know nothing of jobs. It
//! never prints: a run returns a [`summary::Summary`] and reports its
//! steps as [`summary::Event`]s; the CLI prints them.
//!
//! * [`config`]: the TOML file, validated on load (errors name file:line
//!   and key; `spanned` walks the document);
//! * [`run`]: the order of the steps and what a failure of each means
//!   (`steps`: the work of each);
//! * [`hooks`], [`exec`]: running the job's commands (timeouts kill the
//!   whole process group; secrets never reach them);
//! * [`lock`]: one run of a job at a time, released by the kernel when a
//!   run dies;
//! * [`notify`]: the notification command and healthchecks-style URL;
//! * [`drill`], [`coverage`]: `snap verify`, the restore drill, and its
//!   record of what was verified;
//! * [`space`] makes room for `keep.min_free`;
//! * [`record`], [`status`]: the last run and last success of each job,
//!   and `snap status`;
//! * [`schedule`]: systemd timers and crontab lines for `snap schedule`.

pub mod config;
pub mod coverage;
pub mod drill;
pub mod exec;
pub mod hooks;
pub mod lock;
pub mod notify;
pub mod record;
pub mod repos;
pub mod run;
pub mod schedule;
pub mod space;
mod spanned;
pub mod status;
mod steps;
pub mod summary;

use std::path::PathBuf;

/// Where job locks and run records live: `jobs/` in the per-user cache
/// directory (`SNAP_CACHE_DIR`, `$XDG_CACHE_HOME/snap`, `~/.cache/snap`).
pub fn state_dir() -> PathBuf {
    crate::repository::open::cache_base().join("jobs")
}
