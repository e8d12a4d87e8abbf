//! `snap schedule` and `snap status`: the timer or crontab line that runs
//! a job, and where each job stands.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::exit;
use super::jobs::{load_config, ConfigArg};
use super::output::Printer;
use crate::jobs::config;
use crate::jobs::schedule::{self, Schedule};
use crate::jobs::status::State;

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The job.
    pub job: String,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Every hour (at minute --at :MM).
    #[arg(long, group = "every")]
    pub hourly: bool,
    /// Every day (at --at HH:MM, default 02:00).
    #[arg(long, group = "every")]
    pub daily: bool,
    /// Every Monday (at --at HH:MM, default 02:00).
    #[arg(long, group = "every")]
    pub weekly: bool,
    /// A systemd calendar expression (`Mon..Fri *-*-* 22:00`).
    #[arg(long, value_name = "EXPR", group = "every")]
    pub calendar: Option<String>,
    /// Time of day: HH:MM (or :MM with --hourly).
    #[arg(long, value_name = "HH:MM", conflicts_with = "calendar")]
    pub at: Option<String>,
    /// A crontab line instead of a systemd service and timer.
    #[arg(long)]
    pub cron: bool,
    /// Write the units (or /etc/cron.d/snap-JOB) and enable the timer.
    #[arg(long)]
    pub install: bool,
    /// With --install: write the units into this directory and do not run
    /// systemctl.
    #[arg(long, value_name = "DIR", requires = "install")]
    pub unit_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this job.
    pub job: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

fn chosen_schedule(a: &ScheduleArgs, job: &config::Job) -> Result<Schedule> {
    let word = if a.hourly {
        Some("hourly")
    } else if a.daily {
        Some("daily")
    } else if a.weekly {
        Some("weekly")
    } else {
        None
    };
    if let Some(c) = &a.calendar {
        return Schedule::parse(c).map_err(anyhow::Error::msg);
    }
    match (word, &a.at) {
        (Some(w), Some(at)) => Schedule::parse(&format!("{w} {at}")),
        (Some(w), None) => Schedule::parse(w),
        (None, _) => {
            return job.schedule.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "job {} has no schedule: give --hourly, --daily, --weekly or --calendar EXPR, \
                     or set schedule = \"daily 02:30\" in [jobs.{}] (snap status reads it there)",
                    job.name,
                    job.name
                )
            })
        }
    }
    .map_err(|e| anyhow::anyhow!("--at: {e}"))
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn systemctl(user: bool, args: &[&str]) -> Result<()> {
    let mut c = crate::child::command("systemctl");
    if user {
        c.arg("--user");
    }
    let st = c.args(args).status().context("cannot run systemctl")?;
    if !st.success() {
        anyhow::bail!("systemctl {} failed ({st})", args.join(" "));
    }
    Ok(())
}

