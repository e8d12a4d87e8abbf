//! Stray files in a repository's directories (`Thumbs.db`, `.DS_Store`,
//! names that are not hex, not ASCII or not UTF-8) are not objects: every
//! command ignores them with one warning naming them, nothing panics, and
//! `check` does not count them as packs.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::*;

/// Drops junk into every namespace of the local repository at `repo`;
/// returns the names a warning must mention.
fn drop_junk(repo: &Path) -> Vec<String> {
    let put = |rel: &Path| {
        let p = repo.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"not an object").unwrap();
    };
    put(Path::new("data/Thumbs.db"));
    put(Path::new("data/ab/.DS_Store"));
    // Sliced at byte 2 this panicked: 'é' is two bytes.
    put(Path::new("data/aé/aébc"));
    put(Path::new("data/00/0123"));
    put(Path::new("snapshots/Thumbs.db"));
    put(Path::new("snapshots/.DS_Store"));
    put(Path::new("snapshots/ünïcode"));
    put(Path::new("keys/.DS_Store"));
    put(Path::new("keys/readme.txt"));
    put(Path::new("locks/Thumbs.db"));
    let raw = PathBuf::from(OsStr::from_bytes(b"snapshots/bad-\xff-name"));
    put(&raw);
    vec![
        "data/Thumbs.db".into(),
        "data/ab/.DS_Store".into(),
        "data/aé/aébc".into(),
        "data/00/0123".into(),
        "snapshots/Thumbs.db".into(),
        "snapshots/.DS_Store".into(),
        "snapshots/ünïcode".into(),
        "keys/.DS_Store".into(),
        "keys/readme.txt".into(),
        "locks/Thumbs.db".into(),
        "snapshots/bad-".into(),
    ]
}

fn assert_warned_once(what: &str, err: &str, names: &[String]) {
    for n in names {
        assert_eq!(
            err.matches(n.as_str()).count(),
            1,
            "{what}: {n} not named exactly once in:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn junk_in_a_local_repository_is_ignored_with_one_warning() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("f"), 3, 200_000);
    env.create(&[&src], &[]);
    let names = drop_junk(&env.repo);
    // Every namespace but locks/ (which only create and prune list).
    let listed: Vec<String> = names
        .iter()
        .filter(|n| !n.starts_with("locks/"))
        .cloned()
        .collect();
    let data: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with("data/"))
        .cloned()
        .collect();

    for args in [
        &["snapshots"][..],
        &["check", "--read-data"][..],
        &["ls", "latest"][..],
        &["key", "list"][..],
    ] {
        let out = env.run(args);
        assert_success(&out, &format!("{args:?}"));
        let err = stderr(&out);
        // What a command lists, it warns about: snapshots lists snapshots;
        // check lists every namespace.
        if args[0] == "check" {
            assert_warned_once("check", &err, &listed);
            assert!(!err.contains("not in the index"), "{err}");
            assert!(stdout(&out).contains("no errors found"), "{}", stdout(&out));
        } else {
            assert!(
                err.contains("snapshots/Thumbs.db") || args[0] == "key",
                "{args:?}: {err}"
            );
        }
    }
    // `check` counts only real packs.
    let v = env.json(["check"]);
    assert_eq!(
        v["packs"].as_u64().unwrap(),
        env.packs().len() as u64 - 3,
        "{v}"
    );
    assert_eq!(v["errors"].as_array().unwrap().len(), 0, "{v}");

    // create, restore, prune, forget still work.
    write_random(&src.join("g"), 4, 100_000);
    let out = env.run(["create".as_ref(), src.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_warned_once("create", &stderr(&out), &["locks/Thumbs.db".to_string()]);
    let to = env.path("out");
    env.restore("latest", &to);
    assert_same_tree(&src, &restored(&to, &src));
    let out = env.run(["prune", "--keep-last", "1"]);
    assert_success(&out, "prune");
    // Prune lists the packs: the junk there is named once, not taken for a pack.
    assert_warned_once("prune", &stderr(&out), &data);
    assert!(
        !stderr(&out).contains("not in the index"),
        "{}",
        stderr(&out)
    );
    // The junk is not the repository's to delete.
    assert!(env.repo.join("data/Thumbs.db").exists());
    assert!(env.repo.join("snapshots/Thumbs.db").exists());

    // sync copies only objects, and the copy checks clean.
    let mirror = env.path("mirror");
    let out = env.run(["sync".as_ref(), "--to".as_ref(), mirror.as_os_str()]);
    assert_success(&out, "sync --to");
    assert_warned_once("sync", &stderr(&out), &data);
    assert!(!mirror.join("data/Thumbs.db").exists());
    let out = env.run([
        "--repo".as_ref(),
        mirror.as_os_str(),
        "check".as_ref(),
        "--read-data".as_ref(),
    ]);
    assert_success(&out, "check the mirror");
    assert_eq!(stderr(&out), "");
    // And back, with --delete: the junk in the target is not deleted either.
    let out = env.run([
        "sync".as_ref(),
        "--delete".as_ref(),
        "--from".as_ref(),
        mirror.as_os_str(),
    ]);
    assert_success(&out, "sync --from --delete");
    assert!(env.repo.join("data/Thumbs.db").exists());
}

#[test]
fn junk_in_a_file_url_repository_is_ignored_with_one_warning() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("f"), 5, 100_000);
    env.create(&[&src], &[]);
    let dir = env.path("objstore");
    let url = format!("file://{}", dir.display());
    env.ok(["sync", "--to", &url]);
    let names = drop_junk(&dir);
    let listed: Vec<String> = names
        .iter()
        .filter(|n| !n.starts_with("locks/"))
        .cloned()
        .collect();
    let out = env.run(["--repo", &url, "check", "--read-data"]);
    assert_success(&out, "check file://");
    assert_warned_once("check file://", &stderr(&out), &listed);
    let out = env.run(["--repo", &url, "snapshots"]);
    assert_success(&out, "snapshots file://");
    let out = env.run(["sync", "--from", &url]);
    assert_success(&out, "sync --from file://");
}
