//! When a job runs: a job's `schedule` (or `snap schedule`'s flags), and
//! the systemd service and timer (`Persistent=true`: a run missed while
//! the machine was off happens at the next boot) or crontab line that run
//! it. `snap status` uses the period to tell whether a job is overdue.
//!
//! A schedule is `hourly`, `daily` or `weekly`, optionally followed by a
//! time (`daily 02:30`, `weekly 03:00` on Mondays, `hourly :15`), or any
//! other systemd `OnCalendar=` expression (`Mon..Fri *-*-* 22:00`), which
//! has no crontab line and no period for `snap status`.

use std::path::Path;
use std::time::Duration;

/// How often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Every {
    /// Each hour at `minute`.
    Hourly,
    /// Each day at `hour:minute`.
    Daily,
    /// Each Monday at `hour:minute`.
    Weekly,
    /// A systemd calendar expression.
    Calendar(String),
}

/// A job's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// How often.
    pub every: Every,
    /// Hour of the run (daily, weekly).
    pub hour: u8,
    /// Minute of the run.
    pub minute: u8,
}

fn parse_at(s: &str, hourly: bool) -> Result<(u8, u8), String> {
    let bad = || {
        format!(
            "{s:?} is not a time of day (HH:MM{})",
            if hourly { ", or :MM" } else { "" }
        )
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    let h: u8 = if h.is_empty() && hourly {
        0
    } else {
        h.parse().map_err(|_| bad())?
    };
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

impl Schedule {
    /// Parses a schedule (see the module documentation).
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("an empty schedule".into());
        }
        let mut words = s.split_whitespace();
        let first = words.next().unwrap_or("");
        let every = match first {
            "hourly" => Every::Hourly,
            "daily" => Every::Daily,
            "weekly" => Every::Weekly,
            _ => {
                return Ok(Schedule {
                    every: Every::Calendar(s.to_string()),
                    hour: 0,
                    minute: 0,
                })
            }
        };
        let (hour, minute) = match (words.next(), words.next()) {
            (None, _) => (if every == Every::Hourly { 0 } else { 2 }, 0),
            (Some(at), None) => parse_at(at, every == Every::Hourly)?,
            (Some(_), Some(extra)) => return Err(format!("unexpected {extra:?} after the time")),
        };
        Ok(Schedule {
            every,
            hour,
            minute,
        })
    }

    /// systemd's `OnCalendar=` value.
    pub fn on_calendar(&self) -> String {
        let (h, m) = (self.hour, self.minute);
        match &self.every {
            Every::Hourly => format!("*-*-* *:{m:02}:00"),
            Every::Daily => format!("*-*-* {h:02}:{m:02}:00"),
            Every::Weekly => format!("Mon *-*-* {h:02}:{m:02}:00"),
            Every::Calendar(c) => c.clone(),
        }
    }

    /// The crontab time fields, when cron can express the schedule.
    pub fn cron(&self) -> Option<String> {
        let (h, m) = (self.hour, self.minute);
        match &self.every {
            Every::Hourly => Some(format!("{m} * * * *")),
            Every::Daily => Some(format!("{m} {h} * * *")),
            Every::Weekly => Some(format!("{m} {h} * * 1")),
            Every::Calendar(_) => None,
        }
    }

    /// Time between runs, when known.
    pub fn period(&self) -> Option<Duration> {
        match self.every {
            Every::Hourly => Some(Duration::from_secs(3600)),
            Every::Daily => Some(Duration::from_secs(86_400)),
            Every::Weekly => Some(Duration::from_secs(7 * 86_400)),
            Every::Calendar(_) => None,
        }
    }
}

/// The unit name of job `job`'s service and timer (without the suffix).
pub fn unit_name(job: &str) -> String {
    format!("snap-{job}")
}

/// Quotes a word for a systemd `ExecStart=` line or a shell.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:@%+,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The command line that runs the job.
fn command_line(snap: &Path, job: &str, config: &Path) -> String {
    format!(
        "{} run {} --config {}",
        quote(&snap.display().to_string()),
        quote(job),
        quote(&config.display().to_string())
    )
}

/// The systemd service unit of job `job`.
pub fn service(snap: &Path, job: &str, config: &Path) -> String {
    format!(
        "[Unit]\n\
         Description=snap backup job {job}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={}\n\
         Nice=10\n\
         IOSchedulingClass=idle\n\
         # snap stops cleanly on SIGTERM; the failed and finally hooks still run.\n\
         TimeoutStopSec=5min\n",
        command_line(snap, job, config)
    )
}

/// The systemd timer unit of job `job`.
pub fn timer(job: &str, s: &Schedule) -> String {
    format!(
        "[Unit]\n\
         Description=Run snap backup job {job} ({})\n\
         \n\
         [Timer]\n\
         OnCalendar={}\n\
         # A run missed while the machine was off happens at the next boot.\n\
         Persistent=true\n\
         Unit={}.service\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        s.on_calendar(),
        s.on_calendar(),
        unit_name(job)
    )
}

/// The crontab line of job `job`, when cron can express the schedule;
/// `user`: the user field of a file in `/etc/cron.d`.
pub fn cron_line(
    snap: &Path,
    job: &str,
    config: &Path,
    s: &Schedule,
    user: Option<&str>,
) -> Option<String> {
    let when = s.cron()?;
    let user = user.map(|u| format!("{u} ")).unwrap_or_default();
    Some(format!(
        "{when} {user}{} --quiet\n",
        command_line(snap, job, config)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let s = Schedule::parse("daily 02:30").unwrap();
        assert_eq!(s.on_calendar(), "*-*-* 02:30:00");
        assert_eq!(s.cron().unwrap(), "30 2 * * *");
        let s = Schedule::parse("hourly :15").unwrap();
        assert_eq!(s.on_calendar(), "*-*-* *:15:00");
        assert_eq!(s.cron().unwrap(), "15 * * * *");
        let s = Schedule::parse("weekly").unwrap();
        assert_eq!(s.on_calendar(), "Mon *-*-* 02:00:00");
        let s = Schedule::parse("Mon..Fri *-*-* 22:00").unwrap();
        assert_eq!(s.on_calendar(), "Mon..Fri *-*-* 22:00");
        assert_eq!(s.cron(), None);
        assert_eq!(s.period(), None);
        assert!(Schedule::parse("daily 25:00").is_err());
        assert!(Schedule::parse("daily 2:30 now").is_err());
    }

    #[test]
    fn lines_quote_what_needs_it() {
        let s = Schedule::parse("daily 01:05").unwrap();
        let l = cron_line(
            Path::new("/usr/bin/snap"),
            "app",
            Path::new("/etc/my snap.toml"),
            &s,
            Some("root"),
        );
        assert_eq!(
            l.unwrap(),
            "5 1 * * * root /usr/bin/snap run app --config '/etc/my snap.toml' --quiet\n"
        );
    }
}
