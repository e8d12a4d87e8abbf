//! The local copies of tree packs (object-store repositories; here a
//! `file://` URL, which is served like one) are a cache and never a
//! witness: `check` judges what storage holds, and a damaged copy is not
//! taken for damage of the repository.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{assert_same_tree, code, restored, stderr, write_random, Env};

fn file_url_repo() -> Env {
    Env::init_at(
        |t| format!("file://{}", t.join("repo").display()),
        Vec::new(),
        &["--chunk-avg-kib", "64"],
    )
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The cached tree packs, and the repository's files of the same packs.
fn tree_packs(env: &Env, repo_dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let cached = files(&env.cache_dir().join("packs"));
    let stored = files(&repo_dir.join("data"));
    cached
        .into_iter()
        .filter_map(|c| {
            let name = c.file_name()?.to_owned();
            let s = stored.iter().find(|s| s.file_name() == Some(&name))?;
            Some((c, s.clone()))
        })
        .collect()
}

fn source(env: &Env) -> PathBuf {
    let src = env.path("src");
    for i in 0..40 {
        let d = src.join(format!("d{i}"));
        fs::create_dir_all(&d).unwrap();
        write_random(&d.join("f"), i, 2000);
    }
    src
}

#[test]
fn check_reads_tree_packs_from_storage_not_from_the_cache() {
    let env = file_url_repo();
    let repo_dir = env.path("repo");
    let src = source(&env);
    env.create(&[&src], &[]);
    let packs = tree_packs(&env, &repo_dir);
    assert!(
        !packs.is_empty(),
        "the create kept its tree packs in the cache"
    );
    // Damage the stored copy only; the cached copy is intact.
    for (_, stored) in &packs {
        let mut b = fs::read(stored).unwrap();
        b[40] ^= 0xff;
        fs::write(stored, b).unwrap();
    }
    let out = env.run(["check"]);
    assert_eq!(
        code(&out),
        11,
        "check must see the damage: {}",
        stderr(&out)
    );
}

#[test]
fn a_damaged_cached_copy_is_replaced_and_nothing_is_reported() {
    let env = file_url_repo();
    let repo_dir = env.path("repo");
    let src = source(&env);
    env.create(&[&src], &[]);
    let packs = tree_packs(&env, &repo_dir);
    assert!(!packs.is_empty());
    for (cached, _) in &packs {
        let mut b = fs::read(cached).unwrap();
        for x in b.iter_mut() {
            *x ^= 0x5a;
        }
        fs::write(cached, b).unwrap();
    }
    let to = env.path("out");
    env.restore("latest", &to);
    assert_same_tree(&src, &restored(&to, &src));
    env.ok(["check", "--read-data"]);
    // An unchanged re-backup reads its parent's trees through the cache.
    env.create(&[&src], &[]);
    env.ok(["check"]);
}
