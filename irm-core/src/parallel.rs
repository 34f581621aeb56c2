//! How the payload's chunks are shared between threads.
//!
//! A stream (`Sealer`, `Opener`) hands work to the other cores many times a
//! second (every 1 MiB write, every batch), so it keeps a small rayon pool
//! for its whole life: starting a thread per hand-off (~30 µs) cost as much
//! as sealing the chunks it carried. One-shot calls (`seal_in_place`,
//! `open_to_vec`) hand off once, so they use scoped threads and leave nothing
//! running. Either way the calling thread does its own share rather than
//! waiting idle: with two cores, an idle caller would leave one core unused,
//! and it spins rather than sleeps for the others' last chunks. Each thread
//! works its own slots of the stream's buffer first (so their memory stays
//! in its core's cache), then takes over whatever another thread has not
//! started, so a worker that wakes late (or a core taken by another process)
//! costs only the chunks it did not get to.

use std::cell::OnceCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long the calling thread spins for the other threads' last chunks at
/// the end of a hand-off before it sleeps. The wait is at most one chunk's
/// work when the others started on time (a few microseconds); sleeping
/// instead, and being woken, cost tens of microseconds on these VMs.
const SPIN: Duration = Duration::from_micros(50);

/// The threads a stream or a one-shot call works with.
pub(crate) struct Workers {
    threads: usize,
    kind: Kind,
}

enum Kind {
    /// Scoped threads started for each call (one-shot work).
    Scoped,
    /// A pool of `threads - 1` threads, started on first use and kept; `None`
    /// inside when the system refused to start them (then scoped threads).
    Pool(OnceCell<Option<rayon_core::ThreadPool>>),
}

