//! Bad input and damaged repositories: clear errors, the right exit
//! codes, nothing lost and nothing corrupt written as if restored.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::*;

const EXIT_INCOMPLETE: i32 = 3;
const EXIT_DAMAGED: i32 = 11;
const EXIT_WRONG_PASSWORD: i32 = 12;

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    if fs::symlink_metadata(p).unwrap().is_dir() {
        for e in fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

#[test]
fn unreadable_file_gives_an_incomplete_snapshot_and_exit_3() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("ok.txt"), b"readable").unwrap();
    fs::write(src.join("secret.txt"), b"not for you").unwrap();
    chmod(&src.join("secret.txt"), 0o600);

    let mut cmd = env.cmd();
    cmd.args(["--json", "create"]).arg(&src);
    if is_root() {
        // Permission bits do not stop root: run as `nobody`, with a
        // repository that user may write and a source it may mostly read.
        const NOBODY: u32 = 65534;
        chmod(env.tmp.path(), 0o755);
        chmod(&src, 0o755);
        chmod(&src.join("ok.txt"), 0o644);
        chown_tree(&env.repo, NOBODY, NOBODY);
        chown_tree(&env.cache, NOBODY, NOBODY);
        cmd.uid(NOBODY).gid(NOBODY).env("HOME", env.tmp.path());
    } else {
        chmod(&src.join("secret.txt"), 0o000);
    }
    let out = cmd.output().unwrap();
    assert_eq!(code(&out), EXIT_INCOMPLETE, "stderr: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["incomplete"], true, "{report}");
    let warnings = report["summary"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{report}");
    assert!(
        warnings[0].as_str().unwrap().contains("secret.txt"),
        "the warning names the file: {report}"
    );

    // Text mode says so too, on stderr, naming the file.
    let out = if is_root() {
        let mut c = env.cmd();
        c.arg("create")
            .arg(&src)
            .uid(65534)
            .gid(65534)
            .env("HOME", env.tmp.path());
        c.output().unwrap()
    } else {
        env.run([Path::new("create"), src.as_path()])
    };
    assert_eq!(code(&out), EXIT_INCOMPLETE);
    assert!(stderr(&out).contains("secret.txt"), "{}", stderr(&out));
    assert!(stdout(&out).contains("INCOMPLETE"), "{}", stdout(&out));

    // The snapshot was saved, is marked incomplete and holds the rest.
    let rows = env.json(["snapshots"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["incomplete"] == true), "{rows:?}");
    let paths = ls_paths(&env, "latest");
    assert!(
        paths.iter().any(|p| p.ends_with("/src/ok.txt")),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.ends_with("secret.txt")),
        "{paths:?}"
    );
    let t = env.path("restore");
    env.restore("latest", &t);
    assert_eq!(
        fs::read(restored(&t, &src).join("ok.txt")).unwrap(),
        b"readable"
    );
    assert!(!restored(&t, &src).join("secret.txt").exists());
}

#[test]
fn wrong_password_is_one_line_exit_12_and_changes_nothing() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("a"), 1, 10_000);
    env.create(&[&src], &[]);
    let before = fingerprint(&env.repo);

    for args in [
        vec!["snapshots"],
        vec!["create", src.to_str().unwrap()],
        vec!["check", "--read-data"],
        vec!["repair", "index"],
        vec!["restore", "latest", "--to", "/tmp/never-written"],
    ] {
        let out = env
            .cmd()
            .env("SNAP_PASSWORD", "not the password")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            code(&out),
            EXIT_WRONG_PASSWORD,
            "{args:?}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
        assert!(err.to_lowercase().contains("password"), "{err}");
        assert!(out.stdout.is_empty(), "{}", stdout(&out));
    }
    assert!(!Path::new("/tmp/never-written").exists());
    assert_eq!(before, fingerprint(&env.repo), "the repository changed");
    // The right password still works.
    env.ok(["check"]);
}

