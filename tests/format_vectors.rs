//! The test vectors of `format-spec/vectors/v1.json` against the code, in
//! both directions: the code must reproduce every stored encoding byte for
//! byte, and must parse/open every stored encoding into the expected value.
//! If this test fails, either the code changed the format (bump the version
//! and document it in `format-spec/`) or the vectors are stale.
//!
//! Regenerate (only for a deliberate, documented format change):
//! `SNAP_WRITE_VECTORS=1 cargo test --test format_vectors -- --ignored`.

use std::path::PathBuf;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::{json, Map, Value};

use snap::format::config::{ChunkerParams, Config};
use snap::format::key::{KdfParams, KeyFile};
use snap::format::pack::{self, Compression, PackEntry};
use snap::format::snapshot::{Snapshot, Summary};
use snap::format::tree::{Node, NodeKind, StreamOrigin, Tree, TreeBlob};
use snap::format::{BlobId, BlobKind, PackId, SnapshotId};
use snap::pipeline::chunker::Chunker;
use snap::pipeline::compress;
use snap::pipeline::crypto::{MasterKey, AAD_PACK_HEADER, AAD_SNAPSHOT};

/// Sub-key derivation contexts as the spec states them (02-config-and-keys.md).
const CTX_ENC: &str = "snap 2026-11 blob encryption key v1";
const CTX_ID: &str = "snap 2026-11 blob id key v1";
const CTX_CHUNKER: &str = "snap 2026-11 chunker seed v1";
const CTX_CONFIG_MAC: &str = "snap 2026-11 config mac key v1";

const PASSWORD: &str = "correct horse battery staple";

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors/v1.json")
}

fn stored() -> Value {
    let text = std::fs::read_to_string(vectors_path()).expect("format-spec/vectors/v1.json");
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn h(b: &[u8]) -> Value {
    Value::String(hex::encode(b))
}

fn unhex(v: &Value, path: &str) -> Vec<u8> {
    let mut cur = v;
    for p in path.split('.') {
        cur = cur
            .get(p)
            .unwrap_or_else(|| panic!("vector {path} missing"));
    }
    hex::decode(
        cur.as_str()
            .unwrap_or_else(|| panic!("{path} not a string")),
    )
    .unwrap_or_else(|_| panic!("{path} not hex"))
}

fn seq(start: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| start.wrapping_add(i as u8)).collect()
}

fn nonce(start: u8) -> [u8; 24] {
    seq(start, 24).try_into().unwrap()
}

fn master_secret() -> [u8; 32] {
    seq(0, 32).try_into().unwrap()
}

fn plaintext() -> Vec<u8> {
    b"snap test vector\n".repeat(8)
}

/// The reader-only zstd frame of [`plaintext`]: encoders differ between zstd
/// versions, so only decoding it is normative. Taken from the stored file
/// when present so that a zstd upgrade does not change the vectors.
fn zstd_frame(stored: Option<&Value>) -> Vec<u8> {
    match stored {
        Some(v) => unhex(v, "blob_zstd.frame"),
        None => {
            let plain = plaintext();
            let (c, f) = compress::compress(&plain, 3);
            assert_eq!(c, Compression::Zstd);
            f.into_owned()
        }
    }
}

fn vector_tree(key: &MasterKey) -> Tree {
    let p = key.blob_id(&plaintext());
    let mut db = Node::new(b"db.sql".to_vec(), NodeKind::File);
    db.mode = 0o600;
    db.uid = 1000;
    db.gid = 1000;
    db.mtime_ns = 1_795_000_000_123_456_789;
    db.size = 136;
    db.content = vec![p];
    db.origin = Some(StreamOrigin {
        command: "pg_dump app".into(),
        exit_code: 0,
    });
    let mut dir = Node::new(b"dir".to_vec(), NodeKind::Dir);
    dir.mode = 0o755;
    dir.uid = 1000;
    dir.gid = 1000;
    dir.user = Some("alice".into());
    dir.group = Some("staff".into());
    dir.mtime_ns = 1_795_000_000_000_000_000;
    dir.ctime_ns = 1_795_000_000_000_000_001;
    dir.inode = 42;
    dir.dev = 2049;
    dir.nlink = 2;
    dir.subtree = Some(BlobId([0xee; 32]));
    let mut file = Node::new(b"file.txt".to_vec(), NodeKind::File);
    file.mode = 0o644;
    file.uid = 1000;
    file.gid = 1000;
    file.user = Some("alice".into());
    file.group = Some("staff".into());
    file.mtime_ns = -1; // one ns before the epoch: times are signed
    file.ctime_ns = 1_795_000_000_000_000_002;
    file.inode = 43;
    file.dev = 2049;
    file.nlink = 1;
    file.size = 272;
    file.content = vec![p, p];
    file.xattrs = vec![(b"user.comment".to_vec(), b"hi".to_vec())];
    let mut link = Node::new(b"link".to_vec(), NodeKind::Symlink);
    link.mode = 0o777;
    link.link_target = Some(b"file.txt".to_vec());
    Tree {
        nodes: vec![db, dir, file, link],
    }
}

