//! SIGINT, SIGTERM and SIGHUP stop `create`, `prune` and `sync` cleanly:
//! exit code 128 + the signal, no lock and no staging file left behind,
//! nothing half-done committed, and the next command (a prune with no
//! lock wait among them) runs without any cleanup by hand.
//!
//! Each command is paused at a failpoint (`touch(A)->wait(B)`), signalled
//! there, then released: the signal is seen at the next stop point.

#![cfg(feature = "failpoints")]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_same_tree, assert_success, code, restored, stderr, write_random, Env};

/// Runs `cmd` with the failpoint `point` pausing it; returns the child
/// once it is there, and the file that releases it.
fn paused(mut cmd: Command, point: &str, dir: &Path) -> (Child, PathBuf) {
    let here = dir.join(format!("{point}.here"));
    let go = dir.join(format!("{point}.go"));
    let child = cmd
        .env(
            "SNAP_FAILPOINTS",
            format!("{point}=touch({})->wait({})", here.display(), go.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !here.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{point} never reached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, go)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Signals the paused child, releases it and waits for it.
fn stop_at(cmd: Command, point: &str, dir: &Path, sig: i32) -> Output {
    let (child, go) = paused(cmd, point, dir);
    signal(&child, sig);
    // Give the signal thread time to record it before the command goes on.
    std::thread::sleep(Duration::from_millis(200));
    fs::write(&go, b"").unwrap();
    child.wait_with_output().unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// No lock of any kind and no staging file anywhere in the repository.
fn nothing_left(env: &Env) {
    assert_eq!(
        files_in(&env.repo.join("locks")),
        Vec::<String>::new(),
        "locks left"
    );
    for sub in ["staging", "tmp"] {
        let left: Vec<String> = files_in(&env.repo.join(sub));
        assert!(left.is_empty(), "{sub}/ left: {left:?}");
    }
    let staging = env.cache_dir().join("staging");
    assert!(files_in(&staging).is_empty(), "cache staging left");
}

fn source(env: &Env, files: u64) -> PathBuf {
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..files {
        write_random(&src.join(format!("f{i}.bin")), i, 300_000);
    }
    src
}

fn stopped_cleanly(out: &Output, expected: i32, what: &str) {
    assert_eq!(code(out), expected, "{what}: {}", stderr(out));
    let err = stderr(out);
    assert!(
        err.contains("stopped cleanly"),
        "{what} says how it stopped: {err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn sigint_during_create_exits_130_and_leaves_nothing() {
    let env = Env::new();
    let src = source(&env, 4);
    let mut cmd = env.cmd();
    cmd.args(["create", src.to_str().unwrap()]);
    let out = stop_at(cmd, "create.after_intents", &env.path(""), libc::SIGINT);
    stopped_cleanly(&out, 130, "create");
    nothing_left(&env);
    assert!(env.snapshot_ids().is_empty(), "no snapshot committed");
    // The next prune does not wait for anything.
    assert_success(&env.run(["prune", "--lock-wait", "0s"]), "prune after");
    assert_success(&env.run(["check", "--read-data"]), "check after");
    env.create(&[&src], &[]);
    let to = env.path("restored");
    env.restore("latest", &to);
    assert_same_tree(&src, &restored(&to, &src));
}

#[test]
fn sigterm_during_create_midway_exits_143_and_the_parent_stays_intact() {
    let env = Env::new();
    let src = source(&env, 3);
    env.create(&[&src], &[]);
    for i in 3..8 {
        write_random(&src.join(format!("f{i}.bin")), 100 + i, 300_000);
    }
    // Paused with a pack uploaded: the stop comes with data stored and no
    // snapshot pointing at it.
    let mut cmd = env.cmd();
    cmd.args(["create", src.to_str().unwrap()]);
    let out = stop_at(cmd, "create.pack_indexed", &env.path(""), libc::SIGTERM);
    stopped_cleanly(&out, 143, "create");
    nothing_left(&env);
    assert_eq!(env.snapshot_ids().len(), 1, "only the first snapshot");
    assert_success(&env.run(["check", "--read-data"]), "check after");
    // What was stored before the stop is garbage that prune may free, now.
    assert_success(&env.run(["prune", "--lock-wait", "0s"]), "prune after");
    assert_success(&env.run(["check", "--read-data"]), "check after prune");
}

#[test]
fn sigint_during_prune_exits_130_removes_its_intent_and_frees_nothing_needed() {
    let env = Env::new();
    let src = source(&env, 3);
    env.create(&[&src], &[]);
    fs::remove_file(src.join("f0.bin")).unwrap();
    env.create(&[&src], &[]);
    let first = env.snapshot_ids()[0].clone();
    assert_success(&env.run(["forget", &first]), "forget");
    let mut cmd = env.cmd();
    cmd.args(["prune"]);
    let out = stop_at(cmd, "prune.after_intent", &env.path(""), libc::SIGINT);
    stopped_cleanly(&out, 130, "prune");
    nothing_left(&env);
    assert_success(&env.run(["check", "--read-data"]), "check after");
    // A create is not kept from the packs (no intent left), and the next
    // prune runs without waiting.
    env.create(&[&src], &[]);
    assert_success(&env.run(["prune", "--lock-wait", "0s"]), "prune after");
    assert_success(&env.run(["check", "--read-data"]), "check after prune");
    let to = env.path("restored");
    env.restore("latest", &to);
    assert_same_tree(&src, &restored(&to, &src));
}

#[test]
fn sighup_during_sync_exits_129_and_the_next_sync_completes() {
    let env = Env::new();
    let src = source(&env, 3);
    env.create(&[&src], &[]);
    let mirror = env.path("mirror");
    let mut cmd = env.cmd();
    cmd.args(["sync", "--to", mirror.to_str().unwrap()]);
    let out = stop_at(cmd, "sync.after_packs", &env.path(""), libc::SIGHUP);
    stopped_cleanly(&out, 129, "sync");
    let m = env.at(&mirror);
    assert!(
        files_in(&mirror.join("snapshots")).is_empty(),
        "no snapshot sent after the stop"
    );
    assert!(files_in(&mirror.join("locks")).is_empty());
    assert_success(
        &env.run(["sync", "--to", mirror.to_str().unwrap()]),
        "sync after",
    );
    assert_success(&m.run(["check", "--read-data"]), "check of the mirror");
    let to = env.path("restored");
    m.restore("latest", &to);
    assert_same_tree(&src, &restored(&to, &src));
}

#[test]
fn a_second_signal_ends_at_once_and_the_lock_left_is_judged_stale() {
    let env = Env::new();
    let src = source(&env, 2);
    let mut cmd = env.cmd();
    cmd.args(["create", src.to_str().unwrap()]);
    let (child, _go) = paused(cmd, "create.after_intents", &env.path(""));
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    assert!(stderr(&out).contains("at once"), "{}", stderr(&out));
    // Its registration is left, but its process is gone: prune does not wait.
    assert_success(&env.run(["prune", "--lock-wait", "0s"]), "prune after");
    env.create(&[&src], &[]);
}

#[test]
fn sigint_during_a_dump_kills_the_dump_and_exits_130() {
    let env = Env::new();
    let src = source(&env, 1);
    let here = env.path("dump-started");
    let pidfile = env.path("dump.pid");
    let dump = format!(
        "db.sql=echo $$ > {}; head -c 100000 /dev/zero; touch {}; sleep 600",
        pidfile.display(),
        here.display()
    );
    let child = env
        .cmd()
        .args(["create", src.to_str().unwrap(), "--from-shell", &dump])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !here.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "dump never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    stopped_cleanly(&out, 130, "create with a dump");
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "the dump command (pid {pid}) was killed");
    nothing_left(&env);
    assert!(env.snapshot_ids().is_empty());
}

/// Every file under its final name in `dir` is identical to its source
/// (independent walk); no temporary file is left.
fn only_whole_files(restored: &Path, src: &Path) {
    let mut stack = vec![restored.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.contains(".snap-tmp-"),
                "temporary file left: {}",
                p.display()
            );
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(restored).unwrap();
                assert_eq!(
                    fs::read(&p).unwrap(),
                    fs::read(src.join(rel)).unwrap(),
                    "{} is partial",
                    p.display()
                );
            }
        }
    }
}

#[test]
fn sigterm_during_restore_exits_143_with_no_partial_file_under_its_name() {
    let env = Env::new();
    let src = source(&env, 6);
    env.create(&[&src], &[]);
    let to = env.path("out");
    let mut cmd = env.cmd();
    cmd.args(["restore", "latest", "--to", to.to_str().unwrap()]);
    let out = stop_at(cmd, "restore.after_write", &env.path(""), libc::SIGTERM);
    stopped_cleanly(&out, 143, "restore");
    nothing_left(&env);
    if restored(&to, &src).exists() {
        only_whole_files(&restored(&to, &src), &src);
    }
    // The next restore completes.
    env.restore("latest", &to);
    assert_same_tree(&src, &restored(&to, &src));
}
