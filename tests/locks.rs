//! Locks that judge right (format-spec/07, rules L1-L5): a lock is judged
//! dead by its pid only on the same machine, boot and PID namespace and with
//! the same process start time; a lock that cannot be checked from here is
//! stale once it has not been refreshed for five refresh periods; `snap
//! unlock` removes what is provably dead and says why it keeps the rest.
//! The locks of other machines are written by hand, as another host's snap
//! would write them.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

fn read_trimmed(p: &str) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// This machine's identity as snap records it (the tests run in snap's
/// namespaces).
fn my_identity() -> (String, String, String) {
    (
        read_trimmed("/etc/machine-id"),
        read_trimmed("/proc/sys/kernel/random/boot_id"),
        std::fs::read_link("/proc/self/ns/pid")
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    )
}

fn start_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 1..];
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

fn hostname() -> String {
    read_trimmed("/proc/sys/kernel/hostname")
}

fn write_lock(repo: &Path, name: &str, v: &Value) {
    std::fs::write(
        repo.join("locks").join(name),
        serde_json::to_vec(v).unwrap(),
    )
    .unwrap();
}

/// A pid that is certainly not running.
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// A repository with garbage to collect, so that prune reaches the wait.
fn repo_with_garbage() -> Env {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    write_random(&src.join("a"), 1, 200_000);
    env.create(&[&src], &[]);
    write_random(&src.join("a"), 2, 200_000);
    env.create(&[&src], &[]);
    let first = env.snapshot_ids()[0].clone();
    env.ok(["forget", &first]);
    env
}