fn vector_snapshot(tree: BlobId) -> Snapshot {
    Snapshot {
        time_ns: 1_795_000_000_000_000_000,
        host: "host1".into(),
        user: "alice".into(),
        tags: vec!["daily".into()],
        paths: vec!["/home/alice".into()],
        tree,
        parent: Some(SnapshotId([0x11; 32])),
        incomplete: true,
        summary: Summary {
            files_new: 2,
            files_changed: 0,
            files_unchanged: 0,
            dirs: 2,
            total_bytes: 408,
            bytes_read: 408,
            bytes_added: 1000,
            blobs_added: 3,
            duration_ms: 1234,
            warnings: vec!["/home/alice/locked: permission denied".into()],
            streams: vec![snap::format::snapshot::StreamSummary {
                name: "app.sql".into(),
                command: "pg_dump app".into(),
                bytes: 4096,
                exit_code: 0,
            }],
        },
    }
}

fn vector_config(key: &MasterKey) -> Config {
    let mut c = Config {
        version: 1,
        id: "42".repeat(32),
        chunker: ChunkerParams::DEFAULT,
        compression_level: 3,
        pack_size: 32 * 1024 * 1024,
        features: vec![],
        mac: String::new(),
    };
    c.mac = key.config_mac(&c.mac_input());
    c
}

fn vector_kdf() -> KdfParams {
    KdfParams {
        algorithm: "argon2id".into(),
        m_kib: 64,
        t: 1,
        p: 1,
        salt: hex::encode(seq(0xc0, 16)),
    }
}

const CHUNKER_INPUT_LEN: usize = 24 << 20;

/// The chunker's test input: the first 24 MiB of the BLAKE3 XOF output of
/// the ASCII string "snap chunker test vector".
fn chunker_input() -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(b"snap chunker test vector");
    let mut buf = vec![0u8; CHUNKER_INPUT_LEN];
    h.finalize_xof().fill(&mut buf);
    buf
}

fn chunk_lengths(data: &[u8], seed: u64) -> Vec<usize> {
    let mut ch = Chunker::new(ChunkerParams::DEFAULT, seed);
    let mut lens = Vec::new();
    let mut r = data;
    ch.chunk_reader(&mut r, data.len() as u64, |c| -> Result<(), ()> {
        lens.push(c.len());
        Ok(())
    })
    .unwrap()
    .unwrap();
    lens
}

