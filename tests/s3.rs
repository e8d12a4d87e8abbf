//! Round trips against a real S3 server on 127.0.0.1 (moto, started by
//! scripts/s3-server.sh, or the one named by SNAP_TEST_S3_ENDPOINT).
//! Outside CI the tests skip loudly when the server cannot be started; in CI
//! they fail.

#[path = "s3common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use snap::backend::object::ObjectBackend;
use snap::backend::{Backend, FileKind, WriteMode};

macro_rules! need_s3 {
    () => {
        match s3() {
            Some(s) => s,
            None => return,
        }
    };
}

fn restored(dir: &Path, src: &Path) -> std::path::PathBuf {
    dir.join(src.strip_prefix("/").unwrap())
}

fn source_tree(root: &Path, files: usize, size: usize, seed: u64) {
    for i in 0..files {
        random_file(
            &root.join(format!("d{}/f{i}.bin", i % 3)),
            size,
            seed + i as u64,
        );
    }
    std::fs::write(root.join("small.txt"), format!("hello {seed}\n")).unwrap();
}

fn requests_log(path: &Path, location_contains: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["location"]
                .as_str()
                .unwrap_or("")
                .contains(location_contains)
        })
        .unwrap_or_else(|| panic!("no request log for {location_contains} in {text:?}"))
}

#[test]
fn init_create_restore_on_s3() {
    let s = need_s3!();
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let src = t.path().join("src");
    source_tree(&src, 6, 300_000, 1);
    let url = s.url("roundtrip");
    init(&cache, &url);
    ok(snap(&cache).args(["--repo", &url, "create"]).arg(&src));
    // A second client with an empty cache restores from S3 alone.
    let cache2 = t.path().join("cache2");
    let out = t.path().join("out");
    ok(snap(&cache2)
        .args(["--repo", &url, "restore", "latest", "--to"])
        .arg(&out));
    assert_same_tree(&src, &restored(&out, &src));

    // With a warm cache, `snapshots` and `restore` neither list packs nor
    // download more than the packs they need.
    let log = t.path().join("req.jsonl");
    ok(snap(&cache)
        .env("SNAP_REQUEST_LOG", &log)
        .args(["--repo", &url, "snapshots"]));
    let r = requests_log(&log, "roundtrip");
    assert!(r["counts"]["list"].as_u64().unwrap() <= 2, "{r}");
    assert!(r["counts"]["get"].as_u64().unwrap() <= 3, "{r}");
    let out2 = t.path().join("out2");
    ok(snap(&cache)
        .env("SNAP_REQUEST_LOG", &log)
        .args(["--repo", &url, "restore", "latest", "--to"])
        .arg(&out2));
    let r = requests_log(&log, "roundtrip");
    assert!(
        r["counts"]["list"].as_u64().unwrap() <= 2,
        "restore listed packs: {r}"
    );
    assert_same_tree(&src, &restored(&out2, &src));
}

