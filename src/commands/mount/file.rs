//! An open file of a mounted snapshot: its chunk list with the cumulative
//! offset at which each chunk ends (the lengths come from the index when
//! the file is opened, no data is read), so that a read at any offset
//! fetches only the chunks that cover it.

use std::sync::Arc;

use crate::format::tree::Node;
use crate::format::BlobId;
use crate::repository::Repository;
use crate::{Error, Result};

/// Where a read gets a chunk: by id and expected length, verified.
pub type FetchBlob<'a> = &'a dyn Fn(&BlobId, u64) -> Result<Arc<Vec<u8>>>;

/// A file opened for reading.
pub struct OpenFile {
    /// The file's node.
    pub node: Arc<Node>,
    /// Its path in the mount, for messages.
    pub path: String,
    /// `ends[i]`: the offset just past chunk `i`.
    ends: Vec<u64>,
}

impl OpenFile {
    /// Looks up the length of each chunk of `node`. A chunk the index
    /// does not know, or chunks that do not add up to the file's size, fail
    /// the open: the file could not be read right.
    pub fn open(repo: &Repository, node: Arc<Node>, path: String) -> Result<OpenFile> {
        let mut ends = Vec::with_capacity(node.content.len());
        let mut end = 0u64;
        for id in &node.content {
            end += u64::from(repo.locate(id)?.entry.raw_len);
            ends.push(end);
        }
        if end != node.size {
            return Err(Error::corrupt(
                format!("file {path}"),
                format!("its chunks hold {end} bytes, its size is {}", node.size),
            ));
        }
        Ok(OpenFile { node, path, ends })
    }

    /// Up to `size` bytes at `offset` (fewer only at the end of the file),
    /// each chunk from `blob(id, length)`. Any chunk that fails fails the
    /// whole read: never a short read that the kernel would fill with zeros.
    pub fn read(&self, offset: u64, size: u32, blob: FetchBlob<'_>) -> Result<Vec<u8>> {
        let total = self.ends.last().copied().unwrap_or(0);
        let end = offset.saturating_add(u64::from(size)).min(total);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut pos = offset;
        let mut i = self.ends.partition_point(|&e| e <= offset);
        while pos < end {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            let len = self.ends[i] - start;
            let data = blob(&self.node.content[i], len)?;
            let from = (pos - start) as usize;
            let to = (end.min(self.ends[i]) - start) as usize;
            out.extend_from_slice(&data[from..to]);
            pos = start + to as u64;
            i += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::NodeKind;

    #[test]
    fn reads_across_chunk_boundaries_fetch_only_the_chunks_needed() {
        let chunks: Vec<Vec<u8>> = vec![b"abc".to_vec(), b"defg".to_vec(), b"hi".to_vec()];
        let mut node = Node::new(b"f".to_vec(), NodeKind::File);
        node.content = (0..3u8).map(|i| BlobId([i; 32])).collect();
        node.size = 9;
        let f = OpenFile {
            node: Arc::new(node),
            path: "f".into(),
            ends: vec![3, 7, 9],
        };
        let fetched = std::cell::RefCell::new(Vec::new());
        let blob = |id: &BlobId, len: u64| {
            let c = &chunks[id.0[0] as usize];
            assert_eq!(c.len() as u64, len);
            fetched.borrow_mut().push(id.0[0]);
            Ok(Arc::new(c.clone()))
        };
        assert_eq!(f.read(2, 3, &blob).unwrap(), b"cde");
        assert_eq!(*fetched.borrow(), [0, 1]);
        fetched.borrow_mut().clear();
        assert_eq!(f.read(7, 100, &blob).unwrap(), b"hi");
        assert_eq!(*fetched.borrow(), [2]);
        assert_eq!(f.read(9, 10, &blob).unwrap(), b"");
        assert_eq!(f.read(0, 9, &blob).unwrap(), b"abcdefghi");
        let failing = |_: &BlobId, _: u64| Err(Error::corrupt("blob", "bad"));
        assert!(f.read(4, 1, &failing).is_err());
    }
}
