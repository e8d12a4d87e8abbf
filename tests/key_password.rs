//! An empty password is refused everywhere: `init` and `key add` will not
//! store one, and an empty password (an empty `SNAP_PASSWORD`, a
//! `--password-command` that prints nothing) never opens a repository.

mod common;

use std::fs;

use common::*;

#[test]
fn key_add_refuses_an_empty_password_and_an_empty_password_opens_nothing() {
    let env = Env::new();
    for (name, text) in [
        ("empty", ""),
        ("newline", "\n"),
        ("blank-first-line", "\nx\n"),
    ] {
        let f = env.path(name);
        fs::write(&f, text).unwrap();
        let out = env.run([
            "key".as_ref(),
            "add".as_ref(),
            "--new-password-file".as_ref(),
            f.as_os_str(),
        ]);
        assert_ne!(code(&out), 0, "{name}: accepted");
        let err = stderr(&out);
        assert!(
            err.contains("empty password") && err.contains(name),
            "{name}: {err}"
        );
    }
    let keys = env.json(["key", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");

    // A second, real password still works.
    let f = env.path("pw2");
    fs::write(&f, "second password\n").unwrap();
    env.ok([
        "key".as_ref(),
        "add".as_ref(),
        "--new-password-file".as_ref(),
        f.as_os_str(),
    ]);

    let out = env
        .cmd()
        .env("SNAP_PASSWORD", "")
        .arg("snapshots")
        .output()
        .unwrap();
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    let out = env
        .cmd()
        .env_remove("SNAP_PASSWORD")
        .args(["--password-command", "true", "snapshots"])
        .output()
        .unwrap();
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
}
