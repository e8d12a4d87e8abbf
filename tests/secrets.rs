//! Secrets stay with snap: child processes (dump commands, `--to-command`,
//! `--password-command`) do not inherit its password or cloud credentials,
//! command lines stored in snapshots are masked, an explicit password flag
//! wins over the environment, empty passwords are refused clearly, and
//! repository objects and caches are private to the user.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

const SECRET: &str = "hunter2-very-secret";

/// `snap` with secrets in its environment that no child may see.
fn with_secrets(env: &Env) -> std::process::Command {
    let mut c = env.cmd();
    c.env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_ACCESS_KEY_ID", "AKIA-test-id")
        .env("PGPASSWORD", "pg-is-for-the-child");
    c
}

fn out_ok(c: &mut std::process::Command, what: &str) -> String {
    let o = c.output().unwrap();
    assert_success(&o, what);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn dump_commands_do_not_inherit_snaps_secrets() {
    let env = Env::new();
    out_ok(
        with_secrets(&env).args(["create", "--from-shell", "env.txt=env; umask"]),
        "create with an env dump",
    );
    let dumped = out_ok(
        env.cmd().args(["dump", "latest", "env.txt"]),
        "dump env.txt",
    );
    assert!(
        !dumped.contains(PASSWORD),
        "SNAP_PASSWORD reached the dump command"
    );
    assert!(
        !dumped.contains(SECRET),
        "cloud credentials reached the dump command"
    );
    assert!(!dumped.contains("AKIA-test-id"));
    assert!(
        dumped.contains("PGPASSWORD=pg-is-for-the-child"),
        "the child's own variables stay"
    );
    // The child gets the caller's umask, not snap's private one.
    let umask = dumped.lines().last().unwrap().trim();
    // SAFETY: reading the umask by setting it and putting it back.
    let mine = unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m
    };
    assert_eq!(umask, format!("{:04o}", mine), "child umask");

    // --to-command runs with the same scrubbed environment.
    let seen = env.path("to-command-env");
    let cmd = format!("cat >/dev/null; env > {}", seen.display());
    out_ok(
        with_secrets(&env).args([
            "restore",
            "latest",
            "--include",
            "env.txt",
            "--to-command",
            &cmd,
        ]),
        "restore --to-command",
    );
    let e = std::fs::read_to_string(&seen).unwrap();
    assert!(
        !e.contains(PASSWORD) && !e.contains(SECRET),
        "--to-command saw secrets"
    );
}

#[test]
fn password_command_does_not_see_other_secrets() {
    let env = Env::new();
    let seen = env.path("pwcmd-env");
    let cmd = format!("env > {}; echo '{PASSWORD}'", seen.display());
    let o = with_secrets(&env)
        .env_remove("SNAP_PASSWORD")
        .args(["--password-command", &cmd, "snapshots"])
        .output()
        .unwrap();
    assert_success(&o, "snapshots with --password-command");
    let e = std::fs::read_to_string(&seen).unwrap();
    assert!(
        !e.contains(SECRET),
        "--password-command saw the cloud secret"
    );
}

#[test]
fn stored_command_lines_are_masked() {
    let env = Env::new();
    let o = env
        .cmd()
        .args([
            "create",
            "--from-command",
            &format!("a.sql=echo -p{SECRET} --password {SECRET} --dbname=postgresql://app:{SECRET}@db/app"),
            "--from-shell",
            &format!("b.sql=PGPASSWORD={SECRET} echo hi"),
            "--json",
        ])
        .output()
        .unwrap();
    assert_success(&o, "create with secrets on the command line");
    for listing in [
        env.ok(["snapshots", "--json"]),
        env.ok(["ls", "latest", "--json"]),
        env.ok(["ls", "latest"]),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    ] {
        assert!(
            !listing.contains(SECRET),
            "a secret was recorded: {listing}"
        );
    }
    assert!(env
        .ok(["snapshots", "--json"])
        .contains("postgresql://app:***@db/app"));
}

#[test]
fn explicit_password_file_wins_over_the_environment() {
    let env = Env::new();
    let pw = env.path("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let o = env
        .cmd()
        .env("SNAP_PASSWORD", "an inherited, wrong password")
        .arg("--password-file")
        .arg(&pw)
        .arg("snapshots")
        .output()
        .unwrap();
    assert_success(&o, "--password-file with a wrong SNAP_PASSWORD inherited");
}

#[test]
fn empty_passwords_are_refused_clearly() {
    let env = Env::new();
    let empty = env.path("empty-pw");
    std::fs::write(&empty, "\n").unwrap();
    let o = env
        .cmd()
        .env_remove("SNAP_PASSWORD")
        .arg("--password-file")
        .arg(&empty)
        .arg("snapshots")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(
        code(&o),
        12,
        "an empty password file is not a wrong password: {err}"
    );
    assert_ne!(code(&o), 0);
    assert!(err.contains("empty") && err.contains("empty-pw"), "{err}");
    let o = env
        .cmd()
        .env_remove("SNAP_PASSWORD")
        .args(["--password-command", "true", "snapshots"])
        .output()
        .unwrap();
    assert_ne!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no password"));
    let o = env
        .cmd()
        .env("SNAP_PASSWORD", "")
        .arg("snapshots")
        .output()
        .unwrap();
    assert_ne!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty"));
}

fn modes_below(root: &Path, out: &mut Vec<(String, u32, bool)>) {
    for e in std::fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        let mode = m.permissions().mode() & 0o777;
        out.push((e.path().display().to_string(), mode, m.is_dir()));
        if m.is_dir() {
            modes_below(&e.path(), out);
        }
    }
}

#[test]
fn repository_objects_and_caches_are_private() {
    // SAFETY: the test process's umask, as a shell would have it.
    unsafe { libc::umask(0o022) };
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    write_random(&src.join("f"), 1, 300_000);
    let cache = env.path("cache");
    let o = env
        .cmd()
        .env("SNAP_CACHE_DIR", &cache)
        .arg("create")
        .arg(&src)
        .output()
        .unwrap();
    assert_success(&o, "create");
    let mut all = Vec::new();
    modes_below(&env.repo, &mut all);
    if cache.exists() {
        modes_below(&cache, &mut all);
    }
    assert!(all.iter().any(|(p, _, _)| p.contains("/keys/")));
    for (p, mode, dir) in &all {
        let want = if *dir { 0o700 } else { 0o600 };
        assert_eq!(*mode & 0o077, 0, "{p} has mode {mode:o}, want {want:o}");
    }

    // A repository an admin made group-readable stays so.
    std::fs::set_permissions(
        env.repo.join("config"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    write_random(&src.join("g"), 2, 1000);
    let o = env.cmd().arg("create").arg(&src).output().unwrap();
    assert_success(&o, "second create");
    let newest = env
        .snapshot_ids()
        .into_iter()
        .map(|id| env.repo.join("snapshots").join(id))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    let mode = std::fs::metadata(&newest).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o640,
        "new snapshot object in a group-readable repository"
    );
}
