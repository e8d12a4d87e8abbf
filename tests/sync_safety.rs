//! `snap sync` never copies a loss: a pack that vanished from the source is
//! not deleted on the mirror by `--delete` (the sync fails with exit 11,
//! naming what is lost and that the mirror is the copy to repair from), a
//! snapshot whose data is not complete on the source is not copied, and
//! `sync --from MIRROR` copies the lost packs back. Local directories, and
//! one case on the loopback S3 server.

#[path = "s3common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn files(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                v.extend(files(&p));
            } else {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

fn names(d: &Path) -> Vec<String> {
    files(d)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn run(cache: &Path, args: &[&str]) -> Output {
    snap(cache).args(args).output().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// A repository at `a` with two snapshots of `src`; returns their ids,
/// oldest first.
fn two_snapshots(cache: &Path, a: &str, src: &Path) -> Vec<String> {
    init(cache, a);
    random_file(&src.join("f1"), 300_000, 1);
    random_file(&src.join("f2"), 200_000, 2);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = json(&ok(snap(cache)
            .args(["--repo", a, "--json", "create"])
            .arg(src)));
        ids.push(r["snapshot"].as_str().unwrap().to_string());
        random_file(&src.join("f3"), 250_000, 3);
    }
    ids
}

/// The largest pack of a local repository (a data pack both snapshots need).
fn largest_pack(repo: &Path) -> PathBuf {
    let mut v = files(&repo.join("data"));
    v.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    v.pop().unwrap()
}

/// Checks `repo` and restores its latest snapshot, comparing with `src`.
fn check_and_restore(cache: &Path, repo: &str, src: &Path, out: &Path) {
    ok(snap(cache).args(["--repo", repo, "check", "--read-data"]));
    ok(snap(cache)
        .args(["--repo", repo, "restore", "latest", "--to"])
        .arg(out));
    assert_same_tree(src, &out.join(src.strip_prefix("/").unwrap()));
}

/// The scenario of the issue, with the mirror at `mirror` (a path or URL)
/// and `mirror_packs` listing the mirror's pack names.
fn lost_pack_is_not_propagated(t: &Path, mirror: &str, mirror_packs: &dyn Fn() -> Vec<String>) {
    let cache = t.join("cache");
    let a = t.join("a");
    let a_s = a.to_str().unwrap();
    let src = t.join("src");
    let snaps = two_snapshots(&cache, a_s, &src);
    ok(snap(&cache).args(["--repo", a_s, "sync", "--to", mirror]));
    let victim = largest_pack(&a);
    let vname = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(mirror_packs().contains(&vname));
    std::fs::remove_file(&victim).unwrap();

    // --delete must not delete the mirror's good copy.
    let out = run(
        &cache,
        &["--repo", a_s, "--json", "sync", "--delete", "--to", mirror],
    );
    assert_eq!(out.status.code(), Some(11), "{}", err(&out));
    let r = json_of(&out);
    assert_eq!(r["packs_deleted"], 0, "{r}");
    assert!(
        mirror_packs().contains(&vname),
        "the mirror's copy was deleted"
    );
    // The message names the pack, the snapshots and the way to repair.
    let text = run(&cache, &["--repo", a_s, "sync", "--delete", "--to", mirror]);
    assert_eq!(text.status.code(), Some(11));
    let e = err(&text);
    assert!(e.contains(&vname[..8]), "{e}");
    for s in &snaps {
        assert!(e.contains(&s[..8]), "{e}");
    }
    assert!(e.contains("sync --from"), "{e}");
    // The mirror is intact.
    check_and_restore(&cache, mirror, &src, &t.join("out-mirror"));

    // Repair from the mirror: the pack comes back.
    ok(snap(&cache).args(["--repo", a_s, "sync", "--from", mirror]));
    assert!(
        victim.exists(),
        "sync --from did not copy the lost pack back"
    );
    check_and_restore(&cache, a_s, &src, &t.join("out-a"));
    // And a --delete sync is clean again.
    let r =
        json(&ok(snap(&cache).args([
            "--repo", a_s, "--json", "sync", "--delete", "--to", mirror,
        ])));
    assert_eq!(r["packs_deleted"], 0, "{r}");
}

#[test]
fn a_pack_lost_on_the_source_is_not_deleted_on_a_local_mirror() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("mirror");
    let m2 = m.clone();
    lost_pack_is_not_propagated(t.path(), m.to_str().unwrap(), &move || {
        names(&m2.join("data"))
    });
}

#[test]
fn a_pack_lost_on_the_source_is_not_deleted_on_an_s3_mirror() {
    let Some(s) = s3() else { return };
    let t = tempfile::tempdir().unwrap();
    let url = s.url("lost");
    let opts = s.options();
    let url2 = url.clone();
    lost_pack_is_not_propagated(t.path(), &url, &move || {
        use snap::backend::{Backend, FileKind};
        let be = snap::backend::object::ObjectBackend::open_with(&url2, &opts).unwrap();
        be.list(FileKind::Pack)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    });
}

#[test]
fn a_snapshot_whose_data_is_lost_is_not_copied() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let a = t.path().join("a");
    let a_s = a.to_str().unwrap();
    let src = t.path().join("src");
    init(&cache, a_s);
    random_file(&src.join("f1"), 300_000, 11);
    ok(snap(&cache).args(["--repo", a_s, "create"]).arg(&src));
    let m = t.path().join("mirror");
    let m_s = m.to_str().unwrap();
    ok(snap(&cache).args(["--repo", a_s, "sync", "--to", m_s]));
    // A second snapshot, whose new data pack then vanishes.
    let before = files(&a.join("data"));
    random_file(&src.join("f2"), 400_000, 12);
    ok(snap(&cache).args(["--repo", a_s, "create"]).arg(&src));
    let s2 = names(&a.join("snapshots"))
        .into_iter()
        .find(|n| !names(&m.join("snapshots")).contains(n))
        .unwrap();
    let mut new: Vec<PathBuf> = files(&a.join("data"))
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    new.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    std::fs::remove_file(new.pop().unwrap()).unwrap();

    let out = run(&cache, &["--repo", a_s, "sync", "--to", m_s]);
    assert_eq!(out.status.code(), Some(11), "{}", err(&out));
    assert!(err(&out).contains(&s2[..8]), "{}", err(&out));
    assert!(
        !names(&m.join("snapshots")).contains(&s2),
        "a snapshot with lost data was copied"
    );
    // The mirror checks clean (its one snapshot is complete).
    ok(snap(&cache).args(["--repo", m_s, "check", "--read-data"]));
}

#[test]
fn prune_then_sync_delete_still_frees_the_mirror() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let a = t.path().join("a");
    let a_s = a.to_str().unwrap();
    let src = t.path().join("src");
    let snaps = two_snapshots(&cache, a_s, &src);
    let m = t.path().join("mirror");
    let m_s = m.to_str().unwrap();
    ok(snap(&cache).args(["--repo", a_s, "sync", "--to", m_s]));
    // Forget the second snapshot (f3 is its own) and free its data.
    std::fs::remove_file(src.join("f3")).unwrap();
    ok(snap(&cache).args(["--repo", a_s, "forget", &snaps[1][..12]]));
    ok(snap(&cache).args(["--repo", a_s, "prune", "--max-unused", "0"]));
    let r =
        json(&ok(snap(&cache).args([
            "--repo", a_s, "--json", "sync", "--delete", "--to", m_s,
        ])));
    assert!(r["packs_deleted"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["snapshots_deleted"], 1, "{r}");
    assert_eq!(names(&m.join("data")), names(&a.join("data")));
    check_and_restore(&cache, m_s, &src, &t.path().join("out"));
}
