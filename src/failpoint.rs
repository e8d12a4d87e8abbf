//! Failpoints: named places in `create`, `prune`, `sync`, `restore` and `tag`
//! where a test can kill the process, make it fail or pause it, to check
//! that a crash or an interleaving of two processes at that step never
//! loses data (or, for `restore`, that a change made to the target while it
//! runs is never followed).
//!
//! A call site is one line, `failpoint!("create.after_intents");`, in a
//! function returning [`crate::Result`]. Without the cargo feature
//! `failpoints` (off by default, on for `scripts/test.sh`) the macro
//! expands to a compile-time check that the name is listed in [`ALL`] and to
//! nothing else: a release binary reads no environment variable and holds
//! no failpoint name.
//!
//! With the feature, `SNAP_FAILPOINTS="name=action;name2=N*action"` (read
//! once, at the first failpoint reached) chooses what happens at each
//! named point:
//!
//! * `abort`: end the process at once, exactly as `kill -9` does (it sends
//!   itself SIGKILL: no destructors, no buffered output, no core file);
//! * `panic`: panic on the thread that reached it;
//! * `error`: return an injected I/O error from the calling function;
//! * `sleep(MS)`: sleep MS milliseconds;
//! * `touch(PATH)`: create PATH (holding our pid), so a test knows the
//!   process got there;
//! * `wait(PATH)`: block until PATH exists (at most two minutes), so a
//!   test decides when the process goes on;
//! * `peak(PATH)`: write the process's peak resident memory so far (KiB,
//!   `VmHWM` of /proc/self/status: this program's own, unlike the
//!   `ru_maxrss` a parent sees, which counts the memory of the process it
//!   was forked from) to PATH.
//!
//! Actions chain with `->` (`touch(/t/a)->wait(/t/b)`: say we are here, then
//! wait to be released). A prefix `N*` fires on the N-th time the point is
//! reached only; without it, every time. A malformed value or an unknown
//! name panics: a test with a typo must not pass by testing nothing.
//!
//! [`ALL`] lists every failpoint, so that a test can cover each one (a
//! call site whose name is missing there does not compile).

/// Every failpoint, grouped by command. `tests/crash_matrix.rs` kills the
/// process at each one of `create`, `prune` and `sync`;
/// `tests/restore_safety.rs` those of `restore`.
pub const ALL: &[&str] = &[
    // create: the registration is durable, prune intents not read yet.
    "create.after_register",
    // create: registered and intents read; nothing stored yet.
    "create.after_intents",
    // create: a pack is uploaded, not yet in the index.
    "create.pack_uploaded",
    // create: a pack is uploaded and indexed.
    "create.pack_indexed",
    // create: every pack is durable, the snapshot object is not written.
    "create.before_snapshot",
    // create: the snapshot is written, the registration not yet removed.
    "create.after_snapshot",
    // prune: after each forgotten snapshot object is deleted.
    "prune.after_forget",
    // prune: the intent listing the candidate packs is written.
    "prune.after_intent",
    // prune: waiting for a create (or tag) registered before the intent
    // (reached only while one runs: tests/cli_tag.rs).
    "prune.waiting_for_creates",
    // prune: every create registered before the intent has ended.
    "prune.after_wait",
    // prune: a pack of copied blobs is uploaded, not yet indexed.
    "prune.repack_uploaded",
    // prune: a pack of copied blobs is uploaded and indexed.
    "prune.repack_indexed",
    // prune: copies verified, nothing deleted yet.
    "prune.before_delete",
    // prune: after each candidate pack is deleted.
    "prune.after_pack_delete",
    // sync: before each object (key, pack, snapshot) is written to the target.
    "sync.before_object",
    // sync: every missing pack is on the target, no snapshot yet.
    "sync.after_packs",
    // sync: after each snapshot object is written to the target.
    "sync.after_snapshot",
    // sync --delete: everything is copied, nothing deleted yet.
    "sync.before_deletes",
    // sync --delete: extra snapshots are deleted, extra packs not yet.
    "sync.between_deletes",
    // restore, once per window: its directories are created (or found),
    // none of its files written yet.
    "restore.after_dirs",
    // restore: after each chunk written into a file's temporary name.
    "restore.after_write",
    // restore: every window restored, the report not returned yet.
    "restore.done",
    // copy: after each snapshot object is written to the target.
    "copy.after_snapshot",
    // tag: the retagged snapshot is written, the old one not yet deleted.
    "tag.after_new_snapshot",
];

