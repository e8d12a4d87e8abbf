//! `snap run`: flags, the configuration file, passwords of configured
//! repositories, and the printing of run summaries and events.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use zeroize::Zeroizing;

use super::args::Cli;
use super::exit;
use super::output::{human, Printer};
use super::password;
use crate::jobs::config::{self, Config, PasswordSource, RepositoryConfig};
use crate::jobs::run::{run_job, RunOptions};
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

pub(super) fn drill_line(d: &serde_json::Value) -> String {
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
