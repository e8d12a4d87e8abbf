//! One conformance suite, run against every backend: a local directory, a
//! `file://` object store, S3 (the loopback server; skipped loudly
//! outside CI when it cannot start), and SFTP (a throw-away OpenSSH server;
//! likewise).

#[path = "s3common/mod.rs"]
mod common;
#[path = "sshd/mod.rs"]
mod sshd;

use std::sync::Arc;

use snap::backend::object::ObjectBackend;
use snap::backend::{local::LocalBackend, Backend, BackendError, FileKind, WriteMode};

const PACK_A: &str = "aa00000000000000000000000000000000000000000000000000000000000001";
const PACK_B: &str = "bb00000000000000000000000000000000000000000000000000000000000002";
const SNAP_1: &str = "5500000000000000000000000000000000000000000000000000000000000001";
const KEY_1: &str = "ee00000000000000000000000000000000000000000000000000000000000001";

fn suite(be: Arc<dyn Backend>, big: usize) {
    let loc = be.location();
    assert!(
        !be.exists().unwrap(),
        "{loc}: empty location has no repository"
    );
    be.create_layout().unwrap();

    // read of a missing object: NotFound
    assert!(matches!(
        be.read(FileKind::Key, "nope"),
        Err(BackendError::NotFound(_))
    ));
    assert!(be
        .size(FileKind::Snapshot, "nope")
        .unwrap_err()
        .is_not_found());

    // CreateNew, then a conflict
    be.write(FileKind::Key, KEY_1, b"key one", WriteMode::CreateNew)
        .unwrap();
    assert!(
        matches!(
            be.write(FileKind::Key, KEY_1, b"other", WriteMode::CreateNew),
            Err(BackendError::AlreadyExists(_))
        ),
        "{loc}: CreateNew must refuse an existing object"
    );
    assert_eq!(be.read(FileKind::Key, KEY_1).unwrap(), b"key one");
    // A retried create-if-absent finding its own bytes has succeeded.
    be.write(FileKind::Key, KEY_1, b"key one", WriteMode::CreateNew)
        .unwrap_or_else(|e| panic!("{loc}: CreateNew of the same bytes again: {e}"));
    be.write(FileKind::Key, KEY_1, b"key 1 again", WriteMode::Overwrite)
        .unwrap();
    assert_eq!(be.read(FileKind::Key, KEY_1).unwrap(), b"key 1 again");

    // config makes the repository exist
    be.write(FileKind::Config, "config", b"{}", WriteMode::CreateNew)
        .unwrap();
    assert!(be.exists().unwrap());

    // put_file (multipart for the big one on object stores), range reads
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..big).map(|i| (i * 7 + i / 251) as u8).collect();
    let f = dir.path().join("pack-a");
    std::fs::write(&f, &data).unwrap();
    be.put_file(FileKind::Pack, PACK_A, &f).unwrap();
    assert!(!f.exists(), "{loc}: put_file consumes the local file");
    assert_eq!(be.size(FileKind::Pack, PACK_A).unwrap(), big as u64);
    assert_eq!(
        be.read_range(FileKind::Pack, PACK_A, 1000, 5000).unwrap(),
        &data[1000..6000]
    );
    let tail = be
        .read_range(FileKind::Pack, PACK_A, big as u64 - 10, 10)
        .unwrap();
    assert_eq!(tail, &data[big - 10..]);
    assert!(
        be.read_range(FileKind::Pack, PACK_A, big as u64 - 10, 20)
            .is_err(),
        "{loc}: a range past the end is an error"
    );
    let f = dir.path().join("pack-b");
    std::fs::write(&f, b"small pack").unwrap();
    be.put_file(FileKind::Pack, PACK_B, &f).unwrap();
    assert_eq!(be.read(FileKind::Pack, PACK_B).unwrap(), b"small pack");

    // list: per kind, nested pack dirs flattened, sizes
    be.write(FileKind::Snapshot, SNAP_1, b"snap", WriteMode::CreateNew)
        .unwrap();
    // Names that are not object names are never listed, and are noted.
    be.write(
        FileKind::Snapshot,
        "Thumbs.db",
        b"junk",
        WriteMode::CreateNew,
    )
    .unwrap();
    be.write(FileKind::Pack, "ab.DS_Store", b"junk", WriteMode::CreateNew)
        .unwrap();
    let packs = be.list(FileKind::Pack).unwrap();
    assert_eq!(
        packs,
        vec![(PACK_A.to_string(), big as u64), (PACK_B.to_string(), 10)]
    );
    assert_eq!(
        be.list(FileKind::Snapshot).unwrap(),
        vec![(SNAP_1.to_string(), 4)]
    );
    let ignored = snap::backend::ignored();
    for junk in ["snapshots/Thumbs.db", "data/ab/ab.DS_Store"] {
        assert!(
            ignored
                .iter()
                .any(|i| i.contains(&loc) && i.ends_with(junk)),
            "{loc}: {junk} not noted in {ignored:?}"
        );
    }
    assert_eq!(be.list(FileKind::Key).unwrap().len(), 1);
    assert!(be.list(FileKind::Lock).unwrap().is_empty());

    // delete, and deleting a missing object is fine
    be.delete(FileKind::Pack, PACK_B).unwrap();
    be.delete(FileKind::Pack, PACK_B).unwrap();
    assert_eq!(be.list(FileKind::Pack).unwrap().len(), 1);
    assert!(be.read(FileKind::Pack, PACK_B).unwrap_err().is_not_found());

    // concurrent create-if-absent: exactly one writer wins
    let wins: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let be = be.clone();
                s.spawn(move || {
                    be.write(
                        FileKind::Lock,
                        "create-00c0ffee",
                        format!("w{i}").as_bytes(),
                        WriteMode::CreateNew,
                    )
                    .is_ok() as usize
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1, "{loc}: exactly one CreateNew may win");
}

#[test]
fn local_directory() {
    let d = tempfile::tempdir().unwrap();
    suite(Arc::new(LocalBackend::new(d.path().join("repo"))), 3 << 20);
}

#[test]
fn file_url_object_store() {
    let d = tempfile::tempdir().unwrap();
    let url = format!("file://{}", d.path().join("repo").display());
    suite(
        Arc::new(ObjectBackend::open_with(&url, &[]).unwrap()),
        20 << 20,
    );
}

#[test]
fn s3_object_store() {
    let Some(s) = common::s3() else { return };
    let be = ObjectBackend::open_with(&s.url("conformance"), &s.options()).unwrap();
    suite(Arc::new(be), 20 << 20);
}

#[test]
fn sftp_server() {
    let Some(s) = sshd::start() else { return };
    let d = tempfile::tempdir().unwrap();
    let url = s.url(&d.path().join("repo"));
    let be = snap::backend::sftp::SftpBackend::open_with(&url, &s.options()).unwrap();
    suite(Arc::new(be), 3 << 20);
    // Every temp file was moved into place or removed.
    let tmp = d.path().join("repo/tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "{tmp:?}");
}
