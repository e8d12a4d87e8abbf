//! SIGINT, SIGTERM and SIGHUP: the first one asks the running command to
//! stop cleanly; a second one, or a command that has not stopped within
//! [`GRACE`], ends the process at once.
//!
//! A clean stop is an ordinary error ([`Error::Interrupted`]) raised by
//! [`check`] at the points where work can be abandoned (between chunks,
//! files, packs, objects), so that everything unwinds as for any failure:
//! open packs are abandoned and their staging files removed, locks are
//! deleted, dump commands are killed, nothing half-done is committed. The
//! CLI exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
//! The hard exit uses the same code; the repository format survives it as
//! it survives `kill -9` (locks left behind are judged stale later).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::{Error, Result};

/// How long a command may take to stop after the first signal.
pub const GRACE: Duration = Duration::from_secs(60);

static RECEIVED: AtomicI32 = AtomicI32::new(0);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the handlers (once; later calls do nothing).
pub fn install() -> std::io::Result<()> {
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("snap-signals".into())
        .spawn(move || {
            for s in signals.forever() {
                if RECEIVED.swap(s, Ordering::SeqCst) != 0 {
                    eprintln!("snap: {} again: stopping at once", name(s));
                    std::process::exit(128 + s);
                }
                eprintln!(
                    "snap: {}: stopping cleanly (again to stop at once)",
                    name(s)
                );
                std::thread::spawn(move || {
                    std::thread::sleep(GRACE);
                    eprintln!(
                        "snap: did not stop within {}s of {}: stopping at once",
                        GRACE.as_secs(),
                        name(s)
                    );
                    std::process::exit(128 + s);
                });
            }
        })?;
    let _ = INSTALLED.set(());
    Ok(())
}

/// The signal received, if any.
pub fn received() -> Option<i32> {
    let s = RECEIVED.load(Ordering::SeqCst);
    (s != 0).then_some(s)
}

/// Fails with [`Error::Interrupted`] once a stop was asked for.
pub fn check() -> Result<()> {
    match received() {
        Some(signal) => Err(Error::Interrupted { signal }),
        None => Ok(()),
    }
}

/// Sleeps for `d`, waking early (with [`Error::Interrupted`]) when a stop
/// is asked for: a wait for another process is a stop point too.
pub fn sleep(d: Duration) -> Result<()> {
    let until = std::time::Instant::now() + d;
    loop {
        check()?;
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// The name of a signal, for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
