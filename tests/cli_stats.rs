//! `snap stats` through the real binary. The expected sizes come from
//! std::fs scans of the sources (files, hard links, distinct contents)
//! and from the pack files in the repository directory.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::*;
use serde_json::Value;

/// (files, bytes a restore writes, dirs) of a scanned tree: a hard-linked
/// inode's bytes once.
fn restore_size(tree: &BTreeMap<std::path::PathBuf, Meta>) -> (u64, u64, u64) {
    let files = tree.values().filter(|m| m.kind == "file").count() as u64;
    let bytes = tree
        .values()
        .filter(|m| m.kind == "file" && m.hardlink_of.is_none())
        .map(|m| m.size)
        .sum();
    let dirs = tree.values().filter(|m| m.kind == "dir").count() as u64;
    (files, bytes, dirs)
}

/// Distinct contents (by hash) and their total size.
fn distinct(trees: &[&BTreeMap<std::path::PathBuf, Meta>]) -> (u64, u64) {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for t in trees {
        for m in t.values().filter(|m| m.kind == "file") {
            by.insert(m.content.clone().unwrap(), m.size);
        }
    }
    (by.len() as u64, by.values().sum())
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

#[test]
fn stats_counts_restore_size_distinct_files_and_stored_blobs() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("a"), 1, 300_000);
    write_random(&src.join("dir/b"), 2, 120_000);
    fs::write(src.join("empty"), "").unwrap();
    let s1 = env.create(&[&src], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let t1 = scan(&src);
    // A copy of a (same contents), a hard link to b, a new file.
    fs::copy(src.join("a"), src.join("a-copy")).unwrap();
    fs::hard_link(src.join("dir/b"), src.join("b-link")).unwrap();
    write_random(&src.join("c"), 3, 77_777);
    let s2 = env.create(&[&src], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let t2 = scan(&src);
    // Directories above the source are in the snapshot too.
    let above = src.parent().unwrap().components().count() as u64 - 1;

    let (f1, b1, d1) = restore_size(&t1);
    let (f2, b2, d2) = restore_size(&t2);
    let v = env.json(["stats"]);
    assert_eq!(v["mode"], "restore-size");
    assert_eq!(num(&v, "snapshots_count"), 2);
    assert_eq!(num(&v, "restore_files"), f1 + f2, "{v}");
    assert_eq!(num(&v, "restore_size"), b1 + b2, "{v}");
    assert_eq!(num(&v, "restore_dirs"), d1 + d2 + 2 * above, "{v}");
    assert_eq!(num(&v, "total_size"), b1 + b2);
    assert_eq!(num(&v, "total_file_count"), f1 + f2);

    // One snapshot, by selector.
    let v = env.json(["stats", &s1[..8]]);
    assert_eq!(num(&v, "snapshots_count"), 1);
    assert_eq!(num(&v, "restore_size"), b1);

    // files-by-contents: the copy and the link are the same contents.
    let (n, size) = distinct(&[&t1, &t2]);
    let v = env.json(["stats", "--mode", "files-by-contents"]);
    assert_eq!(v["mode"], "files-by-contents");
    assert_eq!(num(&v, "total_file_count"), n, "{v}");
    assert_eq!(num(&v, "total_size"), size, "{v}");
    assert_eq!(num(&v, "unique_files"), n);

    // raw-data: random contents share no chunk, so the distinct data blobs
    // hold exactly the distinct contents; every pack of this repository is
    // referenced.
    let v = env.json(["stats", "--mode", "raw-data", &s1, &s2]);
    assert_eq!(v["mode"], "raw-data");
    assert_eq!(num(&v, "data_size"), size, "{v}");
    assert!(num(&v, "raw_size") > size, "trees count too: {v}");
    assert_eq!(num(&v, "total_uncompressed_size"), num(&v, "raw_size"));
    assert_eq!(num(&v, "total_size"), num(&v, "stored_size"));
    assert_eq!(
        num(&v, "total_blob_count"),
        num(&v, "data_blobs") + num(&v, "tree_blobs")
    );
    let packs = env.packs();
    let on_disk: u64 = packs.iter().map(|(_, s)| s).sum();
    assert_eq!(num(&v, "packs"), packs.len() as u64, "{v}");
    assert_eq!(num(&v, "packs_size"), on_disk);
    assert_eq!(num(&v, "repository_packs"), packs.len() as u64);
    assert_eq!(num(&v, "repository_size"), on_disk);
    assert!(
        num(&v, "stored_size") < on_disk,
        "headers are not blobs: {v}"
    );
    assert_eq!(num(&v, "missing_blobs"), 0);
    let dedup = f(&v, "dedup_ratio");
    let want = (b1 + b2) as f64 / size as f64;
    assert!((dedup - want).abs() < 1e-9, "{dedup} vs {want}");

    let text = env.ok(["stats", "--mode", "raw-data"]);
    assert!(text.starts_with("Stats in raw-data mode:"), "{text}");
    assert!(text.contains("Snapshots processed:  2"), "{text}");
    assert!(text.contains("Compression Ratio:"), "{text}");
}

#[test]
fn stats_raw_data_shows_compression() {
    let env = Env::new();
    let src = env.path("text");
    fs::create_dir_all(&src).unwrap();
    let mut body = String::new();
    for i in 0..40_000 {
        body.push_str(&format!("line {i} of a very repetitive log file\n"));
    }
    fs::write(src.join("log"), &body).unwrap();
    env.create(&[&src], &[]);
    let v = env.json(["stats", "--mode", "raw-data"]);
    assert_eq!(num(&v, "data_size"), body.len() as u64, "{v}");
    assert!(f(&v, "compression_ratio") > 3.0, "{v}");
    let saving = f(&v, "compression_space_saving");
    let want = (1.0 - num(&v, "stored_size") as f64 / num(&v, "raw_size") as f64) * 100.0;
    assert!((saving - want).abs() < 1e-6, "{v}");
    // An empty selection counts nothing.
    let v = env.json(["stats", "--host", "nobody"]);
    assert_eq!(num(&v, "snapshots_count"), 0);
    assert_eq!(num(&v, "total_size"), 0);
}
