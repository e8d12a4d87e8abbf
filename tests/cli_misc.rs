//! `dump`, `ls`, `snapshots` and snapshot selectors.

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::symlink;

use common::*;

#[test]
fn dump_writes_one_file_exactly() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("db.bin"), 77, 1_500_000);
    fs::write(src.join("empty"), b"").unwrap();
    fs::create_dir(src.join("sub")).unwrap();
    env.create(&[&src], &[]);

    let out = env.run([
        "dump".as_ref(),
        "latest".as_ref(),
        src.join("db.bin").as_os_str(),
    ]);
    assert_success(&out, "dump");
    assert!(
        out.stdout == fs::read(src.join("db.bin")).unwrap(),
        "dump content differs"
    );

    let out = env.run([
        "dump".as_ref(),
        "latest".as_ref(),
        src.join("empty").as_os_str(),
    ]);
    assert_success(&out, "dump empty");
    assert!(out.stdout.is_empty());

    // Not there, not allowed (a directory is a tar: tests/cli_dump_archive.rs).
    for p in [src.join("nope"), src.join("../src/db.bin")] {
        let out = env.run(["dump".as_ref(), "latest".as_ref(), p.as_os_str()]);
        assert_ne!(code(&out), 0, "dump {}", p.display());
        assert!(out.stdout.is_empty());
        assert!(!stderr(&out).is_empty());
    }
    // Broken pipe is not an error.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {} dump latest {} | head -c 10 >/dev/null",
            snap_bin(),
            src.join("db.bin").display()
        ))
        .env("SNAP_REPO", &env.repo)
        .env("SNAP_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_success(&out, "dump | head");
}

#[test]
fn ls_lists_entries_as_json() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f.txt"), b"12345").unwrap();
    chmod(&src.join("d/f.txt"), 0o640);
    symlink("d/f.txt", src.join("l")).unwrap();
    mkfifo(&src.join("p"));
    set_mtime(&src.join("d/f.txt"), 1_600_000_000, 0);
    env.create(&[&src], &[]);

    let v = env.json(["ls", "latest"]);
    let by_path: HashMap<String, &serde_json::Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e))
        .collect();
    let s = src.display().to_string();
    let f = by_path[&format!("{s}/d/f.txt")];
    assert_eq!(f["kind"], "file");
    assert_eq!(f["size"], 5);
    assert_eq!(f["mode"], 0o640);
    assert!(
        f["mtime"]
            .as_str()
            .unwrap()
            .starts_with("2020-09-13T12:26:40"),
        "{f}"
    );
    let l = by_path[&format!("{s}/l")];
    assert_eq!(l["kind"], "symlink");
    assert_eq!(l["link_target"], "d/f.txt");
    assert_eq!(by_path[&format!("{s}/p")]["kind"], "fifo");
    assert_eq!(by_path[&format!("{s}/d")]["kind"], "dir");
    // Every parent of the source is listed as a directory.
    assert_eq!(by_path["/tmp"]["kind"], "dir");

    // A sub-path lists only what is below it (and itself).
    let v = env.json(["ls".as_ref(), "latest".as_ref(), src.join("d").as_os_str()]);
    let paths: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec![format!("{s}/d"), format!("{s}/d/f.txt")]);

    // Text output names the same entries.
    let text = env.ok(["ls", "latest"]);
    assert!(text.contains(&format!("{s}/d/f.txt")));
    assert!(text.contains("-> d/f.txt"));
}

#[test]
fn selectors_latest_and_unique_prefixes() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    let mut ids = Vec::new();
    // 17 snapshots: two of them must share their first hex digit.
    for i in 0..17 {
        fs::write(src.join("v"), format!("version {i}")).unwrap();
        let t = format!("2030-01-01T00:00:{i:02}Z");
        let r = env.create(&[&src], &["--time", &t, "--tag", &format!("n{i}")]);
        ids.push(r["snapshot"].as_str().unwrap().to_string());
    }
    // `snapshots` lists them oldest first with parents chained.
    let rows = env.json(["snapshots"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ids
    );
    for (i, r) in rows.iter().enumerate().skip(1) {
        assert_eq!(r["parent"].as_str(), Some(ids[i - 1].as_str()));
        assert_eq!(r["tags"][0], format!("n{i}"));
        assert_eq!(r["paths"][0], src.display().to_string());
        assert_eq!(r["short_id"], ids[i][..8]);
    }

    let dump = |sel: &str| {
        let out = env.run(["dump".as_ref(), sel.as_ref(), src.join("v").as_os_str()]);
        (code(&out), stdout(&out), stderr(&out))
    };
    // `latest` is the newest by time.
    assert_eq!(dump("latest").1, "version 16");
    // Unique prefixes of several lengths, in either case.
    for (i, id) in ids.iter().enumerate() {
        let unique_len = (1..=64)
            .find(|&n| ids.iter().filter(|o| o.starts_with(&id[..n])).count() == 1)
            .unwrap();
        assert_eq!(dump(&id[..unique_len]).1, format!("version {i}"));
        assert_eq!(
            dump(&id.to_uppercase()[..unique_len.max(8)]).1,
            format!("version {i}")
        );
    }
    // An ambiguous prefix is refused, saying so.
    let mut firsts: HashMap<char, usize> = HashMap::new();
    for id in &ids {
        *firsts.entry(id.chars().next().unwrap()).or_default() += 1;
    }
    let shared = firsts.iter().find(|e| *e.1 > 1).unwrap().0.to_string();
    let (c, out, err) = dump(&shared);
    assert_ne!(c, 0);
    assert!(out.is_empty());
    assert!(err.contains("several"), "{err}");
    // Unknown and malformed selectors.
    for bad in ["ffffffffffffffffffffffffffffffff0", "xyz", "", "../x"] {
        let (c, out, err) = dump(bad);
        if bad.starts_with("ffff") && ids.iter().any(|i| i.starts_with(bad)) {
            continue;
        }
        assert_ne!(c, 0, "{bad:?}");
        assert!(out.is_empty());
        assert!(!err.is_empty());
    }
}

#[test]
fn missing_repository_and_missing_password_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(snap_bin())
        .env("SNAP_REPO", tmp.path().join("nothing-here"))
        .env("SNAP_PASSWORD", "x")
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    assert!(stderr(&out).contains("init"), "{}", stderr(&out));
    assert!(
        !tmp.path().join("nothing-here").exists(),
        "a failed open created files"
    );

    // Init refuses to overwrite an existing repository.
    let env = Env::new();
    let out = env.run(["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("already"), "{}", stderr(&out));
}
