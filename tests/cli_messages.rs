//! Messages point the right way: the advice a message ends with fits what
//! happened and the command that runs (no "run `snap check --read-data`"
//! from `check --read-data` itself or for a listing stored invalid, no
//! "`snap repair index`" for a full disk); a flag's value that cannot be
//! used is a usage error (exit 2); inode flags that are not stored are
//! named once per file.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const EXIT_USAGE: i32 = 2;
const EXIT_DAMAGED: i32 = 11;

fn all_output(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// The fixture of tests/fixtures/dotdot-v0.1 (a v0.1 snapshot whose tree
/// has a node named `..`: authentic, but invalid), copied into the temp dir.
fn v01_fixture(env: &Env) -> PathBuf {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dotdot-v0.1");
    let to = env.path("v01");
    let mut stack = vec![from.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name() != Some(OsStr::new("README.md")) {
                let dest = to.join(p.strip_prefix(&from).unwrap());
                fs::create_dir_all(dest.parent().unwrap()).unwrap();
                fs::copy(&p, &dest).unwrap();
            }
        }
    }
    to
}

#[test]
fn an_invalid_listing_is_not_sent_to_check_read_data_or_to_a_mirror() {
    let env = Env::new();
    let fx = env.at(v01_fixture(&env));
    let to = env.path("out");
    for args in [
        vec!["ls", "238d16bd"],
        vec!["restore", "238d16bd", "--to", to.to_str().unwrap()],
        vec!["dump", "238d16bd", "/tmp/snapfx/v01/src/x"],
    ] {
        let out = fx.run(&args);
        let all = all_output(&out);
        assert_eq!(code(&out), EXIT_DAMAGED, "{args:?}: {all}");
        assert!(all.contains("is invalid"), "{args:?}: {all}");
        assert!(!all.contains("check --read-data"), "{args:?}: {all}");
        assert!(all.contains("snap repair snapshots"), "{args:?}: {all}");
    }
    for args in [&["check"][..], &["check", "--read-data"][..]] {
        let out = fx.run(args);
        let all = all_output(&out);
        assert_eq!(code(&out), EXIT_DAMAGED, "{args:?}: {all}");
        assert!(all.contains("238d16bd"), "{args:?}: {all}");
        assert!(!all.contains("check --read-data"), "{args:?}: {all}");
        // Every copy holds the same authentic bytes, and no pack is damaged.
        assert!(!all.contains("sync --from"), "{args:?}: {all}");
        assert!(!all.contains("repair packs"), "{args:?}: {all}");
        assert!(
            all.contains("snap repair snapshots --forget"),
            "{args:?}: {all}"
        );
    }
}

#[test]
fn check_read_data_on_a_pack_with_a_damaged_header_does_not_send_the_user_elsewhere() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("f"), 7, 300_000);
    env.create(&[&src], &[]);
    let (pack, len) = env.packs()[0].clone();
    // A byte of the encrypted header (the pack ends with header, trailer).
    let mut b = fs::read(&pack).unwrap();
    b[len as usize - 40] ^= 0x01;
    fs::write(&pack, b).unwrap();
    // A client that has not indexed the pack yet: its header is read now.
    let fresh = env.client("fresh");
    for args in [&["check", "--read-data"][..], &["check"][..]] {
        let out = fresh.run(args);
        let all = all_output(&out);
        assert_eq!(code(&out), EXIT_DAMAGED, "{args:?}: {all}");
        assert!(all.contains("header"), "{args:?}: {all}");
        assert!(!all.contains("check --read-data"), "{args:?}: {all}");
        // Rebuilding the index cannot index a pack whose header is damaged.
        assert!(!all.contains("repair index"), "{args:?}: {all}");
        assert!(all.contains("snap repair packs"), "{args:?}: {all}");
    }
}

