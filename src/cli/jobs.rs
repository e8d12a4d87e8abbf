//! `snap run` and `snap verify`: flags, the configuration file, passwords
//! of configured repositories, and the printing of run summaries and
//! events.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use zeroize::Zeroizing;

use super::args::{Cli, FilterArgs};
use super::exit;
use super::output::{human, Printer};
use super::password;
use crate::jobs::config::{self, Cmd, Config, PasswordSource, RepositoryConfig};
use crate::jobs::drill::{self, DrillOptions, DrillReport};
use crate::jobs::run::{run_job, RunOptions};
use crate::jobs::schedule::{self, Schedule};
use crate::jobs::status::State;
use crate::jobs::summary::{Event, Status, Step, StepStatus, Summary};

/// The configuration file flag, shared by the job commands.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// The jobs configuration file.
    #[arg(long = "config", value_name = "PATH", env = "SNAP_CONFIG", default_value = config::DEFAULT_PATH)]
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job to run (a [jobs.NAME] table of the configuration).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub job: Option<String>,
    /// Run every job of the configuration, one after the other.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub config: ConfigArg,
    /// When another run of the job holds its lock, wait this long (e.g.
    /// 30m) before giving up (default: give up at once).
    #[arg(long, value_name = "DURATION")]
    pub wait: Option<String>,
    /// Print one JSON event per line as each step starts and ends (the
    /// last one, `job_finished`, holds the summary; replaces --json).
    #[arg(long)]
    pub json_lines: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Snapshot: `latest` or an id prefix.
    #[arg(default_value = "latest")]
    pub snapshot: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Percentage of the snapshot's files to restore and verify (files not
    /// verified by earlier runs first).
    #[arg(long, value_name = "PCT", default_value = "5%")]
    pub sample: String,
    /// Also compare each restored file that is unchanged on disk (same
    /// size, mtime, inode) with the live file, byte for byte.
    #[arg(long)]
    pub against_source: bool,
    /// Pipe every dump of the snapshot into this shell command (SNAP_DUMP
    /// names the dump); a non-zero exit fails the drill.
    #[arg(long, value_name = "CMD")]
    pub dump_command: Option<String>,
    /// Kill the dump command (its process group) after this long.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub command_timeout: String,
    /// Scratch directory to restore into (default: in the cache; removed after).
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

/// Reads the configuration; its errors exit with code 2.
pub fn load_config(a: &ConfigArg) -> Result<Config> {
    Ok(config::load(&a.path)?)
}

fn password_of(cli: &Cli, r: &RepositoryConfig) -> crate::Result<Zeroizing<String>> {
    let got = match &r.password {
        PasswordSource::File(f) => password::from_file(f),
        PasswordSource::Command(c) => {
            password::from_command(c, &format!("password_command of repository {}", r.name))
        }
        PasswordSource::Environment => super::run::get_password(cli, false),
    };
    got.map_err(|e| crate::Error::Invalid(format!("repository {}: {e:#}", r.name)))
}

fn parse_wait(a: &RunArgs) -> Result<Duration> {
    match &a.wait {
        None => Ok(Duration::ZERO),
        Some(s) => humantime::parse_duration(s).with_context(|| format!("--wait {s:?} (e.g. 30m)")),
    }
}

/// The exit code of a job's outcome.
fn code_of(s: Status) -> i32 {
    match s {
        Status::Success => exit::OK,
        Status::Incomplete => exit::INCOMPLETE,
        Status::Failed => exit::JOB_FAILED,
        Status::Skipped => exit::JOB_SKIPPED,
    }
}

