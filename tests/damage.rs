//! Damage is healed, not inherited: a blob found damaged is recorded so the
//! next `create` stores it again; `repair packs` salvages what is intact of a
//! damaged pack and removes it; `repair snapshots` rewrites snapshots around
//! what is lost so that `prune` works again; `restore` restores everything
//! it can. Restored trees are compared with the sources by the tests' own
//! walk (`common::assert_same_tree`), never by snap's code.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const EXIT_DAMAGED: i32 = 11;

/// Pack files in storage.
fn pack_set(env: &Env) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = env.packs().into_iter().map(|(p, _)| p).collect();
    v.sort();
    v
}

/// Packs that appeared since `before`, largest first.
fn new_packs(env: &Env, before: &[PathBuf]) -> Vec<PathBuf> {
    env.packs()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| !before.contains(p))
        .collect()
}

/// `snap ARGS` expecting exit 11; returns stderr.
fn damaged(env: &Env, args: &[&str]) -> String {
    let out = env.run(args);
    let err = stderr(&out);
    assert_eq!(
        code(&out),
        EXIT_DAMAGED,
        "snap {args:?}:\nstdout: {}\nstderr: {err}",
        stdout(&out)
    );
    err
}

fn restore_to(env: &Env, snap: &str, to: &Path) -> std::process::Output {
    env.run([
        "restore".as_ref(),
        snap.as_ref(),
        "--to".as_ref(),
        to.as_os_str(),
    ])
}

/// The recovery advice of `check`, in the order the brief asks for.
fn assert_recovery_advice(err: &str) {
    let packs = err.find("snap repair packs").expect("advises repair packs");
    assert_recovery_advice_from(err, packs);
}

/// The same for packs that are gone (not damaged): nothing to salvage, so
/// no `repair packs`.
fn assert_lost_advice(err: &str) {
    assert!(!err.contains("repair packs"), "{err}");
    let sync = err.find("snap sync --from").expect("advises sync --from");
    assert_recovery_advice_from(err, sync);
}

fn assert_recovery_advice_from(err: &str, packs: usize) {
    let sync = err.find("snap sync --from").expect("advises sync --from");
    let snaps = err
        .find("snap repair snapshots")
        .expect("advises repair snapshots");
    let create = err.find("snap create").expect("advises create again");
    assert!(sync <= packs && packs < snaps && snaps < create, "{err}");
    assert!(
        !err.contains("run `snap check --read-data`"),
        "check must not tell the user to run check: {err}"
    );
}

/// A source with one large file (several chunks) and a small one; one
/// snapshot of it; returns (env, source, snapshot id, its data pack).
fn backed_up() -> (Env, PathBuf, String, PathBuf) {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("victim.bin"), 31, 3 << 20);
    fs::write(src.join("small.txt"), b"small and intact").unwrap();
    let r = env.create(&[&src], &[]);
    // The largest pack holds victim.bin's chunks (trees are tiny).
    let pack = env.packs()[0].0.clone();
    (env, src, r["snapshot"].as_str().unwrap().to_string(), pack)
}

