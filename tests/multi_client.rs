//! Two clients with their own caches on one repository (a local path, a
//! `file://` URL and S3 on a loopback server): whatever one client (or a
//! lost pack, or an old copy of the cache) did to storage, the other's
//! backups must never reference a blob that storage no longer holds. Each
//! scenario ends with `check --read-data` and a restore compared with the
//! source by an independent walk.

mod common;
#[path = "s3common/mod.rs"]
mod s3common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use snap::backend::{Backend, FileKind};

/// Where the repository lives.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Local,
    FileUrl,
    S3,
}

/// A fresh repository of this kind (client A), or `None` when S3 is not
/// available (s3common says so loudly).
fn repo(kind: Kind) -> Option<Env> {
    let extra = ["--chunk-avg-kib", "64"];
    Some(match kind {
        Kind::Local => Env::new(),
        Kind::FileUrl => Env::init_at(
            |t| format!("file://{}", t.join("repo").display()),
            Vec::new(),
            &extra,
        ),
        Kind::S3 => {
            let s = s3common::s3()?;
            Env::init_at(|_| s.url("multi"), s.env.clone(), &extra)
        }
    })
}

/// Direct access to the storage, as an admin (or `sync --delete`) has it.
fn storage(env: &Env, kind: Kind) -> Box<dyn Backend> {
    let loc = env.repo.to_str().unwrap();
    match kind {
        Kind::Local => Box::new(snap::backend::local::LocalBackend::new(loc)),
        Kind::FileUrl => {
            Box::new(snap::backend::object::ObjectBackend::open_with(loc, &[]).unwrap())
        }
        Kind::S3 => Box::new(
            snap::backend::object::ObjectBackend::open_with(
                loc,
                &s3common::s3().unwrap().options(),
            )
            .unwrap(),
        ),
    }
}

/// Random (incompressible) files: 4 x 150 kB and a small one.
const DATA_BYTES: u64 = 4 * 150_000;

fn source(env: &Env) -> PathBuf {
    let src = env.path("src");
    for i in 0..4u64 {
        write_random(&src.join(format!("d{}/f{i}.bin", i % 2)), 100 + i, 150_000);
    }
    fs::write(src.join("small.txt"), b"a small file\n").unwrap();
    src
}

/// `check --read-data` is clean and the newest snapshot restores to `src`.
fn assert_intact(env: &Env, src: &Path, name: &str) {
    let r = env.json(["check", "--read-data"]);
    assert_eq!(r["errors"].as_array().map(Vec::len), Some(0), "check: {r}");
    let to = env.path(name);
    env.restore("latest", &to);
    assert_same_tree(src, &restored(&to, src));
}

fn bytes_added(report: &serde_json::Value) -> u64 {
    num(&report["summary"], "bytes_added")
}

/// Client B backs up, client A forgets everything and prunes, client B
/// backs up the same files again: the data must be stored again.
fn prune_by_another_client(kind: Kind) {
    let Some(a) = repo(kind) else { return };
    let b = a.client("b");
    let src = source(&a);
    b.create(&[&src], &[]);
    let ids = a.snapshot_ids();
    let mut forget = vec!["forget"];
    forget.extend(ids.iter().map(String::as_str));
    a.ok(&forget);
    a.ok(["prune"]);
    assert!(
        storage(&a, kind).list(FileKind::Pack).unwrap().is_empty(),
        "prune deleted every pack"
    );

    let r = b.create(&[&src], &[]);
    assert!(
        bytes_added(&r) >= DATA_BYTES,
        "the second backup stored the data again: {r}"
    );
    assert_intact(&b, &src, "restored-b");
    assert_intact(&a, &src, "restored-a");
}

#[test]
fn prune_by_another_client_local() {
    prune_by_another_client(Kind::Local);
}

#[test]
fn prune_by_another_client_file_url() {
    prune_by_another_client(Kind::FileUrl);
}

#[test]
fn prune_by_another_client_s3() {
    prune_by_another_client(Kind::S3);
}

/// Data packs lost from storage (a `sync --delete` into the repository, a
/// power cut) while the parent snapshot's trees survive: unchanged files
/// must not reuse the parent's chunks.
fn lost_data_packs_under_an_intact_parent(kind: Kind) {
    let Some(env) = repo(kind) else { return };
    let src = source(&env);
    env.create(&[&src], &[]);
    let st = storage(&env, kind);
    let mut lost = 0;
    for (name, size) in st.list(FileKind::Pack).unwrap() {
        // Tree packs are a few hundred bytes; data packs hold the files.
        if size > 50_000 {
            st.delete(FileKind::Pack, &name).unwrap();
            lost += 1;
        }
    }
    assert!(lost > 0);

    let r = env.create(&[&src], &[]);
    assert_eq!(
        r["parent"].as_str().map(str::len),
        Some(64),
        "the parent's trees survived, so it is the parent: {r}"
    );
    assert!(
        bytes_added(&r) >= DATA_BYTES,
        "unchanged files were read and stored again: {r}"
    );
    // The first snapshot lost its data for good; the new one is complete.
    let first = env.snapshot_ids()[0].clone();
    env.ok(["forget", &first]);
    assert_intact(&env, &src, "restored");
}

#[test]
fn lost_data_packs_under_an_intact_parent_local() {
    lost_data_packs_under_an_intact_parent(Kind::Local);
}

