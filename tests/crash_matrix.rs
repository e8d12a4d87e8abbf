//! Crashes and interleavings at every failpoint (src/failpoint.rs).
//!
//! For each failpoint of `create`, `prune` and `sync`, listed in
//! `snap::failpoint::ALL` (so a new one is covered without touching this
//! file), the command is killed there exactly as `kill -9` would, then:
//! `check --read-data` must be clean, every snapshot must restore to the
//! tree it was made from (compared by an independent walk), and the next
//! `create`, `prune` (with a short `--lock-wait`: no leftover lock may block
//! it) and `sync` must succeed without any manual cleanup.
//!
//! Then two-process interleavings made deterministic with `touch`/`wait`
//! failpoints: a create paused right after registering while a prune runs,
//! and a prune paused after writing its intent while a create deduplicates.

#![cfg(feature = "failpoints")]

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_same_tree, chmod, random_bytes, restored, set_mtime};
use serde_json::Value;

const PASSWORD: &str = "crash matrix";

/// The failpoints of one command.
fn points(prefix: &str) -> Vec<&'static str> {
    let v = snap::failpoint::reached_alone(prefix);
    assert!(!v.is_empty(), "no failpoint starts with {prefix}");
    v
}

// ------------------------------------------------------------------ trees

enum What {
    Dir,
    File(Vec<u8>),
    Link(&'static str),
}

/// Version `v` of the source tree: (path, what, mode, mtime in seconds).
/// Every version keeps `stable.bin`; `f{v}.bin` lives in versions v and
/// v + 1; `common.bin` and one small file change every time. So forgetting
/// old snapshots leaves packs that are all garbage and packs that are
/// partly garbage (repacked).
fn spec(v: u64) -> Vec<(String, What, u32, i64)> {
    let t = |n: i64| 1_650_000_000 + n;
    let mut e = vec![
        (String::new(), What::Dir, 0o755, t(v as i64 * 100)),
        (
            "stable.bin".into(),
            What::File(random_bytes(1, 200_000)),
            0o644,
            t(1),
        ),
        ("link".into(), What::Link("stable.bin"), 0o777, t(2)),
        ("docs".into(), What::Dir, 0o750, t(v as i64 * 100 + 3)),
        ("docs/empty".into(), What::Dir, 0o700, t(4)),
        (
            "common.bin".into(),
            What::File(random_bytes(50 + v, 100_000 + v as usize)),
            0o600,
            t(v as i64 * 100 + 5),
        ),
    ];
    for w in [v.saturating_sub(1), v] {
        if w >= 1 {
            e.push((
                format!("f{w}.bin"),
                What::File(random_bytes(100 + w, 150_000)),
                0o644,
                t(w as i64 * 100 + 6),
            ));
        }
    }
    for i in 0..5u64 {
        let gen = if i == v % 5 { v } else { 0 };
        let text = format!("small file {i}, generation {gen}\n").into_bytes();
        e.push((
            format!("docs/{i}.txt"),
            What::File(text),
            0o644,
            t(gen as i64 * 100 + 10 + i as i64),
        ));
    }
    e
}

/// Makes `dir` hold version `v`, touching only what differs from what is
/// there (so that a create sees the rest as unchanged).
fn write_tree(dir: &Path, v: u64) {
    let spec = spec(v);
    if dir.exists() {
        // Remove what version v does not have.
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(dir).unwrap().to_str().unwrap().to_string();
                let kept = spec.iter().any(|(n, _, _, _)| *n == rel);
                let is_dir = fs::symlink_metadata(&p).unwrap().is_dir();
                if !kept {
                    if is_dir {
                        fs::remove_dir_all(&p).unwrap();
                    } else {
                        fs::remove_file(&p).unwrap();
                    }
                } else if is_dir {
                    stack.push(p);
                }
            }
        }
    }
    let mut touched = Vec::new();
    for (name, what, mode, mtime) in &spec {
        let p = dir.join(name);
        let same = match what {
            What::Dir => p.is_dir(),
            What::File(b) => fs::read(&p).ok().as_ref() == Some(b),
            What::Link(t) => fs::read_link(&p).ok() == Some(PathBuf::from(t)),
        };
        if same && !matches!(what, What::Dir) {
            continue;
        }
        match what {
            What::Dir => {
                if !same {
                    fs::create_dir(&p).unwrap();
                }
            }
            What::File(b) => fs::write(&p, b).unwrap(),
            What::Link(t) => {
                let _ = fs::remove_file(&p);
                symlink(t, &p).unwrap();
            }
        }
        if !matches!(what, What::Link(_)) {
            chmod(&p, *mode);
        }
        touched.push((p, *mtime));
    }
    // Children before parents, so no later change moves a directory's mtime.
    for (p, mtime) in touched.iter().rev() {
        set_mtime(p, *mtime, 500);
    }
}

