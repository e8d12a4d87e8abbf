//! `kill -9` during `create`, and concurrent writers.

mod common;

use std::fs;
use std::process::Stdio;
use std::time::Instant;

use common::*;

/// No leftovers of dead processes in the repository's tmp/.
fn assert_no_stale_tmp(env: &Env, dead: &[u32]) {
    let left: Vec<String> = files_starting(&env.repo.join("tmp"), "")
        .into_iter()
        .filter(|n| {
            dead.iter().any(|pid| {
                n.starts_with(&format!("pack-{pid}-")) || n.starts_with(&format!(".w-{pid}-"))
            })
        })
        .collect();
    assert!(left.is_empty(), "stale tmp files of killed runs: {left:?}");
}

#[test]
fn kill_9_during_create_loses_nothing() {
    let env = Env::new();
    let small = env.path("small");
    write_random(&small.join("keep.bin"), 1, 200_000);
    fs::write(small.join("note"), b"before the crash").unwrap();
    let first = env.create(&[&small], &[]);
    let first_id = first["snapshot"].as_str().unwrap().to_string();

    // Big enough that a create takes a while: many files, some large.
    let big = env.path("big");
    for i in 0..16u64 {
        write_random(
            &big.join(format!("d{}/f{i}.bin", i % 4)),
            1000 + i,
            768 << 10,
        );
    }
    // How long does a whole create of it take here? Kill within that.
    let probe = env.path("probe-repo");
    let t0 = Instant::now();
    let out = env
        .cmd()
        .env("SNAP_REPO", &probe)
        .args(["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"])
        .output()
        .unwrap();
    assert_success(&out, "init probe");
    let init_time = t0.elapsed();
    let t0 = Instant::now();
    let out = env
        .cmd()
        .env("SNAP_REPO", &probe)
        .arg("create")
        .arg(&big)
        .output()
        .unwrap();
    assert_success(&out, "probe create");
    let full = t0.elapsed();
    fs::remove_dir_all(&probe).unwrap();

    let mut dead = Vec::new();
    let mut killed_midway = 0;
    for frac in [0.1, 0.35, 0.6, 0.85] {
        let delay = init_time / 2 + full.mul_f64(frac);
        let mut child = env
            .cmd()
            .arg("create")
            .arg(&big)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let pid = child.id();
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if !finished {
            killed_midway += 1;
            dead.push(pid);
        }

        // Every earlier snapshot still restores, and check finds no error.
        let out = env.run(["--json", "check"]);
        let rep: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("check output: {}", stderr(&out)));
        assert!(
            rep["errors"].as_array().unwrap().is_empty(),
            "check after kill at {delay:?}: {rep}"
        );
        assert_eq!(code(&out), 0);
        let t = env.path(&format!("r-{frac}"));
        env.restore(&first_id[..8], &t);
        assert_same_tree(&small, &restored(&t, &small));
        fs::remove_dir_all(&t).unwrap();
    }
    assert!(
        killed_midway >= 2,
        "the kills mostly came after the create had finished ({full:?})"
    );

    // The next create works, and leftovers of the killed runs are gone.
    let last = env.create(&[&big], &[]);
    assert_eq!(last["incomplete"], false);
    assert_no_stale_tmp(&env, &dead);
    env.ok(["check", "--read-data"]);
    let t = env.path("final");
    env.restore(last["snapshot"].as_str().unwrap(), &t);
    assert_same_tree(&big, &restored(&t, &big));
    let t = env.path("first");
    env.restore(&first_id, &t);
    assert_same_tree(&small, &restored(&t, &small));
}

#[test]
fn concurrent_creates_both_succeed_and_restore() {
    let env = Env::new();
    let a = env.path("a");
    let b = env.path("b");
    // Some data in common, so that both writers race to store it.
    for i in 0..6u64 {
        write_random(&a.join(format!("shared{i}.bin")), 500 + i, 400_000);
        write_random(&b.join(format!("shared{i}.bin")), 500 + i, 400_000);
        write_random(&a.join(format!("only_a{i}.bin")), 600 + i, 300_000);
        write_random(&b.join(format!("only_b{i}.bin")), 700 + i, 300_000);
    }
    for round in 0..2 {
        let spawn = |src: &std::path::Path| {
            env.cmd()
                .args(["--json", "create"])
                .arg(src)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let ca = spawn(&a);
        let cb = spawn(&b);
        let oa = ca.wait_with_output().unwrap();
        let ob = cb.wait_with_output().unwrap();
        assert_success(&oa, &format!("create a, round {round}"));
        assert_success(&ob, &format!("create b, round {round}"));
        // Touch a file so that the next round has something to do.
        fs::write(a.join(format!("round{round}")), b"a").unwrap();
        fs::write(b.join(format!("round{round}")), b"b").unwrap();
    }
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 4);
    env.ok(["check", "--read-data"]);
    // Each snapshot restores to its source as it was.
    let rows = env.json(["snapshots"]);
    for row in rows.as_array().unwrap() {
        let id = row["id"].as_str().unwrap();
        let src_path = std::path::PathBuf::from(row["paths"][0].as_str().unwrap());
        let t = env.path(&format!("r-{}", &id[..8]));
        env.restore(id, &t);
        let out = restored(&t, &src_path);
        for e in fs::read_dir(&src_path).unwrap() {
            let name = e.unwrap().file_name();
            let n = name.to_string_lossy();
            if n.starts_with("round") {
                continue; // written after some of the snapshots
            }
            assert_eq!(
                fs::read(out.join(&name)).unwrap(),
                fs::read(src_path.join(&name)).unwrap(),
                "{n} in snapshot {id}"
            );
        }
    }
}