pub fn schedule(a: &ScheduleArgs, p: &Printer) -> Result<i32> {
    let cfg = load_config(&a.config)?;
    let job = cfg.job(&a.job)?;
    let s = chosen_schedule(a, job)?;
    let snap = std::env::current_exe().context("cannot tell where the snap binary is")?;
    let config = std::path::absolute(&a.config.path)?;
    let unit = schedule::unit_name(&job.name);
    if a.cron {
        let user = (a.install || is_root()).then_some("root");
        let Some(line) =
            schedule::cron_line(&snap, &job.name, &config, &s, user.filter(|_| a.install))
        else {
            anyhow::bail!(
                "cron cannot express {:?}: use a systemd timer (without --cron)",
                s.on_calendar()
            );
        };
        if a.install {
            if !is_root() {
                anyhow::bail!("--cron --install writes /etc/cron.d and needs root; as this user, add it with `crontab -e`: {}", line.trim());
            }
            let path = a
                .unit_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/etc/cron.d"))
                .join(&unit);
            std::fs::write(&path, format!("# snap backup job {}\n{line}", job.name))
                .with_context(|| format!("cannot write {}", path.display()))?;
            p.line(
                &format!("wrote {}", path.display()),
                &serde_json::json!({"cron": path}),
            );
        } else {
            p.line(
                line.trim_end(),
                &serde_json::json!({ "cron": line.trim_end() }),
            );
        }
        return Ok(exit::OK);
    }
    let service = schedule::service(&snap, &job.name, &config);
    let timer = schedule::timer(&job.name, &s);
    if !a.install {
        if p.json {
            say!(
                "{}",
                serde_json::json!({"service": service, "timer": timer})
            );
        } else {
            say!("# {unit}.service\n{service}\n# {unit}.timer\n{timer}");
        }
        return Ok(exit::OK);
    }
    let user = !is_root();
    let dir = match &a.unit_dir {
        Some(d) => d.clone(),
        None if user => std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .context("neither XDG_CONFIG_HOME nor HOME is set")?
            .join("systemd/user"),
        None => PathBuf::from("/etc/systemd/system"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (sp, tp) = (
        dir.join(format!("{unit}.service")),
        dir.join(format!("{unit}.timer")),
    );
    std::fs::write(&sp, &service).with_context(|| format!("cannot write {}", sp.display()))?;
    std::fs::write(&tp, &timer).with_context(|| format!("cannot write {}", tp.display()))?;
    if a.unit_dir.is_none() {
        systemctl(user, &["daemon-reload"])?;
        systemctl(user, &["enable", "--now", &format!("{unit}.timer")])?;
    }
    p.line(
        &format!(
            "wrote {} and {}{}",
            sp.display(),
            tp.display(),
            if a.unit_dir.is_none() {
                format!("; enabled {unit}.timer")
            } else {
                String::new()
            }
        ),
        &serde_json::json!({"service": sp, "timer": tp}),
    );
    Ok(exit::OK)
}

pub fn status(a: &StatusArgs, p: &Printer) -> Result<i32> {
    let cfg = load_config(&a.config)?;
    let jobs: Vec<&config::Job> = match &a.job {
        Some(name) => vec![cfg.job(name)?],
        None => cfg.jobs.iter().collect(),
    };
    let dir = crate::jobs::state_dir();
    let now = crate::repository::snapshots::now_ns();
    let mut all = Vec::new();
    for j in jobs {
        all.push(crate::jobs::status::of(j, &dir, now)?);
    }
    if p.json {
        say!("{}", serde_json::to_string(&all)?);
    } else if !p.quiet {
        for s in &all {
            let state = match s.state {
                State::Ok => "ok",
                State::Failed => "FAILED",
                State::Overdue => "OVERDUE",
                State::NeverRan => "never ran",
            };
            say!(
                "{}: {state}{}",
                s.job,
                s.running
                    .as_ref()
                    .map(|r| format!(", running now ({r})"))
                    .unwrap_or_default()
            );
            match &s.last_run {
                Some(r) => {
                    let mut line = format!("  last run:     {} {}", r.started, r.status);
                    if let Some(step) = &r.failed_step {
                        line.push_str(&format!(" at {step}: {}", r.error.as_deref().unwrap_or("")));
                    }
                    say!("{line}");
                }
                None => say!("  last run:     never"),
            }
            match &s.last_success {
                Some(r) => say!(
                    "  last success: {}{}",
                    r.started,
                    r.snapshot
                        .as_ref()
                        .map(|id| format!(" (snapshot {id})"))
                        .unwrap_or_default()
                ),
                None => say!("  last success: never"),
            }
            say!(
                "  schedule:     {}",
                s.schedule
                    .as_deref()
                    .unwrap_or("none (set schedule in the job to be told when it is overdue)")
            );
        }
    }
    Ok(
        if all
            .iter()
            .any(|s| matches!(s.state, State::Failed | State::Overdue))
        {
            exit::JOB_FAILED
        } else {
            exit::OK
        },
    )
}
