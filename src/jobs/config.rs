//! The jobs configuration file (TOML): its schema, read and validated in
//! one pass before anything runs. Every error names the file, the line
//! and the key ([`ConfigError`]); unknown keys are errors, with a
//! suggestion for a near miss.
//!
//! Secrets are never written in the file: a repository names a
//! `password_file` or a `password_command`, or leaves it to the
//! environment (`SNAP_PASSWORD`, ...). A `password` key is refused.
//!
//! A command is a string (run by `sh -c`), an array (argv, no shell), or a
//! table `{ command = ..., timeout = "2h" }`. Every command has a timeout:
//! its own, else the job's `timeout`, else [`DEFAULT_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use super::spanned::ConfigError;
use super::spanned::{did_you_mean, CResult, Doc, Table, Value};
use crate::commands::retention::Policy;

/// Where the configuration is read from when neither `--config` nor
/// `SNAP_CONFIG` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/snap/snap.toml";

/// Timeout of a hook, dump, drill or notification command unless the
/// command or its job sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The whole file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file read.
    pub file: PathBuf,
    /// Repositories, in file order.
    pub repositories: Vec<RepositoryConfig>,
    /// Jobs, in file order.
    pub jobs: Vec<Job>,
}

/// Where a repository's password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The first line of this file.
    File(PathBuf),
    /// The first output line of this shell command.
    Command(String),
    /// snap's usual sources: `SNAP_PASSWORD`, `SNAP_PASSWORD_FILE`,
    /// `SNAP_PASSWORD_COMMAND`, `--password-file`, ...
    Environment,
}

/// `[repositories.NAME]`.
#[derive(Debug, Clone)]
pub struct RepositoryConfig {
    /// Its name in the file.
    pub name: String,
    /// A directory, or an object-store URL.
    pub location: String,
    /// Object-store options (`endpoint`, `region`, ...).
    pub options: Vec<(String, String)>,
    /// The password's source.
    pub password: PasswordSource,
}

/// What runs a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A command line for `sh -c`.
    Shell(String),
    /// A program and its arguments, run without a shell.
    Argv(Vec<String>),
}

/// A command of a job (hook, dump, drill, notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// What to run.
    pub program: Program,
    /// Kill it (its whole process group) after this long.
    pub timeout: Duration,
}

impl Cmd {
    /// A shell command with the default timeout.
    pub fn shell(line: &str) -> Cmd {
        Cmd {
            program: Program::Shell(line.to_string()),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The command as shown in messages and summaries, secrets masked.
    pub fn label(&self) -> String {
        match &self.program {
            Program::Shell(line) => {
                let words: Vec<&str> = line.split(' ').collect();
                crate::child::mask_command_line(&words).join(" ")
            }
            Program::Argv(argv) => crate::child::mask_command_line(argv).join(" "),
        }
    }

    /// argv to execute (`sh -c LINE` for a shell command).
    pub fn argv(&self) -> Vec<String> {
        match &self.program {
            Program::Shell(line) => vec!["sh".into(), "-c".into(), line.clone()],
            Program::Argv(argv) => argv.clone(),
        }
    }
}

/// One dump: a command whose stdout is stored as `/.snap-streams/NAME`.
#[derive(Debug, Clone)]
pub struct Dump {
    /// File name in the snapshot.
    pub name: String,
    /// The command.
    pub cmd: Cmd,
}

/// `keep`: the retention policy of the job's snapshots.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    /// The policy (counts; `within`).
    pub policy: Policy,
    /// Free space to leave on the repository's file system.
    pub min_free: Option<u64>,
}

/// `drill`: the restore test after each run.
#[derive(Debug, Clone)]
pub struct Drill {
    /// Percentage of the snapshot's files restored each run.
    pub sample_pct: f64,
    /// Compare restored files unchanged on disk with the live ones.
    pub against_source: bool,
    /// Every dump is piped into this command.
    pub dump_command: Option<Cmd>,
    /// Where to restore the sample (default: in the repository's cache).
    pub scratch: Option<PathBuf>,
}

/// `hooks`.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Before anything else; a failure fails the job, no backup is made.
    pub before: Vec<Cmd>,
    /// After every step succeeded.
    pub after: Vec<Cmd>,
    /// After any failure.
    pub failed: Vec<Cmd>,
    /// Always, last.
    pub finally: Vec<Cmd>,
}

