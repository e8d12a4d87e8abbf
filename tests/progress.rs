//! Progress and verbose output: a bar on a terminal (a pseudo-terminal made
//! by util-linux `script`), nothing on a pipe unless `--progress`, status
//! lines with `--json --progress`, and `-v` naming what create and restore
//! do.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::{assert_success, snap_bin, stderr, stdout, write_random, Env, PASSWORD};
use serde_json::Value;

const SCRIPT: &str = "/usr/bin/script";

/// A source of `n` small files.
fn source(env: &Env, n: usize) -> std::path::PathBuf {
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..n {
        write_random(&src.join(format!("f{i}")), i as u64, 4000 + i * 10);
    }
    src
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `snap ARGS` with stdin, stdout and stderr on a pseudo-terminal;
/// returns what the terminal showed.
fn on_terminal(env: &Env, args: &[&str]) -> String {
    let mut line = quote(snap_bin());
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let out = Command::new(SCRIPT)
        .args(["-qec", &line, "/dev/null"])
        .env_remove("SNAP_PASSWORD_FILE")
        .env_remove("SNAP_PASSWORD_COMMAND")
        .env("SNAP_REPO", &env.repo)
        .env("SNAP_PASSWORD", PASSWORD)
        .env("SNAP_CACHE_DIR", &env.cache)
        .env("TERM", "xterm")
        .output()
        .expect("script runs");
    assert_success(&out, &format!("script -c {line}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(env: &Env, args: &[&str]) -> Output {
    let out = env.run(args);
    assert_success(&out, &format!("snap {args:?}"));
    out
}

#[test]
fn a_terminal_shows_progress_and_a_pipe_does_not() {
    assert!(Path::new(SCRIPT).exists(), "util-linux script is needed");
    let env = Env::new();
    let src = source(&env, 50);
    let src_s = src.to_str().unwrap();
    let shown = on_terminal(&env, &["create", src_s]);
    // The bar: a rate, a count of files, redrawn with escape sequences.
    assert!(shown.contains("B/s"), "{shown:?}");
    assert!(shown.contains(" files"), "{shown:?}");
    assert!(shown.contains('\x1b'), "{shown:?}");
    assert!(shown.contains("snapshot "), "the report follows: {shown:?}");

    // --no-progress: the terminal shows the report only.
    let shown = on_terminal(&env, &["--no-progress", "create", src_s]);
    assert!(
        !shown.contains("B/s") && !shown.contains('\x1b'),
        "{shown:?}"
    );
    // --quiet: nothing at all.
    let shown = on_terminal(&env, &["--quiet", "create", src_s]);
    assert!(shown.trim().is_empty(), "{shown:?}");

    // A pipe (cron): stderr holds no progress at all.
    fs::write(src.join("f1"), "changed").unwrap();
    let out = run(&env, &["create", src_s]);
    assert_eq!(stderr(&out), "", "no progress on a pipe");
    let to = env.path("out");
    let out = run(&env, &["restore", "latest", "--to", to.to_str().unwrap()]);
    assert_eq!(
        stderr(&out).lines().filter(|l| l.contains("B/s")).count(),
        0
    );
    let out = run(&env, &["check", "--read-data"]);
    assert_eq!(stderr(&out), "");

    // --progress on a pipe: plain status lines (at least the last one).
    let out = run(&env, &["--progress", "create", src_s]);
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.contains("50 files") && l.contains("/s")),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "{err:?}");
}

/// The lines of a `--json --progress` run: status lines, then the summary.
fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

#[test]
fn json_progress_gives_status_lines_then_a_summary() {
    let env = Env::new();
    let src = source(&env, 30);
    let src_s = src.to_str().unwrap();
    let out = run(&env, &["--json", "--progress", "create", src_s]);
    let lines = json_lines(&out);
    assert!(lines.len() >= 2, "{lines:?}");
    let (summary, status) = lines.split_last().unwrap();
    for s in status {
        assert_eq!(s["message_type"], "status", "{s}");
        assert!(s["percent_done"].is_number(), "{s}");
        assert!(s["files_done"].is_u64() && s["bytes_done"].is_u64(), "{s}");
        assert!(s["current_files"].is_array(), "{s}");
    }
    let last = status.last().unwrap();
    assert_eq!(last["files_done"], 30);
    assert_eq!(last["percent_done"], 1.0);
    assert_eq!(summary["message_type"], "summary");
    assert_eq!(summary["summary"]["files_new"], 30);
    let snap = summary["snapshot"].as_str().unwrap();
    assert_eq!(snap.len(), 64);

    // Restore knows its totals (the snapshot's summary).
    let to = env.path("out");
    let out = run(
        &env,
        &[
            "--json",
            "--progress",
            "restore",
            snap,
            "--to",
            to.to_str().unwrap(),
        ],
    );
    let lines = json_lines(&out);
    let (summary, status) = lines.split_last().unwrap();
    let last = status.last().expect("a status line");
    assert_eq!(last["total_files"], 30, "{last}");
    assert_eq!(last["files_done"], 30, "{last}");
    assert_eq!(last["bytes_done"], last["total_bytes"], "{last}");
    assert_eq!(summary["message_type"], "summary");
    assert_eq!(summary["files"], 30);

    // Without --progress, --json is the one report it always was.
    let out = run(&env, &["--json", "check", "--read-data"]);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert!(v.get("message_type").is_none(), "{v}");
    let out = run(&env, &["--json", "--progress", "check", "--read-data"]);
    let lines = json_lines(&out);
    assert_eq!(lines.last().unwrap()["message_type"], "summary");
    let status = &lines[lines.len() - 2];
    assert_eq!(status["message_type"], "status");
    assert_eq!(status["files_done"], status["total_files"], "{status}");
}

#[test]
fn verbose_create_names_changed_files_and_why() {
    let env = Env::new();
    let src = source(&env, 5);
    let src_s = src.to_str().unwrap();
    let out = run(&env, &["-v", "create", src_s]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("new {}", src.join("f0").display())),
        "{err}"
    );

    // f1 grows, f2 keeps its size but gets another mtime, f3 stays.
    fs::write(src.join("f1"), vec![7u8; 9000]).unwrap();
    let f2 = src.join("f2");
    let len = fs::metadata(&f2).unwrap().len() as usize;
    fs::write(&f2, vec![1u8; len]).unwrap();
    common::set_mtime(&f2, 1_000_000_000, 0);
    let out = run(&env, &["-v", "create", src_s]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "changed {} (size changed)",
            src.join("f1").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("changed {} (mtime changed)", f2.display())),
        "{err}"
    );
    assert!(
        !err.contains(&src.join("f3").display().to_string()),
        "{err}"
    );
    // -vv also names the unchanged ones.
    let out = run(&env, &["-vv", "create", src_s]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("unchanged {}", src.join("f3").display())),
        "{err}"
    );
    // Without -v: nothing of that.
    let out = run(&env, &["create", src_s]);
    assert_eq!(stderr(&out), "");

    let to = env.path("out");
    let out = run(
        &env,
        &["-v", "restore", "latest", "--to", to.to_str().unwrap()],
    );
    let err = stderr(&out);
    let want = format!(
        "restored {}",
        to.join(src.strip_prefix("/").unwrap()).join("f4").display()
    );
    assert!(err.contains(&want), "{want} in {err}");
    let out = run(&env, &["-v", "check", "--read-data"]);
    assert!(stderr(&out).contains("read pack "), "{}", stderr(&out));
}

#[test]
fn prune_and_sync_report_what_they_do() {
    let env = Env::new();
    let src = source(&env, 3);
    let src_s = src.to_str().unwrap();
    run(&env, &["create", src_s]);
    for i in 0..3 {
        write_random(&src.join(format!("f{i}")), 100 + i, 6000);
    }
    run(&env, &["create", src_s]);
    let out = run(&env, &["-v", "prune", "--keep-last", "1"]);
    let err = stderr(&out);
    assert!(err.contains("removing snapshot "), "{err}");
    assert!(
        err.contains("deleting pack ") || err.contains("repacking pack "),
        "{err}"
    );

    // sync --json --progress: status lines count the objects to send.
    let to = env.path("mirror");
    let out = run(
        &env,
        &["--json", "--progress", "sync", "--to", to.to_str().unwrap()],
    );
    let lines = json_lines(&out);
    let (summary, status) = lines.split_last().unwrap();
    assert_eq!(summary["message_type"], "summary");
    assert_eq!(summary["snapshots_sent"], 1, "{summary}");
    let last = status.last().expect("a status line");
    assert_eq!(last["total_files"], last["files_done"], "{last}");
    assert!(last["files_done"].as_u64().unwrap() >= 2, "{last}");
}