#[test]
fn a_flipped_byte_is_recorded_and_create_full_stores_the_chunk_again() {
    let (env, src, id1, pack) = backed_up();
    // Inside the first sealed blob (blobs start at offset 0, the header is
    // at the end).
    flip_byte(&pack, 100);

    let err = damaged(&env, &["check", "--read-data"]);
    assert!(err.contains("victim.bin"), "names the file: {err}");
    assert!(err.contains(&id1[..8]), "names the snapshot: {err}");
    assert!(!err.contains("small.txt"), "{err}");
    assert_recovery_advice(&err);

    // The record survives a rebuild of the index from the pack headers
    // (whose header still lists the damaged blob).
    env.ok(["repair", "index"]);

    // Today the damaged copy is deduplicated against forever.
    let r = env.create(&[&src], &["--full"]);
    assert!(
        num(&r["summary"], "blobs_added") >= 1,
        "the damaged chunk must be stored again: {r}"
    );
    let t = env.path("r1");
    let out = restore_to(&env, "latest", &t);
    assert_success(&out, "restore latest");
    assert_same_tree(&src, &restored(&t, &src));
    // The old snapshot heals too: its chunk now has an intact copy.
    let t = env.path("r0");
    assert_success(&restore_to(&env, &id1[..8], &t), "restore old");
    assert_same_tree(&src, &restored(&t, &src));

    // The damaged pack is still in storage: check still says so, and
    // `repair packs` removes it, after which all is clean.
    let err = damaged(&env, &["check"]);
    assert!(err.contains("snap repair packs"), "{err}");
    let before = pack_set(&env);
    let dry = env.json(["repair", "packs", "--dry-run"]);
    assert_eq!(pack_set(&env), before, "dry run changed storage: {dry}");
    let rp = env.json(["repair", "packs"]);
    assert_eq!(rp["packs"].as_array().unwrap().len(), 1, "{rp}");
    assert!(!pack.exists(), "damaged pack removed");
    env.ok(["check", "--read-data"]);
    for (snap, dir) in [(&id1[..8], "r2"), ("latest", "r3")] {
        let t = env.path(dir);
        assert_success(&restore_to(&env, snap, &t), "restore");
        assert_same_tree(&src, &restored(&t, &src));
    }
}

#[test]
fn a_damaged_chunk_is_stored_again_for_a_new_file_with_the_same_content() {
    // The dedup of new chunks goes through the index, which no longer
    // counts the damaged copy.
    let (env, src, _, pack) = backed_up();
    flip_byte(&pack, 100);
    damaged(&env, &["check", "--read-data"]);
    let other = env.path("other");
    fs::create_dir_all(&other).unwrap();
    fs::copy(src.join("victim.bin"), other.join("copy.bin")).unwrap();
    let r = env.create(&[&other], &[]);
    assert!(num(&r["summary"], "blobs_added") >= 1, "{r}");
    let t = env.path("r");
    assert_success(&restore_to(&env, "latest", &t), "restore");
    assert_same_tree(&other, &restored(&t, &other));
}

/// Unchanged files reuse the parent's chunk list: each of those chunks must
/// be checked like a new one (the saver's part, done beside this one), so a
/// plain `create` also stores the damaged chunk again.
#[test]
fn plain_create_after_damage_reads_the_unchanged_file_again() {
    let (env, src, _, pack) = backed_up();
    flip_byte(&pack, 100);
    damaged(&env, &["check", "--read-data"]);
    let r = env.create(&[&src], &[]);
    assert!(num(&r["summary"], "blobs_added") >= 1, "{r}");
    let t = env.path("r");
    assert_success(&restore_to(&env, "latest", &t), "restore");
    assert_same_tree(&src, &restored(&t, &src));
}

#[test]
fn a_truncated_pack_is_damaged_whole_and_its_intact_blobs_are_salvaged() {
    let (env, src, id1, pack) = backed_up();
    let len = fs::metadata(&pack).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    // The size alone tells: no data needs to be read.
    let err = damaged(&env, &["check"]);
    assert!(
        err.contains("victim.bin") && err.contains(&id1[..8]),
        "{err}"
    );
    assert_recovery_advice(&err);

    // The first half of the pack is intact: those blobs are salvaged into
    // a new pack, the rest is lost.
    let rp = env.json(["repair", "packs"]);
    let p = &rp["packs"][0];
    assert!(num(p, "copied") >= 1, "{rp}");
    assert!(num(p, "lost") >= 1, "{rp}");
    assert!(!pack.exists());
    let lost = num(p, "lost");

    // A create stores the lost chunks again (and only those).
    let r = env.create(&[&src], &["--full"]);
    let added = num(&r["summary"], "blobs_added");
    assert!(added >= lost, "{r}");
    let t = env.path("r1");
    assert_success(&restore_to(&env, "latest", &t), "restore");
    assert_same_tree(&src, &restored(&t, &src));
    // The old snapshot heals with them.
    let t = env.path("r0");
    assert_success(&restore_to(&env, &id1[..8], &t), "restore old");
    assert_same_tree(&src, &restored(&t, &src));
    env.ok(["check", "--read-data"]);
}

