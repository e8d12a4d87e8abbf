//! `restore` in windows: the walk of the snapshot is cut into windows of a
//! bounded number of entries and chunk references, restored one after the
//! other, so memory does not grow with the number of files. Here windows
//! are made tiny (`SNAP_TEST_RESTORE_WINDOW`, read only with the
//! `failpoints` feature) and the restore is compared with the source by
//! the tests' own walk: files spanning many windows, a file of more chunks
//! than a window, hard links whose first name is windows earlier (and kept
//! out of memory), sparse files, xattrs, nested directories whose metadata
//! must be set only after all their windows, and `--include` selections.
//! Last, the peak memory of a restore of 20x more files is the same.

#![cfg(feature = "failpoints")]

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::walk::{cpath, differences, walk, Walk};
use common::*;

/// Windows of 10 entries or chunk references, one hard-link group in memory.
const TINY: &str = "10,10,1";

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let c = cpath(p);
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of the given size.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// The tree: see the module doc. Hard-link groups: `a/h1`, `a/x/h2`,
/// `z/h3` (first name far from the others); `a/h4`, `a/x/h5`, `z/h6.keep`
/// (its first name outside the `--include` selection below).
fn source(env: &Env) -> std::path::PathBuf {
    let src = env.path("src");
    let a = src.join("a");
    let x = a.join("x");
    fs::create_dir_all(x.join("deep/er/est")).unwrap();
    fs::create_dir_all(src.join("e/1/2/3/4")).unwrap();
    fs::create_dir_all(src.join("m")).unwrap();
    fs::create_dir_all(src.join("z")).unwrap();
    for i in 0..25 {
        write_random(&a.join(format!("f{i:02}")), i, (i as usize * 397) % 3000);
    }
    write_random(&a.join("big"), 100, 3 << 20);
    let sparse = fs::File::create(a.join("sparse")).unwrap();
    sparse.set_len(16 << 20).unwrap();
    sparse
        .write_all_at(&random_bytes(101, 5000), 7 << 20)
        .unwrap();
    drop(sparse);
    write_random(&a.join("h1"), 102, 50_000);
    write_random(&a.join("h4"), 103, 700);
    for i in 0..10 {
        write_random(&x.join(format!("g{i:02}")), 200 + i, 100 + i as usize);
    }
    write_random(&x.join("deep/er/est/leaf"), 300, 10);
    fs::hard_link(a.join("h1"), x.join("h2")).unwrap();
    fs::hard_link(a.join("h4"), x.join("h5")).unwrap();
    symlink("g00", x.join("link")).unwrap();
    mkfifo(&x.join("fifo"));
    for i in 0..13 {
        write_random(&src.join(format!("m/m{i:02}")), 400 + i, 64);
    }
    for i in 0..15 {
        write_random(&src.join(format!("z/k{i:02}")), 500 + i, 30);
    }
    write_random(&src.join("z/y.keep"), 600, 1234);
    fs::hard_link(a.join("h1"), src.join("z/h3")).unwrap();
    fs::hard_link(a.join("h4"), src.join("z/h6.keep")).unwrap();
    set_xattr(&a, "user.dir", b"a");
    set_xattr(&x, "user.dir", b"x");
    set_xattr(&a.join("f03"), "user.file", b"\x00\xff three");
    set_xattr(&x.join("g05"), "user.file", b"five");
    set_xattr(&src.join("z/h3"), "user.linked", b"h");
    // Times on everything, children before their directory; a read-only
    // directory.
    let all: Vec<Vec<u8>> = walk(&src).entries.keys().rev().cloned().collect();
    for (i, rel) in all.iter().enumerate() {
        let p = src.join(OsStr::from_bytes(rel));
        if rel.as_slice() == b"m" {
            chmod(&p, 0o555);
        }
        set_mtime(
            &p,
            1_400_000_000 + i as i64 * 3_600,
            (i as u32 * 7919) % 1_000_000_000,
        );
    }
    src
}

