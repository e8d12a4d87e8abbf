//! Round trips through the real binary: what `create` saw, `restore`
//! gives back byte for byte, with metadata.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use common::*;

/// A source tree with every kind of thing the engine must keep.
fn build_fixture(src: &Path) {
    fs::create_dir_all(src.join("dir/sub")).unwrap();
    fs::create_dir(src.join("emptydir")).unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    fs::write(src.join("dir/sub/deep.txt"), b"deep\n").unwrap();
    fs::write(src.join("Ünïcødé 日本語 🎉.txt"), "unicode name\n").unwrap();
    // 255-byte names: ASCII, and multi-byte (127 x 2 bytes + 1).
    fs::write(src.join("L".repeat(255)), b"long ascii name").unwrap();
    fs::write(
        src.join(format!("{}x", "é".repeat(127))),
        b"long utf-8 name",
    )
    .unwrap();
    // A name that is not UTF-8 at all.
    fs::write(src.join(os(b"raw-\xff\xfe-name")), b"latin-1 bytes").unwrap();
    fs::write(src.join("new\nline"), b"a newline in the name").unwrap();

    symlink("dir/sub/deep.txt", src.join("link")).unwrap();
    symlink("/nonexistent/target", src.join("dangling")).unwrap();
    symlink("dir", src.join("dirlink")).unwrap();

    // Three names for one inode, in different directories.
    fs::write(src.join("hl_a"), b"hard-linked content").unwrap();
    fs::hard_link(src.join("hl_a"), src.join("dir/hl_b")).unwrap();
    fs::hard_link(src.join("hl_a"), src.join("dir/sub/hl_c")).unwrap();

    // Permissions, including set-id, sticky and no bits at all.
    for (name, mode) in [
        ("mode_000", 0o000),
        ("mode_4755", 0o4755),
        ("mode_2750", 0o2750),
        ("mode_1644", 0o1644),
        ("mode_600", 0o600),
    ] {
        fs::write(src.join(name), name.as_bytes()).unwrap();
        chmod(&src.join(name), mode);
    }
    // A read-only directory with content: restore must fill it first.
    fs::create_dir(src.join("ro_dir")).unwrap();
    fs::write(src.join("ro_dir/inside"), b"inside a 0555 dir").unwrap();
    if is_root() {
        fs::create_dir(src.join("dir_000")).unwrap();
        fs::write(src.join("dir_000/hidden"), b"inside a 0000 dir").unwrap();
        // Ownership (restored only as root).
        fs::write(src.join("owned"), b"owned by 1234:5678").unwrap();
        std::os::unix::fs::lchown(src.join("owned"), Some(1234), Some(5678)).unwrap();
        // A device node (metadata only).
        let c = std::ffi::CString::new(src.join("null").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid path; makes a character device 1:3.
        let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o640, libc::makedev(1, 3)) };
        assert_eq!(r, 0);
    }

    mkfifo(&src.join("fifo"));

    // Extended attributes on a file and a directory (binary value too).
    xattr::set(src.join("dir/sub/deep.txt"), "user.comment", b"hello").unwrap();
    xattr::set(src.join("dir"), "user.bin", &[0u8, 1, 2, 255]).unwrap();

    // Larger than several max chunks (max = 512 KiB here): random, then a
    // long run of written zeros, then random again.
    let mut big = random_bytes(1, 1536 * 1024);
    big.extend(std::iter::repeat_n(0u8, 1536 * 1024));
    big.extend(random_bytes(2, 1024 * 1024 + 17));
    fs::write(src.join("big.bin"), &big).unwrap();

    // A sparse file: 24 MiB long with three small islands of data.
    {
        use std::os::unix::fs::FileExt;
        let f = fs::File::create(src.join("sparse.bin")).unwrap();
        f.set_len(24 << 20).unwrap();
        f.write_all_at(&random_bytes(3, 4096), 0).unwrap();
        f.write_all_at(&random_bytes(4, 8192), 10 << 20).unwrap();
        f.write_all_at(&random_bytes(5, 100), (24 << 20) - 100)
            .unwrap();
    }

    // Times with nanoseconds, on everything (directories last, since
    // filling them changes their mtime).
    set_mtime(&src.join("big.bin"), 1_600_000_000, 123_456_789);
    set_mtime(&src.join("empty"), 1_000_000_000, 1);
    set_mtime(&src.join("link"), 1_500_000_000, 987_654_321);
    set_mtime(&src.join("fifo"), 1_400_000_000, 500);
    set_mtime(&src.join("hl_a"), 1_300_000_000, 42);
    set_mtime(&src.join("ro_dir/inside"), 1_200_000_000, 7);
    set_mtime(&src.join("dir/sub"), 1_100_000_000, 999_999_999);
    set_mtime(&src.join("dir"), 1_100_000_001, 1);
    set_mtime(&src.join("emptydir"), 1_000_000_123, 456);
    chmod(&src.join("ro_dir"), 0o555);
    set_mtime(&src.join("ro_dir"), 1_234_567_890, 0);
    if is_root() {
        chmod(&src.join("dir_000"), 0o000);
    }
    chmod(&src.join("emptydir"), 0o750);
}

