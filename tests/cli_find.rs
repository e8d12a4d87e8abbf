//! `snap find` through the real binary: which snapshots hold matching
//! paths, with size and mtime in each. The expected matches come from
//! std::fs scans of the source taken when each snapshot was made, filtered
//! here with plain string tests.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const Y2020: i64 = 1_577_836_800; // 2020-01-01T00:00:00Z
const Y2024: i64 = 1_717_200_000; // 2024-06-01T00:00:00Z

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Every entry below `src` with whole-second mtimes, as (absolute path,
/// name, size, mtime secs).
type Entry = (String, String, u64, i64);

fn entries(src: &Path) -> Vec<Entry> {
    scan(src)
        .into_iter()
        .filter(|(rel, _)| !rel.as_os_str().is_empty())
        .map(|(rel, m)| {
            let name = rel.file_name().unwrap().to_string_lossy().into_owned();
            (
                src.join(&rel).display().to_string(),
                name,
                m.size,
                m.mtime.0,
            )
        })
        .collect()
}

/// Sets every mtime below `src` (deepest first) to `secs`, except those given.
fn stamp(src: &Path, secs: i64, except: &[(&str, i64)]) {
    let mut all: Vec<PathBuf> = scan(src).into_keys().collect();
    all.reverse();
    for rel in all {
        let t = except
            .iter()
            .find(|(p, _)| Path::new(p) == rel)
            .map(|(_, t)| *t)
            .unwrap_or(secs);
        set_mtime(&src.join(&rel), t, 0);
    }
}

/// The matches of one snapshot: (path, size, mtime).
type Hits = BTreeSet<(String, u64, String)>;

/// (snapshot id, matches) of a `find --json` report.
fn found(v: &Value) -> Vec<(String, Hits)> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| {
            let hits: Hits = s["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h["path"].as_str().unwrap().to_string(),
                        h["size"].as_u64().unwrap(),
                        h["mtime"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            assert_eq!(s["hits"].as_u64().unwrap() as usize, hits.len());
            (s["snapshot"].as_str().unwrap().to_string(), hits)
        })
        .collect()
}

fn want(id: &str, es: &[Entry], pick: impl Fn(&Entry) -> bool) -> (String, Hits) {
    (
        id.to_string(),
        es.iter()
            .filter(|e| pick(e))
            .map(|e| (e.0.clone(), e.2, rfc3339(e.3)))
            .collect(),
    )
}

#[test]
fn find_reports_each_snapshot_holding_a_match_with_size_and_mtime() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("a.log"), 1, 1_000);
    fs::write(src.join("notes.txt"), "notes").unwrap();
    write_random(&src.join("docs/x.log"), 2, 2_000);
    fs::write(src.join("docs/README.md"), "read me").unwrap();
    write_random(&src.join("docs/sub/y.log"), 3, 300);
    stamp(&src, Y2020, &[]);
    let s1 = env.create(&[&src], &["--time", "2026-01-01T00:00:00Z"])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let e1 = entries(&src);

    fs::remove_file(src.join("a.log")).unwrap();
    write_random(&src.join("b.log"), 4, 4_444);
    write_random(&src.join("docs/x.log"), 5, 2_500);
    stamp(&src, Y2020, &[("b.log", Y2024), ("docs/x.log", Y2024)]);
    let s2 = env.create(&[&src], &["--time", "2026-01-02T00:00:00Z"])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let e2 = entries(&src);

    let other = env.path("other");
    write_random(&other.join("c.log"), 6, 66);
    stamp(&other, Y2024, &[]);
    let s3 = env.create(
        &[&other],
        &["--host", "elsewhere", "--time", "2026-01-03T00:00:00Z"],
    )["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let e3 = entries(&other);

    let log = |e: &Entry| e.1.ends_with(".log");
    // By base name, in every snapshot, oldest first.
    assert_eq!(
        found(&env.json(["find", "*.log"])),
        vec![
            want(&s1, &e1, log),
            want(&s2, &e2, log),
            want(&s3, &e3, log)
        ]
    );
    // The snapshot filters and --snapshot choose where to look.
    assert_eq!(
        found(&env.json(["find", "*.log", "--host", "elsewhere"])),
        vec![want(&s3, &e3, log)]
    );
    assert_eq!(
        found(&env.json(["find", "*.log", "--snapshot", &s1[..8]])),
        vec![want(&s1, &e1, log)]
    );
    // Modification time bounds.
    assert_eq!(
        found(&env.json(["find", "*.log", "--newer", "2023-01-01"])),
        vec![
            want(&s2, &e2, |e| log(e) && e.3 > Y2020),
            want(&s3, &e3, log)
        ]
    );
    assert_eq!(
        found(&env.json([
            "find",
            "*.log",
            "--older",
            "2021-01-01 00:00",
            "--host",
            &snap::repository::open::hostname()
        ])),
        vec![
            want(&s1, &e1, log),
            want(&s2, &e2, |e| log(e) && e.3 < Y2024)
        ]
    );
    // An absolute pattern matches the full path; `*` stops at a `/`.
    let docs = src.join("docs");
    let pat = format!("{}/*", docs.display());
    let direct = |e: &Entry| Path::new(&e.0).parent() == Some(docs.as_path());
    assert_eq!(
        found(&env.json(["find", &pat])),
        vec![want(&s1, &e1, direct), want(&s2, &e2, direct)]
    );
    // A relative pattern with a `/` matches at any depth.
    let in_docs = |e: &Entry| e.0.ends_with("/docs/x.log");
    assert_eq!(
        found(&env.json(["find", "docs/*.log"])),
        vec![want(&s1, &e1, in_docs), want(&s2, &e2, in_docs)]
    );
    // -i ignores case; several patterns are alternatives.
    let readme_or_notes = |e: &Entry| e.1 == "README.md" || e.1 == "notes.txt";
    assert_eq!(
        found(&env.json(["find", "-i", "readme*", "NOTES.*"])),
        vec![
            want(&s1, &e1, readme_or_notes),
            want(&s2, &e2, readme_or_notes)
        ]
    );

    // The text form names each snapshot and lists size, mtime and path.
    let text = env.ok(["find", "b.log"]);
    assert!(
        text.starts_with(&format!(
            "Found 1 matching entries in snapshot {}",
            &s2[..8]
        )),
        "{text}"
    );
    let line = text.lines().nth(1).unwrap();
    assert!(line.contains(" 4444 2024-06-01T00:00:00 "), "{line}");
    assert!(
        line.ends_with(&src.join("b.log").display().to_string()),
        "{line}"
    );
    let text = env.ok(["find", "nothing-like-this"]);
    assert_eq!(text.trim(), "no matching entries in 3 snapshots");
    assert_eq!(found(&env.json(["find", "nothing-like-this"])), vec![]);

    // A malformed pattern and a bad time are errors naming them.
    let out = env.run(["find", "a[b"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("a[b"), "{}", stderr(&out));
    let out = env.run(["find", "x", "--newer", "yesterday-ish"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("yesterday-ish"), "{}", stderr(&out));
}

#[test]
fn find_shows_and_matches_names_in_the_escaped_form() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(
        src.join(std::ffi::OsStr::from_bytes(b"odd\xffname.log")),
        "x",
    )
    .unwrap();
    fs::write(src.join("plain.log"), "y").unwrap();
    env.create(&[&src], &[]);
    let want = format!("{}/odd\\xffname.log", src.display());
    let paths = |v: &Value| -> Vec<String> {
        v[0]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["path"].as_str().unwrap().to_string())
            .collect()
    };
    let all = paths(&env.json(["find", "*.log"]));
    assert_eq!(all, [want.clone(), format!("{}/plain.log", src.display())]);
    assert_eq!(
        paths(&env.json(["find", "odd\\xffname.*"])),
        std::slice::from_ref(&want)
    );
    let text = env.ok(["find", "odd*"]);
    assert!(text.lines().any(|l| l.ends_with(&want)), "{text}");
}