/// Failpoints a command reaches only while another process runs beside
/// it; the tests that stop a command at every failpoint of its own leave
/// them out (each is driven by the test of that interleaving).
pub const NEEDS_ANOTHER_PROCESS: &[&str] = &["prune.waiting_for_creates"];

/// The failpoints of a command (`prefix`, e.g. `"prune."`) that one run of
/// it alone reaches: [`ALL`] less [`NEEDS_ANOTHER_PROCESS`].
pub fn reached_alone(prefix: &str) -> Vec<&'static str> {
    ALL.iter()
        .copied()
        .filter(|p| p.starts_with(prefix) && !NEEDS_ANOTHER_PROCESS.contains(p))
        .collect()
}

/// Whether `name` is in [`ALL`] (evaluated at compile time by the macro).
pub(crate) const fn listed(name: &str) -> bool {
    let mut i = 0;
    while i < ALL.len() {
        if same(ALL[i].as_bytes(), name.as_bytes()) {
            return true;
        }
        i += 1;
    }
    false
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `failpoint!("name");` marks a failpoint (see the module docs), and
/// `failpoint!("name", if COND);` one that only counts when COND holds; the
/// enclosing function must return [`crate::Result`].
#[cfg(feature = "failpoints")]
macro_rules! failpoint {
    ($name:literal) => {
        failpoint!($name, if true)
    };
    ($name:literal, if $cond:expr) => {
        const { assert!($crate::failpoint::listed($name), "failpoint not in failpoint::ALL") };
        if $cond {
            $crate::failpoint::hit($name)?;
        }
    };
}

/// Without the `failpoints` feature, `failpoint!` only checks at compile
/// time that the name is listed; COND is not evaluated.
#[cfg(not(feature = "failpoints"))]
macro_rules! failpoint {
    ($name:literal $(, if $cond:expr)?) => {
        const {
            assert!(
                $crate::failpoint::listed($name),
                "failpoint not in failpoint::ALL"
            )
        };
    };
}

#[cfg(feature = "failpoints")]
pub(crate) use active::hit;

#[cfg(feature = "failpoints")]
mod active {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use crate::{Error, Result};

    /// The environment variable naming the actions.
    const VAR: &str = "SNAP_FAILPOINTS";
    /// How long `wait(PATH)` waits before giving up (a test that forgot to
    /// release a process must not hang forever).
    const WAIT_LIMIT: Duration = Duration::from_secs(120);

    #[derive(Debug, PartialEq)]
    enum Action {
        Abort,
        Panic,
        Error,
        Sleep(Duration),
        Touch(PathBuf),
        Wait(PathBuf),
        Peak(PathBuf),
    }

    #[derive(Debug)]
    struct Point {
        name: String,
        /// Fire on this hit only (1-based); 0: on every hit.
        nth: u64,
        actions: Vec<Action>,
        hits: AtomicU64,
    }

    fn parse_action(s: &str) -> std::result::Result<Action, String> {
        let (word, arg) = match s.split_once('(') {
            Some((w, rest)) => match rest.strip_suffix(')') {
                Some(a) => (w, Some(a)),
                None => return Err(format!("{s:?}: missing ')'")),
            },
            None => (s, None),
        };
        match (word, arg) {
            ("abort", None) => Ok(Action::Abort),
            ("panic", None) => Ok(Action::Panic),
            ("error", None) => Ok(Action::Error),
            ("sleep", Some(ms)) => ms
                .parse()
                .map(|ms| Action::Sleep(Duration::from_millis(ms)))
                .map_err(|_| format!("{s:?}: milliseconds expected")),
            ("touch", Some(p)) if !p.is_empty() => Ok(Action::Touch(p.into())),
            ("wait", Some(p)) if !p.is_empty() => Ok(Action::Wait(p.into())),
            ("peak", Some(p)) if !p.is_empty() => Ok(Action::Peak(p.into())),
            _ => Err(format!(
                "{s:?}: expected abort, panic, error, sleep(MS), touch(PATH), wait(PATH) or peak(PATH)"
            )),
        }
    }

    fn parse_point(entry: &str) -> std::result::Result<Point, String> {
        let (name, spec) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?}: expected NAME=ACTION"))?;
        let name = name.trim();
        if !super::ALL.contains(&name) {
            return Err(format!("{name:?} is not a failpoint (see failpoint::ALL)"));
        }
        let (nth, chain) = match spec.split_once('*') {
            Some((n, rest)) if !n.contains('(') => (
                n.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{entry:?}: count before '*' must be >= 1"))?,
                rest,
            ),
            _ => (0, spec),
        };
        let actions = chain
            .split("->")
            .map(|a| parse_action(a.trim()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Point {
            name: name.to_string(),
            nth,
            actions,
            hits: AtomicU64::new(0),
        })
    }

    fn parse(spec: &str) -> std::result::Result<Vec<Point>, String> {
        let mut out: Vec<Point> = Vec::new();
        for entry in spec.split(';').filter(|e| !e.trim().is_empty()) {
            let p = parse_point(entry)?;
            if out.iter().any(|q| q.name == p.name) {
                return Err(format!("{:?} is given twice", p.name));
            }
            out.push(p);
        }
        Ok(out)
    }

    fn points() -> &'static [Point] {
        static POINTS: OnceLock<Vec<Point>> = OnceLock::new();
        POINTS.get_or_init(|| match std::env::var(VAR) {
            Ok(spec) => parse(&spec).unwrap_or_else(|e| panic!("{VAR}: {e}")),
            Err(_) => Vec::new(),
        })
    }

    fn run(name: &str, a: &Action) -> Result<()> {
        match a {
            Action::Abort => {
                // SAFETY: kill(2) with our own pid and a valid signal.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                std::process::abort()
            }
            Action::Panic => panic!("failpoint {name}: injected panic"),
            Action::Error => Err(Error::io(
                format!("failpoint {name}"),
                std::io::Error::other("injected error"),
            )),
            Action::Sleep(d) => {
                std::thread::sleep(*d);
                Ok(())
            }
            Action::Touch(p) => {
                std::fs::write(p, std::process::id().to_string())
                    .unwrap_or_else(|e| panic!("failpoint {name}: touch {}: {e}", p.display()));
                Ok(())
            }
            Action::Wait(p) => {
                let start = Instant::now();
                while !p.exists() {
                    if start.elapsed() > WAIT_LIMIT {
                        panic!("failpoint {name}: {} did not appear", p.display());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(())
            }
            Action::Peak(p) => {
                let status = std::fs::read_to_string("/proc/self/status")
                    .unwrap_or_else(|e| panic!("failpoint {name}: /proc/self/status: {e}"));
                let kib = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
                    .unwrap_or_else(|| panic!("failpoint {name}: no VmHWM"));
                std::fs::write(p, kib)
                    .unwrap_or_else(|e| panic!("failpoint {name}: peak {}: {e}", p.display()));
                Ok(())
            }
        }
    }

    /// Reached failpoint `name`: runs the actions `SNAP_FAILPOINTS` chose.
    pub fn hit(name: &'static str) -> Result<()> {
        for p in points().iter().filter(|p| p.name == name) {
            let n = p.hits.fetch_add(1, Ordering::SeqCst) + 1;
            if p.nth != 0 && p.nth != n {
                continue;
            }
            for a in &p.actions {
                run(name, a)?;
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_actions_counts_and_chains() {
            let p = parse(
                "create.after_register=abort; prune.after_intent=touch(/t/a)->wait(/t/b);\
                 sync.before_object=3*sleep(150)",
            )
            .unwrap();
            assert_eq!(p.len(), 3);
            assert_eq!((p[0].nth, &p[0].actions[..]), (0, &[Action::Abort][..]));
            assert_eq!(
                p[1].actions,
                [Action::Touch("/t/a".into()), Action::Wait("/t/b".into())]
            );
            assert_eq!(p[2].nth, 3);
            assert_eq!(p[2].actions, [Action::Sleep(Duration::from_millis(150))]);
        }

        #[test]
        fn refuses_typos() {
            for bad in [
                "create.after_registr=abort",
                "create.after_register",
                "create.after_register=explode",
                "create.after_register=0*abort",
                "create.after_register=sleep(x)",
                "create.after_register=wait(/x",
                "create.after_register=abort;create.after_register=panic",
            ] {
                assert!(parse(bad).is_err(), "{bad}");
            }
        }

        #[test]
        fn error_action_returns_an_error() {
            assert!(run("x", &Action::Error).is_err());
            assert!(run("x", &Action::Sleep(Duration::ZERO)).is_ok());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_grouped_by_command() {
        for (i, n) in super::ALL.iter().enumerate() {
            assert!(super::listed(n));
            assert!(!super::ALL[..i].contains(n), "{n} twice");
            let cmd = n.split('.').next().unwrap();
            assert!(
                ["create", "prune", "sync", "restore", "tag", "copy"].contains(&cmd),
                "{n}"
            );
        }
        assert!(!super::listed("create.nowhere"));
    }
}
