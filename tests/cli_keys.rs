//! `snap key list|remove|passwd` through the real binary. What is expected
//! is read from the repository's `keys/` directory with std::fs, and each
//! password is tried by opening the repository.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::*;
use serde_json::Value;

fn key_files(env: &Env) -> BTreeSet<String> {
    fs::read_dir(env.repo.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// `snap ARGS` with this password instead of the test one.
fn with_pw(env: &Env, pw: &str, args: &[&str]) -> std::process::Output {
    env.cmd()
        .env("SNAP_PASSWORD", pw)
        .args(args)
        .output()
        .unwrap()
}

fn listed(v: &Value) -> Vec<(String, bool)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_string(),
                k["current"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn key_list_remove_and_passwd() {
    let env = Env::new();
    let src = env.path("src");
    write_random(&src.join("f"), 1, 100_000);
    let snap = env.create(&[&src], &[])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let first: String = key_files(&env).into_iter().next().unwrap();

    let v = env.json(["key", "list"]);
    assert_eq!(listed(&v), [(first.clone(), true)]);
    assert_eq!(v[0]["readable"], true);

    let pw2 = env.path("pw2");
    fs::write(&pw2, "second password\n").unwrap();
    let added = env.json(["key", "add", "--new-password-file", pw2.to_str().unwrap()])["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(key_files(&env), [first.clone(), added.clone()].into());
    // Each password marks its own key as the one in use.
    let mine: Vec<String> = listed(&env.json(["key", "list"]))
        .into_iter()
        .filter(|(_, c)| *c)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(mine, std::slice::from_ref(&first));
    let out = with_pw(&env, "second password", &["--json", "key", "list"]);
    assert_success(&out, "key list with the second password");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed(&v).contains(&(added.clone(), true)), "{v}");
    assert!(listed(&v).contains(&(first.clone(), false)), "{v}");
    let text = env.ok(["key", "list"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("*{}", &first[..8]))),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!(" {}", &added[..8]))),
        "{text}"
    );

    // The key in use is never removed.
    let out = env.run(["key", "remove", &first[..8]]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("key passwd"), "{}", stderr(&out));
    assert_eq!(key_files(&env).len(), 2);
    // Unknown and malformed ids are errors naming them.
    let out = env.run(["key", "remove", "zz"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("\"zz\""), "{}", stderr(&out));

    // Another key is removed: its password opens nothing any more.
    let v = env.json(["key", "remove", &added[..10]]);
    assert_eq!(v["removed"], added.as_str());
    assert_eq!(key_files(&env), [first.clone()].into());
    assert_eq!(code(&with_pw(&env, "second password", &["snapshots"])), 12);

    // passwd: a new key for the new password, the one in use removed.
    let pw3 = env.path("pw3");
    fs::write(&pw3, "third password\n").unwrap();
    let v = env.json([
        "key",
        "passwd",
        "--new-password-file",
        pw3.to_str().unwrap(),
    ]);
    let new = v["added"].as_str().unwrap().to_string();
    assert_eq!(v["removed"], first.as_str());
    assert_eq!(key_files(&env), [new.clone()].into());
    assert_eq!(
        code(&env.run(["snapshots"])),
        12,
        "the old password still opens"
    );
    let r = env.path("r");
    let out = with_pw(
        &env,
        "third password",
        &["restore", &snap, "--to", r.to_str().unwrap()],
    );
    assert_success(&out, "restore with the new password");
    assert_same_tree(&src, &restored(&r, &src));
    let out = with_pw(&env, "third password", &["--json", "key", "list"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed(&v), [(new, true)]);
}
