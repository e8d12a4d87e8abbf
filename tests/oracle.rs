//! An oracle for create + restore that shares no code with snap: it builds
//! trees of every kind of name and file type with libc, backs them up
//! through the real binary under several path forms, restores them, and
//! compares the restore with the source by its own walk (std::fs for the
//! tree, libc for xattrs): type, mode, owner, size, content hash, symlink
//! target, xattrs (ACLs included), device numbers, mtime with nanoseconds,
//! hard-link groups, and allocated blocks of sparse files.
//!
//! Sockets are recorded but not recreated (format-spec 05): the oracle
//! expects them absent from the restore, with a warning and exit 0.

mod common;
mod confine;

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use common::walk::{compare, cpath, differences, walk};
use common::{assert_success, is_root, Env};

// ----------------------------------------------------------- the generator

fn ok(r: libc::c_int, what: &str, p: &Path) {
    assert_eq!(
        r,
        0,
        "{what} {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

fn write(p: &Path, data: &[u8]) {
    fs::File::create(p).unwrap().write_all(data).unwrap();
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> bool {
    let c = cpath(p);
    let n = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of the given size.
    unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        ) == 0
    }
}

fn set_mtime(p: &Path, sec: i64, nsec: i64) {
    let c = cpath(p);
    let ts = [
        libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        },
        libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        },
    ];
    // SAFETY: valid path and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    ok(r, "utimensat", p);
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn bytes_name(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

fn random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A POSIX access ACL granting uid 1234 read (binary xattr form).
fn acl_bytes() -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    let undefined = u32::MAX;
    for (tag, perm, id) in [
        (0x01u16, 6u16, undefined), // user::rw-
        (0x02, 4, 1234),            // user:1234:r--
        (0x04, 4, undefined),       // group::r--
        (0x10, 4, undefined),       // mask::r--
        (0x20, 0, undefined),       // other::---
    ] {
        v.extend(tag.to_le_bytes());
        v.extend(perm.to_le_bytes());
        v.extend(id.to_le_bytes());
    }
    v
}

