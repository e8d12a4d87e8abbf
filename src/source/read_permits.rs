//! How many walkers may read a large file at once.
//!
//! A cold small file costs a disk round trip, so the walk keeps many reads
//! in flight (more walkers than cores). A large file is read ahead by the
//! kernel and needs no company to keep the disk busy, but each walker
//! reading one holds a chunking buffer of up to 8 MiB: the walkers that may
//! do so at once are counted here, which keeps peak memory where it was
//! with fewer walkers.

use std::sync::{Condvar, Mutex};

/// A counting semaphore for large-file reads.
pub struct ReadPermits {
    free: Mutex<usize>,
    freed: Condvar,
}

/// Held while a large file is read; gives its permit back when dropped.
pub struct ReadPermit<'a> {
    permits: &'a ReadPermits,
}

impl ReadPermits {
    /// At most `n` (at least one) holders at a time.
    pub fn new(n: usize) -> ReadPermits {
        ReadPermits {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free permit.
    pub fn acquire(&self) -> ReadPermit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        ReadPermit { permits: self }
    }
}

impl Drop for ReadPermit<'_> {
    fn drop(&mut self) {
        *self.permits.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.permits.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn no_more_than_n_hold_a_permit_at_once() {
        let permits = ReadPermits::new(3);
        let holding = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let _p = permits.acquire();
                        let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        holding.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert!(most.load(Ordering::SeqCst) >= 1);
        assert_eq!(*permits.free.lock().unwrap(), 3);
    }
}
