//! `snap dump`: one file's content to a writer, verified blob by blob
//! before any of it is written.

use std::io::Write;
use std::path::Path;

use crate::format::tree::NodeKind;
use crate::format::BlobId;
use crate::repository::Repository;
use crate::{Error, Result};

/// Writes the file at `path` of the snapshot to `out`; returns bytes written.
pub fn run(
    repo: &Repository,
    root: &BlobId,
    path: &Path,
    snapshot: &str,
    out: &mut dyn Write,
) -> Result<u64> {
    let node = super::ls::find_node(repo, root, path, snapshot)?
        .ok_or_else(|| Error::Usage("dump needs a file path, not the root".into()))?;
    if node.kind != NodeKind::File {
        return Err(Error::Invalid(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mut n = 0u64;
    for id in &node.content {
        let data = repo.read_blob(id)?;
        out.write_all(&data).map_err(|e| Error::io("<output>", e))?;
        n += data.len() as u64;
    }
    out.flush().map_err(|e| Error::io("<output>", e))?;
    Ok(n)
}
