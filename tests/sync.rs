//! `snap sync` between local directories and a `file://` object store (no
//! S3 server needed): --delete propagation, damage in the source, refusal of
//! a foreign target.

#[path = "s3common/mod.rs"]
mod common;

use std::path::Path;

use common::*;

fn snapshot_names(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn delete_propagates_only_when_asked() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let a = t.path().join("a");
    let src = t.path().join("src");
    init(&cache, a.to_str().unwrap());
    for i in 0..3 {
        random_file(&src.join(format!("f{i}")), 50_000, i);
        ok(snap(&cache).arg("--repo").arg(&a).arg("create").arg(&src));
    }
    let dir = t.path().join("b");
    let url = format!("file://{}", dir.display());
    let r = json(&ok(snap(&cache)
        .arg("--repo")
        .arg(&a)
        .args(["--json", "sync", "--to", &url])));
    assert_eq!(r["snapshots_sent"], 3, "{r}");
    assert_eq!(snapshot_names(&dir), snapshot_names(&a));

    // "forget" the oldest snapshot in the source (oldest by time: names
    // are hashes, in no order)
    let out = ok(snap(&cache)
        .arg("--repo")
        .arg(&a)
        .args(["--json", "snapshots"]));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gone = listed[0]["id"].as_str().unwrap().to_string();
    std::fs::remove_file(a.join("snapshots").join(&gone)).unwrap();
    let r = json(&ok(snap(&cache)
        .arg("--repo")
        .arg(&a)
        .args(["--json", "sync", "--to", &url])));
    assert_eq!(r["snapshots_deleted"], 0, "{r}");
    assert!(dir.join("snapshots").join(&gone).exists());

    let r = json(&ok(snap(&cache)
        .arg("--repo")
        .arg(&a)
        .args(["--json", "sync", "--delete", "--to", &url])));
    assert_eq!(r["snapshots_deleted"], 1, "{r}");
    assert_eq!(snapshot_names(&dir), snapshot_names(&a));
    ok(snap(&cache).args(["--repo", &url, "check", "--read-data"]));
    let out = t.path().join("out");
    ok(snap(&cache)
        .args(["--repo", &url, "restore", "latest", "--to"])
        .arg(&out));
    assert_same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
}

#[test]
fn damaged_source_object_is_not_copied() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let a = t.path().join("a");
    let src = t.path().join("src");
    init(&cache, a.to_str().unwrap());
    random_file(&src.join("f"), 200_000, 5);
    ok(snap(&cache).arg("--repo").arg(&a).arg("create").arg(&src));
    // flip a byte in the largest pack
    let mut packs: Vec<_> = walk(&a.join("data"));
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let victim = packs.pop().unwrap();
    let mut b = std::fs::read(&victim).unwrap();
    b[100] ^= 1;
    std::fs::write(&victim, b).unwrap();
    let dst = t.path().join("b");
    let out = snap(&cache)
        .arg("--repo")
        .arg(&a)
        .args(["sync", "--to"])
        .arg(&dst)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(11));
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&name));
    assert!(!walk(&dst.join("data")).iter().any(|p| p.ends_with(&name)));
}

fn walk(d: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}
