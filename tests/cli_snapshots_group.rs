//! `snap snapshots --group-by/--latest` and `snap forget` with selectors,
//! a per-group retention policy and `--dry-run`, on a repository holding
//! the backups of two hosts.

mod common;

use std::fs;

use common::{assert_success, code, Env};
use serde_json::Value;

/// Snapshot times, one hour apart, so that order never depends on the clock.
fn at(hour: u32) -> String {
    format!("2026-03-01T{hour:02}:00:00Z")
}

/// Three snapshots of host-a and two of host-b, of the same source, each a
/// different content; returns their ids by host, oldest first.
fn two_hosts(env: &Env) -> (Vec<String>, Vec<String>) {
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (i, host) in ["host-a", "host-b", "host-a", "host-b", "host-a"]
        .iter()
        .enumerate()
    {
        fs::write(src.join("f"), format!("version {i}")).unwrap();
        let time = at(i as u32 + 1);
        let r = env.create(&[&src], &["--host", host, "--time", &time]);
        let id = r["snapshot"].as_str().unwrap().to_string();
        if *host == "host-a" {
            a.push(id);
        } else {
            b.push(id);
        }
    }
    (a, b)
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn group_by_host_gives_a_group_per_host_and_latest_cuts_each() {
    let env = Env::new();
    let (a, b) = two_hosts(&env);
    let v = env.json(["snapshots", "--group-by", "host"]);
    let groups = v.as_array().expect("a list of groups");
    assert_eq!(groups.len(), 2, "{v}");
    assert_eq!(groups[0]["group_key"]["host"], "host-a");
    assert!(groups[0]["group_key"]["paths"].is_null(), "{v}");
    assert!(groups[0]["group_key"]["tags"].is_null(), "{v}");
    assert_eq!(ids(&groups[0]["snapshots"]), a);
    assert_eq!(groups[1]["group_key"]["host"], "host-b");
    assert_eq!(ids(&groups[1]["snapshots"]), b);

    // --latest 1 per group: the newest of each host.
    let v = env.json(["snapshots", "--group-by", "host,paths", "--latest", "1"]);
    let groups = v.as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(ids(&groups[0]["snapshots"]), vec![a[2].clone()]);
    assert_eq!(ids(&groups[1]["snapshots"]), vec![b[1].clone()]);
    assert!(groups[0]["group_key"]["paths"].is_array(), "{v}");

    // --latest without --group-by: per host and paths, one flat list,
    // oldest first.
    let v = env.json(["snapshots", "--latest", "1"]);
    assert_eq!(ids(&v), vec![b[1].clone(), a[2].clone()]);
    let v = env.json(["snapshots", "--latest", "2", "--host", "host-a"]);
    assert_eq!(ids(&v), vec![a[1].clone(), a[2].clone()]);

    // Text: a header per group.
    let out = env.ok(["snapshots", "--group-by", "host"]);
    assert!(out.contains("snapshots for (host host-a):"), "{out}");
    assert!(out.contains("snapshots for (host host-b):"), "{out}");
    assert!(out.contains("5 snapshots in 2 group(s)"), "{out}");

    let out = env.run(["snapshots", "--group-by", "hots"]);
    assert_eq!(code(&out), 2, "a mistyped field is a usage error");
}

#[test]
fn latest_with_host_picks_that_hosts_newest() {
    let env = Env::new();
    let (a, b) = two_hosts(&env);
    for (host, want) in [("host-a", &a[2]), ("host-b", &b[1])] {
        let v = env.json(["ls", "latest", "--host", host]);
        let rows = v.as_array().unwrap();
        assert!(!rows.is_empty());
        let out = env.run(["ls", "latest", "--host", host]);
        assert_success(&out, "ls latest --host");
        let err = common::stderr(&out);
        assert!(err.contains(&want[..8]), "{host}: {err}");
    }
}

#[test]
fn forget_by_id_with_host_only_touches_that_host() {
    let env = Env::new();
    let (a, b) = two_hosts(&env);
    // An id of host-a does not match --host host-b: nothing is removed.
    let out = env.run(["forget", &a[0], "--host", "host-b"]);
    assert_ne!(code(&out), 0);
    assert_eq!(env.snapshot_ids().len(), 5);
    // latest --host host-b removes host-b's newest only.
    let v = env.json(["forget", "latest", "--host", "host-b"]);
    assert_eq!(v["removed"], serde_json::json!([b[1]]));
    let left = env.snapshot_ids();
    assert_eq!(left.len(), 4);
    assert!(a.iter().all(|id| left.contains(id)));
}

#[test]
fn forget_policy_applies_per_group_and_only_to_the_filter() {
    let env = Env::new();
    let (a, b) = two_hosts(&env);
    // --host host-a --keep-last 1: host-b is not looked at.
    let v = env.json(["forget", "--host", "host-a", "--keep-last", "1"]);
    let mut removed: Vec<String> = serde_json::from_value(v["removed"].clone()).unwrap();
    removed.sort();
    let mut want = vec![a[0].clone(), a[1].clone()];
    want.sort();
    assert_eq!(removed, want, "{v}");
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["decisions"].as_array().unwrap().len(), 3, "{v}");
    let left = env.snapshot_ids();
    assert_eq!(left, vec![b[0].clone(), b[1].clone(), a[2].clone()]);
}

#[test]
fn forget_group_by_keeps_last_of_each_group() {
    let env = Env::new();
    let (a, b) = two_hosts(&env);
    // Default groups (host,paths): the newest of each host stays.
    let v = env.json(["forget", "--keep-last", "1", "--group-by", "host"]);
    assert_eq!(v["removed"].as_array().unwrap().len(), 3, "{v}");
    let left = env.snapshot_ids();
    assert_eq!(left, vec![b[1].clone(), a[2].clone()]);
    // One group for everything: only the newest of all is kept.
    let out = env.ok(["forget", "--keep-last", "1", "--group-by", ""]);
    assert!(out.contains("removed 1 of 2 snapshot(s)"), "{out}");
    assert_eq!(env.snapshot_ids(), vec![a[2].clone()]);
}

#[test]
fn forget_dry_run_removes_nothing() {
    let env = Env::new();
    let (a, _b) = two_hosts(&env);
    let before = env.snapshot_ids();
    let v = env.json(["forget", "--keep-last", "1", "--dry-run"]);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["removed"].as_array().unwrap().len(), 3, "{v}");
    let out = env.ok(["forget", "--keep-last", "1", "-n"]);
    assert!(out.contains("would remove 3 of 5"), "{out}");
    let v = env.json(["forget", &a[0], "--dry-run"]);
    assert_eq!(v["removed"], serde_json::json!([a[0]]));
    assert_eq!(env.snapshot_ids(), before);
    // Ids and a policy together, or neither, are usage errors.
    assert_eq!(code(&env.run(["forget", &a[0], "--keep-last", "1"])), 2);
    assert_eq!(code(&env.run(["forget"])), 2);
    assert_eq!(env.snapshot_ids(), before);
}
