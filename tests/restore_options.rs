//! `restore` fitted to what is in the target: `--overwrite` (a file that
//! already holds the snapshot's content is not written again, so a restore
//! killed with SIGKILL and run again rewrites nothing it had finished),
//! `--delete` (only inside what is restored), `--dry-run` (changes
//! nothing, says what it would do), `SNAP:SUBPATH` and
//! `--strip-components`. Trees are compared by the tests' own walk.

#![cfg(feature = "failpoints")]

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::walk::{differences, walk, Walk};
use common::*;

/// Source mtimes: a fixed second, so "newer" and "older" are clear.
const T: i64 = 1_600_000_000;

/// (inode, mtime, ctime) of a file.
type Stamp = (u64, (i64, i64), (i64, i64));

/// The [`Stamp`] of every regular file below `root` by relative path,
/// leaving out restore's temporary names.
fn inodes(root: &Path) -> BTreeMap<Vec<u8>, Stamp> {
    walk(root)
        .entries
        .into_iter()
        .filter(|(rel, e)| e.kind == common::walk::Kind::File && !is_temp(rel))
        .map(|(rel, _)| {
            let m = fs::symlink_metadata(root.join(OsStr::from_bytes(&rel))).unwrap();
            let v = (
                m.ino(),
                (m.mtime(), m.mtime_nsec()),
                (m.ctime(), m.ctime_nsec()),
            );
            (rel, v)
        })
        .collect()
}

fn is_temp(rel: &[u8]) -> bool {
    let name = rel.rsplit(|&b| b == b'/').next().unwrap();
    name.starts_with(b".") && name.windows(10).any(|w| w == b".snap-tmp-")
}

/// `snap [--json] restore SNAP --to TO ARGS...`, whatever the outcome.
fn run_restore(env: &Env, json: bool, snap: &str, to: &Path, args: &[&str]) -> Output {
    let mut c = env.cmd();
    if json {
        c.arg("--json");
    }
    c.args(["restore", snap, "--to"])
        .arg(to)
        .args(args)
        .output()
        .unwrap()
}