/// Everything the vectors hold, computed by the code (and, for the
/// sub-keys, by BLAKE3 directly from the contexts the spec names).
fn generate(stored: Option<&Value>) -> Value {
    let secret = master_secret();
    let key = MasterKey::from_secret(secret);
    let mut out = Map::new();
    out.insert(
        "about".into(),
        json!("snap repository format v1 test vectors; all byte strings are lower-case hex; see format-spec/README.md"),
    );
    out.insert("master_secret".into(), h(&secret));
    out.insert(
        "subkeys".into(),
        json!({
            "context_enc": CTX_ENC,
            "context_id": CTX_ID,
            "context_chunker": CTX_CHUNKER,
            "context_config_mac": CTX_CONFIG_MAC,
            "enc_key": h(&blake3::derive_key(CTX_ENC, &secret)),
            "id_key": h(&blake3::derive_key(CTX_ID, &secret)),
            "chunker_key": h(&blake3::derive_key(CTX_CHUNKER, &secret)),
            "config_mac_key": h(&blake3::derive_key(CTX_CONFIG_MAC, &secret)),
            "chunker_seed_u64": key.chunker_seed().to_string(),
        }),
    );

    // Chunk boundaries of a fixed input, keyed and (for comparison) unkeyed.
    let input = chunker_input();
    out.insert(
        "chunker".into(),
        json!({
            "input": "first 25165824 bytes of the BLAKE3 XOF of ASCII \"snap chunker test vector\"",
            "input_blake3": h(blake3::hash(&input).as_bytes()),
            "params": { "min": 524288, "avg": 1048576, "max": 8388608, "normalization": 1 },
            "lengths_with_repository_seed": chunk_lengths(&input, key.chunker_seed()),
            "lengths_with_seed_0": chunk_lengths(&input, 0),
        }),
    );

    // One raw and one zstd blob, both data.
    let p = plaintext();
    let id = key.blob_id(&p);
    let cipher = key.blob_cipher();
    let sealed_raw =
        cipher.seal_blob_with_nonce_for_vectors(BlobKind::Data.code(), &id, &p, nonce(0x40));
    out.insert(
        "blob".into(),
        json!({
            "kind": BlobKind::Data.code(),
            "plaintext": h(&p),
            "id": h(&id.0),
            "compression": Compression::None.code(),
            "nonce": h(&nonce(0x40)),
            "aad": h(&[&[BlobKind::Data.code()][..], &id.0[..]].concat()),
            "sealed": h(&sealed_raw),
        }),
    );
    let frame = zstd_frame(stored);
    let sealed_zstd =
        cipher.seal_blob_with_nonce_for_vectors(BlobKind::Data.code(), &id, &frame, nonce(0x58));
    out.insert(
        "blob_zstd".into(),
        json!({
            "note": "reader-only: decoding this frame MUST give blob.plaintext; encoders need not reproduce it",
            "frame": h(&frame),
            "nonce": h(&nonce(0x58)),
            "sealed": h(&sealed_zstd),
        }),
    );

    // A pack holding both blobs.
    let entries = vec![
        PackEntry {
            kind: BlobKind::Data,
            compression: Compression::None,
            id,
            offset: 0,
            stored_len: sealed_raw.len() as u32,
            raw_len: p.len() as u32,
        },
        PackEntry {
            kind: BlobKind::Data,
            compression: Compression::Zstd,
            id,
            offset: sealed_raw.len() as u64,
            stored_len: sealed_zstd.len() as u32,
            raw_len: p.len() as u32,
        },
    ];
    let header = pack::encode_header(&entries);
    let sealed_header = key.seal_with_nonce_for_vectors(AAD_PACK_HEADER, &header, nonce(0x70));
    let trailer = pack::encode_trailer(sealed_header.len() as u32);
    let pack_bytes = [
        &sealed_raw[..],
        &sealed_zstd[..],
        &sealed_header[..],
        &trailer[..],
    ]
    .concat();
    out.insert(
        "pack".into(),
        json!({
            "note": "two copies of blob.plaintext (raw, then zstd) in one data pack; a real writer stores each id once",
            "header_plain": h(&header),
            "header_nonce": h(&nonce(0x70)),
            "header_sealed": h(&sealed_header),
            "trailer": h(&trailer),
            "bytes": h(&pack_bytes),
            "id": h(blake3::hash(&pack_bytes).as_bytes()),
        }),
    );

    // A tree and a snapshot pointing at it.
    let tree = vector_tree(&key);
    let tree_bytes = tree.encode().unwrap();
    let tree_id = key.blob_id(&tree_bytes);
    out.insert(
        "tree".into(),
        json!({ "plain": h(&tree_bytes), "id": h(&tree_id.0) }),
    );
    // The same listing as a directory in two parts (05 §5.2.1).
    let (a, b) = tree.nodes.split_at(2);
    let part_plains: Vec<Vec<u8>> = [a, b]
        .iter()
        .map(|n| Tree { nodes: n.to_vec() }.encode().unwrap())
        .collect();
    let part_ids: Vec<BlobId> = part_plains.iter().map(|p| key.blob_id(p)).collect();
    let list_plain = TreeBlob::Parts(part_ids).encode().unwrap();
    out.insert(
        "tree_parts".into(),
        json!({
            "parts": part_plains.iter().map(|p| h(p)).collect::<Vec<_>>(),
            "plain": h(&list_plain),
            "id": h(&key.blob_id(&list_plain).0),
        }),
    );
    let snap = vector_snapshot(tree_id);
    let snap_bytes = snap.to_bytes();
    let snap_sealed = key.seal_with_nonce_for_vectors(AAD_SNAPSHOT, &snap_bytes, nonce(0x90));
    out.insert(
        "snapshot".into(),
        json!({
            "plain": h(&snap_bytes),
            "nonce": h(&nonce(0x90)),
            "sealed": h(&snap_sealed),
            "id": h(blake3::hash(&snap_sealed).as_bytes()),
        }),
    );

    // Config and a key file.
    let config = vector_config(&key);
    out.insert(
        "config".into(),
        json!({
            "json": String::from_utf8(config.to_bytes()).unwrap(),
            "mac_input": h(&config.mac_input()),
            "mac": config.mac,
        }),
    );
    let kf = key.wrap_with_nonce_for_vectors(
        PASSWORD.as_bytes(),
        &config.id,
        vector_kdf(),
        "2026-11-23T00:00:00Z".into(),
        "host1".into(),
        nonce(0xa0),
    );
    let kbytes = kf.to_bytes();
    out.insert(
        "key_file".into(),
        json!({
            "password": PASSWORD,
            "repository_id": config.id,
            "aad": h(&[&b"snap-key-v1"[..], config.id.as_bytes()].concat()),
            "json": String::from_utf8(kbytes.clone()).unwrap(),
            "name": blake3::hash(&kbytes).to_hex().to_string(),
        }),
    );
    Value::Object(out)
}

