//! Streams without a database server: the MariaDB recipe of docs/dumps.md
//! with fake `mariadb-dump`/`mariadb` programs that produce and check a
//! stream, plus failures (exit status, signal, timeout), quoting, secrets
//! and stdin.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SNAP: &str = env!("CARGO_BIN_EXE_snap");

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let r = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = r.snap(&["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]);
        assert!(out.status.success(), "init: {}", stderr(&out));
        r
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(SNAP);
        c.arg("--repo")
            .arg(self.dir.path().join("repo"))
            .args(args)
            .env("SNAP_PASSWORD", "streams test")
            .env_remove("SNAP_PASSWORD_FILE")
            .env_remove("SNAP_PASSWORD_COMMAND");
        c
    }

    fn snap(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn snapshot_count(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("repo/snapshots"))
            .unwrap()
            .count()
    }

    fn bin(&self) -> PathBuf {
        let b = self.dir.path().join("bin");
        std::fs::create_dir_all(&b).unwrap();
        b
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn script(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The fake dump: 200k lines that differ per line, only if the password
/// arrived through the environment (MYSQL_PWD) as docs/dumps.md recommends.
const FAKE_DUMP: &str = r#"
[ "$MYSQL_PWD" = "s3cret-from-env" ] || { echo "mariadb-dump: Access denied (no MYSQL_PWD)" >&2; exit 2; }
echo "-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB"
echo "-- args: $*"
seq 1 200000 | sed 's/.*/INSERT INTO t VALUES (&, '"'"'row &'"'"');/'
echo "-- Dump completed"
"#;

/// The fake client: accepts stdin only if it is exactly what the fake dump
/// produced for the same arguments.
const FAKE_CLIENT: &str = r#"
expected=$(mktemp)
got=$(mktemp)
MYSQL_PWD=s3cret-from-env mariadb-dump --single-transaction --routines --all-databases > "$expected"
cat > "$got"
if cmp -s "$expected" "$got"; then
  echo "fake mariadb: applied $(wc -l < "$got") lines" >&2
  rm -f "$expected" "$got"
  exit 0
fi
echo "fake mariadb: stream differs from the dump" >&2
exit 1
"#;

#[test]
fn mariadb_recipe_with_fake_commands() {
    let repo = Repo::new();
    let bin = repo.bin();
    script(&bin, "mariadb-dump", FAKE_DUMP);
    script(&bin, "mariadb", FAKE_CLIENT);
    let out = repo
        .cmd(&[
            "create",
            "--from-command",
            "mariadb=mariadb-dump --single-transaction --routines --all-databases",
        ])
        .env("PATH", path_with(&bin))
        .env("MYSQL_PWD", "s3cret-from-env")
        .output()
        .unwrap();
    assert!(out.status.success(), "create: {}", stderr(&out));

    let out = repo
        .cmd(&[
            "restore",
            "latest",
            "--include",
            "mariadb",
            "--to-command",
            "mariadb",
        ])
        .env("PATH", path_with(&bin))
        .output()
        .unwrap();
    assert!(out.status.success(), "restore: {}", stderr(&out));
    assert!(
        stderr(&out).contains("applied 200003 lines"),
        "{}",
        stderr(&out)
    );

    // Without the password in the environment the dump fails: no snapshot.
    let out = repo
        .cmd(&[
            "create",
            "--from-command",
            "mariadb=mariadb-dump --all-databases",
        ])
        .env("PATH", path_with(&bin))
        .env_remove("MYSQL_PWD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Access denied"), "{}", stderr(&out));
    assert_eq!(repo.snapshot_count(), 1);

    // A client that rejects the stream fails the restore.
    script(
        &bin,
        "mariadb-dump",
        &FAKE_DUMP.replace("row &", "changed &"),
    );
    let out = repo
        .cmd(&[
            "restore",
            "latest",
            "--include",
            "mariadb",
            "--to-command",
            "mariadb",
        ])
        .env("PATH", path_with(&bin))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a failing --to-command must fail the restore"
    );
    assert!(
        stderr(&out).contains("exited with status 1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn passwords_in_the_command_line_are_masked() {
    let repo = Repo::new();
    let out = repo.snap(&[
        "create",
        "--from-command",
        "a=echo --password=hunter2 postgresql://app:hunter3@db/app",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ls = repo.snap(&["ls", "latest", "/.snap-streams"]);
    let snaps = repo.snap(&["--json", "snapshots"]);
    for text in [ls.stdout, snaps.stdout] {
        let t = String::from_utf8(text).unwrap();
        assert!(
            t.contains("--password=***") && t.contains("app:***@db"),
            "{t}"
        );
        assert!(!t.contains("hunter2") && !t.contains("hunter3"), "{t}");
    }
    // The stored output itself is what the command wrote.
    let d = repo.snap(&["dump", "latest", "a"]);
    assert_eq!(
        d.stdout,
        b"--password=hunter2 postgresql://app:hunter3@db/app\n"
    );
}

#[test]
fn failures_commit_nothing_and_show_stderr() {
    let repo = Repo::new();
    // Non-zero exit, with far more stderr than is kept: the tail is shown.
    let out = repo.snap(&[
        "create",
        "--from-command",
        "ok=echo fine",
        "--from-shell",
        "bad=echo partial; head -c 2000000 /dev/zero | tr '\\0' e >&2; echo LAST-WORDS >&2; exit 3",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("stream bad") && err.contains("exited with status 3"),
        "{}",
        &err[..300.min(err.len())]
    );
    assert!(
        err.trim_end().ends_with("LAST-WORDS"),
        "stderr tail missing"
    );
    assert!(
        err.len() < 100_000,
        "stderr not bounded: {} bytes",
        err.len()
    );

    // Killed by a signal after writing complete-looking output.
    let out = repo.snap(&[
        "create",
        "--from-shell",
        "x=echo all the data; kill -KILL $$",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("killed by signal 9"),
        "{}",
        stderr(&out)
    );

    // A command that cannot start.
    let out = repo.snap(&["create", "--from-command", "x=/nonexistent/dumper"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot start"), "{}", stderr(&out));

    // A pipeline without a shell is refused up front.
    let out = repo.snap(&["create", "--from-command", "x=pg_dump app | gzip"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--from-shell"), "{}", stderr(&out));

    assert_eq!(repo.snapshot_count(), 0);
}

#[test]
fn timeout_kills_the_process_group() {
    let repo = Repo::new();
    for (flag, spec) in [
        ("--from-command", "slow=sleep 60"),
        // `cat` keeps the pipe open after `sh` dies: only killing the
        // whole group ends the stream.
        ("--from-shell", "slow=sleep 60 | cat"),
        ("--from-command", "slow=sh -c 'echo some output; sleep 60'"),
    ] {
        let start = Instant::now();
        let child = repo
            .cmd(&["create", "--command-timeout", "1s", flag, spec])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut child = child;
        let out = loop {
            if child.try_wait().unwrap().is_some() {
                break child.wait_with_output().unwrap();
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{spec}: create (pid {pid}) still running long after its 1s timeout");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let took = start.elapsed();
        assert!(!out.status.success(), "{spec}");
        assert!(
            stderr(&out).contains("timed out after 1s"),
            "{spec}: {}",
            stderr(&out)
        );
        assert!(took >= Duration::from_secs(1), "{spec}: {took:?}");
    }
    assert_eq!(repo.snapshot_count(), 0);
}

#[test]
fn stdin_commands_and_paths_in_one_snapshot() {
    let repo = Repo::new();
    let files = repo.dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("f"), "file").unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut child = repo
        .cmd(&[
            "create",
            files.to_str().unwrap(),
            "--stdin-name",
            "piped",
            "--from-command",
            r#"quoted=printf '%s|%s\n' "a b" 'c "d"'"#,
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&d2));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = report["summary"]["streams"].as_array().unwrap();
    // Commands run first, then stdin.
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0]["name"], "quoted");
    assert_eq!(streams[1]["name"], "piped");
    assert_eq!(streams[1]["command"], "<stdin>");
    assert_eq!(streams[1]["bytes"], data.len() as u64);
    assert!(report["summary"]["total_bytes"].as_u64().unwrap() >= data.len() as u64 + 4);

    assert_eq!(repo.snap(&["dump", "latest", "piped"]).stdout, data);
    assert_eq!(
        repo.snap(&["dump", "latest", "quoted"]).stdout,
        b"a b|c \"d\"\n"
    );
    let f = repo.snap(&["dump", "latest", files.join("f").to_str().unwrap()]);
    assert_eq!(f.stdout, b"file");
}
