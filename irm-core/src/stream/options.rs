//! The payload's fixed parts (FORMAT.md §6.1, §6.2): the tag length and the
//! nonce of each chunk; and how a stream works ([`StreamOptions`]: threads,
//! AES-GCM backend, chunks per batch). The rest of `stream` builds on these.

/// The AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// Which AES-256-GCM implementation encrypts the payload. Both produce the
/// same bytes; the choice only changes speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadBackend {
    /// aws-lc-rs when built with the `aws-lc` feature (the default),
    /// otherwise the portable backend.
    #[default]
    Fast,
    /// The pure-Rust `aes-gcm` crate.
    Portable,
}

/// FORMAT.md §6.2: the nonce of chunk `index`.
pub(super) fn nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// How a [`Sealer`](super::Sealer) or [`Opener`](super::Opener) works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Threads to encrypt or decrypt with, the caller's included. With more
    /// than one, a stream keeps `threads - 1` worker threads until it is
    /// dropped and processes chunks in batches of `16 × threads`. An
    /// [`Opener`](super::Opener) gains from them over a `BufRead`
    /// ([`Opener::from_buf_read`](super::Opener::from_buf_read)) or in
    /// memory ([`open_into`](super::open_into)); over a plain `Read` the copy
    /// out of the reader, one thread's work, costs more than the decryption,
    /// and a second thread gains little or nothing (docs/PERFORMANCE.md §2).
    pub threads: usize,
    /// Which AES-GCM implementation to use.
    pub backend: PayloadBackend,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            backend: PayloadBackend::Fast,
        }
    }
}

impl StreamOptions {
    /// Chunks per batch. With several threads, 16 per thread (1 MiB of
    /// 64 KiB chunks each): the pool stays up between batches, so a hand-off
    /// costs microseconds and a batch need only dwarf that, while the opener
    /// holds two batches (one decrypting, one being read). On one thread the
    /// sealer takes 16, so that `seal_from` reads a file a megabyte per call
    /// as `dd bs=1M` does; the opener takes one: a buffer above glibc's mmap
    /// threshold (128 KiB) is mapped and page-faulted afresh for every file,
    /// which cost more than decrypting a 1 MiB file (measured: 42% of the
    /// baseline against 99%).
    pub(super) fn batch_chunks(&self, sealing: bool) -> usize {
        match (self.threads, sealing) {
            (0 | 1, true) => 16,
            (0 | 1, false) => 1,
            (n, _) => n * 16,
        }
    }
}