#[test]
fn unknown_format_version_is_refused_naming_it() {
    let env = Env::new();
    let cfg_path = env.repo.join("config");
    let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    cfg["version"] = serde_json::json!(97);
    let perms = fs::metadata(&cfg_path).unwrap().permissions();
    fs::set_permissions(&cfg_path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    fs::set_permissions(&cfg_path, perms).unwrap();
    let before = fingerprint(&env.repo);

    for args in [
        vec!["snapshots"],
        vec!["check"],
        vec!["create", "/etc/hostname"],
    ] {
        let out = env.run(&args);
        assert_ne!(code(&out), 0, "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("97"), "names the version: {err}");
        assert!(err.contains("version"), "{err}");
    }
    // Refused before the password is even needed.
    let out = env
        .cmd()
        .env_remove("SNAP_PASSWORD")
        .arg("snapshots")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("97"), "{}", stderr(&out));
    assert_eq!(before, fingerprint(&env.repo));
}

#[test]
fn a_modified_config_is_detected() {
    let env = Env::new();
    let cfg_path = env.repo.join("config");
    let mut cfg: serde_json::Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
    cfg["compression_level"] = serde_json::json!(19);
    fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let out = env.run(["snapshots"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("config"), "{}", stderr(&out));
}

/// A repository with two snapshots of two different sources, whose data
/// packs are distinct: returns (env, snapshot 1 id, source 1, snapshot 2
/// id, source 2, data pack of snapshot 1).
struct Damage {
    env: Env,
    id1: String,
    src1: std::path::PathBuf,
    id2: String,
    src2: std::path::PathBuf,
    pack1: std::path::PathBuf,
}

fn two_snapshots() -> Damage {
    let env = Env::new();
    let src1 = env.path("one");
    write_random(&src1.join("victim.bin"), 11, 3 << 20);
    let r1 = env.create(&[&src1], &[]);
    let packs_after_1: Vec<_> = env.packs().into_iter().map(|(p, _)| p).collect();
    // The largest pack of the first create holds victim.bin's data.
    let pack1 = packs_after_1[0].clone();
    let src2 = env.path("two");
    write_random(&src2.join("bystander.bin"), 12, 1 << 20);
    let r2 = env.create(&[&src2], &[]);
    Damage {
        id1: r1["snapshot"].as_str().unwrap().to_string(),
        id2: r2["snapshot"].as_str().unwrap().to_string(),
        env,
        src1,
        src2,
        pack1,
    }
}

/// Asserts `check --read-data` fails naming snapshot 1 and its file, and
/// not the other snapshot's file.
fn assert_check_names_victim(d: &Damage) {
    let out = d.env.run(["check", "--read-data"]);
    let err = stderr(&out);
    assert_eq!(code(&out), EXIT_DAMAGED, "stderr: {err}");
    assert!(
        err.contains(&d.id1[..8]),
        "names the snapshot {}: {err}",
        &d.id1[..8]
    );
    assert!(err.contains("victim.bin"), "names the file: {err}");
    assert!(!err.contains("bystander.bin"), "{err}");

    // JSON: the same, machine-readable, with a non-zero exit.
    let out = d.env.run(["--json", "check", "--read-data"]);
    assert_eq!(code(&out), EXIT_DAMAGED);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains(&d.id1[..8]) && e.contains("victim.bin")),
        "{errors:?}"
    );
}

/// Asserts restoring snapshot 1 fails and leaves no damaged file looking
/// restored, while snapshot 2 still restores.
fn assert_restore_refuses_victim(d: &Damage) {
    let t = d.env.path("restore1");
    let out = d.env.run([
        "restore".as_ref(),
        d.id1[..8].as_ref(),
        "--to".as_ref(),
        t.as_os_str(),
    ]);
    assert_ne!(code(&out), 0, "restore of damaged data must fail");
    let err = stderr(&out);
    assert!(err.contains("victim.bin"), "names the file: {err}");
    let victim = restored(&t, &d.src1).join("victim.bin");
    if victim.exists() {
        // If anything is left, it must not pass for the original.
        assert_ne!(
            fs::read(&victim).unwrap(),
            fs::read(d.src1.join("victim.bin")).unwrap()
        );
        panic!("{} left behind after a failed restore", victim.display());
    }

    let t2 = d.env.path("restore2");
    d.env.restore(&d.id2[..8], &t2);
    assert_same_tree(&d.src2, &restored(&t2, &d.src2));
}