/// `snap --json restore latest --to TO ARGS` in windows of `window`.
fn restore(env: &Env, to: &Path, window: &str, args: &[&str]) -> serde_json::Value {
    let out = env
        .cmd()
        .env("SNAP_TEST_RESTORE_WINDOW", window)
        .args(["--json", "restore", "latest", "--to"])
        .arg(to)
        .args(args)
        .output()
        .unwrap();
    assert_success(&out, "restore");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_restore_in_many_windows_matches_the_source() {
    let env = Env::new();
    let src = source(&env);
    env.create(&[&src], &[]);
    let to = env.path("out");
    let r = restore(&env, &to, TINY, &[]);
    assert!(num(&r, "windows") > 10, "{r}");
    let got = walk(&restored(&to, &src));
    let want = walk(&src);
    assert_eq!(want.hard_links.len(), 2, "{:?}", want.hard_links);
    let d = differences(&want, &got);
    assert!(d.is_empty(), "the restore differs:\n{}", d.join("\n"));
    // Into the same target again: every file is replaced, nothing left.
    let r = restore(&env, &to, TINY, &[]);
    assert_eq!(num(&r, "stale_temps_removed"), 0, "{r}");
    let d = differences(&want, &walk(&restored(&to, &src)));
    assert!(
        d.is_empty(),
        "the second restore differs:\n{}",
        d.join("\n")
    );
}

/// `w` with only the entries `keep` selects and the directories above them.
fn selected(w: &Walk, keep: impl Fn(&[u8]) -> bool) -> Walk {
    let mut names: BTreeSet<Vec<u8>> = BTreeSet::new();
    for rel in w.entries.keys().filter(|r| keep(r)) {
        names.insert(rel.clone());
        let mut up = rel.as_slice();
        while let Some(i) = up.iter().rposition(|&b| b == b'/') {
            up = &up[..i];
            names.insert(up.to_vec());
        }
        names.insert(Vec::new());
    }
    Walk {
        entries: w
            .entries
            .iter()
            .filter(|(k, _)| names.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        hard_links: w
            .hard_links
            .iter()
            .map(|g| {
                g.iter()
                    .filter(|n| names.contains(*n))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .filter(|g| g.len() > 1)
            .collect(),
        blocks: w
            .blocks
            .iter()
            .filter(|(k, _)| names.contains(*k))
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    }
}

#[test]
fn a_selection_restored_in_many_windows_matches_the_source() {
    let env = Env::new();
    let src = source(&env);
    env.create(&[&src], &[]);
    let to = env.path("out");
    let x = format!("{}/a/x", src.display());
    let r = restore(&env, &to, TINY, &["--include", &x, "--include", "*.keep"]);
    assert!(num(&r, "windows") > 1, "{r}");
    let keep = |rel: &[u8]| rel == b"a/x" || rel.starts_with(b"a/x/") || rel.ends_with(b".keep");
    let want = selected(&walk(&src), keep);
    // h5 is the first name restored of its inode (h4 is not selected).
    let groups: Vec<Vec<Vec<u8>>> = want.hard_links.iter().cloned().collect();
    assert_eq!(
        groups,
        vec![vec![b"a/x/h5".to_vec(), b"z/h6.keep".to_vec()]]
    );
    let got = walk(&restored(&to, &src));
    let d = differences(&want, &got);
    assert!(d.is_empty(), "the restore differs:\n{}", d.join("\n"));
}

/// Peak resident memory (KiB) of `snap restore` of `env`'s newest
/// snapshot, as the process itself saw it at its end.
fn restore_peak_kib(env: &Env, to: &Path) -> u64 {
    let peak = env.path("peak");
    let out = env
        .cmd()
        .env("SNAP_TEST_RESTORE_WINDOW", "1000")
        .env(
            "SNAP_FAILPOINTS",
            format!("restore.done=peak({})", peak.display()),
        )
        .args(["restore", "latest", "--to"])
        .arg(to)
        .output()
        .unwrap();
    assert_success(&out, "restore");
    fs::read_to_string(&peak).unwrap().trim().parse().unwrap()
}

/// A tree of `dirs` directories of 100 small files.
fn many_files(root: &Path, dirs: usize) {
    for d in 0..dirs {
        let dir = root.join(format!("d{d:04}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            let seed = (d * 100 + f) as u64;
            fs::write(dir.join(format!("f{f:03}")), random_bytes(seed, 64 + f)).unwrap();
        }
    }
}

#[test]
fn restore_memory_does_not_grow_with_the_number_of_files() {
    let small = Env::new();
    many_files(&small.path("src"), 20);
    small.create(&[&small.path("src")], &[]);
    let large = Env::new();
    many_files(&large.path("src"), 400);
    large.create(&[&large.path("src")], &[]);
    let s = restore_peak_kib(&small, &small.path("out"));
    let l = restore_peak_kib(&large, &large.path("out"));
    let n = fs::read_dir(
        large
            .path("out")
            .join(large.path("src").strip_prefix("/").unwrap()),
    )
    .unwrap()
    .count();
    assert_eq!(n, 400);
    // Holding the whole plan took about 1.2 KiB a file: 45 MiB more for
    // the 38,000 files more.
    assert!(
        l < s + 16 * 1024,
        "peak RSS {l} KiB restoring 40,000 files, {s} KiB restoring 2,000"
    );
}

/// Peak RSS (KiB) of `snap ARGS` run to its end, from the kernel's own
/// account of the child (wait4), with its stdout thrown away.
fn peak_kib_of(env: &Env, args: &[&str]) -> u64 {
    use std::os::unix::process::ExitStatusExt;
    // Reaped by wait4 below (which also gives its peak RSS).
    #[allow(clippy::zombie_processes)]
    let child = env
        .cmd()
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data, filled in by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: the pid is our own child, not yet reaped.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    assert!(
        std::process::ExitStatus::from_raw(status).success(),
        "snap {args:?} failed"
    );
    usage.ru_maxrss as u64
}

// `ls` prints entries as the walk gives them out: it held every entry of
// the listing until the end (355 MB for 1,000,000 files).
#[test]
fn ls_memory_does_not_grow_with_the_number_of_files() {
    let small = Env::new();
    many_files(&small.path("src"), 20);
    small.create(&[&small.path("src")], &[]);
    let large = Env::new();
    many_files(&large.path("src"), 800);
    large.create(&[&large.path("src")], &[]);
    for json in [false, true] {
        let args: &[&str] = if json {
            &["--json", "ls", "latest"]
        } else {
            &["ls", "latest"]
        };
        let s = peak_kib_of(&small, args);
        let l = peak_kib_of(&large, args);
        // Holding the listing took about 350 bytes a file: 26 MiB more
        // for the 78,000 files more.
        assert!(
            l < s + 10 * 1024,
            "peak RSS {l} KiB listing 80,000 files, {s} KiB listing 2,000 (json: {json})"
        );
    }
}
