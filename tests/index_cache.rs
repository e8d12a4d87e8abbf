//! The index as a per-user cache: a local repository works on a read-only
//! mount, an index left inside a repository by v0.1 is never trusted, a
//! damaged index file is rebuilt from the packs, and a storage error on the
//! way (a flaky link) never makes the index forget packs.

mod common;
#[path = "s3common/mod.rs"]
mod s3common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn source(env: &Env, files: usize) -> PathBuf {
    let src = env.path("src");
    for i in 0..files {
        write_random(
            &src.join(format!("d{}/f{i}.bin", i % 7)),
            i as u64 + 1,
            2000 + i * 37,
        );
    }
    write_random(&src.join("big.bin"), 999, 400_000);
    src
}

fn check_clean(env: &Env) {
    let r = env.json(["check", "--read-data"]);
    assert_eq!(r["errors"].as_array().map(Vec::len), Some(0), "check: {r}");
    assert_eq!(
        r["warnings"].as_array().map(Vec::len),
        Some(0),
        "check: {r}"
    );
}

fn restores_to(env: &Env, src: &Path, name: &str) {
    let to = env.path(name);
    env.restore("latest", &to);
    assert_same_tree(src, &restored(&to, src));
}

/// A read-only bind mount of a directory; unmounted on drop.
struct RoMount(PathBuf);

impl RoMount {
    /// `None` (after saying so) where mounting is not permitted.
    fn new(from: &Path, at: &Path) -> Option<RoMount> {
        fs::create_dir_all(at).unwrap();
        let run = |args: &[&str]| {
            Command::new("mount")
                .args(args)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !run(&["--bind", from.to_str().unwrap(), at.to_str().unwrap()]) {
            eprintln!("SKIPPING read-only mount test: `mount --bind` is not permitted here");
            return None;
        }
        let m = RoMount(at.to_path_buf());
        if !run(&["-o", "remount,bind,ro", at.to_str().unwrap()]) {
            eprintln!("SKIPPING read-only mount test: cannot remount read-only");
            return None;
        }
        Some(m)
    }
}

impl Drop for RoMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn reading_commands_work_on_a_read_only_mount() {
    let env = Env::new();
    let src = source(&env, 20);
    env.create(&[&src], &[]);
    // A v0.1 index left inside is ignored; on a read-only mount it stays.
    fs::create_dir_all(env.repo.join("index")).unwrap();
    fs::write(env.repo.join("index/index.sqlite"), b"left by v0.1").unwrap();
    let Some(_m) = RoMount::new(&env.repo, &env.path("ro")) else {
        return;
    };
    let ro = env.path("ro");
    assert!(
        fs::write(ro.join("probe"), b"x").is_err(),
        "the mount is read-only"
    );
    // The client that wrote the backup, and one with an empty cache.
    for (i, c) in [env.at(&ro), env.client("fresh").at(&ro)]
        .iter()
        .enumerate()
    {
        let rows = c.json(["snapshots"]);
        assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
        let ls = ls_paths(c, "latest");
        assert!(ls.iter().any(|p| p.ends_with("big.bin")), "{ls:?}");
        let big = src.join("big.bin");
        let out = c.run(["dump", "latest", big.to_str().unwrap()]);
        assert_success(&out, "dump");
        assert!(out.stdout == fs::read(&big).unwrap());
        check_clean(c);
        restores_to(c, &src, &format!("restored-{i}"));
        let out = c.run(["-v", "snapshots"]);
        assert_success(&out, "snapshots -v");
        assert!(
            stderr(&out).contains("index"),
            "-v mentions the index left inside: {}",
            stderr(&out)
        );
    }
    assert!(ro.join("index/index.sqlite").exists());
}

/// The index files of this client (or, for v0.1, inside the repository).
fn index_files(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [env.cache_dir(), env.repo.join("index")] {
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd {
                let p = e.unwrap().path();
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("index.sqlite")
                {
                    out.push(p);
                }
            }
        }
    }
    out
}

