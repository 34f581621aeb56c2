//! How the payload's chunks are shared between threads.
//!
//! A stream (`Sealer`, `Opener`) hands work to the other cores many times a
//! second (every 1 MiB write, every batch), so it keeps a small rayon pool
//! for its whole life: starting a thread per hand-off (~30 µs) cost as much
//! as sealing the chunks it carried. One-shot calls (`seal_in_place`,
//! `open_to_vec`) hand off once, so they use scoped threads and leave nothing
//! running. Either way the calling thread does its own share rather than
//! waiting idle: with two cores, an idle caller would leave one core unused.
//! Chunks are handed out one at a time rather than in fixed shares, so a
//! worker that wakes late (or a core taken by another process) costs only
//! the chunks it did not get to.

use std::cell::OnceCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

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
    /// included. Returns the lowest index for which `work` returned false.
    pub(crate) fn for_each_chunk<F>(&self, buf: &mut [u8], stride: usize, work: &F) -> Option<usize>
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
        self.overlap(buf, stride, work, || ()).1
    }

    /// Runs `side` on the calling thread while the other threads start on
    /// `work(index, chunk)` over the chunks of `buf`; when `side` is done the
    /// caller joins in. Chunks are taken one at a time from a shared counter,
    /// so the threads finish together however long `side` took. Returns
    /// `side`'s result and the lowest chunk index for which `work` returned
    /// false.
    pub(crate) fn overlap<F, S, R>(
        &self,
        buf: &mut [u8],
        stride: usize,
        work: &F,
        side: S,
    ) -> (R, Option<usize>)
    where
        F: Fn(usize, &mut [u8]) -> bool + Sync,
        S: FnOnce() -> R,
    {
        // A lock per chunk (uncontended: each is taken once) is what lets
        // two threads pick chunks in any order without unsafe code.
        let chunks: Vec<Mutex<&mut [u8]>> = buf.chunks_mut(stride).map(Mutex::new).collect();
        let next = AtomicUsize::new(0);
        let failed = AtomicUsize::new(usize::MAX);
        let drain = || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else { break };
                let mut chunk = chunk.lock().unwrap_or_else(PoisonError::into_inner);
                if !work(i, &mut chunk) {
                    failed.fetch_min(i, Ordering::Relaxed);
                }
            }
        };
        let drain = &drain;
        let side_result = match (self.threads, self.pool()) {
            (0 | 1, _) => {
                let r = side();
                drain();
                r
            }
            (_, Some(pool)) => pool.in_place_scope(|scope| {
                for _ in 1..self.threads {
                    scope.spawn(move |_| drain());
                }
                let r = side();
                drain();
                r
            }),
            (_, None) => std::thread::scope(|scope| {
                for _ in 1..self.threads {
                    scope.spawn(drain);
                }
                let r = side();
                drain();
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