#[test]
fn lost_data_packs_under_an_intact_parent_file_url() {
    lost_data_packs_under_an_intact_parent(Kind::FileUrl);
}

#[test]
fn lost_data_packs_under_an_intact_parent_s3() {
    lost_data_packs_under_an_intact_parent(Kind::S3);
}

/// Every pack removed (`rm -r data/`): the next create reads and stores
/// everything instead of "adding 412 B".
fn all_packs_removed(kind: Kind) {
    let Some(env) = repo(kind) else { return };
    let src = source(&env);
    env.create(&[&src], &[]);
    match kind {
        Kind::S3 => {
            let st = storage(&env, kind);
            for (name, _) in st.list(FileKind::Pack).unwrap() {
                st.delete(FileKind::Pack, &name).unwrap();
            }
        }
        _ => fs::remove_dir_all(env.path("repo/data")).unwrap(),
    }
    let r = env.create(&[&src], &[]);
    assert!(
        bytes_added(&r) >= DATA_BYTES,
        "everything was stored again: {r}"
    );
    let first = env.snapshot_ids()[0].clone();
    env.ok(["forget", &first]);
    assert_intact(&env, &src, "restored");
}

#[test]
fn all_packs_removed_local() {
    all_packs_removed(Kind::Local);
}

#[test]
fn all_packs_removed_file_url() {
    all_packs_removed(Kind::FileUrl);
}

#[test]
fn all_packs_removed_s3() {
    all_packs_removed(Kind::S3);
}

/// The database files of a client's index (`index.sqlite` and its WAL).
fn index_files(env: &Env) -> Vec<PathBuf> {
    let dir = env.cache_dir();
    let mut out: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("index.sqlite")
        })
        .collect();
    out.sort();
    out
}

/// A client's index restored from an old copy (a backup of the home
/// directory, a VM snapshot) names packs that a prune elsewhere deleted.
fn index_restored_from_an_old_copy(kind: Kind) {
    let Some(a) = repo(kind) else { return };
    let b = a.client("b");
    let src = source(&a);
    b.create(&[&src], &[]);
    let aside = a.path("index-copy");
    fs::create_dir_all(&aside).unwrap();
    let files = index_files(&b);
    assert!(
        files.iter().any(|p| p.ends_with("index.sqlite")),
        "{files:?}"
    );
    for f in &files {
        fs::copy(f, aside.join(f.file_name().unwrap())).unwrap();
    }

    let ids = a.snapshot_ids();
    let mut forget = vec!["forget"];
    forget.extend(ids.iter().map(String::as_str));
    a.ok(&forget);
    a.ok(["prune"]);

    for f in index_files(&b) {
        fs::remove_file(f).unwrap();
    }
    for f in fs::read_dir(&aside).unwrap() {
        let f = f.unwrap();
        fs::copy(f.path(), b.cache_dir().join(f.file_name())).unwrap();
    }
    let r = b.create(&[&src], &[]);
    assert!(
        bytes_added(&r) >= DATA_BYTES,
        "the old index was not trusted: {r}"
    );
    assert_intact(&b, &src, "restored");
}

#[test]
fn index_restored_from_an_old_copy_local() {
    index_restored_from_an_old_copy(Kind::Local);
}

#[test]
fn index_restored_from_an_old_copy_file_url() {
    index_restored_from_an_old_copy(Kind::FileUrl);
}

#[test]
fn index_restored_from_an_old_copy_s3() {
    index_restored_from_an_old_copy(Kind::S3);
}

/// Clients B and C have up-to-date indexes; then client A's prune repacks
/// the pack holding the files' chunks. B's restore and C's dump find the
/// pack gone, resync with storage and read the new copy.
fn reads_after_a_repack_elsewhere(kind: Kind) {
    let Some(a) = repo(kind) else { return };
    let (b, c) = (a.client("b"), a.client("c"));
    let src = source(&a);
    a.create(&[&src], &[]);
    fs::remove_file(src.join("d1/f1.bin")).unwrap();
    fs::remove_file(src.join("d1/f3.bin")).unwrap();
    // Every directory changes: the new snapshot shares no tree with the
    // old one, so only data packs are repacked (and trees read fine).
    fs::write(src.join("d0/new.txt"), b"new").unwrap();
    a.create(&[&src], &[]);
    // B and C learn about every pack now.
    b.ok(["ls", "latest"]);
    c.ok(["ls", "latest"]);

    let ids = a.snapshot_ids();
    a.ok(["forget", &ids[0]]);
    let r = a.json(["prune", "--max-unused", "0"]);
    assert!(num(&r["gc"], "packs_repacked") >= 1, "{r}");

    let to = b.path("restored-b");
    b.restore("latest", &to);
    assert_same_tree(&src, &restored(&to, &src));
    let f0 = src.join("d0/f0.bin");
    let out = c.run(["dump", "latest", f0.to_str().unwrap()]);
    assert_success(&out, "dump after the repack");
    assert!(out.stdout == fs::read(&f0).unwrap(), "dump gives the file");
    assert_intact(&b, &src, "restored-b2");
}

#[test]
fn reads_after_a_repack_elsewhere_local() {
    reads_after_a_repack_elsewhere(Kind::Local);
}

#[test]
fn reads_after_a_repack_elsewhere_file_url() {
    reads_after_a_repack_elsewhere(Kind::FileUrl);
}

#[test]
fn reads_after_a_repack_elsewhere_s3() {
    reads_after_a_repack_elsewhere(Kind::S3);
}
