//! A repository written by the released snap v0.1 (tests/fixtures/v0_1/,
//! see its README) is read by the current binary: its snapshots list,
//! `ls` shows them, both restore byte for byte with their metadata (compared
//! with the source trees by an independent walk), `check --read-data` is
//! clean; and on a copy, a new create deduplicates against the old data,
//! forget + prune work, and the repository checks clean afterwards.
//!
//! The source trees are not stored: `write_source` regenerates them
//! exactly (content, modes and nanosecond mtimes), and `sources.txt`, the
//! checked-in listing of what v0.1 backed up, guards the generator against
//! drift. `make_v0_1_fixture` (ignored) is how the fixture was made.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    assert_same_tree, assert_success, chmod, code, escaped, os, restored, scan, set_mtime,
};
use serde_json::Value;

/// The directory v0.1 backed up (recorded in the snapshots; restores put
/// the files below `TARGET/tmp/snap-v0_1-fixture/src`).
const FIXTURE_SRC: &str = "/tmp/snap-v0_1-fixture/src";
/// The password of the fixture repository.
const PASSWORD: &str = "v0.1 fixture password";
/// The host name both snapshots record.
const HOST: &str = "fixture";
/// The two snapshots: tag, time, and the line count of the `db.sql` dump.
const SNAPSHOTS: [(&str, &str, u32); 2] = [
    ("v1", "2024-01-01T00:00:00Z", 20_000),
    ("v2", "2024-02-01T00:00:00Z", 25_000),
];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0_1")
}

// ---------------------------------------------------------------------------
// The source trees.

/// Deterministic text: numbered lines of words from a small list, so that
/// zstd shrinks it (the fixture stays small) while content-defined chunking
/// still finds boundaries everywhere.
fn text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 32] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
        "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "backup",
        "snapshot", "chunk", "pack", "tree", "blob",
    ];
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 128);
    let mut line = 0u64;
    while out.len() < len {
        out.extend_from_slice(format!("{line:07}").as_bytes());
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push(b' ');
            out.extend_from_slice(WORDS[(x % 32) as usize].as_bytes());
        }
        out.push(b'\n');
        line += 1;
    }
    out.truncate(len);
    out
}

/// The 1 MiB file (about 16 chunks of 64 KiB); version 2 rewrites 12 KB in
/// its middle.
fn big_file(version: u32) -> Vec<u8> {
    let mut b = text(1, 1 << 20);
    if version == 2 {
        b[400_000..412_000].copy_from_slice(&text(2, 12_000));
    }
    b
}

enum What {
    Dir,
    File(Vec<u8>),
    Link(&'static str),
}

/// Writes version 1 or 2 of the source tree into `dir` (must not exist):
/// a large file over several chunks, small files with various modes, an
/// empty file, a non-UTF-8 name, a nested directory, a symlink and an empty
/// directory. Version 2 changes some content, one mode, removes a file and
/// adds one; unchanged entries keep their mtimes, so that a create sees them
/// as unchanged.
fn write_source(dir: &Path, version: u32) {
    let v2 = version == 2;
    let readme = format!("snap v0.1 fixture, version {version}\n").into_bytes();
    // (relative name, what, mode, changed in version 2)
    let mut entries: Vec<(&[u8], What, u32, bool)> = vec![
        (b"", What::Dir, 0o755, true),
        (b"README.txt", What::File(readme), 0o644, true),
        (b"big.txt", What::File(big_file(version)), 0o644, true),
        (b"empty.txt", What::File(Vec::new()), 0o644, false),
        (
            b"secret.txt",
            What::File(b"not really secret\n".to_vec()),
            if v2 { 0o640 } else { 0o600 },
            true,
        ),
        (
            b"run.sh",
            What::File(b"#!/bin/sh\necho fixture\n".to_vec()),
            0o755,
            false,
        ),
        (
            b"caf\xe9 latin-1.txt",
            What::File(b"a name that is not UTF-8\n".to_vec()),
            0o644,
            false,
        ),
        (b"sub", What::Dir, 0o755, false),
        (b"sub/deep", What::Dir, 0o700, false),
        (
            b"sub/deep/nested.txt",
            What::File(b"deep\n".to_vec()),
            0o640,
            false,
        ),
        (b"sub/link", What::Link("../README.txt"), 0o777, false),
        (b"emptydir", What::Dir, 0o750, false),
    ];
    if v2 {
        entries.push((
            b"new.txt",
            What::File(b"added in version 2\n".to_vec()),
            0o644,
            true,
        ));
    } else {
        entries.push((
            b"old.txt",
            What::File(b"removed in version 2\n".to_vec()),
            0o644,
            false,
        ));
    }
    for (name, what, mode, _) in &entries {
        let p = dir.join(os(name));
        match what {
            What::Dir => fs::create_dir(&p).unwrap(),
            What::File(bytes) => fs::write(&p, bytes).unwrap(),
            What::Link(target) => symlink(target, &p).unwrap(),
        }
        if !matches!(what, What::Link(_)) {
            chmod(&p, *mode);
        }
    }
    // Children before their parents, so that no later change moves a
    // directory's mtime.
    for (i, (name, _, _, changed)) in entries.iter().enumerate().rev() {
        let bump = if v2 && *changed { 86_400 } else { 0 };
        let secs = 1_600_000_000 + 1000 * i as i64 + bump;
        let nanos = (123_456_789 * (i as u64 + 1) % 1_000_000_000) as u32;
        set_mtime(&dir.join(os(name)), secs, nanos);
    }
}

/// The `db.sql` dump of a snapshot: the output of `seq 1 N`.
fn dump(lines: u32) -> Vec<u8> {
    (1..=lines)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

fn escape(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_graphic() && c != b'\\' {
                (c as char).to_string()
            } else {
                format!("\\x{c:02x}")
            }
        })
        .collect()
}