#[test]
fn sync_local_to_s3_to_local() {
    let s = need_s3!();
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let src = t.path().join("src");
    let a = t.path().join("repo-a");
    let a = a.to_str().unwrap();
    source_tree(&src, 4, 200_000, 7);
    init(&cache, a);
    ok(snap(&cache).args(["--repo", a, "create"]).arg(&src));
    random_file(&src.join("later.bin"), 150_000, 99);
    ok(snap(&cache).args(["--repo", a, "create"]).arg(&src));

    let url = s.url("sync");
    let r =
        json(&ok(snap(&cache).args([
            "--repo", a, "--json", "sync", "--verify", "--to", &url,
        ])));
    assert_eq!(r["initialized"], true, "{r}");
    assert_eq!(r["snapshots_sent"], 2, "{r}");
    let packs = std::fs::read_dir(Path::new(a).join("data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .count() as u64;
    assert_eq!(r["packs_sent"].as_u64().unwrap(), packs, "{r}");
    assert!(r["verified"].as_u64().unwrap() >= packs + 2, "{r}");
    assert!(r["bytes_sent"].as_u64().unwrap() > 800_000, "{r}");

    // Nothing new: no object sent, one request to the remote.
    let r = json(&ok(
        snap(&cache).args(["--repo", a, "--json", "sync", "--to", &url])
    ));
    assert_eq!(r["objects_sent"], 0, "{r}");
    assert_eq!(r["target_requests"]["put"], 0, "{r}");
    let total: u64 = ["get", "put", "head", "list", "delete"]
        .iter()
        .map(|k| r["target_requests"][k].as_u64().unwrap())
        .sum();
    assert_eq!(
        total, 1,
        "a sync with nothing new must cost one request: {r}"
    );

    // S3 -> a second local repository, then restore from it.
    let b = t.path().join("repo-b");
    let b = b.to_str().unwrap();
    let r = json(&ok(
        snap(&cache).args(["--repo", b, "--json", "sync", "--from", &url])
    ));
    assert_eq!(r["snapshots_sent"], 2, "{r}");
    let out = t.path().join("out");
    ok(snap(&cache)
        .args(["--repo", b, "restore", "latest", "--to"])
        .arg(&out));
    assert_same_tree(&src, &restored(&out, &src));
    ok(snap(&cache).args(["--repo", b, "check", "--read-data"]));
    // Nothing new from the remote either: one LIST on it.
    let r = json(&ok(
        snap(&cache).args(["--repo", b, "--json", "sync", "--from", &url])
    ));
    assert_eq!(r["objects_sent"], 0, "{r}");
    assert_eq!(r["source_requests"]["list"], 1, "{r}");
    assert_eq!(r["source_requests"]["get"], 0, "{r}");

    // A different repository is refused as a target.
    let c = t.path().join("repo-c");
    let c = c.to_str().unwrap();
    init(&cache, c);
    let out = snap(&cache)
        .args(["--repo", c, "sync", "--to", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another repository"));
}

#[cfg(feature = "failpoints")]
#[test]
fn interrupted_sync_resumes() {
    let s = need_s3!();
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let a = t.path().join("repo-a");
    let a = a.to_str().unwrap();
    init(&cache, a);
    // Several creates: two packs (data + tree) each.
    for i in 0..5 {
        let src = t.path().join(format!("src{i}"));
        source_tree(&src, 2, 100_000, 100 + i);
        ok(snap(&cache).args(["--repo", a, "create"]).arg(&src));
    }
    let total = std::fs::read_dir(Path::new(a).join("data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .count() as u64;
    assert!(total >= 10, "{total} packs");
    let url = s.url("resume");
    let mut child = snap(&cache)
        .env("SNAP_FAILPOINTS", "sync.before_object=sleep(150)")
        .args(["--repo", a, "sync", "--connections", "1", "--to", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let probe = ObjectBackend::open_with(&url, &s.options()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = probe.list(FileKind::Pack).unwrap().len();
        if n >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "sync made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = probe.list(FileKind::Pack).unwrap().len() as u64;
    let snaps_before = probe.list(FileKind::Snapshot).unwrap().len();
    assert_eq!(snaps_before, 0, "snapshots must come after all packs");
    assert!(
        before < total,
        "sync finished before the kill ({before} packs)"
    );

    let r = json(&ok(
        snap(&cache).args(["--repo", a, "--json", "sync", "--to", &url])
    ));
    assert_eq!(r["packs_present"].as_u64().unwrap(), before, "{r}");
    assert_eq!(r["packs_sent"].as_u64().unwrap() + before, total, "{r}");
    assert_eq!(r["snapshots_sent"], 5, "{r}");
    ok(snap(&cache).args(["--repo", &url, "check", "--read-data"]));
}

#[test]
fn corrupted_remote_object_is_detected() {
    let s = need_s3!();
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let src = t.path().join("src");
    source_tree(&src, 3, 200_000, 42);
    let url = s.url("corrupt");
    init(&cache, &url);
    ok(snap(&cache).args(["--repo", &url, "create"]).arg(&src));
    ok(snap(&cache).args(["--repo", &url, "check", "--read-data"]));

    let be = ObjectBackend::open_with(&url, &s.options()).unwrap();
    let (name, size) = be
        .list(FileKind::Pack)
        .unwrap()
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .unwrap();
    let mut bytes = be.read(FileKind::Pack, &name).unwrap();
    bytes[(size / 2) as usize] ^= 0x40;
    be.write(FileKind::Pack, &name, &bytes, WriteMode::Overwrite)
        .unwrap();

    let out = snap(&cache)
        .args(["--repo", &url, "check", "--read-data"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(11),
        "check must report damage: {text}"
    );
    assert!(
        text.contains(&name[..8]),
        "the damaged pack is named: {text}"
    );
}

#[test]
fn missing_bucket_and_dead_endpoint_fail_fast_with_one_line() {
    let s = need_s3!();
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");

    let started = Instant::now();
    let out = snap(&cache)
        .args(["--repo", "s3://no-such-bucket-here/x", "snapshots"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("bucket"), "{err}");

    let started = Instant::now();
    let out = snap(&cache)
        .args([
            "--repo",
            &format!("s3://{}/x", s.bucket),
            "--option",
            "endpoint=http://127.0.0.1:9",
            "snapshots",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    let out = snap(&cache)
        .args(["--repo", "s3://b/x", "--option", "bogus_key=1", "snapshots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus_key"));
}

/// A tree of `dirs` directories, one small file each.
fn many_dirs(root: &Path, dirs: usize) {
    for i in 0..dirs {
        let d = root.join(format!("a{}/b{i}", i % 20));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("f.txt"), format!("file {i}\n")).unwrap();
    }
}

fn requests(log: &Path, location: &str) -> u64 {
    let r = requests_log(log, location);
    ["get", "put", "head", "list", "delete"]
        .iter()
        .map(|k| r["counts"][k].as_u64().unwrap())
        .sum()
}

/// The requests of an unchanged re-backup, a restore, `ls`, `check` and a
/// prune do not grow with the number of directories: listings are read
/// from the cache of tree packs, not with one GET each. A second machine
/// (empty cache) fetches each tree pack once.
#[test]
fn requests_do_not_grow_with_the_number_of_directories() {
    let s = need_s3!();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    many_dirs(&src, 600);
    let url = s.url("manydirs");
    let cache = t.path().join("cache");
    init(&cache, &url);
    ok(snap(&cache).args(["--repo", &url, "create"]).arg(&src));
    let log = t.path().join("req.jsonl");
    let run = |cache: &Path, args: &[&str]| -> u64 {
        let _ = std::fs::remove_file(&log);
        let mut c = snap(cache);
        c.env("SNAP_REQUEST_LOG", &log)
            .args(["--repo", &url])
            .args(args);
        ok(&mut c);
        let n = requests(&log, "manydirs");
        eprintln!("{args:?}: {n} requests");
        n
    };
    let src_s = src.to_str().unwrap();
    // 600 directories: one GET per tree would be over 600 requests.
    let unchanged = run(&cache, &["create", src_s]);
    assert!(unchanged <= 30, "unchanged re-backup: {unchanged} requests");
    let out = t.path().join("out");
    let restore = run(
        &cache,
        &["restore", "latest", "--to", out.to_str().unwrap()],
    );
    assert!(restore <= 30, "restore: {restore} requests");
    assert_same_tree(&src, &restored(&out, &src));
    let ls = run(&cache, &["ls", "latest"]);
    assert!(ls <= 20, "ls: {ls} requests");
    let check = run(&cache, &["check"]);
    assert!(check <= 30, "check: {check} requests");
    let prune = run(&cache, &["prune", "--keep-last", "1"]);
    assert!(prune <= 40, "prune: {prune} requests");
    // A second machine: tree packs are fetched once each, then cached.
    let cache2 = t.path().join("cache2");
    let first = run(&cache2, &["ls", "latest"]);
    assert!(first <= 40, "ls on a second machine: {first} requests");
    let again = run(&cache2, &["create", src_s]);
    assert!(again <= 30, "its unchanged re-backup: {again} requests");
    // A damaged copy in the cache is not damage of the repository: the
    // blob is read from storage and the copy replaced.
    let packs = std::fs::read_dir(cache2.join(dir_name(&cache2)).join("packs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect::<Vec<_>>();
    assert!(!packs.is_empty(), "tree packs are cached");
    for p in &packs {
        let mut b = std::fs::read(p).unwrap();
        for x in b.iter_mut().take(4096) {
            *x ^= 0x55;
        }
        std::fs::write(p, b).unwrap();
    }
    let out2 = t.path().join("out2");
    run(
        &cache2,
        &["restore", "latest", "--to", out2.to_str().unwrap()],
    );
    assert_same_tree(&src, &restored(&out2, &src));
    let out = ok(snap(&cache2).args(["--repo", &url, "check"]));
    assert!(out.status.success());
}

/// The one repository directory in a cache base.
fn dir_name(cache: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    names.pop().unwrap()
}
