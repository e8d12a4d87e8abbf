//! `snap dump --archive` through the real binary: a directory as a tar
//! stream, extracted by GNU tar and compared with its source by the tests'
//! own walk (content, modes, owners, mtimes with nanoseconds, symlink
//! targets, hard links, xattrs); as zip, read back by the `zip` crate;
//! `--target`; a damaged pack; and a single file still as raw bytes.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::walk::{self, Kind};
use common::*;

const EXIT_DAMAGED: i32 = 11;

/// A non-UTF-8 file name.
const ODD: &[u8] = b"caf\xe9-\xff.txt";

/// A tree of everything tar holds: files (empty, multi-chunk, set-uid,
/// non-UTF-8 name, a path longer than 100 bytes), directories with modes,
/// symlinks (one with a target longer than 100 bytes), a hard-link pair,
/// a fifo, an xattr, and mtimes with nanoseconds. Returns its root.
fn tree(env: &Env) -> PathBuf {
    let src = env.path("src");
    fs::create_dir_all(src.join("sub/deeper")).unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    write_random(&src.join("big.bin"), 7, 3_000_000);
    fs::write(src.join("small.txt"), b"hello\n").unwrap();
    chmod(&src.join("small.txt"), 0o755);
    fs::write(src.join("suid"), b"#!/bin/sh\n").unwrap();
    chmod(&src.join("suid"), 0o4755);
    fs::write(src.join(os(ODD)), b"odd name\n").unwrap();
    let long_dir = src.join("d".repeat(70));
    fs::create_dir(&long_dir).unwrap();
    let long_file = long_dir.join(format!("{}.txt", "f".repeat(80)));
    write_random(&long_file, 8, 70_000);
    symlink("small.txt", src.join("link")).unwrap();
    symlink(
        format!("../{}/missing", "t".repeat(150)),
        src.join("longlink"),
    )
    .unwrap();
    fs::write(src.join("sub/hl1"), b"linked twice\n").unwrap();
    fs::hard_link(src.join("sub/hl1"), src.join("sub/deeper/hl2")).unwrap();
    mkfifo(&src.join("sub/fifo"));
    fs::write(src.join("sub/tagged"), b"with an xattr\n").unwrap();
    xattr::set(src.join("sub/tagged"), "user.snap-test", b"value \x00\x01").unwrap();
    chmod(&src.join("sub/deeper"), 0o700);
    chmod(&src.join("sub"), 0o2750);
    chmod(&src, 0o750);
    // Mtimes last, deepest first (writing into a directory changes its mtime).
    let mut t = 1_600_000_000;
    for rel in [
        "empty",
        "big.bin",
        "small.txt",
        "suid",
        "link",
        "longlink",
        "sub/hl1",
        "sub/fifo",
        "sub/tagged",
        "sub/deeper",
        "sub",
    ] {
        set_mtime(&src.join(rel), t, 123_456_789);
        t += 3600;
    }
    set_mtime(&src.join(os(ODD)), t, 0);
    set_mtime(&long_file, t, 5);
    set_mtime(&long_dir, t, 500_000_000);
    set_mtime(&src, t + 1, 1);
    src
}

/// `snap dump ARGS` with stdout captured; asserts success.
fn dump(env: &Env, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let mut all: Vec<&std::ffi::OsStr> = vec!["dump".as_ref()];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert_success(&out, "dump");
    out.stdout
}