/// When a notification command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// The job succeeded.
    Success,
    /// The job failed.
    Failure,
    /// The job was skipped (another run holds its lock).
    Skipped,
}

/// `notify`.
#[derive(Debug, Clone)]
pub struct Notify {
    /// Gets the JSON summary on stdin.
    pub command: Option<Cmd>,
    /// Healthchecks-style ping URL (`/start`, plain, `/fail`).
    pub url: Option<String>,
    /// When the command runs.
    pub on: Vec<On>,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            command: None,
            url: None,
            on: vec![On::Failure],
        }
    }
}

/// `[jobs.NAME]`.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its name (also the tag of its snapshots).
    pub name: String,
    /// Name of its repository.
    pub repository: String,
    /// Files and directories (absolute).
    pub paths: Vec<PathBuf>,
    /// Exclude globs.
    pub exclude: Vec<String>,
    /// Files of exclude globs.
    pub exclude_file: Vec<PathBuf>,
    /// Skip directories tagged with CACHEDIR.TAG.
    pub exclude_caches: bool,
    /// Do not cross file systems.
    pub one_file_system: bool,
    /// Extra tags (the job's name is always one).
    pub tags: Vec<String>,
    /// Host name to record.
    pub host: Option<String>,
    /// Database dumps and other command outputs.
    pub dumps: Vec<Dump>,
    /// Retention.
    pub keep: Option<Keep>,
    /// Repositories to sync to after each run.
    pub sync_to: Vec<String>,
    /// Also delete on the `sync_to` copies what the job's repository no
    /// longer has (so that their retention follows `keep`).
    pub sync_delete: bool,
    /// Restore drill.
    pub drill: Option<Drill>,
    /// Hooks.
    pub hooks: Hooks,
    /// Notifications.
    pub notify: Notify,
    /// Default timeout of the job's commands.
    pub timeout: Duration,
    /// How often the job is meant to run (`snap schedule`, `snap status`).
    pub schedule: Option<super::schedule::Schedule>,
}

impl Config {
    /// The repository named `name`.
    pub fn repository(&self, name: &str) -> Option<&RepositoryConfig> {
        self.repositories.iter().find(|r| r.name == name)
    }

    /// The job named `name`, or an error listing the jobs.
    pub fn job(&self, name: &str) -> Result<&Job, ConfigError> {
        if let Some(j) = self.jobs.iter().find(|j| j.name == name) {
            return Ok(j);
        }
        let names: Vec<&str> = self.jobs.iter().map(|j| j.name.as_str()).collect();
        let hint = match did_you_mean(name, &names) {
            Some(n) => format!(" (did you mean {n:?}?)"),
            None if names.is_empty() => " (it has no [jobs.NAME] table)".into(),
            None => format!(" (its jobs: {})", names.join(", ")),
        };
        Err(ConfigError {
            file: self.file.display().to_string(),
            line: 0,
            key: String::new(),
            message: format!("no job named {name:?}{hint}"),
        })
    }
}

/// Reads and validates the configuration at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: name.clone(),
        line: 0,
        key: String::new(),
        message: format!(
            "cannot read the configuration: {e} (give another with --config PATH or SNAP_CONFIG)"
        ),
    })?;
    let mut cfg = parse(&name, &text)?;
    cfg.file = path.to_path_buf();
    Ok(cfg)
}

