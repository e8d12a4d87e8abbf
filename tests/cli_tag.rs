//! `snap tag` through the real binary: tags change, the id changes (the
//! object is rewritten), the tree and everything else are kept; a crash
//! between writing the new object and deleting the old leaves both, and
//! the rewrite is registered like a writer, so a prune waits for it and a
//! running prune makes it stop.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn snapshot(env: &Env, id: &str) -> Value {
    env.json(["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no snapshot {id}"))
}

fn tags(v: &Value) -> Vec<String> {
    v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

fn lock_names(env: &Env) -> Vec<String> {
    files_starting(&env.repo.join("locks"), "")
}

fn spawn(mut cmd: Command, failpoints: &str) -> Child {
    cmd.env("SNAP_FAILPOINTS", failpoints)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `path` exists (the child reached its failpoint).
fn await_file(path: &Path, child: &mut Child, what: &str) {
    let start = Instant::now();
    while !path.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                e.read_to_string(&mut err).unwrap();
            }
            panic!("{what} ended ({st}) before {}: {err}", path.display());
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{what}: timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(child: Child, what: &str) -> std::process::Output {
    let out = child.wait_with_output().unwrap();
    assert_success(&out, what);
    out
}

#[test]
fn tag_rewrites_the_snapshot_with_a_new_id_and_keeps_its_tree() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("f"), 1, 200_000);
    let s1 = env.create(&[&src], &["--tag", "a"])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    write_random(&src.join("g"), 2, 1_000);
    let s2 = env.create(&[&src], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let before = snapshot(&env, &s1);
    let ls_before = ls_paths(&env, &s1);

    let r = env.json(["tag", "--add", "b,c", &s1[..8]]);
    assert_eq!(r["changed"], 1, "{r}");
    let row = &r["snapshots"][0];
    assert_eq!(row["old"], s1.as_str());
    let n1 = row["new"].as_str().unwrap().to_string();
    assert_ne!(n1, s1, "a rewritten object has a new id");
    // The old object is gone, the new one is the old one with new tags.
    assert!(!env.repo.join("snapshots").join(&s1).exists());
    assert!(env.repo.join("snapshots").join(&n1).exists());
    let after = snapshot(&env, &n1);
    assert_eq!(tags(&after), ["a", "b", "c"]);
    for k in ["time", "host", "paths", "parent", "summary", "incomplete"] {
        assert_eq!(after[k], before[k], "{k} changed");
    }
    assert_eq!(ls_paths(&env, &n1), ls_before, "the tree is kept");
    // The later snapshot still names the old id as its parent.
    assert_eq!(snapshot(&env, &s2)["parent"], s1.as_str());

    // --remove, --set, and a no-op that keeps the id.
    let n2 = env.json(["tag", "--remove", "a", &n1])["snapshots"][0]["new"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(tags(&snapshot(&env, &n2)), ["b", "c"]);
    let r = env.json(["tag", "--add", "b", &n2]);
    assert_eq!(r["changed"], 0);
    assert_eq!(r["snapshots"][0]["new"], n2.as_str());
    let r = env.json(["tag", "--set", "x", "--set", "y", &n2, &s2]);
    assert_eq!(r["changed"], 2);
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 2);
    for id in &ids {
        assert_eq!(tags(&snapshot(&env, id)), ["x", "y"]);
    }
    // Filters find the new tags; --set "" removes every tag.
    assert_eq!(
        env.json(["snapshots", "--tag", "x,y"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    env.ok(["tag", "--set", "", "latest"]);
    let newest = env.snapshot_ids().pop().unwrap();
    assert!(tags(&snapshot(&env, &newest)).is_empty());

    // The text form says old -> new.
    let text = env.ok(["tag", "--add", "z", &newest]);
    assert!(
        text.contains(&format!("snapshot {} is now ", &newest[..8])),
        "{text}"
    );
    assert!(text.contains("modified tags on 1 snapshots"), "{text}");

    // Nothing asked, --set with --add: usage errors; no lock is left.
    assert_ne!(code(&env.run(["tag", "latest"])), 0);
    assert_eq!(
        code(&env.run(["tag", "--set", "a", "--add", "b", "latest"])),
        2
    );
    assert!(lock_names(&env).is_empty(), "{:?}", lock_names(&env));
    env.ok(["check", "--read-data"]);
}

#[test]
fn a_crash_between_new_and_old_object_leaves_both_and_a_consistent_repository() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("f"), 1, 50_000);
    let s1 = env.create(&[&src], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env
        .cmd()
        .env("SNAP_FAILPOINTS", "tag.after_new_snapshot=abort")
        .args(["tag", "--add", "kept", &s1])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 2, "old and new object: {ids:?}");
    let new = ids.iter().find(|i| **i != s1).unwrap();
    assert_eq!(tags(&snapshot(&env, new)), ["kept"]);
    assert!(tags(&snapshot(&env, &s1)).is_empty());
    env.ok(["check"]);
    // Forgetting the old one finishes the job; both restore the same tree.
    let (a, b) = (env.path("ra"), env.path("rb"));
    env.restore(&s1, &a);
    env.restore(new, &b);
    assert_same_tree(&restored(&a, &src), &restored(&b, &src));
    env.ok(["forget", &s1]);
    assert_eq!(env.snapshot_ids(), std::slice::from_ref(new));
}

/// A repository with snapshot `keep` (unique data) and a forgotten one
/// whose unique data is garbage for the next prune.
fn with_garbage(env: &Env) -> String {
    let src = env.path("src");
    write_random(&src.join("keep"), 1, 300_000);
    let keep = env.create(&[&src], &["--time", "2026-01-01T00:00:00Z"])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let g = env.path("garbage");
    write_random(&g.join("g"), 2, 300_000);
    let garbage = env.create(&[&g], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(["forget", &garbage]);
    keep
}

#[test]
fn prune_waits_for_a_running_tag_and_keeps_the_new_snapshots_data() {
    let env = Env::new();
    let keep = with_garbage(&env);
    let (at, go) = (env.path("tag-at"), env.path("tag-go"));
    let mut tag = env.cmd();
    tag.args(["--json", "tag", "--add", "t", &keep]);
    let mut tag = spawn(
        tag,
        &format!(
            "tag.after_new_snapshot=touch({})->wait({})",
            at.display(),
            go.display()
        ),
    );
    await_file(&at, &mut tag, "tag");
    // The tag holds its registration; prune announces its intent, then
    // must wait for it before deleting the garbage.
    // (Released only once prune is seen waiting: were the tag let go at
    // the intent, it could end before prune looks, and prune would
    // rightly not wait.)
    let waiting = env.path("prune-waiting");
    let mut prune = env.cmd();
    prune.args(["--json", "prune", "--max-unused", "0", "--lock-wait", "60s"]);
    let mut prune = spawn(
        prune,
        &format!("prune.waiting_for_creates=touch({})", waiting.display()),
    );
    await_file(&waiting, &mut prune, "prune");
    fs::write(&go, b"").unwrap();
    let t: Value = serde_json::from_slice(&finish(tag, "tag").stdout).unwrap();
    let p: Value = serde_json::from_slice(&finish(prune, "prune").stdout).unwrap();
    assert_eq!(p["gc"]["creates_waited"], 1, "{p}");
    assert!(p["gc"]["bytes_deleted"].as_u64().unwrap() > 0, "{p}");
    let new = t["snapshots"][0]["new"].as_str().unwrap().to_string();
    assert_eq!(env.snapshot_ids(), std::slice::from_ref(&new));
    env.ok(["check", "--read-data"]);
    let r = env.path("r");
    env.restore(&new, &r);
    assert_same_tree(&env.path("src"), &restored(&r, &env.path("src")));
    assert!(lock_names(&env).is_empty(), "{:?}", lock_names(&env));
}

#[test]
fn tag_stops_while_a_prune_is_deleting() {
    let env = Env::new();
    let keep = with_garbage(&env);
    let (at, go) = (env.path("prune-at"), env.path("prune-go"));
    let mut prune = env.cmd();
    prune.args(["--json", "prune", "--max-unused", "0"]);
    let mut prune = spawn(
        prune,
        &format!(
            "prune.after_intent=touch({})->wait({})",
            at.display(),
            go.display()
        ),
    );
    await_file(&at, &mut prune, "prune");
    let out = env.run(["tag", "--add", "t", &keep]);
    assert_ne!(code(&out), 0);
    let err = stderr(&out);
    assert!(err.contains("prune") && err.contains("again"), "{err}");
    fs::write(&go, b"").unwrap();
    finish(prune, "prune");
    // Nothing was rewritten.
    assert_eq!(env.snapshot_ids(), std::slice::from_ref(&keep));
    assert!(tags(&snapshot(&env, &keep)).is_empty());
    env.ok(["tag", "--add", "t", &keep]);
    env.ok(["check", "--read-data"]);
}
