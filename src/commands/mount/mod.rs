//! `snap mount MOUNTPOINT`: the repository's snapshots as a read-only FUSE
//! file system (restic's `mount`), served in the foreground until it is
//! unmounted (`fusermount3 -u`, `umount`) or the process gets SIGINT,
//! SIGTERM or SIGHUP, which unmount it (lazily when it is busy: it then
//! goes when the last open file is closed).
//!
//! [`mount`] mounts (and fails before serving when it cannot); the
//! returned [`Server`] serves until unmounted and reports what it read.
//! The layout is in [`layout`], the file system in [`fs`]. Mounting takes
//! no lock, as no other read does.

mod attr;
mod cache;
mod file;
mod fs;
mod inodes;
pub mod layout;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fuser::{Config, MountOption, Session, SessionACL};
use serde::Serialize;

use crate::format::snapshot::Snapshot;
use crate::format::SnapshotId;
use crate::repository::Repository;
use crate::{Error, Result};

/// Where warnings go while serving (a damaged blob, an unreadable
/// directory): the CLI prints them.
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// Default size of the blob cache: 64 MiB.
pub const DEFAULT_CACHE_SIZE: u64 = 64 << 20;

/// Options of `snap mount`.
pub struct MountOptions {
    /// An existing directory.
    pub mountpoint: PathBuf,
    /// Bytes of file data (plaintext chunks) kept in memory.
    pub cache_size: u64,
    /// Let other users than the one who mounted in (FUSE `allow_other`).
    pub allow_other: bool,
    /// With `allow_other`: leave permission checks to the kernel by the
    /// stored modes and owners (`default_permissions`).
    pub default_permissions: bool,
    /// Warnings while serving.
    pub warn: Warn,
}

/// Counters of a mount, shared with its file system.
#[derive(Default)]
pub struct Stats {
    blobs_read: AtomicU64,
    bytes_read: AtomicU64,
    read_errors: AtomicU64,
}

/// What a mount did, once it was unmounted.
#[derive(Debug, Serialize)]
pub struct MountReport {
    /// The mount point.
    pub mountpoint: String,
    /// Snapshots shown.
    pub snapshots: usize,
    /// Blobs read from the repository (not from the cache).
    pub blobs_read: u64,
    /// Bytes of file data served to readers.
    pub bytes_read: u64,
    /// Reads that failed (EIO) because a blob could not be read or verified.
    pub read_errors: u64,
    /// The signal that ended it (SIGINT 2, SIGTERM 15, SIGHUP 1), if one did.
    pub signal: Option<i32>,
}

/// A mounted file system, not yet served.
pub struct Server {
    session: Session<fs::SnapFs>,
    mountpoint: PathBuf,
    snapshots: usize,
    stats: Arc<Stats>,
    warn: Warn,
}

/// Mounts `snaps` at the mount point (which must be an existing
/// directory). Fails with a message naming the mount point when FUSE is
/// not available or the mount is refused.
pub fn mount(
    repo: Arc<Repository>,
    snaps: Vec<(SnapshotId, Snapshot)>,
    opts: MountOptions,
) -> Result<Server> {
    let mp = &opts.mountpoint;
    match std::fs::metadata(mp) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Usage(format!(
                "mount point {} is not a directory",
                mp.display()
            )))
        }
        Err(e) => {
            return Err(Error::Usage(format!(
                "mount point {}: {e} (create the directory first)",
                mp.display()
            )))
        }
    }
    let snapshots = snaps.len();
    let stats = Arc::new(Stats::default());
    let fs = fs::SnapFs::new(
        repo,
        layout::Layout::new(snaps),
        opts.cache_size,
        opts.warn.clone(),
        stats.clone(),
    );
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::FSName("snap".into()),
        MountOption::Subtype("snap".into()),
    ];
    if opts.allow_other {
        config.acl = SessionACL::All;
        if opts.default_permissions {
            config.mount_options.push(MountOption::DefaultPermissions);
        }
    }
    // Reads of different files go on while one waits for storage.
    config.n_threads = Some(4);
    let session = Session::new(fs, mp, &config).map_err(|e| {
        Error::Invalid(format!(
            "cannot mount at {}: {e} (FUSE needs /dev/fuse, and fusermount3 \
             when not root; --allow-other needs user_allow_other in /etc/fuse.conf)",
            mp.display()
        ))
    })?;
    Ok(Server {
        session,
        mountpoint: mp.clone(),
        snapshots,
        stats,
        warn: opts.warn,
    })
}

/// Unmounts `mp`; when it is busy, detaches it (it goes when its last
/// user leaves). Without the right to unmount (not root), through
/// `fusermount3 -u`.
fn unmount(mp: &Path, warn: &Warn) {
    use rustix::io::Errno;
    use rustix::mount::{unmount, UnmountFlags};
    let r = match unmount(mp, UnmountFlags::empty()) {
        Err(Errno::BUSY) => {
            warn(&format!(
                "{} is busy (a file is open or a shell is in it): detached; \
                 snap ends when the last user leaves",
                mp.display()
            ));
            unmount(mp, UnmountFlags::DETACH)
        }
        r => r,
    };
    match r {
        Ok(()) | Err(Errno::INVAL) => {}
        Err(Errno::PERM) => {
            let ok = std::process::Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(mp)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                warn(&format!(
                    "cannot unmount {}: run fusermount3 -u {0}",
                    mp.display()
                ));
            }
        }
        Err(e) => warn(&format!("cannot unmount {}: {e}", mp.display())),
    }
}

impl Server {
    /// The mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Serves until the file system is unmounted; SIGINT, SIGTERM and
    /// SIGHUP unmount it (a second one ends the process at once).
    pub fn serve(self) -> Result<MountReport> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Server {
            session,
            mountpoint,
            snapshots,
            stats,
            warn,
        } = self;
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .map_err(|e| Error::Invalid(format!("cannot catch signals: {e}")))?;
        let handle = signals.handle();
        let got = Arc::new(AtomicU64::new(0));
        let watcher = {
            let (mp, got, warn) = (mountpoint.clone(), got.clone(), warn.clone());
            std::thread::spawn(move || {
                for s in signals.forever() {
                    if got.swap(s as u64, Ordering::SeqCst) != 0 {
                        std::process::exit(128 + s);
                    }
                    unmount(&mp, &warn);
                }
            })
        };
        let r = session.run();
        handle.close();
        let _ = watcher.join();
        match r {
            // A detached mount whose last user left: the kernel aborts
            // the connection, which is this mount's normal end.
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
            r => r.map_err(|e| Error::Invalid(format!("serving {}: {e}", mountpoint.display())))?,
        }
        let signal = match got.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        };
        Ok(MountReport {
            mountpoint: mountpoint.display().to_string(),
            snapshots,
            blobs_read: stats.blobs_read.load(Ordering::Relaxed),
            bytes_read: stats.bytes_read.load(Ordering::Relaxed),
            read_errors: stats.read_errors.load(Ordering::Relaxed),
            signal,
        })
    }
}
