//! [`Sealer`]: the payload sealed as it is written (FORMAT.md §6.1, §6.2), in
//! batches of chunk slots; a chunk is sealed once it is known not to be the
//! final one, and the final chunk by [`Sealer::finish`]. Sealing a whole
//! buffer in one call is `in_memory`'s.

use std::io::{self, IoSliceMut, Read, Write};

use super::cipher::{PayloadCipher, buffer_len};
use super::options::{StreamOptions, TAG_LEN};
use super::read::read_retrying;
use crate::buffers::wipe;
use crate::error::SealError;
use crate::header::{MAX_PLAINTEXT_LEN, VerifiedHeader};
use crate::parallel::Workers;

/// Encrypts a payload as it is written. Call [`Sealer::finish`] to write the
/// final chunk: dropping a `Sealer` without it leaves an envelope that every
/// reader rejects as truncated.
pub struct Sealer<W: Write> {
    inner: W,
    cipher: PayloadCipher,
    workers: Workers,
    /// `batch` chunk slots at a stride of `chunk_len + TAG_LEN`.
    buf: SealBuffer,
    batch: usize,
    /// Slots `..sealed` are sealed; `sealed..slot` are full but not yet
    /// sealed (known not to be final); `slot` holds `slot_fill` bytes.
    sealed: usize,
    slot: usize,
    slot_fill: usize,
    next_index: u64,
    written: u64,
    declared_len: Option<u64>,
    /// FORMAT.md §6.2: the most plaintext a file may hold (lowered by tests).
    plaintext_cap: u64,
}

impl<W: Write> Sealer<W> {
    /// Writes the header to `inner` and returns a sealer for the payload.
    pub fn new(header: &VerifiedHeader, mut inner: W, options: StreamOptions) -> io::Result<Self> {
        inner.write_all(&header.header().to_bytes())?;
        let cipher = PayloadCipher::for_header(header, options.backend);
        let batch = options.batch_chunks(true);
        let declared_len = header.metadata().plaintext_len;
        Ok(Self {
            buf: SealBuffer {
                bytes: crate::buffers::take(buffer_len(&cipher, batch, declared_len, 0)),
                holds_plaintext: true,
            },
            inner,
            cipher,
            workers: Workers::stream(options.threads),
            batch,
            sealed: 0,
            slot: 0,
            slot_fill: 0,
            next_index: 0,
            written: 0,
            declared_len,
            plaintext_cap: MAX_PLAINTEXT_LEN,
        })
    }

    /// FORMAT.md §6.2: refuses to seal past the format's plaintext cap.
    fn check_cap(&self, written: u64) -> io::Result<()> {
        if written > self.plaintext_cap {
            return Err(SealError::TooLarge {
                what: "the plaintext",
                limit: usize::try_from(self.plaintext_cap).unwrap_or(usize::MAX),
            }
            .into());
        }
        Ok(())
    }

    /// Seals the pending slots (`sealed..count`; the last one as the final
    /// chunk with `last_len` bytes when given) and writes slots `..count`.
    fn flush_batch(&mut self, count: usize, last_len: Option<usize>) -> io::Result<()> {
        let stride = self.cipher.encrypted_chunk_len();
        let from = self.sealed * stride;
        self.cipher.seal_batch(
            &mut self.buf[from..],
            self.next_index + self.sealed as u64,
            count - self.sealed,
            last_len,
            &self.workers,
        );
        let end = match last_len {
            Some(len) => (count - 1) * stride + len + TAG_LEN,
            None => count * stride,
        };
        self.inner.write_all(&self.buf[..end])?;
        self.next_index += count as u64;
        (self.sealed, self.slot, self.slot_fill) = (0, 0, 0);
        Ok(())
    }

    /// Seals the final chunk, flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(declared) = self.declared_len {
            if declared != self.written {
                return Err(SealError::LengthMismatch {
                    declared,
                    written: self.written,
                }
                .into());
            }
        }
        self.flush_batch(self.slot + 1, Some(self.slot_fill))?;
        // Everything left in the buffer is now ciphertext.
        self.buf.holds_plaintext = false;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// The sealer's chunk buffer. Chunks are sealed where they lie, so once
/// `finish` has sealed the last one the buffer holds only ciphertext and the
/// byte-by-byte wipe (as slow as sealing a 64 KiB chunk) can be skipped; an
/// unfinished sealer still holds plaintext and wipes it.
struct SealBuffer {
    bytes: Vec<u8>,
    holds_plaintext: bool,
}

impl std::ops::Deref for SealBuffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.bytes
    }
}

impl std::ops::DerefMut for SealBuffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

impl Drop for SealBuffer {
    fn drop(&mut self) {
        if self.holds_plaintext {
            wipe(&mut self.bytes);
        }
        crate::buffers::give(std::mem::take(&mut self.bytes));
    }
}

