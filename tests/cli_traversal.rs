//! A snapshot can never make `restore` write outside its target: malicious
//! trees are crafted with the library (bypassing the checks of
//! `Tree::parse`), then restored with the real binary.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use snap::format::snapshot::{Snapshot, Summary};
use snap::format::tree::{Node, NodeKind, Tree};
use snap::format::{BlobId, BlobKind};
use snap::repository::saver::BlobSaver;
use snap::Repository;

fn open(env: &Env) -> Arc<Repository> {
    let be = snap::backend::open(env.repo.to_str().unwrap()).unwrap();
    Arc::new(Repository::open(be, PASSWORD.as_bytes()).unwrap())
}

fn file(saver: &BlobSaver, name: &[u8], content: &[u8]) -> Node {
    let (id, _) = saver.save(BlobKind::Data, content).unwrap();
    let mut n = Node::new(name.to_vec(), NodeKind::File);
    n.mode = 0o644;
    n.size = content.len() as u64;
    n.content = vec![id];
    n
}

fn dir(saver: &BlobSaver, name: &[u8], nodes: Vec<Node>) -> Node {
    let mut n = Node::new(name.to_vec(), NodeKind::Dir);
    n.mode = 0o755;
    n.subtree = Some(save_tree(saver, nodes));
    n
}

fn link(name: &[u8], target: &[u8]) -> Node {
    let mut n = Node::new(name.to_vec(), NodeKind::Symlink);
    n.mode = 0o777;
    n.link_target = Some(target.to_vec());
    n
}

/// Makes the root tree of a crafted snapshot.
type Builder = Box<dyn Fn(&BlobSaver) -> Vec<Node>>;

/// Saves a tree exactly as given: no sorting, no name checks (the
/// library's encoders refuse such trees, so the bytes are made here:
/// version 1 || postcard, format-spec/05).
fn save_tree(saver: &BlobSaver, nodes: Vec<Node>) -> BlobId {
    let mut bytes = vec![1u8];
    bytes.extend(postcard::to_stdvec(&Tree { nodes }).unwrap());
    saver.save(BlobKind::Tree, &bytes).unwrap().0
}

/// Stores a snapshot whose root tree `build` makes; returns its id.
fn craft(env: &Env, build: impl FnOnce(&BlobSaver) -> Vec<Node>) -> String {
    let repo = open(env);
    let saver = BlobSaver::new(repo.clone(), 1).unwrap();
    let nodes = build(&saver);
    let root = save_tree(&saver, nodes);
    saver.finish().unwrap();
    let snap = Snapshot {
        time_ns: 1_700_000_000_000_000_000,
        host: "crafted".into(),
        user: "mallory".into(),
        tags: vec![],
        paths: vec!["/crafted".into()],
        tree: root,
        parent: None,
        incomplete: false,
        summary: Summary::default(),
    };
    repo.save_snapshot(&snap).unwrap().to_hex()
}

/// Every file below `dir` (recursively, not following symlinks).
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                out.extend(all_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A sandbox: `box/target` is where restore writes; everything else in
/// `box/` (and `outside/`) must stay exactly as it was.
struct Sandbox {
    root: PathBuf,
    target: PathBuf,
    outside: PathBuf,
    before: Vec<PathBuf>,
}

impl Sandbox {
    fn new(env: &Env, name: &str) -> Sandbox {
        let root = env.path(name);
        let target = root.join("box/target");
        let outside = root.join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("victim"), b"untouched").unwrap();
        fs::write(outside.join("linked"), b"untouched").unwrap();
        fs::create_dir_all(root.join("box")).unwrap();
        let before = all_files(&root);
        Sandbox {
            root,
            target,
            outside,
            before,
        }
    }

    fn assert_nothing_outside(&self) {
        let now: Vec<PathBuf> = all_files(&self.root)
            .into_iter()
            .filter(|p| !p.starts_with(&self.target))
            .collect();
        assert_eq!(now, self.before, "restore wrote outside its target");
        assert_eq!(fs::read(self.outside.join("victim")).unwrap(), b"untouched");
        assert_eq!(fs::read(self.outside.join("linked")).unwrap(), b"untouched");
    }

    fn restore(&self, env: &Env, id: &str) -> std::process::Output {
        env.run([
            "restore".as_ref(),
            id.as_ref(),
            "--to".as_ref(),
            self.target.as_os_str(),
        ])
    }
}