/// Parses and validates configuration text (`file` is named in errors).
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let doc = Doc::parse(file, text)?;
    let root = doc.root();
    let mut repositories = Vec::new();
    if let Some(t) = root.table("repositories")? {
        for (name, v) in t.entries() {
            repositories.push(repository(&name, &v)?);
        }
    }
    let mut jobs = Vec::new();
    if let Some(t) = root.table("jobs")? {
        for (name, v) in t.entries() {
            jobs.push(job(&name, &v, &repositories)?);
        }
    }
    root.finish(&["repositories", "jobs"])?;
    if jobs.is_empty() {
        return Err(doc.whole_error("defines no job: add a [jobs.NAME] table (see docs/jobs.md)"));
    }
    Ok(Config {
        file: PathBuf::from(file),
        repositories,
        jobs,
    })
}

fn check_name(v: &Value<'_, '_>, what: &str, name: &str) -> CResult<()> {
    let ok = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        return Err(v.error(format!(
            "{what} name {name:?} must be letters, digits, '_', '-' and '.' (not first)"
        )));
    }
    Ok(())
}

fn repository(name: &str, v: &Value<'_, '_>) -> CResult<RepositoryConfig> {
    check_name(v, "repository", name)?;
    let t = v.table()?;
    if t.has("password") {
        return Err(t.key_error(
            "password",
            "a password is never written in the configuration: use password_file or \
             password_command (or SNAP_PASSWORD in the environment)",
        ));
    }
    let location = match (t.str("path")?, t.str("url")?) {
        (Some(p), None) => {
            if p.contains("://") {
                return Err(t.key_error("path", "is a URL: write it as url = \"...\""));
            }
            p
        }
        (None, Some(u)) => {
            if !u.contains("://") {
                return Err(t.key_error(
                    "url",
                    "is not a URL (s3://, gs://, az://, file://): for a directory write path = \"...\"",
                ));
            }
            u
        }
        (Some(_), Some(_)) => return Err(t.key_error("url", "give path or url, not both")),
        (None, None) => {
            return Err(t.error("needs path = \"/dir\" or url = \"s3://bucket/prefix\""))
        }
    };
    let mut options = Vec::new();
    if let Some(o) = t.table("options")? {
        for (k, ov) in o.entries() {
            let lower = k.to_ascii_lowercase();
            if [
                "secret",
                "password",
                "token",
                "sas",
                "account_key",
                "access_key",
            ]
            .iter()
            .any(|w| lower.contains(w))
            {
                return Err(ov.error(
                    "credentials are never written in the configuration: give them in the \
                     environment of snap (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
                     AZURE_STORAGE_ACCOUNT_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...)",
                ));
            }
            let val = if ov.is_str() {
                ov.str()?
            } else if let Ok(b) = ov.bool() {
                b.to_string()
            } else if let Ok(n) = ov.u32() {
                n.to_string()
            } else {
                return Err(ov.error("expected a string, a number or true/false"));
            };
            options.push((k, val));
        }
    }
    let password = match (t.str("password_file")?, t.str("password_command")?) {
        (Some(f), None) => PasswordSource::File(PathBuf::from(f)),
        (None, Some(c)) => PasswordSource::Command(c),
        (Some(_), Some(_)) => {
            return Err(t.key_error(
                "password_command",
                "give password_file or password_command, not both",
            ))
        }
        (None, None) => PasswordSource::Environment,
    };
    t.finish(&[
        "path",
        "url",
        "options",
        "password_file",
        "password_command",
    ])?;
    Ok(RepositoryConfig {
        name: name.to_string(),
        location,
        options,
        password,
    })
}

/// A command: a string, an array, or `{ command, timeout }`.
fn command(v: &Value<'_, '_>, default_timeout: Duration) -> CResult<Cmd> {
    if v.is_table() {
        let t = v.table()?;
        let inner = t
            .get("command")
            .ok_or_else(|| t.error("needs command = \"...\""))?;
        let mut c = command(&inner, default_timeout)?;
        if let Some(d) = t.duration("timeout")? {
            c.timeout = d;
        }
        t.finish(&["command", "timeout"])?;
        return Ok(c);
    }
    let program = if v.is_array() {
        let argv: Vec<String> = v.array()?.iter().map(|e| e.str()).collect::<CResult<_>>()?;
        if argv.is_empty() || argv[0].is_empty() {
            return Err(v.error("an empty command"));
        }
        Program::Argv(argv)
    } else {
        let s = v.str().map_err(|_| {
            v.error("expected a command: a string (run by sh -c) or an array (argv)")
        })?;
        if s.trim().is_empty() {
            return Err(v.error("an empty command"));
        }
        Program::Shell(s)
    };
    Ok(Cmd {
        program,
        timeout: default_timeout,
    })
}

