//! `create`'s restic options through the real binary: --exclude-if-present,
//! --exclude-larger-than, --iexclude, --files-from (and -verbatim, -raw),
//! --dry-run and --skip-if-unchanged. What must be in each snapshot is
//! decided here from std::fs scans of the sources, and compared with a
//! scan of the restored tree.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Relative paths (with content hash) below `root`; `keep` filters them.
fn listing(root: &Path, keep: impl Fn(&Path) -> bool) -> BTreeMap<PathBuf, Option<String>> {
    scan(root)
        .into_iter()
        .filter(|(p, _)| keep(p))
        .map(|(p, m)| (p, m.content))
        .collect()
}

fn restore_of(env: &Env, snap: &str, src: &Path) -> BTreeMap<PathBuf, Option<String>> {
    let to = env.path(&format!("restore-{snap}"));
    env.restore(snap, &to);
    listing(&restored(&to, src), |_| true)
}

fn id(v: &Value) -> String {
    v["snapshot"].as_str().unwrap().to_string()
}

#[test]
fn exclude_if_present_larger_than_and_iexclude() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("plain/f"), 1, 1_000);
    fs::create_dir_all(src.join("tagged")).unwrap();
    fs::write(src.join("tagged/.nobackup"), "").unwrap();
    write_random(&src.join("tagged/inner/x"), 2, 1_000);
    fs::create_dir_all(src.join("marked")).unwrap();
    fs::write(src.join("marked/.marker"), "KEEP-OUT: this directory").unwrap();
    write_random(&src.join("marked/y"), 3, 1_000);
    fs::create_dir_all(src.join("wrong")).unwrap();
    fs::write(src.join("wrong/.marker"), "something else").unwrap();
    write_random(&src.join("wrong/z"), 4, 1_000);
    write_random(&src.join("sizes/small"), 5, 5_000);
    write_random(&src.join("sizes/limit"), 6, 10 * 1024);
    write_random(&src.join("sizes/big"), 7, 20_000);
    write_random(&src.join("pics/a.jpg"), 8, 100);
    write_random(&src.join("pics/B.Jpg"), 9, 100);
    write_random(&src.join("pics/c.png"), 10, 100);
    write_random(&src.join("X.TMP"), 11, 100);
    write_random(&src.join("y.tmp"), 12, 100);
    let given = src.join("sizes/big");

    let v = env.create(
        &[&src, &given],
        &[
            "--exclude-if-present",
            ".nobackup",
            "--exclude-if-present",
            ".marker:KEEP-OUT",
            "--exclude-larger-than",
            "10K",
            "--iexclude",
            "*.jpg",
            "--exclude",
            "*.tmp",
        ],
    );
    let gone = |p: &Path| {
        let s = p.to_str().unwrap();
        s.starts_with("tagged/inner")
            || s == "marked/y"
            || s == "pics/a.jpg"
            || s == "pics/B.Jpg"
            || s == "y.tmp"
    };
    // The big file is left out by size, but kept: it was given by name.
    assert_eq!(restore_of(&env, &id(&v), &src), listing(&src, |p| !gone(p)));
}