/// One line per entry of a tree (an independent walk): kind, mode, mtime,
/// size, content hash or link target, path.
fn manifest(root: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for (p, m) in scan(root) {
        let what = match (&m.content, &m.link) {
            (Some(h), _) => h.clone(),
            (_, Some(l)) => format!("-> {}", escape(l.as_bytes())),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{} {:04o} {}.{:09} {} {} /{}\n",
            m.kind,
            m.mode,
            m.mtime.0,
            m.mtime.1,
            m.size,
            what,
            escape(p.as_os_str().as_bytes())
        ));
    }
    out
}

/// The listing of both versions, as checked in (`sources.txt`).
fn manifests(work: &Path) -> String {
    let mut out = String::new();
    for v in 1..=2 {
        let d = work.join(format!("manifest-v{v}"));
        write_source(&d, v);
        out.push_str(&format!("# version {v}\n{}", manifest(&d)));
    }
    out
}

// ---------------------------------------------------------------------------
// Running snap on an unpacked copy of the fixture.

struct Fixture {
    tmp: tempfile::TempDir,
    repo: PathBuf,
}

impl Fixture {
    /// Unpacks the fixture repository into a fresh temp dir (with its own
    /// cache directory).
    fn unpack() -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("snap-v0_1-")
            .tempdir()
            .unwrap();
        let st = Command::new("tar")
            .arg("-xzf")
            .arg(fixture_dir().join("repo.tar.gz"))
            .arg("-C")
            .arg(tmp.path())
            .status()
            .expect("tar runs");
        assert!(st.success(), "tar -x failed");
        let repo = tmp.path().join("repo");
        assert!(repo.join("config").is_file());
        Fixture { tmp, repo }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn cmd(&self, password: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
        c.env_remove("SNAP_PASSWORD_FILE")
            .env_remove("SNAP_PASSWORD_COMMAND")
            .env_remove("SNAP_FAILPOINTS")
            .env("SNAP_REPO", &self.repo)
            .env("SNAP_CACHE_DIR", self.path("cache"))
            .env("SNAP_PASSWORD", password);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(PASSWORD).args(args).output().expect("snap runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_success(&out, &format!("snap {args:?}"));
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON {out:?}: {e}"))
    }

    /// Snapshot ids by tag.
    fn ids(&self) -> Vec<(String, String)> {
        self.json(&["snapshots"])
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let tag = s["tags"][0].as_str().unwrap_or("").to_string();
                (tag, s["id"].as_str().unwrap().to_string())
            })
            .collect()
    }

    fn id(&self, tag: &str) -> String {
        self.ids()
            .into_iter()
            .find(|(t, _)| t == tag)
            .unwrap_or_else(|| panic!("no snapshot tagged {tag}"))
            .1
    }

    /// Restores snapshot `id` and compares it with version `version` of
    /// the source (regenerated) and with its dump of `lines` lines.
    fn restore_and_compare(&self, id: &str, version: u32, lines: u32, name: &str) {
        let out = self.path(&format!("out-{name}"));
        self.ok(&["restore", id, "--to", out.to_str().unwrap()]);
        let want = self.path(&format!("want-{name}"));
        write_source(&want, version);
        assert_same_tree(&want, &restored(&out, Path::new(FIXTURE_SRC)));
        let db = fs::read(out.join(".snap-streams/db.sql")).unwrap();
        assert!(db == dump(lines), "db.sql of {name} differs");
    }
}

