//! Repositories on an SFTP server (`sftp://`), through the real binary and
//! a real OpenSSH server (tests/sshd): a backup round trip compared with
//! the tests' own tree walk, `sync --to sftp://`, host key checking
//! (unknown and changed keys), a refused identity, and the SSH agent.

mod common;
#[path = "sshd/mod.rs"]
mod sshd;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, Command, Output};

use common::walk::{differences, walk};
use common::{assert_success, code, set_mtime, stderr, write_random, Env};

fn fixture(src: &Path) {
    write_random(&src.join("big.bin"), 1, 3 << 20);
    write_random(&src.join("dir/small.txt"), 2, 1000);
    write_random(&src.join("dir/sub/other.bin"), 3, 200_000);
    std::fs::write(src.join("empty"), b"").unwrap();
    symlink("dir/small.txt", src.join("link")).unwrap();
    set_mtime(&src.join("dir/small.txt"), 1_600_000_000, 123_456_789);
}

/// Restores `snap` of `env` and compares it with `src` by the tests' walk.
fn restore_and_compare(env: &Env, snap: &str, src: &Path, to: &Path) {
    env.restore(snap, to);
    let got = to.join(src.strip_prefix("/").unwrap());
    let d = differences(&walk(src), &walk(&got));
    assert!(
        d.is_empty(),
        "restore differs from source:\n{}",
        d.join("\n")
    );
}

