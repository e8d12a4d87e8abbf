//! What a long command reports while it runs: progress counters (files and
//! bytes done, the totals when known, the current item) and verbose lines
//! (`-v`: what it is doing and why).
//!
//! Commands update a [`Progress`] and never draw anything: the CLI
//! (`cli::progress`) polls the counters a few times a second and owns the
//! terminal. [`Progress::default`] does nothing. The per-item cost is kept
//! tiny for `create`'s hundreds of thousands of small files: relaxed atomic
//! additions, and the current item's name is copied only when the renderer
//! has asked for a fresh one since the last copy (at most once per redraw).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where verbose lines go (the CLI prints them on stderr).
pub trait Log: Send + Sync {
    /// Writes one line.
    fn line(&self, line: &str);
}

/// The shared counters of one command's run.
#[derive(Debug, Default)]
pub struct Counters {
    files_done: AtomicU64,
    bytes_done: AtomicU64,
    total_files: AtomicU64,
    total_bytes: AtomicU64,
    files_known: AtomicBool,
    bytes_known: AtomicBool,
    /// Set by the renderer: copy the next item's name into `current`.
    want_current: AtomicBool,
    current: Mutex<String>,
}

/// A reading of the counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Items (files, packs, objects) done.
    pub files_done: u64,
    /// Bytes done.
    pub bytes_done: u64,
    /// Items in all, when known in advance.
    pub total_files: Option<u64>,
    /// Bytes in all, when known in advance.
    pub total_bytes: Option<u64>,
    /// The item last started (empty before the first).
    pub current: String,
}

impl Counters {
    /// The counters now; asks for a fresh current item for the next reading.
    pub fn status(&self) -> Status {
        let files_known = self.files_known.load(Ordering::Relaxed);
        let bytes_known = self.bytes_known.load(Ordering::Relaxed);
        let current = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.want_current.store(true, Ordering::Relaxed);
        Status {
            files_done: self.files_done.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            total_files: files_known.then(|| self.total_files.load(Ordering::Relaxed)),
            total_bytes: bytes_known.then(|| self.total_bytes.load(Ordering::Relaxed)),
            current,
        }
    }
}

/// A command's reporter: counters for a progress display (when one is
/// shown) and verbose lines up to a level (when asked for). Cheap to clone.
#[derive(Clone, Default)]
pub struct Progress {
    counters: Option<Arc<Counters>>,
    log: Option<Arc<dyn Log>>,
    verbosity: u8,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("counting", &self.counters.is_some())
            .field("verbosity", &self.verbosity)
            .finish()
    }
}

impl Progress {
    /// A reporter that counts (when `counters` is given) and passes lines
    /// of level up to `verbosity` to `log`.
    pub fn new(counters: Option<Arc<Counters>>, verbosity: u8, log: Option<Arc<dyn Log>>) -> Self {
        Progress {
            counters,
            log,
            verbosity,
        }
    }

    /// Sets the totals, once they are known (the display then shows a
    /// percentage and an ETA).
    pub fn set_total(&self, files: u64, bytes: u64) {
        self.set_total_files(files);
        if let Some(c) = &self.counters {
            c.total_bytes.store(bytes, Ordering::Relaxed);
            c.bytes_known.store(true, Ordering::Relaxed);
        }
    }

    /// Sets the number of items only (their bytes are not known ahead).
    pub fn set_total_files(&self, files: u64) {
        if let Some(c) = &self.counters {
            c.total_files.store(files, Ordering::Relaxed);
            c.files_known.store(true, Ordering::Relaxed);
        }
    }

    /// An item (a file, a pack) is being worked on.
    pub fn file_started(&self, name: &Path) {
        self.item_started(|| name.display().to_string());
    }

    /// An item named by `name()` (called only when the display wants it).
    pub fn item_started(&self, name: impl FnOnce() -> String) {
        if let Some(c) = &self.counters {
            if c.want_current.load(Ordering::Relaxed)
                && c.want_current.swap(false, Ordering::Relaxed)
            {
                let n = name();
                let mut cur = c.current.lock().unwrap_or_else(|p| p.into_inner());
                cur.clear();
                cur.push_str(&n);
            }
        }
    }

    /// `n` more bytes done.
    pub fn bytes_done(&self, n: u64) {
        if let Some(c) = &self.counters {
            c.bytes_done.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// One more item done.
    pub fn file_done(&self) {
        if let Some(c) = &self.counters {
            c.files_done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether lines of this level are wanted (`-v` is 1, `-vv` 2).
    pub fn verbose_at(&self, level: u8) -> bool {
        self.log.is_some() && self.verbosity >= level
    }

    /// A verbose line of `level`, built only when it is wanted.
    pub fn verbose(&self, level: u8, line: impl FnOnce() -> String) {
        if self.verbose_at(level) {
            if let Some(log) = &self.log {
                log.line(&line());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Lines(Mutex<Vec<String>>);
    impl Log for Lines {
        fn line(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
    }

    #[test]
    fn default_does_nothing_and_counters_count() {
        let p = Progress::default();
        p.file_started(Path::new("/a"));
        p.bytes_done(5);
        p.verbose(1, || unreachable!("not built when nobody listens"));
        let c = Arc::new(Counters::default());
        let lines = Arc::new(Lines(Mutex::new(Vec::new())));
        let p = Progress::new(Some(c.clone()), 1, Some(lines.clone()));
        p.file_started(Path::new("/first"));
        assert_eq!(c.status().current, "", "no name copied before asked");
        p.file_started(Path::new("/second"));
        p.file_started(Path::new("/third"));
        p.bytes_done(7);
        p.file_done();
        p.verbose(1, || "one".into());
        p.verbose(2, || "two".into());
        let s = c.status();
        assert_eq!(
            (s.files_done, s.bytes_done, s.current.as_str()),
            (1, 7, "/second")
        );
        assert_eq!(s.total_bytes, None);
        p.set_total(3, 9);
        assert_eq!(c.status().total_bytes, Some(9));
        assert_eq!(*lines.0.lock().unwrap(), vec!["one".to_string()]);
    }
}
