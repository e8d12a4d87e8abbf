//! Source paths in every form an admin types — `/` (confined by excludes to
//! a temp dir), `..`, `.`, `a/../a`, `./x`, trailing slashes, `//x`,
//! overlapping and symlinked sources — through the real binary: the
//! snapshot holds what the path names, records the normalized path, and
//! `ls`, `check` and `restore` read it.

mod common;
mod confine;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::*;
use confine::excludes_keeping;

/// A temp dir with a name the confining excludes can spell, holding the
/// repository and a source tree `src/` (`conf/`, `data/`, `a/`, a file).
struct Fixture {
    env: Env,
    src: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let env = Env::new();
        let src = env.path("src");
        for d in ["conf", "data/deep", "a"] {
            fs::create_dir_all(src.join(d)).unwrap();
        }
        write_random(&src.join("conf/app.toml"), 1, 300);
        write_random(&src.join("data/deep/blob"), 2, 70_000);
        write_random(&src.join("a/x"), 3, 10);
        write_random(&src.join("top"), 4, 5);
        chmod(&src.join("data"), 0o750);
        Fixture { env, src }
    }

    /// `snap --json create ARGS` run in `cwd`, asserting exit 0.
    fn create_in(&self, cwd: &Path, args: &[OsString]) -> serde_json::Value {
        let out = self
            .env
            .cmd()
            .current_dir(cwd)
            .arg("--json")
            .arg("create")
            .args(args)
            .output()
            .unwrap();
        assert_success(&out, &format!("create {args:?} in {}", cwd.display()));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn latest_paths(&self) -> Vec<String> {
        let snaps = self.env.json(["snapshots"]);
        let last = snaps.as_array().unwrap().last().unwrap().clone();
        last["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    }

    /// Restores the latest snapshot into a fresh directory; `ls` and
    /// `check` must read it too.
    fn restore_latest(&self, name: &str) -> PathBuf {
        self.env.ok(["ls", "latest"]);
        self.env.ok(["check"]);
        let to = self.env.path(name);
        self.env.restore("latest", &to);
        to
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Every name directly in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Asserts that the restore holds exactly the chain of directories down to
/// `src` and, below it, a copy of `src`.
fn assert_holds_only(to: &Path, src: &Path) {
    let mut at = to.to_path_buf();
    for c in src.components().skip(1) {
        let name = c.as_os_str().to_string_lossy().into_owned();
        assert_eq!(names(&at), vec![name.clone()], "in {}", at.display());
        at.push(&name);
    }
    assert_same_tree(src, &at);
}

#[test]
fn root_confined_by_excludes_is_stored() {
    let f = Fixture::new();
    let mut args = os(&["/"]);
    for e in excludes_keeping(&[&f.src]) {
        args.push("--exclude".into());
        args.push(e.into());
    }
    let r = f.create_in(f.env.tmp.path(), &args);
    assert_eq!(r["incomplete"], false, "{r}");
    assert_eq!(f.latest_paths(), vec!["/".to_string()]);
    let to = f.restore_latest("out");
    assert_holds_only(&to, &f.src);
}

#[test]
fn root_with_a_source_inside_it_stores_the_whole_root() {
    let f = Fixture::new();
    let inner = f.src.join("data");
    let mut args: Vec<OsString> = vec![inner.clone().into(), "/".into()];
    for e in excludes_keeping(&[&f.src]) {
        args.push("--exclude".into());
        args.push(e.into());
    }
    f.create_in(f.env.tmp.path(), &args);
    let to = f.restore_latest("out");
    // All of src, not only src/data.
    assert_holds_only(&to, &f.src);
    let mut want = vec!["/".to_string(), inner.display().to_string()];
    want.sort();
    assert_eq!(f.latest_paths(), want);
}

#[test]
fn overlapping_sources_are_stored_once() {
    let f = Fixture::new();
    for order in [[&f.src.join("data"), &f.src], [&f.src, &f.src.join("data")]] {
        let args: Vec<OsString> = order.iter().map(|p| p.as_os_str().to_owned()).collect();
        f.create_in(f.env.tmp.path(), &args);
        let to = f.restore_latest(&format!("out{}", f.env.snapshot_ids().len()));
        assert_same_tree(&f.src, &restored(&to, &f.src));
    }
}

#[test]
fn dot_dot_and_other_relative_forms_are_normalized() {
    let f = Fixture::new();
    let src = f.src.display().to_string();
    let conf = f.src.join("conf");
    // (cwd, argument, recorded path, what the snapshot must hold)
    let cases: Vec<(PathBuf, String, PathBuf)> = vec![
        (conf.clone(), "..".into(), f.src.clone()),
        (
            conf.clone(),
            format!("{src}/conf/../data"),
            f.src.join("data"),
        ),
        (f.src.clone(), "a/../a".into(), f.src.join("a")),
        (f.src.clone(), "a/./../a/".into(), f.src.join("a")),
        (conf.clone(), ".".into(), conf.clone()),
        (f.src.clone(), "./conf".into(), conf.clone()),
        (f.src.clone(), "conf/".into(), conf.clone()),
        (f.src.clone(), "conf//".into(), conf.clone()),
        (f.src.clone(), format!("/{src}"), f.src.clone()),
        (
            f.src.clone(),
            format!("{src}//data///deep"),
            f.src.join("data/deep"),
        ),
        (
            conf.clone(),
            "../../src/conf/../top".into(),
            f.src.join("top"),
        ),
    ];
    for (i, (cwd, arg, want)) in cases.iter().enumerate() {
        f.create_in(cwd, &[OsString::from(arg)]);
        assert_eq!(
            f.latest_paths(),
            vec![want.display().to_string()],
            "snap create {arg} in {}",
            cwd.display()
        );
        let to = f.restore_latest(&format!("out{i}"));
        if want.is_dir() {
            assert_same_tree(want, &restored(&to, want));
        } else {
            assert_eq!(
                fs::read(want).unwrap(),
                fs::read(restored(&to, want)).unwrap()
            );
        }
        // Nothing but the chain of directories to `want`.
        let mut at = to.clone();
        for c in want.components().skip(1) {
            let n = c.as_os_str().to_string_lossy().into_owned();
            assert_eq!(names(&at), vec![n.clone()], "{arg}: in {}", at.display());
            at.push(n);
        }
    }
    // `prune` walks every snapshot: none of them may hold an unsafe name.
    f.env.ok(["prune", "--keep-last", "100"]);
    f.env.ok(["check", "--read-data"]);
}

#[test]
fn a_mistyped_component_before_dot_dot_is_an_error() {
    let f = Fixture::new();
    let typo = f.src.join("cnof/../data");
    let out = f.env.run([OsString::from("create"), typo.clone().into()]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&typo.display().to_string()),
        "{}",
        stderr(&out)
    );
    assert!(f.env.snapshot_ids().is_empty(), "nothing committed");
}

#[test]
fn symlinked_component_records_the_directory_it_resolves_to() {
    let f = Fixture::new();
    // link -> data (mode 0750): the path /src/link/deep goes through it.
    symlink(f.src.join("data"), f.src.join("link")).unwrap();
    let src = f.src.join("link/deep");
    f.create_in(f.env.tmp.path(), &[src.clone().into()]);
    let to = f.restore_latest("out");
    let got = restored(&to, &f.src.join("link"));
    let m = fs::symlink_metadata(&got).unwrap();
    assert!(m.is_dir(), "link restored as {:?}", m.file_type());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        m.permissions().mode() & 0o7777,
        0o750,
        "the intermediate directory must carry the mode of data/, not the link's 0777"
    );
    assert_same_tree(&f.src.join("data/deep"), &got.join("deep"));
}

#[test]
fn trailing_slash_on_a_symlink_backs_up_the_directory() {
    let f = Fixture::new();
    symlink(f.src.join("data"), f.src.join("ln")).unwrap();
    let ln = f.src.join("ln");
    // Without the slash: the link itself, as tar and restic store it.
    f.create_in(f.env.tmp.path(), &[ln.clone().into()]);
    let to = f.restore_latest("out1");
    assert_eq!(
        fs::read_link(restored(&to, &ln)).unwrap(),
        f.src.join("data")
    );
    // With it (as tab completion types it): the directory it points to.
    f.create_in(f.env.tmp.path(), &[format!("{}/", ln.display()).into()]);
    assert_eq!(f.latest_paths(), vec![ln.display().to_string()]);
    let to = f.restore_latest("out2");
    let got = restored(&to, &ln);
    assert!(fs::symlink_metadata(&got).unwrap().is_dir());
    assert_same_tree(&f.src.join("data"), &got);
}

#[test]
fn source_below_a_symlink_inside_another_source_is_refused() {
    let f = Fixture::new();
    symlink(f.src.join("data"), f.src.join("link")).unwrap();
    let before = f.env.snapshot_ids().len();
    let out = f.env.run(
        [f.src.as_os_str(), f.src.join("link/deep").as_os_str()]
            .iter()
            .fold(vec![OsString::from("create")], |mut v, a| {
                v.push(a.to_os_string());
                v
            }),
    );
    assert_ne!(code(&out), 0, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&f.src.join("link").display().to_string()),
        "the message must name the link: {err}"
    );
    assert_eq!(f.env.snapshot_ids().len(), before, "nothing committed");
}

#[test]
fn one_file_system_still_stores_a_source_on_another_device() {
    // /dev and /dev/shm are different file systems on most Linux systems.
    let (Ok(dev), Ok(shm)) = (fs::metadata("/dev"), fs::metadata("/dev/shm")) else {
        eprintln!("skipped: no /dev/shm");
        return;
    };
    use std::os::unix::fs::MetadataExt;
    if dev.dev() == shm.dev() {
        eprintln!("skipped: /dev/shm is not a separate file system");
        return;
    }
    let env = Env::new();
    let inner = tempfile::Builder::new()
        .prefix("snappaths")
        .tempdir_in("/dev/shm")
        .unwrap();
    write_random(&inner.path().join("f"), 9, 1000);
    fs::create_dir(inner.path().join("d")).unwrap();
    let mut args: Vec<OsString> = vec![
        "create".into(),
        "/dev".into(),
        inner.path().into(),
        "--one-file-system".into(),
    ];
    for e in excludes_keeping(&[inner.path()]) {
        args.push("--exclude".into());
        args.push(e.into());
    }
    env.ok(&args);
    let to = env.path("out");
    env.restore("latest", &to);
    assert_same_tree(inner.path(), &restored(&to, inner.path()));
}