/// The one-line error of a failed run (exit code 1).
fn one_line_failure(out: &Output) -> String {
    assert_eq!(code(out), 1, "stderr: {}", stderr(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {err:?}");
    lines[0].to_string()
}

#[test]
fn backup_restore_check_over_sftp() {
    let Some(s) = sshd::start() else { return };
    let env = Env::init_at(|t| s.url(&t.join("repo")), s.vars(), &[]);
    // The repository is where the URL's absolute path says, on the server.
    let on_disk = env.path("repo");
    assert!(on_disk.join("config").is_file(), "no config at {on_disk:?}");
    for d in ["keys", "data", "snapshots", "locks"] {
        assert!(on_disk.join(d).is_dir(), "{d}/ missing");
    }
    let src = env.path("src");
    fixture(&src);
    let r = env.create(&[&src], &[]);
    let id = r["snapshot"].as_str().expect("snapshot id").to_string();
    assert!(
        std::fs::read_dir(on_disk.join("data")).unwrap().count() > 0,
        "packs were uploaded"
    );
    // Nothing is left in the server's tmp/ after the uploads.
    assert_eq!(
        std::fs::read_dir(on_disk.join("tmp")).unwrap().count(),
        0,
        "temp files left behind"
    );
    let check = env.json(["check", "--read-data"]);
    assert_eq!(check["errors"].as_array().map(Vec::len), Some(0), "{check}");
    assert!(check["packs_read"].as_u64().unwrap() > 0, "{check}");
    restore_and_compare(&env, &id, &src, &env.path("out"));

    // A second client with an empty cache reads everything over SFTP.
    let other = env.client("second");
    let snaps = other.json(["snapshots"]);
    assert_eq!(snaps[0]["id"], id.as_str(), "{snaps}");
    restore_and_compare(&other, "latest", &src, &env.path("out2"));
}

#[test]
fn sync_to_sftp() {
    let Some(s) = sshd::start() else { return };
    let mut env = Env::new();
    env.vars = s.vars();
    let src = env.path("src");
    fixture(&src);
    let id = env.create(&[&src], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let target = env.path("mirror");
    let url = s.url(&target);
    let r = env.json(["sync", "--to", &url]);
    assert_eq!(r["snapshots_sent"], 1, "{r}");
    assert_eq!(r["target"], url.as_str(), "{r}");
    assert!(r["packs_sent"].as_u64().unwrap() > 0, "{r}");
    assert!(target.join("config").is_file());
    // Again: nothing more to send.
    let r = env.json(["sync", "--to", &url]);
    assert_eq!(r["snapshots_sent"], 0, "{r}");
    assert_eq!(r["packs_sent"], 0, "{r}");
    // The copy is a whole repository.
    let mirror = env.client("mirror").at(url.clone());
    mirror.ok(["check", "--read-data"]);
    restore_and_compare(&mirror, &id, &src, &env.path("out"));
}

#[test]
fn unknown_or_changed_host_key_is_refused() {
    let Some(s) = sshd::start() else { return };
    let t = tempfile::tempdir().unwrap();
    let url = s.url(&t.path().join("repo"));
    let host = format!("[127.0.0.1]:{}", s.port);
    let run = |known_hosts: &Path| {
        Command::new(common::snap_bin())
            .args(["--repo", &url, "init"])
            .arg("-o")
            .arg(format!("sftp.known_hosts={}", known_hosts.display()))
            .arg("-o")
            .arg(format!("sftp.identity={}", s.key.display()))
            .env("SNAP_PASSWORD", common::PASSWORD)
            .env("SNAP_CACHE_DIR", t.path().join("cache"))
            .env("SSH_AUTH_SOCK", "")
            .output()
            .unwrap()
    };

    // No entry for the host (a missing file is the same).
    let empty = t.path().join("known_hosts-empty");
    std::fs::write(&empty, "").unwrap();
    for kh in [empty.clone(), t.path().join("no-such-file")] {
        let line = one_line_failure(&run(&kh));
        assert!(line.contains(&host), "{line}");
        assert!(line.contains(&kh.display().to_string()), "{line}");
        assert!(line.contains("unknown host"), "{line}");
        assert!(line.contains("SHA256:"), "fingerprint shown: {line}");
    }

    // Another key of the same type recorded for the host.
    let other_pub = std::fs::read_to_string(s.other_key.with_extension("pub")).unwrap();
    let other: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let changed = t.path().join("known_hosts-changed");
    std::fs::write(&changed, format!("# comment\n{host} {}\n", other.join(" "))).unwrap();
    let line = one_line_failure(&run(&changed));
    assert!(line.contains(&host), "{line}");
    assert!(line.contains(&changed.display().to_string()), "{line}");
    assert!(line.contains("does not match"), "{line}");
    assert!(
        line.contains("line 2"),
        "the host's line, after the comment: {line}"
    );
    assert!(!t.path().join("repo").exists(), "nothing was written");

    // The right file lets the same command through.
    assert_success(&run(&s.known_hosts), "init with the right known_hosts");
    assert!(t.path().join("repo/config").is_file());
}

#[test]
fn wrong_identity_is_refused_with_one_line() {
    let Some(s) = sshd::start() else { return };
    let t = tempfile::tempdir().unwrap();
    let url = s.url(&t.path().join("repo"));
    let run = |identity: &Path| {
        Command::new(common::snap_bin())
            .args(["--repo", &url, "init"])
            .arg("-o")
            .arg(format!("sftp.identity={}", identity.display()))
            .env("HOME", &s.home)
            .env("SNAP_PASSWORD", common::PASSWORD)
            .env("SNAP_CACHE_DIR", t.path().join("cache"))
            .env("SSH_AUTH_SOCK", "")
            .output()
            .unwrap()
    };
    let line = one_line_failure(&run(&s.other_key));
    assert!(line.contains(&s.other_key.display().to_string()), "{line}");
    assert!(line.contains("refused"), "{line}");
    assert!(
        line.contains(&format!("{}@[127.0.0.1]:{}", s.user, s.port)),
        "{line}"
    );
    let line = one_line_failure(&run(&t.path().join("missing-key")));
    assert!(line.contains("missing-key"), "{line}");
    assert!(!t.path().join("repo").exists());
    // The accepted key works (HOME's known_hosts is the default).
    assert_success(&run(&s.key), "init with the accepted key");
}

/// `ssh-agent -D -a SOCK`, killed when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn agent_authentication() {
    let Some(s) = sshd::start() else { return };
    let t = tempfile::tempdir().unwrap();
    let sock = t.path().join("agent.sock");
    let _agent = Agent(
        Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent starts"),
    );
    for _ in 0..500 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // A HOME with known_hosts but no key file: only the agent can log in.
    let home = t.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::copy(&s.known_hosts, home.join(".ssh/known_hosts")).unwrap();
    let url = s.url(&t.path().join("repo"));
    let env = |agent: bool| {
        let mut v = vec![("HOME".to_string(), home.display().to_string())];
        let sock = if agent {
            sock.display().to_string()
        } else {
            String::new()
        };
        v.push(("SSH_AUTH_SOCK".into(), sock));
        v
    };
    let snap = |agent: bool, args: &[&str]| {
        Command::new(common::snap_bin())
            .args(["--repo", &url])
            .args(args)
            .envs(env(agent))
            .env("SNAP_PASSWORD", common::PASSWORD)
            .env("SNAP_CACHE_DIR", t.path().join("cache"))
            .output()
            .unwrap()
    };

    // The agent holds no key yet: refused, saying what was tried.
    let line = one_line_failure(&snap(true, &["init"]));
    assert!(line.contains("authentication failed"), "{line}");
    assert!(line.contains("0 key(s) of the SSH agent"), "{line}");

    let add = Command::new("ssh-add")
        .arg(&s.key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert_success(&add, "ssh-add");
    let init = snap(
        true,
        &["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"],
    );
    assert_success(&init, "init through the agent");
    assert!(t.path().join("repo/config").is_file());
    assert_success(&snap(true, &["snapshots"]), "snapshots through the agent");
    // Without the agent there is no way in.
    let line = one_line_failure(&snap(false, &["snapshots"]));
    assert!(line.contains("authentication failed"), "{line}");
}

#[test]
fn backup_job_on_sftp_with_options_from_the_config() {
    let Some(s) = sshd::start() else { return };
    let env = Env::init_at(|t| s.url(&t.join("repo")), s.vars(), &[]);
    let src = env.path("src");
    fixture(&src);
    let pw = env.path("pw");
    std::fs::write(&pw, format!("{}\n", common::PASSWORD)).unwrap();
    let config = env.path("snap.toml");
    std::fs::write(
        &config,
        format!(
            "[repositories.remote]\nurl = {:?}\npassword_file = {:?}\n\
             options = {{ \"sftp.identity\" = {:?}, \"sftp.known_hosts\" = {:?} }}\n\n\
             [jobs.app]\nrepository = \"remote\"\npaths = [{:?}]\n",
            env.repo.display().to_string(),
            pw.display().to_string(),
            s.key.display().to_string(),
            s.known_hosts.display().to_string(),
            src.display().to_string(),
        ),
    )
    .unwrap();
    // A HOME without keys or known_hosts: only the job's options get in.
    let empty_home = env.path("empty-home");
    std::fs::create_dir_all(&empty_home).unwrap();
    let out = env
        .cmd()
        .env_remove("SNAP_PASSWORD")
        .env("HOME", &empty_home)
        .args(["run", "app", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_success(&out, "snap run app");
    let snaps = env.json(["snapshots"]);
    assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{snaps}");
    restore_and_compare(&env, "latest", &src, &env.path("out"));
}
