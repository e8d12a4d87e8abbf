//! The command line: clap types (raw flags), turned into validated command
//! options; the only place that prints.

/// `println!` for the CLI's output: a closed stdout (`snap ls | head`)
/// ends the process quietly with exit 0 instead of a panic. Output is only
/// printed after a command has finished its work, so nothing is cut short.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            panic!("cannot write to stdout: {e}");
        }
    }};
}

mod args;
mod copy;
mod create_extra;
mod diff;
mod dump;
mod find;
mod generate;
mod jobs;
mod keys;
mod mount;
mod output;
mod password;
mod progress;
mod prune;
mod repair;
mod restore;
mod run;
mod schedule;
mod stats;
mod sync;
mod tag;
mod verify;

pub use run::main;

/// A command-line error found after clap (a flag's value that cannot be
/// used, a required source missing): exit code 2, like clap's own.
pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
    crate::Error::Usage(msg.into()).into()
}

/// Turns the failure to parse a flag's value into a usage error that
/// names the flag (`what`) and says what was wrong.
pub(crate) trait OrUsage<T> {
    fn or_usage(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E: std::fmt::Display> OrUsage<T> for std::result::Result<T, E> {
    fn or_usage(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| usage(format!("{}: {e}", what())))
    }
}

/// Exit codes (documented in README.md).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Any failure not listed below.
    pub const FAILURE: i32 = 1;
    /// Bad command-line usage.
    pub const USAGE: i32 = 2;
    /// The snapshot was saved, but some files could not be read completely.
    pub const INCOMPLETE: i32 = 3;
    /// The repository does not exist.
    pub const NO_REPOSITORY: i32 = 10;
    /// `check` or `restore` found missing or damaged data.
    pub const DAMAGED: i32 = 11;
    /// Wrong password.
    pub const WRONG_PASSWORD: i32 = 12;
    /// `snap run`: a step of the job failed (the summary says which).
    pub const JOB_FAILED: i32 = 20;
    /// `snap run`: skipped, another run of the job holds its lock.
    pub const JOB_SKIPPED: i32 = 21;
}
