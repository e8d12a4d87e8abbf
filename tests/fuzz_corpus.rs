//! Replays every committed fuzz input (`fuzz/corpus/<target>/*`) through the
//! same checks the cargo-fuzz targets run (`fuzz/fuzz_targets/checks.rs`),
//! on the stable toolchain and without libFuzzer, so that a parser
//! regression on a known input fails the ordinary test suite.
//!
//! Regenerate the seed files from the format test vectors with
//! `SNAP_WRITE_CORPUS=1 cargo test --test fuzz_corpus -- --ignored`.

use std::path::{Path, PathBuf};

#[path = "../fuzz/fuzz_targets/checks.rs"]
mod checks;

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("pack_header", checks::pack_header),
    ("pack_trailer", checks::pack_trailer),
    ("tree", checks::tree),
    ("tree_roundtrip", checks::tree_roundtrip),
    ("snapshot", checks::snapshot),
    ("config", checks::config),
    ("key_file", checks::key_file),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

#[test]
fn every_corpus_file_passes_its_target() {
    let mut total = 0;
    for (name, check) in TARGETS {
        let dir = corpus_dir().join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for fuzz target {name}");
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "fuzz target {name} panics on {}", f.display());
            total += 1;
        }
    }
    assert!(total >= TARGETS.len());
}

#[test]
fn every_corpus_dir_has_a_target() {
    for e in std::fs::read_dir(corpus_dir()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} has no target in tests/fuzz_corpus.rs"
        );
    }
}

/// Known crashers found by fuzzing, kept as regression inputs.
#[test]
fn pack_header_offset_overflow_is_refused() {
    // One entry at offset 2^64 - 8: `offset + stored_len` must not wrap.
    let mut h = vec![1u8, 1, 0, 0, 0, 0, 0];
    h.extend_from_slice(&[0u8; 32]);
    h.extend_from_slice(&(u64::MAX - 7).to_le_bytes());
    h.extend_from_slice(&40u32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    assert!(snap::format::pack::decode_header(&h, 1 << 20).is_err());
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = corpus_dir().join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

/// Writes the seed corpus from `format-spec/vectors/v1.json` (real encodings
/// produced by the code) plus a few edge cases.
#[test]
#[ignore]
fn generate_seed_corpus() {
    if std::env::var_os("SNAP_WRITE_CORPUS").is_none() {
        return;
    }
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors/v1.json"),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let hx = |a: &str, b: &str| hex::decode(v[a][b].as_str().unwrap()).unwrap();

    let pack = hx("pack", "bytes");
    let trailer = hx("pack", "trailer");
    let header_plain = hx("pack", "header_plain");
    let header_sealed = hx("pack", "header_sealed");
    let blobs_end = (pack.len() - trailer.len() - header_sealed.len()) as u64;
    write(
        "pack_header",
        "vector",
        &[&blobs_end.to_le_bytes()[..], &header_plain].concat(),
    );
    write(
        "pack_header",
        "empty",
        &[&0u64.to_le_bytes()[..], &[1, 0, 0, 0, 0]].concat(),
    );
    write(
        "pack_trailer",
        "vector",
        &[&(pack.len() as u64).to_le_bytes()[..], &trailer].concat(),
    );
    write(
        "pack_trailer",
        "too-short-pack",
        &[&11u64.to_le_bytes()[..], &trailer].concat(),
    );
    let tree = hx("tree", "plain");
    for t in ["tree", "tree_roundtrip"] {
        write(t, "vector", &tree);
        write(t, "empty", &[1, 0]);
    }
    write("snapshot", "vector", &hx("snapshot", "plain"));
    write(
        "config",
        "vector",
        v["config"]["json"].as_str().unwrap().as_bytes(),
    );
    write("config", "version-2", br#"{"version": 2}"#);
    write(
        "key_file",
        "vector",
        v["key_file"]["json"].as_str().unwrap().as_bytes(),
    );
}