/// `snap --json restore latest --to TO ARGS...`, asserting success.
fn restore_json(env: &Env, to: &Path, args: &[&str]) -> serde_json::Value {
    let out = run_restore(env, true, "latest", to, args);
    assert_success(&out, &format!("restore {args:?}"));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The walk without the root entry itself (a target's own metadata is
/// not the snapshot's).
fn below(root: &Path) -> Walk {
    let mut w = walk(root);
    w.entries.remove(&Vec::new());
    w
}

fn assert_same(want: &Walk, got: &Walk, what: &str) {
    let d = differences(want, got);
    assert!(d.is_empty(), "{what}:\n{}", d.join("\n"));
}

/// A tree of 120 small files in 6 directories, a hard-link pair, a
/// symlink, every mtime set.
fn many_files(env: &Env) -> PathBuf {
    let src = env.path("src");
    for d in 0..6 {
        for i in 0..20 {
            let p = src.join(format!("d{d}/f{i:02}"));
            write_random(&p, (d * 100 + i) as u64, 200 + i * 37);
        }
    }
    fs::hard_link(src.join("d0/f00"), src.join("d5/link")).unwrap();
    std::os::unix::fs::symlink("f01", src.join("d1/sym")).unwrap();
    let all: Vec<Vec<u8>> = walk(&src).entries.keys().rev().cloned().collect();
    for (i, rel) in all.iter().enumerate() {
        set_mtime(&src.join(OsStr::from_bytes(rel)), T + i as i64, 5);
    }
    src
}

#[test]
fn a_restore_killed_midway_and_run_again_rewrites_nothing_it_had_finished() {
    let env = Env::new();
    let src = many_files(&env);
    env.create(&[&src], &[]);
    let to = env.path("out");
    // Windows of 10 entries; SIGKILL at the 60th chunk written.
    let out = env
        .cmd()
        .env("SNAP_TEST_RESTORE_WINDOW", "10,10")
        .env("SNAP_FAILPOINTS", "restore.after_write=60*abort")
        .args(["restore", "latest", "--to"])
        .arg(&to)
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", stderr(&out));
    let dest = restored(&to, &src);
    let before = inodes(&dest);
    assert!(
        before.len() >= 30 && before.len() < 120,
        "the kill came mid-way: {} files in place",
        before.len()
    );
    let r = restore_json(&env, &to, &[]);
    assert_same(&walk(&src), &walk(&dest), "the resumed restore differs");
    let after = inodes(&dest);
    // Linking the second name of `d0/f00` changes its ctime, if that was
    // not made before the kill.
    let link_made = before.contains_key(b"d5/link".as_slice());
    for (rel, was) in &before {
        let mut now = *after.get(rel).expect("still there");
        if rel == b"d0/f00" && !link_made {
            now.2 = was.2;
        }
        assert_eq!(
            now,
            *was,
            "{}: rewritten (inode, mtime, ctime)",
            common::walk::show(rel)
        );
    }
    // 120 names plus the link's second name.
    assert_eq!(num(&r, "files"), 121, "{r}");
    assert!(num(&r, "files_unchanged") >= before.len() as u64, "{r}");
    assert_eq!(
        num(&r, "files_written") + num(&r, "files_unchanged"),
        121,
        "{r}"
    );
    assert!(num(&r, "stale_temps_removed") <= 2, "{r}");
    // Once more: nothing at all is written, not even the symlink.
    let again = inodes(&dest);
    let sym = || fs::symlink_metadata(dest.join("d1/sym")).unwrap();
    let sym_before = (sym().ino(), sym().ctime(), sym().ctime_nsec());
    let r = restore_json(&env, &to, &[]);
    assert_eq!((num(&r, "files_written"), num(&r, "bytes")), (0, 0), "{r}");
    assert_eq!(num(&r, "packs_read"), 0, "{r}");
    assert_eq!(inodes(&dest), again);
    assert_eq!((sym().ino(), sym().ctime(), sym().ctime_nsec()), sym_before);
}

/// The names of the overwrite test, and what each is in the target.
const NAMES: [&str; 6] = ["changed", "same", "newer", "older", "meta", "new"];

/// A snapshot of six files of 5,000 bytes at time T (mode 0644), and a
/// target holding: `changed` (other content, same size and mtime),
/// `same` (as the snapshot's), `newer` and `older` (other content,
/// mtime T+1000 and T-1000), `meta` (the snapshot's content, mode 0600,
/// mtime T-500); `new` is missing.
fn overwrite_case(env: &Env, mode: &str) -> (PathBuf, PathBuf) {
    let src = env.path(&format!("src-{mode}"));
    for (i, n) in NAMES.iter().enumerate() {
        let p = src.join(n);
        write_random(&p, i as u64, 5000);
        chmod(&p, 0o644);
        set_mtime(&p, T, 0);
    }
    env.create(&[&src], &[]);
    let to = env.path(&format!("out-{mode}"));
    restore_json(env, &to, &["--overwrite", "always"]);
    let d = restored(&to, &src);
    write_random(&d.join("changed"), 99, 5000);
    set_mtime(&d.join("changed"), T, 0);
    write_random(&d.join("newer"), 98, 4000);
    set_mtime(&d.join("newer"), T + 1000, 0);
    write_random(&d.join("older"), 97, 6000);
    set_mtime(&d.join("older"), T - 1000, 0);
    chmod(&d.join("meta"), 0o600);
    set_mtime(&d.join("meta"), T - 500, 0);
    fs::remove_file(d.join("new")).unwrap();
    (src, d)
}

#[test]
fn each_overwrite_mode_replaces_what_it_says() {
    let env = Env::new();
    // (mode, names rewritten, names left as they were, names left with
    // the snapshot's content and their metadata set)
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            "always",
            &["changed", "same", "newer", "older", "meta"],
            &[],
            &[],
        ),
        (
            "if-changed",
            &["changed", "newer", "older"],
            &[],
            &["same", "meta"],
        ),
        // `same` has the snapshot's mtime: not older, so kept unread.
        (
            "if-newer",
            &["older"],
            &["changed", "newer", "same"],
            &["meta"],
        ),
        (
            "never",
            &[],
            &["changed", "same", "newer", "older", "meta"],
            &[],
        ),
    ];
    for (mode, rewritten, kept, unchanged) in cases {
        let (src, d) = overwrite_case(&env, mode);
        let before = inodes(&d);
        let wanted = walk(&src);
        let had = walk(&d);
        let mut args = vec!["--overwrite", mode];
        if mode == "if-changed" {
            args.clear(); // the default
        }
        let to = env.path(&format!("out-{mode}"));
        let r = restore_json(&env, &to, &args);
        let after = inodes(&d);
        let now = walk(&d);
        let name = |n: &str| n.as_bytes().to_vec();
        for n in rewritten {
            assert_ne!(
                before[&name(n)].0,
                after[&name(n)].0,
                "{mode}: {n} not rewritten"
            );
            assert_eq!(
                now.entries[&name(n)],
                wanted.entries[&name(n)],
                "{mode}: {n}"
            );
        }
        for n in kept {
            assert_eq!(before[&name(n)], after[&name(n)], "{mode}: {n} touched");
            assert_eq!(now.entries[&name(n)], had.entries[&name(n)], "{mode}: {n}");
        }
        for n in unchanged {
            assert_eq!(
                before[&name(n)].0,
                after[&name(n)].0,
                "{mode}: {n} rewritten"
            );
            assert_eq!(
                now.entries[&name(n)],
                wanted.entries[&name(n)],
                "{mode}: {n}"
            );
        }
        if unchanged.contains(&"same") {
            // Nothing about it differed: not even its ctime changed.
            assert_eq!(before[&name("same")], after[&name("same")], "{mode}");
        }
        // The missing one is made in every mode.
        assert_eq!(now.entries[&name("new")], wanted.entries[&name("new")]);
        assert_eq!(
            (
                num(&r, "files_written"),
                num(&r, "files_unchanged"),
                num(&r, "files_kept")
            ),
            (
                rewritten.len() as u64 + 1,
                unchanged.len() as u64,
                kept.len() as u64
            ),
            "{mode}: {r}"
        );
    }
}