/// Runs `snap ARGS` (with `env`'s environment and `vars`) in a private mount
/// namespace where a tmpfs of `size` is mounted at `dir`, after the shell
/// command `prepare` ran there; `None` (with a note) when this sandbox
/// cannot mount.
fn run_on_tmpfs(
    env: &Env,
    dir: &Path,
    size: &str,
    prepare: &str,
    vars: &[(&str, &Path)],
    args: &[&str],
) -> Option<Output> {
    fs::create_dir_all(dir).unwrap();
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs \"$0\""])
        .arg(dir)
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!(
            "note: cannot mount a tmpfs here (needs root and unshare): full-disk test skipped"
        );
        return None;
    }
    let script = format!("mount -t tmpfs -o size={size} tmpfs \"$0\" && {prepare} && exec \"$@\"");
    let mut u = Command::new("unshare");
    u.args(["-m", "sh", "-c", &script])
        .arg(dir)
        .arg(snap_bin())
        .args(args);
    // The environment `env.cmd()` gives snap.
    let inner = env.cmd();
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => u.env(k, v),
            None => u.env_remove(k),
        };
    }
    for (k, v) in vars {
        u.env(k, v);
    }
    Some(u.output().unwrap())
}

#[test]
fn a_full_index_disk_says_so_and_not_repair_index() {
    let env = Env::new();
    let src = env.path("src");
    for i in 0..400 {
        write_random(&src.join(format!("f{i}")), i, 1000);
    }
    env.create(&[&src], &[]);
    // A new client whose cache (the index) is on a nearly full disk.
    let cache = env.path("small-cache");
    let Some(out) = run_on_tmpfs(
        &env,
        &cache,
        "64k",
        "true",
        &[("SNAP_CACHE_DIR", &cache)],
        &["check"],
    ) else {
        return;
    };
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(err.contains("is full"), "{err}");
    assert!(err.contains("SNAP_CACHE_DIR"), "{err}");
    assert!(!err.contains("repair index"), "{err}");
    assert!(!err.contains("check --read-data"), "{err}");
}

#[test]
fn a_full_repository_disk_says_so_and_not_that_data_is_damaged() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("big"), 9, 4 << 20);
    // The repository, copied onto a 1 MiB file system, then a backup.
    let mnt = env.path("small-repo");
    let prepare = format!("cp -a '{}' \"$0/repo\"", env.repo.display());
    let repo = mnt.join("repo");
    let Some(out) = run_on_tmpfs(
        &env,
        &mnt,
        "1m",
        &prepare,
        &[("SNAP_REPO", &repo)],
        &["create", src.to_str().unwrap()],
    ) else {
        return;
    };
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(
        err.contains("no space left") && err.contains("free space"),
        "{err}"
    );
    assert!(err.contains(&mnt.display().to_string()), "{err}");
    assert!(!err.contains("repair index"), "{err}");
    assert!(!err.contains("check --read-data"), "{err}");
    assert!(!err.contains("damaged"), "{err}");
}

/// `snap ARGS` must exit 2 with one error line naming `flag`.
fn assert_usage(env: &Env, args: &[&str], flag: &str) {
    let out = env.run(args);
    let err = stderr(&out);
    assert_eq!(code(&out), EXIT_USAGE, "{args:?}: {err}");
    assert!(err.contains(flag), "{args:?}: {err}");
    let errors = err.lines().filter(|l| l.starts_with("snap:")).count();
    assert_eq!(errors, 1, "{args:?}: {err}");
}