impl Workers {
    /// For work handed off once: scoped threads.
    pub(crate) fn one_shot(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            kind: Kind::Scoped,
        }
    }

    /// For a stream that hands off many times: a pool kept until drop.
    pub(crate) fn stream(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            kind: Kind::Pool(OnceCell::new()),
        }
    }

    /// How many threads share the work, the caller's included.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    fn pool(&self) -> Option<&rayon_core::ThreadPool> {
        match &self.kind {
            Kind::Scoped => None,
            Kind::Pool(cell) => cell
                .get_or_init(|| {
                    rayon_core::ThreadPoolBuilder::new()
                        .num_threads(self.threads - 1)
                        .thread_name(|i| format!("irm-chunks-{i}"))
                        .build()
                        .ok()
                })
                .as_ref(),
        }
    }

    /// Runs `work(index, chunk)` over the chunks of `buf` (one every `stride`
    /// bytes; the last may be shorter) on all the threads, the caller's
    /// included. `first_chunk` is the stream index of `buf`'s first chunk
    /// (see `overlap`). Returns the lowest index for which `work` returned
    /// false.
    pub(crate) fn for_each_chunk<F>(
        &self,
        buf: &mut [u8],
        stride: usize,
        first_chunk: u64,
        work: &F,
    ) -> Option<usize>
    where
        F: Fn(usize, &mut [u8]) -> bool + Sync,
    {
        if self.threads < 2 || buf.len() <= stride {
            let mut failed = None;
            for (i, chunk) in buf.chunks_mut(stride).enumerate() {
                if !work(i, chunk) {
                    failed = failed.or(Some(i));
                }
            }
            return failed;
        }
        self.overlap(buf, stride, first_chunk, work, || ()).1
    }

    /// Runs `side` on the calling thread while the other threads start on
    /// `work(index, chunk)` over the chunks of `buf`; when `side` is done the
    /// caller joins in. Returns `side`'s result and the lowest chunk index
    /// for which `work` returned false.
    ///
    /// Each thread first takes its own slots (every `threads`-th chunk of
    /// the stream, counted from its start: `first_chunk` is the stream index
    /// of `buf`'s first chunk; batches hold a multiple of `threads` chunks,
    /// so a chunk's index modulo the thread count is also its slot's in the
    /// stream's buffer), so that a slot is filled and sealed by the same
    /// core batch after batch and its memory stays in that core's cache
    /// (moving 64 KiB between cores for every chunk cost a tenth of the
    /// speed-up). Then it takes whatever the others have not started, from
    /// the end, so the threads finish together however late one started or
    /// however long `side` took.
    pub(crate) fn overlap<F, S, R>(
        &self,
        buf: &mut [u8],
        stride: usize,
        first_chunk: u64,
        work: &F,
        side: S,
    ) -> (R, Option<usize>)
    where
        F: Fn(usize, &mut [u8]) -> bool + Sync,
        S: FnOnce() -> R,
    {
        // A lock per chunk, held only to take the chunk out, is what lets
        // threads claim chunks in any order without unsafe code.
        let chunks: Vec<Mutex<Option<&mut [u8]>>> = buf
            .chunks_mut(stride)
            .map(|c| Mutex::new(Some(c)))
            .collect();
        let failed = AtomicUsize::new(usize::MAX);
        let threads = self.threads;
        let claim = |i: usize| {
            let taken = chunks
                .get(i)
                .and_then(|c| c.lock().unwrap_or_else(PoisonError::into_inner).take());
            if let Some(chunk) = taken {
                if !work(i, chunk) {
                    failed.fetch_min(i, Ordering::Relaxed);
                }
            }
        };
        let drain = |thread: usize| {
            let first_slot = (first_chunk % threads as u64) as usize;
            let mut i = (thread + threads - first_slot) % threads;
            while i < chunks.len() {
                claim(i);
                i += threads;
            }
            for i in (0..chunks.len()).rev() {
                claim(i);
            }
        };
        let drain = &drain;
        let side_result = match (self.threads, self.pool()) {
            (0 | 1, _) => {
                let r = side();
                drain(0);
                r
            }
            (_, Some(pool)) => {
                let running = &AtomicUsize::new(self.threads - 1);
                pool.in_place_scope(|scope| {
                    for thread in 1..self.threads {
                        scope.spawn(move |_| {
                            drain(thread);
                            running.fetch_sub(1, Ordering::Release);
                        });
                    }
                    let r = side();
                    drain(0);
                    // Spin for the other threads' last chunks rather than
                    // sleep on the scope's latch (see `SPIN`).
                    let until = Instant::now() + SPIN;
                    while running.load(Ordering::Acquire) > 0 && Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    r
                })
            }
            (_, None) => std::thread::scope(|scope| {
                for thread in 1..self.threads {
                    scope.spawn(move || drain(thread));
                }
                let r = side();
                drain(0);
                r
            }),
        };
        let failed = match failed.into_inner() {
            usize::MAX => None,
            i => Some(i),
        };
        (side_result, failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the thread count, the slot a batch starts at, or how the
    /// threads race, every chunk is worked on exactly once, `side` runs
    /// once, and the lowest failing index is the one reported.
    #[test]
    fn every_chunk_is_worked_once_and_the_first_failure_is_named() {
        for threads in 1..=3 {
            for workers in [Workers::stream(threads), Workers::one_shot(threads)] {
                for first_slot in 0..4 {
                    for count in [0, 1, 2, 3, 7, 32] {
                        let stride = 5;
                        let mut buf = vec![0u8; count * stride];
                        let fail_at = [count / 2, count.saturating_sub(1)];
                        let (side_ran, failed) = workers.overlap(
                            &mut buf,
                            stride,
                            first_slot,
                            &|i, chunk| {
                                for b in chunk.iter_mut() {
                                    *b += 1;
                                }
                                !fail_at.contains(&i) || count == 0
                            },
                            || true,
                        );
                        let case =
                            format!("{threads} threads from slot {first_slot}, {count} chunks");
                        assert!(side_ran, "{case}");
                        assert!(buf.iter().all(|b| *b == 1), "{case}: {buf:?}");
                        let want = (count > 0).then_some(count / 2);
                        assert_eq!(failed, want, "{case}");
                        let again =
                            workers.for_each_chunk(&mut buf, stride, first_slot, &|_, chunk| {
                                chunk.iter_mut().for_each(|b| *b += 1);
                                true
                            });
                        assert_eq!(again, None, "{case}");
                        assert!(buf.iter().all(|b| *b == 2), "{case}");
                    }
                }
            }
        }
    }
}