#[test]
fn flipped_byte_in_a_data_pack_is_found_and_not_restored() {
    let d = two_snapshots();
    // Structure alone is fine...
    d.env.ok(["check"]);
    // ...until the data is read.
    let len = fs::metadata(&d.pack1).unwrap().len();
    flip_byte(&d.pack1, len / 3);
    assert_check_names_victim(&d);
    assert_restore_refuses_victim(&d);
    let out = d.env.run([
        "dump".as_ref(),
        d.id1[..8].as_ref(),
        d.src1.join("victim.bin").as_os_str(),
    ]);
    assert_eq!(code(&out), EXIT_DAMAGED, "{}", stderr(&out));
}

#[test]
fn flipped_byte_in_a_pack_header_is_found() {
    let d = two_snapshots();
    let len = fs::metadata(&d.pack1).unwrap().len();
    flip_byte(&d.pack1, len - 30);
    assert_check_names_victim(&d);
}

#[test]
fn truncated_pack_is_found_and_not_restored() {
    let d = two_snapshots();
    let len = fs::metadata(&d.pack1).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&d.pack1).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    // Even without reading data, the size differs from the index, and the
    // files using the pack are named.
    let out = d.env.run(["check"]);
    let err = stderr(&out);
    assert_eq!(code(&out), EXIT_DAMAGED, "{err}");
    assert!(
        err.contains(&d.id1[..8]) && err.contains("victim.bin"),
        "{err}"
    );
    assert!(!err.contains("bystander.bin"), "{err}");
    assert_check_names_victim(&d);
    assert_restore_refuses_victim(&d);
}

#[test]
fn deleted_pack_is_named_by_check_and_restore() {
    let d = two_snapshots();
    fs::remove_file(&d.pack1).unwrap();
    let out = d.env.run(["check"]);
    let err = stderr(&out);
    assert_eq!(code(&out), EXIT_DAMAGED, "{err}");
    assert!(
        err.contains(&d.id1[..8]) && err.contains("victim.bin"),
        "{err}"
    );
    assert!(!err.contains("bystander.bin"), "{err}");
    assert_restore_refuses_victim(&d);

    // After the index forgets the pack, restore must still refuse and
    // name the file rather than leave a hole-filled file behind.
    d.env.ok(["repair", "index"]);
    assert_check_names_victim(&d);
    let t = d.env.path("restore3");
    let out = d.env.run([
        "restore".as_ref(),
        d.id1[..8].as_ref(),
        "--to".as_ref(),
        t.as_os_str(),
    ]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("victim.bin"), "{}", stderr(&out));
    assert!(!restored(&t, &d.src1).join("victim.bin").exists());
}

#[test]
fn lost_index_is_rebuilt_and_loses_nothing() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("a.bin"), 21, 1 << 20);
    write_random(&src.join("d/b.bin"), 22, 300_000);
    env.create(&[&src], &[]);
    fs::write(src.join("d/c.txt"), b"second").unwrap();
    env.create(&[&src], &[]);

    let index_dir = env.cache_dir();
    let remove_index = || {
        for f in fs::read_dir(&index_dir).unwrap() {
            let p = f.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("index.sqlite")
            {
                fs::remove_file(p).unwrap();
            }
        }
    };
    remove_index();
    let out = env.json(["repair", "index"]);
    assert_eq!(
        num(&out, "packs_added") as usize,
        env.packs().len(),
        "{out}"
    );
    env.ok(["check", "--read-data"]);
    let t = env.path("r1");
    env.restore("latest", &t);
    assert_same_tree(&src, &restored(&t, &src));

    // Without `repair`: the next command rebuilds it by itself.
    remove_index();
    let t = env.path("r2");
    env.restore("latest", &t);
    assert_same_tree(&src, &restored(&t, &src));

    // A garbage index file is a lost cache too: `repair index` rebuilds it,
    // and so does any other command that finds it.
    remove_index();
    fs::write(index_dir.join("index.sqlite"), b"this is not sqlite").unwrap();
    env.ok(["repair", "index"]);
    env.ok(["check", "--read-data"]);
    remove_index();
    fs::write(index_dir.join("index.sqlite"), vec![0x55u8; 8192]).unwrap();
    let t = env.path("r3");
    env.restore("latest", &t);
    assert_same_tree(&src, &restored(&t, &src));
    env.ok(["check", "--read-data"]);
    // The next create deduplicates against the rebuilt index.
    let r = env.create(&[&src], &["--full"]);
    assert!(num(&r["summary"], "bytes_added") < 64 * 1024, "{r}");
}
