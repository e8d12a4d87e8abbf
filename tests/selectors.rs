//! Snapshot selectors through the real binary: `latest` is scoped to this
//! host, `--host`/`--tag`/`--path` filter every command that picks a
//! snapshot, the picked snapshot is named in the output, and a snapshot
//! dated in the future never becomes `latest` nor costs the real newest
//! backup its place in `prune --keep-last`.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;

fn this_host() -> String {
    snap::repository::open::hostname()
}

/// `dump SEL FILE` with extra flags: (exit code, stdout, stderr).
fn dump(env: &Env, sel: &str, file: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args: Vec<std::ffi::OsString> = vec!["dump".into(), sel.into(), file.into()];
    args.extend(extra.iter().map(|a| a.into()));
    let out = env.run(&args);
    (code(&out), stdout(&out), stderr(&out))
}

/// One source directory with file `v` holding `text`, backed up with `extra`.
fn backup(env: &Env, src: &Path, text: &str, extra: &[&str]) -> String {
    fs::create_dir_all(src).unwrap();
    fs::write(src.join("v"), text).unwrap();
    env.create(&[src], extra)["snapshot"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn latest_is_this_hosts_latest() {
    let env = Env::new();
    let src = env.path("src");
    let me = this_host();
    backup(&env, &src, "mine", &["--time", "2026-01-01T00:00:00Z"]);
    // Another machine backs up the same path later.
    backup(
        &env,
        &src,
        "other host",
        &["--host", "other-host", "--time", "2026-01-02T00:00:00Z"],
    );
    let (c, out, err) = dump(&env, "latest", &src.join("v"), &[]);
    assert_eq!((c, out.as_str()), (0, "mine"), "{err}");
    // The picked snapshot is named on stderr: id, time, host, paths.
    assert!(err.contains(&me), "{err}");
    assert!(err.contains("2026-01-01"), "{err}");
    assert!(err.contains(&src.display().to_string()), "{err}");
    // --host picks another host's.
    let (c, out, _) = dump(&env, "latest", &src.join("v"), &["--host", "other-host"]);
    assert_eq!((c, out.as_str()), (0, "other host"));

    // restore latest restores this host's files, and says which snapshot.
    let to = env.path("out");
    let out = env.run([
        "restore".as_ref(),
        "latest".as_ref(),
        "--to".as_ref(),
        to.as_os_str(),
    ]);
    assert_success(&out, "restore latest");
    assert_eq!(
        fs::read_to_string(restored(&to, &src).join("v")).unwrap(),
        "mine"
    );
    assert!(stderr(&out).contains(&me), "{}", stderr(&out));
    // --json carries it as a field.
    let to2 = env.path("out2");
    let v = env.json([
        "restore".as_ref(),
        "latest".as_ref(),
        "--to".as_ref(),
        to2.as_os_str(),
    ]);
    assert_eq!(v["snapshot"]["host"], me.as_str(), "{v}");
    assert_eq!(v["snapshot"]["paths"][0], src.display().to_string(), "{v}");
    assert!(v["snapshot"]["time"]
        .as_str()
        .unwrap()
        .starts_with("2026-01-01"));
    assert_eq!(v["snapshot"]["id"].as_str().unwrap().len(), 64);
    // --quiet prints nothing on stderr.
    let out = env.run([
        "--quiet".as_ref(),
        "dump".as_ref(),
        "latest".as_ref(),
        src.join("v").as_os_str(),
    ]);
    assert_success(&out, "quiet dump");
    assert_eq!(stderr(&out), "");
}

#[test]
fn latest_without_this_host_refuses_to_guess_between_hosts() {
    let env = Env::new();
    let src = env.path("src");
    backup(&env, &src, "a", &["--host", "host-a"]);
    backup(&env, &src, "b", &["--host", "host-b"]);
    let (c, out, err) = dump(&env, "latest", &src.join("v"), &[]);
    assert_ne!(c, 0, "picked a snapshot of another host: {out}");
    assert!(out.is_empty());
    assert!(
        err.contains("host-a") && err.contains("host-b") && err.contains("--host"),
        "{err}"
    );
    let out = env.run(["ls", "latest"]);
    assert_ne!(code(&out), 0);
    let to = env.path("out");
    let out = env.run([
        "restore".as_ref(),
        "latest".as_ref(),
        "--to".as_ref(),
        to.as_os_str(),
    ]);
    assert_ne!(code(&out), 0);
    assert!(!to.exists() || fs::read_dir(&to).unwrap().next().is_none());
    // forget latest neither.
    let out = env.run(["forget", "latest"]);
    assert_ne!(code(&out), 0);
    assert_eq!(env.snapshot_ids().len(), 2);
    // With --host it works.
    let (c, out, _) = dump(&env, "latest", &src.join("v"), &["--host", "host-b"]);
    assert_eq!((c, out.as_str()), (0, "b"));
}

#[test]
fn latest_of_the_only_host_is_used_with_a_warning() {
    // A restore onto a new machine: the repository holds one other host.
    let env = Env::new();
    let src = env.path("src");
    backup(&env, &src, "old machine", &["--host", "old-machine"]);
    let (c, out, err) = dump(&env, "latest", &src.join("v"), &["--quiet"]);
    assert_eq!((c, out.as_str()), (0, "old machine"), "{err}");
    // Even with --quiet, taking another host's snapshot is said.
    assert!(
        err.contains("old-machine") && err.contains("warning"),
        "{err}"
    );
    // forget never guesses: another host's snapshot needs --host.
    let out = env.run(["forget", "latest"]);
    assert_ne!(code(&out), 0);
    assert_eq!(env.snapshot_ids().len(), 1);
    let out = env.run(["forget", "latest", "--host", "old-machine"]);
    assert_success(&out, "forget latest --host");
    assert_eq!(env.snapshot_ids().len(), 0);
}

#[test]
fn host_tag_and_path_filters() {
    let env = Env::new();
    let me = this_host();
    let p1 = env.path("p1");
    let p2 = env.path("p2");
    let t = |d: u32| format!("2026-02-{d:02}T00:00:00Z");
    let s_xy = backup(
        &env,
        &p1,
        "xy",
        &["--tag", "x", "--tag", "y", "--time", &t(1)],
    );
    let s_x = backup(&env, &p1, "x", &["--tag", "x", "--time", &t(2)]);
    let s_z = backup(&env, &p1, "z", &["--tag", "z", "--time", &t(3)]);
    let s_p2 = backup(&env, &p2, "p2", &["--time", &t(4)]);
    let s_other = backup(
        &env,
        &p1,
        "other",
        &["--host", "h2", "--tag", "x", "--time", &t(5)],
    );
    let f1 = p1.join("v");
    // "x,y" means both tags.
    assert_eq!(dump(&env, "latest", &f1, &["--tag", "x,y"]).1, "xy");
    // Repeated --tag means either.
    assert_eq!(
        dump(&env, "latest", &f1, &["--tag", "x", "--tag", "z"]).1,
        "z"
    );
    assert_eq!(dump(&env, "latest", &f1, &["--tag", "x"]).1, "x");
    assert_eq!(
        dump(&env, "latest", &f1, &["--tag", "x", "--host", "h2"]).1,
        "other"
    );
    // --path: the snapshot must hold that path.
    assert_eq!(
        dump(&env, "latest", &f1, &["--path", p1.to_str().unwrap()]).1,
        "z"
    );
    // Without a filter: this host's newest, which is the p2 snapshot; it
    // has no p1/v.
    let (c, _, _) = dump(&env, "latest", &f1, &[]);
    assert_ne!(c, 0);
    assert_eq!(dump(&env, "latest", &p2.join("v"), &[]).1, "p2");
    // Nothing matches: a clear error naming the filter.
    let (c, _, err) = dump(&env, "latest", &f1, &["--tag", "nope"]);
    assert_ne!(c, 0);
    assert!(err.contains("nope"), "{err}");
    // An id that does not match the filter is refused, not silently used.
    let (c, _, err) = dump(&env, &s_other[..12], &f1, &["--host", &me]);
    assert_ne!(c, 0, "id of host h2 accepted with --host {me}");
    assert!(err.contains("h2"), "{err}");

    // snapshots filters the list.
    let ids = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["snapshots"];
        args.extend_from_slice(extra);
        env.json(&args)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&[]).len(), 5);
    assert_eq!(ids(&["--host", "h2"]), vec![s_other.clone()]);
    assert_eq!(
        ids(&["--tag", "x"]),
        vec![s_xy.clone(), s_x.clone(), s_other.clone()]
    );
    assert_eq!(ids(&["--tag", "x,y"]), vec![s_xy.clone()]);
    assert_eq!(ids(&["--path", p2.to_str().unwrap()]), vec![s_p2.clone()]);
    assert_eq!(
        ids(&["--host", &me, "--tag", "x"]),
        vec![s_xy.clone(), s_x.clone()]
    );

    // ls takes the filters too.
    let v = env.json(["ls", "latest", "--tag", "z"]);
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["path"] == f1.to_str().unwrap()));

    // forget latest --tag z removes exactly that one, and names it.
    let v = env.json(["forget", "latest", "--tag", "z"]);
    assert_eq!(v["removed"], serde_json::json!([s_z.clone()]), "{v}");
    assert_eq!(v["snapshots"][0]["host"], me.as_str(), "{v}");
    assert_eq!(ids(&[]).len(), 4);
}

