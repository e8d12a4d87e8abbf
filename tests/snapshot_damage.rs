//! One damaged snapshot never blocks the rest of the repository: listing,
//! `restore latest` and `create` skip a snapshot object that does not
//! verify (with a warning naming it), `forget` removes it, and `prune`
//! refuses with a message naming it and saying what to do until it is gone.
//! The same for snapshots whose trees cannot be read (v0.1 could commit a
//! tree node named `..`; a lost tree pack).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

fn snapshot_file(env: &Env, id: &str) -> PathBuf {
    env.repo.join("snapshots").join(id)
}

fn flip_byte(p: &Path, at: usize) {
    let mut b = fs::read(p).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x40;
    fs::write(p, b).unwrap();
}

fn files_under(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(files_under(&p));
        } else {
            v.push(p);
        }
    }
    v.sort();
    v
}

#[test]
fn a_corrupt_snapshot_object_is_skipped_forgettable_and_blocks_only_prune() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        fs::write(src.join("v"), format!("version {i}")).unwrap();
        let t = format!("2026-04-0{}T00:00:00Z", i + 1);
        let r = env.create(&[&src], &["--time", &t]);
        ids.push(r["snapshot"].as_str().unwrap().to_string());
    }
    let bad = ids[2].clone();
    flip_byte(&snapshot_file(&env, &bad), 40);
    let short = &bad[..8];

    // snapshots: the others, and a warning naming the damaged one.
    let out = env.run(["--json", "snapshots"]);
    assert_success(&out, "snapshots");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[0].as_str(), ids[1].as_str()]);
    let err = stderr(&out);
    assert!(err.contains(short) && err.contains("forget"), "{err}");

    // restore latest: the newest readable snapshot, with the warning.
    let to = env.path("out");
    let out = env.run([
        "restore".as_ref(),
        "latest".as_ref(),
        "--to".as_ref(),
        to.as_os_str(),
    ]);
    assert_success(&out, "restore latest");
    assert!(stderr(&out).contains(short), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(restored(&to, &src).join("v")).unwrap(),
        "version 1"
    );
    // Selecting it by id is an error that says it is damaged.
    let out = env.run(["dump".as_ref(), short.as_ref(), src.join("v").as_os_str()]);
    assert_eq!(code(&out), 11, "{}", stderr(&out));
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));

    // create: saved (exit 0, not incomplete), warning naming it.
    fs::write(src.join("v"), "version 3").unwrap();
    let out = env.run(["create".as_ref(), src.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains(short), "{}", stderr(&out));

    // prune refuses, naming it and the way out; nothing is removed.
    let before = fingerprint(&env.repo.join("data"));
    let out = env.run(["prune", "--keep-last", "1"]);
    assert_eq!(code(&out), 11, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(short) && err.contains("snap forget") && err.contains("repair snapshots"),
        "{err}"
    );
    assert_eq!(before, fingerprint(&env.repo.join("data")));
    assert_eq!(env.snapshot_ids().len(), 3);

    // forget removes it (by a prefix of its name).
    let out = env.run(["forget", &bad[..10]]);
    assert_success(&out, "forget the damaged snapshot");
    assert!(!snapshot_file(&env, &bad).exists());
    let out = env.run(["snapshots"]);
    assert_success(&out, "snapshots");
    assert!(!stderr(&out).contains(short));
    // Now prune works, and the repository is clean.
    env.ok(["prune", "--keep-last", "1"]);
    env.ok(["check", "--read-data"]);
    assert_eq!(env.snapshot_ids().len(), 1);
}

/// The fixture of tests/fixtures/dotdot-v0.1, copied into a fresh temp dir.
fn v01_fixture(env: &Env) -> PathBuf {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dotdot-v0.1");
    let to = env.path("v01");
    for f in files_under(&from) {
        let rel = f.strip_prefix(&from).unwrap();
        if rel == Path::new("README.md") {
            continue;
        }
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(&f, &dest).unwrap();
    }
    to
}

#[test]
fn prune_names_a_v01_snapshot_with_a_dotdot_node_and_says_what_to_do() {
    let env = Env::new();
    let repo = v01_fixture(&env);
    let run = |args: &[&str]| {
        env.cmd()
            .env("SNAP_REPO", &repo)
            .args(args)
            .output()
            .unwrap()
    };
    let before = fingerprint(&repo.join("data"));
    for args in [
        &["prune", "--keep-last", "5"][..],
        &["prune", "--dry-run"][..],
    ] {
        let out = run(args);
        assert_eq!(code(&out), 11, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("238d16bd") && err.contains("snap forget 238d16bd"),
            "{args:?}: {err}"
        );
        // The good snapshot is not blamed.
        assert!(!err.contains("6b754c39"), "{err}");
        assert_eq!(before, fingerprint(&repo.join("data")));
    }
    assert_success(&run(&["forget", "238d16bd"]), "forget");
    assert_success(&run(&["prune"]), "prune after forget");
    assert_success(&run(&["check", "--read-data"]), "check");
    let to = env.path("out");
    let out = run(&["restore", "6b754c39", "--to", to.to_str().unwrap()]);
    assert_success(&out, "restore the good snapshot");
    assert_eq!(
        fs::read_to_string(to.join("tmp/snapfx/v01/good/g.txt")).unwrap(),
        "good\n"
    );
}

#[test]
fn prune_names_the_snapshots_of_a_lost_tree_pack() {
    let env = Env::new();
    let a = env.path("a");
    let b = env.path("b");
    write_random(&a.join("big"), 1, 600_000);
    write_random(&b.join("big"), 2, 600_000);
    let sa = env.create(&[&a], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let packs_a: Vec<PathBuf> = env.packs().into_iter().map(|(p, _)| p).collect();
    let sb = env.create(&[&b], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    // The smaller of a's two packs holds its trees.
    let tree_pack = packs_a.last().unwrap().clone();
    fs::remove_file(&tree_pack).unwrap();
    let before = fingerprint(&env.repo.join("data"));
    let out = env.run(["prune"]);
    assert_eq!(code(&out), 11, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&sa[..8]), "{err}");
    assert!(err.contains("snap forget"), "{err}");
    assert!(!err.contains(&sb[..8]), "{err}");
    assert_eq!(before, fingerprint(&env.repo.join("data")));
}
