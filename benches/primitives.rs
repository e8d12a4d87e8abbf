//! Throughput of each stage of snap's data path, per core: chunking,
//! keyed hashing, compression, encryption, and the whole store/restore
//! path of one blob. Run: `cargo bench --bench primitives`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use snap::format::config::ChunkerParams;
use snap::format::pack::Compression;
use snap::pipeline::chunker::Chunker;
use snap::pipeline::compress;
use snap::pipeline::crypto::MasterKey;

/// Half pseudo-random bytes, half log-like text: what servers hold.
fn sample(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while v.len() < len / 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    let words = [
        "ticket", "user", "select", "order", "status", "error", "backup", "worker",
    ];
    let mut i = 0usize;
    while v.len() < len {
        let line = format!(
            "{:07} {} {} {}\n",
            i,
            words[i % 8],
            words[(i * 7) % 8],
            i * 31 % 1000
        );
        v.extend_from_slice(line.as_bytes());
        i += 1;
    }
    v.truncate(len);
    v
}

fn stages(c: &mut Criterion) {
    let data = sample(64 << 20);
    let key = MasterKey::from_secret([7; 32]);
    let mut g = c.benchmark_group("stage");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("fastcdc_1MiB_avg", |b| {
        let mut ch = Chunker::new(ChunkerParams::DEFAULT, key.chunker_seed());
        b.iter(|| {
            let mut n = 0usize;
            ch.chunk_reader(&mut &data[..], data.len() as u64, |c| -> Result<(), ()> {
                n += c.len();
                Ok(())
            })
            .unwrap()
            .unwrap();
            n
        })
    });
    g.bench_function("blake3_keyed_1MiB_chunks", |b| {
        b.iter(|| {
            data.chunks(1 << 20)
                .map(|c| key.blob_id(c).0[0])
                .fold(0u8, |a, x| a ^ x)
        })
    });
    for level in [1, 3] {
        g.bench_with_input(BenchmarkId::new("zstd_compress", level), &level, |b, &l| {
            b.iter(|| {
                data.chunks(1 << 20)
                    .map(|c| compress::compress(c, l).1.len())
                    .sum::<usize>()
            })
        });
    }
    let cipher = key.blob_cipher();
    let id = key.blob_id(b"x");
    g.bench_function("xchacha20poly1305_seal_1MiB", |b| {
        b.iter(|| {
            data.chunks(1 << 20)
                .map(|c| cipher.seal_blob(0, &id, c).len())
                .sum::<usize>()
        })
    });
    g.bench_function("pipeline_chunk_hash_zstd1_seal", |b| {
        let mut ch = Chunker::new(ChunkerParams::DEFAULT, key.chunker_seed());
        b.iter(|| {
            let mut n = 0usize;
            ch.chunk_reader(&mut &data[..], data.len() as u64, |c| -> Result<(), ()> {
                let id = key.blob_id(c);
                let (_, stored) = compress::compress(c, 1);
                n += cipher.seal_blob(0, &id, &stored).len();
                Ok(())
            })
            .unwrap()
            .unwrap();
            n
        })
    });
    let sealed: Vec<(snap::format::BlobId, Compression, usize, Vec<u8>)> = data
        .chunks(1 << 20)
        .map(|c| {
            let id = key.blob_id(c);
            let (comp, stored) = compress::compress(c, 1);
            (id, comp, c.len(), cipher.seal_blob(0, &id, &stored))
        })
        .collect();
    g.bench_function("restore_open_decompress_verify", |b| {
        b.iter(|| {
            sealed
                .iter()
                .map(|(id, comp, raw, s)| {
                    let stored = cipher.open_blob(0, id, s).unwrap();
                    let plain = compress::decompress(*comp, stored, *raw).unwrap();
                    assert_eq!(key.blob_id(&plain), *id);
                    plain.len()
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
