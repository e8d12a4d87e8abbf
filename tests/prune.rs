//! `snap forget` / `snap prune` on the real binary: retention policies,
//! space freed, restores after garbage collection, prune beside running
//! creates, and crashes (kill -9 / injected aborts) at every step of prune.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rand::{Rng, RngCore, SeedableRng};

const SNAP: &str = env!("CARGO_BIN_EXE_snap");
const PASSWORD: &str = "prune test";

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let r = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        ok(&r.snap(&["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]));
        r
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn cmd_at(repo: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(SNAP);
        c.arg("--repo")
            .arg(repo)
            .args(args)
            .env("SNAP_PASSWORD", PASSWORD)
            .env_remove("SNAP_PASSWORD_FILE")
            .env_remove("SNAP_PASSWORD_COMMAND")
            .env_remove("SNAP_FAILPOINTS")
            // Each copy of a repository gets its own cache.
            .env("SNAP_CACHE_DIR", repo.with_file_name("cache"));
        c
    }

    fn snap(&self, args: &[&str]) -> Output {
        Self::cmd_at(&self.path(), args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = ok(&self.snap(&a));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
        })
    }

    fn create(&self, src: &Path, extra: &[&str]) -> String {
        let mut a = vec!["create", src.to_str().unwrap()];
        a.extend_from_slice(extra);
        self.json(&a)["snapshot"].as_str().unwrap().to_string()
    }

    fn snapshot_ids(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.path().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn data_size(&self) -> u64 {
        dir_size(&self.path().join("data"))
    }

    fn check_clean(&self, read_data: bool) {
        let args: &[&str] = if read_data {
            &["check", "--read-data"]
        } else {
            &["check"]
        };
        let out = self.snap(args);
        assert!(
            out.status.success(),
            "check failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn restore(&self, id: &str, to: &Path) {
        ok(&self.snap(&["restore", id, "--to", to.to_str().unwrap()]));
    }
}

fn ok(out: &Output) -> Output {
    assert!(
        out.status.success(),
        "status {:?}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.clone()
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    n
}

fn random_file(path: &Path, len: usize, rng: &mut impl RngCore) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    std::fs::write(path, &v).unwrap();
    v
}

/// Reads every regular file under `root` (relative path -> bytes).
fn read_tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn go(root: &Path, at: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(at).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                go(root, &p, out);
            } else if e.file_type().unwrap().is_file() {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    go(root, root, &mut out);
    out
}

/// Restores `id` and returns the files under the source directory `src`.
fn restored_files(repo: &Repo, id: &str, src: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let to = tempfile::tempdir().unwrap();
    repo.restore(id, to.path());
    read_tree(&to.path().join(src.strip_prefix("/").unwrap()))
}

fn kept_ids(report: &serde_json::Value) -> BTreeSet<String> {
    report["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"].as_bool().unwrap())
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------- policy

/// The expected survivors of a keep-N-per-period rule, computed by brute
/// force: for each period the newest snapshot; the N newest periods.
fn newest_per_period(
    times: &[(String, time::OffsetDateTime)],
    n: usize,
    period: impl Fn(time::OffsetDateTime) -> String,
) -> BTreeSet<String> {
    let mut best: HashMap<String, (time::OffsetDateTime, String)> = HashMap::new();
    for (id, t) in times {
        let k = period(*t);
        match best.get(&k) {
            Some((bt, _)) if bt >= t => {}
            _ => {
                best.insert(k, (*t, id.clone()));
            }
        }
    }
    let mut winners: Vec<(time::OffsetDateTime, String)> = best.into_values().collect();
    winners.sort();
    winners.reverse();
    winners.into_iter().take(n).map(|(_, id)| id).collect()
}

#[test]
fn daily_for_400_days_keeps_exactly_the_expected_set() {
    let repo = Repo::new();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), b"tiny").unwrap();
    // One real snapshot through the CLI, then 399 more of the same tree,
    // stored through the library with chosen times (400 creates would only
    // repeat the same work).
    let start = time::macros::datetime!(2025-02-10 03:00 UTC);
    let first = repo.create(src.path(), &["--time", "2025-02-10T03:00:00Z"]);
    let r = snap::Repository::open(
        snap::backend::open(repo.path().to_str().unwrap()).unwrap(),
        PASSWORD.as_bytes(),
    )
    .unwrap();
    let base = r
        .find_snapshot(&first, &Default::default())
        .unwrap()
        .snapshot;
    let mut times = vec![(first.clone(), start)];
    let mut rng = rand::rngs::StdRng::seed_from_u64(400);
    for day in 1..400i64 {
        // Jitter the hour so "newest of the day" matters for days with two.
        let t =
            start + time::Duration::days(day) + time::Duration::minutes(rng.random_range(0..600));
        let mut s = base.clone();
        s.time_ns = t.unix_timestamp_nanos() as i64;
        let id = r.save_snapshot(&s).unwrap();
        times.push((id.to_hex(), t));
        if day % 50 == 0 {
            // A second snapshot on some days: only the newer one may count.
            let mut s2 = s.clone();
            s2.time_ns -= 3_600_000_000_000;
            let id2 = r.save_snapshot(&s2).unwrap();
            times.push((id2.to_hex(), t - time::Duration::hours(1)));
        }
    }
    drop(r);
    let mut expect = BTreeSet::new();
    expect.extend(newest_per_period(&times, 7, |t| t.date().to_string()));
    expect.extend(newest_per_period(&times, 4, |t| {
        let (y, w, _) = t.to_iso_week_date();
        format!("{y}-W{w}")
    }));
    expect.extend(newest_per_period(&times, 12, |t| {
        format!("{}-{}", t.year(), t.month() as u8)
    }));
    expect.extend(newest_per_period(&times, 2, |t| t.year().to_string()));
    // Sanity of the expectation itself: at most 7+4+12+2, overlaps shrink it.
    assert!(expect.len() >= 12 && expect.len() <= 25, "{}", expect.len());

    let policy = [
        "--keep-daily",
        "7",
        "--keep-weekly",
        "4",
        "--keep-monthly",
        "12",
        "--keep-yearly",
        "2",
    ];
    let mut args = vec!["prune", "--dry-run"];
    args.extend_from_slice(&policy);
    let dry = repo.json(&args);
    assert_eq!(kept_ids(&dry), expect);
    assert_eq!(
        repo.snapshot_ids().len(),
        times.len(),
        "dry run changed nothing"
    );
    // Every decision names its rule.
    for d in dry["snapshots"].as_array().unwrap() {
        let reasons = d["reasons"].as_array().unwrap();
        assert_eq!(d["keep"].as_bool().unwrap(), !reasons.is_empty());
    }
    let mut args = vec!["prune"];
    args.extend_from_slice(&policy);
    let done = repo.json(&args);
    assert_eq!(kept_ids(&done), expect);
    assert_eq!(repo.snapshot_ids(), expect);
    repo.check_clean(false);
}

#[test]
fn cli_policy_with_create_time_groups_tags_and_refusals() {
    let repo = Repo::new();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::write(a.path().join("x"), b"a").unwrap();
    std::fs::write(b.path().join("y"), b"b").unwrap();
    let mut a_ids = Vec::new();
    for h in 0..6 {
        let t = format!("2026-05-01T{:02}:30:00Z", h * 4);
        let mut extra = vec!["--time", t.as_str()];
        if h == 0 {
            extra.extend(["--tag", "precious"]);
        }
        a_ids.push(repo.create(a.path(), &extra));
    }
    let b_id = repo.create(b.path(), &["--time", "2020-01-01T00:00:00Z"]);
    // keep-last 2 per (host, paths) group: a's two newest, b's only one,
    // plus the tagged one.
    let r = repo.json(&[
        "prune",
        "--dry-run",
        "--keep-last",
        "2",
        "--keep-tag",
        "precious",
    ]);
    let expect: BTreeSet<String> = [&a_ids[0], &a_ids[4], &a_ids[5], &b_id]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(kept_ids(&r), expect);
    let tagged = r["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == a_ids[0].as_str())
        .unwrap();
    assert_eq!(tagged["reasons"][0], "tag precious");
    // Grouping everything together: b is the oldest and goes.
    let r = repo.json(&["prune", "--dry-run", "--keep-last", "2", "--group-by", ""]);
    assert_eq!(kept_ids(&r).len(), 2);
    assert!(!kept_ids(&r).contains(&b_id));
    // A policy that keeps nothing in a group is refused unless allowed.
    let out = repo.snap(&["prune", "--keep-tag", "nosuchtag"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-empty"));
    assert_eq!(repo.snapshot_ids().len(), 7);
    // Text dry run lists every snapshot with keep/remove.
    let out = ok(&repo.snap(&["prune", "--dry-run", "--keep-within", "9h"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("keep") || l.starts_with("remove"))
            .count(),
        7
    );
    assert!(text.contains("[within]"));
    // forget by id.
    ok(&repo.snap(&["forget", &a_ids[1][..10], &a_ids[2]]));
    assert_eq!(repo.snapshot_ids().len(), 5);
    assert!(!repo.snap(&["forget", "ffffffffff"]).status.success());
    repo.check_clean(false);
}

// ---------------------------------------------------------------- space

#[test]
fn forgetting_unique_data_frees_it_and_the_rest_restores() {
    let repo = Repo::new();
    let src = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mb = 1 << 20;
    random_file(&src.path().join("keep1"), 3 * mb, &mut rng);
    random_file(&src.path().join("gone"), 4 * mb, &mut rng);
    let s1 = repo.create(src.path(), &[]);
    std::fs::remove_file(src.path().join("gone")).unwrap();
    random_file(&src.path().join("keep2"), mb, &mut rng);
    let s2 = repo.create(src.path(), &[]);
    let want = read_tree(src.path());
    // Second group with its own unique data, forgotten whole.
    let other = tempfile::tempdir().unwrap();
    random_file(&other.path().join("solo"), 2 * mb, &mut rng);
    let s3 = repo.create(other.path(), &[]);

    let before = repo.data_size();
    ok(&repo.snap(&["forget", &s1, &s3]));
    assert_eq!(repo.data_size(), before, "forget alone frees nothing");
    let r = repo.json(&["prune"]);
    let gc = &r["gc"];
    let after = repo.data_size();
    let freed = before - after;
    // 4 MiB of `gone` (repacked out of a shared pack) + 2 MiB of `solo`;
    // random data does not compress, so about 6 MiB.
    assert!(
        freed > 5 * mb as u64 && freed < 7 * mb as u64,
        "freed {freed}"
    );
    assert!(gc["packs_repacked"].as_u64().unwrap() >= 1, "{gc}");
    assert!(gc["packs_deleted"].as_u64().unwrap() >= 1, "{gc}");
    assert_eq!(gc["bytes_freed"].as_i64().unwrap(), freed as i64);
    assert_eq!(restored_files(&repo, &s2, src.path()), want);
    repo.check_clean(true);
    // A second prune finds nothing to do.
    let r = repo.json(&["prune"]);
    assert_eq!(r["gc"]["bytes_freed"].as_i64().unwrap(), 0);
    assert_eq!(repo.data_size(), after);
    // Index rebuilt from packs agrees.
    ok(&repo.snap(&["repair", "index"]));
    repo.check_clean(true);
}

// ---------------------------------------------------------------- concurrency

#[test]
fn concurrent_create_and_prune_never_lose_data() {
    let repo = Repo::new();
    let src = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    // Files each snapshot must contain: name -> bytes, by snapshot id.
    let mut expected: HashMap<String, BTreeMap<PathBuf, Vec<u8>>> = HashMap::new();
    random_file(&src.path().join("base"), 300_000, &mut rng);
    let id = repo.create(src.path(), &[]);
    expected.insert(id, read_tree(src.path()));
    let rounds = 16;
    for i in 0..rounds {
        // Each round: a new file, the one before last removed (so older
        // snapshots own unique data that prune collects).
        random_file(
            &src.path().join(format!("f{i}")),
            200_000 + i * 1000,
            &mut rng,
        );
        if i >= 2 {
            std::fs::remove_file(src.path().join(format!("f{}", i - 2))).unwrap();
        }
        let content = read_tree(src.path());
        let create = Repo::cmd_at(
            &repo.path(),
            &["--json", "create", src.path().to_str().unwrap()],
        )
        .spawn_output();
        // Start prune at a varying offset into the create.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..40)));
        let prune = Repo::cmd_at(
            &repo.path(),
            &["prune", "--keep-last", "2", "--max-unused", "0"],
        )
        .output()
        .unwrap();
        let c = create.join().unwrap();
        let c = ok(&c);
        ok(&prune);
        let v: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
        expected.insert(v["snapshot"].as_str().unwrap().to_string(), content);
    }
    let left = repo.snapshot_ids();
    assert!(!left.is_empty());
    assert!(
        repo.path()
            .join("locks")
            .read_dir()
            .unwrap()
            .next()
            .is_none(),
        "locks left behind"
    );
    repo.check_clean(true);
    for id in &left {
        assert_eq!(
            &restored_files(&repo, id, src.path()),
            &expected[id],
            "snapshot {id}"
        );
    }
}

trait SpawnOutput {
    fn spawn_output(self) -> std::thread::JoinHandle<Output>;
}

impl SpawnOutput for Command {
    fn spawn_output(mut self) -> std::thread::JoinHandle<Output> {
        let child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::spawn(move || child.wait_with_output().unwrap())
    }
}

// ---------------------------------------------------------------- crashes

/// A repository with garbage to delete and packs to repack: snapshots
/// 0..4 of a changing directory, all but the two newest to be pruned.
/// Snapshot ids with the files each must restore.
type Expected = Vec<(String, BTreeMap<PathBuf, Vec<u8>>)>;

fn crash_fixture() -> (Repo, tempfile::TempDir, Expected) {
    let repo = Repo::new();
    let src = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut snaps = Vec::new();
    // Kept by every snapshot: its pack also holds snapshot 0's unique data,
    // so pruning repacks it.
    random_file(&src.path().join("stable"), 300_000, &mut rng);
    for i in 0..5 {
        random_file(&src.path().join(format!("f{i}")), 400_000, &mut rng);
        if i >= 1 {
            std::fs::remove_file(src.path().join(format!("f{}", i - 1))).unwrap();
        }
        random_file(&src.path().join("common"), 100_000 + i, &mut rng);
        let id = repo.create(src.path(), &[]);
        snaps.push((id, read_tree(src.path())));
    }
    (repo, src, snaps)
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn verify_after_crash(repo: &Repo, src: &Path, snaps: &[(String, BTreeMap<PathBuf, Vec<u8>>)]) {
    repo.check_clean(false);
    // The two newest are kept by every run of the policy.
    for (id, files) in &snaps[3..] {
        assert!(repo.snapshot_ids().contains(id));
        assert_eq!(&restored_files(repo, id, src), files);
    }
}

/// Kills prune (as `kill -9` would) at every hit of every prune failpoint
/// in turn: the N-th hit of a point for N = 1, 2, ... until a run no longer
/// reaches it.
#[cfg(feature = "failpoints")]
#[test]
fn abort_at_every_step_of_prune_then_rerun_finishes() {
    let (template, src, snaps) = crash_fixture();
    let prune_args = ["prune", "--keep-last", "2", "--max-unused", "0"];
    let points = snap::failpoint::reached_alone("prune.");
    assert!(points.len() >= 6, "{points:?}");
    for point in points {
        let mut hit = 1;
        loop {
            let work = tempfile::tempdir().unwrap();
            let repo_path = work.path().join("repo");
            copy_dir(&template.path(), &repo_path);
            let repo = Repo { dir: work };
            let mut json_args = vec!["--json"];
            json_args.extend_from_slice(&prune_args);
            let out = Repo::cmd_at(&repo_path, &json_args)
                .env("SNAP_FAILPOINTS", format!("{point}={hit}*abort"))
                .output()
                .unwrap();
            let aborted = !out.status.success();
            if aborted {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(
                    out.status.signal(),
                    Some(libc::SIGKILL),
                    "{point} hit {hit}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            verify_after_crash(&repo, src.path(), &snaps);
            // A create works after the crash (a stale intent only costs space).
            ok(&repo.snap(&[
                "create",
                src.path().to_str().unwrap(),
                "--time",
                "2000-01-01T00:00:00Z",
            ]));
            // Re-running prune finishes the job.
            ok(&repo.snap(&prune_args));
            verify_after_crash(&repo, src.path(), &snaps);
            let r = repo.json(&prune_args);
            assert_eq!(
                r["gc"]["bytes_freed"].as_i64().unwrap(),
                0,
                "{point} hit {hit}: {}",
                r["gc"]
            );
            repo.check_clean(true);
            if !aborted {
                assert!(hit > 1, "failpoint {point} was never reached");
                let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert!(
                    r["gc"]["packs_repacked"].as_u64().unwrap() >= 1,
                    "{}",
                    r["gc"]
                );
                assert!(
                    r["gc"]["packs_deleted"].as_u64().unwrap() >= 1,
                    "{}",
                    r["gc"]
                );
                break;
            }
            hit += 1;
        }
    }
}

#[test]
fn kill_9_at_random_moments_of_prune() {
    let (template, src, snaps) = crash_fixture();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let prune_args = ["prune", "--keep-last", "2", "--max-unused", "0"];
    for _ in 0..8 {
        let work = tempfile::tempdir().unwrap();
        let repo_path = work.path().join("repo");
        copy_dir(&template.path(), &repo_path);
        let repo = Repo { dir: work };
        let mut child = Repo::cmd_at(&repo_path, &prune_args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(0..120)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        verify_after_crash(&repo, src.path(), &snaps);
        ok(&repo.snap(&prune_args));
        verify_after_crash(&repo, src.path(), &snaps);
        repo.check_clean(true);
    }
}

// ---------------------------------------------------------------- disk full

/// A small tmpfs, unmounted on drop. `None` when mounting is not allowed
/// (not root, or no permission in this container).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, bytes: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        st.success().then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_during_repack_is_a_clear_error_and_deletes_nothing_needed() {
    let base = Repo::new();
    let src = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mb = 1 << 20;
    random_file(&src.path().join("a"), 3 * mb, &mut rng);
    random_file(&src.path().join("b"), 3 * mb, &mut rng);
    let s1 = base.create(src.path(), &[]);
    std::fs::remove_file(src.path().join("a")).unwrap();
    let s2 = base.create(src.path(), &[]);
    let want = read_tree(src.path());
    let other = tempfile::tempdir().unwrap();
    random_file(&other.path().join("c"), mb, &mut rng);
    let s3 = base.create(other.path(), &[]);
    ok(&base.snap(&["forget", &s1, &s3]));
    // Room for the repository plus 1 MiB: repacking `b` (3 MiB) cannot fit.
    let work = tempfile::tempdir().unwrap();
    let mnt = work.path().join("mnt");
    let size = dir_size(&base.path()) + mb as u64;
    let Some(_fs) = Tmpfs::mount(&mnt, size) else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    copy_dir(&base.path(), &mnt.join("repo"));
    let repo_path = mnt.join("repo");
    let run = |args: &[&str]| Repo::cmd_at(&repo_path, args).output().unwrap();
    let out = run(&["prune"]);
    assert!(!out.status.success(), "prune should fail on a full disk");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No space left on device"),
        "unclear error: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    // Nothing needed was deleted; no lock or staging file is left behind.
    assert!(ok(&run(&["check", "--read-data"])).status.success());
    assert!(std::fs::read_dir(repo_path.join("locks"))
        .unwrap()
        .next()
        .is_none());
    let to = tempfile::tempdir().unwrap();
    ok(&run(&["restore", &s2, "--to", to.path().to_str().unwrap()]));
    assert_eq!(
        read_tree(&to.path().join(src.path().strip_prefix("/").unwrap())),
        want
    );
    // Deleting only all-garbage packs needs no space and works.
    let before = dir_size(&repo_path.join("data"));
    let r = ok(&run(&["--json", "prune", "--max-unused", "100"]));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["gc"]["packs_repacked"].as_u64().unwrap(), 0);
    assert!(dir_size(&repo_path.join("data")) < before - mb as u64 / 2);
    ok(&run(&["check", "--read-data"]));
}