fn commands(t: &Table<'_, '_>, key: &str, timeout: Duration) -> CResult<Vec<Cmd>> {
    match t.get(key) {
        None => Ok(Vec::new()),
        Some(v) if v.is_array() => {
            // An array of strings is a list of shell commands; an argv is
            // written as an array inside the list.
            v.array()?.iter().map(|c| command(c, timeout)).collect()
        }
        Some(v) => Ok(vec![command(&v, timeout)?]),
    }
}

/// Parses `50G`, `500M`, `1.5T`, `123` (binary units; `B`/`iB` allowed).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult): (&str, u64) = match t.chars().last()? {
        c @ ('k' | 'K' | 'm' | 'M' | 'g' | 'G' | 't' | 'T') => (
            &t[..t.len() - 1],
            match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => 1 << 40,
            },
        ),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0 && n.is_finite()).then_some((n * mult as f64) as u64)
}

/// Parses a percentage, `5%` or `5` or `0.5%`, in (0, 100].
pub fn parse_pct(s: &str) -> Option<f64> {
    let v: f64 = s.trim().trim_end_matches('%').trim().parse().ok()?;
    (v > 0.0 && v <= 100.0).then_some(v)
}

fn keep(v: &Value<'_, '_>) -> CResult<Keep> {
    let t = v.table()?;
    let mut k = Keep::default();
    let p = &mut k.policy;
    p.last = t.u32("last")?.unwrap_or(0);
    p.hourly = t.u32("hourly")?.unwrap_or(0);
    p.daily = t.u32("daily")?.unwrap_or(0);
    p.weekly = t.u32("weekly")?.unwrap_or(0);
    p.monthly = t.u32("monthly")?.unwrap_or(0);
    p.yearly = t.u32("yearly")?.unwrap_or(0);
    p.within_ns = t
        .duration("within")?
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64);
    if let Some(mv) = t.get("min_free") {
        let s = mv.str()?;
        k.min_free =
            Some(parse_size(&s).ok_or_else(|| {
                mv.error(format!("{s:?} is not a size (e.g. \"50G\", \"500M\")"))
            })?);
    }
    t.finish(&[
        "last", "hourly", "daily", "weekly", "monthly", "yearly", "within", "min_free",
    ])?;
    if k.policy.is_empty() && k.min_free.is_none() {
        return Err(v.error(
            "keeps nothing: set at least one of last, hourly, daily, weekly, monthly, yearly, within",
        ));
    }
    Ok(k)
}

fn drill(v: &Value<'_, '_>, timeout: Duration) -> CResult<Drill> {
    let t = v.table()?;
    let sample_pct = match t.get("sample") {
        None => 5.0,
        Some(sv) => {
            let s = if sv.is_str() {
                sv.str()?
            } else {
                sv.u32()?.to_string()
            };
            parse_pct(&s).ok_or_else(|| {
                sv.error(format!(
                    "{s:?} is not a percentage in (0, 100] (e.g. \"5%\")"
                ))
            })?
        }
    };
    let against_source = t.bool("against_source")?.unwrap_or(true);
    let dump_command = t
        .get("dump_command")
        .map(|c| command(&c, timeout))
        .transpose()?;
    let scratch = match t.get("scratch") {
        None => None,
        Some(sv) => {
            let p = sv.str()?;
            if !p.starts_with('/') {
                return Err(sv.error(format!("{p:?} is not an absolute path")));
            }
            Some(PathBuf::from(p))
        }
    };
    t.finish(&["sample", "against_source", "dump_command", "scratch"])?;
    Ok(Drill {
        sample_pct,
        against_source,
        dump_command,
        scratch,
    })
}