#[test]
fn the_generator_still_makes_the_trees_v0_1_backed_up() {
    let work = tempfile::tempdir().unwrap();
    let want = fs::read_to_string(fixture_dir().join("sources.txt")).unwrap();
    let got = manifests(work.path());
    assert!(
        got == want,
        "write_source no longer makes what tests/fixtures/v0_1/sources.txt lists:\n{got}"
    );
}

#[test]
fn current_binary_reads_a_v0_1_repository() {
    let f = Fixture::unpack();
    assert!(
        f.repo.join("index/index.sqlite").is_file(),
        "the fixture keeps v0.1's in-repository index"
    );

    // Both snapshots, with what v0.1 recorded.
    let snaps = f.json(&["snapshots"]);
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    for (s, (tag, time, _)) in snaps.iter().zip(SNAPSHOTS) {
        assert_eq!(s["tags"], serde_json::json!([tag]), "{s}");
        assert_eq!(s["time"], time, "{s}");
        assert_eq!(s["host"], HOST, "{s}");
        assert_eq!(
            s["paths"],
            serde_json::json!([FIXTURE_SRC, "/.snap-streams"]),
            "{s}"
        );
    }

    // `ls` lists every entry of the source with its kind, mode, size and
    // link target.
    for (v, (tag, _, lines)) in (1..=2).zip(SNAPSHOTS) {
        let want = f.path(&format!("ls-want-{tag}"));
        write_source(&want, v);
        let mut expect: Vec<String> = scan(&want)
            .into_iter()
            .map(|(p, m)| {
                let path = if p.as_os_str().is_empty() {
                    PathBuf::from(FIXTURE_SRC)
                } else {
                    Path::new(FIXTURE_SRC).join(&p)
                };
                // Names as `ls` shows them (docs/names.md).
                let link = m.link.map(|l| escaped(l.as_bytes()));
                format!(
                    "{} {} {:o} {} {link:?}",
                    escaped(path.as_os_str().as_bytes()),
                    m.kind,
                    m.mode,
                    m.size
                )
            })
            .collect();
        expect.push(format!(
            "/.snap-streams/db.sql file 600 {} None",
            dump(lines).len()
        ));
        expect.sort();
        let mut got: Vec<String> = f
            .json(&["ls", &f.id(tag)])
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                let p = e["path"].as_str().unwrap();
                p.starts_with(FIXTURE_SRC) || p.starts_with("/.snap-streams/")
            })
            .map(|e| {
                let link = e["link_target"].as_str().map(str::to_string);
                format!(
                    "{} {} {:o} {} {link:?}",
                    e["path"].as_str().unwrap(),
                    e["kind"].as_str().unwrap(),
                    e["mode"].as_u64().unwrap(),
                    e["size"].as_u64().unwrap()
                )
            })
            .collect();
        got.sort();
        assert_eq!(got, expect, "ls of {tag}");
    }

    // Both restore exactly.
    for (v, (tag, _, lines)) in (1..=2).zip(SNAPSHOTS) {
        f.restore_and_compare(&f.id(tag), v, lines, tag);
    }

    let out = f.run(&["check", "--read-data"]);
    assert_success(&out, "check --read-data of the v0.1 repository");

    // A wrong password is still exit code 12; an empty one is refused as
    // such, without trying it.
    let out = f
        .cmd("not the password")
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 12, "wrong password: {out:?}");
    let out = f.cmd("").args(["snapshots"]).output().unwrap();
    assert!(
        code(&out) != 0 && String::from_utf8_lossy(&out.stderr).contains("empty"),
        "empty password: {out:?}"
    );
}

