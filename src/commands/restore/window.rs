//! One window of a restore: the entries the walk gave out since the last
//! window, up to [`WINDOW_ENTRIES`] entries or [`WINDOW_CHUNKS`] chunk
//! references, restored as a whole restore once was: the files' chunks
//! located, each pack read once (as one sequential range where its blobs
//! are dense), files completed and put in place (the other entries made
//! meanwhile), hard links made, and last the metadata of the directories
//! whose every entry is now restored (children first, times last).

use super::dirs::Dirs;
use super::files::{FilePlan, Files};
use super::links::Links;
use super::meta::{self, OtherPlan};
use super::plan::Keep;
use super::{data, Problems, RestoreOptions};
use crate::repository::Repository;
use crate::Result;

/// Entries (files, other entries, directories made and finished) of one
/// window. With [`WINDOW_CHUNKS`], the bound of what a restore holds of
/// the snapshot at once.
pub const WINDOW_ENTRIES: usize = 20_000;

/// Chunk references (of the files of one window). A file is never split:
/// one with more chunks than this is a window of its own.
pub const WINDOW_CHUNKS: usize = 50_000;

/// How large windows are.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// At most this many entries.
    pub entries: usize,
    /// At most this many chunk references.
    pub chunks: usize,
    /// Hard-link groups kept in memory (None: the default).
    pub links_in_memory: Option<usize>,
}

impl Limits {
    /// The window sizes: the constants; with the `failpoints` feature a
    /// test may set smaller ones in `SNAP_TEST_RESTORE_WINDOW`
    /// (`ENTRIES[,CHUNKS[,LINKS]]`).
    pub fn get() -> Limits {
        let l = Limits {
            entries: WINDOW_ENTRIES,
            chunks: WINDOW_CHUNKS,
            links_in_memory: None,
        };
        #[cfg(feature = "failpoints")]
        if let Ok(v) = std::env::var("SNAP_TEST_RESTORE_WINDOW") {
            let n: Vec<usize> = v.split(',').map(|x| x.trim().parse().unwrap()).collect();
            return Limits {
                entries: n[0].max(1),
                chunks: n.get(1).copied().unwrap_or(n[0]).max(1),
                links_in_memory: n.get(2).copied(),
            };
        }
        l
    }
}

/// What the walk gave out since the last window.
#[derive(Default)]
pub struct Window {
    /// Regular files.
    pub files: Vec<FilePlan>,
    /// Other entries.
    pub others: Vec<OtherPlan>,
    /// Directories the walk finished, in that order (children first), and
    /// (with `--delete`) the names the snapshot has in each.
    pub closing: Vec<(u32, Option<Keep>)>,
    /// Entries so far (directories made and finished included).
    pub entries: usize,
    /// Chunk references so far.
    pub chunks: usize,
}

impl Window {
    /// Whether it is as large as `l` lets it grow.
    pub fn full(&self, l: &Limits) -> bool {
        self.entries >= l.entries || self.chunks >= l.chunks
    }
}

/// What the windows restored.
#[derive(Default)]
pub struct Totals {
    pub files: u64,
    pub unchanged: u64,
    pub kept: u64,
    pub bytes: u64,
    pub dirs: u64,
    pub others: u64,
    pub packs_read: u64,
    pub windows: u64,
}

/// Restores window `w` (its directories are made already), emptying it.
pub fn restore(
    repo: &Repository,
    w: &mut Window,
    dirs: &mut Dirs<'_>,
    links: &mut Links,
    opts: &RestoreOptions,
    problems: &Problems,
    totals: &mut Totals,
) -> Result<()> {
    failpoint!("restore.after_dirs");
    // From here on each directory is opened again when first needed, and
    // checked to be the one made.
    dirs.forget_open();
    {
        // (Dropped before `dirs` changes: removes what is left under
        // temporary names.)
        let mut files = Files::new(
            std::mem::take(&mut w.files),
            dirs,
            opts.overwrite,
            problems,
            &opts.progress,
        );
        let uses = files.locate(repo)?;
        files.prepare()?;
        // The other entries (symlinks, FIFOs, devices: names of their own,
        // no data) are made by this thread while the workers write the
        // files' data, instead of after it with the workers idle.
        let others = std::mem::take(&mut w.others);
        let (packs, made) = std::thread::scope(|s| {
            let writer = s.spawn(|| data::write(repo, &files, uses));
            let made = meta::make_others(others, dirs, opts.overwrite, problems);
            let packs = writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (packs, made)
        });
        totals.packs_read += packs?;
        let (made, kept) = made?;
        totals.others += made;
        totals.kept += kept;
        files.resolve_links(links);
        files.link_all(links)?;
        let c = files.counts();
        totals.files += c.files;
        totals.bytes += c.bytes;
        totals.unchanged += c.unchanged;
        totals.kept += c.kept;
    }
    links.end_window()?;
    totals.dirs += dirs.close(&std::mem::take(&mut w.closing))?;
    w.entries = 0;
    w.chunks = 0;
    totals.windows += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::data::BlobUse;
    use super::FilePlan;

    /// The figures of the module doc of `restore` (plus names and the
    /// per-file state of `Files`).
    #[test]
    fn what_a_window_holds_per_file_and_blob_stays_small() {
        assert!(std::mem::size_of::<FilePlan>() <= 160);
        assert!(std::mem::size_of::<BlobUse>() <= 128);
    }
}
