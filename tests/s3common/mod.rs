//! Helpers shared by the integration tests: running the real binary, and
//! the loopback S3 server (started through scripts/s3-server.sh).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const PASSWORD: &str = "correct horse battery staple";

/// A `snap` command with a test password and a private cache dir.
pub fn snap(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
    c.env("SNAP_PASSWORD", PASSWORD)
        .env("SNAP_CACHE_DIR", cache)
        .env_remove("SNAP_REPO")
        .env_remove("SNAP_REQUEST_LOG");
    if let Some(s) = s3() {
        for (k, v) in &s.env {
            c.env(k, v);
        }
    }
    c
}

/// Runs a command and panics with its output unless it succeeded.
pub fn ok(c: &mut Command) -> Output {
    let out = c.output().expect("run snap");
    assert!(
        out.status.success(),
        "command {:?} failed ({}):\nstdout: {}\nstderr: {}",
        c,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `snap init` with cheap KDF parameters.
pub fn init(cache: &Path, repo: &str) {
    ok(snap(cache).args([
        "--repo",
        repo,
        "init",
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
    ]));
}

/// The loopback S3 server used by the tests.
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    /// Environment the `snap` processes need.
    pub env: Vec<(String, String)>,
}

impl S3 {
    /// A fresh `s3://bucket/prefix` URL for one test.
    pub fn url(&self, name: &str) -> String {
        format!("s3://{}/{}-{:08x}", self.bucket, name, rand_u32())
    }

    /// Options for opening the server from the test process itself.
    pub fn options(&self) -> Vec<(String, String)> {
        vec![
            ("endpoint".into(), self.endpoint.clone()),
            ("allow_http".into(), "true".into()),
            ("access_key_id".into(), "test".into()),
            ("secret_access_key".into(), "test".into()),
            ("region".into(), "us-east-1".into()),
        ]
    }
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (t.subsec_nanos() ^ std::process::id().rotate_left(16)).wrapping_mul(2654435761)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn start() -> Result<S3, String> {
    if let Ok(ep) = std::env::var("SNAP_TEST_S3_ENDPOINT") {
        let bucket = std::env::var("SNAP_TEST_S3_BUCKET").unwrap_or_else(|_| "snaptest".into());
        return Ok(S3 {
            env: env_for(&ep),
            endpoint: ep,
            bucket,
        });
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/s3-server.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("S3_WATCH_PID", std::process::id().to_string())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string())
    };
    let ep = get("SNAP_TEST_S3_ENDPOINT").ok_or("no endpoint printed")?;
    let bucket = get("SNAP_TEST_S3_BUCKET").unwrap_or_else(|| "snaptest".into());
    Ok(S3 {
        env: env_for(&ep),
        endpoint: ep,
        bucket,
    })
}

fn env_for(ep: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", ep),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The test S3 server, started once per test binary. `None` (after a loud
/// message) when it cannot be started outside CI; in CI (env `CI` set) a
/// missing server fails the test.
pub fn s3() -> Option<&'static S3> {
    static S: OnceLock<Option<S3>> = OnceLock::new();
    S.get_or_init(|| match start() {
        Ok(s) => Some(s),
        Err(why) => {
            if in_ci() {
                panic!("CI is set but the loopback S3 server is unavailable: {why}");
            }
            eprintln!(
                "\n########################################################\n\
                 SKIPPING S3 TESTS: the loopback S3 server could not start\n\
                 ({why})\n\
                 Run scripts/s3-server.sh by hand to see why (needs python3 + PyPI).\n\
                 ########################################################\n"
            );
            None
        }
    })
    .as_ref()
}

/// Writes a deterministic pseudo-random file of `len` bytes.
pub fn random_file(path: &Path, len: usize, seed: u64) {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, v).unwrap();
}

/// Asserts two directory trees have identical files (names and bytes).
pub fn assert_same_tree(a: &Path, b: &Path) {
    let mut stack = vec![PathBuf::new()];
    let mut n = 0;
    while let Some(rel) = stack.pop() {
        let (da, db) = (a.join(&rel), b.join(&rel));
        let mut names: Vec<_> = std::fs::read_dir(&da)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        let mut names_b: Vec<_> = std::fs::read_dir(&db)
            .unwrap_or_else(|e| panic!("{}: {e}", db.display()))
            .map(|e| e.unwrap().file_name())
            .collect();
        names_b.sort();
        assert_eq!(names, names_b, "entries of {}", rel.display());
        for name in names {
            let r = rel.join(&name);
            let ma = std::fs::symlink_metadata(a.join(&r)).unwrap();
            if ma.is_dir() {
                stack.push(r);
            } else if ma.is_file() {
                n += 1;
                assert!(
                    std::fs::read(a.join(&r)).unwrap() == std::fs::read(b.join(&r)).unwrap(),
                    "content of {} differs",
                    r.display()
                );
            }
        }
    }
    assert!(n > 0, "no files compared");
}

/// The JSON report of a command run with `--json`.
pub fn json(out: &Output) -> serde_json::Value {
    let s = String::from_utf8_lossy(&out.stdout);
    let last = s
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}
