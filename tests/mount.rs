//! `snap mount`: a real FUSE mount of real snapshots, read with ordinary
//! tools (`cmp`, `find`, std::fs) and compared with the source by the
//! tests' own walk; a damaged chunk fails its file with EIO; unmounting
//! (fusermount3 -u, SIGTERM, SIGINT) ends the process with exit 0.
//!
//! Skipped (with a message) only where /dev/fuse is absent.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::walk::{compare, show, walk, Kind};
use common::*;
use serde_json::Value;

fn fuse_available() -> bool {
    if Path::new("/dev/fuse").exists() {
        return true;
    }
    eprintln!("skipping: /dev/fuse is absent, FUSE mounts cannot be tested here");
    false
}

/// Whether `mp` is a mount point now, by /proc/mounts.
fn mounted(mp: &Path) -> bool {
    let want = mp.to_str().unwrap().replace(' ', "\\040");
    fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(want.as_str()))
}

/// A `snap mount` running in the background.
struct Mount {
    child: Option<Child>,
    mp: PathBuf,
    out: PathBuf,
    err: PathBuf,
}

impl Mount {
    /// Starts `snap --json mount MP EXTRA...` and waits until it is mounted.
    fn start(env: &Env, name: &str, extra: &[&str]) -> Mount {
        let mp = env.path(name);
        fs::create_dir_all(&mp).unwrap();
        let mp = mp.canonicalize().unwrap();
        let (out, err) = (
            env.path(&format!("{name}.out")),
            env.path(&format!("{name}.err")),
        );
        let child = env
            .cmd()
            .arg("--json")
            .arg("mount")
            .arg(&mp)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let mut m = Mount {
            child: Some(child),
            mp,
            out,
            err,
        };
        let until = Instant::now() + Duration::from_secs(30);
        while !mounted(&m.mp) {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("snap mount ended ({st}): {}", m.stderr());
            }
            assert!(
                Instant::now() < until,
                "not mounted in 30 s: {}",
                m.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits for the process to end after an unmount; asserts exit 0 and
    /// that the mount point is gone; returns the JSON report.
    fn wait(mut self) -> Value {
        let mut child = self.child.take().unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        let st = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < until, "still serving 30 s after unmount");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(st.success(), "snap mount exited {st}: {}", self.stderr());
        assert!(!mounted(&self.mp), "{} still mounted", self.mp.display());
        let out = fs::read_to_string(&self.out).unwrap();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON {out:?}: {e}"))
    }

    fn fusermount_u(self) -> Value {
        let st = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mp)
            .status()
            .expect("fusermount3 runs (Debian package fuse3)");
        assert!(st.success(), "fusermount3 -u: {st}");
        self.wait()
    }