/// Builds the test tree in `src` (which must not exist).
fn generate(src: &Path) {
    fs::create_dir_all(src).unwrap();
    // Regular files: empty, small, multi-chunk, dense zeros, sparse.
    write(&src.join("empty"), b"");
    write(&src.join("small"), b"hello\n");
    write(&src.join("big"), &random(1, 3 << 20));
    write(&src.join("zeros"), &vec![0u8; 1 << 20]);
    let sparse = fs::File::create(src.join("sparse")).unwrap();
    sparse.set_len(16 << 20).unwrap();
    {
        use std::os::unix::fs::FileExt;
        sparse.write_all_at(&random(2, 5000), 7 << 20).unwrap();
    }
    drop(sparse);
    // Names: non-UTF-8, control characters, 255 bytes, glob syntax.
    let names = fs::create_dir(src.join("names"))
        .map(|_| src.join("names"))
        .unwrap();
    let odd: Vec<Vec<u8>> = vec![
        b"caf\xe9".to_vec(),
        b"\xff\xfe\x80".to_vec(),
        b"new\nline".to_vec(),
        b"tab\there".to_vec(),
        b"carriage\rreturn".to_vec(),
        b" leading space".to_vec(),
        b"trailing space ".to_vec(),
        b"-dash".to_vec(),
        b"...".to_vec(),
        b"back\\slash".to_vec(),
        b"*?[glob]{a,b}".to_vec(),
        b"quote\"'`$(x)".to_vec(),
        "emoji \u{1F600} \u{e9}".as_bytes().to_vec(),
        vec![b'x'; 255],
        [&"\u{e9}".repeat(127).into_bytes()[..], b"a"].concat(),
        b".snap-streams".to_vec(),
    ];
    for (i, n) in odd.iter().enumerate() {
        write(&bytes_name(&names, n), format!("file {i}\n").as_bytes());
    }
    let d = bytes_name(&names, b"dir\xe9\nx");
    fs::create_dir(&d).unwrap();
    write(&bytes_name(&d, &[b'y'; 255]), b"deep name");
    // Deep nesting: 100 levels.
    let mut deep = src.join("deep");
    for i in 0..100 {
        deep.push(format!("n{i}"));
    }
    fs::create_dir_all(&deep).unwrap();
    write(&deep.join("leaf"), b"at the bottom");
    // Symlinks: dangling, to a dir, to a file, absolute, with `..`,
    // non-UTF-8 and a long target.
    let links = src.join("links");
    fs::create_dir(&links).unwrap();
    symlink("does/not/exist", links.join("dangling")).unwrap();
    symlink("../names", links.join("to_dir")).unwrap();
    symlink("../small", links.join("to_file")).unwrap();
    symlink("/etc/passwd", links.join("absolute")).unwrap();
    symlink(OsStr::from_bytes(b"caf\xe9/../x"), links.join("bytes")).unwrap();
    symlink("l".repeat(4000), links.join("long")).unwrap();
    // Special files.
    let special = src.join("special");
    fs::create_dir(&special).unwrap();
    let c = cpath(&special.join("fifo"));
    // SAFETY: valid path.
    ok(
        unsafe { libc::mkfifo(c.as_ptr(), 0o640) },
        "mkfifo",
        &special,
    );
    drop(std::os::unix::net::UnixListener::bind(special.join("socket")).unwrap());
    if is_root() {
        let c = cpath(&special.join("char"));
        // SAFETY: valid path; creating a node opens no device.
        let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o620, libc::makedev(1, 3)) };
        ok(r, "mknod", &special);
        let c = cpath(&special.join("block"));
        // SAFETY: as above.
        let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o660, libc::makedev(7, 200)) };
        ok(r, "mknod", &special);
    }
    // Hard links: a group of three across directories, and a pair.
    let hl = src.join("hardlinks");
    fs::create_dir_all(hl.join("sub")).unwrap();
    write(&hl.join("a"), &random(3, 100_000));
    fs::hard_link(hl.join("a"), hl.join("sub/b")).unwrap();
    fs::hard_link(hl.join("a"), hl.join("c")).unwrap();
    write(&hl.join("p"), b"pair");
    fs::hard_link(hl.join("p"), hl.join("sub/q")).unwrap();
    // Xattrs on a file and a directory, an ACL, odd modes.
    let meta = src.join("meta");
    fs::create_dir(&meta).unwrap();
    write(&meta.join("xattr"), b"x");
    assert!(set_xattr(&meta.join("xattr"), "user.plain", b"value"));
    assert!(set_xattr(&meta.join("xattr"), "user.binary", b"\x00\xff\n"));
    assert!(set_xattr(&meta, "user.on_dir", b"d"));
    write(&meta.join("acl"), b"acl");
    chmod(&meta.join("acl"), 0o640);
    if !set_xattr(&meta.join("acl"), "system.posix_acl_access", &acl_bytes()) {
        eprintln!("note: no POSIX ACLs on this file system");
    }
    for (name, mode) in [
        ("m0000", 0o000),
        ("m4755", 0o4755),
        ("m2711", 0o2711),
        ("m0777", 0o777),
    ] {
        if mode == 0 && !is_root() {
            continue; // unreadable for the walk
        }
        write(&meta.join(name), name.as_bytes());
        chmod(&meta.join(name), mode);
    }
    fs::create_dir(meta.join("sticky")).unwrap();
    chmod(&meta.join("sticky"), 0o1777);
    fs::create_dir(meta.join("private")).unwrap();
    chmod(&meta.join("private"), 0o700);
    // Owners and times on everything, children before their directory.
    let all: Vec<Vec<u8>> = {
        let w = walk(src);
        w.entries.keys().rev().cloned().collect()
    };
    for (i, rel) in all.iter().enumerate() {
        let p = if rel.is_empty() {
            src.to_path_buf()
        } else {
            src.join(OsStr::from_bytes(rel))
        };
        if is_root() {
            let c = cpath(&p);
            let (uid, gid) = (1000 + (i as u32 % 3), 2000 + (i as u32 % 5));
            // SAFETY: valid path; lchown does not follow links.
            ok(unsafe { libc::lchown(c.as_ptr(), uid, gid) }, "lchown", &p);
        }
        let sec = match i % 4 {
            0 => 1_500_000_000 + i as i64 * 1000,
            1 => -86_400 * 365 * 20 + i as i64, // 1950
            2 => 4_102_444_800 + i as i64,      // 2100
            _ => i as i64,
        };
        set_mtime(&p, sec, (i as i64 * 7919 + 1) % 1_000_000_000);
    }
    // lchown clears set-id bits: set the modes again, then the times.
    for (name, mode) in [("m4755", 0o4755), ("m2711", 0o2711)] {
        let p = meta.join(name);
        let m = fs::metadata(&p).unwrap();
        chmod(&p, mode);
        set_mtime(&p, m.mtime(), m.mtime_nsec());
    }
    set_mtime(&meta, 1_600_000_000, 123_456_789);
}