// ------------------------------------------------------------------ a site

/// A temp dir with repositories (`repo-NAME`), each used with its own cache
/// dir (`cache-NAME`), and scratch space; and the source tree.
struct Site {
    tmp: tempfile::TempDir,
    /// The source tree. Copies of a site share it: snapshots record its
    /// path, and a copy's next backups must be of the same path.
    src: PathBuf,
}

impl Site {
    fn new() -> Site {
        let tmp = tempfile::Builder::new()
            .prefix("snap-crash-")
            .tempdir()
            .unwrap();
        let src = tmp.path().join("src");
        let s = Site { tmp, src };
        s.ok(
            "a",
            &[
                "init",
                "--kdf-memory-kib",
                "1024",
                "--kdf-iterations",
                "1",
                "--chunk-avg-kib",
                "64",
            ],
        );
        s
    }

    /// A copy of `from`'s repositories (not its caches or scratch files)
    /// that shares its source tree.
    fn copy_of(from: &Site) -> Site {
        let s = Site {
            tmp: tempfile::Builder::new()
                .prefix("snap-crash-")
                .tempdir()
                .unwrap(),
            src: from.src.clone(),
        };
        for e in fs::read_dir(from.tmp.path()).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("repo-") {
                copy_dir(&e.path(), &s.p(&name));
            }
        }
        s
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.p(&format!("repo-{name}"))
    }

    fn src(&self) -> PathBuf {
        self.src.clone()
    }

    fn cmd(&self, repo: &str, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
        c.env_remove("SNAP_PASSWORD_FILE")
            .env_remove("SNAP_PASSWORD_COMMAND")
            .env_remove("SNAP_FAILPOINTS")
            .env("SNAP_PASSWORD", PASSWORD)
            .env("SNAP_CACHE_DIR", self.p(&format!("cache-{repo}")))
            .arg("--repo")
            .arg(self.repo(repo))
            .args(args);
        c
    }

    fn run(&self, repo: &str, args: &[&str]) -> Output {
        self.cmd(repo, args).output().unwrap()
    }

    fn ok(&self, repo: &str, args: &[&str]) -> Output {
        let out = self.run(repo, args);
        assert!(
            out.status.success(),
            "snap {args:?} on {repo} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn json(&self, repo: &str, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_slice(&self.ok(repo, &a).stdout).unwrap()
    }

    /// Brings `src` to version `v` and backs it up, tagged `v{v}`.
    fn create(&self, repo: &str, v: u64) -> Value {
        write_tree(&self.src(), v);
        let src = self.src();
        self.json(
            repo,
            &["create", src.to_str().unwrap(), "--tag", &format!("v{v}")],
        )
    }

    fn snapshots(&self, repo: &str) -> Vec<(String, u64)> {
        self.json(repo, &["snapshots"])
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let tag = s["tags"][0].as_str().unwrap();
                let v = tag.strip_prefix('v').unwrap().parse().unwrap();
                (s["id"].as_str().unwrap().to_string(), v)
            })
            .collect()
    }

    fn id_of(&self, repo: &str, v: u64) -> String {
        self.snapshots(repo)
            .into_iter()
            .find(|(_, w)| *w == v)
            .unwrap_or_else(|| panic!("no snapshot of version {v}"))
            .0
    }

    /// `check --read-data` is clean and every snapshot restores to its
    /// version of the tree. Returns the versions found.
    fn verify(&self, repo: &str, what: &str) -> Vec<u64> {
        let out = self.run(repo, &["check", "--read-data"]);
        assert!(
            out.status.success(),
            "{what}: check --read-data of {repo} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut versions = Vec::new();
        for (i, (id, v)) in self.snapshots(repo).into_iter().enumerate() {
            let to = self.p(&format!("restore-{repo}-{i}"));
            let _ = fs::remove_dir_all(&to);
            let out = self.run(repo, &["restore", &id, "--to", to.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "{what}: restore of v{v} ({id}) failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let want = self.p(&format!("want-v{v}"));
            if !want.exists() {
                write_tree(&want, v);
            }
            assert_same_tree(&want, &restored(&to, &self.src()));
            fs::remove_dir_all(&to).unwrap();
            versions.push(v);
        }
        versions
    }

    /// `verify` on an exact copy of repository `repo` (which the copy's
    /// checks do not touch).
    fn verify_copy(&self, repo: &str, what: &str) -> Vec<u64> {
        let name = format!("{repo}-copy");
        copy_dir(&self.repo(repo), &self.repo(&name));
        let v = self.verify(&name, what);
        fs::remove_dir_all(self.repo(&name)).unwrap();
        v
    }

    fn no_locks_left(&self, repo: &str, what: &str) {
        let left: Vec<_> = fs::read_dir(self.repo(repo).join("locks"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{what}: locks left in {repo}: {left:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {}", from.display());
}

/// What happens at the failpoint: killed (`kill -9`), or an error (an I/O
/// error the command must handle like any other).
const ACTIONS: [&str; 2] = ["abort", "error"];

/// Runs `cmd` with `point=action` and asserts it stopped there.
fn fail_at(mut cmd: Command, point: &str, action: &str) {
    let out = cmd
        .env("SNAP_FAILPOINTS", format!("{point}={action}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stopped = match action {
        "abort" => out.status.signal() == Some(libc::SIGKILL),
        _ => out.status.code() == Some(1) && stderr.contains(&format!("failpoint {point}")),
    };
    assert!(
        stopped,
        "failpoint {point}={action} was not reached ({}):\n{stderr}",
        out.status
    );
}

const PRUNE: [&str; 7] = [
    "prune",
    "--keep-last",
    "2",
    "--max-unused",
    "0",
    "--lock-wait",
    "3s",
];

// ---------------------------------------------------------- the matrix

#[test]
fn every_failpoint_is_in_a_matrix() {
    for p in snap::failpoint::ALL {
        assert!(
            ["create.", "prune.", "sync."]
                .iter()
                .any(|c| p.starts_with(c))
                // restore's are killed in tests/restore_safety.rs,
                // tag's in tests/cli_tag.rs, copy's in tests/cli_copy.rs.
                || p.starts_with("restore.")
                || p.starts_with("tag.")
                || p.starts_with("copy."),
            "{p}: add its command to tests/crash_matrix.rs"
        );
    }
}

#[test]
fn abort_or_error_at_every_failpoint_of_create() {
    let template = Site::new();
    template.create("a", 1);
    template.create("a", 2);
    for (point, action) in points("create.")
        .into_iter()
        .flat_map(|p| ACTIONS.map(|a| (p, a)))
    {
        let what = format!("{point}={action}");
        let s = Site::copy_of(&template);
        write_tree(&s.src(), 3);
        let src = s.src();
        let create = s.cmd("a", &["create", src.to_str().unwrap(), "--tag", "v3"]);
        fail_at(create, point, action);
        if action == "error" {
            // A failing create removes its registration.
            s.no_locks_left("a", &what);
        }
        let committed = point == "create.after_snapshot";
        let want: &[u64] = if committed { &[1, 2, 3] } else { &[1, 2] };
        assert_eq!(s.verify("a", &what), want, "{what}");
        // The next create and prune need no cleanup.
        s.create("a", 4);
        s.ok("a", &PRUNE);
        let want: &[u64] = if committed { &[3, 4] } else { &[2, 4] };
        assert_eq!(s.verify("a", &what), want, "{what}");
        s.no_locks_left("a", &what);
    }
}

#[test]
fn abort_or_error_at_every_failpoint_of_prune() {
    // Forgetting v1 and v2 leaves packs that are all garbage and packs
    // that are partly garbage: every step of prune has work to do.
    let template = Site::new();
    for v in 1..=4 {
        template.create("a", v);
    }
    for (point, action) in points("prune.")
        .into_iter()
        .flat_map(|p| ACTIONS.map(|a| (p, a)))
    {
        let what = format!("{point}={action}");
        let s = Site::copy_of(&template);
        fail_at(s.cmd("a", &PRUNE), point, action);
        if action == "error" {
            // A failing prune removes its intent.
            s.no_locks_left("a", &what);
        }
        let left = s.verify("a", &what);
        assert!(left.ends_with(&[3, 4]), "{what}: {left:?}");
        s.create("a", 5);
        let r = s.json("a", &PRUNE);
        assert_eq!(s.verify("a", &what), [4, 5], "{what}: {r}");
        // Whatever the killed run left (a copy of a repacked pack, an
        // intent) is gone after one more prune.
        let r = s.json("a", &PRUNE);
        assert_eq!(r["gc"]["bytes_freed"], 0, "{what}: {r}");
        s.no_locks_left("a", &what);
    }
}

#[test]
fn abort_or_error_at_every_failpoint_of_sync() {
    // Mirror b holds v1 and v2; the source a then forgot and pruned v1 and
    // got v3 and v4: `sync --delete` copies packs and two snapshots, then
    // deletes a snapshot and packs on b.
    let template = Site::new();
    template.create("a", 1);
    template.create("a", 2);
    let b = template.repo("b");
    template.ok("a", &["sync", "--to", b.to_str().unwrap()]);
    let v1 = template.id_of("a", 1);
    template.ok("a", &["forget", &v1]);
    template.ok("a", &["prune", "--max-unused", "0"]);
    template.create("a", 3);
    template.create("a", 4);
    for (point, action) in points("sync.")
        .into_iter()
        .flat_map(|p| ACTIONS.map(|a| (p, a)))
    {
        let what = format!("{point}={action}");
        let s = Site::copy_of(&template);
        let b = s.repo("b");
        let sync = ["sync", "--to", b.to_str().unwrap(), "--delete"];
        fail_at(s.cmd("a", &sync), point, action);
        assert_eq!(s.verify("a", &what), [2, 3, 4], "{what}: the source");
        // The target is checked on an exact copy, so that its own index is
        // first built after the next sync (see the ignored test below).
        let on_b = s.verify_copy("b", &what);
        assert!(on_b.contains(&2), "{what}: {on_b:?}");
        // The next sync finishes the job; both sides still work.
        s.ok("a", &sync);
        assert_eq!(s.verify("b", &what), [2, 3, 4], "{what}");
        s.create("b", 5);
        s.ok("b", &PRUNE);
        assert_eq!(s.verify("b", &what), [4, 5], "{what}");
        s.no_locks_left("b", &what);
    }
}

// ---------------------------------------------------- interleavings

/// Waits until `path` exists (a failpoint's `touch`), or panics.
fn await_file(path: &Path, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("{what}: the process ended ({st}) before reaching its failpoint");
        }
        assert!(
            Instant::now() < deadline,
            "{what}: failpoint not reached in 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn finish(child: Child, what: &str) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn spawn(mut cmd: Command, failpoints: String) -> Child {
    cmd.env("SNAP_FAILPOINTS", failpoints)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A repository with v1 and v2 where v1 is forgotten: v1's packs are what a
/// prune will want to delete, and a backup of version 1 again would find
/// its data there.
fn forgotten_v1() -> Site {
    let s = Site::new();
    s.create("a", 1);
    s.create("a", 2);
    let v1 = s.id_of("a", 1);
    s.ok("a", &["forget", &v1]);
    s
}

/// (a) A create is paused right after registering (before and after it
/// read the prune intents) while a prune runs: the prune must wait for it,
/// and the create's snapshot, which deduplicated against packs the prune
/// chose, must restore afterwards.
#[test]
fn create_paused_after_registering_while_prune_runs() {
    for point in ["create.after_register", "create.after_intents"] {
        let s = forgotten_v1();
        write_tree(&s.src(), 1);
        let (at, go) = (s.p("create-at"), s.p("create-go"));
        let src = s.src();
        let mut create = spawn(
            s.cmd(
                "a",
                &["--json", "create", src.to_str().unwrap(), "--tag", "v1"],
            ),
            format!("{point}=touch({})->wait({})", at.display(), go.display()),
        );
        await_file(&at, &mut create, point);
        let intent = s.p("prune-intent");
        let mut prune = spawn(
            s.cmd(
                "a",
                &["--json", "prune", "--max-unused", "0", "--lock-wait", "60s"],
            ),
            format!("prune.after_intent=touch({})", intent.display()),
        );
        await_file(&intent, &mut prune, "prune");
        // The prune has chosen its candidates and must now wait.
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            prune.try_wait().unwrap().is_none(),
            "{point}: prune did not wait for the create"
        );
        fs::write(&go, b"").unwrap();
        let c: Value = serde_json::from_slice(&finish(create, "create").stdout).unwrap();
        let p: Value = serde_json::from_slice(&finish(prune, "prune").stdout).unwrap();
        assert_eq!(p["gc"]["creates_waited"], 1, "{point}: {p}");
        assert!(
            p["gc"]["bytes_deleted"].as_u64().unwrap() > 0,
            "{point}: {p}"
        );
        if point == "create.after_intents" {
            // It read no intent, so it reused v1's data and the prune kept it.
            assert!(
                c["summary"]["bytes_added"].as_u64().unwrap() < 100_000,
                "{point}: {c}"
            );
        }
        assert_eq!(s.verify("a", point), [2, 1], "{point}");
        s.no_locks_left("a", point);
    }
}

/// (b) A prune is paused after writing its intent while a create of the
/// forgotten data runs: the create must store that data again rather than
/// point at packs the intent lists. Shown on a copy taken at that moment
/// with the intent's packs deleted (what the prune does next): the new
/// snapshot still checks and restores there.
#[test]
fn create_while_prune_paused_after_its_intent_avoids_the_intent_packs() {
    let s = forgotten_v1();
    let (at, go) = (s.p("prune-at"), s.p("prune-go"));
    let mut prune = spawn(
        s.cmd(
            "a",
            &["--json", "prune", "--max-unused", "0", "--lock-wait", "60s"],
        ),
        format!(
            "prune.after_intent=touch({})->wait({})",
            at.display(),
            go.display()
        ),
    );
    await_file(&at, &mut prune, "prune");
    let intents: Vec<PathBuf> = fs::read_dir(s.repo("a").join("locks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("prune-")
        })
        .collect();
    assert_eq!(intents.len(), 1, "{intents:?}");
    let intent: Value = serde_json::from_slice(&fs::read(&intents[0]).unwrap()).unwrap();
    let packs: Vec<String> = intent["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(!packs.is_empty(), "{intent}");

    let c = s.create("a", 1);
    assert!(
        c["summary"]["bytes_added"].as_u64().unwrap() > 300_000,
        "v1's data was not stored again: {c}"
    );
    let new = c["snapshot"].as_str().unwrap().to_string();

    // The copy: the intent's packs deleted, v2 forgotten (it may still use
    // packs the prune would repack), the index rebuilt from the packs.
    let copy = Site::copy_of(&s);
    for p in &packs {
        fs::remove_file(copy.repo("a").join("data").join(&p[..2]).join(p)).unwrap();
    }
    for e in fs::read_dir(copy.repo("a").join("locks")).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    let v2 = copy.id_of("a", 2);
    copy.ok("a", &["forget", &v2]);
    copy.ok("a", &["repair", "index"]);
    assert_eq!(copy.verify("a", "copy without the intent's packs"), [1]);
    assert_eq!(copy.id_of("a", 1), new);

    fs::write(&go, b"").unwrap();
    let p: Value = serde_json::from_slice(&finish(prune, "prune").stdout).unwrap();
    assert!(p["gc"]["bytes_deleted"].as_u64().unwrap() > 0, "{p}");
    assert_eq!(s.verify("a", "after the prune"), [2, 1]);
    s.no_locks_left("a", "after the prune");
}

// ---------------------------------------------- found by this matrix

/// A repository used directly (it has its own index) that receives
/// `sync --delete` from a copy loses packs behind its index's back: today
/// `check` then reports damage (packs "in the index but missing from
/// storage"), and a create could deduplicate against the deleted packs.
/// Needs the index to be reconciled with storage (issue 8, "A stale index
/// is trusted as proof that a blob exists").
#[test]
fn a_used_repository_synced_into_with_delete_checks_clean_and_backs_up() {
    let s = Site::new();
    s.create("a", 1);
    s.create("a", 2);
    let b = s.repo("b");
    s.ok("a", &["sync", "--to", b.to_str().unwrap()]);
    // b is used directly: it gets its own index.
    assert_eq!(s.verify("b", "b before"), [1, 2]);
    let v1 = s.id_of("a", 1);
    s.ok("a", &["forget", &v1]);
    s.ok("a", &["prune", "--max-unused", "0"]);
    s.ok("a", &["sync", "--to", b.to_str().unwrap(), "--delete"]);
    assert_eq!(s.verify("b", "b after sync --delete"), [2]);
    // Version 1 again: its data is only in packs the sync deleted on b.
    s.create("b", 1);
    assert_eq!(s.verify("b", "b after a create"), [2, 1]);
}

/// A blob worker that panics (here while publishing a full pack, which
/// workers do once a pack reaches its 32 MiB target) must fail the create:
/// today the create still says "snapshot saved", exit 0, and the snapshot
/// points at blobs never indexed (issue 8, "A worker thread that panics is
/// ignored").
#[test]
fn a_panicking_blob_worker_fails_the_create() {
    let s = Site::new();
    fs::create_dir(s.src()).unwrap();
    common::write_random(&s.src().join("big"), 7, 40 << 20);
    let src = s.src();
    let out = s
        .cmd("a", &["create", src.to_str().unwrap(), "--tag", "v0"])
        .env("SNAP_FAILPOINTS", "create.pack_uploaded=1*panic")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "create succeeded after a worker panicked:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(s.snapshots("a").is_empty());
    s.ok("a", &["check", "--read-data"]);
    s.no_locks_left("a", "after the panic");
}