    fn send(&self, sig: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        // SAFETY: a signal to our own child.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    fn signal(self, sig: i32) -> Value {
        self.send(sig);
        self.wait()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("fusermount3")
                .arg("-uz")
                .arg(&self.mp)
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A source tree: a multi-chunk file, small and empty files, a symlink,
/// nested directories and a name that is not UTF-8.
fn source(env: &Env) -> PathBuf {
    let src = env.path("src");
    write_random(&src.join("big.bin"), 11, 3 << 20);
    fs::write(src.join("a.txt"), b"alpha\n").unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    fs::create_dir_all(src.join("nested/deeper/deepest")).unwrap();
    fs::write(src.join("nested/deeper/b.txt"), b"bravo bravo\n").unwrap();
    write_random(&src.join("nested/deeper/deepest/c.bin"), 12, 200_000);
    fs::write(src.join(os(b"caf\xe9.txt")), b"not utf-8 name\n").unwrap();
    std::os::unix::fs::symlink("nested/deeper/b.txt", src.join("link")).unwrap();
    chmod(&src.join("a.txt"), 0o640);
    set_mtime(&src.join("nested/deeper/b.txt"), 1_600_000_000, 123_456_789);
    src
}

/// Entries below `root` as `find -printf '%P\0'` lists them.
fn find_list(root: &Path) -> BTreeSet<Vec<u8>> {
    let out = Command::new("find")
        .arg(root)
        .args(["-mindepth", "1", "-printf", "%P\\0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "find: {:?}", out);
    out.stdout
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn a_mounted_snapshot_reads_like_its_source_and_unmounts_cleanly() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let src = source(&env);
    let r1 = env.create(&[&src], &["--host", "h1", "--tag", "t1"]);
    let id1 = r1["snapshot"].as_str().unwrap()[..8].to_string();
    let r2 = env.create(&[&src], &["--host", "h2", "--tag", "t2", "--tag", "t1"]);
    let id2 = r2["snapshot"].as_str().unwrap()[..8].to_string();
    let m = Mount::start(&env, "mnt", &["--cache-size", "1M"]);
    let mp = m.mp.clone();

    assert_eq!(
        names(&mp),
        ["hosts", "ids", "snapshots", "tags"]
            .map(String::from)
            .into()
    );
    assert_eq!(names(&mp.join("ids")), [id1.clone(), id2.clone()].into());
    assert_eq!(
        names(&mp.join("hosts")),
        ["h1", "h2"].map(String::from).into()
    );
    assert_eq!(
        names(&mp.join("tags")),
        ["t1", "t2"].map(String::from).into()
    );
    let times = names(&mp.join("snapshots"));
    assert_eq!(times.len(), 3, "two TIME dirs and latest: {times:?}");
    assert!(times.contains("latest"));
    let in_h1 = names(&mp.join("hosts/h1"));
    assert_eq!(in_h1.len(), 2, "{in_h1:?}");
    let t1_time = in_h1.iter().find(|n| *n != "latest").unwrap().clone();
    assert_eq!(
        fs::read_link(mp.join("hosts/h1/latest")).unwrap(),
        Path::new(&t1_time)
    );
    assert_eq!(
        names(&mp.join("tags/t1")).len(),
        3,
        "both snapshots and latest"
    );
    let latest = fs::read_link(mp.join("snapshots/latest")).unwrap();
    assert_ne!(latest, Path::new(&t1_time), "latest is the second snapshot");
    assert_eq!(
        fs::read(restored(&mp.join("snapshots/latest"), &src).join("a.txt")).unwrap(),
        b"alpha\n"
    );

    // The first snapshot, by id, against the source.
    let snap = restored(&mp.join("ids").join(&id1), &src);
    let want = walk(&src);
    let got = walk(&snap);
    let diffs = compare(&want, &got, false);
    assert!(
        diffs.is_empty(),
        "mount differs from the source:\n{}",
        diffs.join("\n")
    );
    // Each file byte for byte, by cmp.
    let mut files = 0;
    for (rel, e) in &want.entries {
        if e.kind == Kind::File {
            let st = Command::new("cmp")
                .arg(src.join(os(rel)))
                .arg(snap.join(os(rel)))
                .status()
                .unwrap();
            assert!(st.success(), "cmp {}", show(rel));
            files += 1;
        }
    }
    assert_eq!(files, 6);
    // find lists what the source walk has.
    let listed = find_list(&snap);
    let walked: BTreeSet<Vec<u8>> = want
        .entries
        .keys()
        .filter(|k| !k.is_empty())
        .cloned()
        .collect();
    assert_eq!(listed, walked);
    assert!(listed.contains(b"caf\xe9.txt".as_slice()));
    assert_eq!(
        fs::read_link(snap.join("link")).unwrap(),
        Path::new("nested/deeper/b.txt")
    );

    // Reads at random offsets of the multi-chunk file (cache of 1 MiB:
    // blobs are evicted and read again).
    let data = fs::read(src.join("big.bin")).unwrap();
    let f = fs::File::open(snap.join("big.bin")).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = (x % data.len() as u64) as usize;
        let len = ((x >> 32) % 300_000) as usize + 1;
        let len = len.min(data.len() - off);
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, off as u64).unwrap();
        assert!(buf == data[off..off + len], "bytes at {off}+{len} differ");
    }
    drop(f);
    // Read-only.
    let e = fs::OpenOptions::new()
        .write(true)
        .open(snap.join("a.txt"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");

    let report = m.fusermount_u();
    assert_eq!(report["snapshots"], 2, "{report}");
    assert!(num(&report, "bytes_read") >= data.len() as u64, "{report}");
    assert!(num(&report, "blobs_read") > 0, "{report}");
    assert_eq!(report["read_errors"], 0, "{report}");
    assert!(report["signal"].is_null(), "{report}");

    // --host limits the snapshots shown; SIGINT unmounts.
    let m = Mount::start(&env, "mnt2", &["--host", "h2"]);
    assert_eq!(names(&m.mp.join("ids")), [id2].into());
    assert_eq!(names(&m.mp.join("hosts")), ["h2"].map(String::from).into());
    let report = m.signal(libc::SIGINT);
    assert_eq!(report["snapshots"], 1, "{report}");
    assert_eq!(report["signal"], libc::SIGINT, "{report}");
}

#[test]
fn a_damaged_chunk_fails_its_file_with_eio_and_other_files_read_on() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"first small file").unwrap();
    fs::write(src.join("b.txt"), b"second small file").unwrap();
    env.create(&[&src], &[]);
    // The second snapshot adds one large file: its chunks are the only
    // data of the new data pack.
    let before: Vec<PathBuf> = env.packs().into_iter().map(|(p, _)| p).collect();
    write_random(&src.join("victim.bin"), 7, 1 << 20);
    env.create(&[&src], &[]);
    let (pack, len) = env
        .packs()
        .into_iter()
        .find(|(p, _)| !before.contains(p))
        .unwrap();
    flip_byte(&pack, len / 2);

    let m = Mount::start(&env, "mnt", &["--path", src.to_str().unwrap()]);
    let snap = restored(&m.mp.join("snapshots/latest"), &src);
    let e = fs::read(snap.join("victim.bin")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    // Again: never wrong bytes from a cache.
    let e = fs::read(snap.join("victim.bin")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert_eq!(fs::read(snap.join("a.txt")).unwrap(), b"first small file");
    assert_eq!(fs::read(snap.join("b.txt")).unwrap(), b"second small file");
    assert_eq!(
        fs::metadata(snap.join("victim.bin")).unwrap().len(),
        1 << 20
    );
    let err = m.stderr();
    assert!(
        err.contains("warning: cannot read") && err.contains("victim.bin"),
        "names the file: {err}"
    );
    let report = m.signal(libc::SIGTERM);
    assert!(num(&report, "read_errors") >= 1, "{report}");
    assert_eq!(report["signal"], libc::SIGTERM, "{report}");
}

#[test]
fn a_busy_mount_is_detached_at_sigterm_and_ends_when_its_last_file_closes() {
    if !fuse_available() {
        return;
    }
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("held.txt"), b"held open").unwrap();
    env.create(&[&src], &[]);
    let mut m = Mount::start(&env, "mnt", &[]);
    let held =
        fs::File::open(restored(&m.mp.join("snapshots/latest"), &src).join("held.txt")).unwrap();
    m.send(libc::SIGTERM);
    let until = Instant::now() + Duration::from_secs(30);
    while mounted(&m.mp) {
        assert!(Instant::now() < until, "not detached: {}", m.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut buf = [0u8; 9];
    held.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(
        &buf, b"held open",
        "an open file still reads after the detach"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        m.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "serves while a file is open"
    );
    assert!(m.stderr().contains("is busy"), "{}", m.stderr());
    drop(held);
    let report = m.wait();
    assert_eq!(report["signal"], libc::SIGTERM, "{report}");
}

#[test]
fn a_missing_mount_point_is_a_usage_error() {
    let env = Env::new();
    let out = env.run(["mount", env.path("nope").to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("create the directory first"),
        "{}",
        stderr(&out)
    );
}
