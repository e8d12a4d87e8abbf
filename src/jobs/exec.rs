//! Running one command of a job (a hook, the drill's dump command, the
//! notification command): in its own process group, with snap's secrets
//! scrubbed from its environment (`crate::child`), the job's variables
//! added, a timeout that kills the whole group, and the tail of its stderr
//! kept for the summary.
//!
//! The command's stdout and stderr go to snap's stderr (snap's stdout is
//! the summary, which other programs read). Dumps do not run here: they
//! are `create`'s streams (`crate::commands::streams`).
//!
//! The timeout's kill can never hit a recycled process id: the group
//! leader is reaped only after the watchdog was told it exited.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::config::Cmd;
use crate::{Error, Result};

/// How much of a command's stderr is kept for the summary.
pub const TAIL_BYTES: usize = 4096;

/// What the command reads on stdin.
pub enum Input<'a> {
    /// Nothing (`/dev/null`).
    Null,
    /// These bytes, then end of file.
    Bytes(&'a [u8]),
    /// Whatever this writes (e.g. a dump read from the repository); its
    /// result is returned in [`Outcome::fed`].
    Feed(&'a mut dyn FnMut(&mut dyn Write) -> Result<u64>),
}

/// How a command ended.
#[derive(Debug)]
pub struct Outcome {
    /// It exited with status 0 in time.
    pub ok: bool,
    /// How it ended, for messages: "exited with status 3", "timed out
    /// after 1h and was killed", ...
    pub how: String,
    /// The last lines of its stderr.
    pub stderr_tail: String,
    /// Killed because snap was asked to stop (SIGINT, SIGTERM, SIGHUP).
    pub interrupted: bool,
    /// The result of an [`Input::Feed`].
    pub fed: Option<Result<u64>>,
    /// How long it ran.
    pub duration: Duration,
}

impl Outcome {
    /// "`LABEL` HOW; its stderr ends with: ..." for a failed command.
    pub fn failure(&self, what: &str) -> String {
        let mut s = format!("{what} {}", self.how);
        if !self.stderr_tail.is_empty() {
            s.push_str(&format!(
                "; its stderr ends with: {}",
                last_lines(&self.stderr_tail, 5)
            ));
        }
        s
    }
}

/// The last `n` non-empty lines of `s`, joined with " | ".
pub fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Runs `cmd` with `env` added to its environment. `stop_on_interrupt`:
/// kill it when snap is asked to stop (not for the hooks that must run
/// on the way out: `failed` and `finally`). Fails only when the command
/// cannot be started.
pub fn run(
    cmd: &Cmd,
    env: &[(String, String)],
    input: Input<'_>,
    stop_on_interrupt: bool,
) -> Result<Outcome> {
    let started = Instant::now();
    let argv = cmd.argv();
    let out = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::io("<stderr>", e))?;
    let mut c = crate::child::command(&argv[0]);
    c.args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(match input {
            Input::Null => Stdio::null(),
            _ => Stdio::piped(),
        })
        .stdout(Stdio::from(out))
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = c
        .spawn()
        .map_err(|e| Error::Command(format!("cannot start `{}`: {e}", cmd.label())))?;
    let pid = child.id() as i32;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(tee_tail(stderr));
    });
    let dog = Watchdog::start(pid, cmd.timeout, stop_on_interrupt);
    let mut fed = None;
    if let Some(mut stdin) = child.stdin.take() {
        match input {
            Input::Null => {}
            // Written by another thread: a command that does not read its
            // input must not keep snap waiting on a full pipe. Not reading
            // it is no error here: the exit status says whether it worked.
            Input::Bytes(b) => {
                let b = b.to_vec();
                std::thread::spawn(move || {
                    let _ = stdin.write_all(&b);
                });
            }
            Input::Feed(f) => {
                fed = Some(f(&mut stdin));
                let _ = stdin.flush();
            }
        }
    }
    wait_exited_keep_zombie(pid);
    let (timed_out, stopped) = dog.exited();
    let status = child
        .wait()
        .map_err(|e| Error::Command(format!("`{}`: wait failed: {e}", cmd.label())))?;
    // A background process of the command may keep its stderr open: wait
    // a moment for the rest, never for ever.
    let tail = rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default();
    let how = if timed_out {
        format!(
            "timed out after {} and was killed (with its whole process group)",
            humantime::format_duration(cmd.timeout)
        )
    } else if stopped {
        "was killed: snap was asked to stop".to_string()
    } else {
        describe(status)
    };
    Ok(Outcome {
        ok: status.success() && !timed_out && !stopped,
        how,
        stderr_tail: String::from_utf8_lossy(&tail).trim().to_string(),
        interrupted: stopped,
        fed,
        duration: started.elapsed(),
    })
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(0), _) => "succeeded".to_string(),
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => format!("ended with {status}"),
    }
}