// -------------------------------------------------------------- the tests

/// Backs up with `args` (run in `cwd`), restores the newest snapshot, and
/// compares the restored copy of `src` with `src`.
fn round_trip(env: &Env, cwd: &Path, args: &[OsString], src: &Path, label: &str) {
    let out = env
        .cmd()
        .current_dir(cwd)
        .arg("--json")
        .arg("create")
        .args(args)
        .output()
        .unwrap();
    assert_success(&out, &format!("{label}: create"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["incomplete"], false, "{label}: {report}");
    let to = env.path(&format!("restore-{label}"));
    let out = env
        .cmd()
        .args([
            OsStr::new("restore"),
            OsStr::new("latest"),
            OsStr::new("--to"),
        ])
        .arg(&to)
        .output()
        .unwrap();
    assert_success(&out, &format!("{label}: restore"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("socket"),
        "{label}: the socket left out must be named in a warning: {err}"
    );
    let got = to.join(src.strip_prefix("/").unwrap());
    let d = differences(&walk(src), &walk(&got));
    assert!(
        d.is_empty(),
        "{label}: the restore differs:\n{}",
        d.join("\n")
    );
}

#[test]
fn every_kind_of_entry_survives_create_and_restore_under_every_path_form() {
    let env = Env::new();
    let base = env.path("data");
    let src = base.join("src");
    generate(&src);
    let before = walk(&src);
    assert!(
        before.entries.len() > 150,
        "{} entries",
        before.entries.len()
    );
    let p = |x: &Path| OsString::from(x);

    round_trip(&env, &src, &[p(&src)], &src, "absolute");
    round_trip(&env, &src.join("deep"), &["..".into()], &src, "dotdot");
    round_trip(&env, &src, &[".".into()], &src, "dot");
    round_trip(
        &env,
        &base,
        &[format!("{}/", src.display()).into()],
        &src,
        "slash",
    );
    round_trip(
        &env,
        &base,
        &[p(&src.join("names")), p(&src), p(&src.join("deep/n0"))],
        &src,
        "overlap",
    );
    let alias = env.path("alias");
    symlink(&base, &alias).unwrap();
    round_trip(
        &env,
        &base,
        &[p(&alias.join("src"))],
        &alias.join("src"),
        "symlinked",
    );
    let mut root = vec![OsString::from("/")];
    for e in confine::excludes_keeping(&[&src]) {
        root.push("--exclude".into());
        root.push(e.into());
    }
    round_trip(&env, &base, &root, &src, "root");

    // The source was only read.
    let d = compare(&before, &walk(&src), false);
    assert!(
        d.is_empty(),
        "the backups changed the source:\n{}",
        d.join("\n")
    );
    env.ok(["check", "--read-data"]);
}

#[test]
fn a_directory_too_large_for_one_tree_blob_is_stored_in_parts() {
    // ~17k symlinks with 4000-byte targets: a listing of ~70 MB, over the
    // 64 MiB limit of one tree blob (as 260k long file names are).
    let env = Env::new();
    let src = env.path("src");
    let big = src.join("big");
    fs::create_dir_all(&big).unwrap();
    write(&src.join("before"), b"a file beside the big directory");
    let n = 17_500;
    for i in 0..n {
        let target = format!("{i:0>4000}");
        symlink(&target, big.join(format!("l{i:05}"))).unwrap();
    }
    let r = env.create(&[&src], &[]);
    assert_eq!(r["incomplete"], false, "{r}");
    let to = env.path("out1");
    env.restore("latest", &to);
    let d = differences(&walk(&src), &walk(&to.join(src.strip_prefix("/").unwrap())));
    assert!(d.is_empty(), "{}", d.join("\n"));
    // A second snapshot reuses the parts; after the first is forgotten,
    // prune must keep every part the second one needs.
    fs::remove_file(src.join("before")).unwrap();
    env.create(&[&src], &[]);
    let first = env.snapshot_ids()[0].clone();
    env.ok(["forget", &first]);
    env.ok(["prune", "--keep-last", "1"]);
    env.ok(["check", "--read-data"]);
    let to = env.path("out2");
    env.restore("latest", &to);
    let d = differences(&walk(&src), &walk(&to.join(src.strip_prefix("/").unwrap())));
    assert!(d.is_empty(), "{}", d.join("\n"));
    let listed = env.ok(["ls", "latest"]);
    assert_eq!(listed.lines().filter(|l| l.contains("/big/l")).count(), n);
}

fn remove_xattr(p: &Path, name: &str) {
    let c = cpath(p);
    let n = CString::new(name).unwrap();
    // SAFETY: valid NUL-terminated strings.
    ok(
        unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) },
        "lremovexattr",
        p,
    );
}

