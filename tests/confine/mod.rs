//! Exclude patterns that confine a backup of `/` to a few paths: at every
//! directory on the way, every name but the one leading to a kept path is
//! excluded (globs have no negation, so the complement is spelled out over
//! the characters of the kept names).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Default)]
struct Level {
    /// Names to keep at this directory, and what to keep below each.
    names: BTreeMap<String, Level>,
    /// The whole directory is kept.
    all: bool,
}

/// `--exclude` patterns such that `snap create /` stores exactly `keep`
/// (and the directories leading to them). Components must be plain ASCII
/// without glob syntax (temp dirs made by the tests are).
pub fn excludes_keeping(keep: &[&Path]) -> Vec<String> {
    let mut root = Level::default();
    for k in keep {
        let mut at = &mut root;
        for c in k.components().skip(1) {
            let s = c.as_os_str().to_str().expect("ASCII path").to_string();
            assert!(
                s.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch)),
                "cannot confine to {} (component {s:?})",
                k.display()
            );
            at = at.names.entry(s).or_default();
        }
        at.all = true;
    }
    let mut out = Vec::new();
    emit(&root, "", &mut out);
    out
}

fn emit(level: &Level, dir: &str, out: &mut Vec<String>) {
    if level.all {
        return;
    }
    let names: Vec<&String> = level.names.keys().collect();
    complement(&names, "", dir, out);
    for (n, sub) in &level.names {
        emit(sub, &format!("{dir}/{n}"), out);
    }
}

/// Excludes every name in `dir` that starts with `prefix` and is not one of
/// `names` (all of which start with `prefix`).
fn complement(names: &[&String], prefix: &str, dir: &str, out: &mut Vec<String>) {
    let complete = names.iter().any(|n| n.as_str() == prefix);
    let mut next: Vec<char> = names
        .iter()
        .filter_map(|n| n[prefix.len()..].chars().next())
        .collect();
    next.sort();
    next.dedup();
    if !complete && !prefix.is_empty() {
        out.push(format!("{dir}/{prefix}"));
    }
    // A kept name continues with '/' into its own directory.
    let mut class: String = next.iter().collect();
    if complete {
        class.push('/');
    }
    out.push(format!("{dir}/{prefix}[!{class}]*"));
    for c in next {
        let p = format!("{prefix}{c}");
        let sub: Vec<&String> = names
            .iter()
            .copied()
            .filter(|n| n.starts_with(&p))
            .collect();
        complement(&sub, &p, dir, out);
    }
}
