//! `snap diff` through the real binary: two snapshots, and a snapshot
//! against the live tree. The expected changes come from std::fs scans of
//! the source tree taken when each snapshot was made (and now), compared
//! here without snap code.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// The changes a diff must report between two scans of `root`, by
/// absolute path: `+`, `-`, `T`, `M` and (with `metadata`) `U`.
fn expected(
    root: &Path,
    before: &BTreeMap<PathBuf, Meta>,
    after: &BTreeMap<PathBuf, Meta>,
    metadata: bool,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let abs = |rel: &Path| {
        if rel.as_os_str().is_empty() {
            root.display().to_string()
        } else {
            root.join(rel).display().to_string()
        }
    };
    for (p, b) in before {
        match after.get(p) {
            None => {
                out.insert(abs(p), "-".to_string());
            }
            Some(a) if a.kind != b.kind => {
                out.insert(abs(p), "T".to_string());
            }
            Some(a) => {
                let content = a.content != b.content || a.link != b.link || a.rdev != b.rdev;
                let meta = a.mode != b.mode
                    || a.uid != b.uid
                    || a.gid != b.gid
                    || a.mtime != b.mtime
                    || a.xattrs != b.xattrs;
                if content {
                    out.insert(abs(p), "M".to_string());
                } else if metadata && meta {
                    out.insert(abs(p), "U".to_string());
                }
            }
        }
    }
    for p in after.keys() {
        if !before.contains_key(p) {
            out.insert(abs(p), "+".to_string());
        }
    }
    out
}

/// The (path, modifier) pairs of a `diff --json` report at or below `root`.
fn reported(v: &Value, root: &Path) -> BTreeMap<String, String> {
    let root = root.display().to_string();
    v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["modifier"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(p, _)| *p == root || p.starts_with(&format!("{root}/")))
        .collect()
}

fn snap_id(v: &Value) -> String {
    v["snapshot"].as_str().unwrap().to_string()
}

/// A source tree with files, a directory, a symlink and a file that will
/// become a directory.
fn populate(src: &Path) {
    write_random(&src.join("same"), 1, 100_000);
    write_random(&src.join("edit"), 2, 50_000);
    write_random(&src.join("gone"), 3, 7_000);
    write_random(&src.join("dir/inner"), 4, 3_000);
    write_random(&src.join("dir/sub/deep"), 5, 1_000);
    fs::write(src.join("kind"), "a file for now").unwrap();
    fs::write(src.join("chmod"), "mode changes").unwrap();
    symlink("same", src.join("link")).unwrap();
}