fn locks_left(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(env.repo.join("locks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn same_hostname_on_another_machine_is_never_judged_dead_by_pid() {
    let env = repo_with_garbage();
    // A container with a fixed --hostname, or a cloned VM: same host name,
    // another machine; its pid means nothing here.
    write_lock(
        &env.repo,
        "create-00000000000000aa",
        &json!({"host": hostname(), "pid": dead_pid(), "time_ns": 0, "packs": [],
                "machine_id": "another-machine", "boot_id": "b", "pid_ns": "pid:[1]",
                "start_ticks": 7, "refresh": 0, "refresh_secs": 120, "nonce": "1"}),
    );
    let o = env.run(["prune", "--lock-wait", "2s"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(code(&o), 0, "prune removed a live lock of another machine");
    assert!(
        err.contains("create-00000000000000aa") && err.contains("snap unlock"),
        "{err}"
    );
    assert!(locks_left(&env).contains(&"create-00000000000000aa".to_string()));
}

#[test]
fn a_reused_pid_on_this_machine_is_judged_dead() {
    let env = repo_with_garbage();
    let (m, b, ns) = my_identity();
    // The pid is alive (it is this test process), but it started at another
    // time than the lock's holder did.
    let me = std::process::id();
    write_lock(
        &env.repo,
        "create-00000000000000bb",
        &json!({"host": "whatever", "pid": me, "time_ns": 0, "packs": [],
                "machine_id": m, "boot_id": b, "pid_ns": ns,
                "start_ticks": start_ticks(me) + 1, "refresh": 0, "refresh_secs": 120,
                "nonce": "2"}),
    );
    let o = env.run(["prune", "--lock-wait", "2s"]);
    assert_success(&o, "prune with a lock whose pid was reused");
    assert!(locks_left(&env).is_empty(), "{:?}", locks_left(&env));
}

#[test]
fn an_unrefreshed_lock_of_another_machine_becomes_stale() {
    let env = repo_with_garbage();
    // Promises a refresh every second; never refreshed (its host crashed).
    write_lock(
        &env.repo,
        "create-00000000000000cc",
        &json!({"host": "elsewhere", "pid": 4242, "time_ns": 0, "packs": [],
                "machine_id": "another-machine", "boot_id": "b", "pid_ns": "pid:[1]",
                "start_ticks": 7, "refresh": 3, "refresh_secs": 1, "nonce": "3"}),
    );
    let t = std::time::Instant::now();
    let v = env.json(["prune", "--lock-wait", "60s"]);
    assert_eq!(v["gc"]["stale_locks_removed"], 1, "{v}");
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(5),
        "judged stale too early"
    );
    assert!(locks_left(&env).is_empty());
    env.ok(["check", "--read-data"]);
}

#[test]
fn unlock_removes_what_is_provably_dead_and_says_why_it_keeps_the_rest() {
    let env = Env::new();
    let (m, b, ns) = my_identity();
    let me = std::process::id();
    write_lock(
        &env.repo,
        "create-0000000000000001",
        &json!({"host": hostname(), "pid": dead_pid(), "time_ns": 0,
                "machine_id": m, "boot_id": b, "pid_ns": ns, "start_ticks": 1,
                "refresh_secs": 120}),
    );
    write_lock(
        &env.repo,
        "create-0000000000000002",
        &json!({"host": hostname(), "pid": me, "time_ns": 0,
                "machine_id": m, "boot_id": b, "pid_ns": ns, "start_ticks": start_ticks(me),
                "refresh_secs": 120}),
    );
    write_lock(
        &env.repo,
        "prune-0000000000000003",
        &json!({"host": "other", "pid": 1, "time_ns": 0, "packs": [],
                "machine_id": "another-machine", "boot_id": "x", "pid_ns": "pid:[9]",
                "start_ticks": 1, "refresh_secs": 120}),
    );
    write_lock(
        &env.repo,
        "create-0000000000000004",
        &json!({"host": "rebooted", "pid": me, "time_ns": 0,
                "machine_id": m, "boot_id": "an-earlier-boot", "pid_ns": ns, "start_ticks": 1,
                "refresh_secs": 120}),
    );
    let v = env.json(["unlock"]);
    let rows = v["locks"].as_array().unwrap();
    let removed: Vec<&str> = rows
        .iter()
        .filter(|r| r["removed"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        removed,
        ["create-0000000000000001", "create-0000000000000004"],
        "{v}"
    );
    for r in rows {
        assert!(!r["reason"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        locks_left(&env),
        ["create-0000000000000002", "prune-0000000000000003"]
    );
    let text = env.ok(["unlock"]);
    assert!(
        text.contains("kept") && text.contains("another machine"),
        "{text}"
    );
    env.ok(["unlock", "--remove-all"]);
    assert!(locks_left(&env).is_empty());
}

#[test]
fn a_prune_with_nothing_to_delete_removes_a_dead_prune_intent() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    write_random(&src.join("a"), 1, 300_000);
    env.create(&[&src], &[]);
    let packs: Vec<String> = env
        .packs()
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let (m, b, ns) = my_identity();
    write_lock(
        &env.repo,
        "prune-00000000000000dd",
        &json!({"host": hostname(), "pid": dead_pid(), "time_ns": 0, "packs": packs,
                "machine_id": m, "boot_id": b, "pid_ns": ns, "start_ticks": 1,
                "refresh_secs": 120}),
    );
    env.ok(["prune"]);
    assert!(locks_left(&env).is_empty(), "{:?}", locks_left(&env));
    // And the next create deduplicates again instead of storing it all anew.
    let r = env.create(&[&src], &["--full"]);
    assert!(
        r["summary"]["bytes_added"].as_u64().unwrap() < 10_000,
        "data stored again: {r}"
    );
}

#[cfg(feature = "failpoints")]
mod with_short_refresh {
    use super::*;
    use std::time::Duration;

    fn lock_files(env: &Env, prefix: &str) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(env.repo.join("locks"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .collect()
    }

    #[test]
    fn a_running_create_refreshes_its_lock() {
        let env = Env::new();
        let mut child = env
            .cmd()
            .env("SNAP_TEST_LOCK_REFRESH_SECS", "1")
            .args(["create", "--from-shell", "slow.sql=sleep 4; echo done"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        let lock = lock_files(&env, "create-").pop().expect("create lock");
        let first: Value = serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(2200));
        let later: Value = serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
        assert!(
            later["refresh"].as_u64() > first["refresh"].as_u64(),
            "{first} -> {later}"
        );
        assert!(child.wait().unwrap().success());
        assert!(lock_files(&env, "").is_empty(), "lock left behind");
    }

    #[test]
    fn a_create_whose_lock_was_removed_commits_nothing() {
        let env = Env::new();
        let child = env
            .cmd()
            .env("SNAP_TEST_LOCK_REFRESH_SECS", "1")
            .args(["create", "--from-shell", "slow.sql=sleep 3; echo done"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        // Another machine's prune judged it stale and removed it.
        for l in lock_files(&env, "create-") {
            std::fs::remove_file(l).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "create committed without its lock");
        assert!(err.contains("lost the repository lock"), "{err}");
        assert!(env.snapshot_ids().is_empty());
    }
}
