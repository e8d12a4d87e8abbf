//! Streaming content-defined chunking: FastCDC v2020 on large slices of a
//! reader (chunking slices is faster than fastcdc's copying `StreamCDC`).
//!
//! A boundary found by FastCDC depends only on the bytes since the previous
//! boundary, so chunking a buffer, keeping every chunk but the last and
//! starting again at the last one's start with more data gives exactly the
//! boundaries of chunking the whole stream at once.

use std::io::{self, Read};

use fastcdc::v2020::{FastCDC, Normalization};

use crate::format::config::ChunkerParams;

/// A buffer larger than this is given back once its stream is read.
pub const KEEP_BUFFER: usize = 1 << 20;

/// Splits a byte stream into chunks, reusing one buffer.
pub struct Chunker {
    params: ChunkerParams,
    seed: u64,
    buf: Vec<u8>,
}

fn level(n: u8) -> Normalization {
    match n {
        0 => Normalization::Level0,
        1 => Normalization::Level1,
        2 => Normalization::Level2,
        _ => Normalization::Level3,
    }
}

impl Chunker {
    /// A chunker with validated parameters and a keyed gear seed.
    pub fn new(params: ChunkerParams, seed: u64) -> Chunker {
        params.validate().expect("validated chunker parameters");
        Chunker {
            params,
            seed,
            buf: Vec::new(),
        }
    }

    /// Reads `r` to its end, calling `emit` with each chunk in order.
    /// Returns the number of bytes read. `size_hint` is how large the
    /// stream is expected to be (a file's size; `u64::MAX` when unknown):
    /// the buffer is sized by it, so a walker reading a small file holds
    /// a small buffer, and one left larger than [`KEEP_BUFFER`] by a large
    /// file is given back when it is read.
    pub fn chunk_reader<R: Read + ?Sized, E>(
        &mut self,
        r: &mut R,
        size_hint: u64,
        mut emit: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Result<u64, E>, io::Error> {
        let res = self.chunk_all(r, size_hint, &mut emit);
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
        res
    }

    fn chunk_all<R: Read + ?Sized, E>(
        &mut self,
        r: &mut R,
        size_hint: u64,
        emit: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Result<u64, E>, io::Error> {
        let max = self.params.max as usize;
        let cap = (2 * max).max(8 << 20);
        self.buf.clear();
        let mut total = 0u64;
        let mut eof = false;
        loop {
            if !eof && self.buf.len() < cap {
                let room = cap - self.buf.len();
                // Room for what is expected (and one byte more, so that
                // the end is seen by the same fill), the rest on demand.
                let expected = size_hint.saturating_sub(total).saturating_add(1);
                self.buf
                    .reserve(room.min(expected.try_into().unwrap_or(room)));
                let n = r.take(room as u64).read_to_end(&mut self.buf)?;
                total += n as u64;
                eof = n < room;
            }
            let filled = self.buf.len();
            if filled == 0 {
                return Ok(Ok(total));
            }
            let data = &self.buf[..filled];
            let cdc = FastCDC::with_level_and_seed(
                data,
                self.params.min as usize,
                self.params.avg as usize,
                max,
                level(self.params.normalization),
                self.seed,
            );
            let mut start = 0usize;
            for c in cdc {
                let end = c.offset + c.length;
                if !eof && end == filled {
                    break; // may be cut short by the buffer's end: redo with more data
                }
                if let Err(e) = emit(&data[c.offset..end]) {
                    return Ok(Err(e));
                }
                start = end;
            }
            if eof && start == filled {
                return Ok(Ok(total));
            }
            self.buf.drain(..start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize) -> Vec<u8> {
        let mut x = 0x9E3779B97F4A7C15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn streaming_equals_whole_slice() {
        let p = ChunkerParams {
            min: 4096,
            avg: 16384,
            max: 65536,
            normalization: 1,
        };
        let data = pseudo_random(3_000_000);
        let whole: Vec<usize> =
            FastCDC::with_level_and_seed(&data, 4096, 16384, 65536, Normalization::Level1, 42)
                .map(|c| c.length)
                .collect();
        // A reader that returns short reads exercises the refill path.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                let n = b.len().min(self.0.len()).min(100_003);
                b[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        // The size hint sizes the buffer only: right, too small (the
        // buffer grows) or unknown, the boundaries are the same.
        let mut ch = Chunker::new(p, 42);
        for hint in [data.len() as u64, 0, 100_000, u64::MAX] {
            let mut got = Vec::new();
            let mut joined = Vec::new();
            let n = ch
                .chunk_reader(&mut Trickle(&data), hint, |c| -> Result<(), ()> {
                    got.push(c.len());
                    joined.extend_from_slice(c);
                    Ok(())
                })
                .unwrap()
                .unwrap();
            assert_eq!(n as usize, data.len(), "hint {hint}");
            assert_eq!(joined, data, "hint {hint}");
            assert_eq!(got, whole, "hint {hint}");
            assert!(ch.buf.capacity() <= KEEP_BUFFER, "hint {hint}");
        }
    }

    #[test]
    fn seed_changes_boundaries() {
        let data = pseudo_random(2_000_000);
        let a: Vec<_> =
            FastCDC::with_level_and_seed(&data, 4096, 16384, 65536, Normalization::Level1, 1)
                .collect();
        let b: Vec<_> =
            FastCDC::with_level_and_seed(&data, 4096, 16384, 65536, Normalization::Level1, 2)
                .collect();
        assert_ne!(a, b);
    }
}