#[test]
fn create_forget_and_prune_on_a_copy_of_a_v0_1_repository() {
    let f = Fixture::unpack();
    // A new snapshot of version 2 of the tree (at another path) plus a
    // file: the old data is found again, so little is added.
    let src = f.path("src");
    write_source(&src, 2);
    fs::write(
        src.join("after-upgrade.txt"),
        b"written by the current binary\n",
    )
    .unwrap();
    let r = f.json(&[
        "create",
        src.to_str().unwrap(),
        "--host",
        HOST,
        "--tag",
        "v3",
    ]);
    let added = r["summary"]["bytes_added"].as_u64().unwrap();
    assert!(
        added < 200_000,
        "the 1 MiB file was not deduplicated against v0.1's chunks: {r}"
    );
    let v3 = r["snapshot"].as_str().unwrap().to_string();
    let out = f.path("out-v3");
    f.ok(&["restore", &v3, "--to", out.to_str().unwrap()]);
    assert_same_tree(&src, &restored(&out, &src));
    assert_success(&f.run(&["check", "--read-data"]), "check after create");

    // Forget the first v0.1 snapshot and collect its garbage.
    let v1 = f.id("v1");
    f.ok(&["forget", &v1]);
    let p = f.json(&["prune", "--max-unused", "0"]);
    let gc = &p["gc"];
    assert!(
        gc["packs_deleted"].as_u64().unwrap() + gc["packs_repacked"].as_u64().unwrap() >= 1,
        "prune freed nothing after forgetting v1: {p}"
    );
    assert_success(&f.run(&["check", "--read-data"]), "check after prune");
    let tags: Vec<String> = f.ids().into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, ["v2", "v3"]);
    f.restore_and_compare(&f.id("v2"), 2, SNAPSHOTS[1].2, "v2-after-prune");
    let out = f.path("out-v3-after-prune");
    f.ok(&["restore", &v3, "--to", out.to_str().unwrap()]);
    assert_same_tree(&src, &restored(&out, &src));
}

/// Makes the fixture: `SNAP_V0_1_BIN=/path/to/snap-v0.1 cargo test --test
/// v0_1_fixture -- --ignored make_v0_1_fixture` (see the fixture's README).
#[test]
#[ignore = "rewrites tests/fixtures/v0_1 with the v0.1 binary named by SNAP_V0_1_BIN"]
fn make_v0_1_fixture() {
    let bin = std::env::var_os("SNAP_V0_1_BIN").expect("set SNAP_V0_1_BIN to the v0.1 binary");
    let base = Path::new(FIXTURE_SRC).parent().unwrap();
    let _ = fs::remove_dir_all(base);
    fs::create_dir_all(base).unwrap();
    let repo = base.join("repo");
    let v01 = |args: &[&str]| {
        let out = Command::new(&bin)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SNAP_CACHE_DIR", base.join("cache"))
            .env("SNAP_PASSWORD", PASSWORD)
            .arg("--repo")
            .arg(&repo)
            .args(args)
            .output()
            .unwrap();
        assert_success(&out, &format!("snap-v0.1 {args:?}"));
    };
    v01(&[
        "init",
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
        "--chunk-avg-kib",
        "64",
    ]);
    for (v, (tag, time, lines)) in (1..=2).zip(SNAPSHOTS) {
        let _ = fs::remove_dir_all(FIXTURE_SRC);
        write_source(Path::new(FIXTURE_SRC), v);
        let dump_cmd = format!("db.sql=seq 1 {lines}");
        v01(&[
            "create",
            FIXTURE_SRC,
            "--from-command",
            &dump_cmd,
            "--host",
            HOST,
            "--time",
            time,
            "--tag",
            tag,
        ]);
    }
    let dir = fixture_dir();
    fs::create_dir_all(&dir).unwrap();
    let st = Command::new("tar")
        .args(["--sort=name", "--numeric-owner", "-czf"])
        .arg(dir.join("repo.tar.gz"))
        .arg("-C")
        .arg(base)
        .arg("repo")
        .status()
        .unwrap();
    assert!(st.success());
    fs::create_dir_all(base.join("manifests")).unwrap();
    fs::write(dir.join("sources.txt"), manifests(&base.join("manifests"))).unwrap();
}
