//! `snap copy --from-repo`: snapshots of one repository copied into another
//! with other keys and another password, through the real binary.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::walk::{compare, differences, walk};
use common::{code, stderr, write_random, Env, PASSWORD};
use serde_json::Value;

const TARGET_PASSWORD: &str = "the target's own password";

/// A source repository (password [`PASSWORD`]) with two snapshots: host
/// `alpha` (tagged `first`) of `data/`, then host `beta` after a change.
/// (whose parent is alpha's). Returns the env and the data dir.
fn source() -> (Env, PathBuf) {
    let src = Env::new();
    let data = src.path("data");
    write_random(&data.join("big.bin"), 1, 3 << 20);
    write_random(&data.join("sub/small.txt"), 2, 5_000);
    fs::write(data.join("sub/empty"), b"").unwrap();
    std::os::unix::fs::symlink("sub/small.txt", data.join("link")).unwrap();
    let first = src.create(&[&data], &["--host", "alpha", "--tag", "first"]);
    write_random(&data.join("sub/new.bin"), 3, 700_000);
    let parent = first["snapshot"].as_str().unwrap();
    src.create(&[&data], &["--host", "beta", "--parent", parent]);
    (src, data)
}

/// A second, unrelated repository (own keys, bigger chunks, other password).
fn target() -> Env {
    Env::init_at(
        |t| t.join("repo").display().to_string(),
        vec![("SNAP_PASSWORD".into(), TARGET_PASSWORD.into())],
        &["--chunk-avg-kib", "128"],
    )
}

