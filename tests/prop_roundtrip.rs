//! Property: for random trees, `create` then `restore` is the identity
//! (content, kinds, modes, mtimes, symlink targets).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Entry {
    File {
        content: Vec<u8>,
        mode: u32,
        mtime: (i64, u32),
    },
    Symlink(String),
    Dir {
        children: BTreeMap<String, Entry>,
        mode: u32,
        mtime: (i64, u32),
    },
}

fn name() -> impl Strategy<Value = String> {
    // Printable ASCII, spaces, dots, dashes and some multi-byte letters.
    "[a-zA-Z0-9 ._äöü日本-]{1,24}".prop_filter("not . or ..", |n| n != "." && n != "..")
}

fn mode() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0o644u32),
        Just(0o600),
        Just(0o755),
        Just(0o400),
        0u32..0o1000
    ]
}

fn mtime() -> impl Strategy<Value = (i64, u32)> {
    (0i64..2_000_000_000, 0u32..1_000_000_000)
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 1..3000),
        // Repetitive content (compressible, and chunk-identical parts).
        (any::<u8>(), 1usize..200_000).prop_map(|(b, n)| vec![b; n]),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    let leaf = prop_oneof![
        4 => (content(), mode(), mtime()).prop_map(|(content, mode, mtime)| Entry::File {
            content,
            mode,
            mtime
        }),
        1 => "[a-z./]{1,30}".prop_map(Entry::Symlink),
    ];
    leaf.prop_recursive(3, 40, 6, |inner| {
        (
            proptest::collection::btree_map(name(), inner, 0..6),
            // Directories keep write and search for the owner, so that a
            // non-root test run can read the tree back.
            prop_oneof![Just(0o755u32), Just(0o700), Just(0o750), Just(0o555)],
            mtime(),
        )
            .prop_map(|(children, mode, mtime)| Entry::Dir {
                children,
                mode,
                mtime,
            })
    })
}

fn materialize(path: &Path, e: &Entry) {
    match e {
        Entry::File {
            content,
            mode,
            mtime,
        } => {
            fs::write(path, content).unwrap();
            chmod(path, *mode);
            set_mtime(path, mtime.0, mtime.1);
        }
        Entry::Symlink(t) => symlink(t, path).unwrap(),
        Entry::Dir {
            children,
            mode,
            mtime,
        } => {
            fs::create_dir(path).unwrap();
            for (n, c) in children {
                materialize(&path.join(n), c);
            }
            chmod(path, *mode);
            set_mtime(path, mtime.0, mtime.1);
        }
    }
}

fn root_dir() -> impl Strategy<Value = BTreeMap<String, Entry>> {
    proptest::collection::btree_map(name(), entry(), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn create_then_restore_is_identity(children in root_dir()) {
        // Without root, a file with mode 0o000 could not be read back by
        // the test itself; keep owner-read on files then.
        let env = Env::new();
        let src = env.path("src");
        fs::create_dir(&src).unwrap();
        for (n, c) in &children {
            let c = if is_root() { c.clone() } else { owner_readable(c) };
            materialize(&src.join(n), &c);
        }
        set_mtime(&src, 1_234_567_890, 5);
        let r = env.create(&[&src], &[]);
        prop_assert!(r["incomplete"] == false, "{}", r);
        let t = env.path("restore");
        env.restore("latest", &t);
        assert_same_tree(&src, &restored(&t, &src));
    }
}

fn owner_readable(e: &Entry) -> Entry {
    match e {
        Entry::File {
            content,
            mode,
            mtime,
        } => Entry::File {
            content: content.clone(),
            mode: mode | 0o400,
            mtime: *mtime,
        },
        Entry::Dir {
            children,
            mode,
            mtime,
        } => Entry::Dir {
            children: children
                .iter()
                .map(|(k, v)| (k.clone(), owner_readable(v)))
                .collect(),
            mode: *mode,
            mtime: *mtime,
        },
        other => other.clone(),
    }
}
