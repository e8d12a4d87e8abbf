//! Database dumps and other streams: a command's stdout (or snap's stdin)
//! is chunked straight into the repository as a file under the virtual
//! directory `/.snap-streams`. A command that fails, is killed or times out
//! fails the whole `create`: nothing is committed.
//!
//! Commands run without a shell (`--from-command`, words split with simple
//! shell-like quoting) or, when asked, through `sh -c` (`--from-shell`).
//! They inherit snap's environment but for its secrets (`crate::child`:
//! `PGPASSWORD`, `PGPASSFILE`, `MYSQL_PWD`, ... reach them; snap's password
//! and cloud credentials do not) and get `/dev/null` as stdin. Each runs in
//! its own process group so that a timeout kills a whole pipeline, not
//! just the shell in front of it. Memory stays bounded: stdout is chunked
//! from one fixed buffer and only the last [`STDERR_TAIL`] bytes of stderr
//! are kept.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::create::Archiver;
use crate::format::snapshot::StreamSummary;
use crate::format::tree::{is_safe_name, Node, NodeKind, StreamOrigin, Tree};
use crate::format::BlobId;
use crate::repository::Repository;
use crate::{Error, Result};

/// Name of the virtual directory holding streams in a snapshot.
pub const STREAMS_DIR: &str = ".snap-streams";

/// How much of a command's stderr is kept for the error message.
pub const STDERR_TAIL: usize = 64 * 1024;

/// Where a stream comes from.
#[derive(Debug, Clone)]
pub enum StreamInput {
    /// Run this program with these arguments.
    Command(Vec<String>),
    /// Read snap's own standard input.
    Stdin,
}

/// One named stream to store.
#[derive(Debug, Clone)]
pub struct StreamSource {
    /// File name inside `/.snap-streams`.
    pub name: String,
    /// Its source.
    pub input: StreamInput,
    /// The command as recorded in the snapshot (passwords in
    /// `--password=` options and URLs are masked).
    pub label: String,
    /// Kill the command after this long.
    pub timeout: Option<Duration>,
}

/// Words that mean the user wanted a shell.
const SHELL_OPERATORS: &[&str] = &["|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1", "&"];

/// Splits a command line into words: blanks separate words; `'...'` is
/// literal; inside `"..."` a backslash escapes `"`, `\`, `$` and `` ` ``;
/// elsewhere a backslash escapes the next character. Nothing is expanded.
pub fn split_words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match it.next() {
                    Some(c) => cur.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

fn split_spec<'a>(flag: &str, spec: &'a str) -> Result<(&'a str, &'a str)> {
    let (name, cmd) = spec
        .split_once('=')
        .ok_or_else(|| Error::Usage(format!("{flag} {spec:?}: expected NAME=COMMAND")))?;
    StreamSource::check_name(name)?;
    if cmd.trim().is_empty() {
        return Err(Error::Usage(format!("{flag} {name}: empty command")));
    }
    Ok((name, cmd))
}

impl StreamSource {
    /// Parses `--from-command NAME=PROGRAM ARGS...`: run without a shell,
    /// words split by [`split_words`].
    pub fn parse_command(spec: &str, timeout: Option<Duration>) -> Result<StreamSource> {
        let (name, cmd) = split_spec("--from-command", spec)?;
        let argv = split_words(cmd)
            .map_err(|why| Error::Usage(format!("--from-command {name}: {why}")))?;
        if let Some(op) = argv.iter().find(|w| SHELL_OPERATORS.contains(&w.as_str())) {
            return Err(Error::Usage(format!(
                "--from-command {name}: {op:?} is a shell operator, but no shell runs the \
                 command; use --from-shell {name}=... for a pipeline"
            )));
        }
        let label = crate::child::mask_command_line(&argv).join(" ");
        Ok(StreamSource {
            name: name.to_string(),
            input: StreamInput::Command(argv),
            label,
            timeout,
        })
    }