/// The worst of two exit codes of `run --all`: failed, then skipped, then
/// incomplete.
fn worst(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        exit::JOB_FAILED => 3,
        exit::JOB_SKIPPED => 2,
        exit::INCOMPLETE => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

pub fn run(cli: &Cli, a: &RunArgs, p: &Printer) -> Result<i32> {
    let cfg = load_config(&a.config)?;
    let wait = parse_wait(a)?;
    let jobs: Vec<&config::Job> = match &a.job {
        Some(name) => vec![cfg.job(name)?],
        None => cfg.jobs.iter().collect(),
    };
    let opts = RunOptions {
        wait,
        state_dir: crate::jobs::state_dir(),
    };
    let pw = |r: &RepositoryConfig| password_of(cli, r);
    let mut code = exit::OK;
    let mut all = Vec::new();
    for job in jobs {
        if crate::interrupt::received().is_some() {
            break;
        }
        let mut events = |e: &Event<'_>| {
            if a.json_lines {
                say!("{}", serde_json::to_string(e).expect("events serialize"));
            }
        };
        let s = run_job(&cfg, job, &opts, &pw, &mut events);
        for n in s.notifications.iter().filter(|n| !n.ok) {
            p.warn(n.error.as_deref().unwrap_or("a notification failed"));
        }
        if !a.json_lines && !p.json {
            print_summary(p, &s);
        }
        code = worst(code, code_of(s.status));
        all.push(s);
    }
    if p.json && !a.json_lines {
        if a.all {
            say!(
                "{}",
                serde_json::to_string(&serde_json::json!({ "jobs": all }))?
            );
        } else if let Some(s) = all.first() {
            say!("{}", serde_json::to_string(s)?);
        }
    }
    if let Some(s) = crate::interrupt::received() {
        return Ok(128 + s);
    }
    Ok(code)
}

fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1}s")
    } else {
        humantime::format_duration(Duration::from_secs(s.round() as u64)).to_string()
    }
}

/// The figures of a step, one line.
fn figures(st: &Step) -> String {
    let d = &st.detail;
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    match st.step.as_str() {
        "create" if d.get("snapshot").is_some() => {
            let sm = &d["summary"];
            let files = n(&sm["files_new"]) + n(&sm["files_changed"]) + n(&sm["files_unchanged"]);
            let mut s = format!(
                "snapshot {}: {} files, {} ({} added)",
                d["snapshot"].as_str().unwrap_or("").get(..8).unwrap_or(""),
                files,
                human(n(&sm["total_bytes"])),
                human(n(&sm["bytes_added"]))
            );
            if let Some(streams) = sm["streams"].as_array().filter(|a| !a.is_empty()) {
                let names: Vec<String> = streams
                    .iter()
                    .map(|x| {
                        format!(
                            "{} {}",
                            x["name"].as_str().unwrap_or(""),
                            human(n(&x["bytes"]))
                        )
                    })
                    .collect();
                s.push_str(&format!("; dumps: {}", names.join(", ")));
            }
            s
        }
        "prune" => {
            let removed = d["removed"].as_array().map(|a| a.len()).unwrap_or(0);
            let mut s = format!(
                "{} snapshot(s) of the job, {removed} removed by the policy",
                n(&d["snapshots"])
            );
            if let Some(m) = d.get("min_free") {
                let r = m["removed"].as_array().map(|a| a.len()).unwrap_or(0);
                s.push_str(&format!(
                    "; {r} removed for space ({} free)",
                    human(n(&m["free_after"]))
                ));
            }
            if let Some(f) = d["gc"]["bytes_freed"].as_i64() {
                s.push_str(&format!("; freed {}", human(f.max(0) as u64)));
            }
            s
        }
        "sync" if d.get("objects_sent").is_some() => format!(
            "{} objects sent ({}), {} snapshot(s)",
            n(&d["objects_sent"]),
            human(n(&d["bytes_sent"])),
            n(&d["snapshots_sent"])
        ),
        "drill" if d.get("coverage").is_some() => drill_line(d),
        "before" | "after" | "failed" | "finally" => {
            format!(
                "{} hook(s)",
                d["hooks"].as_array().map(|a| a.len()).unwrap_or(0)
            )
        }
        _ => String::new(),
    }
}