/// Copies a reader to snap's stderr, keeping the last [`TAIL_BYTES`].
fn tee_tail(r: impl Read) -> Vec<u8> {
    crate::child::read_tail(r, TAIL_BYTES, Some(&mut std::io::stderr()))
}

/// Kills a command's process group at its deadline (or when snap is
/// asked to stop).
struct Watchdog {
    state: Arc<(Mutex<DogState>, Condvar)>,
}

#[derive(Default)]
struct DogState {
    exited: bool,
    timed_out: bool,
    stopped: bool,
}

impl Watchdog {
    fn start(pgid: i32, timeout: Duration, stop_on_interrupt: bool) -> Watchdog {
        let state = Arc::new((Mutex::new(DogState::default()), Condvar::new()));
        let st = state.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + timeout;
            let (lock, cv) = &*st;
            let mut g = lock.lock().unwrap();
            loop {
                if g.exited {
                    return;
                }
                let now = Instant::now();
                if stop_on_interrupt && crate::interrupt::received().is_some() {
                    g.stopped = true;
                    kill_group(pgid);
                    return;
                }
                if now >= deadline {
                    g.timed_out = true;
                    kill_group(pgid);
                    return;
                }
                let wait = Duration::from_millis(100).min(deadline - now);
                g = cv.wait_timeout(g, wait).unwrap().0;
            }
        });
        Watchdog { state }
    }

    /// The leader exited (not yet reaped): returns (timed out, stopped).
    fn exited(&self) -> (bool, bool) {
        let (lock, cv) = &*self.state;
        let mut g = lock.lock().unwrap();
        g.exited = true;
        cv.notify_all();
        (g.timed_out, g.stopped)
    }
}

fn kill_group(pgid: i32) {
    // SAFETY: plain syscall; pgid is our unreaped child's process group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// Blocks until the child has exited, without reaping it.
fn wait_exited_keep_zombie(pid: i32) {
    loop {
        // SAFETY: waitid writes into the zeroed siginfo we own.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::config::Program;

    fn sh(line: &str, timeout: Duration) -> Cmd {
        Cmd {
            program: Program::Shell(line.into()),
            timeout,
        }
    }

    #[test]
    fn status_stderr_and_env() {
        let o = run(
            &sh(
                "echo oops >&2; test \"$X\" = 1 && exit 3",
                Duration::from_secs(30),
            ),
            &[("X".into(), "1".into())],
            Input::Null,
            true,
        )
        .unwrap();
        assert!(!o.ok);
        assert_eq!(o.how, "exited with status 3");
        assert_eq!(o.stderr_tail, "oops");
    }

    #[test]
    fn a_timeout_kills_the_group() {
        let pidfile = std::env::temp_dir().join(format!("snap-exec-{}.pid", std::process::id()));
        // A grandchild in the background: it must die with the group.
        let line = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let o = run(
            &sh(&line, Duration::from_millis(500)),
            &[],
            Input::Null,
            true,
        )
        .unwrap();
        assert!(!o.ok);
        assert!(o.how.starts_with("timed out after 500ms"), "{}", o.how);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::remove_file(&pidfile).unwrap();
        // SIGKILL is delivered asynchronously: wait (bounded) for it.
        let gone = (0..200).any(|_| {
            // Gone, or a zombie nobody reaped yet.
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            });
            if alive {
                std::thread::sleep(Duration::from_millis(50));
            }
            !alive
        });
        assert!(gone, "the background process {pid} survived the timeout");
    }

    #[test]
    fn a_command_that_does_not_read_its_input_does_not_block() {
        // The command exits at once, leaving a background process that
        // holds its stdin open and never reads it: the command succeeded.
        let big = vec![b'x'; 1 << 20];
        let cmd = sh(
            "exec 3<&0; sleep 10 <&3 2>/dev/null & exit 0",
            Duration::from_secs(5),
        );
        let o = run(&cmd, &[], Input::Bytes(&big), true).unwrap();
        assert!(o.ok, "{}", o.how);
    }

    #[test]
    fn stdin_is_fed() {
        let o = run(
            &sh("test \"$(cat)\" = hello", Duration::from_secs(30)),
            &[],
            Input::Bytes(b"hello"),
            true,
        )
        .unwrap();
        assert!(o.ok, "{}", o.how);
    }
}