    /// Parses `--from-shell NAME=SHELL COMMAND LINE`: run as `sh -c LINE`.
    pub fn parse_shell(spec: &str, timeout: Option<Duration>) -> Result<StreamSource> {
        let (name, cmd) = split_spec("--from-shell", spec)?;
        let words: Vec<&str> = cmd.split(' ').collect();
        let label = format!(
            "sh -c {}",
            crate::child::mask_command_line(&words).join(" ")
        );
        Ok(StreamSource {
            name: name.to_string(),
            input: StreamInput::Command(vec!["sh".into(), "-c".into(), cmd.to_string()]),
            label,
            timeout,
        })
    }

    /// A stream read from stdin.
    pub fn stdin(name: &str) -> Result<StreamSource> {
        Self::check_name(name)?;
        Ok(StreamSource {
            name: name.to_string(),
            input: StreamInput::Stdin,
            label: "<stdin>".into(),
            timeout: None,
        })
    }

    fn check_name(name: &str) -> Result<()> {
        if !is_safe_name(name.as_bytes()) {
            return Err(Error::Usage(format!(
                "stream name {name:?} must be a plain file name"
            )));
        }
        Ok(())
    }
}

fn now_ns() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// Keeps the last [`STDERR_TAIL`] bytes of a reader, reading it to its end.
fn read_tail(r: impl Read) -> Vec<u8> {
    crate::child::read_tail(r, STDERR_TAIL, None)
}

/// Kills a child's process group after a timeout. The group id stays
/// valid until the child is reaped, and [`Watchdog::exited`] is called
/// after the child exited but before it is reaped, so the signal can never
/// reach a recycled process id.
struct Watchdog {
    state: Arc<(Mutex<WatchState>, Condvar)>,
}

#[derive(Default)]
struct WatchState {
    exited: bool,
    fired: bool,
}

impl Watchdog {
    /// Watches the command: kills its group when it runs past `timeout`,
    /// or when snap is asked to stop (SIGINT/SIGTERM: a dump that produces
    /// no output for a long time must not keep snap from stopping).
    fn start(pgid: i32, timeout: Option<Duration>) -> Watchdog {
        let state = Arc::new((Mutex::new(WatchState::default()), Condvar::new()));
        let st = state.clone();
        std::thread::spawn(move || {
            let deadline = timeout.map(|t| std::time::Instant::now() + t);
            let (lock, cv) = &*st;
            let mut g = lock.lock().unwrap();
            loop {
                if g.exited {
                    return;
                }
                let now = std::time::Instant::now();
                if crate::interrupt::received().is_some() {
                    kill_group(pgid);
                    return;
                }
                if deadline.is_some_and(|d| now >= d) {
                    g.fired = true;
                    kill_group(pgid);
                    return;
                }
                let mut wait = Duration::from_millis(100);
                if let Some(d) = deadline {
                    wait = wait.min(d - now);
                }
                g = cv.wait_timeout(g, wait).unwrap().0;
            }
        });
        Watchdog { state }
    }

    /// Kills the group now (snap is giving up on the command).
    fn kill_now(&self, pgid: i32) {
        let g = self.state.0.lock().unwrap();
        if !g.exited {
            kill_group(pgid);
        }
    }

    fn exited(&self) -> bool {
        let (lock, cv) = &*self.state;
        let mut g = lock.lock().unwrap();
        g.exited = true;
        cv.notify_all();
        g.fired
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

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => format!("ended with {status}"),
    }
}

fn with_stderr(msg: String, stderr: &[u8]) -> Error {
    let tail = String::from_utf8_lossy(stderr).trim().to_string();
    if tail.is_empty() {
        Error::Command(msg)
    } else {
        Error::Command(format!("{msg}; its stderr (last lines):\n{tail}"))
    }
}

fn spawn(s: &StreamSource, argv: &[String]) -> Result<Child> {
    crate::child::command(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            Error::Command(format!(
                "stream {}: cannot start {:?}: {e}; no snapshot saved",
                s.name, argv[0]
            ))
        })
}

