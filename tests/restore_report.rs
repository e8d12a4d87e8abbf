//! What `restore` says and how it exits: sockets (and device nodes when not
//! root) are warnings, not damage; the summary counts only the files put in
//! place; an `--include` that matches nothing is a usage error; a symlink in
//! the target where a directory goes is named, not followed, and the rest is
//! restored. Restored trees are compared with the sources by the tests' own
//! walk, never by snap's code.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::*;

const EXIT_FAILURE: i32 = 1;
const EXIT_USAGE: i32 = 2;
const EXIT_DAMAGED: i32 = 11;
const NOBODY: u32 = 65534;

fn restore_to(env: &Env, snap: &str, to: &Path, extra: &[&str]) -> std::process::Output {
    let mut c = env.cmd();
    c.args(["restore", snap, "--to"]).arg(to).args(extra);
    c.output().unwrap()
}

fn chown_tree(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
    if fs::symlink_metadata(p).unwrap().is_dir() {
        for e in fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), uid);
        }
    }
}

#[test]
fn sockets_are_warnings_not_damage() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("file"), b"kept").unwrap();
    drop(std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap());
    env.create(&[&src], &[]);
    let to = env.path("r");
    let out = restore_to(&env, "latest", &to, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let sock = restored(&to, &src).join("sock");
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning:") && l.contains(&sock.display().to_string())),
        "a warning line names the socket: {err}"
    );
    assert!(!err.contains("error"), "{err}");
    assert!(fs::symlink_metadata(&sock).is_err(), "no socket is made");
    assert_eq!(fs::read(restored(&to, &src).join("file")).unwrap(), b"kept");
    assert!(stdout(&out).contains("1 files"), "{}", stdout(&out));
}

#[test]
fn device_nodes_are_warnings_when_not_root() {
    if !is_root() {
        eprintln!("note: needs root to make a device node for the snapshot");
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("file"), b"kept").unwrap();
    let c = std::ffi::CString::new(src.join("null").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: valid path; making a node opens no device.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(r, 0);
    env.create(&[&src], &[]);
    // Restore as `nobody`, who may read the repository and write the target.
    chmod(env.tmp.path(), 0o755);
    chown_tree(&env.repo, NOBODY);
    chown_tree(&env.cache, NOBODY);
    let to = env.path("r");
    fs::create_dir(&to).unwrap();
    chown_tree(&to, NOBODY);
    let out = env
        .cmd()
        .args(["restore", "latest", "--to"])
        .arg(&to)
        .uid(NOBODY)
        .gid(NOBODY)
        .env("HOME", env.tmp.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let dev = restored(&to, &src).join("null");
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning:") && l.contains(&dev.display().to_string())),
        "a warning line names the device: {err}"
    );
    assert!(fs::symlink_metadata(&dev).is_err());
    assert_eq!(fs::read(restored(&to, &src).join("file")).unwrap(), b"kept");
}

#[test]
fn the_summary_counts_only_the_files_restored() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"first small file").unwrap();
    fs::write(src.join("b.txt"), b"second small file").unwrap();
    env.create(&[&src], &[]);
    // The second snapshot adds one large file: its chunks are the only
    // data of the new data pack (the largest new file in data/).
    let before: Vec<PathBuf> = env.packs().into_iter().map(|(p, _)| p).collect();
    write_random(&src.join("victim.bin"), 7, 1 << 20);
    env.create(&[&src], &[]);
    let (pack, len) = env
        .packs()
        .into_iter()
        .find(|(p, _)| !before.contains(p))
        .unwrap();
    flip_byte(&pack, len / 2);

    let to = env.path("r");
    let out = restore_to(&env, "latest", &to, &[]);
    assert_eq!(code(&out), EXIT_DAMAGED, "{}", stderr(&out));
    let victim = restored(&to, &src).join("victim.bin");
    let err = stderr(&out);
    assert!(
        err.lines().any(|l| l.starts_with("error:")
            && l.contains(&victim.display().to_string())
            && l.contains("NOT restored")),
        "names the file not restored: {err}"
    );
    assert!(
        stdout(&out).contains(": 2 files,"),
        "2 of 3 files restored: {}",
        stdout(&out)
    );
    assert!(!victim.exists());
    let r = restored(&to, &src);
    assert_eq!(fs::read(r.join("a.txt")).unwrap(), b"first small file");
    assert_eq!(fs::read(r.join("b.txt")).unwrap(), b"second small file");

    // The JSON report says the same.
    let out = env
        .cmd()
        .args(["--json", "restore", "latest", "--to"])
        .arg(env.path("r2"))
        .output()
        .unwrap();
    assert_eq!(code(&out), EXIT_DAMAGED);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(num(&v, "files"), 2, "{v}");
    assert_eq!(num(&v, "bytes"), 33, "{v}");
}

