//! The progress display of the long commands (create, restore, check,
//! prune, sync) and the sink of their verbose lines. The only place that
//! knows `indicatif`: commands see a [`crate::progress::Progress`].
//!
//! When progress is shown:
//! * stderr is a terminal: a bar (or, with no totals known, a counter)
//!   redrawn ten times a second — unless `--quiet`, `--json` or
//!   `--no-progress`;
//! * stderr is not a terminal (cron, a pipe): nothing, unless `--progress`,
//!   which prints a plain status line on stderr every five seconds and
//!   one when the command ends;
//! * `--json --progress`: status lines on stdout, at most two a second and
//!   one last when the command ends, each one JSON document
//!   (`"message_type":"status"`); the command's report follows as the last
//!   line, with `"message_type":"summary"` added. Without `--progress`,
//!   `--json` output stays the single report document it always was.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::Global;
use super::output::human;
use crate::progress::{Counters, Log, Progress, Status};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Off,
    Bar,
    Lines,
    Json,
}

/// How a run shows progress and verbose lines (from the global flags).
#[derive(Clone, Copy, Debug)]
pub struct Display {
    mode: Mode,
    verbose: u8,
    quiet: bool,
}

impl Display {
    /// From the global flags (and whether stderr is a terminal).
    pub fn new(g: &Global) -> Display {
        Display {
            mode: mode(g),
            verbose: g.verbose,
            quiet: g.quiet,
        }
    }

    /// Whether `--json` reports are followed by status lines (and so
    /// carry `"message_type":"summary"`).
    pub fn json_stream(&self) -> bool {
        self.mode == Mode::Json
    }
}

fn mode(g: &Global) -> Mode {
    if g.no_progress {
        return Mode::Off;
    }
    if g.json {
        return if g.progress { Mode::Json } else { Mode::Off };
    }
    if g.quiet && !g.progress {
        return Mode::Off;
    }
    if std::io::stderr().is_terminal() {
        Mode::Bar
    } else if g.progress {
        Mode::Lines
    } else {
        Mode::Off
    }
}

/// Verbose lines on stderr, printed around the bar.
struct StderrLog(Option<ProgressBar>);