#[test]
fn index_left_in_the_repository_by_v01_is_never_trusted() {
    let env = Env::new();
    let src = source(&env, 5);
    env.create(&[&src], &[]);
    // The index as it was after that backup, put where v0.1 kept it...
    let files = index_files(&env);
    let main: Vec<_> = files
        .iter()
        .filter(|p| p.ends_with("index.sqlite"))
        .collect();
    assert_eq!(main.len(), 1, "{files:?}");
    let old = fs::read(main[0]).unwrap();
    // ...after which every pack was pruned.
    let ids = env.snapshot_ids();
    env.ok(["forget", &ids[0]]);
    env.ok(["prune"]);
    assert!(env.packs().is_empty());
    for f in index_files(&env) {
        fs::remove_file(f).unwrap();
    }
    fs::create_dir_all(env.repo.join("index")).unwrap();
    fs::write(env.repo.join("index/index.sqlite"), &old).unwrap();

    let out = env.run(["-v", "--json", "create", src.to_str().unwrap()]);
    assert_success(&out, "create");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        num(&r["summary"], "bytes_added") >= 400_000,
        "the data was stored again: {r}"
    );
    assert!(
        !env.repo.join("index").exists(),
        "the leftover index was removed"
    );
    assert!(
        stderr(&out).contains("index"),
        "-v says so: {}",
        stderr(&out)
    );
    check_clean(&env);
    restores_to(&env, &src, "restored");
}

/// Overwrites bytes in the middle of the index file.
fn damage_index(env: &Env) {
    let f = env.index_file();
    let mut bytes = fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    assert!(bytes.len() >= 5 * 4096, "index of {} bytes", bytes.len());
    let mid = bytes.len() / 4096 / 2 * 4096;
    for b in &mut bytes[mid..mid + 4096] {
        *b = 0xA5;
    }
    fs::write(&f, bytes).unwrap();
}

#[test]
fn damaged_index_page_is_rebuilt_from_the_packs() {
    let env = Env::new();
    let src = source(&env, 300);
    env.create(&[&src], &[]);

    // `repair index` never reads the damaged file.
    damage_index(&env);
    let out = env.run(["repair", "index"]);
    assert_success(&out, "repair index");
    check_clean(&env);
    restores_to(&env, &src, "restored-1");

    // Any other command that meets the damage says so (the index is only a
    // cache: the next command rebuilds it, or `snap repair index`), and
    // `check` always meets it; the command after that works.
    let advises = |out: &std::process::Output, what: &str| {
        if !out.status.success() {
            assert!(
                stderr(out).contains("is damaged") && stderr(out).contains("snap repair index"),
                "{what}: {}",
                stderr(out)
            );
        }
    };
    let to = env.path("restored-while-damaged");
    for (i, args) in [
        vec!["check"],
        vec!["create", src.to_str().unwrap(), "--full"],
        vec!["prune"],
        vec!["restore", "latest", "--to", to.to_str().unwrap()],
    ]
    .into_iter()
    .enumerate()
    {
        let _ = fs::remove_dir_all(&to);
        damage_index(&env);
        advises(&env.run(&args), &format!("{args:?}"));
        let out = env.run(["check"]);
        advises(&out, "check");
        check_clean(&env);
        restores_to(&env, &src, &format!("restored-x{i}"));
    }
}

/// A TCP proxy in front of the S3 server that answers `503 Slow Down` to
/// every request whose request line contains `fail`, and forwards the rest
/// (one request per connection).
fn flaky_proxy(upstream: &str, fail: &'static str) -> String {
    let up = upstream.trim_start_matches("http://").to_string();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(client) = conn else { continue };
            let up = up.clone();
            std::thread::spawn(move || {
                let _ = forward(client, &up, fail);
            });
        }
    });
    format!("http://{addr}")
}

fn forward(client: TcpStream, upstream: &str, fail: &str) -> std::io::Result<()> {
    let mut r = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.push(line);
        }
    }
    let mut client = client;
    if head.first().is_some_and(|l| l.contains(fail)) {
        client.write_all(
            b"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    let mut server = TcpStream::connect(upstream)?;
    let mut text = head.concat();
    text.push_str("Connection: close\r\n\r\n");
    server.write_all(text.as_bytes())?;
    let buffered = r.buffer().to_vec();
    server.write_all(&buffered)?;
    let mut to_server = server.try_clone()?;
    let mut from_client = r.into_inner();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
    });
    let mut resp = Vec::new();
    server.read_to_end(&mut resp)?;
    client.write_all(&resp)?;
    client.shutdown(std::net::Shutdown::Both)
}

