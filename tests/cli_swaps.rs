//! A local user who swaps a file of a tree being backed up, between
//! `create`'s `lstat` and its `open`, for a FIFO or for a symlink to a file
//! they may not read (or a directory, before it is listed, for a symlink to
//! a directory) must never make the backup hang or store the link's
//! target.
//!
//! The swap is timed, not hoped for: between the `lstat` of a file and its
//! `open`, create looks up the name of the file's owner, which opens
//! `/etc/passwd` (nss files). A thread watches with inotify for create's
//! `opendir` of the source directory and then for that next open of
//! `/etc/passwd` (each round gives the file an owner not seen before), and
//! swaps the file right then; thousands of xattrs on the file (tmpfs holds
//! them), which create reads before the `open`, keep the window open for
//! milliseconds.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const SECRET: &[u8] = b"the secret that only root may read\n";

fn regular_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            regular_files(&e.path(), out);
        } else if ft.is_file() {
            out.push((e.path(), fs::read(e.path()).unwrap()));
        }
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn chown(p: &Path, id: u32) {
    let c = cstr(p);
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::lchown(c.as_ptr(), id, id) }, 0);
}

/// What the swapper does when it sees its moment.
#[derive(Clone, Copy, Debug)]
enum Swap {
    /// A FIFO in place of a file.
    Fifo,
    /// A symlink to the secret file in place of a file.
    Symlink,
    /// A symlink to the secret's directory in place of a directory
    /// (exchanged atomically: rename cannot replace a directory by a link).
    DirSymlink,
}

/// Waits (until `stop`) for an open of `dir` itself and then for the next
/// open of /etc/passwd, and then puts `swap` in place of `victim`.
/// Returns whether it swapped.
fn swap_on_cue(dir: &Path, victim: &Path, swap: Swap, secret: &Path, stop: &AtomicBool) -> bool {
    // SAFETY: plain syscalls on descriptors owned here.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
        assert!(fd >= 0);
        let wd_dir = libc::inotify_add_watch(fd, cstr(dir).as_ptr(), libc::IN_OPEN);
        let wd_pw = libc::inotify_add_watch(fd, c"/etc/passwd".as_ptr(), libc::IN_OPEN);
        assert!(wd_dir >= 0 && wd_pw >= 0);
        let mut dir_opened = false;
        let mut buf = [0u8; 4096];
        let tmp = dir.with_file_name("swap.tmp");
        while !stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&mut pfd, 1, 50) <= 0 {
                continue;
            }
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            let mut off = 0usize;
            while n > 0 && off < n as usize {
                let ev = &*(buf.as_ptr().add(off) as *const libc::inotify_event);
                // The directory itself (no name), not an entry in it.
                if ev.wd == wd_dir && ev.len == 0 {
                    dir_opened = true;
                } else if ev.wd == wd_pw && dir_opened {
                    match swap {
                        Swap::Fifo => {
                            assert_eq!(libc::mkfifo(cstr(&tmp).as_ptr(), 0o644), 0);
                            fs::rename(&tmp, victim).unwrap();
                        }
                        Swap::Symlink => {
                            std::os::unix::fs::symlink(secret, &tmp).unwrap();
                            fs::rename(&tmp, victim).unwrap();
                        }
                        Swap::DirSymlink => {
                            std::os::unix::fs::symlink(secret.parent().unwrap(), &tmp).unwrap();
                            let r = libc::renameat2(
                                libc::AT_FDCWD,
                                cstr(&tmp).as_ptr(),
                                libc::AT_FDCWD,
                                cstr(victim).as_ptr(),
                                libc::RENAME_EXCHANGE,
                            );
                            assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
                        }
                    }
                    libc::close(fd);
                    return true;
                }
                off += std::mem::size_of::<libc::inotify_event>() + ev.len as usize;
            }
        }
        libc::close(fd);
        false
    }
}

#[test]
fn files_swapped_for_fifos_or_symlinks_never_hang_or_leak() {
    if !is_root() {
        eprintln!("skipped: needs root (owners not in /etc/passwd)");
        return;
    }
    let env = Env::new();
    let shm = tempfile::Builder::new()
        .prefix("snapswaps")
        .tempdir_in("/dev/shm")
        .ok();
    let base = shm
        .as_ref()
        .map_or(env.tmp.path(), |d| d.path())
        .to_path_buf();
    let src = base.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::create_dir(env.path("private")).unwrap();
    let secret = env.path("private/secret");
    fs::write(&secret, SECRET).unwrap();
    let plain = base.join("plain");
    fs::write(&plain, b"plain content\n").unwrap();
    let pads = (0..4000)
        .take_while(|i| xattr::set(&plain, format!("user.pad{i}"), b"12345678").is_ok())
        .count();
    let victim = src.join("victim");
    let (mut swapped, mut caught) = (0, 0);
    let rounds = 6u32;
    for round in 0..rounds {
        let swap = [Swap::Fifo, Swap::Symlink, Swap::DirSymlink][round as usize % 3];
        // Owners never seen before: both lookups open /etc/passwd.
        chown(&src, 71_000 + 2 * round);
        let _ = fs::remove_file(&victim);
        let _ = fs::remove_dir(&victim);
        let _ = fs::remove_file(base.join("swap.tmp"));
        let _ = fs::remove_dir(base.join("swap.tmp"));
        if let Swap::DirSymlink = swap {
            fs::create_dir(&victim).unwrap();
            for i in 0..pads {
                xattr::set(&victim, format!("user.pad{i}"), b"12345678").unwrap();
            }
            chown(&victim, 71_001 + 2 * round);
        } else {
            chown(&plain, 71_001 + 2 * round);
            fs::hard_link(&plain, &victim).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (src, victim, secret, stop) =
                (src.clone(), victim.clone(), secret.clone(), stop.clone());
            std::thread::spawn(move || swap_on_cue(&src, &victim, swap, &secret, &stop))
        };
        std::thread::sleep(Duration::from_millis(50)); // the watches are set
        let mut child = env
            .cmd()
            .arg("create")
            .arg(&src)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        stop.store(true, Ordering::Relaxed);
        swapped += swapper.join().unwrap() as usize;
        let err = reader.join().unwrap();
        let status = status.unwrap_or_else(|| {
            panic!("round {round} ({swap:?}): create hung: it opened a FIFO put in place of a file")
        });
        assert!(
            matches!(status.code(), Some(0) | Some(3)),
            "round {round}: create failed ({status}): {err}"
        );
        caught += err.contains("replaced by") as usize;
        let to = env.path(&format!("out{round}"));
        env.restore("latest", &to);
        let mut files = Vec::new();
        regular_files(&to, &mut files);
        if let Some((p, _)) = files.iter().find(|(_, c)| c.as_slice() == SECRET) {
            panic!(
                "round {round}: {} holds the target of a swapped-in symlink: create followed it",
                p.display()
            );
        }
    }
    eprintln!(
        "{pads} xattrs per file; swapped in {swapped} of 6 rounds, {caught} caught by create"
    );
    if swapped == 0 {
        eprintln!("note: the swap was never cued (no open of /etc/passwd seen?)");
    } else {
        assert!(
            caught > 0,
            "swapped {swapped} times, never noticed by create"
        );
    }
}