#[test]
fn code_reproduces_every_vector() {
    let file = stored();
    let gen = generate(Some(&file));
    let (f, g) = (file.as_object().unwrap(), gen.as_object().unwrap());
    let mut fk: Vec<_> = f.keys().collect();
    let mut gk: Vec<_> = g.keys().collect();
    fk.sort();
    gk.sort();
    assert_eq!(fk, gk, "vector sections differ");
    for (k, v) in g {
        assert_eq!(
            &f[k], v,
            "section `{k}` of format-spec/vectors/v1.json no longer matches the code"
        );
    }
}

#[test]
fn stored_vectors_parse_and_open() {
    let v = stored();
    let key = MasterKey::from_secret(unhex(&v, "master_secret").try_into().unwrap());
    let p = unhex(&v, "blob.plaintext");
    let id = BlobId::from_slice(&unhex(&v, "blob.id")).unwrap();
    assert_eq!(key.blob_id(&p), id);

    // Sub-keys: the code's outputs equal primitives keyed with the stated keys.
    let id_key: [u8; 32] = unhex(&v, "subkeys.id_key").try_into().unwrap();
    assert_eq!(blake3::keyed_hash(&id_key, &p).as_bytes(), &id.0);
    let chunker_key = unhex(&v, "subkeys.chunker_key");
    let seed = u64::from_le_bytes(chunker_key[..8].try_into().unwrap());
    assert_eq!(key.chunker_seed(), seed);
    assert_eq!(
        v["subkeys"]["chunker_seed_u64"].as_str().unwrap(),
        seed.to_string()
    );
    let enc_key: [u8; 32] = unhex(&v, "subkeys.enc_key").try_into().unwrap();
    let sealed = unhex(&v, "blob.sealed");
    let aad = unhex(&v, "blob.aad");
    let ct = XChaCha20Poly1305::new(&enc_key.into())
        .decrypt(
            &XNonce::from(<[u8; 24]>::try_from(&sealed[..24]).unwrap()),
            Payload {
                msg: &sealed[24..],
                aad: &aad,
            },
        )
        .expect("blob opens with enc_key and the stated AAD");
    assert_eq!(ct, p);
    assert_eq!(&sealed[..24], &unhex(&v, "blob.nonce")[..]);

    // The pack: trailer -> header -> entries -> blobs.
    let bytes = unhex(&v, "pack.bytes");
    assert_eq!(
        blake3::hash(&bytes).as_bytes(),
        &unhex(&v, "pack.id")[..],
        "pack id is BLAKE3 of its bytes"
    );
    let n = bytes.len() as u64;
    let (hoff, hlen) = pack::decode_trailer(&bytes[bytes.len() - 12..], n).unwrap();
    let header = key
        .open(AAD_PACK_HEADER, &bytes[hoff as usize..hoff as usize + hlen])
        .expect("pack header opens");
    assert_eq!(header, unhex(&v, "pack.header_plain"));
    let entries = pack::decode_header(&header, hoff).unwrap();
    assert_eq!(entries.len(), 2);
    let cipher = key.blob_cipher();
    for e in &entries {
        let s = &bytes[e.offset as usize..(e.offset + e.stored_len as u64) as usize];
        let stored = cipher.open_blob(e.kind.code(), &e.id, s).unwrap();
        let plain = compress::decompress(e.compression, stored, e.raw_len as usize).unwrap();
        assert_eq!(plain, p);
        assert_eq!(key.blob_id(&plain), e.id);
    }
    assert_eq!(entries[1].compression, Compression::Zstd);
    let _ = PackId::from_slice(&unhex(&v, "pack.id")).unwrap();

    // Tree and snapshot.
    let tree_plain = unhex(&v, "tree.plain");
    let tree = Tree::parse(&tree_plain).unwrap();
    assert_eq!(tree, vector_tree(&key));
    assert_eq!(key.blob_id(&tree_plain).0.to_vec(), unhex(&v, "tree.id"));
    let list_plain = unhex(&v, "tree_parts.plain");
    assert_eq!(
        key.blob_id(&list_plain).0.to_vec(),
        unhex(&v, "tree_parts.id")
    );
    let TreeBlob::Parts(ids) = TreeBlob::parse(&list_plain).unwrap() else {
        panic!("tree_parts.plain is not a part list");
    };
    let parts: Vec<Tree> = v["tree_parts"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&ids)
        .map(|(p, id)| {
            let plain = hex::decode(p.as_str().unwrap()).unwrap();
            assert_eq!(&key.blob_id(&plain), id, "part id");
            Tree::parse(&plain).unwrap()
        })
        .collect();
    assert_eq!(parts.len(), 2);
    assert_eq!(Tree::join(parts).unwrap(), vector_tree(&key));
    let snap_sealed = unhex(&v, "snapshot.sealed");
    assert_eq!(
        blake3::hash(&snap_sealed).as_bytes(),
        &unhex(&v, "snapshot.id")[..]
    );
    let snap_plain = key.open(AAD_SNAPSHOT, &snap_sealed).unwrap();
    assert_eq!(snap_plain, unhex(&v, "snapshot.plain"));
    let snap = Snapshot::parse(&snap_plain).unwrap();
    assert_eq!(snap, vector_snapshot(key.blob_id(&tree_plain)));

    // Config: parses, validates, and its MAC verifies.
    let cfg = Config::parse(v["config"]["json"].as_str().unwrap().as_bytes()).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.mac_input(), unhex(&v, "config.mac_input"));
    assert_eq!(key.config_mac(&cfg.mac_input()), cfg.mac);
    assert_eq!(cfg.mac, v["config"]["mac"].as_str().unwrap());

    // Key file: the password unwraps the master secret.
    let kf = KeyFile::parse(v["key_file"]["json"].as_str().unwrap().as_bytes()).unwrap();
    let repo_id = v["key_file"]["repository_id"].as_str().unwrap();
    let k2 = MasterKey::unwrap(&kf, PASSWORD.as_bytes(), repo_id).expect("password unwraps");
    assert_eq!(k2.blob_id(&p), id);
    assert!(MasterKey::unwrap(&kf, b"wrong", repo_id).is_err());
    assert!(MasterKey::unwrap(&kf, PASSWORD.as_bytes(), &"43".repeat(32)).is_err());
}