#[test]
fn diff_of_two_snapshots_matches_the_file_system() {
    let env = Env::new();
    let src = env.path("src");
    populate(&src);
    let s1 = snap_id(&env.create(&[&src], &[]));
    let before = scan(&src);

    write_random(&src.join("edit"), 22, 50_000); // same size, new content
    fs::remove_file(src.join("gone")).unwrap();
    fs::remove_dir_all(src.join("dir/sub")).unwrap();
    write_random(&src.join("new/file"), 6, 12_345);
    fs::remove_file(src.join("kind")).unwrap();
    fs::create_dir(src.join("kind")).unwrap();
    fs::write(src.join("kind/child"), "inside").unwrap();
    fs::remove_file(src.join("link")).unwrap();
    symlink("edit", src.join("link")).unwrap();
    chmod(&src.join("chmod"), 0o600);
    let s2 = snap_id(&env.create(&[&src], &[]));
    let after = scan(&src);

    let v = env.json(["diff", &s1, &s2]);
    assert_eq!(
        reported(&v, &src),
        expected(&src, &before, &after, false),
        "{v:#}"
    );
    // Nothing outside the source is reported.
    assert_eq!(
        v["changes"].as_array().unwrap().len(),
        reported(&v, &src).len(),
        "{v:#}"
    );
    let st = &v["stats"];
    let files = |m: &BTreeMap<PathBuf, Meta>, p: &str| m.get(Path::new(p)).unwrap().size;
    assert_eq!(num(st, "files_added"), 2, "{st}"); // new/file, kind/child
    assert_eq!(num(st, "files_removed"), 2, "{st}"); // gone, dir/sub/deep
    assert_eq!(num(st, "files_changed"), 1, "{st}");
    assert_eq!(num(st, "dirs_added"), 1, "{st}");
    assert_eq!(num(st, "dirs_removed"), 1, "{st}");
    assert_eq!(num(st, "type_changed"), 1, "{st}");
    assert_eq!(
        num(st, "bytes_added"),
        files(&after, "new/file") + files(&after, "kind/child")
    );
    assert_eq!(
        num(st, "bytes_removed"),
        files(&before, "gone") + files(&before, "dir/sub/deep")
    );
    let edit = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == src.join("edit").display().to_string())
        .unwrap();
    assert_eq!(num(edit, "size_before"), 50_000);
    assert_eq!(num(edit, "size_after"), 50_000);

    // --metadata adds the mode and mtime changes.
    let v = env.json(["diff", "--metadata", &s1, &s2]);
    let want = expected(&src, &before, &after, true);
    assert_eq!(reported(&v, &src), want, "{v:#}");
    assert_eq!(want[&src.join("chmod").display().to_string()], "U");

    // The text form is restic's: modifier, path, a slash after directories.
    let text = env.ok(["diff", &s1, &s2]);
    let line = |m: &str, p: &str| format!("{m:<5}{}", src.join(p).display());
    for l in [
        line("+", "new/"),
        line("+", "new/file"),
        line("-", "gone"),
        line("-", "dir/sub/"),
        line("M", "edit"),
        line("M", "link"),
        line("T", "kind/"),
    ] {
        assert!(text.lines().any(|t| t == l), "no line {l:?} in:\n{text}");
    }
    assert!(text.starts_with(&format!(
        "comparing snapshot {} to snapshot {}:",
        &s1[..8],
        &s2[..8]
    )));
    assert!(
        text.contains("Files:         2 new,     2 removed,     1 changed"),
        "{text}"
    );

    // The same snapshot on both sides: nothing.
    let v = env.json(["diff", "--metadata", &s2, &s2]);
    assert_eq!(v["changes"].as_array().unwrap().len(), 0, "{v}");
}

#[test]
fn diff_against_the_live_tree_reads_only_what_may_have_changed() {
    let env = Env::new();
    let src = env.path("src");
    populate(&src);
    let s1 = snap_id(&env.create(&[&src], &[]));
    let before = scan(&src);

    // Rewritten with the same bytes: new mtime, same content.
    let same = fs::read(src.join("same")).unwrap();
    fs::write(src.join("same"), &same).unwrap();
    set_mtime(&src.join("same"), 1_600_000_000, 0);
    // New bytes of the same size under the old mtime: only reading tells.
    let m = fs::symlink_metadata(src.join("edit")).unwrap();
    let mtime = filetime::FileTime::from_last_modification_time(&m);
    write_random(&src.join("edit"), 99, 50_000);
    filetime::set_file_mtime(src.join("edit"), mtime).unwrap();
    fs::remove_file(src.join("gone")).unwrap();
    write_random(&src.join("dir/added"), 7, 4_321);
    fs::write(src.join("scratch.tmp"), "excluded").unwrap();
    let now = scan(&src);

    let v = env.json(["diff", &s1, src.to_str().unwrap(), "--exclude", "*.tmp"]);
    let mut want = expected(&src, &before, &now, false);
    want.remove(&src.join("scratch.tmp").display().to_string());
    assert_eq!(reported(&v, &src), want, "{v:#}");
    assert_eq!(want[&src.join("edit").display().to_string()], "M");
    assert!(!want.contains_key(&src.join("same").display().to_string()));
    assert_eq!(v["to"]["path"], src.display().to_string());
    assert_eq!(v["from"]["id"].as_str().unwrap(), s1);

    let v = env.json(["diff", "--metadata", &s1, src.to_str().unwrap()]);
    let want = expected(&src, &before, &now, true);
    assert_eq!(reported(&v, &src), want, "{v:#}");
    assert_eq!(want[&src.join("same").display().to_string()], "U");

    // A subdirectory, given relative to the working directory.
    let out = env
        .cmd()
        .current_dir(&src)
        .args(["--json", "diff", &s1, "./dir"])
        .output()
        .unwrap();
    assert_success(&out, "diff ./dir");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, [src.join("dir/added").display().to_string()]);

    // A path the snapshot does not hold is an error naming it.
    let out = env.run(["diff", &s1, "/nonexistent/x"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("/nonexistent/x"), "{}", stderr(&out));
}