fn notify(v: &Value<'_, '_>, timeout: Duration) -> CResult<Notify> {
    let t = v.table()?;
    let mut n = Notify {
        command: t.get("command").map(|c| command(&c, timeout)).transpose()?,
        ..Notify::default()
    };
    if let Some(uv) = t.get("url") {
        let u = uv.str()?;
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(uv.error(format!("{u:?} is not an http:// or https:// URL")));
        }
        if !cfg!(feature = "http-notify") {
            return Err(
                uv.error("this snap was built without HTTP notifications (feature `http-notify`)")
            );
        }
        n.url = Some(u.trim_end_matches('/').to_string());
    }
    if let Some(ov) = t.get("on") {
        n.on = Vec::new();
        for e in ov.array().or_else(|_| Ok::<_, ConfigError>(vec![]))? {
            let s = e.str()?;
            n.on.push(match s.as_str() {
                "success" => On::Success,
                "failure" => On::Failure,
                "skipped" => On::Skipped,
                other => {
                    let hint = did_you_mean(other, &["success", "failure", "skipped"])
                        .map(|h| format!(" (did you mean {h:?}?)"))
                        .unwrap_or_default();
                    return Err(e.error(format!(
                        "{other:?} is not one of \"success\", \"failure\", \"skipped\"{hint}"
                    )));
                }
            });
        }
        if n.on.is_empty() {
            let s = ov
                .str()
                .map_err(|_| ov.error("expected an array such as [\"failure\"]"))?;
            return Err(ov.error(format!("expected an array: on = [{s:?}]")));
        }
    }
    t.finish(&["command", "url", "on"])?;
    Ok(n)
}