/// Extracts a tar stream with GNU tar into `dir` (xattrs included).
fn untar(archive: &[u8], dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let mut tar = Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "-x",
            "-p",
            "-f",
            "-",
            "-C",
        ])
        .arg(dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("GNU tar runs");
    tar.stdin.take().unwrap().write_all(archive).unwrap();
    let out = tar.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tar -x: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The archive path of an absolute source path: without its leading `/`.
fn inside(dir: &Path, src: &Path) -> PathBuf {
    restored(dir, src)
}

#[test]
fn a_directory_is_a_tar_that_gnu_tar_extracts_exactly() {
    let env = Env::new();
    let src = tree(&env);
    env.create(&[&src], &[]);
    let want = walk::walk(&src);
    assert!(want.entries.values().any(|e| e.kind == Kind::Fifo));
    assert!(!want.hard_links.is_empty());

    // A directory without --archive is a tar.
    let archive = dump(&env, &["latest".as_ref(), src.as_os_str()]);
    let x = env.path("x");
    untar(&archive, &x);
    let d = walk::differences(&want, &walk::walk(&inside(&x, &src)));
    assert!(d.is_empty(), "tar differs from source:\n{}", d.join("\n"));
    // Nothing but the dumped directory (and the parents tar makes for it).
    assert_eq!(
        fs::read_dir(&x).unwrap().count(),
        1,
        "one top-level entry in {}",
        x.display()
    );

    // `--archive tar` is the same stream.
    let again = dump(
        &env,
        &[
            "latest".as_ref(),
            src.as_os_str(),
            "--archive".as_ref(),
            "tar".as_ref(),
        ],
    );
    assert!(again == archive, "--archive tar writes the same bytes");

    // `/` is the whole snapshot, paths as they are below `/`.
    let all = dump(&env, &["latest".as_ref(), "/".as_ref()]);
    let y = env.path("y");
    untar(&all, &y);
    let d = walk::differences(&want, &walk::walk(&inside(&y, &src)));
    assert!(
        d.is_empty(),
        "tar of / differs from source:\n{}",
        d.join("\n")
    );
}

#[test]
fn a_single_file_is_raw_bytes_unless_an_archive_is_asked_for() {
    let env = Env::new();
    let src = tree(&env);
    env.create(&[&src], &[]);
    let big = src.join("big.bin");
    let raw = dump(&env, &["latest".as_ref(), big.as_os_str()]);
    assert!(raw == fs::read(&big).unwrap(), "raw bytes of big.bin");
    let odd = src.join(os(ODD));
    let raw = dump(&env, &["latest".as_ref(), odd.as_os_str()]);
    assert_eq!(raw, b"odd name\n");

    // With --archive tar: one entry, the file at its path.
    let archive = dump(
        &env,
        &[
            "latest".as_ref(),
            big.as_os_str(),
            "-a".as_ref(),
            "tar".as_ref(),
        ],
    );
    let x = env.path("x");
    untar(&archive, &x);
    let got = inside(&x, &src);
    assert_eq!(fs::read_dir(&got).unwrap().count(), 1);
    assert!(fs::read(got.join("big.bin")).unwrap() == fs::read(&big).unwrap());

    // A fifo alone is neither a file nor a directory.
    let fifo = src.join("sub/fifo");
    let out = env.run(["dump".as_ref(), "latest".as_ref(), fifo.as_os_str()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("fifo"), "{}", stderr(&out));
}

#[test]
fn zip_holds_files_dirs_symlinks_modes_and_mtimes() {
    let env = Env::new();
    let src = tree(&env);
    env.create(&[&src], &[]);
    let want = walk::walk(&src);
    let target = env.path("out.zip");
    let out = env.run([
        "--json".as_ref(),
        "dump".as_ref(),
        "latest".as_ref(),
        src.as_os_str(),
        "--archive".as_ref(),
        "zip".as_ref(),
        "--target".as_ref(),
        target.as_os_str(),
    ]);
    assert_success(&out, "dump --archive zip");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["archive"], "zip");
    assert_eq!(report["target"], target.display().to_string());
    // Everything but the fifo.
    assert_eq!(num(&report, "entries"), want.entries.len() as u64 - 1);
    let file_bytes: u64 = want.entries.values().map(|e| e.size).sum();
    assert_eq!(num(&report, "bytes"), file_bytes);
    let warnings: Vec<String> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert!(warnings.iter().any(|w| w.contains("fifo")), "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("not UTF-8")),
        "{warnings:?}"
    );
    assert!(stderr(&out).contains("warning: "), "{}", stderr(&out));

    let prefix = format!("{}/", src.strip_prefix("/").unwrap().display());
    let mut zip = zip::ZipArchive::new(fs::File::open(&target).unwrap()).unwrap();
    let mut seen = 0;
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().to_string();
        let rel = name
            .strip_prefix(&prefix)
            .or((name == prefix).then_some(""))
            .unwrap_or_else(|| panic!("{name} outside {prefix}"))
            .trim_end_matches('/');
        // Non-UTF-8 names are in snap's escaped form.
        let key: Vec<u8> = if rel == escaped(ODD) {
            ODD.to_vec()
        } else {
            rel.as_bytes().to_vec()
        };
        let e = want
            .entries
            .get(&key)
            .unwrap_or_else(|| panic!("{name} is not in the source"));
        seen += 1;
        let mode = f.unix_mode().unwrap();
        assert_eq!(mode & 0o777, e.mode & 0o777, "{name}: mode");
        let mtime = f
            .extra_data_fields()
            .find_map(|x| match x {
                zip::extra_fields::ExtraField::ExtendedTimestamp(t) => t.mod_time(),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name}: no extended timestamp"));
        assert_eq!(i64::from(mtime), e.mtime.0, "{name}: mtime");
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        match e.kind {
            Kind::Dir => assert!(f.is_dir(), "{name}: a directory"),
            Kind::Symlink => {
                assert!(f.is_symlink(), "{name}: a symlink");
                assert_eq!(Some(data), e.target, "{name}: target");
            }
            Kind::File => {
                assert!(f.is_file(), "{name}: a file");
                assert_eq!(
                    blake3::hash(&data).to_hex().to_string(),
                    *e.hash.as_ref().unwrap(),
                    "{name}: content"
                );
            }
            k => panic!("{name}: a {k:?} in the zip"),
        }
    }
    assert_eq!(seen, want.entries.len() - 1, "every entry but the fifo");

    if Path::new("/usr/bin/unzip").exists() {
        let t = Command::new("/usr/bin/unzip")
            .arg("-tq")
            .arg(&target)
            .output()
            .unwrap();
        assert!(t.status.success(), "unzip -t: {}", stdout(&t));
    }
}

#[test]
fn a_damaged_pack_fails_the_dump_with_one_line_and_no_complete_archive() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("victim.bin"), 11, 3 << 20);
    fs::write(src.join("a.txt"), b"before the victim\n").unwrap();
    env.create(&[&src], &[]);
    // The largest pack holds victim.bin's data.
    let (pack, len) = env.packs()[0].clone();
    flip_byte(&pack, len / 3);

    for archive in ["tar", "zip"] {
        let out = env.run([
            "dump".as_ref(),
            "latest".as_ref(),
            src.as_os_str(),
            "--archive".as_ref(),
            archive.as_ref(),
        ]);
        let err = stderr(&out);
        assert_eq!(code(&out), EXIT_DAMAGED, "{archive}: {err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("snap:")).collect();
        assert_eq!(errors.len(), 1, "{archive}: {err}");
        // Damaged when read; missing once the first read has recorded it.
        assert!(
            errors[0].contains("damaged") || errors[0].contains("missing"),
            "{archive}: {err}"
        );
        assert!(errors[0].contains("victim.bin"), "names the file: {err}");
        if archive == "tar" {
            // What was written is cut short, never a whole archive.
            let t = Command::new("tar")
                .args(["-t", "-f", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut t = t;
            t.stdin.take().unwrap().write_all(&out.stdout).unwrap();
            assert!(
                !t.wait().unwrap().success(),
                "tar reads a cut archive as whole"
            );
        } else {
            assert!(
                zip::ZipArchive::new(std::io::Cursor::new(&out.stdout)).is_err(),
                "a cut zip has no central directory"
            );
        }
    }

    // To a file: no file (nor a partial one) is left.
    let target = env.path("out.tar");
    let out = env.run([
        "dump".as_ref(),
        "latest".as_ref(),
        src.as_os_str(),
        "--target".as_ref(),
        target.as_os_str(),
    ]);
    assert_eq!(code(&out), EXIT_DAMAGED, "{}", stderr(&out));
    assert!(!target.exists());
    let left: Vec<_> = fs::read_dir(env.path("")).unwrap().collect();
    assert!(
        !left.iter().any(|e| e
            .as_ref()
            .unwrap()
            .file_name()
            .as_bytes()
            .starts_with(b".out.tar")),
        "a partial file is left"
    );
}

#[test]
fn target_writes_a_file_and_says_so() {
    let env = Env::new();
    let src = tree(&env);
    env.create(&[&src], &[]);
    let target = env.path("etc.tar");
    fs::write(&target, b"an older file").unwrap();
    let out = env.run([
        "dump".as_ref(),
        "latest".as_ref(),
        src.as_os_str(),
        "-t".as_ref(),
        target.as_os_str(),
    ]);
    assert_success(&out, "dump --target");
    assert!(stdout(&out).contains("tar archive"), "{}", stdout(&out));
    let archive = fs::read(&target).unwrap();
    let x = env.path("x");
    untar(&archive, &x);
    let d = walk::differences(&walk::walk(&src), &walk::walk(&inside(&x, &src)));
    assert!(d.is_empty(), "tar differs from source:\n{}", d.join("\n"));

    // A single file to a file: its bytes.
    let out = env.json([
        "dump".as_ref(),
        "latest".as_ref(),
        src.join("big.bin").as_os_str(),
        "--target".as_ref(),
        target.as_os_str(),
    ]);
    assert_eq!(out["archive"], "file");
    assert_eq!(num(&out, "bytes"), 3_000_000);
    assert!(out["snapshot"]["id"].is_string());
    assert!(fs::read(&target).unwrap() == fs::read(src.join("big.bin")).unwrap());
}

/// Peak resident memory so far (`VmHWM`, KiB) of a running process.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_large_file_is_streamed_in_bounded_memory() {
    const LEN: usize = 24 << 20;
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("large.bin"), 9, LEN);
    env.create(&[&src], &[]);
    for archive in ["tar", "zip"] {
        let mut child = env
            .cmd()
            .args(["dump".as_ref(), "latest".as_ref(), src.as_os_str()])
            .args(["--archive", archive])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        // Read slowly enough that snap waits on the pipe, and look at
        // its peak memory while it does.
        let (mut total, mut peak) = (0usize, 0u64);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = out.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            if let Some(p) = peak_kib(child.id()) {
                peak = peak.max(p);
            }
        }
        assert!(child.wait().unwrap().success(), "{archive}");
        assert!(total >= LEN, "{archive}: {total} bytes");
        assert!(peak > 0, "{archive}: no peak read");
        // Holding the file would take more than the file.
        assert!(
            peak < (LEN / 1024) as u64,
            "{archive}: peak {peak} KiB while dumping a {} KiB file",
            LEN / 1024
        );
    }
}