impl Log for StderrLog {
    fn line(&self, line: &str) {
        match &self.0 {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

/// The display of one command's run; ends (and clears the bar) on drop.
pub struct Session {
    progress: Progress,
    bar: Option<ProgressBar>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

/// Starts the display for a command whose items are `unit` (files, packs,
/// objects). Verbose lines (`-v`) go to stderr unless `--quiet`.
pub fn begin(d: &Display, unit: &'static str) -> Session {
    let mode = d.mode;
    let stop = Arc::new(AtomicBool::new(false));
    let counters = (mode != Mode::Off).then(|| Arc::new(Counters::default()));
    let bar = (mode == Mode::Bar).then(|| {
        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        b.set_style(style(false));
        b
    });
    let log: Option<Arc<dyn Log>> =
        (d.verbose > 0 && !d.quiet).then(|| Arc::new(StderrLog(bar.clone())) as Arc<dyn Log>);
    let progress = Progress::new(counters.clone(), d.verbose, log);
    let ticker = counters.map(|c| {
        let stop = stop.clone();
        let bar = bar.clone();
        std::thread::Builder::new()
            .name("snap-progress".into())
            .spawn(move || tick(mode, &c, bar, unit, &stop))
            .expect("start the progress thread")
    });
    Session {
        progress,
        bar,
        stop,
        ticker,
    }
}

impl Session {
    /// The reporter to hand to the command.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Runs `f` with the bar hidden (a password prompt on the terminal).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn style(known: bool) -> ProgressStyle {
    let t = if known {
        "{spinner} [{elapsed_precise}] [{bar:30}] {percent:>3}% {binary_bytes}/{binary_total_bytes} \
         {binary_bytes_per_sec} ETA {eta}  {prefix}\n  {wide_msg}"
    } else {
        "{spinner} [{elapsed_precise}] {binary_bytes} {binary_bytes_per_sec}  {prefix}\n  {wide_msg}"
    };
    ProgressStyle::with_template(t)
        .expect("valid template")
        .progress_chars("=> ")
}

/// The display loop: reads the counters, draws, until `stop`.
fn tick(mode: Mode, c: &Counters, bar: Option<ProgressBar>, unit: &str, stop: &AtomicBool) {
    let started = Instant::now();
    let every = match mode {
        Mode::Bar => Duration::from_millis(100),
        Mode::Json => Duration::from_millis(500),
        _ => Duration::from_secs(5),
    };
    let mut known = false;
    // The first reading asks for the current item's name.
    let _ = c.status();
    if let Some(b) = &bar {
        // Drawn at once, also for a run shorter than a redraw.
        b.set_prefix(format!("0 {unit}"));
        b.tick();
    }
    loop {
        std::thread::park_timeout(every);
        let done = stop.load(Ordering::Relaxed);
        let s = c.status();
        match (&bar, mode) {
            (Some(b), _) => {
                if let (Some(total), false) = (s.total_bytes, known) {
                    known = true;
                    b.set_style(style(true));
                    b.set_length(total);
                }
                b.set_position(s.bytes_done);
                b.set_prefix(files(&s, unit));
                b.set_message(s.current.clone());
            }
            (None, Mode::Json) => json_line(&s, started.elapsed(), done),
            (None, _) => eprintln!("{}", plain_line(&s, started.elapsed(), unit)),
        }
        if done {
            break;
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

fn files(s: &Status, unit: &str) -> String {
    match s.total_files {
        Some(t) => format!("{}/{t} {unit}", s.files_done),
        None => format!("{} {unit}", s.files_done),
    }
}

fn fraction(s: &Status) -> Option<f64> {
    match (s.total_bytes, s.total_files) {
        (Some(b), _) if b > 0 => Some((s.bytes_done as f64 / b as f64).min(1.0)),
        (_, Some(f)) if f > 0 => Some((s.files_done as f64 / f as f64).min(1.0)),
        (Some(_), _) | (_, Some(_)) => Some(1.0),
        _ => None,
    }
}

fn remaining(s: &Status, elapsed: Duration) -> Option<u64> {
    let f = fraction(s)?;
    (f > 0.0).then(|| (elapsed.as_secs_f64() * (1.0 - f) / f) as u64)
}

/// `[0:05] 12/40 files, 3.00 MiB of 9.00 MiB, 600.00 KiB/s, ETA 0:10, /src/a`
fn plain_line(s: &Status, elapsed: Duration, unit: &str) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let clock = |t: u64| format!("{}:{:02}", t / 60, t % 60);
    let mut line = format!(
        "[{}] {}, {}",
        clock(elapsed.as_secs()),
        files(s, unit),
        human(s.bytes_done)
    );
    if let Some(t) = s.total_bytes {
        line.push_str(&format!(" of {}", human(t)));
    }
    line.push_str(&format!(
        ", {}/s",
        human((s.bytes_done as f64 / secs) as u64)
    ));
    if let Some(r) = remaining(s, elapsed) {
        line.push_str(&format!(", ETA {}", clock(r)));
    }
    if !s.current.is_empty() {
        line.push_str(&format!(", {}", s.current));
    }
    line
}

/// One `"message_type":"status"` line on stdout (`last`: the command has
/// ended, percent_done is 1).
fn json_line(s: &Status, elapsed: Duration, last: bool) {
    let fraction = if last { Some(1.0) } else { fraction(s) };
    let mut v = serde_json::json!({
        "message_type": "status",
        "seconds_elapsed": elapsed.as_secs(),
        "percent_done": fraction.unwrap_or(0.0),
        "files_done": s.files_done,
        "bytes_done": s.bytes_done,
        "current_files": if s.current.is_empty() || last { vec![] } else { vec![s.current.clone()] },
    });
    if let Some(t) = s.total_files {
        v["total_files"] = t.into();
    }
    if let Some(t) = s.total_bytes {
        v["total_bytes"] = t.into();
    }
    if let (Some(r), false) = (remaining(s, elapsed), last) {
        v["seconds_remaining"] = r.into();
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line_has_rate_eta_and_current() {
        let s = Status {
            files_done: 2,
            bytes_done: 50,
            total_files: Some(4),
            total_bytes: Some(100),
            current: "/src/a".into(),
        };
        let l = plain_line(&s, Duration::from_secs(10), "files");
        assert_eq!(
            l,
            "[0:10] 2/4 files, 50 B of 100 B, 5 B/s, ETA 0:10, /src/a"
        );
        let s = Status {
            total_files: None,
            total_bytes: None,
            ..s
        };
        assert!(!plain_line(&s, Duration::from_secs(1), "packs").contains("ETA"));
    }
}