/// Xattrs set, changed or removed between two backups, on files whose
/// content and mtime stay the same and on a directory, and a symlink
/// replaced by another, are in the second snapshot: create takes the
/// parent's xattrs and symlink targets over only for an inode whose ctime
/// is unchanged (what setting an xattr changes), else it reads them.
#[test]
fn xattrs_and_symlinks_changed_between_backups_are_in_the_next_snapshot() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    for n in ["a", "b", "c", "d/e"] {
        write(&src.join(n), n.as_bytes());
    }
    if !set_xattr(&src.join("a"), "user.k", b"1") {
        eprintln!("no user xattrs on this file system: skipped");
        return;
    }
    assert!(set_xattr(&src.join("b"), "user.k", b"2"));
    assert!(set_xattr(&src.join("d"), "user.k", b"3"));
    assert!(set_xattr(&src.join("d/e"), "user.k", b"4"));
    symlink("a", src.join("l")).unwrap();
    symlink("c", src.join("d/m")).unwrap();
    for (i, n) in ["a", "b", "c", "d/e", "l", "d/m", "d"].iter().enumerate() {
        set_mtime(&src.join(n), 1_500_000_000 + i as i64, 0);
    }
    env.create(&[&src], &[]);
    let first = walk(&src);
    // A symlink replaced by one to elsewhere (its target is read again;
    // `d/m`'s is taken over).
    fs::remove_file(src.join("l")).unwrap();
    symlink("b, and longer", src.join("l")).unwrap();
    set_mtime(&src.join("l"), 1_500_000_004, 0);
    assert!(set_xattr(&src.join("a"), "user.k", b"changed"));
    remove_xattr(&src.join("b"), "user.k");
    assert!(set_xattr(&src.join("c"), "user.new", b"5"));
    assert!(set_xattr(&src.join("d"), "user.k", b"changed too"));
    let second = walk(&src);
    for n in ["a", "b", "c", "d"] {
        let (x, y) = (&first.entries[n.as_bytes()], &second.entries[n.as_bytes()]);
        assert_ne!(x.xattrs, y.xattrs, "{n}: the xattrs changed");
        assert_eq!(x.mtime, y.mtime, "{n}: the mtime did not");
    }
    // Read again: the files whose ctime changed; taken over: `d/e` (its
    // xattr too).
    let r = env.create(&[&src], &[]);
    assert_eq!(r["summary"]["files_unchanged"], 1, "{r}");
    let to = env.path("out");
    env.restore("latest", &to);
    let d = differences(&second, &walk(&to.join(src.strip_prefix("/").unwrap())));
    assert!(d.is_empty(), "{}", d.join("\n"));
}

/// A tree 1500 directories deep (one-letter names, as far as PATH_MAX lets
/// a path go): the walk must not run out of stack, and restore, ls and
/// check go all the way down.
#[test]
fn a_tree_1500_levels_deep_is_backed_up_and_restored() {
    let env = Env::new();
    let src = env.path("src");
    let mut deep = src.clone();
    for _ in 0..1500 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    write(&deep.join("leaf"), b"at the bottom");
    write(&src.join("top"), b"at the top");
    let r = env.create(&[&src], &[]);
    assert_eq!(r["incomplete"], false, "{r}");
    env.ok(["check", "--read-data"]);
    let to = env.path("out");
    env.restore("latest", &to);
    let d = differences(&walk(&src), &walk(&to.join(src.strip_prefix("/").unwrap())));
    assert!(d.is_empty(), "{}", d.join("\n"));
    assert!(env
        .ok(["ls", "latest"])
        .lines()
        .any(|l| l.ends_with("/d/leaf")));
}
