//! `snap create`'s list files (`--files-from*`) and the output of a dry
//! run or a skipped snapshot.

use std::path::PathBuf;

use anyhow::Result;

use super::args::CreateArgs;
use super::output::{human, Printer};
use crate::commands::create::CreateReport;
use crate::source::files_from::{self, ListForm};

/// The source paths: those given, then those listed in the
/// `--files-from*` files (warnings about list lines that match nothing).
pub fn source_paths(a: &CreateArgs, p: &Printer) -> Result<Vec<PathBuf>> {
    let mut paths = a.paths.clone();
    for (files, form) in [
        (&a.files_from, ListForm::Globs),
        (&a.files_from_verbatim, ListForm::Verbatim),
        (&a.files_from_raw, ListForm::Raw),
    ] {
        for f in files {
            let (listed, warnings) = files_from::read(f, form)?;
            for w in warnings {
                p.warn(&w);
            }
            paths.extend(listed);
        }
    }
    Ok(paths)
}

/// Prints the report of `--dry-run` or of `--skip-if-unchanged` that saved
/// nothing.
pub fn print(p: &Printer, r: &CreateReport) {
    for n in &r.notices {
        p.warn(n);
    }
    if p.json {
        say!("{}", serde_json::to_string(r).expect("reports serialize"));
        return;
    }
    for w in &r.summary.warnings {
        p.warn(w);
    }
    if p.quiet {
        return;
    }
    let s = &r.summary;
    if let Some(d) = &r.dry_run {
        for f in &d.files {
            say!("would read {:<7} {:>12}  {}", f.why, f.size, f.path);
        }
        say!(
            "files: {} new, {} changed, {} unchanged; {} dirs",
            s.files_new,
            s.files_changed,
            s.files_unchanged,
            s.dirs
        );
        say!(
            "dry run: would read {} in {} files of {}, and add {} ({} new blobs, before compression); \
             nothing was written",
            human(d.bytes),
            d.files.len(),
            human(s.total_bytes),
            human(d.new_bytes),
            d.new_blobs
        );
        return;
    }
    say!(
        "nothing changed since snapshot {}: no snapshot saved (--skip-if-unchanged)",
        r.snapshot.get(..8).unwrap_or(&r.snapshot)
    );
}
