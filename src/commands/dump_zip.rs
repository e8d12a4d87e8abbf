//! The zip format of `snap dump`: files deflated, directories and
//! symlinks (the target as the entry's data, as Info-ZIP writes them),
//! written as a stream (sizes and CRC in a data descriptor after each
//! file, ZIP64 for large files), so the output need not be seekable: a
//! pipe will do.
//!
//! Zip holds less than tar: permission bits (not set-id or sticky), the
//! mtime to the second (in the extended-timestamp field `unzip` reads, and
//! as MS-DOS time in UTC), no owner, no xattrs; fifos, devices and sockets
//! are left out with a warning, and a hard-linked file is written in full
//! at each of its names. Names are UTF-8 in zip: a name that is not is
//! written in snap's escaped form (`\xHH`, docs/names.md), with a warning.
//! The zip writer keeps one small record per entry (name, offsets) for the
//! central directory it writes at the end, as every zip writer must.

use std::io::{Cursor, Write};

use zip::result::ZipError;
use zip::write::{FullFileOptions, StreamWriter};
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::dump::{output_error, Content, Guard, Sink};
use crate::format::tree::{Node, NodeKind};
use crate::name_escape::escape;
use crate::Result;

/// Files this large or larger get ZIP64 sizes from the start (deflate can
/// grow incompressible data a little, and the local header is written
/// before the size is known).
const LARGE_FILE: u64 = 0xF000_0000;

/// Id of the extended-timestamp extra field (Info-ZIP "UT").
const EXTENDED_TIMESTAMP: u16 = 0x5455;

/// Writes zip entries to a [`Guard`].
pub(crate) struct ZipSink<'a> {
    zip: Option<ZipWriter<StreamWriter<Guard<'a>>>>,
    warnings: Vec<String>,
    /// Entries whose mtime neither zip time field can hold.
    bad_times: u64,
}

fn zip_error(e: ZipError) -> crate::Error {
    match e {
        ZipError::Io(e) => output_error(e),
        e => output_error(std::io::Error::other(format!("zip: {e}"))),
    }
}

impl<'a> ZipSink<'a> {
    pub(crate) fn new(out: Guard<'a>) -> ZipSink<'a> {
        ZipSink {
            zip: Some(ZipWriter::new_stream(out)),
            warnings: Vec::new(),
            bad_times: 0,
        }
    }

    /// A UTF-8 name for `bytes` (escaped when it is not UTF-8).
    fn text(&mut self, path: &[u8], bytes: &[u8], what: &str) -> String {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => {
                let e = escape(bytes);
                self.warnings.push(format!(
                    "{}: {what} is not UTF-8, which zip cannot hold: written as {e}",
                    escape(path)
                ));
                e
            }
        }
    }

    fn options(&mut self, node: &Node) -> Result<FullFileOptions<'static>> {
        let secs = node.mtime_ns.div_euclid(1_000_000_000);
        let dos = dos_time(secs);
        let mut o = FullFileOptions::default()
            .unix_permissions(node.mode & 0o777)
            .last_modified_time(dos.unwrap_or_default());
        match i32::try_from(secs) {
            Ok(s) => {
                let mut field = vec![1u8];
                field.extend_from_slice(&s.to_le_bytes());
                o.add_extra_data(EXTENDED_TIMESTAMP, field, false)
                    .map_err(zip_error)?;
            }
            Err(_) if dos.is_none() => self.bad_times += 1,
            Err(_) => {}
        }
        Ok(o)
    }

    fn zip(&mut self) -> &mut ZipWriter<StreamWriter<Guard<'a>>> {
        self.zip.as_mut().expect("not finished")
    }
}

/// A zip holding just the directory entry `name`. The streaming writer of
/// zip 7.4 marks a directory entry as followed by a data descriptor and
/// writes none (Info-ZIP `unzip` then refuses the archive as overlapping);
/// written seekably, in memory, the entry needs no descriptor, and merging
/// it copies it as it is.
fn directory_entry(
    name: String,
    options: FullFileOptions<'_>,
) -> zip::result::ZipResult<ZipArchive<Cursor<Vec<u8>>>> {
    let mut one = ZipWriter::new(Cursor::new(Vec::new()));
    one.add_directory(name + "/", options)?;
    ZipArchive::new(one.finish()?)
}

/// The MS-DOS date and time (UTC) of `secs`, if zip can hold it (1980 to 2107).
fn dos_time(secs: i64) -> Option<DateTime> {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    let year = u16::try_from(t.year()).ok()?;
    DateTime::from_date_and_time(
        year,
        t.month().into(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
    .ok()
}

impl Sink for ZipSink<'_> {
    fn add(&mut self, path: &[u8], node: &Node, content: &mut Content<'_>) -> Result<bool> {
        let kind = match node.kind {
            NodeKind::File | NodeKind::Dir | NodeKind::Symlink => node.kind,
            other => {
                self.warnings.push(format!(
                    "{}: a {}, which zip cannot hold: left out",
                    escape(path),
                    super::ls::kind_name(other)
                ));
                return Ok(false);
            }
        };
        let name = self.text(path, path, "the name");
        let options = self.options(node)?;
        match kind {
            NodeKind::Dir => {
                let entry = directory_entry(name, options).map_err(zip_error)?;
                self.zip().merge_archive(entry).map_err(zip_error)?
            }
            NodeKind::Symlink => {
                let target = node.link_target.clone().unwrap_or_default();
                let target = self.text(path, &target, "the symlink target");
                self.zip()
                    .add_symlink(name, target, options)
                    .map_err(zip_error)?
            }
            _ => {
                let options = options
                    .compression_method(CompressionMethod::Deflated)
                    .large_file(node.size >= LARGE_FILE);
                self.zip().start_file(name, options).map_err(zip_error)?;
                while let Some(data) = content.next_chunk()? {
                    self.zip().write_all(&data).map_err(output_error)?;
                }
            }
        }
        Ok(true)
    }

    fn finish(&mut self) -> Result<()> {
        let zip = self.zip.take().expect("finished once");
        let mut out = zip.finish().map_err(zip_error)?;
        out.flush().map_err(output_error)?;
        if self.bad_times > 0 {
            self.warnings.push(format!(
                "{} entries have an mtime zip cannot hold (before 1901 or after 2038, and outside 1980 to 2107): written as 1980-01-01",
                self.bad_times
            ));
        }
        Ok(())
    }

    fn warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}