#[test]
fn create_parent_follows_host_paths_and_time() {
    let env = Env::new();
    let src = env.path("src");
    let a1 = backup(
        &env,
        &src,
        "1",
        &["--host", "a", "--time", "2026-03-01T00:00:00Z"],
    );
    let b1 = backup(
        &env,
        &src,
        "2",
        &["--host", "b", "--time", "2026-03-02T00:00:00Z"],
    );
    // The default parent is the latest of the same host and paths.
    let r = env.create(&[&src], &["--host", "a", "--time", "2026-03-03T00:00:00Z"]);
    assert_eq!(r["parent"], a1.as_str(), "{r}");
    // --parent latest with the recorded host.
    let r = env.create(&[&src], &["--host", "b", "--parent", "latest"]);
    assert_eq!(r["parent"], b1.as_str(), "{r}");
    // A backup dated before a snapshot does not take it as parent.
    let r = env.create(&[&src], &["--host", "a", "--time", "2026-03-01T12:00:00Z"]);
    assert_eq!(r["parent"], a1.as_str(), "{r}");
}

#[test]
fn future_dated_snapshot_does_not_stay_latest() {
    let env = Env::new();
    let src = env.path("src");
    backup(&env, &src, "real old", &["--time", "2026-01-01T00:00:00Z"]);
    // A mistyped --time: warned about at create time.
    fs::write(src.join("v"), "from the future").unwrap();
    let out = env.run([
        "create".as_ref(),
        src.as_os_str(),
        "--time".as_ref(),
        "2030-01-01T00:00:00Z".as_ref(),
    ]);
    assert_success(&out, "create --time 2030");
    let err = stderr(&out);
    assert!(
        err.contains("warning") && err.contains("future") && err.contains("2030-01-01"),
        "{err}"
    );
    let future = env.snapshot_ids().last().unwrap().clone();
    // The next real backup is `latest`, and its parent is not the 2030 one.
    fs::write(src.join("v"), "real new").unwrap();
    let r = env.create(&[&src], &[]);
    let real_new = r["snapshot"].as_str().unwrap().to_string();
    assert_ne!(r["parent"], future.as_str(), "{r}");
    let (c, out, err) = dump(&env, "latest", &src.join("v"), &[]);
    assert_eq!((c, out.as_str()), (0, "real new"), "{err}");
    // It says that it passed over the future-dated snapshot.
    assert!(err.contains(&future[..8]), "{err}");
    // The 2030 snapshot can still be picked by id.
    assert_eq!(
        dump(&env, &future[..12], &src.join("v"), &[]).1,
        "from the future"
    );

    // prune --keep-last 1 keeps the real newest backup; the future-dated
    // one neither counts nor is deleted.
    let r = env.json(["prune", "--keep-last", "1"]);
    let kept: Vec<String> = r["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"].as_bool().unwrap())
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kept.contains(&real_new),
        "the real newest backup was removed: {r}"
    );
    assert!(kept.contains(&future), "{r}");
    assert_eq!(kept.len(), 2, "{r}");
    let ids = env.snapshot_ids();
    assert!(ids.contains(&real_new));
    let to = env.path("out");
    env.restore("latest", &to);
    assert_eq!(
        fs::read_to_string(restored(&to, &src).join("v")).unwrap(),
        "real new"
    );
}

#[test]
fn keep_within_is_measured_from_the_newest_real_snapshot() {
    let env = Env::new();
    let src = env.path("src");
    let old = backup(&env, &src, "1", &["--time", "2026-06-01T00:00:00Z"]);
    let recent = backup(&env, &src, "2", &["--time", "2026-06-02T00:00:00Z"]);
    let future = backup(&env, &src, "3", &["--time", "2031-01-01T00:00:00Z"]);
    let r: Value = env.json(["prune", "--dry-run", "--keep-within", "2d"]);
    let keep = |id: &str| {
        r["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap()["keep"]
            .as_bool()
            .unwrap()
    };
    assert!(keep(&old) && keep(&recent) && keep(&future), "{r}");
}
