//! File names that are not UTF-8, or hold a newline, are shown in one
//! escaped form (docs/names.md) by `ls` and `ls --json` that turns back
//! into the exact bytes, one entry per line; `restore --include/--exclude`
//! take that form. The oracle is the file system (`std::fs`) and an
//! unescape written here from the documented rules.

mod common;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::*;

/// The documented rules, read left to right: `\\`, `\n`, `\t`, `\xHH`;
/// every other character is its UTF-8 bytes.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b[i + 1] {
            b'\\' => out.push(b'\\'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'x' => {
                let h = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                out.push(u8::from_str_radix(h, 16).unwrap());
                i += 2;
            }
            c => panic!("bad escape \\{} in {s:?}", c as char),
        }
        i += 2;
    }
    out
}

const FF: &[u8] = b"caf\xff.txt";
const NL: &[u8] = b"two\nlines.txt";
const BS: &[u8] = b"back\\slash";

/// A source with awkward names (and plain ones); returns it.
fn awkward_source(env: &Env) -> PathBuf {
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join(os(FF)), b"latin-1 name").unwrap();
    fs::write(src.join(os(NL)), b"newline name").unwrap();
    fs::write(src.join(os(BS)), b"backslash name").unwrap();
    fs::write(src.join("plain.txt"), b"plain").unwrap();
    fs::write(src.join("sub").join(os(b"x\xfe\ty")), b"deeper").unwrap();
    symlink(os(b"target-\xff"), src.join("link")).unwrap();
    src
}

/// Every path below `root`, as raw bytes relative to it (the oracle).
fn walk(root: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            out.push(r.as_os_str().as_bytes().to_vec());
            if e.file_type().unwrap().is_dir() {
                stack.push(r);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn ls_shows_one_line_per_entry_and_json_round_trips_to_the_bytes() {
    let env = Env::new();
    let src = awkward_source(&env);
    env.create(&[&src], &[]);
    let inside = |name: &[u8]| {
        let mut p = src.as_os_str().as_bytes().to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        p
    };

    // Text: one line per entry, names escaped.
    let text = env.ok(["ls", "latest"]);
    let json = env.json(["ls", "latest"]);
    let rows = json.as_array().unwrap();
    assert_eq!(text.lines().count(), rows.len(), "{text}");
    let s = src.display().to_string();
    for shown in [
        format!("{s}/caf\\xff.txt"),
        format!("{s}/two\\nlines.txt"),
        format!("{s}/back\\\\slash"),
        format!("{s}/sub/x\\xfe\\ty"),
        format!("{s}/link -> target-\\xff"),
    ] {
        assert_eq!(
            text.lines().filter(|l| l.ends_with(&shown)).count(),
            1,
            "{shown} in\n{text}"
        );
    }
    assert!(!text.contains('\u{fffd}'), "lossy: {text}");

    // JSON: the same form; unescaped, the paths are exactly the bytes on disk.
    let listed: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| unescape(r["path"].as_str().unwrap()))
        .filter(|p| p.starts_with(&inside(b"")))
        .map(|p| p[inside(b"").len()..].to_vec())
        .collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(listed_sorted, walk(&src));
    let link = rows
        .iter()
        .find(|r| unescape(r["path"].as_str().unwrap()) == inside(b"link"))
        .unwrap();
    assert_eq!(
        unescape(link["link_target"].as_str().unwrap()),
        b"target-\xff"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r["path"].as_str().unwrap().ends_with("/caf\\xff.txt"))
            .count(),
        1
    );
}

/// Restores with `--include`/`--exclude` patterns; returns what landed in
/// the source's place (relative raw paths).
fn restore_with(env: &Env, src: &Path, name: &str, flags: &[&str]) -> Vec<Vec<u8>> {
    let to = env.path(name);
    let mut args: Vec<OsString> = vec!["restore".into(), "latest".into(), "--to".into()];
    args.push(to.clone().into_os_string());
    args.extend(flags.iter().map(OsString::from));
    env.ok(&args);
    let at = restored(&to, src);
    if !at.exists() {
        return Vec::new();
    }
    walk(&at)
}

#[test]
fn restore_include_and_exclude_take_the_escaped_form() {
    let env = Env::new();
    let src = awkward_source(&env);
    env.create(&[&src], &[]);
    let s = src.display().to_string();

    // An absolute pattern naming the 0xff file: exactly that file.
    let got = restore_with(
        &env,
        &src,
        "ff",
        &["--include", &format!("{s}/caf\\xff.txt")],
    );
    assert_eq!(got, vec![FF.to_vec()]);
    assert_eq!(
        fs::read(restored(&env.path("ff"), &src).join(os(FF))).unwrap(),
        b"latin-1 name"
    );
    // A relative one for the newline, and a glob over a control byte.
    let got = restore_with(&env, &src, "nl", &["--include", "two\\nlines.txt"]);
    assert_eq!(got, vec![NL.to_vec()]);
    let got = restore_with(&env, &src, "deep", &["--include", "x\\xfe\\t*"]);
    assert_eq!(got, vec![b"sub".to_vec(), b"sub/x\xfe\ty".to_vec()]);
    // A backslash in a name is `\\`.
    let got = restore_with(&env, &src, "bs", &["--include", "back\\\\slash"]);
    assert_eq!(got, vec![BS.to_vec()]);
    // Exclude: everything but the 0xff file.
    let got = restore_with(&env, &src, "ex", &["--exclude", "caf\\xff.txt"]);
    let mut want = walk(&src);
    want.retain(|p| p.as_slice() != FF);
    assert_eq!(got, want);
    // A byte given raw (not escaped) does not match: the form is the only one.
    let out = env.run([
        OsStr::new("restore"),
        OsStr::new("latest"),
        OsStr::new("--to"),
        env.path("raw").as_os_str(),
        OsStr::new("--include"),
        OsStr::from_bytes(b"two\nlines.txt"),
    ]);
    assert_eq!(
        code(&out),
        2,
        "a raw newline matches nothing: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("matched nothing"), "{}", stderr(&out));
    assert!(!restored(&env.path("raw"), &src).join(os(NL)).exists());
}

#[test]
fn to_command_include_takes_the_escaped_form() {
    let env = Env::new();
    let src = awkward_source(&env);
    env.create(&[&src], &[]);
    let out_file = env.path("piped");
    let s = src.display().to_string();
    env.ok([
        "restore".to_string(),
        "latest".into(),
        "--include".into(),
        format!("{s}/caf\\xff.txt"),
        "--to-command".into(),
        format!("cat > '{}'", out_file.display()),
    ]);
    assert_eq!(fs::read(&out_file).unwrap(), b"latin-1 name");
}
