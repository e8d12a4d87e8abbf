//! `snap completion` and `snap man`, generated from the CLI definition:
//! the bash script is accepted by `bash -n` and completes subcommands when
//! bash runs it, and the man pages render with groff.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The commands a user must be able to complete.
const COMMANDS: &[&str] = &[
    "init",
    "create",
    "snapshots",
    "ls",
    "diff",
    "find",
    "stats",
    "tag",
    "restore",
    "dump",
    "check",
    "forget",
    "prune",
    "repair",
    "key",
    "sync",
    "unlock",
    "completion",
    "man",
];

fn snap(args: &[&str]) -> String {
    let out = Command::new(snap_bin()).args(args).output().unwrap();
    assert_success(&out, &format!("snap {args:?}"));
    String::from_utf8(out.stdout).unwrap()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn bash_completion_parses_and_completes_commands() {
    let script = snap(&["completion", "bash"]);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("snap.bash");
    std::fs::write(&file, &script).unwrap();
    let out = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert_success(&out, "bash -n");

    // Run it: complete `snap <TAB>` and `snap key <TAB>` as bash would.
    let complete = |words: &str, cword: usize| -> Vec<String> {
        let prog = format!(
            r#"source {file}
f=$(complete -p snap | sed -E 's/.* -F ([^ ]+) .*/\1/')
COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE="{words}"; COMP_POINT=${{#COMP_LINE}}
"$f" snap "${{COMP_WORDS[$COMP_CWORD]}}" "${{COMP_WORDS[$COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
            file = file.display()
        );
        let out = Command::new("bash").args(["-c", &prog]).output().unwrap();
        assert_success(&out, "bash completion");
        stdout(&out).lines().map(str::to_string).collect()
    };
    let top = complete("snap ''", 1);
    for c in COMMANDS {
        assert!(top.iter().any(|w| w == c), "{c} not completed: {top:?}");
    }
    let key = complete("snap key ''", 2);
    for c in ["add", "list", "remove", "passwd"] {
        assert!(key.iter().any(|w| w == c), "key {c} not completed: {key:?}");
    }
    let flags = complete("snap diff --me", 2);
    assert!(flags.iter().any(|w| w == "--metadata"), "{flags:?}");
}

#[test]
fn zsh_and_fish_scripts_name_every_command() {
    let zsh = snap(&["completion", "zsh"]);
    assert!(zsh.starts_with("#compdef snap"), "{}", &zsh[..80]);
    let fish = snap(&["completion", "fish"]);
    for c in COMMANDS {
        assert!(zsh.contains(&format!("'{c}:")), "zsh lacks {c}");
        assert!(fish.contains(&format!("-a \"{c}\"")), "fish lacks {c}");
    }
    if have("zsh") {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("_snap");
        std::fs::write(&f, &zsh).unwrap();
        let out = Command::new("zsh").arg("-n").arg(&f).output().unwrap();
        assert_success(&out, "zsh -n");
    }
    let out = Command::new(snap_bin())
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "an unknown shell is a usage error");
}

fn render(page: &Path) -> String {
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-P", "-c"])
        .arg(page)
        .env("MANWIDTH", "200")
        .output()
        .unwrap();
    assert_success(&out, "groff");
    // Drop overstrike (bold/underline) sequences.
    let text = stdout(&out);
    let mut clean = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        clean.push(c);
    }
    clean
}

#[test]
fn man_pages_render_and_cover_every_command() {
    let page = snap(&["man"]);
    assert!(page.contains(".TH snap 1"), "{}", &page[..200]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    snap(&["man", "--dir", dir.to_str().unwrap()]);
    for c in COMMANDS {
        let f = dir.join(format!("snap-{c}.1"));
        assert!(f.exists(), "no {}", f.display());
    }
    for sub in ["key-passwd", "key-remove", "repair-index"] {
        assert!(
            dir.join(format!("snap-{sub}.1")).exists(),
            "no snap-{sub}.1"
        );
    }
    if !have("groff") {
        return;
    }
    let top = render(&dir.join("snap.1"));
    for c in COMMANDS {
        assert!(top.contains(c), "snap(1) does not list {c}:\n{top}");
    }
    let diff = render(&dir.join("snap-diff.1"));
    assert!(diff.contains("--metadata"), "{diff}");
}