/// `target`'s snap with the source's password in a file.
fn copy_args(src: &Env, extra: &[&str]) -> Vec<String> {
    let pw = src.path("source-password");
    fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let mut a: Vec<String> = vec![
        "copy".into(),
        "--from-repo".into(),
        src.repo.display().to_string(),
        "--from-password-file".into(),
        pw.display().to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn rows(env: &Env) -> Vec<Value> {
    env.json(["snapshots"]).as_array().unwrap().clone()
}

fn pack_names(env: &Env) -> BTreeSet<PathBuf> {
    env.packs().into_iter().map(|(p, _)| p).collect()
}

/// Restores `snap` of `env` into a new dir named `name` and returns where
/// `data` landed.
fn restore(env: &Env, snap: &str, name: &str, data: &Path) -> PathBuf {
    let to = env.path(name);
    env.restore(snap, &to);
    common::restored(&to, data)
}

#[test]
fn copy_all_restores_equal_and_a_second_copy_adds_nothing() {
    let (src, data) = source();
    let dst = target();
    let r = dst.json(copy_args(&src, &[]));
    assert_eq!(r["copied"], 2, "{r}");
    assert_eq!(r["already_present"], 0, "{r}");
    assert!(r["blobs_added"].as_u64().unwrap() > 0, "{r}");
    assert!(r["packs_added"].as_u64().unwrap() > 0, "{r}");
    let list = r["snapshots"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|s| s["status"] == "copied"), "{r}");

    // Same time, host, paths and tags; new ids (another repository).
    let (from, to) = (rows(&src), rows(&dst));
    assert_eq!(to.len(), 2);
    for (a, b) in from.iter().zip(&to) {
        for f in ["time_ns", "host", "paths", "tags", "summary", "incomplete"] {
            assert_eq!(a[f], b[f], "{f}: {a} vs {b}");
        }
        assert_ne!(a["id"], b["id"]);
    }
    assert_eq!(list[0]["source_id"], from[0]["id"]);
    assert_eq!(list[0]["target_id"], to[0]["id"]);
    // The second copy's parent is the target's copy of the first.
    assert_eq!(from[1]["parent"], from[0]["id"]);
    assert_eq!(to[1]["parent"], to[0]["id"]);

    // Each copy restores to what its original restores to.
    for (i, (a, b)) in from.iter().zip(&to).enumerate() {
        let want = restore(&src, a["id"].as_str().unwrap(), &format!("src-{i}"), &data);
        let got = restore(&dst, b["id"].as_str().unwrap(), &format!("dst-{i}"), &data);
        let d = compare(&walk(&want), &walk(&got), false);
        assert!(d.is_empty(), "snapshot {i}: {d:#?}");
    }
    // And the latest is the data as it is now.
    let got = restore(&dst, to[1]["id"].as_str().unwrap(), "dst-latest", &data);
    let d = differences(&walk(&data), &walk(&got));
    assert!(d.is_empty(), "{d:#?}");

    let out = dst.run(["check", "--read-data"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Again: nothing new, not one pack.
    let packs = pack_names(&dst);
    let again = dst.json(copy_args(&src, &[]));
    assert_eq!(again["copied"], 0, "{again}");
    assert_eq!(again["already_present"], 2, "{again}");
    assert_eq!(again["blobs_added"], 0, "{again}");
    assert_eq!(again["packs_added"], 0, "{again}");
    assert_eq!(again["data_blobs_read"], 0, "nothing to read: {again}");
    let ss = again["snapshots"].as_array().unwrap();
    assert!(
        ss.iter().all(|s| s["status"] == "already present"),
        "{again}"
    );
    assert_eq!(ss[1]["target_id"], to[1]["id"]);
    assert_eq!(pack_names(&dst), packs);
    assert_eq!(rows(&dst).len(), 2);

    // Text output names what happened.
    let text = dst.ok(copy_args(&src, &[]));
    assert!(text.contains("0 of 2 snapshots copied"), "{text}");
}

#[test]
fn host_filter_and_selectors_pick_what_is_copied() {
    let (src, _data) = source();
    let dst = target();
    let r = dst.json(copy_args(&src, &["--host", "beta"]));
    assert_eq!(r["copied"], 1, "{r}");
    let to = rows(&dst);
    assert_eq!(to.len(), 1);
    assert_eq!(to[0]["host"], "beta");
    // No parent: the target does not hold a copy of alpha's snapshot.
    assert_eq!(to[0]["parent"], Value::Null);

    // An id prefix of the source: alpha's snapshot, which shares most
    // data with beta's, adds little.
    let from = rows(&src);
    let prefix = &from[0]["id"].as_str().unwrap()[..10];
    let r = dst.json(copy_args(&src, &[prefix]));
    assert_eq!(r["copied"], 1, "{r}");
    assert_eq!(r["snapshots"][0]["host"], "alpha");
    assert!(
        r["bytes_added"].as_u64().unwrap() < 200_000,
        "the 3 MiB file was copied again: {r}"
    );
    // `latest` of a host that has nothing new: already there.
    let r = dst.json(copy_args(&src, &["latest", "--host", "beta"]));
    assert_eq!(r["copied"], 0, "{r}");
    assert_eq!(r["already_present"], 1, "{r}");
    // A tag filter that matches nothing copies nothing.
    let r = dst.json(copy_args(&src, &["--tag", "nosuch"]));
    assert_eq!(r["snapshots"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(rows(&dst).len(), 2);
}

#[test]
fn wrong_source_password_is_one_line_and_exit_12() {
    let (src, _data) = source();
    let dst = target();
    let out = dst
        .cmd()
        .args(["copy", "--from-repo"])
        .arg(&src.repo)
        .env("SNAP_FROM_PASSWORD", "not the source's password")
        .output()
        .unwrap();
    assert_eq!(code(&out), 12, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("source repository"), "{err}");
    assert!(err.contains("SNAP_FROM_PASSWORD"), "{err}");
    assert!(!err.contains("not the source's password"), "{err}");
    assert!(rows(&dst).is_empty());

    // No source password at all: said, not prompted for.
    let out = dst
        .cmd()
        .args(["copy", "--from-repo"])
        .arg(&src.repo)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no password for the source"),
        "{}",
        stderr(&out)
    );

    // The right one through SNAP_FROM_PASSWORD works.
    let out = dst
        .cmd()
        .args(["--json", "copy", "--from-repo"])
        .arg(&src.repo)
        .env("SNAP_FROM_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["copied"], 2);
}

#[test]
fn a_missing_source_is_exit_10_naming_from_repo() {
    let dst = target();
    let gone = dst.path("no-such-repo");
    let out = dst
        .cmd()
        .args(["copy", "--from-repo"])
        .arg(&gone)
        .env("SNAP_FROM_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    assert!(stderr(&out).contains("--from-repo"), "{}", stderr(&out));
    // Without --from-repo: a usage error.
    let out = dst.run(["copy"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn a_repository_is_not_copied_into_itself() {
    let (src, _data) = source();
    let out = src
        .cmd()
        .args(["copy", "--from-repo", src.repo.to_str().unwrap()])
        .env("SNAP_FROM_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("snap sync"), "{}", stderr(&out));
}

fn wait_for(p: &Path) {
    let t = Instant::now();
    while !p.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{} never came",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_source_password_is_never_in_argv_nor_in_a_childs_environment() {
    let (src, _data) = source();
    let dst = target();
    let pwfile = src.path("pw");
    fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    let env_seen = src.path("child-env");
    let (here, go) = (src.path("here"), src.path("go"));
    let child = dst
        .cmd()
        .args(["--json", "copy", "--from-repo"])
        .arg(&src.repo)
        .arg("--from-password-command")
        .arg(format!(
            "env > '{}'; cat '{}'",
            env_seen.display(),
            pwfile.display()
        ))
        // Set too (the command wins): it must not reach the command.
        .env("SNAP_FROM_PASSWORD", PASSWORD)
        .env(
            "SNAP_FAILPOINTS",
            format!(
                "create.pack_uploaded=1*touch({})->wait({})",
                here.display(),
                go.display()
            ),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&here);
    let argv = fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    let argv = String::from_utf8_lossy(&argv);
    assert!(argv.contains("copy"), "{argv}");
    assert!(!argv.contains(PASSWORD), "the password is in argv: {argv}");
    fs::write(&go, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let env = fs::read_to_string(&env_seen).unwrap();
    assert!(!env.contains(PASSWORD), "a child saw a password: {env}");
    assert!(!env.contains("SNAP_FROM_PASSWORD"), "{env}");
    for o in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(o).contains(PASSWORD));
    }
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["copied"], 2);
}

#[test]
fn a_copy_killed_midway_leaves_the_target_consistent_and_resumes() {
    let (src, data) = source();
    let dst = target();
    let out = dst
        .cmd()
        .args(copy_args(&src, &[]))
        .env("SNAP_FAILPOINTS", "create.pack_uploaded=1*abort")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the failpoint did not fire");
    assert_eq!(out.status.code(), None, "{}", stderr(&out));
    assert!(!pack_names(&dst).is_empty(), "a pack was uploaded");
    assert!(rows(&dst).is_empty(), "no snapshot before every pack");
    let out = dst.run(["check", "--read-data"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // The next run copies everything, reusing what the first uploaded.
    let r = dst.json(copy_args(&src, &[]));
    assert_eq!(r["copied"], 2, "{r}");
    let to = rows(&dst);
    let got = restore(&dst, to[1]["id"].as_str().unwrap(), "after", &data);
    let d = differences(&walk(&data), &walk(&got));
    assert!(d.is_empty(), "{d:#?}");
    let out = dst.run(["check", "--read-data"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn damaged_source_data_is_not_copied() {
    let (src, _data) = source();
    let dst = target();
    // The largest pack holds the 3 MiB file's chunks.
    let (pack, _) = src.packs()[0].clone();
    common::flip_byte(&pack, 1000);
    let out = dst.run(copy_args(&src, &[]));
    assert_eq!(code(&out), 11, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("blob"), "{err}");
    assert!(
        rows(&dst).is_empty(),
        "a snapshot with damaged data was copied"
    );
    let out = dst.run(["check", "--read-data"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A selector that names nothing in the source.
    let out = dst.run(copy_args(&src, &["deadbeef"]));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("deadbeef"), "{}", stderr(&out));
}

#[test]
fn a_long_copy_commits_as_it_goes_and_a_kill_keeps_what_was_committed() {
    let (src, data) = source();
    let dst = target();
    // Every snapshot its own batch; killed right after the first is written.
    let out = dst
        .cmd()
        .args(copy_args(&src, &["--commit-every", "1"]))
        .env("SNAP_FAILPOINTS", "copy.after_snapshot=1*abort")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "not killed: {}", stderr(&out));
    let to = rows(&dst);
    assert_eq!(to.len(), 1, "the first batch was committed");
    assert_eq!(to[0]["host"], "alpha");
    let out = dst.run(["check", "--read-data"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let r = dst.json(copy_args(&src, &["--commit-every", "1"]));
    assert_eq!(r["copied"], 1, "{r}");
    assert_eq!(r["already_present"], 1, "{r}");
    assert_eq!(r["snapshots"][0]["status"], "already present", "{r}");
    assert_eq!(r["snapshots"][1]["status"], "copied", "{r}");
    let to = rows(&dst);
    assert_eq!(to[1]["parent"], to[0]["id"], "parent: the copy made before");
    let got = restore(&dst, to[1]["id"].as_str().unwrap(), "after", &data);
    let d = differences(&walk(&data), &walk(&got));
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn source_password_sources_in_order() {
    let (src, _data) = source();
    let dst = target();
    let right = src.path("right");
    fs::write(&right, format!("{PASSWORD}\n")).unwrap();
    let wrong = src.path("wrong");
    fs::write(&wrong, "wrong\n").unwrap();
    let run = |args: &[&str], vars: &[(&str, &Path)]| {
        let mut c = dst.cmd();
        c.args(["copy", "--tag", "nosuch", "--from-repo"])
            .arg(&src.repo);
        c.args(args);
        for (k, v) in vars {
            c.env(k, v);
        }
        code(&c.output().unwrap())
    };
    let right_s = right.to_str().unwrap();
    let cat_right = format!("cat '{right_s}'");
    let cat_right = Path::new(&cat_right);
    // Each alone.
    assert_eq!(run(&[], &[("SNAP_FROM_PASSWORD_FILE", &right)]), 0);
    assert_eq!(run(&[], &[("SNAP_FROM_PASSWORD_COMMAND", cat_right)]), 0);
    assert_eq!(run(&["--from-password-file", right_s], &[]), 0);
    // A flag wins over the environment; SNAP_FROM_PASSWORD over the file.
    let wrong_pw = Path::new("wrong");
    assert_eq!(
        run(
            &["--from-password-file", right_s],
            &[("SNAP_FROM_PASSWORD", wrong_pw)]
        ),
        0
    );
    assert_eq!(
        run(
            &[],
            &[
                ("SNAP_FROM_PASSWORD", wrong_pw),
                ("SNAP_FROM_PASSWORD_FILE", &right)
            ]
        ),
        12
    );
    assert_eq!(
        run(
            &[],
            &[
                ("SNAP_FROM_PASSWORD_FILE", &wrong),
                ("SNAP_FROM_PASSWORD_COMMAND", cat_right)
            ]
        ),
        12
    );
    // The target's own password is not taken for the source's.
    assert_eq!(run(&[], &[]), 1);
    let out = dst
        .cmd()
        .args(["copy", "--from-password-file"])
        .arg(&right)
        .args(["--from-password-command", "true", "--from-repo"])
        .arg(&src.repo)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "both flags: {}", stderr(&out));
}

// Progress and -v, as for the other long commands: JSON status lines
// (with --progress) that end at every file and byte read, then the report
// tagged as the summary; -v names each snapshot copied.
#[test]
fn copy_reports_progress_and_names_what_it_copied() {
    let (src, _) = source();
    let dst = target();
    let mut args = vec!["--json".to_string(), "--progress".into(), "-v".into()];
    args.extend(copy_args(&src, &["--host", "alpha"]));
    let out = dst.cmd().args(&args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (summary, status) = lines.split_last().unwrap();
    assert_eq!(summary["message_type"], "summary", "{summary}");
    assert_eq!(summary["copied"], 1, "{summary}");
    let last = status.last().expect("a status line");
    assert_eq!(last["message_type"], "status", "{last}");
    // big.bin, small.txt, empty: the files of alpha's snapshot.
    assert_eq!(last["files_done"], 3, "{last}");
    assert_eq!(last["bytes_done"], summary["bytes_read"], "{last}");
    let id = summary["snapshots"][0]["source_id"].as_str().unwrap();
    let err = stderr(&out);
    assert!(
        err.contains(&format!("copied snapshot {}", &id[..8])),
        "{err}"
    );
}
