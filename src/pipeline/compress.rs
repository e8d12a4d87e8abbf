//! zstd compression of blobs, stored raw when compression does not pay.

use std::borrow::Cow;
use std::cell::RefCell;

use crate::format::pack::Compression;

thread_local! {
    // One compression context per thread and level: creating a context per
    // blob costs more than compressing a small file.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Compresses `data` at `level`; returns it raw (borrowed, not copied)
/// when compression saves under 1/64.
pub fn compress(data: &[u8], level: i32) -> (Compression, Cow<'_, [u8]>) {
    if data.len() >= 64 {
        let packed = COMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().map(|(l, _)| *l) != Some(level) {
                *slot = zstd::bulk::Compressor::new(level).ok().map(|c| (level, c));
            }
            slot.as_mut().and_then(|(_, c)| c.compress(data).ok())
        });
        if let Some(v) = packed {
            if v.len() < data.len() - data.len() / 64 {
                return (Compression::Zstd, Cow::Owned(v));
            }
        }
    }
    (Compression::None, Cow::Borrowed(data))
}

/// Decompresses a stored blob whose plaintext is `raw_len` bytes.
pub fn decompress(c: Compression, stored: Vec<u8>, raw_len: usize) -> Result<Vec<u8>, String> {
    match c {
        Compression::None => {
            if stored.len() != raw_len {
                return Err(format!("stored {} bytes, expected {raw_len}", stored.len()));
            }
            Ok(stored)
        }
        Compression::Zstd => {
            let v = DECOMPRESSOR
                .with(|cell| {
                    let mut slot = cell.borrow_mut();
                    if slot.is_none() {
                        *slot = Some(zstd::bulk::Decompressor::new()?);
                    }
                    slot.as_mut()
                        .expect("just set")
                        .decompress(&stored, raw_len)
                })
                .map_err(|e| format!("zstd: {e}"))?;
            if v.len() != raw_len {
                return Err(format!(
                    "decompressed to {} bytes, expected {raw_len}",
                    v.len()
                ));
            }
            Ok(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_compresses_random_does_not() {
        let text = b"hello world ".repeat(1000);
        let (c, v) = compress(&text, 1);
        assert_eq!(c, Compression::Zstd);
        assert_eq!(decompress(c, v.into_owned(), text.len()).unwrap(), text);
        let rnd: Vec<u8> = (0..10000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let (c, v) = compress(&rnd, 1);
        assert_eq!(decompress(c, v.into_owned(), rnd.len()).unwrap(), rnd);
        assert!(decompress(Compression::Zstd, b"junk".to_vec(), 10).is_err());
    }
}
