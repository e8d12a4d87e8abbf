//! `snap dump SNAP PATH`: flags, where the bytes go (stdout or
//! `--target`), and the summary.

use std::fs;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::args::{Cli, FilterArgs};
use super::output::{human, Printer};
use super::{exit, usage};
use crate::commands::dump::{self, ArchiveFormat, DumpOptions, DumpReport};
use crate::Error;

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Snapshot: `latest` or an id prefix.
    pub snapshot: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// File or directory inside the snapshot (`/` for all of it; a dump
    /// NAME is found under /.snap-streams).
    pub path: PathBuf,
    /// Write an archive of this format, also of a single file (default:
    /// tar for a directory, a file's raw bytes).
    #[arg(short = 'a', long, value_enum, value_name = "FORMAT")]
    pub archive: Option<Archive>,
    /// Write to this file instead of standard output (replaced only once
    /// the dump is complete).
    #[arg(short = 't', long, value_name = "FILE")]
    pub target: Option<PathBuf>,
}

/// `--archive` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Archive {
    Tar,
    Zip,
}

/// Size of the buffer between the archive writer and the output.
const OUT_BUFFER: usize = 1 << 20;

fn format_name(f: Option<ArchiveFormat>) -> &'static str {
    match f {
        None => "file",
        Some(ArchiveFormat::Tar) => "tar",
        Some(ArchiveFormat::Zip) => "zip",
    }
}

pub fn run(cli: &Cli, a: &DumpArgs, p: &Printer) -> Result<i32> {
    let repo = super::run::open_repo(cli)?;
    let sel = super::run::select(&repo, &a.snapshot, &a.filter, p, a.target.is_some())?;
    let (short, tree) = (sel.id.short(), sel.snapshot.tree);
    let path = super::run::stream_path(&repo, &tree, &a.path, &short)?;
    let opts = DumpOptions {
        archive: a.archive.map(|f| match f {
            Archive::Tar => ArchiveFormat::Tar,
            Archive::Zip => ArchiveFormat::Zip,
        }),
    };
    let dump = |out: &mut dyn Write| dump::write(&repo, &tree, &path, &short, &opts, out);
    let Some(target) = &a.target else {
        let format = dump::format_of(&repo, &tree, &path, &short, &opts)?;
        if format.is_some() && std::io::stdout().is_terminal() {
            return Err(usage(
                "snap dump: not writing an archive to a terminal: redirect standard output (`> x.tar`, `| tar x`) or use --target FILE",
            ));
        }
        let mut out = BufWriter::with_capacity(OUT_BUFFER, std::io::stdout().lock());
        let r = dump(&mut out)?;
        out.flush().map_err(dump::output_error)?;
        for w in &r.warnings {
            p.warn(w);
        }
        return Ok(exit::OK);
    };
    let r = to_file(target, dump)?;
    for w in &r.warnings {
        p.warn(w);
    }
    let text = match r.archive {
        None => format!(
            "wrote {} ({}) to {}",
            path.display(),
            human(r.bytes),
            target.display()
        ),
        Some(_) => format!(
            "wrote {} archive of {}: {} entries, {} of file data, to {}",
            format_name(r.archive),
            path.display(),
            r.entries,
            human(r.bytes),
            target.display()
        ),
    };
    p.line(
        &text,
        &serde_json::json!({
            "snapshot": Printer::selected_json(&sel),
            "path": crate::name_escape::escape(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())),
            "target": target.display().to_string(),
            "archive": format_name(r.archive),
            "entries": r.entries,
            "bytes": r.bytes,
            "warnings": r.warnings,
        }),
    );
    Ok(exit::OK)
}

/// Runs `dump` into `target`. A regular file (new or not) is written
/// beside it and renamed over it once complete, so a failed dump leaves
/// no partial file and the old one as it was; anything else (a fifo,
/// `/dev/stdout`) is written directly.
fn to_file(
    target: &Path,
    dump: impl FnOnce(&mut dyn Write) -> crate::Result<DumpReport>,
) -> Result<DumpReport> {
    let io = |what: &Path, e| Error::io(what, e);
    // The dump's writes fail as `<output>`: name the file.
    let named = |e: Error| match e {
        Error::Io { path, source } if path.as_os_str() == "<output>" => io(target, source),
        e => e,
    };
    let meta = fs::metadata(target).ok();
    if meta.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(usage(format!(
            "--target {} is a directory: give the name of the file to write",
            target.display()
        )));
    }
    if meta.is_some_and(|m| !m.is_file()) {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(target)
            .map_err(|e| io(target, e))?;
        let mut out = BufWriter::with_capacity(OUT_BUFFER, f);
        let r = dump(&mut out).map_err(named)?;
        out.flush().map_err(|e| io(target, e))?;
        return Ok(r);
    }
    let name = target
        .file_name()
        .ok_or_else(|| usage(format!("--target {}: not a file name", target.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".snap-dump-{}", std::process::id()));
    let tmp = target.with_file_name(tmp_name);
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io(&tmp, e))?;
    let result = (|| -> Result<DumpReport> {
        let mut out = BufWriter::with_capacity(OUT_BUFFER, f);
        let r = dump(&mut out).map_err(|e| match named(e) {
            Error::Io { source, .. } => io(&tmp, source),
            e => e,
        })?;
        let f = out.into_inner().map_err(|e| io(&tmp, e.into_error()))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, target).map_err(|e| io(target, e))?;
        Ok(r)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
