//! `snap verify`, the restore drill, through the real binary: coverage
//! that grows across runs to 100% and starts a new round, a snapshot that
//! differs from an unchanged source, a corrupted pack that fails the drill
//! naming the files, and dumps piped into a dump command.

mod common;

use std::path::Path;

use common::{code, stderr, Env};
use serde_json::Value;

const DAMAGED: i32 = 11;

fn files(env: &Env, n: usize) -> std::path::PathBuf {
    let src = env.path("src");
    for i in 0..n {
        common::write_random(
            &src.join(format!("d{}/f{i}.bin", i % 3)),
            i as u64,
            1000 + i * 100,
        );
    }
    src
}

fn verify(env: &Env, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["--json", "verify"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", stderr(&out)));
    (code(&out), v, stderr(&out))
}

#[test]
fn coverage_grows_across_runs_to_the_whole_snapshot() {
    let env = Env::new();
    let src = files(&env, 10);
    env.create(&[&src], &[]);
    let mut before = 0u64;
    for (run, want) in [3u64, 6, 9, 10].iter().enumerate() {
        let (c, r, err) = verify(&env, &["--sample", "30%", "--against-source"]);
        assert_eq!(c, 0, "run {run}: {err}");
        let cov = &r["coverage"];
        assert_eq!(cov["files"], 10);
        assert_eq!(cov["files_verified"], *want, "run {run}: {r:#}");
        assert_eq!(cov["new_round"], false);
        // Each run verifies files no run verified before.
        let sampled = r["sampled_files"].as_u64().unwrap();
        assert_eq!(sampled, *want - before);
        assert_eq!(r["verified_files"], sampled);
        assert_eq!(r["compared_with_source"], sampled, "{r:#}");
        before = *want;
    }
    let (_, r, _) = verify(&env, &["--sample", "30%"]);
    assert_eq!(r["coverage"]["files_pct"], 100.0 * 3.0 / 10.0);
    assert_eq!(r["coverage"]["new_round"], true);

    // A file changed in a new snapshot is not verified any more; the
    // unchanged ones still are.
    let (_, r, _) = verify(&env, &["--sample", "100%"]);
    assert_eq!(r["coverage"]["files_pct"], 100.0);
    common::write_random(&src.join("d0/f0.bin"), 99, 5000);
    env.create(&[&src], &[]);
    let (c, r, _) = verify(&env, &["--sample", "1%"]);
    assert_eq!(c, 0);
    assert_eq!(r["sampled_files"], 1);
    assert_eq!(r["coverage"]["files_verified"], 10, "{r:#}");
}

#[test]
fn against_source_catches_a_snapshot_that_does_not_hold_the_source() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let f = src.join("data.bin");
    common::write_random(&f, 1, 10_000);
    common::set_mtime(&f, 1_700_000_000, 5);
    env.create(&[&src], &[]);
    // Same size, inode and mtime, other bytes: the snapshot is consistent
    // in itself but no longer holds what the source holds.
    common::write_random(&f, 2, 10_000);
    common::set_mtime(&f, 1_700_000_000, 5);
    let (c, r, err) = verify(&env, &["--sample", "100%", "--against-source"]);
    assert_eq!(c, DAMAGED, "{r:#}");
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{r:#}");
    assert!(
        errors[0].as_str().unwrap().contains(&format!(
            "{}: the restored file differs from the live file",
            f.display()
        )),
        "{errors:?} {err}"
    );
    // Without --against-source the snapshot itself restores fine.
    let (c, _, err) = verify(&env, &["--sample", "100%"]);
    assert_eq!(c, 0, "{err}");
    // A file changed since the snapshot (mtime differs) is not compared.
    common::set_mtime(&f, 1_700_000_001, 0);
    let (c, r, _) = verify(&env, &["--sample", "100%", "--against-source"]);
    assert_eq!(c, 0);
    assert_eq!(r["source_changed"], 1);
    assert_eq!(r["compared_with_source"], 0);
}

#[test]
fn a_corrupted_pack_fails_the_drill_naming_the_files() {
    let env = Env::new();
    let src = files(&env, 6);
    env.create(&[&src], &[]);
    // Damage the data pack (the largest; trees are packed apart) in the
    // middle.
    for (p, len) in env.packs().into_iter().take(1) {
        let mut b = std::fs::read(&p).unwrap();
        let mid = (len / 2) as usize;
        for x in &mut b[mid..mid + 64] {
            *x ^= 0x5a;
        }
        common::chmod(&p, 0o600);
        std::fs::write(&p, b).unwrap();
    }
    let (c, r, err) = verify(&env, &["--sample", "100%"]);
    assert_eq!(c, DAMAGED, "{err}");
    let errors: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(!errors.is_empty());
    // Every error names a file of the source by its path in the snapshot.
    let named: Vec<&str> = errors
        .iter()
        .filter(|e| e.starts_with(&*src.display().to_string()))
        .copied()
        .collect();
    assert!(!named.is_empty(), "no error names a file: {errors:#?}");
    assert!(r["verified_files"].as_u64().unwrap() < 6, "{r:#}");
    // Text output names them on stderr too.
    let out = env.run(["verify", "--sample", "100%"]);
    assert_eq!(code(&out), DAMAGED);
    assert!(
        stderr(&out).contains(&*src.display().to_string()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dumps_are_piped_into_the_dump_command() {
    let env = Env::new();
    let src = files(&env, 2);
    let got = env.path("got");
    env.create(
        &[&src],
        &[
            "--from-shell",
            "db.sql=echo 'SELECT 1;'",
            "--from-shell",
            "other.sql=echo other",
        ],
    );
    let (c, r, err) = verify(
        &env,
        &[
            "--dump-command",
            &format!("(echo \"== $SNAP_DUMP\"; cat) >> {}", got.display()),
        ],
    );
    assert_eq!(c, 0, "{err}");
    assert_eq!(r["dumps"].as_array().unwrap().len(), 2);
    let text = std::fs::read_to_string(&got).unwrap();
    assert_eq!(text, "== db.sql\nSELECT 1;\n== other.sql\nother\n");

    // A command that rejects a dump fails the drill, naming the dump.
    let (c, r, _) = verify(
        &env,
        &["--dump-command", "if [ \"$SNAP_DUMP\" = other.sql ]; then echo 'ERROR: syntax' >&2; exit 3; fi; cat >/dev/null"],
    );
    assert_eq!(c, DAMAGED);
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{r:#}");
    let e = errors[0].as_str().unwrap();
    assert!(e.starts_with("dump other.sql: drill.dump_command"), "{e}");
    assert!(
        e.contains("exited with status 3") && e.contains("ERROR: syntax"),
        "{e}"
    );
}

#[test]
fn the_scratch_directory_is_removed() {
    let env = Env::new();
    let src = files(&env, 3);
    env.create(&[&src], &[]);
    let scratch = env.path("scratch");
    let (c, r, err) = verify(
        &env,
        &["--sample", "100%", "--scratch", scratch.to_str().unwrap()],
    );
    assert_eq!(c, 0, "{err}");
    assert_eq!(r["verified_files"], 3);
    assert!(!Path::new(&scratch).exists());
}
