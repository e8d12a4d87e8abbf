//! Deduplication and change detection, measured from `create --json`.

mod common;

use std::fs;

use common::*;

/// Upper bound for what a create that stores no file data may add: new
/// directory listings (the temp dir's parents change under us) in one
/// small tree pack.
const METADATA_ONLY: u64 = 64 * 1024;

#[test]
fn unchanged_second_create_adds_almost_nothing() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("a.bin"), 1, 2 << 20);
    write_random(&src.join("sub/b.bin"), 2, 700_000);
    fs::write(src.join("sub/c.txt"), b"small").unwrap();

    let first = env.create(&[&src], &[]);
    let s1 = &first["summary"];
    assert_eq!(num(s1, "files_new"), 3, "{s1}");
    let total = (2 << 20) + 700_000 + 5;
    assert_eq!(num(s1, "bytes_read"), total);
    assert!(
        num(s1, "bytes_added") > total,
        "random data cannot shrink: {s1}"
    );

    let second = env.create(&[&src], &[]);
    let s2 = &second["summary"];
    assert_eq!(second["parent"], first["snapshot"], "{second}");
    assert_eq!(num(s2, "files_unchanged"), 3, "{s2}");
    assert_eq!(num(s2, "files_new") + num(s2, "files_changed"), 0, "{s2}");
    assert_eq!(
        num(s2, "bytes_read"),
        0,
        "unchanged files are not read: {s2}"
    );
    assert_eq!(num(s2, "total_bytes"), total);
    assert!(
        num(s2, "bytes_added") < METADATA_ONLY,
        "an unchanged create added {} bytes",
        num(s2, "bytes_added")
    );

    // Both snapshots restore to the same content.
    for id in env.snapshot_ids() {
        let t = env.path(&format!("r-{id}"));
        env.restore(&id[..10], &t);
        assert_same_tree(&src, &restored(&t, &src));
    }
}

#[test]
fn a_copy_of_a_file_adds_no_data() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("orig.bin"), 9, 3 << 20);
    let first = env.create(&[&src], &[]);
    let added_first = num(&first["summary"], "bytes_added");

    fs::copy(src.join("orig.bin"), src.join("copy.bin")).unwrap();
    let second = env.create(&[&src], &[]);
    let s = &second["summary"];
    assert_eq!(num(s, "files_new"), 1, "{s}");
    assert_eq!(num(s, "files_unchanged"), 1, "{s}");
    assert_eq!(num(s, "bytes_read"), 3 << 20, "the copy is read: {s}");
    assert!(num(s, "blobs_added") <= 8, "{s}");
    assert!(
        num(s, "bytes_added") < METADATA_ONLY,
        "a copy added {} bytes (first create: {added_first})",
        num(s, "bytes_added")
    );

    // The same data under another path (a different source: no parent).
    let other = env.path("other");
    fs::create_dir(&other).unwrap();
    fs::copy(src.join("orig.bin"), other.join("again.bin")).unwrap();
    let third = env.create(&[&other], &[]);
    assert!(third["parent"].is_null(), "{third}");
    assert!(num(&third["summary"], "bytes_added") < METADATA_ONLY);
    let t = env.path("restore");
    env.restore(&third["snapshot"].as_str().unwrap()[..12], &t);
    assert_same_tree(&other, &restored(&t, &other));
}

#[test]
fn only_changed_files_are_read_and_full_reads_all() {
    let env = Env::new();
    let src = env.path("src");
    for i in 0..6 {
        write_random(&src.join(format!("f{i}.bin")), 100 + i, 200_000);
    }
    fs::write(src.join("note.txt"), b"first version\n").unwrap();
    env.create(&[&src], &[]);

    // Content and size change.
    fs::write(src.join("note.txt"), b"second version, longer\n").unwrap();
    let r = env.create(&[&src], &[]);
    let s = &r["summary"];
    assert_eq!(num(s, "files_changed"), 1, "{s}");
    assert_eq!(num(s, "files_unchanged"), 6, "{s}");
    assert_eq!(num(s, "files_new"), 0, "{s}");
    assert_eq!(num(s, "bytes_read"), 23, "only note.txt is read: {s}");

    // Same size, new content and mtime: still detected.
    let mut f3 = fs::read(src.join("f3.bin")).unwrap();
    f3[1000] ^= 0xff;
    fs::write(src.join("f3.bin"), &f3).unwrap();
    let r = env.create(&[&src], &[]);
    let s = &r["summary"];
    assert_eq!(num(s, "files_changed"), 1, "{s}");
    assert_eq!(num(s, "bytes_read"), 200_000, "{s}");
    assert!(num(s, "blobs_added") >= 1, "the changed chunk is new: {s}");

    // Only the mode changed: the file is read again (cheaply deduplicated).
    chmod(&src.join("f0.bin"), 0o600);
    let s = env.create(&[&src], &[])["summary"].clone();
    assert_eq!(num(&s, "files_changed"), 1, "{s}");
    assert!(num(&s, "bytes_added") < METADATA_ONLY, "{s}");

    // A new file.
    fs::write(src.join("new.txt"), b"new").unwrap();
    let s = env.create(&[&src], &[])["summary"].clone();
    assert_eq!(
        (
            num(&s, "files_new"),
            num(&s, "files_changed"),
            num(&s, "files_unchanged")
        ),
        (1, 0, 7),
        "{s}"
    );

    // --full reads everything again and finds nothing new to store.
    let r = env.create(&[&src], &["--full"]);
    let s = &r["summary"];
    assert_eq!(num(s, "files_unchanged"), 0, "{s}");
    assert_eq!(num(s, "files_new") + num(s, "files_changed"), 8, "{s}");
    assert_eq!(num(s, "bytes_read"), num(s, "total_bytes"), "{s}");
    assert_eq!(num(s, "bytes_read"), 6 * 200_000 + 23 + 3);
    assert!(num(s, "bytes_added") < METADATA_ONLY, "{s}");

    let t = env.path("restore");
    env.restore("latest", &t);
    assert_same_tree(&src, &restored(&t, &src));
}

#[test]
fn explicit_parent_is_used_for_change_detection() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("x.bin"), 5, 100_000);
    let first = env.create(&[&src], &["--host", "h1"]);
    // Another host name: no automatic parent...
    let other = env.create(&[&src], &["--host", "h2"]);
    assert!(other["parent"].is_null(), "{other}");
    assert_eq!(num(&other["summary"], "bytes_read"), 100_000);
    // ...unless one is given.
    let id = first["snapshot"].as_str().unwrap();
    let third = env.create(&[&src], &["--host", "h2", "--parent", &id[..8]]);
    assert_eq!(third["parent"].as_str(), Some(id));
    assert_eq!(num(&third["summary"], "bytes_read"), 0);
    assert_eq!(num(&third["summary"], "files_unchanged"), 1);
}