impl<W: Write> Sealer<W> {
    /// Seals everything `reader` yields, reading straight into the chunk
    /// buffer with vectored reads (one call fills a whole batch), so that the
    /// only copies are the kernel's, as with `dd`. Returns the bytes read.
    pub fn seal_from<R: Read>(&mut self, reader: &mut R) -> io::Result<u64> {
        let chunk_len = self.cipher.chunk_len;
        let stride = self.cipher.encrypted_chunk_len();
        let mut total = 0u64;
        loop {
            // Where the next byte goes: the current chunk, or the next one
            // when the current one is full (not yet known to be final).
            let (first_slot, first_fill) = if self.slot_fill == chunk_len {
                (self.slot + 1, 0)
            } else {
                (self.slot, self.slot_fill)
            };
            let mut slices = Vec::with_capacity(self.batch);
            if first_slot < self.batch {
                let mut rest = self.buf.get_mut(first_slot * stride..).unwrap_or_default();
                let mut fill = first_fill;
                while !rest.is_empty() {
                    // A buffer sized to a small declared length ends early.
                    let room = chunk_len.min(rest.len().saturating_sub(TAG_LEN));
                    if room <= fill {
                        break;
                    }
                    let (slot, tail) = rest.split_at_mut(stride.min(rest.len()));
                    slices.push(IoSliceMut::new(&mut slot[fill..room]));
                    (fill, rest) = (0, tail);
                }
            }
            if slices.is_empty() {
                // The batch is full: seal it only if more data follows (the
                // final chunk must be sealed as final), via the `write` path.
                let mut byte = [0u8; 1];
                if read_retrying(reader, &mut byte)? == 0 {
                    return Ok(total);
                }
                self.write_all(&byte)?;
                total += 1;
                continue;
            }
            let n = match reader.read_vectored(&mut slices) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let written = self.written + n as u64;
            if let Some(declared) = self.declared_len.filter(|d| written > *d) {
                return Err(SealError::LengthMismatch { declared, written }.into());
            }
            self.check_cap(written)?;
            let (mut slot, mut fill, mut left) = (first_slot, first_fill, n);
            loop {
                let take = left.min(chunk_len - fill);
                fill += take;
                left -= take;
                if left == 0 {
                    break;
                }
                (slot, fill) = (slot + 1, 0);
            }
            (self.slot, self.slot_fill, self.written) = (slot, fill, written);
            total += n as u64;
        }
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let chunk_len = self.cipher.chunk_len;
        let stride = self.cipher.encrypted_chunk_len();
        let written = self.written.saturating_add(data.len() as u64);
        if let Some(declared) = self.declared_len {
            if written > declared {
                return Err(SealError::LengthMismatch { declared, written }.into());
            }
        }
        self.check_cap(written)?;
        let mut rest = data;
        while !rest.is_empty() {
            if self.slot_fill == chunk_len {
                // The current chunk is full and more data follows, so it is
                // not the final chunk.
                self.slot += 1;
                self.slot_fill = 0;
                if self.slot == self.batch {
                    self.flush_batch(self.batch, None)?;
                }
            }
            // Whole chunks of `rest` with at least one byte after them are
            // not final: copy and seal them now, together with the pending
            // slots, each thread copying and sealing its own share.
            let whole = if self.slot_fill == 0 {
                ((rest.len().saturating_sub(1)) / chunk_len)
                    .min((self.buf.len() / stride).saturating_sub(self.slot))
            } else {
                0
            };
            if whole > 0 {
                let (now, later) = rest.split_at(whole * chunk_len);
                let end = self.slot + whole;
                // The bytes after the last whole chunk (which may be final,
                // so stay unsealed) are copied in the same hand-off when
                // they are all that is left and fit.
                let tail =
                    if later.len() <= chunk_len && end * stride + later.len() <= self.buf.len() {
                        later
                    } else {
                        &[]
                    };
                self.cipher.copy_and_seal(
                    &mut self.buf[self.sealed * stride..end * stride + tail.len()],
                    self.next_index + self.sealed as u64,
                    self.slot - self.sealed,
                    now,
                    tail,
                    &self.workers,
                );
                (self.sealed, self.slot, self.slot_fill) = (end, end, tail.len());
                rest = &later[tail.len()..];
                if self.slot == self.batch {
                    self.flush_batch(self.batch, None)?;
                }
                continue;
            }
            let take = rest.len().min(chunk_len - self.slot_fill);
            let at = self.slot * stride + self.slot_fill;
            self.buf[at..at + take].copy_from_slice(&rest[..take]);
            self.slot_fill += take;
            rest = &rest[take..];
        }
        self.written += data.len() as u64;
        Ok(data.len())
    }

    /// Flushes the inner writer. Buffered plaintext stays buffered: a chunk
    /// is sealed only when it is known whether it is the final one.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KasSecretKey;
    use crate::stream::tests::builder;

    /// FORMAT.md §6.2: a sealer refuses to take a file's plaintext past the
    /// cap, through `write` and through `seal_from` alike, and accepts it up
    /// to the cap exactly. (The cap is lowered here: 2^48 bytes cannot be
    /// written in a test.)
    #[test]
    fn a_sealer_refuses_plaintext_past_the_cap() {
        let kas = KasSecretKey::generate().unwrap();
        let header = builder(&kas, 1024, None).build().unwrap();
        let too_large = |err: io::Error| {
            matches!(
                err.get_ref()
                    .and_then(|e| e.downcast_ref::<crate::SealError>()),
                Some(crate::SealError::TooLarge { limit: 3000, .. })
            )
        };
        let mut sealer = Sealer::new(&header, Vec::new(), StreamOptions::default()).unwrap();
        sealer.plaintext_cap = 3000;
        sealer.write_all(&[7; 3000]).unwrap();
        assert!(too_large(sealer.write_all(&[7]).unwrap_err()));

        let mut sealer = Sealer::new(&header, Vec::new(), StreamOptions::default()).unwrap();
        sealer.plaintext_cap = 3000;
        assert!(too_large(
            sealer.seal_from(&mut &[7u8; 3001][..]).unwrap_err()
        ));

        let mut sealer = Sealer::new(&header, Vec::new(), StreamOptions::default()).unwrap();
        sealer.plaintext_cap = 3000;
        assert_eq!(sealer.seal_from(&mut &[7u8; 3000][..]).unwrap(), 3000);
        sealer.finish().unwrap();
    }
}
