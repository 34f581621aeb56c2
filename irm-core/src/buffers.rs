//! Chunk buffers kept between streams on the same thread.
//!
//! A `Sealer` or `Opener` needs a buffer of up to a batch of chunks, and a
//! new one from the allocator must be zeroed before Rust lets anything write
//! to it: for a 64 KiB or 1 MiB file that zeroing cost as much as a fifth of
//! sealing the file. A program that seals or opens one file after another
//! (an application sealing every export through libirm, a batch of `irm
//! seal`s in one process) now reuses the previous stream's buffer instead.
//! Only clean buffers come back here: a stream wipes every buffer that held
//! plaintext before it lets go of it (a finished sealer's buffer holds only
//! ciphertext), so a reused buffer carries nothing of the file before.

use std::cell::RefCell;

/// Buffers kept per thread at most, and their total size: a one-thread
/// sealer's batch (16 chunks of 64 KiB) and an opener's chunk. Two-thread
/// streams, made for large files, allocate theirs; an application with many
/// threads keeps at most this much on each thread that sealed or opened.
const MAX_KEPT: usize = 2;
const MAX_KEPT_BYTES: usize = (1 << 20) + (128 << 10);

thread_local! {
    static KEPT: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of exactly `len` bytes: a kept one when one has the capacity
/// (the smallest such; only bytes past its current length are zeroed),
/// otherwise a new zeroed one.
pub(crate) fn take(len: usize) -> Vec<u8> {
    let kept = KEPT
        .try_with(|kept| {
            let mut kept = kept.borrow_mut();
            let best = kept
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= len)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i)?;
            Some(kept.swap_remove(best))
        })
        .ok()
        .flatten();
    match kept {
        Some(mut buf) => {
            buf.resize(len, 0);
            buf
        }
        None => vec![0u8; len],
    }
}

/// Keeps `buf` for the next stream on this thread, if there is room. The
/// caller has wiped it if it ever held plaintext.
pub(crate) fn give(buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_KEPT_BYTES {
        return;
    }
    let _ = KEPT.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        let total: usize = kept.iter().map(Vec::capacity).sum();
        if kept.len() < MAX_KEPT && total + buf.capacity() <= MAX_KEPT_BYTES {
            kept.push(buf);
        }
    });
}

/// Wipes `bytes` with zeroize's volatile writes, sixteen bytes at a time
/// where aligned: zeroize writes one element per volatile store, so wiping
/// a multi-megabyte batch byte by byte cost a quarter of decrypting it.
pub(crate) fn wipe(bytes: &mut [u8]) {
    use zeroize::Zeroize;
    let (head, words, tail) = bytemuck::pod_align_to_mut::<u8, u128>(bytes);
    head.zeroize();
    words.zeroize();
    tail.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_at_the_length_asked_for() {
        let mut first = take(1000);
        assert_eq!(first.len(), 1000);
        first.fill(0);
        let address = first.as_ptr() as usize;
        give(first);
        let again = take(600);
        assert_eq!(again.len(), 600);
        assert_eq!(
            again.as_ptr() as usize,
            address,
            "the kept buffer is reused"
        );
        // Given back shorter, it still serves its whole capacity.
        give(again);
        let whole = take(1000);
        assert_eq!(whole.len(), 1000);
        assert_eq!(whole.as_ptr() as usize, address);
        // Larger than anything kept: a new one.
        let bigger = take(5000);
        assert_eq!(bigger.len(), 5000);
        assert!(bigger.iter().all(|b| *b == 0));
    }

    #[test]
    fn the_pool_is_bounded() {
        for _ in 0..10 {
            give(vec![0u8; 1024]);
        }
        give(vec![0u8; MAX_KEPT_BYTES + 1]);
        KEPT.with(|kept| {
            let kept = kept.borrow();
            assert!(kept.len() <= MAX_KEPT);
            assert!(kept.iter().map(Vec::capacity).sum::<usize>() <= MAX_KEPT_BYTES);
        });
    }

    #[test]
    fn wipe_clears_exactly_its_bytes_at_any_alignment() {
        for start in 0..17 {
            for len in [0, 1, 15, 16, 17, 70] {
                let mut bytes = [0xAAu8; 128];
                wipe(&mut bytes[start..start + len]);
                for (i, b) in bytes.iter().enumerate() {
                    let inside = (start..start + len).contains(&i);
                    assert_eq!(
                        *b,
                        if inside { 0 } else { 0xAA },
                        "start {start} len {len} byte {i}"
                    );
                }
            }
        }
    }
}