fn run_command(
    arch: &Archiver<'_>,
    s: &StreamSource,
    argv: &[String],
) -> Result<(Vec<BlobId>, u64)> {
    let mut child = spawn(s, argv)?;
    let pid = child.id() as i32;
    let stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || read_tail(stderr));
    let dog = Watchdog::start(pid, s.timeout);
    let mut stdout = child.stdout.take().expect("piped");
    let stored = arch.store_stream(&mut stdout, u64::MAX);
    drop(stdout);
    if !matches!(stored, Ok(Ok(_))) {
        dog.kill_now(pid);
    }
    wait_exited_keep_zombie(pid);
    let timed_out = dog.exited();
    let status = child
        .wait()
        .map_err(|e| Error::Command(format!("stream {}: wait failed: {e}", s.name)))?;
    // Killed because snap is stopping: say that, not "killed by signal 9".
    crate::interrupt::check()?;
    let err_text = err_reader.join().unwrap_or_default();
    let (ids, n) = stored?.map_err(|e| {
        with_stderr(
            format!(
                "stream {}: reading output failed: {e}; no snapshot saved",
                s.name
            ),
            &err_text,
        )
    })?;
    if timed_out {
        return Err(with_stderr(
            format!(
                "stream {}: {:?} timed out after {} and was killed; no snapshot saved",
                s.name,
                argv[0],
                humantime::format_duration(s.timeout.unwrap_or_default())
            ),
            &err_text,
        ));
    }
    if !status.success() {
        return Err(with_stderr(
            format!(
                "stream {}: {:?} {}; no snapshot saved",
                s.name,
                argv[0],
                describe(status)
            ),
            &err_text,
        ));
    }
    Ok((ids, n))
}

fn archive_one(arch: &Archiver<'_>, s: &StreamSource) -> Result<Node> {
    let mut node = Node::new(s.name.as_bytes().to_vec(), NodeKind::File);
    node.mode = 0o600;
    // SAFETY: getuid/getgid cannot fail.
    node.uid = unsafe { libc::getuid() };
    node.gid = unsafe { libc::getgid() };
    let (ids, n) = match &s.input {
        StreamInput::Stdin => {
            let mut stdin = std::io::stdin().lock();
            arch.store_stream(&mut stdin, u64::MAX)?.map_err(|e| {
                Error::Command(format!(
                    "stream {}: reading stdin failed: {e}; no snapshot saved",
                    s.name
                ))
            })?
        }
        StreamInput::Command(argv) => run_command(arch, s, argv)?,
    };
    arch.count_stream(n);
    let now = now_ns();
    node.mtime_ns = now;
    node.ctime_ns = now;
    node.size = n;
    node.content = ids;
    node.origin = Some(StreamOrigin {
        command: s.label.clone(),
        exit_code: 0,
    });
    Ok(node)
}

/// Stores every stream (one after the other, in the order given) and
/// returns the `/.snap-streams` directory node and a summary per stream.
pub(crate) fn archive_streams(
    arch: &Archiver<'_>,
    streams: &[StreamSource],
) -> Result<(Node, Vec<StreamSummary>)> {
    let mut names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Usage(format!("two streams are named {:?}", w[0])));
    }
    if streams
        .iter()
        .filter(|s| matches!(s.input, StreamInput::Stdin))
        .count()
        > 1
    {
        return Err(Error::Usage("only one stream can read stdin".into()));
    }
    let mut tree = Tree::default();
    let mut summaries = Vec::new();
    for s in streams {
        let node = archive_one(arch, s)?;
        summaries.push(StreamSummary {
            name: s.name.clone(),
            command: s.label.clone(),
            bytes: node.size,
            exit_code: 0,
        });
        tree.nodes.push(node);
    }
    tree.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut dir = Node::new(STREAMS_DIR.as_bytes().to_vec(), NodeKind::Dir);
    dir.mode = 0o700;
    let now = now_ns();
    dir.mtime_ns = now;
    dir.ctime_ns = now;
    dir.uid = tree.nodes.first().map(|n| n.uid).unwrap_or(0);
    dir.gid = tree.nodes.first().map(|n| n.gid).unwrap_or(0);
    dir.subtree = Some(arch.save_tree(&tree, &Path::new("/").join(STREAMS_DIR))?);
    Ok((dir, summaries))
}