#[test]
fn storage_errors_never_make_the_index_forget_packs() {
    let Some(s) = s3common::s3() else { return };
    let env = Env::init_at(
        |_| s.url("flaky"),
        s.env.clone(),
        &["--chunk-avg-kib", "64"],
    );
    let src = source(&env, 5);
    env.create(&[&src], &[]);
    let proxy = flaky_proxy(&s.endpoint, "/data/");
    let over_flaky_link = |c: &Env| {
        let mut f = c.at(c.repo.clone());
        for (k, v) in &mut f.vars {
            if k == "AWS_ENDPOINT_URL" {
                *v = proxy.clone();
            }
        }
        f
    };
    let flaky = over_flaky_link(&env);

    // Pack reads fail: `repair index` stops with exit 1 and keeps the index.
    let before = fs::read(env.index_file()).unwrap();
    let out = flaky.run(["-o", "retries=1", "repair", "index"]);
    assert_eq!(code(&out), 1, "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("storage error"), "{}", stderr(&out));
    assert!(
        fs::read(env.index_file()).unwrap() == before,
        "the index was left as it was"
    );
    check_clean(&env);

    // A client with an empty cache cannot build its index: exit 1, no
    // damage reported, and later over a good link everything is there.
    let fresh = over_flaky_link(&env.client("fresh"));
    let out = fresh.run(["-o", "retries=1", "snapshots"]);
    assert_eq!(code(&out), 1, "stderr: {}", stderr(&out));
    let good = env.client("fresh");
    check_clean(&good);
    restores_to(&good, &src, "restored");
}

#[test]
fn repair_index_beside_a_running_create_breaks_neither() {
    let env = Env::new();
    let src = source(&env, 5);
    env.create(&[&src], &[]);
    // A create that holds the index open while it waits for its input.
    let mut child = env
        .cmd()
        .args(["create", "--stdin-name", "slow.txt"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while files_starting(&env.repo.join("locks"), "create-").is_empty() {
        assert!(std::time::Instant::now() < deadline, "create did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = env.run(["repair", "index"]);
    assert_eq!(code(&out), 1, "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("in use by another snap process"),
        "{}",
        stderr(&out)
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&[7u8; 300_000]).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_success(&out, "the running create");
    // Now nothing holds it: repair works, and nothing was lost.
    env.ok(["repair", "index"]);
    check_clean(&env);
    let to = env.path("restored");
    env.restore(&env.snapshot_ids()[0], &to);
    assert_same_tree(&src, &restored(&to, &src));
}

/// The repository written by the released v0.1 (tests/fixtures/v0_1), with
/// its in-repository index: read-only, the old index is left alone and not
/// used; writable, the first command removes it, and says so at `-v`.
#[test]
fn the_v0_1_fixtures_in_repository_index_is_retired() {
    let tmp = tempfile::tempdir().unwrap();
    let tarball = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0_1/repo.tar.gz");
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(st.success());
    let repo = tmp.path().join("repo");
    let old = repo.join("index/index.sqlite");
    assert!(old.is_file(), "the fixture has v0.1's index");
    let snap = |repo: &Path, args: &[&str]| {
        Command::new(snap_bin())
            .env_remove("SNAP_PASSWORD_FILE")
            .env_remove("SNAP_PASSWORD_COMMAND")
            .env("SNAP_REPO", repo)
            .env("SNAP_CACHE_DIR", tmp.path().join("cache"))
            .env("SNAP_PASSWORD", "v0.1 fixture password")
            .args(args)
            .output()
            .unwrap()
    };
    if let Some(_m) = RoMount::new(&repo, &tmp.path().join("ro")) {
        let out = snap(&tmp.path().join("ro"), &["-v", "check"]);
        assert_success(&out, "check of the read-only v0.1 repository");
        assert!(
            stderr(&out).contains("could not be removed"),
            "{}",
            stderr(&out)
        );
        assert!(old.is_file(), "left alone on a read-only mount");
    }
    let out = snap(&repo, &["-v", "check", "--read-data"]);
    assert_success(&out, "check of the v0.1 repository");
    assert!(
        stderr(&out).contains("removed") && stderr(&out).contains("index"),
        "{}",
        stderr(&out)
    );
    assert!(!repo.join("index").exists(), "the old index is gone");
    let out = snap(&repo, &["-v", "snapshots"]);
    assert_success(&out, "snapshots");
    assert!(
        !stderr(&out).contains("removed"),
        "only once: {}",
        stderr(&out)
    );
}