fn drill_line(d: &serde_json::Value) -> String {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let c = &d["coverage"];
    let mut s = format!(
        "{} of {} file(s) restored and verified",
        n(&d["verified_files"]),
        n(&d["sampled_files"])
    );
    if n(&d["compared_with_source"]) > 0 || n(&d["source_changed"]) > 0 {
        s.push_str(&format!(
            ", {} compared with the source ({} changed since)",
            n(&d["compared_with_source"]),
            n(&d["source_changed"])
        ));
    }
    if let Some(dumps) = d["dumps"].as_array().filter(|a| !a.is_empty()) {
        let ok = dumps
            .iter()
            .filter(|x| x["ok"].as_bool() == Some(true))
            .count();
        s.push_str(&format!(
            ", {ok} of {} dump(s) accepted by the dump command",
            dumps.len()
        ));
    }
    s.push_str(&format!(
        "; coverage {}% of files ({} of {}), {}% of bytes",
        c["files_pct"].as_f64().unwrap_or(0.0),
        n(&c["files_verified"]),
        n(&c["files"]),
        c["bytes_pct"].as_f64().unwrap_or(0.0)
    ));
    if c["new_round"].as_bool() == Some(true) {
        s.push_str(" (every file had been verified: a new round began)");
    }
    s
}

fn print_summary(p: &Printer, s: &Summary) {
    if p.quiet && s.status != Status::Failed {
        return;
    }
    let mut head = format!(
        "job {}: {} in {}",
        s.job,
        s.status.as_str(),
        secs(s.seconds)
    );
    if let Some(id) = &s.snapshot {
        head.push_str(&format!(" (snapshot {id})"));
    }
    say!("{head}");
    for st in &s.steps {
        let name = match &st.target {
            Some(t) => format!("{} {t}", st.step),
            None => st.step.clone(),
        };
        let status = match st.status {
            StepStatus::Ok => "ok",
            StepStatus::Warning => "warning",
            StepStatus::Failed => "FAILED",
        };
        let f = figures(st);
        say!("  {name:<16} {status:<8} {:>7}  {f}", secs(st.seconds));
        if let Some(e) = &st.error {
            say!("    error: {e}");
        }
        if let Some(t) = &st.stderr_tail {
            say!("    stderr: {}", crate::jobs::exec::last_lines(t, 5));
        }
    }
    if s.status == Status::Skipped {
        if let Some(e) = &s.error {
            say!("  {e}");
        }
    }
    for n in &s.notifications {
        say!(
            "  notify {:<9} {}",
            n.kind,
            if n.ok { "ok" } else { "FAILED" }
        );
    }
}

pub fn verify(cli: &Cli, a: &VerifyArgs, p: &Printer) -> Result<i32> {
    let sample_pct = config::parse_pct(&a.sample)
        .with_context(|| format!("--sample {:?}: a percentage in (0, 100], e.g. 5%", a.sample))?;
    let timeout = humantime::parse_duration(&a.command_timeout)
        .with_context(|| format!("--command-timeout {:?}", a.command_timeout))?;
    let dump_command = a.dump_command.as_deref().map(|c| Cmd {
        timeout,
        ..Cmd::shell(c)
    });
    let repo = super::run::open_repo(cli)?;
    let sel = repo.find_snapshot(&a.snapshot, &super::run::filter_of(&a.filter)?)?;
    p.selected(&sel, true);
    let opts = DrillOptions {
        sample_pct,
        against_source: a.against_source,
        dump_command,
        scratch: a.scratch.clone(),
    };
    let r = drill::run(&repo, &sel.id, &sel.snapshot, &opts)?;
    print_drill(p, &r);
    if let Some(s) = crate::interrupt::received() {
        return Ok(128 + s);
    }
    Ok(if r.errors.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}

fn print_drill(p: &Printer, r: &DrillReport) {
    if p.json {
        say!("{}", serde_json::to_string(r).expect("report serializes"));
        return;
    }
    for e in &r.errors {
        eprintln!("error: {e}");
    }
    if p.quiet {
        return;
    }
    let d = serde_json::to_value(r).expect("report serializes");
    say!("snapshot {}: {}", r.snapshot, drill_line(&d));
    if !r.errors.is_empty() {
        say!(
            "the drill FAILED: {} problem(s), listed above",
            r.errors.len()
        );
    }
}

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