#[test]
fn files_from_in_its_three_forms() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("a.txt"), 1, 100);
    write_random(&src.join("b.txt"), 2, 100);
    write_random(&src.join("c.log"), 3, 100);
    write_random(&src.join("sub/d.txt"), 4, 100);
    write_random(&src.join(" spaced"), 5, 100);
    write_random(&src.join(std::ffi::OsStr::from_bytes(b"new\nline")), 6, 100);
    write_random(&src.join("never"), 7, 100);
    let list = env.path("list");
    fs::write(
        &list,
        format!(
            "# what to back up\n\n  {0}/*.txt\nsub\n{0}/missing-file\n",
            src.display()
        ),
    )
    .unwrap();
    let verbatim = env.path("verbatim");
    fs::write(&verbatim, format!("{}/ spaced\n", src.display())).unwrap();
    let raw = env.path("raw");
    let mut r = src.join("new\nline").as_os_str().as_bytes().to_vec();
    r.push(0);
    r.extend_from_slice(src.join("c.log").as_os_str().as_bytes());
    r.push(0);
    fs::write(&raw, r).unwrap();

    let out = env
        .cmd()
        .current_dir(&src)
        .args(["--json", "create", "--files-from"])
        .arg(&list)
        .arg("--files-from-verbatim")
        .arg(&verbatim)
        .arg("--files-from-raw")
        .arg(&raw)
        .output()
        .unwrap();
    assert_success(&out, "create --files-from");
    // A line that matches nothing is a warning naming it.
    assert!(stderr(&out).contains("missing-file"), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let snap = env.json(["snapshots"])[0].clone();
    let paths: BTreeSet<String> = snap["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = ["a.txt", "b.txt", "sub", " spaced", "new\nline", "c.log"]
        .iter()
        .map(|f| src.join(f).display().to_string())
        .collect();
    assert_eq!(paths, want);
    let never = |p: &Path| p != Path::new("never");
    assert_eq!(restore_of(&env, &id(&v), &src), listing(&src, never));

    // Only list files, and they list nothing: nothing to back up.
    let empty = env.path("empty");
    fs::write(&empty, "# nothing\n").unwrap();
    let out = env.run([
        "create".as_ref(),
        "--files-from".as_ref(),
        empty.as_os_str(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing to back up"));
}

#[test]
fn dry_run_reads_and_reports_but_writes_nothing() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("one"), 1, 150_000);
    write_random(&src.join("dir/two"), 2, 70_000);
    fs::write(src.join("dir/empty"), "").unwrap();
    let before = fingerprint(&env.repo);

    let v = env.create(&[&src], &["--dry-run"]);
    assert_eq!(
        fingerprint(&env.repo),
        before,
        "a dry run changed the repository"
    );
    assert!(files_starting(&env.repo.join("locks"), "").is_empty());
    assert_eq!(v["snapshot"], "");
    let d = &v["dry_run"];
    let files: BTreeMap<String, (u64, String)> = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                (
                    f["size"].as_u64().unwrap(),
                    f["why"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let expect: BTreeMap<String, (u64, String)> = scan(&src)
        .into_iter()
        .filter(|(_, m)| m.kind == "file")
        .map(|(p, m)| {
            (
                src.join(p).display().to_string(),
                (m.size, "new".to_string()),
            )
        })
        .collect();
    assert_eq!(files, expect);
    assert_eq!(num(d, "bytes"), 220_000);
    // Random data shares no chunk: all of it would be added.
    assert!(num(d, "new_bytes") >= 220_000, "{d}");
    assert_eq!(num(&v["summary"], "bytes_added"), 0);
    assert!(env.snapshot_ids().is_empty());

    // After a real backup, only what changed would be read.
    env.create(&[&src], &[]);
    write_random(&src.join("dir/two"), 3, 80_000);
    let before = fingerprint(&env.repo);
    let text = env.ok(["create".as_ref(), src.as_os_str(), "--dry-run".as_ref()]);
    assert_eq!(fingerprint(&env.repo), before);
    let reads: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("would read"))
        .collect();
    assert_eq!(reads.len(), 1, "{text}");
    assert!(
        reads[0].contains("changed") && reads[0].contains(" 80000 "),
        "{text}"
    );
    assert!(reads[0].ends_with(&src.join("dir/two").display().to_string()));
    assert!(text.contains("nothing was written"), "{text}");
    assert_eq!(env.snapshot_ids().len(), 1);
}

#[test]
fn skip_if_unchanged_saves_no_snapshot_when_nothing_changed() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("f"), 1, 10_000);
    let first = id(&env.create(&[&src], &[]));
    // The directories on the way to a source are not sources: a sibling
    // created beside it (every test's tempdir in /tmp) changes their times.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(env.path("sibling"), b"x").unwrap();
    let v = env.create(&[&src], &["--skip-if-unchanged"]);
    assert_eq!(v["skipped"], true, "{v}");
    assert_eq!(id(&v), first, "the parent stands for the sources");
    assert_eq!(env.snapshot_ids(), std::slice::from_ref(&first));
    assert!(files_starting(&env.repo.join("locks"), "").is_empty());
    let text = env.ok([
        "create".as_ref(),
        src.as_os_str(),
        "--skip-if-unchanged".as_ref(),
    ]);
    assert!(text.contains("nothing changed since snapshot"), "{text}");
    // A change makes a snapshot.
    write_random(&src.join("g"), 2, 100);
    let v = env.create(&[&src], &["--skip-if-unchanged"]);
    assert!(v.get("skipped").is_none(), "{v}");
    assert_ne!(id(&v), first);
    assert_eq!(env.snapshot_ids().len(), 2);
    // Without the flag, an unchanged run still saves a snapshot.
    env.create(&[&src], &[]);
    assert_eq!(env.snapshot_ids().len(), 3);
}