/// Streams the file at `path` of a snapshot into `sh -c CMD`'s stdin, each
/// blob verified before it is written. Fails if the command fails or stops
/// reading early; returns the bytes sent.
pub fn to_command(
    repo: &Repository,
    root: &BlobId,
    path: &Path,
    snapshot: &str,
    cmd: &str,
) -> Result<u64> {
    let mut child = crate::child::shell(cmd)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Command(format!("cannot start --to-command: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let res = super::dump::run(repo, root, path, snapshot, &mut stdin);
    let _ = stdin.flush();
    drop(stdin);
    let status = child
        .wait()
        .map_err(|e| Error::Command(format!("--to-command: wait failed: {e}")))?;
    match res {
        // The command's failure explains a broken pipe better than the pipe.
        Err(Error::Io { source, .. })
            if !status.success() || source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Err(Error::Command(format!(
                "--to-command {} before reading all of {} ({source})",
                if status.success() {
                    "exited".to_string()
                } else {
                    describe(status)
                },
                path.display()
            )))
        }
        Err(e) => Err(e),
        Ok(n) if !status.success() => Err(Error::Command(format!(
            "--to-command {} after receiving all {n} bytes of {}",
            describe(status),
            path.display()
        ))),
        Ok(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        let w = |s| split_words(s).unwrap();
        assert_eq!(w("pg_dump  -d app"), ["pg_dump", "-d", "app"]);
        assert_eq!(
            w(r#"sh -c "pg_dump app | gzip""#),
            ["sh", "-c", "pg_dump app | gzip"]
        );
        assert_eq!(
            w(r#"a 'b c' d\ e "x\"y" '' """#),
            ["a", "b c", "d e", "x\"y", "", ""]
        );
        assert_eq!(w(r#""a\nb""#), [r"a\nb"]);
        assert!(split_words("'open").is_err());
        assert!(split_words("\"open").is_err());
        assert!(split_words("x\\").is_err());
    }

    #[test]
    fn pipeline_without_shell_is_refused() {
        let e = StreamSource::parse_command("db=pg_dump app | gzip", None).unwrap_err();
        assert!(e.to_string().contains("--from-shell"), "{e}");
        let ok = StreamSource::parse_command("db=sh -c 'pg_dump app | gzip'", None).unwrap();
        match ok.input {
            StreamInput::Command(argv) => assert_eq!(argv, ["sh", "-c", "pg_dump app | gzip"]),
            StreamInput::Stdin => panic!(),
        }
        let sh = StreamSource::parse_shell("db=pg_dump app | gzip", None).unwrap();
        assert_eq!(sh.label, "sh -c pg_dump app | gzip");
        assert!(StreamSource::parse_command("a/b=x", None).is_err());
        assert!(StreamSource::parse_command("db=  ", None).is_err());
        assert!(StreamSource::parse_command("nocommand", None).is_err());
    }

    #[test]
    fn secrets_are_masked_in_the_label() {
        let s =
            StreamSource::parse_command("db=mariadb-dump --password=hunter2 --all-databases", None)
                .unwrap();
        assert_eq!(s.label, "mariadb-dump --password=*** --all-databases");
        let s = StreamSource::parse_command("db=pg_dump postgresql://app:pw@db:5432/app", None)
            .unwrap();
        assert_eq!(s.label, "pg_dump postgresql://app:***@db:5432/app");
    }

    #[test]
    fn stderr_tail_is_bounded() {
        let big = vec![b'x'; 1_000_000];
        let mut input = big.clone();
        input.extend_from_slice(b"THE END");
        let t = read_tail(&input[..]);
        assert_eq!(t.len(), STDERR_TAIL);
        assert!(t.ends_with(b"THE END"));
    }
}