#[test]
fn unsafe_names_in_a_tree_are_refused() {
    let env = Env::new();
    let abs_escape = env.path("abs-escaped.txt");
    let cases: Vec<(&str, Builder)> = vec![
        (
            "dotdot dir",
            Box::new(|s: &BlobSaver| vec![dir(s, b"..", vec![file(s, b"escaped.txt", b"evil")])]),
        ),
        (
            "dotdot deep",
            Box::new(|s: &BlobSaver| {
                vec![dir(
                    s,
                    b"a",
                    vec![dir(
                        s,
                        b"..",
                        vec![dir(s, b"..", vec![file(s, b"x", b"evil")])],
                    )],
                )]
            }),
        ),
        (
            "slash in name",
            Box::new(|s: &BlobSaver| vec![file(s, b"../../escaped-slash.txt", b"evil")]),
        ),
        (
            "absolute name",
            Box::new(move |s: &BlobSaver| {
                vec![file(s, abs_escape.as_os_str().as_bytes(), b"evil")]
            }),
        ),
        (
            "dot",
            Box::new(|s: &BlobSaver| vec![dir(s, b".", vec![file(s, b"f", b"evil")])]),
        ),
        (
            "empty",
            Box::new(|s: &BlobSaver| vec![file(s, b"", b"evil")]),
        ),
        (
            "nul",
            Box::new(|s: &BlobSaver| vec![file(s, b"a\0b", b"evil")]),
        ),
        (
            // The same name twice: first a symlink out, then a directory
            // through which a file would be written.
            "symlink then dir",
            Box::new(|s: &BlobSaver| {
                vec![
                    link(b"a", b"../../outside"),
                    dir(s, b"a", vec![file(s, b"planted", b"evil")]),
                ]
            }),
        ),
        (
            "dir then symlink",
            Box::new(|s: &BlobSaver| {
                vec![
                    dir(s, b"a", vec![file(s, b"planted", b"evil")]),
                    link(b"a", b"../../outside"),
                ]
            }),
        ),
        (
            "symlink then file",
            Box::new(|s: &BlobSaver| {
                vec![
                    link(b"victim", b"../../outside/victim"),
                    file(s, b"victim", b"evil"),
                ]
            }),
        ),
    ];
    for (i, (what, build)) in cases.into_iter().enumerate() {
        let id = craft(&env, build);
        let sb = Sandbox::new(&env, &format!("case{i}"));
        let out = sb.restore(&env, &id[..16]);
        assert_ne!(code(&out), 0, "{what}: restore of an unsafe tree succeeded");
        assert!(!stderr(&out).is_empty(), "{what}: no message");
        sb.assert_nothing_outside();
        assert!(!env.path("escaped.txt").exists(), "{what}");
        assert!(!env.path("abs-escaped.txt").exists(), "{what}");
        assert!(!sb.root.join("box/escaped.txt").exists(), "{what}");
        assert!(!sb.root.join("escaped-slash.txt").exists(), "{what}");
        // check reports the damage too.
        let out = env.run(["check"]);
        assert_ne!(code(&out), 0, "{what}: check accepted an unsafe tree");
        // Remove it, so that the next case's check sees only its own.
        fs::remove_file(env.repo.join("snapshots").join(&id)).unwrap();
    }
}

#[test]
fn symlinks_in_the_target_are_not_followed() {
    let env = Env::new();
    // A harmless snapshot: dir d/ with file f, and a top-level file g.
    let id = craft(&env, |s| {
        vec![
            dir(s, b"d", vec![file(s, b"f", b"from the snapshot")]),
            file(s, b"g", b"top-level file"),
            file(s, b"h", b"must not reach the outside through a hard link"),
            file(s, b"victim", b"evil"),
        ]
    });

    // The target already holds symlinks named like snapshot entries,
    // pointing outside.
    let sb = Sandbox::new(&env, "links");
    fs::create_dir_all(&sb.target).unwrap();
    symlink(&sb.outside, sb.target.join("d")).unwrap();
    symlink(sb.outside.join("victim"), sb.target.join("victim")).unwrap();
    symlink(sb.outside.join("g-new"), sb.target.join("g")).unwrap();
    fs::hard_link(sb.outside.join("linked"), sb.target.join("h")).unwrap();
    let out = sb.restore(&env, &id);
    sb.assert_nothing_outside();
    assert!(!sb.outside.join("f").exists());
    assert!(!sb.outside.join("g-new").exists());
    if code(&out) == 0 {
        // If restore went ahead, it replaced the links with real entries.
        assert!(fs::symlink_metadata(sb.target.join("d")).unwrap().is_dir());
        assert_eq!(
            fs::read(sb.target.join("d/f")).unwrap(),
            b"from the snapshot"
        );
        assert!(fs::symlink_metadata(sb.target.join("victim"))
            .unwrap()
            .is_file());
    } else {
        assert!(stderr(&out).contains("d"), "{}", stderr(&out));
    }

    // Without the directory symlink (which may make restore stop early),
    // files already in the target are replaced, never written through:
    // a hard link shares the inode, so writing into it would change the
    // file outside; a symlink would redirect the write.
    let sb = Sandbox::new(&env, "hardlink");
    fs::create_dir_all(&sb.target).unwrap();
    fs::hard_link(sb.outside.join("linked"), sb.target.join("h")).unwrap();
    symlink(sb.outside.join("victim"), sb.target.join("victim")).unwrap();
    symlink(sb.outside.join("g-new"), sb.target.join("g")).unwrap();
    let out = sb.restore(&env, &id);
    assert_success(&out, "restore over links");
    sb.assert_nothing_outside();
    assert!(!sb.outside.join("g-new").exists());
    assert_eq!(
        fs::read(sb.target.join("h")).unwrap(),
        b"must not reach the outside through a hard link"
    );
    assert_eq!(fs::read(sb.target.join("victim")).unwrap(), b"evil");

    // The target itself given through a parent that is a symlink is the
    // user's choice and is followed; but a snapshot symlink restored first
    // never redirects later files: restore the same snapshot twice.
    let sb2 = Sandbox::new(&env, "twice");
    for _ in 0..2 {
        let out = sb2.restore(&env, &id);
        assert_success(&out, "restore");
    }
    sb2.assert_nothing_outside();
}

#[test]
fn symlinks_from_a_snapshot_are_restored_as_links_only() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    symlink("../../../../../../../etc/passwd", src.join("up")).unwrap();
    symlink("/etc/shadow", src.join("abs")).unwrap();
    env.create(&[&src], &[]);
    let sb = Sandbox::new(&env, "sb");
    let out = sb.restore(&env, "latest");
    assert_success(&out, "restore");
    sb.assert_nothing_outside();
    let r = restored(&sb.target, &src);
    assert_eq!(
        fs::read_link(r.join("up")).unwrap(),
        Path::new("../../../../../../../etc/passwd")
    );
    assert_eq!(
        fs::read_link(r.join("abs")).unwrap(),
        Path::new("/etc/shadow")
    );
}