#[test]
fn round_trip_keeps_content_and_metadata() {
    let env = Env::new();
    let src = env.path("src");
    build_fixture(&src);
    set_mtime(&src, 1_111_111_111, 111);

    let report = env.create(&[&src], &["--tag", "rt"]);
    assert_eq!(report["incomplete"], false, "{report}");
    let s = &report["summary"];
    let regular_names = 18 + if is_root() { 2 } else { 0 };
    assert_eq!(
        num(s, "files_new"),
        regular_names,
        "every regular file name counts once: {s}"
    );
    assert!(s["warnings"].as_array().unwrap().is_empty(), "{s}");

    let target = env.path("restore");
    env.restore("latest", &target);
    let out = restored(&target, &src);
    assert_same_tree(&src, &out);

    // Hard links come back as hard links: one inode, three names.
    let a = fs::metadata(out.join("hl_a")).unwrap();
    let b = fs::metadata(out.join("dir/hl_b")).unwrap();
    let c = fs::metadata(out.join("dir/sub/hl_c")).unwrap();
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 3));
    assert_eq!(a.ino(), c.ino());

    // Holes stay holes: the restored sparse file allocates no more blocks
    // than the original (a little slack for file system bookkeeping).
    let orig = fs::metadata(src.join("sparse.bin")).unwrap().blocks();
    let back = fs::metadata(out.join("sparse.bin")).unwrap().blocks();
    assert!(
        back <= orig + 16,
        "sparse file inflated: {back} blocks restored vs {orig} original"
    );
    // The long run of written zeros in big.bin need not be allocated either,
    // but the file must be whole.
    assert_eq!(
        fs::metadata(out.join("big.bin")).unwrap().len(),
        fs::metadata(src.join("big.bin")).unwrap().len()
    );
}

#[test]
fn restore_into_a_non_empty_target_replaces_changed_files() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    write_random(&src.join("d/a.bin"), 7, 300_000);
    fs::write(src.join("small"), b"version one").unwrap();
    env.create(&[&src], &[]);

    let target = env.path("restore");
    env.restore("latest", &target);
    let out = restored(&target, &src);
    // Damage the restored copy: longer, shorter and replaced by a symlink.
    fs::write(out.join("d/a.bin"), vec![1u8; 400_000]).unwrap();
    fs::write(out.join("small"), b"v").unwrap();
    env.restore("latest", &target);
    assert_same_tree(&src, &out);

    fs::remove_file(out.join("small")).unwrap();
    symlink("/etc/passwd", out.join("small")).unwrap();
    env.restore("latest", &target);
    assert_same_tree(&src, &out);
    assert!(fs::read(out.join("small")).unwrap() == b"version one");
}

#[test]
fn include_and_exclude_select_what_is_restored() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("keep/deeper")).unwrap();
    fs::create_dir_all(src.join("skip")).unwrap();
    fs::write(src.join("keep/deeper/x.txt"), b"x").unwrap();
    fs::write(src.join("keep/y.log"), b"y").unwrap();
    fs::write(src.join("skip/z.txt"), b"z").unwrap();
    env.create(&[&src], &[]);

    let target = env.path("restore");
    env.ok([
        "restore".as_ref(),
        "latest".as_ref(),
        "--to".as_ref(),
        target.as_os_str(),
        "--include".as_ref(),
        "keep".as_ref(),
        "--exclude".as_ref(),
        "*.log".as_ref(),
    ]);
    let out = restored(&target, &src);
    assert_eq!(fs::read(out.join("keep/deeper/x.txt")).unwrap(), b"x");
    assert!(!out.join("keep/y.log").exists());
    assert!(!out.join("skip").exists());
}