/// A snapshot of `src` holding `a/` (files, `a/sub/`, a log) and `b/`,
/// and a target restored from it.
fn two_dirs(env: &Env) -> PathBuf {
    let src = env.path("src");
    write_random(&src.join("a/one"), 1, 3000);
    write_random(&src.join("a/x.log"), 2, 100);
    write_random(&src.join("a/sub/two"), 3, 3000);
    write_random(&src.join("b/three"), 4, 3000);
    write_random(&src.join("top"), 5, 10);
    env.create(&[&src], &[]);
    src
}

fn put(p: &Path) {
    write_random(p, 42, 77);
}

#[test]
fn delete_removes_extras_only_inside_what_is_restored() {
    let env = Env::new();
    let src = two_dirs(&env);
    let a = format!("latest:{}", src.join("a").display());
    // SNAP:SUBPATH into out/a, beside a sibling out/b it must not touch.
    let out = env.path("out");
    let sibling = out.join("b");
    put(&sibling.join("keep"));
    put(&out.join("a/extra"));
    put(&out.join("a/sub/extra2"));
    put(&out.join("a/gone/deep/x"));
    put(&out.join("a/other.log")); // excluded below: kept
    let sib_before = walk(&sibling);
    let sib_inodes = inodes(&sibling);
    let o = run_restore(
        &env,
        true,
        &a,
        &out.join("a"),
        &["--delete", "--exclude", "*.log", "--exclude", "/nothing"],
    );
    assert_success(&o, "restore --delete");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // extra, sub/extra2, gone (with what is in it): three names.
    assert_eq!(num(&r, "deleted"), 3, "{r}");
    assert!(
        out.join("a/other.log").exists(),
        "an excluded name was deleted"
    );
    fs::remove_file(out.join("a/other.log")).unwrap();
    let mut want = below(&src.join("a"));
    want.entries.remove(b"x.log".as_slice());
    assert_same(&want, &below(&out.join("a")), "out/a differs from src/a");
    assert_same(&sib_before, &walk(&sibling), "the sibling changed");
    assert_eq!(sib_inodes, inodes(&sibling));

    // With --include, only what the selection restores: an extra in `b`
    // (in the snapshot, not selected) and in the target itself stay.
    let to = env.path("out2");
    env.restore("latest", &to);
    let d = restored(&to, &src);
    put(&d.join("a/extra"));
    put(&d.join("b/extra"));
    put(&d.join("extra"));
    put(&to.join("outside"));
    let pattern = format!("{}/**", src.join("a").display());
    let r = restore_json(&env, &to, &["--delete", "--include", &pattern]);
    assert_eq!(num(&r, "deleted"), 1, "{r}");
    assert!(!d.join("a/extra").exists());
    for kept in [d.join("b/extra"), d.join("extra"), to.join("outside")] {
        assert!(kept.exists(), "{} deleted", kept.display());
    }
    // The whole snapshot: everything not in it goes, the target stays.
    let r = restore_json(&env, &to, &["--delete"]);
    assert!(to.is_dir());
    assert_eq!(num(&r, "deleted"), 3, "{r}");
    assert_same(&walk(&src), &walk(&d), "the restore differs");
    let tops: Vec<_> = fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(tops, [src.components().nth(1).unwrap().as_os_str()]);
}

