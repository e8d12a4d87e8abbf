//! `restore` against a hostile local user and against being killed.
//!
//! A user who owns a directory inside the target can swap one of the
//! directories below it for a symlink while a root restore runs: restore
//! must never write, chmod or chown anything the link points to. The swap
//! is made deterministic with the `restore.after_dirs` failpoint (the
//! directories exist, no file is written yet): the process waits there
//! while the test swaps.
//!
//! Killed (`kill -9`) or failing at each failpoint of `restore`, no file is
//! ever partial under its final name: every file there is compared with the
//! source by the tests' own walk (absent or identical, content and
//! metadata); a second restore completes and leaves no temporary file.

#![cfg(feature = "failpoints")]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const EXIT_FAILURE: i32 = 1;

/// Whether a name is one of restore's temporary names
/// (`.NAME.snap-tmp-<16 hex digits>`), by the documented pattern.
fn is_temp(name: &str) -> bool {
    match name.rsplit_once(".snap-tmp-") {
        Some((head, hex)) => {
            head.starts_with('.') && hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// Every entry below `root` (not following symlinks): relative path -> is
/// a directory.
fn entries(root: &Path) -> BTreeMap<PathBuf, bool> {
    fn go(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, bool>) {
        let Ok(rd) = fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in rd {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let dir = e.file_type().unwrap().is_dir();
            out.insert(r.clone(), dir);
            if dir {
                go(root, &r, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, Path::new(""), &mut out);
    out
}

fn temps(root: &Path) -> Vec<PathBuf> {
    entries(root)
        .into_keys()
        .filter(|p| is_temp(&p.file_name().unwrap().to_string_lossy()))
        .collect()
}

/// Every non-directory under its final name in `got` is what `src` holds
/// at that name: same kind, content, mode, owner and mtime. Returns how
/// many there are.
fn assert_no_partial_file(src: &Path, got: &Path) -> usize {
    let want = scan(src);
    let strip = |m: &Meta| Meta {
        hardlink_of: None,
        nlink: 0,
        ..m.clone()
    };
    let mut n = 0;
    for (rel, m) in scan(got) {
        let temp = rel
            .file_name()
            .is_some_and(|n| is_temp(&n.to_string_lossy()));
        if m.kind == "dir" || temp {
            continue;
        }
        let w = want
            .get(&rel)
            .unwrap_or_else(|| panic!("{}: not in the source", rel.display()));
        assert_eq!(
            strip(&m),
            strip(w),
            "{} under its final name differs from the source",
            rel.display()
        );
        n += 1;
    }
    n
}

/// A source of several multi-chunk files (64 KiB chunks on average), small
/// files, an empty file, a symlink, a FIFO and a hard link, with owners,
/// modes and times of its own.
fn source(env: &Env) -> PathBuf {
    let src = env.path("src");
    for i in 0..6u64 {
        write_random(
            &src.join(format!("big/f{i}.bin")),
            i,
            700_000 + i as usize * 1000,
        );
    }
    for i in 0..5 {
        fs::create_dir_all(src.join(format!("small/d{i}"))).unwrap();
        fs::write(src.join(format!("small/d{i}/s.txt")), format!("small {i}")).unwrap();
    }
    fs::write(src.join("small/empty"), b"").unwrap();
    symlink("d0/s.txt", src.join("small/link")).unwrap();
    mkfifo(&src.join("small/fifo"));
    fs::hard_link(src.join("big/f0.bin"), src.join("small/f0-again")).unwrap();
    chmod(&src.join("big/f1.bin"), 0o640);
    chmod(&src.join("small/d1"), 0o750);
    if is_root() {
        std::os::unix::fs::chown(src.join("big/f2.bin"), Some(1234), Some(2345)).unwrap();
        std::os::unix::fs::lchown(src.join("small/link"), Some(1234), Some(2345)).unwrap();
    }
    for (i, (rel, _)) in scan(&src).iter().rev().enumerate() {
        set_mtime(
            &src.join(rel),
            1_600_000_000 + i as i64 * 77,
            1000 + i as u32,
        );
    }
    src
}

fn restore_cmd(env: &Env, to: &Path) -> std::process::Command {
    let mut c = env.cmd();
    c.args(["restore", "latest", "--to"]).arg(to);
    c
}

#[test]
fn killed_or_failing_at_every_failpoint_leaves_no_partial_file() {
    let env = Env::new();
    let src = source(&env);
    env.create(&[&src], &[]);
    let points = snap::failpoint::reached_alone("restore.");
    assert!(!points.is_empty());
    for point in points {
        for action in ["abort", "error"] {
            let what = format!("{point}={action}");
            // The third chunk written: files of more than three chunks are
            // half written.
            let spec = match point {
                "restore.after_write" => format!("{point}=3*{action}"),
                _ => what.clone(),
            };
            let to = env.path(&format!("r-{}-{action}", point.replace('.', "-")));
            let out = restore_cmd(&env, &to)
                .env("SNAP_FAILPOINTS", &spec)
                .output()
                .unwrap();
            let err = stderr(&out);
            match action {
                "abort" => assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{what}: {err}"),
                _ => {
                    assert_eq!(code(&out), EXIT_FAILURE, "{what}: {err}");
                    assert!(err.contains(&format!("failpoint {point}")), "{what}: {err}");
                }
            }
            let got = restored(&to, &src);
            let n = assert_no_partial_file(&src, &got);
            let left = temps(&to);
            // Killed while writing, a file of several chunks is left under
            // its temporary name, one of one chunk (made without a name) is
            // gone with the process; failing, neither is left.
            if (point, action) == ("restore.after_write", "error") {
                assert!(left.is_empty(), "{what}: temporary files left: {left:?}");
                assert!(n > 0, "{what}: the other files are restored");
            }
            // A second restore into the same target completes and removes
            // the temporary names left.
            let mut again = env.cmd();
            again.args(["--json", "restore", "latest", "--to"]).arg(&to);
            let out = again.output().unwrap();
            assert_success(&out, &format!("{what}: second restore"));
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                num(&report, "stale_temps_removed"),
                left.len() as u64,
                "{what}: {report}"
            );
            assert_same_tree(&src, &got);
            assert_eq!(temps(&to), Vec::<PathBuf>::new(), "{what}");
        }
    }
}

/// 40 files of one chunk in 4 directories (`d{i % 4}/f{i}.txt`), modes
/// 0600 to 0670, backed up.
fn small_files(env: &Env) -> PathBuf {
    let src = env.path("src");
    for i in 0..40 {
        let d = src.join(format!("d{}", i % 4));
        fs::create_dir_all(&d).unwrap();
        let f = d.join(format!("f{i}.txt"));
        fs::write(&f, format!("small file {i}\n").repeat(i + 1)).unwrap();
        chmod(&f, 0o600 + (i as u32 % 8) * 0o10);
    }
    env.create(&[&src], &[]);
    src
}

// Files of one chunk were made under a temporary name and renamed: a
// restore killed while writing one left that name behind. They are made
// without a name now (O_TMPFILE) and named once complete.
#[test]
fn a_restore_killed_while_writing_small_files_leaves_no_temporary_name() {
    let env = Env::new();
    let src = small_files(&env);
    let to = env.path("r");
    let out = restore_cmd(&env, &to)
        .env("SNAP_FAILPOINTS", "restore.after_write=20*abort")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{}", stderr(&out));
    let got = restored(&to, &src);
    let n = assert_no_partial_file(&src, &got);
    assert!(n < 40, "killed at the 20th file, {n} files in place");
    assert_eq!(temps(&to), Vec::<PathBuf>::new());
    // And a restore over what is there replaces it (linked under a
    // temporary name, renamed over the old file).
    for i in 0..40 {
        let p = got.join(format!("d{}/f{i}.txt", i % 4));
        if p.exists() {
            fs::write(&p, b"changed since").unwrap();
        }
    }
    let out = env
        .cmd()
        .args(["restore", "latest", "--overwrite", "always", "--to"])
        .arg(&to)
        .output()
        .unwrap();
    assert_success(&out, "second restore");
    assert_same_tree(&src, &got);
    assert_eq!(temps(&to), Vec::<PathBuf>::new());
}

// Where unnamed files cannot be made (a file system without O_TMPFILE, no
// /proc), files of one chunk take the named temporary file's path; where
// the kernel refuses to link a descriptor (before Linux 6.10, without
// CAP_DAC_READ_SEARCH), unnamed files are linked through /proc. Both are
// forced here (`SNAP_TEST_RESTORE_FILES`, failpoints builds only): the
// restored tree is the source's, and a kill while writing leaves, on the
// named path only, a temporary name that the next restore removes (which
// shows that path was taken).
#[test]
fn without_unnamed_files_or_linking_by_descriptor_the_restore_is_the_same() {
    let env = Env::new();
    let src = small_files(&env);
    for how in ["named", "proc"] {
        let to = env.path(&format!("r-{how}"));
        let out = restore_cmd(&env, &to)
            .env("SNAP_TEST_RESTORE_FILES", how)
            .env("SNAP_FAILPOINTS", "restore.after_write=20*abort")
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "{how}: {}",
            stderr(&out)
        );
        let got = restored(&to, &src);
        let n = assert_no_partial_file(&src, &got);
        assert!(n < 40, "{how}: killed at the 20th file, {n} files in place");
        let left = temps(&to);
        // (The file each worker was writing when killed.)
        match how {
            "named" => assert!(!left.is_empty(), "{how}: the files being written"),
            _ => assert_eq!(left, Vec::<PathBuf>::new(), "{how}"),
        }
        let mut again = env.cmd();
        again
            .env("SNAP_TEST_RESTORE_FILES", how)
            .args(["--json", "restore", "latest", "--to"])
            .arg(&to);
        let out = again.output().unwrap();
        assert_success(&out, &format!("{how}: second restore"));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            num(&report, "stale_temps_removed"),
            left.len() as u64,
            "{how}: {report}"
        );
        assert_same_tree(&src, &got);
        // Over changed files: replaced (the name taken: linked or made
        // under a temporary name, then renamed over it).
        for i in (0..40).step_by(3) {
            fs::write(got.join(format!("d{}/f{i}.txt", i % 4)), b"changed since").unwrap();
        }
        let out = env
            .cmd()
            .env("SNAP_TEST_RESTORE_FILES", how)
            .args(["restore", "latest", "--overwrite", "always", "--to"])
            .arg(&to)
            .output()
            .unwrap();
        assert_success(&out, &format!("{how}: restore over changed files"));
        assert_same_tree(&src, &got);
        assert_eq!(temps(&to), Vec::<PathBuf>::new(), "{how}");
    }
}

/// Waits until `path` exists, or panics if the process ended first.
fn await_file(path: &Path, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("restore ended ({st}) before reaching its failpoint");
        }
        assert!(Instant::now() < deadline, "failpoint not reached");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_directory_swapped_for_a_symlink_during_restore_is_not_followed() {
    let env = Env::new();
    // alice's home holds `sub/` (with files, a subdirectory and a FIFO)
    // and a file of her own.
    let src = env.path("src");
    let home = src.join("home/alice");
    fs::create_dir_all(home.join("sub/deep")).unwrap();
    fs::write(home.join("sub/a.txt"), b"restored data").unwrap();
    fs::write(home.join("sub/deep/b.txt"), b"more restored data").unwrap();
    mkfifo(&home.join("sub/fifo"));
    symlink("a.txt", home.join("sub/link")).unwrap();
    fs::write(home.join("notes"), b"alice's notes").unwrap();
    fs::write(src.join("top"), b"top").unwrap();
    chmod(&home.join("sub"), 0o700);
    chmod(&home.join("sub/deep"), 0o700);
    chmod(&home.join("sub/a.txt"), 0o4777);
    if is_root() {
        std::os::unix::fs::chown(home.join("sub/a.txt"), Some(1000), Some(1000)).unwrap();
        chmod(&home.join("sub/a.txt"), 0o4777);
    }
    env.create(&[&src], &[]);

    // What the link will point to: a directory with files of the same
    // names, which must stay exactly as they are.
    let outside = env.path("outside");
    fs::create_dir_all(outside.join("deep")).unwrap();
    fs::write(outside.join("a.txt"), b"untouched").unwrap();
    fs::write(outside.join("deep/b.txt"), b"untouched").unwrap();
    chmod(&outside, 0o755);
    chmod(&outside.join("a.txt"), 0o644);
    set_mtime(&outside, 1_000_000_000, 0);
    set_mtime(&outside.join("deep"), 1_000_000_000, 0);
    let before = scan(&outside);

    let to = env.path("r");
    let reached = env.path("reached");
    let go = env.path("go");
    let mut child = restore_cmd(&env, &to)
        .env(
            "SNAP_FAILPOINTS",
            format!(
                "restore.after_dirs=touch({})->wait({})",
                reached.display(),
                go.display()
            ),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    await_file(&reached, &mut child);
    // The swap: alice moves sub/ aside and puts a symlink in its place.
    let sub = restored(&to, &home).join("sub");
    assert!(fs::symlink_metadata(&sub).unwrap().is_dir());
    fs::rename(&sub, restored(&to, &home).join("sub.old")).unwrap();
    symlink(&outside, &sub).unwrap();
    fs::write(&go, b"").unwrap();
    let out = child.wait_with_output().unwrap();

    let err = stderr(&out);
    assert_eq!(scan(&outside), before, "restore changed the outside: {err}");
    assert_eq!(code(&out), EXIT_FAILURE, "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("error:")
            && l.contains(&sub.display().to_string())
            && l.contains("symlink")),
        "the error names {}: {err}",
        sub.display()
    );
    assert!(fs::symlink_metadata(&sub).unwrap().is_symlink());
    // Everything else is restored.
    let r = restored(&to, &src);
    assert_eq!(fs::read(r.join("top")).unwrap(), b"top");
    assert_eq!(
        fs::read(r.join("home/alice/notes")).unwrap(),
        b"alice's notes"
    );
    let m = fs::metadata(r.join("home/alice/notes")).unwrap();
    assert_eq!(m.mtime(), fs::metadata(home.join("notes")).unwrap().mtime());
}
