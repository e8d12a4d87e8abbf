//! Restore's file-system calls, all relative to open directory descriptors:
//! the only place restore touches the target.
//!
//! The target root is opened once; every directory below it is opened
//! relative to its parent's descriptor, one name at a time, never through
//! a symlink (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where
//! the kernel has it, else `openat` with `O_NOFOLLOW | O_DIRECTORY`).
//! Entries are made under a fresh temporary name in their directory
//! (`.NAME.snap-tmp-<16 hex digits>`; files with `O_CREAT | O_EXCL |
//! O_NOFOLLOW`, so nothing already there is ever opened), get their
//! metadata on a descriptor, and are renamed into place with `renameat`,
//! which replaces a file of that name and never writes through it.
//!
//! What is opened again later (a directory whose descriptor was closed, a
//! temporary file) is checked to be the same inode as when it was made: a
//! user who can rename entries in a directory of the target can make a
//! restore fail there, never make it write, chmod or chown anything else.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec};
use rustix::fs::{Gid, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

/// Marks restore's temporary names: `.NAME` + this + 16 hex digits.
pub const TEMP_INFIX: &str = ".snap-tmp-";
/// Longest file name (bytes) on Linux file systems.
const NAME_MAX: usize = 255;

/// An inode: what an entry opened again must still be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident {
    dev: u64,
    ino: u64,
}

impl Ident {
    /// Device and inode number, to be kept outside memory.
    pub fn raw(self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// The inode `raw` gave.
    pub fn from_raw((dev, ino): (u64, u64)) -> Ident {
        Ident { dev, ino }
    }
}

/// The inode `st` describes.
// (`st_dev` and `st_ino` are not u64 on every target.)
#[allow(clippy::unnecessary_cast)]
pub fn ident(st: &rfs::Stat) -> Ident {
    Ident {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
    }
}

/// The inode `fd` refers to.
pub fn ident_of(fd: BorrowedFd<'_>) -> io::Result<Ident> {
    Ok(ident(&rfs::fstat(fd)?))
}

/// The error for an entry that is no longer what restore made.
pub fn replaced() -> io::Error {
    io::Error::other("replaced by something else during the restore")
}

/// Whether `e` says a symlink was met (and not followed).
pub fn is_symlink_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
}

/// Whether `e` says something that is not a directory is in the way.
pub fn is_not_dir_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error())
}

/// Whether `name` in `dir` is a symlink (to word a message: `O_DIRECTORY`
/// makes opening one fail with ENOTDIR rather than ELOOP).
pub fn is_symlink_at(dir: BorrowedFd<'_>, name: &CStr) -> bool {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// Whether a rename failed because a directory holds the final name.
pub fn is_dir_in_the_way(e: &io::Error) -> bool {
    [Errno::ISDIR, Errno::NOTEMPTY, Errno::EXIST]
        .iter()
        .any(|x| e.raw_os_error() == Some(x.raw_os_error()))
}

/// One name of a snapshot tree as a C string. Trees are validated (never
/// empty, `.`, `..`, nor holding `/`), and this checks again.
pub fn cname(name: &[u8]) -> io::Result<CString> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a single file name",
        ));
    }
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name holds NUL"))
}

/// A fresh temporary name for `name`: `.NAME.snap-tmp-<16 hex digits>`,
/// NAME cut short to fit in one file name.
fn temp_name(name: &[u8]) -> CString {
    let keep = name.len().min(NAME_MAX - 1 - TEMP_INFIX.len() - 16);
    let mut t = Vec::with_capacity(NAME_MAX);
    t.push(b'.');
    t.extend_from_slice(&name[..keep]);
    t.extend_from_slice(TEMP_INFIX.as_bytes());
    t.extend_from_slice(format!("{:016x}", rand::random::<u64>()).as_bytes());
    CString::new(t).expect("no NUL in a checked name")
}