#[test]
fn dry_run_changes_nothing_and_lists_what_it_would_do() {
    let env = Env::new();
    let src = two_dirs(&env);
    let to = env.path("out");
    env.restore("latest", &to);
    let d = restored(&to, &src);
    write_random(&d.join("a/one"), 77, 3000); // changed
    fs::remove_file(d.join("b/three")).unwrap(); // missing
    put(&d.join("a/extra"));
    let before = walk(&to);
    let before_inodes = inodes(&to);
    let o = run_restore(&env, true, "latest", &to, &["--dry-run", "--delete"]);
    assert_success(&o, "restore --dry-run");
    assert_same(&before, &walk(&to), "a dry run changed the target");
    assert_eq!(before_inodes, inodes(&to));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["dry_run"], true, "{r}");
    let shown = |p: &Path| p.display().to_string();
    let action = |path: &Path| -> String {
        let hits: Vec<&serde_json::Value> = r["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["path"] == shown(path).as_str())
            .collect();
        assert_eq!(hits.len(), 1, "{}: {r}", path.display());
        hits[0]["action"].as_str().unwrap().to_string()
    };
    assert_eq!(action(&d.join("a/one")), "write");
    assert_eq!(action(&d.join("b/three")), "write");
    assert_eq!(action(&d.join("a/sub/two")), "unchanged");
    assert_eq!(action(&d.join("a/extra")), "delete");
    assert_eq!(
        (
            num(&r, "files_written"),
            num(&r, "files_unchanged"),
            num(&r, "deleted")
        ),
        (2, 3, 1),
        "{r}"
    );
    // Text: a line per action, and the target is not made.
    let fresh = env.path("never-made");
    let o = run_restore(&env, false, "latest", &fresh, &["-n"]);
    assert_success(&o, "restore -n");
    assert!(!fresh.exists(), "a dry run made the target");
    let text = stdout(&o);
    let line = format!("write     {}", shown(&restored(&fresh, &src).join("a/one")));
    assert!(text.lines().any(|l| l == line), "{text}");
    assert!(text.contains("nothing was changed"), "{text}");
}