#[test]
fn chunker_vector_is_keyed_and_bounded() {
    let v = stored();
    let get = |k: &str| -> Vec<u64> {
        v["chunker"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    };
    let keyed = get("lengths_with_repository_seed");
    let plain = get("lengths_with_seed_0");
    assert_ne!(keyed, plain, "the seed must move chunk boundaries");
    for lens in [&keyed, &plain] {
        assert_eq!(lens.iter().sum::<u64>(), CHUNKER_INPUT_LEN as u64);
        let (last, rest) = lens.split_last().unwrap();
        let d = snap::format::config::ChunkerParams::DEFAULT;
        assert!(rest
            .iter()
            .all(|&l| (d.min as u64..=d.max as u64).contains(&l)));
        assert!(*last <= d.max as u64);
    }
}

#[test]
fn one_flipped_bit_is_refused_everywhere() {
    let v = stored();
    let key = MasterKey::from_secret(unhex(&v, "master_secret").try_into().unwrap());
    let mut s = unhex(&v, "snapshot.sealed");
    s[30] ^= 1;
    assert!(key.open(AAD_SNAPSHOT, &s).is_err());
    let mut t = unhex(&v, "tree.plain");
    t[0] = 2;
    assert!(Tree::parse(&t).is_err(), "unknown tree version accepted");
    let mut b = unhex(&v, "pack.bytes");
    let n = b.len();
    b[n - 1] ^= 1;
    assert!(pack::decode_trailer(&b[n - 12..], n as u64).is_err());
}

/// Prints the vectors; with SNAP_WRITE_VECTORS=1 also writes the file.
#[test]
#[ignore]
fn generate_vectors() {
    let existing = std::fs::read_to_string(vectors_path())
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let v = generate(existing.as_ref());
    let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    println!("{text}");
    if std::env::var_os("SNAP_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(vectors_path().parent().unwrap()).unwrap();
        std::fs::write(vectors_path(), text).unwrap();
    }
}