/// Whether `name` has the form of one of restore's temporary names.
pub fn is_temp_name(name: &[u8]) -> bool {
    let infix = TEMP_INFIX.as_bytes();
    let n = name.len();
    n >= 1 + infix.len() + 16
        && name[0] == b'.'
        && &name[n - 16 - infix.len()..n - 16] == infix
        && name[n - 16..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// Tries `make(name)` with fresh temporary names until one is free.
fn with_temp_name<T>(
    name: &[u8],
    mut make: impl FnMut(&CStr) -> rustix::io::Result<T>,
) -> io::Result<(T, CString)> {
    for _ in 0..8 {
        let tmp = temp_name(name);
        match make(&tmp) {
            Ok(v) => return Ok((v, tmp)),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary name",
    ))
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

/// Opens the restore target, creating it (and its parents) if missing;
/// returns whether it existed. The path up to it is the caller's choice
/// and followed; the target itself must not be a symlink.
pub fn open_target(path: &Path) -> io::Result<(OwnedFd, bool)> {
    let existed = std::fs::symlink_metadata(path).is_ok();
    if !existed {
        std::fs::create_dir_all(path)?;
    }
    Ok((rfs::open(path, DIR_FLAGS, Mode::empty())?, existed))
}

/// Opens the restore target if it is there (a dry run makes nothing).
pub fn open_target_if_there(path: &Path) -> io::Result<Option<OwnedFd>> {
    match rfs::open(path, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What is at `name` in `dir` (not followed), if anything.
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether `st` is of a regular file.
pub fn is_file(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
}

/// Whether `st` is of a directory.
pub fn is_dir(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// Modification time of `st`, ns since the epoch.
#[allow(clippy::unnecessary_cast)] // not i64 on every target
pub fn mtime_ns(st: &rfs::Stat) -> i64 {
    (st.st_mtime as i64)
        .saturating_mul(1_000_000_000)
        .saturating_add(st.st_mtime_nsec as i64)
}

/// Opens the regular file `name` in `dir` to read it (never following a
/// symlink, waiting on a FIFO or taking a terminal); it must be inode
/// `id` (what was looked at before).
pub fn open_read(dir: BorrowedFd<'_>, name: &CStr, id: Ident) -> io::Result<File> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rfs::openat(dir, name, flags, Mode::empty())?;
    if ident_of(fd.as_fd())? != id {
        return Err(replaced());
    }
    Ok(File::from(fd))
}

/// The target of the symlink `name` in `dir`.
pub fn read_link_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    Ok(rfs::readlinkat(dir, name, Vec::new())?.into_bytes())
}

/// Whether the open file `fd` has xattr `name` with exactly `value`.
pub fn xattr_is(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> bool {
    let Ok(name) = CString::new(name) else {
        return false;
    };
    let mut buf = vec![0u8; value.len() + 1];
    matches!(rfs::fgetxattr(fd, name.as_c_str(), &mut buf[..]), Ok(n) if buf[..n] == *value)
}

/// The names in `dir` (not `.` and `..`) and their types.
pub fn entries(dir: BorrowedFd<'_>) -> io::Result<Vec<(CString, FileType)>> {
    let mut out = Vec::new();
    for e in rfs::Dir::read_from(dir)? {
        let e = e?;
        let name = e.file_name();
        if name != c"." && name != c".." {
            out.push((name.to_owned(), e.file_type()));
        }
    }
    Ok(out)
}

/// Removes `name` from `dir`, and all below it if it is a directory,
/// never following a symlink (a symlink is removed, not what it points to).
pub fn remove_tree(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let Some(st) = stat_at(dir, name)? else {
        return Ok(());
    };
    if is_dir(&st) {
        let sub = open_dir(dir, name)?;
        if ident_of(sub.as_fd())? != ident(&st) {
            return Err(replaced());
        }
        for (n, _) in entries(sub.as_fd())? {
            remove_tree(sub.as_fd(), &n)?;
        }
        match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    } else {
        remove(dir, name)
    }
}

/// Set once `openat2` turned out not to be there (old kernel, seccomp).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens the directory `name` in `parent`, never following a symlink.
pub fn open_dir(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rfs::openat2(parent, name, DIR_FLAGS, Mode::empty(), how) {
            Err(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::TOOBIG) => {
                NO_OPENAT2.store(true, Ordering::Relaxed);
            }
            r => return Ok(r?),
        }
    }
    Ok(rfs::openat(parent, name, DIR_FLAGS, Mode::empty())?)
}

/// Opens the directory `rel` (names joined by `/`; empty: `root` itself)
/// below `root`, one name at a time, never following a symlink.
pub fn open_beneath(root: BorrowedFd<'_>, rel: &[u8]) -> io::Result<OwnedFd> {
    let mut fd = rfs::openat(root, c".", DIR_FLAGS, Mode::empty())?;
    for name in rel.split(|&b| b == b'/').filter(|n| !n.is_empty()) {
        fd = open_dir(fd.as_fd(), &cname(name)?)?;
    }
    Ok(fd)
}

/// Makes the directory `name` in `parent`, private (0700) until its
/// metadata is set; false when something is there already.
pub fn make_dir(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<bool> {
    match rfs::mkdirat(parent, name, Mode::RWXU) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Creates a new, empty regular file (0600) under a fresh temporary name
/// for `name` in `dir`; nothing that is already there is opened.
pub fn create_temp(
    dir: BorrowedFd<'_>,
    name: &[u8],
    mode: u32,
) -> io::Result<(File, CString, rfs::Stat)> {
    let flags = OFlags::WRONLY
        | OFlags::CREATE
        | OFlags::EXCL
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NOCTTY;
    let mode = Mode::from_raw_mode(mode & 0o777) | Mode::RUSR | Mode::WUSR;
    let (fd, tmp) = with_temp_name(name, |t| rfs::openat(dir, t, flags, mode))?;
    let st = rfs::fstat(fd.as_fd())?;
    Ok((File::from(fd), tmp, st))
}

/// Whether files can be made without a name in the target's file system
/// (`O_TMPFILE`, which not every file system has): off after a refusal.
static UNNAMED_FILES: AtomicBool = AtomicBool::new(true);

/// Creates a regular file in `dir` that has no name yet (`O_TMPFILE`):
/// until [`link_unnamed`] names it, nothing else can reach it, and if the
/// process dies it is gone with it. `None` where the file system cannot
/// (the caller then makes a named temporary file).
pub fn create_unnamed(dir: BorrowedFd<'_>, mode: u32) -> io::Result<Option<(File, rfs::Stat)>> {
    test_fallbacks();
    // Named through /proc (`link_unnamed`): without it, not at all.
    static PROC: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !UNNAMED_FILES.load(Ordering::Relaxed)
        || !*PROC.get_or_init(|| Path::new("/proc/self/fd").is_dir())
    {
        return Ok(None);
    }
    let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC | OFlags::NOCTTY;
    let mode = Mode::from_raw_mode(mode & 0o777) | Mode::RUSR | Mode::WUSR;
    match rfs::openat(dir, c".", flags, mode) {
        Ok(fd) => {
            let st = rfs::fstat(fd.as_fd())?;
            Ok(Some((File::from(fd), st)))
        }
        // Not supported by the kernel or this file system.
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOSYS) => {
            UNNAMED_FILES.store(false, Ordering::Relaxed);
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `linkat(AT_EMPTY_PATH)` may name an unnamed file (until it is
/// refused once).
static LINK_BY_DESCRIPTOR: AtomicBool = AtomicBool::new(true);

/// With the `failpoints` feature, `SNAP_TEST_RESTORE_FILES` makes a test
/// take the paths of the kernels and file systems this one is not:
/// `named` (no unnamed files: a temporary name each), `proc` (no linking
/// by descriptor: through /proc).
fn test_fallbacks() {
    #[cfg(feature = "failpoints")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(
            || match std::env::var("SNAP_TEST_RESTORE_FILES").as_deref() {
                Ok("named") => UNNAMED_FILES.store(false, Ordering::Relaxed),
                Ok("proc") => LINK_BY_DESCRIPTOR.store(false, Ordering::Relaxed),
                _ => {}
            },
        );
    }
}

/// Gives the unnamed file `fd` ([`create_unnamed`]) the name `name` in
/// `dir`: linked there, or, when a non-directory is there, linked under a
/// temporary name for `base` and renamed over it (one atomic replace).
pub fn link_unnamed(
    fd: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &CStr,
    base: &[u8],
) -> io::Result<()> {
    // By the descriptor itself where the kernel lets this process (Linux
    // 6.10 and later for a file it opened; before, only with
    // CAP_DAC_READ_SEARCH), else through /proc (one path walk more).
    let link = |to: &CStr| {
        if LINK_BY_DESCRIPTOR.load(Ordering::Relaxed) {
            match rfs::linkat(fd, c"", dir, to, AtFlags::EMPTY_PATH) {
                Err(Errno::NOENT | Errno::PERM | Errno::INVAL) => {
                    LINK_BY_DESCRIPTOR.store(false, Ordering::Relaxed)
                }
                done => return done,
            }
        }
        let from = proc_path(fd);
        rfs::linkat(rfs::CWD, from.as_str(), dir, to, AtFlags::SYMLINK_FOLLOW)
    };
    match link(name) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => {
            let ((), tmp) = with_temp_name(base, link)?;
            rename(dir, &tmp, name).inspect_err(|_| {
                let _ = remove(dir, &tmp);
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens for writing again the temporary file `tmp` made as inode `id`,
/// refusing whatever else is found under that name (never a symlink
/// followed, a FIFO waited on or a terminal taken).
pub fn reopen_temp(dir: BorrowedFd<'_>, tmp: &CStr, id: Ident) -> io::Result<File> {
    let flags =
        OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rfs::openat(dir, tmp, flags, Mode::empty())?;
    if ident_of(fd.as_fd())? != id {
        return Err(replaced());
    }
    Ok(File::from(fd))
}

/// Renames `from` to `to` in `dir`, replacing a non-directory there.
pub fn rename(dir: BorrowedFd<'_>, from: &CStr, to: &CStr) -> io::Result<()> {
    Ok(rfs::renameat(dir, from, dir, to)?)
}

/// Removes the non-directory `name` from `dir`; nothing there is fine.
pub fn remove(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the temporary names an earlier restore left in `dir` (killed
/// before it could); returns how many.
pub fn remove_stale_temps(dir: BorrowedFd<'_>) -> io::Result<u64> {
    let mut n = 0;
    for e in rfs::Dir::read_from(dir)? {
        let e = e?;
        let name = e.file_name();
        if is_temp_name(name.to_bytes()) && e.file_type() != FileType::Directory {
            remove(dir, name)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Makes a symlink to `target` under a fresh temporary name for `name`.
pub fn symlink_temp(dir: BorrowedFd<'_>, target: &[u8], name: &[u8]) -> io::Result<CString> {
    let target = CString::new(target)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "link target holds NUL"))?;
    Ok(with_temp_name(name, |t| rfs::symlinkat(target.as_c_str(), dir, t))?.1)
}

/// Makes a FIFO or device node (0600) under a fresh temporary name.
pub fn node_temp(
    dir: BorrowedFd<'_>,
    name: &[u8],
    kind: FileType,
    rdev: u64,
) -> io::Result<CString> {
    let mode = Mode::RUSR | Mode::WUSR;
    Ok(with_temp_name(name, |t| rfs::mknodat(dir, t, kind, mode, rdev as rfs::Dev))?.1)
}

/// Opens what restore just made under `tmp` without following it: an
/// `O_PATH` descriptor (nothing read, no device opened) or, for a FIFO, a
/// non-blocking read descriptor. It must be of `kind`, owned by this
/// process's user (nobody else can make such an entry ours) and, for a
/// device, of `rdev`.
#[allow(clippy::unnecessary_cast)] // st_rdev is not u64 everywhere
pub fn open_made(
    dir: BorrowedFd<'_>,
    tmp: &CStr,
    kind: FileType,
    rdev: u64,
) -> io::Result<OwnedFd> {
    let flags = match kind {
        FileType::Fifo => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
        _ => OFlags::PATH,
    };
    let fd = rfs::openat(
        dir,
        tmp,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rfs::fstat(&fd)?;
    let device = matches!(kind, FileType::CharacterDevice | FileType::BlockDevice);
    if FileType::from_raw_mode(st.st_mode) != kind
        || st.st_uid != euid()
        || (device && st.st_rdev as u64 != rdev)
    {
        return Err(replaced());
    }
    Ok(fd)
}

/// This process's effective uid (asked once).
fn euid() -> u32 {
    static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *EUID.get_or_init(|| rustix::process::geteuid().as_raw())
}

/// Makes a hard link to `from` (in `from_dir`), which must be inode `id`,
/// under a fresh temporary name for `name` in `dir`.
pub fn link_temp(
    from_dir: BorrowedFd<'_>,
    from: &CStr,
    dir: BorrowedFd<'_>,
    name: &[u8],
    id: Ident,
) -> io::Result<CString> {
    let (_, tmp) = with_temp_name(name, |t| {
        rfs::linkat(from_dir, from, dir, t, AtFlags::empty())
    })?;
    match rfs::statat(dir, tmp.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if ident(&st) == id => Ok(tmp),
        other => {
            let _ = remove(dir, &tmp);
            Err(other.err().map_or_else(replaced, io::Error::from))
        }
    }
}

fn times(mtime_ns: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime_ns.div_euclid(1_000_000_000),
        tv_nsec: mtime_ns.rem_euclid(1_000_000_000) as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// A uid and gid to set; -1 (which would mean "leave as it is") is left.
fn ids(uid: u32, gid: u32) -> (Option<Uid>, Option<Gid>) {
    (
        (uid != u32::MAX).then(|| Uid::from_raw(uid)),
        (gid != u32::MAX).then(|| Gid::from_raw(gid)),
    )
}

/// Sets owner and group of what `fd` (an open file) refers to.
pub fn chown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    let (u, g) = ids(uid, gid);
    Ok(rfs::fchown(fd, u, g)?)
}

/// Sets owner and group of what an `O_PATH` descriptor refers to (a
/// symlink itself, a device node), never following it.
pub fn chown_path_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    let (u, g) = ids(uid, gid);
    let flags = AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW;
    Ok(rfs::chownat(fd, c"", u, g, flags)?)
}

/// Sets the permission and set-id bits of an open file.
pub fn chmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(rfs::fchmod(fd, Mode::from_raw_mode(mode & 0o7777))?)
}

/// The name under `/proc/self/fd` of the inode an `O_PATH` descriptor
/// refers to: following it reaches exactly that inode.
fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Sets the mode of what an `O_PATH` descriptor refers to (a device node,
/// which cannot be opened without side effects). Needs /proc.
pub fn chmod_path_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    let mode = Mode::from_raw_mode(mode & 0o7777);
    Ok(rfs::chmodat(
        rfs::CWD,
        proc_path(fd),
        mode,
        AtFlags::empty(),
    )?)
}

/// Sets an extended attribute of an open file.
pub fn set_xattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> io::Result<()> {
    Ok(rfs::fsetxattr(fd, name, value, XattrFlags::empty())?)
}

/// Sets an extended attribute of what an `O_PATH` descriptor refers to.
pub fn set_xattr_path_fd(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> io::Result<()> {
    Ok(rfs::setxattr(
        proc_path(fd),
        name,
        value,
        XattrFlags::empty(),
    )?)
}

/// Sets access and modification time of an open file to `mtime_ns`.
pub fn set_times(fd: BorrowedFd<'_>, mtime_ns: i64) -> io::Result<()> {
    Ok(rfs::futimens(fd, &times(mtime_ns))?)
}

/// Sets the times of what an `O_PATH` descriptor refers to, never
/// following it; kernels before 5.8 cannot, and then the times of `name`
/// in `dir` are set (times only: nothing is given away if it was swapped).
pub fn set_times_path_fd(
    fd: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &CStr,
    mtime_ns: i64,
) -> io::Result<()> {
    let t = times(mtime_ns);
    match rfs::utimensat(fd, c"", &t, AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::INVAL) => Ok(rfs::utimensat(dir, name, &t, AtFlags::SYMLINK_NOFOLLOW)?),
        r => Ok(r?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_and_fit() {
        for name in [&b"a"[..], b"file.txt", &[b'x'; 255]] {
            let t = temp_name(name);
            let b = t.to_bytes();
            assert!(b.len() <= NAME_MAX, "{}", b.len());
            assert!(is_temp_name(b), "{t:?}");
        }
        for not in [
            &b"file"[..],
            b".file.snap-tmp-",
            b".f.snap-tmp-0123456789abcdeg",
            b"f.snap-tmp-0123456789abcdef",
            b".f.snap-tmp-0123456789ABCDEF",
        ] {
            assert!(!is_temp_name(not), "{}", String::from_utf8_lossy(not));
        }
        assert!(is_temp_name(b".f.snap-tmp-0123456789abcdef"));
    }

    #[test]
    fn names_that_are_not_one_component_are_refused() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
            assert!(cname(bad).is_err());
        }
        assert!(cname(b"...").is_ok());
    }
}