#[test]
fn a_subpath_and_strip_components_give_the_tree_below() {
    let env = Env::new();
    let src = two_dirs(&env);
    // SNAP:SUBPATH: the contents of a/, without the directories above.
    let out = env.path("sub");
    let o = run_restore(
        &env,
        false,
        &format!("latest:{}", src.join("a").display()),
        &out,
        &[],
    );
    assert_success(&o, "restore SNAP:SUBPATH");
    assert_same(&below(&src.join("a")), &below(&out), "SNAP:SUBPATH");
    // Patterns are then relative to SUBPATH.
    let out = env.path("sub-include");
    let o = run_restore(
        &env,
        false,
        &format!("latest:{}", src.display()),
        &out,
        &["--include", "/a/sub/**"],
    );
    assert_success(&o, "restore SNAP:SUBPATH --include");
    let got: Vec<Vec<u8>> = below(&out).entries.into_keys().collect();
    assert_eq!(
        got,
        [b"a".to_vec(), b"a/sub".to_vec(), b"a/sub/two".to_vec()]
    );
    // Stripping the source's own names: its contents.
    let n = src.components().count() - 1;
    let out = env.path("strip");
    restore_json(&env, &out, &["--strip-components", &n.to_string()]);
    assert_same(&below(&src), &below(&out), "--strip-components {n}");
    // One more: a/ and b/ merge into the target, `top` is left out.
    let out = env.path("strip1");
    restore_json(&env, &out, &["--strip-components", &(n + 1).to_string()]);
    let mut want = below(&src.join("a"));
    for (rel, e) in below(&src.join("b")).entries {
        want.entries.insert(rel, e);
    }
    assert_same(&want, &below(&out), "--strip-components {n}+1");
    assert!(!out.join("top").exists());
}

#[test]
fn a_bad_subpath_is_one_line_and_fails() {
    let env = Env::new();
    let src = two_dirs(&env);
    for (sub, code_want) in [(src.join("nope"), 1), (src.join("top"), 2)] {
        let to = env.path("out");
        let o = run_restore(&env, false, &format!("latest:{}", sub.display()), &to, &[]);
        assert_eq!(code(&o), code_want, "{}", stderr(&o));
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("snap:")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].contains(&sub.display().to_string()), "{err}");
        assert!(!to.exists(), "the target was made");
    }
}

#[test]
fn a_hard_link_in_the_target_to_a_file_elsewhere_is_replaced_not_changed() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("f"), 1, 4000);
    chmod(&src.join("f"), 0o644);
    env.create(&[&src], &[]);
    let to = env.path("out");
    env.restore("latest", &to);
    // Someone puts a hard link to a file outside, with the same content
    // and other metadata, where `f` goes.
    let outside = env.path("outside");
    write_random(&outside, 1, 4000);
    chmod(&outside, 0o600);
    set_mtime(&outside, T, 0);
    let f = restored(&to, &src).join("f");
    fs::remove_file(&f).unwrap();
    fs::hard_link(&outside, &f).unwrap();
    let before = fs::metadata(&outside).unwrap();
    assert_eq!(before.nlink(), 2);
    let r = restore_json(&env, &to, &[]);
    assert_eq!(num(&r, "files_written"), 1, "{r}");
    // (Its ctime changes: it lost a name.)
    let now = fs::metadata(&outside).unwrap();
    assert_eq!(
        (now.mode(), now.mtime(), now.mtime_nsec(), now.nlink()),
        (before.mode(), before.mtime(), before.mtime_nsec(), 1),
        "the file outside was changed"
    );
    assert_ne!(fs::metadata(&f).unwrap().ino(), now.ino());
    assert_same(&walk(&src), &walk(&restored(&to, &src)), "the restore");
}