#[test]
fn an_include_that_matches_nothing_is_a_usage_error() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("etc/app.conf"), b"conf").unwrap();
    let id = env.create(&[&src], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let to = env.path("r");
    let out = restore_to(&env, "latest", &to, &["--include", "*.cnf"]);
    assert_eq!(code(&out), EXIT_USAGE, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--include") && err.contains("*.cnf") && err.contains("matched nothing"),
        "{err}"
    );
    assert!(err.contains(&id[..8]), "names the snapshot: {err}");
    assert!(!to.exists(), "nothing is restored");

    // One pattern of two matching nothing is an error too, and names it.
    let out = restore_to(
        &env,
        "latest",
        &to,
        &["--include", "app.conf", "--include", "nope"],
    );
    assert_eq!(code(&out), EXIT_USAGE, "{}", stderr(&out));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("app.conf"), "{}", stderr(&out));

    // A pattern matching only below another one's match counts as matched.
    let out = restore_to(
        &env,
        "latest",
        &to,
        &["--include", "etc", "--include", "app.conf"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        fs::read(restored(&to, &src).join("etc/app.conf")).unwrap(),
        b"conf"
    );
}

#[test]
fn a_symlink_where_a_directory_goes_is_named_and_the_rest_is_restored() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("d/sub")).unwrap();
    fs::write(src.join("d/f"), b"below d").unwrap();
    fs::write(src.join("d/sub/g"), b"below d/sub").unwrap();
    fs::create_dir_all(src.join("e")).unwrap();
    fs::write(src.join("e/h"), b"below e").unwrap();
    fs::write(src.join("top"), b"top").unwrap();
    chmod(&src.join("d"), 0o750);
    env.create(&[&src], &[]);

    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("f"), b"untouched").unwrap();
    chmod(&outside, 0o755);
    let before = scan(&outside);
    let outside_meta = fs::metadata(&outside).unwrap();

    let to = env.path("r");
    let r = restored(&to, &src);
    fs::create_dir_all(&r).unwrap();
    symlink(&outside, r.join("d")).unwrap();
    let out = restore_to(&env, "latest", &to, &[]);
    assert_eq!(code(&out), EXIT_FAILURE, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.lines().any(|l| l.starts_with("error:")
            && l.contains(&r.join("d").display().to_string())
            && l.contains("symlink")),
        "names the symlink: {err}"
    );
    assert_eq!(scan(&outside), before, "nothing outside changed");
    let now = fs::metadata(&outside).unwrap();
    assert_eq!(
        (now.mode(), now.uid(), now.mtime(), now.mtime_nsec()),
        (
            outside_meta.mode(),
            outside_meta.uid(),
            outside_meta.mtime(),
            outside_meta.mtime_nsec()
        )
    );
    assert!(fs::symlink_metadata(r.join("d")).unwrap().is_symlink());
    // The rest is restored.
    assert_same_tree(&src.join("e"), &r.join("e"));
    assert_eq!(fs::read(r.join("top")).unwrap(), b"top");
    assert!(stdout(&out).contains(": 2 files,"), "{}", stdout(&out));
}