fn job(name: &str, v: &Value<'_, '_>, repos: &[RepositoryConfig]) -> CResult<Job> {
    check_name(v, "job", name)?;
    let t = v.table()?;
    let timeout = t.duration("timeout")?.unwrap_or(DEFAULT_TIMEOUT);
    let repo_names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
    let known_repo = |rv: &Value<'_, '_>, r: &str| -> CResult<()> {
        if repo_names.contains(&r) {
            return Ok(());
        }
        let hint = match did_you_mean(r, &repo_names) {
            Some(h) => format!(" (did you mean {h:?}?)"),
            None if repo_names.is_empty() => {
                " (add a [repositories.NAME] table with its path or url)".into()
            }
            None => format!(" (repositories: {})", repo_names.join(", ")),
        };
        Err(rv.error(format!("no repository named {r:?}{hint}")))
    };
    let repository = match t.get("repository") {
        Some(rv) => {
            let r = rv.str()?;
            known_repo(&rv, &r)?;
            r
        }
        None if repos.len() == 1 => repos[0].name.clone(),
        None => {
            return Err(
                t.error("needs repository = \"NAME\" (one of the [repositories.NAME] tables)")
            )
        }
    };
    let mut paths = Vec::new();
    if let Some(pv) = t.get("paths") {
        for (p, at) in pv.string_items()? {
            if !p.starts_with('/') {
                return Err(at.error(format!(
                    "{p:?} is not an absolute path (a job may run from any directory)"
                )));
            }
            paths.push(PathBuf::from(p));
        }
    }
    let mut dumps: Vec<Dump> = Vec::new();
    if let Some(dv) = t.get("dumps") {
        for d in dv.array()? {
            let dt = d.table()?;
            let name = dt
                .str("name")?
                .ok_or_else(|| dt.error("needs name = \"FILE\" (the dump's file name)"))?;
            if !crate::format::tree::is_safe_name(name.as_bytes()) {
                return Err(dt.key_error("name", format!("{name:?} must be a plain file name")));
            }
            if dumps.iter().any(|o| o.name == name) {
                return Err(dt.key_error("name", format!("two dumps are named {name:?}")));
            }
            let cv = dt
                .get("command")
                .ok_or_else(|| dt.error("needs command = \"...\""))?;
            let mut cmd = command(&cv, timeout)?;
            if let Some(d) = dt.duration("timeout")? {
                cmd.timeout = d;
            }
            dt.finish(&["name", "command", "timeout"])?;
            dumps.push(Dump { name, cmd });
        }
    }
    if paths.is_empty() && dumps.is_empty() {
        return Err(t.error("backs up nothing: give paths = [\"/dir\", ...] or dumps = [...]"));
    }
    let mut exclude = Vec::new();
    if let Some(ev) = t.get("exclude") {
        for (g, at) in ev.string_items()? {
            if let Err(e) = globset::Glob::new(&g) {
                return Err(at.error(format!("bad glob {g:?}: {e}")));
            }
            exclude.push(g);
        }
    }
    let exclude_file = t
        .strings("exclude_file")?
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let mut sync_to = Vec::new();
    if let Some(sv) = t.get("sync_to") {
        for (s, at) in sv.string_items()? {
            let at = &at;
            known_repo(at, &s)?;
            if s == repository {
                return Err(at.error(format!(
                    "{s:?} is the job's own repository: sync_to names the other copies"
                )));
            }
            sync_to.push(s);
        }
    }
    let mut hooks = Hooks::default();
    if let Some(h) = t.table("hooks")? {
        hooks.before = commands(&h, "before", timeout)?;
        hooks.after = commands(&h, "after", timeout)?;
        hooks.failed = commands(&h, "failed", timeout)?;
        hooks.finally = commands(&h, "finally", timeout)?;
        h.finish(&["before", "after", "failed", "finally"])?;
    }
    let job = Job {
        name: name.to_string(),
        repository,
        paths,
        exclude,
        exclude_file,
        exclude_caches: t.bool("exclude_caches")?.unwrap_or(false),
        one_file_system: t.bool("one_file_system")?.unwrap_or(false),
        tags: t.strings("tags")?,
        host: t.str("host")?,
        dumps,
        keep: t.get("keep").map(|k| keep(&k)).transpose()?,
        sync_to,
        sync_delete: t.bool("sync_delete")?.unwrap_or(false),
        drill: t.get("drill").map(|d| drill(&d, timeout)).transpose()?,
        hooks,
        notify: t
            .get("notify")
            .map(|n| notify(&n, timeout))
            .transpose()?
            .unwrap_or_default(),
        timeout,
        schedule: match t.get("schedule") {
            None => None,
            Some(sv) => Some(
                super::schedule::Schedule::parse(&sv.str()?).map_err(|e| {
                    sv.error(format!(
                        "{e} (e.g. \"daily 02:30\", \"hourly :15\", \"weekly\", or a systemd calendar expression)"
                    ))
                })?,
            ),
        },
    };
    t.finish(&[
        "repository",
        "paths",
        "exclude",
        "exclude_file",
        "exclude_caches",
        "one_file_system",
        "tags",
        "host",
        "dumps",
        "keep",
        "sync_to",
        "sync_delete",
        "drill",
        "hooks",
        "notify",
        "timeout",
        "schedule",
    ])?;
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[repositories.local]
path = "/backup/snap"
password_file = "/root/.snap-pw"

[repositories.offsite]
url = "s3://bucket/snap"
options = { region = "eu-west-1", allow_http = true }
password_command = "pass show snap"

[jobs.helpdesk]
repository = "local"
paths = ["/srv/helpdesk/public", "/srv/helpdesk/private"]
exclude = ["*.tmp"]
tags = ["nightly"]
dumps = [ { name = "helpdesk.sql", command = "pg_dump app", timeout = "2h" } ]
keep = { last = 7, daily = 7, weekly = 4, monthly = 6, min_free = "50G" }
sync_to = ["offsite"]
drill = { sample = "5%", dump_command = ["psql", "-q", "drill"] }
hooks.before = ["docker compose stop worker"]
hooks.after = [["docker", "compose", "start", "worker"]]
hooks.failed = []
hooks.finally = [{ command = "logger done", timeout = "5m" }]
notify.command = "mail -s 'snap: $SNAP_JOB $SNAP_STATUS' admin@example.org"
notify.url = "https://hc-ping.example/uuid"
notify.on = ["failure"]
timeout = "30m"
"#;

    #[test]
    fn the_example_parses() {
        let c = parse("snap.toml", FULL).unwrap();
        assert_eq!(c.repositories.len(), 2);
        assert_eq!(
            c.repositories[1].options[1],
            ("allow_http".into(), "true".into())
        );
        let j = c.job("helpdesk").unwrap();
        assert_eq!(j.paths.len(), 2);
        assert_eq!(j.dumps[0].cmd.timeout, Duration::from_secs(7200));
        assert_eq!(j.keep.as_ref().unwrap().min_free, Some(50 << 30));
        assert_eq!(j.keep.as_ref().unwrap().policy.weekly, 4);
        assert_eq!(j.hooks.before[0].timeout, Duration::from_secs(1800));
        assert_eq!(
            j.hooks.after[0].program,
            Program::Argv(vec![
                "docker".into(),
                "compose".into(),
                "start".into(),
                "worker".into()
            ])
        );
        assert_eq!(j.hooks.finally[0].timeout, Duration::from_secs(300));
        assert_eq!(j.notify.on, vec![On::Failure]);
        assert_eq!(j.drill.as_ref().unwrap().sample_pct, 5.0);
    }

    fn err(text: &str) -> String {
        parse("snap.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let base = "[repositories.r]\npath = \"/r\"\n\n[jobs.app]\npaths = [\"/a\"]\n";
        assert_eq!(
            err(&format!("{base}keep = {{ dayly = 3 }}\n")),
            "snap.toml:6: jobs.app.keep.dayly: unknown key (did you mean \"daily\"?)"
        );
        assert_eq!(
            err(&format!("{base}repository = \"rr\"\n")),
            "snap.toml:6: jobs.app.repository: no repository named \"rr\" (did you mean \"r\"?)"
        );
        assert_eq!(
            err(&format!("{base}pathz = 1\n")),
            "snap.toml:6: jobs.app.pathz: unknown key (did you mean \"paths\"?)"
        );
        assert!(err(
            "[repositories.r]\npath = \"/r\"\npassword = \"x\"\n[jobs.a]\npaths=[\"/a\"]\n"
        )
        .starts_with("snap.toml:3: repositories.r.password: a password is never written"));
        assert!(err(&format!("{base}timeout = \"soon\"\n"))
            .starts_with("snap.toml:6: jobs.app.timeout: \"soon\" is not a duration"));
        assert_eq!(
            err("[repositories.r]\npath = \"/r\"\n[jobs.a]\npaths = [\"/a\", \"rel\"]\n"),
            "snap.toml:4: jobs.a.paths[1]: \"rel\" is not an absolute path (a job may run from any directory)"
        );
        assert!(err("[repositories.r]\nurl = \"s3://b/p\"\noptions = { secret_access_key = \"x\" }\n[jobs.a]\npaths = [\"/a\"]\n")
            .starts_with("snap.toml:3: repositories.r.options.secret_access_key: credentials are never written"));
        assert!(err(&format!("{base}notify.on = [\"failur\"]\n"))
            .contains("(did you mean \"failure\"?)"));
        assert!(err(&format!("{base}hooks.befor = [\"x\"]\n")).starts_with(
            "snap.toml:6: jobs.app.hooks.befor: unknown key (did you mean \"before\"?)"
        ));
    }

    #[test]
    fn sizes_and_percentages() {
        assert_eq!(parse_size("50G"), Some(50 << 30));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_pct("5%"), Some(5.0));
        assert_eq!(parse_pct("0"), None);
        assert_eq!(parse_pct("101%"), None);
    }
}
