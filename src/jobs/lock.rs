//! The job lock: one run of a job at a time on this machine.
//!
//! The lock is `flock(2)` on a file in the state directory, held for as
//! long as the run's file descriptor is open. The kernel releases it when
//! the process ends in any way (exit, crash, `kill -9`; a reboot empties
//! every lock), so a lock left behind never blocks the next run and
//! nothing needs judging stale. The file also says who holds it (pid,
//! host, start time), for the message a second run gives. The descriptor
//! is close-on-exec: hooks and dumps never inherit the lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// A held job lock (released on drop).
#[derive(Debug)]
pub struct JobLock {
    _file: File,
    /// The lock file.
    pub path: PathBuf,
}

/// Who holds a lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    /// Its process id, when the file says.
    pub pid: Option<u32>,
    /// When it started (RFC 3339), when the file says.
    pub since: Option<String>,
}

impl Holder {
    /// "pid 1234, running since 2026-01-31T02:00:00Z".
    pub fn describe(&self) -> String {
        match (&self.pid, &self.since) {
            (Some(p), Some(s)) => format!("pid {p}, running since {s}"),
            (Some(p), None) => format!("pid {p}"),
            _ => "a process that has not said who it is yet".to_string(),
        }
    }
}

/// The outcome of taking the lock.
#[derive(Debug)]
pub enum Acquired {
    /// This process holds it now.
    Held(JobLock),
    /// Another run holds it (after waiting, if asked to).
    Busy(Holder),
}

/// The lock file of job `job` in `dir`.
pub fn path(dir: &Path, job: &str) -> PathBuf {
    dir.join(format!("{job}.lock"))
}

fn try_flock(f: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

fn read_holder(f: &mut File) -> Holder {
    let mut s = String::new();
    let _ = f.rewind().and_then(|_| f.read_to_string(&mut s));
    let mut h = Holder::default();
    for line in s.lines() {
        if let Some(p) = line.strip_prefix("pid ") {
            h.pid = p.trim().parse().ok();
        } else if let Some(t) = line.strip_prefix("started ") {
            h.since = Some(t.trim().to_string());
        }
    }
    h
}

/// Takes job `job`'s lock in `dir`; when another run holds it, waits up to
/// `wait` (checking every 100 ms; a stop signal ends the wait) before
/// answering [`Acquired::Busy`].
pub fn acquire(dir: &Path, job: &str, wait: Duration) -> Result<Acquired> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let p = path(dir, job);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    let until = Instant::now() + wait;
    loop {
        if try_flock(&f).map_err(|e| Error::io(&p, e))? {
            break;
        }
        if Instant::now() >= until {
            return Ok(Acquired::Busy(read_holder(&mut f)));
        }
        crate::interrupt::sleep(Duration::from_millis(100))?;
    }
    let text = format!(
        "pid {}\nhost {}\nstarted {}\n",
        std::process::id(),
        crate::repository::open::hostname(),
        crate::repository::snapshots::rfc3339(crate::repository::snapshots::now_ns())
    );
    f.set_len(0)
        .and_then(|_| f.rewind())
        .and_then(|_| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io(&p, e))?;
    Ok(Acquired::Held(JobLock { _file: f, path: p }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_taker_is_told_who_holds_it() {
        let dir = std::env::temp_dir().join(format!("snap-lock-{}", std::process::id()));
        let first = match acquire(&dir, "job", Duration::ZERO).unwrap() {
            Acquired::Held(l) => l,
            Acquired::Busy(_) => panic!("free lock was busy"),
        };
        // flock locks belong to the open file: a second open is a second taker.
        match acquire(&dir, "job", Duration::from_millis(200)).unwrap() {
            Acquired::Busy(h) => assert_eq!(h.pid, Some(std::process::id())),
            Acquired::Held(_) => panic!("lock taken twice"),
        }
        drop(first);
        assert!(matches!(
            acquire(&dir, "job", Duration::ZERO).unwrap(),
            Acquired::Held(_)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