#[test]
fn values_that_cannot_be_used_are_usage_errors() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("f"), 1, 1000);
    env.create(&[&src], &[]);
    let s = src.to_str().unwrap();
    let to = env.path("out");
    let to = to.to_str().unwrap();
    for (args, flag) in [
        (vec!["create"], "nothing to back up"),
        (
            vec!["check", "--read-data-subset", "150%"],
            "--read-data-subset",
        ),
        (
            vec!["check", "--read-data-subset", "0%"],
            "--read-data-subset",
        ),
        (
            vec!["check", "--read-data-subset", "abc"],
            "--read-data-subset",
        ),
        (vec!["create", s, "--time", "yesterday"], "--time"),
        (
            vec!["create", s, "--command-timeout", "soon"],
            "--command-timeout",
        ),
        (vec!["create", s, "--exclude", "a[b"], "exclude"),
        (vec!["create", "--from-command", "nodump"], "--from-command"),
        (vec!["create", "--from-command", "a/b=true"], "stream name"),
        (vec!["prune", "--lock-wait", "xx"], "--lock-wait"),
        (vec!["prune", "--max-unused", "150"], "--max-unused"),
        (vec!["prune", "--max-repack-size", "lots"], "size"),
        (vec!["prune", "--keep-within", "forever"], "--keep-within"),
        (vec!["repair", "packs", "--lock-wait", "xx"], "--lock-wait"),
        (
            vec!["restore", "latest", "--to", to, "--include", "a\\q"],
            "bad pattern",
        ),
        (vec!["restore", "latest"], "--to"),
        (vec!["dump", "latest", "/", "--target", s], "--target"),
    ] {
        assert_usage(&env, &args, flag);
    }
    // No repository given at all.
    let out = env
        .cmd()
        .env_remove("SNAP_REPO")
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(code(&out), EXIT_USAGE, "{}", stderr(&out));
    // Nothing to back up is found before a password is needed.
    let out = env
        .cmd()
        .env_remove("SNAP_PASSWORD")
        .arg("create")
        .output()
        .unwrap();
    assert_eq!(code(&out), EXIT_USAGE, "{}", stderr(&out));
    // Nothing was written by any of them.
    assert_eq!(env.snapshot_ids().len(), 1);
}

/// Sets or clears inode flags with chattr; false when that is not possible here.
fn chattr(flags: &str, path: &Path) -> bool {
    Command::new("chattr")
        .arg(flags)
        .arg(path)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Clears the flags again, so that the temp dir can be removed.
struct Unflag(Vec<PathBuf>);

impl Drop for Unflag {
    fn drop(&mut self) {
        for p in &self.0 {
            chattr("-ia", p);
        }
    }
}

#[test]
fn immutable_and_append_only_flags_are_named_once_per_file() {
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("logs")).unwrap();
    fs::write(src.join("frozen"), b"frozen").unwrap();
    fs::write(src.join("journal"), b"append only").unwrap();
    fs::write(src.join("plain"), b"plain").unwrap();
    let flagged = vec![src.join("frozen"), src.join("journal"), src.join("logs")];
    let _unflag = Unflag(flagged.clone());
    if !(chattr("+i", &flagged[0]) && chattr("+a", &flagged[1]) && chattr("+a", &flagged[2])) {
        println!("note: chattr +i/+a does not work here: inode flag test skipped");
        return;
    }
    // The second run takes the files over from the parent unread: the
    // flags are named again (the snapshot does not hold them either).
    for _ in 0..2 {
        let out = env.run(["--json".as_ref(), "create".as_ref(), src.as_os_str()]);
        let err = stderr(&out);
        assert_eq!(code(&out), 0, "{err}");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["incomplete"], false, "{r}");
        for (p, what) in [
            (&flagged[0], "immutable (chattr +i)"),
            (&flagged[1], "append-only (chattr +a)"),
            (&flagged[2], "append-only (chattr +a)"),
        ] {
            let line = format!("{}: is {what}", p.display());
            assert_eq!(err.matches(&line).count(), 1, "{line} in {err}");
        }
        assert!(!err.contains("plain"), "{err}");
        assert!(err.contains("restore will not set it"), "{err}");
        assert_eq!(r["notices"].as_array().unwrap().len(), 3, "{r}");
    }
    let to = env.path("out");
    env.restore("latest", &to);
    assert_eq!(
        fs::read(restored(&to, &src).join("frozen")).unwrap(),
        b"frozen"
    );
}
