//! Database dumps and other streams: a command's stdout (or snap's stdin)
//! is chunked straight into the repository as a file under the virtual
//! directory `/.snap-streams`. A command that fails, is killed or times out
//! fails the whole `create`: nothing is committed.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::create::Archiver;
use crate::format::tree::{is_safe_name, Node, NodeKind, StreamOrigin, Tree};
use crate::format::BlobKind;
use crate::{Error, Result};

/// Name of the virtual directory holding streams in a snapshot.
pub const STREAMS_DIR: &str = ".snap-streams";

/// Where a stream comes from.
#[derive(Debug, Clone)]
pub enum StreamInput {
    /// Run this program with these arguments (no shell).
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
    /// Kill the command after this long.
    pub timeout: Option<Duration>,
}

impl StreamSource {
    /// Parses `NAME=COMMAND ARGS...` (split on whitespace, no shell).
    pub fn parse_command(spec: &str, timeout: Option<Duration>) -> Result<StreamSource> {
        let (name, cmd) = spec.split_once('=').ok_or_else(|| {
            Error::Invalid(format!("--from-command {spec:?}: expected NAME=COMMAND"))
        })?;
        let argv: Vec<String> = cmd.split_whitespace().map(String::from).collect();
        if argv.is_empty() {
            return Err(Error::Invalid(format!(
                "--from-command {name}: empty command"
            )));
        }
        Self::check_name(name)?;
        Ok(StreamSource {
            name: name.to_string(),
            input: StreamInput::Command(argv),
            timeout,
        })
    }

    /// A stream read from stdin.
    pub fn stdin(name: &str) -> Result<StreamSource> {
        Self::check_name(name)?;
        Ok(StreamSource {
            name: name.to_string(),
            input: StreamInput::Stdin,
            timeout: None,
        })
    }

    fn check_name(name: &str) -> Result<()> {
        if !is_safe_name(name.as_bytes()) {
            return Err(Error::Invalid(format!(
                "stream name {name:?} must be a plain file name"
            )));
        }
        Ok(())
    }
}

fn now_ns() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

fn archive_one(arch: &Archiver<'_>, s: &StreamSource) -> Result<Node> {
    let mut node = Node::new(s.name.as_bytes().to_vec(), NodeKind::File);
    node.mode = 0o600;
    // SAFETY: getuid/getgid cannot fail.
    node.uid = unsafe { libc::getuid() };
    node.gid = unsafe { libc::getgid() };
    let (ids, n, origin) = match &s.input {
        StreamInput::Stdin => {
            let mut stdin = std::io::stdin().lock();
            let (ids, n) = arch.store_stream(&mut stdin)?.map_err(|e| {
                Error::Command(format!("stream {}: reading stdin failed: {e}", s.name))
            })?;
            (
                ids,
                n,
                StreamOrigin {
                    command: "<stdin>".into(),
                    exit_code: 0,
                },
            )
        }
        StreamInput::Command(argv) => {
            let mut child = Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| {
                    Error::Command(format!(
                        "stream {}: cannot start {:?}: {e}",
                        s.name, argv[0]
                    ))
                })?;
            let mut stderr = child.stderr.take().expect("piped");
            let err_reader = std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = stderr.read_to_end(&mut buf);
                buf
            });
            let timed_out = Arc::new(AtomicBool::new(false));
            let pid = child.id() as i32;
            let done = Arc::new(AtomicBool::new(false));
            if let Some(t) = s.timeout {
                let (timed_out, done) = (timed_out.clone(), done.clone());
                std::thread::spawn(move || {
                    let step = Duration::from_millis(50);
                    let mut waited = Duration::ZERO;
                    while waited < t {
                        if done.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(step);
                        waited += step;
                    }
                    if !done.load(Ordering::Relaxed) {
                        timed_out.store(true, Ordering::Relaxed);
                        // SAFETY: signalling our own child by pid.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                });
            }
            let mut stdout = child.stdout.take().expect("piped");
            let stored = arch.store_stream(&mut stdout);
            drop(stdout);
            let status = child
                .wait()
                .map_err(|e| Error::Command(format!("stream {}: wait failed: {e}", s.name)))?;
            done.store(true, Ordering::Relaxed);
            let err_text = err_reader.join().unwrap_or_default();
            let tail = String::from_utf8_lossy(&err_text[err_text.len().saturating_sub(4000)..])
                .trim()
                .to_string();
            let with_stderr = |msg: String| {
                if tail.is_empty() {
                    Error::Command(msg)
                } else {
                    Error::Command(format!("{msg}; its stderr:\n{tail}"))
                }
            };
            let (ids, n) = stored?.map_err(|e| {
                with_stderr(format!("stream {}: reading output failed: {e}", s.name))
            })?;
            if timed_out.load(Ordering::Relaxed) {
                return Err(with_stderr(format!(
                    "stream {}: {:?} timed out and was killed; no snapshot saved",
                    s.name, argv[0]
                )));
            }
            if !status.success() {
                let how = match status.code() {
                    Some(c) => format!("exited with status {c}"),
                    None => {
                        use std::os::unix::process::ExitStatusExt;
                        format!("was killed by signal {}", status.signal().unwrap_or(0))
                    }
                };
                return Err(with_stderr(format!(
                    "stream {}: {:?} {how}; no snapshot saved",
                    s.name, argv[0]
                )));
            }
            (
                ids,
                n,
                StreamOrigin {
                    command: argv.join(" "),
                    exit_code: 0,
                },
            )
        }
    };
    let now = now_ns();
    node.mtime_ns = now;
    node.ctime_ns = now;
    node.size = n;
    node.content = ids;
    node.origin = Some(origin);
    Ok(node)
}

/// Stores every stream and returns the `/.snap-streams` directory node.
pub(crate) fn archive_streams(
    arch: &Archiver<'_>,
    streams: &[StreamSource],
    _before: Option<&Node>,
) -> Result<Node> {
    let mut names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::Invalid("two streams have the same name".into()));
    }
    if streams
        .iter()
        .filter(|s| matches!(s.input, StreamInput::Stdin))
        .count()
        > 1
    {
        return Err(Error::Invalid("only one stream can read stdin".into()));
    }
    let mut tree = Tree::default();
    for s in streams {
        tree.nodes.push(archive_one(arch, s)?);
    }
    tree.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut dir = Node::new(STREAMS_DIR.as_bytes().to_vec(), NodeKind::Dir);
    dir.mode = 0o700;
    let now = now_ns();
    dir.mtime_ns = now;
    dir.ctime_ns = now;
    dir.uid = tree.nodes.first().map(|n| n.uid).unwrap_or(0);
    dir.gid = tree.nodes.first().map(|n| n.gid).unwrap_or(0);
    dir.subtree = Some(arch.saver.save(BlobKind::Tree, &tree.to_bytes())?.0);
    Ok(dir)
}
