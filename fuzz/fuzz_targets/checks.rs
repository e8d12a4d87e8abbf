//! What each fuzz target does with one input, shared by the cargo-fuzz
//! targets and by `tests/fuzz_corpus.rs` (which replays the committed corpus
//! on stable without libFuzzer). Every parser of stored data must return
//! `Err` on bad input, never panic, and never allocate without bound.
#![allow(dead_code)]

use snap::format::config::Config;
use snap::format::key::KeyFile;
use snap::format::pack;
use snap::format::snapshot::Snapshot;
use snap::format::tree::{is_safe_name, Tree, TreeBlob};

fn split_u64(data: &[u8]) -> Option<(u64, &[u8])> {
    let (n, rest) = data.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*n), rest))
}

/// Input: `blobs_end:u64 LE || header plaintext`.
pub fn pack_header(data: &[u8]) {
    let Some((blobs_end, header)) = split_u64(data) else {
        return;
    };
    if let Ok(entries) = pack::decode_header(header, blobs_end) {
        // Whatever is accepted lies inside the pack, in order, and
        // re-encodes to the same bytes.
        let mut next = 0u64;
        for e in &entries {
            assert!(e.offset >= next);
            next = e.offset + e.stored_len as u64;
            assert!(next <= blobs_end);
        }
        assert_eq!(pack::encode_header(&entries), header);
    }
}

/// Input: `pack_len:u64 LE || trailer`.
pub fn pack_trailer(data: &[u8]) {
    let Some((pack_len, trailer)) = split_u64(data) else {
        return;
    };
    if let Ok((off, len)) = pack::decode_trailer(trailer, pack_len) {
        assert!(len <= pack::MAX_HEADER_LEN);
        assert_eq!(off + len as u64 + pack::TRAILER_LEN as u64, pack_len);
    }
}

/// Input: a tree blob's plaintext (a listing or a part list).
pub fn tree(data: &[u8]) {
    if let Ok(TreeBlob::Parts(p)) = TreeBlob::parse(data) {
        assert!((2..=snap::format::tree::MAX_PARTS).contains(&p.len()));
    }
    if let Ok(t) = Tree::parse(data) {
        for (i, n) in t.nodes.iter().enumerate() {
            assert!(is_safe_name(&n.name));
            assert!(i == 0 || t.nodes[i - 1].name < n.name);
        }
    }
}

/// Input: a tree blob's plaintext; whatever parses must survive
/// encode -> parse unchanged, and the encoding must be canonical.
pub fn tree_roundtrip(data: &[u8]) {
    if let Ok(t) = Tree::parse(data) {
        let bytes = t.encode().expect("a tree that parses encodes");
        let again = Tree::parse(&bytes).expect("an encoded tree parses");
        assert_eq!(again, t);
        assert_eq!(again.encode().unwrap(), bytes);
    }
}

/// Input: a snapshot's plaintext.
pub fn snapshot(data: &[u8]) {
    if let Ok(s) = Snapshot::parse(data) {
        let again = Snapshot::parse(&s.to_bytes()).expect("an encoded snapshot parses");
        assert_eq!(again, s);
    }
}

/// Input: a `config` object.
pub fn config(data: &[u8]) {
    if let Ok(c) = Config::parse(data) {
        if c.validate().is_ok() {
            let _ = c.mac_input();
            let again = Config::parse(&c.to_bytes()).expect("an encoded config parses");
            assert_eq!(again, c);
        }
    }
}

/// Input: a key file.
pub fn key_file(data: &[u8]) {
    if let Ok(k) = KeyFile::parse(data) {
        let again = KeyFile::parse(&k.to_bytes()).expect("an encoded key file parses");
        assert_eq!(again, k);
    }
}