#[test]
fn a_lost_tree_pack_restore_does_what_it_can_and_repair_snapshots_lets_prune_work() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("a/a1.bin"), 41, 200_000);
    write_random(&src.join("b/b1.bin"), 42, 200_000);
    let before = pack_set(&env);
    let id1 = env.create(&[&src], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    // Packs of the first snapshot: its data, then its trees (smaller).
    let first = new_packs(&env, &before);
    assert_eq!(first.len(), 2, "{first:?}");
    let tree_pack1 = first[1].clone();
    // The second snapshot changes only b/: a/'s listing stays in the first
    // tree pack, deduplicated.
    fs::write(src.join("b/b2.txt"), b"second").unwrap();
    let id2 = env.create(&[&src], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    fs::remove_file(&tree_pack1).unwrap();

    // check names both snapshots and says how to recover.
    let err = damaged(&env, &["check"]);
    assert!(err.contains(&id1[..8]) && err.contains(&id2[..8]), "{err}");
    assert_lost_advice(&err);

    // Restore restores b/, names a/ and exits 11.
    let t = env.path("r1");
    let out = restore_to(&env, "latest", &t);
    assert_eq!(code(&out), EXIT_DAMAGED, "{}", stderr(&out));
    let err = stderr(&out);
    let a = restored(&t, &src).join("a");
    assert!(err.contains(&a.display().to_string()), "names a/: {err}");
    assert!(!a.exists(), "a/ must not pass for restored");
    assert_same_tree(&src.join("b"), &restored(&t, &src).join("b"));

    // Dry run: lists, changes nothing.
    let snaps_before = fingerprint(&env.repo.join("snapshots"));
    let data_before = fingerprint(&env.repo.join("data"));
    let out = env.run(["repair", "snapshots", "--forget", "--dry-run"]);
    assert!(stdout(&out).contains("/a"), "{}", stdout(&out));
    assert_eq!(fingerprint(&env.repo.join("snapshots")), snaps_before);
    assert_eq!(fingerprint(&env.repo.join("data")), data_before);

    let rep = env.json(["repair", "snapshots", "--forget"]);
    let list = rep["snapshots"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{rep}");
    let s2 = list
        .iter()
        .find(|s| s["id"].as_str().unwrap() == id2)
        .unwrap();
    let new2 = s2["new_id"].as_str().expect("snapshot 2 was rewritten");
    assert!(
        s2["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains(&a_in_snapshot(&src))),
        "{rep}"
    );
    // Snapshot 1 lost its root listing: nothing to keep; forgotten.
    let s1 = list
        .iter()
        .find(|s| s["id"].as_str().unwrap() == id1)
        .unwrap();
    assert!(s1["new_id"].is_null(), "{rep}");
    assert_eq!(env.snapshot_ids(), vec![new2.to_string()]);

    // The repaired snapshot keeps the original's time, host and paths.
    let rows = env.json(["snapshots"]);
    let row = &rows[0];
    assert!(
        row["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "repaired"),
        "{row}"
    );
    assert_eq!(row["paths"][0].as_str().unwrap(), src.display().to_string());

    env.json(["prune", "--keep-last", "1"]);
    env.ok(["check", "--read-data"]);
    let t = env.path("r2");
    assert_success(&restore_to(&env, "latest", &t), "restore repaired");
    assert_same_tree(&src.join("b"), &restored(&t, &src).join("b"));
    let a = restored(&t, &src).join("a");
    assert!(a.is_dir(), "a/ is kept as an empty directory");
    assert_eq!(fs::read_dir(&a).unwrap().count(), 0);
}

/// How a path of the source appears in a snapshot.
fn a_in_snapshot(src: &Path) -> String {
    src.join("a").display().to_string()
}

#[test]
fn repair_snapshots_keeps_a_file_with_a_lost_chunk_with_zeros_in_its_place() {
    let (env, src, id1, pack) = backed_up();
    let len = fs::metadata(&pack).unwrap().len();
    // A chunk in the middle of victim.bin.
    flip_byte(&pack, len / 2);
    damaged(&env, &["check", "--read-data"]);
    // The files are gone from disk: nothing can store them again.
    let kept = env.path("kept");
    fs::rename(&src, &kept).unwrap();

    // Salvage the pack first, as the docs say; then rewrite the snapshot.
    env.json(["repair", "packs"]);
    let rep = env.json(["repair", "snapshots", "--forget"]);
    let s = &rep["snapshots"][0];
    assert_eq!(s["id"].as_str().unwrap(), id1, "{rep}");
    let changes = s["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{rep}");
    assert!(changes[0].as_str().unwrap().contains("victim.bin"), "{rep}");
    let new_id = s["new_id"].as_str().unwrap().to_string();
    assert_eq!(env.snapshot_ids(), vec![new_id.clone()]);
    let row = &env.json(["snapshots"])[0];
    assert_eq!(row["incomplete"], true, "{row}");

    env.json(["prune"]);
    env.ok(["check", "--read-data"]);
    let t = env.path("r");
    assert_success(&restore_to(&env, "latest", &t), "restore repaired");
    let got = restored(&t, &src);
    assert_eq!(
        fs::read(got.join("small.txt")).unwrap(),
        fs::read(kept.join("small.txt")).unwrap()
    );
    // Same length, and the only differences are zeros, in one stretch no
    // longer than a chunk (512 KiB at most with these settings).
    let want = fs::read(kept.join("victim.bin")).unwrap();
    let have = fs::read(got.join("victim.bin")).unwrap();
    assert_eq!(want.len(), have.len());
    let diff: Vec<usize> = (0..want.len()).filter(|&i| want[i] != have[i]).collect();
    assert!(!diff.is_empty(), "the lost chunk cannot have been restored");
    let (lo, hi) = (diff[0], *diff.last().unwrap());
    assert!(hi - lo < 512 << 10, "{lo}..{hi}");
    assert!(have[lo..=hi].iter().all(|&b| b == 0), "zeros in its place");

    // Nothing left to repair.
    let again = env.json(["repair", "snapshots"]);
    assert!(again["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["new_id"].is_null() && s["changes"].as_array().unwrap().is_empty()));
}

#[test]
fn repair_packs_dry_run_and_named_packs() {
    let (env, src, _, pack) = backed_up();
    // A named pack that is intact is rewritten whole and removed.
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    let before = fingerprint(&env.repo.join("data"));
    let out = env.ok(["repair", "packs", "--dry-run", &name[..12]]);
    assert!(out.contains(&name[..8]), "{out}");
    assert_eq!(fingerprint(&env.repo.join("data")), before);
    let rp = env.json(["repair", "packs", &name[..12]]);
    assert_eq!(num(&rp["packs"][0], "lost"), 0, "{rp}");
    assert!(!pack.exists());
    env.ok(["check", "--read-data"]);
    let t = env.path("r");
    assert_success(&restore_to(&env, "latest", &t), "restore");
    assert_same_tree(&src, &restored(&t, &src));
    // Nothing damaged, nothing named: nothing to do.
    let rp: Value = env.json(["repair", "packs"]);
    assert!(rp["packs"].as_array().unwrap().is_empty(), "{rp}");
}

#[test]
fn damage_found_by_restore_or_a_data_subset_is_recorded_too() {
    for finder in ["restore", "subset"] {
        let (env, src, _, pack) = backed_up();
        flip_byte(&pack, 100);
        match finder {
            "restore" => {
                let t = env.path("first");
                let out = restore_to(&env, "latest", &t);
                assert_eq!(code(&out), EXIT_DAMAGED, "{}", stderr(&out));
                assert!(stderr(&out).contains("victim.bin"), "{}", stderr(&out));
            }
            _ => {
                damaged(&env, &["check", "--read-data-subset", "100%"]);
            }
        }
        let r = env.create(&[&src], &["--full"]);
        assert!(num(&r["summary"], "blobs_added") >= 1, "{finder}: {r}");
        let t = env.path("r");
        assert_success(&restore_to(&env, "latest", &t), finder);
        assert_same_tree(&src, &restored(&t, &src));
    }
}
